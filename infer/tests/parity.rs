//! Parity of the candle BERT encoder with sentence-transformers, through the worker.
//!
//! The reference vectors in `fixtures/minilm_parity.json` come from
//! `scripts/make-embed-fixture.py`. The model is read from `$CAIRN_MODELS_DIR/minilm-l6` or
//! `<workspace>/models/minilm-l6`; when it is missing these tests fail (install it with
//! `scripts/install-models`).

use std::path::PathBuf;

use cairn_core::{Embedder, TokenCounter};
use cairn_infer::{BertEncoder, EmbedWorker};
use candle_core::Device;
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    model: String,
    max_seq_length: usize,
    sentences: Vec<String>,
    tokens: Vec<usize>,
    vectors: Vec<Vec<f32>>,
}

fn fixture() -> Fixture {
    let text = include_str!("fixtures/minilm_parity.json");
    serde_json::from_str(text).expect("the parity fixture is valid JSON")
}

fn model_dir(name: &str) -> PathBuf {
    let root = std::env::var_os("CAIRN_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../models")));
    let dir = root.join(name);
    assert!(
        dir.join("model.safetensors").is_file(),
        "model {} is not installed: run scripts/install-models (or set CAIRN_MODELS_DIR)",
        dir.display()
    );
    dir
}

fn worker(fixture: &Fixture, batch_size: usize) -> EmbedWorker {
    let dir = model_dir(&fixture.model);
    let encoder = BertEncoder::load(&dir, &Device::Cpu, fixture.max_seq_length)
        .unwrap_or_else(|e| panic!("cannot load {}: {e}", dir.display()));
    EmbedWorker::spawn(encoder, batch_size, 16)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

fn assert_same(a: &[Vec<f32>], b: &[Vec<f32>], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let cos = cosine(x, y);
        assert!(cos > 0.99999, "{what}: vector {i} differs (cosine {cos})");
    }
}

#[tokio::test]
async fn matches_sentence_transformers() {
    let fixture = fixture();
    // A batch size smaller than the input exercises sub-batches of different widths.
    let worker = worker(&fixture, 4);
    assert_eq!(worker.dims(), fixture.vectors[0].len());
    assert_eq!(worker.max_tokens(), fixture.max_seq_length);
    assert!(
        worker.model_id().starts_with("minilm-l6@"),
        "{}",
        worker.model_id()
    );

    let out = worker
        .embed(fixture.sentences.clone())
        .await
        .expect("embedding works");
    assert_eq!(out.vectors.len(), fixture.sentences.len());

    let mut min = f32::MAX;
    for (i, (got, want)) in out.vectors.iter().zip(&fixture.vectors).enumerate() {
        let norm: f32 = got.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!(
            (norm - 1.0).abs() < 1e-4,
            "vector {i} is not normalised: {norm}"
        );
        let cos = cosine(got, want);
        assert!(
            cos >= 0.999,
            "sentence {i} {:?}: cosine {cos}",
            fixture.sentences[i]
        );
        min = min.min(cos);
    }
    eprintln!(
        "parity: min cosine {min:.7} over {} sentences",
        fixture.sentences.len()
    );

    for (i, sentence) in fixture.sentences.iter().enumerate() {
        assert_eq!(
            worker.count_tokens(sentence),
            fixture.tokens[i],
            "word pieces of {sentence:?}"
        );
        let long = fixture.tokens[i] > fixture.max_seq_length;
        assert_eq!(out.truncated[i], long, "truncated flag of sentence {i}");
    }
    assert!(
        out.truncated.iter().any(|&t| t),
        "the fixture has a long sentence"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_callers_get_their_own_vectors() {
    let fixture = fixture();
    let worker = worker(&fixture, 8);
    let mut alone = Vec::new();
    for sentence in &fixture.sentences {
        let out = worker
            .embed(vec![sentence.clone()])
            .await
            .expect("single call");
        alone.push(out.vectors.into_iter().next().expect("one vector"));
    }

    let mut tasks = Vec::new();
    for (i, sentence) in fixture.sentences.iter().enumerate() {
        let worker = worker.clone();
        // Some callers send one text, some two, so requests of several sizes are merged.
        let texts = if i % 2 == 0 {
            vec![sentence.clone()]
        } else {
            vec![sentence.clone(), fixture.sentences[0].clone()]
        };
        tasks.push(tokio::spawn(async move { (i, worker.embed(texts).await) }));
    }
    for task in tasks {
        let (i, result) = task.await.expect("task finished");
        let out = result.expect("concurrent embedding works");
        let mut want = vec![alone[i].clone()];
        if i % 2 == 1 {
            want.push(alone[0].clone());
        }
        assert_same(&out.vectors, &want, &format!("caller {i}"));
    }
}

#[tokio::test]
async fn batch_order_does_not_change_vectors() {
    let fixture = fixture();
    let worker = worker(&fixture, 3);
    let forward = worker
        .embed(fixture.sentences.clone())
        .await
        .expect("forward order");
    let mut reversed_input = fixture.sentences.clone();
    reversed_input.reverse();
    let mut reversed = worker.embed(reversed_input).await.expect("reverse order");
    reversed.vectors.reverse();
    reversed.truncated.reverse();
    assert_same(&forward.vectors, &reversed.vectors, "reversed batch");
    assert_eq!(forward.truncated, reversed.truncated);
}
