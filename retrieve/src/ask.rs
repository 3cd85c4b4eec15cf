//! Answering a question: retrieve the passages (the caller's scope, optional rerank), then
//! answer from them with citations ([`cairn_generate`]): written by the configured language
//! model, or quoted when there is none. One function for the CLI and the REST API.

use crate::Retriever;
use cairn_core::config::AnswerConfig;
use cairn_core::{
    Answer, AskRequest, Hit, Principal, Result, SearchFilter, SearchMode, SearchRequest,
};

/// What [`Retriever::ask_with`] reports as it goes.
#[derive(Debug)]
pub enum AskEvent<'a> {
    /// The passages the answer will be drawn from, best first.
    Retrieved(&'a [Hit]),
    /// A piece of the answer text, as the language model writes it.
    Text(&'a str),
}
use cairn_generate::{abstention, extractive, generated, question_names};

impl Retriever {
    /// Retrieves passages for `req.question` as `principal` and answers from them. The
    /// question is validated like a search query.
    pub async fn ask(
        &self,
        req: &AskRequest,
        principal: &Principal,
        cfg: &AnswerConfig,
    ) -> Result<Answer> {
        self.ask_with(req, principal, cfg, &mut |_| {}).await
    }

    /// [`Retriever::ask`], telling `on_event` about each step as it completes (for
    /// streaming).
    pub async fn ask_with(
        &self,
        req: &AskRequest,
        principal: &Principal,
        cfg: &AnswerConfig,
        on_event: &mut (dyn FnMut(AskEvent<'_>) + Send),
    ) -> Result<Answer> {
        let started = std::time::Instant::now();
        if req.question.trim().is_empty() {
            return Err(cairn_core::Error::user("the question is empty"));
        }
        let search = SearchRequest {
            top_k: req.top_k,
            rerank: req.rerank,
            filter: req.filter.clone(),
            ..SearchRequest::new(req.question.clone())
        };
        let found = self.search(&search, principal).await?;
        on_event(AskEvent::Retrieved(&found.results));
        let question = search.query.trim();
        let unmentioned = if cfg.unknown_names {
            self.unmentioned_name(question, &found.results, &req.filter, principal)
                .await?
        } else {
            None
        };
        let mut answer = match (unmentioned, &self.generator) {
            (Some(name), _) => abstention(
                found.results,
                cfg,
                format!("no document mentions {name}, which the question names"),
            ),
            (None, Some(generator)) => {
                generated(
                    question,
                    found.results,
                    self.embedder.as_ref(),
                    generator.as_ref(),
                    cfg,
                    &self.generate,
                    &mut |piece| on_event(AskEvent::Text(piece)),
                )
                .await?
            }
            (None, None) => {
                extractive(question, found.results, self.embedder.as_ref(), cfg).await?
            }
        };
        answer.took_ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(answer)
    }

    /// The first name the question mentions ([`question_names`]: Latin-script words of a
    /// question in CJK script, capitalised words of any other) that no passage the caller
    /// may read mentions: not in the retrieved `hits`, and a BM25
    /// search for it alone, in the caller's scope and `filter`, finds nothing.
    async fn unmentioned_name(
        &self,
        question: &str,
        hits: &[Hit],
        filter: &SearchFilter,
        principal: &Principal,
    ) -> Result<Option<String>> {
        for name in question_names(question) {
            let lower = name.to_lowercase();
            if hits.iter().any(|h| h.text.to_lowercase().contains(&lower)) {
                continue;
            }
            let probe = SearchRequest {
                top_k: Some(1),
                mode: SearchMode::Bm25,
                filter: filter.clone(),
                rerank: Some(false),
                ..SearchRequest::new(name)
            };
            if self.search(&probe, principal).await?.results.is_empty() {
                return Ok(Some(name.to_string()));
            }
        }
        Ok(None)
    }
}
