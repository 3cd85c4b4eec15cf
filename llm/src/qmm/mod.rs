//! Quantized matrix products on the CPU for the weight types of the packaged models, Q4_1
//! and Q8_0, with kernels that read and unpack each block of weights once for up to four
//! rows of activations. Q4_0 and Q4_K matrices are held as Q4_1 without loss: a Q4_K
//! super-block of 256 weights is eight sub-blocks of 32, each `d · sc · q − dmin · m`,
//! which is a Q4_1 block once `d · sc` and `dmin · m` are multiplied out (at the cost of
//! half a bit per weight more memory).
//!
//! Decoding one token reads every weight once: one row of activations per matrix, so the
//! product is bound by memory and by the work of unpacking each 4-bit block. Decoding eight
//! streams at once gives each matrix eight rows; a kernel that takes one row at a time
//! reads and unpacks every block eight times, and eight streams cost nearly eight times one.
//! Here a block is loaded and unpacked once into a register and multiplied into the
//! accumulators of up to four rows ([`TILE`]), so the extra rows cost only their own
//! multiply-adds.
//!
//! Matrices whose rows come in eights are repacked at load time instead: the same block of
//! eight consecutive weight rows interleaved four weights at a time ([`BlockQ4_1x8`]), so
//! that one 256-bit vector holds four weights of each of the eight rows. A row of
//! activations then multiplies eight weight rows at once, each lane of the result belonging
//! to one output column: no horizontal sums, one conversion and one scaling per block for
//! eight columns. On AVX2 the 16-bit partial sums of a whole 4-bit block stay in one
//! register; on CPUs with AVX-VNNI (checked at run time) one `vpdpbusd` adds four products
//! into 32-bit sums, and Q8_0 matrices are interleaved too, stored as unsigned bytes with an
//! offset ([`BlockU8x8`]); Q5_0 matrices are interleaved so on every CPU. Per block of 32 weights and row of activations this is a third
//! to a quarter of the instructions of the one-row-at-a-time kernels, which matters most
//! when a step decodes many streams. Rows that do not come in eights keep those kernels.
//!
//! Activations are quantized to 8 bits per block of 32, like llama.cpp's Q8_1: a scale `d`
//! and `s = d · Σq`, which carries the Q4_1 offset (`w = d_w · q_w + m_w`, so a block's dot
//! product is `d_w · d_a · Σ q_w q_a + m_w · s_a`). Each row's dot products are computed in
//! the same order whatever else is in its tile, so a sequence's result does not depend on
//! its batch.
//!
//! The kernels use AVX2, FMA and F16C when the build enables them (the project's
//! `.cargo/config.toml` targets x86-64-v3), and AVX-VNNI where the CPU has it; otherwise a
//! portable loop computes the same sums. The interleaved kernels give the portable loop's
//! results bit for bit, with VNNI or without.

#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma",
    target_feature = "f16c"
))]
mod avx2;
mod portable;
#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma",
    target_feature = "f16c"
))]
mod vnni;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use half::f16;
use std::sync::OnceLock;

use super::host::{Out, run_items};
use crate::error::{LlmError, Result};

/// Values per quantization block.
const QK: usize = 32;
/// Rows of activations that share one pass over a weight row: four accumulators and the
/// unpacked block fit the sixteen vector registers of AVX2 without spilling.
const TILE: usize = 4;
/// Weight rows per unit of work handed to a thread.
const COLUMNS_PER_ITEM: usize = 16;

/// 32 weights as `d · q + m` with 4-bit `q`: element `j < 16` in the low nibble of byte `j`,
/// element `16 + j` in its high nibble (ggml's Q4_1).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct BlockQ4_1 {
    d: u16,
    m: u16,
    qs: [u8; QK / 2],
}

/// 32 weights as `d · q` with 8-bit `q` (ggml's Q8_0).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct BlockQ8_0 {
    d: u16,
    qs: [i8; QK],
}

/// Block `b` of eight consecutive Q4_1 weight rows, interleaved: byte `32 l + 4 c + j` of
/// `qs` is byte `4 l + j` of row `c`'s block (`l < 4`, `c < 8`, `j < 4`), so its low nibble
/// is row `c`'s weight `4 l + j` and its high nibble weight `16 + 4 l + j`. The rows' scales
/// and offsets, f16, in row order.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct BlockQ4_1x8 {
    d: [u16; 8],
    m: [u16; 8],
    qs: [u8; 128],
}

impl BlockQ4_1x8 {
    /// Interleaves the same block of eight rows.
    fn new(rows: [&BlockQ4_1; 8]) -> Self {
        let mut qs = [0u8; 128];
        for (i, q) in qs.chunks_exact_mut(4).enumerate() {
            let (l, c) = (i / 8, i % 8);
            q.copy_from_slice(&rows[c].qs[4 * l..4 * l + 4]);
        }
        Self {
            d: rows.map(|b| b.d),
            m: rows.map(|b| b.m),
            qs,
        }
    }
}

/// Block `b` of eight consecutive weight rows stored as unsigned bytes, `w = d · (u − BIAS)`,
/// interleaved four weights at a time: byte `32 g + 4 c + j` is row `c`'s weight `4 g + j`,
/// the form of Q4_1 with an 8-bit `u` and the offset `−BIAS · d`. Q8_0 rows become
/// [`BlockQ8_0x8`] (`u = q + 128`), which only the VNNI instruction multiplies with signed
/// activations without saturating (AVX2's 16-bit pairs would: two products of 255 · 127);
/// Q5_0 rows become [`BlockQ5_0x8`] (`u` of 0..=31, exact), whose pairs AVX2 sums in 16 bits
/// over four groups of four weights (2 · 31 · 127 · 4 < 2¹⁵).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct BlockU8x8<const BIAS: u8> {
    d: [u16; 8],
    qs: [u8; 256],
}

type BlockQ8_0x8 = BlockU8x8<128>;
type BlockQ5_0x8 = BlockU8x8<16>;

impl<const BIAS: u8> BlockU8x8<BIAS> {
    /// Interleaves the same block of eight rows, given each row's `d` and weight `k`'s `u`.
    fn from_rows(d: [u16; 8], u: impl Fn(usize, usize) -> u8) -> Self {
        let mut qs = [0u8; 256];
        for (i, q) in qs.chunks_exact_mut(4).enumerate() {
            let (g, c) = (i / 8, i % 8);
            for (j, byte) in q.iter_mut().enumerate() {
                *byte = u(c, 4 * g + j);
            }
        }
        Self { d, qs }
    }
}

impl BlockQ8_0x8 {
    fn new(rows: [&BlockQ8_0; 8]) -> Self {
        Self::from_rows(rows.map(|b| b.d), |c, k| (rows[c].qs[k] as i16 + 128) as u8)
    }
}

impl BlockQ5_0x8 {
    fn new(rows: [&BlockQ5_0; 8]) -> Self {
        Self::from_rows(rows.map(|b| b.d), |c, k| rows[c].u(k))
    }
}

/// 32 weights as `d · (u − 16)` with 5-bit `u` (ggml's Q5_0): the low four bits of element
/// `j < 16` in the low nibble of byte `j` of `qs`, of element `16 + j` in its high nibble,
/// and bit 4 of element `k` in bit `k` of `qh`.
#[derive(Debug, Clone, Copy)]
struct BlockQ5_0 {
    d: u16,
    qh: u32,
    qs: [u8; QK / 2],
}

impl BlockQ5_0 {
    fn from_bytes(b: &[u8]) -> Self {
        Self {
            d: u16::from_le_bytes([b[0], b[1]]),
            qh: u32::from_le_bytes([b[2], b[3], b[4], b[5]]),
            qs: b[6..22].try_into().expect("16 bytes"),
        }
    }

    /// Element `k`'s `u`, 0..=31.
    fn u(&self, k: usize) -> u8 {
        let nibble = if k < 16 {
            self.qs[k] & 0x0F
        } else {
            self.qs[k - 16] >> 4
        };
        nibble | ((((self.qh >> k) & 1) as u8) << 4)
    }

    /// The same weights as Q8_0, exactly: the same `d`, `q = u − 16`.
    fn as_q8_0(&self) -> BlockQ8_0 {
        BlockQ8_0 {
            d: self.d,
            qs: std::array::from_fn(|k| self.u(k) as i8 - 16),
        }
    }
}

/// A block of eight interleaved weight rows, each weight `d · u + m` with an unsigned `u`.
trait Interleaved {
    /// Row `c`'s weight `k`, `u`.
    fn u(&self, c: usize, k: usize) -> u8;
    /// Row `c`'s `d` and `m`.
    fn dm(&self, c: usize) -> (f32, f32);
}

impl Interleaved for BlockQ4_1x8 {
    fn u(&self, c: usize, k: usize) -> u8 {
        let (l, j) = ((k % 16) / 4, k % 4);
        let byte = self.qs[32 * l + 4 * c + j];
        if k >= 16 { byte >> 4 } else { byte & 0x0F }
    }

    fn dm(&self, c: usize) -> (f32, f32) {
        (
            f16::from_bits(self.d[c]).to_f32(),
            f16::from_bits(self.m[c]).to_f32(),
        )
    }
}

impl<const BIAS: u8> Interleaved for BlockU8x8<BIAS> {
    fn u(&self, c: usize, k: usize) -> u8 {
        self.qs[32 * (k / 4) + 4 * c + k % 4]
    }

    fn dm(&self, c: usize) -> (f32, f32) {
        let d = f16::from_bits(self.d[c]).to_f32();
        (d, -f32::from(BIAS) * d)
    }
}

/// Bytes of one Q4_K super-block of 256 weights: `d`, `dmin` (f16), twelve bytes of 6-bit
/// scales and minimums, 128 bytes of 4-bit weights.
const Q4K_BYTES: usize = 144;

/// A Q4_0 block (`d · (q − 8)`, f16 `d`, the same nibble order) as Q4_1: `m = −8 d`, exact.
fn q4_0_as_q4_1(b: &[u8]) -> BlockQ4_1 {
    let d = u16::from_le_bytes([b[0], b[1]]);
    BlockQ4_1 {
        d,
        m: f16::from_f32(-8.0 * f16::from_bits(d).to_f32()).to_bits(),
        qs: b[2..18].try_into().expect("16 bytes"),
    }
}

/// A Q4_K super-block (ggml's `block_q4_K`) as its eight Q4_1 blocks. Sub-block `i`'s
/// weights are `d · sc_i · q − dmin · m_i` with 4-bit `q` and 6-bit `sc_i`, `m_i`: a Q4_1
/// block with scale `d · sc_i` and offset `−dmin · m_i`, exact but for rounding those two
/// products to f16 (a relative 2⁻¹¹, far below the 4-bit step). Sub-blocks `2j` and `2j+1`
/// are the low and high nibbles of bytes `32j..32j+32`; Q4_1 keeps weights `l` and `16 + l`
/// in one byte.
fn q4k_as_q4_1(b: &[u8]) -> [BlockQ4_1; 8] {
    let f = |i: usize| f16::from_bits(u16::from_le_bytes([b[i], b[i + 1]])).to_f32();
    let (d, dmin) = (f(0), f(2));
    let scales = &b[4..16];
    let qs = &b[16..Q4K_BYTES];
    std::array::from_fn(|i| {
        // ggml's get_scale_min_k4.
        let (sc, m) = if i < 4 {
            (scales[i] & 63, scales[i + 4] & 63)
        } else {
            (
                (scales[i + 4] & 0x0F) | ((scales[i - 4] >> 6) << 4),
                (scales[i + 4] >> 4) | ((scales[i] >> 6) << 4),
            )
        };
        let bytes = &qs[32 * (i / 2)..32 * (i / 2) + 32];
        let nibble = |l: usize| {
            if i % 2 == 0 {
                bytes[l] & 0x0F
            } else {
                bytes[l] >> 4
            }
        };
        BlockQ4_1 {
            d: f16::from_f32(d * f32::from(sc)).to_bits(),
            m: f16::from_f32(-dmin * f32::from(m)).to_bits(),
            qs: std::array::from_fn(|l| nibble(l) | (nibble(16 + l) << 4)),
        }
    })
}

/// Output columns of one interleaved group.
const GROUP: usize = 8;

const _: () = assert!(std::mem::size_of::<BlockQ4_1>() == 20);
const _: () = assert!(std::mem::size_of::<BlockQ4_1x8>() == 8 * 20);
const _: () = assert!(std::mem::size_of::<BlockQ8_0x8>() == 8 * 34);
const _: () = assert!(COLUMNS_PER_ITEM.is_multiple_of(GROUP));
const _: () = assert!(std::mem::size_of::<BlockQ8_0>() == 34);

/// 32 activations as `d · q`, with `s = d · Σ q`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct BlockQ8 {
    d: f32,
    s: f32,
    qs: [i8; QK],
}

/// Up to four rows of quantized activations, with each block's scale and sum laid out
/// across the rows (`[block][row]`) so that a kernel loads them for all rows at once.
struct Tile<'a> {
    rows: usize,
    /// Each row's blocks; rows past `rows` repeat the last one and are ignored.
    qs: [&'a [BlockQ8]; TILE],
    scale: Vec<[f32; TILE]>,
    sum: Vec<[f32; TILE]>,
}

impl<'a> Tile<'a> {
    /// Rows `r0..r0 + rows` of `acts`, `kb` blocks each.
    fn new(acts: &'a [BlockQ8], kb: usize, r0: usize, rows: usize) -> Self {
        let qs: [&[BlockQ8]; TILE] = std::array::from_fn(|r| {
            let r = r0 + r.min(rows - 1);
            &acts[r * kb..(r + 1) * kb]
        });
        let across = |f: fn(&BlockQ8) -> f32| -> Vec<[f32; TILE]> {
            (0..kb)
                .map(|b| std::array::from_fn(|r| if r < rows { f(&qs[r][b]) } else { 0.0 }))
                .collect()
        };
        Self {
            rows,
            scale: across(|a| a.d),
            sum: across(|a| a.s),
            qs,
        }
    }
}

/// The weight blocks of a matrix, row after row.
#[derive(Debug)]
enum Blocks {
    Q4_1(Vec<BlockQ4_1>),
    /// Q4_1 with rows in groups of eight: group `g`'s block `b` at `g * kb + b`.
    Q4_1x8(Vec<BlockQ4_1x8>),
    Q8_0(Vec<BlockQ8_0>),
    /// Q8_0 with rows in groups of eight, on CPUs with VNNI.
    Q8_0x8(Vec<BlockQ8_0x8>),
    /// Q5_0 with rows in groups of eight.
    Q5_0x8(Vec<BlockQ5_0x8>),
}

/// A weight matrix `[out, in]` held for the kernels of this module.
#[derive(Debug)]
pub(crate) struct CpuMatrix {
    blocks: Blocks,
    rows: usize,
    cols: usize,
}

impl CpuMatrix {
    /// Whether matrices of `dtype` have kernels here: Q4_1, Q8_0 and Q5_0 (interleaved
    /// where rows come in eights, otherwise as Q8_0, exactly), and the types that convert
    /// to Q4_1 without loss (Q4_0, and Q4_K, whose sub-blocks of 32 are Q4_1 blocks with
    /// 6-bit scales and minimums).
    pub fn supports(dtype: GgmlDType) -> bool {
        matches!(
            dtype,
            GgmlDType::Q4_1 | GgmlDType::Q8_0 | GgmlDType::Q4_0 | GgmlDType::Q4K | GgmlDType::Q5_0
        )
    }

    /// Takes the blocks of a `[out, in]` quantized matrix of a supported type.
    pub fn from_qtensor(weights: &QTensor) -> Result<Self> {
        let (rows, cols) = weights.shape().dims2()?;
        if !cols.is_multiple_of(QK) {
            return Err(LlmError::BadInput(format!(
                "a quantized matrix of {cols} columns, not a multiple of {QK}"
            )));
        }
        let data = weights.data()?;
        let u16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let blocks = match weights.dtype() {
            GgmlDType::Q4_1 => Blocks::Q4_1(
                data.chunks_exact(20)
                    .map(|b| BlockQ4_1 {
                        d: u16_at(b, 0),
                        m: u16_at(b, 2),
                        qs: b[4..20].try_into().expect("16 bytes"),
                    })
                    .collect(),
            ),
            GgmlDType::Q4_0 => Blocks::Q4_1(data.chunks_exact(18).map(q4_0_as_q4_1).collect()),
            GgmlDType::Q4K => {
                Blocks::Q4_1(data.chunks_exact(Q4K_BYTES).flat_map(q4k_as_q4_1).collect())
            }
            GgmlDType::Q5_0 => {
                let b: Vec<BlockQ5_0> = data.chunks_exact(22).map(BlockQ5_0::from_bytes).collect();
                if b.len() == rows * cols / QK && rows.is_multiple_of(GROUP) {
                    Blocks::Q5_0x8(interleave(&b, cols / QK, BlockQ5_0x8::new))
                } else {
                    Blocks::Q8_0(b.iter().map(BlockQ5_0::as_q8_0).collect())
                }
            }
            GgmlDType::Q8_0 => Blocks::Q8_0(
                data.chunks_exact(34)
                    .map(|b| BlockQ8_0 {
                        d: u16_at(b, 0),
                        qs: std::array::from_fn(|i| b[2 + i] as i8),
                    })
                    .collect(),
            ),
            other => {
                return Err(LlmError::BadInput(format!(
                    "no CPU kernel for {other:?} weights"
                )));
            }
        };
        let count = match &blocks {
            Blocks::Q4_1(b) => b.len(),
            Blocks::Q8_0(b) => b.len(),
            Blocks::Q5_0x8(b) => b.len() * GROUP,
            Blocks::Q4_1x8(_) | Blocks::Q8_0x8(_) => unreachable!("interleaved below"),
        };
        if count != rows * cols / QK {
            return Err(LlmError::BadInput(format!(
                "a {rows}×{cols} matrix with {count} blocks"
            )));
        }
        let blocks = match blocks {
            Blocks::Q4_1(b) if rows.is_multiple_of(GROUP) => {
                Blocks::Q4_1x8(interleave(&b, cols / QK, BlockQ4_1x8::new))
            }
            Blocks::Q8_0(b)
                if rows.is_multiple_of(GROUP) && Kernels::get().dot_q8_0x8.is_some() =>
            {
                Blocks::Q8_0x8(interleave(&b, cols / QK, BlockQ8_0x8::new))
            }
            other => other,
        };
        Ok(Self { blocks, rows, cols })
    }

    /// `xs · selfᵀ`: `xs` is `[m, in]` f32 on the CPU, the result `[m, out]`.
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let acts = Activations::from_tensor(xs)?;
        let out = self.apply(&acts)?;
        Ok(Tensor::from_vec(out, (acts.rows, self.rows), &Device::Cpu)?)
    }

    /// The `[m, out]` product of quantized activations, row-major; activations quantized
    /// once serve every matrix that reads the same input.
    pub fn apply(&self, acts: &Activations) -> Result<Vec<f32>> {
        let [out] = Self::apply_all([self], acts)?;
        Ok(out)
    }

    /// The products of the same activations with each of `mats`, their work shared out in
    /// one go (one wait for the thread pool instead of one per matrix, and small matrices
    /// share it evenly with large ones); the same values as [`CpuMatrix::apply`] on each.
    pub fn apply_all<const N: usize>(
        mats: [&CpuMatrix; N],
        acts: &Activations,
    ) -> Result<[Vec<f32>; N]> {
        if let Some(w) = mats.iter().find(|w| w.cols != acts.cols) {
            return Err(LlmError::BadInput(format!(
                "a product of {}×{} activations with a {}×{} matrix",
                acts.rows, acts.cols, w.rows, w.cols
            )));
        }
        let mut outs = mats.map(|w| vec![0f32; acts.rows * w.rows]);
        multiply(&mats, &acts.blocks, acts.rows, &mut outs);
        Ok(outs)
    }
}

/// Writes the `[m, out]` product of `m` quantized rows with each of `mats` (as wide as the
/// rows) into `outs`.
fn multiply(mats: &[&CpuMatrix], acts: &[BlockQ8], m: usize, outs: &mut [Vec<f32>]) {
    let Some(first) = mats.first() else {
        return;
    };
    let kb = first.cols / QK;
    let kernels = Kernels::get();
    let dsts: Vec<Out> = outs.iter_mut().map(|o| Out(o.as_mut_ptr())).collect();
    let tiles: Vec<Tile> = (0..m)
        .step_by(TILE)
        .map(|r0| Tile::new(acts, kb, r0, TILE.min(m - r0)))
        .collect();
    // Matrix `j`'s items are `starts[j]..starts[j + 1]`.
    let mut starts = vec![0];
    for w in mats {
        starts.push(starts.last().unwrap_or(&0) + w.rows.div_ceil(COLUMNS_PER_ITEM));
    }
    let item = |item: usize| {
        let j = starts.partition_point(|&s| s <= item) - 1;
        let (w, dst, n) = (mats[j], dsts[j], mats[j].rows);
        let item = item - starts[j];
        // Each item's weight rows stay in cache while every tile of rows goes past them,
        // so the matrix is read from memory once per product.
        let columns = item * COLUMNS_PER_ITEM..n.min((item + 1) * COLUMNS_PER_ITEM);
        for (t, tile) in tiles.iter().enumerate() {
            let r0 = t * TILE;
            let store = |col: usize, sums: &[f32; TILE]| {
                for (r, sum) in sums.iter().take(tile.rows).enumerate() {
                    // SAFETY: see `Out`: (row, col) belongs to this item alone.
                    unsafe { *{ dst }.0.add((r0 + r) * n + col) = *sum };
                }
            };
            // One weight row (column of the output) at a time, or eight interleaved.
            let by_column = |dot: &dyn Fn(usize) -> [f32; TILE]| {
                columns.clone().for_each(|col| store(col, &dot(col)));
            };
            let by_group = |dot: &dyn Fn(usize) -> [[f32; TILE]; GROUP]| {
                for c0 in columns.clone().step_by(GROUP) {
                    let sums = dot(c0 / GROUP);
                    sums.iter().enumerate().for_each(|(c, s)| store(c0 + c, s));
                }
            };
            let blocks = |i: usize| i * kb..(i + 1) * kb; // of a weight row, or of a group
            // SAFETY (each call): `Kernels::get` holds only kernels whose instructions this
            // CPU has, and a matrix is interleaved only where a kernel for it was chosen.
            match &w.blocks {
                Blocks::Q4_1(w) => {
                    by_column(&|col| unsafe { (kernels.dot_q4_1)(&w[blocks(col)], tile) })
                }
                Blocks::Q8_0(w) => {
                    by_column(&|col| unsafe { (kernels.dot_q8_0)(&w[blocks(col)], tile) })
                }
                Blocks::Q4_1x8(w) => {
                    by_group(&|g| unsafe { (kernels.dot_q4_1x8)(&w[blocks(g)], tile) })
                }
                Blocks::Q8_0x8(w) => {
                    let dot = kernels.dot_q8_0x8.expect("interleaved only with a kernel");
                    by_group(&|g| unsafe { dot(&w[blocks(g)], tile) })
                }
                Blocks::Q5_0x8(w) => {
                    by_group(&|g| unsafe { (kernels.dot_q5_0x8)(&w[blocks(g)], tile) })
                }
            }
        }
    };
    let columns: usize = mats.iter().map(|w| w.rows).sum();
    run_items(*starts.last().unwrap_or(&0), m * columns * kb >= 4096, item);
}

/// The blocks of a matrix whose rows come in eights (`kb` blocks per row), as interleaved
/// groups.
fn interleave<B, X>(blocks: &[B], kb: usize, new: fn([&B; GROUP]) -> X) -> Vec<X> {
    blocks
        .chunks_exact(GROUP * kb)
        .flat_map(|group| (0..kb).map(move |b| new(std::array::from_fn(|c| &group[c * kb + b]))))
        .collect()
}

/// Rows of activations quantized to 8 bits per block of 32.
#[derive(Debug)]
pub(crate) struct Activations {
    blocks: Vec<BlockQ8>,
    rows: usize,
    cols: usize,
}

impl Activations {
    /// Quantizes `xs`, `[rows, cols]` f32 on the CPU, `cols` a multiple of 32.
    pub fn from_tensor(xs: &Tensor) -> Result<Self> {
        let (rows, cols) = xs.dims2()?;
        Self::new(&xs.flatten_all()?.to_vec1::<f32>()?, rows, cols)
    }

    /// Quantizes `xs`, `[rows, cols]` row-major.
    pub fn new(xs: &[f32], rows: usize, cols: usize) -> Result<Self> {
        if !cols.is_multiple_of(QK) || xs.len() != rows * cols {
            return Err(LlmError::BadInput(format!(
                "{} activations as {rows} rows of {cols} (a multiple of {QK})",
                xs.len()
            )));
        }
        Ok(Self {
            blocks: quantize_rows(xs),
            rows,
            cols,
        })
    }
}

/// Quantizes `xs` (whole blocks of 32) to 8 bits per value, rounding to nearest, ties to
/// even.
fn quantize_rows(xs: &[f32]) -> Vec<BlockQ8> {
    let quantize = Kernels::get().quantize_block;
    // SAFETY: `Kernels::get` holds only kernels whose instructions this CPU has.
    xs.chunks_exact(QK)
        .map(|x| unsafe { quantize(x) })
        .collect()
}

/// A quantizer of 32 activations.
type QuantizeFn = unsafe fn(&[f32]) -> BlockQ8;
/// One weight row against up to four activation rows (the tile's `rows` are real; the rest
/// repeat the last and are ignored).
type DotFn<B> = unsafe fn(&[B], &Tile) -> [f32; TILE];
/// Eight interleaved weight rows against up to four activation rows: `[column][row]`.
type DotGroupFn<B> = unsafe fn(&[B], &Tile) -> [[f32; TILE]; GROUP];

/// The one place that decides which kernels run: one per operation, chosen once per process
/// from what the build enables (AVX2, FMA and F16C on x86-64-v3) and what the CPU reports at
/// run time (AVX-VNNI). Everything else calls through this table.
#[derive(Clone, Copy)]
struct Kernels {
    /// The instruction sets of the kernels chosen, for logs and benchmarks.
    name: &'static str,
    quantize_block: QuantizeFn,
    dot_q4_1: DotFn<BlockQ4_1>,
    dot_q8_0: DotFn<BlockQ8_0>,
    dot_q4_1x8: DotGroupFn<BlockQ4_1x8>,
    dot_q5_0x8: DotGroupFn<BlockQ5_0x8>,
    /// Interleaved Q8_0, only where a kernel gains from it (VNNI); elsewhere Q8_0 matrices
    /// keep one row at a time.
    dot_q8_0x8: Option<DotGroupFn<BlockQ8_0x8>>,
}

impl Kernels {
    /// The plain loops: the fallback, and the reference of the tests.
    const PORTABLE: Kernels = Kernels {
        name: "portable",
        quantize_block: portable::quantize_block,
        dot_q4_1: portable::dot_q4_1,
        dot_q8_0: portable::dot_q8_0,
        dot_q4_1x8: portable::dot_interleaved::<BlockQ4_1x8>,
        dot_q5_0x8: portable::dot_interleaved::<BlockQ5_0x8>,
        dot_q8_0x8: None,
    };

    /// The kernels of this build and CPU, chosen on first use: the last of
    /// [`Kernels::available`].
    fn get() -> &'static Kernels {
        static CHOSEN: OnceLock<Kernels> = OnceLock::new();
        CHOSEN.get_or_init(|| *Self::available().last().unwrap_or(&Self::PORTABLE))
    }

    /// Every set of kernels this build and CPU can run, slowest first (the tests check each
    /// against the portable loops).
    fn available() -> Vec<Kernels> {
        #[allow(unused_mut)]
        let mut sets = vec![Self::PORTABLE];
        #[cfg(all(
            target_arch = "x86_64",
            target_feature = "avx2",
            target_feature = "fma",
            target_feature = "f16c"
        ))]
        {
            let avx2 = Kernels {
                name: "avx2",
                quantize_block: avx2::quantize_block,
                dot_q4_1: avx2::dot_q4_1,
                dot_q8_0: avx2::dot_q8_0,
                dot_q4_1x8: avx2::dot_q4_1x8,
                dot_q5_0x8: avx2::dot_q5_0x8,
                dot_q8_0x8: None,
            };
            sets.push(avx2);
            if vnni::detected() {
                sets.push(Kernels {
                    name: "avx2+avxvnni",
                    dot_q4_1x8: vnni::dot_interleaved::<BlockQ4_1x8>,
                    dot_q5_0x8: vnni::dot_interleaved::<BlockQ5_0x8>,
                    dot_q8_0x8: Some(vnni::dot_interleaved::<BlockQ8_0x8>),
                    ..avx2
                });
            }
        }
        sets
    }
}

/// The instruction sets of the quantized CPU kernels this process runs ("avx2",
/// "avx2+avxvnni" or "portable").
pub(crate) fn kernels_name() -> &'static str {
    Kernels::get().name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::numbers;

    /// Products of 1 to 19 rows (tiles of four and the remainders) against matrices of both
    /// types equal the product of the dequantized weights, and each row's result is the
    /// same whatever rows it is batched with. 40 rows of Q4_1 are interleaved in eights, 20
    /// are not.
    #[test]
    fn products_match_dequantized_weights_and_do_not_depend_on_the_batch() {
        let vnni = Kernels::get().dot_q8_0x8.is_some();
        for (n, dtype) in [
            (40, GgmlDType::Q4_1),
            (20, GgmlDType::Q4_1),
            (40, GgmlDType::Q8_0),
            (40, GgmlDType::Q5_0),
            (20, GgmlDType::Q5_0),
        ] {
            let k = 96;
            let weights = Tensor::from_vec(numbers(n * k, 1), (n, k), &Device::Cpu).expect("w");
            let q = QTensor::quantize(&weights, dtype).expect("quantize");
            let w = q.dequantize(&Device::Cpu).expect("dequantize");
            let matrix = CpuMatrix::from_qtensor(&q).expect("matrix");
            let interleaved = match matrix.blocks {
                Blocks::Q4_1x8(_) => dtype == GgmlDType::Q4_1 && n % GROUP == 0,
                Blocks::Q8_0x8(_) => dtype == GgmlDType::Q8_0 && n % GROUP == 0 && vnni,
                Blocks::Q5_0x8(_) => dtype == GgmlDType::Q5_0 && n % GROUP == 0,
                Blocks::Q4_1(_) | Blocks::Q8_0(_) => {
                    n % GROUP != 0 || (dtype == GgmlDType::Q8_0 && !vnni)
                }
            };
            assert!(interleaved, "{n} rows of {dtype:?}");
            let all = numbers(19 * k, 2);
            let mut first_row = None;
            for m in [1, 2, 7, 8, 9, 19] {
                let xs = Tensor::from_slice(&all[..m * k], (m, k), &Device::Cpu).expect("xs");
                let got: Vec<Vec<f32>> = matrix
                    .forward(&xs)
                    .and_then(|t| Ok(t.to_vec2()?))
                    .expect("got");
                let want: Vec<Vec<f32>> = xs
                    .matmul(&w.t().expect("t"))
                    .and_then(|t| t.to_vec2())
                    .expect("want");
                for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
                    // 8-bit activations: an error of a few parts in a thousand of the sums.
                    assert!((g - w).abs() < 0.05, "{dtype:?}, {m} rows: {g} vs {w}");
                }
                let row = got[0].clone();
                assert_eq!(
                    first_row.get_or_insert(row.clone()),
                    &row,
                    "{dtype:?}, {m} rows"
                );
            }
        }
    }

    /// Every quantizer this CPU can run gives the portable one's blocks, bit for bit.
    #[test]
    fn quantizing_matches_the_portable_loop() {
        let mut x = numbers(64 * QK, 9);
        x[..QK].fill(0.0);
        x[QK..2 * QK]
            .iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = i as f32 - 15.5);
        for kernels in Kernels::available() {
            for block in x.chunks_exact(QK) {
                // SAFETY: `available` lists only kernels this CPU runs.
                let fast = unsafe { (kernels.quantize_block)(block) };
                let slow = portable::quantize_block(block);
                assert_eq!(fast.qs, slow.qs, "{}", kernels.name);
                assert_eq!((fast.d, fast.s), (slow.d, slow.s), "{}", kernels.name);
            }
        }
        assert!(Activations::new(&x[..100], 2, 50).is_err());
    }

    /// The one-row-at-a-time kernels of every set this CPU can run compute the portable
    /// loops' sums.
    #[test]
    fn the_kernels_agree_with_the_portable_loops() {
        let k = 256;
        let w = Tensor::from_vec(numbers(k, 3), (1, k), &Device::Cpu).expect("w");
        let x = numbers(TILE * k, 4);
        let acts = quantize_rows(&x);
        for kernels in Kernels::available() {
            for rows in 1..=TILE {
                let tile = Tile::new(&acts, k / QK, 0, rows);
                for dtype in [GgmlDType::Q4_1, GgmlDType::Q8_0, GgmlDType::Q5_0] {
                    let q = QTensor::quantize(&w, dtype).expect("q");
                    let m = CpuMatrix::from_qtensor(&q).expect("m");
                    // SAFETY: `available` lists only kernels this CPU runs.
                    let (fast, slow) = match &m.blocks {
                        Blocks::Q4_1(b) => unsafe {
                            ((kernels.dot_q4_1)(b, &tile), portable::dot_q4_1(b, &tile))
                        },
                        Blocks::Q8_0(b) => unsafe {
                            ((kernels.dot_q8_0)(b, &tile), portable::dot_q8_0(b, &tile))
                        },
                        Blocks::Q4_1x8(_) | Blocks::Q8_0x8(_) | Blocks::Q5_0x8(_) => {
                            panic!("one row is not interleaved")
                        }
                    };
                    for r in 0..rows {
                        assert!(
                            (fast[r] - slow[r]).abs() <= 1e-4 * slow[r].abs().max(1.0),
                            "{} {dtype:?} row {r} of {rows}: {} vs {}",
                            kernels.name,
                            fast[r],
                            slow[r]
                        );
                    }
                }
            }
        }
    }

    /// The interleaved kernels of every set this CPU can run (AVX2's pairs for Q4_1; VNNI
    /// for both types, on CPUs that have it) give the portable loop's sums bit for bit, and
    /// those are the one-row-at-a-time kernels' sums up to rounding.
    #[test]
    fn the_interleaved_kernels_agree_with_the_portable_loops() {
        let (k, kb) = (256, 256 / QK);
        let w = numbers(GROUP * k, 6);
        let acts = quantize_rows(&numbers(TILE * k, 7));
        // Row by row, not interleaved (both types quantize each block on its own).
        let rows_of = |dtype| -> Vec<Blocks> {
            (0..GROUP)
                .map(|c| {
                    let row = w[c * k..(c + 1) * k].to_vec();
                    let row = Tensor::from_vec(row, (1, k), &Device::Cpu).expect("row");
                    let q = QTensor::quantize(&row, dtype).expect("q");
                    CpuMatrix::from_qtensor(&q).expect("m").blocks
                })
                .collect()
        };
        let q4: Vec<BlockQ4_1> = rows_of(GgmlDType::Q4_1)
            .into_iter()
            .flat_map(|b| match b {
                Blocks::Q4_1(b) => b,
                _ => panic!("one row is not interleaved"),
            })
            .collect();
        let q8: Vec<BlockQ8_0> = rows_of(GgmlDType::Q8_0)
            .into_iter()
            .flat_map(|b| match b {
                Blocks::Q8_0(b) => b,
                _ => panic!("one row is not interleaved"),
            })
            .collect();
        let (q4x8, q8x8) = (
            interleave(&q4, kb, BlockQ4_1x8::new),
            interleave(&q8, kb, BlockQ8_0x8::new),
        );
        // Q5_0 with its high bits and extremes exercised (u of 0 and 31 in every block).
        let q5: Vec<BlockQ5_0> = (0..GROUP * kb)
            .map(|b| {
                let mut bytes = [0u8; 22];
                bytes[..2].copy_from_slice(&f16::from_f32(0.01 * (1 + b % 5) as f32).to_le_bytes());
                for (i, byte) in bytes[2..].iter_mut().enumerate() {
                    *byte = (b * 37 + i * 101) as u8;
                }
                bytes[6] = 0xF0; // element 0 low nibble 0, element 16 low nibble 15
                bytes[2] &= 0xFE; // element 0: u = 0
                bytes[4] |= 0x01; // element 16: u = 31
                BlockQ5_0::from_bytes(&bytes)
            })
            .collect();
        assert!(q5.iter().all(|b| b.u(0) == 0 && b.u(16) == 31));
        let q5x8 = interleave(&q5, kb, BlockQ5_0x8::new);
        let sets = Kernels::available();
        if !sets.iter().any(|k| k.dot_q8_0x8.is_some()) {
            eprintln!("this CPU has no AVX-VNNI: its kernels are not checked here");
        }
        for rows in 1..=TILE {
            let tile = Tile::new(&acts, kb, 0, rows);
            let slow4 = portable::dot_interleaved(&q4x8, &tile);
            let slow8 = portable::dot_interleaved(&q8x8, &tile);
            let slow5 = portable::dot_interleaved(&q5x8, &tile);
            for kernels in &sets {
                // SAFETY: `available` lists only kernels this CPU runs.
                let fast4 = unsafe { (kernels.dot_q4_1x8)(&q4x8, &tile) };
                assert_eq!(fast4, slow4, "{} Q4_1, {rows} rows", kernels.name);
                let fast5 = unsafe { (kernels.dot_q5_0x8)(&q5x8, &tile) };
                assert_eq!(fast5, slow5, "{} Q5_0, {rows} rows", kernels.name);
                if let Some(dot) = kernels.dot_q8_0x8 {
                    let fast8 = unsafe { dot(&q8x8, &tile) };
                    assert_eq!(fast8, slow8, "{} Q8_0, {rows} rows", kernels.name);
                }
            }
            for c in 0..GROUP {
                // Q5_0 as Q8_0 row by row: the same weights.
                let as8: Vec<BlockQ8_0> = q5[c * kb..(c + 1) * kb]
                    .iter()
                    .map(BlockQ5_0::as_q8_0)
                    .collect();
                let one5 = portable::dot_q8_0(&as8, &tile);
                for r in 0..rows {
                    let (a, b) = (slow5[c][r], one5[r]);
                    assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "Q5_0: {a} vs {b}");
                }
                let one4 = portable::dot_q4_1(&q4[c * kb..(c + 1) * kb], &tile);
                let one8 = portable::dot_q8_0(&q8[c * kb..(c + 1) * kb], &tile);
                for r in 0..rows {
                    for (dtype, x8, one) in [("Q4_1", slow4, one4), ("Q8_0", slow8, one8)] {
                        let (a, b) = (x8[c][r], one[r]);
                        assert!(
                            (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                            "{dtype}: {a} vs {b}"
                        );
                    }
                }
            }
        }
    }

    /// The build's best kernels are chosen, and the portable set is always there.
    #[test]
    fn the_dispatch_picks_the_fastest_set_the_cpu_runs() {
        let sets = Kernels::available();
        assert_eq!(sets[0].name, "portable");
        assert_eq!(kernels_name(), sets.last().expect("one set").name);
        #[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
        assert!(kernels_name().starts_with("avx2"), "{}", kernels_name());
    }

    #[test]
    fn other_types_and_shapes_are_refused() {
        let w = Tensor::from_vec(numbers(4 * 256, 5), (4, 256), &Device::Cpu).expect("w");
        let q6k = QTensor::quantize(&w, GgmlDType::Q6K).expect("q6k");
        assert!(!CpuMatrix::supports(GgmlDType::Q6K));
        assert!(CpuMatrix::from_qtensor(&q6k).is_err());
        let m = CpuMatrix::from_qtensor(&QTensor::quantize(&w, GgmlDType::Q8_0).expect("q"))
            .expect("m");
        let xs = Tensor::zeros((2, 128), candle_core::DType::F32, &Device::Cpu).expect("xs");
        assert!(matches!(m.forward(&xs), Err(LlmError::BadInput(_))));
    }

    /// Q4_0 and Q4_K matrices become Q4_1 blocks holding the same weights (up to rounding
    /// a Q4_K sub-block's scale and offset to f16), and their products are the products of
    /// the stored weights.
    #[test]
    fn q4_0_and_q4k_convert_to_q4_1_without_loss() {
        let (n, k) = (4, 512);
        let mut values = numbers(n * k, 11);
        // Sub-blocks of very different ranges, so that the 6-bit scales differ.
        values
            .iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v *= 1.0 + (i / 32 % 7) as f32);
        let w = Tensor::from_vec(values, (n, k), &Device::Cpu).expect("w");
        for dtype in [GgmlDType::Q4_0, GgmlDType::Q4K] {
            assert!(CpuMatrix::supports(dtype));
            let q = QTensor::quantize(&w, dtype).expect("quantize");
            let stored: Vec<f32> = q
                .dequantize(&Device::Cpu)
                .and_then(|t| t.flatten_all()?.to_vec1())
                .expect("dequantize");
            let matrix = CpuMatrix::from_qtensor(&q).expect("matrix");
            let Blocks::Q4_1(blocks) = &matrix.blocks else {
                panic!("{dtype:?}: four rows are not interleaved");
            };
            let ours: Vec<f32> = blocks
                .iter()
                .flat_map(|b| {
                    let (d, m) = (f16::from_bits(b.d).to_f32(), f16::from_bits(b.m).to_f32());
                    let q = |j: usize| {
                        let byte = b.qs[j % 16];
                        f32::from(if j < 16 { byte & 0x0F } else { byte >> 4 })
                    };
                    (0..QK).map(move |j| d * q(j) + m)
                })
                .collect();
            assert_eq!(ours.len(), stored.len());
            for (block, (a, b)) in ours.chunks(QK).zip(stored.chunks(QK)).enumerate() {
                let range = b.iter().fold(0f32, |r, v| r.max(v.abs()));
                for (x, y) in a.iter().zip(b) {
                    assert!(
                        (x - y).abs() <= 2e-3 * range.max(1e-6),
                        "{dtype:?} block {block}: {x} vs {y}"
                    );
                }
            }
            // The product of the stored weights with the activations as the kernels
            // quantize them: only the order of the sums may differ.
            let xs = numbers(3 * k, 12);
            let acts = Activations::new(&xs, 3, k).expect("acts");
            let got = matrix.apply(&acts).expect("got");
            for (r, row) in acts.blocks.chunks(k / QK).enumerate() {
                let x: Vec<f32> = row
                    .iter()
                    .flat_map(|a| a.qs.map(|q| a.d * f32::from(q)))
                    .collect();
                for c in 0..n {
                    let w = &stored[c * k..(c + 1) * k];
                    let want: f32 = x.iter().zip(w).map(|(x, w)| x * w).sum();
                    let size: f32 = x.iter().zip(w).map(|(x, w)| (x * w).abs()).sum();
                    let g = got[r * n + c];
                    // The stored weights differ from the Q4_1 blocks' by the f16 rounding.
                    assert!(
                        (g - want).abs() <= 2e-3 * size,
                        "{dtype:?} ({r}, {c}): {g} vs {want}"
                    );
                }
            }
        }
    }

    /// candle's kernels of the same types quantize activations the same way but keep their
    /// scales in f16: the products agree to a few parts in a thousand, and ours are closer
    /// to the product of the dequantized weights.
    #[test]
    fn products_match_candles_kernels_and_are_closer_to_the_exact_product() {
        use candle_core::Module;
        let (n, k, m) = (24, 512, 5);
        let w = Tensor::from_vec(numbers(n * k, 7), (n, k), &Device::Cpu).expect("w");
        let xs = Tensor::from_vec(numbers(m * k, 8), (m, k), &Device::Cpu).expect("xs");
        for dtype in [GgmlDType::Q4_1, GgmlDType::Q8_0] {
            let q = QTensor::quantize(&w, dtype).expect("quantize");
            let exact: Vec<f32> = q
                .dequantize(&Device::Cpu)
                .and_then(|w| xs.matmul(&w.t()?))
                .and_then(|t| t.flatten_all()?.to_vec1())
                .expect("exact");
            let ours: Vec<f32> = CpuMatrix::from_qtensor(&q)
                .and_then(|c| Ok(c.forward(&xs)?.flatten_all()?.to_vec1()?))
                .expect("ours");
            let theirs: Vec<f32> = candle_core::quantized::QMatMul::from_qtensor(q)
                .and_then(|c| c.forward(&xs))
                .and_then(|t| t.flatten_all()?.to_vec1())
                .expect("candle");
            let (mut ours_off, mut theirs_off) = (0f32, 0f32);
            for ((a, b), e) in ours.iter().zip(&theirs).zip(&exact) {
                assert!(
                    (a - b).abs() < 5e-3 * b.abs().max(1.0),
                    "{dtype:?}: {a} vs {b}"
                );
                ours_off += (a - e).abs();
                theirs_off += (b - e).abs();
            }
            assert!(
                ours_off <= theirs_off,
                "{dtype:?}: off by {ours_off}, candle {theirs_off}"
            );
        }
    }
}
