//! Inputs the fuzzers once crashed on (`fuzz/regressions/<target>/`), replayed as the fuzz
//! target does: every registered pass on the decoded model may decline or refuse, but must not
//! panic, and what it returns must satisfy the IR's invariants and save to bytes that load.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use onnx_rewrite::PassContext;
use onnx_rewrite::ir::LoadOptions;
use onnx_rewrite::ir::load::load_bytes;
use onnx_rewrite::ir::save::to_bytes;
use onnx_rewrite::registry;

fn inputs(target: &str) -> Vec<PathBuf> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    files.sort();
    files
}

#[test]
fn apply_passes_regressions_no_longer_crash() {
    let files = inputs("apply_passes");
    assert!(
        !files.is_empty(),
        "fuzz/regressions/apply_passes holds the crash inputs"
    );
    let options = LoadOptions {
        allow_unknown_fields: true,
    };
    for file in files {
        let data = std::fs::read(&file).expect("readable");
        let Ok(model) = load_bytes(Bytes::from(data), None, &options) else {
            continue;
        };
        for pass in registry().passes() {
            let mut rewritten = model.clone();
            if pass.run(&mut rewritten, &PassContext::default()).is_err() {
                continue;
            }
            rewritten.check().unwrap_or_else(|e| {
                panic!(
                    "{}: {} broke an IR invariant: {e}",
                    file.display(),
                    pass.name()
                )
            });
            if let Ok(bytes) = to_bytes(&rewritten) {
                load_bytes(Bytes::from(bytes), None, &options).unwrap_or_else(|e| {
                    panic!(
                        "{}: {}'s output does not load: {e}",
                        file.display(),
                        pass.name()
                    )
                });
            }
        }
    }
}
