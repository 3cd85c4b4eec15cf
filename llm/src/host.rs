//! Rotary embeddings and attention on the CPU in plain loops over `f32` slices.
//!
//! On a CPU, attention written with tensor operations costs a couple of dozen small
//! operations per sequence and layer (narrow, transpose, copy, rotate, append to the cache,
//! two matrix products, a softmax, …), each allocating its result; while decoding, one token
//! per sequence, that bookkeeping costs more than the arithmetic. Here a layer's attention
//! over the whole batch is one pass: rotate the new queries and keys in place, append the
//! keys and values to each sequence's [`HostKv`], and compute every (sequence, query head)
//! pair as a work item on candle's CPU thread pool, so the threads that run the matrix
//! products run attention too.
//!
//! Each query's scores are summed over the keys in position order, whatever else is in the
//! batch and however its prompt was cut into chunks, so a sequence's output does not depend
//! on how it was batched.

use candle_core::utils::barrier_pool;

use super::config::RopeStyle;

/// The cache grows in steps of this many positions.
const GROW: usize = 256;

/// Below this many multiply-adds a layer's attention runs on the calling thread alone.
const PARALLEL_WORK: usize = 1 << 16;

/// The head layout of a layer: query heads, key/value heads, and the width of one head.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Heads {
    pub heads: usize,
    pub kv_heads: usize,
    pub dim: usize,
}

/// One sequence of a packed batch: its rows `offset..offset + len`, the first at position
/// `start`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    pub offset: usize,
    pub len: usize,
    pub start: usize,
}

/// One layer's keys and values for one sequence, head-major (`[kv_heads][capacity][dim]`) so
/// that a head's keys are contiguous for the dot products.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostKv {
    keys: Vec<f32>,
    values: Vec<f32>,
    len: usize,
    capacity: usize,
}

impl HostKv {
    /// Appends `rows` positions given token-major (`[rows][kv_heads * dim]`, as the key and
    /// value projections produce them).
    pub fn append(&mut self, keys: &[f32], values: &[f32], rows: usize, shape: Heads) {
        let width = shape.kv_heads * shape.dim;
        debug_assert_eq!(keys.len(), rows * width);
        debug_assert_eq!(values.len(), rows * width);
        self.reserve(rows, shape);
        for head in 0..shape.kv_heads {
            for row in 0..rows {
                let from = row * width + head * shape.dim;
                let to = (head * self.capacity + self.len + row) * shape.dim;
                self.keys[to..to + shape.dim].copy_from_slice(&keys[from..from + shape.dim]);
                self.values[to..to + shape.dim].copy_from_slice(&values[from..from + shape.dim]);
            }
        }
        self.len += rows;
    }

    fn reserve(&mut self, rows: usize, shape: Heads) {
        if self.len + rows <= self.capacity {
            return;
        }
        let capacity = (self.len + rows).next_multiple_of(GROW);
        let (old_capacity, len) = (self.capacity, self.len);
        let grow = |old: &[f32]| {
            let mut new = vec![0f32; shape.kv_heads * capacity * shape.dim];
            for head in 0..shape.kv_heads {
                let from = head * old_capacity * shape.dim;
                let to = head * capacity * shape.dim;
                let n = len * shape.dim;
                new[to..to + n].copy_from_slice(&old[from..from + n]);
            }
            new
        };
        self.keys = grow(&self.keys);
        self.values = grow(&self.values);
        self.capacity = capacity;
    }

    /// The keys and values held for key/value head `head`, `[len][dim]` each.
    fn head(&self, head: usize, dim: usize) -> (&[f32], &[f32]) {
        let at = head * self.capacity * dim..(head * self.capacity + self.len) * dim;
        (&self.keys[at.clone()], &self.values[at])
    }
}

/// The cosine and sine tables of every row of a batch, `[rows][dim / 2]`.
pub(crate) struct RopeTables {
    cos: Vec<f32>,
    sin: Vec<f32>,
    half: usize,
}

impl RopeTables {
    /// Tables for the rows of `spans`, from a head's inverse frequencies.
    pub fn new(inv_freq: &[f32], spans: &[Span]) -> Self {
        let rows: usize = spans.iter().map(|s| s.len).sum();
        let half = inv_freq.len();
        let mut cos = Vec::with_capacity(rows * half);
        let mut sin = Vec::with_capacity(rows * half);
        for span in spans {
            for pos in span.start..span.start + span.len {
                for &f in inv_freq {
                    let (s, c) = (pos as f32 * f).sin_cos();
                    cos.push(c);
                    sin.push(s);
                }
            }
        }
        Self { cos, sin, half }
    }

    /// Rotates `xs`, `[rows][heads * dim]`, row `r` by the angles of row `r`.
    pub fn rotate(&self, xs: &mut [f32], heads: usize, style: RopeStyle) {
        let half = self.half;
        let dim = 2 * half;
        for (r, row) in xs.chunks_exact_mut(heads * dim).enumerate() {
            let cos = &self.cos[r * half..(r + 1) * half];
            let sin = &self.sin[r * half..(r + 1) * half];
            for head in row.chunks_exact_mut(dim) {
                match style {
                    RopeStyle::Interleaved => {
                        for (i, pair) in head.chunks_exact_mut(2).enumerate() {
                            let (a, b) = (pair[0], pair[1]);
                            pair[0] = a * cos[i] - b * sin[i];
                            pair[1] = a * sin[i] + b * cos[i];
                        }
                    }
                    RopeStyle::Halves => {
                        let (lo, hi) = head.split_at_mut(half);
                        for i in 0..half {
                            let (a, b) = (lo[i], hi[i]);
                            lo[i] = a * cos[i] - b * sin[i];
                            hi[i] = a * sin[i] + b * cos[i];
                        }
                    }
                }
            }
        }
    }
}

/// A pointer to the output that work items write disjoint parts of (use it whole, `{ out }.0`,
/// so that closures capture the `Sync` wrapper rather than the bare pointer).
#[derive(Clone, Copy)]
pub(crate) struct Out(pub *mut f32);
// SAFETY: every user of `Out` has each work item write only its own part of the output (in
// `attend`, the rows of its sequence at the columns of its head; in the quantized products,
// the rows of its tile at the columns of its group), which no other item writes, and
// `run_items` returns only when every item is done.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

/// Runs `item` for each of `0..items`: on candle's thread pool when `parallel` (there is
/// enough work to share) and the pool has workers, otherwise on the calling thread.
pub(crate) fn run_items(items: usize, parallel: bool, item: impl Fn(usize) + Sync) {
    if parallel && barrier_pool().n_workers() > 0 {
        barrier_pool().execute_chunked(items, |range| range.for_each(&item));
    } else {
        (0..items).for_each(item);
    }
}

/// Causal attention of every sequence of a batch over its cache.
///
/// `queries` is `[rows][heads * dim]`, already rotated; sequence `i` owns rows
/// `spans[i].offset..` and its keys and values are `caches[i]`, whose last `spans[i].len`
/// positions are the sequence's own rows, so query `j` sees positions up to
/// `caches[i].len() - len + j`. Writes `[rows][heads * dim]` into `out`.
pub(crate) fn attend(
    queries: &[f32],
    spans: &[Span],
    caches: &[&HostKv],
    shape: Heads,
    out: &mut [f32],
) {
    let width = shape.heads * shape.dim;
    debug_assert_eq!(queries.len(), out.len());
    debug_assert_eq!(spans.len(), caches.len());
    let group = shape.heads / shape.kv_heads;
    let scale = 1.0 / (shape.dim as f32).sqrt();
    let out_ptr = Out(out.as_mut_ptr());
    let item = |i: usize| {
        let (seq, head) = (i / shape.heads, i % shape.heads);
        let span = spans[seq];
        let kv = caches[seq];
        let kv_head = head / group;
        let (keys, values) = kv.head(kv_head, shape.dim);
        let mut scores = vec![0f32; kv.len];
        let mut acc = vec![0f32; shape.dim];
        let past = kv.len - span.len;
        for j in 0..span.len {
            let row = span.offset + j;
            let q = &queries[row * width + head * shape.dim..][..shape.dim];
            let seen = past + j + 1;
            let mut max = f32::NEG_INFINITY;
            for (t, s) in scores[..seen].iter_mut().enumerate() {
                *s = dot(q, &keys[t * shape.dim..(t + 1) * shape.dim]) * scale;
                max = max.max(*s);
            }
            let mut sum = 0f32;
            for s in &mut scores[..seen] {
                *s = (*s - max).exp();
                sum += *s;
            }
            acc.fill(0.0);
            for (t, &p) in scores[..seen].iter().enumerate() {
                axpy(&mut acc, p, &values[t * shape.dim..(t + 1) * shape.dim]);
            }
            let inv = 1.0 / sum;
            // SAFETY: see `Out`; the row and head are this item's alone.
            let dst = unsafe {
                std::slice::from_raw_parts_mut(
                    { out_ptr }.0.add(row * width + head * shape.dim),
                    shape.dim,
                )
            };
            for (d, a) in dst.iter_mut().zip(&acc) {
                *d = a * inv;
            }
        }
    };
    let items = spans.len() * shape.heads;
    let work: usize = spans
        .iter()
        .zip(caches)
        .map(|(s, c)| s.len * c.len * shape.heads * shape.dim)
        .sum();
    run_items(items, work >= PARALLEL_WORK, item);
}

/// Values of an elementwise pass (such as the feed-forward gating) below which it runs on the
/// calling thread alone.
const PARALLEL_VALUES: usize = 4096;

/// Runs `f` on consecutive parts of `data` of `part` values (the last may be shorter), with
/// each part's offset, on candle's thread pool when `data` is long enough to be worth it.
/// Each value is computed the same way whichever thread computes it.
pub(crate) fn for_parts(data: &mut [f32], part: usize, f: impl Fn(&mut [f32], usize) + Sync) {
    let (n, part) = (data.len(), part.max(1));
    let base = Out(data.as_mut_ptr());
    let item = |i: usize| {
        let start = i * part;
        // SAFETY: the parts are disjoint and inside `data`, which outlives the pool's work.
        let values =
            unsafe { std::slice::from_raw_parts_mut({ base }.0.add(start), part.min(n - start)) };
        f(values, start);
    };
    run_items(n.div_ceil(part), n >= PARALLEL_VALUES, item);
}

/// `a · b`, in eight lanes so that it vectorises.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, a_rest) = a.split_at(a.len() / 8 * 8);
    let (b8, b_rest) = b.split_at(a8.len());
    for (x, y) in a8.chunks_exact(8).zip(b8.chunks_exact(8)) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    let mut sum = lanes.iter().sum::<f32>();
    for (x, y) in a_rest.iter().zip(b_rest) {
        sum += x * y;
    }
    sum
}

/// `y += a * x`.
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::numbers;

    /// The textbook computation: softmax(q kᵀ / √d + causal mask) v, head by head.
    fn reference(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        rows: usize,
        past: usize,
        shape: Heads,
    ) -> Vec<f32> {
        let kv_width = shape.kv_heads * shape.dim;
        let width = shape.heads * shape.dim;
        let mut out = vec![0f32; rows * width];
        for h in 0..shape.heads {
            let g = h / (shape.heads / shape.kv_heads);
            for j in 0..rows {
                let seen = past + j + 1;
                let scores: Vec<f64> = (0..seen)
                    .map(|t| {
                        (0..shape.dim)
                            .map(|d| {
                                q[j * width + h * shape.dim + d] as f64
                                    * k[t * kv_width + g * shape.dim + d] as f64
                            })
                            .sum::<f64>()
                            / (shape.dim as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f64 = exps.iter().sum();
                for d in 0..shape.dim {
                    out[j * width + h * shape.dim + d] = (0..seen)
                        .map(|t| exps[t] / sum * v[t * kv_width + g * shape.dim + d] as f64)
                        .sum::<f64>()
                        as f32;
                }
            }
        }
        out
    }

    #[test]
    fn attention_over_a_growing_cache_matches_the_textbook_formula() {
        let shape = Heads {
            heads: 6,
            kv_heads: 2,
            dim: 12,
        };
        let kv_width = shape.kv_heads * shape.dim;
        let width = shape.heads * shape.dim;
        // 300 positions: the cache grows past its first 256, fed as a 7-row chunk, a
        // 290-row chunk, then single rows.
        let total = 300;
        let keys = numbers(total * kv_width, 1);
        let values = numbers(total * kv_width, 2);
        let queries = numbers(total * width, 3);
        let mut kv = HostKv::default();
        let mut done = 0;
        for len in [7, 290, 1, 1, 1] {
            let rows = done..done + len;
            kv.append(
                &keys[rows.start * kv_width..rows.end * kv_width],
                &values[rows.start * kv_width..rows.end * kv_width],
                len,
                shape,
            );
            let mut out = vec![0f32; len * width];
            let span = Span {
                offset: 0,
                len,
                start: done,
            };
            attend(
                &queries[rows.start * width..rows.end * width],
                &[span],
                &[&kv],
                shape,
                &mut out,
            );
            let expected = reference(
                &queries[rows.start * width..rows.end * width],
                &keys[..rows.end * kv_width],
                &values[..rows.end * kv_width],
                len,
                done,
                shape,
            );
            let worst = out
                .iter()
                .zip(&expected)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-5, "chunk of {len} after {done}: off by {worst}");
            done += len;
        }
        assert_eq!(kv.len, total);
    }

    #[test]
    fn a_sequence_attends_only_to_its_own_cache() {
        let shape = Heads {
            heads: 2,
            kv_heads: 1,
            dim: 8,
        };
        let width = shape.heads * shape.dim;
        let mut a = HostKv::default();
        let mut b = HostKv::default();
        a.append(&numbers(5 * 8, 4), &numbers(5 * 8, 5), 5, shape);
        b.append(&numbers(3 * 8, 6), &numbers(3 * 8, 7), 3, shape);
        let q = numbers(2 * width, 8);
        let spans = [
            Span {
                offset: 0,
                len: 1,
                start: 4,
            },
            Span {
                offset: 1,
                len: 1,
                start: 2,
            },
        ];
        let mut together = vec![0f32; 2 * width];
        attend(&q, &spans, &[&a, &b], shape, &mut together);
        let mut alone = vec![0f32; width];
        attend(
            &q[width..],
            &[Span {
                offset: 0,
                len: 1,
                start: 2,
            }],
            &[&b],
            shape,
            &mut alone,
        );
        assert_eq!(&together[width..], &alone[..]);
    }

    #[test]
    fn rotation_styles_pair_the_right_coordinates() {
        let spans = [Span {
            offset: 0,
            len: 1,
            start: 1,
        }];
        // One frequency of 90 degrees per position: (x, y) -> (-y, x).
        let tables = RopeTables::new(&[std::f32::consts::FRAC_PI_2, 0.0], &spans);
        let mut interleaved = vec![1.0, 2.0, 3.0, 4.0];
        tables.rotate(&mut interleaved, 1, RopeStyle::Interleaved);
        let expect = [-2.0, 1.0, 3.0, 4.0];
        assert!(
            interleaved
                .iter()
                .zip(expect)
                .all(|(a, b)| (a - b).abs() < 1e-6)
        );
        let mut halves = vec![1.0, 2.0, 3.0, 4.0];
        tables.rotate(&mut halves, 1, RopeStyle::Halves);
        let expect = [-3.0, 2.0, 1.0, 4.0];
        assert!(
            halves.iter().zip(expect).all(|(a, b)| (a - b).abs() < 1e-6),
            "{halves:?}"
        );
    }
}
