//! The one graph-editing API every pass uses.
//!
//! - [`Names`]: fresh value and node names by one policy.
//! - [`place_before`]: new nodes put in a graph's order right before the nodes that read them.
//! - [`fit`]: readers given what their schema demands of a value a rewrite exposed.

pub mod fit;
mod names;
mod order;

pub use names::Names;
pub use order::place_before;
