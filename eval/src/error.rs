//! Errors of reading eval sets and run files. Every variant names the file it is about;
//! a malformed line also names its line number, so the person who wrote the file can fix it.

use std::path::{Path, PathBuf};

/// A failure to read an eval set, a qrels file or a run file.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The file or folder could not be read (missing, no permission, ...).
    #[error("{}: cannot read", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// One line of a data file is not in the expected format.
    #[error("{}:{line}: {reason}", path.display())]
    Malformed {
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        reason: String,
    },

    /// The folder is not an eval set cairn can read (a required file is missing, `eval.json`
    /// is invalid, the set holds no queries, ...); `reason` says what to change.
    #[error("{}: {reason}", path.display())]
    Layout { path: PathBuf, reason: String },
}

impl EvalError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        EvalError::Io {
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn layout(path: &Path, reason: impl Into<String>) -> Self {
        EvalError::Layout {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = EvalError> = std::result::Result<T, E>;
