//! Quantized matrix products on the CPU for the weight types of the packaged models, Q4_1
//! and Q8_0, with kernels that read and unpack each block of weights once for up to four
//! rows of activations.
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
//! offset ([`BlockQ8_0x8`]). Per block of 32 weights and row of activations this is a third
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

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use half::f16;

use super::host::{Out, run_items};
use crate::error::{InferError, Result};

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

/// Block `b` of eight consecutive Q8_0 weight rows, interleaved four weights at a time and
/// stored unsigned, `u = q + 128`: byte `32 g + 4 c + j` is row `c`'s weight `4 g + j`. A
/// weight is then `d · u − 128 d`, the form of Q4_1 with an 8-bit `u`, which the VNNI
/// instruction multiplies with signed activations without saturating (the 16-bit pairs of
/// AVX2's `vpmaddubsw` would saturate: two products of 255 · 127).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct BlockQ8_0x8 {
    d: [u16; 8],
    qs: [u8; 256],
}

impl BlockQ8_0x8 {
    /// Interleaves the same block of eight rows.
    fn new(rows: [&BlockQ8_0; 8]) -> Self {
        let mut qs = [0u8; 256];
        for (i, q) in qs.chunks_exact_mut(4).enumerate() {
            let (g, c) = (i / 8, i % 8);
            for (u, &w) in q.iter_mut().zip(&rows[c].qs[4 * g..4 * g + 4]) {
                *u = (w as i16 + 128) as u8;
            }
        }
        Self {
            d: rows.map(|b| b.d),
            qs,
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

impl Interleaved for BlockQ8_0x8 {
    fn u(&self, c: usize, k: usize) -> u8 {
        self.qs[32 * (k / 4) + 4 * c + k % 4]
    }

    fn dm(&self, c: usize) -> (f32, f32) {
        let d = f16::from_bits(self.d[c]).to_f32();
        (d, -128.0 * d)
    }
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
}

/// A weight matrix `[out, in]` held for the kernels of this module.
#[derive(Debug)]
pub(crate) struct CpuMatrix {
    blocks: Blocks,
    rows: usize,
    cols: usize,
}

impl CpuMatrix {
    /// Whether matrices of `dtype` have kernels here.
    pub fn supports(dtype: GgmlDType) -> bool {
        matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q8_0)
    }

    /// Takes the blocks of a `[out, in]` quantized matrix of a supported type.
    pub fn from_qtensor(weights: &QTensor) -> Result<Self> {
        let (rows, cols) = weights.shape().dims2()?;
        if !cols.is_multiple_of(QK) {
            return Err(InferError::BadInput(format!(
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
            GgmlDType::Q8_0 => Blocks::Q8_0(
                data.chunks_exact(34)
                    .map(|b| BlockQ8_0 {
                        d: u16_at(b, 0),
                        qs: std::array::from_fn(|i| b[2 + i] as i8),
                    })
                    .collect(),
            ),
            other => {
                return Err(InferError::BadInput(format!(
                    "no CPU kernel for {other:?} weights"
                )));
            }
        };
        let count = match &blocks {
            Blocks::Q4_1(b) => b.len(),
            Blocks::Q8_0(b) => b.len(),
            Blocks::Q4_1x8(_) | Blocks::Q8_0x8(_) => unreachable!("interleaved below"),
        };
        if count != rows * cols / QK {
            return Err(InferError::BadInput(format!(
                "a {rows}×{cols} matrix with {count} blocks"
            )));
        }
        let blocks = match blocks {
            Blocks::Q4_1(b) if rows.is_multiple_of(GROUP) => {
                Blocks::Q4_1x8(interleave(&b, cols / QK, BlockQ4_1x8::new))
            }
            Blocks::Q8_0(b) if rows.is_multiple_of(GROUP) && vnni() => {
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
            return Err(InferError::BadInput(format!(
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
            match &w.blocks {
                Blocks::Q4_1(w) => by_column(&|col| dot_q4_1(&w[blocks(col)], tile)),
                Blocks::Q8_0(w) => by_column(&|col| dot_q8_0(&w[blocks(col)], tile)),
                Blocks::Q4_1x8(w) => by_group(&|g| dot_q4_1x8(&w[blocks(g)], tile)),
                Blocks::Q8_0x8(w) => by_group(&|g| dot_q8_0x8(&w[blocks(g)], tile)),
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

/// Whether this CPU multiplies unsigned by signed bytes into 32-bit sums in one instruction
/// (AVX-VNNI), for the kernels built for AVX2.
fn vnni() -> bool {
    #[cfg(all(
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "f16c"
    ))]
    {
        std::arch::is_x86_feature_detected!("avxvnni")
    }
    #[cfg(not(all(
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "f16c"
    )))]
    {
        false
    }
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
            return Err(InferError::BadInput(format!(
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
    xs.chunks_exact(QK).map(quantize_block).collect()
}

fn quantize_block(x: &[f32]) -> BlockQ8 {
    #[cfg(all(
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "f16c"
    ))]
    {
        // SAFETY: the build enables the instructions used; `x` holds 32 values.
        unsafe { avx2::quantize_block(x) }
    }
    #[cfg(not(all(
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "f16c"
    )))]
    {
        portable::quantize_block(x)
    }
}

/// One weight row against up to four activation rows (the tile's `rows` are real; the rest
/// repeat the last and are ignored).
fn dot_q4_1(w: &[BlockQ4_1], tile: &Tile) -> [f32; TILE] {
    #[cfg(all(
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "f16c"
    ))]
    {
        // SAFETY: the build enables the instructions used.
        unsafe { avx2::dot_q4_1(w, tile) }
    }
    #[cfg(not(all(
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "f16c"
    )))]
    {
        portable::dot_q4_1(w, tile)
    }
}

/// Eight interleaved weight rows against up to four activation rows: `[column][row]`.
fn dot_q4_1x8(w: &[BlockQ4_1x8], tile: &Tile) -> [[f32; TILE]; GROUP] {
    #[cfg(all(
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "f16c"
    ))]
    {
        // SAFETY: the build enables the instructions used, and `vnni` checked the CPU's.
        unsafe {
            if vnni() {
                avx2::dot_interleaved_vnni(w, tile)
            } else {
                avx2::dot_q4_1x8(w, tile)
            }
        }
    }
    #[cfg(not(all(
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "f16c"
    )))]
    {
        portable::dot_interleaved(w, tile)
    }
}

/// As [`dot_q4_1x8`], for Q8_0 weights (interleaved only where [`vnni`] holds).
fn dot_q8_0x8(w: &[BlockQ8_0x8], tile: &Tile) -> [[f32; TILE]; GROUP] {
    #[cfg(all(
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "f16c"
    ))]
    if vnni() {
        // SAFETY: the build enables the instructions used, and `vnni` checked the CPU's.
        return unsafe { avx2::dot_interleaved_vnni(w, tile) };
    }
    portable::dot_interleaved(w, tile)
}

/// As [`dot_q4_1`], for Q8_0 weights.
fn dot_q8_0(w: &[BlockQ8_0], tile: &Tile) -> [f32; TILE] {
    #[cfg(all(
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "f16c"
    ))]
    {
        // SAFETY: the build enables the instructions used.
        unsafe { avx2::dot_q8_0(w, tile) }
    }
    #[cfg(not(all(
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "f16c"
    )))]
    {
        portable::dot_q8_0(w, tile)
    }
}

/// The same sums in plain loops: the fallback, and the reference of the tests.
#[cfg_attr(
    all(
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "f16c"
    ),
    allow(dead_code)
)]
mod portable {
    use super::*;

    pub fn quantize_block(x: &[f32]) -> BlockQ8 {
        let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        let inv = if d > 0.0 { 127.0 / amax } else { 0.0 };
        let qs: [i8; QK] = std::array::from_fn(|i| (x[i] * inv).round_ties_even() as i8);
        let sum: i32 = qs.iter().map(|&q| q as i32).sum();
        BlockQ8 {
            d,
            s: d * sum as f32,
            qs,
        }
    }

    pub fn dot_q4_1(w: &[BlockQ4_1], tile: &Tile) -> [f32; TILE] {
        let mut out = [0f32; TILE];
        for (r, out) in out.iter_mut().enumerate().take(tile.rows) {
            for (b, a) in w.iter().zip(tile.qs[r]) {
                let mut sum = 0i32;
                for j in 0..QK / 2 {
                    sum += (b.qs[j] & 0x0F) as i32 * a.qs[j] as i32;
                    sum += (b.qs[j] >> 4) as i32 * a.qs[j + QK / 2] as i32;
                }
                let (d, m) = (f16::from_bits(b.d).to_f32(), f16::from_bits(b.m).to_f32());
                *out += d * a.d * sum as f32 + m * a.s;
            }
        }
        out
    }

    /// Per column and block: the integer sum, times the weight scale times the activation
    /// scale, then the offset times the activations' sum, each added with one rounding (as
    /// the vector kernels' multiply-adds do).
    pub fn dot_interleaved<B: Interleaved>(w: &[B], tile: &Tile) -> [[f32; TILE]; GROUP] {
        let mut out = [[0f32; TILE]; GROUP];
        for (c, out) in out.iter_mut().enumerate() {
            for (r, out) in out.iter_mut().enumerate().take(tile.rows) {
                for (b, a) in w.iter().zip(tile.qs[r]) {
                    let sum: i32 = (0..QK).map(|k| b.u(c, k) as i32 * a.qs[k] as i32).sum();
                    let (d, m) = b.dm(c);
                    *out = (sum as f32).mul_add(d * a.d, *out);
                    *out = m.mul_add(a.s, *out);
                }
            }
        }
        out
    }

    pub fn dot_q8_0(w: &[BlockQ8_0], tile: &Tile) -> [f32; TILE] {
        let mut out = [0f32; TILE];
        for (r, out) in out.iter_mut().enumerate().take(tile.rows) {
            for (b, a) in w.iter().zip(tile.qs[r]) {
                let sum: i32 =
                    b.qs.iter()
                        .zip(&a.qs)
                        .map(|(&x, &y)| x as i32 * y as i32)
                        .sum();
                *out += f16::from_bits(b.d).to_f32() * a.d * sum as f32;
            }
        }
        out
    }
}

#[cfg(all(
    target_feature = "avx2",
    target_feature = "fma",
    target_feature = "f16c"
))]
mod avx2 {
    //! Per block of weights: its scale times the tile's activation scales, for all rows in
    //! one multiply, stored so that each row broadcasts its own lane from memory; the Q4_1
    //! offsets of all rows in one multiply-add. Per row and block: one multiply of bytes,
    //! one of pairs, a conversion and a multiply-add.
    use super::*;
    use std::arch::x86_64::*;

    // The per-row lanes (scales, sums, results) are one 128-bit vector.
    const _: () = assert!(TILE == 4);

    pub unsafe fn quantize_block(x: &[f32]) -> BlockQ8 {
        unsafe {
            debug_assert_eq!(x.len(), QK);
            let p = x.as_ptr();
            let v = [
                _mm256_loadu_ps(p),
                _mm256_loadu_ps(p.add(8)),
                _mm256_loadu_ps(p.add(16)),
                _mm256_loadu_ps(p.add(24)),
            ];
            let sign = _mm256_set1_ps(-0.0);
            let abs = |v: __m256| _mm256_andnot_ps(sign, v);
            let m = _mm256_max_ps(
                _mm256_max_ps(abs(v[0]), abs(v[1])),
                _mm256_max_ps(abs(v[2]), abs(v[3])),
            );
            let m = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
            let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
            let amax = _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
            let d = amax / 127.0;
            let inv = _mm256_set1_ps(if d > 0.0 { 127.0 / amax } else { 0.0 });
            const NEAREST: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
            let q =
                v.map(|v| _mm256_cvtps_epi32(_mm256_round_ps::<NEAREST>(_mm256_mul_ps(v, inv))));
            // Packing interleaves the 128-bit lanes; the permutation puts them back in order.
            let words = [
                _mm256_packs_epi32(q[0], q[1]),
                _mm256_packs_epi32(q[2], q[3]),
            ];
            let bytes = _mm256_packs_epi16(words[0], words[1]);
            let bytes =
                _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            let mut qs = [0i8; QK];
            _mm256_storeu_si256(qs.as_mut_ptr() as *mut __m256i, bytes);
            let sums = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
            let sums = _mm_add_epi32(
                _mm256_castsi256_si128(sums),
                _mm256_extracti128_si256(sums, 1),
            );
            let sums = _mm_hadd_epi32(sums, sums);
            let sum = _mm_cvtsi128_si32(_mm_hadd_epi32(sums, sums));
            BlockQ8 {
                d,
                s: d * sum as f32,
                qs,
            }
        }
    }

    /// The horizontal sum of eight lanes.
    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        unsafe {
            let x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let x = _mm_add_ps(x, _mm_movehl_ps(x, x));
            let x = _mm_add_ss(x, _mm_movehdup_ps(x));
            _mm_cvtss_f32(x)
        }
    }

    /// Runs a kernel with `R` (1 to 4) fixed at compile time, so the accumulators stay in
    /// registers.
    macro_rules! by_rows {
        ($f:ident $(::<$($g:ty),*>)?, $w:expr, $tile:expr) => {
            match $tile.rows {
                1 => $f::<$($($g,)*)? 1>($w, $tile),
                2 => $f::<$($($g,)*)? 2>($w, $tile),
                3 => $f::<$($($g,)*)? 3>($w, $tile),
                _ => $f::<$($($g,)*)? 4>($w, $tile),
            }
        };
    }

    pub unsafe fn dot_q4_1(w: &[BlockQ4_1], tile: &Tile) -> [f32; TILE] {
        unsafe { by_rows!(q4_1_rows, w, tile) }
    }

    pub unsafe fn dot_q8_0(w: &[BlockQ8_0], tile: &Tile) -> [f32; TILE] {
        unsafe { by_rows!(q8_0_rows, w, tile) }
    }

    /// Interleaved Q4_1 on AVX2 alone: 16-bit pairs of products, which stay in range for
    /// 4-bit weights (at most 16 products of 15 · 127 per lane in a block).
    pub unsafe fn dot_q4_1x8(w: &[BlockQ4_1x8], tile: &Tile) -> [[f32; TILE]; GROUP] {
        unsafe { by_rows!(interleaved_rows::<BlockQ4_1x8, Pairs>, w, tile) }
    }

    /// Interleaved weights of either type with AVX-VNNI's `vpdpbusd`: four products into a
    /// 32-bit sum in one instruction.
    #[target_feature(enable = "avxvnni")]
    pub unsafe fn dot_interleaved_vnni<B: Vectors>(w: &[B], tile: &Tile) -> [[f32; TILE]; GROUP] {
        unsafe { by_rows!(interleaved_rows::<B, Vnni>, w, tile) }
    }

    /// The weights of an interleaved block as vectors.
    pub trait Vectors {
        /// Weights `4 g .. 4 g + 4` of each of the eight rows, `u` as bytes, row `c` in
        /// lane `c` (32 bits).
        unsafe fn weights(&self, g: usize) -> __m256i;
        /// The rows' `d` and `m`.
        unsafe fn scales(&self) -> (__m256, __m256);
    }

    impl Vectors for BlockQ4_1x8 {
        #[inline(always)]
        unsafe fn weights(&self, g: usize) -> __m256i {
            unsafe {
                let bytes =
                    _mm256_loadu_si256(self.qs.as_ptr().add(32 * (g % 4)) as *const __m256i);
                let bytes = if g < 4 {
                    bytes
                } else {
                    _mm256_srli_epi16(bytes, 4)
                };
                _mm256_and_si256(bytes, _mm256_set1_epi8(0x0F))
            }
        }

        #[inline(always)]
        unsafe fn scales(&self) -> (__m256, __m256) {
            unsafe {
                (
                    _mm256_cvtph_ps(_mm_loadu_si128(self.d.as_ptr() as *const __m128i)),
                    _mm256_cvtph_ps(_mm_loadu_si128(self.m.as_ptr() as *const __m128i)),
                )
            }
        }
    }

    impl Vectors for BlockQ8_0x8 {
        #[inline(always)]
        unsafe fn weights(&self, g: usize) -> __m256i {
            unsafe { _mm256_loadu_si256(self.qs.as_ptr().add(32 * g) as *const __m256i) }
        }

        #[inline(always)]
        unsafe fn scales(&self) -> (__m256, __m256) {
            unsafe {
                let d = _mm256_cvtph_ps(_mm_loadu_si128(self.d.as_ptr() as *const __m128i));
                (d, _mm256_mul_ps(d, _mm256_set1_ps(-128.0)))
            }
        }
    }

    /// How a block's products of unsigned weights and signed activation bytes are summed.
    pub trait Products {
        /// Adds the products of four byte pairs per 32-bit lane to `sum`.
        unsafe fn add(sum: __m256i, w: __m256i, a: __m256i) -> __m256i;
        /// A block's sums as eight 32-bit lanes.
        unsafe fn lanes(sum: __m256i) -> __m256i;
    }

    /// AVX2: `vpmaddubsw` into 16-bit pairs, widened once per block.
    pub struct Pairs;

    impl Products for Pairs {
        #[inline(always)]
        unsafe fn add(sum: __m256i, w: __m256i, a: __m256i) -> __m256i {
            unsafe { _mm256_add_epi16(sum, _mm256_maddubs_epi16(w, a)) }
        }

        #[inline(always)]
        unsafe fn lanes(sum: __m256i) -> __m256i {
            unsafe { _mm256_madd_epi16(sum, _mm256_set1_epi16(1)) }
        }
    }

    /// AVX-VNNI: `vpdpbusd` straight into 32-bit lanes (inlined only into functions that
    /// enable `avxvnni`).
    pub struct Vnni;

    impl Products for Vnni {
        #[inline(always)]
        unsafe fn add(sum: __m256i, w: __m256i, a: __m256i) -> __m256i {
            unsafe { _mm256_dpbusd_avx_epi32(sum, w, a) }
        }

        #[inline(always)]
        unsafe fn lanes(sum: __m256i) -> __m256i {
            sum
        }
    }

    /// Per block: eight vectors of four weights of each of the eight rows; each activation
    /// row multiplies them with its own activations four at a time (broadcast); then one
    /// conversion and scaling for all eight columns, and the offsets in one multiply-add.
    #[inline(always)]
    unsafe fn interleaved_rows<B: Vectors, P: Products, const R: usize>(
        w: &[B],
        tile: &Tile,
    ) -> [[f32; TILE]; GROUP] {
        unsafe {
            let mut acc = [_mm256_setzero_ps(); R];
            for (i, b) in w.iter().enumerate() {
                let mut sums = [_mm256_setzero_si256(); R];
                for g in 0..QK / 4 {
                    let weights = b.weights(g);
                    for (sum, qs) in sums.iter_mut().zip(tile.qs) {
                        let a = qs.get_unchecked(i).qs.as_ptr().add(4 * g);
                        let a = _mm256_set1_epi32(std::ptr::read_unaligned(a as *const i32));
                        *sum = P::add(*sum, weights, a);
                    }
                }
                let (d, m) = b.scales();
                let scale = tile.scale.get_unchecked(i);
                let sum = tile.sum.get_unchecked(i);
                for r in 0..R {
                    let products = _mm256_cvtepi32_ps(P::lanes(sums[r]));
                    let sc = _mm256_mul_ps(d, _mm256_broadcast_ss(&scale[r]));
                    acc[r] = _mm256_fmadd_ps(products, sc, acc[r]);
                    acc[r] = _mm256_fmadd_ps(m, _mm256_broadcast_ss(&sum[r]), acc[r]);
                }
            }
            let mut rows = [[0f32; GROUP]; TILE];
            for r in 0..R {
                _mm256_storeu_ps(rows[r].as_mut_ptr(), acc[r]);
            }
            std::array::from_fn(|c| std::array::from_fn(|r| rows[r][c]))
        }
    }

    #[inline(always)]
    unsafe fn q4_1_rows<const R: usize>(w: &[BlockQ4_1], tile: &Tile) -> [f32; TILE] {
        unsafe {
            let mut acc = [_mm256_setzero_ps(); R];
            let mut offsets = _mm_setzero_ps();
            let mut scales = [0f32; TILE];
            let low = _mm_set1_epi8(0x0F);
            let ones = _mm256_set1_epi16(1);
            for (i, b) in w.iter().enumerate() {
                let dm = _mm_cvtph_ps(_mm_cvtsi32_si128(std::ptr::read_unaligned(
                    &b.d as *const u16 as *const i32,
                )));
                let d = _mm_broadcastss_ps(dm);
                let m = _mm_broadcastss_ps(_mm_movehdup_ps(dm));
                let sc = _mm_mul_ps(d, _mm_loadu_ps(tile.scale.get_unchecked(i).as_ptr()));
                _mm_storeu_ps(scales.as_mut_ptr(), sc);
                offsets =
                    _mm_fmadd_ps(m, _mm_loadu_ps(tile.sum.get_unchecked(i).as_ptr()), offsets);
                let bytes = _mm_loadu_si128(b.qs.as_ptr() as *const __m128i);
                let lo = _mm_and_si128(bytes, low);
                let hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), low);
                let q = _mm256_set_m128i(hi, lo);
                for r in 0..R {
                    let a = tile.qs[r].get_unchecked(i);
                    let y = _mm256_loadu_si256(a.qs.as_ptr() as *const __m256i);
                    let products = _mm256_madd_epi16(_mm256_maddubs_epi16(q, y), ones);
                    acc[r] = _mm256_fmadd_ps(
                        _mm256_cvtepi32_ps(products),
                        _mm256_broadcast_ss(&scales[r]),
                        acc[r],
                    );
                }
            }
            let mut out = [0f32; TILE];
            _mm_storeu_ps(out.as_mut_ptr(), offsets);
            for r in 0..R {
                out[r] += hsum(acc[r]);
            }
            out
        }
    }

    #[inline(always)]
    unsafe fn q8_0_rows<const R: usize>(w: &[BlockQ8_0], tile: &Tile) -> [f32; TILE] {
        unsafe {
            let mut acc = [_mm256_setzero_ps(); R];
            let mut scales = [0f32; TILE];
            let ones = _mm256_set1_epi16(1);
            for (i, b) in w.iter().enumerate() {
                let d = _mm_broadcastss_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(b.d as i32)));
                let sc = _mm_mul_ps(d, _mm_loadu_ps(tile.scale.get_unchecked(i).as_ptr()));
                _mm_storeu_ps(scales.as_mut_ptr(), sc);
                let q = _mm256_loadu_si256(b.qs.as_ptr() as *const __m256i);
                // maddubs multiplies unsigned by signed bytes: |w| times y carrying w's sign.
                let abs = _mm256_sign_epi8(q, q);
                for r in 0..R {
                    let a = tile.qs[r].get_unchecked(i);
                    let y = _mm256_loadu_si256(a.qs.as_ptr() as *const __m256i);
                    let products =
                        _mm256_madd_epi16(_mm256_maddubs_epi16(abs, _mm256_sign_epi8(y, q)), ones);
                    acc[r] = _mm256_fmadd_ps(
                        _mm256_cvtepi32_ps(products),
                        _mm256_broadcast_ss(&scales[r]),
                        acc[r],
                    );
                }
            }
            let mut out = [0f32; TILE];
            for r in 0..R {
                out[r] = hsum(acc[r]);
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::test_util::numbers;

    /// Products of 1 to 19 rows (tiles of four and the remainders) against matrices of both
    /// types equal the product of the dequantized weights, and each row's result is the
    /// same whatever rows it is batched with. 40 rows of Q4_1 are interleaved in eights, 20
    /// are not.
    #[test]
    fn products_match_dequantized_weights_and_do_not_depend_on_the_batch() {
        for (n, dtype) in [
            (40, GgmlDType::Q4_1),
            (20, GgmlDType::Q4_1),
            (40, GgmlDType::Q8_0),
        ] {
            let k = 96;
            let weights = Tensor::from_vec(numbers(n * k, 1), (n, k), &Device::Cpu).expect("w");
            let q = QTensor::quantize(&weights, dtype).expect("quantize");
            let w = q.dequantize(&Device::Cpu).expect("dequantize");
            let matrix = CpuMatrix::from_qtensor(&q).expect("matrix");
            let interleaved = match matrix.blocks {
                Blocks::Q4_1x8(_) => dtype == GgmlDType::Q4_1 && n % GROUP == 0,
                Blocks::Q8_0x8(_) => dtype == GgmlDType::Q8_0 && n % GROUP == 0 && vnni(),
                Blocks::Q4_1(_) | Blocks::Q8_0(_) => {
                    n % GROUP != 0 || (dtype == GgmlDType::Q8_0 && !vnni())
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

    /// The quantizer the build uses gives the portable one's blocks, bit for bit.
    #[test]
    fn quantizing_matches_the_portable_loop() {
        let mut x = numbers(64 * QK, 9);
        x[..QK].fill(0.0);
        x[QK..2 * QK]
            .iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = i as f32 - 15.5);
        for block in x.chunks_exact(QK) {
            let (fast, slow) = (quantize_block(block), portable::quantize_block(block));
            assert_eq!(fast.qs, slow.qs);
            assert_eq!((fast.d, fast.s), (slow.d, slow.s));
        }
        assert!(Activations::new(&x[..100], 2, 50).is_err());
    }

    /// The kernels the build uses compute the portable loops' sums.
    #[test]
    fn the_kernels_agree_with_the_portable_loops() {
        let k = 256;
        let w = Tensor::from_vec(numbers(k, 3), (1, k), &Device::Cpu).expect("w");
        let x = numbers(TILE * k, 4);
        let acts = quantize_rows(&x);
        for rows in 1..=TILE {
            let tile = Tile::new(&acts, k / QK, 0, rows);
            for dtype in [GgmlDType::Q4_1, GgmlDType::Q8_0] {
                let m =
                    CpuMatrix::from_qtensor(&QTensor::quantize(&w, dtype).expect("q")).expect("m");
                let (fast, slow) = match &m.blocks {
                    Blocks::Q4_1(b) => (dot_q4_1(b, &tile), portable::dot_q4_1(b, &tile)),
                    Blocks::Q8_0(b) => (dot_q8_0(b, &tile), portable::dot_q8_0(b, &tile)),
                    Blocks::Q4_1x8(_) | Blocks::Q8_0x8(_) => panic!("one row is not interleaved"),
                };
                for r in 0..rows {
                    assert!(
                        (fast[r] - slow[r]).abs() <= 1e-4 * slow[r].abs().max(1.0),
                        "{dtype:?} row {r} of {rows}: {} vs {}",
                        fast[r],
                        slow[r]
                    );
                }
            }
        }
    }

    /// The interleaved kernels give the portable loop's sums bit for bit (AVX2's pairs for
    /// Q4_1; VNNI for both types, on CPUs that have it), and those are the
    /// one-row-at-a-time kernels' sums up to rounding.
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
        for rows in 1..=TILE {
            let tile = Tile::new(&acts, kb, 0, rows);
            let slow4 = portable::dot_interleaved(&q4x8, &tile);
            let slow8 = portable::dot_interleaved(&q8x8, &tile);
            assert_eq!(dot_q4_1x8(&q4x8, &tile), slow4, "Q4_1, {rows} rows");
            assert_eq!(dot_q8_0x8(&q8x8, &tile), slow8, "Q8_0, {rows} rows");
            #[cfg(all(
                target_feature = "avx2",
                target_feature = "fma",
                target_feature = "f16c"
            ))]
            {
                // SAFETY: the build enables AVX2; VNNI only where the CPU has it.
                assert_eq!(unsafe { avx2::dot_q4_1x8(&q4x8, &tile) }, slow4);
                if vnni() {
                    assert_eq!(unsafe { avx2::dot_interleaved_vnni(&q4x8, &tile) }, slow4);
                    assert_eq!(unsafe { avx2::dot_interleaved_vnni(&q8x8, &tile) }, slow8);
                } else {
                    eprintln!("this CPU has no AVX-VNNI: its kernels are not checked here");
                }
            }
            for c in 0..GROUP {
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

    #[test]
    fn other_types_and_shapes_are_refused() {
        let w = Tensor::from_vec(numbers(4 * 256, 5), (4, 256), &Device::Cpu).expect("w");
        let q4k = QTensor::quantize(&w, GgmlDType::Q4K).expect("q4k");
        assert!(!CpuMatrix::supports(GgmlDType::Q4K));
        assert!(CpuMatrix::from_qtensor(&q4k).is_err());
        let m = CpuMatrix::from_qtensor(&QTensor::quantize(&w, GgmlDType::Q8_0).expect("q"))
            .expect("m");
        let xs = Tensor::zeros((2, 128), candle_core::DType::F32, &Device::Cpu).expect("xs");
        assert!(matches!(m.forward(&xs), Err(InferError::BadInput(_))));
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
