//! The seams between crates: small traits held as `Arc<dyn Trait>`. Only the binary and
//! `web` pick concrete implementations.
//!
//! Write path: `ingest` parses and chunks, asks an [`Embedder`] for vectors, and hands the
//! document to a [`DocumentStore`] (the catalog plus its derived indexes, kept consistent by
//! `index`). Read path: `retrieve` asks a [`LexicalIndex`] and a [`VectorStore`] for
//! candidates within a [`Scope`], then reads the chunks back from the [`Catalog`].

use crate::{
    Acl, Chunk, ChunkId, CommunityInfo, CommunityList, CommunityRef, ConceptList, Concepts, DocId,
    Document, Hit, Lang, Neighbourhood, NewChunk, NewDocument, Origin, OriginKind, Principal,
    Result, Seq,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// Counts word pieces the way the embedder will see them.
pub trait TokenCounter: Send + Sync {
    fn count_tokens(&self, text: &str) -> usize;
}

/// Scores how well passages answer a query: a cross-encoder, or an LLM judging relevance.
#[async_trait]
pub trait Reranker: Send + Sync {
    /// Identifies the model and its settings (shown in logs and eval reports).
    fn model_id(&self) -> &str;
    /// One score per passage, in input order; higher is more relevant. Scores of one call
    /// are comparable with each other (and, for a given model, across calls).
    async fn score(&self, query: &str, passages: Vec<String>) -> Result<Vec<f32>>;
    /// Scores search hits: by default [`Reranker::score`] over each hit's section headings
    /// on a line before its text. A reranker that reads something else of a hit (its
    /// stored vectors) overrides this. `query_vector` is the query's embedding when the
    /// search made one (a reranker in the embedder's space need not embed it again).
    async fn score_hits(
        &self,
        query: &str,
        query_vector: Option<&[f32]>,
        hits: &[Hit],
    ) -> Result<Vec<f32>> {
        let _ = query_vector;
        let passages = hits
            .iter()
            .map(|hit| {
                if hit.heading_path.is_empty() {
                    hit.text.clone()
                } else {
                    format!("{}\n{}", hit.heading_path.join(" > "), hit.text)
                }
            })
            .collect();
        self.score(query, passages).await
    }
}

/// Who speaks a turn of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    System,
    User,
    Assistant,
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChatTurn {
    pub role: ChatRole,
    pub content: String,
}

impl ChatTurn {
    pub fn new(role: ChatRole, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// What a [`Generator`] is asked: a conversation to continue, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateRequest {
    pub messages: Vec<ChatTurn>,
    /// The most tokens to generate.
    pub max_tokens: usize,
    /// 0 is greedy.
    pub temperature: f32,
    /// Nucleus sampling: 1 keeps every token.
    pub top_p: f32,
    /// Seed of the sampler (sampling only); `None` draws one.
    pub seed: Option<u64>,
    /// Generation ends before any of these texts.
    pub stop: Vec<String>,
}

impl GenerateRequest {
    /// A greedy request of at most `max_tokens` tokens.
    pub fn new(messages: Vec<ChatTurn>, max_tokens: usize) -> Self {
        Self {
            messages,
            max_tokens,
            temperature: 0.0,
            top_p: 1.0,
            seed: None,
            stop: Vec::new(),
        }
    }
}

/// A finished generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub text: String,
    /// `stop` or `length`.
    pub finish_reason: String,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
}

/// A language model that writes text: the local engine or an OpenAI-compatible server.
#[async_trait]
pub trait Generator: TokenCounter {
    /// Identifies the model (shown in answers and logs).
    fn model_id(&self) -> &str;
    /// Tokens of prompt and answer together that the model can hold.
    fn context_tokens(&self) -> usize;
    /// Generates an answer, handing each piece of text to `on_text` as it comes. Dropping
    /// the future cancels the generation.
    async fn generate(
        &self,
        req: GenerateRequest,
        on_text: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> Result<Generated>;
}

/// Vectors for a batch of texts, in input order.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedded {
    /// L2-normalised vectors, one per input text.
    pub vectors: Vec<Vec<f32>>,
    /// Whether each input was longer than the model's limit and was cut.
    pub truncated: Vec<bool>,
}

/// A text embedding model.
#[async_trait]
pub trait Embedder: TokenCounter {
    /// Identifies the model and its settings; recorded with the index, which refuses to
    /// open with a different one.
    fn model_id(&self) -> &str;
    fn dims(&self) -> usize;
    /// Longest input in word pieces; longer input is truncated (and reported).
    fn max_tokens(&self) -> usize;
    async fn embed(&self, texts: Vec<String>) -> Result<Embedded>;
}

/// One catalog write, in sequence order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub seq: Seq,
    pub doc_id: DocId,
    pub kind: OpKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// A new version of the document replaced all its chunks.
    Upsert,
    /// The document and its chunks were removed.
    Delete,
}

/// Which documents to list.
#[derive(Debug, Clone, Default)]
pub struct DocQuery {
    /// Only documents this principal may read; `None` lists every tenant (admin tools).
    pub principal: Option<Principal>,
    /// Only documents of this origin.
    pub origin: Option<OriginKind>,
    pub source_prefix: Option<String>,
    pub limit: Option<usize>,
}

/// The catalog: the source of truth. Every write gets the next sequence number.
#[async_trait]
pub trait Catalog: Send + Sync {
    /// The live document of `tenant` that came from `origin`, if any.
    async fn find_by_origin(&self, tenant: &str, origin: &Origin) -> Result<Option<Document>>;
    /// Stores a new version of the document at `(acl.tenant, origin)` (or its first one):
    /// replaces all its chunks and appends an [`OpKind::Upsert`] op, in one transaction.
    async fn put_document(&self, doc: NewDocument, chunks: Vec<NewChunk>) -> Result<Document>;
    /// Removes a document and its chunks and appends an [`OpKind::Delete`] op.
    /// `NotFound` if there is no such document.
    async fn delete_document(&self, id: &DocId) -> Result<Seq>;
    async fn get_document(&self, id: &DocId) -> Result<Option<Document>>;
    async fn get_documents(&self, ids: &[DocId]) -> Result<Vec<Document>>;
    async fn list_documents(&self, q: &DocQuery) -> Result<Vec<Document>>;
    /// The chunks of a document, in ordinal order.
    async fn chunks_of(&self, id: &DocId) -> Result<Vec<Chunk>>;
    /// The chunks with these ids that still exist (order not guaranteed).
    async fn get_chunks(&self, ids: &[ChunkId]) -> Result<Vec<Chunk>>;
    /// The chunks of a document with their embeddings, for (re)building derived indexes.
    async fn chunks_with_embeddings(&self, id: &DocId) -> Result<Vec<(Chunk, Vec<f32>)>>;
    /// The stored piece vectors ([`NewChunk::pieces`]) of those of `ids` that have them.
    /// A catalog that stores none returns an empty map (the default).
    async fn piece_vectors(&self, ids: &[ChunkId]) -> Result<HashMap<ChunkId, Vec<f32>>> {
        let _ = ids;
        Ok(HashMap::new())
    }
    /// The concepts stored with those of `ids` that have any ([`NewChunk::concepts`]). A
    /// catalog that stores none returns an empty map (the default).
    async fn concepts(&self, ids: &[ChunkId]) -> Result<HashMap<ChunkId, Concepts>> {
        let _ = ids;
        Ok(HashMap::new())
    }
    /// Ops with `seq > after`, ascending, at most `limit`.
    async fn ops_since(&self, after: Seq, limit: usize) -> Result<Vec<Op>>;
    async fn last_seq(&self) -> Result<Seq>;
    /// Every chunk id in the catalog, ascending (consistency checks).
    async fn chunk_ids(&self) -> Result<Vec<ChunkId>>;
    /// Settings persisted with the index (embedding model id, dims, chunker version).
    async fn meta_get(&self, key: &str) -> Result<Option<String>>;
    async fn meta_set(&self, key: &str, value: &str) -> Result<()>;
}

/// A chunk as a derived index stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedChunk {
    pub chunk_id: ChunkId,
    pub doc_id: DocId,
    /// The catalog write that made this chunk.
    pub seq: Seq,
    pub acl: Acl,
    pub lang: Lang,
    /// Text for lexical analysis: title, headings and chunk text.
    pub text: String,
    pub embedding: Vec<f32>,
    /// The concepts the chunk mentions ([`NewChunk::concepts`]), for the graph; empty
    /// unless an index [`reads_concepts`](DerivedIndex::reads_concepts).
    pub concepts: Concepts,
}

/// A batch of changes to apply to a derived index, ending at catalog write `up_to`.
#[derive(Debug, Clone, Default)]
pub struct IndexBatch {
    pub up_to: Seq,
    /// Documents whose chunks must all be removed (applied before `add`).
    pub remove_docs: Vec<DocId>,
    pub add: Vec<IndexedChunk>,
}

/// An index derived from the catalog (lexical, vector). It can be rebuilt from the catalog
/// at any time and says which catalog write it reflects.
#[async_trait]
pub trait DerivedIndex: Send + Sync {
    fn name(&self) -> &'static str;
    /// The last catalog write applied (in memory, visible to `search`).
    fn applied_seq(&self) -> Seq;
    /// Applies a batch in order (removals, then additions) and records `batch.up_to`.
    async fn apply(&self, batch: IndexBatch) -> Result<()>;
    /// Makes everything applied so far durable. After a crash, the index reopens at the
    /// last flushed sequence number and catches up from the catalog.
    async fn flush(&self) -> Result<()>;
    /// Number of live chunks (for consistency checks and stats).
    fn live_count(&self) -> usize;
    /// Every live chunk id, ascending (consistency checks; may be slow on big indexes).
    async fn live_chunk_ids(&self) -> Result<Vec<ChunkId>>;
    /// Whether the index reads [`IndexedChunk::concepts`] (the graph). The store reads
    /// them from the catalog only when some index does.
    fn reads_concepts(&self) -> bool {
        false
    }
}

/// What a search may see: the caller's principal, optional document ids, and the newest
/// catalog write every index has applied. Implementations apply it inside the index,
/// before ranking.
#[derive(Debug, Clone)]
pub struct Scope {
    pub principal: Principal,
    /// Only these documents (already resolved from doc ids and source prefixes).
    pub doc_ids: Option<Vec<DocId>>,
    /// Only chunks written at or before this sequence number.
    pub max_seq: Seq,
}

impl Scope {
    /// Whether a chunk with this ACL, document and sequence number is in scope.
    pub fn admits(&self, acl: &Acl, doc_id: &DocId, seq: Seq) -> bool {
        seq <= self.max_seq
            && acl.allows(&self.principal)
            && self.doc_ids.as_ref().is_none_or(|ids| ids.contains(doc_id))
    }
}

/// A retriever's candidate: a chunk and its score (higher is better).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub chunk_id: ChunkId,
    pub score: f32,
}

/// BM25 over chunk text.
#[async_trait]
pub trait LexicalIndex: DerivedIndex {
    /// Top `k` chunks for a free-text query within `scope`, best first.
    async fn search(&self, query: &str, k: usize, scope: &Scope) -> Result<Vec<Candidate>>;
}

/// Nearest neighbours over chunk embeddings.
#[async_trait]
pub trait VectorStore: DerivedIndex {
    /// Top `k` chunks by cosine similarity to `vector` within `scope`, best first.
    async fn search(&self, vector: &[f32], k: usize, scope: &Scope) -> Result<Vec<Candidate>>;
}

/// The concept graph as a retriever: the chunks a walk over the concept graph of the
/// chunks `scope` admits reaches from the question, best first.
#[async_trait]
pub trait GraphRetriever: DerivedIndex {
    /// Top `k` chunks for `query` within `scope`, seeded by the concepts the query mentions
    /// and by `seeds` (other retrievers' candidates, best first).
    async fn search(
        &self,
        query: &str,
        seeds: &[Candidate],
        k: usize,
        scope: &Scope,
    ) -> Result<Vec<Candidate>>;

    /// The concepts of the graph of `scope`'s chunks whose key or an alias contains
    /// `filter` (lower-cased; all when empty) and, when `chunk` is given, that it mentions;
    /// most chunks first, at most `limit`.
    async fn concepts(
        &self,
        filter: &str,
        chunk: Option<ChunkId>,
        limit: usize,
        scope: &Scope,
    ) -> Result<ConceptList>;

    /// The concept named `key` (or an alias) in the graph of `scope`'s chunks, with at most
    /// `limit` chunks and neighbours; `None` when that graph has no such concept.
    async fn neighbourhood(
        &self,
        key: &str,
        limit: usize,
        scope: &Scope,
    ) -> Result<Option<Neighbourhood>>;

    /// The communities of the graph of `scope`'s chunks at `level` (0 is the top) that hold
    /// a concept whose key or an alias contains `filter` (lower-cased; all when empty),
    /// the most chunks first, at most `limit`; each with at most `limit` top concepts,
    /// relations and representative chunks.
    async fn communities(
        &self,
        filter: &str,
        level: usize,
        limit: usize,
        scope: &Scope,
    ) -> Result<CommunityList>;

    /// For a corpus-wide question: the top-level communities of the graph of `scope`'s
    /// chunks, ranked by the `seeds` they hold (other retrievers' candidates, best first)
    /// and the question's concepts, then by size; at most `k`, each with the chunk that
    /// best stands for it (its best seed, else the chunk mentioning most of its concepts).
    async fn global(
        &self,
        query: &str,
        seeds: &[Candidate],
        k: usize,
        scope: &Scope,
    ) -> Result<Vec<(Candidate, CommunityRef)>>;

    /// The community `id` of the graph of `scope`'s chunks; `None` when it has none.
    async fn community(
        &self,
        id: &str,
        limit: usize,
        scope: &Scope,
    ) -> Result<Option<CommunityInfo>>;
}

/// The indexes derived from one catalog, taken together: the retrievers a search asks, and
/// every derived index (those and any other) in the order the store applies writes to
/// them. What a search may see is bounded by [`DerivedIndexes::visible_seq`], the newest
/// write *all* of them have applied, so a document is never half visible, whichever index
/// lags. The store and the query plan share one value of this, so an index added here is
/// caught up by the one and bounds the visibility of the other.
#[derive(Clone)]
pub struct DerivedIndexes {
    lexical: Arc<dyn LexicalIndex>,
    vectors: Arc<dyn VectorStore>,
    graph: Option<Arc<dyn GraphRetriever>>,
    all: Vec<Arc<dyn DerivedIndex>>,
}

impl DerivedIndexes {
    /// The lexical and the vector index.
    pub fn new(lexical: Arc<dyn LexicalIndex>, vectors: Arc<dyn VectorStore>) -> Self {
        let all: Vec<Arc<dyn DerivedIndex>> = vec![lexical.clone(), vectors.clone()];
        DerivedIndexes {
            lexical,
            vectors,
            graph: None,
            all,
        }
    }

    /// Adds the graph: a derived index like the others, and the retriever of the `graph`
    /// and `mix` modes.
    pub fn with_graph(self, graph: Arc<dyn GraphRetriever>) -> Result<Self> {
        let mut with = self.with(graph.clone())?;
        with.graph = Some(graph);
        Ok(with)
    }

    /// Adds another derived index: it follows the catalog like the others and bounds what
    /// searches see. An error when one of the same name is there already.
    pub fn with(mut self, index: Arc<dyn DerivedIndex>) -> Result<Self> {
        if self.all.iter().any(|i| i.name() == index.name()) {
            return Err(crate::Error::internal(format!(
                "a derived index named {} is already in the store",
                index.name()
            )));
        }
        self.all.push(index);
        Ok(self)
    }

    pub fn lexical(&self) -> &Arc<dyn LexicalIndex> {
        &self.lexical
    }

    pub fn vectors(&self) -> &Arc<dyn VectorStore> {
        &self.vectors
    }

    /// The graph retriever, when the store has a graph.
    pub fn graph(&self) -> Option<&Arc<dyn GraphRetriever>> {
        self.graph.as_ref()
    }

    /// Every derived index, in the order writes are applied to them.
    pub fn all(&self) -> impl Iterator<Item = &dyn DerivedIndex> {
        self.all.iter().map(|i| &**i)
    }

    /// The newest catalog write every derived index has applied.
    pub fn visible_seq(&self) -> Seq {
        self.all()
            .map(|i| i.applied_seq())
            .min()
            .unwrap_or_default()
    }
}

impl std::fmt::Debug for DerivedIndexes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for i in self.all() {
            m.entry(&i.name(), &i.applied_seq());
        }
        m.finish()
    }
}

/// The write side that ingest talks to: the catalog plus the indexes derived from it.
#[async_trait]
pub trait DocumentStore: Send + Sync {
    async fn find_by_origin(&self, tenant: &str, origin: &Origin) -> Result<Option<Document>>;
    /// Stores the document in the catalog (acknowledged from here on), then brings every
    /// derived index up to date.
    async fn put_document(&self, doc: NewDocument, chunks: Vec<NewChunk>) -> Result<Document>;
    /// Removes the document from the catalog and every index, and its kept original.
    async fn delete_document(&self, id: &DocId) -> Result<Seq>;
    /// Keeps the original bytes of an uploaded document, so it can be re-indexed later (a
    /// store without room for originals keeps nothing).
    async fn keep_original(&self, _id: &DocId, _bytes: &[u8]) -> Result<()> {
        Ok(())
    }
    /// The kept original of a document, if there is one.
    async fn original(&self, _id: &DocId) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }
}
