//! One row of results per search mode: quality averaged over the judged queries, latency
//! over all of them, and the plain-text table that shows the rows side by side.

use crate::metrics::{self, QrelsByQuery};
use serde::Serialize;

/// One query's result: its id, the ranked document ids (best first) and how long the
/// search took, in milliseconds.
pub type QueryRun = (String, Vec<String>, f64);

/// The results of one search mode over an eval set.
///
/// Quality metrics are means over the `queries` runs whose query has at least one relevant
/// judged document; they are NaN (`null` in JSON) when there is none. Latencies are
/// percentiles over every run, judged or not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModeReport {
    pub mode: String,
    /// How many queries the quality metrics average over.
    pub queries: usize,
    pub ndcg10: f64,
    pub recall10: f64,
    pub recall100: f64,
    pub mrr10: f64,
    /// The share of queries whose every top-graded document is in the first 10
    /// ([`metrics::all_evidence_at`]).
    pub all_evidence10: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
}

/// Scores the runs of one mode against `qrels`. A run whose query has no relevant document
/// (no entry in `qrels`, or only grade 0) counts toward latency only; see
/// [`metrics::has_relevant`].
pub fn evaluate(mode: &str, runs: &[QueryRun], qrels: &QrelsByQuery) -> ModeReport {
    let mut sums = [0.0; 5];
    let mut judged = 0;
    for (qid, ranked, _) in runs {
        let Some(q) = qrels.get(qid).filter(|q| metrics::has_relevant(q)) else {
            continue;
        };
        judged += 1;
        sums[0] += metrics::ndcg_at(ranked, q, 10);
        sums[1] += metrics::recall_at(ranked, q, 10);
        sums[2] += metrics::recall_at(ranked, q, 100);
        sums[3] += metrics::mrr_at(ranked, q, 10);
        sums[4] += metrics::all_evidence_at(ranked, q, 10);
    }
    // 0 / 0 is NaN: no judged query, no quality figure.
    let [ndcg10, recall10, recall100, mrr10, all_evidence10] = sums.map(|s| s / judged as f64);
    let latencies: Vec<f64> = runs.iter().map(|r| r.2).collect();
    ModeReport {
        mode: mode.to_string(),
        queries: judged,
        ndcg10,
        recall10,
        recall100,
        mrr10,
        all_evidence10,
        p50_ms: metrics::percentile(&latencies, 50.0),
        p95_ms: metrics::percentile(&latencies, 95.0),
    }
}

/// The reports as an aligned text table, one row per report: the mode left-aligned, numbers
/// right-aligned, metrics with 3 decimals, latencies with 1, `-` for a missing (NaN) value.
///
/// ```text
/// mode    queries  nDCG@10   R@10  R@100  MRR@10  AllEv@10  p50 ms  p95 ms
/// ------  -------  -------  -----  -----  ------  --------  ------  ------
/// hybrid       50    0.612  0.700  0.940   0.583     0.520    14.2    31.0
/// ```
pub fn render_table(reports: &[ModeReport]) -> String {
    const HEADER: [&str; 9] = [
        "mode", "queries", "nDCG@10", "R@10", "R@100", "MRR@10", "AllEv@10", "p50 ms", "p95 ms",
    ];
    let rows: Vec<[String; 9]> = reports
        .iter()
        .map(|r| {
            [
                r.mode.clone(),
                r.queries.to_string(),
                fixed(r.ndcg10, 3),
                fixed(r.recall10, 3),
                fixed(r.recall100, 3),
                fixed(r.mrr10, 3),
                fixed(r.all_evidence10, 3),
                fixed(r.p50_ms, 1),
                fixed(r.p95_ms, 1),
            ]
        })
        .collect();
    let widths: [usize; 9] = std::array::from_fn(|c| {
        rows.iter()
            .map(|row| row[c].chars().count())
            .chain([HEADER[c].len()])
            .max()
            .unwrap_or(0)
    });
    let rule = widths.map(|w| "-".repeat(w));
    let mut out = String::new();
    for cells in [HEADER.map(String::from), rule].iter().chain(&rows) {
        // The first column is text, left-aligned; the others are numbers.
        let line: Vec<String> = cells
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(c, (cell, w))| match c {
                0 => format!("{cell:<w$}"),
                _ => format!("{cell:>w$}"),
            })
            .collect();
        out.push_str(&line.join("  "));
        out.push('\n');
    }
    out
}

fn fixed(value: f64, decimals: usize) -> String {
    if value.is_nan() {
        "-".to_string()
    } else {
        format!("{value:.decimals$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(qid: &str, ranked: &[&str], ms: f64) -> QueryRun {
        (
            qid.into(),
            ranked.iter().map(|s| s.to_string()).collect(),
            ms,
        )
    }

    fn qrels() -> QrelsByQuery {
        [
            ("q1", vec![("d1", 1)]),
            ("q2", vec![("d2", 1), ("d3", 1)]),
            ("q3", vec![("d9", 0)]),
        ]
        .into_iter()
        .map(|(q, judged)| {
            let judged = judged.into_iter().map(|(d, g)| (d.to_string(), g));
            (q.to_string(), judged.collect())
        })
        .collect()
    }

    fn close(got: f64, want: f64) {
        assert!((got - want).abs() < 1e-9, "got {got}, want {want}");
    }

    #[test]
    fn evaluate_by_hand() {
        let runs = [
            // q1: d1 at rank 1 → nDCG 1, R@10 1, MRR 1.
            run("q1", &["d1", "x"], 10.0),
            // q2: d2 at rank 2, d3 at rank 11 (beyond 10, within 100).
            //   DCG@10 = 1/log2(3) = 0.6309297535714574; IDCG@10 = 1 + 0.6309297535714574
            //   nDCG@10 = 0.38685280723454163; R@10 = 1/2; R@100 = 1; MRR@10 = 1/2
            run(
                "q2",
                &["x", "d2", "a", "b", "c", "e", "f", "g", "h", "i", "d3"],
                20.0,
            ),
            // q3 (only grade 0) and q4 (not judged) count for latency only.
            run("q3", &["d9"], 30.0),
            run("q4", &[], 40.0),
        ];
        let r = evaluate("bm25", &runs, &qrels());
        assert_eq!(r.mode, "bm25");
        assert_eq!(r.queries, 2);
        close(r.ndcg10, (1.0 + 0.38685280723454163) / 2.0);
        close(r.recall10, 0.75);
        close(r.recall100, 1.0);
        close(r.mrr10, 0.75);
        // q1's one document is in the top 10; q2's d3 is not.
        close(r.all_evidence10, 0.5);
        // Latencies 10, 20, 30, 40: p50 at position 1.5 → 25; p95 at 2.85 → 38.5.
        close(r.p50_ms, 25.0);
        close(r.p95_ms, 38.5);
    }

    #[test]
    fn no_judged_query_gives_missing_figures() {
        let r = evaluate("dense", &[run("q3", &["d9"], 5.0)], &qrels());
        assert_eq!(r.queries, 0);
        assert!(r.ndcg10.is_nan() && r.mrr10.is_nan());
        close(r.p50_ms, 5.0);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["ndcg10"], serde_json::Value::Null);
        assert_eq!(json["p95_ms"], 5.0);

        let empty = evaluate("dense", &[], &qrels());
        assert!(empty.p50_ms.is_nan());
    }

    #[test]
    fn renders_an_aligned_table() {
        let reports = [
            ModeReport {
                mode: "bm25".into(),
                queries: 50,
                ndcg10: 0.41234,
                recall10: 0.5,
                recall100: 0.8,
                mrr10: 0.3899,
                all_evidence10: 0.25,
                p50_ms: 12.34,
                p95_ms: 140.06,
            },
            ModeReport {
                mode: "hybrid-rrf".into(),
                queries: 7,
                ndcg10: 1.0,
                recall10: f64::NAN,
                recall100: 0.0,
                mrr10: 0.0005,
                all_evidence10: 1.0,
                p50_ms: 3.0,
                p95_ms: 3.96,
            },
        ];
        let expected = "\
mode        queries  nDCG@10   R@10  R@100  MRR@10  AllEv@10  p50 ms  p95 ms
----------  -------  -------  -----  -----  ------  --------  ------  ------
bm25             50    0.412  0.500  0.800   0.390     0.250    12.3   140.1
hybrid-rrf        7    1.000      -  0.000   0.001     1.000     3.0     4.0
";
        assert_eq!(render_table(&reports), expected);
    }

    #[test]
    fn an_empty_table_has_its_header() {
        assert_eq!(
            render_table(&[]),
            "mode  queries  nDCG@10  R@10  R@100  MRR@10  AllEv@10  p50 ms  p95 ms\n\
             ----  -------  -------  ----  -----  ------  --------  ------  ------\n"
        );
    }
}
