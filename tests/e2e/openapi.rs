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
