//! The index crate's errors, with detail, and their conversion into [`cairn_core::Error`]
//! (with the [`ErrorKind`] a caller acts on) at the crate's public boundary.

use cairn_core::{Error, ErrorKind};
use std::path::PathBuf;

/// Everything that can go wrong in the catalog, the data-dir lock and the store.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// A database call failed; `context` says which operation.
    #[error("catalog: {context}")]
    Sqlx {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// Applying the schema migrations failed.
    #[error("catalog: cannot apply schema migrations")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A file-system operation failed.
    #[error("{context} {}", path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Stored data does not have the shape the code expects.
    #[error("catalog: corrupt data: {0}")]
    Corrupt(String),
    /// A value handed to the catalog cannot be stored (a caller bug, not user input).
    #[error("catalog: invalid write: {0}")]
    InvalidWrite(String),
    #[error("document {0} not found")]
    DocumentNotFound(String),
    /// Another process holds the data-dir lock.
    #[error(
        "data dir {} is in use by another cairn process{}; stop it, or use the REST API of the running server",
        dir.display(),
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    DataDirInUse { dir: PathBuf, pid: Option<u32> },
    /// The index was built with another embedding model.
    #[error(
        "this index was built with embedding model {stored_model} ({stored_dims} dims) but the configured model is {model} ({dims} dims); re-index into a new --data-dir or restore the model"
    )]
    SettingsMismatch {
        stored_model: String,
        stored_dims: String,
        model: String,
        dims: usize,
    },
}

impl IndexError {
    pub(crate) fn sqlx(context: &'static str) -> impl FnOnce(sqlx::Error) -> IndexError {
        move |source| IndexError::Sqlx { context, source }
    }

    pub(crate) fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> IndexError {
        let path = path.into();
        move |source| IndexError::Io {
            context,
            path,
            source,
        }
    }

    /// The kind a caller acts on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            IndexError::Sqlx { source, .. } if is_transient(source) => ErrorKind::Transient,
            IndexError::DocumentNotFound(_) => ErrorKind::NotFound,
            IndexError::DataDirInUse { .. } | IndexError::SettingsMismatch { .. } => {
                ErrorKind::Conflict
            }
            IndexError::Sqlx { .. }
            | IndexError::Migrate(_)
            | IndexError::Io { .. }
            | IndexError::Corrupt(_)
            | IndexError::InvalidWrite(_) => ErrorKind::Internal,
        }
    }
}

/// Busy or locked database, or no free connection: worth retrying.
fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            // Primary result code of an extended one: SQLITE_BUSY (5), SQLITE_LOCKED (6).
            .is_some_and(|c| matches!(c & 0xff, 5 | 6)),
        _ => false,
    }
}

impl From<IndexError> for Error {
    fn from(e: IndexError) -> Error {
        let kind = e.kind();
        let message = e.to_string();
        // Keep the cause for logs; the message already names the operation.
        match e {
            IndexError::Sqlx { source, .. } => Error::new(kind, message).with_source(source),
            IndexError::Migrate(source) => Error::new(kind, message).with_source(source),
            IndexError::Io { source, .. } => Error::new(kind, message).with_source(source),
            _ => Error::new(kind, message),
        }
    }
}

pub(crate) type Result<T, E = IndexError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_caller_view() {
        assert_eq!(
            IndexError::DocumentNotFound("d".into()).kind(),
            ErrorKind::NotFound
        );
        let busy = IndexError::Sqlx {
            context: "x",
            source: sqlx::Error::PoolTimedOut,
        };
        assert_eq!(busy.kind(), ErrorKind::Transient);
        let e: Error = IndexError::DataDirInUse {
            dir: "/d".into(),
            pid: Some(42),
        }
        .into();
        assert_eq!(e.kind, ErrorKind::Conflict);
        assert_eq!(
            e.message,
            "data dir /d is in use by another cairn process (pid 42); stop it, or use the REST API of the running server"
        );
        let e: Error = IndexError::Corrupt("bad blob".into()).into();
        assert_eq!(e.kind, ErrorKind::Internal);
    }
}
