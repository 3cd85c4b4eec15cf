//! The shapes of a search: what a caller asks (CLI, REST) and what comes back. Each hit
//! names the exact passage behind it: document, page, byte span, heading path.

use crate::{ChunkId, DocId, Span};
use serde::{Deserialize, Serialize};

/// Which retrievers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    Bm25,
    Dense,
    #[default]
    Hybrid,
}

impl SearchMode {
    pub fn parse(s: &str) -> Option<SearchMode> {
        match s {
            "bm25" => Some(SearchMode::Bm25),
            "dense" => Some(SearchMode::Dense),
            "hybrid" => Some(SearchMode::Hybrid),
            _ => None,
        }
    }
}

/// How hybrid mode merges the ranked lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// Reciprocal rank fusion: sum of 1 / (k + rank).
    #[default]
    Rrf,
    /// Weighted sum of min-max normalised scores.
    Weighted,
}

/// Restricts a search to some documents. The caller's principal is applied on top.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchFilter {
    #[serde(default)]
    pub doc_ids: Option<Vec<DocId>>,
    #[serde(default)]
    pub source_prefix: Option<String>,
}

/// A search request as the API and CLI take it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    pub query: String,
    #[serde(default)]
    pub top_k: Option<usize>,
    #[serde(default)]
    pub mode: SearchMode,
    #[serde(default)]
    pub filter: SearchFilter,
    /// Rerank the fused candidates with the reranker; `None`: the configured default.
    #[serde(default)]
    pub rerank: Option<bool>,
    /// Which reranker (its configured name); `None`: the default one.
    #[serde(default)]
    pub reranker: Option<String>,
}

impl SearchRequest {
    /// A request for `query` with every option at its default.
    pub fn new(query: impl Into<String>) -> Self {
        SearchRequest {
            query: query.into(),
            top_k: None,
            mode: SearchMode::default(),
            filter: SearchFilter::default(),
            rerank: None,
            reranker: None,
        }
    }
}

/// One retriever's view of a hit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RetrieverScore {
    /// 1-based rank in that retriever's list.
    pub rank: usize,
    pub score: f32,
}

/// A passage that answers the query, with everything a citation needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Hit {
    pub chunk_id: ChunkId,
    pub doc_id: DocId,
    pub title: String,
    pub source: String,
    pub page: u32,
    pub span: Span,
    pub heading_path: Vec<String>,
    pub text: String,
    /// The fused score (or the single retriever's score outside hybrid mode).
    pub score: f32,
    pub bm25: Option<RetrieverScore>,
    pub dense: Option<RetrieverScore>,
    /// The reranker's view, when the results were reranked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerank: Option<RetrieverScore>,
}

/// Milliseconds spent per stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StageTimes {
    pub embed: f64,
    pub bm25: f64,
    pub dense: f64,
    pub fuse: f64,
    pub hydrate: f64,
    /// Scoring the candidates with the reranker (0 when not reranked).
    pub rerank: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SearchResponse {
    pub results: Vec<Hit>,
    pub took_ms: f64,
    pub stages: StageTimes,
}
