//! `cairn-retrieve`: the query plan. A question becomes candidates from BM25 and from the
//! dense index (in parallel), scoped to what the caller may read *inside* each index, then
//! fused, read back from the catalog as [`Hit`]s that cite document, page and span, and
//! (when asked) reranked by a model that reads query and passage together.
//! It names no concrete backend: it works over the seam traits of `cairn-core`.
//!
//! ```no_run
//! # async fn demo(r: cairn_retrieve::Retriever) -> cairn_core::Result<()> {
//! use cairn_core::{Principal, SearchRequest, SearchMode, SearchFilter};
//! let req = SearchRequest { top_k: Some(5), ..SearchRequest::new("how do I rotate the VPN key?") };
//! let resp = r.search(&req, &Principal::default()).await?;
//! for hit in resp.results { println!("{} p.{} {:?}", hit.title, hit.page, hit.span); }
//! # Ok(()) }
//! ```

mod error;
pub mod fuse;

pub use error::RetrieveError;

use cairn_core::{
    BM25, Candidate, Catalog, ChunkId, CommunityList, CommunityRef, CommunityReport, ConceptDetail,
    ConceptList, DENSE, DerivedIndexes, DocId, DocQuery, Embedder, Fusion, GRAPH, Hit, Passage,
    Principal, Reranker, Result, RetrieverScore, Scope, SearchMode, SearchRequest, SearchResponse,
    StageTimes,
    config::{RerankConfig, RetrieveConfig},
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// The document with this id if it exists and `principal` may read it; `NotFound`
/// otherwise, so a caller cannot tell a hidden document from a missing one.
pub async fn visible_document(
    catalog: &dyn Catalog,
    id: &str,
    principal: &Principal,
) -> Result<cairn_core::Document> {
    match catalog.get_document(&DocId(id.to_string())).await? {
        Some(d) if d.acl.allows(principal) => Ok(d),
        _ => Err(cairn_core::Error::not_found(format!(
            "no document with id {id}"
        ))),
    }
}

/// The deepest community level a caller may ask for (the graph's own depth is at most
/// this; deeper asks are a mistake, not an empty list).
pub const MAX_COMMUNITY_LEVEL: usize = 8;

/// `global` mode's list, the query's vector, and the community each listed chunk stands
/// for.
type GlobalCandidates = (
    Vec<Candidate>,
    Option<Vec<f32>>,
    HashMap<ChunkId, CommunityRef>,
);

/// Runs searches over a catalog and the indexes derived from it.
#[derive(Clone)]
pub struct Retriever {
    catalog: Arc<dyn Catalog>,
    /// Shared with the store: every derived index bounds what a search sees.
    indexes: DerivedIndexes,
    embedder: Arc<dyn Embedder>,
    config: RetrieveConfig,
    max_query_chars: usize,
    /// The configured reranker (by its configured name) and the reranking policy.
    reranker: Option<(String, Arc<dyn Reranker>)>,
    rerank: RerankConfig,
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

impl Retriever {
    pub fn new(
        catalog: Arc<dyn Catalog>,
        indexes: DerivedIndexes,
        embedder: Arc<dyn Embedder>,
        config: RetrieveConfig,
        max_query_chars: usize,
    ) -> Self {
        Retriever {
            catalog,
            indexes,
            embedder,
            config,
            max_query_chars,
            reranker: None,
            rerank: RerankConfig::default(),
        }
    }

    /// The embedder that reads queries (and the chunks of the index).
    pub fn embedder(&self) -> Arc<dyn Embedder> {
        self.embedder.clone()
    }

    /// Adds a reranker, known by `name` (its configured model name), and the policy that
    /// uses it; `config.enabled` reranks requests that do not say.
    pub fn with_reranker(
        mut self,
        name: String,
        reranker: Option<Arc<dyn Reranker>>,
        config: RerankConfig,
    ) -> Self {
        self.reranker = reranker.map(|r| (name, r));
        self.rerank = config;
        self
    }

    /// The loaded reranker's model id, if one is loaded.
    pub fn reranker_name(&self) -> Option<&str> {
        self.reranker.as_ref().map(|(_, r)| r.model_id())
    }

    /// The reranker a request asks for, if it asks for one (or the default says so).
    fn reranker_for(&self, req: &SearchRequest) -> Result<Option<&Arc<dyn Reranker>>> {
        let wanted = req
            .rerank
            .unwrap_or(self.rerank.enabled || req.reranker.is_some());
        if !wanted {
            return Ok(None);
        }
        let Some((configured, reranker)) = &self.reranker else {
            return Err(RetrieveError::NoReranker.into());
        };
        match &req.reranker {
            Some(name) if name != configured => Err(RetrieveError::UnknownReranker {
                name: name.clone(),
                configured: configured.clone(),
            }
            .into()),
            _ => Ok(Some(reranker)),
        }
    }

    /// Checks a request; the errors are the caller's to fix.
    pub fn validate(&self, req: &SearchRequest) -> Result<usize> {
        let query = req.query.trim();
        if query.is_empty() {
            return Err(RetrieveError::EmptyQuery.into());
        }
        let len = query.chars().count();
        if len > self.max_query_chars {
            return Err(RetrieveError::QueryTooLong {
                len,
                max: self.max_query_chars,
            }
            .into());
        }
        let top_k = req.top_k.unwrap_or(self.config.default_top_k);
        if top_k == 0 || top_k > self.config.max_top_k {
            return Err(RetrieveError::BadTopK {
                got: top_k,
                max: self.config.max_top_k,
            }
            .into());
        }
        Ok(top_k)
    }

    /// The newest catalog write that every index has applied: hits are limited to it, so a
    /// document is never half visible.
    pub fn visible_seq(&self) -> cairn_core::Seq {
        self.indexes.visible_seq()
    }

    /// Each derived index's name, live chunk count and the catalog write it has applied
    /// (for metrics and readiness).
    pub fn indexes(&self) -> Vec<(&'static str, usize, cairn_core::Seq)> {
        self.indexes
            .all()
            .map(|i| (i.name(), i.live_count(), i.applied_seq()))
            .collect()
    }

    /// The catalog's newest write.
    pub async fn catalog_seq(&self) -> Result<cairn_core::Seq> {
        self.catalog.last_seq().await
    }

    /// Resolves the request's filter into the document ids a search may touch
    /// (`None`: no restriction beyond the principal).
    async fn resolve_doc_ids(
        &self,
        req: &SearchRequest,
        principal: &Principal,
    ) -> Result<Option<Vec<DocId>>> {
        let mut ids = req.filter.doc_ids.clone();
        if let Some(prefix) = &req.filter.source_prefix {
            let q = DocQuery {
                principal: Some(principal.clone()),
                source_prefix: Some(prefix.clone()),
                ..DocQuery::default()
            };
            let under: Vec<DocId> = self
                .catalog
                .list_documents(&q)
                .await?
                .into_iter()
                .map(|d| d.id)
                .collect();
            ids = Some(match ids {
                Some(given) => given.into_iter().filter(|id| under.contains(id)).collect(),
                None => under,
            });
        }
        Ok(ids)
    }

    /// Whether `query` is in a language that keeps the fused order (`[rerank] skip_langs`).
    fn skips_reranking(&self, query: &str) -> bool {
        let lang = cairn_core::Lang::detect(query);
        self.rerank.skip_langs.iter().any(|l| l == lang.as_str())
    }

    /// The weight of BM25 in the fusion of `query`: the one set for its language, else the
    /// general one, clamped to 0..=1.
    fn bm25_weight(&self, query: &str) -> f32 {
        let lang = cairn_core::Lang::detect(query);
        self.config
            .lang_bm25_weight
            .get(lang.as_str())
            .copied()
            .unwrap_or(self.config.bm25_weight)
            .clamp(0.0, 1.0)
    }

    pub async fn search(
        &self,
        req: &SearchRequest,
        principal: &Principal,
    ) -> Result<SearchResponse> {
        Ok(self.search_embedded(req, principal).await?.0)
    }

    /// [`Retriever::search`], also returning the query's embedding when the dense
    /// retriever ran (hybrid and dense modes), so that answering does not embed the
    /// question again.
    pub async fn search_embedded(
        &self,
        req: &SearchRequest,
        principal: &Principal,
    ) -> Result<(SearchResponse, Option<Vec<f32>>)> {
        let started = Instant::now();
        let top_k = self.validate(req)?;
        let query = req.query.trim();
        let reranker = self
            .reranker_for(req)?
            .filter(|_| !self.skips_reranking(query));
        let mut stages = StageTimes::default();
        let doc_ids = self.resolve_doc_ids(req, principal).await?;
        if doc_ids.as_ref().is_some_and(|ids| ids.is_empty()) {
            let empty = SearchResponse {
                results: Vec::new(),
                took_ms: ms(started),
                stages,
            };
            return Ok((empty, None));
        }
        let scope = Scope {
            principal: principal.clone(),
            doc_ids,
            max_seq: self.visible_seq(),
        };
        // Reranking reads more fused candidates than it returns.
        let keep = match reranker {
            Some(_) => self.rerank.candidates.max(top_k),
            None => top_k,
        };
        let depth = self.config.candidates.max(keep);
        let names = req.mode.retrievers();
        let (lists, query_vector, communities) = if req.mode == SearchMode::Global {
            let (list, vector, communities) = self
                .global_candidates(query, depth, keep, &scope, &mut stages)
                .await?;
            (vec![list], vector, communities)
        } else {
            let (lists, vector) = self
                .candidates(query, names, depth, &scope, &mut stages)
                .await?;
            (lists, vector, HashMap::new())
        };

        let t = Instant::now();
        let lists: Vec<&[Candidate]> = lists.iter().map(Vec::as_slice).collect();
        let mut fused = match (lists.len(), self.config.fusion) {
            // One retriever: keep its own order and scores.
            (1, _) => fuse::rrf(&lists, self.config.rrf_k)
                .into_iter()
                .map(|mut f| {
                    f.score = f.sources[0].map_or(0.0, |s| s.1);
                    f
                })
                .collect(),
            (_, Fusion::Weighted) => fuse::weighted(&lists, &self.weights(query, names, 1.0)),
            (_, Fusion::Rrf) => fuse::rrf_weighted(
                &lists,
                self.config.rrf_k,
                &self.weights(query, names, names.len() as f32),
            ),
        };
        fused.truncate(keep);
        stages.fuse = ms(t);

        let t = Instant::now();
        let mut results = self.hydrate(fused, names, principal).await?;
        for hit in &mut results {
            hit.community = communities.get(&hit.chunk_id).cloned();
        }
        stages.hydrate = ms(t);

        if let Some(reranker) = reranker {
            let t = Instant::now();
            let policy = cairn_rerank::Policy {
                min_score: self.rerank.min_score,
                mmr_lambda: self.rerank.mmr_lambda,
                fused_weight: self.rerank.fused_weight,
            };
            // The first `candidates` are reranked; any further ones (top_k above it) follow
            // in fused order.
            let rest = results.split_off(self.rerank.candidates.min(results.len()));
            results = cairn_rerank::rerank(
                &**reranker,
                query,
                query_vector.as_deref(),
                results,
                top_k,
                &policy,
            )
            .await?;
            let room = top_k.saturating_sub(results.len());
            results.extend(rest.into_iter().take(room));
            stages.rerank = ms(t);
        }
        let resp = SearchResponse {
            results,
            took_ms: ms(started),
            stages,
        };
        Ok((resp, query_vector))
    }

    /// Each named retriever's candidates (in the order of `names`), and the query's vector
    /// when a retriever needed it. BM25 and dense run concurrently; the graph, when named,
    /// runs after them, seeded by their fused top hits (they run for it even when their
    /// own lists are not asked for). Each retriever's time goes into `stages` under its
    /// name.
    async fn candidates(
        &self,
        query: &str,
        names: &[&str],
        depth: usize,
        scope: &Scope,
        stages: &mut StageTimes,
    ) -> Result<(Vec<Vec<Candidate>>, Option<Vec<f32>>)> {
        let graph = if names.contains(&GRAPH) {
            Some(self.indexes.graph().ok_or(RetrieveError::NoGraph)?.clone())
        } else {
            None
        };
        let mut first: Vec<&str> = names.iter().copied().filter(|&n| n != GRAPH).collect();
        if graph.is_some() {
            for seed in [BM25, DENSE] {
                if !first.contains(&seed) {
                    first.push(seed);
                }
            }
        }
        // Each retriever runs concurrently with the others; the dense one embeds the
        // question first (BM25 does not wait for it).
        let runs = first.iter().map(|&name| async move {
            let t = Instant::now();
            let mut embedded = None;
            let list = match name {
                BM25 => self.indexes.lexical().search(query, depth, scope).await?,
                DENSE => {
                    let vector = self.embed_query(query).await?;
                    let embed_ms = ms(t);
                    let list = self.indexes.vectors().search(&vector, depth, scope).await?;
                    embedded = Some((vector, embed_ms));
                    list
                }
                other => {
                    return Err(cairn_core::Error::internal(format!(
                        "no retriever named {other}"
                    )));
                }
            };
            Ok::<_, cairn_core::Error>((list, ms(t), embedded))
        });
        let mut found: HashMap<&str, Vec<Candidate>> = HashMap::new();
        let mut vector = None;
        for (name, run) in first.iter().zip(futures::future::join_all(runs).await) {
            let (list, mut took, embedded) = run?;
            if let Some((v, embed_ms)) = embedded {
                stages.embed = embed_ms;
                took -= embed_ms;
                vector = Some(v);
            }
            stages.retrievers.insert(name.to_string(), took);
            found.insert(name, list);
        }
        if let Some(graph) = graph {
            let t = Instant::now();
            let lists: Vec<&[Candidate]> =
                [BM25, DENSE].iter().map(|n| found[n].as_slice()).collect();
            let mut seeds = self.hybrid_seeds(query, &lists);
            seeds.truncate(self.config.graph_seeds);
            let list = graph.search(query, &seeds, depth, scope).await?;
            stages.retrievers.insert(GRAPH.to_string(), ms(t));
            found.insert(GRAPH, list);
        }
        let lists = names
            .iter()
            .map(|n| found.remove(n).unwrap_or_default())
            .collect();
        Ok((lists, vector))
    }

    /// BM25's and dense's lists fused as hybrid mode fuses them: the graph's seeds.
    fn hybrid_seeds(&self, query: &str, lists: &[&[Candidate]]) -> Vec<Candidate> {
        let hybrid = [BM25, DENSE];
        let weights = self.weights(query, &hybrid, hybrid.len() as f32);
        fuse::rrf_weighted(lists, self.config.rrf_k, &weights)
            .into_iter()
            .map(|f| Candidate {
                chunk_id: f.chunk_id,
                score: f.score,
            })
            .collect()
    }

    /// `global` mode's one list: a passage for each of the caller's top-level communities
    /// the hybrid candidates (all `depth` of them) and the question's concepts rank first,
    /// at most `k`, with the community each stands for.
    async fn global_candidates(
        &self,
        query: &str,
        depth: usize,
        k: usize,
        scope: &Scope,
        stages: &mut StageTimes,
    ) -> Result<GlobalCandidates> {
        let graph = self.indexes.graph().ok_or(RetrieveError::NoGraph)?.clone();
        let (lists, vector) = self
            .candidates(query, &[BM25, DENSE], depth, scope, stages)
            .await?;
        let t = Instant::now();
        let lists: Vec<&[Candidate]> = lists.iter().map(Vec::as_slice).collect();
        let seeds = self.hybrid_seeds(query, &lists);
        let ranked = graph.global(query, &seeds, k, scope).await?;
        stages.retrievers.insert(GRAPH.to_string(), ms(t));
        let mut communities = HashMap::new();
        let mut list = Vec::with_capacity(ranked.len());
        for (candidate, community) in ranked {
            communities.insert(candidate.chunk_id, community);
            list.push(candidate);
        }
        Ok((list, vector, communities))
    }

    /// The caller's graph (assembled from the chunks they may read): its size and the
    /// concepts whose name contains `filter` (all when empty) and that `chunk` mentions
    /// (when given), most mentioned first, at most `limit` (default `[retrieve]
    /// default_top_k` × 2).
    pub async fn graph_concepts(
        &self,
        filter: &str,
        chunk: Option<ChunkId>,
        limit: Option<usize>,
        principal: &Principal,
    ) -> Result<ConceptList> {
        let graph = self.indexes.graph().ok_or(RetrieveError::NoGraph)?;
        self.check_graph_text(filter, "filter")?;
        let limit = self.graph_limit(limit)?;
        graph
            .concepts(filter, chunk, limit, &self.reader_scope(principal))
            .await
    }

    /// One concept of the caller's graph, its strongest neighbours and the passages that
    /// give each its evidence. `NotFound` when the caller's graph has no such concept
    /// (whether or not another caller's has).
    pub async fn graph_concept(
        &self,
        key: &str,
        limit: Option<usize>,
        principal: &Principal,
    ) -> Result<ConceptDetail> {
        let graph = self.indexes.graph().ok_or(RetrieveError::NoGraph)?;
        self.check_graph_text(key, "concept")?;
        if key.trim().is_empty() {
            return Err(cairn_core::Error::user("name a concept"));
        }
        let limit = self.graph_limit(limit)?;
        let Some(neighbourhood) = graph
            .neighbourhood(key, limit, &self.reader_scope(principal))
            .await?
        else {
            return Err(cairn_core::Error::not_found(format!(
                "no concept {:?} in the documents you may read",
                key.trim()
            )));
        };
        let ids = neighbourhood
            .chunks
            .iter()
            .chain(neighbourhood.neighbours.iter().flat_map(|n| &n.evidence))
            .copied();
        let passages = self.passages(ids, principal).await?;
        Ok(ConceptDetail {
            neighbourhood,
            passages,
        })
    }

    /// The communities of the caller's graph at `level` (0, the top, by default) that hold
    /// a concept whose name contains `filter`, the most chunks first, at most `limit`.
    pub async fn graph_communities(
        &self,
        filter: &str,
        level: Option<usize>,
        limit: Option<usize>,
        principal: &Principal,
    ) -> Result<CommunityList> {
        let graph = self.indexes.graph().ok_or(RetrieveError::NoGraph)?;
        self.check_graph_text(filter, "filter")?;
        let limit = self.graph_limit(limit)?;
        let level = level.unwrap_or(0);
        if level > MAX_COMMUNITY_LEVEL {
            return Err(cairn_core::Error::user(format!(
                "no level {level}: levels go from 0 (the top) to {MAX_COMMUNITY_LEVEL}"
            )));
        }
        graph
            .communities(filter, level, limit, &self.reader_scope(principal))
            .await
    }

    /// One community of the caller's graph with the passages behind its report.
    /// `NotFound` when the caller's graph has no such community.
    pub async fn graph_community(
        &self,
        id: &str,
        limit: Option<usize>,
        principal: &Principal,
    ) -> Result<CommunityReport> {
        let graph = self.indexes.graph().ok_or(RetrieveError::NoGraph)?;
        self.check_graph_text(id, "community")?;
        let limit = self.graph_limit(limit)?;
        let Some(community) = graph
            .community(id, limit, &self.reader_scope(principal))
            .await?
        else {
            return Err(cairn_core::Error::not_found(format!(
                "no community {:?} in the documents you may read",
                id.trim()
            )));
        };
        let ids = community
            .representative
            .iter()
            .chain(community.relations.iter().flat_map(|r| &r.evidence))
            .copied();
        let passages = self.passages(ids, principal).await?;
        Ok(CommunityReport {
            community,
            passages,
        })
    }

    /// The passages of these chunks that `principal` may read, by id.
    async fn passages(
        &self,
        ids: impl Iterator<Item = ChunkId>,
        principal: &Principal,
    ) -> Result<Vec<Passage>> {
        let mut ids: Vec<ChunkId> = ids.collect();
        ids.sort();
        ids.dedup();
        let fused = ids
            .into_iter()
            .map(|chunk_id| fuse::Fused {
                chunk_id,
                score: 0.0,
                sources: Default::default(),
            })
            .collect();
        Ok(self
            .hydrate(fused, &[], principal)
            .await?
            .into_iter()
            .map(|h| Passage {
                chunk_id: h.chunk_id,
                doc_id: h.doc_id,
                title: h.title,
                source: h.source,
                page: h.page,
                span: h.span,
                heading_path: h.heading_path,
                text: h.text,
            })
            .collect())
    }

    /// Every chunk `principal` may read, up to what every index has applied.
    fn reader_scope(&self, principal: &Principal) -> Scope {
        Scope {
            principal: principal.clone(),
            doc_ids: None,
            max_seq: self.visible_seq(),
        }
    }

    fn check_graph_text(&self, text: &str, what: &str) -> Result<()> {
        let len = text.chars().count();
        if len > self.max_query_chars {
            return Err(cairn_core::Error::user(format!(
                "the {what} is too long: {len} characters (the limit is {})",
                self.max_query_chars
            )));
        }
        Ok(())
    }

    fn graph_limit(&self, limit: Option<usize>) -> Result<usize> {
        let limit = limit.unwrap_or(2 * self.config.default_top_k);
        if limit == 0 || limit > self.config.max_top_k {
            return Err(RetrieveError::BadLimit {
                got: limit,
                max: self.config.max_top_k,
            }
            .into());
        }
        Ok(limit)
    }

    /// The question's embedding, checked against the embedder's dimensions.
    async fn embed_query(&self, query: &str) -> Result<Vec<f32>> {
        let embedded = self.embedder.embed(vec![query.to_string()]).await?;
        let vector = embedded.vectors.into_iter().next().unwrap_or_default();
        if vector.len() != self.embedder.dims() {
            let err = RetrieveError::Dims {
                got: vector.len(),
                want: self.embedder.dims(),
            };
            return Err(err.into());
        }
        Ok(vector)
    }

    /// The weight of each named retriever in the fusion of `query`, summing to `total`:
    /// BM25 gets [`Retriever::bm25_weight`]'s share of 1 beside the dense retriever, the
    /// graph `[retrieve] graph_weight` beside those two.
    fn weights(&self, query: &str, names: &[&str], total: f32) -> Vec<f32> {
        let w = self.bm25_weight(query);
        let raw: Vec<f32> = names
            .iter()
            .map(|&n| match n {
                BM25 => w,
                DENSE => 1.0 - w,
                GRAPH => self.config.graph_weight.max(0.0),
                _ => 0.5,
            })
            .collect();
        let sum: f32 = raw.iter().sum();
        if sum <= 0.0 {
            return vec![total / names.len().max(1) as f32; names.len()];
        }
        raw.iter().map(|r| r * total / sum).collect()
    }

    /// Reads the fused chunks back from the catalog, in fused order. A chunk deleted since
    /// the indexes answered is dropped; the ACL is checked again as a safety net.
    async fn hydrate(
        &self,
        fused: Vec<fuse::Fused>,
        names: &[&str],
        principal: &Principal,
    ) -> Result<Vec<Hit>> {
        let ids: Vec<_> = fused.iter().map(|f| f.chunk_id).collect();
        let chunks: HashMap<_, _> = self
            .catalog
            .get_chunks(&ids)
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
        let mut doc_ids: Vec<DocId> = chunks.values().map(|c| c.doc_id.clone()).collect();
        doc_ids.sort();
        doc_ids.dedup();
        let docs: HashMap<_, _> = self
            .catalog
            .get_documents(&doc_ids)
            .await?
            .into_iter()
            .map(|d| (d.id.clone(), d))
            .collect();
        Ok(fused
            .into_iter()
            .filter_map(|f| {
                let chunk = chunks.get(&f.chunk_id)?;
                let doc = docs.get(&chunk.doc_id)?;
                if !doc.acl.allows(principal) {
                    tracing::error!(
                        chunk = chunk.id.0,
                        "an index returned a chunk outside the caller's scope"
                    );
                    return None;
                }
                Some(Hit {
                    chunk_id: chunk.id,
                    doc_id: doc.id.clone(),
                    title: doc.title.clone(),
                    source: doc.source().to_string(),
                    page: chunk.page,
                    span: chunk.span,
                    heading_path: chunk.heading_path.clone(),
                    text: chunk.text.clone(),
                    score: f.score,
                    retrievers: names
                        .iter()
                        .zip(&f.sources)
                        .filter_map(|(name, s)| {
                            let (rank, score) = (*s)?;
                            Some((name.to_string(), RetrieverScore { rank, score }))
                        })
                        .collect(),
                    rerank: None,
                    community: None,
                })
            })
            .collect())
    }
}
