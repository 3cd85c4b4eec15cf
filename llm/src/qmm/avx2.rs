//! The kernels on AVX2 with FMA and F16C, compiled where the build enables them (the
//! project's `.cargo/config.toml` targets x86-64-v3).
//!
//! Per block of weights: its scale times the tile's activation scales, for all rows in
//! one multiply, stored so that each row broadcasts its own lane from memory; the Q4_1
//! offsets of all rows in one multiply-add. Per row and block: one multiply of bytes,
//! one of pairs, a conversion and a multiply-add.

use std::arch::x86_64::*;

use super::{
    BlockQ4_1, BlockQ4_1x8, BlockQ5_0x8, BlockQ8, BlockQ8_0, BlockU8x8, GROUP, QK, TILE, Tile,
};

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
        let q = v.map(|v| _mm256_cvtps_epi32(_mm256_round_ps::<NEAREST>(_mm256_mul_ps(v, inv))));
        // Packing interleaves the 128-bit lanes; the permutation puts them back in order.
        let words = [
            _mm256_packs_epi32(q[0], q[1]),
            _mm256_packs_epi32(q[2], q[3]),
        ];
        let bytes = _mm256_packs_epi16(words[0], words[1]);
        let bytes = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
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
pub(super) use by_rows;

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

/// Interleaved Q5_0 on AVX2 alone: 16-bit pairs of products, widened every four groups of
/// four weights (5-bit weights would overflow them over a whole block).
pub unsafe fn dot_q5_0x8(w: &[BlockQ5_0x8], tile: &Tile) -> [[f32; TILE]; GROUP] {
    unsafe { by_rows!(interleaved_rows::<BlockQ5_0x8, Pairs>, w, tile) }
}

/// The weights of an interleaved block as vectors.
pub trait Vectors {
    /// Groups of four weights whose 16-bit pairs of products with 8-bit activations can be
    /// summed without overflow: `2 · u_max · 128 · SPAN ≤ 2¹⁵ − 1`.
    const SPAN: usize;
    /// Weights `4 g .. 4 g + 4` of each of the eight rows, `u` as bytes, row `c` in
    /// lane `c` (32 bits).
    unsafe fn weights(&self, g: usize) -> __m256i;
    /// The rows' `d` and `m`.
    unsafe fn scales(&self) -> (__m256, __m256);
}

impl Vectors for BlockQ4_1x8 {
    const SPAN: usize = QK / 4;

    #[inline(always)]
    unsafe fn weights(&self, g: usize) -> __m256i {
        unsafe {
            let bytes = _mm256_loadu_si256(self.qs.as_ptr().add(32 * (g % 4)) as *const __m256i);
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

impl<const BIAS: u8> Vectors for BlockU8x8<BIAS> {
    // 5-bit weights (Q5_0's) keep AVX2's 16-bit pairs in range over four groups; 8-bit ones
    // (Q8_0's) only VNNI multiplies, in 32-bit sums.
    const SPAN: usize = if BIAS <= 16 { 4 } else { QK / 4 };

    #[inline(always)]
    unsafe fn weights(&self, g: usize) -> __m256i {
        unsafe { _mm256_loadu_si256(self.qs.as_ptr().add(32 * g) as *const __m256i) }
    }

    #[inline(always)]
    unsafe fn scales(&self) -> (__m256, __m256) {
        unsafe {
            let d = _mm256_cvtph_ps(_mm_loadu_si128(self.d.as_ptr() as *const __m128i));
            (d, _mm256_mul_ps(d, _mm256_set1_ps(-f32::from(BIAS))))
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

/// Per block: eight vectors of four weights of each of the eight rows; each activation
/// row multiplies them with its own activations four at a time (broadcast); then one
/// conversion and scaling for all eight columns, and the offsets in one multiply-add.
#[inline(always)]
pub(super) unsafe fn interleaved_rows<B: Vectors, P: Products, const R: usize>(
    w: &[B],
    tile: &Tile,
) -> [[f32; TILE]; GROUP] {
    unsafe {
        let mut acc = [_mm256_setzero_ps(); R];
        for (i, b) in w.iter().enumerate() {
            let mut lanes = [_mm256_setzero_si256(); R];
            for g0 in (0..QK / 4).step_by(B::SPAN) {
                let mut sums = [_mm256_setzero_si256(); R];
                for g in g0..g0 + B::SPAN {
                    let weights = b.weights(g);
                    for (sum, qs) in sums.iter_mut().zip(tile.qs) {
                        let a = qs.get_unchecked(i).qs.as_ptr().add(4 * g);
                        let a = _mm256_set1_epi32(std::ptr::read_unaligned(a as *const i32));
                        *sum = P::add(*sum, weights, a);
                    }
                }
                for (l, sum) in lanes.iter_mut().zip(sums) {
                    *l = _mm256_add_epi32(*l, P::lanes(sum));
                }
            }
            let (d, m) = b.scales();
            let scale = tile.scale.get_unchecked(i);
            let sum = tile.sum.get_unchecked(i);
            for r in 0..R {
                let products = _mm256_cvtepi32_ps(lanes[r]);
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
            offsets = _mm_fmadd_ps(m, _mm_loadu_ps(tile.sum.get_unchecked(i).as_ptr()), offsets);
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
