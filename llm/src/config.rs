//! The hyper-parameters of a llama-family decoder, read from GGUF metadata.
//!
//! llama and qwen2 share one block layout (RMSNorm, rotary attention with grouped key/value
//! heads, SwiGLU MLP). They differ in the rotary convention the GGUF converter leaves the
//! weights in, and qwen2 has biases on the query/key/value projections (read when present).

use super::gguf::GgufFile;
use crate::error::Result;

/// The model families this crate runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// `general.architecture = llama` (Llama, SmolLM, Mistral-style dense models).
    Llama,
    /// `general.architecture = qwen2` (Qwen2, Qwen2.5).
    Qwen2,
}

impl Architecture {
    /// Parses `general.architecture`; `None` for anything else.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "llama" => Some(Self::Llama),
            "qwen2" => Some(Self::Qwen2),
            _ => None,
        }
    }

    /// The prefix of this architecture's metadata keys.
    pub fn key_prefix(self) -> &'static str {
        match self {
            Self::Llama => "llama",
            Self::Qwen2 => "qwen2",
        }
    }

    /// How rotary embeddings pair the dimensions of a head in this family's GGUF weights.
    pub fn rope_style(self) -> RopeStyle {
        match self {
            // The GGUF converter permutes llama's q/k weights so that rotated pairs are
            // adjacent (llama.cpp's "norm" rope); qwen2's are left as trained ("neox").
            Self::Llama => RopeStyle::Interleaved,
            Self::Qwen2 => RopeStyle::Halves,
        }
    }
}

/// Which dimensions of a head rotary embeddings rotate together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// Pairs `(2i, 2i + 1)`.
    Interleaved,
    /// Pairs `(i, i + d/2)`.
    Halves,
}

/// Shapes and constants of a decoder LM.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmConfig {
    /// The model family.
    pub architecture: Architecture,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Number of transformer blocks.
    pub num_layers: usize,
    /// Number of query heads.
    pub num_heads: usize,
    /// Number of key/value heads (grouped-query attention when fewer than `num_heads`).
    pub num_kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Base of the rotary frequencies.
    pub rope_theta: f64,
    /// Epsilon of the RMS norms.
    pub rms_eps: f64,
    /// The longest sequence (in tokens, positions included) the model was trained for.
    pub context_length: usize,
    /// Number of token ids.
    pub vocab_size: usize,
}

impl LlmConfig {
    /// Reads the configuration from a GGUF file's metadata, refusing what the forward pass
    /// does not implement (mixture of experts, partial rotary, rope scaling).
    pub fn from_gguf(gguf: &GgufFile) -> Result<Self> {
        let name = gguf.architecture()?;
        let architecture = Architecture::from_name(name).ok_or_else(|| {
            gguf.unsupported(format!(
                "architecture {name:?} is not supported (supported: llama, qwen2)"
            ))
        })?;
        let p = architecture.key_prefix();
        let key = |k: &str| format!("{p}.{k}");

        let hidden_size = gguf.usize(&key("embedding_length"))?;
        let num_layers = gguf.usize(&key("block_count"))?;
        let num_heads = gguf.usize(&key("attention.head_count"))?;
        let num_kv_heads = if gguf.has(&key("attention.head_count_kv")) {
            gguf.usize(&key("attention.head_count_kv"))?
        } else {
            num_heads
        };
        let rms_eps = gguf.f64(&key("attention.layer_norm_rms_epsilon"))?;
        let rope_theta = if gguf.has(&key("rope.freq_base")) {
            gguf.f64(&key("rope.freq_base"))?
        } else {
            10_000.0
        };
        let context_length = gguf.usize(&key("context_length"))?;

        if num_heads == 0 || num_kv_heads == 0 || num_heads % num_kv_heads != 0 {
            return Err(gguf.error(format!(
                "{num_heads} query heads cannot be grouped over {num_kv_heads} key/value heads"
            )));
        }
        if hidden_size % num_heads != 0 {
            return Err(gguf.error(format!(
                "embedding length {hidden_size} is not a multiple of {num_heads} heads"
            )));
        }
        let head_dim = hidden_size / num_heads;
        if head_dim % 2 != 0 {
            return Err(gguf.error(format!("head width {head_dim} is odd")));
        }
        if gguf.has(&key("rope.dimension_count")) {
            let rope_dims = gguf.usize(&key("rope.dimension_count"))?;
            if rope_dims != head_dim {
                return Err(gguf.unsupported(format!(
                    "rotary embeddings over {rope_dims} of {head_dim} head dimensions"
                )));
            }
        }
        if gguf.has(&key("expert_count")) && gguf.usize(&key("expert_count"))? > 1 {
            return Err(gguf.unsupported("mixture-of-experts models".to_string()));
        }
        if gguf.has(&key("rope.scaling.type")) {
            let scaling = gguf.string(&key("rope.scaling.type"))?;
            if scaling != "none" {
                return Err(gguf.unsupported(format!("rope scaling {scaling:?}")));
            }
        }
        if gguf.has_tensor("rope_freqs.weight") {
            return Err(gguf.unsupported("per-frequency rope factors (rope_freqs)".to_string()));
        }

        let embed = gguf.tensor_dims("token_embd.weight")?;
        let [vocab_size, width] = embed else {
            return Err(gguf.error(format!("token_embd.weight has shape {embed:?}")));
        };
        if *width != hidden_size {
            return Err(gguf.error(format!(
                "token_embd.weight is {width} wide, the metadata says {hidden_size}"
            )));
        }
        Ok(Self {
            architecture,
            hidden_size,
            num_layers,
            num_heads,
            num_kv_heads,
            head_dim,
            rope_theta,
            rms_eps,
            context_length,
            vocab_size: *vocab_size,
        })
    }
}
