//! `cairn-core`: the vocabulary every cairn crate shares. Ids, [`Document`], [`Chunk`],
//! [`Span`], [`Acl`]/[`Principal`], search shapes, configuration, error kinds, and the
//! seam traits ([`Embedder`], [`Catalog`], [`LexicalIndex`], [`VectorStore`],
//! [`DocumentStore`]) that keep crates apart. No I/O, no models, no HTTP.
//!
//! ```
//! use cairn_core::{Acl, Principal, Scope, DocId, Seq};
//!
//! let acl = Acl { tenant: "acme".into(), groups: vec!["hr".into()] };
//! let scope = Scope { principal: Principal::new("acme", vec!["hr".into()]), doc_ids: None, max_seq: Seq(10) };
//! assert!(scope.admits(&acl, &DocId::from("d1"), Seq(7)));
//! assert!(!scope.admits(&acl, &DocId::from("d1"), Seq(11))); // not yet in every index
//! ```

mod acl;
mod answer;
mod auth;
mod concept;
pub mod config;
mod document;
mod error;
mod ids;
mod origin;
mod seams;
mod search;
pub mod sentences;
mod text;

pub use acl::{Acl, Actor, DEFAULT_TENANT, PUBLIC_GROUP, Principal, Role};
pub use answer::{Answer, AnswerMode, AnswerSentence, AnswerSignals, AskRequest, Citation};
pub use auth::{ApiKey, AuditEntry, AuditLog, AuditQuery, KeyStore};
pub use concept::{
    CommunityInfo, CommunityList, CommunityReport, ConceptDetail, ConceptInfo, ConceptKind,
    ConceptList, Concepts, GraphStats, Mention, Merge, Neighbour, Neighbourhood, Passage, Relation,
};
pub use config::Config;
pub use document::{Chunk, Document, Lang, NewChunk, NewDocument, Span};
pub use error::{Error, ErrorKind, Result};
pub use ids::{ChunkId, DocId, Seq};
pub use origin::{MAX_UPLOAD_NAME_BYTES, Origin, OriginKind};
pub use seams::{
    Candidate, Catalog, ChatRole, ChatTurn, DerivedIndex, DerivedIndexes, DocQuery, DocumentStore,
    Embedded, Embedder, GenerateRequest, Generated, Generator, GraphRetriever, IndexBatch,
    IndexedChunk, LexicalIndex, Op, OpKind, Reranker, Scope, TokenCounter, VectorStore,
};
pub use search::{
    BM25, CommunityRef, DENSE, Fusion, GRAPH, Hit, RetrieverScore, SearchFilter, SearchMode,
    SearchRequest, SearchResponse, StageTimes,
};
pub use text::{embed_pieces, pieces};

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The text of a panic payload (`panic!` with a literal or a formatted message), for
/// reporting a caught panic as an error.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}
