//! Abbreviated printing: large tensors print as type, shape, name and content hash, the text
//! parses back into placeholders, and printing those again gives the same text.

use bytes::Bytes;
use onnx_rewrite_proto::tensor_proto::{DataLocation, DataType};
use onnx_rewrite_proto::{ModelProto, StringStringEntryProto, TensorProto};
use onnx_rewrite_text::abbrev::{CONTENT_HASH_KEY, abbreviated_hash, content_hash};
use onnx_rewrite_text::{PrintOptions, parse_model, print_model};

fn abbreviated(limit: usize) -> PrintOptions {
    PrintOptions {
        abbreviate_initializers_over: Some(limit),
    }
}

const MODEL: &str = r#"
<ir_version: 10, opset_import: ["" : 21]>
main (float[N, 4] x) => (float[N, 4] y)
<float[4, 4] w = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, float[4] b = {1, 2, 3, 4}>
{
  big = Constant <value: tensor = float[2, 4] {1, 2, 3, 4, 5, 6, 7, 8}> ()
  named = Constant <value: tensor = int64[5] shape {1, 2, 3, 4, 5}> ()
  small = Constant <value: tensor = float[2] {1, 2}> ()
  xw = MatMul (x, w)
  y = Add (xw, b)
}
"#;

fn model() -> ModelProto {
    parse_model(MODEL).unwrap()
}

#[test]
fn large_tensors_print_as_type_shape_name_and_hash() {
    let text = print_model(&model(), &abbreviated(4));
    let w_hash = content_hash(&model().graph.unwrap().initializer[0]);
    let expected = format!(
        r#"<
   ir_version: 10,
   opset_import: ["" : 21]
>
main (float[N,4] x) => (float[N,4] y) 
   <float[4,4] w = ["sha256": "{w_hash}"], float[4] b =  {{1,2,3,4}}>
{{
   big = Constant <value: tensor = float[2,4] = ["sha256": "af7de0621354bafc"]> ()
   named = Constant <value: tensor = int64[5] shape = ["sha256": "ea0d7246ca8346f6"]> ()
   small = Constant <value: tensor = float[2] {{1,2}}> ()
   xw = MatMul (x, w)
   y = Add (xw, b)
}}"#
    );
    assert_eq!(text, expected);
}

#[test]
fn the_hash_is_pinned() {
    // Snapshots depend on these digits: changing the hash breaks every snapshot with a large
    // tensor, so it must be a deliberate change.
    let tensor = TensorProto {
        data_type: Some(DataType::Float as i32),
        dims: vec![4, 4],
        float_data: (0..16).map(|v| v as f32).collect(),
        ..Default::default()
    };
    assert_eq!(content_hash(&tensor), "58dda328598e2f7f");
    let raw: Vec<u8> = (0..16).flat_map(|v| (v as f32).to_le_bytes()).collect();
    let raw = TensorProto {
        float_data: vec![],
        raw_data: Some(Bytes::from(raw)),
        ..tensor.clone()
    };
    assert_eq!(
        content_hash(&raw),
        "58dda328598e2f7f",
        "raw and typed storage hash alike"
    );
    let other = TensorProto {
        float_data: (1..17).map(|v| v as f32).collect(),
        ..tensor
    };
    assert_ne!(content_hash(&other), "58dda328598e2f7f");
}

#[test]
fn abbreviated_text_parses_into_placeholders() {
    let text = print_model(&model(), &abbreviated(4));
    let parsed = parse_model(&text).unwrap();
    let graph = parsed.graph.as_ref().unwrap();
    let w = &graph.initializer[0];
    assert_eq!(w.name.as_deref(), Some("w"));
    assert_eq!(w.dims, [4, 4]);
    assert_eq!(w.data_type, Some(DataType::Float as i32));
    assert!(
        w.float_data.is_empty() && w.raw_data.is_none(),
        "a placeholder holds no data"
    );
    assert_eq!(w.data_location, Some(DataLocation::External as i32));
    assert_eq!(
        abbreviated_hash(w),
        Some(content_hash(&model().graph.unwrap().initializer[0]).as_str())
    );
    // The small initializer is intact.
    assert_eq!(graph.initializer[1].float_data, [1.0, 2.0, 3.0, 4.0]);
    // So are attribute tensors, named or not.
    let big = graph.node[0].attribute[0].t.as_ref().unwrap();
    assert_eq!(abbreviated_hash(big), Some("af7de0621354bafc"));
    assert_eq!(big.dims, [2, 4]);
}

#[test]
fn printing_parsed_abbreviated_text_gives_it_back() {
    let text = print_model(&model(), &abbreviated(4));
    let again = print_model(&parse_model(&text).unwrap(), &abbreviated(4));
    assert_eq!(again, text);
}

#[test]
fn the_limit_is_exclusive_and_off_by_default() {
    let text = print_model(&model(), &abbreviated(16));
    assert!(
        text.contains("float[4,4] w =  {0,1,2"),
        "16 elements print in full at limit 16"
    );
    assert!(print_model(&model(), &abbreviated(15)).contains("float[4,4] w = [\"sha256\""));
    assert_eq!(
        print_model(&model(), &PrintOptions::default()),
        print_model(&model(), &abbreviated(usize::MAX))
    );
}

#[test]
fn external_tensors_print_as_they_are() {
    let mut model = model();
    let w = &mut model.graph.as_mut().unwrap().initializer[0];
    w.float_data.clear();
    w.data_location = Some(DataLocation::External as i32);
    w.external_data = vec![StringStringEntryProto {
        key: Some("location".into()),
        value: Some("w.bin".into()),
    }];
    let text = print_model(&model, &abbreviated(0));
    assert!(
        text.contains(r#"float[4,4] w = ["location": "w.bin"]"#),
        "{text}"
    );
    let w = &model.graph.as_ref().unwrap().initializer[0];
    assert!(
        abbreviated_hash(w).is_none(),
        "real external data is not a placeholder"
    );
    assert!(abbreviated_hash(&TensorProto::default()).is_none());
    assert_eq!(CONTENT_HASH_KEY, "sha256");
}
