//! `cairn-llm`: the LLM engine. Decoder language models read from one GGUF file: llama-family weights (llama, qwen2), the
//! tokenizer and chat template stored in the file's metadata, a batched forward pass, and
//! yes/no scoring for LLM reranking.
//!
//! The parts, each usable alone:
//! - [`GgufFile`]: opens the file and reads its metadata;
//! - [`LlmConfig`]: the hyper-parameters;
//! - [`DecoderModel`]: the weights (kept quantized or dequantized, see [`WeightFormat`]) and
//!   the forward pass over a right-padded [`Batch`] whose sequences each have their own
//!   length and start position (ready for per-sequence KV caches);
//! - [`GgufTokenizer`]: the byte-level BPE tokenizer, special tokens included;
//! - [`ChatTemplate`]: the model's Jinja chat template;
//! - [`LlmScorer`]: all of the above, scoring prompts by P("yes") of the next token;
//! - [`Engine`]: all of the above, generating text for many requests at once (continuous
//!   batching, per-sequence [`KvCache`]s, [`SamplingParams`], streamed [`Event`]s).
//!
//! ```no_run
//! use std::path::Path;
//! use cairn_llm::{LlmScorer, RerankPrompt, WeightFormat};
//!
//! # fn demo() -> Result<(), cairn_llm::LlmError> {
//! let device = candle_core::Device::Cpu; // or cairn_infer::pick_device()
//! let dir = Path::new("models/smollm2-135m");
//! let scorer = LlmScorer::load(dir, &device, WeightFormat::Quantized)?;
//! let passages = ["Paris is the capital of France.", "Bananas are rich in potassium."];
//! let scores = scorer.rerank("What is the capital of France?", &passages, &RerankPrompt::default(), 8)?;
//! assert_eq!(scores.len(), 2); // each P("yes"), in the passages' order
//! # Ok(())
//! # }
//! ```

mod config;
mod engine;
mod error;
mod gguf;
mod host;
mod model;
mod qmm;
mod sample;
mod score;
mod template;
mod tokenizer;

pub use config::{Architecture, LlmConfig, RopeStyle};
pub use engine::{
    Completion, Engine, EngineOptions, EngineStats, Event, FinishReason, Finished, Generation,
};
pub use error::LlmError;
pub use gguf::{GgufFile, GgufReader};
pub use model::{Batch, DecoderModel, KvCache, WeightFormat};
pub use sample::{Sampler, SamplingParams, TextOut};
pub use score::{
    DEFAULT_MAX_PASSAGE_TOKENS, DEFAULT_MAX_QUERY_TOKENS, DEFAULT_RERANK_INSTRUCTION, LlmScorer,
    RerankPrompt,
};
pub use template::{ChatMessage, ChatTemplate, Role};
pub use tokenizer::{GgufTokenizer, PreTokenizerKind, SpecialToken};

/// The instruction sets of the quantized CPU kernels this process runs under
/// [`WeightFormat::Fast`]: "avx2+avxvnni", "avx2" or "portable", chosen once from the build
/// and the CPU.
pub fn cpu_kernels() -> &'static str {
    qmm::kernels_name()
}

/// Loads what one GGUF file (or the folder holding it) holds: the weights onto `device` in
/// `format`, the tokenizer and the chat template, checking that they fit together.
pub fn load_parts(
    path: &std::path::Path,
    device: &candle_core::Device,
    format: WeightFormat,
) -> crate::error::Result<(DecoderModel, GgufTokenizer, ChatTemplate)> {
    let gguf = GgufFile::open(path)?;
    let tokenizer = GgufTokenizer::from_gguf(&gguf)?;
    let template = ChatTemplate::from_gguf(&gguf, &tokenizer)?;
    let model = DecoderModel::load(&gguf, device, format)?;
    if tokenizer.vocab_size() > model.config().vocab_size {
        return Err(gguf.error(format!(
            "the tokenizer has {} tokens but the embeddings only {}",
            tokenizer.vocab_size(),
            model.config().vocab_size
        )));
    }
    Ok((model, tokenizer, template))
}

#[cfg(test)]
mod test_util {
    /// `n` numbers in [-1, 1] from a xorshift seeded with `seed`: test inputs that are the
    /// same on every run.
    pub(crate) fn numbers(n: usize, seed: u32) -> Vec<f32> {
        let mut x = seed.wrapping_mul(2_654_435_761).max(1);
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }
}
