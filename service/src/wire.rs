//! The requests and reports of the service's operations, as they cross the wire: each is
//! defined once and used by the REST route, the CLI, and the CLI's client of a running
//! server (`cairn reindex` handing its run to `cairn serve`).

use cairn_core::{ApiKey, Chunk, DocId, Document, Error, ErrorKind, Role, Seq};
use cairn_ingest::IngestOutcome;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// An error as a caller sees it: internal details stay in the server's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorInfo {
    pub code: String,
    pub message: String,
}

impl From<&Error> for ErrorInfo {
    fn from(e: &Error) -> Self {
        let message = if e.kind == ErrorKind::Internal {
            "internal error; the server log has the details".to_string()
        } else {
            e.message.clone()
        };
        ErrorInfo {
            code: e.kind.as_str().to_string(),
            message,
        }
    }
}

/// One file of an upload.
#[derive(Debug, Clone)]
pub struct UploadFile {
    /// The name the client sent; reduced to its base name ([`cairn_core::Origin::upload`]).
    pub name: String,
    pub bytes: Vec<u8>,
}

/// `POST /v1/documents`: files and the groups that may read them (empty: the whole
/// tenant).
#[derive(Debug, Clone, Default)]
pub struct UploadRequest {
    pub files: Vec<UploadFile>,
    pub groups: Vec<String>,
}

/// A file of an upload that was not stored, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FailedUpload {
    pub file: String,
    pub error: ErrorInfo,
}

/// What an upload stored and what it refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UploadReport {
    pub documents: Vec<IngestOutcome>,
    pub failed: Vec<FailedUpload>,
}

/// `POST /v1/admin/reindex` and `cairn reindex`: what to bring in line with the files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReindexRequest {
    /// Absolute paths on the server's machine.
    #[schema(value_type = Vec<String>)]
    pub sources: Vec<PathBuf>,
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub dry_run: bool,
    /// ACL groups of the documents added or updated.
    #[serde(default)]
    pub groups: Vec<String>,
    /// The tenant whose documents these are; absent: the caller's. Only the CLI on the
    /// server's machine (`cairn --tenant T reindex`) may name another.
    #[serde(default)]
    pub tenant: Option<String>,
}

/// `GET /v1/documents`, `cairn docs list`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListRequest {
    #[serde(default)]
    pub source_prefix: Option<String>,
    #[serde(default)]
    pub limit: Option<usize>,
}

/// `GET /v1/graph/concepts` and `GET /v1/graph/concepts/{key}`, `cairn graph`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConceptQuery {
    /// Only concepts whose name (or an alias) contains this, case-insensitively.
    #[serde(default)]
    pub q: Option<String>,
    /// Only concepts this chunk mentions (`chunk_id` of a hit or a citation).
    #[serde(default)]
    pub chunk: Option<i64>,
    /// The most concepts (or neighbours and passages) returned; default 20, at most
    /// `[retrieve] max_top_k`.
    #[serde(default)]
    pub limit: Option<usize>,
}

/// `GET /v1/graph/communities` and `GET /v1/graph/communities/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CommunityQuery {
    /// Only communities holding a concept whose name (or an alias) contains this,
    /// case-insensitively.
    #[serde(default)]
    pub q: Option<String>,
    /// The level of the hierarchy listed: 0 (the default) is the top; each community over
    /// the size cap splits into communities one level down.
    #[serde(default)]
    pub level: Option<usize>,
    /// The most communities returned, and the most concepts, relations and passages in
    /// each report; default 20, at most `[retrieve] max_top_k`.
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DocumentList {
    pub documents: Vec<Document>,
}

/// `GET /v1/documents/{id}`, `cairn docs show`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DocumentDetail {
    pub document: Document,
    pub chunks: Vec<Chunk>,
}

/// `DELETE /v1/documents/{id}`, `cairn docs delete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Deleted {
    pub deleted: DocId,
    pub seq: Seq,
}

/// `POST /v1/documents/{id}/reindex`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reingested {
    pub document: IngestOutcome,
}

/// `GET /healthz`: counts of what the caller may read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Health {
    pub status: String,
    /// Documents the caller may read (absent without a key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub documents: Option<usize>,
    pub visible_seq: Seq,
}

/// `GET /v1/me`: who the key acts as.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Me {
    pub tenant: String,
    pub groups: Vec<String>,
    pub role: Role,
    /// `key:<id>`, `proxy:<user>`, `local` or `open`.
    pub actor: String,
    /// Whether this caller is shown where documents live on the server (admins).
    pub sees_paths: bool,
}

/// `GET /readyz`: whether every index has caught up with the catalog, and what is
/// loaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Readiness {
    pub ready: bool,
    pub catalog_seq: Seq,
    pub indexes: Vec<IndexState>,
    /// The reranker searches may ask for, if one is loaded.
    pub reranker: Option<String>,
    /// The generator that writes answers (none: extractive answers).
    pub generator: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IndexState {
    pub name: String,
    pub live_chunks: usize,
    pub applied_seq: Seq,
    pub caught_up: bool,
}

/// `POST /v1/admin/keys`, `cairn keys create`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// What the key is for ("nightly-cron"); shown in lists.
    #[serde(default)]
    pub name: String,
    /// The key's tenant; absent: the caller's. Only the CLI on the server's machine may
    /// make keys of another tenant.
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    pub role: Role,
    /// Days until the key stops working; absent: never.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// A new key: the secret `key` is in this answer only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedKey {
    pub key: String,
    #[serde(flatten)]
    pub info: ApiKey,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyList {
    pub keys: Vec<ApiKey>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Revoked {
    pub revoked: String,
}

/// `GET /v1/admin/audit`, `cairn audit`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditRequest {
    /// Only lines at or after this time (Unix milliseconds).
    #[serde(default)]
    pub since: Option<i64>,
    /// Only the lines of this key (its id).
    #[serde(default)]
    pub key: Option<String>,
    /// At most this many lines, newest first (default 1000).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Another tenant's lines (CLI on the server's machine only).
    #[serde(default)]
    pub tenant: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditLines {
    pub lines: Vec<cairn_core::AuditEntry>,
}
