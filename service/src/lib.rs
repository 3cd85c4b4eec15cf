//! `cairn-service`: the one facade that both front ends call. The REST API (`web`) and the
//! CLI (`src/cmd`) only parse, call one operation here, and print; every operation takes
//! the caller's [`Principal`] and one request type, checks the caller's rights once
//! ([`access`]), does the work through the seam traits, records it in the audit log
//! ([`audit`]) and returns a typed report ([`wire`]).
//!
//! ```no_run
//! # async fn demo(service: cairn_service::Service) -> cairn_core::Result<()> {
//! use cairn_core::{Principal, Role, SearchRequest};
//! let caller = service.authenticate("cairn_0123456789abcdef_...").await?; // from a header
//! let hits = service.search(&caller, &SearchRequest::new("rotate the VPN key")).await?;
//! // Readers see file names, not the server's paths; every hit is one they may read.
//! # Ok(()) }
//! ```
//!
//! Rights, in one place:
//!
//! | operation | needs |
//! |---|---|
//! | search, ask, list, show, graph, health | any key; results only from documents its groups may read (the graph assembled from those alone) |
//! | upload, re-index an upload, delete | writer, on documents it may read; groups it belongs to |
//! | re-index a file on the server, `reindex` of folders | admin, and a path under `[ingest] roots` (the CLI on the machine: any path) |
//! | keys, audit | admin of the tenant (the CLI on the machine: any tenant) |

pub mod access;
mod answer;
pub mod audit;
pub mod confidence;
pub mod gate;
pub mod keys;
pub mod wire;

use access::{ServerPaths, check_groups, require};
pub use answer::AskEvent;
use audit::Auditor;
use cairn_core::config::{AnswerConfig, AuditConfig, GenerateConfig};
use cairn_core::{
    Acl, Actor, ApiKey, AuditLog, AuditQuery, Catalog, ChunkId, CommunityList, CommunityReport,
    ConceptDetail, ConceptList, DocQuery, Document, DocumentStore, Error, ErrorKind, Generator,
    Hit, KeyStore, Origin, Passage, Principal, Reranker, Result, Role, SearchRequest,
    SearchResponse,
};
use cairn_ingest::Ingestor;
use cairn_ingest::reindex::{Progress, ReindexOptions, ReindexReport};
use cairn_retrieve::Retriever;
use keys::KeyHasher;
use std::path::PathBuf;
use std::sync::Arc;
use wire::*;

/// How often a key's `last_used_at` is written at most (the catalog is not written on
/// every request).
const TOUCH_EVERY_MS: i64 = 60_000;

/// Everything the service is made of; the binary picks the concrete parts.
pub struct Parts {
    pub retriever: Retriever,
    pub ingestor: Arc<Ingestor>,
    pub catalog: Arc<dyn Catalog>,
    pub store: Arc<dyn DocumentStore>,
    pub keys: Arc<dyn KeyStore>,
    pub audit: Arc<dyn AuditLog>,
    pub hasher: KeyHasher,
    pub answer: AnswerConfig,
    /// The language model that writes answers (`None`: extractive answers) and its
    /// settings.
    pub generator: Option<Arc<dyn Generator>>,
    /// `[answer] judge`: the reranker whose best score among an answer's passages is the
    /// `judge` signal of its confidence (`None`: no judge).
    pub judge: Option<Arc<dyn Reranker>>,
    pub generate: GenerateConfig,
    pub audit_config: AuditConfig,
    /// `[ingest] roots`.
    pub roots: Vec<PathBuf>,
    /// The server's own tenant (`tenant`): its admins are the operators (metrics).
    pub operator_tenant: String,
}

/// The facade. Cheap to clone.
#[derive(Clone)]
pub struct Service(Arc<Inner>);

struct Inner {
    retriever: Retriever,
    ingestor: Arc<Ingestor>,
    catalog: Arc<dyn Catalog>,
    store: Arc<dyn DocumentStore>,
    keys: Arc<dyn KeyStore>,
    hasher: KeyHasher,
    answer: AnswerConfig,
    generator: Option<Arc<dyn Generator>>,
    judge: Option<Arc<dyn Reranker>>,
    generate: GenerateConfig,
    paths: ServerPaths,
    operator_tenant: String,
    auditor: Auditor,
    /// One folder re-index at a time.
    reindexing: tokio::sync::Mutex<()>,
}

impl Service {
    /// Wires the parts; starts the audit writer on the current tokio runtime.
    pub fn new(parts: Parts) -> Service {
        Service(Arc::new(Inner {
            retriever: parts.retriever,
            ingestor: parts.ingestor,
            catalog: parts.catalog,
            store: parts.store,
            keys: parts.keys,
            hasher: parts.hasher,
            answer: parts.answer,
            generator: parts.generator,
            judge: parts.judge,
            generate: parts.generate,
            paths: ServerPaths::new(&parts.roots),
            operator_tenant: parts.operator_tenant,
            auditor: Auditor::start(parts.audit, parts.audit_config),
            reindexing: tokio::sync::Mutex::new(()),
        }))
    }

    pub fn retriever(&self) -> &Retriever {
        &self.0.retriever
    }

    pub fn auditor(&self) -> &Auditor {
        &self.0.auditor
    }

    // ---- who is calling ----------------------------------------------------------------

    /// The principal of an API key. `Unauthenticated` for a key that is malformed,
    /// unknown, wrong, revoked or expired; the message says which of the last two, and
    /// nothing else about keys that do not match.
    pub async fn authenticate(&self, presented: &str) -> Result<Principal> {
        let refused = || Error::unauthenticated("the API key is not valid");
        let parsed = keys::parse(presented.trim()).ok_or_else(|| {
            Error::unauthenticated(
                "the API key is malformed: keys look like cairn_<16 hex digits>_<64 hex digits>",
            )
        })?;
        let Some(key) = self.0.keys.get_key(parsed.id).await? else {
            return Err(refused());
        };
        if !self.0.hasher.matches(&parsed, &key) {
            return Err(refused());
        }
        let now = cairn_core::now_millis();
        if key.revoked_at.is_some() {
            return Err(Error::unauthenticated("the API key was revoked"));
        }
        if !key.is_live(now) {
            return Err(Error::unauthenticated("the API key has expired"));
        }
        if key.last_used_at.is_none_or(|t| now - t >= TOUCH_EVERY_MS)
            && let Err(e) = self.0.keys.touch_key(&key.id, now).await
        {
            tracing::warn!(key = %key.id, error = %e, "cannot record the key's use");
        }
        Ok(Principal {
            tenant: key.tenant,
            groups: key.groups,
            role: key.role,
            actor: Actor::Key(key.id),
        })
    }

    /// Whether any key that is not revoked exists (a server without one says how to make
    /// one).
    pub async fn has_keys(&self) -> Result<bool> {
        self.0.keys.any_live_key().await
    }

    /// Who `p` acts as (`GET /v1/me`).
    pub fn whoami(&self, p: &Principal) -> Me {
        Me {
            tenant: p.tenant.clone(),
            groups: p.groups.clone(),
            role: p.role,
            actor: p.actor.label(),
            sees_paths: shows_paths(p),
        }
    }

    // ---- reading -------------------------------------------------------------------------

    /// Hybrid (or BM25, or dense) search within what `p` may read.
    pub async fn search(&self, p: &Principal, req: &SearchRequest) -> Result<SearchResponse> {
        let result = self.0.retriever.search(req, p).await;
        if let Ok(r) = &result {
            record_stages(&r.stages, r.took_ms);
        }
        let mut line = self.0.auditor.entry(p, "search");
        line.query = self.0.auditor.query_text(&req.query);
        self.read_line(line, result.as_ref().map(|r| r.results.len()));
        let mut resp = result?;
        present_hits(p, &mut resp.results);
        Ok(resp)
    }

    /// The concepts of `p`'s graph (built from the chunks `p` may read) whose name contains
    /// `req.q`, with the graph's size.
    pub async fn graph_concepts(&self, p: &Principal, req: &ConceptQuery) -> Result<ConceptList> {
        let result = self
            .0
            .retriever
            .graph_concepts(
                req.q.as_deref().unwrap_or(""),
                req.chunk.map(ChunkId),
                req.limit,
                p,
            )
            .await;
        let mut line = self.0.auditor.entry(p, "graph.concepts");
        line.query = self.0.auditor.query_text(req.q.as_deref().unwrap_or(""));
        self.read_line(line, result.as_ref().map(|r| r.concepts.len()));
        result
    }

    /// One concept of `p`'s graph: its neighbours and the passages behind them.
    pub async fn graph_concept(
        &self,
        p: &Principal,
        key: &str,
        req: &ConceptQuery,
    ) -> Result<ConceptDetail> {
        let result = self.0.retriever.graph_concept(key, req.limit, p).await;
        let mut line = self.0.auditor.entry(p, "graph.concept");
        line.query = self.0.auditor.query_text(key);
        self.read_line(line, result.as_ref().map(|r| r.passages.len()));
        let mut detail = result?;
        present_passages(p, &mut detail.passages);
        Ok(detail)
    }

    /// The communities of `p`'s graph (found in the graph of the chunks `p` may read) at
    /// `req.level`, with their extractive reports.
    pub async fn graph_communities(
        &self,
        p: &Principal,
        req: &CommunityQuery,
    ) -> Result<CommunityList> {
        let filter = req.q.as_deref().unwrap_or("");
        let result = self
            .0
            .retriever
            .graph_communities(filter, req.level, req.limit, p)
            .await;
        let mut line = self.0.auditor.entry(p, "graph.communities");
        line.query = self.0.auditor.query_text(filter);
        self.read_line(line, result.as_ref().map(|r| r.communities.len()));
        result
    }

    /// One community of `p`'s graph: its report and the passages behind it.
    pub async fn graph_community(
        &self,
        p: &Principal,
        id: &str,
        req: &CommunityQuery,
    ) -> Result<CommunityReport> {
        let result = self.0.retriever.graph_community(id, req.limit, p).await;
        let mut line = self.0.auditor.entry(p, "graph.community");
        line.target = Some(id.chars().take(64).collect());
        self.read_line(line, result.as_ref().map(|r| r.passages.len()));
        let mut report = result?;
        present_passages(p, &mut report.passages);
        Ok(report)
    }

    /// The language model that writes answers, for callers who may read (the
    /// OpenAI-compatible pass-through).
    pub fn generator(&self, _p: &Principal) -> Option<Arc<dyn Generator>> {
        self.0.generator.clone()
    }

    pub fn generate_config(&self) -> &GenerateConfig {
        &self.0.generate
    }

    /// The documents `p` may read.
    pub async fn list(&self, p: &Principal, req: &ListRequest) -> Result<DocumentList> {
        let q = DocQuery {
            principal: Some(p.clone()),
            origin: None,
            source_prefix: req.source_prefix.clone(),
            limit: req.limit,
        };
        let result = self.0.catalog.list_documents(&q).await;
        self.read_line(
            self.0.auditor.entry(p, "documents.list"),
            result.as_ref().map(Vec::len),
        );
        let documents = result?
            .into_iter()
            .map(|d| present_document(p, d))
            .collect();
        Ok(DocumentList { documents })
    }

    /// One document with its chunks; `NotFound` when `p` may not read it.
    pub async fn show(&self, p: &Principal, id: &str) -> Result<DocumentDetail> {
        let result = async {
            let doc = self.visible(p, id).await?;
            let chunks = self.0.catalog.chunks_of(&doc.id).await?;
            Ok::<_, Error>((doc, chunks))
        }
        .await;
        let mut line = self.0.auditor.entry(p, "documents.show");
        line.target = Some(id.to_string());
        self.read_line(line, result.as_ref().map(|_| 1));
        let (doc, chunks) = result?;
        Ok(DocumentDetail {
            document: present_document(p, doc),
            chunks,
        })
    }

    /// The kept original of an uploaded document `p` may read; `None` for a document
    /// that came from a path (or was uploaded before originals were kept).
    pub async fn original(&self, p: &Principal, id: &str) -> Result<(Document, Option<Vec<u8>>)> {
        let doc = self.visible(p, id).await?;
        let bytes = match doc.origin {
            Origin::Upload(_) => self.0.store.original(&doc.id).await?,
            Origin::Path(_) => None,
        };
        let mut line = self.0.auditor.entry(p, "documents.original");
        line.target = Some(id.to_string());
        self.read_line(line, Ok(usize::from(bytes.is_some())));
        Ok((present_document(p, doc), bytes))
    }

    /// `Forbidden` unless `p` operates the server: an admin of the operator's tenant, or a
    /// command on the server's machine. Operators see figures across tenants (metrics).
    pub fn require_operator(&self, p: &Principal) -> Result<()> {
        require(p, Role::Admin, "reading the server's metrics")?;
        if p.actor == Actor::Local || p.tenant == self.0.operator_tenant {
            Ok(())
        } else {
            Err(Error::forbidden(
                "the server's metrics are for admins of its own tenant (`tenant` in its configuration)",
            ))
        }
    }

    /// Whether the server can answer: every derived index has applied the catalog's newest
    /// write. Also sets the index gauges for `/metrics`.
    pub async fn readiness(&self) -> Result<Readiness> {
        let catalog_seq = self.0.retriever.catalog_seq().await?;
        let mut indexes = Vec::new();
        for (name, live, applied) in self.0.retriever.indexes() {
            metrics::gauge!("cairn_index_live_chunks", "index" => name).set(live as f64);
            metrics::gauge!("cairn_index_applied_seq", "index" => name).set(applied.0 as f64);
            indexes.push(IndexState {
                name: name.to_string(),
                live_chunks: live,
                applied_seq: applied,
                caught_up: applied >= catalog_seq,
            });
        }
        metrics::gauge!("cairn_catalog_seq").set(catalog_seq.0 as f64);
        Ok(Readiness {
            ready: indexes.iter().all(|i| i.caught_up),
            catalog_seq,
            indexes,
            reranker: self.0.retriever.reranker_name().map(str::to_string),
            generator: self.0.generator.as_ref().map(|g| g.model_id().to_string()),
        })
    }

    /// Liveness and, for a caller, the number of documents it may read.
    pub async fn health(&self, p: Option<&Principal>) -> Result<Health> {
        let documents = match p {
            Some(p) => Some(
                self.0
                    .catalog
                    .list_documents(&DocQuery {
                        principal: Some(p.clone()),
                        ..DocQuery::default()
                    })
                    .await?
                    .len(),
            ),
            None => None,
        };
        Ok(Health {
            status: "ok".into(),
            documents,
            visible_seq: self.0.retriever.visible_seq(),
        })
    }

    // ---- writing -------------------------------------------------------------------------

    /// Stores uploaded files (each its own document version) and keeps their originals.
    /// A file that fails is reported in `failed`; the others go in.
    pub async fn upload(&self, p: &Principal, req: UploadRequest) -> Result<UploadReport> {
        let result = self.upload_inner(p, req).await;
        let mut line = self.0.auditor.entry(p, "upload");
        match &result {
            Ok(r) if r.documents.is_empty() => line.outcome = ErrorKind::User.as_str().into(),
            Ok(r) => {
                line.target = Some(
                    r.documents
                        .iter()
                        .map(|d| d.doc_id.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                );
                line.results = Some(r.documents.len() as i64);
            }
            Err(e) => line.outcome = e.kind.as_str().to_string(),
        }
        self.write_line(line).await;
        result
    }

    async fn upload_inner(&self, p: &Principal, req: UploadRequest) -> Result<UploadReport> {
        require(p, Role::Writer, "uploading documents")?;
        check_groups(p, &req.groups)?;
        if req.files.is_empty() {
            return Err(Error::user(
                "no files in the upload: send one or more multipart file fields",
            ));
        }
        let acl = Acl {
            tenant: p.tenant.clone(),
            groups: req.groups,
        };
        let mut documents = Vec::new();
        let mut failed = Vec::new();
        for file in req.files {
            match self.store_upload(p, &file, &acl).await {
                Ok(outcome) => documents.push(outcome),
                Err(e) => {
                    tracing::info!(file = %file.name, error = %e, "upload rejected");
                    failed.push(FailedUpload {
                        file: file.name,
                        error: ErrorInfo::from(&e),
                    });
                }
            }
        }
        Ok(UploadReport { documents, failed })
    }

    async fn store_upload(
        &self,
        p: &Principal,
        file: &UploadFile,
        acl: &Acl,
    ) -> Result<cairn_ingest::IngestOutcome> {
        let origin = Origin::upload(&file.name)?;
        // An upload replaces the tenant's document of the same name only when the caller
        // may read it: a writer cannot overwrite what another group's documents say.
        if let Some(existing) = self.0.catalog.find_by_origin(&p.tenant, &origin).await?
            && !existing.acl.allows(p)
            && !p.can(Role::Admin)
        {
            return Err(Error::forbidden(format!(
                "a document named {} exists in this tenant that this key may not replace; upload it under another name",
                origin.as_str()
            )));
        }
        let outcome = self
            .0
            .ingestor
            .ingest_bytes(&file.bytes, &origin, acl)
            .await?;
        // The original is kept for re-indexing it (a new parser or chunker setting).
        self.0
            .store
            .keep_original(&outcome.doc_id, &file.bytes)
            .await?;
        Ok(outcome)
    }

    /// Ingests one file on the server's disk (`cairn ingest`).
    pub async fn ingest_path(
        &self,
        p: &Principal,
        path: &std::path::Path,
        groups: &[String],
    ) -> Result<cairn_ingest::IngestOutcome> {
        let result = async {
            let path = self.0.paths.check(p, path)?;
            let acl = Acl {
                tenant: p.tenant.clone(),
                groups: groups.to_vec(),
            };
            self.0.ingestor.ingest_path(&path, &acl).await
        }
        .await;
        let mut line = self.0.auditor.entry(p, "ingest");
        line.target = Some(match &result {
            Ok(o) => o.doc_id.to_string(),
            Err(_) => path.display().to_string(),
        });
        if let Err(e) = &result {
            line.outcome = e.kind.as_str().to_string();
        }
        self.write_line(line).await;
        result
    }

    /// Reads a document again: its kept original when it was uploaded, its file when it
    /// came from the server's disk (which needs the rights to read that path). A changed
    /// file, ACL or chunker setting gives a new version; otherwise nothing changes.
    pub async fn reingest(&self, p: &Principal, id: &str) -> Result<Reingested> {
        let result = self.reingest_inner(p, id).await;
        let mut line = self.0.auditor.entry(p, "documents.reindex");
        line.target = Some(id.to_string());
        if let Err(e) = &result {
            line.outcome = e.kind.as_str().to_string();
        }
        self.write_line(line).await;
        result.map(|mut r| {
            if !shows_paths(p) {
                r.document.origin = shown_origin(&r.document.origin);
            }
            r
        })
    }

    async fn reingest_inner(&self, p: &Principal, id: &str) -> Result<Reingested> {
        let doc = self.visible(p, id).await?;
        require(p, Role::Writer, "re-indexing documents")?;
        let document = match &doc.origin {
            Origin::Upload(_) => {
                let Some(bytes) = self.0.store.original(&doc.id).await? else {
                    return Err(Error::user(format!(
                        "{} was uploaded before cairn kept originals, so there is nothing to read again; upload it again instead",
                        doc.source()
                    )));
                };
                self.0
                    .ingestor
                    .ingest_bytes(&bytes, &doc.origin, &doc.acl)
                    .await?
            }
            Origin::Path(path) => {
                let path = self.0.paths.check(p, std::path::Path::new(path))?;
                self.0.ingestor.ingest_path(&path, &doc.acl).await?
            }
        };
        Ok(Reingested { document })
    }

    /// Removes a document `p` may read from the catalog and every index.
    pub async fn delete(&self, p: &Principal, id: &str) -> Result<Deleted> {
        let result = async {
            let doc = self.visible(p, id).await?;
            require(p, Role::Writer, "deleting documents")?;
            let seq = self.0.store.delete_document(&doc.id).await?;
            Ok::<_, Error>(Deleted {
                deleted: doc.id,
                seq,
            })
        }
        .await;
        let mut line = self.0.auditor.entry(p, "delete");
        line.target = Some(id.to_string());
        if let Err(e) = &result {
            line.outcome = e.kind.as_str().to_string();
        }
        self.write_line(line).await;
        result
    }

    /// Brings the documents under folders on the server's disk in line with the files
    /// there (`cairn reindex`). One run at a time: a second gets `Conflict`.
    pub async fn reindex(
        &self,
        p: &Principal,
        req: ReindexRequest,
        progress: &mut (dyn FnMut(Progress<'_>) + Send),
    ) -> Result<ReindexReport> {
        let result = self.reindex_inner(p, &req, progress).await;
        let mut line = self.0.auditor.entry(p, "reindex");
        line.target = Some(
            req.sources
                .iter()
                .map(|s| s.display().to_string())
                .collect::<Vec<_>>()
                .join(","),
        );
        match &result {
            Ok(r) => line.results = Some((r.added + r.updated + r.deleted) as i64),
            Err(e) => line.outcome = e.kind.as_str().to_string(),
        }
        if req.dry_run {
            line.action = "reindex.dry_run".into();
        }
        self.write_line(line).await;
        result
    }

    async fn reindex_inner(
        &self,
        p: &Principal,
        req: &ReindexRequest,
        progress: &mut (dyn FnMut(Progress<'_>) + Send),
    ) -> Result<ReindexReport> {
        require(p, Role::Admin, "re-indexing folders on the server")?;
        let mut sources = Vec::with_capacity(req.sources.len());
        for s in &req.sources {
            sources.push(self.0.paths.check(p, s)?);
        }
        let walker = cairn_ingest::walk::Walker::new(&req.include, &req.exclude)?;
        let Ok(_running) = self.0.reindexing.try_lock() else {
            return Err(Error::new(
                ErrorKind::Conflict,
                "a re-index is already running in this server; try again when it has finished",
            ));
        };
        let tenant = self.admin_tenant(p, req.tenant.as_deref())?;
        let opts = ReindexOptions {
            sources,
            walker,
            acl: Acl {
                tenant,
                groups: req.groups.clone(),
            },
            dry_run: req.dry_run,
        };
        cairn_ingest::reindex::reindex(
            &self.0.ingestor,
            Arc::clone(&self.0.catalog),
            Arc::clone(&self.0.store),
            &opts,
            progress,
        )
        .await
    }

    // ---- keys and audit ----------------------------------------------------------------

    /// Makes an API key; the answer holds its secret, which is not kept.
    pub async fn create_key(&self, p: &Principal, req: CreateKeyRequest) -> Result<CreatedKey> {
        let result = self.create_key_inner(p, req).await;
        let mut line = self.0.auditor.entry(p, "key.create");
        match &result {
            Ok(k) => line.target = Some(k.info.id.clone()),
            Err(e) => line.outcome = e.kind.as_str().to_string(),
        }
        self.write_line(line).await;
        result
    }

    async fn create_key_inner(&self, p: &Principal, req: CreateKeyRequest) -> Result<CreatedKey> {
        require(p, Role::Admin, "making keys")?;
        let tenant = self.admin_tenant(p, req.tenant.as_deref())?;
        if tenant.trim().is_empty() || tenant.chars().any(char::is_control) {
            return Err(Error::user(
                "the tenant name is empty or has control characters",
            ));
        }
        if let Some(g) = req
            .groups
            .iter()
            .find(|g| g.trim().is_empty() || g.contains(',') || g.chars().any(char::is_control))
        {
            return Err(Error::user(format!(
                "group name {g:?} is empty or has a comma or a control character"
            )));
        }
        if req.name.len() > 200 || req.name.chars().any(char::is_control) {
            return Err(Error::user(
                "the key's name must be at most 200 bytes without control characters",
            ));
        }
        if req.expires_in_days == Some(0) {
            return Err(Error::user("expires_in_days must be at least 1"));
        }
        let (full, id, secret_hash) = self.0.hasher.mint()?;
        let now = cairn_core::now_millis();
        let info = ApiKey {
            id,
            name: req.name,
            tenant,
            groups: req.groups,
            role: req.role,
            created_at: now,
            expires_at: req
                .expires_in_days
                .map(|d| now + i64::from(d) * 24 * 3600 * 1000),
            last_used_at: None,
            revoked_at: None,
            secret_hash,
        };
        self.0.keys.put_key(&info).await?;
        tracing::info!(key = %info.id, tenant = %info.tenant, role = %info.role, "key created");
        Ok(CreatedKey { key: full, info })
    }

    /// The keys of the caller's tenant (the CLI on the machine: every tenant, or one).
    pub async fn list_keys(&self, p: &Principal, tenant: Option<&str>) -> Result<KeyList> {
        require(p, Role::Admin, "listing keys")?;
        let keys = match (&p.actor, tenant) {
            (Actor::Local, t) => self.0.keys.list_keys(t).await?,
            (_, t) => {
                let t = self.admin_tenant(p, t)?;
                self.0.keys.list_keys(Some(&t)).await?
            }
        };
        self.read_line(self.0.auditor.entry(p, "key.list"), Ok(keys.len()));
        Ok(KeyList { keys })
    }

    /// Revokes a key of the caller's tenant; `NotFound` for another tenant's.
    pub async fn revoke_key(&self, p: &Principal, id: &str) -> Result<Revoked> {
        let result = async {
            require(p, Role::Admin, "revoking keys")?;
            let key = self.0.keys.get_key(id).await?;
            match key {
                Some(k) if p.actor == Actor::Local || k.tenant == p.tenant => {
                    self.0.keys.revoke_key(id, cairn_core::now_millis()).await?;
                    Ok::<_, Error>(Revoked {
                        revoked: id.to_string(),
                    })
                }
                _ => Err(Error::not_found(format!("no key with id {id}"))),
            }
        }
        .await;
        let mut line = self.0.auditor.entry(p, "key.revoke");
        line.target = Some(id.to_string());
        if let Err(e) = &result {
            line.outcome = e.kind.as_str().to_string();
        }
        self.write_line(line).await;
        result
    }

    /// Lines of the audit log of the caller's tenant, newest first.
    pub async fn audit(&self, p: &Principal, req: &AuditRequest) -> Result<AuditLines> {
        require(p, Role::Admin, "reading the audit log")?;
        let tenant = match (&p.actor, &req.tenant) {
            (Actor::Local, t) => t.clone(),
            (_, t) => Some(self.admin_tenant(p, t.as_deref())?),
        };
        self.0.auditor.flush().await;
        let q = AuditQuery {
            since: req.since,
            tenant,
            actor: req.key.as_ref().map(|k| Actor::Key(k.clone()).label()),
            limit: Some(req.limit.unwrap_or(1000).min(100_000)),
        };
        let lines = self.0.auditor.log().read(&q).await?;
        Ok(AuditLines { lines })
    }

    /// Removes audit lines past the retention period.
    pub async fn prune_audit(&self) -> Result<u64> {
        self.0.auditor.prune().await
    }

    // ---- helpers -------------------------------------------------------------------------

    /// The tenant an admin acts on: its own, or (the CLI only) the one it names.
    fn admin_tenant(&self, p: &Principal, asked: Option<&str>) -> Result<String> {
        match asked {
            None => Ok(p.tenant.clone()),
            Some(t) if t == p.tenant => Ok(t.to_string()),
            Some(t) if p.actor == Actor::Local => Ok(t.to_string()),
            Some(_) => Err(Error::forbidden(
                "an admin key manages its own tenant only; use the CLI on the server's machine for others",
            )),
        }
    }

    /// The document if `p` may read it; `NotFound` otherwise (a hidden document and a
    /// missing one look the same).
    async fn visible(&self, p: &Principal, id: &str) -> Result<Document> {
        cairn_retrieve::visible_document(self.0.catalog.as_ref(), id, p).await
    }

    fn read_line(&self, mut line: cairn_core::AuditEntry, result: Result<usize, &Error>) {
        match result {
            Ok(n) => line.results = Some(n as i64),
            Err(e) => line.outcome = e.kind.as_str().to_string(),
        }
        self.0.auditor.read(line);
    }

    /// Logs a write once it is done. A line that cannot be stored is an error in the
    /// server log and a count in the metrics, not the caller's failure: the write it
    /// describes has happened.
    async fn write_line(&self, line: cairn_core::AuditEntry) {
        if let Err(e) = self.0.auditor.write(line.clone()).await {
            metrics::counter!("cairn_audit_lost_total").increment(1);
            tracing::error!(error = %e, action = %line.action, actor = %line.actor, target = ?line.target, "an audit line could not be stored");
        }
    }
}

/// Milliseconds per search stage, into the stage histograms.
fn record_stages(stages: &cairn_core::StageTimes, took_ms: f64) {
    let retrievers = stages
        .retrievers
        .iter()
        .map(|(name, ms)| (name.clone(), *ms));
    let fixed = [
        ("embed", stages.embed),
        ("fuse", stages.fuse),
        ("hydrate", stages.hydrate),
        ("rerank", stages.rerank),
        ("total", took_ms),
    ]
    .map(|(stage, ms)| (stage.to_string(), ms));
    for (stage, ms) in retrievers.chain(fixed) {
        metrics::histogram!("cairn_search_stage_seconds", "stage" => stage).record(ms / 1000.0);
    }
}

/// Whether `p` sees where documents live on the server's disk (admins and the CLI do;
/// everyone else sees file names).
pub fn shows_paths(p: &Principal) -> bool {
    p.actor == Actor::Local || p.can(Role::Admin)
}

fn file_name(source: &str) -> String {
    std::path::Path::new(source)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(source)
        .to_string()
}

fn shown_origin(origin: &Origin) -> Origin {
    match origin {
        Origin::Path(_) => Origin::Path(origin.file_name().to_string()),
        Origin::Upload(_) => origin.clone(),
    }
}

/// A document as `p` is shown it.
fn present_document(p: &Principal, mut doc: Document) -> Document {
    if !shows_paths(p) {
        doc.origin = shown_origin(&doc.origin);
    }
    doc
}

/// Hits as `p` is shown them.
fn present_passages(p: &Principal, passages: &mut [Passage]) {
    if !shows_paths(p) {
        for passage in passages {
            passage.source = file_name(&passage.source);
        }
    }
}

fn present_hits(p: &Principal, hits: &mut [Hit]) {
    if !shows_paths(p) {
        for h in hits {
            h.source = file_name(&h.source);
        }
    }
}
