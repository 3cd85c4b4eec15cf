//! Permissions: every retrieval path (BM25, dense, hybrid, graph, mix, listing) sees only what the
//! caller's tenant and groups may read, and the scope is applied inside the indexes.

use crate::support::*;

#[test]
fn tenants_and_groups_scope_every_retrieval_path() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (hr, open, other) = (
        tmp.path().join("salaries.md"),
        tmp.path().join("canteen.md"),
        tmp.path().join("other.md"),
    );
    std::fs::write(&hr, "# Salary bands\n\n## Engineering\n\nThe salary band for senior engineers under grid PX-77 runs to level seven.\n").unwrap();
    std::fs::write(&open, "# Canteen menu\n\nThe canteen serves soup every day; salary day brings cake under grid PX-77.\n").unwrap();
    std::fs::write(
        &other,
        "# Other tenant\n\nAnother company's salary grid PX-77 for its engineers.\n",
    )
    .unwrap();
    ok(cairn(&data).args(["--groups", "hr"]).arg("ingest").arg(&hr));
    ok(cairn(&data).arg("ingest").arg(&open));
    ok(cairn(&data)
        .args(["--tenant", "globex"])
        .arg("ingest")
        .arg(&other));

    let search = |extra: &[&str], mode: &str| -> Vec<String> {
        let out = ok(cairn(&data).args(extra).args([
            "search",
            "--json",
            "--mode",
            mode,
            "-k",
            "10",
            "salary band PX-77 engineers",
        ]));
        let mut files: Vec<String> = json(&out)["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| file_name(h["source"].as_str().unwrap()))
            .collect();
        files.sort();
        files.dedup();
        files
    };
    for mode in ["bm25", "dense", "hybrid", "graph", "mix"] {
        assert_eq!(
            search(&[], mode),
            vec!["canteen.md"],
            "{mode}: no groups sees only tenant-wide documents"
        );
        assert_eq!(
            search(&["--groups", "eng"], mode),
            vec!["canteen.md"],
            "{mode}: another group"
        );
        assert_eq!(
            search(&["--groups", "hr"], mode),
            vec!["canteen.md", "salaries.md"],
            "{mode}: hr member"
        );
        assert_eq!(
            search(&["--tenant", "globex"], mode),
            vec!["other.md"],
            "{mode}: other tenant"
        );
        assert_eq!(
            search(&["--tenant", "nobody", "--groups", "hr"], mode),
            Vec::<String>::new(),
            "{mode}: unknown tenant"
        );
    }
    // Asking for the top 1 still finds what the caller may read (scope before ranking).
    let out = ok(cairn(&data).args([
        "search",
        "--json",
        "--mode",
        "bm25",
        "-k",
        "1",
        "salary band senior engineers",
    ]));
    assert_eq!(
        file_name(json(&out)["results"][0]["source"].as_str().unwrap()),
        "canteen.md"
    );

    let listed = json(&ok(cairn(&data).args(["docs", "list", "--json"])));
    assert_eq!(listed["documents"].as_array().unwrap().len(), 1);
    let listed = json(&ok(
        cairn(&data).args(["--groups", "hr", "docs", "list", "--json"])
    ));
    assert_eq!(listed["documents"].as_array().unwrap().len(), 2);
}
