//! Errors of the query path, converted into [`cairn_core::Error`] at the crate boundary.

use cairn_core::{Error, ErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum RetrieveError {
    #[error("query is empty")]
    EmptyQuery,
    #[error("query is too long: {len} characters (the limit is {max})")]
    QueryTooLong { len: usize, max: usize },
    #[error("top_k must be between 1 and {max}, got {got}")]
    BadTopK { got: usize, max: usize },
    #[error("the query embedding has {got} dimensions, the vector index expects {want}")]
    Dims { got: usize, want: usize },
    #[error(
        "reranking was asked for but no reranker is configured (set [rerank] model and install it with scripts/install-models)"
    )]
    NoReranker,
    #[error("unknown reranker {name:?}: the configured one is {configured:?}")]
    UnknownReranker { name: String, configured: String },
    #[error(
        "the graph and mix modes need the concept graph, which this server does not keep ([graph] enabled = false)"
    )]
    NoGraph,
    #[error("limit must be between 1 and {max}, got {got}")]
    BadLimit { got: usize, max: usize },
}

impl From<RetrieveError> for Error {
    fn from(e: RetrieveError) -> Self {
        let kind = match e {
            RetrieveError::EmptyQuery
            | RetrieveError::QueryTooLong { .. }
            | RetrieveError::BadTopK { .. }
            | RetrieveError::NoReranker
            | RetrieveError::UnknownReranker { .. }
            | RetrieveError::NoGraph
            | RetrieveError::BadLimit { .. } => ErrorKind::User,
            RetrieveError::Dims { .. } => ErrorKind::Internal,
        };
        Error::new(kind, e.to_string())
    }
}
