//! The [`Store`]: the catalog plus the indexes derived from it, kept consistent the way a
//! database keeps its tables consistent with its write-ahead log.
//!
//! The catalog is the log. Every write commits to it first, in one transaction that also
//! appends an op with the next sequence number; from then on it is acknowledged. Each
//! derived index (lexical, vector) records the last sequence number it applied, and
//! [`Store::sync`] replays the ops after it: for each page of ops it removes every touched
//! document from the index and adds that document's *current* chunks, if it still exists.
//! Replaying is therefore idempotent, and replaying from `Seq(0)` rebuilds an index
//! entirely; an index whose files are missing or corrupt reopens empty and is rebuilt.
//!
//! Invariant: a document is visible to search only when every index has all of its
//! chunks. Each indexed chunk carries the sequence number of the write that made it, and
//! searches are scoped to `seq <= visible_seq()`, the smallest sequence number every index
//! has applied. An acknowledged write is in the catalog, and the indexes catch up from it
//! on start (and after each write through this store), so a crash at any point loses
//! nothing acknowledged and leaves no half-visible document.

use crate::catalog::{META_DIMS, META_EMBEDDER_ID, SqliteCatalog};
use crate::error::IndexError;
use crate::lexical::TantivyIndex;
use crate::lock::DataDirLock;
use crate::vector::HnswStore;
use async_trait::async_trait;
use cairn_core::{
    AuditLog, Catalog, Chunk, ChunkId, Concepts, DerivedIndex, DerivedIndexes, DocId, Document,
    DocumentStore, Error, GraphRetriever, IndexBatch, IndexedChunk, KeyStore, LexicalIndex,
    NewChunk, NewDocument, Op, Origin, Result, Seq, VectorStore,
};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Ops read from the catalog per catch-up page.
const OPS_PAGE: usize = 1000;
/// A page is cut short once it carries this many chunks, to bound memory.
const MAX_CHUNKS_PER_BATCH: usize = 20_000;
/// Attempts at reading a document and its chunks from the same version.
const READ_ATTEMPTS: usize = 5;
/// Ids listed per index in a [`ConsistencyReport`] (the counts are exact).
const REPORT_SAMPLE: usize = 20;

/// Where and with which embedding model an embedded store lives.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub data_dir: PathBuf,
    /// The embedder's model id; recorded on first open, checked on every later one.
    pub embedder_id: String,
    pub dims: usize,
}

/// The catalog and its derived indexes, kept consistent.
pub struct Store {
    catalog: Arc<dyn Catalog>,
    /// The lexical and vector indexes and any other derived index (the graph), caught up
    /// in this order; what searches see is bounded by all of them.
    indexes: DerivedIndexes,
    /// Serializes catch-up, so a page is never applied twice at once.
    sync_lock: tokio::sync::Mutex<()>,
    /// Held for the life of an embedded store.
    _dir_lock: Option<DataDirLock>,
    /// `DATA_DIR/originals`: uploaded documents' bytes, one file per document id.
    originals: Option<PathBuf>,
    /// The embedded catalog, which also keeps API keys and the audit log.
    sql: Option<Arc<SqliteCatalog>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("indexes", &self.indexes)
            .finish()
    }
}

/// How each derived index compares with the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsistencyReport {
    pub catalog_seq: Seq,
    pub catalog_chunks: usize,
    pub indexes: Vec<IndexConsistency>,
}

/// One derived index against the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexConsistency {
    pub name: String,
    pub applied_seq: Seq,
    pub live_chunks: usize,
    /// Catalog chunks the index lacks: how many, and the first few ids.
    pub missing_count: usize,
    pub missing: Vec<ChunkId>,
    /// Index chunks the catalog no longer has: how many, and the first few ids.
    pub extra_count: usize,
    pub extra: Vec<ChunkId>,
}

impl IndexConsistency {
    pub fn is_consistent(&self, catalog_seq: Seq) -> bool {
        self.applied_seq == catalog_seq && self.missing_count == 0 && self.extra_count == 0
    }
}

impl ConsistencyReport {
    /// Every index has applied every write and holds exactly the catalog's chunks.
    pub fn is_consistent(&self) -> bool {
        self.indexes
            .iter()
            .all(|i| i.is_consistent(self.catalog_seq))
    }
}

impl Store {
    /// Wires a catalog and its lexical and vector indexes together. Call [`Store::sync`]
    /// to bring the indexes up to date.
    pub fn new(
        catalog: Arc<dyn Catalog>,
        lexical: Arc<dyn LexicalIndex>,
        vectors: Arc<dyn VectorStore>,
    ) -> Store {
        Store {
            catalog,
            indexes: DerivedIndexes::new(lexical, vectors),
            sync_lock: tokio::sync::Mutex::new(()),
            _dir_lock: None,
            originals: None,
            sql: None,
        }
    }

    /// Opens the embedded store in `opts.data_dir`: takes the data-dir lock, opens
    /// `catalog.sqlite`, checks the embedding settings, opens `lexical/` and `vectors/`,
    /// and catches the indexes up with the catalog.
    pub async fn open_embedded(opts: StoreOptions) -> Result<Store> {
        let started = Instant::now();
        let dir_lock = DataDirLock::acquire(&opts.data_dir)?;
        let catalog = SqliteCatalog::open(&opts.data_dir.join("catalog.sqlite")).await?;
        check_settings(&catalog, &opts.embedder_id, opts.dims).await?;
        let last = catalog.last_seq().await?;

        let lexical_dir = opts.data_dir.join("lexical");
        let lexical = open_derived(lexical_dir, last, TantivyIndex::open).await?;
        let vectors_dir = opts.data_dir.join("vectors");
        let dims = opts.dims;
        let vectors = open_derived(vectors_dir, last, move |d| HnswStore::open(d, dims)).await?;

        let catalog = Arc::new(catalog);
        let mut store = Store::new(catalog.clone(), Arc::new(lexical), Arc::new(vectors));
        store.sql = Some(catalog);
        store._dir_lock = Some(dir_lock);
        store.originals = Some(opts.data_dir.join("originals"));
        let from: Vec<String> = store
            .indexes
            .all()
            .map(|i| format!("{} {}", i.name(), i.applied_seq()))
            .collect();
        let behind = store.visible_seq() < last;
        let visible = store.sync().await?;
        if behind {
            store.flush().await?;
        }
        tracing::info!(
            data_dir = %opts.data_dir.display(),
            catalog_seq = last.0,
            indexes_from = from.join(", "),
            visible_seq = visible.0,
            took_ms = started.elapsed().as_millis() as u64,
            "store opened; derived indexes caught up with the catalog"
        );
        Ok(store)
    }

    pub fn catalog(&self) -> Arc<dyn Catalog> {
        self.catalog.clone()
    }

    /// Where API keys are kept (the embedded catalog), if this store has one.
    pub fn keys(&self) -> Option<Arc<dyn KeyStore>> {
        self.sql.clone().map(|c| c as Arc<dyn KeyStore>)
    }

    /// The audit log (the embedded catalog), if this store has one.
    pub fn audit(&self) -> Option<Arc<dyn AuditLog>> {
        self.sql.clone().map(|c| c as Arc<dyn AuditLog>)
    }

    pub fn lexical(&self) -> Arc<dyn LexicalIndex> {
        self.indexes.lexical().clone()
    }

    pub fn vectors(&self) -> Arc<dyn VectorStore> {
        self.indexes.vectors().clone()
    }

    /// Every derived index, taken together: what the query plan reads (one value shared
    /// with this store, so searches see only what all of them have applied).
    pub fn indexes(&self) -> DerivedIndexes {
        self.indexes.clone()
    }

    /// Adds a derived index beside the lexical and vector ones (the graph): it follows the
    /// catalog's write log like them. Call [`Store::sync`] to catch it up.
    pub fn with_index(mut self, index: Arc<dyn DerivedIndex>) -> Result<Store> {
        self.indexes = self.indexes.with(index)?;
        Ok(self)
    }

    /// Adds the concept graph: a derived index like [`Store::with_index`], and the
    /// retriever of the `graph` and `mix` search modes. Call [`Store::sync`] to catch it up.
    pub fn with_graph(mut self, graph: Arc<dyn GraphRetriever>) -> Result<Store> {
        self.indexes = self.indexes.with_graph(graph)?;
        Ok(self)
    }

    /// `Conflict` unless the catalog was built with this embedding model; records the
    /// model on a catalog that has none yet.
    pub async fn check_settings(&self, embedder_id: &str, dims: usize) -> Result<()> {
        check_settings(self.catalog.as_ref(), embedder_id, dims).await
    }

    /// The newest catalog write every derived index has applied: searches see only
    /// chunks written at or before it.
    pub fn visible_seq(&self) -> Seq {
        self.indexes.visible_seq()
    }

    /// Brings every derived index up to the catalog's last write; returns
    /// [`Store::visible_seq`] afterwards.
    pub async fn sync(&self) -> Result<Seq> {
        let _guard = self.sync_lock.lock().await;
        let last = self.catalog.last_seq().await?;
        for index in self.indexes.all() {
            if index.applied_seq() > last {
                return Err(Error::internal(format!(
                    "the {} index is at write {} but the catalog ends at {}: it was built from \
                     another catalog; delete it to have it rebuilt",
                    index.name(),
                    index.applied_seq(),
                    last
                )));
            }
        }
        let mut pages = 0usize;
        loop {
            let from = self.visible_seq();
            let ops = self.catalog.ops_since(from, OPS_PAGE).await?;
            if ops.is_empty() {
                break;
            }
            let batch = self.build_batch(&ops).await?;
            let behind: Vec<&dyn DerivedIndex> = self
                .indexes
                .all()
                .filter(|i| i.applied_seq() < batch.up_to)
                .collect();
            if let Some((last_index, others)) = behind.split_last() {
                for index in others {
                    index.apply(batch.clone()).await?;
                }
                last_index.apply(batch).await?;
            }
            if self.visible_seq() <= from {
                return Err(Error::internal(format!(
                    "derived indexes did not advance past write {from} after applying a batch"
                )));
            }
            pages += 1;
        }
        if pages > 0 {
            tracing::debug!(
                pages,
                visible_seq = self.visible_seq().0,
                "derived indexes caught up"
            );
        }
        Ok(self.visible_seq())
    }

    /// One batch for the ops of a page: remove every touched document, add the current
    /// chunks of those that still exist. Cut short after `MAX_CHUNKS_PER_BATCH` chunks.
    async fn build_batch(&self, ops: &[Op]) -> Result<IndexBatch> {
        let mut batch = IndexBatch::default();
        let mut touched = HashSet::new();
        for op in ops {
            batch.up_to = op.seq;
            if !touched.insert(op.doc_id.clone()) {
                continue;
            }
            batch.remove_docs.push(op.doc_id.clone());
            if let Some((doc, chunks)) = self.current_version(&op.doc_id).await? {
                batch.add.extend(
                    chunks
                        .into_iter()
                        .map(|(c, e, k)| indexed_chunk(&doc, c, e, k)),
                );
            }
            if batch.add.len() >= MAX_CHUNKS_PER_BATCH {
                break;
            }
        }
        Ok(batch)
    }

    /// A document and its chunks, read from the same version (a write may land between
    /// the two reads; then read again). `None` if it no longer exists.
    async fn current_version(
        &self,
        id: &DocId,
    ) -> Result<Option<(Document, Vec<(Chunk, Vec<f32>, Concepts)>)>> {
        for _ in 0..READ_ATTEMPTS {
            let Some(doc) = self.catalog.get_document(id).await? else {
                return Ok(None);
            };
            let chunks = self.catalog.chunks_with_embeddings(id).await?;
            // Only the graph reads concepts; without it, the catalog is not asked.
            let mut concepts = if self.indexes.all().any(|i| i.reads_concepts()) {
                let ids: Vec<ChunkId> = chunks.iter().map(|(c, _)| c.id).collect();
                self.catalog.concepts(&ids).await?
            } else {
                HashMap::new()
            };
            match self.catalog.get_document(id).await? {
                None => return Ok(None),
                Some(again) if again.seq == doc.seq => {
                    let chunks = chunks
                        .into_iter()
                        .map(|(c, e)| {
                            let found = concepts.remove(&c.id).unwrap_or_default();
                            (c, e, found)
                        })
                        .collect();
                    return Ok(Some((doc, chunks)));
                }
                Some(_) => continue,
            }
        }
        Err(Error::transient(format!(
            "document {id} kept changing while it was being indexed; try again"
        )))
    }

    /// Makes everything the derived indexes applied durable.
    pub async fn flush(&self) -> Result<()> {
        for index in self.indexes.all() {
            index.flush().await?;
        }
        Ok(())
    }

    /// Compares the catalog's chunk ids with each index's live ids, and each index's
    /// applied sequence number with the catalog's last. Meaningful while no write is in
    /// flight.
    pub async fn check_consistency(&self) -> Result<ConsistencyReport> {
        let _guard = self.sync_lock.lock().await;
        let catalog_seq = self.catalog.last_seq().await?;
        let catalog_ids = self.catalog.chunk_ids().await?;
        let mut indexes = Vec::new();
        for index in self.indexes.all() {
            let live = index.live_chunk_ids().await?;
            let (missing_count, missing) = difference(&catalog_ids, &live);
            let (extra_count, extra) = difference(&live, &catalog_ids);
            indexes.push(IndexConsistency {
                name: index.name().to_string(),
                applied_seq: index.applied_seq(),
                live_chunks: live.len(),
                missing_count,
                missing,
                extra_count,
                extra,
            });
        }
        Ok(ConsistencyReport {
            catalog_seq,
            catalog_chunks: catalog_ids.len(),
            indexes,
        })
    }
}

#[async_trait]
impl DocumentStore for Store {
    async fn find_by_origin(&self, tenant: &str, origin: &Origin) -> Result<Option<Document>> {
        self.catalog.find_by_origin(tenant, origin).await
    }

    async fn put_document(&self, doc: NewDocument, chunks: Vec<NewChunk>) -> Result<Document> {
        let stored = self.catalog.put_document(doc, chunks).await?;
        self.sync().await.map_err(|e| after_ack(e, stored.seq))?;
        Ok(stored)
    }

    async fn delete_document(&self, id: &DocId) -> Result<Seq> {
        let seq = self.catalog.delete_document(id).await?;
        if let Some(path) = self.original_path(id) {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(after_ack(
                        Error::internal(format!("cannot remove {}: {e}", path.display())),
                        seq,
                    ));
                }
            }
        }
        self.sync().await.map_err(|e| after_ack(e, seq))?;
        Ok(seq)
    }

    async fn keep_original(&self, id: &DocId, bytes: &[u8]) -> Result<()> {
        let Some(path) = self.original_path(id) else {
            return Ok(());
        };
        let bytes = bytes.to_vec();
        tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
            .await
            .map_err(|e| Error::internal("keeping the original failed").with_source(e))?
    }

    async fn original(&self, id: &DocId) -> Result<Option<Vec<u8>>> {
        let Some(path) = self.original_path(id) else {
            return Ok(None);
        };
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::internal(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }
}

impl Store {
    /// Where a document's kept original lives. Document ids are UUIDs; anything else is
    /// refused rather than turned into a path.
    fn original_path(&self, id: &DocId) -> Option<PathBuf> {
        let ok = !id.0.is_empty() && id.0.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        self.originals
            .as_ref()
            .filter(|_| ok)
            .map(|dir| dir.join(&id.0))
    }
}

/// Writes `bytes` to `path` through a synced temporary file and a rename, so the file is
/// either the old one or complete.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let fail = |e: std::io::Error| Error::internal(format!("cannot write {}: {e}", path.display()));
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(fail)?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(fail)?;
    f.write_all(bytes).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(fail)?;
    Ok(())
}

/// A catch-up failure after the write was acknowledged: say so, keep the kind.
fn after_ack(e: Error, seq: Seq) -> Error {
    let message = format!(
        "the write was stored (seq {seq}) but the indexes could not catch up; they will on the next start: {}",
        e.message
    );
    Error {
        kind: e.kind,
        message,
        source: e.source,
    }
}

/// What a derived index stores for a chunk. The lexical text is the title, the heading
/// path and the chunk text, one per line.
fn indexed_chunk(
    doc: &Document,
    chunk: Chunk,
    embedding: Vec<f32>,
    concepts: Concepts,
) -> IndexedChunk {
    let text = format!(
        "{}\n{}\n{}",
        doc.title,
        chunk.heading_path.join(" / "),
        chunk.text
    );
    IndexedChunk {
        chunk_id: chunk.id,
        doc_id: chunk.doc_id,
        seq: doc.seq,
        acl: doc.acl.clone(),
        lang: chunk.lang,
        text,
        embedding,
        concepts,
    }
}

/// Ids in sorted `a` but not in sorted `b`: how many, and the first few.
fn difference(a: &[ChunkId], b: &[ChunkId]) -> (usize, Vec<ChunkId>) {
    let (mut count, mut sample, mut j) = (0, Vec::new(), 0);
    for id in a {
        while j < b.len() && b[j] < *id {
            j += 1;
        }
        if j >= b.len() || b[j] != *id {
            count += 1;
            if sample.len() < REPORT_SAMPLE {
                sample.push(*id);
            }
        }
    }
    (count, sample)
}

/// Records the embedding model on a catalog that has none; `Conflict` if it has another.
async fn check_settings(catalog: &dyn Catalog, embedder_id: &str, dims: usize) -> Result<()> {
    let stored_model = catalog.meta_get(META_EMBEDDER_ID).await?;
    let stored_dims = catalog.meta_get(META_DIMS).await?;
    match (stored_model, stored_dims) {
        (Some(model), Some(d)) => {
            if model != embedder_id || d != dims.to_string() {
                return Err(IndexError::SettingsMismatch {
                    stored_model: model,
                    stored_dims: d,
                    model: embedder_id.to_string(),
                    dims,
                }
                .into());
            }
        }
        (model, d) => {
            if catalog.last_seq().await? > Seq(0) {
                tracing::warn!(
                    embedder_id,
                    dims,
                    "the catalog has documents but no complete record of its embedding model; \
                     recording the configured one"
                );
            }
            let model_differs = model.as_ref().is_some_and(|m| m != embedder_id);
            let dims_differ = d.as_ref().is_some_and(|d| *d != dims.to_string());
            if model_differs || dims_differ {
                return Err(IndexError::SettingsMismatch {
                    stored_model: model.unwrap_or_else(|| "?".into()),
                    stored_dims: d.unwrap_or_else(|| "?".into()),
                    model: embedder_id.to_string(),
                    dims,
                }
                .into());
            }
            // Dims first: the catalog checks embedding lengths against them.
            catalog.meta_set(META_DIMS, &dims.to_string()).await?;
            catalog.meta_set(META_EMBEDDER_ID, embedder_id).await?;
        }
    }
    Ok(())
}

/// Opens a derived index on a blocking thread. An index that is ahead of the catalog was
/// built from another catalog (a restored backup, a swapped file): it is deleted and
/// reopened empty, to be rebuilt.
async fn open_derived<T, F>(dir: PathBuf, catalog_seq: Seq, open: F) -> Result<T>
where
    T: DerivedIndex + 'static,
    F: Fn(&Path) -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let index = open(&dir)?;
        if index.applied_seq() <= catalog_seq {
            return Ok(index);
        }
        tracing::warn!(
            index = index.name(),
            dir = %dir.display(),
            index_seq = index.applied_seq().0,
            catalog_seq = catalog_seq.0,
            "derived index is ahead of the catalog; rebuilding it"
        );
        drop(index);
        std::fs::remove_dir_all(&dir)
            .map_err(IndexError::io("cannot remove stale index", dir.clone()))?;
        open(&dir)
    })
    .await
    .map_err(|e| Error::internal(format!("opening a derived index panicked: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::{Acl, Candidate, ErrorKind, Lang, Scope, Span};
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};

    /// An in-memory derived index that records what it was given.
    #[derive(Default)]
    struct MemIndex {
        /// Its name; "mem" when not given.
        label: Option<&'static str>,
        applied: AtomicI64,
        chunks: Mutex<BTreeMap<ChunkId, IndexedChunk>>,
        applies: AtomicUsize,
        fail: AtomicBool,
    }

    impl MemIndex {
        fn texts(&self) -> Vec<String> {
            self.chunks
                .lock()
                .unwrap()
                .values()
                .map(|c| c.text.clone())
                .collect()
        }
        fn scoped(&self, scope: &Scope) -> Vec<Candidate> {
            let chunks = self.chunks.lock().unwrap();
            chunks
                .values()
                .filter(|c| scope.admits(&c.acl, &c.doc_id, c.seq))
                .map(|c| Candidate {
                    chunk_id: c.chunk_id,
                    score: 1.0,
                })
                .collect()
        }
    }

    #[async_trait]
    impl DerivedIndex for MemIndex {
        fn name(&self) -> &'static str {
            self.label.unwrap_or("mem")
        }
        fn applied_seq(&self) -> Seq {
            Seq(self.applied.load(Ordering::SeqCst))
        }
        async fn apply(&self, batch: IndexBatch) -> Result<()> {
            if self.fail.load(Ordering::SeqCst) {
                return Err(Error::transient("index unavailable"));
            }
            let mut chunks = self.chunks.lock().unwrap();
            chunks.retain(|_, c| !batch.remove_docs.contains(&c.doc_id));
            for c in batch.add {
                chunks.insert(c.chunk_id, c);
            }
            self.applied.store(batch.up_to.0, Ordering::SeqCst);
            self.applies.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        async fn flush(&self) -> Result<()> {
            Ok(())
        }
        fn live_count(&self) -> usize {
            self.chunks.lock().unwrap().len()
        }
        async fn live_chunk_ids(&self) -> Result<Vec<ChunkId>> {
            Ok(self.chunks.lock().unwrap().keys().copied().collect())
        }
    }

    #[async_trait]
    impl LexicalIndex for MemIndex {
        async fn search(&self, _q: &str, _k: usize, scope: &Scope) -> Result<Vec<Candidate>> {
            Ok(self.scoped(scope))
        }
    }

    #[async_trait]
    impl VectorStore for MemIndex {
        async fn search(&self, _v: &[f32], _k: usize, scope: &Scope) -> Result<Vec<Candidate>> {
            Ok(self.scoped(scope))
        }
    }

    struct Fixture {
        _tmp: tempfile::TempDir,
        catalog: Arc<SqliteCatalog>,
        lexical: Arc<MemIndex>,
        vectors: Arc<MemIndex>,
        store: Store,
    }

    async fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let catalog = Arc::new(
            SqliteCatalog::open(&tmp.path().join("c.sqlite"))
                .await
                .unwrap(),
        );
        let (lexical, vectors) = (Arc::new(MemIndex::default()), Arc::new(MemIndex::default()));
        let store = Store::new(catalog.clone(), lexical.clone(), vectors.clone());
        Fixture {
            _tmp: tmp,
            catalog,
            lexical,
            vectors,
            store,
        }
    }

    fn new_doc(source: &str) -> NewDocument {
        NewDocument {
            title: format!("T {source}"),
            origin: Origin::upload(source).unwrap(),
            mime: "text/plain".into(),
            content_hash: "h".into(),
            chunker: "c".into(),
            acl: Acl {
                tenant: "t".into(),
                groups: vec!["g".into()],
            },
            pages: 1,
        }
    }

    fn new_chunk(text: &str) -> NewChunk {
        NewChunk {
            text: text.into(),
            page: 1,
            span: Span::new(0, text.len()),
            heading_path: vec!["H".into()],
            token_count: 1,
            lang: Lang::En,
            embedding: vec![1.0, 0.0],
            pieces: Vec::new(),
            concepts: Default::default(),
        }
    }

    #[tokio::test]
    async fn writes_through_the_store_reach_every_index() {
        let f = fixture().await;
        let doc = f
            .store
            .put_document(new_doc("a"), vec![new_chunk("x"), new_chunk("y")])
            .await
            .unwrap();
        assert_eq!(f.store.visible_seq(), doc.seq);
        assert_eq!(f.lexical.texts(), ["T a\nH\nx", "T a\nH\ny"]);
        assert_eq!(f.vectors.live_count(), 2);
        let stored = f
            .vectors
            .chunks
            .lock()
            .unwrap()
            .values()
            .next()
            .cloned()
            .unwrap();
        assert_eq!(
            (
                stored.seq,
                stored.acl.groups.clone(),
                stored.embedding.clone()
            ),
            (doc.seq, vec!["g".to_string()], vec![1.0, 0.0])
        );
        assert!(f.store.check_consistency().await.unwrap().is_consistent());

        let v2 = f
            .store
            .put_document(new_doc("a"), vec![new_chunk("z")])
            .await
            .unwrap();
        assert_eq!(f.lexical.texts(), ["T a\nH\nz"]);
        let seq = f.store.delete_document(&v2.id).await.unwrap();
        assert_eq!(f.store.visible_seq(), seq);
        assert_eq!(f.lexical.live_count() + f.vectors.live_count(), 0);
        assert!(f.store.check_consistency().await.unwrap().is_consistent());
    }

    #[tokio::test]
    async fn acknowledged_writes_become_visible_only_after_catch_up() {
        let f = fixture().await;
        let a = f
            .store
            .put_document(new_doc("a"), vec![new_chunk("x")])
            .await
            .unwrap();
        // Writes the indexes have not seen, as after a crash right after the commit.
        let b = f
            .catalog
            .put_document(new_doc("b"), vec![new_chunk("y")])
            .await
            .unwrap();
        let a2 = f
            .catalog
            .put_document(new_doc("a"), vec![new_chunk("x2"), new_chunk("x3")])
            .await
            .unwrap();
        assert_eq!(f.store.visible_seq(), a.seq);
        let scope = Scope {
            principal: cairn_core::Principal::new("t", vec!["g".into()]),
            doc_ids: None,
            max_seq: f.store.visible_seq(),
        };
        assert_eq!(
            LexicalIndex::search(&*f.lexical, "", 10, &scope)
                .await
                .unwrap()
                .len(),
            1
        );

        let report = f.store.check_consistency().await.unwrap();
        assert!(!report.is_consistent());
        assert_eq!(report.catalog_seq, a2.seq);
        assert_eq!(report.catalog_chunks, 3);
        assert_eq!(report.indexes[0].missing_count, 3);
        assert_eq!(report.indexes[0].extra_count, 1);

        assert_eq!(f.store.sync().await.unwrap(), a2.seq);
        assert!(b.seq < a2.seq);
        let mut texts = f.lexical.texts();
        texts.sort();
        assert_eq!(texts, ["T a\nH\nx2", "T a\nH\nx3", "T b\nH\ny"]);
        assert!(f.store.check_consistency().await.unwrap().is_consistent());
    }

    #[tokio::test]
    async fn an_empty_index_is_rebuilt_from_the_log_and_a_current_one_is_left_alone() {
        let f = fixture().await;
        let a = f
            .store
            .put_document(new_doc("a"), vec![new_chunk("x")])
            .await
            .unwrap();
        f.store
            .put_document(new_doc("b"), vec![new_chunk("y")])
            .await
            .unwrap();
        f.store.delete_document(&a.id).await.unwrap();
        f.store
            .put_document(new_doc("c"), vec![new_chunk("z")])
            .await
            .unwrap();

        let fresh = Arc::new(MemIndex::default());
        let store = Store::new(f.catalog.clone(), f.lexical.clone(), fresh.clone());
        let lexical_applies = f.lexical.applies.load(Ordering::SeqCst);
        store.sync().await.unwrap();
        // One page covers the whole log; the lexical index was current and got nothing.
        assert_eq!(fresh.applies.load(Ordering::SeqCst), 1);
        assert_eq!(f.lexical.applies.load(Ordering::SeqCst), lexical_applies);
        let mut texts = fresh.texts();
        texts.sort();
        assert_eq!(texts, ["T b\nH\ny", "T c\nH\nz"]);
        assert!(store.check_consistency().await.unwrap().is_consistent());
    }

    /// The graph joins the store as a third derived index: it is caught up from the log like
    /// the others, and until it has applied a write, that write is visible to no search,
    /// through the store or through the indexes the query plan shares with it.
    #[tokio::test]
    async fn a_third_derived_index_follows_the_log_and_bounds_what_searches_see() {
        let f = fixture().await;
        let a = f
            .store
            .put_document(new_doc("a"), vec![new_chunk("x")])
            .await
            .unwrap();
        let graph = Arc::new(MemIndex {
            label: Some("graph"),
            ..MemIndex::default()
        });
        let store = Store::new(f.catalog.clone(), f.lexical.clone(), f.vectors.clone())
            .with_index(graph.clone())
            .unwrap();
        let shared = store.indexes();
        assert_eq!(
            shared.all().map(|i| i.name()).collect::<Vec<_>>(),
            ["mem", "mem", "graph"]
        );
        assert_eq!(
            (store.visible_seq(), shared.visible_seq()),
            (Seq(0), Seq(0))
        );
        assert_eq!(store.sync().await.unwrap(), a.seq);
        assert_eq!(shared.visible_seq(), a.seq);
        assert_eq!(graph.texts(), ["T a\nH\nx"]);

        graph.fail.store(true, Ordering::SeqCst);
        let err = store
            .put_document(new_doc("b"), vec![new_chunk("y")])
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Transient);
        assert_eq!(f.lexical.texts().len(), 2, "the others applied the write");
        assert_eq!((store.visible_seq(), shared.visible_seq()), (a.seq, a.seq));
        graph.fail.store(false, Ordering::SeqCst);
        let b = store.sync().await.unwrap();
        assert!(b > a.seq);
        assert_eq!(shared.visible_seq(), b);
        let report = store.check_consistency().await.unwrap();
        assert_eq!(report.indexes.len(), 3);
        assert!(report.is_consistent(), "{report:?}");

        let twin = Arc::new(MemIndex {
            label: Some("graph"),
            ..MemIndex::default()
        });
        assert!(store.with_index(twin).is_err(), "two indexes of one name");
    }

    #[tokio::test]
    async fn a_failed_catch_up_reports_the_write_as_stored_and_recovers() {
        let f = fixture().await;
        f.vectors.fail.store(true, Ordering::SeqCst);
        let err = f
            .store
            .put_document(new_doc("a"), vec![new_chunk("x")])
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Transient);
        assert!(
            err.message.contains("was stored (seq 1)"),
            "{}",
            err.message
        );
        assert!(
            f.catalog
                .find_by_origin("t", &Origin::upload("a").unwrap())
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(f.store.visible_seq(), Seq(0));

        f.vectors.fail.store(false, Ordering::SeqCst);
        assert_eq!(f.store.sync().await.unwrap(), Seq(1));
        assert!(f.store.check_consistency().await.unwrap().is_consistent());
    }

    #[tokio::test]
    async fn an_index_ahead_of_the_catalog_is_an_error() {
        let f = fixture().await;
        f.lexical.applied.store(5, Ordering::SeqCst);
        let err = f.store.sync().await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Internal);
        assert!(
            err.message.contains("built from another catalog"),
            "{}",
            err.message
        );
    }

    #[tokio::test]
    async fn settings_are_recorded_once_then_enforced() {
        let f = fixture().await;
        f.store.check_settings("bge-small", 384).await.unwrap();
        assert_eq!(
            f.catalog.meta_get("embedder_id").await.unwrap().as_deref(),
            Some("bge-small")
        );
        assert_eq!(
            f.catalog.meta_get("dims").await.unwrap().as_deref(),
            Some("384")
        );
        f.store.check_settings("bge-small", 384).await.unwrap();
        let err = f.store.check_settings("bge-base", 768).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Conflict);
        assert_eq!(
            err.message,
            "this index was built with embedding model bge-small (384 dims) but the configured \
             model is bge-base (768 dims); re-index into a new --data-dir or restore the model"
        );
        assert_eq!(
            f.store
                .check_settings("bge-small", 512)
                .await
                .unwrap_err()
                .kind,
            ErrorKind::Conflict
        );
    }

    #[test]
    fn difference_counts_all_and_samples_a_few() {
        let a: Vec<ChunkId> = (1..=30).map(ChunkId).collect();
        let b = vec![ChunkId(2), ChunkId(4), ChunkId(100)];
        let (n, sample) = difference(&a, &b);
        assert_eq!(n, 28);
        assert_eq!(sample.len(), REPORT_SAMPLE);
        assert_eq!(sample[..3], [ChunkId(1), ChunkId(3), ChunkId(5)]);
        assert_eq!(difference(&b, &a), (1, vec![ChunkId(100)]));
    }

    #[test]
    fn indexed_text_is_title_headings_then_text() {
        let doc = Document {
            id: DocId::from("d"),
            title: "Guide".into(),
            origin: cairn_core::Origin::upload("g.md").unwrap(),
            mime: "text/markdown".into(),
            content_hash: "h".into(),
            chunker: "c".into(),
            version: 3,
            acl: cairn_core::Acl::tenant_wide("t"),
            pages: 1,
            chunk_count: 1,
            created_at: 0,
            updated_at: 0,
            seq: Seq(9),
        };
        let chunk = Chunk {
            id: ChunkId(5),
            doc_id: DocId::from("d"),
            ordinal: 0,
            text: "body".into(),
            page: 1,
            span: cairn_core::Span::new(0, 4),
            heading_path: vec!["A".into(), "B".into()],
            token_count: 1,
            lang: cairn_core::Lang::En,
        };
        let ic = indexed_chunk(&doc, chunk, vec![1.0], Concepts::default());
        assert_eq!(ic.text, "Guide\nA / B\nbody");
        assert_eq!(ic.seq, Seq(9));
        assert_eq!(ic.chunk_id, ChunkId(5));
        assert_eq!(ic.acl.tenant, "t");
    }
}
