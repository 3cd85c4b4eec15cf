//! The concepts a chunk mentions, as the graph's extraction (`cairn-graph`) finds them and
//! the catalog keeps them: with the chunk, in its own transaction, removed with it. The
//! knowledge graph is assembled from these rows, so it can always be rebuilt from the
//! catalog and restricted to the chunks a caller may read.

use crate::{ChunkId, DocId, Span};
use serde::{Deserialize, Serialize};

/// What kind of concept a mention names.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ConceptKind {
    /// Words between phrase boundaries ("logical volume manager").
    Term,
    /// A capitalised word inside a sentence ("Debian").
    Name,
    /// Two or more capitals ("LVM").
    Acronym,
    /// Code, a path, an option or a command.
    Identifier,
    /// A Chinese noun.
    Word,
}

impl ConceptKind {
    pub const ALL: [ConceptKind; 5] = [
        ConceptKind::Term,
        ConceptKind::Name,
        ConceptKind::Acronym,
        ConceptKind::Identifier,
        ConceptKind::Word,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConceptKind::Term => "term",
            ConceptKind::Name => "name",
            ConceptKind::Acronym => "acronym",
            ConceptKind::Identifier => "identifier",
            ConceptKind::Word => "word",
        }
    }

    pub fn parse(s: &str) -> Option<ConceptKind> {
        ConceptKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A concept mentioned in a text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mention {
    /// The concept's normalised form: lower case, a term's last word made singular.
    pub key: String,
    pub kind: ConceptKind,
    /// Byte range of the mention in the chunk's text.
    pub start: usize,
    pub end: usize,
    /// Which sentence of the chunk (0-based) it is in: co-occurrence is counted per sentence.
    pub sentence: u32,
}

/// Evidence that an acronym and a term name one concept ("Logical Volume Manager (LVM)").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merge {
    /// The acronym's key ("lvm").
    pub from: String,
    /// The expansion's key ("logical volume manager").
    pub into: String,
    /// Byte range of the evidence in the chunk's text.
    pub start: usize,
    pub end: usize,
}

/// What a chunk's text gave the graph.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Concepts {
    /// In text order.
    pub mentions: Vec<Mention>,
    pub merges: Vec<Merge>,
    /// The text had more mentions than are kept per chunk; the rest were not read.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl Concepts {
    pub fn is_empty(&self) -> bool {
        self.mentions.is_empty() && self.merges.is_empty()
    }
}

/// A concept of a caller's graph (assembled from the chunks they may read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConceptInfo {
    /// Its normalised name (lower case; an acronym merged into its expansion is an alias).
    pub key: String,
    pub kind: ConceptKind,
    /// Other keys merged into it (acronyms).
    pub aliases: Vec<String>,
    /// Readable chunks that mention it.
    pub chunks: usize,
    pub mentions: usize,
}

/// The size of a caller's graph.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GraphStats {
    /// Readable chunks that mention a concept of the graph.
    pub chunks: usize,
    pub concepts: usize,
    /// Pairs of concepts mentioned together in enough sentences.
    pub edges: usize,
    /// Readable sentences that mention a concept (the population of the edges' PMI).
    pub sentences: usize,
}

/// Concepts of a caller's graph that match a filter, most mentioned first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConceptList {
    pub stats: GraphStats,
    /// How many concepts match (more than listed when over the limit).
    pub total: usize,
    pub concepts: Vec<ConceptInfo>,
}

/// A concept joined to another by the sentences that mention both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Neighbour {
    pub concept: ConceptInfo,
    /// Readable sentences mentioning both.
    pub sentences: usize,
    /// Pointwise mutual information of the two over readable sentences.
    pub pmi: f32,
    /// Chunks with a sentence that mentions both: the edge's evidence.
    pub evidence: Vec<ChunkId>,
}

/// A concept with the chunks that mention it and its strongest neighbours, in a caller's
/// graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Neighbourhood {
    pub concept: ConceptInfo,
    /// Chunks that mention it (the first ones by id).
    pub chunks: Vec<ChunkId>,
    /// Most shared sentences first.
    pub neighbours: Vec<Neighbour>,
}

/// A concept's neighbourhood with the passages behind it: `GET /v1/graph/concepts/{key}`,
/// `cairn graph show`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConceptDetail {
    #[serde(flatten)]
    pub neighbourhood: Neighbourhood,
    /// Every chunk named above (the concept's and its edges' evidence), by id order.
    pub passages: Vec<Passage>,
}

/// A chunk with what a citation needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Passage {
    pub chunk_id: ChunkId,
    pub doc_id: DocId,
    pub title: String,
    pub source: String,
    pub page: u32,
    pub span: Span,
    pub heading_path: Vec<String>,
    pub text: String,
}

/// Two concepts of a community and the sentences that join them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Relation {
    pub a: String,
    pub b: String,
    /// Readable sentences mentioning both.
    pub sentences: usize,
    pub pmi: f32,
    /// Chunks with a sentence that mentions both.
    pub evidence: Vec<ChunkId>,
}

/// A community of a caller's graph (hierarchical Leiden over the concepts' co-occurrence)
/// with its extractive report: its main concepts, the relations between them, and the
/// passages that represent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommunityInfo {
    /// Its place in the hierarchy: "3" at the top, "3.1" inside it (numbered by size).
    /// Ids hold for one state of the graph; a write may renumber them.
    pub id: String,
    /// 0 at the top.
    pub level: usize,
    pub parent: Option<String>,
    /// Communities it splits into, one level down.
    pub children: Vec<String>,
    /// Its three main concepts.
    pub title: String,
    /// Concepts in it.
    pub concepts: usize,
    /// Readable chunks that mention one of its concepts.
    pub chunks: usize,
    /// Its concepts mentioned by the most chunks.
    pub top_concepts: Vec<ConceptInfo>,
    /// Its strongest relations (most shared sentences).
    pub relations: Vec<Relation>,
    /// The chunks that mention the most of its concepts, best first.
    pub representative: Vec<ChunkId>,
}

/// Communities of a caller's graph: `GET /v1/graph/communities`, `cairn graph
/// communities`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommunityList {
    pub stats: GraphStats,
    /// Levels of the hierarchy.
    pub levels: usize,
    /// How many communities match (more than listed when over the limit).
    pub total: usize,
    pub communities: Vec<CommunityInfo>,
}

/// A community's report with the passages behind it: `GET /v1/graph/communities/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommunityReport {
    #[serde(flatten)]
    pub community: CommunityInfo,
    /// Every chunk named above (representative passages and relations' evidence), by id.
    pub passages: Vec<Passage>,
}
