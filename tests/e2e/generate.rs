//! Written answers with the packaged SmolLM2-135M (`[generate] backend = "local"`): the
//! answer streams token by token over SSE and cites only retrieved passages; the
//! OpenAI-compatible endpoint answers over the knowledge base and as a plain LLM server;
//! and a second cairn with `backend = "openai"` uses the first one's endpoint as its
//! generator (a real server, not a mock), with clear 502 / 504 answers when that server is
//! down or silent.

use crate::support::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::time::{Duration, Instant};

const LOCAL: &[(&str, &str)] = &[
    ("CAIRN_GENERATE__BACKEND", "local"),
    ("CAIRN_GENERATE__MODEL", "smollm2-135m"),
    ("CAIRN_GENERATE__MAX_TOKENS", "48"),
    // Show unsupported sentences flagged, so the tests see what the verifier decided.
    ("CAIRN_GENERATE__DROP_UNSUPPORTED", "false"),
];

/// Reads an SSE body into (event name, data) pairs; data-only events get the name "".
fn sse_events(body: &str) -> Vec<(String, String)> {
    body.split("\n\n")
        .filter_map(|block| {
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            let name = block
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or("");
            Some((name.to_string(), data.to_string()))
        })
        .collect()
}

/// Every citation of an answer points at one of the passages it was drawn from.
fn assert_cites_only_its_passages(a: &Value) {
    let passages: Vec<&Value> = a["passages"].as_array().unwrap().iter().collect();
    for c in a["citations"].as_array().unwrap() {
        assert!(
            passages.iter().any(|p| p["chunk_id"] == c["chunk_id"]),
            "citation {c} is not one of the answer's passages"
        );
    }
}

#[test]
fn local_generation_streams_cited_answers_over_sse_and_the_openai_endpoint() {
    let (_tmp, data) = ingested();
    let server = Server::start(&data, LOCAL);

    // JSON: a written (or, when unsupported, quoted) answer citing retrieved passages only.
    let (status, a) = send(
        http()
            .post(&server.url("/v1/ask"))
            .send_json(json!({"question": "what does error E1147 mean", "top_k": 5})),
    );
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["abstained"], false, "{a}");
    assert_eq!(a["model"], "smollm2-135m", "{a}");
    assert!(
        a["mode"] == "generated"
            || a["note"]
                .as_str()
                .is_some_and(|n| n.contains("not supported")),
        "{a}"
    );
    assert!(!a["citations"].as_array().unwrap().is_empty(), "{a}");
    assert_cites_only_its_passages(&a);
    for s in a["sentences"].as_array().unwrap() {
        assert!(
            s["supported"].is_boolean() && s["support"].is_number(),
            "{s}"
        );
    }

    // SSE: retrieval, then the text in several tokens as generated, citations, done.
    let mut resp = http()
        .post(&server.url("/v1/ask"))
        .send_json(json!({"question": "what does error E1147 mean", "top_k": 5, "stream": true}))
        .unwrap();
    let body = resp.body_mut().read_to_string().unwrap();
    let events = sse_events(&body);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"retrieval"), "{body}");
    assert_eq!(names.last(), Some(&"done"), "{body}");
    let tokens = names.iter().filter(|n| **n == "token").count();
    assert!(tokens > 3, "the answer came in {tokens} tokens: {names:?}");
    let first_citation = names.iter().position(|n| *n == "citation");
    let last_token = names.iter().rposition(|n| *n == "token").unwrap();
    assert!(first_citation.is_none_or(|c| c > last_token), "{names:?}");
    let done: Value = serde_json::from_str(&events.last().unwrap().1).unwrap();
    // Greedy decoding: the streamed answer is the same as the JSON one.
    assert_eq!(done["answer"], a["answer"]);

    // The unanswerable question abstains before the model is asked.
    let (_, none) = send(
        http()
            .post(&server.url("/v1/ask"))
            .send_json(json!({"question": "what is the airspeed velocity of an unladen swallow"})),
    );
    assert_eq!(none["abstained"], true, "{none}");
    assert_eq!(none["citations"], json!([]));

    // OpenAI-compatible, model "cairn": the answer over the knowledge base with its sources.
    let (status, models) = send(http().get(&server.url("/v1/models")).call());
    assert_eq!(status, 200);
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["cairn", "smollm2-135m"]);
    let (status, c) = send(
        http()
            .post(&server.url("/v1/chat/completions"))
            .send_json(json!({
                "model": "cairn",
                "messages": [{"role": "user", "content": "what does error E1147 mean"}]
            })),
    );
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["object"], "chat.completion");
    let content = c["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        content.contains("Sources:\n[1] Clearing Paper Jams") || content.contains("Sources:\n["),
        "{content}"
    );
    assert!(content.contains("Clearing Paper Jams"), "{content}");
    assert_cites_only_its_passages(&c["cairn"]);

    // The generator's own name: a plain LLM server, streamed, ending with [DONE].
    let mut resp = http()
        .post(&server.url("/v1/chat/completions"))
        .send_json(json!({
            "model": "smollm2-135m",
            "messages": [{"role": "user", "content": "Say hello."}],
            "max_tokens": 12, "temperature": 0, "stream": true
        }))
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.body_mut().read_to_string().unwrap();
    let events = sse_events(&body);
    assert_eq!(events.last().unwrap().1, "[DONE]", "{body}");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(!text.trim().is_empty(), "{body}");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "length", "{last}");
    assert_eq!(last["usage"]["completion_tokens"], 12, "{last}");

    // Bad requests: an unknown model, malformed JSON, an empty conversation.
    let (status, e) = send(
        http()
            .post(&server.url("/v1/chat/completions"))
            .send_json(json!({
                "model": "gpt-17", "messages": [{"role": "user", "content": "hi"}]
            })),
    );
    assert_eq!(status, 404, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("smollm2-135m"),
        "{e}"
    );
    let (status, _) = send(
        http()
            .post(&server.url("/v1/chat/completions"))
            .content_type("application/json")
            .send("{\"messages\": ["),
    );
    assert_eq!(status, 400);
    let (status, _) = send(
        http()
            .post(&server.url("/v1/chat/completions"))
            .send_json(json!({"model": "cairn", "messages": []})),
    );
    assert_eq!(status, 400);

    // A client that goes away mid-stream: the server cancels and goes on serving.
    {
        let resp = http()
            .post(&server.url("/v1/chat/completions"))
            .send_json(json!({
                "model": "smollm2-135m",
                "messages": [{"role": "user", "content": "Write a long story about a lighthouse."}],
                "max_tokens": 2000, "stream": true
            }))
            .unwrap();
        let mut reader = BufReader::new(resp.into_body().into_reader());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("data: "), "{line}");
    }
    let started = Instant::now();
    let (status, c) = send(
        http()
            .post(&server.url("/v1/chat/completions"))
            .send_json(json!({
                "model": "smollm2-135m",
                "messages": [{"role": "user", "content": "Say hello."}],
                "max_tokens": 4, "temperature": 0
            })),
    );
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["usage"]["completion_tokens"], 4, "{c}");
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn an_openai_backend_uses_another_cairn_and_reports_a_down_or_silent_server() {
    let (_tmp, data) = ingested();
    let upstream_dir = tempfile::tempdir().unwrap();
    let upstream = Server::start(&upstream_dir.path().join("d"), LOCAL);

    // A second cairn over the same documents, its generator the first one's endpoint.
    let base = upstream.url("/v1");
    let client_env = [
        ("CAIRN_GENERATE__BACKEND", "openai"),
        ("CAIRN_GENERATE__MODEL", "smollm2-135m"),
        ("CAIRN_GENERATE__BASE_URL", base.as_str()),
        ("CAIRN_GENERATE__MAX_TOKENS", "48"),
    ];
    let client = Server::start(&data, &client_env);
    let (status, a) = send(
        http()
            .post(&client.url("/v1/ask"))
            .send_json(json!({"question": "what does error E1147 mean", "top_k": 5})),
    );
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["model"], "smollm2-135m", "{a}");
    assert_eq!(a["abstained"], false, "{a}");
    assert_cites_only_its_passages(&a);
    drop(client);

    // The server is down: 502, and search still works.
    drop(upstream);
    let gone = ("CAIRN_GENERATE__BASE_URL", base.as_str());
    let client = Server::start(&data, &[client_env[0], client_env[1], gone]);
    let (status, e) = send(
        http()
            .post(&client.url("/v1/ask"))
            .send_json(json!({"question": "what does error E1147 mean"})),
    );
    assert_eq!(status, 502, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot reach"),
        "{e}"
    );
    let (status, found) = send(
        http()
            .post(&client.url("/v1/search"))
            .send_json(json!({"query": "what does error E1147 mean"})),
    );
    assert_eq!(status, 200);
    assert!(!found["results"].as_array().unwrap().is_empty());
    drop(client);

    // A server that accepts and never answers: 504 after the timeout.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}/v1", silent.local_addr().unwrap());
    let held = std::thread::spawn(move || {
        let conns: Vec<_> = silent.incoming().take(1).flatten().collect();
        std::thread::sleep(Duration::from_secs(8));
        drop(conns);
    });
    let client = Server::start(
        &data,
        &[
            client_env[0],
            client_env[1],
            ("CAIRN_GENERATE__BASE_URL", silent_url.as_str()),
            ("CAIRN_GENERATE__TIMEOUT_SECS", "2"),
        ],
    );
    let (status, e) = send(
        http()
            .post(&client.url("/v1/ask"))
            .send_json(json!({"question": "what does error E1147 mean"})),
    );
    assert_eq!(status, 504, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did not answer"),
        "{e}"
    );
    held.join().unwrap();
}
