//! The ingest pipeline: one file in, one stored document version out.
//!
//! For each file: hash the bytes (sha256); if the store already holds this source for
//! this tenant with the same hash, ACL and chunker signature, stop (`Unchanged`, nothing
//! is written). Otherwise parse and chunk on a blocking thread under `catch_unwind` (a
//! parser that panics fails this file only; the semantic chunker embeds the sentences in
//! between), embed every chunk text in one call (the embedder batches), and hand the
//! document and its chunks to the [`DocumentStore`] in one write, which makes the new
//! version visible atomically.

use crate::chunk::{self, ChunkDraft};
use crate::error::{IngestError, PanicMessage};
use crate::parse::parse_inner;
use cairn_core::config::{ChunkConfig, ChunkStrategy};
use cairn_core::{
    Acl, DocId, Document, DocumentStore, Embedder, NewChunk, NewDocument, Origin, Result,
    TokenCounter,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;

/// What happened to a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IngestStatus {
    /// First version of this source for this tenant.
    Added,
    /// The content (or ACL) changed: a new version replaced the old one.
    Updated,
    /// Same bytes and ACL as the stored version: nothing was written.
    Unchanged,
}

impl IngestStatus {
    /// The status as it appears in JSON and CLI output.
    pub fn as_str(self) -> &'static str {
        match self {
            IngestStatus::Added => "added",
            IngestStatus::Updated => "updated",
            IngestStatus::Unchanged => "unchanged",
        }
    }
}

/// The result of ingesting one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IngestOutcome {
    pub doc_id: DocId,
    /// In JSON, `origin` and `source`.
    #[serde(flatten)]
    pub origin: Origin,
    pub title: String,
    pub status: IngestStatus,
    /// The document version now stored.
    pub version: i64,
    /// Number of chunks of the stored version.
    pub chunks: usize,
    /// Chunks the embedder had to cut to its input limit (0 when unchanged).
    pub truncated: usize,
    pub pages: u32,
}

/// Runs the ingest pipeline against an embedder and a document store. Cheap to clone.
#[derive(Clone)]
pub struct Ingestor {
    embedder: Arc<dyn Embedder>,
    store: Arc<dyn DocumentStore>,
    /// The chunking settings, `max_tokens` capped at the embedder's limit.
    chunking: ChunkConfig,
    /// [`signature`] of `chunking`, recorded with every document.
    chunker: String,
}

/// What is recorded with every document: the chunker's [`chunk::signature`] and the
/// graph's concept extractor, so that a change to either re-indexes on the next `reindex`.
fn signature(chunking: &ChunkConfig) -> String {
    format!("{} {}", chunk::signature(chunking), cairn_graph::EXTRACTOR)
}

/// What the blocking half of the pipeline hands back.
struct Prepared {
    title: String,
    mime: &'static str,
    pages: u32,
    drafts: Vec<ChunkDraft>,
}

impl Ingestor {
    /// `chunking.max_tokens` is the chunk size; it is capped at the embedder's own input
    /// limit (when the embedder reports one) so that chunks are not cut when embedded.
    pub fn new(
        embedder: Arc<dyn Embedder>,
        store: Arc<dyn DocumentStore>,
        mut chunking: ChunkConfig,
    ) -> Self {
        let model_limit = embedder.max_tokens();
        if model_limit > 0 {
            chunking.max_tokens = chunking.max_tokens.min(model_limit);
        }
        chunking.max_tokens = chunking.max_tokens.max(1);
        let chunker = signature(&chunking);
        Ingestor {
            embedder,
            store,
            chunking,
            chunker,
        }
    }

    /// The chunk size in tokens actually used.
    pub fn max_tokens(&self) -> usize {
        self.chunking.max_tokens
    }

    /// The chunker signature recorded with each document this pipeline writes.
    pub fn chunker(&self) -> &str {
        &self.chunker
    }

    /// Whether `doc` is what ingesting content with this hash and ACL would store anyway:
    /// same bytes, same ACL, cut by the same chunker.
    pub fn is_current(&self, doc: &Document, content_hash: &str, acl: &Acl) -> bool {
        doc.content_hash == content_hash && same_acl(&doc.acl, acl) && doc.chunker == self.chunker
    }

    /// The embedder this pipeline uses (to count tokens or measure its speed).
    pub fn embedder(&self) -> Arc<dyn Embedder> {
        Arc::clone(&self.embedder)
    }

    /// Reads a file on this machine and ingests it; its origin is the canonical absolute
    /// path. Which paths a caller may have read is decided before this (`cairn-service`).
    pub async fn ingest_path(&self, path: &Path, acl: &Acl) -> Result<IngestOutcome> {
        let shown = path.display().to_string();
        let canonical = tokio::fs::canonicalize(path)
            .await
            .map_err(|source| IngestError::Io {
                path: shown.clone(),
                source,
            })?;
        if canonical.to_str().is_none() {
            return Err(IngestError::BadPath {
                path: shown,
                reason: "the path is not valid UTF-8",
            }
            .into());
        }
        let origin = Origin::path(&canonical)?;
        // Read on the blocking pool, retried while the file is still being written.
        let bytes = tokio::task::spawn_blocking(move || crate::walk::read_settled(&canonical))
            .await
            .map_err(|_| IngestError::Cancelled { file: shown })??;
        self.ingest_bytes(&bytes, &origin, acl).await
    }

    /// Ingests a file's bytes as the document of `acl.tenant` from `origin`. The parser is
    /// chosen by the origin's file name.
    pub async fn ingest_bytes(
        &self,
        bytes: &[u8],
        origin: &Origin,
        acl: &Acl,
    ) -> Result<IngestOutcome> {
        let source = origin.as_str();
        let bytes: Arc<[u8]> = Arc::from(bytes);
        let content_hash = {
            let bytes = Arc::clone(&bytes);
            tokio::task::spawn_blocking(move || hex::encode(Sha256::digest(&bytes)))
                .await
                .map_err(|e| {
                    cairn_core::Error::internal("hashing the file failed").with_source(e)
                })?
        };
        let existing = self.store.find_by_origin(&acl.tenant, origin).await?;
        if let Some(doc) = &existing
            && self.is_current(doc, &content_hash, acl)
        {
            tracing::debug!(source, doc_id = %doc.id, "unchanged, skipped");
            metrics::counter!("cairn_ingest_documents_total", "status" => "unchanged").increment(1);
            return Ok(IngestOutcome {
                doc_id: doc.id.clone(),
                origin: origin.clone(),
                title: doc.title.clone(),
                status: IngestStatus::Unchanged,
                version: doc.version,
                chunks: doc.chunk_count as usize,
                truncated: 0,
                pages: doc.pages,
            });
        }

        let file_name = origin.file_name().to_string();
        let prepared = self.prepare(bytes, file_name.clone()).await?;
        if prepared.drafts.is_empty() {
            return Err(IngestError::NoChunks { file: file_name }.into());
        }

        let texts: Vec<String> = prepared.drafts.iter().map(|d| d.text.clone()).collect();
        // The graph's concepts are found on a blocking thread while the embedder works.
        let read: Vec<(String, cairn_core::Lang)> = prepared
            .drafts
            .iter()
            .map(|d| (d.text.clone(), d.lang))
            .collect();
        let concepts = guarded(&file_name, move || {
            Ok(read
                .iter()
                .map(|(text, lang)| cairn_graph::extract(text, *lang))
                .collect::<Vec<_>>())
        });
        let (embedded, concepts) = tokio::join!(self.embedder.embed(texts), concepts);
        let (embedded, concepts) = (embedded?, concepts?);
        if embedded.vectors.len() != prepared.drafts.len() {
            return Err(IngestError::EmbedderContract {
                expected: prepared.drafts.len(),
                got: embedded.vectors.len(),
            }
            .into());
        }
        let truncated = embedded.truncated.iter().filter(|&&t| t).count();
        let chunk_count = prepared.drafts.len();
        let mut pieces = if self.chunking.piece_vectors {
            let texts: Vec<Option<&str>> = prepared
                .drafts
                .iter()
                .map(|d| Some(d.text.as_str()))
                .collect();
            cairn_core::embed_pieces(&*self.embedder, Vec::new(), &texts)
                .await?
                .1
        } else {
            vec![Vec::new(); chunk_count]
        };
        let chunks: Vec<NewChunk> = prepared
            .drafts
            .into_iter()
            .zip(embedded.vectors)
            .zip(pieces.iter_mut())
            .zip(concepts)
            .map(|(((d, embedding), pieces), concepts)| NewChunk {
                text: d.text,
                page: d.page,
                span: d.span,
                heading_path: d.heading_path,
                token_count: d.token_count,
                lang: d.lang,
                embedding,
                pieces: std::mem::take(pieces),
                concepts,
            })
            .collect();
        let new_doc = NewDocument {
            title: prepared.title,
            origin: origin.clone(),
            mime: prepared.mime.to_string(),
            content_hash,
            chunker: self.chunker.clone(),
            acl: acl.clone(),
            pages: prepared.pages,
        };
        let doc = self.store.put_document(new_doc, chunks).await?;
        let status = if existing.is_some() {
            IngestStatus::Updated
        } else {
            IngestStatus::Added
        };
        tracing::info!(source, doc_id = %doc.id, version = doc.version, chunks = chunk_count,
            truncated, ?status, "ingested");
        metrics::counter!("cairn_ingest_documents_total", "status" => status.as_str()).increment(1);
        metrics::counter!("cairn_ingest_chunks_total").increment(chunk_count as u64);
        Ok(IngestOutcome {
            doc_id: doc.id,
            origin: origin.clone(),
            title: doc.title,
            status,
            version: doc.version,
            chunks: chunk_count,
            truncated,
            pages: doc.pages,
        })
    }

    /// Parses and chunks on the blocking pool; a panic becomes this file's error. The
    /// semantic chunker embeds the sentences between its two blocking steps.
    async fn prepare(&self, bytes: Arc<[u8]>, file_name: String) -> Result<Prepared> {
        let embedder = Arc::clone(&self.embedder);
        let config = self.chunking.clone();
        let name = file_name.clone();
        let (parsed, stage) = guarded(&file_name, move || {
            let parsed = parse_inner(&bytes, &name)?;
            let counter: &dyn TokenCounter = &*embedder;
            let stage = match config.strategy {
                ChunkStrategy::Pack => {
                    Stage::Chunked(chunk::chunk(&parsed, counter, config.max_tokens))
                }
                ChunkStrategy::Semantic => Stage::Planned(chunk::plan(&parsed, counter, &config)),
            };
            Ok((parsed, stage))
        })
        .await?;
        let (parsed, drafts) = match stage {
            Stage::Chunked(drafts) => (parsed, drafts),
            Stage::Planned(plan) => {
                let texts = plan.texts(&parsed);
                let vectors = if texts.is_empty() {
                    Vec::new()
                } else {
                    self.embedder.embed(texts).await?.vectors
                };
                let embedder = Arc::clone(&self.embedder);
                let config = self.chunking.clone();
                guarded(&file_name, move || {
                    let counter: &dyn TokenCounter = &*embedder;
                    let drafts = chunk::cut(&parsed, &plan, &vectors, counter, &config);
                    Ok((parsed, drafts))
                })
                .await?
            }
        };
        Ok(Prepared {
            title: parsed.title,
            mime: parsed.mime,
            pages: parsed.pages,
            drafts,
        })
    }
}

/// Where chunking stands after the first blocking step.
enum Stage {
    /// Packed: done.
    Chunked(Vec<ChunkDraft>),
    /// Semantic: the sentences still need their embeddings.
    Planned(chunk::Plan),
}

/// Runs `work` on the blocking pool under `catch_unwind`: a panic fails this file only.
async fn guarded<T: Send + 'static>(
    file_name: &str,
    work: impl FnOnce() -> std::result::Result<T, IngestError> + Send + 'static,
) -> Result<T> {
    let joined =
        tokio::task::spawn_blocking(move || std::panic::catch_unwind(AssertUnwindSafe(work))).await;
    let file = file_name.to_string();
    match joined {
        Ok(Ok(done)) => Ok(done?),
        Ok(Err(payload)) => {
            let message = cairn_core::panic_message(payload.as_ref());
            tracing::error!(file = %file, %message, "parser panicked");
            Err(IngestError::Panicked {
                file,
                panic: PanicMessage(message),
            }
            .into())
        }
        Err(e) if e.is_panic() => {
            let message = cairn_core::panic_message(e.into_panic().as_ref());
            Err(IngestError::Panicked {
                file,
                panic: PanicMessage(message),
            }
            .into())
        }
        Err(_) => Err(IngestError::Cancelled { file }.into()),
    }
}

/// Whether two ACLs grant the same access (group order and duplicates do not matter).
fn same_acl(a: &Acl, b: &Acl) -> bool {
    a.tenant == b.tenant && group_set(a) == group_set(b)
}

fn group_set(acl: &Acl) -> Vec<&str> {
    let mut g: Vec<&str> = acl.groups.iter().map(String::as_str).collect();
    g.sort_unstable();
    g.dedup();
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::{Document, Embedded, ErrorKind, Seq};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts whitespace-separated words; returns fixed vectors; reports inputs over
    /// `limit` words as truncated; panics on "PANIC" to stand in for a crashing parser.
    struct FakeEmbedder {
        limit: usize,
        calls: AtomicUsize,
    }
    impl TokenCounter for FakeEmbedder {
        fn count_tokens(&self, text: &str) -> usize {
            assert!(!text.contains("PANIC"), "tokenizer exploded");
            text.split_whitespace().count()
        }
    }
    #[async_trait::async_trait]
    impl Embedder for FakeEmbedder {
        fn model_id(&self) -> &str {
            "fake"
        }
        fn dims(&self) -> usize {
            2
        }
        fn max_tokens(&self) -> usize {
            self.limit
        }
        async fn embed(&self, texts: Vec<String>) -> Result<Embedded> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(Embedded {
                truncated: texts
                    .iter()
                    .map(|t| t.split_whitespace().count() > self.limit)
                    .collect(),
                vectors: texts.iter().map(|_| vec![1.0, 0.0]).collect(),
            })
        }
    }

    /// Keeps documents in a Vec; counts writes.
    #[derive(Default)]
    struct MemStore {
        docs: Mutex<Vec<(Document, Vec<NewChunk>)>>,
        writes: AtomicUsize,
    }
    #[async_trait::async_trait]
    impl DocumentStore for MemStore {
        async fn find_by_origin(&self, tenant: &str, origin: &Origin) -> Result<Option<Document>> {
            let docs = self.docs.lock().unwrap();
            Ok(docs
                .iter()
                .find(|(d, _)| d.acl.tenant == tenant && &d.origin == origin)
                .map(|(d, _)| d.clone()))
        }
        async fn put_document(&self, doc: NewDocument, chunks: Vec<NewChunk>) -> Result<Document> {
            let seq = self.writes.fetch_add(1, Ordering::SeqCst) as i64 + 1;
            let mut docs = self.docs.lock().unwrap();
            let old = docs
                .iter()
                .position(|(d, _)| d.acl.tenant == doc.acl.tenant && d.origin == doc.origin);
            let (id, version, created_at) = match old {
                Some(i) => {
                    let (d, _) = docs.remove(i);
                    (d.id, d.version + 1, d.created_at)
                }
                None => (DocId(format!("doc-{seq}")), 1, seq),
            };
            let stored = Document {
                id,
                title: doc.title,
                origin: doc.origin,
                mime: doc.mime,
                content_hash: doc.content_hash,
                chunker: doc.chunker,
                version,
                acl: doc.acl,
                pages: doc.pages,
                chunk_count: chunks.len() as u32,
                created_at,
                updated_at: seq,
                seq: Seq(seq),
            };
            docs.push((stored.clone(), chunks));
            Ok(stored)
        }
        async fn delete_document(&self, _id: &DocId) -> Result<Seq> {
            unreachable!("ingest never deletes")
        }
    }

    fn setup(limit: usize, max_tokens: usize) -> (Ingestor, Arc<MemStore>, Arc<FakeEmbedder>) {
        let store = Arc::new(MemStore::default());
        let embedder = Arc::new(FakeEmbedder {
            limit,
            calls: AtomicUsize::new(0),
        });
        let ingestor = Ingestor::new(
            embedder.clone(),
            store.clone(),
            ChunkConfig::pack(max_tokens),
        );
        (ingestor, store, embedder)
    }

    fn acme() -> Acl {
        Acl::tenant_wide("acme")
    }

    /// A server path for an absolute name, an upload otherwise.
    fn origin(name: &str) -> Origin {
        if name.starts_with('/') {
            Origin::Path(name.to_string())
        } else {
            Origin::upload(name).unwrap()
        }
    }

    #[tokio::test]
    async fn added_then_unchanged_then_updated() {
        let (ing, store, embedder) = setup(100, 100);
        let v1 = b"# Policy\n\nRemote work is allowed.\n";
        let out = ing
            .ingest_bytes(v1, &origin("hr/policy.md"), &acme())
            .await
            .unwrap();
        assert_eq!(out.status, IngestStatus::Added);
        assert_eq!((out.version, out.chunks, out.pages), (1, 1, 1));
        assert_eq!(out.title, "Policy");
        assert_eq!(store.writes.load(Ordering::SeqCst), 1);

        let again = ing
            .ingest_bytes(v1, &origin("hr/policy.md"), &acme())
            .await
            .unwrap();
        assert_eq!(again.status, IngestStatus::Unchanged);
        assert_eq!(
            (again.doc_id.clone(), again.version, again.chunks),
            (out.doc_id.clone(), 1, 1)
        );
        assert_eq!(
            store.writes.load(Ordering::SeqCst),
            1,
            "unchanged must not write"
        );
        assert_eq!(
            embedder.calls.load(Ordering::SeqCst),
            1,
            "unchanged must not embed"
        );

        let v2 = b"# Policy\n\nRemote work is allowed.\n\n## Hours\n\nCore hours are 10-4.\n";
        let upd = ing
            .ingest_bytes(v2, &origin("hr/policy.md"), &acme())
            .await
            .unwrap();
        assert_eq!(upd.status, IngestStatus::Updated);
        assert_eq!((upd.doc_id, upd.version, upd.chunks), (out.doc_id, 2, 2));

        // the same bytes under another tenant are a different document
        let other = ing
            .ingest_bytes(v1, &origin("hr/policy.md"), &Acl::tenant_wide("globex"))
            .await
            .unwrap();
        assert_eq!(other.status, IngestStatus::Added);
    }

    #[tokio::test]
    async fn an_acl_change_is_an_update() {
        let (ing, store, _) = setup(100, 100);
        let bytes = b"salary bands";
        let hr = Acl {
            tenant: "acme".into(),
            groups: vec!["hr".into(), "legal".into()],
        };
        ing.ingest_bytes(bytes, &origin("bands.txt"), &hr)
            .await
            .unwrap();
        let reordered = Acl {
            tenant: "acme".into(),
            groups: vec!["legal".into(), "hr".into()],
        };
        let same = ing
            .ingest_bytes(bytes, &origin("bands.txt"), &reordered)
            .await
            .unwrap();
        assert_eq!(same.status, IngestStatus::Unchanged);
        let hr_only = Acl {
            tenant: "acme".into(),
            groups: vec!["hr".into()],
        };
        let upd = ing
            .ingest_bytes(bytes, &origin("bands.txt"), &hr_only)
            .await
            .unwrap();
        assert_eq!(upd.status, IngestStatus::Updated);
        assert_eq!(store.docs.lock().unwrap()[0].0.acl, hr_only);
    }

    #[tokio::test]
    async fn chunks_reach_the_store_with_exact_spans() {
        let (ing, store, _) = setup(100, 4);
        let src =
            "Title line here\n\nalpha beta gamma delta epsilon. zeta eta.\x0csecond page text\n";
        let out = ing
            .ingest_bytes(src.as_bytes(), &origin("/data/notes.txt"), &acme())
            .await
            .unwrap();
        assert_eq!(out.pages, 2);
        let docs = store.docs.lock().unwrap();
        let (doc, chunks) = &docs[0];
        assert_eq!(doc.mime, "text/plain");
        assert_eq!(
            doc.content_hash,
            hex::encode(Sha256::digest(src.as_bytes()))
        );
        assert_eq!(doc.title, "Title line here");
        assert_eq!(chunks.len(), out.chunks);
        for c in chunks {
            assert_eq!(c.text, &src[c.span.start..c.span.end]);
            assert!(c.token_count <= 4);
            assert_eq!(c.embedding, vec![1.0, 0.0]);
        }
        assert_eq!(
            chunks.last().map(|c| (c.text.as_str(), c.page)),
            Some(("second page text", 2))
        );
    }

    #[tokio::test]
    async fn chunk_size_is_capped_at_the_model_limit_and_truncation_is_reported() {
        let (ing, _, _) = setup(3, 100);
        assert_eq!(ing.max_tokens(), 3);

        // a model that reports no limit leaves the chunk size alone, and the embedder's
        // own truncation is counted
        let (ing, _, _) = setup(0, 100);
        assert_eq!(ing.max_tokens(), 100);
        let store = Arc::new(MemStore::default());
        let embedder = Arc::new(FakeEmbedder {
            limit: 2,
            calls: AtomicUsize::new(0),
        });
        let chunking = ChunkConfig::pack(10);
        let ing = Ingestor {
            embedder,
            store,
            chunker: signature(&chunking),
            chunking,
        };
        let out = ing
            .ingest_bytes(b"one two three\n\n\x0cfour", &origin("t.txt"), &acme())
            .await
            .unwrap();
        assert_eq!((out.chunks, out.truncated), (2, 1));
    }

    #[tokio::test]
    async fn piece_vectors_are_embedded_in_one_more_call_and_stored_per_chunk() {
        let (ing, store, embedder) = setup(100, 100);
        let text = b"Rotate the key. Then restart it.\nIt works now\n";
        ing.ingest_bytes(text, &origin("a.txt"), &acme())
            .await
            .unwrap();
        let (_, chunks) = store.docs.lock().unwrap()[0].clone();
        assert!(chunks.iter().all(|c| c.pieces.is_empty()), "off by default");
        let before = embedder.calls.load(Ordering::SeqCst);

        // turning them on changes the chunker signature, so the same bytes are re-embedded
        let with_pieces = ChunkConfig {
            piece_vectors: true,
            ..ChunkConfig::pack(100)
        };
        let ing2 = Ingestor::new(embedder.clone(), store.clone(), with_pieces);
        let out = ing2
            .ingest_bytes(text, &origin("a.txt"), &acme())
            .await
            .unwrap();
        assert_eq!((out.status, out.version), (IngestStatus::Updated, 2));
        // the chunks in one call, their pieces in one more
        assert_eq!(embedder.calls.load(Ordering::SeqCst) - before, 2);
        let (doc, chunks) = store.docs.lock().unwrap().last().cloned().unwrap();
        assert_eq!(doc.chunker, "pack-v2 max=100 pieces concepts-v1");
        assert_eq!(chunks.len(), 1);
        // three pieces of two dims each
        assert_eq!(cairn_core::pieces(&chunks[0].text).len(), 3);
        assert_eq!(chunks[0].pieces, [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
    }

    /// Each chunk goes to the store with the concepts its own text mentions, spans
    /// relative to it.
    #[tokio::test]
    async fn chunks_carry_the_concepts_their_text_mentions() {
        let (ing, store, _) = setup(100, 100);
        let text = "Resize it with the Logical Volume Manager (LVM) first.\n\n\x0c\
                    Then edit /etc/fstab on every Debian host.\n";
        ing.ingest_bytes(text.as_bytes(), &origin("a.txt"), &acme())
            .await
            .unwrap();
        let (_, chunks) = store.docs.lock().unwrap()[0].clone();
        assert_eq!(chunks.len(), 2, "one chunk per page");
        for c in &chunks {
            assert_eq!(c.concepts, cairn_graph::extract(&c.text, c.lang));
            for m in &c.concepts.mentions {
                assert!(c.text.get(m.start..m.end).is_some(), "{m:?}");
            }
        }
        let keys = |i: usize| -> Vec<String> {
            chunks[i]
                .concepts
                .mentions
                .iter()
                .map(|m| m.key.clone())
                .collect()
        };
        assert!(
            keys(0).contains(&"logical volume manager".to_string()),
            "{:?}",
            keys(0)
        );
        assert_eq!(chunks[0].concepts.merges.len(), 1);
        assert!(keys(1).contains(&"/etc/fstab".to_string()), "{:?}", keys(1));
        assert!(
            keys(1).contains(&"debian host".to_string()),
            "{:?}",
            keys(1)
        );
    }

    #[tokio::test]
    async fn a_new_chunker_setting_re_chunks_unchanged_files() {
        let (ing, store, embedder) = setup(100, 100);
        let text = b"First point here. Second point here. Third point here. Fourth one.\n";
        let out = ing
            .ingest_bytes(text, &origin("a.txt"), &acme())
            .await
            .unwrap();
        assert_eq!(out.status, IngestStatus::Added);
        assert_eq!(
            store.docs.lock().unwrap()[0].0.chunker,
            "pack-v2 max=100 concepts-v1"
        );

        // same bytes, semantic settings: a new version, cut by the semantic chunker,
        // which embeds the sentences first (one call) and then the chunks (one call)
        let semantic = ChunkConfig {
            strategy: ChunkStrategy::Semantic,
            min_tokens: 2,
            ..ChunkConfig::pack(100)
        };
        let ing2 = Ingestor::new(embedder.clone(), store.clone(), semantic);
        let before = embedder.calls.load(Ordering::SeqCst);
        let out2 = ing2
            .ingest_bytes(text, &origin("a.txt"), &acme())
            .await
            .unwrap();
        assert_eq!((out2.status, out2.version), (IngestStatus::Updated, 2));
        assert_eq!(embedder.calls.load(Ordering::SeqCst) - before, 2);
        let (doc, chunks) = store.docs.lock().unwrap().last().cloned().unwrap();
        assert_eq!(
            doc.chunker,
            "semantic-v2 max=100 min=2 pct=90 overlap=0 concepts-v1"
        );
        for c in &chunks {
            assert_eq!(
                c.text,
                &std::str::from_utf8(text).unwrap()[c.span.start..c.span.end]
            );
        }
        // and with the same settings it is unchanged again
        let out3 = ing2
            .ingest_bytes(text, &origin("a.txt"), &acme())
            .await
            .unwrap();
        assert_eq!(out3.status, IngestStatus::Unchanged);
    }

    #[tokio::test]
    async fn bad_files_fail_alone_and_write_nothing() {
        let (ing, store, embedder) = setup(100, 100);
        let e = ing
            .ingest_bytes(b"%PDF-1.4", &origin("scan.pdf"), &acme())
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::User);
        assert!(
            e.message.starts_with("scan.pdf: damaged or truncated PDF"),
            "{}",
            e.message
        );

        let e = ing
            .ingest_bytes(b"# Only\n\n## Headings\n", &origin("/x/h.md"), &acme())
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::User);
        assert_eq!(e.message, "h.md: the document has no indexable text");

        let e = ing
            .ingest_bytes(b"fine text then PANIC", &origin("/x/boom.txt"), &acme())
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Internal);
        assert!(
            e.message.starts_with("boom.txt: the parser failed"),
            "{}",
            e.message
        );
        assert!(e.to_string().contains("tokenizer exploded"), "{e}");

        assert_eq!(store.writes.load(Ordering::SeqCst), 0);
        assert_eq!(embedder.calls.load(Ordering::SeqCst), 0);
        // the ingestor still works after a panic
        let ok = ing
            .ingest_bytes(b"fine", &origin("fine.txt"), &acme())
            .await
            .unwrap();
        assert_eq!(ok.status, IngestStatus::Added);
    }

    #[tokio::test]
    async fn ingest_path_uses_the_canonical_path_as_source() {
        let (ing, _, _) = setup(100, 100);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("guide.md");
        std::fs::write(&file, "# Guide\n\nStep one.\n").unwrap();
        let roundabout = dir.path().join(".").join("guide.md");
        let out = ing.ingest_path(&roundabout, &acme()).await.unwrap();
        let canonical = std::fs::canonicalize(&file).unwrap();
        assert_eq!(out.origin, Origin::path(&canonical).unwrap());
        assert_eq!(out.title, "Guide");
        let again = ing.ingest_path(&canonical, &acme()).await.unwrap();
        assert_eq!(again.status, IngestStatus::Unchanged);

        let e = ing
            .ingest_path(&dir.path().join("missing.txt"), &acme())
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert!(
            e.message.ends_with("missing.txt: no such file"),
            "{}",
            e.message
        );
        let e = ing.ingest_path(dir.path(), &acme()).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::User, "{}", e.message);
    }

    #[test]
    fn outcome_serialises_in_snake_case() {
        let out = IngestOutcome {
            doc_id: DocId::from("d1"),
            origin: Origin::upload("a.md").unwrap(),
            title: "A".into(),
            status: IngestStatus::Unchanged,
            version: 3,
            chunks: 2,
            truncated: 0,
            pages: 1,
        };
        let json = serde_json::to_value(&out).unwrap();
        assert_eq!(json["doc_id"], "d1");
        assert_eq!(json["origin"], "upload");
        assert_eq!(json["source"], "a.md");
        assert_eq!(json["status"], "unchanged");
        for st in [
            IngestStatus::Added,
            IngestStatus::Updated,
            IngestStatus::Unchanged,
        ] {
            assert_eq!(serde_json::to_value(st).unwrap(), st.as_str());
        }
        assert_eq!(json["version"], 3);
    }
}
