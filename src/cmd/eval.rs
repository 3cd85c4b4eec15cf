//! `cairn eval`: scores retrieval on a judged set. It indexes the set's documents into a
//! scratch data dir (or an `--index` dir kept between runs, re-indexed incrementally),
//! runs every question in each mode, and prints nDCG@10, recall@10/100, MRR@10 and
//! latency per mode (`--json` too), optionally writing TREC run files.

use crate::app::App;
use crate::output::{Printer, Render};
use anyhow::{Context, bail};
use cairn_core::{Acl, Config, Hit, SearchMode, SearchRequest};
use cairn_eval::report::QueryRun;
use cairn_eval::{Corpus, EvalSet, ModeReport, QrelsByQuery, evaluate, render_table};
use indicatif::ProgressBar;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The eval set folder (BEIR layout, or documents + queries.jsonl + TREC qrels)
    set: PathBuf,
    /// Questions of this split only ("all" for every question)
    #[arg(long, default_value = "test")]
    split: String,
    /// Modes to run, comma-separated: bm25, dense, hybrid, hybrid+rerank (uses the [rerank]
    /// model), graph, mix
    #[arg(long, value_delimiter = ',', default_value = "bm25,dense,hybrid")]
    modes: Vec<Mode>,
    /// Index into this data dir and keep it (re-runs only index what changed); default: a
    /// scratch dir removed at the end
    #[arg(long, value_name = "DIR")]
    index: Option<PathBuf>,
    /// Write one TREC run file per mode into this folder
    #[arg(long, value_name = "DIR")]
    runs: Option<PathBuf>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Mode {
    Bm25,
    Dense,
    Hybrid,
    #[value(name = "hybrid+rerank")]
    HybridRerank,
    Graph,
    Mix,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Bm25 => "bm25",
            Mode::Dense => "dense",
            Mode::Hybrid => "hybrid",
            Mode::HybridRerank => "hybrid+rerank",
            Mode::Graph => "graph",
            Mode::Mix => "mix",
        }
    }

    fn search_mode(self) -> SearchMode {
        match self {
            Mode::Bm25 => SearchMode::Bm25,
            Mode::Dense => SearchMode::Dense,
            Mode::Hybrid | Mode::HybridRerank => SearchMode::Hybrid,
            Mode::Graph => SearchMode::Graph,
            Mode::Mix => SearchMode::Mix,
        }
    }
}

/// Ranked documents per query are cut to this depth (recall@100 needs 100).
const DEPTH: usize = 100;

#[derive(Serialize)]
struct Report {
    set: String,
    split: String,
    /// Questions run (judged and not).
    questions: usize,
    /// Questions no document answers: run for latency, left out of the quality figures.
    unanswerable: usize,
    index: IndexInfo,
    modes: Vec<ModeReport>,
    /// The same figures per question language, when the set has more than one.
    by_lang: BTreeMap<String, Vec<ModeReport>>,
}

#[derive(Serialize)]
struct IndexInfo {
    documents: usize,
    chunks: usize,
    chunker: String,
    failed: Vec<String>,
    /// Documents of a kept `--index` stored again: their content or the chunk settings
    /// changed since it was built.
    reindexed: usize,
    ingest_s: f64,
}

impl Render for Report {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "{} ({} split): {} questions, {} without an answer in the documents",
            self.set, self.split, self.questions, self.unanswerable
        )?;
        writeln!(
            out,
            "index: {} documents, {} chunks ({}), indexed in {:.1} s",
            self.index.documents, self.index.chunks, self.index.chunker, self.index.ingest_s
        )?;
        if self.index.reindexed > 0 {
            writeln!(
                out,
                "re-indexed {} documents stored with other content or chunk settings \
                 (now {}): run with the index's settings to keep it as built",
                self.index.reindexed, self.index.chunker
            )?;
        }
        for f in &self.index.failed {
            writeln!(out, "failed to index: {f}")?;
        }
        writeln!(out)?;
        write!(out, "{}", render_table(&self.modes))?;
        for (lang, reports) in &self.by_lang {
            writeln!(out, "\nquestions in {lang}:")?;
            write!(out, "{}", render_table(reports))?;
        }
        Ok(())
    }
}

pub async fn run(mut config: Config, args: Args) -> anyhow::Result<ExitCode> {
    let set = cairn_eval::load(&args.set)
        .with_context(|| format!("reading the eval set {}", args.set.display()))?;
    let questions: Vec<&cairn_eval::Query> = if args.split == "all" {
        set.queries.iter().collect()
    } else {
        set.queries_in(&args.split).collect()
    };
    if questions.is_empty() {
        bail!(
            "the eval set {} has no questions in split {:?} (its splits: {}; or use --split all)",
            set.name,
            args.split,
            set.splits().join(", ")
        );
    }

    let scratch = match &args.index {
        Some(dir) => {
            config.data_dir = dir.clone();
            None
        }
        None => {
            let tmp = tempfile::Builder::new()
                .prefix("cairn-eval-")
                .tempdir()
                .context("creating a scratch data dir")?;
            config.data_dir = tmp.path().to_path_buf();
            Some(tmp)
        }
    };
    let mut app = App::open(config).await?;
    if args.modes.contains(&Mode::HybridRerank) {
        app.load_reranker(true)?;
    }
    let index = index_corpus(&app, &set, args.json).await?;

    let mut runs: BTreeMap<Mode, Vec<(QueryRun, Vec<f64>)>> = BTreeMap::new();
    let bar = progress(
        (questions.len() * args.modes.len()) as u64,
        args.json,
        "searching",
    );
    let principal = app.principal(&[]);
    for &mode in &args.modes {
        let mut mode_runs = Vec::with_capacity(questions.len());
        for q in &questions {
            let req = SearchRequest {
                top_k: Some(DEPTH),
                mode: mode.search_mode(),
                rerank: Some(mode == Mode::HybridRerank),
                ..SearchRequest::new(q.text.clone())
            };
            let started = Instant::now();
            let resp = app
                .retriever
                .search(&req, &principal)
                .await
                .with_context(|| format!("searching for question {}", q.id))?;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            let (ranked, scores) = judged_ids(&set.corpus, &resp.results);
            mode_runs.push(((q.id.clone(), ranked, ms), scores));
            bar.inc(1);
        }
        runs.insert(mode, mode_runs);
    }
    bar.finish_and_clear();

    if let Some(dir) = &args.runs {
        write_runs(dir, &set.name, &runs)?;
    }
    let score = |filter: &dyn Fn(&cairn_eval::Query) -> bool| -> Vec<ModeReport> {
        let keep: HashSet<&str> = questions
            .iter()
            .filter(|q| filter(q))
            .map(|q| q.id.as_str())
            .collect();
        args.modes
            .iter()
            .map(|mode| {
                let picked: Vec<QueryRun> = runs[mode]
                    .iter()
                    .map(|(run, _)| run)
                    .filter(|run| keep.contains(run.0.as_str()))
                    .cloned()
                    .collect();
                evaluate(mode.name(), &picked, &set.qrels)
            })
            .collect()
    };
    let langs: Vec<String> = {
        let mut l: Vec<String> = questions.iter().filter_map(|q| q.lang.clone()).collect();
        l.sort();
        l.dedup();
        l
    };
    let by_lang = if langs.len() > 1 {
        langs
            .iter()
            .map(|lang| {
                let reports = score(&|q| q.lang.as_deref() == Some(lang.as_str()));
                (lang.clone(), reports)
            })
            .collect()
    } else {
        BTreeMap::new()
    };
    let report = Report {
        set: set.name.clone(),
        split: args.split.clone(),
        questions: questions.len(),
        unanswerable: questions
            .iter()
            .filter(|q| !answerable(&set.qrels, &q.id))
            .count(),
        index,
        modes: score(&|_| true),
        by_lang,
    };
    Printer::new(args.json).print(&report)?;
    drop(app);
    drop(scratch);
    Ok(ExitCode::SUCCESS)
}

fn answerable(qrels: &QrelsByQuery, id: &str) -> bool {
    qrels.get(id).is_some_and(cairn_eval::metrics::has_relevant)
}

/// Ingests the set's documents (unchanged ones are skipped in a kept `--index`).
async fn index_corpus(app: &App, set: &EvalSet, quiet: bool) -> anyhow::Result<IndexInfo> {
    let acl = Acl::tenant_wide(app.config.tenant.clone());
    let started = Instant::now();
    let mut info = IndexInfo {
        documents: 0,
        chunks: 0,
        chunker: app.ingestor.chunker().to_string(),
        failed: Vec::new(),
        reindexed: 0,
        ingest_s: 0.0,
    };
    match &set.corpus {
        Corpus::Folder(dir) => {
            let walked = cairn_ingest::walk::Walker::default().walk(dir)?;
            let bar = progress(walked.files.len() as u64, quiet, "indexing");
            for path in &walked.files {
                bar.set_message(path.display().to_string());
                match app.ingestor.ingest_path(path, &acl).await {
                    Ok(out) => info.count(&out),
                    Err(e) => info.failed.push(format!("{}: {e}", path.display())),
                }
                bar.inc(1);
            }
            bar.finish_and_clear();
        }
        Corpus::Beir(docs) => {
            let bar = progress(docs.len() as u64, quiet, "indexing");
            for doc in docs {
                let text = if doc.title.is_empty() {
                    doc.text.clone()
                } else {
                    format!("{}\n\n{}", doc.title, doc.text)
                };
                let ingested = match cairn_core::Origin::upload(&beir_source(&doc.id)) {
                    Ok(origin) => {
                        app.ingestor
                            .ingest_bytes(text.as_bytes(), &origin, &acl)
                            .await
                    }
                    Err(e) => Err(e),
                };
                match ingested {
                    Ok(out) => info.count(&out),
                    Err(e) => info.failed.push(format!("{}: {e}", doc.id)),
                }
                bar.inc(1);
            }
            bar.finish_and_clear();
        }
    }
    app.store.flush().await?;
    info.ingest_s = started.elapsed().as_secs_f64();
    Ok(info)
}

impl IndexInfo {
    fn count(&mut self, out: &cairn_ingest::IngestOutcome) {
        self.documents += 1;
        self.chunks += out.chunks;
        if out.status == cairn_ingest::IngestStatus::Updated {
            self.reindexed += 1;
        }
    }
}

/// BEIR documents are ingested as text files named by their id.
fn beir_source(id: &str) -> String {
    format!("beir:{id}.txt")
}

/// The judged ids of a result list, best first, each once, with the score of its best
/// passage: for a folder set, `relative/path#pN` (the page of the passage); for BEIR, the
/// corpus id.
fn judged_ids(corpus: &Corpus, hits: &[Hit]) -> (Vec<String>, Vec<f64>) {
    let mut seen = HashSet::new();
    let mut ids = Vec::new();
    let mut scores = Vec::new();
    for h in hits {
        let id = match corpus {
            Corpus::Folder(root) => {
                let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.clone());
                let source = Path::new(&h.source);
                let rel = source.strip_prefix(&root).unwrap_or(source);
                format!("{}#p{}", rel.display(), h.page)
            }
            Corpus::Beir(_) => h
                .source
                .strip_prefix("beir:")
                .and_then(|s| s.strip_suffix(".txt"))
                .unwrap_or(&h.source)
                .to_string(),
        };
        if seen.insert(id.clone()) {
            ids.push(id);
            scores.push(f64::from(h.score));
        }
    }
    (ids, scores)
}

fn write_runs(
    dir: &Path,
    set: &str,
    runs: &BTreeMap<Mode, Vec<(QueryRun, Vec<f64>)>>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (mode, mode_runs) in runs {
        let path = dir.join(format!("{}.{}.trec", set, mode.name()));
        let mut out = io::BufWriter::new(
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
        );
        let name = format!("cairn-{}", mode.name());
        for ((qid, ranked, _), scores) in mode_runs {
            let ranking: Vec<(&String, f64)> = ranked.iter().zip(scores.iter().copied()).collect();
            cairn_eval::trec::write_ranking(&mut out, &name, qid, &ranking)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        out.flush()?;
    }
    Ok(())
}

fn progress(len: u64, quiet: bool, what: &'static str) -> ProgressBar {
    crate::output::progress_bar(len, what, quiet)
}
