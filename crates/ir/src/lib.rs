//! The in-memory ONNX model that every onnx-rewrite pass reads and writes.
//!
//! A [`Model`] is an arena: [`Value`]s and [`Node`]s are connected by id ([`ValueId`],
//! [`NodeId`]), not by name. A node owns its output values (their count is fixed when the node is
//! created); every value has at most one definition and a use list; a missing optional input is
//! an explicit `None`. Subgraphs (If/Loop/Scan bodies) and model-local function bodies are
//! [`Graph`]s in the same arena, so a node inside a subgraph uses an outer value simply by id.
//! Names exist for serialization and diagnostics.
//!
//! Loading is lossless and zero-copy: every field of the protobuf survives [`load`] → [`save`]
//! (fields the IR does not model are kept in the `proto` of their owner), and tensor payloads
//! stay slices of the memory-mapped file. Fields the vendored schema does not know are found on
//! the wire and refused (or dropped on request), never lost silently.
//!
//! ```no_run
//! use onnx_rewrite_ir::{load, save, LoadOptions, SaveOptions};
//! let model = load::load_file("model.onnx".as_ref(), &LoadOptions::default())?;
//! println!("{} nodes", model.graph(model.main()).nodes().len());
//! save::save_file(&model, "out.onnx".as_ref(), &SaveOptions::default())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod arena;
pub mod edit;
mod error;
pub mod external;
pub mod load;
pub mod pending;
pub mod save;
mod sink;
pub mod tensor;
mod walk;

pub use arena::{
    Attribute, Checkpoint, Function, Graph, GraphId, GraphIo, GraphOwner, InvariantError, Model,
    Node, NodeId, Use, Value, ValueDef, ValueId, ValueInfoEntry,
};
pub use error::{LoadError, LoadErrorKind, SaveError};
pub use load::LoadOptions;
pub use onnx_rewrite_proto as proto;
pub use pending::PendingPayload;
pub use save::{ExternalDataPolicy, SaveOptions, SaveSummary};
