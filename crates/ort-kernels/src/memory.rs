//! Which inputs and outputs of CUDA kernels live in CPU memory (`InputMemoryType` /
//! `OutputMemoryType` with `OrtMemTypeCPUInput`/`CPUOutput` in the kernel definitions; no ORT
//! API exports them). Every other slot is device memory, notably `Shape`'s own input, `Gather`
//! indices, `Where` conditions, `Clip` bounds, `Concat` inputs and every element-wise operand.
//!
//! Kept by hand from onnxruntime main of 2026-02 (`onnxruntime/core/providers/cuda/**` and
//! `onnxruntime/contrib_ops/cuda/**`); the slots have not changed across releases for years,
//! but a new kernel with CPU inputs needs a line here. A slot listed for an op version that
//! lacks the input is harmless: the node has no argument there.

/// Whether input `index` of a CUDA kernel for `domain::op` (at `since_version`) reads CPU memory.
pub fn cpu_input(domain: &str, op: &str, since_version: i64, index: usize) -> bool {
    let i = index;
    match (crate::domain_key(domain), op) {
        ("", "Reshape" | "Expand" | "Tile" | "Split" | "CumSum" | "Trilu" | "TopK") => i == 1,
        ("", "Squeeze" | "Unsqueeze") => i == 1,
        ("", "ConstantOfShape") => i == 0,
        ("", "Range") => i <= 2,
        ("", "Slice") => (1..=4).contains(&i),
        ("", "Pad") => (1..=3).contains(&i),
        ("", "Resize") if since_version <= 10 => i == 1,
        ("", "Resize") => (1..=3).contains(&i),
        ("", "Upsample") => i == 1,
        ("", "OneHot") => i == 1 || i == 2,
        ("", "Dropout") => i == 1 || i == 2,
        ("", "NonMaxSuppression") => (2..=4).contains(&i),
        ("", "MatMulInteger") => i == 2 || i == 3,
        // ReduceSum took `axes` as an input at 13, the other reductions at 18.
        ("", "ReduceSum") => i == 1 && since_version >= 13,
        (
            "",
            "ReduceMax" | "ReduceMin" | "ReduceMean" | "ReduceProd" | "ReduceL1" | "ReduceL2"
            | "ReduceLogSum" | "ReduceLogSumExp" | "ReduceSumSquare",
        ) => i == 1 && since_version >= 18,
        ("", "If") => i == 0,
        ("", "Loop") => i <= 1,
        ("", "Scan") => i == 0 && since_version == 8,
        ("", "RNN" | "GRU" | "LSTM") => i == 4,
        ("", "SequenceAt" | "SequenceErase") => i == 1,
        ("", "SequenceInsert") => i == 2,
        ("", "MemcpyFromHost") => i == 0,
        ("com.microsoft", "Attention") => i == 6,
        ("com.microsoft", "MultiHeadAttention") => i == 8,
        ("com.microsoft", "GroupQueryAttention") => i == 6,
        ("com.microsoft", "SparseAttention") => i == 7,
        ("com.microsoft", "DecoderMaskedMultiHeadAttention") => i == 7 || i == 8,
        ("com.microsoft", "DecoderMaskedSelfAttention") => i == 6 || i == 7,
        ("com.microsoft", "RelativePositionBias") => i == 1 || i == 2,
        ("com.microsoft", "Trilu") => i == 1,
        ("com.microsoft", "DynamicSlice") => (1..=3).contains(&i),
        ("com.microsoft", "ConvTransposeWithDynamicPads") => i == 2,
        ("com.microsoft", "BiasDropout" | "BitmaskBiasDropout") => i == 3 || i == 4,
        ("com.microsoft", "BitmaskDropout") => i == 1 || i == 2,
        ("com.microsoft", "QAttention") => matches!(i, 3 | 4 | 6 | 7),
        ("com.microsoft", "QuantizeWithOrder" | "DequantizeWithOrder") => i == 1,
        ("com.microsoft", "QOrderedLayerNormalization") => i == 1 || i == 4,
        ("com.microsoft", "QOrderedGelu") => i == 1 || i == 2,
        ("com.microsoft", "BeamSearch") => matches!(i, 0..=6 | 9..=11),
        ("com.microsoft", "WhisperBeamSearch") => matches!(i, 0..=6 | 9..=11 | 14),
        ("com.microsoft", "GreedySearch" | "Sampling") => matches!(i, 0..=3 | 6),
        _ => false,
    }
}

/// Whether output `index` of a CUDA kernel for `domain::op` is written to CPU memory.
pub fn cpu_output(domain: &str, op: &str, index: usize) -> bool {
    match (crate::domain_key(domain), op) {
        ("", "Shape" | "Size" | "SequenceLength" | "MemcpyToHost") => index == 0,
        ("com.microsoft", "RemovePadding") => index == 3,
        ("com.microsoft", "BeamSearch" | "WhisperBeamSearch" | "Sampling") => index <= 1,
        ("com.microsoft", "GreedySearch") => index == 0,
        _ => false,
    }
}
