//! The kernels in plain loops: the fallback on CPUs without the vector instructions, and the
//! reference every faster kernel is tested against (bit for bit for the interleaved ones).

use super::{BlockQ4_1, BlockQ8, BlockQ8_0, GROUP, Interleaved, QK, TILE, Tile};
use half::f16;

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
