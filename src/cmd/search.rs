//! `cairn search`: hybrid (or BM25-only, dense-only, graph, mix, global) search from the
//! terminal.

use crate::app::App;
use crate::output::{Printer, Render, snippet};
use cairn_core::{Config, DocId, SearchFilter, SearchMode, SearchRequest, SearchResponse};
use std::io::{self, Write};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The question or keywords
    query: String,
    /// Number of results
    #[arg(short = 'k', long, default_value_t = 10)]
    top_k: usize,
    #[command(flatten)]
    narrowing: Narrowing,
    /// Print JSON (the same shape as POST /v1/search)
    #[arg(long)]
    json: bool,
}

/// Which retrievers a search (or a question) runs, which documents it reads, and whether it
/// reranks: the options `cairn search` and `cairn ask` share.
#[derive(clap::Args, Debug)]
pub struct Narrowing {
    /// Retrievers to use: bm25, dense, hybrid (both), graph (a walk over the concept graph
    /// seeded by the question and the hybrid hits), mix (hybrid and graph fused), global
    /// (for corpus-wide questions: one passage for each community of concepts the hybrid
    /// hits rank first)
    #[arg(long, value_enum, default_value_t = Mode::Hybrid)]
    mode: Mode,
    /// Only these documents (repeatable)
    #[arg(long = "doc", value_name = "DOC_ID")]
    docs: Vec<String>,
    /// Only documents whose source starts with this
    #[arg(long, value_name = "PREFIX")]
    source_prefix: Option<String>,
    /// Rerank the candidates with the configured reranker ([rerank] model)
    #[arg(long)]
    rerank: bool,
}

impl Narrowing {
    pub fn mode(&self) -> SearchMode {
        self.mode.into()
    }

    pub fn filter(&self) -> SearchFilter {
        SearchFilter {
            doc_ids: (!self.docs.is_empty())
                .then(|| self.docs.iter().cloned().map(DocId).collect()),
            source_prefix: self.source_prefix.clone(),
        }
    }

    /// Whether to rerank (asked, or `[rerank] enabled`); loads the reranker when so.
    pub fn rerank(&self, app: &mut App) -> anyhow::Result<bool> {
        let rerank = self.rerank || app.config.rerank.enabled;
        if rerank {
            app.load_reranker(true)?;
        }
        Ok(rerank)
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Mode {
    Bm25,
    Dense,
    Hybrid,
    Graph,
    Mix,
    Global,
}

impl From<Mode> for SearchMode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Bm25 => SearchMode::Bm25,
            Mode::Dense => SearchMode::Dense,
            Mode::Hybrid => SearchMode::Hybrid,
            Mode::Graph => SearchMode::Graph,
            Mode::Mix => SearchMode::Mix,
            Mode::Global => SearchMode::Global,
        }
    }
}

impl Render for SearchResponse {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.results.is_empty() {
            writeln!(out, "no results")?;
        }
        for (i, h) in self.results.iter().enumerate() {
            let section = if h.heading_path.is_empty() {
                String::new()
            } else {
                format!(" § {}", h.heading_path.join(" › "))
            };
            let mut why: Vec<String> = h
                .retrievers
                .iter()
                .map(|(name, r)| format!("{name} #{}", r.rank))
                .collect();
            if let Some(r) = h.rerank {
                why.push(format!("rerank #{}", r.rank));
            }
            writeln!(
                out,
                "{:>2}. {} — p.{}{}  [score {:.4}; {}]",
                i + 1,
                h.title,
                h.page,
                section,
                h.score,
                why.join(", ")
            )?;
            writeln!(
                out,
                "    {}  bytes {}..{}  doc {}",
                h.source, h.span.start, h.span.end, h.doc_id
            )?;
            if let Some(c) = &h.community {
                writeln!(out, "    community {}: {}", c.id, c.title)?;
            }
            writeln!(out, "    {}", snippet(&h.text, 200))?;
        }
        writeln!(
            out,
            "{} results in {:.1} ms",
            self.results.len(),
            self.took_ms
        )
    }
}

pub async fn run(config: Config, groups: &[String], args: Args) -> anyhow::Result<ExitCode> {
    let mut app = App::open(config).await?;
    let rerank = args.narrowing.rerank(&mut app)?;
    let req = SearchRequest {
        top_k: Some(args.top_k),
        mode: args.narrowing.mode(),
        filter: args.narrowing.filter(),
        rerank: Some(rerank),
        ..SearchRequest::new(args.query)
    };
    let resp = app.service()?.search(&app.principal(groups), &req).await?;
    Printer::new(args.json).print(&resp)?;
    Ok(ExitCode::SUCCESS)
}
