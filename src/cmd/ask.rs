//! `cairn ask`: a question answered from the documents, every sentence citing the passage
//! (document, page, byte span) it quotes, or an honest "the documents do not answer" with
//! the closest passages. With `[generate] backend = "local"` or `"openai"` a language model
//! writes the answer (streamed to a terminal as it comes) and each sentence is checked
//! against the passages it cites; without one, answers are extractive.

use super::search::Narrowing;
use crate::app::App;
use crate::output::{Printer, Render, snippet};
use cairn_core::{Answer, AskRequest, Config};
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The question
    question: String,
    /// Passages retrieved to answer from
    #[arg(short = 'k', long, default_value_t = 10)]
    top_k: usize,
    #[command(flatten)]
    narrowing: Narrowing,
    /// Print JSON (the same shape as POST /v1/ask)
    #[arg(long)]
    json: bool,
}

impl Render for Answer {
    fn human(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "{}", self.answer)?;
        for s in self.sentences.iter().filter(|s| !s.supported) {
            writeln!(
                out,
                "  ! not supported by its citations (support {:.2}): {}",
                s.support, s.text
            )?;
        }
        if let Some(note) = &self.note {
            writeln!(out, "({note})")?;
        }
        if self.abstained {
            for (i, h) in self.passages.iter().enumerate() {
                writeln!(out)?;
                writeln!(
                    out,
                    "  {}. {} — p.{}  ({})",
                    i + 1,
                    h.title,
                    h.page,
                    h.source
                )?;
                writeln!(out, "     {}", snippet(&h.text, 200))?;
            }
        } else {
            writeln!(out)?;
            for c in &self.citations {
                writeln!(
                    out,
                    "[{}] {} — p.{}  {}  bytes {}..{}",
                    c.n, c.title, c.page, c.source, c.span.start, c.span.end
                )?;
            }
        }
        writeln!(
            out,
            "(confidence {:.2}; {:.0} ms)",
            self.confidence, self.took_ms
        )
    }
}

pub async fn run(config: Config, groups: &[String], args: Args) -> anyhow::Result<ExitCode> {
    let mut app = App::open(config).await?;
    let req = AskRequest {
        question: args.question,
        top_k: Some(args.top_k),
        rerank: Some(args.narrowing.rerank(&mut app)?),
        filter: args.narrowing.filter(),
        mode: args.narrowing.mode(),
        stream: false,
    };
    app.load_generator()?;
    app.load_judge()?;
    let principal = app.principal(groups);
    // A written answer streams to the terminal as it is generated; the checked answer
    // (sentences flagged, citations listed) follows.
    let stream = !args.json && std::io::stdout().is_terminal();
    let mut streamed = false;
    let service = app.service()?;
    let answer = service
        .ask(&principal, &req, &mut |e| {
            if let (true, cairn_service::AskEvent::Text(piece)) = (stream, e) {
                streamed = true;
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(piece.as_bytes());
                let _ = out.flush();
            }
        })
        .await?;
    if streamed {
        println!("\n");
    }
    Printer::new(args.json).print(&answer)?;
    Ok(ExitCode::SUCCESS)
}
