//! Ranking metrics over graded relevance judgments.
//!
//! A query's judgments ([`Qrels`]) map document ids to grades: 0 is "judged not relevant",
//! 1 and up are relevance levels (higher is better). A ranking is the list of document ids a
//! system returned, best first. Every metric looks at the first `k` positions of the list as
//! given; a document id that repeats keeps its position but earns nothing the second time,
//! so repeating a good document cannot raise a score.
//!
//! The definitions follow trec_eval (`ndcg_cut`, `recall`, `recip_rank`), as pytrec_eval and
//! BEIR report them. A query without any relevant document scores 0 on every metric here;
//! such queries say nothing about ranking quality, so callers leave them out of averages
//! ([`has_relevant`]) and report them on their own.

use std::collections::{HashMap, HashSet};

/// Relevance grades of one query's judged documents: document id → grade.
pub type Qrels = HashMap<String, u32>;

/// Judgments of a whole eval set: query id → [`Qrels`].
pub type QrelsByQuery = HashMap<String, Qrels>;

/// The smallest grade that counts as relevant for [`recall_at`] and [`mrr_at`].
pub const MIN_RELEVANT_GRADE: u32 = 1;

/// Whether `qrels` holds at least one document with grade ≥ [`MIN_RELEVANT_GRADE`].
pub fn has_relevant(qrels: &Qrels) -> bool {
    qrels.values().any(|&g| g >= MIN_RELEVANT_GRADE)
}

/// Normalised discounted cumulative gain at `k`, with linear gain (trec_eval's `ndcg_cut`):
/// `DCG@k = Σ_{i=1..k} grade_i / log2(i + 1)`, divided by the DCG of the ideal ranking (all
/// judged documents sorted by grade, best first, cut at `k`). 0 when no document has a
/// grade above 0, or when `k` is 0.
pub fn ndcg_at<S: AsRef<str>>(ranked: &[S], qrels: &Qrels, k: usize) -> f64 {
    let dcg: f64 = first_hits(ranked, k)
        .map(|(rank, id)| f64::from(grade(qrels, id)) / discount(rank))
        .sum();
    let mut ideal: Vec<u32> = qrels.values().copied().filter(|&g| g > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, &g)| f64::from(g) / discount(i + 1))
        .sum();
    if idcg > 0.0 { dcg / idcg } else { 0.0 }
}

/// Recall at `k`: the share of the relevant documents (grade ≥ [`MIN_RELEVANT_GRADE`]) that
/// appear in the first `k` positions. 0 when there are no relevant documents.
pub fn recall_at<S: AsRef<str>>(ranked: &[S], qrels: &Qrels, k: usize) -> f64 {
    recall_at_grade(ranked, qrels, k, MIN_RELEVANT_GRADE)
}

/// [`recall_at`] with documents of grade ≥ `min_grade` counted as relevant (for instance 2
/// on a 0–3 scale where 1 means "related but does not answer"). A `min_grade` of 0 counts
/// as 1: a grade-0 document is never relevant.
pub fn recall_at_grade<S: AsRef<str>>(
    ranked: &[S],
    qrels: &Qrels,
    k: usize,
    min_grade: u32,
) -> f64 {
    let min_grade = min_grade.max(1);
    let relevant = qrels.values().filter(|&&g| g >= min_grade).count();
    if relevant == 0 {
        return 0.0;
    }
    let found = first_hits(ranked, k)
        .filter(|(_, id)| grade(qrels, id) >= min_grade)
        .count();
    found as f64 / relevant as f64
}

/// All evidence at `k`: 1 when every document of the highest grade judged for the query
/// (its evidence: for a multi-hop question, each page the answer needs) is among the first
/// `k`, else 0. 0 when no document has a grade above 0. Averaged over queries this is the
/// share of questions whose whole evidence was found.
pub fn all_evidence_at<S: AsRef<str>>(ranked: &[S], qrels: &Qrels, k: usize) -> f64 {
    let top = qrels.values().copied().max().unwrap_or(0);
    if top == 0 {
        return 0.0;
    }
    let found = first_hits(ranked, k)
        .filter(|(_, id)| grade(qrels, id) == top)
        .count();
    let needed = qrels.values().filter(|&&g| g == top).count();
    if found == needed { 1.0 } else { 0.0 }
}

/// Reciprocal rank at `k`: `1 / rank` of the first relevant document (grade ≥
/// [`MIN_RELEVANT_GRADE`]) within the first `k` positions (ranks start at 1), 0 if there is
/// none. Averaged over queries this is MRR@k.
pub fn mrr_at<S: AsRef<str>>(ranked: &[S], qrels: &Qrels, k: usize) -> f64 {
    mrr_at_grade(ranked, qrels, k, MIN_RELEVANT_GRADE)
}

/// [`mrr_at`] with documents of grade ≥ `min_grade` counted as relevant (0 counts as 1).
pub fn mrr_at_grade<S: AsRef<str>>(ranked: &[S], qrels: &Qrels, k: usize, min_grade: u32) -> f64 {
    let min_grade = min_grade.max(1);
    first_hits(ranked, k)
        .find(|(_, id)| grade(qrels, id) >= min_grade)
        .map_or(0.0, |(rank, _)| 1.0 / rank as f64)
}

/// The `p`-th percentile (`p` in 0..=100, clamped) of `values`, by linear interpolation
/// between the two nearest ranks (numpy's default): with the values sorted as
/// `v[0] ≤ … ≤ v[n-1]`, the position is `p / 100 · (n - 1)`. So p0 is the minimum, p100 the
/// maximum and p50 the median. NaN for an empty slice (and when `p` is NaN).
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() || p.is_nan() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let pos = p.clamp(0.0, 100.0) / 100.0 * (sorted.len() - 1) as f64;
    // `pos` lies in 0..=len-1, so both indexes are in bounds.
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The first `k` positions as `(rank, id)` with ranks from 1, skipping repeats of an id
/// already seen (a repeat keeps its position, so later documents do not move up).
fn first_hits<S: AsRef<str>>(ranked: &[S], k: usize) -> impl Iterator<Item = (usize, &str)> {
    let mut seen = HashSet::new();
    ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, id)| (i + 1, id.as_ref()))
        .filter(move |(_, id)| seen.insert(*id))
}

fn grade(qrels: &Qrels, id: &str) -> u32 {
    qrels.get(id).copied().unwrap_or(0)
}

/// The DCG discount of a 1-based rank: `log2(rank + 1)`.
fn discount(rank: usize) -> f64 {
    ((rank + 1) as f64).log2()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qrels(pairs: &[(&str, u32)]) -> Qrels {
        pairs.iter().map(|&(d, g)| (d.to_string(), g)).collect()
    }

    fn close(got: f64, want: f64) {
        assert!((got - want).abs() < 1e-9, "got {got}, want {want}");
    }

    #[test]
    fn all_evidence_needs_every_top_graded_document_within_k() {
        let q = qrels(&[("p1", 2), ("p7", 2), ("p2", 1)]);
        close(all_evidence_at(&["p7", "x", "p1"], &q, 10), 1.0);
        // One evidence page beyond k, or missing: not all of it.
        close(all_evidence_at(&["p7", "x", "p1"], &q, 2), 0.0);
        close(all_evidence_at(&["p1", "p2"], &q, 10), 0.0);
        // A repeated page counts once.
        close(all_evidence_at(&["p1", "p1"], &q, 10), 0.0);
        // Only grade 1 judged: those are the evidence.
        close(all_evidence_at(&["a"], &qrels(&[("a", 1)]), 10), 1.0);
        close(all_evidence_at(&["a"], &qrels(&[("a", 0)]), 10), 0.0);
    }

    #[test]
    fn ndcg_by_hand() {
        let q = qrels(&[("d1", 2), ("d2", 1)]);
        // DCG  = 0/log2(2) + 2/log2(3) + 1/log2(4) = 1.2618595071429148 + 0.5 = 1.7618595071429148
        // IDCG = 2/log2(2) + 1/log2(3)             = 2 + 0.6309297535714574    = 2.6309297535714574
        // nDCG = 1.7618595071429148 / 2.6309297535714574                       = 0.6696718164942300
        close(ndcg_at(&["d3", "d1", "d2"], &q, 10), 0.66967181649423);
        // Cut at 2: DCG = 2/log2(3) = 1.2618595071429148; IDCG@2 is still 2.6309297535714574.
        close(ndcg_at(&["d3", "d1", "d2"], &q, 2), 0.4796249331362629);
        // The ideal order scores 1, whatever k.
        close(ndcg_at(&["d1", "d2", "d3"], &q, 10), 1.0);
        close(ndcg_at(&["d1", "d2"], &q, 1), 1.0);
    }

    #[test]
    fn ideal_dcg_counts_relevant_documents_the_ranking_missed() {
        // Three relevant documents, only one retrieved, at rank 1:
        // DCG = 1, IDCG@10 = 1 + 1/log2(3) + 1/log2(4) = 1 + 0.6309297535714574 + 0.5
        let q = qrels(&[("a", 1), ("b", 1), ("c", 1), ("x", 0)]);
        close(ndcg_at(&["a", "x"], &q, 10), 1.0 / 2.1309297535714574);
    }

    #[test]
    fn recall_by_hand() {
        let q = qrels(&[("d1", 2), ("d2", 1), ("d4", 0)]);
        let ranked = ["d3", "d1", "d4", "d2"];
        close(recall_at(&ranked, &q, 1), 0.0);
        close(recall_at(&ranked, &q, 2), 0.5); // d1 of {d1, d2}
        close(recall_at(&ranked, &q, 4), 1.0);
        // Only grade 2 counts: d1 is the one relevant document.
        close(recall_at_grade(&ranked, &q, 2, 2), 1.0);
        close(recall_at_grade(&["d2"], &q, 10, 2), 0.0);
    }

    #[test]
    fn mrr_by_hand() {
        let q = qrels(&[("d1", 2), ("d2", 1), ("d4", 0)]);
        close(mrr_at(&["d4", "d3", "d2", "d1"], &q, 10), 1.0 / 3.0);
        close(mrr_at(&["d4", "d3", "d2", "d1"], &q, 2), 0.0);
        close(mrr_at(&["d1"], &q, 10), 1.0);
        // With grade 2 required, d2 (rank 3) does not count; d1 at rank 4 does.
        close(mrr_at_grade(&["d4", "d3", "d2", "d1"], &q, 10, 2), 0.25);
    }

    #[test]
    fn empty_ranking_and_k_zero_score_zero() {
        let q = qrels(&[("d1", 1)]);
        let empty: [&str; 0] = [];
        close(ndcg_at(&empty, &q, 10), 0.0);
        close(recall_at(&empty, &q, 10), 0.0);
        close(mrr_at(&empty, &q, 10), 0.0);
        close(ndcg_at(&["d1"], &q, 0), 0.0);
        close(recall_at(&["d1"], &q, 0), 0.0);
        close(mrr_at(&["d1"], &q, 0), 0.0);
    }

    #[test]
    fn k_beyond_the_list_uses_the_whole_list() {
        let q = qrels(&[("d1", 1), ("d2", 1)]);
        close(recall_at(&["x", "d2"], &q, 1000), 0.5);
        close(mrr_at(&["x", "d2"], &q, 1000), 0.5);
        // DCG = 1/log2(3); IDCG = 1 + 1/log2(3) = 1.6309297535714574
        close(
            ndcg_at(&["x", "d2"], &q, 1000),
            0.6309297535714574 / 1.6309297535714574,
        );
    }

    #[test]
    fn a_repeated_document_counts_once_and_keeps_its_slot() {
        let q = qrels(&[("d1", 2), ("d2", 1)]);
        // [d1, d1, d2]: DCG = 2/log2(2) + 0 + 1/log2(4) = 2.5; IDCG = 2.6309297535714574
        close(ndcg_at(&["d1", "d1", "d2"], &q, 10), 0.9502344167898356);
        close(recall_at(&["d1", "d1", "d1"], &q, 10), 0.5);
        // The repeat occupies rank 2, so d2 does not move into the top 2.
        close(recall_at(&["d1", "d1", "d2"], &q, 2), 0.5);
    }

    #[test]
    fn no_relevant_document_scores_zero() {
        for q in [qrels(&[]), qrels(&[("d1", 0), ("d2", 0)])] {
            assert!(!has_relevant(&q));
            close(ndcg_at(&["d1", "d2"], &q, 10), 0.0);
            close(recall_at(&["d1", "d2"], &q, 10), 0.0);
            close(mrr_at(&["d1", "d2"], &q, 10), 0.0);
        }
        assert!(has_relevant(&qrels(&[("d1", 0), ("d2", 3)])));
    }

    #[test]
    fn percentile_interpolates_between_ranks() {
        let v = [40.0, 10.0, 30.0, 20.0]; // sorted: 10 20 30 40
        close(percentile(&v, 0.0), 10.0);
        close(percentile(&v, 100.0), 40.0);
        close(percentile(&v, 50.0), 25.0); // position 1.5: halfway between 20 and 30
        close(percentile(&v, 95.0), 38.5); // position 2.85: 30 + 0.85 * 10
        close(percentile(&v, 150.0), 40.0); // clamped
        close(percentile(&[7.0], 95.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
    }
}
