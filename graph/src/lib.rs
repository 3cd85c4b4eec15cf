//! `cairn-graph`: the knowledge graph of a corpus, built at the cost of vector indexing.
//!
//! Today it holds the extraction that feeds it (`concepts`): the concepts a chunk mentions,
//! found by rules over tokens with no language model, and the acronym merges a chunk gives
//! evidence for. Mentions keep their chunk and byte span, so the graph can be rebuilt from
//! the catalog, a deleted document takes exactly its own mentions with it, and whatever
//! is assembled from mentions can be restricted to the chunks a caller may read; and the
//! assembly (`assemble`): concepts, merges applied, co-occurrence edges weighted by PMI, as
//! a pure function of a set of chunks' evidence; and the walk (`walk`): personalized
//! PageRank from the question's seeds over the concept–chunk graph.
//!
//! Architecture Invariant: no I/O and no models here; text in, mentions out.

pub mod assemble;
pub mod communities;
pub mod concepts;
pub mod index;
pub mod walk;

/// Names the concept extraction and its version; recorded with every document (beside the
/// chunker's signature), so a change to the rules re-indexes on the next `reindex`.
pub const EXTRACTOR: &str = "concepts-v1";

pub use assemble::{Concept, ConceptGraph, Edge, Settings, assemble};
pub use communities::{Communities, Community, CommunitySettings, detect};
pub use concepts::{MAX_MENTIONS, MAX_TERM_WORDS, extract};
pub use index::{GraphIndex, GraphSettings};
pub use walk::{Walk, WalkSettings, personalized_pagerank};
