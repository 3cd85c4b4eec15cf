//! Rough embedding throughput through the worker: `cargo run -p cairn-infer --release
//! --example embed_throughput -- [model dir] [texts] [batch size] [callers]`.
//!
//! Embeds synthetic passages of about 60 to 200 word pieces (typical chunk sizes) from several
//! concurrent callers and prints texts per second. A measurement aid, not a test.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use cairn_core::Embedder;

const WORDS: &[&str] = &[
    "retrieval",
    "augmented",
    "generation",
    "combines",
    "search",
    "with",
    "a",
    "language",
    "model",
    "documents",
    "are",
    "split",
    "into",
    "passages",
    "each",
    "embedded",
    "vector",
    "question",
    "nearest",
    "cited",
    "policy",
    "leave",
    "invoice",
    "server",
    "retry",
    "2024",
];

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> T {
    args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../models/minilm-l6"))
    });
    let total: usize = arg(&args, 2, 256);
    let batch_size: usize = arg(&args, 3, 32);
    let callers: usize = arg(&args, 4, 4).max(1);

    let texts: Vec<String> = (0..total)
        .map(|i| {
            let len = 50 + (i * 37) % 130;
            (0..len)
                .map(|j| WORDS[(i * 7 + j * 13) % WORDS.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let embedder: Arc<dyn Embedder> = cairn_infer::load_embedder(&dir, 256, batch_size, 64)?;
    let tokenize = Instant::now();
    let pieces: usize = texts
        .iter()
        .map(|t| embedder.count_tokens(t).min(256))
        .sum();
    eprintln!(
        "tokenizing {total} texts: {:.3}s",
        tokenize.elapsed().as_secs_f64()
    );

    // Warm up once (first pass allocates).
    embedder
        .embed(texts[..batch_size.min(total)].to_vec())
        .await?;

    let start = Instant::now();
    let per_caller = total.div_ceil(callers);
    let mut tasks = Vec::new();
    for part in texts.chunks(per_caller) {
        let embedder = embedder.clone();
        let part = part.to_vec();
        tasks.push(tokio::spawn(async move {
            // Each caller sends requests of 8 texts, like an ingest pipeline would.
            for request in part.chunks(8) {
                embedder.embed(request.to_vec()).await?;
            }
            Ok::<_, cairn_core::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}: {total} texts ({:.0} word pieces avg), batch {batch_size}, {callers} callers: {:.2}s, {:.1} texts/s, {:.0} word pieces/s",
        embedder.model_id(),
        pieces as f64 / total as f64,
        secs,
        total as f64 / secs,
        pieces as f64 / secs,
    );
    Ok(())
}
