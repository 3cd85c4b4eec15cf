//! `cairn-rerank`: the reranking policy. The fused candidates of a search are scored by a
//! [`Reranker`] (a cross-encoder or an LLM reading query and passage together, or the
//! [`SentenceReranker`] that finds each passage's sentence closest to the query) in one
//! call, re-sorted by that score (optionally added to the fused score), cut at a minimum
//! score, optionally diversified with maximal marginal relevance, and cut to `top_k`.
//! Loading and running the models is `cairn-infer`'s business; this crate only decides what
//! to do with their scores.
//!
//! ```no_run
//! # async fn demo(reranker: &dyn cairn_core::Reranker, hits: Vec<cairn_core::Hit>) -> cairn_core::Result<()> {
//! use cairn_rerank::{Policy, rerank};
//! let policy = Policy { min_score: Some(0.1), ..Policy::default() };
//! // The query's vector, when the search embedded it, spares a second embedding.
//! let best = rerank(reranker, "how do I rotate the VPN key?", None, hits, 5, &policy).await?;
//! # Ok(()) }
//! ```

use cairn_core::{Hit, Reranker, Result, RetrieverScore};
use std::collections::HashSet;
use unicode_segmentation::UnicodeSegmentation;

mod sentences;

pub use sentences::SentenceReranker;

/// What to do with the reranker's scores.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    /// Drop hits scoring below this.
    pub min_score: Option<f32>,
    /// Maximal marginal relevance: each next hit maximises
    /// `λ · relevance − (1 − λ) · max similarity to the hits already picked`, with relevance
    /// min-max normalised over the candidates and similarity the Jaccard overlap of their
    /// words. 1.0 (or `None`) is pure relevance order.
    pub mmr_lambda: Option<f32>,
    /// Order by `reranker score + fused_weight · fused score` rather than by the reranker's
    /// score alone: the fused ranking stays a signal. 0 (the default) is the reranker alone.
    pub fused_weight: f32,
}

/// Scores `hits` with `reranker` in one call and returns the best `top_k` under `policy`.
/// Each returned hit's `score` is the reranker's and `rerank` holds it with its rank among
/// the candidates; the retrievers' own ranks are kept. Ties keep the fused order.
pub async fn rerank(
    reranker: &dyn Reranker,
    query: &str,
    query_vector: Option<&[f32]>,
    hits: Vec<Hit>,
    top_k: usize,
    policy: &Policy,
) -> Result<Vec<Hit>> {
    if hits.is_empty() {
        return Ok(hits);
    }
    let scores = reranker.score_hits(query, query_vector, &hits).await?;
    if scores.len() != hits.len() {
        return Err(cairn_core::Error::internal(format!(
            "the reranker {} returned {} scores for {} passages",
            reranker.model_id(),
            scores.len(),
            hits.len()
        )));
    }
    Ok(apply(hits, &scores, top_k, policy))
}

/// The policy over given scores (one per hit, in order; each hit's `score` is its fused
/// one). A returned hit's `rerank` holds the reranker's own score and its rank in the new
/// order; its `score` is what it was ordered by (the reranker's score, plus the weighted
/// fused score under [`Policy::fused_weight`]). `min_score` applies to the reranker's score.
pub fn apply(hits: Vec<Hit>, scores: &[f32], top_k: usize, policy: &Policy) -> Vec<Hit> {
    let mut scored: Vec<(Hit, f32)> = hits
        .into_iter()
        .zip(scores.iter().copied())
        .filter(|(_, s)| policy.min_score.is_none_or(|min| *s >= min))
        .map(|(mut hit, s)| {
            let key = s + policy.fused_weight * hit.score;
            hit.rerank = Some(RetrieverScore { rank: 0, score: s });
            hit.score = key;
            (hit, key)
        })
        .collect();
    // A NaN score (a broken model) sorts last rather than poisoning the order.
    let key = |s: f32| if s.is_nan() { f32::NEG_INFINITY } else { s };
    scored.sort_by(|a, b| key(b.1).total_cmp(&key(a.1)));
    for (rank, (hit, _)) in scored.iter_mut().enumerate() {
        if let Some(r) = hit.rerank.as_mut() {
            r.rank = rank + 1;
        }
    }
    match policy.mmr_lambda {
        Some(lambda) if lambda < 1.0 && scored.len() > 1 => mmr(scored, top_k, lambda),
        _ => scored.into_iter().map(|(h, _)| h).take(top_k).collect(),
    }
}

/// Greedy maximal marginal relevance over candidates sorted by score.
fn mmr(scored: Vec<(Hit, f32)>, top_k: usize, lambda: f32) -> Vec<Hit> {
    let (lo, hi) = scored
        .iter()
        .map(|(_, s)| *s)
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), s| {
            (lo.min(s), hi.max(s))
        });
    let span = if hi > lo { hi - lo } else { 1.0 };
    let words: Vec<HashSet<String>> = scored.iter().map(|(h, _)| word_set(&h.text)).collect();
    let mut left: Vec<usize> = (0..scored.len()).collect();
    let mut order = Vec::with_capacity(top_k.min(scored.len()));
    while order.len() < top_k && !left.is_empty() {
        let value = |i: usize| {
            let relevance = (scored[i].1 - lo) / span;
            let similarity = order
                .iter()
                .map(|&j: &usize| jaccard(&words[i], &words[j]))
                .fold(0.0, f32::max);
            lambda * relevance - (1.0 - lambda) * similarity
        };
        // `left` is in score order, so ties go to the better-scored hit.
        let (pos, _) = left
            .iter()
            .enumerate()
            .map(|(pos, &i)| (pos, value(i)))
            .fold((0, f32::NEG_INFINITY), |best, cur| {
                if cur.1 > best.1 { cur } else { best }
            });
        order.push(left.remove(pos));
    }
    let mut slots: Vec<Option<Hit>> = scored.into_iter().map(|(h, _)| Some(h)).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

fn word_set(text: &str) -> HashSet<String> {
    text.unicode_words().map(str::to_lowercase).collect()
}

fn jaccard(a: &HashSet<String>, b: &HashSet<String>) -> f32 {
    let union = a.union(b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f32 / union as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::{BM25, ChunkId, DocId, Span};

    fn hit(id: i64, text: &str) -> Hit {
        Hit {
            chunk_id: ChunkId(id),
            doc_id: DocId(format!("d{id}")),
            title: format!("doc {id}"),
            source: format!("{id}.md"),
            page: 1,
            span: Span::new(0, text.len()),
            heading_path: vec!["Guide".into()],
            text: text.into(),
            score: 1.0 / (id as f32 + 1.0),
            retrievers: [(
                BM25.to_string(),
                RetrieverScore {
                    rank: id as usize + 1,
                    score: 1.0,
                },
            )]
            .into(),
            rerank: None,
            community: None,
        }
    }

    fn ids(hits: &[Hit]) -> Vec<i64> {
        hits.iter().map(|h| h.chunk_id.0).collect()
    }

    /// Scores a passage by how many of the query's words it holds: a transparent stand-in
    /// for a model, so the policy's arithmetic can be checked exactly.
    struct Overlap;
    #[async_trait::async_trait]
    impl Reranker for Overlap {
        fn model_id(&self) -> &str {
            "overlap"
        }
        async fn score(&self, query: &str, passages: Vec<String>) -> Result<Vec<f32>> {
            let q = word_set(query);
            Ok(passages
                .iter()
                .map(|p| word_set(p).intersection(&q).count() as f32)
                .collect())
        }
    }

    #[tokio::test]
    async fn reranked_order_follows_the_scores_and_keeps_retriever_ranks() {
        let hits = vec![
            hit(0, "general notes"),
            hit(1, "rotate the vpn key monthly"),
            hit(2, "vpn setup"),
        ];
        let out = rerank(
            &Overlap,
            "rotate vpn key",
            None,
            hits,
            10,
            &Policy::default(),
        )
        .await
        .unwrap();
        assert_eq!(ids(&out), [1, 2, 0]);
        assert_eq!(out[0].score, 3.0);
        assert_eq!(
            out[0].rerank,
            Some(RetrieverScore {
                rank: 1,
                score: 3.0
            })
        );
        // the fused ranks are still there to explain the move
        assert_eq!(out[0].retriever(BM25).unwrap().rank, 2);
    }

    #[test]
    fn cut_off_top_k_and_ties() {
        let hits = vec![hit(0, "a"), hit(1, "b"), hit(2, "c"), hit(3, "d")];
        let policy = Policy {
            min_score: Some(0.5),
            ..Policy::default()
        };
        let out = apply(hits.clone(), &[0.2, 0.9, 0.9, 0.6], 10, &policy);
        // ties keep the fused order; 0.2 is under the cut-off
        assert_eq!(ids(&out), [1, 2, 3]);
        let out = apply(hits.clone(), &[0.2, 0.9, 0.9, 0.6], 2, &Policy::default());
        assert_eq!(ids(&out), [1, 2]);
        // a NaN score sorts last
        let out = apply(hits, &[f32::NAN, 0.1, 0.3, 0.2], 4, &Policy::default());
        assert_eq!(ids(&out), [2, 3, 1, 0]);
    }

    #[test]
    fn a_fused_weight_adds_the_fused_score_to_the_rerankers() {
        // fused scores 1/1, 1/2, 1/3, 1/4 (see `hit`)
        let hits = vec![hit(0, "a"), hit(1, "b"), hit(2, "c"), hit(3, "d")];
        let scores = [0.1, 0.5, 0.45, 0.0];
        assert_eq!(
            ids(&apply(hits.clone(), &scores, 4, &Policy::default())),
            [1, 2, 0, 3]
        );
        let blended = Policy {
            fused_weight: 0.5,
            ..Policy::default()
        };
        // 0.1 + 0.5, 0.5 + 0.25, 0.45 + 0.1667, 0 + 0.125
        let out = apply(hits, &scores, 4, &blended);
        assert_eq!(ids(&out), [1, 2, 0, 3]);
        assert!((out[0].score - 0.75).abs() < 1e-6);
        assert_eq!(
            out[0].rerank,
            Some(RetrieverScore {
                rank: 1,
                score: 0.5
            })
        );
        let heavier = Policy {
            fused_weight: 2.0,
            min_score: Some(0.05),
            ..Policy::default()
        };
        // 0.1 + 2, 0.5 + 1, 0.45 + 0.667; hit 3's own score is under the cut-off
        let out = apply(
            vec![hit(0, "a"), hit(1, "b"), hit(2, "c"), hit(3, "d")],
            &scores,
            4,
            &heavier,
        );
        assert_eq!(ids(&out), [0, 1, 2]);
        assert_eq!(out[2].rerank.unwrap().rank, 3);
    }

    #[test]
    fn mmr_skips_near_duplicates() {
        let hits = vec![
            hit(0, "install the package with apt get install"),
            hit(1, "install the package with apt get install now"),
            hit(2, "configure the firewall rules"),
        ];
        let scores = [1.0, 0.95, 0.6];
        let plain = apply(hits.clone(), &scores, 2, &Policy::default());
        assert_eq!(ids(&plain), [0, 1]);
        // λ = 0.3: after hit 0, hit 1 is worth 0.3 · 0.875 − 0.7 · 6/7 = −0.3375 (its words
        // are nearly hit 0's) and hit 2 is worth 0.3 · 0 − 0.7 · 1/9 = −0.078
        let diverse = Policy {
            mmr_lambda: Some(0.3),
            ..Policy::default()
        };
        let out = apply(hits.clone(), &scores, 2, &diverse);
        assert_eq!(ids(&out), [0, 2]);
        // lambda 1.0 is relevance order
        let pure = Policy {
            mmr_lambda: Some(1.0),
            ..Policy::default()
        };
        assert_eq!(ids(&apply(hits, &scores, 3, &pure)), [0, 1, 2]);
    }

    #[tokio::test]
    async fn a_reranker_returning_the_wrong_count_is_an_error() {
        struct Short;
        #[async_trait::async_trait]
        impl Reranker for Short {
            fn model_id(&self) -> &str {
                "short"
            }
            async fn score(&self, _: &str, _: Vec<String>) -> Result<Vec<f32>> {
                Ok(vec![1.0])
            }
        }
        let err = rerank(
            &Short,
            "q",
            None,
            vec![hit(0, "a"), hit(1, "b")],
            5,
            &Policy::default(),
        )
        .await
        .unwrap_err();
        assert!(
            err.message.contains("1 scores for 2 passages"),
            "{}",
            err.message
        );
    }
}
