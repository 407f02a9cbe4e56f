//! Load + save of a ModernBERT-large-size model (28 layers, about 1.6 GB of float32 weights in
//! an external-data sidecar), against a plain read/write copy of the same bytes, in one run.
//!
//! Reports wall time of each (best of three, page cache warm for both) and the peak anonymous
//! memory (RssAnon: heap, not file-backed pages of the memory map) during load + save.
//!
//! `cargo bench -p onnx-rewrite --bench load_save` (set `ONNX_REWRITE_BENCH_DIR` to choose
//! where the 3 x 1.6 GB of files go; default `target/bench`).

use std::fs::File;
use std::io::{Read, Write};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod support;
use support::{AnonSampler, rss_anon_kib};

use onnx_rewrite_ir::load::load_file;
use onnx_rewrite_ir::save::save_file;
use onnx_rewrite_ir::{LoadOptions, SaveOptions};
use onnx_rewrite_proto::tensor_proto::{DataLocation, DataType};
use onnx_rewrite_proto::*;

const HIDDEN: i64 = 1024;
const INTERMEDIATE: i64 = 2624;
const LAYERS: usize = 28;
const VOCAB: i64 = 50368;

fn main() {
    let dir = std::env::var_os("ONNX_REWRITE_BENCH_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench"),
        PathBuf::from,
    );
    let input_dir = dir.join("modernbert-large-synthetic");
    let input = input_dir.join("model.onnx");
    if !input.exists() {
        eprintln!("generating {} ...", input.display());
        generate(&input_dir);
    }
    let data = input_dir.join("model.onnx.data");
    let total = std::fs::metadata(&input).unwrap().len() + std::fs::metadata(&data).unwrap().len();
    let copy_dir = dir.join("copy");
    let out_dir = dir.join("out");
    std::fs::create_dir_all(&copy_dir).unwrap();
    std::fs::create_dir_all(&out_dir).unwrap();

    // Warm the page cache for both contenders alike.
    plain_copy(&input_dir, &copy_dir);

    let mut copy_times = Vec::new();
    let mut ours_times = Vec::new();
    let mut peak_anon = 0;
    let baseline_anon = rss_anon_kib();
    for _ in 0..3 {
        let start = Instant::now();
        plain_copy(&input_dir, &copy_dir);
        copy_times.push(start.elapsed());

        let sampler = AnonSampler::start();
        let start = Instant::now();
        let model = load_file(&input, &LoadOptions::default()).unwrap();
        let loaded = start.elapsed();
        save_file(&model, &out_dir.join("model.onnx"), &SaveOptions::default()).unwrap();
        drop(model);
        ours_times.push(start.elapsed());
        eprintln!(
            "  load {:.3} s, save {:.3} s",
            loaded.as_secs_f64(),
            (start.elapsed() - loaded).as_secs_f64()
        );
        peak_anon = peak_anon.max(sampler.stop());
    }
    let best = |t: &[Duration]| t.iter().min().copied().unwrap_or_default();
    let (copy, ours) = (best(&copy_times), best(&ours_times));
    let gib = total as f64 / f64::from(1 << 30);
    println!(
        "model: {} ({:.2} GiB with its external data)",
        input.display(),
        gib
    );
    println!(
        "plain read/write copy   best {:>7.3} s  ({:.2} GiB/s)  runs {:?}",
        copy.as_secs_f64(),
        gib / copy.as_secs_f64(),
        copy_times
    );
    println!(
        "onnx-rewrite load+save  best {:>7.3} s  ({:.2} GiB/s)  runs {:?}",
        ours.as_secs_f64(),
        gib / ours.as_secs_f64(),
        ours_times
    );
    println!(
        "ratio (ours / copy)     {:.2}x",
        ours.as_secs_f64() / copy.as_secs_f64()
    );
    println!(
        "peak RssAnon during load+save: {} MiB (process baseline before: {} MiB)",
        peak_anon / 1024,
        baseline_anon / 1024
    );
    let same = same_tensors(&input, &out_dir.join("model.onnx"));
    println!("every tensor of the output equals the input's: {same}");
}

/// Streams both files through a 1 MiB buffer: the cost of moving the bytes at all.
fn plain_copy(from: &Path, to: &Path) {
    let mut buffer = vec![0u8; 1 << 20];
    for name in ["model.onnx", "model.onnx.data"] {
        let mut src = File::open(from.join(name)).unwrap();
        let mut dst = File::create(to.join(name)).unwrap();
        loop {
            let n = src.read(&mut buffer).unwrap();
            if n == 0 {
                break;
            }
            dst.write_all(&buffer[..n]).unwrap();
        }
    }
}

/// Whether both models hold the same initializers, payload for payload.
fn same_tensors(a: &Path, b: &Path) -> bool {
    let (a, b) = (
        load_file(a, &LoadOptions::default()).unwrap(),
        load_file(b, &LoadOptions::default()).unwrap(),
    );
    let payloads = |m: &onnx_rewrite_ir::Model| -> Vec<(String, bytes::Bytes)> {
        m.graph(m.main())
            .initializers()
            .iter()
            .map(|v| {
                let t = m.value(*v).initializer().unwrap();
                (
                    m.value(*v).name().to_owned(),
                    t.raw_data.clone().unwrap_or_default(),
                )
            })
            .collect()
    };
    payloads(&a) == payloads(&b)
}

/// Writes a 28-layer encoder with ModernBERT-large's weight shapes; every weight external.
fn generate(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut data = std::io::BufWriter::new(File::create(dir.join("model.onnx.data")).unwrap());
    let mut offset = 0u64;
    let mut initializers = Vec::new();
    let mut nodes = Vec::new();
    let mut add_weight = |name: String, dims: Vec<i64>| {
        let len = dims.iter().product::<i64>() as u64 * 4;
        let mut chunk = vec![0u8; 1 << 20];
        let mut left = len;
        let mut seed = offset as u32 ^ 0x9e37_79b9;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            for word in chunk[..n].chunks_exact_mut(4) {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                let value = (seed as f32 / u32::MAX as f32 - 0.5) * 0.04;
                word.copy_from_slice(&value.to_le_bytes());
            }
            data.write_all(&chunk[..n]).unwrap();
            left -= n as u64;
        }
        let entry = |k: &str, v: String| StringStringEntryProto {
            key: Some(k.into()),
            value: Some(v),
        };
        initializers.push(TensorProto {
            name: Some(name),
            dims,
            data_type: Some(DataType::Float as i32),
            data_location: Some(DataLocation::External as i32),
            external_data: vec![
                entry("location", "model.onnx.data".into()),
                entry("offset", offset.to_string()),
                entry("length", len.to_string()),
            ],
            ..Default::default()
        });
        offset += len;
    };
    let node = |op: &str, inputs: Vec<String>, output: String| NodeProto {
        op_type: Some(op.into()),
        name: Some(format!("{output}_{op}")),
        input: inputs,
        output: vec![output],
        ..Default::default()
    };
    add_weight("embeddings.tok".into(), vec![VOCAB, HIDDEN]);
    nodes.push(node(
        "Gather",
        vec!["embeddings.tok".into(), "input_ids".into()],
        "h0".into(),
    ));
    let mut h = "h0".to_owned();
    for layer in 0..LAYERS {
        let p = format!("layers.{layer}");
        add_weight(format!("{p}.attn.Wqkv"), vec![HIDDEN, 3 * HIDDEN]);
        add_weight(format!("{p}.attn.Wo"), vec![HIDDEN, HIDDEN]);
        add_weight(format!("{p}.mlp.Wi"), vec![HIDDEN, 2 * INTERMEDIATE]);
        add_weight(format!("{p}.mlp.Wo"), vec![INTERMEDIATE, HIDDEN]);
        add_weight(format!("{p}.norm"), vec![HIDDEN]);
        nodes.push(node(
            "MatMul",
            vec![h.clone(), format!("{p}.attn.Wqkv")],
            format!("{p}.qkv"),
        ));
        nodes.push(node(
            "Slice",
            vec![
                format!("{p}.qkv"),
                "zero".into(),
                "hidden".into(),
                "minus_one".into(),
            ],
            format!("{p}.v"),
        ));
        nodes.push(node(
            "MatMul",
            vec![format!("{p}.v"), format!("{p}.attn.Wo")],
            format!("{p}.attn_out"),
        ));
        nodes.push(node(
            "Add",
            vec![h.clone(), format!("{p}.attn_out")],
            format!("{p}.r1"),
        ));
        nodes.push(node(
            "MatMul",
            vec![format!("{p}.r1"), format!("{p}.mlp.Wi")],
            format!("{p}.wi"),
        ));
        nodes.push(node(
            "Slice",
            vec![
                format!("{p}.wi"),
                "zero".into(),
                "inter".into(),
                "minus_one".into(),
            ],
            format!("{p}.act_in"),
        ));
        nodes.push(node(
            "Gelu",
            vec![format!("{p}.act_in")],
            format!("{p}.act"),
        ));
        nodes.push(node(
            "MatMul",
            vec![format!("{p}.act"), format!("{p}.mlp.Wo")],
            format!("{p}.mlp_out"),
        ));
        nodes.push(node(
            "Add",
            vec![format!("{p}.r1"), format!("{p}.mlp_out")],
            format!("{p}.r2"),
        ));
        nodes.push(node(
            "Mul",
            vec![format!("{p}.r2"), format!("{p}.norm")],
            format!("{p}.out"),
        ));
        h = format!("{p}.out");
    }
    data.flush().unwrap();
    let scalar = |name: &str, v: i64| TensorProto {
        name: Some(name.into()),
        dims: vec![1],
        data_type: Some(DataType::Int64 as i32),
        int64_data: vec![v],
        ..Default::default()
    };
    initializers.extend([
        scalar("zero", 0),
        scalar("hidden", HIDDEN),
        scalar("inter", INTERMEDIATE),
        scalar("minus_one", -1),
    ]);
    let io = |name: &str, elem: DataType| ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem as i32),
                shape: None,
            })),
            denotation: None,
        }),
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: Some(10),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(20),
        }],
        producer_name: Some("onnx-rewrite bench".into()),
        graph: Some(GraphProto {
            name: Some("modernbert_large_synthetic".into()),
            node: nodes,
            initializer: initializers,
            input: vec![io("input_ids", DataType::Int64)],
            output: vec![io(&h, DataType::Float)],
            ..Default::default()
        }),
        ..Default::default()
    };
    std::fs::write(dir.join("model.onnx"), model.encode_to_vec()).unwrap();
}
