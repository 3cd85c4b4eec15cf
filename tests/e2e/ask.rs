//! Answers with citations (`cairn ask`, `POST /v1/ask`) on the shipped corpus: an answer
//! quotes the passage behind it with a span that slices back to the quote in the
//! document, and a question the documents do not answer is answered as such, with the
//! closest passages.

use crate::support::*;
use serde_json::{Value, json};
use std::path::Path;

/// Checks that each citation's span holds its quote in the document's extracted text
/// (for text files, the file itself).
fn assert_quotes_slice_back(answer: &Value, corpus: &Path) {
    for c in answer["citations"].as_array().expect("citations") {
        let file = corpus.join(file_name(c["source"].as_str().unwrap()));
        let text = std::fs::read_to_string(&file).unwrap();
        let (a, b) = (
            c["span"]["start"].as_u64().unwrap() as usize,
            c["span"]["end"].as_u64().unwrap() as usize,
        );
        assert_eq!(&text[a..b], c["quote"].as_str().unwrap(), "{c}");
    }
}

#[test]
fn answers_cite_their_passage_and_unanswerable_questions_abstain() {
    let (tmp, data) = ingested();
    let corpus = tmp.path().join("corpus");

    // The CLI: the error code's meaning, quoted from page 2 of the printer guide.
    let a = json(&ok(cairn(&data).args([
        "ask",
        "what does error E1147 mean",
        "--json",
    ])));
    assert_eq!(a["abstained"], false, "{a}");
    assert_eq!(a["mode"], "extractive");
    let first = &a["citations"][0];
    assert_eq!(
        file_name(first["source"].as_str().unwrap()),
        "printer-jams.txt",
        "{a}"
    );
    assert_eq!(first["page"], 2, "{a}");
    assert!(first["quote"].as_str().unwrap().contains("E1147"), "{a}");
    assert!(a["answer"].as_str().unwrap().contains("[1]"), "{a}");
    assert_eq!(a["sentences"][0]["citations"], json!([1]));
    assert_quotes_slice_back(&a, &corpus);
    let human =
        String::from_utf8(ok(cairn(&data).args(["ask", "what does error E1147 mean"])).stdout)
            .unwrap();
    assert!(human.contains("[1] Clearing Paper Jams"), "{human}");

    // The REST API, the same shapes; and an abstention with the closest passages. The
    // server may re-read files under the corpus folder for API callers ([ingest] roots).
    let config = tmp.path().join("cairn.toml");
    std::fs::write(
        &config,
        format!("[ingest]\nroots = [{:?}]\n", corpus.display().to_string()),
    )
    .unwrap();
    let server = Server::start(&data, &[("CAIRN_CONFIG", config.to_str().unwrap())]);
    let (status, a) = send(
        http()
            .post(&server.url("/v1/ask"))
            .send_json(json!({"question": "what does error E1147 mean", "top_k": 5})),
    );
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["abstained"], false, "{a}");
    assert_quotes_slice_back(&a, &corpus);
    let (status, none) = send(
        http()
            .post(&server.url("/v1/ask"))
            .send_json(json!({"question": "what is the airspeed velocity of an unladen swallow"})),
    );
    assert_eq!(status, 200, "{none}");
    assert_eq!(none["abstained"], true, "{none}");
    assert!(
        none["answer"].as_str().unwrap().contains("do not answer"),
        "{none}"
    );
    assert_eq!(none["citations"], json!([]));
    assert_eq!(none["passages"].as_array().unwrap().len(), 3, "{none}");
    assert_eq!(none["grounding"], 0.0);
    // Streaming: Server-Sent Events in order, `done` carrying the same answer.
    let mut resp = http()
        .post(&server.url("/v1/ask"))
        .send_json(json!({"question": "what does error E1147 mean", "top_k": 5, "stream": true}))
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let body = resp.body_mut().read_to_string().unwrap();
    let events: Vec<(String, Value)> = body
        .split("\n\n")
        .filter_map(|block| {
            let name = block.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((name.to_string(), serde_json::from_str(data).unwrap()))
        })
        .collect();
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"retrieval"), "{body}");
    assert_eq!(names.last(), Some(&"done"), "{body}");
    assert!(
        names.contains(&"token") && names.contains(&"citation"),
        "{names:?}"
    );
    let done = &events.last().unwrap().1;
    assert_eq!(done["answer"], a["answer"], "{done}");
    assert_eq!(done["citations"], a["citations"]);
    let streamed: String = events
        .iter()
        .filter(|(n, _)| n == "token")
        .map(|(_, v)| v["text"].as_str().unwrap())
        .collect();
    assert_eq!(streamed.trim(), a["answer"].as_str().unwrap());

    // The upload-and-ask page and its assets come from the binary itself.
    for (path, mime, needle) in [
        ("/", "text/html", "id=\"ask-form\""),
        ("/assets/app.js", "text/javascript", "/v1/ask"),
        ("/assets/app.css", "text/css", "#panel"),
    ] {
        let mut resp = http().get(&server.url(path)).call().unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with(mime), "{path}: {ct}");
        let body = resp.body_mut().read_to_string().unwrap();
        assert!(body.contains(needle), "{path}");
    }
    let (status, _) = send(http().get(&server.url("/assets/missing.js")).call());
    assert_eq!(status, 404);

    // Re-index one document from its file on the server: unchanged, then a new version.
    let listed = send(http().get(&server.url("/v1/documents")).call()).1;
    let doc = listed["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["source"].as_str().unwrap().ends_with("printer-jams.txt"))
        .unwrap()
        .clone();
    let route = server.url(&format!(
        "/v1/documents/{}/reindex",
        doc["id"].as_str().unwrap()
    ));
    let (status, r) = send(http().post(&route).send_empty());
    assert_eq!(
        (status, r["document"]["status"].as_str()),
        (200, Some("unchanged")),
        "{r}"
    );
    let file = corpus.join("printer-jams.txt");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("\nE9999 means the quokka sensor needs dusting.\n");
    std::fs::write(&file, text).unwrap();
    let (status, r) = send(http().post(&route).send_empty());
    assert_eq!(
        (status, r["document"]["status"].as_str()),
        (200, Some("updated")),
        "{r}"
    );
    assert_eq!(
        r["document"]["version"],
        doc["version"].as_i64().unwrap() + 1,
        "{r}"
    );
    let (_, hits) = send(
        http()
            .post(&server.url("/v1/search"))
            .send_json(json!({"query": "quokka sensor", "mode": "bm25", "top_k": 1})),
    );
    assert!(
        hits["results"][0]["text"]
            .as_str()
            .unwrap()
            .contains("quokka"),
        "{hits}"
    );
    let (status, err) = send(
        http()
            .post(&server.url("/v1/documents/nope/reindex"))
            .send_empty(),
    );
    assert_eq!(status, 404, "{err}");
    // An uploaded document is read again from the original kept in the data dir; deleting
    // the document deletes the original too.
    let (ctype, form) = multipart(&[("memo.md", b"# Memo\n\nThe kiln is fired on Tuesdays.\n")]);
    let (status, up) = send(
        http()
            .post(&server.url("/v1/documents"))
            .header("content-type", &ctype)
            .send(&form[..]),
    );
    assert_eq!(status, 201, "{up}");
    let memo = up["documents"][0]["doc_id"].as_str().unwrap().to_string();
    let original = data.join("originals").join(&memo);
    assert_eq!(
        std::fs::read(&original).unwrap(),
        b"# Memo\n\nThe kiln is fired on Tuesdays.\n"
    );
    let memo_route = server.url(&format!("/v1/documents/{memo}/reindex"));
    let (status, again) = send(http().post(&memo_route).send_empty());
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["document"]["status"], "unchanged", "{again}");
    assert_eq!(again["document"]["doc_id"], memo.as_str());
    // Without its original (uploaded by an older cairn), it says what to do.
    std::fs::remove_file(&original).unwrap();
    let (status, err) = send(http().post(&memo_route).send_empty());
    assert_eq!(status, 400, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("upload it again"),
        "{err}"
    );
    let (ctype, form) = multipart(&[("memo.md", b"# Memo\n\nThe kiln is fired on Fridays.\n")]);
    let (status, up) = send(
        http()
            .post(&server.url("/v1/documents"))
            .header("content-type", &ctype)
            .send(&form[..]),
    );
    assert_eq!(status, 201, "{up}");
    assert_eq!(up["documents"][0]["doc_id"], memo.as_str(), "{up}");
    assert!(original.exists(), "the new version's original is kept");
    let (status, _) = send(
        http()
            .delete(&server.url(&format!("/v1/documents/{memo}")))
            .call(),
    );
    assert_eq!(status, 200);
    assert!(
        !original.exists(),
        "a deleted document's original is removed"
    );
    // Bad input: a clear error.
    let (status, err) = send(
        http()
            .post(&server.url("/v1/ask"))
            .send_json(json!({"question": "   "})),
    );
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["message"], "the question is empty", "{err}");
    let (status, err) = send(
        http()
            .post(&server.url("/v1/ask"))
            .send_json(json!({"query": "wrong field"})),
    );
    assert_eq!(status, 400, "{err}");
}

/// A question naming a program no document mentions abstains and names it; one naming what
/// a document does mention is answered from it. Chinese questions name things in Latin
/// script, English ones with capitals.
#[test]
fn questions_naming_what_no_document_mentions_abstain() {
    let (tmp, data) = ingested();
    // `cairn [EXTRA] ask QUESTION --json`, with `env` set.
    let ask = |extra: &[&str], env: &[(&str, &str)], question: &str| -> Value {
        let mut cmd = cairn(&data);
        cmd.envs(env.iter().copied());
        json(&ok(cmd.args(extra).args(["ask", question, "--json"])))
    };
    // The file name of the answer's first citation.
    let first_cited =
        |answer: &Value| file_name(answer["citations"][0]["source"].as_str().unwrap());
    let question = "门禁读卡器 Kerberos 的权限什么时候失效？";

    let known = ask(&[], &[], "门禁读卡器 SR-7781 的权限什么时候失效？");
    assert_eq!(known["abstained"], false, "{known}");
    assert_eq!(first_cited(&known), "zh-server-room.txt", "{known}");

    let unknown = ask(&[], &[], question);
    assert_eq!(unknown["abstained"], true, "{unknown}");
    assert!(
        unknown["note"].as_str().unwrap_or("").contains("Kerberos"),
        "{unknown}"
    );
    assert!(
        !unknown["passages"].as_array().unwrap().is_empty(),
        "{unknown}"
    );

    // A document of another tenant that mentions the name changes nothing for this one:
    // the check searches only what the caller may read.
    let other = tmp.path().join("other.md");
    std::fs::write(
        &other,
        "# Access\n\nKerberos tickets open the doors of our lab.\n",
    )
    .unwrap();
    ok(cairn(&data)
        .args(["--tenant", "globex"])
        .arg("ingest")
        .arg(&other));
    let still = ask(&[], &[], question);
    assert_eq!(still["abstained"], true, "{still}");
    assert!(
        still["note"].as_str().unwrap_or("").contains("Kerberos"),
        "{still}"
    );
    let theirs = ask(&["--tenant", "globex"], &[], "门禁 Kerberos 怎么用？");
    assert!(
        !theirs["note"].as_str().unwrap_or("").contains("Kerberos"),
        "{theirs}"
    );

    // Off, the same question is answered from the server-room rules.
    let off = ask(&[], &[("CAIRN_ANSWER__UNKNOWN_NAMES", "false")], question);
    assert_eq!(off["abstained"], false, "{off}");

    // In an English question the capitalised words are the names: "WireGuard" and "Linux"
    // are in the VPN guide, "OpenVPN" is in no document.
    let known = ask(
        &[],
        &[],
        "How do I connect to the company VPN from Linux with WireGuard?",
    );
    assert_eq!(known["abstained"], false, "{known}");
    assert_eq!(first_cited(&known), "vpn-linux.md", "{known}");
    // Off, the guide's sentence on connecting at boot is close enough to quote (its
    // confidence reaches `abstain_below`); on, the unknown name makes the answer abstain.
    let openvpn = "How do I connect to the VPN automatically at boot with OpenVPN?";
    let unknown = ask(&[], &[], openvpn);
    assert_eq!(unknown["abstained"], true, "{unknown}");
    assert!(
        unknown["note"].as_str().unwrap_or("").contains("OpenVPN"),
        "{unknown}"
    );
    let off = ask(&[], &[("CAIRN_ANSWER__UNKNOWN_NAMES", "false")], openvpn);
    assert_eq!(off["abstained"], false, "{off}");
    assert_eq!(first_cited(&off), "vpn-linux.md", "{off}");

    // An identifier (letters and digits) that a passage has verbatim is evidence enough,
    // however far the question's embedding sits from it (the confidence check is waived).
    let form = ask(&[], &[], "when is form FIN-88R required");
    assert_eq!(form["abstained"], false, "{form}");
    assert_eq!(first_cited(&form), "expense-reimbursement.md", "{form}");
    assert!(
        form["answer"].as_str().unwrap().contains("FIN-88R"),
        "{form}"
    );
}
