//! The command-line contract: exit statuses, messages that name the file and the problem,
//! nothing written on failure, atomic and byte-identical output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use onnx_rewrite_proto::tensor_proto::DataType;
use onnx_rewrite_proto::*;

fn tool() -> Command {
    Command::new(env!("CARGO_BIN_EXE_onnx-rewrite"))
}

fn run(args: &[&str]) -> Output {
    tool().args(args).output().expect("the binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn s(text: &str) -> Option<String> {
    Some(text.to_owned())
}

fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: s(op),
        name: s(&format!("{op}_node")),
        input: inputs.iter().map(|i| (*i).to_owned()).collect(),
        output: outputs.iter().map(|o| (*o).to_owned()).collect(),
        ..Default::default()
    }
}

fn float_input(name: &str) -> ValueInfoProto {
    use tensor_shape_proto::{Dimension, dimension::Value};
    ValueInfoProto {
        name: s(name),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: Some(TensorShapeProto {
                    dim: vec![Dimension {
                        value: Some(Value::DimParam("N".into())),
                        denotation: None,
                    }],
                }),
            })),
            denotation: None,
        }),
        ..Default::default()
    }
}

fn model(nodes: Vec<NodeProto>, inputs: &[&str], outputs: &[&str]) -> ModelProto {
    ModelProto {
        ir_version: Some(10),
        opset_import: vec![OperatorSetIdProto {
            domain: s(""),
            version: Some(21),
        }],
        producer_name: s("cli-test"),
        graph: Some(GraphProto {
            name: s("g"),
            node: nodes,
            input: inputs.iter().map(|i| float_input(i)).collect(),
            output: outputs.iter().map(|o| float_input(o)).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn apply_none_writes_the_input_back_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = model(
        vec![node("Relu", &["x"], &["h"]), node("Neg", &["h"], &["y"])],
        &["x"],
        &["y"],
    )
    .encode_to_vec();
    let input = write(dir.path(), "in.onnx", &bytes);
    let output = dir.path().join("out.onnx");
    let out = run(&[
        "apply",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "--passes",
        "none",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&output).unwrap(), bytes);
    assert_eq!(
        files_in(dir.path()),
        ["in.onnx", "out.onnx"],
        "no temporary file left behind"
    );
}

#[test]
fn bad_models_exit_1_name_the_problem_and_write_nothing() {
    let truncated = model(vec![node("Relu", &["x"], &["y"])], &["x"], &["y"]).encode_to_vec();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated",
            truncated[..truncated.len() - 3].to_vec(),
            "not a valid ONNX protobuf",
        ),
        (
            "garbage",
            b"this is not a model".to_vec(),
            "not a valid ONNX protobuf",
        ),
        ("empty", Vec::new(), "the model has no graph"),
        (
            "undefined",
            model(vec![node("Relu", &["ghost"], &["y"])], &["x"], &["y"]).encode_to_vec(),
            "reads 'ghost'",
        ),
        (
            "duplicate",
            model(
                vec![node("Relu", &["x"], &["y"]), node("Neg", &["x"], &["y"])],
                &["x"],
                &["y"],
            )
            .encode_to_vec(),
            "'y' is defined more than once",
        ),
        (
            "required_input_left_out",
            model(vec![node("Add", &["x"], &["y"])], &["x"], &["y"]).encode_to_vec(),
            "required input 1 is missing",
        ),
        (
            "required_input_empty",
            model(vec![node("Add", &["", "x"], &["y"])], &["x"], &["y"]).encode_to_vec(),
            "required input 0 is missing",
        ),
        (
            "too_many_inputs",
            model(vec![node("Relu", &["x", "x"], &["y"])], &["x"], &["y"]).encode_to_vec(),
            "2 inputs given, but Relu version 14 takes at most 1",
        ),
        (
            "scan_without_body",
            model(vec![node("Scan", &["x"], &["y"])], &["x"], &["y"]).encode_to_vec(),
            "Scan has no 'body' graph attribute",
        ),
        (
            "cycle",
            model(
                vec![
                    node("Add", &["x", "b"], &["a"]),
                    node("Neg", &["a"], &["b"]),
                ],
                &["x"],
                &["b"],
            )
            .encode_to_vec(),
            "cycle",
        ),
    ];
    for (name, bytes, reason) in cases {
        let dir = tempfile::tempdir().unwrap();
        let input = write(dir.path(), &format!("{name}.onnx"), &bytes);
        let output = dir.path().join("out.onnx");
        let out = run(&[
            "apply",
            input.to_str().unwrap(),
            "-o",
            output.to_str().unwrap(),
            "--passes",
            "none",
        ]);
        let message = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {message}");
        assert!(
            message.contains(&format!("{name}.onnx")) && message.contains(reason),
            "{name}: {message}"
        );
        assert!(!message.contains("panicked"), "{name}: {message}");
        assert_eq!(
            files_in(dir.path()),
            [format!("{name}.onnx")],
            "{name}: nothing written"
        );
    }
}

#[test]
fn external_data_outside_the_model_folder_is_refused() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("secret.bin"), [0u8; 16]).unwrap();
    let folder = root.path().join("model");
    std::fs::create_dir(&folder).unwrap();
    let mut m = model(vec![node("Add", &["x", "w"], &["y"])], &["x"], &["y"]);
    let entry = |k: &str, v: &str| StringStringEntryProto {
        key: s(k),
        value: s(v),
    };
    m.graph.as_mut().unwrap().initializer.push(TensorProto {
        name: s("w"),
        dims: vec![4],
        data_type: Some(DataType::Float as i32),
        data_location: Some(tensor_proto::DataLocation::External as i32),
        external_data: vec![
            entry("location", "../secret.bin"),
            entry("offset", "0"),
            entry("length", "16"),
        ],
        ..Default::default()
    });
    let input = write(&folder, "m.onnx", &m.encode_to_vec());
    let output = folder.join("out.onnx");
    let out = run(&[
        "apply",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "--passes",
        "none",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("'..'") && stderr(&out).contains("tensor 'w'"),
        "{}",
        stderr(&out)
    );
    assert!(!output.exists());
}

#[test]
fn the_output_may_replace_the_input_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = model(vec![node("Relu", &["x"], &["y"])], &["x"], &["y"]).encode_to_vec();
    let input = write(dir.path(), "m.onnx", &bytes);
    let out = run(&[
        "apply",
        input.to_str().unwrap(),
        "-o",
        input.to_str().unwrap(),
        "--passes",
        "none",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--in-place"), "{}", stderr(&out));
    let out = run(&[
        "apply",
        input.to_str().unwrap(),
        "-o",
        input.to_str().unwrap(),
        "--passes",
        "none",
        "--in-place",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&input).unwrap(), bytes);
}

#[test]
fn usage_errors_exit_1() {
    assert_eq!(
        run(&[
            "apply",
            "m.onnx",
            "-o",
            "o.onnx",
            "--passes",
            "no-such-pass"
        ])
        .status
        .code(),
        Some(1)
    );
    assert_eq!(run(&["no-such-command"]).status.code(), Some(1));
    assert_eq!(run(&["apply", "m.onnx"]).status.code(), Some(1));
    assert_eq!(run(&["--help"]).status.code(), Some(0));
}

#[test]
fn print_info_and_passes_describe_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "m.onnx",
        &model(vec![node("Relu", &["x"], &["y"])], &["x"], &["y"]).encode_to_vec(),
    );
    let printed = run(&["print", input.to_str().unwrap()]);
    assert!(printed.status.success());
    let text = String::from_utf8(printed.stdout).unwrap();
    assert!(
        text.contains("g (float[N] x) => (float[N] y)") && text.contains("y = Relu (x)"),
        "{text}"
    );

    let info = run(&["info", "--json", input.to_str().unwrap()]);
    assert!(info.status.success());
    let json: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(json["ops"]["Relu"], 1);
    assert_eq!(json["opsets"][""], 21);
    assert_eq!(json["inputs"][0]["type"], "float[N]");

    let passes = String::from_utf8(run(&["passes"]).stdout).unwrap();
    assert!(passes.lines().any(|l| l.starts_with("none ")), "{passes}");
}

/// Identical input and options give byte-identical output, for every pass, on real exports.
#[test]
fn output_is_deterministic_for_every_pass() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/models");
    let passes = String::from_utf8(run(&["passes"]).stdout).unwrap();
    let names: Vec<&str> = passes
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.contains(&"egraph"), "{passes}");
    let dir = tempfile::tempdir().unwrap();
    for model in [
        "mlp_gemm_dynamo",
        "cond_capture",
        "llama_dynamo",
        "mixtral_hf_batched_mm",
    ] {
        let input = root.join(model).join("model.onnx");
        for pass in &names {
            let outputs: Vec<Vec<u8>> = (0..2)
                .map(|i| {
                    let output = dir.path().join(format!("{model}.{pass}.{i}.onnx"));
                    let out = run(&[
                        "apply",
                        input.to_str().unwrap(),
                        "-o",
                        output.to_str().unwrap(),
                        "--passes",
                        pass,
                        "-q",
                    ]);
                    assert!(
                        matches!(out.status.code(), Some(0 | 2)),
                        "{model} {pass}: {}",
                        stderr(&out)
                    );
                    std::fs::read(&output).unwrap_or_default()
                })
                .collect();
            assert_eq!(
                outputs[0], outputs[1],
                "{model} with {pass}: two runs differ"
            );
        }
    }
}
