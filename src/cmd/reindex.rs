//! `cairn reindex`: bring the documents under some folders in line with the files there
//! (add new files, re-index changed ones, delete vanished ones, skip the rest), for cron.
//! The logic is `cairn_ingest::reindex`; this command wires it, shows progress on a
//! terminal, and prints a line per change and a summary (or one JSON summary).
//!
//! When `cairn serve` holds the data dir, the run is handed to it (`POST
//! /v1/admin/reindex`, see [`handoff`]) and the server's report is printed the same way.
//!
//! Exit codes: 0 done, 1 some file failed (the rest went in), 2 bad arguments,
//! 3 another cairn process (not a server) holds the data dir, or another re-index is
//! running, 4 a source does not exist.

use crate::app::App;
use crate::handoff::{self, ServeInfo};
use crate::output::{Printer, Render};
use cairn_core::Config;
use cairn_ingest::reindex::{Action, Change, Progress, ReindexReport};
use cairn_ingest::walk::Walker;
use cairn_service::wire::ReindexRequest;
use serde::Serialize;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folders to walk (or single files); documents under a folder whose files are gone
    /// are deleted
    #[arg(required = true, value_name = "SOURCE")]
    sources: Vec<PathBuf>,
    /// Only files whose path relative to SOURCE matches this glob (repeatable)
    /// [default: every supported format: .md .markdown .txt .text .html .htm .docx .pdf]
    #[arg(long, value_name = "GLOB")]
    include: Vec<String>,
    /// Skip files and folders whose path relative to SOURCE matches this glob (repeatable)
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Print what would change and an estimate of the time it takes; write nothing
    #[arg(long)]
    dry_run: bool,
    /// Print a JSON summary instead of a line per change
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
#[serde(transparent)]
struct Summary(ReindexReport);

impl Render for Summary {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        let r = &self.0;
        if r.dry_run {
            writeln!(
                out,
                "dry run: would add {}, update {}, delete {}; {} unchanged, {} failed",
                r.added,
                r.updated,
                r.deleted,
                r.unchanged,
                r.failed.len()
            )?;
            if let Some(e) = r.estimate.as_ref().filter(|e| e.tokens == 0) {
                writeln!(out, "estimate: nothing to embed ({} bytes)", e.bytes)?;
            } else if let Some(e) = &r.estimate {
                writeln!(
                    out,
                    "estimate: about {} chunks ({} word pieces, {} bytes) to embed, about {:.1} s \
                     at {:.1} ms per 1000 word pieces",
                    e.chunks, e.tokens, e.bytes, e.seconds, e.embed_ms_per_1k_tokens
                )?;
            }
            return Ok(());
        }
        writeln!(
            out,
            "{} added, {} updated, {} deleted, {} unchanged, {} failed; {} chunks, {} pages in {:.1} s",
            r.added,
            r.updated,
            r.deleted,
            r.unchanged,
            r.failed.len(),
            r.chunks,
            r.pages,
            r.duration_ms / 1000.0
        )?;
        if r.truncated_chunks > 0 {
            writeln!(
                out,
                "note: {} chunks were longer than the embedder's limit and were truncated",
                r.truncated_chunks
            )?;
        }
        Ok(())
    }
}

pub async fn run(config: Config, groups: &[String], args: Args) -> anyhow::Result<ExitCode> {
    // Bad globs fail before anything is loaded (the service checks them again).
    Walker::new(&args.include, &args.exclude)?;
    // Before loading the model: when another process holds the data dir, hand the run to
    // it if it is a server, else fail at once (App::open takes the lock for the run).
    if let Some(server) = handoff::held_by_server(&config.data_dir)? {
        return in_server(&server, &config.tenant, groups, args).await;
    }
    let app = App::open_without_graph(config).await?;
    let mut sources = Vec::with_capacity(args.sources.len());
    for s in &args.sources {
        sources.push(std::path::absolute(s)?);
    }
    let req = ReindexRequest {
        sources,
        include: args.include,
        exclude: args.exclude,
        dry_run: args.dry_run,
        groups: groups.to_vec(),
        tenant: None,
    };
    let bar = crate::output::progress_bar(0, "", false);
    let lines = !args.json;
    let dry = args.dry_run;
    let mut on_progress = |p: Progress<'_>| match p {
        Progress::Changed(c) if lines => {
            bar.suspend(|| print_change(c, dry));
            bar.inc(1);
        }
        Progress::Changed(_) => bar.inc(1),
        Progress::Planned { files, deletes } => bar.set_length((files + deletes) as u64),
        Progress::Working(path) => bar.set_message(path.display().to_string()),
        Progress::Unchanged(_) => bar.inc(1),
        Progress::Failed(f) => {
            bar.suspend(|| eprintln!("failed       {}: {}", f.path, f.error));
            bar.inc(1);
        }
    };
    let service = app.service()?;
    let result = service
        .reindex(&app.principal(groups), req, &mut on_progress)
        .await;
    bar.finish_and_clear();
    let report = result?;
    app.store.flush().await?;
    finish(report, args.json)
}

/// One line for a change: verb, document id, chunks, source.
fn print_change(c: &Change, dry: bool) {
    let verb = match (dry, c.action) {
        (false, a) => a.as_str(),
        (true, Action::Added) => "would add",
        (true, Action::Updated) => "would update",
        (true, Action::Deleted) => "would delete",
    };
    let id = c
        .doc_id
        .as_ref()
        .map_or_else(|| "-".to_string(), |d| d.to_string());
    let about = if dry { "~" } else { "" };
    println!("{verb:<12} {id}  {about}{} chunks  {}", c.chunks, c.source);
    let _ = io::stdout().flush();
}

/// Prints the summary; exit code 1 when a file failed.
fn finish(report: ReindexReport, json: bool) -> anyhow::Result<ExitCode> {
    let failed = !report.failed.is_empty();
    Printer::new(json).print(&Summary(report))?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs the re-index inside the server that holds the data dir and prints its report.
async fn in_server(
    server: &ServeInfo,
    tenant: &str,
    groups: &[String],
    args: Args,
) -> anyhow::Result<ExitCode> {
    // The server reads the paths: make them absolute (a missing one is exit 4 here).
    let mut sources = Vec::with_capacity(args.sources.len());
    for s in &args.sources {
        let abs = std::fs::canonicalize(s).map_err(|e| {
            let msg = format!("{}: {e}", s.display());
            if e.kind() == io::ErrorKind::NotFound {
                cairn_core::Error::not_found(msg)
            } else {
                cairn_core::Error::user(msg)
            }
        })?;
        sources.push(abs);
    }
    eprintln!(
        "cairn serve (pid {}) holds the data dir; the re-index runs inside it ({})",
        server.pid, server.url
    );
    let body = ReindexRequest {
        sources,
        include: args.include,
        exclude: args.exclude,
        dry_run: args.dry_run,
        groups: groups.to_vec(),
        tenant: Some(tenant.to_string()),
    };
    let server = server.clone();
    let report: ReindexReport =
        tokio::task::spawn_blocking(move || handoff::post(&server, "/v1/admin/reindex", &body))
            .await??;
    if !args.json {
        for c in &report.changes {
            print_change(c, report.dry_run);
        }
        for f in &report.failed {
            eprintln!("failed       {}: {}", f.path, f.error);
        }
    }
    finish(report, args.json)
}
