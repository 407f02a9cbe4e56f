//! Rules shared by passes, grouped by topic (one file per topic, like Cranelift's `opts/`).

pub mod identity;
