//! The lexical index: BM25 over chunk text with tantivy.
//!
//! One tantivy document per chunk. English chunks are analysed into `text_en` (simple
//! tokenizer, long-token removal, lower-casing, English stop words, English stemming);
//! Chinese chunks into `text_zh` (jieba, lower-casing). A query is analysed with both
//! analysers and becomes a disjunction of term queries over both fields, so user text never
//! meets a query syntax. The [`Scope`] (tenant, groups, document ids, newest sequence number)
//! is a required, non-scoring clause of the same query: filtering happens inside the index,
//! before ranking.
//!
//! The last applied catalog sequence number is stored in tantivy's commit payload, so it
//! becomes durable together with the documents it describes. Every `apply` commits, which
//! makes `flush` a no-op. A directory that cannot be opened is moved aside and the index
//! starts empty at `Seq(0)`, to be rebuilt from the catalog.

use crate::blocking;
use std::collections::HashSet;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cairn_core::{
    Candidate, ChunkId, DerivedIndex, Error, IndexBatch, IndexedChunk, Lang, LexicalIndex, Result,
    Scope, Seq,
};
use serde::{Deserialize, Serialize};
use tantivy::Searcher;
use tantivy::collector::TopDocs;
use tantivy::query::{
    BooleanQuery, ConstScoreQuery, Occur, Query, RangeQuery, TermQuery, TermSetQuery,
};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

/// Memory budget of the single index writer.
const WRITER_BUDGET_BYTES: usize = 50_000_000;
/// Name of the English analyser.
const EN_TOKENIZER: &str = "en_stem";
/// Name of the Chinese analyser.
const ZH_TOKENIZER: &str = "zh";

/// What this index keeps in tantivy's commit payload.
#[derive(Debug, Serialize, Deserialize)]
struct CommitPayload {
    applied_seq: i64,
}

/// The fields of the schema.
#[derive(Debug, Clone, Copy)]
struct Fields {
    chunk_id: Field,
    doc_id: Field,
    seq: Field,
    tenant: Field,
    groups: Field,
    text_en: Field,
    text_zh: Field,
}

fn build_schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = |tokenizer: &str| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tokenizer)
                .set_index_option(IndexRecordOption::WithFreqs),
        )
    };
    let fields = Fields {
        chunk_id: b.add_u64_field(
            "chunk_id",
            NumericOptions::default()
                .set_indexed()
                .set_fast()
                .set_stored(),
        ),
        doc_id: b.add_text_field("doc_id", STRING | STORED),
        seq: b.add_u64_field("seq", NumericOptions::default().set_indexed().set_fast()),
        tenant: b.add_text_field("tenant", STRING),
        groups: b.add_text_field("groups", STRING),
        text_en: b.add_text_field("text_en", text(EN_TOKENIZER)),
        text_zh: b.add_text_field("text_zh", text(ZH_TOKENIZER)),
    };
    (b.build(), fields)
}

fn register_tokenizers(index: &Index) -> Result<()> {
    let stop_words = StopWordFilter::new(Language::English)
        .ok_or_else(|| Error::internal("tantivy has no English stop-word list"))?;
    let en = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(stop_words)
        .filter(Stemmer::new(Language::English))
        .build();
    let zh = TextAnalyzer::builder(tantivy_jieba::JiebaTokenizer::new())
        .filter(LowerCaser)
        .build();
    index.tokenizers().register(EN_TOKENIZER, en);
    index.tokenizers().register(ZH_TOKENIZER, zh);
    Ok(())
}

fn tantivy_err(what: &str, e: tantivy::TantivyError) -> Error {
    Error::internal(format!("lexical index: {what}")).with_source(e)
}

/// Chunk ids and sequence numbers are stored as u64 by reinterpreting the bits, which keeps
/// every i64 round-trip exact.
fn id_to_u64(id: ChunkId) -> u64 {
    id.0 as u64
}

fn seq_to_u64(seq: Seq) -> u64 {
    seq.0.max(0) as u64
}

struct Inner {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
    applied: AtomicI64,
    live: AtomicU64,
}

/// The tantivy-backed [`LexicalIndex`].
#[derive(Clone)]
pub struct TantivyIndex {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TantivyIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TantivyIndex")
            .field("applied_seq", &self.inner.applied.load(Ordering::Acquire))
            .field("live", &self.inner.live.load(Ordering::Acquire))
            .finish()
    }
}

impl TantivyIndex {
    /// Opens the index in `dir`, creating it if needed. A directory whose index cannot be
    /// opened (corrupt, or built with another schema) is moved aside to
    /// `<dir>.corrupt-<millis>` and a fresh, empty index starts at `Seq(0)`.
    pub fn open(dir: &Path) -> Result<TantivyIndex> {
        match Self::try_open(dir) {
            Ok(index) => Ok(index),
            Err(OpenError::Fatal(e)) => Err(e),
            Err(OpenError::Unreadable(e)) => {
                let aside = aside_path(dir);
                tracing::warn!(
                    dir = %dir.display(),
                    moved_to = %aside.display(),
                    error = %e,
                    "lexical index unreadable; starting empty, it will be rebuilt from the catalog"
                );
                std::fs::rename(dir, &aside).map_err(|io| {
                    Error::internal(format!(
                        "lexical index: cannot move unreadable {} aside",
                        dir.display()
                    ))
                    .with_source(io)
                })?;
                Self::try_open(dir).map_err(OpenError::into_error)
            }
        }
    }

    fn try_open(dir: &Path) -> Result<TantivyIndex, OpenError> {
        use OpenError::{Fatal, Unreadable};
        std::fs::create_dir_all(dir).map_err(|e| {
            Fatal(
                Error::internal(format!("lexical index: cannot create {}", dir.display()))
                    .with_source(e),
            )
        })?;
        let (schema, fields) = build_schema();
        let mmap = tantivy::directory::MmapDirectory::open(dir).map_err(|e| {
            Fatal(Error::internal(format!(
                "lexical index: cannot open {}: {e}",
                dir.display()
            )))
        })?;
        let index = Index::open_or_create(mmap, schema)
            .map_err(|e| Unreadable(tantivy_err("cannot open the index", e)))?;
        register_tokenizers(&index).map_err(Fatal)?;
        let metas = index
            .load_metas()
            .map_err(|e| Unreadable(tantivy_err("cannot read metadata", e)))?;
        let applied = match metas.payload {
            None => Seq(0),
            Some(p) => {
                let payload: CommitPayload = serde_json::from_str(&p).map_err(|e| {
                    Unreadable(
                        Error::internal("lexical index: unreadable commit payload").with_source(e),
                    )
                })?;
                Seq(payload.applied_seq)
            }
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e| Unreadable(tantivy_err("cannot open a reader", e)))?;
        // A held lock means another process owns this index: never move it aside.
        let writer = index.writer(WRITER_BUDGET_BYTES).map_err(|e| match e {
            tantivy::TantivyError::LockFailure(..) => Fatal(
                Error::new(
                    cairn_core::ErrorKind::Conflict,
                    format!(
                        "lexical index {} is locked by another writer",
                        dir.display()
                    ),
                )
                .with_source(e),
            ),
            e => Fatal(tantivy_err("cannot open the writer", e)),
        })?;
        let live = reader.searcher().num_docs();
        Ok(TantivyIndex {
            inner: Arc::new(Inner {
                index,
                reader,
                writer: Mutex::new(writer),
                fields,
                applied: AtomicI64::new(applied.0),
                live: AtomicU64::new(live),
            }),
        })
    }
}

/// Why opening failed: unreadable contents (recovered by starting empty) or anything else.
#[derive(Debug)]
enum OpenError {
    Unreadable(Error),
    Fatal(Error),
}

impl OpenError {
    fn into_error(self) -> Error {
        match self {
            OpenError::Unreadable(e) | OpenError::Fatal(e) => e,
        }
    }
}

fn aside_path(dir: &Path) -> PathBuf {
    let mut name = dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".corrupt-{}", cairn_core::now_millis()));
    dir.with_file_name(name)
}

impl Inner {
    fn apply(&self, batch: IndexBatch) -> Result<()> {
        let f = self.fields;
        let mut writer = self
            .writer
            .lock()
            .map_err(|_| Error::internal("lexical index: writer lock poisoned"))?;
        for doc in &batch.remove_docs {
            writer.delete_term(Term::from_field_text(f.doc_id, doc.as_str()));
        }
        for chunk in &batch.add {
            // Replaying a batch must not duplicate a chunk that is already there.
            writer.delete_term(Term::from_field_u64(f.chunk_id, id_to_u64(chunk.chunk_id)));
            writer
                .add_document(self.to_document(chunk))
                .map_err(|e| tantivy_err("cannot add a chunk", e))?;
        }
        let payload = serde_json::to_string(&CommitPayload {
            applied_seq: batch.up_to.0,
        })
        .map_err(|e| Error::internal("lexical index: cannot encode payload").with_source(e))?;
        let mut prepared = writer
            .prepare_commit()
            .map_err(|e| tantivy_err("cannot prepare the commit", e))?;
        prepared.set_payload(&payload);
        prepared
            .commit()
            .map_err(|e| tantivy_err("cannot commit", e))?;
        drop(writer);
        self.reader
            .reload()
            .map_err(|e| tantivy_err("cannot reload the reader", e))?;
        self.live
            .store(self.reader.searcher().num_docs(), Ordering::Release);
        self.applied.store(batch.up_to.0, Ordering::Release);
        Ok(())
    }

    fn to_document(&self, chunk: &IndexedChunk) -> TantivyDocument {
        let f = self.fields;
        let mut doc = TantivyDocument::default();
        doc.add_u64(f.chunk_id, id_to_u64(chunk.chunk_id));
        doc.add_text(f.doc_id, chunk.doc_id.as_str());
        doc.add_u64(f.seq, seq_to_u64(chunk.seq));
        doc.add_text(f.tenant, &chunk.acl.tenant);
        for g in chunk.acl.index_groups() {
            doc.add_text(f.groups, &g);
        }
        let text_field = match chunk.lang {
            Lang::Zh => f.text_zh,
            _ => f.text_en,
        };
        doc.add_text(text_field, &chunk.text);
        doc
    }

    /// The analysed terms of `query` for `field`, without duplicates, in first-seen order.
    fn analyse(&self, field: Field, query: &str) -> Result<Vec<Term>> {
        let mut analyzer = self
            .index
            .tokenizer_for_field(field)
            .map_err(|e| tantivy_err("no analyser for a text field", e))?;
        let mut stream = analyzer.token_stream(query);
        let mut seen = HashSet::new();
        let mut terms = Vec::new();
        while stream.advance() {
            let text = &stream.token().text;
            if !text.trim().is_empty() && seen.insert(text.clone()) {
                terms.push(Term::from_field_text(field, text));
            }
        }
        Ok(terms)
    }

    /// The filter of `scope` over the chunks `searcher` holds.
    ///
    /// Built so that the intersection with the text query only seeks: the groups as a
    /// union of term postings (a `TermSetQuery` would build a bit set of every matching
    /// chunk on every search), and the sequence range left out when no chunk of the searcher
    /// lies past `scope.max_seq` (the seq column's maximum, read from the same searcher, so a
    /// concurrent commit cannot slip a newer chunk past it).
    fn scope_query(&self, scope: &Scope, searcher: &Searcher) -> Result<Box<dyn Query>> {
        let f = self.fields;
        let p = &scope.principal;
        let term = |field, text: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, text),
                IndexRecordOption::Basic,
            ))
        };
        let mut groups: Vec<Box<dyn Query>> =
            p.index_groups().iter().map(|g| term(f.groups, g)).collect();
        let groups = if groups.len() == 1 {
            groups.remove(0)
        } else {
            Box::new(BooleanQuery::new(
                groups.into_iter().map(|q| (Occur::Should, q)).collect(),
            ))
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
            (Occur::Must, term(f.tenant, &p.tenant)),
            (Occur::Must, groups),
        ];
        let mut newest = 0u64;
        for segment in searcher.segment_readers() {
            let column = segment
                .fast_fields()
                .u64("seq")
                .map_err(|e| tantivy_err("no seq column", e))?;
            newest = newest.max(column.max_value());
        }
        if newest > seq_to_u64(scope.max_seq) {
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Unbounded,
                    Bound::Included(Term::from_field_u64(f.seq, seq_to_u64(scope.max_seq))),
                )),
            ));
        }
        if let Some(ids) = &scope.doc_ids {
            clauses.push((
                Occur::Must,
                Box::new(TermSetQuery::new(
                    ids.iter()
                        .map(|d| Term::from_field_text(f.doc_id, d.as_str())),
                )),
            ));
        }
        Ok(Box::new(ConstScoreQuery::new(
            Box::new(BooleanQuery::new(clauses)),
            0.0,
        )))
    }

    fn search(&self, query: &str, k: usize, scope: &Scope) -> Result<Vec<Candidate>> {
        if k == 0 || scope.max_seq.0 < 0 || scope.doc_ids.as_ref().is_some_and(|d| d.is_empty()) {
            return Ok(Vec::new());
        }
        let f = self.fields;
        let mut text: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for field in [f.text_en, f.text_zh] {
            for term in self.analyse(field, query)? {
                text.push((
                    Occur::Should,
                    Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)),
                ));
            }
        }
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let searcher = self.reader.searcher();
        let full = BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(BooleanQuery::new(text)) as Box<dyn Query>,
            ),
            (Occur::Must, self.scope_query(scope, &searcher)?),
        ]);
        let k = k.min(searcher.num_docs() as usize);
        if k == 0 {
            return Ok(Vec::new());
        }
        let top = searcher
            .search(&full, &TopDocs::with_limit(k).order_by_score())
            .map_err(|e| tantivy_err("search failed", e))?;
        let mut out = Vec::with_capacity(top.len());
        let mut columns = std::collections::HashMap::new();
        for (score, addr) in top {
            let column = match columns.entry(addr.segment_ord) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => v.insert(
                    searcher
                        .segment_reader(addr.segment_ord)
                        .fast_fields()
                        .u64("chunk_id")
                        .map_err(|e| tantivy_err("no chunk_id column", e))?,
                ),
            };
            let id = column.first(addr.doc_id).ok_or_else(|| {
                Error::internal("lexical index: a matching chunk has no chunk_id")
            })?;
            out.push(Candidate {
                chunk_id: ChunkId(id as i64),
                score,
            });
        }
        Ok(out)
    }

    fn live_chunk_ids(&self) -> Result<Vec<ChunkId>> {
        let searcher = self.reader.searcher();
        let mut ids = Vec::with_capacity(searcher.num_docs() as usize);
        for segment in searcher.segment_readers() {
            let column = segment
                .fast_fields()
                .u64("chunk_id")
                .map_err(|e| tantivy_err("no chunk_id column", e))?;
            for doc in segment.doc_ids_alive() {
                if let Some(id) = column.first(doc) {
                    ids.push(ChunkId(id as i64));
                }
            }
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }
}

#[async_trait]
impl DerivedIndex for TantivyIndex {
    fn name(&self) -> &'static str {
        "lexical"
    }

    fn applied_seq(&self) -> Seq {
        Seq(self.inner.applied.load(Ordering::Acquire))
    }

    async fn apply(&self, batch: IndexBatch) -> Result<()> {
        let inner = self.inner.clone();
        blocking("lexical index", move || inner.apply(batch)).await
    }

    /// Every `apply` ends in a tantivy commit that carries its sequence number, so there is
    /// nothing left to make durable.
    async fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn live_count(&self) -> usize {
        self.inner.live.load(Ordering::Acquire) as usize
    }

    async fn live_chunk_ids(&self) -> Result<Vec<ChunkId>> {
        let inner = self.inner.clone();
        blocking("lexical index", move || inner.live_chunk_ids()).await
    }
}

#[async_trait]
impl LexicalIndex for TantivyIndex {
    async fn search(&self, query: &str, k: usize, scope: &Scope) -> Result<Vec<Candidate>> {
        let inner = self.inner.clone();
        let query = query.to_string();
        let scope = scope.clone();
        blocking("lexical index", move || inner.search(&query, k, &scope)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::{Acl, DocId, Principal};

    fn chunk(id: i64, doc: &str, seq: i64, acl: Acl, lang: Lang, text: &str) -> IndexedChunk {
        IndexedChunk {
            chunk_id: ChunkId(id),
            doc_id: DocId::from(doc),
            seq: Seq(seq),
            acl,
            lang,
            text: text.to_string(),
            embedding: Vec::new(),
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

    fn acme() -> Acl {
        Acl::tenant_wide("acme")
    }

    async fn sample(dir: &Path) -> TantivyIndex {
        let index = TantivyIndex::open(dir).unwrap();
        let hr = Acl {
            tenant: "acme".into(),
            groups: vec!["hr".into()],
        };
        index
            .apply(IndexBatch {
                up_to: Seq(3),
                remove_docs: vec![],
                add: vec![
                    chunk(
                        1,
                        "a",
                        1,
                        acme(),
                        Lang::En,
                        "Configuring the VPN client on Linux",
                    ),
                    chunk(
                        2,
                        "a",
                        1,
                        acme(),
                        Lang::En,
                        "Printers are on the second floor",
                    ),
                    chunk(3, "b", 2, acme(), Lang::Zh, "如何配置公司的虚拟专用网络"),
                    chunk(4, "c", 3, hr, Lang::En, "Salary bands and VPN stipends"),
                    chunk(
                        5,
                        "d",
                        3,
                        Acl::tenant_wide("other"),
                        Lang::En,
                        "VPN setup for other",
                    ),
                ],
            })
            .await
            .unwrap();
        index
    }

    #[tokio::test]
    async fn english_stemming_matches_inflections() {
        let dir = tempfile::tempdir().unwrap();
        let index = sample(dir.path()).await;
        let hits = index
            .search("configure", usize::MAX, &scope("acme", &[]))
            .await
            .unwrap();
        assert_eq!(ids(&hits), vec![1]);
        assert!(hits[0].score > 0.0);
        // Stop words alone analyse to nothing: no hits, no error.
        assert!(
            index
                .search("the of and", 10, &scope("acme", &[]))
                .await
                .unwrap()
                .is_empty()
        );
        // Query syntax is not interpreted.
        let odd = index
            .search("vpn AND (\"client:", 10, &scope("acme", &[]))
            .await
            .unwrap();
        assert_eq!(ids(&odd), vec![1]);
    }

    #[tokio::test]
    async fn chinese_text_is_segmented_with_jieba() {
        let dir = tempfile::tempdir().unwrap();
        let index = sample(dir.path()).await;
        let hits = index
            .search("配置网络", 10, &scope("acme", &[]))
            .await
            .unwrap();
        assert_eq!(ids(&hits), vec![3]);
    }

    #[tokio::test]
    async fn scope_filters_tenant_groups_docs_and_seq() {
        let dir = tempfile::tempdir().unwrap();
        let index = sample(dir.path()).await;
        let mut hits = ids(&index.search("vpn", 10, &scope("acme", &[])).await.unwrap());
        hits.sort();
        assert_eq!(
            hits,
            vec![1],
            "no hr group: chunk 4 hidden; other tenant: chunk 5 hidden"
        );
        let mut hits = ids(&index
            .search("vpn", 10, &scope("acme", &["hr"]))
            .await
            .unwrap());
        hits.sort();
        assert_eq!(hits, vec![1, 4]);
        assert_eq!(
            ids(&index
                .search("vpn", 10, &scope("other", &["hr"]))
                .await
                .unwrap()),
            vec![5]
        );

        let mut s = scope("acme", &["hr"]);
        s.doc_ids = Some(vec![DocId::from("c")]);
        assert_eq!(ids(&index.search("vpn", 10, &s).await.unwrap()), vec![4]);
        s.doc_ids = Some(vec![]);
        assert!(index.search("vpn", 10, &s).await.unwrap().is_empty());

        let mut s = scope("acme", &["hr"]);
        s.max_seq = Seq(2);
        assert_eq!(ids(&index.search("vpn", 10, &s).await.unwrap()), vec![1]);
        s.max_seq = Seq(0);
        assert!(index.search("vpn", 10, &s).await.unwrap().is_empty());

        // k limits after filtering: the hidden chunks do not use up the budget.
        let hits = index.search("vpn", 1, &scope("other", &[])).await.unwrap();
        assert_eq!(ids(&hits), vec![5]);
    }

    #[tokio::test]
    async fn remove_docs_then_add_replaces_a_document() {
        let dir = tempfile::tempdir().unwrap();
        let index = sample(dir.path()).await;
        assert_eq!(index.live_count(), 5);
        index
            .apply(IndexBatch {
                up_to: Seq(4),
                remove_docs: vec![DocId::from("a")],
                add: vec![chunk(
                    6,
                    "a",
                    4,
                    acme(),
                    Lang::En,
                    "Printers moved to the lobby",
                )],
            })
            .await
            .unwrap();
        assert!(
            index
                .search("vpn client", 10, &scope("acme", &[]))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            ids(&index
                .search("printer", 10, &scope("acme", &[]))
                .await
                .unwrap()),
            vec![6]
        );
        assert_eq!(index.live_count(), 4);
        let live: Vec<i64> = index
            .live_chunk_ids()
            .await
            .unwrap()
            .iter()
            .map(|c| c.0)
            .collect();
        assert_eq!(live, vec![3, 4, 5, 6]);
        assert_eq!(index.applied_seq(), Seq(4));

        // Replaying the same batch does not duplicate chunk 6.
        index
            .apply(IndexBatch {
                up_to: Seq(4),
                remove_docs: vec![],
                add: vec![chunk(
                    6,
                    "a",
                    4,
                    acme(),
                    Lang::En,
                    "Printers moved to the lobby",
                )],
            })
            .await
            .unwrap();
        assert_eq!(index.live_count(), 4);
    }

    #[tokio::test]
    async fn reopen_keeps_chunks_and_applied_seq() {
        let dir = tempfile::tempdir().unwrap();
        {
            let index = sample(dir.path()).await;
            index.flush().await.unwrap();
            assert_eq!(index.applied_seq(), Seq(3));
        }
        let index = TantivyIndex::open(dir.path()).unwrap();
        assert_eq!(index.applied_seq(), Seq(3));
        assert_eq!(index.live_count(), 5);
        assert_eq!(
            ids(&index
                .search("configured", 10, &scope("acme", &[]))
                .await
                .unwrap()),
            vec![1]
        );
        assert_eq!(
            ids(&index
                .search("虚拟专用网络", 10, &scope("acme", &[]))
                .await
                .unwrap()),
            vec![3]
        );
    }

    #[tokio::test]
    async fn fresh_index_is_empty_at_seq_zero() {
        let dir = tempfile::tempdir().unwrap();
        let index = TantivyIndex::open(&dir.path().join("lex")).unwrap();
        assert_eq!(index.applied_seq(), Seq(0));
        assert_eq!(index.live_count(), 0);
        assert!(
            index
                .search("anything", 10, &scope("acme", &[]))
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn corrupt_directory_restarts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let lex = dir.path().join("lex");
        {
            sample(&lex).await;
        }
        std::fs::write(lex.join("meta.json"), b"\x00garbage{").unwrap();
        let index = TantivyIndex::open(&lex).unwrap();
        assert_eq!(index.applied_seq(), Seq(0));
        assert_eq!(index.live_count(), 0);
        let aside = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("lex.corrupt-"))
            .count();
        assert_eq!(aside, 1, "the unreadable index is kept aside");
    }
}
