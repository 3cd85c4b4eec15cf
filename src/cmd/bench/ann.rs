//! The `ann` suite: building the HNSW graph over the corpus's embeddings and queries per
//! second at recall@10 ≥ 0.95, against hnswlib and faiss (`bench/ann/peer.py`).
//!
//! The vectors are the corpus's passages embedded by cairn's embedder (`[embed] model`),
//! computed once and kept in the corpus folder. Every hundredth passage (id divisible by
//! 100) is a query and stays out of the index; the exact top 10 of each query (dot product of
//! unit vectors) is the ground truth, also kept. All engines build with M 16 and
//! efConstruction 200. Every engine reports its queries/s at the smallest ef of the same
//! sweep whose recall@10 reaches 0.95; cairn searches through its production path (the
//! tenant filter applied inside the walk, a blocking task per query) and also reports its
//! figure at its default (ef = max(128, 2k)).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use cairn_core::{Config, DerivedIndex, IndexBatch, Seq, VectorStore};
use cairn_index::HnswStore;

use super::bm25::{chunk, queries_per_second, scope};
use super::{Measure, Report, Suite, corpus};

const BATCH: usize = 10_000;
const K: usize = 10;
/// Searches per measurement (the queries, repeated).
const SEARCHES: usize = 5_000;
/// The candidate lists tried, as the peers try them.
const SWEEP: &[usize] = &[10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512];
const TARGET: f64 = 0.95;
/// The store's own smallest candidate list (what production searches use).
const DEFAULT_EF: usize = 128;

/// The corpus's vectors: row `i` is passage `i`.
pub(super) struct Vectors {
    pub dims: usize,
    pub data: Vec<f32>,
}

impl Vectors {
    fn len(&self) -> usize {
        self.data.len() / self.dims
    }

    fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dims..(i + 1) * self.dims]
    }
}

fn is_query(id: usize) -> bool {
    id.is_multiple_of(100)
}

fn model_tag(config: &Config) -> String {
    Path::new(&config.embed.model)
        .file_name()
        .map_or("model".into(), |n| n.to_string_lossy().into_owned())
}

/// Files of the vectors and the ground truth for `n` passages.
fn files(args: &super::Args, config: &Config, n: usize) -> (PathBuf, PathBuf) {
    let dir = corpus::dir(args);
    let tag = model_tag(config);
    (
        dir.join(format!("vectors-{tag}-{n}.f32")),
        dir.join(format!("truth-{tag}-{n}.u32")),
    )
}

fn write_f32(path: &Path, data: &[f32]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    for x in data {
        f.write_all(&x.to_le_bytes())?;
    }
    f.flush()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn read_f32(path: &Path) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Embeds every passage with cairn's embedder (longest first, so that a forward pass pads
/// little), unless the file is there.
pub(super) fn embed_corpus(config: &Config, passages: &[String], path: &Path) -> Result<Vectors> {
    let dir = crate::app::model_path(config, &config.embed.model);
    let device = cairn_infer::pick_device()?;
    let encoder = cairn_infer::BertEncoder::load(&dir, &device, config.embed.max_tokens)?;
    let dims = encoder.dims();
    if path.exists() {
        let data = read_f32(path)?;
        if data.len() == passages.len() * dims {
            return Ok(Vectors { dims, data });
        }
        eprintln!(
            "bench ann: {} has the wrong size; embedding again",
            path.display()
        );
    }
    let mut order: Vec<usize> = (0..passages.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(passages[i].len()));
    let mut data = vec![0f32; passages.len() * dims];
    let bar = indicatif::ProgressBar::new(passages.len() as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "bench ann: embedding the corpus {bar:30} {pos}/{len} {per_sec} eta {eta}",
        )?,
    );
    for batch in order.chunks(512) {
        let texts: Vec<String> = batch.iter().map(|&i| passages[i].clone()).collect();
        let (vectors, _) = encoder.encode_batch(&texts)?;
        for (&i, v) in batch.iter().zip(vectors) {
            data[i * dims..(i + 1) * dims].copy_from_slice(&v);
        }
        bar.inc(batch.len() as u64);
    }
    bar.finish();
    write_f32(path, &data)?;
    Ok(Vectors { dims, data })
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The exact top `K` passage ids (not queries) of every query, by dot product.
fn exact_top(vectors: &Vectors) -> Vec<Vec<u32>> {
    let queries: Vec<usize> = (0..vectors.len()).filter(|&i| is_query(i)).collect();
    let threads = super::cores();
    let per = queries.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = queries
            .chunks(per.max(1))
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|&q| {
                            let qv = vectors.row(q);
                            let mut best: Vec<(f32, u32)> = Vec::with_capacity(K + 1);
                            for i in (0..vectors.len()).filter(|&i| !is_query(i)) {
                                let d = dot(qv, vectors.row(i));
                                if best.len() < K || d > best[K - 1].0 {
                                    let at = best.partition_point(|&(b, _)| b >= d);
                                    best.insert(at, (d, i as u32));
                                    best.truncate(K);
                                }
                            }
                            best.into_iter().map(|(_, i)| i).collect()
                        })
                        .collect::<Vec<Vec<u32>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a ground-truth thread panicked"))
            .collect()
    })
}

fn ground_truth(vectors: &Vectors, path: &Path) -> Result<Vec<Vec<u32>>> {
    let queries = (0..vectors.len()).filter(|&i| is_query(i)).count();
    if let Ok(bytes) = std::fs::read(path)
        && bytes.len() == queries * K * 4
    {
        let ids: Vec<u32> = bytes
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        return Ok(ids.chunks(K).map(<[u32]>::to_vec).collect());
    }
    eprintln!("bench ann: exact top {K} of {queries} queries …");
    let truth = exact_top(vectors);
    let bytes: Vec<u8> = truth
        .iter()
        .flatten()
        .flat_map(|i| i.to_le_bytes())
        .collect();
    std::fs::write(path, bytes)?;
    Ok(truth)
}

pub async fn run(config: &Config, args: &super::Args) -> Result<super::SuiteResult> {
    let passages = corpus::passages(args)?;
    let (vectors_file, truth_file) = files(args, config, passages.len());
    let vectors = {
        let (config, path) = (config.clone(), vectors_file.clone());
        tokio::task::spawn_blocking(move || embed_corpus(&config, &passages, &path)).await??
    };
    ground_truth(&vectors, &truth_file)?;
    let extra = vec![
        "--vectors".into(),
        vectors_file.display().to_string(),
        "--truth".into(),
        truth_file.display().to_string(),
        "--dims".into(),
        vectors.dims.to_string(),
    ];
    super::side_by_side(Suite::Ann, args, &extra)
}

pub async fn worker(config: &Config, args: &super::Args) -> Result<Report> {
    let n = corpus::count(args)?;
    let (vectors_file, truth_file) = files(args, config, n);
    let data = read_f32(&vectors_file)?;
    if data.is_empty() || !data.len().is_multiple_of(n) {
        bail!("{} does not hold {n} vectors", vectors_file.display());
    }
    let vectors = Vectors {
        dims: data.len() / n,
        data,
    };
    let truth = ground_truth(&vectors, &truth_file)?;
    let threads = super::thread_counts(args)[0];
    let base: Vec<usize> = (0..n).filter(|&i| !is_query(i)).collect();
    let queries: Vec<usize> = (0..n).filter(|&i| is_query(i)).collect();

    let mut times = Vec::new();
    let mut built = None;
    for _ in 0..args.repeat.max(1) {
        drop(built.take());
        let dir = tempfile::tempdir()?;
        let store = HnswStore::open(dir.path(), vectors.dims)?;
        let started = Instant::now();
        for (b, part) in base.chunks(BATCH).enumerate() {
            let add = part
                .iter()
                .map(|&i| chunk(i, b as i64 + 1, String::new(), vectors.row(i).to_vec()))
                .collect();
            store
                .apply(IndexBatch {
                    up_to: Seq(b as i64 + 1),
                    remove_docs: Vec::new(),
                    add,
                })
                .await?;
        }
        times.push(started.elapsed().as_secs_f64());
        built = Some((store, dir));
    }
    let (store, _dir) = built.expect("built at least once");
    let store = Arc::new(store);
    let scope = Arc::new(scope());

    let recall_at = |ef: usize| {
        store.set_min_ef_search(ef);
        let (store, scope) = (store.clone(), scope.clone());
        let (queries, truth, vectors) = (&queries, &truth, &vectors);
        async move {
            let mut hits = 0usize;
            for (q, want) in queries.iter().zip(truth) {
                let got = store.search(vectors.row(*q), K, &scope).await?;
                hits += got
                    .iter()
                    .filter(|c| want.contains(&((c.chunk_id.0 - 1) as u32)))
                    .count();
            }
            Ok::<f64, anyhow::Error>(hits as f64 / (queries.len() * K) as f64)
        }
    };
    let query_vectors: Arc<Vec<Vec<f32>>> =
        Arc::new(queries.iter().map(|&q| vectors.row(q).to_vec()).collect());
    let qps_at = |ef: usize| {
        store.set_min_ef_search(ef);
        let (store, qv, scope) = (store.clone(), query_vectors.clone(), scope.clone());
        queries_per_second(threads, SEARCHES, args.repeat, move |i| {
            let (store, qv, scope) = (store.clone(), qv.clone(), scope.clone());
            async move {
                store.search(&qv[i % qv.len()], K, &scope).await?;
                Ok(())
            }
        })
    };
    // The smallest ef of the peers' sweep that reaches the target (a search walks at least
    // 2k = 20, so the smallest settings coincide).
    let mut chosen = (SWEEP[SWEEP.len() - 1], 0.0);
    for &ef in SWEEP {
        chosen = (ef, recall_at(ef).await?);
        if chosen.1 >= TARGET {
            break;
        }
    }
    let (ef, recall) = chosen;
    let qps = qps_at(ef).await?;
    let default_recall = recall_at(DEFAULT_EF).await?;
    let default_qps = qps_at(DEFAULT_EF).await?;
    let n = base.len();
    Ok(Report {
        engine: "cairn".into(),
        measures: vec![
            Measure::time(
                "build time (s)",
                super::median(times),
                format!("{n} vectors"),
            ),
            Measure::rate(
                "queries/s at recall@10 ≥ 0.95",
                qps,
                format!("ef {ef}, recall@10 {recall:.3}"),
            ),
            Measure::rate("recall@10", recall, format!("ef {ef}")),
            Measure::rate(
                "queries/s at the default ef",
                default_qps,
                format!("ef {DEFAULT_EF}, recall@10 {default_recall:.3}"),
            ),
        ],
        extra: serde_json::json!({ "ef": ef, "recall_at_10": recall }),
    })
}
