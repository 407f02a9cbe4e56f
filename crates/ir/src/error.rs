//! Errors of loading and saving. Each names the file and, where there is one, the node, value or
//! tensor at fault; the binary only formats them.

use std::io;
use std::path::PathBuf;

use onnx_rewrite_proto::wire::{UnknownField, WireError};

use crate::external::ExternalDataError;
use crate::tensor::TensorError;

/// A model could not be loaded. Nothing about the input was changed.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct LoadError {
    /// The model file (`<memory>` for models given as bytes).
    pub path: PathBuf,
    pub kind: LoadErrorKind,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadErrorKind {
    #[error("cannot read the file: {0}")]
    Io(#[source] io::Error),
    #[error("not a valid ONNX protobuf: {0}")]
    Wire(#[from] WireError),
    #[error("not a valid ONNX protobuf: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error(
        "{} field(s) unknown to the onnx 1.23.2 schema would be lost, the first: {}; \
         pass --allow-unknown-fields to drop them",
        fields.len(),
        fields.first().map(ToString::to_string).unwrap_or_default()
    )]
    UnknownFields { fields: Vec<UnknownField> },
    #[error("the model has no graph")]
    NoGraph,
    #[error("{graph}: {what} '{name}' is defined more than once")]
    DuplicateName {
        graph: String,
        what: &'static str,
        name: String,
    },
    #[error("{graph}: {what} has an empty name")]
    EmptyName { graph: String, what: String },
    #[error(
        "{graph}: {node} reads '{name}', which no input, initializer or node of this or an enclosing graph defines"
    )]
    UndefinedInput {
        graph: String,
        node: String,
        name: String,
    },
    #[error("{graph}: output '{name}' is not defined in the graph")]
    UndefinedOutput { graph: String, name: String },
    #[error("{graph}: {node} uses domain '{domain}', for which the model imports no opset")]
    UnimportedDomain {
        graph: String,
        node: String,
        domain: String,
    },
    #[error("the model has more than {limit} nodes")]
    TooManyNodes { limit: usize },
    #[error("{graph}: a name of {length} bytes is longer than the limit of {limit}")]
    NameTooLong {
        graph: String,
        length: usize,
        limit: usize,
    },
    #[error("{graph}: the nodes form a cycle through {node}")]
    Cycle { graph: String, node: String },
    #[error("{graph}: {node}: attribute '{attribute}' has graph-valued fields of the wrong kind")]
    BadGraphAttribute {
        graph: String,
        node: String,
        attribute: String,
    },
    #[error("tensor '{tensor}': {source}")]
    Tensor {
        tensor: String,
        #[source]
        source: TensorError,
    },
    #[error("tensor '{tensor}': {source}")]
    ExternalData {
        tensor: String,
        #[source]
        source: ExternalDataError,
    },
}

/// A model could not be written. The destination was not touched (output goes to a temporary
/// file that is renamed only once complete).
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("{}: cannot write: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{}: the serialized model is {size} bytes, over protobuf's 2 GiB limit, and external data is disabled",
        path.display()
    )]
    TooLarge { path: PathBuf, size: u64 },
    #[error("{}: {source}", path.display())]
    Invariant {
        path: PathBuf,
        #[source]
        source: crate::arena::InvariantError,
    },
}
