//! Fusion: merging the ranked lists of several retrievers into one.
//!
//! Reciprocal rank fusion (the default) uses only ranks, so it needs no score calibration
//! between BM25 (unbounded) and cosine similarity (in [-1, 1]): each list contributes
//! `1 / (k + rank)`. Weighted fusion min-max normalises each list's scores to [0, 1] and
//! adds them with weights; it rewards a retriever that is very sure, at the price of being
//! sensitive to outliers.

use cairn_core::{Candidate, ChunkId};
use std::collections::HashMap;

/// Per input list, the (1-based rank, score) of a chunk there, if present.
pub type Sources = Vec<Option<(usize, f32)>>;

/// A fused candidate: its fused score and where it stood in each input list.
#[derive(Debug, Clone, PartialEq)]
pub struct Fused {
    pub chunk_id: ChunkId,
    pub score: f32,
    /// For each input list, the 1-based rank and score of this chunk there, if present.
    pub sources: Sources,
}

fn collect(lists: &[&[Candidate]]) -> (Vec<ChunkId>, HashMap<ChunkId, Sources>) {
    let mut order = Vec::new();
    let mut seen: HashMap<ChunkId, Sources> = HashMap::new();
    for (li, list) in lists.iter().enumerate() {
        for (i, c) in list.iter().enumerate() {
            let entry = seen.entry(c.chunk_id).or_insert_with(|| {
                order.push(c.chunk_id);
                vec![None; lists.len()]
            });
            // A retriever lists a chunk once; if it repeats one, its best rank counts.
            if entry[li].is_none() {
                entry[li] = Some((i + 1, c.score));
            }
        }
    }
    (order, seen)
}

fn finish(
    order: Vec<ChunkId>,
    mut seen: HashMap<ChunkId, Sources>,
    score: impl Fn(&[Option<(usize, f32)>]) -> f32,
) -> Vec<Fused> {
    let mut out: Vec<Fused> = order
        .into_iter()
        .filter_map(|id| {
            seen.remove(&id).map(|sources| Fused {
                chunk_id: id,
                score: score(&sources),
                sources,
            })
        })
        .collect();
    let best_rank = |f: &Fused| {
        f.sources
            .iter()
            .flatten()
            .map(|s| s.0)
            .min()
            .unwrap_or(usize::MAX)
    };
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| best_rank(a).cmp(&best_rank(b)))
            .then_with(|| a.chunk_id.cmp(&b.chunk_id))
    });
    out
}

/// Reciprocal rank fusion: `score = Σ 1 / (k + rank)` over the lists that hold the chunk.
pub fn rrf(lists: &[&[Candidate]], k: f32) -> Vec<Fused> {
    rrf_weighted(lists, k, &vec![1.0; lists.len()])
}

/// Weighted reciprocal rank fusion: `score = Σ weights[i] / (k + rank_i)`; equal weights of
/// 1 are plain [`rrf`]. A list with weight 0 still lends its ranks to
/// [`Fused::sources`] but moves nothing.
pub fn rrf_weighted(lists: &[&[Candidate]], k: f32, weights: &[f32]) -> Vec<Fused> {
    let (order, seen) = collect(lists);
    finish(order, seen, |sources| {
        sources
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let (rank, _) = (*s)?;
                Some(weights.get(i).copied().unwrap_or(0.0) / (k + rank as f32))
            })
            .sum()
    })
}

/// Weighted fusion of min-max normalised scores; `weights[i]` goes with `lists[i]`.
/// A list whose scores are all equal contributes its full weight to each of its chunks.
pub fn weighted(lists: &[&[Candidate]], weights: &[f32]) -> Vec<Fused> {
    let ranges: Vec<(f32, f32)> = lists
        .iter()
        .map(|l| {
            l.iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), c| {
                    (lo.min(c.score), hi.max(c.score))
                })
        })
        .collect();
    let (order, seen) = collect(lists);
    finish(order, seen, |sources| {
        sources
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let (_, score) = (*s)?;
                let (lo, hi) = ranges[i];
                let norm = if hi > lo {
                    (score - lo) / (hi - lo)
                } else {
                    1.0
                };
                Some(weights.get(i).copied().unwrap_or(0.0) * norm)
            })
            .sum()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: i64, score: f32) -> Candidate {
        Candidate {
            chunk_id: ChunkId(id),
            score,
        }
    }

    #[test]
    fn weighted_rrf_scales_each_list() {
        let bm25 = [c(1, 9.0), c(2, 5.0)];
        let dense = [c(2, 0.9), c(1, 0.8)];
        let plain = rrf(&[&bm25, &dense], 60.0);
        let even = rrf_weighted(&[&bm25, &dense], 60.0, &[1.0, 1.0]);
        assert_eq!(plain, even);
        // BM25 counted 1.6x, dense 0.4x: chunk 1 (bm25 #1, dense #2) wins.
        let fused = rrf_weighted(&[&bm25, &dense], 60.0, &[1.6, 0.4]);
        assert_eq!(fused[0].chunk_id, ChunkId(1));
        let want = 1.6 / 61.0 + 0.4 / 62.0;
        assert!((fused[0].score - want).abs() < 1e-7, "{}", fused[0].score);
        // Dense only: its order, with bm25's ranks still recorded.
        let fused = rrf_weighted(&[&bm25, &dense], 60.0, &[0.0, 2.0]);
        assert_eq!(fused[0].chunk_id, ChunkId(2));
        assert_eq!(fused[0].sources[0], Some((2, 5.0)));
    }

    #[test]
    fn rrf_matches_hand_computed_scores() {
        let bm25 = [c(1, 9.0), c(2, 5.0), c(3, 1.0)];
        let dense = [c(3, 0.9), c(1, 0.8)];
        let fused = rrf(&[&bm25, &dense], 60.0);
        let ids: Vec<i64> = fused.iter().map(|f| f.chunk_id.0).collect();
        // 1: 1/61 + 1/62; 3: 1/63 + 1/61; 2: 1/62
        assert_eq!(ids, vec![1, 3, 2]);
        assert!((fused[0].score - (1.0 / 61.0 + 1.0 / 62.0)).abs() < 1e-6);
        assert!((fused[1].score - (1.0 / 63.0 + 1.0 / 61.0)).abs() < 1e-6);
        assert!((fused[2].score - 1.0 / 62.0).abs() < 1e-6);
        assert_eq!(fused[1].sources, vec![Some((3, 1.0)), Some((1, 0.9))]);
        assert_eq!(fused[2].sources, vec![Some((2, 5.0)), None]);
    }

    #[test]
    fn rrf_breaks_ties_by_best_rank_then_id() {
        let a = [c(7, 1.0), c(8, 0.5)];
        let b = [c(8, 1.0), c(7, 0.5)];
        let fused = rrf(&[&a, &b], 60.0);
        assert_eq!(fused[0].score, fused[1].score);
        assert_eq!(fused[0].chunk_id, ChunkId(7));
    }

    #[test]
    fn weighted_normalises_each_list() {
        let bm25 = [c(1, 10.0), c(2, 0.0)];
        let dense = [c(2, 0.9), c(1, 0.5)];
        let fused = weighted(&[&bm25, &dense], &[0.3, 0.7]);
        // 1: 0.3 * 1 + 0.7 * 0 = 0.3; 2: 0.3 * 0 + 0.7 * 1 = 0.7
        assert_eq!(fused[0].chunk_id, ChunkId(2));
        assert!((fused[0].score - 0.7).abs() < 1e-6);
        assert!((fused[1].score - 0.3).abs() < 1e-6);
    }

    #[test]
    fn single_list_keeps_its_order_and_empty_lists_are_fine() {
        let only = [c(5, 3.0), c(4, 2.0), c(9, 1.0)];
        let fused = rrf(&[&only, &[]], 60.0);
        assert_eq!(
            fused.iter().map(|f| f.chunk_id.0).collect::<Vec<_>>(),
            vec![5, 4, 9]
        );
        assert!(rrf(&[&[], &[]], 60.0).is_empty());
        let w = weighted(&[&[c(1, 2.0)], &[]], &[0.5, 0.5]);
        assert_eq!(w.len(), 1);
        assert!((w[0].score - 0.5).abs() < 1e-6);
    }

    #[test]
    fn fusion_is_a_permutation_of_the_union() {
        // Deterministic pseudo-random lists: every chunk of the union appears exactly once.
        let mut x: u64 = 0x9E3779B97F4A7C15;
        for _ in 0..200 {
            let mut next = || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            let la: Vec<Candidate> = (0..(next() % 20))
                .map(|i| c((next() % 30) as i64, 20.0 - i as f32))
                .collect();
            let lb: Vec<Candidate> = (0..(next() % 20))
                .map(|i| c((next() % 30) as i64, 1.0 - i as f32 / 20.0))
                .collect();
            let mut union: Vec<i64> = la.iter().chain(lb.iter()).map(|c| c.chunk_id.0).collect();
            union.sort();
            union.dedup();
            for fused in [rrf(&[&la, &lb], 60.0), weighted(&[&la, &lb], &[0.5, 0.5])] {
                let mut ids: Vec<i64> = fused.iter().map(|f| f.chunk_id.0).collect();
                assert!(fused.windows(2).all(|w| w[0].score >= w[1].score));
                ids.sort();
                assert_eq!(ids, union);
            }
        }
    }
}
