//! What is known about a value — its element type, its shape over symbolic dimensions, and
//! its value when it is a small constant — and how each op's outputs follow from its inputs'.
//! No e-graph here: the e-graph's analysis (crate `onnx-rewrite-egraph`) keeps these facts per
//! e-class, and passes that decide outside the e-graph read them per graph ([`GraphFacts`]).
//!
//! - [`Symbols`] is a union-find over symbolic dims ([`Dim::Sym`]); unifying two dims equates
//!   symbols or binds one to a value, and a contradiction is a [`Conflict`].
//! - [`ValueFacts`] holds dtype, [`Shape`], constant ([`ConstTensor`]) and, for small integer
//!   tensors that are only partly known (shapes being computed), per-element dims
//!   ([`DimValues`]); [`ValueFacts::merge`] is the e-class merge.
//! - [`GraphFacts`] infers one graph of a model, node by node; [`fit`] uses it to fit the
//!   readers of values a rewrite exposed at another rank.
//! - [`infer`] computes an op's output facts from its inputs' facts, folding constants on the
//!   way; it never fails and never panics on what a model contains.
//!
//! Soundness rule: a fact is only stated when it holds for every execution of a valid model.
//! Two places lean on a convention instead, and say so where they do: a symbolic dim is taken
//! to be below 2^31 (`Slice` ends of `INT32_MAX` reach the end; int64↔int32 casts of dims), and
//! a symbolic shape element used as a `Reshape` target is taken as that dim even though a
//! runtime 0 would mean "copy the input dim".

mod attrs;
mod conflict;
mod constant;
pub mod fit;
mod fold;
mod graph;
mod index;
mod infer;
mod shape;
mod symbols;
mod value;

#[cfg(test)]
mod proptests;

pub use attrs::{Attrs, Unusable};
pub use conflict::Conflict;
pub use constant::{ConstData, ConstTensor};
pub use graph::{GraphFacts, PerGraph, identified_by_node, leaf_facts, normalize_domain};
pub use infer::{Limits, OpInfo, infer};
pub use onnx_rewrite_proto::tensor_proto::DataType;
pub use shape::{Monomial, Shape, broadcast, broadcast_dim, normalize_axes, normalize_axis};
pub use symbols::{Dim, DimDisplay, SymId, Symbols};
pub use value::{DimValues, ValueFacts, dtype_name};
