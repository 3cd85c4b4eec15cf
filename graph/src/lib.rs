//! `cairn-graph`: the knowledge graph of a corpus, built at the cost of vector indexing.
//!
//! Today it holds the extraction that feeds it (`concepts`): the concepts a chunk mentions,
//! found by rules over tokens with no language model, and the acronym merges a chunk gives
//! evidence for. Mentions keep their chunk and byte span, so the graph can be rebuilt from
//! the catalog, a deleted document takes exactly its own mentions with it, and whatever
//! is assembled from mentions can be restricted to the chunks a caller may read.
//!
//! Architecture Invariant: no I/O and no models here; text in, mentions out.

pub mod concepts;

pub use concepts::{ConceptKind, Extracted, Mention, Merge, extract};
