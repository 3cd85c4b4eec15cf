//! The forward pass of a llama-family decoder (llama, qwen2) over a batch of sequences that
//! each have their own length and their own starting position.
//!
//! A [`Batch`] is right-padded: row `i` holds `lengths[i]` real tokens and then padding, and
//! its first token sits at position `positions[i]` (0 for a fresh prompt). Everything that acts
//! on one token at a time (embeddings, norms, projections, the MLP) runs over the whole padded
//! `[batch, seq]` block; attention runs sequence by sequence over the real tokens only, so a
//! sequence never sees padding or another sequence, and the score matrix held at once is one
//! sequence's `[heads, len, len]`, never `[batch, heads, seq, seq]`. Rotary embeddings take
//! each sequence's own positions, which is what a per-sequence KV cache needs: keys and values
//! of earlier positions are prepended in [`attend`], whose causal mask already allows a
//! query block that starts after the keys do.
//!
//! The block: `x += attn(rms_norm(x))`, `x += mlp(rms_norm(x))`, with grouped-query attention
//! (several query heads share a key/value head), rotary position embeddings, and a SwiGLU MLP
//! (`down(silu(gate(x)) * up(x))`). The output head is `output.weight`, or the token
//! embedding matrix when the file ties them.

use candle_core::quantized::QMatMul;
use candle_core::{DType, Device, IndexOp, Module, Tensor};
use candle_nn::Embedding;

use super::config::{LlmConfig, RopeStyle};
use super::gguf::{GgufFile, GgufReader};
use crate::error::{InferError, Result};

/// How a model holds its weight matrices in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightFormat {
    /// As stored in the file (e.g. Q4_1), multiplied by candle's quantized kernels, which
    /// also quantize activations to 8 bits. The least memory, and what GPU kernels and
    /// llama.cpp do.
    #[default]
    Quantized,
    /// Dequantized to f32 when loading and multiplied densely: 4 bytes per weight, but several
    /// times faster on CPUs for which candle has no SIMD kernel of the file's quantization
    /// (Q4_1 on x86, or any x86 build without AVX enabled at compile time).
    F32,
}

/// A right-padded batch of token sequences with per-sequence lengths and start positions.
#[derive(Debug, Clone)]
pub struct Batch {
    tokens: Tensor,
    lengths: Vec<usize>,
    positions: Vec<usize>,
    max_token: u32,
}

impl Batch {
    /// A batch of fresh sequences (each starting at position 0), right-padded with `pad_id`.
    pub fn new<S: AsRef<[u32]>>(sequences: &[S], pad_id: u32, device: &Device) -> Result<Self> {
        let positions = vec![0; sequences.len()];
        Self::with_positions(sequences, &positions, pad_id, device)
    }

    /// A batch whose sequence `i` starts at position `positions[i]`.
    pub fn with_positions<S: AsRef<[u32]>>(
        sequences: &[S],
        positions: &[usize],
        pad_id: u32,
        device: &Device,
    ) -> Result<Self> {
        if sequences.is_empty() {
            return Err(InferError::BadInput(
                "a batch needs at least one sequence".into(),
            ));
        }
        if positions.len() != sequences.len() {
            return Err(InferError::BadInput(format!(
                "{} start positions for {} sequences",
                positions.len(),
                sequences.len()
            )));
        }
        let lengths: Vec<usize> = sequences.iter().map(|s| s.as_ref().len()).collect();
        if let Some(i) = lengths.iter().position(|&n| n == 0) {
            return Err(InferError::BadInput(format!("sequence {i} is empty")));
        }
        let width = lengths.iter().copied().max().unwrap_or(0);
        let mut flat = Vec::with_capacity(width * sequences.len());
        for seq in sequences {
            let seq = seq.as_ref();
            flat.extend_from_slice(seq);
            flat.extend(std::iter::repeat_n(pad_id, width - seq.len()));
        }
        let max_token = flat.iter().copied().max().unwrap_or(0);
        let tokens = Tensor::from_vec(flat, (sequences.len(), width), device)?;
        Ok(Self {
            tokens,
            lengths,
            positions: positions.to_vec(),
            max_token,
        })
    }

    /// The `[batch, seq]` token ids (u32), padding included.
    pub fn tokens(&self) -> &Tensor {
        &self.tokens
    }

    /// The number of real tokens in each row.
    pub fn lengths(&self) -> &[usize] {
        &self.lengths
    }

    /// The position of each row's first token.
    pub fn positions(&self) -> &[usize] {
        &self.positions
    }

    /// The number of sequences.
    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    /// Whether the batch has no sequence (never true for a constructed batch).
    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }

    /// The padded width: the longest sequence's length.
    pub fn width(&self) -> usize {
        self.lengths.iter().copied().max().unwrap_or(0)
    }
}

/// Root-mean-square layer norm with a learned scale.
#[derive(Debug, Clone)]
struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl Module for RmsNorm {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::rms_norm(xs, &self.weight, self.eps)
    }
}

/// A (quantized) linear map with an optional bias.
#[derive(Debug, Clone)]
struct Linear {
    weight: QMatMul,
    bias: Option<Tensor>,
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let ys = self.weight.forward(xs)?;
        match &self.bias {
            Some(bias) => ys.broadcast_add(bias),
            None => Ok(ys),
        }
    }
}

/// The SwiGLU feed-forward block.
#[derive(Debug, Clone)]
struct Mlp {
    gate: QMatMul,
    up: QMatMul,
    down: QMatMul,
}

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let gate = candle_nn::ops::silu(&self.gate.forward(xs)?)?;
        let up = self.up.forward(xs)?;
        self.down.forward(&(gate * up)?)
    }
}

/// Rotary position embeddings: the frequencies of one head and the pairing convention.
#[derive(Debug, Clone)]
struct Rope {
    inv_freq: Vec<f32>,
    style: RopeStyle,
}

impl Rope {
    fn new(head_dim: usize, theta: f64, style: RopeStyle) -> Self {
        let base = theta as f32;
        let inv_freq = (0..head_dim)
            .step_by(2)
            .map(|i| 1f32 / base.powf(i as f32 / head_dim as f32))
            .collect();
        Self { inv_freq, style }
    }

    /// The `(cos, sin)` tables, `[len, head_dim / 2]`, for positions `start..start + len`.
    fn tables(&self, start: usize, len: usize, device: &Device) -> Result<(Tensor, Tensor)> {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(len * half);
        let mut sin = Vec::with_capacity(len * half);
        for pos in start..start + len {
            for &f in &self.inv_freq {
                let angle = pos as f32 * f;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        Ok((
            Tensor::from_vec(cos, (len, half), device)?,
            Tensor::from_vec(sin, (len, half), device)?,
        ))
    }
}

/// Rotates `xs`, `[1, heads, len, head_dim]` and contiguous, by the tables of its positions.
fn rotate(xs: &Tensor, cos: &Tensor, sin: &Tensor, style: RopeStyle) -> Result<Tensor> {
    Ok(match style {
        RopeStyle::Interleaved => candle_nn::rotary_emb::rope_i(xs, cos, sin)?,
        RopeStyle::Halves => candle_nn::rotary_emb::rope(xs, cos, sin)?,
    })
}

/// What attention needs to know about one sequence of a batch for one forward pass.
struct SeqPlan {
    len: usize,
    cos: Tensor,
    sin: Tensor,
    /// Additive causal mask `[len, len]` (0 or -inf); `None` for a single token.
    mask: Option<Tensor>,
}

/// Multi-head attention with grouped key/value heads.
#[derive(Debug, Clone)]
struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: QMatMul,
    num_heads: usize,
    num_kv_heads: usize,
    head_dim: usize,
    rope_style: RopeStyle,
}

impl Attention {
    /// `xs` is `[batch * seq, hidden]` (row `i * seq + j` is token `j` of sequence `i`);
    /// returns the same shape. Padding rows hold the output projection of zeros.
    fn forward(&self, xs: &Tensor, plans: &[SeqPlan]) -> Result<Tensor> {
        let b = plans.len();
        let t = xs.dim(0)? / b;
        let q = self
            .q
            .forward(xs)?
            .reshape((b, t, self.num_heads, self.head_dim))?;
        let k = self
            .k
            .forward(xs)?
            .reshape((b, t, self.num_kv_heads, self.head_dim))?;
        let v = self
            .v
            .forward(xs)?
            .reshape((b, t, self.num_kv_heads, self.head_dim))?;
        let width = self.num_heads * self.head_dim;
        let mut rows = Vec::with_capacity(b);
        for (i, plan) in plans.iter().enumerate() {
            // [len, heads, dim] -> [1, heads, len, dim]
            let heads = |x: &Tensor| -> Result<Tensor> {
                Ok(x.i(i)?
                    .narrow(0, 0, plan.len)?
                    .transpose(0, 1)?
                    .contiguous()?
                    .unsqueeze(0)?)
            };
            let qi = rotate(&heads(&q)?, &plan.cos, &plan.sin, self.rope_style)?;
            let ki = rotate(&heads(&k)?, &plan.cos, &plan.sin, self.rope_style)?;
            let vi = heads(&v)?;
            let yi = attend(
                &qi.squeeze(0)?,
                &ki.squeeze(0)?,
                &vi.squeeze(0)?,
                plan.mask.as_ref(),
            )?;
            let yi = if plan.len < t {
                let pad = Tensor::zeros((t - plan.len, width), yi.dtype(), yi.device())?;
                Tensor::cat(&[&yi, &pad], 0)?
            } else {
                yi
            };
            rows.push(yi);
        }
        let ys = Tensor::cat(&rows, 0)?;
        Ok(self.o.forward(&ys)?)
    }
}

/// Scaled dot-product attention of one sequence.
///
/// `q` is `[heads, len, dim]`, `k` and `v` are `[kv_heads, kv_len, dim]` with
/// `kv_len >= len`: the queries are the last `len` positions of the keys (earlier keys would
/// come from a cache). Query head `h` reads key/value head `h / (heads / kv_heads)`. `mask` is
/// the additive `[len, kv_len]` causal mask. Returns `[len, heads * dim]`.
fn attend(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    let (heads, len, dim) = q.dims3()?;
    let (kv_heads, kv_len, _) = k.dims3()?;
    let group = heads / kv_heads;
    // Grouping the query heads by the key/value head they read avoids copying keys and
    // values once per query head.
    let q = q.reshape((kv_heads, group * len, dim))?;
    let scores = q.matmul(&k.t()?)?.affine(1.0 / (dim as f64).sqrt(), 0.0)?;
    let scores = match mask {
        Some(mask) => scores
            .reshape((kv_heads, group, len, kv_len))?
            .broadcast_add(mask)?
            .reshape((kv_heads, group * len, kv_len))?,
        None => scores,
    };
    let probs = candle_nn::ops::softmax_last_dim(&scores)?;
    let ys = probs.matmul(&v.contiguous()?)?;
    Ok(ys
        .reshape((heads, len, dim))?
        .transpose(0, 1)?
        .reshape((len, heads * dim))?)
}

/// The additive causal mask for `len` queries that are the last `len` of `kv_len` keys:
/// query `j` sees keys `0..=kv_len - len + j`.
fn causal_mask(len: usize, kv_len: usize, device: &Device) -> Result<Tensor> {
    let offset = kv_len - len;
    let mask: Vec<f32> = (0..len)
        .flat_map(|j| {
            (0..kv_len).map(move |c| {
                if c <= offset + j {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            })
        })
        .collect();
    Ok(Tensor::from_vec(mask, (len, kv_len), device)?)
}

/// One transformer block.
#[derive(Debug, Clone)]
struct Block {
    attn_norm: RmsNorm,
    attn: Attention,
    mlp_norm: RmsNorm,
    mlp: Mlp,
}

impl Block {
    fn forward(&self, xs: &Tensor, plans: &[SeqPlan]) -> Result<Tensor> {
        let h = self.attn.forward(&self.attn_norm.forward(xs)?, plans)?;
        let xs = (xs + h)?;
        let h = self.mlp.forward(&self.mlp_norm.forward(&xs)?)?;
        Ok((xs + h)?)
    }
}

/// A llama-family decoder loaded from GGUF, with a batched forward pass.
#[derive(Debug, Clone)]
pub struct DecoderModel {
    config: LlmConfig,
    embed: Embedding,
    blocks: Vec<Block>,
    norm: RmsNorm,
    head: QMatMul,
    rope: Rope,
    device: Device,
}

impl DecoderModel {
    /// Loads the weights described by `gguf`'s metadata onto `device`, weight matrices in
    /// `format`. Token embeddings are always dequantized to f32.
    pub fn load(gguf: &GgufFile, device: &Device, format: WeightFormat) -> Result<Self> {
        let config = LlmConfig::from_gguf(gguf)?;
        let mut reader = gguf.reader()?;
        let loader = Loader {
            gguf,
            reader: &mut reader,
            device,
            eps: config.rms_eps as f32,
            format,
        };
        Self::load_with(config, loader)
    }

    fn load_with(config: LlmConfig, mut ld: Loader<'_>) -> Result<Self> {
        let hidden = config.hidden_size;
        let kv_width = config.num_kv_heads * config.head_dim;
        let embed_q = ld.qtensor("token_embd.weight")?;
        let embed_f32 = embed_q.dequantize(ld.device)?;
        let head = if ld.gguf.has_tensor("output.weight") {
            ld.qmatmul("output.weight", &[config.vocab_size, hidden])?
        } else {
            match ld.format {
                WeightFormat::Quantized => QMatMul::from_qtensor(embed_q)?,
                WeightFormat::F32 => QMatMul::Tensor(embed_f32.clone()),
            }
        };
        let embed = Embedding::new(embed_f32, hidden);
        let norm = ld.norm("output_norm.weight", hidden)?;
        let rope = Rope::new(
            config.head_dim,
            config.rope_theta,
            config.architecture.rope_style(),
        );
        let mut blocks = Vec::with_capacity(config.num_layers);
        for layer in 0..config.num_layers {
            let name = |t: &str| format!("blk.{layer}.{t}");
            let attn = Attention {
                q: ld.linear(&name("attn_q"), &[hidden, hidden])?,
                k: ld.linear(&name("attn_k"), &[kv_width, hidden])?,
                v: ld.linear(&name("attn_v"), &[kv_width, hidden])?,
                o: ld.qmatmul(&name("attn_output.weight"), &[hidden, hidden])?,
                num_heads: config.num_heads,
                num_kv_heads: config.num_kv_heads,
                head_dim: config.head_dim,
                rope_style: rope.style,
            };
            let mlp = Mlp {
                gate: ld.qmatmul(&name("ffn_gate.weight"), &[])?,
                up: ld.qmatmul(&name("ffn_up.weight"), &[])?,
                down: ld.qmatmul(&name("ffn_down.weight"), &[])?,
            };
            blocks.push(Block {
                attn_norm: ld.norm(&name("attn_norm.weight"), hidden)?,
                attn,
                mlp_norm: ld.norm(&name("ffn_norm.weight"), hidden)?,
                mlp,
            });
        }
        Ok(Self {
            config,
            embed,
            blocks,
            norm,
            head,
            rope,
            device: ld.device.clone(),
        })
    }

    /// The model's hyper-parameters.
    pub fn config(&self) -> &LlmConfig {
        &self.config
    }

    /// The device the weights live on; batches must be built on it.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Next-token logits at each sequence's last real token: `[batch, vocab]`, f32.
    pub fn forward_last(&self, batch: &Batch) -> Result<Tensor> {
        let hidden = self.hidden(batch)?;
        let t = batch.width();
        let last: Vec<u32> = batch
            .lengths()
            .iter()
            .enumerate()
            .map(|(i, &len)| (i * t + len - 1) as u32)
            .collect();
        let last = Tensor::from_vec(last, batch.len(), &self.device)?;
        let rows = hidden.index_select(&last, 0)?;
        Ok(self.head.forward(&self.norm.forward(&rows)?)?)
    }

    /// Logits at every position: `[batch, seq, vocab]`, f32. Rows past a sequence's length
    /// are padding and hold no meaning.
    pub fn forward_all(&self, batch: &Batch) -> Result<Tensor> {
        let hidden = self.hidden(batch)?;
        let logits = self.head.forward(&self.norm.forward(&hidden)?)?;
        Ok(logits.reshape((batch.len(), batch.width(), ()))?)
    }

    /// The residual stream after the last block, `[batch * seq, hidden]`: every token of the
    /// padded batch is one row, so each projection is one matrix product.
    fn hidden(&self, batch: &Batch) -> Result<Tensor> {
        if batch.max_token as usize >= self.config.vocab_size {
            return Err(InferError::BadInput(format!(
                "token id {} is outside the vocabulary of {} tokens",
                batch.max_token, self.config.vocab_size
            )));
        }
        let mut plans = Vec::with_capacity(batch.len());
        for (&len, &start) in batch.lengths().iter().zip(batch.positions()) {
            if start + len > self.config.context_length {
                return Err(InferError::BadInput(format!(
                    "a sequence reaching position {} exceeds the model's context of {} tokens",
                    start + len,
                    self.config.context_length
                )));
            }
            let (cos, sin) = self.rope.tables(start, len, &self.device)?;
            let mask = (len > 1)
                .then(|| causal_mask(len, len, &self.device))
                .transpose()?;
            plans.push(SeqPlan {
                len,
                cos,
                sin,
                mask,
            });
        }
        let mut xs = self
            .embed
            .forward(&batch.tokens().flatten_all()?)?
            .to_dtype(DType::F32)?;
        for block in &self.blocks {
            xs = block.forward(&xs, &plans)?;
        }
        Ok(xs)
    }
}

/// Reads named tensors of a GGUF file, checking their shapes.
struct Loader<'a> {
    gguf: &'a GgufFile,
    reader: &'a mut GgufReader,
    device: &'a Device,
    eps: f32,
    format: WeightFormat,
}

impl Loader<'_> {
    fn qtensor(&mut self, name: &str) -> Result<candle_core::quantized::QTensor> {
        self.gguf.tensor(self.reader, name, self.device)
    }

    /// A weight matrix; `dims` (out, in) is checked unless empty.
    fn qmatmul(&mut self, name: &str, dims: &[usize]) -> Result<QMatMul> {
        let found = self.gguf.tensor_dims(name)?;
        if !dims.is_empty() && found != dims {
            return Err(self.gguf.error(format!(
                "tensor {name} has shape {found:?}, the metadata implies {dims:?}"
            )));
        }
        let weights = self.qtensor(name)?;
        Ok(match self.format {
            WeightFormat::Quantized => QMatMul::from_qtensor(weights)?,
            WeightFormat::F32 => QMatMul::Tensor(weights.dequantize(self.device)?),
        })
    }

    /// `<name>.weight` and, when the file has it, `<name>.bias`.
    fn linear(&mut self, name: &str, dims: &[usize]) -> Result<Linear> {
        let weight = self.qmatmul(&format!("{name}.weight"), dims)?;
        let bias_name = format!("{name}.bias");
        let bias = if self.gguf.has_tensor(&bias_name) {
            Some(self.vector(&bias_name, dims.first().copied().unwrap_or(0))?)
        } else {
            None
        };
        Ok(Linear { weight, bias })
    }

    fn norm(&mut self, name: &str, size: usize) -> Result<RmsNorm> {
        Ok(RmsNorm {
            weight: self.vector(name, size)?,
            eps: self.eps,
        })
    }

    fn vector(&mut self, name: &str, size: usize) -> Result<Tensor> {
        let found = self.gguf.tensor_dims(name)?;
        if found != [size] {
            return Err(self.gguf.error(format!(
                "tensor {name} has shape {found:?}, expected [{size}]"
            )));
        }
        Ok(self.qtensor(name)?.dequantize(self.device)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_causal_mask_lets_each_query_see_itself_and_earlier_keys() {
        let mask = causal_mask(2, 4, &Device::Cpu).expect("mask");
        let rows: Vec<Vec<f32>> = mask.to_vec2().expect("f32");
        let inf = f32::NEG_INFINITY;
        assert_eq!(
            rows,
            vec![vec![0.0, 0.0, 0.0, inf], vec![0.0, 0.0, 0.0, 0.0]]
        );
    }

    #[test]
    fn batches_are_right_padded_and_checked() {
        let batch = Batch::new(&[vec![5, 6, 7], vec![8]], 0, &Device::Cpu).expect("batch");
        let rows: Vec<Vec<u32>> = batch.tokens().to_vec2().expect("u32");
        assert_eq!(rows, vec![vec![5, 6, 7], vec![8, 0, 0]]);
        assert_eq!(batch.lengths(), &[3, 1]);
        assert_eq!(batch.positions(), &[0, 0]);
        assert_eq!(batch.width(), 3);

        let empty: &[Vec<u32>] = &[];
        assert!(matches!(
            Batch::new(empty, 0, &Device::Cpu),
            Err(InferError::BadInput(_))
        ));
        assert!(matches!(
            Batch::new(&[vec![1], vec![]], 0, &Device::Cpu),
            Err(InferError::BadInput(_))
        ));
        assert!(matches!(
            Batch::with_positions(&[vec![1]], &[0, 1], 0, &Device::Cpu),
            Err(InferError::BadInput(_))
        ));
    }

    /// Grouped attention equals attention with each key/value head repeated per query head.
    #[test]
    fn grouped_attention_matches_repeated_heads() {
        let dev = Device::Cpu;
        let (heads, kv_heads, len, dim) = (4, 2, 3, 4);
        let q = Tensor::randn(0f32, 1.0, (heads, len, dim), &dev).expect("q");
        let k = Tensor::randn(0f32, 1.0, (kv_heads, len, dim), &dev).expect("k");
        let v = Tensor::randn(0f32, 1.0, (kv_heads, len, dim), &dev).expect("v");
        let mask = causal_mask(len, len, &dev).expect("mask");
        let got = attend(&q, &k, &v, Some(&mask)).expect("attend");

        let mut want = Vec::new();
        for h in 0..heads {
            let kv = h / (heads / kv_heads);
            let (qh, kh, vh) = (q.i(h).expect("q"), k.i(kv).expect("k"), v.i(kv).expect("v"));
            let s = (qh.matmul(&kh.t().expect("t")).expect("mm") / (dim as f64).sqrt())
                .expect("scale")
                .broadcast_add(&mask)
                .expect("mask");
            let p = candle_nn::ops::softmax_last_dim(&s).expect("softmax");
            want.push(p.matmul(&vh).expect("mm"));
        }
        // [heads, len, dim] -> [len, heads * dim]
        let want = Tensor::stack(&want, 0)
            .and_then(|w| w.transpose(0, 1))
            .and_then(|w| w.reshape((len, heads * dim)))
            .expect("want");
        let diff = (got - want)
            .and_then(|d| d.abs())
            .and_then(|d| d.max_all())
            .and_then(|d| d.to_scalar::<f32>())
            .expect("diff");
        assert!(diff < 1e-6, "max difference {diff}");
    }
}
