//! `cairn graph`: the concept graph of the documents the caller may read: its size, its
//! concepts, one concept's neighbourhood with the passages behind it, and its communities
//! with their reports.

use crate::app::App;
use crate::output::{Printer, Render, snippet};
use cairn_core::{
    ChunkId, CommunityInfo, CommunityList, CommunityReport, ConceptDetail, ConceptInfo,
    ConceptList, Config, Passage,
};
use cairn_service::wire::{CommunityQuery, ConceptQuery};
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
    /// Communities of concepts (hierarchical Leiden), the most chunks first, each with its
    /// main concepts and strongest relations; only those holding a concept whose name
    /// contains FILTER when one is given
    Communities {
        filter: Option<String>,
        /// The level of the hierarchy: 0 is the top, and a community over the size cap
        /// splits into communities one level down
        #[arg(long, default_value_t = 0)]
        level: usize,
        /// The most communities listed
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// A community's report: its main concepts, its strongest relations with the passages
    /// behind them, and the passages that represent it
    Community {
        /// Its id, as `communities` lists it ("3", "3.1")
        id: String,
        /// The most concepts, relations and passages shown
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
        let passage = |id| passage_line(&self.0.passages, id);
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

/// A chunk as one line: its document, page and the start of its text (its id when it is
/// not among `passages`).
fn passage_line(passages: &[Passage], id: ChunkId) -> String {
    passages
        .iter()
        .find(|p| p.chunk_id == id)
        .map(|p| format!("{} p.{}: {}", p.title, p.page, snippet(&p.text, 70)))
        .unwrap_or_else(|| format!("chunk {}", id.0))
}

fn community_line(c: &CommunityInfo) -> String {
    let children = if c.children.is_empty() {
        String::new()
    } else {
        format!(", splits into {}", c.children.len())
    };
    format!(
        "[{}] {}  ({} concepts, {} chunks{})",
        c.id, c.title, c.concepts, c.chunks, children
    )
}

#[derive(Serialize)]
#[serde(transparent)]
struct Communities(CommunityList);

impl Render for Communities {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        for c in &self.0.communities {
            writeln!(out, "{}", community_line(c))?;
            let concepts: Vec<&str> = c.top_concepts.iter().map(|x| x.key.as_str()).collect();
            writeln!(out, "    {}", concepts.join(", "))?;
        }
        writeln!(
            out,
            "{} of {} matching communities ({} levels; {} concepts in the graph)",
            self.0.communities.len(),
            self.0.total,
            self.0.levels,
            self.0.stats.concepts
        )
    }
}

#[derive(Serialize)]
#[serde(transparent)]
struct Report(CommunityReport);

impl Render for Report {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        let c = &self.0.community;
        let passage = |id| passage_line(&self.0.passages, id);
        writeln!(out, "{}", community_line(c))?;
        if let Some(parent) = &c.parent {
            writeln!(out, "inside {parent}")?;
        }
        if !c.children.is_empty() {
            writeln!(out, "splits into {}", c.children.join(", "))?;
        }
        writeln!(out, "concepts:")?;
        for x in &c.top_concepts {
            writeln!(out, "  {}", concept_line(x))?;
        }
        writeln!(out, "relations:")?;
        for r in &c.relations {
            writeln!(
                out,
                "  {} — {}  ({} sentences, PMI {:.2})",
                r.a, r.b, r.sentences, r.pmi
            )?;
            for id in &r.evidence {
                writeln!(out, "    {}", passage(*id))?;
            }
        }
        writeln!(out, "representative passages:")?;
        for id in &c.representative {
            writeln!(out, "  {}", passage(*id))?;
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
        Command::Communities {
            filter,
            level,
            limit,
            json,
        } => {
            let req = CommunityQuery {
                q: filter,
                level: Some(level),
                limit: Some(limit),
            };
            let list = service.graph_communities(&principal, &req).await?;
            Printer::new(json).print(&Communities(list))?;
        }
        Command::Community { id, limit, json } => {
            let req = CommunityQuery {
                limit: Some(limit),
                ..CommunityQuery::default()
            };
            let report = service.graph_community(&principal, &id, &req).await?;
            Printer::new(json).print(&Report(report))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
