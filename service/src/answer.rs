//! The Answerer: question → passages → gate → answer. The one path from a question to an
//! answer for the CLI (`cairn ask`), `POST /v1/ask` and the chat completions.
//!
//! 1. The passages are searched in the caller's scope (the question is embedded once, by
//!    the search, and that vector is reused below);
//! 2. their sentences are scored against the question (`cairn_generate::score`);
//! 3. the [`crate::gate`] decides whether to answer;
//! 4. the answer is written by the language model when one is configured
//!    (`cairn_generate::generated`, its citations verified), or quoted from the passages.

use crate::gate::{self, Verdict};
use crate::{Service, file_name, present_hits, shows_paths};
use cairn_core::{Answer, AnswerSignals, AskRequest, Error, Hit, Principal, Result, SearchRequest};

/// What [`Service::ask`] reports as it goes.
#[derive(Debug)]
pub enum AskEvent<'a> {
    /// The passages the answer will be drawn from, best first (as the caller is shown
    /// them).
    Retrieved(&'a [Hit]),
    /// A piece of the answer text, as the language model writes it.
    Text(&'a str),
}

impl Service {
    /// Answers a question from what `p` may read, telling `on_event` about each step.
    pub async fn ask(
        &self,
        p: &Principal,
        req: &AskRequest,
        on_event: &mut (dyn FnMut(AskEvent<'_>) + Send),
    ) -> Result<Answer> {
        let result = self.answer(p, req, on_event).await;
        let mut line = self.0.auditor.entry(p, "ask");
        line.query = self.0.auditor.query_text(&req.question);
        self.read_line(line, result.as_ref().map(|a| a.citations.len()));
        let mut answer = result?;
        metrics::histogram!("cairn_ask_seconds", "mode" => match answer.mode {
            cairn_core::AnswerMode::Extractive => "extractive",
            cairn_core::AnswerMode::Generated => "generated",
        })
        .record(answer.took_ms / 1000.0);
        if answer.abstained {
            metrics::counter!("cairn_ask_abstained_total").increment(1);
        }
        present_hits(p, &mut answer.passages);
        if !shows_paths(p) {
            for c in &mut answer.citations {
                c.source = file_name(&c.source);
            }
        }
        Ok(answer)
    }

    async fn answer(
        &self,
        p: &Principal,
        req: &AskRequest,
        on_event: &mut (dyn FnMut(AskEvent<'_>) + Send),
    ) -> Result<Answer> {
        let started = std::time::Instant::now();
        if req.question.trim().is_empty() {
            return Err(Error::user("the question is empty"));
        }
        let retriever = &self.0.retriever;
        let cfg = &self.0.answer;
        let search = SearchRequest {
            top_k: req.top_k,
            rerank: req.rerank,
            filter: req.filter.clone(),
            mode: req.mode,
            ..SearchRequest::new(req.question.clone())
        };
        let (found, vector) = retriever.search_embedded(&search, p).await?;
        let hits = found.results;
        {
            let mut shown = hits.clone();
            present_hits(p, &mut shown);
            on_event(AskEvent::Retrieved(&shown));
        }
        let question = search.query.trim();
        let closest = crate::confidence::closest_dense(&hits);
        let embedder = retriever.embedder();
        let unknown = if cfg.unknown_names {
            gate::unknown_name(retriever, question, &hits, &req.filter, p).await?
        } else {
            None
        };
        // The judge reads the passages only when the name rule has not already declined.
        let mut judge = None;
        let mut answer = if let Some(name) = unknown {
            let note = format!("no document mentions {name}, which the question names");
            cairn_generate::abstention(hits, cfg, 0.0, Some(note))
        } else {
            if let Some(model) = self.0.judge.as_ref().filter(|_| !hits.is_empty()) {
                let read = &hits[..hits.len().min(cfg.max_passages.max(1))];
                judge = model
                    .score_hits(question, vector.as_deref(), read)
                    .await?
                    .into_iter()
                    .reduce(f32::max);
            }
            let vector = match vector {
                Some(v) => v,
                // BM25 alone embedded nothing; the sentence scores need the question.
                None => embedder
                    .embed(vec![question.to_string()])
                    .await?
                    .vectors
                    .into_iter()
                    .next()
                    .unwrap_or_default(),
            };
            let scored = cairn_generate::score(question, &vector, &hits, &*embedder, cfg).await?;
            let best = scored.best.unwrap_or(0.0);
            let signals = AnswerSignals {
                best_sentence: best,
                closest_dense: closest,
                judge,
            };
            let confidence = crate::confidence::confidence(cfg, question, &signals);
            match gate::judge(question, &hits, scored.best, confidence, cfg) {
                Verdict::Abstain { note } => cairn_generate::abstention(hits, cfg, best, note),
                Verdict::Answer => {
                    let quoted = cairn_generate::quote(scored, hits.clone(), cfg);
                    match &self.0.generator {
                        Some(generator) => {
                            cairn_generate::generated(
                                question,
                                hits,
                                quoted,
                                &*embedder,
                                generator.as_ref(),
                                cfg,
                                &self.0.generate,
                                &mut |piece| on_event(AskEvent::Text(piece)),
                            )
                            .await?
                        }
                        None => quoted,
                    }
                }
            }
        };
        crate::confidence::assess(&mut answer, question, closest, judge, cfg);
        answer.took_ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(answer)
    }
}
