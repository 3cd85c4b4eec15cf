//! Rough LLM reranking throughput: `cargo run -p cairn-infer --release --example llm_score --
//! [model dir] [pairs] [batch sizes, comma-separated] [quantized|f32]`.
//!
//! Scores `pairs` (query, passage of about 150 words) pairs with the yes/no reranking prompt
//! at each batch size and prints the wall time. A measurement aid, not a test.

use std::path::PathBuf;
use std::time::Instant;

use cairn_llm::{LlmScorer, RerankPrompt, WeightFormat};

const SENTENCES: &[&str] = &[
    "The invoice must be approved by the finance team before the end of the month.",
    "Employees may carry over up to five days of unused leave into the next year.",
    "The backup server retries a failed upload three times with exponential backoff.",
    "Our support desk answers tickets within one business day, weekends excluded.",
    "Passwords expire every ninety days and cannot repeat the last four choices.",
    "The river flooded the lower town twice in the last decade after heavy rain.",
    "Quarterly reports are published on the intranet in both PDF and HTML formats.",
    "New hires receive a laptop, a security badge and a mentor in their first week.",
    "The cache is invalidated whenever a document is updated or deleted by its owner.",
    "Travel expenses above five hundred euros need a manager's written approval.",
];

const QUERIES: &[&str] = &[
    "Who approves invoices?",
    "How many leave days can I carry over?",
    "What happens when a backup upload fails?",
    "How fast does support answer tickets?",
    "How often do passwords expire?",
];

fn passage(i: usize) -> String {
    let mut words = Vec::new();
    let mut j = i;
    while words.len() < 150 {
        words.extend(SENTENCES[j % SENTENCES.len()].split_whitespace());
        j += 3;
    }
    words.join(" ")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../models/smollm2-135m"
        ))
    });
    let pairs: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(50);
    let batch_sizes: Vec<usize> = args
        .get(3)
        .map(|a| a.split(',').filter_map(|b| b.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 4, 8, 16]);
    let format = match args.get(4).map(String::as_str) {
        Some("f32") => WeightFormat::F32,
        _ => WeightFormat::Quantized,
    };

    let device = cairn_infer::pick_device()?;
    let started = Instant::now();
    let scorer = LlmScorer::load(&dir, &device, format)?;
    println!(
        "loaded {} ({format:?}) in {:.2?}",
        dir.display(),
        started.elapsed()
    );

    let opts = RerankPrompt::default();
    let prompts = (0..pairs)
        .map(|i| scorer.rerank_prompt(QUERIES[i % QUERIES.len()], &passage(i), &opts))
        .collect::<Result<Vec<_>, _>>()?;
    let tokens: usize = prompts
        .iter()
        .map(|p| scorer.encode_prompt(p).map(|ids| ids.len()))
        .sum::<Result<usize, _>>()?;
    println!(
        "{pairs} pairs, {tokens} prompt tokens ({:.0} per pair)",
        tokens as f64 / pairs as f64
    );

    let mut first: Option<Vec<f32>> = None;
    for &batch_size in &batch_sizes {
        let started = Instant::now();
        let scores = scorer.score_yes_no(&prompts, "yes", "no", batch_size)?;
        let secs = started.elapsed().as_secs_f64();
        let drift = first.as_ref().map_or(0.0, |f| {
            f.iter()
                .zip(&scores)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max)
        });
        println!(
            "batch {batch_size:>3}: {secs:7.2} s, {:6.1} pairs/s, {:7.0} tokens/s, max score drift vs first {drift:.1e}",
            pairs as f64 / secs,
            tokens as f64 / secs
        );
        first.get_or_insert(scores);
    }
    Ok(())
}
