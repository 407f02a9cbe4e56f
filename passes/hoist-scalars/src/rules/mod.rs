//! The e-graph rules of `hoist-scalars`, by topic, and the cost model that picks among the
//! forms they add. Folding static dims into initializers is not a rule: the pass lowers with
//! `fold_constants`, which gives every class whose value the analysis knows (a `Gather` of a
//! static dim, the `Sqrt` of its `Cast`...) a constant of the exact dtype and shape.
//!
//! - [`dims`]: one source per symbolic dim, so every layer's shape chain merges into one.
//! - [`sequences`]: `SplitToSequence` pieces as device-side `Slice`s.
//! - [`kernel_gaps`]: ops without a CUDA kernel at the model's opset (`Equal-19`) as ops with one.

pub mod build;
pub mod dims;
pub mod kernel_gaps;
pub mod sequences;

use std::sync::Arc;

use onnx_rewrite_egraph::Id;
use onnx_rewrite_egraph::Onnx;
use onnx_rewrite_egraph::analysis::OnnxEGraph;
use onnx_rewrite_egraph::extract::CostModel;
use onnx_rewrite_egraph::rule::Rule;
use onnx_rewrite_facts::DataType;

use onnx_rewrite_ort_kernels::{Ep, Ort};

pub use dims::{CanonicalDims, Sources};
pub use kernel_gaps::EqualByComparisons;
pub use sequences::SliceSequencePiece;

/// Every rule of the pass.
pub fn all(sources: &Sources, ort: &'static Ort) -> Vec<Arc<dyn Rule>> {
    vec![
        Arc::new(SliceSequencePiece),
        Arc::new(EqualByComparisons { ort }),
        Arc::new(CanonicalDims {
            sources: sources.clone(),
        }),
    ]
}

/// Node count, plus what the CUDA EP makes an op cost: an op without a CUDA kernel at the
/// model's opset (its input goes to the host and its output comes back), and reading the shape
/// of a computed tensor rather than of a graph input (the earlier in `sources`, the cheaper),
/// which is what makes extraction take the input-rooted form [`dims`] adds for every layer.
pub struct HoistCost {
    pub sources: Sources,
    pub ort: &'static Ort,
}

/// Extra cost of `Shape`/`Size` of a tensor that is not a graph input or constant.
const SHAPE_OF_ACTIVATION: f64 = 8.0;
/// Cost of a tensor a rule made (an initializer of the graph costs nothing).
const NEW_CONSTANT: f64 = 1e-3;
/// Cost of folding float16/bfloat16 arithmetic: more than any chain it replaces.
const KEEP_LOW_PRECISION: f64 = 1e6;
/// Extra cost of an op the CUDA EP has no kernel for (two copies, a host round trip).
const NO_CUDA_KERNEL: f64 = 16.0;

impl CostModel for HoistCost {
    fn cost(&self, egraph: &OnnxEGraph, node: &Onnx) -> f64 {
        let Onnx::Op(key, children) = node else {
            // A tensor a rule made costs a trifle more than an initializer the graph has, so
            // that between equal forms the one already in the graph wins (idempotence).
            return match node {
                Onnx::Const(_) if low_precision_arithmetic(egraph, node) => KEEP_LOW_PRECISION,
                Onnx::Const(_) => NEW_CONSTANT,
                _ => 0.0,
            };
        };
        let op = egraph.analysis.ops.get(*key);
        if op.is("", "Identity") && children.first().is_some_and(|c| is_initializer(egraph, *c)) {
            // An Identity of an initializer is free (ORT drops it at load); folding it would
            // only copy the initializer, and, for a subgraph output, anew on every run.
            return 0.0;
        }
        let types: Vec<Option<String>> = children
            .iter()
            .take(op.inputs)
            .map(|c| {
                egraph[egraph.find(*c)]
                    .data
                    .value()
                    .and_then(|f| f.dtype)
                    .map(onnx_rewrite_ort_kernels::type_name)
            })
            .collect();
        let types: Vec<Option<&str>> = types.iter().map(|t| t.as_deref()).collect();
        let kernel = self.ort.lookup(
            Ep::Cuda,
            &op.domain,
            &op.op_type,
            egraph.analysis.opset(&op.domain),
            &types,
            &[],
        );
        let base = if kernel.is_found() {
            1.0
        } else {
            1.0 + NO_CUDA_KERNEL
        };
        if !(op.domain.is_empty() && matches!(op.op_type.as_str(), "Shape" | "Size")) {
            return base;
        }
        let Some(input) = children.first() else {
            return base;
        };
        let leaf = egraph[egraph.find(*input)]
            .nodes
            .iter()
            .find_map(|n| match n {
                Onnx::Leaf(v) => Some(*v),
                _ => None,
            });
        match leaf {
            Some(v) => {
                let rank = self.sources.iter().position(|s| *s == v);
                base + rank.map_or(0.5, |r| 0.01 * r as f64)
            }
            None => base + SHAPE_OF_ACTIVATION,
        }
    }
}

/// Whether the class of a folded constant is float16/bfloat16 arithmetic (an op with such an
/// input, or a cast to such a type). Those stay as they are: onnxruntime's CPU EP runs them in
/// float32 and drops a float32→float16→float32 cast pair on the way, so its result is not the
/// exactly rounded one a fold produces, and a fold would change the model's outputs there
/// (by an ulp) against onnxruntime. Integer and float32 shape arithmetic folds as before.
fn low_precision_arithmetic(egraph: &OnnxEGraph, node: &Onnx) -> bool {
    let low =
        |dtype: Option<DataType>| matches!(dtype, Some(DataType::Float16 | DataType::Bfloat16));
    let dtype_of = |id: Id| egraph[egraph.find(id)].data.value().and_then(|f| f.dtype);
    let Some(class) = egraph.lookup(node.clone()) else {
        return false;
    };
    let low_node = |n: &Onnx| match n {
        Onnx::Op(key, children) => {
            let op = egraph.analysis.ops.get(*key);
            let explicit = &children[..op.inputs.min(children.len())];
            explicit.iter().any(|c| low(dtype_of(*c)))
                || (op.is("", "Cast") && low(dtype_of(class)))
        }
        _ => false,
    };
    // The class is low-precision arithmetic only when every op that computes it is: one exact
    // member (a `Constant`, a `ConstantOfShape` fill, integer shape arithmetic) makes the fold
    // exact. Deciding by all members keeps the choice the same whether or not an exact cast
    // (CastLike to its own type) was merged in, so the pass is a fixed point on fp16's output.
    let nodes = &egraph[class].nodes;
    let ops = || nodes.iter().filter(|n| matches!(n, Onnx::Op(..)));
    ops().next().is_some() && ops().all(low_node)
}

/// Whether a class holds an initializer of the graph (or of an enclosing one).
fn is_initializer(egraph: &OnnxEGraph, class: Id) -> bool {
    egraph[egraph.find(class)]
        .nodes
        .iter()
        .any(|n| matches!(n, Onnx::Leaf(v) if egraph.analysis.leaf_tensors.contains_key(v)))
}
