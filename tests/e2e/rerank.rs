//! Reranking with the default reranker (`[rerank] model = "sentences"`): a passage whose one
//! sentence answers the question, in a section about something else, sits low in the fused
//! ranking and ends first once reranked.

use crate::support::{cairn, file_name, json, ok};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

const CORPUS: &[(&str, &str)] = &[
    (
        "gateway-handbook.md",
        r#"# Gateway handbook

## Hardware

The office gateway is a small fanless box in the network cabinet. It has four ports, a serial console and a status light that blinks green when the uplink works. The box boots from an internal flash card, and the spare card sits in the drawer under the cabinet. Label every cable before you move the box, and keep the cabinet locked. Power comes from the UPS on the bottom shelf, which holds about twenty minutes of battery. The fans of the cabinet itself are cleaned twice a year by the facilities team.

The rack screws are M6; spare screws and cage nuts are in the labelled box. The shelf above the gateway holds the switch, whose uplink port is the last one on the right.

The console cable is light blue. Connect it at 115200 baud. When the light blinks amber, the box is still booting; red means the uplink is down. To rotate the VPN key, run vpnctl rotate on the gateway and restart the tunnel service.
"#,
    ),
    (
        "key-policy.md",
        r#"# Key policy

## Keys and rotation

Keys are rotated according to policy. A key policy says how long a key lives, who may rotate a key, and where rotated keys are archived. Rotation of keys is logged. Old keys are kept for a year after rotation. The key policy applies to SSH keys, VPN keys and API keys alike.
"#,
    ),
    (
        "printers.md",
        r#"# Printers

## Setting up a printer

Printers are added through the print server. Pick the printer by its room number, then install the driver the server offers. Colour printing needs a code from the service desk.
"#,
    ),
    (
        "rotation-log.md",
        r#"# Rotation log

## Entries

Each entry names the date, the key and who was on call. March: VPN key, Alice. September: VPN key, Bob. December: VPN key and API key, Carol. Rotation entries are kept for a year.
"#,
    ),
    (
        "vpn-client.md",
        r#"# VPN client

## Installing the VPN client

Install the VPN client from the software centre. The client asks for the VPN key file the service desk sends you; put the key in your home folder. A new key file arrives by mail whenever the network team rotates the office key.
"#,
    ),
    (
        "vpn-faq.md",
        r#"# VPN questions

## Common questions

Why is the VPN slow? The VPN key exchange takes a moment when you connect from a hotel. Can I use the VPN on my phone? Yes, install the VPN profile. Who owns the VPN key? The network team owns the VPN key and the VPN certificates. Does the VPN log my traffic? No.
"#,
    ),
    (
        "vpn-overview.md",
        r#"# VPN overview

## About the VPN

Our VPN connects laptops to the office network. The VPN uses keys, and every VPN client has a VPN profile. The VPN key of the office is kept by the network team. VPN access is granted by the service desk; VPN profiles are renewed every year. The VPN works from home, hotels and trains.
"#,
    ),
];

const QUESTION: &str = "How do I rotate the VPN key?";

fn search(data: &Path, query: &str, rerank: bool) -> Value {
    json(&searched(data, query, rerank))
}

fn searched(data: &Path, query: &str, rerank: bool) -> Output {
    let mut cmd = cairn(data);
    cmd.args(["search", "--json", "-k", "8"]);
    if rerank {
        cmd.arg("--rerank");
    }
    cmd.env("CAIRN_LOG", "cairn_rerank=debug");
    ok(cmd.arg(query))
}

/// The planted corpus written to `dir/corpus` and ingested into `dir/<name>`, with the extra
/// environment `env`.
fn ingested(dir: &Path, name: &str, env: &[(&str, &str)]) -> PathBuf {
    let (data, corpus) = (dir.join(name), dir.join("corpus"));
    std::fs::create_dir_all(&corpus).unwrap();
    for (file, text) in CORPUS {
        std::fs::write(corpus.join(file), text).unwrap();
    }
    ok(cairn(&data)
        .arg("ingest")
        .arg(&corpus)
        .envs(env.iter().copied()));
    data
}

/// What the sentence reranker's debug line says: (passages with stored vectors, pieces
/// embedded at query time).
fn stored_and_embedded(out: &Output) -> (usize, usize) {
    let log = String::from_utf8_lossy(&out.stderr);
    // stderr is a pipe here, not a terminal: the log must be plain text
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a piped log:\n{log}"
    );
    let line = log
        .lines()
        .find(|l| l.contains("sentence rerank"))
        .unwrap_or_else(|| panic!("no sentence rerank line in:\n{log}"));
    let field = |name: &str| -> usize {
        let at = line.find(&format!("{name}=")).expect(name) + name.len() + 1;
        line[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (field("stored"), field("embedded"))
}

fn files(resp: &Value) -> Vec<String> {
    resp["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|h| file_name(h["source"].as_str().expect("source")))
        .collect()
}

#[test]
fn the_passage_whose_sentence_answers_ends_first() {
    let tmp = tempfile::tempdir().unwrap();
    let data = ingested(tmp.path(), "data", &[]);

    let fused = search(&data, QUESTION, false);
    let fused_files = files(&fused);
    let planted = fused_files
        .iter()
        .position(|f| f == "gateway-handbook.md")
        .expect("the handbook is among the candidates");
    assert!(
        planted >= 2,
        "the fixture needs the answer low in the fused ranking: {fused_files:?}"
    );
    assert_eq!(fused["stages"]["rerank"].as_f64(), Some(0.0));
    assert!(fused["results"][0]["rerank"].is_null());

    let reranked = search(&data, QUESTION, true);
    let reranked_files = files(&reranked);
    assert_eq!(
        reranked_files[0], "gateway-handbook.md",
        "{reranked_files:?}"
    );
    let first = &reranked["results"][0];
    assert_eq!(first["rerank"]["rank"], 1);
    // the reranker's own score is the cosine of the answering sentence; the hit's score
    // adds the weighted fused score
    let cosine = first["rerank"]["score"].as_f64().unwrap();
    assert!(cosine > 0.7 && cosine <= 1.0, "{first}");
    assert!(first["score"].as_f64().unwrap() > cosine);
    // the same candidates, reordered
    let mut a = fused_files.clone();
    let mut b = reranked_files.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert!(reranked["stages"]["rerank"].as_f64().unwrap() > 0.0);

    // a Chinese question keeps the fused order (`skip_langs`): the default embedder
    // reads Chinese poorly
    let zh = "怎样轮换 VPN 密钥？";
    let zh_fused = search(&data, zh, false);
    let zh_reranked = search(&data, zh, true);
    assert_eq!(files(&zh_fused), files(&zh_reranked));
    assert_eq!(zh_reranked["stages"]["rerank"].as_f64(), Some(0.0));
}

#[test]
fn stored_piece_vectors_rerank_as_query_time_ones_do() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = ingested(tmp.path(), "plain", &[]);
    let stored = ingested(
        tmp.path(),
        "stored",
        &[("CAIRN_CHUNK__PIECE_VECTORS", "true")],
    );

    let now = searched(&plain, QUESTION, true);
    let (from_store, embedded) = stored_and_embedded(&now);
    assert_eq!(from_store, 0);
    assert!(embedded > 8, "every piece of every candidate: {embedded}");

    let read = searched(&stored, QUESTION, true);
    let (from_store, embedded) = stored_and_embedded(&read);
    let hits = json(&read)["results"].as_array().unwrap().len();
    assert_eq!((from_store, embedded), (hits, 0), "all read, none embedded");

    // the same vectors either way: the same order and scores
    let (a, b) = (json(&now), json(&read));
    assert_eq!(files(&a), files(&b));
    for (x, y) in a["results"]
        .as_array()
        .unwrap()
        .iter()
        .zip(b["results"].as_array().unwrap())
    {
        let (x, y) = (
            x["rerank"]["score"].as_f64().unwrap(),
            y["rerank"]["score"].as_f64().unwrap(),
        );
        assert!((x - y).abs() < 1e-4, "{x} vs {y}");
    }
}
