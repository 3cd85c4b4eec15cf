//! The SQL catalog, the source of truth: documents, their chunks (with embeddings), the
//! write log and the settings persisted with the index. [`SqliteCatalog`] is the embedded
//! backend (sqlx, SQLite in WAL mode, `synchronous=FULL`).
//!
//! Every write runs in one transaction that also appends a row to `ops`; that row's `seq`
//! (never reused) is the write's sequence number and the log that derived indexes replay.
//! Once `put_document` or `delete_document` returns, the write survives a crash or power
//! loss. The schema lives in `migrations/` and is written to port to Postgres.

use crate::error::{IndexError, Result};
use async_trait::async_trait;
use cairn_core::{
    Acl, Catalog, Chunk, ChunkId, ConceptKind, Concepts, DocId, DocQuery, Document, Lang, Mention,
    Merge, NewChunk, NewDocument, Op, OpKind, Origin, OriginKind, Seq, Span,
};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Meta key holding the schema version (the newest applied migration).
pub const META_SCHEMA_VERSION: &str = "schema_version";
/// Meta key holding the embedding dimensions; embeddings of another length are refused.
pub const META_DIMS: &str = "dims";
/// Meta key holding the embedding model id.
pub const META_EMBEDDER_ID: &str = "embedder_id";

/// How long a write waits for another writer before giving up with a transient error.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Ids per `IN (...)` list; well under SQLite's bound-parameter limit.
const IN_BATCH: usize = 500;

const DOC_COLS: &str = "id, tenant, groups, title, source, origin, mime, content_hash, version, \
                        pages, chunk_count, created_at, updated_at, seq, chunker";
const CHUNK_COLS: &str =
    "id, doc_id, ordinal, text, page, span_start, span_end, heading_path, token_count, lang";

/// The embedded catalog: one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteCatalog {
    pool: SqlitePool,
    path: PathBuf,
}

impl SqliteCatalog {
    /// Opens (creating if missing) the catalog at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> cairn_core::Result<SqliteCatalog> {
        Ok(Self::open_inner(path).await?)
    }

    async fn open_inner(path: &Path) -> Result<SqliteCatalog> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(IndexError::io("cannot create catalog dir", parent))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: with WAL, every commit is fsynced, so an acknowledged write survives
            // power loss, not only a process crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(BUSY_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(IndexError::sqlx("cannot open catalog"))?;
        MIGRATOR.run(&pool).await.map_err(IndexError::Migrate)?;
        let catalog = SqliteCatalog {
            pool,
            path: path.to_path_buf(),
        };
        let schema_version = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        catalog
            .set_meta(META_SCHEMA_VERSION, &schema_version.to_string())
            .await?;
        Ok(catalog)
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The catalog file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the pool, waiting for connections to finish (checkpoints the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn get_meta(&self, key: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(IndexError::sqlx("cannot read meta"))
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(IndexError::sqlx("cannot write meta"))?;
        Ok(())
    }

    /// The persisted embedding dimensions, if recorded.
    async fn stored_dims(&self) -> Result<Option<usize>> {
        match self.get_meta(META_DIMS).await? {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                IndexError::Corrupt(format!("meta {META_DIMS} is not a number: {v:?}"))
            }),
        }
    }

    async fn put_inner(&self, doc: NewDocument, chunks: Vec<NewChunk>) -> Result<Document> {
        let dims = self.stored_dims().await?;
        check_embeddings(&chunks, dims)?;
        let groups = serde_json::to_string(&doc.acl.groups)
            .map_err(|e| IndexError::InvalidWrite(format!("groups: {e}")))?;
        let chunk_count = u32::try_from(chunks.len())
            .map_err(|_| IndexError::InvalidWrite("too many chunks".into()))?;
        let now = cairn_core::now_millis();

        // IMMEDIATE takes the write lock up front, so the read of the current version
        // cannot be invalidated by another writer before this transaction writes.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(IndexError::sqlx("cannot begin write"))?;
        let existing: Option<(String, i64, i64, String)> = sqlx::query_as(
            "SELECT id, version, created_at, origin FROM documents WHERE tenant = $1 AND source = $2",
        )
        .bind(&doc.acl.tenant)
        .bind(doc.origin.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(IndexError::sqlx("cannot look up document"))?;
        // Paths are absolute and upload names have no '/', so the two never meet; a row
        // of the other kind under this source is refused rather than replaced.
        if let Some((id, _, _, origin)) = &existing
            && origin != doc.origin.kind().as_str()
        {
            return Err(IndexError::InvalidWrite(format!(
                "{} is already document {id} of origin {origin}; a document of origin {} cannot replace it",
                doc.origin,
                doc.origin.kind().as_str()
            )));
        }
        let (id, version, created_at) = match &existing {
            Some((id, version, created_at, _)) => (id.clone(), version + 1, *created_at),
            None => (uuid::Uuid::now_v7().to_string(), 1, now),
        };

        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO ops (doc_id, kind, version, at) VALUES ($1, 'upsert', $2, $3) RETURNING seq",
        )
        .bind(&id)
        .bind(version)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(IndexError::sqlx("cannot append op"))?;

        if existing.is_some() {
            delete_chunks(&mut tx, &id).await?;
            sqlx::query(
                "UPDATE documents SET groups = $2, title = $3, mime = $4, content_hash = $5, \
                 version = $6, pages = $7, chunk_count = $8, updated_at = $9, seq = $10, \
                 chunker = $11 WHERE id = $1",
            )
            .bind(&id)
            .bind(&groups)
            .bind(&doc.title)
            .bind(&doc.mime)
            .bind(&doc.content_hash)
            .bind(version)
            .bind(i64::from(doc.pages))
            .bind(i64::from(chunk_count))
            .bind(now)
            .bind(seq)
            .bind(&doc.chunker)
            .execute(&mut *tx)
            .await
            .map_err(IndexError::sqlx("cannot update document"))?;
        } else {
            sqlx::query(
                "INSERT INTO documents (id, tenant, groups, title, source, mime, content_hash, \
                 version, pages, chunk_count, created_at, updated_at, seq, chunker, origin) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            )
            .bind(&id)
            .bind(&doc.acl.tenant)
            .bind(&groups)
            .bind(&doc.title)
            .bind(doc.origin.as_str())
            .bind(&doc.mime)
            .bind(&doc.content_hash)
            .bind(version)
            .bind(i64::from(doc.pages))
            .bind(i64::from(chunk_count))
            .bind(created_at)
            .bind(now)
            .bind(seq)
            .bind(&doc.chunker)
            .bind(doc.origin.kind().as_str())
            .execute(&mut *tx)
            .await
            .map_err(IndexError::sqlx("cannot insert document"))?;
        }

        for (ordinal, c) in chunks.iter().enumerate() {
            let heading_path = serde_json::to_string(&c.heading_path)
                .map_err(|e| IndexError::InvalidWrite(format!("heading path: {e}")))?;
            let chunk_id: i64 = sqlx::query_scalar(
                "INSERT INTO chunks (doc_id, ordinal, text, page, span_start, span_end, \
                 heading_path, token_count, lang, embedding, pieces) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
            )
            .bind(&id)
            .bind(ordinal as i64)
            .bind(&c.text)
            .bind(i64::from(c.page))
            .bind(to_i64(c.span.start, "span start")?)
            .bind(to_i64(c.span.end, "span end")?)
            .bind(heading_path)
            .bind(i64::from(c.token_count))
            .bind(c.lang.as_str())
            .bind(encode_embedding(&c.embedding))
            .bind((!c.pieces.is_empty()).then(|| encode_embedding(&c.pieces)))
            .fetch_one(&mut *tx)
            .await
            .map_err(IndexError::sqlx("cannot insert chunk"))?;
            insert_concepts(&mut tx, chunk_id, c).await?;
        }
        tx.commit()
            .await
            .map_err(IndexError::sqlx("cannot commit document"))?;

        Ok(Document {
            id: DocId(id),
            title: doc.title,
            origin: doc.origin,
            mime: doc.mime,
            content_hash: doc.content_hash,
            chunker: doc.chunker,
            version,
            acl: doc.acl,
            pages: doc.pages,
            chunk_count,
            created_at,
            updated_at: now,
            seq: Seq(seq),
        })
    }

    async fn delete_inner(&self, id: &DocId) -> Result<Seq> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(IndexError::sqlx("cannot begin write"))?;
        let version: Option<i64> =
            sqlx::query_scalar("SELECT version FROM documents WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(IndexError::sqlx("cannot look up document"))?;
        let Some(version) = version else {
            return Err(IndexError::DocumentNotFound(id.to_string()));
        };
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO ops (doc_id, kind, version, at) VALUES ($1, 'delete', $2, $3) RETURNING seq",
        )
        .bind(id.as_str())
        .bind(version)
        .bind(cairn_core::now_millis())
        .fetch_one(&mut *tx)
        .await
        .map_err(IndexError::sqlx("cannot append op"))?;
        delete_chunks(&mut tx, id.as_str()).await?;
        sqlx::query("DELETE FROM documents WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(IndexError::sqlx("cannot delete document"))?;
        tx.commit()
            .await
            .map_err(IndexError::sqlx("cannot commit delete"))?;
        Ok(Seq(seq))
    }

    async fn get_documents_inner(&self, ids: &[DocId]) -> Result<Vec<Document>> {
        let mut found: HashMap<String, Document> = HashMap::new();
        for batch in ids.chunks(IN_BATCH) {
            let mut qb: QueryBuilder<Sqlite> =
                QueryBuilder::new(format!("SELECT {DOC_COLS} FROM documents WHERE id IN ("));
            let mut sep = qb.separated(", ");
            for id in batch {
                sep.push_bind(id.as_str());
            }
            qb.push(")");
            let rows = qb
                .build()
                .fetch_all(&self.pool)
                .await
                .map_err(IndexError::sqlx("cannot read documents"))?;
            for row in &rows {
                let doc = doc_from_row(row)?;
                found.insert(doc.id.0.clone(), doc);
            }
        }
        // In the order asked for, each once.
        Ok(ids
            .iter()
            .filter_map(|id| found.remove(id.as_str()))
            .collect())
    }

    async fn list_inner(&self, q: &DocQuery) -> Result<Vec<Document>> {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("SELECT {DOC_COLS} FROM documents WHERE 1 = 1"));
        if let Some(p) = &q.principal {
            qb.push(" AND tenant = ").push_bind(p.tenant.clone());
        }
        if let Some(kind) = q.origin {
            qb.push(" AND origin = ").push_bind(kind.as_str());
        }
        if let Some(prefix) = &q.source_prefix {
            // substr/length rather than LIKE: no escaping of % and _ in paths.
            qb.push(" AND substr(source, 1, length(")
                .push_bind(prefix.clone())
                .push(")) = ")
                .push_bind(prefix.clone());
        }
        qb.push(" ORDER BY tenant, source, id");
        // Groups are filtered below (JSON in a column), so the limit is applied after.
        if q.principal.is_none()
            && let Some(limit) = q.limit
        {
            qb.push(" LIMIT ").push_bind(to_i64(limit, "limit")?);
        }
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(IndexError::sqlx("cannot list documents"))?;
        let mut docs = Vec::new();
        for row in &rows {
            let doc = doc_from_row(row)?;
            if q.principal.as_ref().is_none_or(|p| doc.acl.allows(p)) {
                docs.push(doc);
                if q.limit.is_some_and(|l| docs.len() >= l) {
                    break;
                }
            }
        }
        Ok(docs)
    }

    /// The rows of `{select} ids {tail}` for chunk ids, asked in batches of [`IN_BATCH`];
    /// `select` ends with `id IN (` and `tail` closes it.
    async fn chunk_rows(
        &self,
        select: &str,
        ids: &[ChunkId],
        tail: &str,
    ) -> Result<Vec<SqliteRow>> {
        let mut rows = Vec::new();
        for batch in ids.chunks(IN_BATCH) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(select);
            let mut sep = qb.separated(", ");
            for id in batch {
                sep.push_bind(id.0);
            }
            qb.push(tail);
            rows.extend(
                qb.build()
                    .fetch_all(&self.pool)
                    .await
                    .map_err(IndexError::sqlx("cannot read chunks"))?,
            );
        }
        Ok(rows)
    }

    async fn get_chunks_inner(&self, ids: &[ChunkId]) -> Result<Vec<Chunk>> {
        let select = format!("SELECT {CHUNK_COLS} FROM chunks WHERE id IN (");
        self.chunk_rows(&select, ids, ") ORDER BY id")
            .await?
            .iter()
            .map(chunk_from_row)
            .collect()
    }

    async fn piece_vectors_inner(&self, ids: &[ChunkId]) -> Result<HashMap<ChunkId, Vec<f32>>> {
        let select = "SELECT id, pieces FROM chunks WHERE pieces IS NOT NULL AND id IN (";
        let mut out = HashMap::new();
        for row in &self.chunk_rows(select, ids, ")").await? {
            let id: i64 = get(row, "id")?;
            let blob: Vec<u8> = get(row, "pieces")?;
            let vectors = decode_embedding(&blob, None)
                .map_err(|e| IndexError::Corrupt(format!("chunk {id}: pieces: {e}")))?;
            out.insert(ChunkId(id), vectors);
        }
        Ok(out)
    }

    async fn concepts_inner(&self, ids: &[ChunkId]) -> Result<HashMap<ChunkId, Concepts>> {
        let mut out: HashMap<ChunkId, Concepts> = HashMap::new();
        let select = "SELECT chunk_id, key, kind, span_start, span_end, sentence FROM mentions \
                      WHERE chunk_id IN (";
        for row in &self.chunk_rows(select, ids, ") ORDER BY rowid").await? {
            let id: i64 = get(row, "chunk_id")?;
            let kind: String = get(row, "kind")?;
            let kind = ConceptKind::parse(&kind)
                .ok_or_else(|| IndexError::Corrupt(format!("chunk {id}: concept kind {kind}")))?;
            let mention = Mention {
                key: get(row, "key")?,
                kind,
                start: get_usize(row, "span_start")?,
                end: get_usize(row, "span_end")?,
                sentence: get_u32(row, "sentence")?,
            };
            out.entry(ChunkId(id)).or_default().mentions.push(mention);
        }
        let select = "SELECT chunk_id, from_key, into_key, span_start, span_end \
                      FROM concept_merges WHERE chunk_id IN (";
        for row in &self.chunk_rows(select, ids, ") ORDER BY rowid").await? {
            let id: i64 = get(row, "chunk_id")?;
            let merge = Merge {
                from: get(row, "from_key")?,
                into: get(row, "into_key")?,
                start: get_usize(row, "span_start")?,
                end: get_usize(row, "span_end")?,
            };
            out.entry(ChunkId(id)).or_default().merges.push(merge);
        }
        Ok(out)
    }

    async fn chunks_with_embeddings_inner(&self, id: &DocId) -> Result<Vec<(Chunk, Vec<f32>)>> {
        let dims = self.stored_dims().await?;
        let rows = sqlx::query(&format!(
            "SELECT {CHUNK_COLS}, embedding FROM chunks WHERE doc_id = $1 ORDER BY ordinal"
        ))
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::sqlx("cannot read chunks"))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let chunk = chunk_from_row(row)?;
            let blob: Vec<u8> = row
                .try_get("embedding")
                .map_err(IndexError::sqlx("cannot decode chunk"))?;
            let embedding = decode_embedding(&blob, dims)
                .map_err(|e| IndexError::Corrupt(format!("chunk {}: {e}", chunk.id.0)))?;
            out.push((chunk, embedding));
        }
        Ok(out)
    }

    async fn ops_since_inner(&self, after: Seq, limit: usize) -> Result<Vec<Op>> {
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT seq, doc_id, kind FROM ops WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after.0)
        .bind(to_i64(limit, "limit")?)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::sqlx("cannot read ops"))?;
        rows.into_iter()
            .map(|(seq, doc_id, kind)| {
                let kind = match kind.as_str() {
                    "upsert" => OpKind::Upsert,
                    "delete" => OpKind::Delete,
                    other => {
                        return Err(IndexError::Corrupt(format!("op {seq} has kind {other:?}")));
                    }
                };
                Ok(Op {
                    seq: Seq(seq),
                    doc_id: DocId(doc_id),
                    kind,
                })
            })
            .collect()
    }
}

#[async_trait]
impl Catalog for SqliteCatalog {
    async fn find_by_origin(
        &self,
        tenant: &str,
        origin: &Origin,
    ) -> cairn_core::Result<Option<Document>> {
        let row = sqlx::query(&format!(
            "SELECT {DOC_COLS} FROM documents WHERE tenant = $1 AND source = $2 AND origin = $3"
        ))
        .bind(tenant)
        .bind(origin.as_str())
        .bind(origin.kind().as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(IndexError::sqlx("cannot look up document"))?;
        Ok(row.as_ref().map(doc_from_row).transpose()?)
    }

    async fn put_document(
        &self,
        doc: NewDocument,
        chunks: Vec<NewChunk>,
    ) -> cairn_core::Result<Document> {
        Ok(self.put_inner(doc, chunks).await?)
    }

    async fn delete_document(&self, id: &DocId) -> cairn_core::Result<Seq> {
        Ok(self.delete_inner(id).await?)
    }

    async fn get_document(&self, id: &DocId) -> cairn_core::Result<Option<Document>> {
        let row = sqlx::query(&format!("SELECT {DOC_COLS} FROM documents WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(IndexError::sqlx("cannot read document"))?;
        Ok(row.as_ref().map(doc_from_row).transpose()?)
    }

    async fn get_documents(&self, ids: &[DocId]) -> cairn_core::Result<Vec<Document>> {
        Ok(self.get_documents_inner(ids).await?)
    }

    async fn list_documents(&self, q: &DocQuery) -> cairn_core::Result<Vec<Document>> {
        Ok(self.list_inner(q).await?)
    }

    async fn chunks_of(&self, id: &DocId) -> cairn_core::Result<Vec<Chunk>> {
        let rows = sqlx::query(&format!(
            "SELECT {CHUNK_COLS} FROM chunks WHERE doc_id = $1 ORDER BY ordinal"
        ))
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::sqlx("cannot read chunks"))?;
        Ok(rows
            .iter()
            .map(chunk_from_row)
            .collect::<Result<Vec<_>>>()?)
    }

    async fn get_chunks(&self, ids: &[ChunkId]) -> cairn_core::Result<Vec<Chunk>> {
        Ok(self.get_chunks_inner(ids).await?)
    }

    async fn chunks_with_embeddings(
        &self,
        id: &DocId,
    ) -> cairn_core::Result<Vec<(Chunk, Vec<f32>)>> {
        Ok(self.chunks_with_embeddings_inner(id).await?)
    }

    async fn piece_vectors(
        &self,
        ids: &[ChunkId],
    ) -> cairn_core::Result<HashMap<ChunkId, Vec<f32>>> {
        Ok(self.piece_vectors_inner(ids).await?)
    }

    async fn concepts(&self, ids: &[ChunkId]) -> cairn_core::Result<HashMap<ChunkId, Concepts>> {
        Ok(self.concepts_inner(ids).await?)
    }

    async fn ops_since(&self, after: Seq, limit: usize) -> cairn_core::Result<Vec<Op>> {
        Ok(self.ops_since_inner(after, limit).await?)
    }

    async fn last_seq(&self) -> cairn_core::Result<Seq> {
        let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM ops")
            .fetch_one(&self.pool)
            .await
            .map_err(IndexError::sqlx("cannot read last seq"))?;
        Ok(Seq(seq))
    }

    async fn chunk_ids(&self) -> cairn_core::Result<Vec<ChunkId>> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM chunks ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(IndexError::sqlx("cannot read chunk ids"))?;
        Ok(ids.into_iter().map(ChunkId).collect())
    }

    async fn meta_get(&self, key: &str) -> cairn_core::Result<Option<String>> {
        Ok(self.get_meta(key).await?)
    }

    async fn meta_set(&self, key: &str, value: &str) -> cairn_core::Result<()> {
        Ok(self.set_meta(key, value).await?)
    }
}

/// All embeddings of one write have the same length, and the persisted one if recorded.
fn check_embeddings(chunks: &[NewChunk], dims: Option<usize>) -> Result<()> {
    let expected = dims.or_else(|| chunks.first().map(|c| c.embedding.len()));
    for (i, c) in chunks.iter().enumerate() {
        if Some(c.embedding.len()) != expected {
            return Err(IndexError::InvalidWrite(format!(
                "chunk {i} has an embedding of {} dims, expected {}",
                c.embedding.len(),
                expected.unwrap_or_default()
            )));
        }
        if c.span.start > c.span.end {
            return Err(IndexError::InvalidWrite(format!(
                "chunk {i} has span {}..{} that ends before it starts",
                c.span.start, c.span.end
            )));
        }
    }
    Ok(())
}

/// Deletes a document's chunks and what was extracted from them, in the caller's
/// transaction. Explicit, rather than relying on ON DELETE CASCADE being enabled.
async fn delete_chunks(tx: &mut sqlx::Transaction<'_, Sqlite>, doc_id: &str) -> Result<()> {
    for (table, what) in [
        ("mentions", "cannot delete mentions"),
        ("concept_merges", "cannot delete concept merges"),
    ] {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE chunk_id IN (SELECT id FROM chunks WHERE doc_id = $1)"
        ))
        .bind(doc_id)
        .execute(&mut **tx)
        .await
        .map_err(IndexError::sqlx(what))?;
    }
    sqlx::query("DELETE FROM chunks WHERE doc_id = $1")
        .bind(doc_id)
        .execute(&mut **tx)
        .await
        .map_err(IndexError::sqlx("cannot delete chunks"))?;
    Ok(())
}

/// Rows per multi-row insert of mentions (six values each, well under SQLite's limit).
const CONCEPT_ROWS: usize = 500;

/// Writes a chunk's mentions and merges in the chunk's transaction. A span outside the
/// chunk's text is refused: the write is the caller's mistake, and nothing is stored.
async fn insert_concepts(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    chunk_id: i64,
    chunk: &NewChunk,
) -> Result<()> {
    let len = chunk.text.len();
    let bad = |what: &str, start: usize, end: usize| {
        IndexError::InvalidWrite(format!(
            "a {what} spans bytes {start}..{end} of a chunk of {len} bytes"
        ))
    };
    let concepts = &chunk.concepts;
    for m in &concepts.mentions {
        if m.start >= m.end || m.end > len || m.key.is_empty() {
            return Err(bad("mention", m.start, m.end));
        }
    }
    for g in &concepts.merges {
        if g.start >= g.end || g.end > len || g.from.is_empty() || g.into.is_empty() {
            return Err(bad("merge", g.start, g.end));
        }
    }
    for rows in concepts.mentions.chunks(CONCEPT_ROWS) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO mentions (chunk_id, key, kind, span_start, span_end, sentence) ",
        );
        qb.push_values(rows, |mut b, m| {
            b.push_bind(chunk_id)
                .push_bind(&m.key)
                .push_bind(m.kind.as_str())
                .push_bind(m.start as i64)
                .push_bind(m.end as i64)
                .push_bind(i64::from(m.sentence));
        });
        qb.build()
            .execute(&mut **tx)
            .await
            .map_err(IndexError::sqlx("cannot insert mentions"))?;
    }
    for rows in concepts.merges.chunks(CONCEPT_ROWS) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO concept_merges (chunk_id, from_key, into_key, span_start, span_end) ",
        );
        qb.push_values(rows, |mut b, g| {
            b.push_bind(chunk_id)
                .push_bind(&g.from)
                .push_bind(&g.into)
                .push_bind(g.start as i64)
                .push_bind(g.end as i64);
        });
        qb.build()
            .execute(&mut **tx)
            .await
            .map_err(IndexError::sqlx("cannot insert concept merges"))?;
    }
    Ok(())
}

fn to_i64(v: usize, what: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| IndexError::InvalidWrite(format!("{what} {v} is too large")))
}

/// Embeddings are stored as f32 little endian, one after another.
pub(crate) fn encode_embedding(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(crate) fn decode_embedding(blob: &[u8], dims: Option<usize>) -> Result<Vec<f32>, String> {
    if !blob.len().is_multiple_of(4) {
        return Err(format!(
            "embedding blob of {} bytes is not a whole number of f32",
            blob.len()
        ));
    }
    let n = blob.len() / 4;
    if let Some(d) = dims
        && d != n
    {
        return Err(format!("embedding has {n} dims, the index has {d}"));
    }
    Ok(blob
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

fn get<'r, T>(row: &'r SqliteRow, col: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(col)
        .map_err(IndexError::sqlx("cannot decode row"))
}

fn get_u32(row: &SqliteRow, col: &str) -> Result<u32> {
    let v: i64 = get(row, col)?;
    u32::try_from(v).map_err(|_| IndexError::Corrupt(format!("{col} = {v} is out of range")))
}

fn get_usize(row: &SqliteRow, col: &str) -> Result<usize> {
    let v: i64 = get(row, col)?;
    usize::try_from(v).map_err(|_| IndexError::Corrupt(format!("{col} = {v} is out of range")))
}

fn get_json<T: serde::de::DeserializeOwned>(row: &SqliteRow, col: &str) -> Result<T> {
    let text: String = get(row, col)?;
    serde_json::from_str(&text)
        .map_err(|e| IndexError::Corrupt(format!("{col} is not the expected JSON: {e}")))
}

fn doc_from_row(row: &SqliteRow) -> Result<Document> {
    let kind: String = get(row, "origin")?;
    let kind = OriginKind::parse(&kind)
        .ok_or_else(|| IndexError::Corrupt(format!("unknown document origin {kind:?}")))?;
    Ok(Document {
        id: DocId(get(row, "id")?),
        title: get(row, "title")?,
        origin: Origin::from_parts(kind, get(row, "source")?),
        mime: get(row, "mime")?,
        content_hash: get(row, "content_hash")?,
        chunker: get(row, "chunker")?,
        version: get(row, "version")?,
        acl: Acl {
            tenant: get(row, "tenant")?,
            groups: get_json(row, "groups")?,
        },
        pages: get_u32(row, "pages")?,
        chunk_count: get_u32(row, "chunk_count")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
        seq: Seq(get(row, "seq")?),
    })
}

fn chunk_from_row(row: &SqliteRow) -> Result<Chunk> {
    let lang: String = get(row, "lang")?;
    let lang = Lang::parse(&lang)
        .ok_or_else(|| IndexError::Corrupt(format!("unknown chunk language {lang:?}")))?;
    let (start, end) = (get_usize(row, "span_start")?, get_usize(row, "span_end")?);
    if start > end {
        return Err(IndexError::Corrupt(format!(
            "chunk span {start}..{end} is reversed"
        )));
    }
    Ok(Chunk {
        id: ChunkId(get(row, "id")?),
        doc_id: DocId(get(row, "doc_id")?),
        ordinal: get_u32(row, "ordinal")?,
        text: get(row, "text")?,
        page: get_u32(row, "page")?,
        span: Span { start, end },
        heading_path: get_json(row, "heading_path")?,
        token_count: get_u32(row, "token_count")?,
        lang,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_are_durable_wal_with_foreign_keys() {
        let tmp = tempfile::tempdir().unwrap();
        let cat = SqliteCatalog::open(&tmp.path().join("sub/c.sqlite"))
            .await
            .unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&cat.pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        // 2 = FULL: every commit is fsynced.
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&cat.pool)
            .await
            .unwrap();
        assert_eq!(sync, 2);
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&cat.pool)
            .await
            .unwrap();
        assert_eq!(fk, 1);
    }

    #[test]
    fn embeddings_round_trip_as_little_endian_f32() {
        let v = vec![0.5f32, -1.25, 3.0e-7, f32::MAX];
        let blob = encode_embedding(&v);
        assert_eq!(blob.len(), 16);
        assert_eq!(&blob[0..4], &0.5f32.to_le_bytes());
        assert_eq!(decode_embedding(&blob, Some(4)).unwrap(), v);
        assert_eq!(decode_embedding(&blob, None).unwrap(), v);
    }

    #[test]
    fn malformed_or_mismatched_blobs_are_errors() {
        assert!(
            decode_embedding(&[0u8; 7], None)
                .unwrap_err()
                .contains("whole number")
        );
        assert!(
            decode_embedding(&[0u8; 8], Some(3))
                .unwrap_err()
                .contains("2 dims")
        );
    }
}
