//! `cairn docs`: list, show and delete documents.

use crate::app::App;
use crate::output::{Printer, Render, snippet};
use cairn_core::Config;
use cairn_index::ConsistencyReport;
use cairn_service::wire::{Deleted, DocumentDetail, DocumentList, ListRequest};
use serde::Serialize;
use std::io::{self, Write};
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// List documents
    List {
        /// Only documents whose source starts with this
        #[arg(long, value_name = "PREFIX")]
        source_prefix: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show a document and its chunks
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a document from the catalog and every index
    Delete {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Check that every index holds exactly the catalog's chunks (exit 1 if not)
    Verify {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Serialize)]
struct Verified {
    consistent: bool,
    #[serde(flatten)]
    report: ConsistencyReport,
}

impl Render for Verified {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        let r = &self.report;
        writeln!(
            out,
            "catalog: seq {}, {} chunks",
            r.catalog_seq, r.catalog_chunks
        )?;
        for i in &r.indexes {
            writeln!(
                out,
                "{:<8} seq {}, {} live chunks, {} missing, {} extra",
                i.name, i.applied_seq, i.live_chunks, i.missing_count, i.extra_count
            )?;
        }
        writeln!(
            out,
            "{}",
            if self.consistent {
                "consistent"
            } else {
                "INCONSISTENT"
            }
        )
    }
}

#[derive(Serialize)]
#[serde(transparent)]
struct DocList(DocumentList);

impl Render for DocList {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        for d in &self.0.documents {
            writeln!(
                out,
                "{}  v{}  {:>4} chunks  {}  ({} {})",
                d.id,
                d.version,
                d.chunk_count,
                d.title,
                d.origin.kind().as_str(),
                d.source()
            )?;
        }
        writeln!(out, "{} documents", self.0.documents.len())
    }
}

#[derive(Serialize)]
#[serde(transparent)]
struct DocShow(DocumentDetail);

impl Render for DocShow {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        let d = &self.0.document;
        writeln!(
            out,
            "{}\n  id       {}\n  {:<8} {}\n  version  {}\n  pages    {}\n  chunks   {}\n  chunker  {}\n  sha256   {}\n  acl      tenant={} groups=[{}]",
            d.title,
            d.id,
            d.origin.kind().as_str(),
            d.source(),
            d.version,
            d.pages,
            d.chunk_count,
            if d.chunker.is_empty() {
                "(not recorded: re-index to re-chunk)"
            } else {
                &d.chunker
            },
            d.content_hash,
            d.acl.tenant,
            d.acl.groups.join(",")
        )?;
        for c in &self.0.chunks {
            let path = c.heading_path.join(" › ");
            writeln!(
                out,
                "  #{:<3} p.{} bytes {}..{} {} tok [{}] {}",
                c.ordinal,
                c.page,
                c.span.start,
                c.span.end,
                c.token_count,
                path,
                snippet(&c.text, 80)
            )?;
        }
        Ok(())
    }
}

#[derive(Serialize)]
#[serde(transparent)]
struct Gone(Deleted);

impl Render for Gone {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "deleted {}", self.0.deleted)
    }
}

pub async fn run(config: Config, groups: &[String], command: Command) -> anyhow::Result<ExitCode> {
    // `verify` checks every derived index against the catalog, the graph included; the
    // other commands never read the graph.
    let app = if matches!(command, Command::Verify { .. }) {
        App::open(config).await?
    } else {
        App::open_without_graph(config).await?
    };
    let principal = app.principal(groups);
    let service = app.service()?;
    match command {
        Command::List {
            source_prefix,
            json,
        } => {
            let req = ListRequest {
                source_prefix,
                limit: None,
            };
            let list = service.list(&principal, &req).await?;
            Printer::new(json).print(&DocList(list))?;
        }
        Command::Show { id, json } => {
            let detail = service.show(&principal, &id).await?;
            Printer::new(json).print(&DocShow(detail))?;
        }
        Command::Delete { id, json } => {
            let deleted = service.delete(&principal, &id).await?;
            app.store.flush().await?;
            Printer::new(json).print(&Gone(deleted))?;
        }
        Command::Verify { json } => {
            let report = app.store.check_consistency().await?;
            let consistent = report.is_consistent();
            Printer::new(json).print(&Verified { consistent, report })?;
            if !consistent {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
