//! Errors of the ingest crate: what can go wrong while reading, decoding, parsing,
//! chunking and storing one file. Every variant names the file it is about, and
//! converts into [`cairn_core::Error`] with the [`ErrorKind`] a caller acts on
//! (a bad file is the uploader's to fix; a crashed parser or a failed read is not).

use cairn_core::ErrorKind;

/// A failure to ingest one file.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A format cairn recognises but cannot read yet (PDF, DOCX, images, archives, ...).
    #[error("{file}: {format} is not supported yet")]
    Unsupported { file: String, format: String },

    /// The bytes are not text in any encoding cairn decodes.
    #[error(
        "{file}: not valid text in any supported encoding (UTF-8, UTF-16, GB18030/GBK, \
         Big5, Shift_JIS, EUC-KR, Windows-1252/Latin-1 and other single-byte code pages)"
    )]
    Encoding { file: String },

    /// The file is not a readable DOCX (not a ZIP, no `word/document.xml`, broken XML).
    #[error("{file}: not a valid DOCX file ({reason})")]
    NotDocx { file: String, reason: String },

    /// An archive that would inflate past cairn's limits (a zip bomb, or just too big).
    #[error("{file}: refused, the archive is too large when unpacked ({reason})")]
    ZipBomb { file: String, reason: String },

    /// A PDF that cannot be read: encrypted, malformed, no text layer, or every extractor
    /// failed on it (timed out, crashed); `reason` says which.
    #[error("{file}: {reason}")]
    Pdf { file: String, reason: String },

    /// A document nested so deeply that parsing it would take unreasonably long.
    #[error("{file}: the document is nested more than {limit} levels deep")]
    TooDeep { file: String, limit: usize },

    /// The file holds no text at all (or only whitespace).
    #[error("{file}: empty document")]
    Empty { file: String },

    /// The file has text but none of it ends up in a chunk (only headings, only front matter).
    #[error("{file}: the document has no indexable text")]
    NoChunks { file: String },

    /// The parser or chunker panicked on this file: a bug, reported for this file only.
    /// The panic message is kept as the source (for logs), not in the message.
    #[error("{file}: the parser failed on this file")]
    Panicked {
        file: String,
        #[source]
        panic: PanicMessage,
    },

    /// The file could not be read.
    #[error("{path}: cannot read the file")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// The file kept changing while it was read (it is still being written or copied).
    #[error(
        "{path}: the file changed while it was being read (still being written?); \
         left as it was, try again once it is complete"
    )]
    Changing { path: String },

    /// A path that cairn cannot use as a document source.
    #[error("{path}: {reason}")]
    BadPath { path: String, reason: &'static str },

    /// The embedder broke its contract (a bug in an `Embedder` implementation).
    #[error("the embedder returned {got} vectors for {expected} chunks")]
    EmbedderContract { expected: usize, got: usize },

    /// The blocking task running the parser was cancelled (shutdown).
    #[error("{file}: parsing was cancelled")]
    Cancelled { file: String },
}

/// What a panicking parser said.
#[derive(Debug, thiserror::Error)]
#[error("panic: {0}")]
pub struct PanicMessage(pub String);

impl IngestError {
    /// The kind of failure as callers see it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            IngestError::Unsupported { .. }
            | IngestError::Encoding { .. }
            | IngestError::NotDocx { .. }
            | IngestError::ZipBomb { .. }
            | IngestError::TooDeep { .. }
            | IngestError::Empty { .. }
            | IngestError::Pdf { .. }
            | IngestError::NoChunks { .. }
            | IngestError::Changing { .. }
            | IngestError::BadPath { .. } => ErrorKind::User,
            IngestError::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => ErrorKind::NotFound,
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::IsADirectory => {
                    ErrorKind::User
                }
                _ => ErrorKind::Internal,
            },
            IngestError::Cancelled { .. } => ErrorKind::Transient,
            IngestError::Panicked { .. } | IngestError::EmbedderContract { .. } => {
                ErrorKind::Internal
            }
        }
    }
}

impl From<IngestError> for cairn_core::Error {
    fn from(e: IngestError) -> Self {
        let kind = e.kind();
        match e {
            IngestError::Io { path, source } => {
                let what = match source.kind() {
                    std::io::ErrorKind::NotFound => "no such file",
                    std::io::ErrorKind::PermissionDenied => "permission denied",
                    std::io::ErrorKind::IsADirectory => "is a directory, not a file",
                    _ => "cannot read the file",
                };
                cairn_core::Error::new(kind, format!("{path}: {what}")).with_source(source)
            }
            IngestError::Panicked { file, panic } => {
                cairn_core::Error::new(kind, format!("{file}: the parser failed on this file"))
                    .with_source(panic)
            }
            other => cairn_core::Error::new(kind, other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_user_errors_naming_the_file() {
        let e: cairn_core::Error = IngestError::Unsupported {
            file: "a.pdf".into(),
            format: "PDF".into(),
        }
        .into();
        assert_eq!(e.kind, ErrorKind::User);
        assert_eq!(e.message, "a.pdf: PDF is not supported yet");

        let e: cairn_core::Error = IngestError::Encoding {
            file: "x.txt".into(),
        }
        .into();
        assert_eq!(e.kind, ErrorKind::User);
        assert!(
            e.message.starts_with("x.txt: not valid text"),
            "{}",
            e.message
        );
    }

    #[test]
    fn io_errors_map_by_cause() {
        let missing = IngestError::Io {
            path: "/nope".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let e: cairn_core::Error = missing.into();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(e.message, "/nope: no such file");

        let other = IngestError::Io {
            path: "/disk".into(),
            source: std::io::Error::other("disk on fire"),
        };
        assert_eq!(other.kind(), ErrorKind::Internal);
        let panicked = IngestError::Panicked {
            file: "f".into(),
            panic: PanicMessage("boom".into()),
        };
        let e: cairn_core::Error = panicked.into();
        assert_eq!(e.kind, ErrorKind::Internal);
        assert_eq!(e.message, "f: the parser failed on this file");
        assert_eq!(
            e.to_string(),
            "f: the parser failed on this file: panic: boom"
        );
    }
}
