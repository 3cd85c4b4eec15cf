//! The concept graph over a real server and the CLI: graph and mix search, the graph's
//! endpoints (`/v1/graph/concepts`, `/v1/graph/concepts/{key}`) and `cairn graph`, each
//! seeing only the graph of what its caller may read (another tenant's copy of a concept
//! never joins it); a bad key, another tenant's concept
//! and hostile input get clear errors.

use crate::support::*;
use serde_json::{Value, json};
use std::path::Path;

fn make_key(data: &Path, tenant: &str, groups: &str) -> String {
    let mut cmd = cairn(data);
    cmd.args(["--tenant", tenant]);
    if !groups.is_empty() {
        cmd.args(["--groups", groups]);
    }
    let out = json(&ok(
        cmd.args(["keys", "create", "--role", "reader", "--json"])
    ));
    out["key"].as_str().expect("key").to_string()
}

fn get(s: &Server, key: &str, path: &str) -> (u16, Value) {
    send(
        http()
            .get(&s.url(path))
            .header("authorization", &format!("Bearer {key}"))
            .call(),
    )
}

fn keys(list: &Value) -> Vec<String> {
    list["concepts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn each_caller_sees_the_graph_of_what_they_may_read_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Two readable documents that share the Quartz Relay; one for the "sec" group that
    // links it to the Obsidian Vault; another tenant's document on the Obsidian Vault.
    let write = |name: &str, text: &str| {
        let path = tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let a = write(
        "relay.md",
        "# Relay\n\nThe Beacon Feed reaches the Harbor Gateway.\n\nRestart the Quartz Relay when the Beacon Feed stalls.\n",
    );
    let b = write(
        "gateway.md",
        "# Gateway\n\nThe Harbor Gateway accepts the Beacon Feed over TLS.\n\nThe Quartz Relay and the Harbor Gateway share one certificate.\n",
    );
    let secret = write(
        "vault.md",
        "# Vault\n\nThe Obsidian Vault signs the Quartz Relay certificate.\n\nRotate the Obsidian Vault key with the Quartz Relay stopped.\n",
    );
    let secret_keys = write(
        "keys.md",
        "# Keys\n\nThe Obsidian Vault stores the Harbor Gateway keys.\n",
    );
    let other = write(
        "other.md",
        "# Other\n\nThe Obsidian Vault of another company.\n\nIts Obsidian Vault holds the Quartz Relay keys.\n",
    );
    ok(cairn(&data).arg("ingest").arg(&a).arg(&b));
    ok(cairn(&data)
        .args(["--groups", "sec", "ingest"])
        .arg(&secret)
        .arg(&secret_keys));
    ok(cairn(&data)
        .args(["--tenant", "globex", "ingest"])
        .arg(&other));

    // The CLI: the graph of what the caller reads.
    let stats = json(&ok(cairn(&data).args(["graph", "stats", "--json"])));
    assert!(stats["concepts"].as_u64().unwrap() >= 3, "{stats}");
    let listed = json(&ok(cairn(&data).args(["graph", "concepts", "--json"])));
    let all = keys(&listed);
    assert!(all.contains(&"quartz relay".to_string()), "{listed}");
    assert!(!all.contains(&"obsidian vault".to_string()), "{listed}");
    let sec =
        json(&ok(cairn(&data).args([
            "--groups", "sec", "graph", "concepts", "vault", "--json",
        ])));
    assert_eq!(keys(&sec), ["obsidian vault"], "{sec}");
    let shown = json(&ok(cairn(&data).args([
        "graph",
        "show",
        "Quartz Relay",
        "--json",
    ])));
    assert_eq!(shown["concept"]["key"], "quartz relay", "{shown}");
    let passages = shown["passages"].as_array().unwrap();
    assert!(!passages.is_empty(), "{shown}");
    for p in passages {
        let source = p["source"].as_str().unwrap();
        assert!(
            source.ends_with("relay.md") || source.ends_with("gateway.md"),
            "only readable passages: {shown}"
        );
    }
    let missing = cairn(&data)
        .args(["graph", "show", "obsidian vault"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no concept"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );

    // The server, with keys.
    let reader = make_key(&data, "default", "");
    let sec_reader = make_key(&data, "default", "sec");
    let globex = make_key(&data, "globex", "");
    let s = Server::start_keyed(&data, &[]);

    let (st, b) = get(&s, "cairn_0000000000000000_bad", "/v1/graph/concepts");
    assert_eq!(st, 401, "{b}");
    let (st, b) = send(http().get(&s.url("/v1/graph/concepts")).call());
    assert_eq!(st, 401, "no key: {b}");

    let (st, list) = get(&s, &reader, "/v1/graph/concepts?q=relay");
    assert_eq!(st, 200, "{list}");
    assert_eq!(keys(&list), ["quartz relay"]);
    let (st, list) = get(&s, &reader, "/v1/graph/concepts?q=vault");
    assert_eq!(st, 200, "{list}");
    assert!(keys(&list).is_empty(), "a group's concept: {list}");
    let (st, list) = get(&s, &sec_reader, "/v1/graph/concepts?q=vault");
    assert_eq!((st, keys(&list)), (200, vec!["obsidian vault".to_string()]));

    // Another tenant's concept is no concept at all to this caller, and the reverse.
    let (st, b) = get(&s, &reader, "/v1/graph/concepts/obsidian%20vault");
    assert_eq!(st, 404, "{b}");
    let (st, own) = get(&s, &globex, "/v1/graph/concepts?q=");
    assert_eq!(st, 200, "{own}");
    assert!(!keys(&own).contains(&"harbor gateway".to_string()), "{own}");
    let (st, b) = get(&s, &globex, "/v1/graph/concepts/harbor%20gateway");
    assert_eq!(st, 404, "{b}");

    // A neighbourhood: edges with the passages that name both ends.
    let (st, relay) = get(&s, &reader, "/v1/graph/concepts/Quartz%20Relay?limit=5");
    assert_eq!(st, 200, "{relay}");
    let neighbours = relay["neighbours"].as_array().unwrap();
    assert!(
        neighbours
            .iter()
            .all(|n| n["concept"]["key"] != "obsidian vault"),
        "{relay}"
    );
    let ids: Vec<&Value> = relay["passages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["chunk_id"])
        .collect();
    for n in neighbours {
        for e in n["evidence"].as_array().unwrap() {
            assert!(ids.contains(&e), "evidence {e} listed in passages: {relay}");
        }
    }
    // The sec reader's neighbourhood of the same concept reaches the vault.
    let (_, relay_sec) = get(&s, &sec_reader, "/v1/graph/concepts/quartz%20relay");
    let sec_keys: Vec<&str> = relay_sec["neighbours"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["concept"]["key"].as_str().unwrap())
        .collect();
    assert!(sec_keys.contains(&"obsidian vault"), "{relay_sec}");

    // Hostile input: clear errors, nothing changed.
    let long = "q".repeat(5000);
    let (st, b) = get(&s, &reader, &format!("/v1/graph/concepts?q={long}"));
    assert_eq!(st, 400, "{b}");
    let (st, b) = get(&s, &reader, "/v1/graph/concepts?limit=0");
    assert_eq!(st, 400, "{b}");
    let (st, b) = get(&s, &reader, "/v1/graph/concepts?limit=-3");
    assert_eq!(st, 400, "{b}");
    let (st, b) = get(&s, &reader, "/v1/graph/concepts?tenant=globex");
    assert_eq!(st, 400, "an unknown parameter cannot widen the scope: {b}");
    let (st, b) = get(&s, &reader, "/v1/graph/concepts/%2e%2e%2f%00%27%3b%20drop");
    assert_eq!(st, 404, "{b}");
    let (st, after) = get(&s, &reader, "/v1/graph/concepts?q=relay");
    assert_eq!((st, keys(&after)), (200, vec!["quartz relay".to_string()]));

    // The concepts a passage mentions: for a chunk the caller reads, its concepts; for one
    // they may not read, nothing (not even that it exists).
    let first_hit = |key: &str, query: &str| -> i64 {
        let (st, hits) = send(
            http()
                .post(&s.url("/v1/search"))
                .header("authorization", &format!("Bearer {key}"))
                .send_json(json!({"query": query, "mode": "bm25", "top_k": 1})),
        );
        assert_eq!(st, 200, "{hits}");
        hits["results"][0]["chunk_id"].as_i64().unwrap()
    };
    let relay_chunk = first_hit(&reader, "restart the relay when the feed stalls");
    let (st, of) = get(
        &s,
        &reader,
        &format!("/v1/graph/concepts?chunk={relay_chunk}"),
    );
    assert_eq!(st, 200, "{of}");
    assert!(keys(&of).contains(&"quartz relay".to_string()), "{of}");
    let vault_chunk = first_hit(&sec_reader, "who signs the relay certificate");
    let (st, of) = get(
        &s,
        &sec_reader,
        &format!("/v1/graph/concepts?chunk={vault_chunk}"),
    );
    assert!(
        st == 200 && keys(&of).contains(&"obsidian vault".to_string()),
        "{of}"
    );
    let (st, of) = get(
        &s,
        &reader,
        &format!("/v1/graph/concepts?chunk={vault_chunk}"),
    );
    assert_eq!((st, keys(&of)), (200, Vec::<String>::new()), "{of}");
    let (st, b) = get(&s, &reader, "/v1/graph/concepts?chunk=notanumber");
    assert_eq!(st, 400, "{b}");

    // Graph and mix search answer from the caller's documents only.
    for mode in ["graph", "mix"] {
        for (key, may_see_vault) in [(&reader, false), (&sec_reader, true), (&globex, true)] {
            let (st, hits) = send(
                http()
                    .post(&s.url("/v1/search"))
                    .header("authorization", &format!("Bearer {key}"))
                    .send_json(json!({"query": "who signs the Quartz Relay certificate", "mode": mode, "top_k": 10})),
            );
            assert_eq!(st, 200, "{hits}");
            let sources: Vec<String> = hits["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| file_name(h["source"].as_str().unwrap()))
                .collect();
            assert!(!sources.is_empty(), "{mode}: {hits}");
            if key == &globex {
                assert!(
                    sources.iter().all(|f| f == "other.md"),
                    "{mode}: {sources:?}"
                );
            } else {
                assert!(
                    !sources.contains(&"other.md".to_string()),
                    "{mode}: {sources:?}"
                );
                assert_eq!(
                    sources.contains(&"vault.md".to_string()),
                    may_see_vault,
                    "{mode}: {sources:?}"
                );
            }
        }
    }
}

fn community_keys(list: &Value) -> Vec<String> {
    let mut keys: Vec<String> = list["communities"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| {
            let top = c["top_concepts"].as_array().unwrap().iter();
            let named = top.map(|x| x["key"].as_str().unwrap().to_string());
            let related = c["relations"].as_array().unwrap().iter().flat_map(|r| {
                [
                    r["a"].as_str().unwrap().to_string(),
                    r["b"].as_str().unwrap().to_string(),
                ]
            });
            named.chain(related).collect::<Vec<_>>()
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

#[test]
fn communities_are_found_in_what_the_caller_may_read() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let write = |name: &str, text: &str| {
        let path = tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    // Readable to all: the Beacon Feed and the Harbor Gateway share two sentences, the
    // Quartz Relay and the Signal Lamp two others (each pair more often together than
    // chance). For the "sec" group: the Obsidian Vault and the Quartz Relay share two.
    // Tenant globex has one document, too little for a concept.
    let feed = write(
        "feed.md",
        "# Feed\n\nThe Beacon Feed reaches the Harbor Gateway.\n\nRestart the Quartz Relay when the Signal Lamp stalls.\n",
    );
    let gateway = write(
        "gateway.md",
        "# Gateway\n\nThe Harbor Gateway accepts the Beacon Feed over TLS.\n\nThe Quartz Relay sits behind the Signal Lamp.\n",
    );
    let vault = write(
        "vault.md",
        "# Vault\n\nThe Obsidian Vault signs the Quartz Relay certificate.\n\nRotate the Obsidian Vault key with the Quartz Relay stopped.\n",
    );
    let keys_md = write(
        "keys.md",
        "# Keys\n\nThe Obsidian Vault stores the Harbor Gateway keys.\n",
    );
    let other = write(
        "other.md",
        "# Other\n\nThe Obsidian Vault and the Quartz Relay of another company.\n",
    );
    ok(cairn(&data).arg("ingest").arg(&feed).arg(&gateway));
    ok(cairn(&data)
        .args(["--groups", "sec", "ingest"])
        .arg(&vault)
        .arg(&keys_md));
    ok(cairn(&data)
        .args(["--tenant", "globex", "ingest"])
        .arg(&other));

    // The CLI.
    let listed = json(&ok(cairn(&data).args(["graph", "communities", "--json"])));
    let seen = community_keys(&listed);
    assert!(seen.contains(&"beacon feed".to_string()), "{listed}");
    assert!(seen.contains(&"harbor gateway".to_string()), "{listed}");
    assert!(!seen.contains(&"obsidian vault".to_string()), "{listed}");
    let sec = json(&ok(cairn(&data).args([
        "--groups",
        "sec",
        "graph",
        "communities",
        "vault",
        "--json",
    ])));
    assert!(
        community_keys(&sec).contains(&"obsidian vault".to_string()),
        "{sec}"
    );
    let first = listed["communities"][0]["id"].as_str().unwrap().to_string();
    let shown =
        String::from_utf8(ok(cairn(&data).args(["graph", "community", &first])).stdout).unwrap();
    assert!(shown.contains("representative passages:"), "{shown}");
    assert!(
        shown.contains("feed.md") || shown.contains("Feed"),
        "{shown}"
    );
    let missing = cairn(&data)
        .args(["graph", "community", "99.9"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no community"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );

    // The server.
    let reader = make_key(&data, "default", "");
    let sec_reader = make_key(&data, "default", "sec");
    let globex = make_key(&data, "globex", "");
    let s = Server::start_keyed(&data, &[]);
    let (st, b) = get(&s, "cairn_0000000000000000_bad", "/v1/graph/communities");
    assert_eq!(st, 401, "{b}");
    let (st, b) = send(http().get(&s.url("/v1/graph/communities/1")).call());
    assert_eq!(st, 401, "no key: {b}");

    let (st, list) = get(&s, &reader, "/v1/graph/communities");
    assert_eq!(st, 200, "{list}");
    assert_eq!(community_keys(&list), seen, "the CLI and the API agree");
    let (st, list) = get(&s, &sec_reader, "/v1/graph/communities?q=obsidian");
    assert_eq!(st, 200, "{list}");
    let vault_id = list["communities"][0]["id"].as_str().unwrap().to_string();
    // Ids name communities of the caller's own graph: the reader's community with the
    // same id (if any) holds none of the group's concepts, and globex has none at all.
    let (st, b) = get(&s, &reader, &format!("/v1/graph/communities/{vault_id}"));
    assert!(
        st == 404 || (st == 200 && !b.to_string().contains("obsidian")),
        "{st} {b}"
    );
    let (st, own) = get(&s, &globex, "/v1/graph/communities");
    assert_eq!((st, own["total"].as_u64()), (200, Some(0)), "{own}");
    let (st, b) = get(&s, &globex, "/v1/graph/communities/1");
    assert_eq!(st, 404, "{b}");

    // A report's passages: every chunk it names, all readable.
    let (st, report) = get(&s, &reader, &format!("/v1/graph/communities/{first}"));
    assert_eq!(st, 200, "{report}");
    let passages = report["passages"].as_array().unwrap();
    let ids: Vec<&Value> = passages.iter().map(|p| &p["chunk_id"]).collect();
    assert!(!ids.is_empty(), "{report}");
    for id in report["representative"].as_array().unwrap() {
        assert!(ids.contains(&id), "{id} among the passages: {report}");
    }
    for p in passages {
        let source = file_name(p["source"].as_str().unwrap());
        assert!(source == "feed.md" || source == "gateway.md", "{report}");
    }

    // Hostile input: clear errors.
    let long = "q".repeat(5000);
    for bad in [
        format!("/v1/graph/communities?q={long}"),
        "/v1/graph/communities?level=99".to_string(),
        "/v1/graph/communities?level=-1".to_string(),
        "/v1/graph/communities?limit=0".to_string(),
        "/v1/graph/communities?tenant=globex".to_string(),
        format!("/v1/graph/communities/{long}"),
    ] {
        let (st, b) = get(&s, &reader, &bad);
        assert_eq!(st, 400, "{bad}: {b}");
        assert!(b["error"]["message"].is_string(), "{b}");
    }
    let (st, b) = get(
        &s,
        &reader,
        "/v1/graph/communities/%2e%2e%2f%00%27%3b%20drop",
    );
    assert_eq!(st, 404, "{b}");
    let (st, again) = get(&s, &reader, "/v1/graph/communities");
    assert_eq!((st, community_keys(&again)), (200, seen));
    let communities = again["total"].as_u64().unwrap();

    // Global search: one readable passage per community of the caller's graph, each naming
    // the community it stands for.
    let global = |key: &str| -> Value {
        let (st, hits) = send(
            http()
                .post(&s.url("/v1/search"))
                .header("authorization", &format!("Bearer {key}"))
                .send_json(json!({"query": "what are these documents about?", "mode": "global", "top_k": 10})),
        );
        assert_eq!(st, 200, "{hits}");
        hits
    };
    let hits = global(&reader);
    let results = hits["results"].as_array().unwrap();
    assert_eq!(
        results.len() as u64,
        communities,
        "one per community: {hits}"
    );
    let mut ids: Vec<&str> = results
        .iter()
        .map(|h| h["community"]["id"].as_str().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), results.len(), "distinct communities: {hits}");
    for h in results {
        let source = file_name(h["source"].as_str().unwrap());
        assert!(source == "feed.md" || source == "gateway.md", "{hits}");
    }
    let sec_hits = global(&sec_reader);
    let titles: Vec<&str> = sec_hits["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["community"]["title"].as_str().unwrap())
        .collect();
    assert!(
        titles.iter().any(|t| t.contains("obsidian vault")),
        "{sec_hits}"
    );
    let none = global(&globex);
    assert_eq!(none["results"].as_array().unwrap().len(), 0, "{none}");

    // And a question in global mode answers from those passages.
    let (st, answer) = send(
        http()
            .post(&s.url("/v1/ask"))
            .header("authorization", &format!("Bearer {reader}"))
            .send_json(json!({"question": "What do these documents cover?", "mode": "global"})),
    );
    assert_eq!(st, 200, "{answer}");
    for c in answer["citations"].as_array().unwrap() {
        let source = file_name(c["source"].as_str().unwrap());
        assert!(source == "feed.md" || source == "gateway.md", "{answer}");
    }
}
