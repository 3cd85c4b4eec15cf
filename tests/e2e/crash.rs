//! Crash safety: `cairn ingest` is killed with SIGKILL at random moments while it ingests
//! many documents. After each restart, every acknowledged document is fully searchable, no
//! document is half stored or half indexed, and the indexes (the concept graph among them)
//! agree with the catalog.

use crate::support::*;
use rand::Rng;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DOCS: usize = 80;

fn token(i: usize) -> String {
    format!("zqxdoc{i:03}")
}

/// Writes `DOCS` small documents, each with a token no other document has.
fn write_docs(dir: &Path) {
    let sentences = [
        "Rotate the backup tapes every Friday and record the label in the ledger.",
        "The heat pump needs its filter cleaned before the cold season starts.",
        "New hires receive a laptop, a badge and a buddy during their first week.",
        "Invoices above the threshold need a second signature from finance.",
        "The staging cluster is rebuilt from scratch every night at two o'clock.",
        "Visitors sign in at reception and wear a badge while in the building.",
    ];
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..DOCS {
        let mut text = format!("Note {i}\n\nThis note is filed under {}.\n\n", token(i));
        for p in 0..3 {
            let s = sentences[(i + p) % sentences.len()];
            text.push_str(&format!(
                "{s} Paragraph {p} of note {i} explains it in more detail for the team.\n\n"
            ));
        }
        std::fs::write(dir.join(format!("note-{i:03}.txt")), text).unwrap();
    }
}

/// Runs `cairn ingest` and kills it after `after`; returns the sources it acknowledged.
fn ingest_and_kill(data: &Path, docs: &Path, after: Duration) -> Vec<String> {
    let mut child = cairn(data)
        .arg("ingest")
        .arg(docs)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let acked = acked.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut parts = line.split_whitespace();
                if matches!(parts.next(), Some("added" | "updated" | "unchanged"))
                    && let Some(source) = parts.last()
                {
                    acked.lock().unwrap().push(source.to_string());
                }
            }
        })
    };
    std::thread::sleep(after);
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    reader.join().unwrap();
    Arc::try_unwrap(acked).unwrap().into_inner().unwrap()
}

#[test]
fn kill_9_during_ingest_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, docs) = (tmp.path().join("data"), tmp.path().join("docs"));
    write_docs(&docs);
    let mut rng = rand::rng();
    let mut acked: BTreeMap<String, ()> = BTreeMap::new();
    for round in 0..6 {
        let after = Duration::from_millis(rng.random_range(300..4000));
        let got = ingest_and_kill(&data, &docs, after);
        eprintln!(
            "round {round}: killed after {after:?}, {} acknowledged",
            got.len()
        );
        acked.extend(got.into_iter().map(|s| (s, ())));

        // Restart: the store catches up from the catalog; then everything must agree.
        let verify = json(&ok(cairn(&data).args(["docs", "verify", "--json"])));
        assert_eq!(verify["consistent"], true, "round {round}: {verify}");
        // The concept graph is one of the indexes checked: rebuilt from the catalog's
        // concepts, it holds exactly the catalog's chunks.
        let graph = verify["indexes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == "graph")
            .unwrap_or_else(|| panic!("round {round}: no graph index: {verify}"));
        assert_eq!(graph["live_chunks"], verify["catalog_chunks"], "{verify}");
        let listed = json(&ok(cairn(&data).args(["docs", "list", "--json"])));
        let listed = listed["documents"].as_array().unwrap();
        for source in acked.keys() {
            let doc = listed.iter().find(|d| d["source"] == source.as_str());
            let doc =
                doc.unwrap_or_else(|| panic!("round {round}: acknowledged {source} was lost"));
            assert!(doc["chunk_count"].as_u64().unwrap() >= 1);
        }
        for d in listed {
            let shown = json(&ok(cairn(&data).args([
                "docs",
                "show",
                "--json",
                d["id"].as_str().unwrap(),
            ])));
            assert_eq!(
                shown["chunks"].as_array().unwrap().len() as u64,
                d["chunk_count"].as_u64().unwrap(),
                "half-stored document {d}"
            );
        }
    }

    // Finish the job, then every document is searchable through both retrievers.
    let summary = json(&ok(cairn(&data).arg("ingest").arg("--json").arg(&docs)));
    assert_eq!(summary["failed"].as_array().unwrap().len(), 0, "{summary}");
    assert_eq!(
        summary["added"].as_u64().unwrap() + summary["unchanged"].as_u64().unwrap(),
        DOCS as u64,
        "{summary}"
    );
    let s = Server::start(&data, &[]);
    let agent = http();
    for i in 0..DOCS {
        let (st, hits) = send(
            agent
                .post(&s.url("/v1/search"))
                .send_json(json!({"query": token(i), "mode": "bm25", "top_k": 1})),
        );
        assert_eq!(st, 200);
        let source = hits["results"][0]["source"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            source.ends_with(&format!("note-{i:03}.txt")),
            "{} not found by BM25: {hits}",
            token(i)
        );
        let doc_id = hits["results"][0]["doc_id"].clone();
        let (_, dense) = send(agent.post(&s.url("/v1/search")).send_json(json!({"query": format!("Note {i}"), "mode": "dense", "top_k": 3, "filter": {"doc_ids": [doc_id]}})));
        let dense = dense["results"].as_array().unwrap();
        assert!(
            !dense.is_empty() && dense.iter().all(|h| h["doc_id"] == doc_id),
            "doc {i} missing from the vector index: {dense:?}"
        );
    }
}
