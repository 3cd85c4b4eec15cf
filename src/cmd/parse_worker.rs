//! `cairn parse-worker` (hidden): the child process side of parser isolation. cairn runs
//! itself with this command to parse one risky file (a PDF) with a memory limit, reading
//! the file on standard input and writing a JSON reply on standard output; see
//! `cairn_ingest::isolate`. Not meant to be run by hand.

use cairn_ingest::isolate::{self, Extractor};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The format to parse (only `pdf`)
    #[arg(value_parser = ["pdf"])]
    format: String,
    /// Which extractor to run: auto (pdf-extract, lopdf per failed page), pdf-extract, lopdf
    #[arg(long, default_value = "auto", value_parser = ["auto", "pdf-extract", "lopdf"])]
    extractor: String,
    /// Address-space limit to set on this process before parsing
    #[arg(long)]
    max_memory_bytes: Option<u64>,
}

/// Runs the worker; no configuration, logging or async runtime is needed.
pub fn run(args: &Args) -> ExitCode {
    let extractor = Extractor::from_name(&args.extractor).unwrap_or(Extractor::Auto);
    let code = isolate::run_worker(
        extractor,
        args.max_memory_bytes,
        std::io::stdin().lock(),
        std::io::stdout().lock(),
    );
    ExitCode::from(code)
}
