//! `cairn bench SUITE…`: cairn's hot paths measured side by side with what users would pick
//! instead, on the same machine in the same run.
//!
//! Every suite measures each thread count in a child process pinned to that many CPUs
//! (`taskset`), so that thread pools sized from the CPU count (rayon, tantivy, PyTorch,
//! OpenMP) see the same machine for cairn and for the peer; each figure is the median of
//! `--repeat` runs. The peers run in the virtual environment that `bench/<suite>/setup`
//! makes (`~/.cache/cairn/bench-venv`); without it the table says the peer was not measured.
//! The passages come from `bench/corpus/fetch` (Debian documentation packages at pinned
//! versions), the questions from the judged sets under `eval/`.
//!
//! Suites: `generate` (decode tokens/s against llama.cpp), `embed` (sentence-transformers),
//! `ann` (hnswlib and faiss) and `bm25` (bm25s). Each prints its table and, in a source
//! checkout, writes it into `bench/<suite>/RESULTS.md` between markers, leaving the prose
//! around it alone.

mod ann;
mod bm25;
mod corpus;
mod embed;
mod generate;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use cairn_core::Config;
use serde::{Deserialize, Serialize};

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Suite {
    /// Decode tokens/s of the local engine (1 and N streams) against llama.cpp
    Generate,
    /// Passages/s and tokens/s of the embedder against sentence-transformers
    Embed,
    /// HNSW build time and queries/s at recall@10 ≥ 0.95 against hnswlib and faiss
    Ann,
    /// BM25 index time and top-10 queries/s against bm25s
    Bm25,
}

impl Suite {
    fn name(self) -> &'static str {
        match self {
            Suite::Generate => "generate",
            Suite::Embed => "embed",
            Suite::Ann => "ann",
            Suite::Bm25 => "bm25",
        }
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Suites to run, in order
    #[arg(value_enum, required = true, num_args = 1..)]
    suites: Vec<Suite>,
    /// Thread counts to measure (comma-separated) [default: 1 and all of this machine's]
    #[arg(long, value_delimiter = ',')]
    threads: Vec<usize>,
    /// Repetitions of each measurement (the median is reported)
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Python with the peers installed [default: ~/.cache/cairn/bench-venv/bin/python]
    #[arg(long)]
    peer_python: Option<PathBuf>,
    /// Skip the peers (cairn's figures only)
    #[arg(long)]
    no_peers: bool,
    /// The corpus folder that bench/corpus/fetch wrote [default: ~/.cache/cairn/bench/corpus]
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Use only the first N passages of the corpus (embed, ann, bm25)
    #[arg(long)]
    passages: Option<usize>,
    /// Passages the embed suite encodes per run
    #[arg(long, default_value_t = 1024)]
    sample: usize,
    /// Print JSON instead of tables
    #[arg(long)]
    json: bool,
    /// Do not write bench/<suite>/RESULTS.md
    #[arg(long)]
    no_write: bool,
    #[command(flatten)]
    generate: generate::GenerateArgs,
    /// Measure in this process with the CPUs it was given (internal)
    #[arg(long, hide = true)]
    worker: bool,
}

/// One figure measured for one engine at one thread count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measure {
    pub figure: String,
    pub value: f64,
    /// Whether a larger value is better (rates), or a smaller one (times).
    pub higher_is_better: bool,
    /// The setting behind the figure (an ef, a batch size), when it matters.
    #[serde(default)]
    pub settings: String,
}

impl Measure {
    fn rate(figure: &str, value: f64, settings: impl Into<String>) -> Measure {
        Measure {
            figure: figure.into(),
            value,
            higher_is_better: true,
            settings: settings.into(),
        }
    }

    fn time(figure: &str, value: f64, settings: impl Into<String>) -> Measure {
        Measure {
            figure: figure.into(),
            value,
            higher_is_better: false,
            settings: settings.into(),
        }
    }
}

/// What one engine's child process reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub engine: String,
    pub measures: Vec<Measure>,
    /// Extra facts (recall reached, vectors for a parity check).
    #[serde(default)]
    pub extra: serde_json::Value,
}

/// Everything one suite measured.
#[derive(Debug, Clone, Serialize)]
struct SuiteResult {
    suite: Suite,
    /// (threads, reports of every engine) in the order measured.
    runs: Vec<(usize, Vec<Report>)>,
    notes: Vec<String>,
}

pub async fn run(config: Config, args: Args) -> Result<ExitCode> {
    if args.worker {
        let [suite] = args.suites[..] else {
            bail!("a worker measures one suite");
        };
        let report = match suite {
            Suite::Generate => return generate::worker(&config, &args).await,
            Suite::Embed => embed::worker(&config, &args).await?,
            Suite::Ann => ann::worker(&config, &args).await?,
            Suite::Bm25 => bm25::worker(&args).await?,
        };
        println!("{}", serde_json::to_string(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut results = Vec::new();
    for &suite in &args.suites {
        if suite == Suite::Generate {
            generate::run(&config, &args).await?;
            continue;
        }
        let result = match suite {
            Suite::Embed => embed::run(&config, &args).await?,
            Suite::Ann => ann::run(&config, &args).await?,
            Suite::Bm25 => bm25::run(&args).await?,
            Suite::Generate => unreachable!("handled above"),
        };
        if !args.json {
            let table = table(&result, &args);
            println!("{table}");
            if !args.no_write {
                write_results(suite, &table)?;
            }
        }
        results.push(result);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// The thread counts to measure: those asked for, or 1 and all of the machine's.
fn thread_counts(args: &Args) -> Vec<usize> {
    let mut t = if args.threads.is_empty() {
        vec![1, cores()]
    } else {
        args.threads.clone()
    };
    t.retain(|&n| n > 0);
    t.dedup();
    t
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A command pinned to the first `threads` CPUs, with every thread-pool variable set.
fn pinned(program: &Path, threads: usize) -> Command {
    let cpus = format!("0-{}", threads.saturating_sub(1));
    let mut c = Command::new("taskset");
    c.args(["-c", &cpus]).arg(program);
    for var in [
        "RAYON_NUM_THREADS",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
    ] {
        c.env(var, threads.to_string());
    }
    c
}

/// Runs cairn's worker for `suite` on `threads` CPUs.
fn cairn_child(suite: Suite, threads: usize, args: &Args) -> Result<Report> {
    let exe = std::env::current_exe()?;
    let mut c = pinned(&exe, threads);
    c.args(["bench", suite.name(), "--worker"])
        .args(["--threads", &threads.to_string()])
        .args(["--repeat", &args.repeat.to_string()])
        .args(["--sample", &args.sample.to_string()])
        .arg("--corpus")
        .arg(corpus::dir(args));
    if let Some(n) = args.passages {
        c.args(["--passages", &n.to_string()]);
    }
    c.stderr(std::process::Stdio::inherit());
    let out = c
        .output()
        .context("running the measuring child (is taskset installed?)")?;
    if !out.status.success() {
        bail!("cairn's {} worker failed", suite.name());
    }
    serde_json::from_slice(&out.stdout).context("reading the worker's report")
}

/// The Python of the peers' virtual environment.
fn peer_python(args: &Args) -> PathBuf {
    args.peer_python.clone().unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/cairn/bench-venv/bin/python")
    })
}

/// The bench folder of the source checkout this binary was built from.
fn bench_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bench")
}

/// Runs `bench/<suite>/peer.py` on `threads` CPUs; `Ok(None)` with a note when the peers
/// are not installed or the script fails.
fn peer_child(
    suite: Suite,
    threads: usize,
    args: &Args,
    extra: &[String],
    notes: &mut Vec<String>,
) -> Result<Vec<Report>> {
    if args.no_peers {
        return Ok(Vec::new());
    }
    let python = peer_python(args);
    let script = bench_dir().join(suite.name()).join("peer.py");
    if !python.exists() || !script.exists() {
        let note = format!(
            "peers not measured: run bench/{}/setup (looked for {} and {})",
            suite.name(),
            python.display(),
            script.display()
        );
        if !notes.contains(&note) {
            notes.push(note);
        }
        return Ok(Vec::new());
    }
    let mut c = pinned(&python, threads);
    c.arg(&script)
        .args(["--threads", &threads.to_string()])
        .args(["--repeat", &args.repeat.to_string()])
        .arg("--corpus")
        .arg(corpus::dir(args));
    if let Some(n) = args.passages {
        c.args(["--passages", &n.to_string()]);
    }
    c.args(extra);
    c.stderr(std::process::Stdio::inherit());
    let out = c.output().context("running the peer")?;
    if !out.status.success() {
        notes.push(format!(
            "bench/{}/peer.py failed at {threads} thread(s)",
            suite.name()
        ));
        return Ok(Vec::new());
    }
    serde_json::from_slice(&out.stdout).context("reading the peer's report")
}

/// Runs cairn and the peers at every thread count; `extra` are the peers' own arguments
/// (cairn's worker finds the same inputs itself).
fn side_by_side(suite: Suite, args: &Args, extra: &[String]) -> Result<SuiteResult> {
    let mut notes = Vec::new();
    let mut runs = Vec::new();
    for threads in thread_counts(args) {
        eprintln!("bench {}: cairn, {threads} thread(s) …", suite.name());
        let mut reports = vec![cairn_child(suite, threads, args)?];
        eprintln!("bench {}: peers, {threads} thread(s) …", suite.name());
        reports.extend(peer_child(suite, threads, args, extra, &mut notes)?);
        runs.push((threads, reports));
    }
    Ok(SuiteResult { suite, runs, notes })
}

pub(crate) fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn fmt_value(v: f64) -> String {
    if !v.is_finite() {
        "—".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// The markdown table of a suite: one row per figure, thread count and peer; the ratio is
/// oriented so that above 1 means cairn is ahead.
fn table(result: &SuiteResult, args: &Args) -> String {
    let mut out = format!(
        "{} · median of {} · {} · {}\n\n| figure | threads | cairn | peer | peer's | cairn ahead by | settings |\n|---|---|---|---|---|---|---|\n",
        today(),
        args.repeat.max(1),
        cpu_name(),
        passages_note(args),
    );
    for (threads, reports) in &result.runs {
        let Some(cairn) = reports.iter().find(|r| r.engine == "cairn") else {
            continue;
        };
        for m in &cairn.measures {
            let peers: Vec<(&Report, &Measure)> = reports
                .iter()
                .filter(|r| r.engine != "cairn")
                .filter_map(|r| {
                    r.measures
                        .iter()
                        .find(|p| p.figure == m.figure)
                        .map(|p| (r, p))
                })
                .collect();
            if peers.is_empty() {
                out.push_str(&format!(
                    "| {} | {threads} | {} | — | — | — | {} |\n",
                    m.figure,
                    fmt_value(m.value),
                    m.settings
                ));
            }
            for (peer, p) in peers {
                let ratio = if m.higher_is_better {
                    m.value / p.value
                } else {
                    p.value / m.value
                };
                let settings = if p.settings.is_empty() || p.settings == m.settings {
                    m.settings.clone()
                } else {
                    format!("cairn {}; {} {}", m.settings, peer.engine, p.settings)
                };
                out.push_str(&format!(
                    "| {} | {threads} | {} | {} | {} | {:.2}× | {settings} |\n",
                    m.figure,
                    fmt_value(m.value),
                    peer.engine,
                    fmt_value(p.value),
                    ratio,
                ));
            }
        }
    }
    for n in &result.notes {
        out.push_str(&format!("\nnote: {n}\n"));
    }
    out
}

fn passages_note(args: &Args) -> String {
    match args.passages {
        Some(n) => format!("first {n} passages of the corpus"),
        None => "the whole corpus".into(),
    }
}

fn today() -> String {
    Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The CPU's model name and core count, for the table's heading.
fn cpu_name() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{model}, {} cores", cores())
}

const BEGIN: &str = "<!-- cairn bench: table begin (written by `cairn bench`) -->";
const END: &str = "<!-- cairn bench: table end -->";

/// Writes `table` into `bench/<suite>/RESULTS.md` between the markers (appending them when
/// absent); does nothing outside a source checkout.
fn write_results(suite: Suite, table: &str) -> Result<()> {
    let dir = bench_dir().join(suite.name());
    if !dir.is_dir() {
        return Ok(());
    }
    let path = dir.join("RESULTS.md");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let block = format!("{BEGIN}\n{table}{END}");
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{block}{}", &old[..b], &old[e + END.len()..])
        }
        _ => format!("{}\n{block}\n", old.trim_end()),
    };
    std::fs::write(&path, new).with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "bench {}: table written to {}",
        suite.name(),
        path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(engine: &str, measures: Vec<Measure>) -> Report {
        Report {
            engine: engine.into(),
            measures,
            extra: serde_json::Value::Null,
        }
    }

    #[test]
    fn ratios_say_how_far_cairn_is_ahead_whichever_way_a_figure_points() {
        let result = SuiteResult {
            suite: Suite::Bm25,
            runs: vec![(
                2,
                vec![
                    report(
                        "cairn",
                        vec![
                            Measure::rate("QPS", 400.0, ""),
                            Measure::time("index s", 5.0, ""),
                        ],
                    ),
                    report(
                        "peer",
                        vec![
                            Measure::rate("QPS", 100.0, ""),
                            Measure::time("index s", 20.0, ""),
                        ],
                    ),
                ],
            )],
            notes: vec!["a note".into()],
        };
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let args = <Cli as clap::Parser>::parse_from(["bench", "bm25"]).args;
        let t = table(&result, &args);
        assert!(t.contains("| QPS | 2 | 400 | peer | 100 | 4.00× |"), "{t}");
        assert!(
            t.contains("| index s | 2 | 5.000 | peer | 20.0 | 4.00× |"),
            "{t}"
        );
        assert!(t.contains("note: a note"), "{t}");
    }

    #[test]
    fn median_takes_the_middle_and_says_nan_for_nothing() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert!(median(vec![]).is_nan());
    }
}
