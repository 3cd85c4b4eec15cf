//! One module per command: each builds its inputs, calls library crates, and prints.

pub mod ask;
pub mod bench;
pub mod docs;
pub mod eval;
pub mod graph;
pub mod ingest;
pub mod keys;
pub mod parse_worker;
pub mod reindex;
pub mod search;
pub mod serve;
