//! `cairn ingest`: add or update files and folders. Each file is acknowledged (a line on
//! stdout) only once it is in the catalog and every index; a file that fails is reported
//! and skipped, and the exit code says something failed.

use crate::app::App;
use crate::output::{Printer, Render};
use cairn_core::Config;
use cairn_ingest::walk::Walker;
use cairn_ingest::{IngestOutcome, IngestStatus};
use serde::Serialize;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

// Folders are walked by `cairn_ingest::walk::Walker`; the extensions it takes are the one
// list `cairn_ingest::walk::DEFAULT_EXTENSIONS` (named files are always tried).

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Files or folders (folders are walked for .md, .markdown, .txt, .text, .html, .htm, .docx, .pdf)
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Print a JSON summary instead of a line per file
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct FailedFile {
    path: String,
    error: String,
}

#[derive(Serialize, Default)]
struct Summary {
    added: usize,
    updated: usize,
    unchanged: usize,
    failed: Vec<FailedFile>,
    chunks: usize,
    truncated_chunks: usize,
    duration_ms: f64,
    documents: Vec<IngestOutcome>,
}

impl Render for Summary {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "{} added, {} updated, {} unchanged, {} failed; {} chunks in {:.1} s",
            self.added,
            self.updated,
            self.unchanged,
            self.failed.len(),
            self.chunks,
            self.duration_ms / 1000.0
        )?;
        if self.truncated_chunks > 0 {
            writeln!(
                out,
                "note: {} chunks were longer than the embedder's limit and were truncated",
                self.truncated_chunks
            )?;
        }
        Ok(())
    }
}

/// Expands folders into the files under them, sorted; hidden entries and symbolic links
/// inside folders are skipped.
fn collect(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let walker = Walker::default();
    let mut files = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
        if meta.is_dir() {
            let walked = walker.walk(p)?;
            if let Some(u) = walked.unreadable.first() {
                anyhow::bail!("reading folder {}: {}", u.path.display(), u.error);
            }
            files.extend(walked.files);
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

pub async fn run(config: Config, groups: &[String], args: Args) -> anyhow::Result<ExitCode> {
    let files = collect(&args.paths)?;
    let app = App::open_without_graph(config).await?;
    let principal = app.principal(groups);
    let service = app.service()?;
    let started = Instant::now();
    let bar = crate::output::progress_bar(files.len() as u64, "", false);
    let mut summary = Summary::default();
    for path in &files {
        bar.set_message(path.display().to_string());
        let absolute = std::path::absolute(path)?;
        match service.ingest_path(&principal, &absolute, groups).await {
            Ok(outcome) => {
                match outcome.status {
                    IngestStatus::Added => summary.added += 1,
                    IngestStatus::Updated => summary.updated += 1,
                    IngestStatus::Unchanged => summary.unchanged += 1,
                }
                summary.chunks += outcome.chunks;
                summary.truncated_chunks += outcome.truncated;
                if !args.json {
                    // The acknowledgement: this document is durable and searchable.
                    bar.suspend(|| {
                        println!(
                            "{:<9} {}  {} chunks  {}",
                            outcome.status.as_str(),
                            outcome.doc_id,
                            outcome.chunks,
                            outcome.origin
                        );
                        let _ = io::stdout().flush();
                    });
                }
                summary.documents.push(outcome);
            }
            Err(e) => {
                bar.suspend(|| eprintln!("failed    {}: {e}", path.display()));
                summary.failed.push(FailedFile {
                    path: path.display().to_string(),
                    error: e.to_string(),
                });
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    app.store.flush().await?;
    summary.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    Printer::new(args.json).print(&summary)?;
    Ok(if summary.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
