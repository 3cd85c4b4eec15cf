//! The embedded vector store: approximate nearest neighbours over chunk embeddings with an
//! HNSW graph (hnsw_rs).
//!
//! hnsw_rs cannot delete, so removal works with tombstones: the store keeps a map of the
//! *live* points (graph slot → chunk id, document, sequence number, tenant, groups); a
//! removed chunk leaves that map and its point stays in the graph, invisible. Search runs
//! hnsw_rs's filtered search with a filter that admits only live points inside the caller's
//! [`Scope`], so ACLs, document ids and sequence numbers apply *inside* the graph walk, before
//! ranking; it widens the walk when many points are tombstones, and falls back to an exact
//! scan when the walk finds fewer than `k` admitted points (a very selective scope).
//! [`HnswStore::compact`] rebuilds the graph from the live points only; it also runs by itself
//! when tombstones outnumber live points.
//!
//! Graph slots (hnsw_rs data ids) are the store's own counters, not chunk ids, so re-adding a
//! chunk (a replayed batch) never leaves two indistinguishable points.
//!
//! Persistence: `flush` writes a new snapshot folder `snap-*` inside the store's directory
//! (`points.bin`: the live vectors with a checksum; `meta.json`: applied sequence number,
//! dimensions, the live map), syncs it, then atomically switches the `CURRENT` pointer file and
//! removes older snapshots. A crash at any point leaves the previous snapshot intact. Opening
//! rebuilds the graph from the snapshot's points (hnsw_rs's own loader panics on corrupt files
//! and borrows its loader, so it is not used). A missing, corrupt or mismatched snapshot opens
//! empty at `Seq(0)`, to be rebuilt from the catalog.

use crate::blocking;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use anndists::dist::Distance;
use async_trait::async_trait;
use cairn_core::{
    Candidate, ChunkId, DerivedIndex, DocId, Error, IndexBatch, Principal, Result, Scope, Seq,
    VectorStore,
};
use hnsw_rs::hnsw::Hnsw;
use serde::{Deserialize, Serialize};

/// Links per node (M).
const MAX_NB_CONNECTION: usize = 16;
/// Candidate list size while building the graph.
const EF_CONSTRUCTION: usize = 200;
/// Upper bound on graph layers.
const MAX_LAYER: usize = 16;
/// Smallest candidate list size while searching.
const MIN_EF_SEARCH: usize = 128;
/// Compact automatically once tombstones outnumber live points and reach this many.
const AUTO_COMPACT_MIN_TOMBSTONES: usize = 1024;
/// Batches at least this large are inserted with hnsw_rs's parallel insert.
const PARALLEL_INSERT_MIN: usize = 64;

const CURRENT_FILE: &str = "CURRENT";
const POINTS_FILE: &str = "points.bin";
const META_FILE: &str = "meta.json";
const SNAPSHOT_PREFIX: &str = "snap-";
const POINTS_MAGIC: &[u8; 8] = b"CAIRNVEC";
const FORMAT_VERSION: u32 = 1;

/// Cosine distance for L2-normalised vectors: `1 - dot`, clamped to `[0, 2]`.
///
/// anndists' `DistDot` panics when rounding pushes a dot product of unit vectors past 1, and
/// hnsw_rs asserts that distances are never negative; this one clamps instead (and maps NaN,
/// which the store never admits, to the largest distance).
#[derive(Debug, Default, Clone, Copy)]
pub struct ClampedCosine;

impl Distance<f32> for ClampedCosine {
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        let d = 1.0 - dot(va, vb);
        if d.is_nan() { 2.0 } else { d.clamp(0.0, 2.0) }
    }
}

/// The dot product of `a` and `b` (over the shorter's length).
///
/// Every distance of the HNSW walk, of its build and of the exact scan goes through here.
/// A plain `zip().map().sum()` adds one product at a time (float addition is not
/// associative, so the compiler may not reorder it) and the auto-vectorizer pairs lanes
/// two by two at best; with AVX2 and FMA, which the build enables (x86-64-v3), two 8-lane
/// accumulators do it in 384 / 16 = 24 steps for MiniLM's vectors.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    #[cfg(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    ))]
    {
        // SAFETY: AVX2 and FMA are enabled for the whole build (the cfg above), and
        // `dot_avx2` reads only within the two slices, which have the same length.
        unsafe { dot_avx2(a, b) }
    }
    #[cfg(not(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    )))]
    {
        let mut lanes = [0f32; 8];
        for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
            for ((l, p), q) in lanes.iter_mut().zip(x).zip(y) {
                *l += p * q;
            }
        }
        let tail = n - n % 8;
        lanes.iter().sum::<f32>()
            + a[tail..]
                .iter()
                .zip(&b[tail..])
                .map(|(p, q)| p * q)
                .sum::<f32>()
    }
}

/// [`dot`] with AVX2 and FMA; `a` and `b` have the same length.
#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma"
))]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::{
        _mm256_add_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_setzero_ps, _mm256_storeu_ps,
    };
    debug_assert_eq!(a.len(), b.len());
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut i = 0;
    let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    // SAFETY (every load): `i + 8 <= n` or `i + 16 <= n` holds where it is read.
    unsafe {
        while i + 16 <= n {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
            s1 = _mm256_fmadd_ps(
                _mm256_loadu_ps(pa.add(i + 8)),
                _mm256_loadu_ps(pb.add(i + 8)),
                s1,
            );
            i += 16;
        }
        if i + 8 <= n {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
            i += 8;
        }
    }
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` holds exactly eight floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), _mm256_add_ps(s0, s1)) };
    let mut sum: f32 = lanes.iter().sum();
    while i < n {
        sum += a[i] * b[i];
        i += 1;
    }
    sum
}

#[cfg(test)]
mod dot_tests {
    use super::dot;

    #[test]
    fn dot_matches_the_plain_sum_at_every_length_and_tail() {
        for n in [0, 1, 7, 8, 9, 15, 16, 17, 31, 384, 385] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 5 % 11) as f32 - 5.0) / 3.0).collect();
            let plain: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (*x as f64) * (*y as f64))
                .sum();
            let got = dot(&a, &b) as f64;
            assert!(
                (got - plain).abs() <= 1e-4 * (1.0 + plain.abs()),
                "n {n}: {got} vs {plain}"
            );
        }
        // The shorter slice bounds the sum.
        assert_eq!(dot(&[1.0, 2.0, 3.0], &[1.0, 1.0]), 3.0);
    }
}

type Graph = Hnsw<'static, f32, ClampedCosine>;

fn new_graph(capacity: usize) -> Graph {
    Hnsw::new(
        MAX_NB_CONNECTION,
        capacity.max(1024),
        MAX_LAYER,
        EF_CONSTRUCTION,
        ClampedCosine,
    )
}

/// What the store knows about a live point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    chunk_id: ChunkId,
    doc_id: DocId,
    seq: Seq,
    tenant: String,
    /// Group tokens as [`cairn_core::Acl::index_groups`] gives them (`*` for tenant-wide).
    groups: Vec<String>,
}

/// A [`Scope`] prepared for many membership tests.
struct ScopeFilter<'a> {
    principal: &'a Principal,
    groups: HashSet<String>,
    doc_ids: Option<HashSet<&'a DocId>>,
    max_seq: Seq,
}

impl<'a> ScopeFilter<'a> {
    fn new(scope: &'a Scope) -> Self {
        ScopeFilter {
            principal: &scope.principal,
            groups: scope.principal.index_groups().into_iter().collect(),
            doc_ids: scope.doc_ids.as_ref().map(|ids| ids.iter().collect()),
            max_seq: scope.max_seq,
        }
    }

    fn admits(&self, e: &Entry) -> bool {
        e.seq <= self.max_seq
            && e.tenant == self.principal.tenant
            && e.groups.iter().any(|g| self.groups.contains(g))
            && self
                .doc_ids
                .as_ref()
                .is_none_or(|ids| ids.contains(&e.doc_id))
    }
}

/// The graph and the live map; guarded by one lock so inserts never race iteration.
struct State {
    graph: Graph,
    next_slot: usize,
    live: HashMap<usize, Entry>,
    by_chunk: HashMap<ChunkId, usize>,
    by_doc: HashMap<DocId, HashSet<ChunkId>>,
}

impl State {
    fn empty() -> Self {
        State {
            graph: new_graph(0),
            next_slot: 0,
            live: HashMap::new(),
            by_chunk: HashMap::new(),
            by_doc: HashMap::new(),
        }
    }

    fn tombstones(&self) -> usize {
        self.graph.get_nb_point().saturating_sub(self.live.len())
    }

    /// Takes a chunk out of the live map (its graph point becomes a tombstone).
    fn kill_chunk(&mut self, id: ChunkId) {
        if let Some(slot) = self.by_chunk.remove(&id)
            && let Some(e) = self.live.remove(&slot)
            && let Some(set) = self.by_doc.get_mut(&e.doc_id)
        {
            set.remove(&id);
            if set.is_empty() {
                self.by_doc.remove(&e.doc_id);
            }
        }
    }

    fn remove_doc(&mut self, doc: &DocId) {
        if let Some(chunks) = self.by_doc.remove(doc) {
            for id in chunks {
                if let Some(slot) = self.by_chunk.remove(&id) {
                    self.live.remove(&slot);
                }
            }
        }
    }

    /// Inserts points (vectors already checked and normalised) into the graph and live map.
    fn insert(&mut self, points: Vec<(Entry, Vec<f32>)>) {
        let mut rows = Vec::with_capacity(points.len());
        for (entry, v) in points {
            self.kill_chunk(entry.chunk_id);
            let slot = self.next_slot;
            self.next_slot += 1;
            self.by_chunk.insert(entry.chunk_id, slot);
            self.by_doc
                .entry(entry.doc_id.clone())
                .or_default()
                .insert(entry.chunk_id);
            self.live.insert(slot, entry);
            rows.push((v, slot));
        }
        if rows.len() >= PARALLEL_INSERT_MIN {
            let refs: Vec<(&Vec<f32>, usize)> = rows.iter().map(|(v, s)| (v, *s)).collect();
            self.graph.parallel_insert(&refs);
        } else {
            for (v, slot) in &rows {
                self.graph.insert((v.as_slice(), *slot));
            }
        }
    }

    /// The live points with their vectors, in slot order.
    fn live_points(&self) -> Vec<(usize, Vec<f32>)> {
        let mut out = Vec::with_capacity(self.live.len());
        // hnsw_rs's point iterator panics on an empty graph.
        if self.graph.get_nb_point() > 0 {
            for p in self.graph.get_point_indexation() {
                let slot = p.get_origin_id();
                if self.live.contains_key(&slot) {
                    out.push((slot, p.get_v().to_vec()));
                }
            }
        }
        out.sort_unstable_by_key(|(slot, _)| *slot);
        out
    }

    /// Rebuilds the graph from the live points only.
    fn compact(&mut self) {
        let points = self.live_points();
        let graph = new_graph(points.len());
        let refs: Vec<(&Vec<f32>, usize)> = points.iter().map(|(s, v)| (v, *s)).collect();
        graph.parallel_insert(&refs);
        self.graph = graph;
    }

    fn search(&self, query: &[f32], k: usize, min_ef: usize, scope: &Scope) -> Vec<Candidate> {
        let total = self.graph.get_nb_point();
        let k = k.min(self.live.len());
        if k == 0 || total == 0 || self.live.is_empty() {
            return Vec::new();
        }
        let filter = ScopeFilter::new(scope);
        let admit = |slot: &usize| self.live.get(slot).is_some_and(|e| filter.admits(e));
        // Widen the walk in proportion to the share of tombstones.
        let live_share = self.live.len() as f64 / total as f64;
        let ef = ((min_ef.max(2 * k)) as f64 / live_share).ceil() as usize;
        let ef = ef.min(total.max(k));
        let found = self.graph.search_filter(query, ef, ef, Some(&admit));
        let mut hits: Vec<Candidate> = found
            .iter()
            .filter(|n| admit(&n.d_id))
            .filter_map(|n| {
                self.live.get(&n.d_id).map(|e| Candidate {
                    chunk_id: e.chunk_id,
                    score: 1.0 - n.distance,
                })
            })
            .collect();
        if hits.len() < k {
            // A selective scope: the walk may have missed admitted points, scan exactly.
            hits = self.exact_search(query, &admit);
        }
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.chunk_id.cmp(&b.chunk_id))
        });
        hits.truncate(k);
        hits
    }

    fn exact_search(&self, query: &[f32], admit: &dyn Fn(&usize) -> bool) -> Vec<Candidate> {
        let mut hits = Vec::new();
        for p in self.graph.get_point_indexation() {
            let slot = p.get_origin_id();
            if admit(&slot)
                && let Some(e) = self.live.get(&slot)
            {
                let d = ClampedCosine.eval(query, p.get_v());
                hits.push(Candidate {
                    chunk_id: e.chunk_id,
                    score: 1.0 - d,
                });
            }
        }
        hits
    }
}

/// Scales `v` to unit length; a zero vector stays zero. Errors on NaN or infinity.
fn normalised(v: &[f32], dims: usize, what: &str) -> Result<Vec<f32>> {
    if v.len() != dims {
        return Err(Error::internal(format!(
            "vector store: {what} has {} dimensions, the store holds {dims}",
            v.len()
        )));
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(Error::internal(format!(
            "vector store: {what} contains NaN or infinity"
        )));
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        Ok(v.iter().map(|x| x / norm).collect())
    } else {
        Ok(v.to_vec())
    }
}

struct Inner {
    dir: PathBuf,
    dims: usize,
    state: RwLock<State>,
    applied: AtomicI64,
    live: AtomicUsize,
    /// The smallest candidate list of a search ([`HnswStore::set_min_ef_search`]).
    min_ef: AtomicUsize,
    /// Bumped by every change to the state (under its write lock).
    generation: AtomicU64,
    /// The generation of the last snapshot written; also serialises snapshot writers.
    flushed: Mutex<u64>,
}

/// The hnsw_rs-backed [`VectorStore`].
#[derive(Clone)]
pub struct HnswStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for HnswStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HnswStore")
            .field("dir", &self.inner.dir)
            .field("dims", &self.inner.dims)
            .field("applied_seq", &self.inner.applied.load(Ordering::Acquire))
            .field("live", &self.inner.live.load(Ordering::Acquire))
            .finish()
    }
}

fn poisoned() -> Error {
    Error::internal("vector store: state lock poisoned by an earlier failure")
}

fn io_err(what: String, e: std::io::Error) -> Error {
    Error::internal(format!("vector store: {what}")).with_source(e)
}

impl HnswStore {
    /// Opens the store in `dir` for vectors of `dims` dimensions, loading the snapshot that
    /// `CURRENT` names. A missing, unreadable or mismatched snapshot opens empty at `Seq(0)`.
    pub fn open(dir: &Path, dims: usize) -> Result<HnswStore> {
        if dims == 0 {
            return Err(Error::internal("vector store: dimensions must be positive"));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| io_err(format!("cannot create {}", dir.display()), e))?;
        let (state, applied) = match load_snapshot(dir, dims) {
            Ok(Some(loaded)) => loaded,
            Ok(None) => (State::empty(), Seq(0)),
            Err(e) => {
                tracing::warn!(
                    dir = %dir.display(),
                    error = %e,
                    "vector snapshot unreadable; starting empty, it will be rebuilt from the catalog"
                );
                (State::empty(), Seq(0))
            }
        };
        let live = state.live.len();
        Ok(HnswStore {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                dims,
                state: RwLock::new(state),
                applied: AtomicI64::new(applied.0),
                live: AtomicUsize::new(live),
                min_ef: AtomicUsize::new(MIN_EF_SEARCH),
                generation: AtomicU64::new(0),
                flushed: Mutex::new(0),
            }),
        })
    }

    /// Dimensions of the stored vectors.
    /// Sets the smallest candidate list a search walks (default 128; a search for `k`
    /// results walks at least `2k`). Smaller is faster at lower recall; the `ann` benchmark
    /// sweeps it.
    pub fn set_min_ef_search(&self, ef: usize) {
        self.inner.min_ef.store(ef.max(1), Ordering::Relaxed);
    }

    pub fn dims(&self) -> usize {
        self.inner.dims
    }

    /// Points in the graph that no longer count (removed, awaiting compaction).
    pub fn tombstones(&self) -> usize {
        self.inner.state.read().map(|s| s.tombstones()).unwrap_or(0)
    }

    /// Rebuilds the graph from the live points only, dropping every tombstone.
    pub async fn compact(&self) -> Result<()> {
        let inner = self.inner.clone();
        blocking("vector store", move || {
            let mut state = inner.state.write().map_err(|_| poisoned())?;
            state.compact();
            inner.generation.fetch_add(1, Ordering::AcqRel);
            Ok(())
        })
        .await
    }
}

impl Inner {
    fn apply(&self, batch: IndexBatch) -> Result<()> {
        // Check the whole batch before changing anything.
        let mut points = Vec::with_capacity(batch.add.len());
        for c in batch.add {
            let what = format!("embedding of chunk {}", c.chunk_id.0);
            let v = normalised(&c.embedding, self.dims, &what)?;
            let entry = Entry {
                chunk_id: c.chunk_id,
                doc_id: c.doc_id,
                seq: c.seq,
                groups: c.acl.index_groups(),
                tenant: c.acl.tenant,
            };
            points.push((entry, v));
        }
        let mut state = self.state.write().map_err(|_| poisoned())?;
        for doc in &batch.remove_docs {
            state.remove_doc(doc);
        }
        state.insert(points);
        let tombstones = state.tombstones();
        if tombstones >= AUTO_COMPACT_MIN_TOMBSTONES && tombstones > state.live.len() {
            state.compact();
        }
        self.live.store(state.live.len(), Ordering::Release);
        self.applied.store(batch.up_to.0, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    fn search(&self, query: &[f32], k: usize, scope: &Scope) -> Result<Vec<Candidate>> {
        let q = normalised(query, self.dims, "query vector")?;
        let state = self.state.read().map_err(|_| poisoned())?;
        Ok(state.search(&q, k, self.min_ef.load(Ordering::Relaxed), scope))
    }

    fn flush(&self) -> Result<()> {
        let mut flushed = self.flushed.lock().map_err(|_| poisoned())?;
        let (generation, meta, points) = {
            let state = self.state.read().map_err(|_| poisoned())?;
            let generation = self.generation.load(Ordering::Acquire);
            if generation == *flushed {
                return Ok(());
            }
            let points = state.live_points();
            let mut entries = Vec::with_capacity(points.len());
            for (slot, _) in &points {
                if let Some(e) = state.live.get(slot) {
                    entries.push(e.clone());
                }
            }
            let meta = SnapshotMeta {
                format: FORMAT_VERSION,
                applied_seq: Seq(self.applied.load(Ordering::Acquire)),
                dims: self.dims,
                tombstones: state.tombstones(),
                points_checksum: 0,
                entries,
            };
            (generation, meta, points)
        };
        write_snapshot(&self.dir, meta, &points)?;
        *flushed = generation;
        Ok(())
    }
}

/// `meta.json` of a snapshot.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotMeta {
    format: u32,
    applied_seq: Seq,
    dims: usize,
    /// Tombstones in the graph when the snapshot was taken (informational: loading rebuilds
    /// the graph from live points only).
    tombstones: usize,
    /// FNV-1a 64 of `points.bin`.
    points_checksum: u64,
    /// One entry per point in `points.bin`, same order.
    entries: Vec<Entry>,
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn encode_points(dims: usize, entries: &[Entry], points: &[(usize, Vec<f32>)]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(24 + points.len() * (8 + 4 * dims));
    buf.extend_from_slice(POINTS_MAGIC);
    buf.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    buf.extend_from_slice(&(dims as u32).to_le_bytes());
    buf.extend_from_slice(&(points.len() as u64).to_le_bytes());
    for (e, (_, v)) in entries.iter().zip(points) {
        buf.extend_from_slice(&e.chunk_id.0.to_le_bytes());
        for x in v {
            buf.extend_from_slice(&x.to_le_bytes());
        }
    }
    buf
}

fn decode_points(bytes: &[u8], meta: &SnapshotMeta) -> std::result::Result<Vec<Vec<f32>>, String> {
    let dims = meta.dims;
    let header = 8 + 4 + 4 + 8;
    if bytes.len() < header || &bytes[..8] != POINTS_MAGIC {
        return Err("points file has no valid header".into());
    }
    let word = |at: usize| -> [u8; 4] { [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]] };
    let version = u32::from_le_bytes(word(8));
    let file_dims = u32::from_le_bytes(word(12)) as usize;
    let mut count_bytes = [0u8; 8];
    count_bytes.copy_from_slice(&bytes[16..24]);
    let count = u64::from_le_bytes(count_bytes) as usize;
    if version != FORMAT_VERSION || file_dims != dims || count != meta.entries.len() {
        return Err(format!(
            "points file header (version {version}, {file_dims} dims, {count} points) does not match meta.json"
        ));
    }
    let row = 8 + 4 * dims;
    if bytes.len() != header + count.saturating_mul(row) {
        return Err("points file has the wrong length".into());
    }
    let mut out = Vec::with_capacity(count);
    for (i, e) in meta.entries.iter().enumerate() {
        let at = header + i * row;
        let mut id = [0u8; 8];
        id.copy_from_slice(&bytes[at..at + 8]);
        if i64::from_le_bytes(id) != e.chunk_id.0 {
            return Err(format!("points file row {i} does not match meta.json"));
        }
        let v: Vec<f32> = (0..dims)
            .map(|j| f32::from_le_bytes(word(at + 8 + 4 * j)))
            .collect();
        if v.iter().any(|x| !x.is_finite()) {
            return Err(format!("points file row {i} holds NaN or infinity"));
        }
        out.push(v);
    }
    Ok(out)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_err(format!("cannot sync {}", dir.display()), e))
}

fn write_file_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let write = || -> std::io::Result<()> {
        let mut w = BufWriter::new(File::create(path)?);
        w.write_all(bytes)?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()
    };
    write().map_err(|e| io_err(format!("cannot write {}", path.display()), e))
}

fn write_snapshot(dir: &Path, mut meta: SnapshotMeta, points: &[(usize, Vec<f32>)]) -> Result<()> {
    let name = format!(
        "{SNAPSHOT_PREFIX}{:020}-{}",
        meta.applied_seq.0.max(0),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let tmp = dir.join(format!("{name}.tmp"));
    let snap = dir.join(&name);
    std::fs::create_dir_all(&tmp)
        .map_err(|e| io_err(format!("cannot create {}", tmp.display()), e))?;
    let bytes = encode_points(meta.dims, &meta.entries, points);
    meta.points_checksum = fnv1a(&bytes);
    write_file_synced(&tmp.join(POINTS_FILE), &bytes)?;
    let json = serde_json::to_vec(&meta)
        .map_err(|e| Error::internal("vector store: cannot encode meta.json").with_source(e))?;
    write_file_synced(&tmp.join(META_FILE), &json)?;
    sync_dir(&tmp)?;
    std::fs::rename(&tmp, &snap)
        .map_err(|e| io_err(format!("cannot rename {}", tmp.display()), e))?;
    sync_dir(dir)?;
    // Switch the pointer atomically: write a temp file, then rename over CURRENT.
    let current_tmp = dir.join(format!("{CURRENT_FILE}.tmp"));
    write_file_synced(&current_tmp, name.as_bytes())?;
    std::fs::rename(&current_tmp, dir.join(CURRENT_FILE))
        .map_err(|e| io_err(format!("cannot switch {CURRENT_FILE}"), e))?;
    sync_dir(dir)?;
    remove_stale_snapshots(dir, &name);
    Ok(())
}

/// Best effort: removes every snapshot folder except `keep`.
fn remove_stale_snapshots(dir: &Path, keep: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(SNAPSHOT_PREFIX)
            && name != keep
            && let Err(err) = std::fs::remove_dir_all(e.path())
        {
            tracing::warn!(path = %e.path().display(), error = %err, "cannot remove an old vector snapshot");
        }
    }
}

/// Loads the current snapshot: `Ok(None)` when there is none yet, `Err` when it is unusable.
fn load_snapshot(dir: &Path, dims: usize) -> Result<Option<(State, Seq)>> {
    let current = match std::fs::read_to_string(dir.join(CURRENT_FILE)) {
        Ok(s) => s.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(format!("cannot read {CURRENT_FILE}"), e)),
    };
    if !current.starts_with(SNAPSHOT_PREFIX)
        || current.contains(['/', '\\'])
        || current.contains("..")
    {
        return Err(Error::internal(format!(
            "vector store: {CURRENT_FILE} names no snapshot"
        )));
    }
    let snap = dir.join(&current);
    let meta_bytes = std::fs::read(snap.join(META_FILE))
        .map_err(|e| io_err(format!("cannot read {}", snap.join(META_FILE).display()), e))?;
    let meta: SnapshotMeta = serde_json::from_slice(&meta_bytes)
        .map_err(|e| Error::internal("vector store: unreadable meta.json").with_source(e))?;
    if meta.format != FORMAT_VERSION {
        return Err(Error::internal(format!(
            "vector store: unknown snapshot format {}",
            meta.format
        )));
    }
    if meta.dims != dims {
        return Err(Error::internal(format!(
            "vector store: snapshot holds {} dimensions, the embedder gives {dims}",
            meta.dims
        )));
    }
    let mut bytes = Vec::new();
    File::open(snap.join(POINTS_FILE))
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| {
            io_err(
                format!("cannot read {}", snap.join(POINTS_FILE).display()),
                e,
            )
        })?;
    if fnv1a(&bytes) != meta.points_checksum {
        return Err(Error::internal(
            "vector store: points file checksum mismatch",
        ));
    }
    let vectors =
        decode_points(&bytes, &meta).map_err(|m| Error::internal(format!("vector store: {m}")))?;
    let applied = meta.applied_seq;
    let mut state = State::empty();
    state.graph = new_graph(vectors.len());
    state.insert(meta.entries.into_iter().zip(vectors).collect());
    remove_stale_snapshots(dir, &current);
    Ok(Some((state, applied)))
}

#[async_trait]
impl DerivedIndex for HnswStore {
    fn name(&self) -> &'static str {
        "vector"
    }

    fn applied_seq(&self) -> Seq {
        Seq(self.inner.applied.load(Ordering::Acquire))
    }

    async fn apply(&self, batch: IndexBatch) -> Result<()> {
        let inner = self.inner.clone();
        blocking("vector store", move || inner.apply(batch)).await
    }

    async fn flush(&self) -> Result<()> {
        let inner = self.inner.clone();
        blocking("vector store", move || inner.flush()).await
    }

    fn live_count(&self) -> usize {
        self.inner.live.load(Ordering::Acquire)
    }

    async fn live_chunk_ids(&self) -> Result<Vec<ChunkId>> {
        let inner = self.inner.clone();
        blocking("vector store", move || {
            let state = inner.state.read().map_err(|_| poisoned())?;
            let mut ids: Vec<ChunkId> = state.by_chunk.keys().copied().collect();
            ids.sort_unstable();
            Ok(ids)
        })
        .await
    }
}

#[async_trait]
impl VectorStore for HnswStore {
    async fn search(&self, vector: &[f32], k: usize, scope: &Scope) -> Result<Vec<Candidate>> {
        let inner = self.inner.clone();
        let vector = vector.to_vec();
        let scope = scope.clone();
        blocking("vector store", move || inner.search(&vector, k, &scope)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::{Acl, IndexedChunk, Lang};

    /// A small deterministic generator (xorshift64*), so tests need no extra dependency.
    struct Rng(u64);
    impl Rng {
        fn next_f32(&mut self) -> f32 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
            (x >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        }
        fn unit(&mut self, dims: usize) -> Vec<f32> {
            let v: Vec<f32> = (0..dims).map(|_| self.next_f32()).collect();
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.into_iter().map(|x| x / n).collect()
        }
    }

    fn chunk(id: i64, doc: &str, seq: i64, acl: Acl, embedding: Vec<f32>) -> IndexedChunk {
        IndexedChunk {
            chunk_id: ChunkId(id),
            doc_id: DocId::from(doc),
            seq: Seq(seq),
            acl,
            lang: Lang::En,
            text: String::new(),
            embedding,

            concepts: Default::default(),
        }
    }

    fn scope(tenant: &str, groups: &[&str]) -> Scope {
        Scope {
            principal: Principal::new(tenant, groups.iter().map(|g| g.to_string()).collect()),
            doc_ids: None,
            max_seq: Seq(i64::MAX),
        }
    }

    fn ids(c: &[Candidate]) -> Vec<i64> {
        c.iter().map(|c| c.chunk_id.0).collect()
    }

    fn brute_force(data: &[Vec<f32>], q: &[f32], k: usize) -> Vec<i64> {
        let mut scored: Vec<(f32, i64)> = data
            .iter()
            .enumerate()
            .map(|(i, v)| (v.iter().zip(q).map(|(a, b)| a * b).sum::<f32>(), i as i64))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored.into_iter().take(k).map(|(_, i)| i).collect()
    }

    /// `n` random unit vectors in documents of 10 chunks each, chunk id = index.
    async fn random_store(dir: &Path, n: usize, dims: usize) -> (HnswStore, Vec<Vec<f32>>) {
        let store = HnswStore::open(dir, dims).unwrap();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let data: Vec<Vec<f32>> = (0..n).map(|_| rng.unit(dims)).collect();
        let add = data
            .iter()
            .enumerate()
            .map(|(i, v)| {
                chunk(
                    i as i64,
                    &format!("d{}", i / 10),
                    1,
                    Acl::tenant_wide("t"),
                    v.clone(),
                )
            })
            .collect();
        store
            .apply(IndexBatch {
                up_to: Seq(1),
                remove_docs: vec![],
                add,
            })
            .await
            .unwrap();
        (store, data)
    }

    async fn recall_at_10(store: &HnswStore, data: &[Vec<f32>], live: impl Fn(i64) -> bool) -> f64 {
        let mut rng = Rng(42);
        let live_data: Vec<(i64, &Vec<f32>)> = data
            .iter()
            .enumerate()
            .map(|(i, v)| (i as i64, v))
            .filter(|(i, _)| live(*i))
            .collect();
        let mut found = 0;
        let queries = 50;
        for _ in 0..queries {
            let q = rng.unit(data[0].len());
            let mut scored: Vec<(f32, i64)> = live_data
                .iter()
                .map(|(i, v)| (v.iter().zip(&q).map(|(a, b)| a * b).sum::<f32>(), *i))
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            let truth: HashSet<i64> = scored.iter().take(10).map(|(_, i)| *i).collect();
            let got = store.search(&q, 10, &scope("t", &[])).await.unwrap();
            assert_eq!(got.len(), 10);
            found += got.iter().filter(|c| truth.contains(&c.chunk_id.0)).count();
        }
        found as f64 / (queries * 10) as f64
    }

    #[tokio::test]
    async fn nearest_neighbours_match_brute_force() {
        let dir = tempfile::tempdir().unwrap();
        let (store, data) = random_store(dir.path(), 2000, 32).await;
        assert_eq!(store.live_count(), 2000);
        let recall = recall_at_10(&store, &data, |_| true).await;
        assert!(recall >= 0.95, "recall@10 = {recall}");
        // A stored vector is its own nearest neighbour, with similarity ~1.
        let hits = store.search(&data[7], 3, &scope("t", &[])).await.unwrap();
        assert_eq!(hits[0].chunk_id, ChunkId(7));
        assert!((hits[0].score - 1.0).abs() < 1e-4);
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
        assert_eq!(ids(&hits), brute_force(&data, &data[7], 3));
    }

    #[tokio::test]
    async fn removed_documents_are_hidden_and_compaction_keeps_results() {
        let dir = tempfile::tempdir().unwrap();
        let (store, data) = random_store(dir.path(), 1000, 16).await;
        // Remove every even document (chunks 0-9, 20-29, ...).
        let remove_docs = (0..100)
            .step_by(2)
            .map(|d| DocId(format!("d{d}")))
            .collect();
        store
            .apply(IndexBatch {
                up_to: Seq(2),
                remove_docs,
                add: vec![],
            })
            .await
            .unwrap();
        let live = |i: i64| (i / 10) % 2 == 1;
        assert_eq!(store.live_count(), 500);
        assert_eq!(store.tombstones(), 500);
        let hits = store.search(&data[3], 10, &scope("t", &[])).await.unwrap();
        assert!(
            hits.iter().all(|c| live(c.chunk_id.0)),
            "a removed chunk came back"
        );
        assert!(recall_at_10(&store, &data, live).await >= 0.95);

        let before = store.search(&data[13], 10, &scope("t", &[])).await.unwrap();
        store.compact().await.unwrap();
        assert_eq!(store.tombstones(), 0);
        assert_eq!(store.live_count(), 500);
        let after = store.search(&data[13], 10, &scope("t", &[])).await.unwrap();
        assert_eq!(after[0].chunk_id, ChunkId(13));
        assert_eq!(ids(&before), ids(&after));
        assert!(recall_at_10(&store, &data, live).await >= 0.95);
        let live_ids: Vec<i64> = store
            .live_chunk_ids()
            .await
            .unwrap()
            .iter()
            .map(|c| c.0)
            .collect();
        assert_eq!(live_ids, (0..1000).filter(|i| live(*i)).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn scope_applies_inside_the_search() {
        let dir = tempfile::tempdir().unwrap();
        let store = HnswStore::open(dir.path(), 8).unwrap();
        let mut rng = Rng(7);
        let q = rng.unit(8);
        let hr = Acl {
            tenant: "acme".into(),
            groups: vec!["hr".into()],
        };
        let mut add = vec![
            // The closest vectors are the ones the caller may not see.
            chunk(1, "secret", 1, hr, q.clone()),
            chunk(2, "foreign", 1, Acl::tenant_wide("other"), q.clone()),
            chunk(3, "late", 5, Acl::tenant_wide("acme"), q.clone()),
        ];
        for i in 10..400 {
            add.push(chunk(
                i,
                &format!("d{i}"),
                2,
                Acl::tenant_wide("acme"),
                rng.unit(8),
            ));
        }
        store
            .apply(IndexBatch {
                up_to: Seq(5),
                remove_docs: vec![],
                add,
            })
            .await
            .unwrap();

        let mut s = scope("acme", &[]);
        s.max_seq = Seq(4);
        let hits = store.search(&q, 5, &s).await.unwrap();
        assert_eq!(hits.len(), 5);
        assert!(hits.iter().all(|c| c.chunk_id.0 >= 10), "{hits:?}");

        s.principal.groups = vec!["hr".into()];
        assert_eq!(
            store.search(&q, 1, &s).await.unwrap()[0].chunk_id,
            ChunkId(1)
        );
        s.max_seq = Seq(5);
        let top2: HashSet<i64> = ids(&store.search(&q, 2, &s).await.unwrap())
            .into_iter()
            .collect();
        assert_eq!(top2, HashSet::from([1, 3]));

        let other = store.search(&q, 5, &scope("other", &["hr"])).await.unwrap();
        assert_eq!(
            ids(&other),
            vec![2],
            "one chunk in tenant other, and only that one"
        );

        // A very selective document filter still returns exactly its chunks.
        let mut s = scope("acme", &[]);
        s.doc_ids = Some(vec![
            DocId::from("d17"),
            DocId::from("d300"),
            DocId::from("secret"),
        ]);
        let mut got = ids(&store.search(&q, 10, &s).await.unwrap());
        got.sort();
        assert_eq!(got, vec![17, 300]);
    }

    #[tokio::test]
    async fn flush_and_reopen_restore_everything() {
        let dir = tempfile::tempdir().unwrap();
        let (store, data) = random_store(dir.path(), 300, 16).await;
        store.flush().await.unwrap();
        // A later flush replaces the first snapshot.
        store
            .apply(IndexBatch {
                up_to: Seq(9),
                remove_docs: vec![DocId::from("d0")],
                add: vec![],
            })
            .await
            .unwrap();
        store.flush().await.unwrap();
        // Nothing changed since: no new snapshot.
        let current = std::fs::read_to_string(dir.path().join(CURRENT_FILE)).unwrap();
        store.flush().await.unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join(CURRENT_FILE)).unwrap(),
            current
        );
        let expected = store.search(&data[42], 10, &scope("t", &[])).await.unwrap();
        drop(store);
        let snapshots = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(SNAPSHOT_PREFIX))
            .count();
        assert_eq!(snapshots, 1);

        let store = HnswStore::open(dir.path(), 16).unwrap();
        assert_eq!(store.applied_seq(), Seq(9));
        assert_eq!(store.live_count(), 290);
        let got = store.search(&data[42], 10, &scope("t", &[])).await.unwrap();
        assert_eq!(ids(&got), ids(&expected));
        let all = store
            .search(&data[42], usize::MAX, &scope("t", &[]))
            .await
            .unwrap();
        assert_eq!(all.len(), 290);
        assert!(
            store
                .search(&data[3], 10, &scope("t", &[]))
                .await
                .unwrap()
                .iter()
                .all(|c| c.chunk_id.0 >= 10)
        );
        // The ACL survived too.
        assert!(
            store
                .search(&data[42], 10, &scope("u", &[]))
                .await
                .unwrap()
                .is_empty()
        );

        // Opening with other dimensions starts empty instead of mixing vectors.
        drop(store);
        let other = HnswStore::open(dir.path(), 8).unwrap();
        assert_eq!(other.applied_seq(), Seq(0));
        assert_eq!(other.live_count(), 0);
    }

    #[tokio::test]
    async fn corrupt_snapshot_reopens_empty() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = random_store(dir.path(), 50, 8).await;
        store.flush().await.unwrap();
        drop(store);
        let current = std::fs::read_to_string(dir.path().join(CURRENT_FILE)).unwrap();
        let points = dir.path().join(current.trim()).join(POINTS_FILE);
        let mut bytes = std::fs::read(&points).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid..mid + 16].copy_from_slice(b"garbage garbage!");
        std::fs::write(&points, &bytes).unwrap();
        let store = HnswStore::open(dir.path(), 8).unwrap();
        assert_eq!(store.applied_seq(), Seq(0));
        assert_eq!(store.live_count(), 0);

        // Truncated garbage in every file is no worse.
        std::fs::write(&points, b"\x01\x02").unwrap();
        std::fs::write(
            dir.path().join(current.trim()).join(META_FILE),
            b"{not json",
        )
        .unwrap();
        assert_eq!(HnswStore::open(dir.path(), 8).unwrap().live_count(), 0);
        std::fs::write(dir.path().join(CURRENT_FILE), b"../../etc").unwrap();
        assert_eq!(
            HnswStore::open(dir.path(), 8).unwrap().applied_seq(),
            Seq(0)
        );
    }

    #[tokio::test]
    async fn bad_vectors_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let store = HnswStore::open(dir.path(), 4).unwrap();
        // Each component rounds so that the dot product with itself exceeds 1.
        let v = vec![0.500_000_06_f32; 4];
        assert!(v.iter().map(|x| x * x).sum::<f32>() > 1.0);
        let add = (0..200)
            .map(|i| {
                chunk(
                    i,
                    "d",
                    1,
                    Acl::tenant_wide("t"),
                    if i % 2 == 0 { v.clone() } else { vec![0.5; 4] },
                )
            })
            .collect();
        store
            .apply(IndexBatch {
                up_to: Seq(1),
                remove_docs: vec![],
                add,
            })
            .await
            .unwrap();
        let hits = store.search(&v, 5, &scope("t", &[])).await.unwrap();
        assert_eq!(hits.len(), 5);
        assert!(hits.iter().all(|c| c.score <= 1.0 && c.score >= -1.0));
        assert!(ClampedCosine.eval(&v, &v) >= 0.0);

        let wrong = IndexBatch {
            up_to: Seq(2),
            remove_docs: vec![DocId::from("d")],
            add: vec![chunk(999, "e", 2, Acl::tenant_wide("t"), vec![1.0; 3])],
        };
        let err = store.apply(wrong).await.unwrap_err();
        assert_eq!(err.kind, cairn_core::ErrorKind::Internal);
        assert_eq!(store.live_count(), 200, "a rejected batch changes nothing");
        assert_eq!(store.applied_seq(), Seq(1));
        let nan = IndexBatch {
            up_to: Seq(2),
            remove_docs: vec![],
            add: vec![chunk(999, "e", 2, Acl::tenant_wide("t"), vec![f32::NAN; 4])],
        };
        assert!(store.apply(nan).await.is_err());
        assert!(store.search(&[1.0; 5], 3, &scope("t", &[])).await.is_err());
        assert!(HnswStore::open(dir.path(), 0).is_err());
    }

    #[tokio::test]
    async fn readding_a_chunk_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = HnswStore::open(dir.path(), 2).unwrap();
        let t = Acl::tenant_wide("t");
        let first = IndexBatch {
            up_to: Seq(1),
            remove_docs: vec![],
            add: vec![chunk(1, "a", 1, t.clone(), vec![1.0, 0.0])],
        };
        store.apply(first.clone()).await.unwrap();
        store.apply(first).await.unwrap();
        assert_eq!(store.live_count(), 1);
        let hits = store
            .search(&[1.0, 0.0], 10, &scope("t", &[]))
            .await
            .unwrap();
        assert_eq!(ids(&hits), vec![1]);
        let moved = IndexBatch {
            up_to: Seq(2),
            remove_docs: vec![],
            add: vec![chunk(1, "a", 2, t, vec![0.0, 1.0])],
        };
        store.apply(moved).await.unwrap();
        let hits = store
            .search(&[0.0, 1.0], 10, &scope("t", &[]))
            .await
            .unwrap();
        assert_eq!(ids(&hits), vec![1]);
        assert!((hits[0].score - 1.0).abs() < 1e-6);
    }
}
