//! The REST API of a real `cairn serve` on a loopback port: search, upload, list, show,
//! delete, and bad input that gets a clear JSON error and changes nothing.

use crate::support::*;
use serde_json::{Value, json};

/// What the server holds: the document list and the results of a fixed search.
fn snapshot(s: &Server) -> (Value, Value) {
    let agent = http();
    let (st, docs) = send(agent.get(&s.url("/v1/documents")).call());
    assert_eq!(st, 200);
    let (st, hits) = send(
        agent
            .post(&s.url("/v1/search"))
            .send_json(json!({"query": "how does the on-call rotation work", "top_k": 5})),
    );
    assert_eq!(st, 200, "{hits}");
    let ids: Vec<Value> = hits["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["chunk_id"].clone())
        .collect();
    (docs, Value::Array(ids))
}

fn assert_error(status: u16, body: &Value, want: u16, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[test]
fn rest_api_round_trip_and_bad_input() {
    let (_tmp, data) = ingested();
    let s = Server::start(&data, &[("CAIRN_SERVER__MAX_BODY_BYTES", "65536")]);
    let agent = http();

    let (st, health) = send(agent.get(&s.url("/healthz")).call());
    assert_eq!(st, 200);
    assert_eq!(health["status"], "ok");

    // Search: every hit cites document, page, span, heading path, with each retriever's rank.
    let (st, body) =
        send(agent.post(&s.url("/v1/search")).send_json(
            json!({"query": "on-call rotation handover", "top_k": 3, "mode": "hybrid"}),
        ));
    assert_eq!(st, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for h in results {
        for field in [
            "chunk_id",
            "doc_id",
            "title",
            "source",
            "page",
            "span",
            "heading_path",
            "text",
            "score",
        ] {
            assert!(!h[field].is_null(), "hit lacks {field}: {h}");
        }
        assert!(!h["bm25"].is_null() || !h["dense"].is_null());
    }
    assert!(body["took_ms"].as_f64().is_some());

    // Graph and mix: the walk over the caller's concept graph, alone and fused with
    // hybrid; each hit says where the graph ranked it, and the graph's time is reported.
    for mode in ["graph", "mix"] {
        let (st, body) =
            send(agent.post(&s.url("/v1/search")).send_json(
                json!({"query": "on-call rotation handover", "top_k": 5, "mode": mode}),
            ));
        assert_eq!(st, 200, "{mode}: {body}");
        let results = body["results"].as_array().unwrap();
        assert!(!results.is_empty(), "{mode}: {body}");
        assert!(
            results
                .iter()
                .any(|h| h["graph"]["rank"].as_u64() == Some(1)),
            "{mode}: the graph's first passage is among the hits: {body}"
        );
        assert!(body["stages"]["graph"].as_f64().is_some(), "{mode}: {body}");
    }

    // Upload: two files in one request.
    let md = b"# Llama grooming\n\n## Shearing\n\nShear the llamas in late spring with the Woolcraft QZ-9 clipper.\n";
    let txt = "Vacation carry-over\n\nUp to five unused vacation days carry over into March under policy VC-2211.\n";
    let (ctype, form) = multipart(&[("llamas.md", md), ("vacation.txt", txt.as_bytes())]);
    let (st, up) = send(
        agent
            .post(&s.url("/v1/documents"))
            .header("content-type", &ctype)
            .send(&form[..]),
    );
    assert_eq!(st, 201, "{up}");
    let uploaded = up["documents"].as_array().unwrap();
    assert_eq!(uploaded.len(), 2);
    assert!(uploaded.iter().all(|d| d["chunks"].as_u64().unwrap() >= 1));
    let llama_id = uploaded[0]["doc_id"].as_str().unwrap().to_string();

    let (st, hits) = send(
        agent
            .post(&s.url("/v1/search"))
            .send_json(json!({"query": "QZ-9 clipper", "mode": "bm25"})),
    );
    assert_eq!(st, 200);
    assert_eq!(hits["results"][0]["doc_id"], llama_id.as_str(), "{hits}");
    assert_eq!(
        hits["results"][0]["heading_path"],
        json!(["Llama grooming", "Shearing"])
    );

    // Filters: doc ids and source prefix restrict the search before ranking.
    let (_, only) = send(
        agent
            .post(&s.url("/v1/search"))
            .send_json(json!({"query": "policy", "filter": {"doc_ids": [llama_id]}})),
    );
    assert!(
        only["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["doc_id"] == llama_id.as_str()),
        "{only}"
    );
    let (_, pre) = send(
        agent
            .post(&s.url("/v1/search"))
            .send_json(json!({"query": "vacation days", "filter": {"source_prefix": "vacation"}})),
    );
    assert!(!pre["results"].as_array().unwrap().is_empty());
    assert!(
        pre["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["source"] == "vacation.txt"),
        "{pre}"
    );

    let (st, one) = send(
        agent
            .get(&s.url(&format!("/v1/documents/{llama_id}")))
            .call(),
    );
    assert_eq!(st, 200);
    assert_eq!(one["document"]["title"], "Llama grooming");
    assert!(!one["chunks"].as_array().unwrap().is_empty());

    // Bad input: a clear error, and nothing stored changes.
    let before = snapshot(&s);
    let (st, b) = send(
        agent
            .post(&s.url("/v1/search"))
            .send_json(json!({"query": "   "})),
    );
    assert_error(st, &b, 400, "bad_request");
    let (st, b) = send(
        agent
            .post(&s.url("/v1/search"))
            .header("content-type", "application/json")
            .send("{\"query\": \"x\""),
    );
    assert_error(st, &b, 400, "bad_request");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("malformed JSON")
    );
    let (st, b) = send(
        agent
            .post(&s.url("/v1/search"))
            .send_json(json!({"query": "x", "mode": "psychic"})),
    );
    assert_error(st, &b, 400, "bad_request");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("psychic"),
        "{b}"
    );
    let (st, b) = send(
        agent
            .post(&s.url("/v1/search"))
            .send_json(json!({"query": "x", "mode": ["graph"]})),
    );
    assert_error(st, &b, 400, "bad_request");
    let (st, b) = send(
        agent
            .post(&s.url("/v1/search"))
            .send_json(json!({"query": "x", "top_k": 0})),
    );
    assert_error(st, &b, 400, "bad_request");
    let (st, b) = send(agent.get(&s.url("/v1/documents/no-such-doc")).call());
    assert_error(st, &b, 404, "not_found");
    let (st, b) = send(agent.delete(&s.url("/v1/documents/no-such-doc")).call());
    assert_error(st, &b, 404, "not_found");
    // An upload over the limit is refused from its declared length, before its body is sent.
    let (st, b) = raw_request(
        &s,
        "POST /v1/documents HTTP/1.1\r\nhost: x\r\ncontent-type: multipart/form-data; boundary=b\r\ncontent-length: 200000\r\nexpect: 100-continue\r\n\r\n",
    );
    assert_error(st, &b, 413, "too_large");
    let (ctype, form) = multipart(&[(
        "binary.txt",
        &[0xff, 0xfe, 0x00, 0x9f, 0x00, 0x00, 0xc3, 0x28][..],
    )]);
    let (st, b) = send(
        agent
            .post(&s.url("/v1/documents"))
            .header("content-type", &ctype)
            .send(&form[..]),
    );
    assert_error(st, &b, 400, "bad_request");
    assert!(
        b["failed"][0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("binary.txt"),
        "{b}"
    );
    let (ctype, form) = multipart(&[("empty.md", b"")]);
    let (st, b) = send(
        agent
            .post(&s.url("/v1/documents"))
            .header("content-type", &ctype)
            .send(&form[..]),
    );
    assert_error(st, &b, 400, "bad_request");
    let (st, b) = send(agent.get(&s.url("/v1/nothing-here")).call());
    assert_error(st, &b, 404, "not_found");
    assert_eq!(snapshot(&s), before, "bad input changed what is stored");

    // Delete: gone from search (both retrievers) and from the list.
    let (st, _) = send(
        agent
            .delete(&s.url(&format!("/v1/documents/{llama_id}")))
            .call(),
    );
    assert_eq!(st, 200);
    for mode in ["bm25", "dense"] {
        let (_, hits) = send(agent.post(&s.url("/v1/search")).send_json(
            json!({"query": "shearing llamas with a clipper", "mode": mode, "top_k": 50}),
        ));
        assert!(
            hits["results"]
                .as_array()
                .unwrap()
                .iter()
                .all(|h| h["doc_id"] != llama_id.as_str()),
            "{mode}: {hits}"
        );
    }
    let (_, docs) = send(agent.get(&s.url("/v1/documents")).call());
    assert!(
        docs["documents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["id"] != llama_id.as_str())
    );
    drop(s);

    // Restart: the upload that was kept is still there and searchable.
    let s = Server::start(&data, &[]);
    let (_, hits) = send(
        http()
            .post(&s.url("/v1/search"))
            .send_json(json!({"query": "VC-2211", "mode": "bm25"})),
    );
    assert_eq!(hits["results"][0]["source"], "vacation.txt", "{hits}");
}

/// A server without the graph (`[graph] enabled = false`) refuses the graph modes with a
/// clear error and serves the others.
#[test]
fn without_the_graph_the_graph_modes_are_refused_clearly() {
    let (_tmp, data) = ingested();
    let s = Server::start(&data, &[("CAIRN_GRAPH__ENABLED", "false")]);
    let agent = http();
    for mode in ["graph", "mix"] {
        let (st, b) = send(
            agent
                .post(&s.url("/v1/search"))
                .send_json(json!({"query": "on-call rotation", "mode": mode})),
        );
        assert_error(st, &b, 400, "bad_request");
        assert!(
            b["error"]["message"].as_str().unwrap().contains("[graph]"),
            "{b}"
        );
        let (st, b) =
            send(agent.post(&s.url("/v1/ask")).send_json(
                json!({"question": "how does the on-call rotation work?", "mode": mode}),
            ));
        assert_error(st, &b, 400, "bad_request");
    }
    let (st, b) = send(
        agent
            .post(&s.url("/v1/search"))
            .send_json(json!({"query": "on-call rotation", "mode": "hybrid"})),
    );
    assert_eq!(st, 200, "{b}");
}
