//! `cairn graph`: the concept graph of the documents the caller may read: its size, its
//! concepts, and one concept's neighbourhood with the passages behind it.

use crate::app::App;
use crate::output::{Printer, Render, snippet};
use cairn_core::{ConceptDetail, ConceptInfo, ConceptList, Config};
use cairn_service::wire::ConceptQuery;
use serde::Serialize;
use std::io::{self, Write};
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// The size of the graph: chunks, concepts, edges, sentences
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// Concepts whose name contains FILTER (all without one), most mentioned first
    Concepts {
        filter: Option<String>,
        /// Only concepts this chunk mentions (a hit's chunk_id)
        #[arg(long, value_name = "CHUNK_ID")]
        chunk: Option<i64>,
        /// The most concepts listed
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// A concept: the passages that mention it, its strongest neighbours and the passages
    /// that link each neighbour to it
    Show {
        concept: String,
        /// The most passages and neighbours shown
        #[arg(short = 'n', long, default_value_t = 10)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
}

fn concept_line(c: &ConceptInfo) -> String {
    let aliases = if c.aliases.is_empty() {
        String::new()
    } else {
        format!(" (also {})", c.aliases.join(", "))
    };
    format!(
        "{}{}  [{}]  {} chunks, {} mentions",
        c.key,
        aliases,
        c.kind.as_str(),
        c.chunks,
        c.mentions
    )
}

#[derive(Serialize)]
#[serde(transparent)]
struct Stats(cairn_core::GraphStats);

impl Render for Stats {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        let s = &self.0;
        writeln!(
            out,
            "{} concepts, {} edges, over {} chunks and {} sentences you may read",
            s.concepts, s.edges, s.chunks, s.sentences
        )
    }
}

#[derive(Serialize)]
#[serde(transparent)]
struct List(ConceptList);

impl Render for List {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        for c in &self.0.concepts {
            writeln!(out, "{}", concept_line(c))?;
        }
        writeln!(
            out,
            "{} of {} matching concepts ({} in the graph)",
            self.0.concepts.len(),
            self.0.total,
            self.0.stats.concepts
        )
    }
}

#[derive(Serialize)]
#[serde(transparent)]
struct Show(ConceptDetail);

impl Render for Show {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        let n = &self.0.neighbourhood;
        let passage = |id: cairn_core::ChunkId| {
            self.0
                .passages
                .iter()
                .find(|p| p.chunk_id == id)
                .map(|p| format!("{} p.{}: {}", p.title, p.page, snippet(&p.text, 70)))
                .unwrap_or_else(|| format!("chunk {}", id.0))
        };
        writeln!(out, "{}", concept_line(&n.concept))?;
        writeln!(out, "mentioned in:")?;
        for id in &n.chunks {
            writeln!(out, "  {}", passage(*id))?;
        }
        if n.neighbours.is_empty() {
            writeln!(out, "no neighbours")?;
        }
        for nb in &n.neighbours {
            writeln!(
                out,
                "— {}  ({} sentences, PMI {:.2})",
                concept_line(&nb.concept),
                nb.sentences,
                nb.pmi
            )?;
            for id in &nb.evidence {
                writeln!(out, "    {}", passage(*id))?;
            }
        }
        Ok(())
    }
}

pub async fn run(config: Config, groups: &[String], command: Command) -> anyhow::Result<ExitCode> {
    let app = App::open(config).await?;
    let principal = app.principal(groups);
    let service = app.service()?;
    match command {
        Command::Stats { json } => {
            let req = ConceptQuery {
                limit: Some(1),
                ..ConceptQuery::default()
            };
            let list = service.graph_concepts(&principal, &req).await?;
            Printer::new(json).print(&Stats(list.stats))?;
        }
        Command::Concepts {
            filter,
            chunk,
            limit,
            json,
        } => {
            let req = ConceptQuery {
                q: filter,
                chunk,
                limit: Some(limit),
            };
            let list = service.graph_concepts(&principal, &req).await?;
            Printer::new(json).print(&List(list))?;
        }
        Command::Show {
            concept,
            limit,
            json,
        } => {
            let req = ConceptQuery {
                limit: Some(limit),
                ..ConceptQuery::default()
            };
            let detail = service.graph_concept(&principal, &concept, &req).await?;
            Printer::new(json).print(&Show(detail))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
