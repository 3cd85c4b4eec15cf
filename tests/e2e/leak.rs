//! The leak test: many tenants, groups and documents with mixed ACLs, and thousands of
//! requests from random principals across every endpoint and search mode of a real
//! server. No response (results, citations, titles, counts, snippets, error messages) may
//! reveal a document its caller may not read; lists and counts must be exactly what the
//! caller may read.
//!
//! Every document carries a marker word (`mk<tenant><n>q`) in its title and text, so a
//! leak of any part of it shows in the body. Set `CAIRN_LEAK_REQUESTS` and
//! `CAIRN_LEAK_SEED` to run longer or another sequence; the figures are printed at the end.

use crate::support::*;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const TENANTS: [&str; 3] = ["acme", "globex", "initech"];
/// The same group names in every tenant, so tenant walls are tested with groups that match.
const GROUPS: [&str; 6] = ["hr", "eng", "legal", "ops", "sales", "exec"];
const ACLS: [&[&str]; 10] = [
    &[],
    &["hr"],
    &["eng"],
    &["legal"],
    &["ops"],
    &["sales"],
    &["exec"],
    &["hr", "eng"],
    &["legal", "exec"],
    &["ops", "sales"],
];
const WORDS: [&str; 12] = [
    "kiln", "ferry", "salary", "policy", "backup", "vpn", "printer", "leave", "budget", "roadmap",
    "laptop", "badge",
];
/// (role, groups) of the keys each tenant gets besides its admin.
const KEYS: [(&str, &[&str]); 7] = [
    ("writer", &["hr"]),
    ("writer", &["eng", "legal"]),
    ("reader", &["hr"]),
    ("reader", &["ops", "sales"]),
    ("reader", &["exec"]),
    ("reader", &[]),
    ("admin", &["legal"]),
];

#[derive(Clone, Debug)]
struct Doc {
    id: String,
    tenant: String,
    groups: Vec<String>,
    marker: String,
    /// The graph's probes: the names this document mentions, one per group of its ACL (or
    /// the tenant's public one), lower-cased as concept keys are. Every other document of
    /// the tenant with that group mentions it too, so it becomes a concept of a caller's
    /// graph when two of those they may read are live.
    terms: Vec<String>,
}

/// The name every document of `tenant` readable by `group` mentions (`None`: the public
/// documents), as written in the text; a concept once two readable chunks mention it.
fn term(tenant: &str, group: Option<&str>) -> String {
    let group = group.unwrap_or("all");
    let mut g = group.chars();
    let first = g.next().unwrap().to_ascii_uppercase();
    format!("Zq{} {first}{}ward", &tenant[..2], g.as_str())
}

/// The terms of a document of `tenant` with these groups.
fn terms_of(tenant: &str, groups: &[String]) -> Vec<String> {
    if groups.is_empty() {
        return vec![term(tenant, None)];
    }
    groups.iter().map(|g| term(tenant, Some(g))).collect()
}

#[derive(Clone, Debug)]
struct Key {
    key: String,
    tenant: String,
    groups: Vec<String>,
    role: String,
}

impl Key {
    fn reads(&self, d: &Doc) -> bool {
        self.tenant == d.tenant
            && (d.groups.is_empty() || d.groups.iter().any(|g| self.groups.contains(g)))
    }
}

struct World {
    live: Vec<Doc>,
    /// Markers and ids of deleted documents: nobody may see them again.
    gone: Vec<Doc>,
}

impl World {
    /// Whatever of the documents `k` may not read shows in `body`; `ids` also checks ids
    /// (the audit log shows its tenant's document ids to admins, so it checks markers and
    /// other tenants' ids only).
    /// `named`: the id the request itself named (an error may say it back); `sent`: the
    /// document the caller just uploaded (it is told what it sent, even into a group it
    /// is not in); `ids_ok`: ids may show (the audit log, where admins see the ids their
    /// tenant's callers named; what succeeded is checked line by line); `probed`: the
    /// graph name the request itself asked for (lower-cased; an error may say it back).
    /// A graph name shows only to a caller who reads a live document that mentions it.
    fn leaks(
        &self,
        k: Option<&Key>,
        body: &str,
        ids_ok: bool,
        named: Option<&str>,
        sent: Option<&str>,
        probed: Option<&str>,
    ) -> Vec<String> {
        let mut found = Vec::new();
        let lower = body.to_lowercase();
        let mut terms: BTreeSet<String> = BTreeSet::new();
        for d in self.live.iter().chain(&self.gone) {
            terms.extend(d.terms.iter().map(|t| t.to_lowercase()));
        }
        for t in terms {
            let readable = self.live.iter().any(|d| {
                k.is_some_and(|k| k.reads(d)) && d.terms.iter().any(|x| x.to_lowercase() == t)
            });
            if !readable && probed != Some(t.as_str()) && lower.contains(&t) {
                found.push(format!(
                    "the name {t:?}, which no document the caller reads mentions"
                ));
            }
        }
        for d in self.live.iter().chain(&self.gone) {
            let readable = self.live.iter().any(|l| l.id == d.id) && k.is_some_and(|k| k.reads(d));
            if readable || sent == Some(d.id.as_str()) {
                continue;
            }
            if body.contains(&d.marker) {
                found.push(format!("marker {} of {:?}", d.marker, d));
            }
            let id_ok = ids_ok || named == Some(d.id.as_str());
            if !id_ok && body.contains(&d.id) {
                found.push(format!("id of {:?}", d));
            }
        }
        found
    }

    fn readable(&self, k: &Key) -> BTreeSet<String> {
        self.live
            .iter()
            .filter(|d| k.reads(d))
            .map(|d| d.id.clone())
            .collect()
    }
}

fn authed(
    req: ureq::RequestBuilder<ureq::typestate::WithBody>,
    key: Option<&str>,
) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
    match key {
        Some(k) => req.header("authorization", &format!("Bearer {k}")),
        None => req,
    }
}

fn authed_get(
    req: ureq::RequestBuilder<ureq::typestate::WithoutBody>,
    key: Option<&str>,
) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
    match key {
        Some(k) => req.header("authorization", &format!("Bearer {k}")),
        None => req,
    }
}

/// (status, body text).
fn text(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, String) {
    let mut resp = resp.expect("http request");
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .unwrap_or_default();
    (status, body)
}

fn doc_text(title: &str, marker: &str, terms: &[String], rng: &mut StdRng) -> String {
    let mut words: Vec<&str> = (0..8).map(|_| *WORDS.choose(rng).unwrap()).collect();
    words.insert(rng.random_range(0..words.len()), marker);
    let named: String = terms
        .iter()
        .map(|t| format!(" The {t} keeps the {}.", WORDS.choose(rng).unwrap()))
        .collect();
    format!(
        "# {title} {marker}\n\nThe {} note says: {}. Ask {marker} about the {} and the {}.{named}\n",
        WORDS.choose(rng).unwrap(),
        words.join(" "),
        WORDS.choose(rng).unwrap(),
        WORDS.choose(rng).unwrap()
    )
}

fn upload_form(name: &str, body: &str, groups: &[String]) -> (String, Vec<u8>) {
    let (ctype, files) = multipart(&[(name, body.as_bytes())]);
    let boundary = ctype.split("boundary=").nth(1).unwrap().to_string();
    let mut form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"groups\"\r\n\r\n{}\r\n",
        groups.join(",")
    )
    .into_bytes();
    form.extend_from_slice(&files);
    (ctype, form)
}

fn upload(s: &Server, key: &str, name: &str, body: &str, groups: &[String]) -> (u16, Value) {
    let (ctype, form) = upload_form(name, body, groups);
    send(
        http()
            .post(&s.url("/v1/documents"))
            .header("authorization", &format!("Bearer {key}"))
            .header("content-type", &ctype)
            .send(&form[..]),
    )
}

#[test]
fn no_response_reveals_a_document_its_caller_may_not_read() {
    let requests: usize = std::env::var("CAIRN_LEAK_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let seed: u64 = std::env::var("CAIRN_LEAK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(21);
    let mut rng = StdRng::seed_from_u64(seed);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let s = Server::start_keyed(&data, &[]);

    // Each tenant's admin from the CLI (handed to the server), the rest over the API.
    let mut keys: Vec<Key> = Vec::new();
    let mut admins = BTreeMap::new();
    for t in TENANTS {
        let out =
            json(&ok(cairn(&data).args([
                "--tenant", t, "keys", "create", "--role", "admin", "--json",
            ])));
        let key = out["key"].as_str().unwrap().to_string();
        admins.insert(t, key.clone());
        keys.push(Key {
            key,
            tenant: t.into(),
            groups: vec![],
            role: "admin".into(),
        });
        for (role, groups) in KEYS {
            let (st, made) = send(
                http()
                    .post(&s.url("/v1/admin/keys"))
                    .header("authorization", &format!("Bearer {}", admins[t]))
                    .send_json(json!({"role": role, "groups": groups})),
            );
            assert_eq!(st, 201, "{made}");
            keys.push(Key {
                key: made["key"].as_str().unwrap().to_string(),
                tenant: t.into(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
                role: role.into(),
            });
        }
    }
    // A revoked key, to be refused like a wrong one.
    let (_, made) = send(
        http()
            .post(&s.url("/v1/admin/keys"))
            .header("authorization", &format!("Bearer {}", admins["acme"]))
            .send_json(json!({"role": "writer", "groups": ["hr"]})),
    );
    let revoked = made["key"].as_str().unwrap().to_string();
    let (st, _) = send(
        http()
            .delete(&s.url(&format!("/v1/admin/keys/{}", &revoked[6..22])))
            .header("authorization", &format!("Bearer {}", admins["acme"]))
            .call(),
    );
    assert_eq!(st, 200);

    // Documents of every ACL in every tenant, uploaded by the admins.
    let mut world = World {
        live: Vec::new(),
        gone: Vec::new(),
    };
    for (ti, t) in TENANTS.iter().enumerate() {
        for (n, acl) in ACLS.iter().enumerate() {
            let marker = format!("mk{}{ti}{n}q", &t[..2]);
            let groups: Vec<String> = acl.iter().map(|g| g.to_string()).collect();
            let terms = terms_of(t, &groups);
            let body = doc_text(&format!("Memo {n}"), &marker, &terms, &mut rng);
            let (st, up) = upload(&s, &admins[t], &format!("memo-{n}.md"), &body, &groups);
            assert_eq!(st, 201, "{up}");
            world.live.push(Doc {
                id: up["documents"][0]["doc_id"].as_str().unwrap().to_string(),
                tenant: t.to_string(),
                groups,
                marker,
                terms,
            });
        }
    }
    let documents = world.live.len();

    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut took: BTreeMap<&str, f64> = BTreeMap::new();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut leaks: Vec<String> = Vec::new();
    let mut uploaded = 0usize;
    // Graph concepts found by name: the probes reached real concepts, not only 404s.
    let mut concepts_found = 0usize;
    let bad_keys = [
        revoked.clone(),
        format!("cairn_{}_{}", "a".repeat(16), "b".repeat(64)),
        "not-a-key".to_string(),
    ];
    for i in 0..requests {
        // 4 % of requests come without a key or with a bad one.
        let k: Option<&Key> = if rng.random_range(0..100) < 4 {
            None
        } else {
            Some(keys.choose(&mut rng).unwrap())
        };
        let presented: Option<String> = match k {
            Some(k) => Some(k.key.clone()),
            None => [None, Some(bad_keys.choose(&mut rng).unwrap().clone())]
                .choose(&mut rng)
                .unwrap()
                .clone(),
        };
        let key = presented.as_deref();
        let any_doc = world
            .live
            .iter()
            .chain(&world.gone)
            .collect::<Vec<_>>()
            .choose(&mut rng)
            .map(|d| (*d).clone())
            .unwrap();
        let mut query: Vec<String> = (0..rng.random_range(1..=3))
            .map(|_| WORDS.choose(&mut rng).unwrap().to_string())
            .collect();
        if rng.random_bool(0.5) {
            // Ask for a document's marker: readable or not.
            query.push(any_doc.marker.clone());
        }
        let query = query.join(" ");
        let roll = rng.random_range(0..100);
        let mut named: Option<String> = None;
        let mut sent: Option<String> = None;
        let mut probed: Option<String> = None;
        let started = std::time::Instant::now();
        let (what, status, body, ids_ok): (&str, u16, String, bool) = match roll {
            0..=35 => {
                let mode = [
                    "bm25", "dense", "hybrid", "hybrid", "graph", "mix", "global",
                ][roll % 7];
                let mut req =
                    json!({"query": query, "mode": mode, "top_k": rng.random_range(1..=20)});
                let what = match rng.random_range(0..18) {
                    0..=2 => {
                        req["filter"] = json!({"doc_ids": [any_doc.id]});
                        named = Some(any_doc.id.clone());
                        "search+doc_ids"
                    }
                    3 if mode == "hybrid" => {
                        req["rerank"] = json!(true);
                        "search hybrid+rerank"
                    }
                    _ => match mode {
                        "bm25" => "search bm25",
                        "dense" => "search dense",
                        "graph" => "search graph",
                        "mix" => "search mix",
                        "global" => "search global",
                        _ => "search hybrid",
                    },
                };
                let (st, b) = text(authed(http().post(&s.url("/v1/search")), key).send_json(&req));
                if st == 200 {
                    let v: Value = serde_json::from_str(&b).unwrap();
                    for h in v["results"].as_array().unwrap() {
                        let id = h["doc_id"].as_str().unwrap();
                        let k = k.unwrap();
                        assert!(
                            world.live.iter().any(|d| d.id == id && k.reads(d)),
                            "request {i}: hit of a document the key may not read: {h}"
                        );
                    }
                }
                (what, st, b, false)
            }
            36..=39 => {
                // The graph's endpoints, probed with the names of any tenant and group.
                let any_term = {
                    let t = TENANTS.choose(&mut rng).unwrap();
                    let g = [None, Some(*GROUPS.choose(&mut rng).unwrap())]
                        .choose(&mut rng)
                        .copied()
                        .unwrap();
                    term(t, g).to_lowercase()
                };
                let (what, route) = match roll {
                    36 => ("graph concepts", "/v1/graph/concepts?q=zq".to_string()),
                    37 => {
                        probed = Some(any_term.clone());
                        let route = format!("/v1/graph/concepts/{}", any_term.replace(' ', "%20"));
                        ("graph concept", route)
                    }
                    38 => (
                        "graph communities",
                        "/v1/graph/communities?limit=50".to_string(),
                    ),
                    _ => {
                        let id = rng.random_range(1..=6);
                        ("graph community", format!("/v1/graph/communities/{id}"))
                    }
                };
                let (st, b) = text(authed_get(http().get(&s.url(&route)), key).call());
                if what == "graph concept" && st == 200 {
                    concepts_found += 1;
                    let k = k.unwrap();
                    assert!(
                        world
                            .live
                            .iter()
                            .any(|d| k.reads(d)
                                && d.terms.iter().any(|t| t.to_lowercase() == any_term)),
                        "request {i}: the concept {any_term:?} for {k:?}: {b}"
                    );
                }
                (what, st, b, false)
            }
            40..=41 => {
                let stream = rng.random_bool(0.4);
                let req = json!({"question": query, "stream": stream, "top_k": 5});
                let (st, b) = text(authed(http().post(&s.url("/v1/ask")), key).send_json(&req));
                (if stream { "ask stream" } else { "ask" }, st, b, false)
            }
            42 => {
                let req =
                    json!({"model": "cairn", "messages": [{"role": "user", "content": query}]});
                let (st, b) =
                    text(authed(http().post(&s.url("/v1/chat/completions")), key).send_json(&req));
                ("chat completions", st, b, false)
            }
            43..=57 => {
                let (st, b) = text(authed_get(http().get(&s.url("/v1/documents")), key).call());
                if st == 200 {
                    let v: Value = serde_json::from_str(&b).unwrap();
                    let listed: BTreeSet<String> = v["documents"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d["id"].as_str().unwrap().to_string())
                        .collect();
                    assert_eq!(listed, world.readable(k.unwrap()), "request {i}: list");
                }
                ("documents list", st, b, false)
            }
            58..=67 => {
                let route = format!("/v1/documents/{}", any_doc.id);
                named = Some(any_doc.id.clone());
                let (st, b) = text(authed_get(http().get(&s.url(&route)), key).call());
                let expect_ok = k.is_some_and(|k| k.reads(&any_doc))
                    && world.live.iter().any(|d| d.id == any_doc.id);
                if key.is_some() && k.is_some() {
                    assert_eq!(
                        st == 200,
                        expect_ok,
                        "request {i}: show {any_doc:?}: {st} {b}"
                    );
                }
                ("documents show", st, b, false)
            }
            68..=71 => {
                let route = format!("/v1/documents/{}/original", any_doc.id);
                named = Some(any_doc.id.clone());
                let (st, b) = text(authed_get(http().get(&s.url(&route)), key).call());
                ("documents original", st, b, false)
            }
            72..=74 => {
                let route = format!("/v1/documents/{}/reindex", any_doc.id);
                named = Some(any_doc.id.clone());
                let (st, b) = text(authed(http().post(&s.url(&route)), key).send_empty());
                ("documents reindex", st, b, false)
            }
            75..=77 => {
                // Writers and admins upload into their own groups, or try others' groups.
                let marker = format!("mkup{uploaded}q");
                let groups: Vec<String> = match k {
                    Some(k) if !k.groups.is_empty() && rng.random_bool(0.8) => {
                        vec![k.groups.choose(&mut rng).unwrap().clone()]
                    }
                    _ => vec![GROUPS.choose(&mut rng).unwrap().to_string()],
                };
                let tenant = k.map_or(TENANTS[0], |k| k.tenant.as_str());
                let terms = terms_of(tenant, &groups);
                let body = doc_text("Upload", &marker, &terms, &mut rng);
                let (ctype, form) = upload_form(&format!("up-{uploaded}.md"), &body, &groups);
                let (st, b) = text(
                    authed(http().post(&s.url("/v1/documents")), key)
                        .header("content-type", &ctype)
                        .send(&form[..]),
                );
                let k_ok = k.is_some_and(|k| {
                    k.role == "admin"
                        || k.role == "writer" && groups.iter().all(|g| k.groups.contains(g))
                });
                assert_eq!(
                    st == 201,
                    k_ok,
                    "request {i}: upload {groups:?} by {k:?}: {b}"
                );
                if st == 201 {
                    let v: Value = serde_json::from_str(&b).unwrap();
                    let id = v["documents"][0]["doc_id"].as_str().unwrap().to_string();
                    // The uploader is told of what it sent, even into a group it is not in.
                    sent = Some(id.clone());
                    world.live.push(Doc {
                        id,
                        tenant: k.unwrap().tenant.clone(),
                        groups,
                        marker,
                        terms,
                    });
                    uploaded += 1;
                }
                ("upload", st, b, false)
            }
            78..=80 => {
                // Half the time one of the uploads, half the time a document the key may
                // not delete (another tenant's or group's, or any for a reader).
                let uploads: Vec<&Doc> = world
                    .live
                    .iter()
                    .filter(|d| d.marker.starts_with("mkup"))
                    .collect();
                let forbidden: Vec<&Doc> = world
                    .live
                    .iter()
                    .chain(&world.gone)
                    .filter(|d| k.is_none_or(|k| !k.reads(d) || k.role == "reader"))
                    .collect();
                let pool = if rng.random_bool(0.5) && !uploads.is_empty() {
                    uploads
                } else {
                    forbidden
                };
                let any_doc = pool
                    .choose(&mut rng)
                    .map_or(any_doc.clone(), |d| (*d).clone());
                let route = format!("/v1/documents/{}", any_doc.id);
                named = Some(any_doc.id.clone());
                let (st, b) = text(authed_get(http().delete(&s.url(&route)), key).call());
                if st == 200 {
                    let k = k.unwrap();
                    assert!(
                        k.reads(&any_doc) && k.role != "reader",
                        "request {i}: delete by {k:?}"
                    );
                    world.live.retain(|d| d.id != any_doc.id);
                    world.gone.push(any_doc.clone());
                }
                ("delete", st, b, false)
            }
            81..=86 => {
                let (st, b) = text(authed_get(http().get(&s.url("/healthz")), key).call());
                if let (200, Some(k)) = (st, k) {
                    let v: Value = serde_json::from_str(&b).unwrap();
                    assert_eq!(
                        v["documents"].as_u64(),
                        Some(world.readable(k).len() as u64),
                        "request {i}: healthz count"
                    );
                }
                ("healthz", st, b, false)
            }
            87..=88 => {
                let (st, b) = text(authed_get(http().get(&s.url("/v1/models")), key).call());
                ("models", st, b, false)
            }
            89 => {
                // A key of another tenant cannot be revoked (404); making one needs admin.
                let other = keys
                    .iter()
                    .filter(|o| k.is_none_or(|k| o.tenant != k.tenant))
                    .collect::<Vec<_>>();
                let victim = other.choose(&mut rng).unwrap();
                let route = format!("/v1/admin/keys/{}", &victim.key[6..22]);
                let (st, b) = text(authed_get(http().delete(&s.url(&route)), key).call());
                assert_ne!(st, 200, "request {i}: revoked another tenant's key");
                ("admin keys revoke", st, b, false)
            }
            90 => {
                let req = json!({"role": "reader", "groups": [GROUPS.choose(&mut rng).unwrap()]});
                let (st, b) =
                    text(authed(http().post(&s.url("/v1/admin/keys")), key).send_json(&req));
                assert_eq!(
                    st == 201,
                    k.is_some_and(|k| k.role == "admin"),
                    "request {i}: key creation by {k:?}: {b}"
                );
                ("admin keys create", st, b, false)
            }
            91 => {
                // Who the key is; readiness; metrics (other tenants' admins are no operators).
                let path = ["/v1/me", "/readyz", "/metrics"][rng.random_range(0..3)];
                let (st, b) = text(authed_get(http().get(&s.url(path)), key).call());
                match (path, k) {
                    ("/v1/me", Some(k)) => {
                        let v: Value = serde_json::from_str(&b).unwrap();
                        assert_eq!(
                            (v["tenant"].as_str(), v["role"].as_str()),
                            (Some(k.tenant.as_str()), Some(k.role.as_str()))
                        );
                    }
                    ("/metrics", Some(_)) => {
                        assert_eq!(st, 403, "request {i}: metrics to a tenant admin")
                    }
                    ("/readyz", _) => assert_eq!(st, 200),
                    _ => {}
                }
                ("me, readyz, metrics", st, b, false)
            }
            92 => {
                let (st, b) = text(authed_get(http().get(&s.url("/v1/admin/keys")), key).call());
                if st == 200 {
                    assert!(
                        !b.contains(&k.unwrap().key[23..]),
                        "request {i}: a secret in the key list"
                    );
                }
                ("admin keys", st, b, false)
            }
            93..=95 => {
                let (st, b) =
                    text(authed_get(http().get(&s.url("/v1/admin/audit?limit=200")), key).call());
                // Admins see the ids their tenant's callers named (a probe of another
                // tenant's id is logged as not_found); what succeeded touched their tenant
                // only. Markers are checked below like everywhere.
                if st == 200 {
                    let v: Value = serde_json::from_str(&b).unwrap();
                    let k = k.unwrap();
                    for l in v["lines"].as_array().unwrap() {
                        assert_eq!(l["tenant"], k.tenant.as_str(), "request {i}: {l}");
                        let target = l["target"].as_str().unwrap_or_default();
                        if l["outcome"] == "ok" {
                            for d in world.live.iter().chain(&world.gone) {
                                assert!(
                                    d.tenant == k.tenant || !target.contains(&d.id),
                                    "request {i}: another tenant's document in {l}"
                                );
                            }
                        }
                    }
                }
                ("admin audit", st, b, true)
            }
            _ => {
                let req = json!({"sources": [tmp.path()], "dry_run": true});
                let (st, b) =
                    text(authed(http().post(&s.url("/v1/admin/reindex")), key).send_json(&req));
                assert_ne!(st, 200, "request {i}: an API key read the server's disk");
                ("admin reindex", st, b, false)
            }
        };
        if k.is_none() && !matches!(what, "healthz" | "me, readyz, metrics") {
            assert_eq!(
                status, 401,
                "request {i}: {what} without a valid key: {body}"
            );
        }
        *counts.entry(what).or_default() += 1;
        *took.entry(what).or_default() += started.elapsed().as_secs_f64();
        *statuses.entry(status).or_default() += 1;
        let found = world.leaks(
            k,
            &body,
            ids_ok,
            named.as_deref(),
            sent.as_deref(),
            probed.as_deref(),
        );
        if !found.is_empty() {
            leaks.push(format!(
                "request {i} ({what}, key {:?}): {}\n{}",
                k.map(|k| (&k.tenant, &k.groups, &k.role)),
                found.join("; "),
                &body[..body.len().min(2000)]
            ));
        }
    }
    println!(
        "leak test: seed {seed}, {} tenants, {} groups, {} keys (+{} bad), {documents} documents ({uploaded} more uploaded, {} deleted), {requests} requests, leaks {}",
        TENANTS.len(),
        GROUPS.len(),
        keys.len(),
        bad_keys.len() + 1,
        world.gone.len(),
        leaks.len()
    );
    println!("requests by endpoint and mode: {counts:?}");
    println!("statuses: {statuses:?}");
    let ms: BTreeMap<&str, String> = took
        .iter()
        .map(|(w, t)| (*w, format!("{:.1} ms", t * 1000.0 / counts[w] as f64)))
        .collect();
    println!("mean time per request: {ms:?}");
    assert!(
        leaks.is_empty(),
        "{} leaks:\n{}",
        leaks.len(),
        leaks.join("\n\n")
    );
    // Every endpoint and mode was exercised.
    assert_eq!(counts.len(), 29, "{counts:?}");
    assert!(concepts_found > 0, "no graph probe found a concept");
}
