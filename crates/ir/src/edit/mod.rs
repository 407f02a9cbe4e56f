//! The one graph-editing API every pass uses.
//!
//! - [`Transaction`]: an edit that commits or rolls back, journaled, without copying the model.
//! - [`Names`]: fresh value and node names by one policy for every scope.
//! - [`Op`] and [`attr`]: new nodes and attribute values, built one way.
//! - [`reroute`]: every reader of a value moved to its replacement; a graph output keeps its
//!   name by one rule.
//! - [`sweep`]: what an edit left unread removed, at the cost of what goes.
//! - [`place_before`]: new nodes put in a graph's order right before the nodes that read them.
//! - [`fit`]: readers given what their schema demands of a value a rewrite exposed.

pub mod attr;
pub mod fit;
mod names;
mod op;
mod order;
mod reroute;
mod sweep;
mod transaction;

pub use names::Names;
pub use op::{Op, first_output};
pub use order::place_before;
pub use reroute::{OutputKept, may_take_name, reroute};
pub use sweep::{Swept, sweep};
pub use transaction::Transaction;
