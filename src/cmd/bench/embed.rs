//! The `embed` suite: passages and word pieces per second of cairn's sentence encoder,
//! against sentence-transformers on PyTorch's CPU build (`bench/embed/peer.py`), both
//! reading the same model folder (`[embed] model`) with at most 256 word pieces per passage
//! and 32 passages per forward pass.
//!
//! The sample is `--sample` passages spread evenly over the corpus; both engines get it as
//! one call (each orders it by length before batching). Word pieces are counted by the model's
//! tokenizer, special tokens included, capped at 256. The first 16 vectors of each engine
//! come back as well, and the table gives their lowest cosine: the parity check.

use std::time::Instant;

use anyhow::Result;
use cairn_core::Config;

use super::{Measure, Report, Suite, corpus};

pub const MAX_TOKENS: usize = 256;
pub const BATCH: usize = 32;
/// Vectors returned for the parity check.
const PARITY: usize = 16;

/// `sample` passages spread evenly over `passages`.
fn sample(passages: &[String], n: usize) -> Vec<String> {
    let n = n.clamp(1, passages.len());
    let step = passages.len() as f64 / n as f64;
    (0..n)
        .map(|i| passages[(i as f64 * step) as usize].clone())
        .collect()
}

pub async fn run(config: &Config, args: &super::Args) -> Result<super::SuiteResult> {
    corpus::passages(args)?;
    let model = crate::app::model_path(config, &config.embed.model);
    let extra = vec![
        "--model-dir".to_string(),
        model.display().to_string(),
        "--sample".to_string(),
        args.sample.to_string(),
    ];
    let mut result = super::side_by_side(Suite::Embed, args, &extra)?;
    // The parity of each peer's vectors with cairn's, at each thread count.
    for (threads, reports) in &result.runs {
        let Some(cairn) = reports.iter().find(|r| r.engine == "cairn") else {
            continue;
        };
        for peer in reports.iter().filter(|r| r.engine != "cairn") {
            if let Some(cos) = lowest_cosine(&cairn.extra, &peer.extra) {
                result.notes.push(format!(
                    "{threads} thread(s): lowest cosine between cairn's and {}'s vectors of \
                     the first {PARITY} passages: {cos:.5}",
                    peer.engine
                ));
            }
        }
    }
    Ok(result)
}

fn vectors(extra: &serde_json::Value) -> Option<Vec<Vec<f32>>> {
    serde_json::from_value(extra.get("vectors")?.clone()).ok()
}

fn lowest_cosine(a: &serde_json::Value, b: &serde_json::Value) -> Option<f32> {
    let (a, b) = (vectors(a)?, vectors(b)?);
    a.iter()
        .zip(&b)
        .map(|(x, y)| {
            let dot: f32 = x.iter().zip(y).map(|(p, q)| p * q).sum();
            let nx: f32 = x.iter().map(|p| p * p).sum::<f32>().sqrt();
            let ny: f32 = y.iter().map(|q| q * q).sum::<f32>().sqrt();
            dot / (nx * ny).max(1e-12)
        })
        .reduce(f32::min)
}

pub async fn worker(config: &Config, args: &super::Args) -> Result<Report> {
    let texts = sample(&corpus::passages(args)?, args.sample);
    let dir = crate::app::model_path(config, &config.embed.model);
    let repeat = args.repeat;
    tokio::task::spawn_blocking(move || -> Result<Report> {
        let device = cairn_infer::pick_device()?;
        let encoder =
            cairn_infer::BertEncoder::load(&dir, &device, MAX_TOKENS)?.with_batch_size(BATCH);
        let pieces: usize = texts
            .iter()
            .map(|t| encoder.count_tokens(t).min(MAX_TOKENS))
            .sum();
        // One untimed pass to warm caches and the allocator, as the peer does.
        encoder.encode_batch(&texts[..BATCH.min(texts.len())])?;
        let mut rates = Vec::new();
        let mut first = Vec::new();
        for _ in 0..repeat.max(1) {
            let started = Instant::now();
            let (v, _) = encoder.encode_batch(&texts)?;
            rates.push(texts.len() as f64 / started.elapsed().as_secs_f64());
            first = v.into_iter().take(PARITY).collect();
        }
        let per_s = super::median(rates);
        let settings = format!(
            "{} passages, batch {BATCH}, max {MAX_TOKENS}, f32",
            texts.len()
        );
        Ok(Report {
            engine: "cairn".into(),
            measures: vec![
                Measure::rate("passages/s", per_s, settings.clone()),
                Measure::rate(
                    "word pieces/s",
                    per_s * pieces as f64 / texts.len() as f64,
                    settings,
                ),
            ],
            extra: serde_json::json!({ "vectors": first, "word_pieces": pieces }),
        })
    })
    .await?
}
