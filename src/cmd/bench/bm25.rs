//! The `bm25` suite: building the lexical index over the corpus and top-10 queries per
//! second, against bm25s (`bench/bm25/peer.py`).
//!
//! cairn is measured through its production index ([`cairn_index::TantivyIndex`]: English
//! analyser with stemming, tenant and group filters applied inside the query, a commit per
//! batch of 10,000 passages). Queries run on `threads` tasks at once, each searching one
//! question after another; the peer retrieves the same questions as one batch with
//! `n_threads`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Result;
use cairn_core::{
    Acl, ChunkId, DerivedIndex, DocId, IndexBatch, IndexedChunk, Lang, LexicalIndex, Principal,
    Scope, Seq,
};
use cairn_index::TantivyIndex;

use super::{Measure, Report, Suite, corpus};

/// Passages per committed batch.
const BATCH: usize = 10_000;
/// Questions searched per measurement (the question list, repeated).
const SEARCHES: usize = 4_000;

pub async fn run(args: &super::Args) -> Result<super::SuiteResult> {
    // Fail early, in the parent, when the corpus is missing.
    corpus::passages(&super::Args {
        passages: Some(1),
        ..args.clone()
    })?;
    let queries = corpus::write_questions(args, &corpus::questions()?)?;
    let extra = vec!["--queries".to_string(), queries.display().to_string()];
    super::side_by_side(Suite::Bm25, args, &extra)
}

/// Passage `id` as a chunk of the bench tenant (chunk id `id + 1`).
pub(super) fn chunk(id: usize, seq: i64, text: String, embedding: Vec<f32>) -> IndexedChunk {
    IndexedChunk {
        chunk_id: ChunkId(id as i64 + 1),
        doc_id: DocId::from(format!("p{id}").as_str()),
        seq: Seq(seq),
        acl: Acl::tenant_wide("bench"),
        lang: Lang::En,
        text,
        embedding,
        concepts: Default::default(),
    }
}

pub(super) fn scope() -> Scope {
    Scope {
        principal: Principal::new("bench", Vec::new()),
        doc_ids: None,
        max_seq: Seq(i64::MAX),
    }
}

async fn build(passages: &[String]) -> Result<(TantivyIndex, tempfile::TempDir, f64)> {
    let dir = tempfile::tempdir()?;
    let index = TantivyIndex::open(dir.path())?;
    let started = Instant::now();
    for (n, part) in passages.chunks(BATCH).enumerate() {
        index
            .apply(IndexBatch {
                up_to: Seq(n as i64 + 1),
                remove_docs: Vec::new(),
                add: part
                    .iter()
                    .enumerate()
                    .map(|(i, text)| chunk(n * BATCH + i, n as i64 + 1, text.clone(), Vec::new()))
                    .collect(),
            })
            .await?;
    }
    Ok((index, dir, started.elapsed().as_secs_f64()))
}

/// Searches `total` questions on `threads` tasks at once, `repeat` times; the median of
/// the questions per second.
pub(super) async fn queries_per_second<F, Fut>(
    threads: usize,
    total: usize,
    repeat: usize,
    search: F,
) -> Result<f64>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let search = Arc::new(search);
    let mut rates = Vec::new();
    for _ in 0..repeat.max(1) {
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..threads.max(1) {
            let (next, search) = (next.clone(), search.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return Ok::<(), anyhow::Error>(());
                    }
                    search(i).await?;
                }
            }));
        }
        for t in tasks {
            t.await??;
        }
        rates.push(total as f64 / started.elapsed().as_secs_f64());
    }
    Ok(super::median(rates))
}

pub async fn worker(args: &super::Args) -> Result<Report> {
    let passages = corpus::passages(args)?;
    let questions = corpus::questions()?;
    let threads = super::thread_counts(args)[0];
    let mut times = Vec::new();
    let mut built = None;
    for _ in 0..args.repeat.max(1) {
        drop(built.take()); // the previous index and its folder go before the next is built
        let (index, dir, secs) = build(&passages).await?;
        times.push(secs);
        built = Some((index, dir));
    }
    let index_s = super::median(times);
    let (index, _dir) = built.expect("built at least once");
    let index = Arc::new(index);
    let questions = Arc::new(questions);
    let scope = Arc::new(scope());
    let qps = queries_per_second(threads, SEARCHES, args.repeat, move |i| {
        let (index, questions, scope) = (index.clone(), questions.clone(), scope.clone());
        async move {
            let q = &questions[i % questions.len()];
            index.search(q, 10, &scope).await?;
            Ok(())
        }
    })
    .await?;
    let settings = format!("{} passages, top 10", passages.len());
    Ok(Report {
        engine: "cairn".into(),
        measures: vec![
            Measure::time("index time (s)", index_s, settings.clone()),
            Measure::rate("queries/s", qps, settings),
        ],
        extra: serde_json::Value::Null,
    })
}
