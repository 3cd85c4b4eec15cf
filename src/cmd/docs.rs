//! `cairn docs`: list, show and delete documents.

use crate::app::App;
use crate::output::{Printer, Render, snippet};
use cairn_core::{Chunk, Config, DocId, DocQuery, Document, DocumentStore};
use cairn_index::ConsistencyReport;
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
struct DocList {
    documents: Vec<Document>,
}

impl Render for DocList {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        for d in &self.documents {
            writeln!(
                out,
                "{}  v{}  {:>4} chunks  {}  ({})",
                d.id, d.version, d.chunk_count, d.title, d.source
            )?;
        }
        writeln!(out, "{} documents", self.documents.len())
    }
}

#[derive(Serialize)]
struct DocShow {
    document: Document,
    chunks: Vec<Chunk>,
}

impl Render for DocShow {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        let d = &self.document;
        writeln!(
            out,
            "{}\n  id       {}\n  source   {}\n  version  {}\n  pages    {}\n  chunks   {}\n  chunker  {}\n  sha256   {}\n  acl      tenant={} groups=[{}]",
            d.title,
            d.id,
            d.source,
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
        for c in &self.chunks {
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
struct Deleted {
    deleted: DocId,
    seq: cairn_core::Seq,
}

impl Render for Deleted {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "deleted {}", self.deleted)
    }
}

pub async fn run(config: Config, groups: &[String], command: Command) -> anyhow::Result<ExitCode> {
    let app = App::open(config).await?;
    let principal = app.principal(groups);
    let catalog = app.store.catalog();
    match command {
        Command::List {
            source_prefix,
            json,
        } => {
            let q = DocQuery {
                principal: Some(principal.clone()),
                source_prefix,
                limit: None,
            };
            let documents = catalog.list_documents(&q).await?;
            Printer::new(json).print(&DocList { documents })?;
        }
        Command::Show { id, json } => {
            let document =
                cairn_retrieve::visible_document(catalog.as_ref(), &id, &principal).await?;
            let chunks = catalog.chunks_of(&document.id).await?;
            Printer::new(json).print(&DocShow { document, chunks })?;
        }
        Command::Delete { id, json } => {
            let doc = cairn_retrieve::visible_document(catalog.as_ref(), &id, &principal).await?;
            let seq = app.store.delete_document(&doc.id).await?;
            app.store.flush().await?;
            Printer::new(json).print(&Deleted {
                deleted: doc.id,
                seq,
            })?;
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
