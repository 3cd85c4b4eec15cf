//! The `generate` suite: tokens per second of the local generation engine, alone and with
//! concurrent streams, side by side with llama.cpp (llama-cpp-python) on the same GGUF file
//! and the same thread counts.
//!
//! Each thread count runs in a child process pinned to that many CPUs, each measurement is
//! repeated and its median reported. Decode speed is the tokens generated after the first one divided by the time after the first one, so prompt
//! reading is left out; aggregate speed with N streams is all their tokens over the wall
//! time of the whole batch. The peer is measured by `bench/generate/llama_cpp_peer.py` in the
//! virtual environment that `bench/generate/setup` makes; without it the table says so.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cairn_core::Config;
use cairn_llm::{ChatMessage, Engine, EngineOptions, Event, Role, SamplingParams};
use serde::{Deserialize, Serialize};

use super::median;

/// The generate suite's own options.
#[derive(clap::Args, Debug, Clone)]
pub struct GenerateArgs {
    /// (generate) The GGUF model: a folder under the models dir or a path [default: [generate] model]
    #[arg(long)]
    model: Option<String>,
    /// (generate) Concurrent streams to measure (comma-separated)
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    streams: Vec<usize>,
    /// (generate) Tokens generated per stream
    #[arg(long, default_value_t = 128)]
    tokens: usize,
    /// (generate) Words of passage text put before the request, so that reading the prompt
    /// is measured at the length of a question with its retrieved passages (0: the request
    /// alone)
    #[arg(long, default_value_t = 0)]
    prompt_words: usize,
}

/// One measured configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Row {
    engine: String,
    threads: usize,
    streams: usize,
    /// Median aggregate decode tokens/s.
    tokens_per_s: f64,
    /// Median prompt tokens/s (reading the prompt).
    prefill_per_s: f64,
}

const PROMPT: &str = "Write a long, detailed essay about the history of lighthouses, \
their keepers, and how their lamps and lenses changed over two centuries.";

/// The passage text repeated before the request by `--prompt-words`.
const PASSAGE: &str = "The keeper trimmed the wick at dusk, wound the clockwork that turned \
the lens, and logged the weather every four hours. Oil lamps gave way to incandescent \
vapour burners in the 1900s and to electric lamps after 1920; a Fresnel lens of the first \
order stood over three metres tall and threw its beam more than twenty nautical miles.";

/// The request, after `words` words of passage text when `words` is not 0.
fn prompt(words: usize) -> String {
    if words == 0 {
        return PROMPT.to_string();
    }
    let passage: Vec<&str> = PASSAGE.split_whitespace().cycle().take(words).collect();
    format!("Passages:\n{}\n\n{PROMPT}", passage.join(" "))
}

/// The GGUF file the suite measures.
fn model_file(config: &Config, args: &GenerateArgs) -> Result<PathBuf> {
    let model = args
        .model
        .clone()
        .unwrap_or_else(|| config.generate.model.clone());
    gguf_file(&crate::app::model_path(config, &model))
}

/// The child: measures cairn in this process with its thread pool as it is.
pub async fn worker(config: &Config, all: &super::Args) -> Result<ExitCode> {
    let gguf = model_file(config, &all.generate)?;
    let (args, repeat) = (all.generate.clone(), all.repeat);
    let rows = tokio::task::spawn_blocking(move || measure_cairn(&gguf, &args, repeat)).await??;
    println!("{}", serde_json::to_string(&rows)?);
    Ok(ExitCode::SUCCESS)
}

pub async fn run(config: &Config, all: &super::Args) -> Result<()> {
    let args = &all.generate;
    let gguf = model_file(config, args)?;
    let exe = std::env::current_exe()?;
    let python = super::peer_python(all);
    let peer_script = super::bench_dir().join("generate/llama_cpp_peer.py");
    let threads_list = super::thread_counts(all);
    let mut rows: Vec<Row> = Vec::new();
    let mut notes = Vec::new();
    for &threads in &threads_list {
        eprintln!("bench: cairn, {threads} thread(s) …");
        let out = super::pinned(&exe, threads)
            .args(["bench", "generate", "--worker", "--model"])
            .arg(&gguf)
            .args(["--tokens", &args.tokens.to_string()])
            .args(["--repeat", &all.repeat.to_string()])
            .args(["--prompt-words", &args.prompt_words.to_string()])
            .arg("--streams")
            .arg(join(&args.streams))
            .output()
            .context("running the measuring child")?;
        if !out.status.success() {
            bail!(
                "the measuring child failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut measured: Vec<Row> = serde_json::from_slice(&out.stdout)?;
        for r in &mut measured {
            r.threads = threads;
        }
        rows.extend(measured);
        if all.no_peers {
            continue;
        }
        if python.exists() && peer_script.exists() {
            eprintln!("bench: llama.cpp, {threads} thread(s) …");
            let out = Command::new(&python)
                .arg(&peer_script)
                .arg(&gguf)
                .args(["--threads", &threads.to_string()])
                .args(["--tokens", &args.tokens.to_string()])
                .args(["--repeat", &all.repeat.to_string()])
                .args(["--prompt", &prompt(args.prompt_words)])
                .output()
                .context("running the llama.cpp peer")?;
            if out.status.success() {
                rows.push(serde_json::from_slice(&out.stdout)?);
            } else {
                notes.push(format!(
                    "llama.cpp peer failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .last()
                        .unwrap_or("")
                ));
            }
        } else if threads == threads_list[0] {
            notes.push(format!(
                "llama.cpp not measured: run bench/generate/setup (looked for {})",
                python.display()
            ));
        }
    }
    if all.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "model": gguf, "tokens": args.tokens, "repeat": all.repeat,
                "cpu_kernels": cairn_llm::cpu_kernels(), "rows": rows, "notes": notes
            }))?
        );
    } else {
        print_table(&gguf, args, all.repeat, &rows);
        for n in notes {
            println!("note: {n}");
        }
    }
    Ok(())
}

fn join(xs: &[usize]) -> String {
    xs.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn print_table(gguf: &Path, args: &GenerateArgs, repeat: usize, rows: &[Row]) {
    println!(
        "model {} · {} tokens per stream · {} words of passages · median of {} · CPU kernels {}",
        gguf.display(),
        args.tokens,
        args.prompt_words,
        repeat,
        cairn_llm::cpu_kernels()
    );
    println!(
        "| engine | threads | streams | decode tokens/s | prompt tokens/s | decode vs llama.cpp (1 stream) | prompt vs llama.cpp | decode vs 1 stream |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in rows {
        let peer = rows
            .iter()
            .find(|p| p.engine == "llama.cpp" && p.threads == r.threads && p.streams == 1);
        let single = rows
            .iter()
            .find(|p| p.engine == r.engine && p.threads == r.threads && p.streams == 1);
        let ratio = |base: Option<&Row>| {
            base.map_or("—".to_string(), |b| {
                format!("{:.2}×", r.tokens_per_s / b.tokens_per_s)
            })
        };
        let prefill_ratio = peer.map_or("—".to_string(), |b| {
            format!("{:.2}×", r.prefill_per_s / b.prefill_per_s)
        });
        println!(
            "| {} | {} | {} | {:.1} | {:.0} | {} | {} | {} |",
            r.engine,
            r.threads,
            r.streams,
            r.tokens_per_s,
            r.prefill_per_s,
            ratio(peer),
            prefill_ratio,
            ratio(single)
        );
    }
}

/// The GGUF file at `path`, or the one in the folder.
fn gguf_file(path: &Path) -> Result<PathBuf> {
    let gguf = cairn_llm::GgufFile::open(path)
        .with_context(|| format!("opening the model {}", path.display()))?;
    Ok(gguf.path().to_path_buf())
}

/// Runs every stream count `repeat` times in this process.
fn measure_cairn(gguf: &Path, args: &GenerateArgs, repeat: usize) -> Result<Vec<Row>> {
    let max_batch = args.streams.iter().copied().max().unwrap_or(1);
    let device = cairn_infer::pick_device()?;
    let local = cairn_infer::LocalGenerator::load(
        gguf,
        &device,
        EngineOptions {
            max_batch,
            max_queue: max_batch * 2,
            ..EngineOptions::default()
        },
    )?;
    let engine: &Engine = local.engine();
    let prompt = engine.chat_prompt(&[ChatMessage::new(Role::User, prompt(args.prompt_words))])?;
    let mut rows = Vec::new();
    for &streams in &args.streams {
        let (mut decode, mut prefill) = (Vec::new(), Vec::new());
        for _ in 0..repeat.max(1) {
            let (d, p) = one_run(engine, &prompt, streams, args.tokens)?;
            decode.push(d);
            prefill.push(p);
        }
        rows.push(Row {
            engine: "cairn".into(),
            threads: 0,
            streams,
            tokens_per_s: median(decode),
            prefill_per_s: median(prefill),
        });
    }
    Ok(rows)
}

/// `streams` generations of the same prompt at once: (decode tokens/s over all streams,
/// prompt tokens/s).
fn one_run(engine: &Engine, prompt: &[u32], streams: usize, tokens: usize) -> Result<(f64, f64)> {
    let started = Instant::now();
    let mut generations = Vec::with_capacity(streams);
    for _ in 0..streams {
        generations.push(engine.submit(prompt.to_vec(), SamplingParams::greedy(tokens))?);
    }
    // Each stream's first text marks the end of its prompt; the last of them is when every
    // prompt has been read.
    let handles: Vec<_> = generations
        .into_iter()
        .map(|mut g| {
            std::thread::spawn(move || -> (Option<Duration>, usize, Instant) {
                let t0 = Instant::now();
                let mut first = None;
                let mut count = 0;
                while let Some(e) = g.blocking_recv() {
                    match e {
                        Event::Text(_) => {
                            first.get_or_insert_with(|| t0.elapsed());
                        }
                        Event::Done(d) => count = d.completion_tokens,
                        Event::Failed(_) => break,
                    }
                }
                (first, count, Instant::now())
            })
        })
        .collect();
    let mut last_first = Duration::ZERO;
    let mut total = 0;
    let mut end = started;
    for h in handles {
        let (first, count, finished) =
            h.join().map_err(|_| anyhow::anyhow!("a stream panicked"))?;
        last_first = last_first.max(first.unwrap_or_default());
        total += count.saturating_sub(1);
        end = end.max(finished);
    }
    let decode_time = (end - started).saturating_sub(last_first).as_secs_f64();
    let prefill_per_s = (prompt.len() * streams) as f64 / last_first.as_secs_f64().max(1e-9);
    Ok((total as f64 / decode_time.max(1e-9), prefill_per_s))
}
