//! Parity of the candle cross-encoder with PyTorch's `BertForSequenceClassification`.
//!
//! `fixtures/tiny-cross/` is a tiny randomly initialised model (one label; `two-labels/` has
//! two) and `fixtures/tiny_cross_logits.json` the logits PyTorch computes for fixed pairs,
//! both written by `scripts/make-cross-fixture.py`. The fixture ships with the repository, so
//! these tests need no installed model.

use std::path::{Path, PathBuf};

use cairn_infer::CrossEncoder;
use candle_core::Device;
use serde::Deserialize;

const TOLERANCE: f32 = 1e-4;

#[derive(Deserialize)]
struct Fixture {
    max_tokens: usize,
    pairs: Vec<(String, String)>,
    untruncated_tokens: Vec<usize>,
    truncation: Vec<String>,
    logits: Vec<Vec<f32>>,
    two_label_logits: Vec<Vec<f32>>,
}

fn fixture() -> Fixture {
    let text = include_str!("fixtures/tiny_cross_logits.json");
    serde_json::from_str(text).expect("the cross-encoder fixture is valid JSON")
}

fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-cross")
}

fn load(dir: &Path, max_tokens: usize) -> CrossEncoder {
    CrossEncoder::load(dir, &Device::Cpu, max_tokens)
        .unwrap_or_else(|e| panic!("cannot load {}: {e}", dir.display()))
}

fn pairs(fixture: &Fixture) -> Vec<(&str, &str)> {
    fixture
        .pairs
        .iter()
        .map(|(q, p)| (q.as_str(), p.as_str()))
        .collect()
}

/// The largest absolute difference between two lists of logit rows of the same shape.
fn max_abs_diff(got: &[Vec<f32>], want: &[Vec<f32>]) -> f32 {
    assert_eq!(got.len(), want.len(), "number of pairs");
    let mut max = 0f32;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len(), "logits of pair {i}");
        for (a, b) in g.iter().zip(w) {
            max = max.max((a - b).abs());
        }
    }
    max
}

#[test]
fn the_fixture_covers_truncation_and_chinese() {
    let fixture = fixture();
    assert!(
        fixture
            .untruncated_tokens
            .iter()
            .any(|&n| n > fixture.max_tokens)
    );
    assert!(fixture.truncation.iter().any(|s| s == "longest_first"));
    assert!(
        fixture
            .pairs
            .iter()
            .any(|(q, _)| q.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)))
    );
}

#[test]
fn reproduces_pytorch_logits_with_one_label() {
    let fixture = fixture();
    let encoder = load(&model_dir(), fixture.max_tokens).with_batch_size(4);
    assert_eq!(encoder.num_labels(), 1);
    assert_eq!(encoder.max_tokens(), fixture.max_tokens);
    assert!(
        encoder.model_id().starts_with("tiny-cross@"),
        "{}",
        encoder.model_id()
    );

    let logits = encoder.logits(&pairs(&fixture)).expect("logits");
    let diff = max_abs_diff(&logits, &fixture.logits);
    eprintln!(
        "one label: max abs diff {diff:.2e} over {} pairs",
        logits.len()
    );
    for (i, (got, want)) in logits.iter().zip(&fixture.logits).enumerate() {
        assert!(
            (got[0] - want[0]).abs() <= TOLERANCE,
            "pair {i} {:?}: {got:?} vs PyTorch {want:?}",
            fixture.pairs[i]
        );
    }
    assert!(diff <= TOLERANCE);
}

#[test]
fn reproduces_pytorch_logits_with_two_labels() {
    let fixture = fixture();
    let encoder = load(&model_dir().join("two-labels"), fixture.max_tokens).with_batch_size(3);
    assert_eq!(encoder.num_labels(), 2);

    let logits = encoder.logits(&pairs(&fixture)).expect("logits");
    let diff = max_abs_diff(&logits, &fixture.two_label_logits);
    eprintln!(
        "two labels: max abs diff {diff:.2e} over {} pairs",
        logits.len()
    );
    assert!(diff <= TOLERANCE, "max abs diff {diff}");

    // The score is logit[1] - logit[0]: sigmoid of it is the softmax probability of label 1.
    for (i, (query, passage)) in pairs(&fixture).into_iter().enumerate() {
        let score = encoder.score_pairs(query, &[passage]).expect("score")[0];
        let want = &fixture.two_label_logits[i];
        assert!(
            (score - (want[1] - want[0])).abs() <= 2.0 * TOLERANCE,
            "pair {i}: score {score} vs logits {want:?}"
        );
    }
}

#[test]
fn scores_come_back_in_input_order_whatever_the_batch_size() {
    let fixture = fixture();
    let query = "How do I reset my password?";
    let passages: Vec<&str> = fixture.pairs.iter().map(|(_, p)| p.as_str()).collect();

    let one = load(&model_dir(), fixture.max_tokens).with_batch_size(1);
    let eight = load(&model_dir(), fixture.max_tokens).with_batch_size(8);
    let alone = one.score_pairs(query, &passages).expect("batch size 1");
    let batched = eight.score_pairs(query, &passages).expect("batch size 8");
    assert_eq!(alone.len(), passages.len());
    let diff = alone
        .iter()
        .zip(&batched)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    eprintln!("batch 1 vs batch 8: max abs diff {diff:.2e}");
    assert!(diff <= 1e-5, "batch size changes scores by {diff}");

    // Pairs 0 and 1 of the fixture share this query: their scores are PyTorch's logits, in
    // the order the passages were given (the long passage last, where sorting by length for
    // the forward pass does not put it).
    let reordered = [passages[1], passages[0], passages[4]];
    let scores = eight.score_pairs(query, &reordered).expect("scores");
    assert_eq!(fixture.pairs[0].0, query);
    assert_eq!(fixture.pairs[1].0, query);
    assert!(
        (scores[0] - fixture.logits[1][0]).abs() <= TOLERANCE,
        "{scores:?}"
    );
    assert!(
        (scores[1] - fixture.logits[0][0]).abs() <= TOLERANCE,
        "{scores:?}"
    );

    // Reversing the passages reverses the scores.
    let mut reversed_input = passages.clone();
    reversed_input.reverse();
    let mut reversed = eight.score_pairs(query, &reversed_input).expect("reversed");
    reversed.reverse();
    let diff = batched
        .iter()
        .zip(&reversed)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(diff <= 1e-5, "reversed order changes scores by {diff}");

    // Different passages get different scores, so the checks above can tell them apart.
    let distinct = batched.windows(2).filter(|w| (w[0] - w[1]).abs() > 1e-3);
    assert!(distinct.count() >= passages.len() / 2, "{batched:?}");

    assert!(
        eight
            .score_pairs(query, &[])
            .expect("no passages")
            .is_empty()
    );
}
