//! The graph as a derived index: it follows the catalog's write log like the lexical and
//! vector indexes (added with `Store::with_index`), holding each live chunk's concepts
//! with its document, ACL and write. Nothing is precomputed across chunks: a caller's
//! graph is assembled from the chunks their scope admits ([`GraphIndex::graph_for`]), so
//! no concept, edge or weight reaches them from a chunk they may not read, and a deleted
//! document is gone from the next graph.
//!
//! It is kept in memory and rebuilt from the catalog when the process starts (its applied
//! write starts at 0, so the store replays the log into it); `flush` has nothing to write.
//!
//! As a retriever ([`GraphRetriever`]), it walks the caller's graph (personalized
//! PageRank, [`Walk`]) from the concepts the question mentions and from the hybrid hits.
//! An assembled graph is kept for reuse, keyed by everything that decides which chunks it
//! holds (the index's state, the visible write, the caller's tenant and groups, the
//! documents the search is narrowed to), so two callers who may read different chunks
//! never share one, and a write retires every graph assembled before it.

use crate::assemble::{Concept, ConceptGraph, Settings, assemble};
use crate::communities::{Communities, Community, CommunitySettings, detect, representative};
use crate::concepts::{extract, sub_keys};
use crate::walk::{Walk, WalkSettings};
use async_trait::async_trait;
use cairn_core::{
    Acl, Candidate, ChunkId, CommunityInfo, CommunityList, CommunityRef, ConceptInfo, ConceptKind,
    ConceptList, Concepts, DerivedIndex, DocId, GraphRetriever, GraphStats, IndexBatch, Lang,
    Neighbour, Neighbourhood, Relation, Result, Scope, Seq,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

/// What the index keeps of a chunk.
#[derive(Debug, Clone)]
struct Entry {
    doc_id: DocId,
    acl: Acl,
    seq: Seq,
    concepts: Concepts,
}

#[derive(Debug, Default)]
struct State {
    chunks: BTreeMap<ChunkId, Entry>,
    applied: Seq,
    /// Bumped by every write applied: a graph assembled at another generation is stale.
    generation: u64,
}

/// What decides which chunks an assembled graph holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CacheKey {
    generation: u64,
    max_seq: Seq,
    tenant: String,
    groups: Vec<String>,
    doc_ids: Option<Vec<DocId>>,
}

impl CacheKey {
    fn new(generation: u64, scope: &Scope) -> CacheKey {
        let mut groups = scope.principal.groups.clone();
        groups.sort();
        groups.dedup();
        let doc_ids = scope.doc_ids.clone().map(|mut ids| {
            ids.sort();
            ids.dedup();
            ids
        });
        CacheKey {
            generation,
            max_seq: scope.max_seq,
            tenant: scope.principal.tenant.clone(),
            groups,
            doc_ids,
        }
    }
}

/// An assembled graph, ready to walk.
#[derive(Debug)]
pub struct Prepared {
    pub graph: ConceptGraph,
    pub walk: Walk,
    /// Found when first asked for.
    communities: OnceLock<Communities>,
}

impl Prepared {
    fn new(graph: ConceptGraph) -> Prepared {
        let walk = Walk::new(&graph);
        Prepared {
            graph,
            walk,
            communities: OnceLock::new(),
        }
    }

    /// The graph's communities, found on the first call.
    pub fn communities(&self, settings: &CommunitySettings) -> &Communities {
        self.communities
            .get_or_init(|| detect(&self.graph, settings))
    }

    fn stats(&self) -> GraphStats {
        GraphStats {
            chunks: self.walk.chunks(),
            concepts: self.graph.concepts.len(),
            edges: self.graph.edges.len(),
            sentences: self.graph.sentences,
        }
    }
}

/// How the graph is assembled and walked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GraphSettings {
    pub assemble: Settings,
    pub walk: WalkSettings,
    pub communities: CommunitySettings,
    /// Assembled graphs kept (least recently used goes first); 0 keeps none.
    pub cache: usize,
}

impl Default for GraphSettings {
    fn default() -> Self {
        GraphSettings {
            assemble: Settings::default(),
            walk: WalkSettings::default(),
            communities: CommunitySettings::default(),
            cache: 8,
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    state: RwLock<State>,
    /// Most recently used first.
    cache: Mutex<Vec<(CacheKey, Arc<Prepared>)>>,
    settings: GraphSettings,
}

/// The concepts of every live chunk, by chunk.
#[derive(Debug, Default, Clone)]
pub struct GraphIndex {
    inner: Arc<Inner>,
}

impl GraphIndex {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_settings(settings: GraphSettings) -> Self {
        GraphIndex {
            inner: Arc::new(Inner {
                settings,
                ..Inner::default()
            }),
        }
    }

    /// The concept graph of the chunks `scope` admits.
    pub fn graph_for(&self, scope: &Scope, settings: &Settings) -> ConceptGraph {
        let state = self.inner.read();
        state.assemble(scope, settings)
    }

    /// The graph of the chunks `scope` admits, assembled with the index's settings, ready
    /// to walk: from the cache when nothing it depends on has changed.
    pub fn prepared(&self, scope: &Scope) -> Arc<Prepared> {
        self.inner.prepared(scope)
    }
}

impl State {
    fn assemble(&self, scope: &Scope, settings: &Settings) -> ConceptGraph {
        assemble(
            self.chunks
                .iter()
                .filter(|(_, e)| scope.admits(&e.acl, &e.doc_id, e.seq))
                .map(|(id, e)| (*id, &e.concepts)),
            settings,
        )
    }
}

impl Inner {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn prepared(&self, scope: &Scope) -> Arc<Prepared> {
        let state = self.read();
        let key = CacheKey::new(state.generation, scope);
        {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(at) = cache.iter().position(|(k, _)| *k == key) {
                let hit = cache.remove(at);
                let prepared = hit.1.clone();
                cache.insert(0, hit);
                return prepared;
            }
        }
        let graph = state.assemble(scope, &self.settings.assemble);
        drop(state);
        let prepared = Arc::new(Prepared::new(graph));
        if self.settings.cache > 0 {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            // Graphs of an older generation can never be asked for again.
            cache.retain(|(k, _)| k.generation == key.generation && *k != key);
            cache.insert(0, (key, prepared.clone()));
            cache.truncate(self.settings.cache);
        }
        prepared
    }

    /// The seeds the caller may read (the other retrievers scoped theirs already; this
    /// index does not rely on it).
    fn admitted(&self, seeds: &[Candidate], scope: &Scope) -> Vec<Candidate> {
        let state = self.read();
        seeds
            .iter()
            .filter(|c| {
                state
                    .chunks
                    .get(&c.chunk_id)
                    .is_some_and(|e| scope.admits(&e.acl, &e.doc_id, e.seq))
            })
            .copied()
            .collect()
    }

    fn search(&self, query: &str, seeds: &[Candidate], k: usize, scope: &Scope) -> Vec<Candidate> {
        let seeds = self.admitted(seeds, scope);
        let prepared = self.prepared(scope);
        let graph = &prepared.graph;
        let chunk_seeds: Vec<(ChunkId, f32)> = seeds
            .iter()
            .enumerate()
            .map(|(rank, c)| (c.chunk_id, 1.0 / (rank + 1) as f32))
            .collect();
        let seeded: HashSet<ChunkId> = seeds.iter().map(|c| c.chunk_id).collect();
        let concept_seeds = question_concepts(graph, query)
            .into_iter()
            .map(|(at, w)| {
                // A concept the hybrid hits mention too is what the question is about.
                let in_hits = graph.concepts[at].chunks.iter().any(|c| seeded.contains(c));
                (at, if in_hits { 2.0 * w } else { w })
            })
            .collect::<Vec<_>>();
        prepared
            .walk
            .rank(&concept_seeds, &chunk_seeds, &self.settings.walk)
            .into_iter()
            .take(k)
            .map(|(chunk_id, score)| Candidate { chunk_id, score })
            .collect()
    }
}

impl Inner {
    fn concepts(
        &self,
        filter: &str,
        chunk: Option<ChunkId>,
        limit: usize,
        scope: &Scope,
    ) -> ConceptList {
        let prepared = self.prepared(scope);
        let graph = &prepared.graph;
        let filter = filter.trim().to_lowercase();
        let mut matching: Vec<&Concept> = graph
            .concepts
            .iter()
            .filter(|c| {
                filter.is_empty()
                    || c.key.contains(&filter)
                    || c.aliases.iter().any(|a| a.contains(&filter))
            })
            .filter(|c| chunk.is_none_or(|id| c.chunks.binary_search(&id).is_ok()))
            .collect();
        matching.sort_by(|a, b| b.chunks.len().cmp(&a.chunks.len()).then(a.key.cmp(&b.key)));
        ConceptList {
            stats: prepared.stats(),
            total: matching.len(),
            concepts: matching.into_iter().take(limit).map(info).collect(),
        }
    }

    fn neighbourhood(&self, key: &str, limit: usize, scope: &Scope) -> Option<Neighbourhood> {
        let prepared = self.prepared(scope);
        let graph = &prepared.graph;
        let key = key.trim().to_lowercase();
        let at = graph
            .concepts
            .iter()
            .position(|c| c.key == key || c.aliases.contains(&key))?;
        let concept = &graph.concepts[at];
        let mut edges: Vec<(usize, &crate::assemble::Edge)> = graph
            .edges
            .iter()
            .filter_map(|e| match (e.a == at, e.b == at) {
                (true, _) => Some((e.b, e)),
                (_, true) => Some((e.a, e)),
                _ => None,
            })
            .collect();
        edges.sort_by(|x, y| {
            y.1.sentences
                .cmp(&x.1.sentences)
                .then(y.1.pmi.total_cmp(&x.1.pmi))
                .then(x.0.cmp(&y.0))
        });
        edges.truncate(limit);
        let state = self.read();
        let neighbours = edges
            .into_iter()
            .map(|(other, e)| {
                let other = &graph.concepts[other];
                Neighbour {
                    concept: info(other),
                    sentences: e.sentences,
                    pmi: e.pmi,
                    evidence: evidence(&state, concept, other, EVIDENCE_PER_EDGE),
                }
            })
            .collect();
        Some(Neighbourhood {
            concept: info(concept),
            chunks: concept.chunks.iter().take(limit).copied().collect(),
            neighbours,
        })
    }
}

impl Inner {
    fn communities(
        &self,
        filter: &str,
        level: usize,
        limit: usize,
        scope: &Scope,
    ) -> CommunityList {
        let prepared = self.prepared(scope);
        let graph = &prepared.graph;
        let found = prepared.communities(&self.settings.communities);
        let filter = filter.trim().to_lowercase();
        let matches = |c: &Community| {
            filter.is_empty()
                || c.concepts.iter().any(|&at| {
                    let concept = &graph.concepts[at];
                    concept.key.contains(&filter)
                        || concept.aliases.iter().any(|a| a.contains(&filter))
                })
        };
        let mut matching: Vec<&Community> = found
            .list
            .iter()
            .filter(|c| c.level == level && matches(c))
            .collect();
        matching.sort_by(|a, b| b.chunks.len().cmp(&a.chunks.len()).then(a.id.cmp(&b.id)));
        let state = self.read();
        CommunityList {
            stats: prepared.stats(),
            levels: found.levels(),
            total: matching.len(),
            communities: matching
                .into_iter()
                .take(limit)
                .map(|c| report(&state, graph, found, c, limit))
                .collect(),
        }
    }

    fn global(
        &self,
        query: &str,
        seeds: &[Candidate],
        k: usize,
        scope: &Scope,
    ) -> Vec<(Candidate, CommunityRef)> {
        let seeds = self.admitted(seeds, scope);
        let prepared = self.prepared(scope);
        let graph = &prepared.graph;
        let found = prepared.communities(&self.settings.communities);
        let top: Vec<&Community> = found.list.iter().filter(|c| c.level == 0).collect();
        let mut home: HashMap<usize, usize> = HashMap::new();
        for (at, c) in top.iter().enumerate() {
            for &concept in &c.concepts {
                home.insert(concept, at);
            }
        }
        // A seed at rank r adds 1 / (r + RANK_DAMPING) to each community whose chunks hold
        // it; a concept of the question adds its weight over the same damping.
        let mut score = vec![0.0f32; top.len()];
        let mut held: Vec<Vec<ChunkId>> = vec![Vec::new(); top.len()];
        for (rank, seed) in seeds.iter().enumerate() {
            let gain = 1.0 / (rank as f32 + RANK_DAMPING);
            for (at, c) in top.iter().enumerate() {
                if c.chunks.binary_search(&seed.chunk_id).is_ok() {
                    score[at] += gain;
                    held[at].push(seed.chunk_id);
                }
            }
        }
        for (concept, weight) in question_concepts(graph, query) {
            if let Some(&at) = home.get(&concept) {
                score[at] += weight / RANK_DAMPING;
            }
        }
        let mut order: Vec<usize> = (0..top.len()).collect();
        order.sort_by(|&x, &y| {
            score[y]
                .total_cmp(&score[x])
                .then(top[y].chunks.len().cmp(&top[x].chunks.len()))
                .then(x.cmp(&y))
        });
        // Each community stands for itself with a chunk no better-ranked one took: its best
        // seed, else the chunk that mentions most of its concepts.
        let mut used: HashSet<ChunkId> = HashSet::new();
        order
            .into_iter()
            .filter_map(|at| {
                let c = top[at];
                let chunk_id = held[at]
                    .iter()
                    .copied()
                    .chain(representative(graph, c, REPRESENTATIVE))
                    .find(|id| !used.contains(id))?;
                used.insert(chunk_id);
                let title = title(graph, c);
                let candidate = Candidate {
                    chunk_id,
                    score: score[at],
                };
                Some((
                    candidate,
                    CommunityRef {
                        id: c.id.clone(),
                        title,
                    },
                ))
            })
            .take(k)
            .collect()
    }

    fn community(&self, id: &str, limit: usize, scope: &Scope) -> Option<CommunityInfo> {
        let prepared = self.prepared(scope);
        let found = prepared.communities(&self.settings.communities);
        let community = found.find(id.trim())?;
        let state = self.read();
        Some(report(&state, &prepared.graph, found, community, limit))
    }
}

/// A community's title: its three main concepts.
fn title(graph: &ConceptGraph, c: &Community) -> String {
    c.concepts
        .iter()
        .take(3)
        .map(|&at| graph.concepts[at].key.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A community's extractive report: its main concepts, its strongest relations with their
/// evidence, and its representative chunks, at most `limit` of each.
fn report(
    state: &State,
    graph: &ConceptGraph,
    found: &Communities,
    c: &Community,
    limit: usize,
) -> CommunityInfo {
    let relations = c
        .edges
        .iter()
        .take(limit)
        .map(|&e| {
            let edge = &graph.edges[e];
            let (a, b) = (&graph.concepts[edge.a], &graph.concepts[edge.b]);
            Relation {
                a: a.key.clone(),
                b: b.key.clone(),
                sentences: edge.sentences,
                pmi: edge.pmi,
                evidence: evidence(state, a, b, EVIDENCE_PER_EDGE),
            }
        })
        .collect();
    CommunityInfo {
        id: c.id.clone(),
        level: c.level,
        parent: c.parent.map(|p| found.list[p].id.clone()),
        children: c
            .children
            .iter()
            .map(|&x| found.list[x].id.clone())
            .collect(),
        title: title(graph, c),
        concepts: c.concepts.len(),
        chunks: c.chunks.len(),
        top_concepts: c
            .concepts
            .iter()
            .take(limit)
            .map(|&at| info(&graph.concepts[at]))
            .collect(),
        relations,
        representative: representative(graph, c, limit.min(REPRESENTATIVE)),
    }
}

/// Chunks shown as an edge's evidence, at most.
const EVIDENCE_PER_EDGE: usize = 3;

/// Representative chunks of a community, at most.
const REPRESENTATIVE: usize = 3;

/// The `k` of the reciprocal-rank gain a seed gives a community in `global` (as fusion's
/// RRF: the first seeds count most, none alone decides).
const RANK_DAMPING: f32 = 10.0;

fn info(c: &Concept) -> ConceptInfo {
    ConceptInfo {
        key: c.key.clone(),
        kind: c.kind,
        aliases: c.aliases.clone(),
        chunks: c.chunks.len(),
        mentions: c.mentions,
    }
}

/// The first chunks (by id) that both concepts are mentioned in, in one sentence, under any
/// of their keys. Both chunk lists hold only chunks of the caller's graph.
fn evidence(state: &State, a: &Concept, b: &Concept, most: usize) -> Vec<ChunkId> {
    let names = |c: &Concept| -> HashSet<String> {
        std::iter::once(c.key.clone())
            .chain(c.aliases.iter().cloned())
            .collect()
    };
    let (keys_a, keys_b) = (names(a), names(b));
    let in_b: HashSet<ChunkId> = b.chunks.iter().copied().collect();
    a.chunks
        .iter()
        .filter(|id| in_b.contains(id))
        .filter(|id| {
            let Some(entry) = state.chunks.get(id) else {
                return false;
            };
            let mut sentences_a = HashSet::new();
            let mut sentences_b = HashSet::new();
            for m in &entry.concepts.mentions {
                if keys_a.contains(&m.key) {
                    sentences_a.insert(m.sentence);
                }
                if keys_b.contains(&m.key) {
                    sentences_b.insert(m.sentence);
                }
            }
            !sentences_a.is_disjoint(&sentences_b)
        })
        .take(most)
        .copied()
        .collect()
}

/// The concepts of `graph` that `query` mentions, by index, with a weight: identifiers,
/// acronyms and names count twice a common term. A term the graph lacks whole counts by
/// the longest runs of its words the graph holds, at half weight.
fn question_concepts(graph: &ConceptGraph, query: &str) -> Vec<(usize, f32)> {
    let found = extract(query, Lang::detect(query));
    let position = |key: &str| {
        let c = graph.find(key)?;
        graph.concepts.binary_search_by(|x| x.key.cmp(&c.key)).ok()
    };
    let mut weights: HashMap<usize, f32> = HashMap::new();
    let mut add = |at: usize, w: f32| {
        let slot = weights.entry(at).or_insert(0.0);
        *slot = slot.max(w);
    };
    for m in &found.mentions {
        let w = match m.kind {
            ConceptKind::Identifier | ConceptKind::Acronym | ConceptKind::Name => 2.0,
            ConceptKind::Term | ConceptKind::Word => 1.0,
        };
        if let Some(at) = position(&m.key) {
            add(at, w);
            continue;
        }
        // The longest runs found; a shorter run inside one found is not counted again.
        let mut taken: Vec<String> = Vec::new();
        for sub in sub_keys(&m.key) {
            let padded = format!(" {sub} ");
            if taken.iter().any(|t| format!(" {t} ").contains(&padded)) {
                continue;
            }
            if let Some(at) = position(&sub) {
                add(at, 0.5 * w);
                taken.push(sub);
            }
        }
    }
    let mut out: Vec<(usize, f32)> = weights.into_iter().collect();
    out.sort_by_key(|(at, _)| *at);
    out
}

#[async_trait]
impl DerivedIndex for GraphIndex {
    fn name(&self) -> &'static str {
        "graph"
    }

    fn applied_seq(&self) -> Seq {
        self.inner.read().applied
    }

    async fn apply(&self, batch: IndexBatch) -> Result<()> {
        let mut state = self.inner.state.write().unwrap_or_else(|e| e.into_inner());
        state.generation += 1;
        if !batch.remove_docs.is_empty() {
            let gone: HashSet<&DocId> = batch.remove_docs.iter().collect();
            state.chunks.retain(|_, e| !gone.contains(&e.doc_id));
        }
        for c in batch.add {
            let entry = Entry {
                doc_id: c.doc_id,
                acl: c.acl,
                seq: c.seq,
                concepts: c.concepts,
            };
            state.chunks.insert(c.chunk_id, entry);
        }
        state.applied = state.applied.max(batch.up_to);
        Ok(())
    }

    async fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn live_count(&self) -> usize {
        self.inner.read().chunks.len()
    }

    fn reads_concepts(&self) -> bool {
        true
    }

    async fn live_chunk_ids(&self) -> Result<Vec<ChunkId>> {
        Ok(self.inner.read().chunks.keys().copied().collect())
    }
}

impl GraphIndex {
    /// Runs `f` over the index on the blocking pool: assembly, walks and communities are CPU
    /// work, kept off the async threads. `what` names the work if its task fails.
    async fn off_thread<T: Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce(&Inner) -> T + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| cairn_core::Error::internal(format!("{what} failed: {e}")))
    }
}

#[async_trait]
impl GraphRetriever for GraphIndex {
    async fn search(
        &self,
        query: &str,
        seeds: &[Candidate],
        k: usize,
        scope: &Scope,
    ) -> Result<Vec<Candidate>> {
        let (query, seeds, scope) = (query.to_string(), seeds.to_vec(), scope.clone());
        self.off_thread("the graph walk", move |inner| {
            inner.search(&query, &seeds, k, &scope)
        })
        .await
    }

    async fn concepts(
        &self,
        filter: &str,
        chunk: Option<ChunkId>,
        limit: usize,
        scope: &Scope,
    ) -> Result<ConceptList> {
        let (filter, scope) = (filter.to_string(), scope.clone());
        self.off_thread("listing concepts", move |inner| {
            inner.concepts(&filter, chunk, limit, &scope)
        })
        .await
    }

    async fn neighbourhood(
        &self,
        key: &str,
        limit: usize,
        scope: &Scope,
    ) -> Result<Option<Neighbourhood>> {
        let (key, scope) = (key.to_string(), scope.clone());
        self.off_thread("reading a concept", move |inner| {
            inner.neighbourhood(&key, limit, &scope)
        })
        .await
    }

    async fn communities(
        &self,
        filter: &str,
        level: usize,
        limit: usize,
        scope: &Scope,
    ) -> Result<CommunityList> {
        let (filter, scope) = (filter.to_string(), scope.clone());
        self.off_thread("finding communities", move |inner| {
            inner.communities(&filter, level, limit, &scope)
        })
        .await
    }

    async fn global(
        &self,
        query: &str,
        seeds: &[Candidate],
        k: usize,
        scope: &Scope,
    ) -> Result<Vec<(Candidate, CommunityRef)>> {
        let (query, seeds, scope) = (query.to_string(), seeds.to_vec(), scope.clone());
        self.off_thread("ranking communities", move |inner| {
            inner.global(&query, &seeds, k, &scope)
        })
        .await
    }

    async fn community(
        &self,
        id: &str,
        limit: usize,
        scope: &Scope,
    ) -> Result<Option<CommunityInfo>> {
        let (id, scope) = (id.to_string(), scope.clone());
        self.off_thread("reading a community", move |inner| {
            inner.community(&id, limit, &scope)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::{IndexedChunk, Principal};

    fn chunk(id: i64, doc: &str, acl: Acl, text: &str) -> IndexedChunk {
        IndexedChunk {
            chunk_id: ChunkId(id),
            doc_id: DocId(doc.into()),
            seq: Seq(id),
            acl,
            lang: Lang::En,
            text: text.into(),
            embedding: Vec::new(),
            concepts: extract(text, Lang::En),
        }
    }

    fn acl(tenant: &str, groups: &[&str]) -> Acl {
        Acl {
            tenant: tenant.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn scope(tenant: &str, groups: &[&str]) -> Scope {
        Scope {
            principal: Principal::new(tenant, groups.iter().map(|g| g.to_string()).collect()),
            doc_ids: None,
            max_seq: Seq(i64::MAX),
        }
    }

    fn keys_of(list: &ConceptList) -> Vec<&str> {
        let mut keys: Vec<&str> = list.concepts.iter().map(|c| c.key.as_str()).collect();
        keys.sort();
        keys
    }

    fn ids(found: &[Candidate]) -> Vec<i64> {
        found.iter().map(|c| c.chunk_id.0).collect()
    }

    /// Four chunks of tenant "acme" (one of them for the "ops" group only) and one of tenant
    /// "other"; the Rotation Key links chunks 1-2, the Vault Agent 2-3, and 3-4 (ops only);
    /// two more of "acme" about something else.
    async fn index() -> GraphIndex {
        let g = GraphIndex::with_settings(GraphSettings {
            assemble: Settings {
                min_chunks: 2,
                min_pair: 1,
            },
            ..GraphSettings::default()
        });
        let batch = IndexBatch {
            up_to: Seq(7),
            remove_docs: Vec::new(),
            add: vec![
                chunk(
                    1,
                    "a",
                    acl("acme", &[]),
                    "Use the Rotation Key for the VPN.",
                ),
                chunk(
                    2,
                    "b",
                    acl("acme", &[]),
                    "The Rotation Key lives in the Vault Agent.",
                ),
                chunk(
                    3,
                    "c",
                    acl("acme", &[]),
                    "Restart the Vault Agent after an Audit Hook.",
                ),
                chunk(
                    4,
                    "d",
                    acl("acme", &["ops"]),
                    "The Audit Hook pages the on-call.",
                ),
                chunk(
                    5,
                    "e",
                    acl("other", &[]),
                    "The Rotation Key of other is secret.",
                ),
                chunk(
                    6,
                    "f",
                    acl("acme", &[]),
                    "The Printer Driver needs the Paper Tray.",
                ),
                chunk(
                    7,
                    "f",
                    acl("acme", &[]),
                    "The Paper Tray holds a Printer Driver disk.",
                ),
            ],
        };
        g.apply(batch).await.unwrap();
        g
    }

    #[test]
    fn a_question_names_the_concepts_it_mentions_whole_or_by_their_longest_parts() {
        let text = [
            "The Rotation Key of the VPN.",
            "The VPN uses a Rotation Key.",
        ];
        let evidence: Vec<(ChunkId, Concepts)> = text
            .iter()
            .enumerate()
            .map(|(i, t)| (ChunkId(i as i64), extract(t, Lang::En)))
            .collect();
        let graph = assemble(
            evidence.iter().map(|(id, c)| (*id, c)),
            &Settings::default(),
        );
        let key_of = |at: usize| graph.concepts[at].key.as_str();
        let named = |q: &str| -> Vec<(String, f32)> {
            question_concepts(&graph, q)
                .into_iter()
                .map(|(at, w)| (key_of(at).to_string(), w))
                .collect()
        };
        // A name counts twice a term; the acronym is an identifier-like concept too.
        let direct = named("where is the Rotation Key kept?");
        assert!(direct.contains(&("rotation key".into(), 2.0)), "{direct:?}");
        // "old rotation keys" is no concept whole; "rotation key" inside it is, at half weight.
        let part = named("how are old rotation keys retired");
        assert!(part.contains(&("rotation key".into(), 0.5)), "{part:?}");
        assert!(named("printer drivers").is_empty());
    }

    #[tokio::test]
    async fn the_walk_reaches_bridged_chunks_but_never_one_the_caller_may_not_read() {
        let g = index().await;
        // From the question's concept, through the Vault Agent to chunk 3; chunk 4 is
        // reached only through the Audit Hook, which only an ops reader's graph holds.
        let everyone = scope("acme", &[]);
        let found = g
            .search("where is the Rotation Key?", &[], 10, &everyone)
            .await
            .unwrap();
        let mut direct = ids(&found)[..2].to_vec();
        direct.sort();
        assert_eq!(
            direct,
            [1, 2],
            "the chunks that mention it first: {found:?}"
        );
        assert_eq!(
            ids(&found).get(2),
            Some(&3),
            "then the bridged one: {found:?}"
        );
        assert!(!ids(&found).contains(&4), "ops only: {found:?}");
        assert!(!ids(&found).contains(&5), "another tenant: {found:?}");

        // The ops reader's graph is another one (not the cached graph of the caller
        // before), and it holds chunk 4.
        let ops = scope("acme", &["ops"]);
        let found = g
            .search("where is the Rotation Key?", &[], 10, &ops)
            .await
            .unwrap();
        assert!(ids(&found).contains(&4), "{found:?}");
        // And the first caller, asked again from the cache, still does not see it.
        let again = g
            .search("the Audit Hook", &[], 10, &everyone)
            .await
            .unwrap();
        assert!(!ids(&again).contains(&4), "{again:?}");
        // A seed the caller may not read seeds nothing.
        let hidden = [Candidate {
            chunk_id: ChunkId(5),
            score: 1.0,
        }];
        let from_hidden = g
            .search("nothing known", &hidden, 10, &everyone)
            .await
            .unwrap();
        assert!(from_hidden.is_empty(), "{from_hidden:?}");

        // Another tenant sees only its own chunk, which shares no concept in its graph.
        let other = g
            .search("the Rotation Key", &[], 10, &scope("other", &[]))
            .await
            .unwrap();
        assert!(other.iter().all(|c| c.chunk_id == ChunkId(5)), "{other:?}");
    }

    /// Every concept key a community list shows, and every chunk it names.
    fn shown(list: &CommunityList) -> (Vec<String>, Vec<i64>) {
        let mut keys = Vec::new();
        let mut chunks = Vec::new();
        for c in &list.communities {
            keys.extend(c.top_concepts.iter().map(|x| x.key.clone()));
            for r in &c.relations {
                keys.push(r.a.clone());
                keys.push(r.b.clone());
                chunks.extend(r.evidence.iter().map(|id| id.0));
            }
            chunks.extend(c.representative.iter().map(|id| id.0));
        }
        keys.sort();
        keys.dedup();
        chunks.sort();
        chunks.dedup();
        (keys, chunks)
    }

    #[tokio::test]
    async fn communities_hold_only_what_the_caller_may_read_and_follow_deletes() {
        let g = index().await;
        let everyone = scope("acme", &[]);
        let list = g.communities("", 0, 10, &everyone).await.unwrap();
        let (keys, chunks) = shown(&list);
        assert!(keys.contains(&"vault agent".to_string()), "{list:?}");
        assert!(keys.contains(&"paper tray".to_string()), "{list:?}");
        // The Audit Hook is a concept only with the ops chunk; chunk 4 and tenant other's
        // chunk 5 are named nowhere.
        assert!(!keys.contains(&"audit hook".to_string()), "{list:?}");
        assert!(!chunks.contains(&4) && !chunks.contains(&5), "{list:?}");
        let agent = list
            .communities
            .iter()
            .find(|c| c.top_concepts.iter().any(|x| x.key == "vault agent"))
            .unwrap();
        assert!(agent.chunks > 0 && agent.concepts >= 2, "{agent:?}");
        assert_eq!(
            g.community(&agent.id, 10, &everyone)
                .await
                .unwrap()
                .as_ref(),
            Some(agent),
            "one community read alone is the one listed"
        );
        // A filter keeps the communities holding a matching concept.
        let printers = g.communities("printer", 0, 10, &everyone).await.unwrap();
        assert_eq!(printers.total, 1, "{printers:?}");
        assert!(
            printers.communities[0]
                .top_concepts
                .iter()
                .any(|x| x.key == "printer driver")
        );

        // The ops reader's communities are computed from their own graph.
        let ops = g
            .communities("", 0, 10, &scope("acme", &["ops"]))
            .await
            .unwrap();
        let (ops_keys, _) = shown(&ops);
        assert!(ops_keys.contains(&"audit hook".to_string()), "{ops:?}");
        let ops_agent = ops
            .communities
            .iter()
            .find(|c| c.top_concepts.iter().any(|x| x.key == "vault agent"))
            .unwrap();
        assert_eq!(ops_agent.chunks, agent.chunks + 1, "chunk 4 too: {ops:?}");
        // Another tenant's graph has no edge, so no community.
        let other = g
            .communities("", 0, 10, &scope("other", &[]))
            .await
            .unwrap();
        assert_eq!(other.total, 0, "{other:?}");

        // Deleting the printer document takes its community with it.
        g.apply(IndexBatch {
            up_to: Seq(8),
            remove_docs: vec![DocId("f".into())],
            add: Vec::new(),
        })
        .await
        .unwrap();
        let after = g.communities("printer", 0, 10, &everyone).await.unwrap();
        assert_eq!(after.total, 0, "{after:?}");
    }

    #[tokio::test]
    async fn global_gives_one_readable_passage_per_community_seeded_first() {
        let g = index().await;
        let everyone = scope("acme", &[]);
        // Seeded by a printer chunk: the printer community comes first, with that chunk.
        let seeds = [Candidate {
            chunk_id: ChunkId(7),
            score: 1.0,
        }];
        let found = g
            .global("what is here?", &seeds, 10, &everyone)
            .await
            .unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].0.chunk_id, ChunkId(7), "{found:?}");
        assert!(found[0].1.title.contains("printer driver"), "{found:?}");
        assert!(found[1].1.title.contains("vault agent"), "{found:?}");
        assert_ne!(found[0].1.id, found[1].1.id);
        // The question's concepts rank a community too.
        let found = g
            .global("the Vault Agent", &[], 10, &everyone)
            .await
            .unwrap();
        assert!(found[0].1.title.contains("vault agent"), "{found:?}");
        // k bounds it; hidden chunks and seeds never come back.
        let one = g.global("anything", &seeds, 1, &everyone).await.unwrap();
        assert_eq!(one.len(), 1);
        let hidden = [Candidate {
            chunk_id: ChunkId(4),
            score: 1.0,
        }];
        let found = g
            .global("the Audit Hook", &hidden, 10, &everyone)
            .await
            .unwrap();
        assert!(
            found.iter().all(|(c, _)| ![4, 5].contains(&c.chunk_id.0)),
            "{found:?}"
        );
        let other = g
            .global("the Rotation Key", &[], 10, &scope("other", &[]))
            .await
            .unwrap();
        assert!(other.is_empty(), "{other:?}");
    }

    #[tokio::test]
    async fn a_write_retires_the_cached_graphs() {
        let g = index().await;
        let everyone = scope("acme", &[]);
        let before = g
            .search("the Vault Agent", &[], 10, &everyone)
            .await
            .unwrap();
        assert!(ids(&before).contains(&3), "{before:?}");
        let cached = g.prepared(&everyone);
        assert!(Arc::ptr_eq(&cached, &g.prepared(&everyone)), "reused");
        g.apply(IndexBatch {
            up_to: Seq(8),
            remove_docs: vec![DocId("c".into())],
            add: Vec::new(),
        })
        .await
        .unwrap();
        assert!(!Arc::ptr_eq(&cached, &g.prepared(&everyone)), "rebuilt");
        let after = g
            .search("the Vault Agent", &[], 10, &everyone)
            .await
            .unwrap();
        assert!(!ids(&after).contains(&3), "deleted: {after:?}");
        // A search narrowed to documents gets its own graph.
        let narrowed = Scope {
            doc_ids: Some(vec![DocId("a".into())]),
            ..everyone.clone()
        };
        let only_a = g
            .search("the Rotation Key", &[], 10, &narrowed)
            .await
            .unwrap();
        assert!(only_a.is_empty(), "one chunk makes no concept: {only_a:?}");
    }

    #[tokio::test]
    async fn concepts_and_neighbourhoods_come_from_readable_chunks_only() {
        let g = index().await;
        let everyone = scope("acme", &[]);
        let ops = scope("acme", &["ops"]);
        let listed = g.concepts("", None, 100, &everyone).await.unwrap();
        let keys: Vec<&str> = listed.concepts.iter().map(|c| c.key.as_str()).collect();
        assert!(
            keys.contains(&"rotation key") && keys.contains(&"vault agent"),
            "{keys:?}"
        );
        assert!(
            !keys.contains(&"audit hook"),
            "one readable chunk: {keys:?}"
        );
        assert_eq!(listed.total, listed.concepts.len());
        assert_eq!(listed.stats.concepts, listed.total);
        let rotation = listed
            .concepts
            .iter()
            .find(|c| c.key == "rotation key")
            .unwrap();
        assert_eq!(
            rotation.chunks, 2,
            "not the other tenant's chunk: {rotation:?}"
        );
        // A filter, and a limit below the matches.
        let vault = g.concepts("VAULT", None, 100, &everyone).await.unwrap();
        assert_eq!(vault.concepts.len(), 1);
        assert_eq!(vault.concepts[0].key, "vault agent");
        let one = g.concepts("", None, 1, &everyone).await.unwrap();
        assert_eq!((one.concepts.len(), one.total), (1, listed.total));
        // The concepts a chunk mentions: of chunk 2, both; of chunk 4, nothing for a
        // caller who may not read it.
        let of_two = g
            .concepts("", Some(ChunkId(2)), 100, &everyone)
            .await
            .unwrap();
        assert_eq!(keys_of(&of_two), ["rotation key", "vault agent"]);
        let of_four = g
            .concepts("", Some(ChunkId(4)), 100, &everyone)
            .await
            .unwrap();
        assert!(of_four.concepts.is_empty(), "{of_four:?}");
        let of_four = g.concepts("", Some(ChunkId(4)), 100, &ops).await.unwrap();
        assert_eq!(keys_of(&of_four), ["audit hook"]);

        assert!(
            g.neighbourhood("audit hook", 10, &everyone)
                .await
                .unwrap()
                .is_none()
        );
        let hook = g
            .neighbourhood("Audit Hook", 10, &ops)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(hook.chunks, [ChunkId(3), ChunkId(4)]);
        let agent = g
            .neighbourhood("vault agent", 10, &everyone)
            .await
            .unwrap()
            .unwrap();
        let rotation = agent
            .neighbours
            .iter()
            .find(|n| n.concept.key == "rotation key")
            .unwrap_or_else(|| panic!("{agent:?}"));
        assert_eq!(rotation.evidence, [ChunkId(2)], "the sentence naming both");
        assert!(
            agent
                .neighbours
                .iter()
                .all(|n| n.concept.key != "audit hook"),
            "no edge through a chunk the caller may not read: {agent:?}"
        );
        assert!(
            g.neighbourhood("no such thing", 10, &everyone)
                .await
                .unwrap()
                .is_none()
        );
    }
}
