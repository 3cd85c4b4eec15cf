//! The OpenAPI description: valid OpenAPI 3.1 (checked by `openapi-spec-validator` from
//! PyPI, installed by `scripts/install-test-tools`), every documented operation is served,
//! every served path answers 405 for a method it does not document, the README's route
//! table names exactly the documented operations, and `/docs` needs nothing from outside.

use crate::support::*;
use std::collections::BTreeSet;

fn tools_python() -> String {
    std::env::var("CAIRN_TOOLS_PYTHON").unwrap_or_else(|_| {
        let default = std::env::var("HOME").unwrap_or_default() + "/.cache/cairn/tools/bin/python";
        assert!(
            std::path::Path::new(&default).exists(),
            "the OpenAPI validator is not installed: run scripts/install-test-tools (scripts/test does)"
        );
        default
    })
}

/// `METHOD /path` of every row of the README's REST API table.
fn readme_routes() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let table = readme
        .split("## REST API")
        .nth(1)
        .expect("a REST API section")
        .split("\n## ")
        .next()
        .unwrap();
    table
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|r| r.contains(" /"))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_spec_is_valid_openapi_and_describes_exactly_what_is_served() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let s = Server::start_keyed(&data, &[]);
    let out = json(&ok(
        cairn(&data).args(["keys", "create", "--role", "admin", "--json"])
    ));
    let key = format!("Bearer {}", out["key"].as_str().unwrap());

    // Served without a key.
    let (st, spec) = send(http().get(&s.url("/openapi.json")).call());
    assert_eq!(st, 200);
    assert!(
        spec["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        spec["openapi"]
    );
    let file = tmp.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    let check = std::process::Command::new(tools_python())
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "openapi-spec-validator refused the spec:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    let mut documented = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        let concrete = path.replace("{id}", "nope").replace("{name}", "app.js");
        let methods: Vec<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for m in &methods {
            documented.insert(format!("{} {path}", m.to_uppercase()));
            let op = &item[*m];
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{m} {path} documents no response"
            );
            let req = ureq::http::Request::builder()
                .method(m.to_uppercase().as_str())
                .uri(s.url(&concrete))
                .header("authorization", &key)
                .header("content-type", "application/json")
                .body(if *m == "post" {
                    b"{}".to_vec()
                } else {
                    Vec::new()
                })
                .unwrap();
            let (st, body) = send(http().run(req));
            assert_ne!(st, 405, "{m} {path} is documented but not served");
            assert!(
                !body.to_string().contains("no such endpoint"),
                "{m} {path} is documented but falls through: {body}"
            );
        }
        // A method the spec does not name is not served either.
        for m in ["put", "patch"] {
            assert!(!methods.contains(&m));
            let req = ureq::http::Request::builder()
                .method(m.to_uppercase().as_str())
                .uri(s.url(&concrete))
                .header("authorization", &key)
                .body(Vec::new())
                .unwrap();
            let (st, _) = send(http().run(req));
            assert_eq!(st, 405, "{m} {path} is served but not documented");
        }
    }
    assert_eq!(
        readme_routes(),
        documented,
        "the README's route table and the spec disagree"
    );
    // A path the router does not serve is the JSON 404.
    let (st, body) = send(
        http()
            .get(&s.url("/v1/nothing-here"))
            .header("authorization", &key)
            .call(),
    );
    assert_eq!(st, 404);
    assert!(body.to_string().contains("no such endpoint"), "{body}");

    // The viewer needs nothing from outside the binary.
    let mut resp = http().get(&s.url("/docs")).call().unwrap();
    assert_eq!(resp.status(), 200);
    let html = resp.body_mut().read_to_string().unwrap();
    assert!(html.contains("/openapi.json"));
    for outside in ["https://", "http://", "//cdn", "unpkg", "jsdelivr"] {
        assert!(!html.contains(outside), "/docs refers to {outside}");
    }
}

#[test]
fn operators_get_metrics_readiness_request_ids_and_json_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let corpus = tmp.path().join("corpus");
    copy_corpus(&corpus);
    ok(cairn(&data).arg("ingest").arg(&corpus));
    let log = tmp.path().join("serve.log");
    let s = Server::start_logged(&data, &[("CAIRN_LOG_FORMAT", "json")], &log);
    let key = |tenant: &str, role: &str| {
        let out = json(&ok(cairn(&data).args([
            "--tenant", tenant, "keys", "create", "--role", role, "--json",
        ])));
        format!("Bearer {}", out["key"].as_str().unwrap())
    };
    let (admin, reader, other) = (
        key("default", "admin"),
        key("default", "reader"),
        key("globex", "admin"),
    );

    let (st, ready) = send(http().get(&s.url("/readyz")).call());
    assert_eq!(st, 200, "{ready}");
    assert_eq!(ready["ready"], true, "{ready}");
    assert!(
        ready["indexes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["caught_up"] == true)
    );

    // A search, with the client's own request id, which comes back.
    let mut resp = http()
        .post(&s.url("/v1/search"))
        .header("authorization", &reader)
        .header("x-request-id", "trace-me-4711")
        .send_json(serde_json::json!({"query": "printer error E1147"}))
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], "trace-me-4711");
    let _ = resp.body_mut().read_to_string();
    // Every answer has one, errors too.
    let resp = http().get(&s.url("/v1/documents")).call().unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["x-request-id"].len(), 36, "a fresh UUID");

    for (k, want) in [(&reader, 403), (&other, 403)] {
        let (st, b) = send(
            http()
                .get(&s.url("/metrics"))
                .header("authorization", k)
                .call(),
        );
        assert_eq!(st, want, "{b}");
    }
    let mut resp = http()
        .get(&s.url("/metrics"))
        .header("authorization", &admin)
        .call()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.body_mut().read_to_string().unwrap();
    for needle in [
        "cairn_http_requests_total{route=\"/v1/search\",method=\"POST\",status=\"200\"} 1",
        "cairn_http_request_duration_seconds_bucket{route=\"/v1/search\"",
        "cairn_search_stage_seconds_bucket{stage=\"embed\"",
        "cairn_index_live_chunks{index=\"lexical\"}",
        "cairn_index_live_chunks{index=\"vector\"}",
        "cairn_embed_batch_texts",
        "cairn_catalog_seq",
    ] {
        assert!(text.contains(needle), "no {needle} in\n{text}");
    }
    assert!(!text.contains("E1147"), "metrics carry no query text");

    // JSON log lines, the request's id in their span.
    drop(s);
    let logged = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = logged
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!lines.is_empty(), "{logged}");
    assert!(
        lines.iter().any(|l| l["span"]["id"] == "trace-me-4711"),
        "no log line carries the request id:\n{logged}"
    );
}
