//! `cairn`: the command line. It parses flags, loads the configuration and wires library
//! crates together; every command's logic lives in a crate the REST API calls too.

mod app;
mod cmd;
mod config;
mod handoff;
mod output;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// cairn: ingest documents, search them, and answer with citations.
#[derive(Parser, Debug)]
#[command(name = "cairn", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Folder holding the catalog and the indexes [default: ./data]
    #[arg(long, global = true, env = "CAIRN_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Folder holding the models [default: ./models]
    #[arg(long, global = true, env = "CAIRN_MODELS_DIR", value_name = "DIR")]
    models_dir: Option<PathBuf>,
    /// Configuration file [default: ./cairn.toml if present]
    #[arg(long, global = true, env = "CAIRN_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Tenant to act as [default: from config, "default"]
    #[arg(long, global = true, value_name = "NAME")]
    tenant: Option<String>,
    /// Groups to act as (comma-separated); ingested documents get them as their ACL
    #[arg(long, global = true, value_delimiter = ',', value_name = "GROUPS")]
    groups: Vec<String>,
    /// More log output (-v info, -vv debug); or set CAIRN_LOG / RUST_LOG
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Log lines as text, or as one JSON object per line (for log collectors)
    #[arg(
        long,
        global = true,
        env = "CAIRN_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP server: REST API under /v1
    Serve(cmd::serve::Args),
    /// Add or update documents (files or folders: Markdown, text, HTML, DOCX, PDF)
    Ingest(cmd::ingest::Args),
    /// Re-index folders: add new files, update changed ones, delete vanished ones (for cron)
    Reindex(cmd::reindex::Args),
    /// Search the indexed documents
    Search(cmd::search::Args),
    /// Answer a question from the documents, citing the passages
    Ask(cmd::ask::Args),
    /// Score retrieval on a judged question set (nDCG, recall, MRR, latency per mode)
    Eval(cmd::eval::Args),
    /// Benchmarks side by side with peers: generate (llama.cpp), embed (sentence-transformers),
    /// ann (hnswlib, faiss), bm25 (bm25s)
    Bench(cmd::bench::Args),
    /// List, show, delete or verify documents
    Docs {
        #[command(subcommand)]
        command: cmd::docs::Command,
    },
    /// The concept graph of the documents you may read: stats, concepts, show CONCEPT
    Graph {
        #[command(subcommand)]
        command: cmd::graph::Command,
    },
    /// Make, list and revoke API keys (works while the server runs)
    Keys {
        #[command(subcommand)]
        command: cmd::keys::Command,
    },
    /// Read the audit log: who did what, when, with how many results
    Audit(cmd::keys::AuditArgs),
    /// Parse one file in an isolated child process (internal)
    #[command(hide = true)]
    ParseWorker(cmd::parse_worker::Args),
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(verbose: u8, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info,tantivy=warn,hnsw_rs=warn",
        _ => "debug,tantivy=info,hyper=info,hnsw_rs=info",
    };
    let filter = std::env::var("CAIRN_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // One JSON object per line, with the fields of the spans it is in (the request id).
        LogFormat::Json => fmt
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        // colours only for a terminal: logs redirected to a file or a pipe stay plain text
        LogFormat::Text => fmt
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}

/// Exit codes: 0 ok, 1 failed (some files or an internal error), 2 bad input or usage,
/// 3 conflict (data dir in use, index built with another model), 4 not found, 5 not
/// allowed (a key missing or refused, or a role without the right).
fn exit_code(err: &anyhow::Error) -> u8 {
    use cairn_core::ErrorKind;
    match err
        .chain()
        .find_map(|e| e.downcast_ref::<cairn_core::Error>())
        .map(|e| e.kind)
    {
        Some(ErrorKind::User | ErrorKind::TooLarge) => 2,
        Some(ErrorKind::Conflict) => 3,
        Some(ErrorKind::NotFound) => 4,
        Some(ErrorKind::Unauthenticated | ErrorKind::Forbidden) => 5,
        _ => 1,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::ParseWorker(args) = &cli.command {
        return cmd::parse_worker::run(args);
    }
    // Risky parsers (PDF) run in a child process: this binary's hidden parse-worker.
    match cairn_ingest::isolate::Isolation::current_exe() {
        Ok(iso) => {
            let _ = cairn_ingest::isolate::set_isolation(iso);
        }
        Err(e) => eprintln!("warning: cannot isolate parsers (parsing in-process): {e}"),
    }
    init_logging(
        cli.verbose
            .max(if matches!(cli.command, Command::Serve(_)) {
                1
            } else {
                0
            }),
        cli.log_format,
    );
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut config = config::load(cli.config.as_deref())?;
    if let Some(d) = cli.data_dir {
        config.data_dir = d;
    }
    if let Some(m) = cli.models_dir {
        config.models_dir = m;
    }
    if let Some(t) = cli.tenant {
        config.tenant = t;
    }
    let groups = cli.groups;
    match cli.command {
        Command::Serve(args) => cmd::serve::run(config, args).await,
        Command::Ingest(args) => cmd::ingest::run(config, &groups, args).await,
        Command::Reindex(args) => cmd::reindex::run(config, &groups, args).await,
        Command::Search(args) => cmd::search::run(config, &groups, args).await,
        Command::Ask(args) => cmd::ask::run(config, &groups, args).await,
        Command::Eval(args) => cmd::eval::run(config, args).await,
        Command::Docs { command } => cmd::docs::run(config, &groups, command).await,
        Command::Graph { command } => cmd::graph::run(config, &groups, command).await,
        Command::Keys { command } => cmd::keys::run(config, &groups, command).await,
        Command::Audit(args) => cmd::keys::audit(config, args).await,
        Command::Bench(args) => cmd::bench::run(config, args).await,
        Command::ParseWorker(args) => Ok(cmd::parse_worker::run(&args)),
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }
}
