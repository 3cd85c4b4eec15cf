//! `cairn reindex`, the cron job: add, change and delete across runs; a second run changes
//! nothing; a bad file fails alone (exit 1); a dry run lists changes and writes nothing;
//! killed with SIGKILL midway, the next run finishes the job without loss or duplicates;
//! a second run started while another process holds the data dir exits 3 at once; while
//! `cairn serve` holds it, the run is handed to the server.

use crate::support::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

/// Runs `cairn reindex --json ARGS...` and returns (exit code, summary).
fn reindex(data: &Path, args: &[&str]) -> (i32, Value, Output) {
    let out = cairn(data)
        .args(["reindex", "--json"])
        .args(args)
        .output()
        .expect("spawn cairn");
    let summary = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), summary, out)
}

/// [added, updated, deleted, unchanged, failed] of a summary.
fn counts(s: &Value) -> [u64; 5] {
    let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k} in {s}"));
    [
        n("added"),
        n("updated"),
        n("deleted"),
        n("unchanged"),
        s["failed"].as_array().expect("failed").len() as u64,
    ]
}

fn sources(data: &Path) -> Vec<String> {
    let listed = json(&ok(cairn(data).args(["docs", "list", "--json"])));
    listed["documents"]
        .as_array()
        .expect("documents")
        .iter()
        .map(|d| d["source"].as_str().expect("source").to_string())
        .collect()
}

fn assert_consistent(data: &Path) -> Value {
    let verify = json(&ok(cairn(data).args(["docs", "verify", "--json"])));
    assert_eq!(verify["consistent"], true, "{verify}");
    verify
}

/// `count` small notes, each with a token no other note has.
fn write_notes(dir: &Path, count: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..count {
        let text = format!(
            "# Note {i}\n\nThis note is filed under rxnote{i:03}. The staging cluster is \
             rebuilt every night and the backup tapes rotate every Friday.\n\n## Details\n\n\
             Paragraph two of note {i} explains the procedure for the operations team.\n"
        );
        std::fs::write(dir.join(format!("note-{i:03}.md")), text).unwrap();
    }
}

#[test]
fn reindex_adds_updates_deletes_and_then_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, docs) = (tmp.path().join("data"), tmp.path().join("docs"));
    write_notes(&docs.join("team"), 3);
    std::fs::write(
        docs.join("zebra.txt"),
        "The zebracorn grazes on the moor.\n",
    )
    .unwrap();
    std::fs::write(docs.join("skip.log"), "not a document\n").unwrap();
    std::fs::write(docs.join(".hidden.md"), "# Hidden\n\nNever indexed.\n").unwrap();
    // A sibling folder whose name extends the root's: never touched by deletes.
    let sibling = tmp.path().join("docs-old");
    std::fs::create_dir_all(&sibling).unwrap();
    std::fs::write(sibling.join("keep.md"), "# Keep\n\nStill here.\n").unwrap();
    ok(cairn(&data).arg("ingest").arg(&sibling));

    let docs_arg = docs.to_str().unwrap();
    let (code, s, out) = reindex(&data, &[docs_arg]);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(counts(&s), [4, 0, 0, 0, 0], "{s}");
    assert!(s["chunks"].as_u64().unwrap() >= 4 && s["pages"].as_u64().unwrap() == 4);
    assert_eq!(s["dry_run"], false);
    assert!(s["duration_ms"].as_f64().is_some());
    assert_eq!(sources(&data).len(), 5);

    // A second run in a row changes nothing: the catalog's sequence does not move.
    let seq = assert_consistent(&data)["catalog_seq"].clone();
    let (code, s, _) = reindex(&data, &[docs_arg]);
    assert_eq!((code, counts(&s)), (0, [0, 0, 0, 4, 0]), "{s}");
    assert_eq!(assert_consistent(&data)["catalog_seq"], seq);

    // Change one, add one, delete one.
    let canon = std::fs::canonicalize(&docs).unwrap();
    let zebra = canon.join("zebra.txt").to_str().unwrap().to_string();
    let first = json(&ok(cairn(&data).args(["docs", "list", "--json"])));
    let note0 = canon.join("team/note-000.md").to_str().unwrap().to_string();
    let note0_id = first["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["source"] == note0.as_str())
        .expect("note 0 listed")["id"]
        .clone();
    std::fs::write(
        docs.join("team/note-000.md"),
        "# Note 0\n\nRewritten: the quokka census happens in spring.\n",
    )
    .unwrap();
    std::fs::write(docs.join("new.md"), "# New\n\nA brand new page.\n").unwrap();
    std::fs::remove_file(docs.join("zebra.txt")).unwrap();
    let out = ok(cairn(&data).arg("reindex").arg(&docs));
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(
        human
            .lines()
            .any(|l| l.starts_with("updated") && l.ends_with(&note0)),
        "{human}"
    );
    assert!(
        human
            .lines()
            .any(|l| l.starts_with("deleted") && l.ends_with(&zebra)),
        "{human}"
    );
    assert!(
        human.contains("1 added, 1 updated, 1 deleted, 2 unchanged, 0 failed"),
        "{human}"
    );

    let listed = json(&ok(cairn(&data).args(["docs", "list", "--json"])));
    let listed = listed["documents"].as_array().unwrap();
    assert_eq!(listed.len(), 5);
    let note0_doc = listed
        .iter()
        .find(|d| d["source"] == note0.as_str())
        .unwrap();
    assert_eq!(note0_doc["id"], note0_id, "an update keeps the document id");
    assert_eq!(note0_doc["version"], 2);
    assert!(!sources(&data).contains(&zebra));
    assert!(
        sources(&data)
            .iter()
            .any(|s| s.ends_with("docs-old/keep.md"))
    );
    assert!(!search_files(&data, "zebracorn", "bm25", 10).contains(&"zebra.txt".to_string()));
    assert_eq!(
        search_files(&data, "quokka census", "bm25", 1),
        ["note-000.md"]
    );
    assert_consistent(&data);

    // Globs: excluding a folder removes its documents; include narrows what is taken.
    let (code, s, _) = reindex(&data, &[docs_arg, "--exclude", "team/**"]);
    assert_eq!((code, counts(&s)), (0, [0, 0, 3, 1, 0]), "{s}");
    let (code, s, _) = reindex(&data, &[docs_arg, "--include", "*.log"]);
    assert_eq!((code, counts(&s)), (0, [1, 0, 1, 0, 0]), "{s}");
}

#[test]
fn reindex_reports_a_bad_file_and_indexes_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, docs) = (tmp.path().join("data"), tmp.path().join("docs"));
    write_notes(&docs, 3);
    std::fs::write(
        docs.join("broken.txt"),
        [0xffu8, 0xfe, 0x00, 0xd8, 0x00, 0x00, 0xc3, 0x28, 0x00],
    )
    .unwrap();
    let (code, s, _) = reindex(&data, &[docs.to_str().unwrap()]);
    assert_eq!(code, 1, "a failed file exits 1: {s}");
    assert_eq!(counts(&s), [3, 0, 0, 0, 1], "{s}");
    let failed = &s["failed"][0];
    assert!(
        failed["path"].as_str().unwrap().ends_with("broken.txt"),
        "{failed}"
    );
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .starts_with("broken.txt: "),
        "{failed}"
    );
    assert_eq!(sources(&data).len(), 3);
    assert_eq!(search_files(&data, "rxnote001", "bm25", 1), ["note-001.md"]);

    // A missing source fails the run before anything changes (exit 4), not "delete all".
    let missing = tmp.path().join("unmounted");
    let (code, _, out) = reindex(&data, &[missing.to_str().unwrap()]);
    assert_eq!(code, 4, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unmounted: no such file or folder"));
    let (code, _, out) = reindex(&data, &[docs.to_str().unwrap(), "--include", "a["]);
    assert_eq!(code, 2, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sources(&data).len(), 3);
}

#[test]
fn dry_run_lists_the_changes_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, docs) = (tmp.path().join("data"), tmp.path().join("docs"));
    write_notes(&docs, 4);
    ok(cairn(&data).arg("reindex").arg(&docs));
    std::fs::write(docs.join("note-001.md"), "# Note 1\n\nChanged text.\n").unwrap();
    std::fs::remove_file(docs.join("note-002.md")).unwrap();
    std::fs::write(docs.join("extra.txt"), "An extra file about tapes.\n").unwrap();

    let before = json(&ok(cairn(&data).args(["docs", "list", "--json"])));
    let seq = assert_consistent(&data)["catalog_seq"].clone();
    let (code, s, out) = reindex(&data, &["--dry-run", docs.to_str().unwrap()]);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(s["dry_run"], true);
    assert_eq!(counts(&s), [1, 1, 1, 2, 0], "{s}");
    let changes: BTreeSet<(String, String)> = s["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["action"].as_str().unwrap().to_string(),
                file_name(c["source"].as_str().unwrap()),
            )
        })
        .collect();
    let want: BTreeSet<(String, String)> = [
        ("added", "extra.txt"),
        ("updated", "note-001.md"),
        ("deleted", "note-002.md"),
    ]
    .iter()
    .map(|(a, f)| (a.to_string(), f.to_string()))
    .collect();
    assert_eq!(changes, want);
    let est = &s["estimate"];
    assert!(est["chunks"].as_u64().unwrap() >= 2, "{est}");
    assert!(est["tokens"].as_u64().unwrap() > 5, "{est}");
    assert!(
        est["embed_ms_per_1k_tokens"].as_f64().unwrap() > 0.0,
        "{est}"
    );
    assert!(est["seconds"].as_f64().unwrap() > 0.0, "{est}");

    // Nothing was written.
    assert_eq!(
        json(&ok(cairn(&data).args(["docs", "list", "--json"]))),
        before
    );
    assert_eq!(assert_consistent(&data)["catalog_seq"], seq);

    // The human form names each change and gives the estimate.
    let out = ok(cairn(&data).args(["reindex", "--dry-run"]).arg(&docs));
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(
        human
            .lines()
            .any(|l| l.starts_with("would add") && l.ends_with("extra.txt")),
        "{human}"
    );
    assert!(
        human
            .lines()
            .any(|l| l.starts_with("would delete") && l.ends_with("note-002.md")),
        "{human}"
    );
    assert!(human.contains("estimate: about"), "{human}");
    assert_eq!(assert_consistent(&data)["catalog_seq"], seq);
}

/// Spawns `cairn reindex DOCS` with stdout piped; returns once it printed `lines` lines
/// (each a committed change), or it exited.
fn spawn_until_lines(data: &Path, docs: &Path, lines: usize) -> std::process::Child {
    let mut child = cairn(data)
        .arg("reindex")
        .arg(docs)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn cairn reindex");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = 0;
        for _ in BufReader::new(stdout).lines().map_while(Result::ok) {
            seen += 1;
            if seen == lines {
                let _ = tx.send(());
            }
        }
    });
    let _ = rx.recv_timeout(Duration::from_secs(300));
    child
}

#[test]
fn reindex_killed_midway_is_finished_by_the_next_run() {
    const FILES: usize = 60;
    let tmp = tempfile::tempdir().unwrap();
    let (data, docs) = (tmp.path().join("data"), tmp.path().join("docs"));
    write_notes(&docs, FILES);

    let mut child = spawn_until_lines(&data, &docs, 8);
    let _ = child.kill(); // SIGKILL
    let status = child.wait().unwrap();
    let after_kill = sources(&data).len();
    eprintln!("killed ({status}) with {after_kill} of {FILES} documents stored");
    assert!(after_kill >= 8, "every acknowledged file is kept");
    assert_consistent(&data);

    let (code, s, out) = reindex(&data, &[docs.to_str().unwrap()]);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    let [added, updated, deleted, unchanged, failed] = counts(&s);
    assert_eq!((updated, deleted, failed), (0, 0, 0), "{s}");
    assert_eq!(added + unchanged, FILES as u64, "{s}");
    assert_eq!(unchanged, after_kill as u64, "{s}");

    let all = sources(&data);
    let unique: BTreeSet<&String> = all.iter().collect();
    assert_eq!(all.len(), FILES, "one document per file");
    assert_eq!(unique.len(), FILES, "no duplicate sources");
    assert_consistent(&data);
    assert_eq!(search_files(&data, "rxnote059", "bm25", 1), ["note-059.md"]);

    let (code, s, _) = reindex(&data, &[docs.to_str().unwrap()]);
    assert_eq!((code, counts(&s)), (0, [0, 0, 0, FILES as u64, 0]), "{s}");
}

#[test]
fn a_second_run_while_another_process_holds_the_data_dir_exits_3_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, docs) = (tmp.path().join("data"), tmp.path().join("docs"));
    write_notes(&docs, 5);
    // This test process holds the data dir, as a running `cairn reindex` would.
    let lock = cairn_index::DataDirLock::acquire(&data).unwrap();
    let (code, _, out) = reindex(&data, &[docs.to_str().unwrap()]);
    drop(lock);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("is in use by another cairn process"),
        "{stderr}"
    );
    // It changed nothing: the next run adds every file.
    let (code, summary, _) = reindex(&data, &[docs.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(summary["added"], 5, "{summary}");
}

#[test]
fn while_cairn_serve_holds_the_data_dir_the_run_happens_inside_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, docs) = (tmp.path().join("data"), tmp.path().join("docs"));
    write_notes(&docs, 4);
    let server = Server::start_keyed(&data, &[]);
    let docs_arg = docs.to_str().unwrap();

    let (code, s, out) = reindex(&data, &["--dry-run", docs_arg]);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        (s["dry_run"].as_bool(), s["added"].as_u64()),
        (Some(true), Some(4)),
        "{s}"
    );
    let (code, s, out) = reindex(&data, &[docs_arg]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("runs inside it"), "{stderr}");
    assert_eq!(counts(&s), [4, 0, 0, 0, 0], "{s}");
    // The server answers from what it just indexed (to a key made while it runs).
    let made = json(&ok(
        cairn(&data).args(["keys", "create", "--role", "reader", "--json"])
    ));
    let key = format!("Bearer {}", made["key"].as_str().unwrap());
    let (status, body) = send(
        http()
            .post(server.url("/v1/search"))
            .header("authorization", &key)
            .send_json(serde_json::json!({"query": "rxnote002", "mode": "bm25", "top_k": 1})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        file_name(body["results"][0]["source"].as_str().unwrap_or_default()),
        "note-002.md",
        "{body}"
    );
    // A change, a delete, and a relative path (the command makes it absolute).
    std::fs::write(
        docs.join("note-000.md"),
        "# Note 0\n\nRewritten: rxnewword.\n",
    )
    .unwrap();
    std::fs::remove_file(docs.join("note-003.md")).unwrap();
    let out = cairn(&data)
        .current_dir(tmp.path())
        .args(["reindex", "--json", "docs"])
        .output()
        .unwrap();
    let s: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(counts(&s), [0, 1, 1, 2, 0], "{s}");

    // The admin route wants the token from the data dir, and absolute paths.
    let info: Value =
        serde_json::from_slice(&std::fs::read(data.join("serve.json")).unwrap()).unwrap();
    let token = info["token"].as_str().unwrap();
    let route = server.url("/v1/admin/reindex");
    let body = serde_json::json!({"sources": [docs_arg]});
    let (status, err) = send(
        http()
            .post(&route)
            .header("authorization", "Bearer not-the-token")
            .send_json(&body),
    );
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, err) = send(http().post(&route).send_json(&body));
    assert_eq!(status, 401, "{err}");
    let (status, err) = send(
        http()
            .post(&route)
            .header("authorization", &format!("Bearer {token}"))
            .send_json(serde_json::json!({"sources": ["docs"]})),
    );
    assert_eq!(status, 400, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("absolute"),
        "{err}"
    );
    let (status, report) = send(
        http()
            .post(&route)
            .header("authorization", &format!("Bearer {token}"))
            .send_json(&body),
    );
    assert_eq!(
        (status, counts(&report)),
        (200, [0, 0, 0, 3, 0]),
        "{report}"
    );
    // `--tenant` travels with the hand-off: the documents are that tenant's, not the
    // server's own.
    let acme_docs = tmp.path().join("acme");
    write_notes(&acme_docs, 2);
    let out = ok(cairn(&data)
        .args(["--tenant", "acme", "reindex", "--json"])
        .arg(&acme_docs));
    assert_eq!(counts(&json(&out)), [2, 0, 0, 0, 0]);
    let made = json(&ok(cairn(&data).args([
        "--tenant", "acme", "keys", "create", "--role", "reader", "--json",
    ])));
    let (status, listed) = send(
        http()
            .get(&server.url("/v1/documents"))
            .header(
                "authorization",
                &format!("Bearer {}", made["key"].as_str().unwrap()),
            )
            .call(),
    );
    assert_eq!(status, 200);
    assert_eq!(listed["documents"].as_array().unwrap().len(), 2, "{listed}");
    drop(server);
}
