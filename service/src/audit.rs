//! The audit trail of every operation: who (tenant, actor, role), when, what (action,
//! target, the query or its hash) and how many results. Writes are logged before the
//! operation's answer is sent; reads go through a bounded queue that a background task
//! writes in batches, so a search does not wait for a disk flush. A full queue drops the
//! line and counts it (a warning in the log), rather than slowing searches down.

use cairn_core::config::{AuditConfig, AuditQueries};
use cairn_core::{AuditEntry, AuditLog, Principal, Result};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};

/// Lines waiting for the background writer before new ones are dropped.
const QUEUE: usize = 4096;
/// Lines written in one transaction.
const BATCH: usize = 256;

/// Records operations in an [`AuditLog`].
#[derive(Clone)]
pub struct Auditor {
    log: Arc<dyn AuditLog>,
    config: AuditConfig,
    reads: mpsc::Sender<Msg>,
    dropped: Arc<AtomicU64>,
}

impl Auditor {
    /// Starts the background writer on the current tokio runtime.
    pub fn start(log: Arc<dyn AuditLog>, config: AuditConfig) -> Auditor {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(Arc::clone(&log), rx));
        Auditor {
            log,
            config,
            reads: tx,
            dropped: Arc::default(),
        }
    }

    /// A line for `action` by `p`, outcome `ok`.
    pub fn entry(&self, p: &Principal, action: &str) -> AuditEntry {
        AuditEntry {
            id: 0,
            at: cairn_core::now_millis(),
            tenant: p.tenant.clone(),
            actor: p.actor.label(),
            role: p.role,
            action: action.to_string(),
            target: None,
            query: None,
            results: None,
            outcome: "ok".to_string(),
        }
    }

    /// The query as `[audit] queries` says to keep it.
    pub fn query_text(&self, q: &str) -> Option<String> {
        match self.config.queries {
            AuditQueries::Text => Some(q.to_string()),
            AuditQueries::Hash => Some(format!("sha256:{}", hex::encode(Sha256::digest(q)))),
            AuditQueries::Off => None,
        }
    }

    /// Logs a write; returns once it is stored.
    pub async fn write(&self, entry: AuditEntry) -> Result<()> {
        self.log.append(std::slice::from_ref(&entry)).await
    }

    /// Logs a read without waiting (when `[audit] reads` is on).
    pub fn read(&self, entry: AuditEntry) {
        if !self.config.reads {
            return;
        }
        if self.reads.try_send(Msg::Line(entry)).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "audit queue full: read lines dropped");
            }
        }
    }

    /// Removes lines older than the retention period; returns how many.
    pub async fn prune(&self) -> Result<u64> {
        if self.config.retention_days == 0 {
            return Ok(0);
        }
        let day = 24 * 3600 * 1000;
        let before = cairn_core::now_millis() - i64::from(self.config.retention_days) * day;
        self.log.prune(before).await
    }

    /// Waits until every read queued so far is stored (shutdown, tests).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.reads.send(Msg::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    pub fn log(&self) -> &Arc<dyn AuditLog> {
        &self.log
    }
}

/// What the background writer takes: a line, or a request to say when all lines before
/// it are stored.
enum Msg {
    Line(AuditEntry),
    Flush(oneshot::Sender<()>),
}

async fn write_batches(log: Arc<dyn AuditLog>, mut rx: mpsc::Receiver<Msg>) {
    let mut taken = Vec::with_capacity(BATCH);
    let mut lines = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut taken, BATCH).await > 0 {
        let mut flushes = Vec::new();
        for m in taken.drain(..) {
            match m {
                Msg::Line(l) => lines.push(l),
                Msg::Flush(done) => flushes.push(done),
            }
        }
        if let Err(e) = log.append(&lines).await {
            tracing::warn!(error = %e, lines = lines.len(), "audit lines could not be written");
        }
        lines.clear();
        for done in flushes {
            let _ = done.send(());
        }
    }
}
