//! Each pattern that costs copies on ORT's CUDA EP, as a small graph in ONNX text syntax
//! (`tests/fixtures/patterns/*.onnxtxt`, also what `tools/memcpy/measure_memcpy.py` measures on a
//! GPU): the predicted Memcpy count before and after the pass, the graph after (snapshot), and
//! the same outputs before and after on inputs where every symbolic dim has its own size.

mod common;

use common::{case, case_with, predicted};

#[test]
fn sdpa_scale_per_layer_folds_into_one_initializer() {
    // Shape(q)[-1] is the static head dim: the whole scale chain is a constant, in every layer.
    insta::assert_snapshot!(case("sdpa_scale_per_layer", 2, 0));
}

#[test]
fn dynamic_scalar_per_layer_is_shared_then_bridged() {
    // seq as data in two layers: one source (the input's dim), one chain, a Range bridge.
    insta::assert_snapshot!(case("dynamic_scalar_per_layer", 2, 0));
}

#[test]
fn chunk_through_split_to_sequence_becomes_slices() {
    // tract has no SplitToSequence: tools/memcpy/check_fixtures.py checks it on onnxruntime.
    insta::assert_snapshot!(case_with("chunk_split_to_sequence", 2, 0, false));
}

#[test]
fn batch_offset_used_as_data_is_bridged() {
    insta::assert_snapshot!(case("batch_offset_as_data", 1, 0));
}

#[test]
fn float16_scalar_is_cast_on_the_device() {
    // The host chain ends at Cast(int64 -> float16): the cast is redone on the bridged int.
    insta::assert_snapshot!(case("float16_scalar", 1, 0));
}

#[test]
fn reshape_chains_per_layer_merge_without_copies() {
    // Shape chains that end in CPU-memory inputs cost nothing; they still merge into one.
    insta::assert_snapshot!(case("reshape_chains_per_layer", 0, 0));
}

#[test]
fn equal_19_becomes_comparisons_the_cuda_ep_has() {
    insta::assert_snapshot!(case("equal_opset_gap", 2, 0));
}

#[test]
fn a_graph_input_read_on_both_devices_keeps_its_copy() {
    // ORT copies the input itself; there is nothing to bridge, and the report says so.
    insta::assert_snapshot!(case("input_on_both_sides", 1, 1));
}

#[test]
fn the_legacy_and_dynamo_predictions_differ_where_expected() {
    // Sanity of the fixture set itself: every pattern but the last two costs copies before.
    let costly = [
        "sdpa_scale_per_layer",
        "dynamic_scalar_per_layer",
        "chunk_split_to_sequence",
        "batch_offset_as_data",
        "float16_scalar",
        "equal_opset_gap",
    ];
    for name in costly {
        assert!(predicted(&common::fixture(name)) > 0, "{name}");
    }
}
