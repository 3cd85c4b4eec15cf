//! Incremental re-indexing of folders (`cairn reindex`, and later the REST API): bring the
//! documents under some source folders in line with the files there.
//!
//! [`reindex`] walks each source (see [`crate::walk`]), then
//! - ingests every file found through the [`Ingestor`]: new files are added, changed ones
//!   become a new version of the same document, unchanged ones (same content hash and
//!   ACL) are skipped without parsing or embedding;
//! - deletes, through the [`DocumentStore`], the tenant's documents whose source lies under
//!   a walked folder (`<folder>/` prefix, so `/a/b` never touches `/a/bc`) and whose file
//!   was not found. Files under a sub-folder that could not be read are not treated as
//!   vanished, and a source that does not exist fails the whole run before anything is
//!   changed (an unmounted share must not empty the index).
//!
//! Each file is its own catalog transaction, so a run killed midway leaves every finished
//! file stored and the next run finishes the job; running twice in a row changes nothing
//! the second time. A file that fails is reported in [`ReindexReport::failed`] and the run
//! goes on.
//!
//! With [`ReindexOptions::dry_run`] nothing is written: each file's hash is compared with
//! the catalog (no parsing, no embedding) and the report lists what would change, with a
//! time [`Estimate`] from the embedder's speed measured on a few sample texts.

use crate::pipeline::{IngestOutcome, IngestStatus, Ingestor};
use crate::walk::{DEFAULT_EXTENSIONS, Walker};
use cairn_core::{
    Acl, Catalog, DocId, DocQuery, Document, DocumentStore, Embedder, Origin, OriginKind,
};
use cairn_core::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// What to re-index and how.
#[derive(Debug, Clone)]
pub struct ReindexOptions {
    /// Folders (walked) or files (taken as they are).
    pub sources: Vec<PathBuf>,
    pub walker: Walker,
    /// The ACL given to ingested documents; its tenant scopes the deletes.
    pub acl: Acl,
    /// Report what would change; write nothing.
    pub dry_run: bool,
}

/// What happened (or, in a dry run, would happen) to one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Added,
    Updated,
    Deleted,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Added => "added",
            Action::Updated => "updated",
            Action::Deleted => "deleted",
        }
    }
}

/// One change to the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Change {
    pub action: Action,
    pub source: String,
    /// The document (absent for a file a dry run would add).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_id: Option<DocId>,
    /// Chunks stored (added, updated), removed (deleted), or estimated (dry run).
    pub chunks: usize,
}

/// A file that could not be indexed, or a folder that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FailedFile {
    pub path: String,
    pub error: String,
}

/// A dry run's estimate of the work a real run would do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Estimate {
    /// Bytes of the files to add or update.
    pub bytes: u64,
    /// Word pieces to embed (counted for text files, guessed from size for others).
    pub tokens: u64,
    /// Chunks to embed, at the configured chunk size.
    pub chunks: u64,
    /// Measured embedding speed; 0 when nothing needs embedding (not measured).
    pub embed_ms_per_1k_tokens: f64,
    /// Estimated embedding time of the run, in seconds.
    pub seconds: f64,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReindexReport {
    pub added: usize,
    pub updated: usize,
    pub deleted: usize,
    pub unchanged: usize,
    pub failed: Vec<FailedFile>,
    /// Pages of the documents added or updated.
    pub pages: u64,
    /// Chunks of the documents added or updated.
    pub chunks: u64,
    /// Chunks the embedder had to cut to its input limit.
    pub truncated_chunks: u64,
    pub duration_ms: f64,
    pub dry_run: bool,
    /// Every add, update and delete, in the order done.
    pub changes: Vec<Change>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<Estimate>,
}

impl ReindexReport {
    /// Whether the run changed (or, dry, would change) anything.
    pub fn changed(&self) -> bool {
        self.added + self.updated + self.deleted > 0
    }
}

/// Progress of a run, for a progress bar or a log.
#[derive(Debug)]
pub enum Progress<'a> {
    /// The sources were walked: `files` to look at, `deletes` documents whose file vanished.
    Planned { files: usize, deletes: usize },
    /// Starting on a file.
    Working(&'a Path),
    /// A document was added, updated or deleted (or would be, in a dry run).
    Changed(&'a Change),
    /// A file was unchanged.
    Unchanged(&'a Path),
    /// A file failed (or a folder could not be read).
    Failed(&'a FailedFile),
}

/// What the walk found.
struct Plan {
    files: Vec<PathBuf>,
    deletes: Vec<Document>,
    unreadable: Vec<FailedFile>,
}

/// Root + `/`: the prefix of every source inside the folder `root`.
fn folder_prefix(root: &str) -> String {
    if root.ends_with('/') {
        root.to_string()
    } else {
        format!("{root}/")
    }
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .ok_or_else(|| Error::user(format!("{}: the path is not valid UTF-8", p.display())))
}

/// Walks the sources and finds the documents whose files vanished.
async fn plan(catalog: &dyn Catalog, opts: &ReindexOptions) -> Result<Plan> {
    if opts.sources.is_empty() {
        return Err(Error::user("no source folder or file given"));
    }
    let mut files = BTreeSet::new();
    let mut folders = Vec::new();
    let mut unreadable = Vec::new();
    for source in &opts.sources {
        let shown = source.display().to_string();
        let root = tokio::fs::canonicalize(source).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::not_found(format!("{shown}: no such file or folder"))
            } else {
                Error::user(format!("{shown}: {e}"))
            }
        })?;
        let meta = tokio::fs::metadata(&root)
            .await
            .map_err(|e| Error::user(format!("{shown}: {e}")))?;
        if !meta.is_dir() {
            files.insert(root);
            continue;
        }
        let walker = opts.walker.clone();
        let walk_root = root.clone();
        let walked = tokio::task::spawn_blocking(move || walker.walk(&walk_root))
            .await
            .map_err(|e| Error::internal("walking the folders failed").with_source(e))??;
        files.extend(walked.files);
        unreadable.extend(walked.unreadable.into_iter().map(|u| FailedFile {
            path: u.path.display().to_string(),
            error: format!("cannot read the folder: {}", u.error),
        }));
        folders.push(path_str(&root)?.to_string());
    }

    let seen: HashSet<&str> = files.iter().filter_map(|f| f.to_str()).collect();
    let blind: Vec<String> = unreadable.iter().map(|u| folder_prefix(&u.path)).collect();
    let mut deletes = Vec::new();
    let mut queued = HashSet::new();
    for folder in &folders {
        let q = DocQuery {
            principal: None,
            origin: Some(OriginKind::Path),
            source_prefix: Some(folder_prefix(folder)),
            limit: None,
        };
        for doc in catalog.list_documents(&q).await? {
            if doc.acl.tenant == opts.acl.tenant
                && !seen.contains(doc.source())
                && !blind.iter().any(|b| doc.source().starts_with(b.as_str()))
                && queued.insert(doc.id.clone())
            {
                deletes.push(doc);
            }
        }
    }
    Ok(Plan {
        files: files.into_iter().collect(),
        deletes,
        unreadable,
    })
}

/// Re-indexes `opts.sources`; see the module documentation. Errors only when the run
/// cannot start (a missing source, a bad path, the catalog unreadable); a file that fails
/// is reported in the result.
pub async fn reindex(
    ingestor: &Ingestor,
    catalog: Arc<dyn Catalog>,
    store: Arc<dyn DocumentStore>,
    opts: &ReindexOptions,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<ReindexReport> {
    let started = Instant::now();
    let plan = plan(catalog.as_ref(), opts).await?;
    progress(Progress::Planned {
        files: plan.files.len(),
        deletes: plan.deletes.len(),
    });
    let mut report = ReindexReport {
        dry_run: opts.dry_run,
        ..ReindexReport::default()
    };
    for f in plan.unreadable {
        progress(Progress::Failed(&f));
        report.failed.push(f);
    }
    if opts.dry_run {
        dry_run(
            ingestor,
            catalog.as_ref(),
            opts,
            &plan.files,
            &mut report,
            progress,
        )
        .await?;
    } else {
        for path in &plan.files {
            progress(Progress::Working(path));
            match ingestor.ingest_path(path, &opts.acl).await {
                Ok(outcome) => record(&mut report, path, outcome, progress),
                Err(e) => fail(&mut report, path, &e, progress),
            }
        }
    }
    for doc in plan.deletes {
        let change = Change {
            action: Action::Deleted,
            source: doc.source().to_string(),
            doc_id: Some(doc.id.clone()),
            chunks: doc.chunk_count as usize,
        };
        if !opts.dry_run {
            match store.delete_document(&doc.id).await {
                Ok(_) => {}
                // Gone already (deleted by someone else): nothing left to do.
                Err(e) if e.kind == ErrorKind::NotFound => continue,
                Err(e) => {
                    fail(&mut report, Path::new(doc.source()), &e, progress);
                    continue;
                }
            }
            tracing::info!(source = %doc.origin, doc_id = %doc.id, "deleted, file vanished");
        }
        report.deleted += 1;
        progress(Progress::Changed(&change));
        report.changes.push(change);
    }
    report.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(report)
}

fn record(
    report: &mut ReindexReport,
    path: &Path,
    outcome: IngestOutcome,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) {
    let action = match outcome.status {
        IngestStatus::Unchanged => {
            report.unchanged += 1;
            progress(Progress::Unchanged(path));
            return;
        }
        IngestStatus::Added => {
            report.added += 1;
            Action::Added
        }
        IngestStatus::Updated => {
            report.updated += 1;
            Action::Updated
        }
    };
    report.pages += u64::from(outcome.pages);
    report.chunks += outcome.chunks as u64;
    report.truncated_chunks += outcome.truncated as u64;
    let change = Change {
        action,
        source: outcome.origin.as_str().to_string(),
        doc_id: Some(outcome.doc_id),
        chunks: outcome.chunks,
    };
    progress(Progress::Changed(&change));
    report.changes.push(change);
}

fn fail(
    report: &mut ReindexReport,
    path: &Path,
    e: &Error,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) {
    let f = FailedFile {
        path: path.display().to_string(),
        error: e.to_string(),
    };
    tracing::debug!(path = %f.path, error = %f.error, "file failed");
    progress(Progress::Failed(&f));
    report.failed.push(f);
}

/// Word pieces assumed per byte of a file that is not UTF-8 text (PDF, DOCX): a rough
/// guess, since most of such a file is markup and compressed streams.
const BINARY_BYTES_PER_TOKEN: u64 = 16;

/// Compares each file's hash with the catalog and estimates the embedding work.
async fn dry_run(
    ingestor: &Ingestor,
    catalog: &dyn Catalog,
    opts: &ReindexOptions,
    files: &[PathBuf],
    report: &mut ReindexReport,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<()> {
    let embedder = ingestor.embedder();
    let mut estimate = Estimate {
        bytes: 0,
        tokens: 0,
        chunks: 0,
        embed_ms_per_1k_tokens: 0.0,
        seconds: 0.0,
    };
    for path in files {
        progress(Progress::Working(path));
        let looked = look(Arc::clone(&embedder), path.clone()).await;
        let looked = match looked {
            Ok(l) => l,
            Err(e) => {
                fail(report, path, &e, progress);
                continue;
            }
        };
        let existing = catalog
            .find_by_origin(&opts.acl.tenant, &Origin::Path(looked.source.clone()))
            .await?;
        let action = match &existing {
            Some(doc) if ingestor.is_current(doc, &looked.hash, &opts.acl) => {
                report.unchanged += 1;
                progress(Progress::Unchanged(path));
                continue;
            }
            Some(_) => {
                report.updated += 1;
                Action::Updated
            }
            None => {
                report.added += 1;
                Action::Added
            }
        };
        let chunks = looked.tokens.div_ceil(ingestor.max_tokens() as u64).max(1);
        estimate.bytes += looked.bytes;
        estimate.tokens += looked.tokens;
        estimate.chunks += chunks;
        let change = Change {
            action,
            source: looked.source,
            doc_id: existing.map(|d| d.id),
            chunks: chunks as usize,
        };
        progress(Progress::Changed(&change));
        report.changes.push(change);
    }
    report.chunks = estimate.chunks;
    if estimate.tokens > 0 {
        let ms_per_token = measure_embedding(embedder.as_ref()).await?;
        estimate.embed_ms_per_1k_tokens = ms_per_token * 1000.0;
        estimate.seconds = ms_per_token * estimate.tokens as f64 / 1000.0;
    }
    report.estimate = Some(estimate);
    Ok(())
}

/// One file as a dry run sees it.
struct Looked {
    source: String,
    hash: String,
    bytes: u64,
    tokens: u64,
}

/// Reads a file, hashes it and counts its word pieces, on the blocking pool.
async fn look(embedder: Arc<dyn Embedder>, path: PathBuf) -> Result<Looked> {
    tokio::task::spawn_blocking(move || {
        let shown = path.display().to_string();
        let io = |e: std::io::Error| {
            let msg = format!("{shown}: cannot read the file: {e}");
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::not_found(msg)
            } else {
                Error::user(msg)
            }
        };
        let canonical = std::fs::canonicalize(&path).map_err(io)?;
        let source = path_str(&canonical)?.to_string();
        let bytes = crate::walk::read_settled(&canonical)?;
        let hash = hex::encode(Sha256::digest(&bytes));
        let text_like = canonical
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| DEFAULT_EXTENSIONS.contains(&x.to_ascii_lowercase().as_str()));
        let tokens = match std::str::from_utf8(&bytes) {
            Ok(text) if text_like => embedder.count_tokens(text) as u64,
            _ => (bytes.len() as u64).div_ceil(BINARY_BYTES_PER_TOKEN),
        };
        Ok(Looked {
            source,
            hash,
            bytes: bytes.len() as u64,
            tokens,
        })
    })
    .await
    .map_err(|e| Error::internal("reading a file failed").with_source(e))?
}

/// Sample texts for measuring the embedder: `n` texts of about `tokens` word pieces.
fn sample_texts(counter: &dyn Embedder, n: usize, tokens: usize) -> Vec<String> {
    const WORDS: &[&str] = &[
        "the",
        "backup",
        "policy",
        "requires",
        "weekly",
        "tapes",
        "stored",
        "offsite",
        "and",
        "every",
        "restore",
        "is",
        "tested",
        "by",
        "operations",
        "staff",
        "before",
        "audit",
        "quarterly",
        "reports",
        "list",
        "incidents",
        "with",
        "their",
        "root",
        "causes",
    ];
    (0..n)
        .map(|i| {
            let mut text = format!("Sample {i}:");
            let mut w = i;
            // Count every few words: tokenizing is cheap next to embedding.
            while counter.count_tokens(&text) < tokens && text.len() < tokens * 16 {
                for _ in 0..8 {
                    text.push(' ');
                    text.push_str(WORDS[w % WORDS.len()]);
                    w = w.wrapping_mul(7).wrapping_add(3);
                }
            }
            text
        })
        .collect()
}

/// Milliseconds per word piece: one warm-up call, then 8 texts of ~150 word pieces, timed.
async fn measure_embedding(embedder: &dyn Embedder) -> Result<f64> {
    let texts = sample_texts(embedder, 8, 150);
    let tokens: usize = texts.iter().map(|t| embedder.count_tokens(t)).sum();
    embedder
        .embed(texts.iter().take(1).cloned().collect())
        .await?;
    let started = Instant::now();
    embedder.embed(texts).await?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(ms / tokens.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::config::ChunkConfig;
    use cairn_core::{Chunk, ChunkId, Embedded, NewChunk, NewDocument, Op, Seq, TokenCounter};
    use std::sync::Mutex;

    /// Words are tokens; every vector is the same.
    struct Words;
    impl TokenCounter for Words {
        fn count_tokens(&self, text: &str) -> usize {
            text.split_whitespace().count()
        }
    }
    #[async_trait::async_trait]
    impl Embedder for Words {
        fn model_id(&self) -> &str {
            "words"
        }
        fn dims(&self) -> usize {
            2
        }
        fn max_tokens(&self) -> usize {
            64
        }
        async fn embed(&self, texts: Vec<String>) -> Result<Embedded> {
            Ok(Embedded {
                truncated: vec![false; texts.len()],
                vectors: texts.iter().map(|_| vec![1.0, 0.0]).collect(),
            })
        }
    }

    /// A catalog and document store in memory: enough for reindex's calls.
    #[derive(Default)]
    struct Mem {
        docs: Mutex<Vec<Document>>,
        seq: Mutex<i64>,
    }
    impl Mem {
        fn next(&self) -> i64 {
            let mut s = self.seq.lock().unwrap();
            *s += 1;
            *s
        }
        fn sources(&self) -> Vec<String> {
            let mut s: Vec<_> = self
                .docs
                .lock()
                .unwrap()
                .iter()
                .map(|d| d.source().to_string())
                .collect();
            s.sort();
            s
        }
    }
    #[async_trait::async_trait]
    impl DocumentStore for Mem {
        async fn find_by_origin(&self, tenant: &str, origin: &Origin) -> Result<Option<Document>> {
            Catalog::find_by_origin(self, tenant, origin).await
        }
        async fn put_document(&self, doc: NewDocument, chunks: Vec<NewChunk>) -> Result<Document> {
            Catalog::put_document(self, doc, chunks).await
        }
        async fn delete_document(&self, id: &DocId) -> Result<Seq> {
            Catalog::delete_document(self, id).await
        }
    }
    #[async_trait::async_trait]
    impl Catalog for Mem {
        async fn find_by_origin(&self, tenant: &str, origin: &Origin) -> Result<Option<Document>> {
            let docs = self.docs.lock().unwrap();
            Ok(docs
                .iter()
                .find(|d| d.acl.tenant == tenant && &d.origin == origin)
                .cloned())
        }
        async fn put_document(&self, doc: NewDocument, chunks: Vec<NewChunk>) -> Result<Document> {
            let seq = self.next();
            let mut docs = self.docs.lock().unwrap();
            let old = docs
                .iter()
                .position(|d| d.acl.tenant == doc.acl.tenant && d.origin == doc.origin)
                .map(|i| docs.remove(i));
            let stored = Document {
                id: old
                    .as_ref()
                    .map_or(DocId(format!("d{seq}")), |d| d.id.clone()),
                title: doc.title,
                origin: doc.origin,
                mime: doc.mime,
                content_hash: doc.content_hash,
                chunker: doc.chunker,
                version: old.as_ref().map_or(1, |d| d.version + 1),
                acl: doc.acl,
                pages: doc.pages,
                chunk_count: chunks.len() as u32,
                created_at: seq,
                updated_at: seq,
                seq: Seq(seq),
            };
            docs.push(stored.clone());
            Ok(stored)
        }
        async fn delete_document(&self, id: &DocId) -> Result<Seq> {
            let seq = self.next();
            let mut docs = self.docs.lock().unwrap();
            let i = docs
                .iter()
                .position(|d| &d.id == id)
                .ok_or_else(|| Error::not_found("no such document"))?;
            docs.remove(i);
            Ok(Seq(seq))
        }
        async fn get_document(&self, _: &DocId) -> Result<Option<Document>> {
            unimplemented!()
        }
        async fn get_documents(&self, _: &[DocId]) -> Result<Vec<Document>> {
            unimplemented!()
        }
        async fn list_documents(&self, q: &DocQuery) -> Result<Vec<Document>> {
            let docs = self.docs.lock().unwrap();
            Ok(docs
                .iter()
                .filter(|d| {
                    q.origin.is_none_or(|k| d.origin.kind() == k)
                        && q.source_prefix
                            .as_ref()
                            .is_none_or(|p| d.source().starts_with(p.as_str()))
                })
                .cloned()
                .collect())
        }
        async fn chunks_of(&self, _: &DocId) -> Result<Vec<Chunk>> {
            unimplemented!()
        }
        async fn get_chunks(&self, _: &[ChunkId]) -> Result<Vec<Chunk>> {
            unimplemented!()
        }
        async fn chunks_with_embeddings(&self, _: &DocId) -> Result<Vec<(Chunk, Vec<f32>)>> {
            unimplemented!()
        }
        async fn ops_since(&self, _: Seq, _: usize) -> Result<Vec<Op>> {
            unimplemented!()
        }
        async fn last_seq(&self) -> Result<Seq> {
            Ok(Seq(*self.seq.lock().unwrap()))
        }
        async fn chunk_ids(&self) -> Result<Vec<ChunkId>> {
            unimplemented!()
        }
        async fn meta_get(&self, _: &str) -> Result<Option<String>> {
            Ok(None)
        }
        async fn meta_set(&self, _: &str, _: &str) -> Result<()> {
            Ok(())
        }
    }

    struct Fixture {
        _tmp: tempfile::TempDir,
        root: PathBuf,
        mem: Arc<Mem>,
        ingestor: Ingestor,
    }

    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap().join("docs");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("a.md"), "# A\n\nAlpha text here.\n").unwrap();
        std::fs::write(root.join("b.txt"), "Bravo text here.\n").unwrap();
        std::fs::write(root.join("sub/c.md"), "# C\n\nCharlie text.\n").unwrap();
        let mem = Arc::new(Mem::default());
        let ingestor = Ingestor::new(Arc::new(Words), mem.clone(), ChunkConfig::pack(64));
        Fixture {
            _tmp: tmp,
            root,
            mem,
            ingestor,
        }
    }

    impl Fixture {
        fn opts(&self, dry_run: bool) -> ReindexOptions {
            ReindexOptions {
                sources: vec![self.root.clone()],
                walker: Walker::default(),
                acl: Acl::tenant_wide("acme"),
                dry_run,
            }
        }
        async fn run(&self, opts: &ReindexOptions) -> (ReindexReport, Vec<String>) {
            let mut events = Vec::new();
            let report = reindex(
                &self.ingestor,
                self.mem.clone(),
                self.mem.clone(),
                opts,
                &mut |p| events.push(format!("{p:?}")),
            )
            .await
            .unwrap();
            (report, events)
        }
        fn src(&self, rel: &str) -> String {
            self.root.join(rel).to_str().unwrap().to_string()
        }
    }

    fn counts(r: &ReindexReport) -> [usize; 5] {
        [r.added, r.updated, r.deleted, r.unchanged, r.failed.len()]
    }

    #[tokio::test]
    async fn adds_then_nothing_then_updates_and_deletes() {
        let f = fixture();
        let (r, events) = f.run(&f.opts(false)).await;
        assert_eq!(counts(&r), [3, 0, 0, 0, 0]);
        assert_eq!((r.chunks, r.pages), (3, 3));
        assert!(events[0].starts_with("Planned { files: 3, deletes: 0 }"));
        assert_eq!(
            f.mem.sources(),
            [f.src("a.md"), f.src("b.txt"), f.src("sub/c.md")]
        );

        let seq = *f.mem.seq.lock().unwrap();
        let (r, _) = f.run(&f.opts(false)).await;
        assert_eq!(counts(&r), [0, 0, 0, 3, 0]);
        assert!(!r.changed());
        assert_eq!(
            *f.mem.seq.lock().unwrap(),
            seq,
            "a second run writes nothing"
        );

        std::fs::write(f.root.join("a.md"), "# A\n\nAlpha text, changed.\n").unwrap();
        std::fs::remove_file(f.root.join("sub/c.md")).unwrap();
        std::fs::write(f.root.join("d.txt"), "Delta.\n").unwrap();
        let (r, _) = f.run(&f.opts(false)).await;
        assert_eq!(counts(&r), [1, 1, 1, 1, 0]);
        let actions: Vec<_> = r
            .changes
            .iter()
            .map(|c| (c.action, c.source.clone()))
            .collect();
        assert_eq!(
            actions,
            [
                (Action::Updated, f.src("a.md")),
                (Action::Added, f.src("d.txt")),
                (Action::Deleted, f.src("sub/c.md")),
            ]
        );
        let a = Catalog::find_by_origin(f.mem.as_ref(), "acme", &Origin::Path(f.src("a.md")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.version, 2);
        assert_eq!(
            f.mem.sources(),
            [f.src("a.md"), f.src("b.txt"), f.src("d.txt")]
        );
    }

    #[tokio::test]
    async fn deletes_only_under_the_folder_and_for_the_tenant() {
        let f = fixture();
        f.run(&f.opts(false)).await;
        // a sibling folder sharing the name prefix, another tenant, and a file source
        let sibling = format!("{}-old/x.md", f.root.display());
        let other_tenant = f.src("gone.md");
        for (source, tenant) in [(&sibling, "acme"), (&other_tenant, "globex")] {
            Catalog::put_document(
                f.mem.as_ref(),
                NewDocument {
                    title: "x".into(),
                    origin: Origin::Path(source.clone()),
                    mime: "text/markdown".into(),
                    content_hash: "h".into(),
                    chunker: "c".into(),
                    acl: Acl::tenant_wide(tenant),
                    pages: 1,
                },
                vec![],
            )
            .await
            .unwrap();
        }
        let (r, _) = f.run(&f.opts(false)).await;
        assert_eq!(counts(&r), [0, 0, 0, 3, 0]);
        assert!(f.mem.sources().contains(&sibling));
        assert!(f.mem.sources().contains(&other_tenant));
    }

    #[tokio::test]
    async fn a_bad_file_is_reported_and_the_rest_goes_in() {
        let f = fixture();
        std::fs::write(f.root.join("empty.txt"), "   \n").unwrap();
        let (r, events) = f.run(&f.opts(false)).await;
        assert_eq!(counts(&r), [3, 0, 0, 0, 1]);
        assert_eq!(r.failed[0].path, f.src("empty.txt"));
        assert!(
            r.failed[0].error.starts_with("empty.txt: "),
            "{}",
            r.failed[0].error
        );
        assert!(events.iter().any(|e| e.starts_with("Failed")));
    }

    #[tokio::test]
    async fn dry_run_lists_changes_and_writes_nothing() {
        let f = fixture();
        let (r, _) = f.run(&f.opts(true)).await;
        assert!(r.dry_run);
        assert_eq!(counts(&r), [3, 0, 0, 0, 0]);
        assert!(f.mem.sources().is_empty());
        let est = r.estimate.clone().unwrap();
        assert_eq!(est.chunks, 3);
        assert_eq!(est.tokens, 5 + 3 + 4); // whitespace words of the three files
        assert!(est.seconds >= 0.0 && est.embed_ms_per_1k_tokens >= 0.0);

        f.run(&f.opts(false)).await;
        std::fs::write(f.root.join("b.txt"), "Bravo, edited.\n").unwrap();
        std::fs::remove_file(f.root.join("a.md")).unwrap();
        let seq = *f.mem.seq.lock().unwrap();
        let (r, _) = f.run(&f.opts(true)).await;
        assert_eq!(counts(&r), [0, 1, 1, 1, 0]);
        assert_eq!(*f.mem.seq.lock().unwrap(), seq, "a dry run writes nothing");
        assert_eq!(f.mem.sources().len(), 3);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["changes"][0]["action"], "updated");
        assert_eq!(json["changes"][1]["action"], "deleted");
        assert_eq!(json["dry_run"], true);
    }

    #[tokio::test]
    async fn a_missing_source_fails_before_anything_changes() {
        let f = fixture();
        f.run(&f.opts(false)).await;
        let mut opts = f.opts(false);
        opts.sources.push(f.root.join("nope"));
        let e = reindex(
            &f.ingestor,
            f.mem.clone(),
            f.mem.clone(),
            &opts,
            &mut |_| {},
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert!(
            e.message.ends_with("nope: no such file or folder"),
            "{}",
            e.message
        );
        // the whole root vanishing is an error too, not "delete everything"
        std::fs::remove_dir_all(&f.root).unwrap();
        let e = reindex(
            &f.ingestor,
            f.mem.clone(),
            f.mem.clone(),
            &f.opts(false),
            &mut |_| {},
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(f.mem.sources().len(), 3);
    }

    #[tokio::test]
    async fn globs_narrow_the_walk_and_excluded_files_are_removed() {
        let f = fixture();
        f.run(&f.opts(false)).await;
        let mut opts = f.opts(false);
        opts.walker = Walker::new(&[], &["sub/**".into()]).unwrap();
        let (r, _) = f.run(&opts).await;
        assert_eq!(counts(&r), [0, 0, 1, 2, 0]);
        assert_eq!(f.mem.sources(), [f.src("a.md"), f.src("b.txt")]);
    }

    #[test]
    fn folder_prefix_never_matches_a_sibling() {
        assert_eq!(folder_prefix("/a/b"), "/a/b/");
        assert_eq!(folder_prefix("/"), "/");
        assert!(!"/a/bc/x.md".starts_with(&folder_prefix("/a/b")));
    }

    #[test]
    fn sample_texts_reach_the_token_count() {
        let texts = sample_texts(&Words, 8, 150);
        assert_eq!(texts.len(), 8);
        for t in &texts {
            let n = Words.count_tokens(t);
            assert!((150..160).contains(&n), "{n}");
        }
        assert_ne!(texts[0], texts[1]);
    }
}
