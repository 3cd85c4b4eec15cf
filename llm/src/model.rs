//! The forward pass of a llama-family decoder (llama, qwen2) over a batch of sequences that
//! each have their own length and their own starting position.
//!
//! A [`Batch`] is packed: the sequences' tokens are laid end to end, with no padding, and
//! sequence `i`'s first token sits at position `positions[i]` (0 for a fresh prompt, the
//! length of its [`KvCache`] when decoding). Everything that acts on one token at a time
//! (embeddings, norms, projections, the MLP) runs over all the batch's tokens as one matrix;
//! attention runs sequence by sequence, so a sequence never sees another one, and the score
//! matrix held at once is one sequence's `[heads, len, kv_len]`. This is what continuous
//! batching needs: a step that decodes one token for each of eight sequences while another
//! prefills a 256-token chunk costs 264 rows, not 9 × 256.
//!
//! The block: `x += attn(rms_norm(x))`, `x += mlp(rms_norm(x))`, with grouped-query attention
//! (several query heads share a key/value head), rotary position embeddings, and a SwiGLU MLP
//! (`down(silu(gate(x)) * up(x))`). The output head is `output.weight`, or the token
//! embedding matrix when the file ties them.
//!
//! Every operation acts on one row (token) or one sequence at a time, and the quantized
//! kernels compute each row's dot products alone, so a sequence's logits do not depend on
//! what else is in its batch: greedy decoding gives the same text alone or batched.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use std::sync::Arc;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::Embedding;

use super::config::{LlmConfig, RopeStyle};
use super::gguf::{GgufFile, GgufReader};
use super::host::{self, Heads, HostKv, RopeTables, Span};
use super::qmm::{Activations, CpuMatrix};
use crate::error::{LlmError, Result};

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
    /// The fastest way this build knows for each stored type. On the CPU, Q4_1 and Q8_0
    /// matrices stay as stored and are multiplied by cairn's own kernels, which read each
    /// block of weights once for up to four rows (see `qmm`), and so are Q5_0 matrices;
    /// Q4_0 and Q4_K become Q4_1 without loss; Q5_1, Q5_K and Q6_K are requantized to Q8_0
    /// for those kernels; Q2_K and Q3_K stay with candle's. On a GPU, types without candle
    /// kernels become Q8_0. Q8_0 keeps 8 bits per weight, so re-quantizing 4- or 5-bit
    /// weights loses almost nothing.
    /// The default for generating on a CPU.
    Fast,
}

impl WeightFormat {
    /// The fastest format on `device`: [`WeightFormat::Fast`] on a CPU (cairn's own
    /// kernels), [`WeightFormat::Quantized`] on a GPU (candle's kernels of the stored types).
    pub fn for_device(device: &Device) -> Self {
        if device.is_cpu() {
            Self::Fast
        } else {
            Self::Quantized
        }
    }

    /// How a matrix stored as `dtype` is held under this format on `device`: `None` for
    /// dense f32.
    fn target(self, dtype: GgmlDType, device: &Device) -> Option<GgmlDType> {
        use GgmlDType as T;
        match self {
            Self::Quantized => Some(dtype),
            Self::F32 => None,
            Self::Fast => Some(match dtype {
                _ if device.is_cpu() && CpuMatrix::supports(dtype) => dtype,
                // 5 and 6 bits in sub-blocks of 16 or 32 with their own scales: 8 bits per
                // weight in blocks of 32 keep them within a quarter of their step, and the
                // CPU's tiled kernels beat candle's one-row-at-a-time k-quant products.
                T::Q5K | T::Q6K if device.is_cpu() => T::Q8_0,
                T::Q4_0
                | T::Q8_0
                | T::Q2K
                | T::Q3K
                | T::Q4K
                | T::Q5K
                | T::Q6K
                | T::Q8K
                | T::F32
                | T::F16
                | T::BF16 => dtype,
                _ => T::Q8_0,
            }),
        }
    }
}

/// A packed batch of token sequences with per-sequence lengths and start positions.
#[derive(Debug, Clone)]
pub struct Batch {
    tokens: Vec<u32>,
    lengths: Vec<usize>,
    positions: Vec<usize>,
}

impl Batch {
    /// A batch of fresh sequences (each starting at position 0).
    pub fn new<S: AsRef<[u32]>>(sequences: &[S]) -> Result<Self> {
        let positions = vec![0; sequences.len()];
        Self::with_positions(sequences, &positions)
    }

    /// A batch whose sequence `i` starts at position `positions[i]`.
    pub fn with_positions<S: AsRef<[u32]>>(sequences: &[S], positions: &[usize]) -> Result<Self> {
        if sequences.is_empty() {
            return Err(LlmError::BadInput(
                "a batch needs at least one sequence".into(),
            ));
        }
        if positions.len() != sequences.len() {
            return Err(LlmError::BadInput(format!(
                "{} start positions for {} sequences",
                positions.len(),
                sequences.len()
            )));
        }
        let lengths: Vec<usize> = sequences.iter().map(|s| s.as_ref().len()).collect();
        if let Some(i) = lengths.iter().position(|&n| n == 0) {
            return Err(LlmError::BadInput(format!("sequence {i} is empty")));
        }
        let tokens = sequences
            .iter()
            .flat_map(|s| s.as_ref().iter().copied())
            .collect();
        Ok(Self {
            tokens,
            lengths,
            positions: positions.to_vec(),
        })
    }

    /// All token ids, sequence after sequence.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// The number of tokens in each sequence.
    pub fn lengths(&self) -> &[usize] {
        &self.lengths
    }

    /// The position of each sequence's first token.
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

    /// The longest sequence's length.
    pub fn width(&self) -> usize {
        self.lengths.iter().copied().max().unwrap_or(0)
    }

    /// The index of each sequence's last token in [`Batch::tokens`].
    fn last_rows(&self) -> Vec<u32> {
        let mut end = 0;
        self.lengths
            .iter()
            .map(|&len| {
                end += len;
                (end - 1) as u32
            })
            .collect()
    }
}

/// The keys and values of one sequence's earlier positions, for every layer: what lets a
/// decode step read one new token instead of the whole sequence. Made by
/// [`DecoderModel::new_cache`]; its memory grows in steps of 256 positions.
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<LayerKv>,
    len: usize,
}

/// One layer's cache: plain vectors for the CPU's attention loops, tensors on a GPU.
#[derive(Debug, Clone)]
enum LayerKv {
    Host(HostKv),
    Device(candle_nn::kv_cache::KvCache),
}

impl KvCache {
    /// The number of positions held: where the sequence's next token goes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been run through it yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
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

/// A weight matrix `[out, in]`, multiplied as `xs · Wᵀ` by candle's kernels or, on the CPU
/// for Q4_1 and Q8_0 under [`WeightFormat::Fast`], by cairn's.
#[derive(Debug, Clone)]
enum Matrix {
    Candle(QMatMul),
    Cpu(Arc<CpuMatrix>),
}

impl Matrix {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Self::Candle(m) => Ok(m.forward(xs)?),
            Self::Cpu(m) => m.forward(xs),
        }
    }

    /// `xs · Wᵀ` as a row-major vector for each matrix `W` of `ms`. When cairn's kernels
    /// hold them all, `xs` is quantized once and the products share the thread pool in one
    /// go (q, k and v; gate and up).
    fn host_all<const N: usize>(ms: [&Matrix; N], xs: &Tensor) -> Result<[Vec<f32>; N]> {
        let cpu: Vec<&CpuMatrix> = ms
            .iter()
            .filter_map(|m| match m {
                Self::Cpu(m) => Some(&**m),
                Self::Candle(_) => None,
            })
            .collect();
        if let Ok(cpu) = <[&CpuMatrix; N]>::try_from(cpu) {
            return CpuMatrix::apply_all(cpu, &Activations::from_tensor(xs)?);
        }
        let mut out = [const { Vec::new() }; N];
        for (o, m) in out.iter_mut().zip(ms) {
            *o = m.forward(xs)?.flatten_all()?.to_vec1()?;
        }
        Ok(out)
    }

    /// `xs · Wᵀ` for `xs` given as `rows` rows of a row-major vector.
    fn forward_host(&self, xs: Vec<f32>, rows: usize, device: &Device) -> Result<Tensor> {
        let cols = xs.len() / rows.max(1);
        match self {
            Self::Cpu(m) => {
                let ys = m.apply(&Activations::new(&xs, rows, cols)?)?;
                let width = ys.len() / rows.max(1);
                Ok(Tensor::from_vec(ys, (rows, width), device)?)
            }
            Self::Candle(m) => Ok(m.forward(&Tensor::from_vec(xs, (rows, cols), device)?)?),
        }
    }
}

/// A (quantized) linear map with an optional bias.
#[derive(Debug, Clone)]
struct Linear {
    weight: Matrix,
    bias: Option<Tensor>,
}

impl Linear {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let ys = self.weight.forward(xs)?;
        Ok(match &self.bias {
            Some(bias) => ys.broadcast_add(bias)?,
            None => ys,
        })
    }

    /// As [`Matrix::host_all`], plus the biases.
    fn host_all<const N: usize>(ls: [&Linear; N], xs: &Tensor) -> Result<[Vec<f32>; N]> {
        let mut ys = Matrix::host_all(ls.map(|l| &l.weight), xs)?;
        for (ys, l) in ys.iter_mut().zip(ls) {
            if let Some(bias) = &l.bias {
                let bias = bias.to_vec1::<f32>()?;
                for row in ys.chunks_exact_mut(bias.len()) {
                    row.iter_mut().zip(&bias).for_each(|(y, b)| *y += b);
                }
            }
        }
        Ok(ys)
    }
}

/// The SwiGLU feed-forward block.
#[derive(Debug, Clone)]
struct Mlp {
    gate: Matrix,
    up: Matrix,
    down: Matrix,
}

impl Mlp {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        if let (Matrix::Cpu(_), Matrix::Cpu(_)) = (&self.gate, &self.up) {
            // One quantization of the input for both matrices, the gating in one loop.
            let [mut hidden, up] = Matrix::host_all([&self.gate, &self.up], xs)?;
            // On the pool: with many rows, one `exp` per value is worth sharing out.
            host::for_parts(&mut hidden, 1024, |gate, start| {
                for (g, u) in gate.iter_mut().zip(&up[start..]) {
                    *g = *g / (1.0 + (-*g).exp()) * u;
                }
            });
            return self.down.forward_host(hidden, xs.dim(0)?, xs.device());
        }
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

/// What attention needs to know about the sequences of a batch for one forward pass.
enum Plans {
    /// On the CPU: the sequences' rows and the rotation tables of every row.
    Host { spans: Vec<Span>, rope: RopeTables },
    /// On a GPU: tensors for each sequence.
    Device(Vec<SeqPlan>),
}

/// What tensor attention needs to know about one sequence of a batch.
struct SeqPlan {
    /// The sequence's first row in the packed batch.
    offset: usize,
    len: usize,
    cos: Tensor,
    sin: Tensor,
    /// Additive causal mask `[len, kv_len]` (0 or -inf); `None` for a single token.
    mask: Option<Tensor>,
}

/// Multi-head attention with grouped key/value heads.
#[derive(Debug, Clone)]
struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Matrix,
    num_heads: usize,
    num_kv_heads: usize,
    head_dim: usize,
    rope_style: RopeStyle,
}

impl Attention {
    /// `xs` is `[tokens, hidden]`, the packed rows of the batch; returns the same shape.
    /// With `caches` (one per sequence), each sequence's new keys and values are appended to
    /// its cache of layer `layer`, and its queries also read the cached positions.
    fn forward(
        &self,
        xs: &Tensor,
        plans: &Plans,
        layer: usize,
        caches: &mut [&mut KvCache],
    ) -> Result<Tensor> {
        match plans {
            Plans::Host { spans, rope } => {
                let ys = self.host(xs, spans, rope, layer, caches)?;
                self.o.forward_host(ys, xs.dim(0)?, xs.device())
            }
            Plans::Device(plans) => self.o.forward(&self.tensors(xs, plans, layer, caches)?),
        }
    }

    /// Attention in loops over host memory (see [`host`]); returns `[tokens][heads * dim]`.
    fn host(
        &self,
        xs: &Tensor,
        spans: &[Span],
        rope: &RopeTables,
        layer: usize,
        caches: &mut [&mut KvCache],
    ) -> Result<Vec<f32>> {
        let rows = xs.dim(0)?;
        let [mut q, mut k, v] = Linear::host_all([&self.q, &self.k, &self.v], xs)?;
        rope.rotate(&mut q, self.num_heads, self.rope_style);
        rope.rotate(&mut k, self.num_kv_heads, self.rope_style);
        let shape = Heads {
            heads: self.num_heads,
            kv_heads: self.num_kv_heads,
            dim: self.head_dim,
        };
        let kv_width = shape.kv_heads * shape.dim;
        let rows_of = |s: &Span| s.offset * kv_width..(s.offset + s.len) * kv_width;
        let own: Vec<HostKv>;
        let views: Vec<&HostKv> = if caches.is_empty() {
            own = spans
                .iter()
                .map(|s| {
                    let mut kv = HostKv::default();
                    kv.append(&k[rows_of(s)], &v[rows_of(s)], s.len, shape);
                    kv
                })
                .collect();
            own.iter().collect()
        } else {
            for (cache, s) in caches.iter_mut().zip(spans) {
                match &mut cache.layers[layer] {
                    LayerKv::Host(kv) => kv.append(&k[rows_of(s)], &v[rows_of(s)], s.len, shape),
                    LayerKv::Device(_) => return Err(wrong_cache()),
                }
            }
            caches
                .iter()
                .map(|c| match &c.layers[layer] {
                    LayerKv::Host(kv) => Ok(kv),
                    LayerKv::Device(_) => Err(wrong_cache()),
                })
                .collect::<Result<_>>()?
        };
        let mut out = vec![0f32; rows * shape.heads * shape.dim];
        host::attend(&q, spans, &views, shape, &mut out);
        Ok(out)
    }

    /// Attention in tensor operations, sequence by sequence; returns `[tokens, heads * dim]`.
    fn tensors(
        &self,
        xs: &Tensor,
        plans: &[SeqPlan],
        layer: usize,
        caches: &mut [&mut KvCache],
    ) -> Result<Tensor> {
        let q = self.q.forward(xs)?;
        let k = self.k.forward(xs)?;
        let v = self.v.forward(xs)?;
        let mut rows = Vec::with_capacity(plans.len());
        for (i, plan) in plans.iter().enumerate() {
            // [len, heads * dim] -> [1, heads, len, dim]
            let heads = |x: &Tensor, n: usize| -> Result<Tensor> {
                Ok(x.narrow(0, plan.offset, plan.len)?
                    .reshape((plan.len, n, self.head_dim))?
                    .transpose(0, 1)?
                    .contiguous()?
                    .unsqueeze(0)?)
            };
            let qi = rotate(
                &heads(&q, self.num_heads)?,
                &plan.cos,
                &plan.sin,
                self.rope_style,
            )?;
            let ki = rotate(
                &heads(&k, self.num_kv_heads)?,
                &plan.cos,
                &plan.sin,
                self.rope_style,
            )?
            .squeeze(0)?;
            let vi = heads(&v, self.num_kv_heads)?.squeeze(0)?;
            let (ki, vi) = match caches.get_mut(i).map(|c| &mut c.layers[layer]) {
                Some(LayerKv::Device(cache)) => cache.append(&ki, &vi)?,
                Some(LayerKv::Host(_)) => return Err(wrong_cache()),
                None => (ki, vi),
            };
            rows.push(attend(&qi.squeeze(0)?, &ki, &vi, plan.mask.as_ref())?);
        }
        Ok(if rows.len() == 1 {
            rows.pop().expect("one row")
        } else {
            Tensor::cat(&rows, 0)?
        })
    }
}

/// A cache made for a model on another kind of device.
fn wrong_cache() -> LlmError {
    LlmError::BadInput("a key/value cache made by a model on another device".into())
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
    let ys = probs.matmul(v)?;
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
    fn forward(
        &self,
        xs: &Tensor,
        plans: &Plans,
        layer: usize,
        caches: &mut [&mut KvCache],
    ) -> Result<Tensor> {
        let h = self
            .attn
            .forward(&self.attn_norm.forward(xs)?, plans, layer, caches)?;
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
    head: Matrix,
    rope: Rope,
    device: Device,
    /// Attention in loops over host memory (on the CPU) rather than in tensor operations.
    host_attention: bool,
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
            ld.matrix(embed_q)?
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
            host_attention: ld.device.is_cpu(),
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

    /// An empty key/value cache for one sequence.
    pub fn new_cache(&self) -> KvCache {
        KvCache {
            layers: (0..self.config.num_layers)
                .map(|_| {
                    if self.host_attention {
                        LayerKv::Host(HostKv::default())
                    } else {
                        LayerKv::Device(candle_nn::kv_cache::KvCache::new(1, 256))
                    }
                })
                .collect(),
            len: 0,
        }
    }

    /// Next-token logits at each sequence's last token: `[batch, vocab]`, f32.
    pub fn forward_last(&self, batch: &Batch) -> Result<Tensor> {
        let hidden = self.hidden(batch, &mut [])?;
        self.last_logits(&hidden, batch)
    }

    /// Runs `steps[i].0`, the next tokens of sequence `i`, after the positions its cache
    /// `steps[i].1` holds, appends their keys and values to it, and returns the logits at
    /// each sequence's last new token: `[steps, vocab]`, f32. A sequence's prompt can go in
    /// one step or in several chunks; either way the logits are those of the whole sequence.
    pub fn forward_cached(&self, steps: &mut [(&[u32], &mut KvCache)]) -> Result<Tensor> {
        let tokens: Vec<&[u32]> = steps.iter().map(|(t, _)| *t).collect();
        let positions: Vec<usize> = steps.iter().map(|(_, c)| c.len).collect();
        let batch = Batch::with_positions(&tokens, &positions)?;
        let mut caches: Vec<&mut KvCache> = steps.iter_mut().map(|(_, c)| &mut **c).collect();
        let hidden = self.hidden(&batch, &mut caches)?;
        for (cache, &len) in caches.iter_mut().zip(batch.lengths()) {
            cache.len += len;
        }
        self.last_logits(&hidden, &batch)
    }

    /// Logits at every position: `[batch, width, vocab]`, f32, each sequence right-padded
    /// with zeros to the longest one's length.
    pub fn forward_all(&self, batch: &Batch) -> Result<Tensor> {
        let hidden = self.hidden(batch, &mut [])?;
        let logits = self.head.forward(&self.norm.forward(&hidden)?)?;
        let width = batch.width();
        let mut rows = Vec::with_capacity(batch.len());
        let mut offset = 0;
        for &len in batch.lengths() {
            let row = logits.narrow(0, offset, len)?;
            offset += len;
            rows.push(if len < width {
                row.pad_with_zeros(0, 0, width - len)?
            } else {
                row
            });
        }
        Ok(Tensor::stack(&rows, 0)?)
    }

    fn last_logits(&self, hidden: &Tensor, batch: &Batch) -> Result<Tensor> {
        let last = batch.last_rows();
        let rows = if last.len() == hidden.dim(0)? {
            hidden.clone()
        } else {
            let last = Tensor::from_vec(last, batch.len(), &self.device)?;
            hidden.index_select(&last, 0)?
        };
        self.head.forward(&self.norm.forward(&rows)?)
    }

    /// The residual stream after the last block, `[tokens, hidden]`: every token of the
    /// packed batch is one row, so each projection is one matrix product. `caches` is empty
    /// or holds one cache per sequence, whose length must equal the sequence's position.
    fn hidden(&self, batch: &Batch, caches: &mut [&mut KvCache]) -> Result<Tensor> {
        if let Some(&bad) = batch
            .tokens()
            .iter()
            .find(|&&t| t as usize >= self.config.vocab_size)
        {
            return Err(LlmError::BadInput(format!(
                "token id {bad} is outside the vocabulary of {} tokens",
                self.config.vocab_size
            )));
        }
        let mut spans = Vec::with_capacity(batch.len());
        let mut offset = 0;
        for (&len, &start) in batch.lengths().iter().zip(batch.positions()) {
            if start + len > self.config.context_length {
                return Err(LlmError::BadInput(format!(
                    "a sequence reaching position {} exceeds the model's context of {} tokens",
                    start + len,
                    self.config.context_length
                )));
            }
            spans.push(Span { offset, len, start });
            offset += len;
        }
        let plans = if self.host_attention {
            let rope = RopeTables::new(&self.rope.inv_freq, &spans);
            Plans::Host { spans, rope }
        } else {
            let mut plans = Vec::with_capacity(spans.len());
            for &Span { offset, len, start } in &spans {
                let kv_len = if caches.is_empty() { len } else { start + len };
                let (cos, sin) = self.rope.tables(start, len, &self.device)?;
                let mask = (len > 1)
                    .then(|| causal_mask(len, kv_len, &self.device))
                    .transpose()?;
                plans.push(SeqPlan {
                    offset,
                    len,
                    cos,
                    sin,
                    mask,
                });
            }
            Plans::Device(plans)
        };
        let ids = Tensor::new(batch.tokens(), &self.device)?;
        let mut xs = self.embed.forward(&ids)?.to_dtype(DType::F32)?;
        for (layer, block) in self.blocks.iter().enumerate() {
            xs = block.forward(&xs, &plans, layer, caches)?;
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
    fn qmatmul(&mut self, name: &str, dims: &[usize]) -> Result<Matrix> {
        let found = self.gguf.tensor_dims(name)?;
        if !dims.is_empty() && found != dims {
            return Err(self.gguf.error(format!(
                "tensor {name} has shape {found:?}, the metadata implies {dims:?}"
            )));
        }
        let weights = self.qtensor(name)?;
        self.matrix(weights)
    }

    /// `weights` held as [`Loader::format`] says.
    fn matrix(&self, weights: QTensor) -> Result<Matrix> {
        let stored = weights.dtype();
        let requantize = |dtype| -> Result<QTensor> {
            Ok(QTensor::quantize(&weights.dequantize(self.device)?, dtype)?)
        };
        let target = self.format.target(stored, self.device);
        if self.format == WeightFormat::Fast
            && self.device.is_cpu()
            && let Some(dtype) = target.filter(|&t| CpuMatrix::supports(t))
        {
            let q = if dtype == stored {
                weights
            } else {
                requantize(dtype)?
            };
            return Ok(Matrix::Cpu(Arc::new(CpuMatrix::from_qtensor(&q)?)));
        }
        Ok(Matrix::Candle(match target {
            Some(dtype) if dtype == stored => QMatMul::from_qtensor(weights)?,
            Some(dtype) => QMatMul::from_qtensor(requantize(dtype)?)?,
            None => QMatMul::Tensor(weights.dequantize(self.device)?),
        }))
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
    use candle_core::IndexOp;

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
        let batch = Batch::new(&[vec![5, 6, 7], vec![8]]).expect("batch");
        assert_eq!(batch.tokens(), &[5, 6, 7, 8]);
        assert_eq!(batch.lengths(), &[3, 1]);
        assert_eq!(batch.positions(), &[0, 0]);
        assert_eq!(batch.width(), 3);
        assert_eq!(batch.last_rows(), vec![2, 3]);

        let empty: &[Vec<u32>] = &[];
        assert!(matches!(Batch::new(empty), Err(LlmError::BadInput(_))));
        assert!(matches!(
            Batch::new(&[vec![1], vec![]]),
            Err(LlmError::BadInput(_))
        ));
        assert!(matches!(
            Batch::with_positions(&[vec![1]], &[0, 1]),
            Err(LlmError::BadInput(_))
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

    /// The packaged small model, when installed (the integration tests insist on it).
    fn packaged_model() -> std::path::PathBuf {
        let root = std::env::var_os("CAIRN_MODELS_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../models").into());
        let dir = root.join("smollm2-135m");
        assert!(
            dir.is_dir(),
            "model {} is not installed: run scripts/install-models (or set CAIRN_MODELS_DIR)",
            dir.display()
        );
        dir
    }

    /// The CPU's attention loops and the tensor attention used on GPUs give the same logits,
    /// for a batch of sequences of different lengths, with and without caches.
    #[test]
    fn host_attention_matches_tensor_attention() {
        let gguf = GgufFile::open(&packaged_model()).expect("open");
        let host = DecoderModel::load(&gguf, &Device::Cpu, WeightFormat::F32).expect("load");
        assert!(host.host_attention);
        let mut tensors = host.clone();
        tensors.host_attention = false;
        let diff = |a: &Tensor, b: &Tensor| {
            let scale = b
                .abs()
                .and_then(|t| t.max_all())
                .and_then(|t| t.to_scalar::<f32>());
            let diff = (a - b)
                .and_then(|d| d.abs())
                .and_then(|d| d.max_all())
                .and_then(|d| d.to_scalar::<f32>());
            diff.expect("diff") / scale.expect("scale")
        };
        let a: Vec<u32> = (0..40).map(|i| 100 + 37 * i).collect();
        let b: Vec<u32> = (0..9).map(|i| 2000 + 11 * i).collect();
        let batch = Batch::with_positions(&[&a[..], &b[..]], &[0, 3]).expect("batch");
        let (x, y) = (
            host.forward_last(&batch).expect("host"),
            tensors.forward_last(&batch).expect("tensors"),
        );
        assert!(
            diff(&x, &y) < 1e-5,
            "uncached: relative difference {}",
            diff(&x, &y)
        );

        let (mut ha, mut hb) = (host.new_cache(), host.new_cache());
        let (mut ta, mut tb) = (tensors.new_cache(), tensors.new_cache());
        assert!(matches!(ta.layers[0], LayerKv::Device(_)));
        for (from, to) in [(0, 5), (5, 6), (6, 7)] {
            let x = host
                .forward_cached(&mut [(&a[from..to], &mut ha), (&b[from..to], &mut hb)])
                .expect("host");
            let y = tensors
                .forward_cached(&mut [(&a[from..to], &mut ta), (&b[from..to], &mut tb)])
                .expect("tensors");
            assert!(diff(&x, &y) < 1e-5, "cached to {to}: {}", diff(&x, &y));
        }
        // A cache of the other kind is refused, not misread.
        assert!(matches!(
            host.forward_cached(&mut [(&a[7..8], &mut ta)]),
            Err(LlmError::BadInput(_))
        ));
    }

    /// The CPU kernels of the packaged model's Q4_1 and Q8_0 matrices give the logits of
    /// the dequantized weights, up to the rounding of 8-bit activations, the same whether a
    /// sequence runs alone or in a batch.
    #[test]
    fn the_cpu_kernels_give_the_logits_of_the_dequantized_weights() {
        let gguf = GgufFile::open(&packaged_model()).expect("open");
        let fast = DecoderModel::load(&gguf, &Device::Cpu, WeightFormat::Fast).expect("fast");
        let dense = DecoderModel::load(&gguf, &Device::Cpu, WeightFormat::F32).expect("f32");
        assert!(matches!(fast.head, Matrix::Cpu(_)));
        assert!(matches!(fast.blocks[0].mlp.up, Matrix::Cpu(_)));
        let a: Vec<u32> = (0..30).map(|i| 300 + 53 * i).collect();
        let b: Vec<u32> = (0..7).map(|i| 900 + 31 * i).collect();
        let c: Vec<u32> = (0..12).map(|i| 4000 + 7 * i).collect();
        let seqs = [&a[..], &b[..], &c[..], &a[..5], &b[..3]];
        let batch = Batch::new(&seqs).expect("batch");
        let (x, y) = (
            fast.forward_last(&batch).expect("fast"),
            dense.forward_last(&batch).expect("dense"),
        );
        for (i, seq) in seqs.iter().enumerate() {
            let (xi, yi) = (x.get(i).expect("row"), y.get(i).expect("row"));
            let scale = yi
                .abs()
                .and_then(|t| t.max_all())
                .and_then(|t| t.to_scalar::<f32>());
            let diff = (&xi - &yi)
                .and_then(|d| d.abs())
                .and_then(|d| d.max_all())
                .and_then(|d| d.to_scalar::<f32>());
            let (diff, scale) = (diff.expect("diff"), scale.expect("scale"));
            assert!(diff < 0.1 * scale, "sequence {i}: off by {diff} of {scale}");
            // The dense weights' next token is among the kernels' five most likely.
            let best = yi
                .argmax(0)
                .and_then(|t| t.to_scalar::<u32>())
                .expect("argmax");
            let logits = xi.to_vec1::<f32>().expect("logits");
            let above = logits
                .iter()
                .filter(|&&l| l > logits[best as usize])
                .count();
            assert!(
                above < 5,
                "sequence {i}: token {best} is behind {above} others"
            );
            let alone = fast
                .forward_last(&Batch::new(&[seq]).expect("batch"))
                .and_then(|t| Ok(t.get(0)?.to_vec1::<f32>()?))
                .expect("alone");
            assert_eq!(
                alone,
                xi.to_vec1::<f32>().expect("row"),
                "sequence {i} alone"
            );
        }
    }
}
