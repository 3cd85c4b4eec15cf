//! The one error type that crosses seams, and the kinds every layer maps its errors to.
//!
//! Each library crate keeps its own `thiserror` enum for detail and converts into
//! [`Error`] at its public boundary. `web` maps [`ErrorKind`] to an HTTP status once; the
//! CLI maps it to an exit code. Internal details are logged, not shown to callers.

use std::fmt;

/// What kind of failure this is, from the caller's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The input is wrong (bad query, malformed file, unknown mode): the caller must change it.
    User,
    /// No credentials, or credentials that are wrong, expired or revoked.
    Unauthenticated,
    /// The caller is known but their role does not allow this.
    Forbidden,
    /// The thing asked for does not exist (or the caller may not see it).
    NotFound,
    /// The request conflicts with current state (for instance the data dir is locked).
    Conflict,
    /// The input is larger than a configured limit.
    TooLarge,
    /// The caller sent more requests than their rate allows; try again later.
    RateLimited,
    /// Try again later (queue full, lock busy).
    Transient,
    /// A server cairn depends on (an OpenAI-compatible generator) failed or cannot be
    /// reached.
    Upstream,
    /// A server cairn depends on did not answer in time.
    UpstreamTimeout,
    /// A bug or an environment failure (I/O, corrupt state): not the caller's fault.
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::User => "bad_request",
            ErrorKind::Unauthenticated => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Transient => "unavailable",
            ErrorKind::Upstream => "bad_gateway",
            ErrorKind::UpstreamTimeout => "gateway_timeout",
            ErrorKind::Internal => "internal",
        }
    }
}

/// An error with a kind and a message meant for the person who caused it.
#[derive(Debug)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    pub source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }
    pub fn user(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::User, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Transient, message)
    }
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthenticated, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, message)
    }
    /// Attach the underlying cause (kept for logs, never shown to API callers).
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(src) = &self.source {
            write!(f, ": {src}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
