//! The pass's options, as flags of `onnx-rewrite apply`.

use std::collections::BTreeSet;

use onnx_rewrite_pass::{BadOption, PassError, PassOption, PassOptions};

use crate::convert::Target;
use crate::kernels::Ep;

pub(crate) const OPTIONS: &[PassOption] = &[
    PassOption {
        flag: "fp16-keep-io-types",
        help: "keep float32 graph inputs and outputs float32, casting at the boundary (true|false; default true)",
        value: Some("BOOL"),
        repeated: false,
    },
    PassOption {
        flag: "fp16-block-op",
        help: "keep every node of this op type float32 (repeatable; `Op` or `domain.Op`; `-Op` removes Op from the default list)",
        value: Some("OP"),
        repeated: true,
    },
    PassOption {
        flag: "fp16-block-node",
        help: "keep the node of this name float32 (repeatable)",
        value: Some("NAME"),
        repeated: true,
    },
    PassOption {
        flag: "fp16-keep-norm-statistics",
        help: "keep the variance of decomposed LayerNorm/RMSNorm (Pow/ReduceMean/Sqrt) float32, for runtimes that do not fuse it",
        value: None,
        repeated: false,
    },
    PassOption {
        flag: "fp16-target",
        help: "keep float32 the nodes onnxruntime 1.32's EP has no float16 kernel for (cpu|cuda; default: any, schema only)",
        value: Some("EP"),
        repeated: false,
    },
    PassOption {
        flag: "fp16-type",
        help: "the low-precision type (float16|bfloat16; default float16)",
        value: Some("TYPE"),
        repeated: false,
    },
];

/// Ops kept float32 unless `--fp16-block-op -Op` says otherwise, with the reason.
pub const DEFAULT_BLOCK_OPS: &[(&str, &str)] = &[(
    "MeanVarianceNormalization",
    "onnxruntime 1.32 has no float16 kernel and expands the function body with a float32 epsilon: a float16 MVN fails to load",
)];

/// The options of one run.
#[derive(Clone, Debug)]
pub struct Options {
    pub keep_io_types: bool,
    /// Op types (or `domain.Op`) kept float32.
    pub block_ops: BTreeSet<String>,
    /// Node names kept float32.
    pub block_nodes: BTreeSet<String>,
    /// Keep float32 what this EP (then, for CUDA, the CPU EP it falls back to) cannot run in the
    /// target type.
    pub target_ep: Option<Ep>,
    pub target: Target,
    /// Keep decomposed normalization statistics float32.
    pub keep_norm_statistics: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            keep_io_types: true,
            block_ops: DEFAULT_BLOCK_OPS
                .iter()
                .map(|(op, _)| (*op).to_owned())
                .collect(),
            block_nodes: BTreeSet::new(),
            target_ep: None,
            target: Target::Float16,
            keep_norm_statistics: false,
        }
    }
}

impl Options {
    pub fn parse(given: &PassOptions) -> Result<Self, PassError> {
        let mut options = Options::default();
        if let Some(value) = given.value("fp16-keep-io-types") {
            options.keep_io_types = match value.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                other => {
                    return Err(bad("fp16-keep-io-types", "true or false", other));
                }
            };
        }
        for op in given.values("fp16-block-op") {
            match op.strip_prefix('-') {
                Some(removed) => {
                    options.block_ops.remove(removed);
                }
                None if op.is_empty() => {
                    return Err(bad("fp16-block-op", "an op type", op));
                }
                None => {
                    options.block_ops.insert(op.clone());
                }
            }
        }
        options.keep_norm_statistics = given.is_set("fp16-keep-norm-statistics");
        options
            .block_nodes
            .extend(given.values("fp16-block-node").iter().cloned());
        if let Some(value) = given.value("fp16-target") {
            options.target_ep = match value.to_ascii_lowercase().as_str() {
                "cpu" => Some(Ep::Cpu),
                "cuda" => Some(Ep::Cuda),
                "any" => None,
                other => {
                    return Err(bad("fp16-target", "cpu, cuda or any", other));
                }
            };
        }
        if let Some(value) = given.value("fp16-type") {
            options.target = match value.to_ascii_lowercase().as_str() {
                "float16" | "fp16" | "f16" | "half" => Target::Float16,
                "bfloat16" | "bf16" => Target::Bfloat16,
                other => {
                    return Err(bad("fp16-type", "float16 or bfloat16", other));
                }
            };
        }
        Ok(options)
    }

    /// Whether the op of `domain`.`op_type` is on the block list.
    pub fn blocks_op(&self, domain: &str, op_type: &str) -> bool {
        if domain.is_empty() {
            self.block_ops.contains(op_type)
        } else {
            self.block_ops.contains(&format!("{domain}.{op_type}"))
        }
    }

    /// The execution providers whose kernels decide, in fallback order. onnxruntime runs a
    /// float16 node without a float16 kernel by casting around it, so float16 needs no EP; it
    /// has no such fallback for bfloat16, so without `--fp16-target` bfloat16 is checked
    /// against the CPU EP, the one every build has.
    pub fn eps(&self) -> &'static [Ep] {
        match (self.target_ep, self.target) {
            (None, Target::Float16) => &[],
            (None, Target::Bfloat16) | (Some(Ep::Cpu), _) => &[Ep::Cpu],
            (Some(Ep::Cuda), _) => &[Ep::Cuda, Ep::Cpu],
        }
    }

    /// Whether a node the tables know nothing about stays float32 (bfloat16: a node without a
    /// kernel fails to load; float16: onnxruntime falls back by itself).
    pub fn needs_kernel(&self) -> bool {
        self.target == Target::Bfloat16
    }
}

fn bad(flag: &'static str, expected: &'static str, got: &str) -> PassError {
    PassError::Option(BadOption {
        flag,
        expected,
        got: got.to_owned(),
    })
}
