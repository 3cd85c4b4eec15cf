//! `cairn eval` on tiny judged sets made here, in both layouts: the documents are indexed,
//! every question runs in each mode, and the figures are the ones computed by hand.

use crate::support::*;
use serde_json::Value;
use std::path::Path;

/// Three notes, each with one word no other note has.
const NOTES: [(&str, &str); 3] = [
    (
        "alpha",
        "The quarterly zorbleflux audit checks every invoice twice.",
    ),
    (
        "bravo",
        "Backup tapes are rotated on Fridays by the night shift.",
    ),
    (
        "charlie",
        "The cafeteria serves soup on Mondays and curry on Thursdays.",
    ),
];

/// q1 asks for alpha's word and is judged on alpha only; q2 asks for bravo's word and is
/// judged on bravo (2) and charlie (1), which it cannot find with BM25; q3 has no answer.
const QUERIES: &str = r#"{"_id": "q1", "text": "zorbleflux audit", "split": "tune"}
{"_id": "q2", "text": "tapes rotated", "lang": "en"}
{"_id": "q3", "text": "parking permits for visitors"}
"#;

fn eval(data: &Path, set: &Path, args: &[&str]) -> Value {
    json(&ok(cairn(data)
        .arg("eval")
        .arg(set)
        .args(["--json", "--modes", "bm25,hybrid"])
        .args(args)))
}

fn mode<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["modes"]
        .as_array()
        .expect("modes")
        .iter()
        .find(|m| m["mode"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report}"))
}

fn close(v: &Value, want: f64) {
    let got = v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"));
    assert!((got - want).abs() < 1e-9, "{got} != {want}");
}

/// BM25 figures over q1 and q2: q1 is perfect; q2 finds bravo first but never charlie, so
/// nDCG@10 = 2 / (2 + 1/log2(3)) and recall 1/2.
fn check_bm25(report: &Value) {
    let bm25 = mode(report, "bm25");
    assert_eq!(bm25["queries"], 2, "{report}");
    let q2_ndcg = 2.0 / (2.0 + 1.0 / 3f64.log2());
    close(&bm25["ndcg10"], (1.0 + q2_ndcg) / 2.0);
    close(&bm25["recall10"], 0.75);
    close(&bm25["mrr10"], 1.0);
    assert!(bm25["p50_ms"].as_f64().unwrap() > 0.0);
}

#[test]
fn eval_scores_a_folder_set_and_writes_trec_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("set");
    std::fs::create_dir_all(set.join("docs")).unwrap();
    for (name, text) in NOTES {
        std::fs::write(
            set.join(format!("docs/{name}.md")),
            format!("# {name}\n\n{text}\n"),
        )
        .unwrap();
    }
    std::fs::write(set.join("queries.jsonl"), QUERIES).unwrap();
    std::fs::write(
        set.join("qrels.txt"),
        "q1 0 alpha.md#p1 2\nq2 0 bravo.md#p1 2\nq2 0 charlie.md#p1 1\n",
    )
    .unwrap();
    let data = tmp.path().join("unused-data");
    let runs = tmp.path().join("runs");
    let index = tmp.path().join("index");

    let runs_arg = runs.to_str().unwrap();
    let index_arg = index.to_str().unwrap();
    let report = eval(
        &data,
        &set,
        &["--split", "all", "--runs", runs_arg, "--index", index_arg],
    );
    assert_eq!(report["questions"], 3);
    assert_eq!(report["unanswerable"], 1);
    assert_eq!(report["index"]["documents"], 3);
    assert_eq!(report["index"]["reindexed"], 0);
    assert!(
        report["index"]["chunker"]
            .as_str()
            .unwrap()
            .starts_with(cairn_ingest::chunk::PACK_VERSION)
    );
    check_bm25(&report);
    // hybrid adds dense candidates: every document is found, so recall@100 is complete
    close(&mode(&report, "hybrid")["recall100"], 1.0);

    // run files: one per mode, ranks from 1, the page-level ids the judgments use
    let bm25_run = std::fs::read_to_string(runs.join("set.bm25.trec")).unwrap();
    let first: Vec<&str> = bm25_run.lines().next().unwrap().split(' ').collect();
    assert_eq!(&first[..4], ["q1", "Q0", "alpha.md#p1", "1"]);
    assert!(runs.join("set.hybrid.trec").exists());

    // the kept index is reused: same documents, nothing re-embedded, same figures
    let again = eval(&data, &set, &["--split", "all", "--index", index_arg]);
    assert_eq!(again["index"]["documents"], 3);
    assert_eq!(again["index"]["reindexed"], 0);
    check_bm25(&again);
    assert!(!data.exists(), "eval must not touch the main data dir");

    // run with other chunk settings, the kept index is re-chunked, and the report says so
    let out = ok(cairn(&data)
        .arg("eval")
        .arg(&set)
        .args(["--modes", "bm25", "--split", "all", "--index", index_arg])
        .env("CAIRN_CHUNK__MAX_TOKENS", "150"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("re-indexed 3 documents stored with other content or chunk settings"),
        "{text}"
    );

    // one split at a time: q1 is in "tune", q2 and q3 (no split) in "test"
    let tune = eval(&data, &set, &["--split", "tune", "--index", index_arg]);
    assert_eq!(tune["questions"], 1);
    let out = cairn(&data)
        .arg("eval")
        .arg(&set)
        .args(["--split", "dev"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"dev\"") && err.contains("test, tune"),
        "{err}"
    );
}

#[test]
fn eval_reads_the_beir_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("beir");
    std::fs::create_dir_all(set.join("qrels")).unwrap();
    let corpus: String = NOTES
        .iter()
        .map(|(id, text)| {
            serde_json::json!({"_id": id, "title": id.to_uppercase(), "text": text}).to_string()
                + "\n"
        })
        .collect();
    std::fs::write(set.join("corpus.jsonl"), corpus).unwrap();
    std::fs::write(
        set.join("queries.jsonl"),
        QUERIES.replace(", \"split\": \"tune\"", ""),
    )
    .unwrap();
    std::fs::write(
        set.join("qrels/test.tsv"),
        "query-id\tcorpus-id\tscore\nq1\talpha\t2\nq2\tbravo\t2\nq2\tcharlie\t1\n",
    )
    .unwrap();
    let report = eval(&tmp.path().join("data"), &set, &["--split", "all"]);
    assert_eq!(report["index"]["documents"], 3);
    assert_eq!(report["unanswerable"], 1);
    check_bm25(&report);
}
