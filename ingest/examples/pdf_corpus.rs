//! Measures PDF extraction on a folder of real PDFs, through the same isolated path as
//! `cairn ingest` (a `cairn parse-worker` child per file, with the time and memory limit,
//! and the lopdf fallback), and prints: the share of files parsed with text, the share
//! that needed the fallback, the failures by reason, and pages per second. With
//! `--compare` it also runs each extractor alone on every file (isolated too) to compare
//! them.
//!
//! ```text
//! scripts/fetch-debian-pdfs
//! cargo build --release --bin cairn
//! cargo run --release -p cairn-ingest --example pdf_corpus -- \
//!     --worker target/release/cairn --limit 400 --jobs 2 --compare ~/.cache/cairn/debian-pdfs/root
//! ```

use cairn_ingest::isolate::{
    self, DEFAULT_MAX_MEMORY_BYTES, DEFAULT_MAX_TIMEOUT, DEFAULT_PER_PAGE, DEFAULT_TIMEOUT,
    Extractor, Isolation, PdfFailure, PdfPages,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Options {
    worker: PathBuf,
    limit: Option<usize>,
    jobs: usize,
    compare: bool,
    timeout: Duration,
    out: Option<PathBuf>,
    dirs: Vec<PathBuf>,
}

fn usage() -> ! {
    eprintln!(
        "usage: pdf_corpus --worker PATH/TO/cairn [--limit N] [--jobs N] [--timeout SECS] \
         [--compare] [--out FILE.jsonl] DIR..."
    );
    std::process::exit(2)
}

fn options() -> Options {
    let mut o = Options {
        worker: PathBuf::new(),
        limit: None,
        jobs: 1,
        compare: false,
        timeout: DEFAULT_TIMEOUT,
        out: None,
        dirs: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--worker" => o.worker = value().into(),
            "--limit" => o.limit = Some(value().parse().unwrap_or_else(|_| usage())),
            "--jobs" => o.jobs = value().parse().unwrap_or_else(|_| usage()),
            "--timeout" => {
                o.timeout = Duration::from_secs(value().parse().unwrap_or_else(|_| usage()))
            }
            "--out" => o.out = Some(value().into()),
            "--compare" => o.compare = true,
            s if s.starts_with("--") => usage(),
            _ => o.dirs.push(a.into()),
        }
    }
    if o.worker.as_os_str().is_empty() || o.dirs.is_empty() {
        usage()
    }
    o
}

fn find_pdfs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            find_pdfs(&p, out);
        } else if ft.is_file() && p.extension().is_some_and(|x| x.eq_ignore_ascii_case("pdf")) {
            out.push(p);
        }
    }
}

/// One extractor's result on one file.
#[derive(Clone)]
struct Run {
    result: Result<PdfPages, PdfFailure>,
    secs: f64,
}

impl Run {
    fn chars(&self) -> usize {
        self.result
            .as_ref()
            .map(|p| p.pages.iter().map(|t| t.chars().count()).sum())
            .unwrap_or(0)
    }

    /// Share of the text in whitespace-separated tokens over 25 characters: words glued
    /// together because spaces were lost (a rough quality measure).
    fn glued(&self) -> (usize, usize) {
        let Ok(p) = &self.result else { return (0, 0) };
        let (mut glued, mut total) = (0, 0);
        for tok in p.pages.iter().flat_map(|t| t.split_whitespace()) {
            let n = tok.chars().count();
            total += n;
            if n > 25 {
                glued += n;
            }
        }
        (glued, total)
    }
}

fn timed(f: impl FnOnce() -> Result<PdfPages, PdfFailure>) -> Run {
    let t = Instant::now();
    let result = f();
    Run {
        result,
        secs: t.elapsed().as_secs_f64(),
    }
}

struct Row {
    file: PathBuf,
    bytes: usize,
    cairn: Run,
    alone: Vec<(Extractor, Run)>,
}

fn main() {
    let o = options();
    let mut files = Vec::new();
    for d in &o.dirs {
        find_pdfs(d, &mut files);
    }
    files.sort();
    if let Some(limit) = o.limit
        && files.len() > limit
    {
        // An even sample across the sorted list, so every package is represented.
        let step = files.len() as f64 / limit as f64;
        files = (0..limit)
            .map(|i| files[(i as f64 * step) as usize].clone())
            .collect();
    }
    eprintln!("{} PDFs", files.len());
    let iso = Isolation {
        exe: o.worker.clone(),
        args: vec!["parse-worker".to_string()],
        timeout: o.timeout,
        per_page: DEFAULT_PER_PAGE,
        max_timeout: DEFAULT_MAX_TIMEOUT,
        max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
    };
    if isolate::set_isolation(iso).is_err() {
        eprintln!("isolation was already set");
        std::process::exit(1);
    }

    let next = AtomicUsize::new(0);
    let rows = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..o.jobs.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(file) = files.get(i) else { break };
                    let Ok(bytes) = std::fs::read(file) else {
                        eprintln!("cannot read {}", file.display());
                        continue;
                    };
                    let cairn = timed(|| isolate::extract_pdf(&bytes));
                    let mut alone = Vec::new();
                    if o.compare {
                        for ex in [Extractor::PdfExtract, Extractor::Lopdf] {
                            alone.push((ex, timed(|| isolate::extract_pdf_with(&bytes, ex))));
                        }
                    }
                    let status = match &cairn.result {
                        Ok(p) => format!("ok {} pages, {}", p.pages.len(), p.extractor),
                        Err(f) => format!("FAILED {:?}: {}", f.kind, f.message),
                    };
                    eprintln!("[{}/{}] {} {status}", i + 1, files.len(), file.display());
                    if let Ok(mut rows) = rows.lock() {
                        rows.push(Row {
                            file: file.clone(),
                            bytes: bytes.len(),
                            cairn,
                            alone,
                        });
                    }
                }
            });
        }
    });
    let wall = started.elapsed().as_secs_f64();
    let rows = rows.into_inner().unwrap_or_default();
    report(&o, &rows, wall);
}

fn report(o: &Options, rows: &[Row], wall: f64) {
    let n = rows.len();
    let pct = |k: usize| 100.0 * k as f64 / n.max(1) as f64;
    let ok: Vec<&Row> = rows.iter().filter(|r| r.cairn.result.is_ok()).collect();
    let pages: usize = ok
        .iter()
        .filter_map(|r| r.cairn.result.as_ref().ok())
        .map(|p| p.pages.len())
        .sum();
    let cpu: f64 = rows.iter().map(|r| r.cairn.secs).sum();
    let fallback = ok
        .iter()
        .filter_map(|r| r.cairn.result.as_ref().ok())
        .filter(|p| p.extractor != "pdf-extract")
        .count();
    let whole_fallback = ok
        .iter()
        .filter_map(|r| r.cairn.result.as_ref().ok())
        .filter(|p| p.extractor == "lopdf")
        .count();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for r in rows {
        if let Err(f) = &r.cairn.result {
            *reasons.entry(format!("{:?}", f.kind)).or_default() += 1;
        }
    }
    let mb: f64 = rows.iter().map(|r| r.bytes as f64).sum::<f64>() / 1e6;
    println!(
        "## cairn's path (isolated: pdf-extract per page, lopdf per failed page, lopdf child after a timeout/crash)"
    );
    println!(
        "files: {n} ({mb:.0} MB); timeout {} s, memory limit {} MiB, {} jobs",
        o.timeout.as_secs(),
        DEFAULT_MAX_MEMORY_BYTES >> 20,
        o.jobs
    );
    println!("parsed with text: {} ({:.1}%)", ok.len(), pct(ok.len()));
    println!(
        "needed the fallback: {fallback} ({:.1}%), of which {whole_fallback} entirely by lopdf",
        pct(fallback)
    );
    println!("failed: {} ({:.1}%)", n - ok.len(), pct(n - ok.len()));
    for (k, v) in &reasons {
        println!("  {k}: {v}");
    }
    println!(
        "pages: {pages}; {:.1} pages/s per worker (sum of per-file times {cpu:.1} s), wall {wall:.1} s",
        pages as f64 / cpu.max(1e-9)
    );
    let failed_pages: u32 = ok
        .iter()
        .filter_map(|r| r.cairn.result.as_ref().ok())
        .map(|p| p.failed_pages)
        .sum();
    println!("pages no extractor could read (kept empty): {failed_pages}");
    println!("the measuring process ran to the end: {n} of {n} files reported, no crash");

    if o.compare {
        println!("\n## each extractor alone (isolated, same files)");
        for ex in [Extractor::PdfExtract, Extractor::Lopdf] {
            let runs: Vec<&Run> = rows
                .iter()
                .flat_map(|r| r.alone.iter().filter(|(e, _)| *e == ex).map(|(_, r)| r))
                .collect();
            let good = runs.iter().filter(|r| r.result.is_ok()).count();
            let mut why: BTreeMap<String, usize> = BTreeMap::new();
            for r in &runs {
                if let Err(f) = &r.result {
                    *why.entry(format!("{:?}", f.kind)).or_default() += 1;
                }
            }
            let secs: f64 = runs.iter().map(|r| r.secs).sum();
            let pages: usize = runs
                .iter()
                .filter_map(|r| r.result.as_ref().ok())
                .map(|p| p.pages.len())
                .sum();
            let bad_pages: u32 = runs
                .iter()
                .filter_map(|r| r.result.as_ref().ok())
                .map(|p| p.failed_pages)
                .sum();
            let chars: usize = runs.iter().map(|r| r.chars()).sum();
            let (g, t) = runs
                .iter()
                .map(|r| r.glued())
                .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
            println!(
                "{}: text from {good}/{} files ({:.1}%), failures {why:?}; {pages} pages ({bad_pages} unreadable), {:.1} pages/s; {:.1} M chars; {:.1}% of text in tokens > 25 chars (glued words)",
                ex.name(),
                runs.len(),
                100.0 * good as f64 / runs.len().max(1) as f64,
                pages as f64 / secs.max(1e-9),
                chars as f64 / 1e6,
                100.0 * g as f64 / t.max(1) as f64,
            );
        }
    }

    if let Some(path) = &o.out {
        let lines: Vec<String> = rows
            .iter()
            .map(|r| {
                let one = |run: &Run| match &run.result {
                    Ok(p) => serde_json::json!({
                        "ok": true, "pages": p.pages.len(), "extractor": p.extractor,
                        "fallback_pages": p.fallback_pages, "failed_pages": p.failed_pages,
                        "chars": run.chars(), "secs": run.secs,
                    }),
                    Err(f) => serde_json::json!({
                        "ok": false, "kind": f.kind, "message": f.message, "secs": run.secs,
                    }),
                };
                let alone: serde_json::Map<String, serde_json::Value> = r
                    .alone
                    .iter()
                    .map(|(e, run)| (e.name().to_string(), one(run)))
                    .collect();
                serde_json::json!({
                    "file": r.file, "bytes": r.bytes, "cairn": one(&r.cairn), "alone": alone,
                })
                .to_string()
            })
            .collect();
        if let Err(e) = std::fs::write(path, lines.join("\n") + "\n") {
            eprintln!("cannot write {}: {e}", path.display());
        }
    }
}
