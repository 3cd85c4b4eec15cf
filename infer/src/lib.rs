//! `cairn-infer`: running models with candle. It picks the device ([`pick_device`]: the CPU,
//! or CUDA with the `cuda` feature), loads a BERT-family sentence encoder from a model folder
//! ([`BertEncoder`]: `config.json`, `tokenizer.json`, `model.safetensors`, optional
//! `1_Pooling/config.json`), and runs it on its own thread behind a bounded queue
//! ([`EmbedWorker`], which implements [`cairn_core::Embedder`]).
//! [`CrossEncoder`] scores (query, passage) pairs with a BERT sequence-classification reranker.
//! The GGUF decoder engine is its own crate, `cairn-llm`; here [`LlmReranker`] puts its
//! P("yes") scoring behind the reranker seam and [`LocalGenerator`] its continuous-batching
//! [`cairn_llm::Engine`] behind [`cairn_core::Generator`].
//!
//! This crate knows nothing about documents: it turns texts into vectors and text pairs into
//! scores.
//!
//! ```no_run
//! use std::path::Path;
//!
//! # async fn demo() -> cairn_core::Result<()> {
//! // 256 word pieces per input, 32 texts per forward pass, 64 requests may wait.
//! let embedder = cairn_infer::load_embedder(Path::new("models/minilm-l6"), 256, 32, 64)?;
//! let out = embedder.embed(vec!["How do I reset my password?".to_string()]).await?;
//! assert_eq!(out.vectors[0].len(), embedder.dims()); // 384 for all-MiniLM-L6-v2
//! assert!(!out.truncated[0]);
//! println!("{} counts {} word pieces", embedder.model_id(), embedder.count_tokens("Hello world."));
//! # Ok(())
//! # }
//! ```

mod bert;
mod cross;
mod device;
mod error;
mod generator;
mod rerank;
mod worker;

use std::path::Path;
use std::sync::Arc;

use cairn_core::Embedder;

pub use bert::{BertEncoder, DEFAULT_BATCH_SIZE, DEFAULT_MAX_TOKENS, Pooling, WordPieceCounter};
pub use cross::CrossEncoder;
pub use device::pick_device;
pub use error::InferError;
pub use generator::LocalGenerator;
pub use rerank::{LlmReranker, PairScorer, RerankWorker, load_reranker};
pub use worker::EmbedWorker;

/// Loads the sentence encoder in `dir` on the [`pick_device`] device and starts its worker.
///
/// `max_tokens` is the longest input in word pieces (longer input is truncated and reported),
/// `batch_size` the most texts per forward pass, `queue` how many requests may wait.
/// A missing folder or file is an [`cairn_core::ErrorKind::User`] error naming the path and
/// telling to run `scripts/install-models`.
pub fn load_embedder(
    dir: &Path,
    max_tokens: usize,
    batch_size: usize,
    queue: usize,
) -> cairn_core::Result<Arc<dyn Embedder>> {
    let device = pick_device()?;
    let encoder = BertEncoder::load(dir, &device, max_tokens)?;
    Ok(Arc::new(EmbedWorker::spawn(encoder, batch_size, queue)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::ErrorKind;

    #[test]
    fn a_missing_model_folder_tells_what_to_run() {
        let dir = Path::new("/definitely/not/here/minilm-l6");
        let err = load_embedder(dir, 256, 8, 8)
            .err()
            .expect("the folder does not exist");
        assert_eq!(err.kind, ErrorKind::User);
        assert!(
            err.message.contains("/definitely/not/here/minilm-l6"),
            "{}",
            err.message
        );
        assert!(
            err.message.contains("run scripts/install-models"),
            "{}",
            err.message
        );
    }
}
