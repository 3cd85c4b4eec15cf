//! The interleaved kernel on AVX-VNNI, for either weight type: `vpdpbusd` adds four products
//! of unsigned weight bytes and signed activation bytes straight into 32-bit sums, where
//! AVX2 alone needs a multiply into 16-bit pairs and a widening. It is the AVX2 kernel's
//! loop (`avx2::interleaved_rows`) with this one step swapped, compiled for `avxvnni`, and
//! runs only where the CPU reports the instruction at run time (see `Kernels`).

use std::arch::x86_64::*;

use super::avx2::{Products, Vectors, by_rows, interleaved_rows};
use super::{GROUP, TILE, Tile};

/// `vpdpbusd` straight into 32-bit lanes (inlined only into functions that enable
/// `avxvnni`).
struct Vnni;

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

/// Eight interleaved weight rows of either type against up to four activation rows.
///
/// # Safety
/// The CPU must have AVX-VNNI (and the build AVX2, FMA and F16C).
#[target_feature(enable = "avxvnni")]
pub unsafe fn dot_interleaved<B: Vectors>(w: &[B], tile: &Tile) -> [[f32; TILE]; GROUP] {
    unsafe { by_rows!(interleaved_rows::<B, Vnni>, w, tile) }
}

/// Whether this CPU has AVX-VNNI.
pub fn detected() -> bool {
    std::arch::is_x86_feature_detected!("avxvnni")
}
