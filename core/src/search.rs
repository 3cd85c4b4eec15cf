//! The shapes of a search: what a caller asks (CLI, REST) and what comes back. Each hit
//! names the exact passage behind it: document, page, byte span, heading path.

use crate::{ChunkId, DocId, Span};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which retrievers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    Bm25,
    Dense,
    #[default]
    Hybrid,
    /// Personalized PageRank over the caller's concept graph, seeded by the question's
    /// concepts and the hybrid hits: the chunks the walk reaches most.
    Graph,
    /// The graph's candidates fused with BM25 and dense.
    Mix,
    /// For corpus-wide questions ("what are the main topics"): the caller's top-level
    /// communities ranked by the hybrid hits they hold (then by size), one passage each,
    /// so the answer spans the corpus rather than one corner of it.
    Global,
}

impl SearchMode {
    pub fn parse(s: &str) -> Option<SearchMode> {
        match s {
            "bm25" => Some(SearchMode::Bm25),
            "dense" => Some(SearchMode::Dense),
            "hybrid" => Some(SearchMode::Hybrid),
            "graph" => Some(SearchMode::Graph),
            "mix" => Some(SearchMode::Mix),
            "global" => Some(SearchMode::Global),
            _ => None,
        }
    }

    /// The retrievers whose candidate lists this mode fuses, by name ([`BM25`], [`DENSE`],
    /// [`GRAPH`]), in this order. The graph retriever is seeded by BM25 and dense, which
    /// then run even when their lists are not fused (`graph` mode).
    pub fn retrievers(self) -> &'static [&'static str] {
        match self {
            SearchMode::Bm25 => &[BM25],
            SearchMode::Dense => &[DENSE],
            SearchMode::Hybrid => &[BM25, DENSE],
            SearchMode::Graph => &[GRAPH],
            SearchMode::Mix => &[BM25, DENSE, GRAPH],
            SearchMode::Global => &[GRAPH],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SearchMode::Bm25 => "bm25",
            SearchMode::Dense => "dense",
            SearchMode::Hybrid => "hybrid",
            SearchMode::Graph => "graph",
            SearchMode::Mix => "mix",
            SearchMode::Global => "global",
        }
    }
}

/// The lexical retriever's name: in [`Hit::retrievers`], [`StageTimes::retrievers`] and
/// metrics.
pub const BM25: &str = "bm25";
/// The dense (vector) retriever's name.
pub const DENSE: &str = "dense";
/// The graph retriever's name (personalized PageRank over the concept graph).
pub const GRAPH: &str = "graph";

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
    /// The fused score (or the single retriever's score when one retriever ran).
    pub score: f32,
    /// Each retriever that listed this passage, by name (`bm25`, `dense`): its rank and
    /// score there. In JSON, one field per retriever beside the others.
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, RetrieverScore>)]
    pub retrievers: BTreeMap<String, RetrieverScore>,
    /// The reranker's view, when the results were reranked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerank: Option<RetrieverScore>,
    /// The community this passage stands for (`global` mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community: Option<CommunityRef>,
}

/// A community named by a hit: its id and title (its three main concepts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommunityRef {
    pub id: String,
    pub title: String,
}

impl Hit {
    /// Where the retriever named `name` ranked this passage, if it listed it.
    pub fn retriever(&self, name: &str) -> Option<RetrieverScore> {
        self.retrievers.get(name).copied()
    }

    /// The dense retriever's view: its cosine similarity is the closeness of the passage to
    /// the question.
    pub fn dense(&self) -> Option<RetrieverScore> {
        self.retriever(DENSE)
    }
}

/// Milliseconds spent per stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StageTimes {
    /// Embedding the question (0 when no retriever needed its vector).
    pub embed: f64,
    /// Each retriever that ran, by name (`bm25`, `dense`). In JSON, one field per
    /// retriever beside the others.
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, f64>)]
    pub retrievers: BTreeMap<String, f64>,
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
