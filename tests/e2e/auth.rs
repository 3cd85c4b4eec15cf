//! Access control against the real server: the upload-name hole closed, API keys made by
//! the CLI (with and without a running server), roles, tenants and groups on each route,
//! hostile input, and the audit log.

use crate::support::*;
use serde_json::{Value, json};
use std::path::Path;

/// `cairn keys create` for `tenant` and `groups`, returning the key.
fn make_key(data: &Path, tenant: &str, groups: &str, role: &str) -> String {
    let mut cmd = cairn(data);
    cmd.args(["--tenant", tenant]);
    if !groups.is_empty() {
        cmd.args(["--groups", groups]);
    }
    let out = json(&ok(cmd.args(["keys", "create", "--role", role, "--json"])));
    let key = out["key"].as_str().expect("key").to_string();
    assert!(key.starts_with("cairn_"), "{out}");
    assert!(out.get("secret_hash").is_none(), "{out}");
    key
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

fn upload(s: &Server, key: &str, name: &str, body: &[u8]) -> (u16, Value) {
    let (ctype, form) = multipart(&[(name, body)]);
    send(
        http()
            .post(&s.url("/v1/documents"))
            .header("authorization", &bearer(key))
            .header("content-type", &ctype)
            .send(&form[..]),
    )
}

fn search(s: &Server, key: &str, query: &str) -> (u16, Value) {
    send(
        http()
            .post(&s.url("/v1/search"))
            .header("authorization", &bearer(key))
            .send_json(json!({"query": query, "mode": "bm25", "top_k": 20})),
    )
}

fn sources(hits: &Value) -> Vec<String> {
    hits["results"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|h| h["source"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn an_upload_named_like_a_server_path_never_makes_the_server_read_it() {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(tmp.path()).unwrap();
    let data = root.join("data");
    // A file on the server's disk that no one uploaded, and a document ingested from a path.
    let secret = root.join("etc/passwd");
    std::fs::create_dir_all(secret.parent().unwrap()).unwrap();
    std::fs::write(
        &secret,
        "root:x:0:0:QZXSECRET line of the server's own file\n",
    )
    .unwrap();
    let guide = root.join("docs/guide.md");
    std::fs::create_dir_all(guide.parent().unwrap()).unwrap();
    std::fs::write(
        &guide,
        "# Kiln guide\n\nThe kiln is fired at dawn in the KLNGUIDE room.\n",
    )
    .unwrap();
    ok(cairn(&data).arg("ingest").arg(&guide));
    let server = Server::start_keyed(&data, &[]);
    // Made while the server holds the data dir: the command hands it over.
    let writer = make_key(&data, "default", "", "writer");

    let traversal = format!("../../../../..{}", secret.display());
    for (name, base) in [
        (secret.to_str().unwrap(), "passwd"),
        (traversal.as_str(), "passwd"),
        (guide.to_str().unwrap(), "guide.md"),
    ] {
        let (status, up) = upload(&server, &writer, name, b"harmless uploaded words\n");
        assert_eq!(status, 201, "{name}: {up}");
        let doc = &up["documents"][0];
        assert_eq!(doc["origin"], "upload", "{up}");
        assert_eq!(doc["source"], base, "{up}");
        // Re-indexing an upload reads its kept original, never a path.
        let route = format!("/v1/documents/{}/reindex", doc["doc_id"].as_str().unwrap());
        let (status, again) = send(
            http()
                .post(&server.url(&route))
                .header("authorization", &bearer(&writer))
                .send_empty(),
        );
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["document"]["status"], "unchanged", "{again}");
    }
    let (status, hits) = search(&server, &writer, "QZXSECRET root");
    assert_eq!(status, 200, "{hits}");
    assert_eq!(
        sources(&hits),
        Vec::<String>::new(),
        "the server's file leaked: {hits}"
    );
    // The document ingested from the path is still its own, unreplaced by the upload.
    let (_, hits) = search(&server, &writer, "KLNGUIDE kiln dawn");
    assert_eq!(sources(&hits), ["guide.md"], "{hits}");
    assert!(
        hits["results"][0]["text"]
            .as_str()
            .unwrap()
            .contains("KLNGUIDE"),
        "{hits}"
    );
    let (_, listed) = send(
        http()
            .get(&server.url("/v1/documents"))
            .header("authorization", &bearer(&writer))
            .call(),
    );
    let origins: Vec<(String, String)> = listed["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["origin"].as_str().unwrap().to_string(),
                d["source"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(origins.len(), 3, "{listed}");
    assert!(
        origins.contains(&("path".into(), "guide.md".into())),
        "{listed}"
    );
    assert!(
        origins.contains(&("upload".into(), "guide.md".into())),
        "{listed}"
    );
    assert!(
        origins.contains(&("upload".into(), "passwd".into())),
        "{listed}"
    );

    // Names in other scripts are kept; hostile ones are refused with a reason.
    let (status, up) = upload(&server, &writer, "报告 2026.md", b"# Bericht\n\nZahlen.\n");
    assert_eq!(status, 201, "{up}");
    assert_eq!(up["documents"][0]["source"], "报告 2026.md");
    let long = format!("{}.md", "n".repeat(300));
    for (name, says) in [
        (long.as_str(), "limit is 255"),
        ("..", "no base name"),
        ("docs/", "no base name"),
    ] {
        let (status, b) = upload(&server, &writer, name, b"text\n");
        assert_eq!(status, 400, "{name}: {b}");
        let msg = b["failed"][0]["error"]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(msg.contains(says), "{name}: {b}");
    }
    let (status, listed_after) = send(
        http()
            .get(&server.url("/v1/documents"))
            .header("authorization", &bearer(&writer))
            .call(),
    );
    assert_eq!(status, 200);
    assert_eq!(
        listed_after["documents"].as_array().unwrap().len(),
        4,
        "refused names stored nothing: {listed_after}"
    );
}

#[test]
fn keys_roles_tenants_and_groups_decide_every_route() {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(tmp.path()).unwrap();
    let data = root.join("data");
    let docs = root.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    for (name, text) in [
        (
            "salaries.md",
            "# Salary bands\n\nGrid QPX77 pays senior engineers level seven.\n",
        ),
        (
            "canteen.md",
            "# Canteen\n\nSoup daily; cake when grid QPX77 pays out.\n",
        ),
        ("globex.md", "# Globex\n\nAnother company's grid QPX77.\n"),
    ] {
        std::fs::write(docs.join(name), text).unwrap();
    }
    ok(cairn(&data)
        .args(["--tenant", "acme", "--groups", "hr", "ingest"])
        .arg(docs.join("salaries.md")));
    ok(cairn(&data)
        .args(["--tenant", "acme", "ingest"])
        .arg(docs.join("canteen.md")));
    ok(cairn(&data)
        .args(["--tenant", "globex", "ingest"])
        .arg(docs.join("globex.md")));
    // Keys made before the server starts (the CLI opens the catalog itself).
    // Admins read by their groups like everyone else.
    let admin = make_key(&data, "acme", "hr", "admin");
    let hr = make_key(&data, "acme", "hr", "reader");
    let reader = make_key(&data, "acme", "", "reader");
    let globex = make_key(&data, "globex", "", "writer");
    let doomed = make_key(&data, "acme", "", "reader");
    let doomed_id = &doomed[6..22];
    ok(cairn(&data).args(["keys", "revoke", doomed_id]));

    let s = Server::start_keyed(&data, &[]);
    let get = |path: &str, key: Option<&str>| {
        let mut r = http().get(&s.url(path));
        if let Some(k) = key {
            r = r.header("authorization", &bearer(k));
        }
        send(r.call())
    };

    // Without a key, with a wrong, malformed or revoked one: 401, saying which.
    let (st, b) = search_raw(&s, None);
    assert_eq!(st, 401, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("needs an API key"),
        "{b}"
    );
    let wrong = format!(
        "{}{}",
        &reader[..reader.len() - 1],
        if reader.ends_with('0') { '1' } else { '0' }
    );
    for (key, says) in [
        (wrong.as_str(), "not valid"),
        ("cairn_short", "malformed"),
        (doomed.as_str(), "revoked"),
    ] {
        let (st, b) = search_raw(&s, Some(key));
        assert_eq!(
            (st, b["error"]["code"].as_str()),
            (401, Some("unauthorized")),
            "{b}"
        );
        assert!(
            b["error"]["message"].as_str().unwrap().contains(says),
            "{key}: {b}"
        );
    }
    // A made-up key of the right shape says no more than a wrong one.
    let (st, b) = search_raw(
        &s,
        Some(&format!("cairn_{}_{}", "0".repeat(16), "0".repeat(64))),
    );
    assert_eq!(st, 401);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid"),
        "{b}"
    );

    // Readers see what their groups may read, by file name, never the server's path.
    let (st, hits) = search(&s, &hr, "grid QPX77");
    assert_eq!(st, 200, "{hits}");
    let mut seen = sources(&hits);
    seen.sort();
    assert_eq!(seen, ["canteen.md", "salaries.md"], "{hits}");
    let (_, hits) = search(&s, &reader, "grid QPX77");
    assert_eq!(sources(&hits), ["canteen.md"], "{hits}");
    let (_, hits) = search(&s, &globex, "grid QPX77");
    assert_eq!(sources(&hits), ["globex.md"], "{hits}");
    let (_, hits) = search(&s, &admin, "grid QPX77 soup");
    assert!(
        sources(&hits)
            .iter()
            .all(|p| p.starts_with(root.to_str().unwrap())),
        "admins see paths: {hits}"
    );

    // Another tenant's or another group's document is not found, whatever the route.
    let (_, all) = get("/v1/documents", Some(&admin));
    let id_of = |file: &str| -> String {
        all["documents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["source"].as_str().unwrap().ends_with(file))
            .map(|d| d["id"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{file} in {all}"))
    };
    let (salaries, canteen) = (id_of("salaries.md"), id_of("canteen.md"));
    assert_eq!(
        all["documents"].as_array().unwrap().len(),
        2,
        "admin lists its tenant: {all}"
    );
    for (key, id) in [
        (&reader, &salaries),
        (&globex, &salaries),
        (&globex, &canteen),
    ] {
        let (st, b) = get(&format!("/v1/documents/{id}"), Some(key));
        assert_eq!(st, 404, "{b}");
        assert!(!b.to_string().contains("Salary"), "{b}");
        let (st, _) = send(
            http()
                .delete(&s.url(&format!("/v1/documents/{id}")))
                .header("authorization", &bearer(key))
                .call(),
        );
        assert_eq!(st, 404);
    }
    let (st, b) = get(&format!("/v1/documents/{salaries}"), Some(&hr));
    assert_eq!(st, 200, "{b}");

    // Roles: readers may not write; writers may not manage keys or read the server's disk.
    let (st, b) = upload(&s, &reader, "note.md", b"# Note\n\nText.\n");
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{b}"
    );
    let (st, _) = send(
        http()
            .delete(&s.url(&format!("/v1/documents/{canteen}")))
            .header("authorization", &bearer(&hr))
            .call(),
    );
    assert_eq!(st, 403);
    let (st, b) = send(
        http()
            .post(&s.url("/v1/admin/keys"))
            .header("authorization", &bearer(&globex))
            .send_json(json!({"role": "admin"})),
    );
    assert_eq!(st, 403, "{b}");
    // A writer gives documents only its own groups.
    let (ctype, form) = multipart(&[("plant.md", b"# Planted\n\nText.\n")]);
    let mut form_with_groups = b"--cairn-test-boundary-7MA4YWxkTrZu0gW\r\nContent-Disposition: form-data; name=\"groups\"\r\n\r\nhr\r\n".to_vec();
    form_with_groups.extend_from_slice(&form);
    let (st, b) = send(
        http()
            .post(&s.url("/v1/documents"))
            .header("authorization", &bearer(&globex))
            .header("content-type", &ctype)
            .send(&form_with_groups[..]),
    );
    assert_eq!(st, 403, "{b}");
    // The server's disk is read for API callers only under [ingest] roots (none here).
    let (st, b) = send(
        http()
            .post(&s.url("/v1/admin/reindex"))
            .header("authorization", &bearer(&admin))
            .send_json(json!({"sources": ["/etc"]})),
    );
    assert_eq!(st, 403, "{b}");
    let (st, b) = send(
        http()
            .post(&s.url(&format!("/v1/documents/{canteen}/reindex")))
            .header("authorization", &bearer(&admin))
            .send_empty(),
    );
    assert_eq!(st, 403, "{b}");

    // A body cannot widen its scope.
    for body in [
        json!({"query": "grid QPX77", "tenant": "globex"}),
        json!({"query": "grid QPX77", "filter": {"groups": ["hr"]}}),
        json!({"query": "grid QPX77", "principal": {"tenant": "acme", "groups": ["hr"]}}),
    ] {
        let (st, b) = send(
            http()
                .post(&s.url("/v1/search"))
                .header("authorization", &bearer(&reader))
                .send_json(body.clone()),
        );
        assert_eq!(st, 400, "{body}: {b}");
    }

    // Keys over the API: an admin makes one (shown once), lists them without secrets, and
    // cannot touch another tenant's.
    let (st, made) = send(
        http()
            .post(&s.url("/v1/admin/keys"))
            .header("authorization", &bearer(&admin))
            .send_json(json!({"role": "reader", "name": "portal", "groups": ["hr"]})),
    );
    assert_eq!(st, 201, "{made}");
    let portal = made["key"].as_str().unwrap().to_string();
    let (st, hits) = search(&s, &portal, "salary bands");
    assert_eq!(st, 200);
    assert!(
        sources(&hits).contains(&"salaries.md".to_string()),
        "{hits}"
    );
    let (st, b) = send(
        http()
            .post(&s.url("/v1/admin/keys"))
            .header("authorization", &bearer(&admin))
            .send_json(json!({"role": "admin", "tenant": "globex"})),
    );
    assert_eq!(st, 403, "{b}");
    let (st, listed) = get("/v1/admin/keys", Some(&admin));
    assert_eq!(st, 200);
    let text = listed.to_string();
    assert!(
        !text.contains(&portal[23..]) && !text.contains("secret_hash"),
        "{listed}"
    );
    assert!(
        listed["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["tenant"] == "acme")
    );
    let globex_id = &globex[6..22];
    let (st, _) = send(
        http()
            .delete(&s.url(&format!("/v1/admin/keys/{globex_id}")))
            .header("authorization", &bearer(&admin))
            .call(),
    );
    assert_eq!(st, 404);
    let (st, _) = search(&s, &globex, "grid");
    assert_eq!(st, 200, "another tenant's admin revoked nothing");

    // Health: liveness for anyone, counts only of what the key may read.
    let (st, h) = get("/healthz", None);
    assert_eq!(st, 200);
    assert!(h.get("documents").is_none(), "{h}");
    assert_eq!(get("/healthz", Some(&reader)).1["documents"], 1);
    assert_eq!(get("/healthz", Some(&hr)).1["documents"], 2);
    assert_eq!(get("/healthz", Some(&globex)).1["documents"], 1);

    // The audit log: admins read their tenant's, over the API and with `cairn audit`.
    let (st, b) = get("/v1/admin/audit", Some(&reader));
    assert_eq!(st, 403, "{b}");
    let (st, lines) = get("/v1/admin/audit?limit=500", Some(&admin));
    assert_eq!(st, 200, "{lines}");
    let lines = lines["lines"].as_array().unwrap().clone();
    assert!(lines.iter().all(|l| l["tenant"] == "acme"), "{lines:?}");
    let hr_id = format!("key:{}", &hr[6..22]);
    assert!(
        lines.iter().any(|l| l["action"] == "search"
            && l["actor"] == hr_id.as_str()
            && l["results"].as_i64() >= Some(2)),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["action"] == "upload" && l["outcome"] == "forbidden"),
        "{lines:?}"
    );
    assert!(
        lines.iter().all(|l| !l.to_string().contains("grid QPX77")),
        "queries are kept as hashes by default"
    );
    let out = json(&ok(cairn(&data).args([
        "--tenant",
        "acme",
        "audit",
        "--json",
        "--key",
        &hr[6..22],
    ])));
    let cli_lines = out["lines"].as_array().unwrap();
    assert!(
        !cli_lines.is_empty() && cli_lines.iter().all(|l| l["actor"] == hr_id.as_str()),
        "{out}"
    );
}

fn search_raw(s: &Server, key: Option<&str>) -> (u16, Value) {
    let mut r = http().post(&s.url("/v1/search"));
    if let Some(k) = key {
        r = r.header("authorization", &bearer(k));
    }
    send(r.send_json(json!({"query": "grid"})))
}

#[test]
fn no_auth_is_refused_beyond_loopback() {
    let tmp = tempfile::tempdir().unwrap();
    let out = cairn(&tmp.path().join("data"))
        .args(["serve", "--no-auth", "--addr", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--no-auth is refused"), "{err}");
}

#[test]
fn each_key_has_its_rate_and_oversized_headers_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let s = Server::start_keyed(
        &data,
        &[
            ("CAIRN_LIMITS__REQUESTS_PER_SECOND", "0.2"),
            ("CAIRN_LIMITS__BURST", "2"),
        ],
    );
    let a = make_key(&data, "default", "", "reader");
    let b = make_key(&data, "default", "", "reader");
    let list = |key: &str| {
        let mut resp = http()
            .get(&s.url("/v1/documents"))
            .header("authorization", &bearer(key))
            .call()
            .unwrap();
        let retry = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let body = resp.body_mut().read_to_string().unwrap();
        (resp.status().as_u16(), retry, body)
    };
    assert_eq!(list(&a).0, 200);
    assert_eq!(list(&a).0, 200);
    let (st, retry, body) = list(&a);
    assert_eq!(st, 429, "{body}");
    assert!(body.contains("rate_limited"), "{body}");
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=5).contains(&retry), "{retry}");
    assert_eq!(list(&b).0, 200, "another key keeps its own rate");

    // Headers past hyper's limit are refused before any handler runs.
    let head = format!(
        "GET /v1/documents HTTP/1.1\r\nhost: x\r\nauthorization: {}\r\nx-padding: {}\r\n\r\n",
        bearer(&b),
        "p".repeat(512 * 1024)
    );
    let (st, _) = raw_request(&s, &head);
    assert_eq!(st, 431);
}

#[test]
fn proxy_mode_takes_the_user_from_trusted_headers_and_expired_keys_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let docs = tmp.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(
        docs.join("hr.md"),
        "# HR memo\n\nThe QZHR bonus pool opens in May.\n",
    )
    .unwrap();
    std::fs::write(
        docs.join("all.md"),
        "# Notice\n\nThe QZHR canteen opens in May.\n",
    )
    .unwrap();
    ok(cairn(&data)
        .args(["--tenant", "acme", "--groups", "hr", "ingest"])
        .arg(docs.join("hr.md")));
    ok(cairn(&data)
        .args(["--tenant", "acme", "ingest"])
        .arg(docs.join("all.md")));
    let s = Server::start_keyed(&data, &[("CAIRN_AUTH__TRUSTED_HEADER", "X-Forwarded-User")]);
    let as_user = |headers: &[(&str, &str)]| {
        let mut r = http().post(&s.url("/v1/search"));
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let (st, b) = send(r.send_json(json!({"query": "QZHR opens May", "mode": "bm25"})));
        (st, sources(&b), b)
    };
    // No header: no caller.
    assert_eq!(as_user(&[]).0, 401);
    // The proxy's user, tenant and groups decide what is read.
    let (st, seen, b) = as_user(&[
        ("X-Forwarded-User", "ann"),
        ("X-Cairn-Tenant", "acme"),
        ("X-Cairn-Groups", "hr"),
    ]);
    assert_eq!(st, 200, "{b}");
    let mut seen = seen;
    seen.sort();
    assert_eq!(seen, ["all.md", "hr.md"]);
    let (_, seen, _) = as_user(&[("X-Forwarded-User", "bob"), ("X-Cairn-Tenant", "acme")]);
    assert_eq!(seen, ["all.md"]);
    let (_, seen, _) = as_user(&[
        ("X-Forwarded-User", "eve"),
        ("X-Cairn-Tenant", "globex"),
        ("X-Cairn-Groups", "hr"),
    ]);
    assert!(seen.is_empty());
    // A role the proxy names must exist; readers may not write.
    let (st, _, b) = as_user(&[("X-Forwarded-User", "ann"), ("X-Cairn-Role", "root")]);
    assert_eq!(st, 401, "{b}");
    let (st, b) = upload_as(
        &s,
        &[("X-Forwarded-User", "ann"), ("X-Cairn-Tenant", "acme")],
    );
    assert_eq!(st, 403, "{b}");
    let (st, b) = upload_as(
        &s,
        &[
            ("X-Forwarded-User", "ann"),
            ("X-Cairn-Tenant", "acme"),
            ("X-Cairn-Role", "writer"),
        ],
    );
    assert_eq!(st, 201, "{b}");
    // A key still works beside the proxy, until it expires.
    let made = json(&ok(cairn(&data).args([
        "--tenant",
        "acme",
        "keys",
        "create",
        "--role",
        "reader",
        "--expires-in-days",
        "1",
        "--json",
    ])));
    let key = made["key"].as_str().unwrap().to_string();
    let id = made["id"].as_str().unwrap().to_string();
    assert!(made["expires_at"].as_i64().unwrap() > made["created_at"].as_i64().unwrap());
    let (st, _) = search(&s, &key, "QZHR");
    assert_eq!(st, 200);
    // A day later (the catalog's clock moved back by a day and a second).
    let catalog = data.join("catalog.sqlite");
    let py = format!(
        "import sqlite3; c = sqlite3.connect({:?}); c.execute(\"UPDATE api_keys SET expires_at = created_at - 1000 WHERE id = ?\", ({id:?},)); c.commit()",
        catalog.display().to_string()
    );
    ok(std::process::Command::new("python3").args(["-c", &py]));
    let (st, b) = search(&s, &key, "QZHR");
    assert_eq!(st, 401, "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("expired"),
        "{b}"
    );
}

fn upload_as(s: &Server, headers: &[(&str, &str)]) -> (u16, Value) {
    let (ctype, form) = multipart(&[("proxy.md", b"# Proxy\n\nWritten through the proxy.\n")]);
    let mut r = http()
        .post(&s.url("/v1/documents"))
        .header("content-type", &ctype);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    send(r.send(&form[..]))
}
