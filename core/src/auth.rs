//! API keys and the audit log as the catalog stores them, and the seams that store them
//! ([`KeyStore`], [`AuditLog`]). Making, hashing and checking keys is `cairn-service`'s;
//! here are only the records.

use crate::{Result, Role};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A stored API key: everything but its secret, of which only a keyed hash is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKey {
    /// Public id: the middle part of the key, and its name in lists and the audit log.
    pub id: String,
    /// What the creator called it ("nightly-cron", "hr-portal").
    pub name: String,
    pub tenant: String,
    pub groups: Vec<String>,
    pub role: Role,
    /// Unix milliseconds.
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// Hex HMAC-SHA256 of the secret; never serialised.
    #[serde(skip)]
    pub secret_hash: String,
}

impl ApiKey {
    /// Whether the key may be used at `now` (not revoked, not expired).
    pub fn is_live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

/// Where keys are kept (the catalog).
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Stores a new key; `Conflict` if its id exists.
    async fn put_key(&self, key: &ApiKey) -> Result<()>;
    async fn get_key(&self, id: &str) -> Result<Option<ApiKey>>;
    /// The keys of `tenant` (every tenant when `None`), oldest first, revoked ones too.
    async fn list_keys(&self, tenant: Option<&str>) -> Result<Vec<ApiKey>>;
    /// Marks the key revoked at `at`; `false` if there is no such key.
    async fn revoke_key(&self, id: &str, at: i64) -> Result<bool>;
    /// Records a use (best effort, coarse: callers need not do it on every request).
    async fn touch_key(&self, id: &str, at: i64) -> Result<()>;
    /// Whether any key that is not revoked exists.
    async fn any_live_key(&self) -> Result<bool>;
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Assigned by the log (0 before it is stored).
    #[serde(default)]
    pub id: i64,
    /// Unix milliseconds.
    pub at: i64,
    pub tenant: String,
    /// `local`, `key:<id>`, `proxy:<user>` or `open` ([`crate::Actor::label`]).
    pub actor: String,
    pub role: Role,
    /// `upload`, `delete`, `reindex`, `search`, `ask`, `key.create`, ...
    pub action: String,
    /// What it acted on: a document id, a key id, the sources of a re-index.
    pub target: Option<String>,
    /// The query, or its sha256 (`[audit] queries`).
    pub query: Option<String>,
    /// How many results the caller was shown.
    pub results: Option<i64>,
    /// `ok`, or the error code.
    pub outcome: String,
}

/// Which audit lines to read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    /// Only lines at or after this time (Unix milliseconds).
    pub since: Option<i64>,
    /// Only this tenant's lines (`None`: every tenant; only the local admin asks so).
    pub tenant: Option<String>,
    /// Only this actor (`key:<id>`, `local`, ...).
    pub actor: Option<String>,
    /// Newest lines first, at most this many.
    pub limit: Option<usize>,
}

/// The append-only audit log (the catalog).
#[async_trait]
pub trait AuditLog: Send + Sync {
    async fn append(&self, entries: &[AuditEntry]) -> Result<()>;
    /// Matching lines, newest first.
    async fn read(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>>;
    /// Removes lines older than `before` (the retention setting); returns how many.
    async fn prune(&self, before: i64) -> Result<u64>;
}
