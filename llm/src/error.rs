//! Errors of the LLM engine: reading a GGUF file, its tokenizer and chat template, running
//! the forward pass and the generation queue, and how each maps onto
//! [`cairn_core::ErrorKind`] at the crate boundary.

use std::path::PathBuf;

use cairn_core::ErrorKind;

/// Everything that can fail inside the engine.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The GGUF file of a decoder LM, or the folder that should hold one, is not there.
    #[error("GGUF model {} not found: run scripts/install-models (or point at a .gguf file or a folder holding exactly one)", path.display())]
    GgufMissing { path: PathBuf },

    /// A file exists but could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The file's tensors are unreadable.
    #[error("cannot load weights from {}: reinstall the model (scripts/install-models)", path.display())]
    Weights {
        path: PathBuf,
        #[source]
        source: candle_core::Error,
    },

    /// A GGUF file's metadata lacks a key the model needs or holds a value of the wrong type.
    #[error("GGUF model {}: {message}", path.display())]
    Gguf { path: PathBuf, message: String },

    /// The file asks for something this engine does not do.
    #[error("unsupported model setting in {}: {message}", path.display())]
    Unsupported { path: PathBuf, message: String },

    /// The tokenizer in the file's metadata could not be built.
    #[error("tokenizer {}: {message}", path.display())]
    Tokenizer { path: PathBuf, message: String },

    /// Tokenizing an input text failed.
    #[error("cannot tokenize input: {0}")]
    Encode(String),

    /// A chat template failed to parse or to render.
    #[error("chat template: {0}")]
    ChatTemplate(String),

    /// A setting passed by the caller is out of range.
    #[error("invalid setting: {0}")]
    InvalidSetting(String),

    /// Input to a forward pass is malformed: ragged lengths, unknown token ids, a sequence
    /// longer than the model's context.
    #[error("invalid model input: {0}")]
    BadInput(String),

    /// Running the forward pass failed.
    #[error("model computation failed")]
    Candle(#[from] candle_core::Error),

    /// The generation queue is full: the caller should retry later.
    #[error("the generator is busy ({0} requests waiting): try again shortly")]
    Busy(usize),

    /// The thread that owns the model has stopped.
    #[error("the generator has stopped")]
    WorkerGone,

    /// The thread that owns the model failed.
    #[error("the generator failed: {0}")]
    WorkerFailed(String),
}

/// Results inside this crate.
pub type Result<T, E = LlmError> = std::result::Result<T, E>;

impl LlmError {
    /// The kind of failure from the caller's point of view.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LlmError::GgufMissing { .. }
            | LlmError::Weights { .. }
            | LlmError::Gguf { .. }
            | LlmError::Unsupported { .. }
            | LlmError::Tokenizer { .. }
            | LlmError::Encode(_)
            | LlmError::ChatTemplate(_)
            | LlmError::InvalidSetting(_)
            | LlmError::BadInput(_) => ErrorKind::User,
            LlmError::Io { .. }
            | LlmError::Candle(_)
            | LlmError::WorkerGone
            | LlmError::WorkerFailed(_) => ErrorKind::Internal,
            LlmError::Busy(_) => ErrorKind::Transient,
        }
    }
}

impl From<LlmError> for cairn_core::Error {
    fn from(err: LlmError) -> Self {
        let kind = err.kind();
        let message = err.to_string();
        match err {
            LlmError::Io { source, .. } => {
                cairn_core::Error::new(kind, message).with_source(source)
            }
            LlmError::Candle(source) | LlmError::Weights { source, .. } => {
                cairn_core::Error::new(kind, message).with_source(source)
            }
            _ => cairn_core::Error::new(kind, message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_is_transient_and_a_missing_file_says_what_to_run() {
        assert_eq!(LlmError::Busy(3).kind(), ErrorKind::Transient);
        let e = cairn_core::Error::from(LlmError::GgufMissing {
            path: "models/x".into(),
        });
        assert_eq!(e.kind, ErrorKind::User);
        assert!(
            e.message.contains("scripts/install-models"),
            "{}",
            e.message
        );
    }
}
