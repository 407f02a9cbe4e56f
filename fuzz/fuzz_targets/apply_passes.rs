//! Every registered pass on arbitrary decoded models: a pass may decline or refuse, but never
//! panic, and what it returns must satisfy the IR's invariants and save to bytes that load.
#![no_main]

use std::time::Duration;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use onnx_rewrite::PassContext;
use onnx_rewrite::pass::RunLimits;
use onnx_rewrite::ir::LoadOptions;
use onnx_rewrite::ir::load::load_bytes;
use onnx_rewrite::ir::save::to_bytes;
use onnx_rewrite::registry;

fuzz_target!(|data: &[u8]| {
    let options = LoadOptions {
        allow_unknown_fields: true,
    };
    let Ok(model) = load_bytes(Bytes::copy_from_slice(data), None, &options) else {
        return;
    };
    let cx = PassContext {
        limits: RunLimits {
            node_limit: Some(20_000),
            iter_limit: 8,
            time_limit: Duration::from_secs(20),
        },
        ..PassContext::default()
    };
    for pass in registry().passes() {
        let mut rewritten = model.clone();
        if pass.run(&mut rewritten, &cx).is_err() {
            continue;
        }
        rewritten
            .check()
            .unwrap_or_else(|e| panic!("{} broke an IR invariant: {e}", pass.name()));
        if let Ok(bytes) = to_bytes(&rewritten) {
            load_bytes(Bytes::from(bytes), None, &options)
                .unwrap_or_else(|e| panic!("{}'s output does not load: {e}", pass.name()));
        }
    }
});
