//! Errors of the `infer` crate: what can go wrong loading a model folder or running it, and
//! how each maps onto [`cairn_core::ErrorKind`] at the crate boundary.

use std::path::PathBuf;

use cairn_core::ErrorKind;

/// Everything that can fail inside `infer`.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// The model folder or one of its required files is not there.
    #[error("model file {} not found: run scripts/install-models (or point the model dir at a folder with config.json, tokenizer.json and model.safetensors)", path.display())]
    ModelMissing { path: PathBuf },

    /// A file exists but could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A JSON file of the model folder is malformed or not a BERT config.
    #[error("cannot parse {}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// `tokenizer.json` could not be loaded or configured.
    #[error("tokenizer {}: {message}", path.display())]
    Tokenizer { path: PathBuf, message: String },

    /// Tokenizing an input text failed.
    #[error("cannot tokenize input: {0}")]
    Encode(String),

    /// The model folder asks for something this encoder does not do.
    #[error("unsupported model setting in {}: {message}", path.display())]
    Unsupported { path: PathBuf, message: String },

    /// `model.safetensors` is unreadable or does not hold the weights `config.json` describes.
    #[error("cannot load weights from {}: reinstall the model (scripts/install-models)", path.display())]
    Weights {
        path: PathBuf,
        #[source]
        source: candle_core::Error,
    },

    /// A setting passed by the caller is out of range.
    #[error("invalid setting: {0}")]
    InvalidSetting(String),

    /// Loading weights or running the forward pass failed.
    #[error("model computation failed")]
    Candle(#[from] candle_core::Error),

    /// The worker thread that owns the model has stopped.
    #[error("the embedding worker has stopped")]
    WorkerGone,

    /// The worker thread panicked or returned a malformed answer while embedding a batch.
    #[error("the embedding worker failed: {0}")]
    WorkerFailed(String),

    /// The LLM engine failed (`cairn-llm`).
    #[error(transparent)]
    Llm(#[from] cairn_llm::LlmError),
}

/// Results inside this crate.
pub type Result<T, E = InferError> = std::result::Result<T, E>;

impl InferError {
    /// The kind of failure from the caller's point of view.
    pub fn kind(&self) -> ErrorKind {
        match self {
            InferError::ModelMissing { .. }
            | InferError::Json { .. }
            | InferError::Tokenizer { .. }
            | InferError::Unsupported { .. }
            | InferError::Weights { .. }
            | InferError::InvalidSetting(_) => ErrorKind::User,
            InferError::Encode(_) => ErrorKind::User,
            InferError::Io { .. }
            | InferError::Candle(_)
            | InferError::WorkerGone
            | InferError::WorkerFailed(_) => ErrorKind::Internal,
            InferError::Llm(e) => e.kind(),
        }
    }
}

impl From<InferError> for cairn_core::Error {
    fn from(err: InferError) -> Self {
        let kind = err.kind();
        let message = err.to_string();
        match err {
            InferError::Io { source, .. } => {
                cairn_core::Error::new(kind, message).with_source(source)
            }
            InferError::Json { source, .. } => {
                cairn_core::Error::new(kind, message).with_source(source)
            }
            InferError::Candle(source) | InferError::Weights { source, .. } => {
                cairn_core::Error::new(kind, message).with_source(source)
            }
            InferError::Llm(e) => e.into(),
            _ => cairn_core::Error::new(kind, message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_model_is_a_user_error_that_says_what_to_run() {
        let err: cairn_core::Error = InferError::ModelMissing {
            path: PathBuf::from("/nowhere/minilm/config.json"),
        }
        .into();
        assert_eq!(err.kind, ErrorKind::User);
        assert!(
            err.message.contains("/nowhere/minilm/config.json"),
            "{}",
            err.message
        );
        assert!(
            err.message.contains("scripts/install-models"),
            "{}",
            err.message
        );
    }

    #[test]
    fn worker_failures_are_internal() {
        let err: cairn_core::Error = InferError::WorkerGone.into();
        assert_eq!(err.kind, ErrorKind::Internal);
        let err: cairn_core::Error =
            InferError::Candle(candle_core::Error::Msg("boom".into())).into();
        assert_eq!(err.kind, ErrorKind::Internal);
        assert!(err.source.is_some());
    }
}
