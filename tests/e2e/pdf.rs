//! PDFs through the real binary: each page's text is found with its page number, and a
//! broken PDF is a clear per-file error that changes nothing. The fixtures are made by
//! `scripts/make-pdf-fixtures.py`.

use crate::support::{cairn, json, ok, root};

#[test]
fn pdf_pages_are_searchable_with_their_page_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let fixtures = root().join("tests/fixtures/pdf");
    let pdf = tmp.path().join("field-guide.pdf");
    std::fs::copy(fixtures.join("field-guide.pdf"), &pdf).unwrap();

    let summary = json(&ok(cairn(&data).arg("ingest").arg("--json").arg(&pdf)));
    assert_eq!(
        summary["failed"].as_array().map(Vec::len),
        Some(0),
        "{summary}"
    );

    let out = ok(cairn(&data).args([
        "search",
        "--json",
        "--mode",
        "bm25",
        "-k",
        "3",
        "ptarmigan expedition",
    ]));
    let results = json(&out)["results"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let top = results.first().expect("a hit for the page-3 phrase");
    assert!(
        top["source"]
            .as_str()
            .unwrap_or("")
            .ends_with("field-guide.pdf"),
        "{top}"
    );
    assert_eq!(top["page"], 3, "{top}");
    assert!(
        top["text"].as_str().unwrap_or("").contains("ptarmigan"),
        "{top}"
    );
    let docs = json(&ok(cairn(&data).args(["docs", "list", "--json"])));
    let listed = docs["documents"].as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 1, "{docs}");
    assert_eq!(listed[0]["title"], "Cairn Field Guide", "{docs}");

    // A truncated PDF: exit 1, a message naming the file, and nothing stored changes.
    let broken = tmp.path().join("broken.pdf");
    std::fs::copy(fixtures.join("broken.pdf"), &broken).unwrap();
    let out = cairn(&data).arg("ingest").arg(&broken).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken.pdf") && stderr.contains("PDF"),
        "{stderr}"
    );
    assert_eq!(
        json(&ok(cairn(&data).args(["docs", "list", "--json"]))),
        docs
    );
}
