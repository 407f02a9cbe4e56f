//! Arbitrary bytes as a model: load → save → load must never panic, and whatever loads must
//! satisfy the IR's invariants and save to bytes that load to the same model.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use onnx_rewrite_ir::load::load_bytes;
use onnx_rewrite_ir::save::to_bytes;
use onnx_rewrite_ir::LoadOptions;

fuzz_target!(|data: &[u8]| {
    let options = LoadOptions { allow_unknown_fields: true };
    let Ok(model) = load_bytes(Bytes::copy_from_slice(data), None, &options) else { return };
    model.check().expect("a loaded model satisfies the IR invariants");
    let Ok(saved) = to_bytes(&model) else { return };
    let reloaded = load_bytes(Bytes::from(saved.clone()), None, &options).expect("what we save loads again");
    assert_eq!(to_bytes(&reloaded).expect("saves again"), saved, "save is a fixed point");
});
