//! Answers written by a language model from the numbered passages, then checked.
//!
//! 1. Whether to answer at all is decided before (`cairn-service`'s gate, on the extractive
//!    scores of the passages' sentences): the model is asked only about passages that
//!    answer, and the extractive quotes of the same passages come along as the fallback.
//! 2. The prompt numbers the passages `[1]`..`[n]`, best first, packed into the model's
//!    context: what the answer may take (`max_tokens`), the instruction and the question are
//!    reserved first, then passages go in whole while they fit, and the last one is cut.
//! 3. The model's text streams to the caller as it comes.
//! 4. Its `[n]` markers are read ([`crate::verify::parse`]): markers naming no passage are
//!    removed and counted. Each sentence is scored against the passages it cites
//!    ([`crate::verify::verify`]); below `min_support` it is flagged unsupported (or dropped
//!    with `drop_unsupported`). A citation quotes the sentence of its passage that best
//!    matches the answer sentences citing it, with that sentence's exact span.
//! 5. When the model says the passages do not answer, the answer abstains. When fewer than
//!    `min_supported_share` of its sentences are supported, the generated text is replaced by
//!    the extractive answer's quotes, and the answer's `note` says why.

use crate::extractive::ABSTAIN_TEXT;
use crate::terms::{overlap, terms};
use crate::verify::{cut_at, parse, verify};
use cairn_core::config::{AnswerConfig, GenerateConfig};
use cairn_core::sentences::{sentences, without_list_number};
use cairn_core::{
    Answer, AnswerMode, AnswerSentence, ChatRole, ChatTurn, Citation, Embedder, GenerateRequest,
    Generator, Hit, Result, Span,
};

/// The instruction given to the model.
pub const SYSTEM_PROMPT: &str = "You answer questions using only the numbered passages you are given. \
Write a short answer of one to three sentences. End every sentence with the number of the \
passage that supports it in square brackets, like [1] or [2]. Do not use facts that are not in \
the passages.";

/// Added to [`SYSTEM_PROMPT`] with `[generate] model_may_decline`.
pub const DECLINE_PROMPT: &str = " If the passages do not answer the question, reply only: The documents do not answer this question.";

/// The instruction for `cfg`: [`SYSTEM_PROMPT`], and [`DECLINE_PROMPT`] when the model may
/// decline.
pub fn system_prompt(cfg: &GenerateConfig) -> String {
    let mut prompt = SYSTEM_PROMPT.to_string();
    if cfg.model_may_decline {
        prompt.push_str(DECLINE_PROMPT);
    }
    prompt
}

/// Tokens kept free for the chat template's own markers.
const TEMPLATE_TOKENS: usize = 48;

/// Passages shorter than this (in tokens) after cutting are left out rather than cut.
const MIN_PASSAGE_TOKENS: usize = 32;

/// The user turn: numbered passages, then the question. Returns it and how many passages it
/// holds (the first `n` of `hits`).
pub fn build_prompt(
    system: &str,
    question: &str,
    hits: &[Hit],
    max_passages: usize,
    generator: &dyn Generator,
    max_tokens: usize,
) -> Result<(String, usize)> {
    let question_part = format!("Question: {question}\nAnswer with citations:");
    let reserved = max_tokens
        + TEMPLATE_TOKENS
        + generator.count_tokens(system)
        + generator.count_tokens(&question_part);
    let Some(mut budget) = generator.context_tokens().checked_sub(reserved) else {
        return Err(cairn_core::Error::user(format!(
            "the question is too long for the model's context of {} tokens",
            generator.context_tokens()
        )));
    };
    let mut prompt = String::from("Passages:\n\n");
    let mut used = 0;
    for (i, hit) in hits.iter().take(max_passages).enumerate() {
        let head = match hit.page {
            0 => format!("[{}] {}\n", i + 1, hit.title),
            page => format!("[{}] {} (page {page})\n", i + 1, hit.title),
        };
        let body = format!("{head}{}\n\n", hit.text.trim());
        let need = generator.count_tokens(&body);
        if need <= budget {
            prompt.push_str(&body);
            budget -= need;
            used += 1;
            continue;
        }
        // Cut the last passage to what is left, by its share of characters.
        if budget >= MIN_PASSAGE_TOKENS + generator.count_tokens(&head) {
            let keep = (body.len() * budget / need).saturating_sub(head.len() + 16);
            let mut cut = keep.min(hit.text.len());
            while !hit.text.is_char_boundary(cut) {
                cut -= 1;
            }
            let body = format!("{head}{} …\n\n", hit.text[..cut].trim());
            if generator.count_tokens(&body) <= budget {
                prompt.push_str(&body);
                used += 1;
            }
        }
        break;
    }
    prompt.push_str(&question_part);
    Ok((prompt, used))
}

/// Answers `question` from `hits` (best first) with `generator`; see the module
/// documentation. The caller has decided to answer; `quoted` is the extractive answer
/// from the same passages, given when the model's is not supported. `on_text` receives the
/// generated text as it comes.
#[allow(clippy::too_many_arguments)]
pub async fn generated(
    question: &str,
    hits: Vec<Hit>,
    quoted: Answer,
    embedder: &dyn Embedder,
    generator: &dyn Generator,
    answer_cfg: &AnswerConfig,
    cfg: &GenerateConfig,
    on_text: &mut (dyn for<'t> FnMut(&'t str) + Send),
) -> Result<Answer> {
    let started = std::time::Instant::now();
    let system = system_prompt(cfg);
    let (user, used) = build_prompt(
        &system,
        question,
        &hits,
        answer_cfg.max_passages,
        generator,
        cfg.max_tokens,
    )?;
    let request = GenerateRequest {
        temperature: cfg.temperature,
        seed: Some(0),
        stop: vec!["\nQuestion:".into(), "\nPassages:".into()],
        ..GenerateRequest::new(
            vec![
                ChatTurn::new(ChatRole::System, system),
                ChatTurn::new(ChatRole::User, user),
            ],
            cfg.max_tokens,
        )
    };
    let text = generate_sentences(generator, request, cfg.max_sentences, on_text).await?;
    let model = Some(generator.model_id().to_string());
    let passages: Vec<Hit> = hits.into_iter().take(used).collect();
    let elapsed = |a: &mut Answer| a.took_ms = started.elapsed().as_secs_f64() * 1000.0;

    if says_no_answer(&text) {
        let mut closest = passages;
        closest.truncate(answer_cfg.closest);
        let mut answer = Answer {
            answer: ABSTAIN_TEXT.to_string(),
            sentences: Vec::new(),
            citations: Vec::new(),
            grounding: 0.0,
            confidence: quoted.confidence,
            signals: quoted.signals.clone(),
            needs_review: false,
            review_reason: None,
            abstained: true,
            passages: closest,
            mode: AnswerMode::Generated,
            model,
            unsupported: 0,
            dropped_citations: 0,
            note: Some("the model found no answer in the passages".into()),
            took_ms: 0.0,
        };
        elapsed(&mut answer);
        return Ok(answer);
    }

    let mut cited = parse(&text, passages.len());
    // A last sentence that repeats an earlier one (earlier repeats were cut already).
    let mut seen = std::collections::HashSet::new();
    cited
        .sentences
        .retain(|(text, _)| seen.insert(without_list_number(text).to_string()));
    let texts: Vec<&str> = passages.iter().map(|h| h.text.as_str()).collect();
    let attribute_at = cfg.attribute.then_some(cfg.min_support);
    let (mut sentences_out, _) = verify(&cited, &texts, embedder, attribute_at).await?;
    for s in &mut sentences_out {
        s.supported = !s.citations.is_empty() && s.support >= cfg.min_support;
    }
    if cfg.entailment {
        entail(generator, &mut sentences_out, &passages).await?;
    }
    let supported = sentences_out.iter().filter(|s| s.supported).count();
    let unsupported = sentences_out.len() - supported;
    let share = if sentences_out.is_empty() {
        0.0
    } else {
        supported as f32 / sentences_out.len() as f32
    };
    if share < cfg.min_supported_share {
        let mut answer = quoted;
        answer.model = model;
        answer.unsupported = unsupported;
        answer.dropped_citations = cited.dropped;
        answer.note = Some(format!(
            "the generated answer was not supported by the passages ({supported} of {} \
             sentences); quoting the passages instead",
            sentences_out.len()
        ));
        elapsed(&mut answer);
        return Ok(answer);
    }
    if cfg.drop_unsupported {
        sentences_out.retain(|s| s.supported);
    }
    let grounding =
        sentences_out.iter().map(|s| s.support).sum::<f32>() / sentences_out.len().max(1) as f32;
    let citations = citations_for(&sentences_out, &passages);
    let mut answer = Answer {
        answer: render(&sentences_out),
        sentences: sentences_out,
        citations,
        grounding,
        confidence: quoted.confidence,
        signals: quoted.signals,
        needs_review: false,
        review_reason: None,
        abstained: false,
        passages,
        mode: AnswerMode::Generated,
        model,
        unsupported,
        dropped_citations: cited.dropped,
        note: None,
        took_ms: 0.0,
    };
    elapsed(&mut answer);
    Ok(answer)
}

/// Runs `request` and returns its text, streaming it to `on_text`. The generation is
/// cancelled as soon as the model begins a sentence past `max_sentences` (0: no limit) or
/// completes one that repeats an earlier one ([`cut_at`]): the text is cut where that
/// sentence's words begin, and nothing past the cut is streamed.
async fn generate_sentences(
    generator: &dyn Generator,
    request: GenerateRequest,
    max_sentences: usize,
    on_text: &mut (dyn for<'t> FnMut(&'t str) + Send),
) -> Result<String> {
    let enough = tokio::sync::Notify::new();
    let mut text = String::new();
    let mut cut = None;
    let mut streamed = 0;
    let mut watch = |piece: &str| {
        if cut.is_some() {
            return;
        }
        text.push_str(piece);
        cut = cut_at(&text, max_sentences);
        let upto = cut.unwrap_or(text.len());
        if upto > streamed {
            on_text(&text[streamed..upto]);
            streamed = upto;
        }
        if cut.is_some() {
            enough.notify_one();
        }
    };
    // Dropping the generation's future cancels it (the `Generator` contract).
    let finished = tokio::select! {
        biased;
        out = generator.generate(request, &mut watch) => Some(out?),
        () = enough.notified() => None,
    };
    Ok(match (cut, finished) {
        (Some(at), _) => {
            text.truncate(at);
            text
        }
        (None, Some(out)) => out.text,
        (None, None) => unreachable!("notified only once cut"),
    })
}

/// The instruction of the entailment question.
pub const ENTAILMENT_PROMPT: &str = "You check claims against source passages. Reply with \
one word: yes if the passages state or directly imply the claim, no if they do not.";

/// Asks the generator, for each sentence still supported, whether its cited passages entail
/// it; records the judgment and flags a "no" unsupported. The questions run concurrently.
async fn entail(
    generator: &dyn Generator,
    sentences: &mut [AnswerSentence],
    passages: &[Hit],
) -> Result<()> {
    let budget = generator.context_tokens().saturating_sub(64);
    let questions: Vec<(usize, String)> = sentences
        .iter()
        .enumerate()
        .filter(|(_, s)| s.supported)
        .map(|(i, s)| {
            let claim = format!(
                "Claim: {}\n\nDo the passages support the claim? Answer yes or no.",
                s.text
            );
            let mut cited = String::from("Passages:\n");
            let mut used = generator.count_tokens(&claim) + generator.count_tokens(&cited);
            for p in s
                .citations
                .iter()
                .filter_map(|&n| passages.get(n.checked_sub(1)?))
            {
                let part = format!("{}\n\n", p.text);
                let cost = generator.count_tokens(&part);
                if used + cost > budget {
                    break;
                }
                used += cost;
                cited.push_str(&part);
            }
            (i, format!("{cited}{claim}"))
        })
        .collect();
    let asks = questions.into_iter().map(|(i, user)| async move {
        let request = GenerateRequest {
            temperature: 0.0,
            seed: Some(0),
            ..GenerateRequest::new(
                vec![
                    ChatTurn::new(ChatRole::System, ENTAILMENT_PROMPT),
                    ChatTurn::new(ChatRole::User, user),
                ],
                3,
            )
        };
        (i, generator.generate(request, &mut |_| {}).await)
    });
    for (i, out) in futures_util::future::join_all(asks).await {
        let judged = judgment(&out?.text);
        sentences[i].entailed = judged;
        if judged == Some(false) {
            sentences[i].supported = false;
        }
    }
    Ok(())
}

/// "yes" or "no" as the first word of a reply, in any case; `None` for anything else.
fn judgment(text: &str) -> Option<bool> {
    let word: String = text
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphabetic())
        .collect::<String>()
        .to_lowercase();
    match word.as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// Whether the model's text is the refusal the instruction asks for.
fn says_no_answer(text: &str) -> bool {
    let t = text.to_lowercase();
    t.trim().is_empty()
        || [
            "do not answer",
            "does not answer",
            "don't answer",
            "not contain the answer",
        ]
        .iter()
        .any(|p| t.contains(p))
            && !t.contains('[')
}

/// The answer text: each sentence followed by its markers.
fn render(sentences: &[AnswerSentence]) -> String {
    let mut out = String::new();
    for s in sentences {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&s.text);
        for n in &s.citations {
            out.push_str(&format!(" [{n}]"));
        }
    }
    out
}

/// One citation per cited passage (its `n` is the passage number), quoting the passage
/// sentence that shares the most terms with the answer sentences citing it.
fn citations_for(sentences_out: &[AnswerSentence], passages: &[Hit]) -> Vec<Citation> {
    let mut cited: Vec<usize> = sentences_out
        .iter()
        .flat_map(|s| s.citations.iter().copied())
        .collect();
    cited.sort_unstable();
    cited.dedup();
    cited
        .into_iter()
        .filter_map(|n| {
            let hit = passages.get(n.checked_sub(1)?)?;
            let claim: String = sentences_out
                .iter()
                .filter(|s| s.citations.contains(&n))
                .map(|s| s.text.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            let (start, end) = best_sentence(&terms(&claim), &hit.text);
            Some(Citation {
                n,
                chunk_id: hit.chunk_id,
                doc_id: hit.doc_id.clone(),
                title: hit.title.clone(),
                source: hit.source.clone(),
                page: hit.page,
                span: Span::new(hit.span.start + start, hit.span.start + end),
                quote: hit.text[start..end].to_string(),
            })
        })
        .collect()
}

/// The byte range of the sentence of `text` sharing the most of `want` (the first on ties;
/// the whole text when it has no sentence).
fn best_sentence(want: &std::collections::HashSet<String>, text: &str) -> (usize, usize) {
    let mut best = (f32::NEG_INFINITY, 0, text.len());
    for (a, b) in sentences(text) {
        let score = overlap(want, &text[a..b]);
        if score > best.0 {
            best = (score, a, b);
        }
    }
    (best.1, best.2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::{ChunkId, DocId, Generated, TokenCounter};
    use std::sync::Mutex;

    const TOPICS: crate::BagOfWords = crate::BagOfWords(&["coffee", "printer", "holiday", "badge"]);

    /// A generator that answers with fixed text, for checking what is done with the text;
    /// the real model is exercised by the end-to-end tests. It hands the text out a word at
    /// a time and counts the words it got to; with `paced`, it waits between words, so a
    /// cancelled generation stops early.
    struct Fixed {
        text: &'static str,
        context: usize,
        prompts: Mutex<Vec<String>>,
        /// The reply to entailment questions about claims containing each key.
        judge: Vec<(&'static str, &'static str)>,
        paced: bool,
        words: std::sync::atomic::AtomicUsize,
    }

    impl Fixed {
        fn new(text: &'static str) -> Self {
            Self {
                text,
                context: 4096,
                prompts: Mutex::new(Vec::new()),
                judge: Vec::new(),
                paced: false,
                words: Default::default(),
            }
        }

        fn paced(text: &'static str) -> Self {
            Self {
                paced: true,
                ..Self::new(text)
            }
        }
    }

    impl TokenCounter for Fixed {
        fn count_tokens(&self, text: &str) -> usize {
            text.split_whitespace().count()
        }
    }

    #[async_trait::async_trait]
    impl Generator for Fixed {
        fn model_id(&self) -> &str {
            "fixed"
        }
        fn context_tokens(&self) -> usize {
            self.context
        }
        async fn generate(
            &self,
            req: GenerateRequest,
            on_text: &mut (dyn for<'t> FnMut(&'t str) + Send),
        ) -> Result<Generated> {
            let user = req.messages.last().unwrap().content.clone();
            self.prompts.lock().unwrap().push(user.clone());
            if req.messages[0].content == ENTAILMENT_PROMPT {
                assert_eq!(req.max_tokens, 3);
                let claim = user.split("Claim: ").nth(1).expect("a claim");
                let (_, reply) = self
                    .judge
                    .iter()
                    .find(|(k, _)| claim.contains(k))
                    .expect("judged");
                return Ok(Generated {
                    text: reply.to_string(),
                    finish_reason: "length".into(),
                    prompt_tokens: 0,
                    completion_tokens: 1,
                });
            }
            for piece in self.text.split_inclusive(' ') {
                on_text(piece);
                self.words
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if self.paced {
                    tokio::task::yield_now().await;
                }
            }
            Ok(Generated {
                text: self.text.to_string(),
                finish_reason: "stop".into(),
                prompt_tokens: 0,
                completion_tokens: 0,
            })
        }
    }

    fn hit(id: i64, offset: usize, text: &str) -> Hit {
        Hit {
            chunk_id: ChunkId(id),
            doc_id: DocId(format!("doc{id}")),
            title: format!("Doc {id}"),
            source: format!("doc{id}.md"),
            page: id as u32,
            span: Span::new(offset, offset + text.len()),
            heading_path: Vec::new(),
            text: text.to_string(),
            score: 1.0,
            retrievers: Default::default(),
            rerank: None,
            community: None,
        }
    }

    fn hits() -> Vec<Hit> {
        vec![
            hit(
                1,
                40,
                "The printer jams when the tray is open. Close the printer tray and press \
                 resume to clear the printer jam.",
            ),
            hit(
                2,
                0,
                "Coffee is free on Fridays. The coffee machine is on floor two.",
            ),
        ]
    }

    async fn answer(g: &Fixed, cfg: &GenerateConfig) -> Answer {
        let (a, streamed) = answer_streamed(g, cfg).await;
        assert_eq!(streamed, g.text, "the text streams as generated");
        a
    }

    /// The answer to the printer question, and the text streamed while it was written.
    async fn answer_streamed(g: &Fixed, cfg: &GenerateConfig) -> (Answer, String) {
        let mut streamed = String::new();
        let question = "how do I clear a printer jam";
        let q = crate::test_vector(&TOPICS, question).await;
        let answer_cfg = AnswerConfig::default();
        let scored = crate::score(question, &q, &hits(), &TOPICS, &answer_cfg)
            .await
            .unwrap();
        let quoted = crate::quote(scored, hits(), &answer_cfg);
        let a = generated(
            question,
            hits(),
            quoted,
            &TOPICS,
            g,
            &AnswerConfig::default(),
            cfg,
            &mut |p| streamed.push_str(p),
        )
        .await
        .expect("answer");
        (a, streamed)
    }

    #[tokio::test]
    async fn citations_are_read_checked_and_quoted_exactly() {
        let g = Fixed::new(
            "Close the printer tray and press resume to clear the printer jam [1]. \
             The printer jams when the tray is open [1][7].",
        );
        let a = answer(&g, &GenerateConfig::default()).await;
        assert_eq!(a.mode, AnswerMode::Generated);
        assert_eq!(a.model.as_deref(), Some("fixed"));
        assert!(!a.abstained);
        assert_eq!(a.dropped_citations, 1, "[7] names no passage");
        assert_eq!(a.sentences.len(), 2);
        assert!(
            a.sentences
                .iter()
                .all(|s| s.supported && s.citations == [1])
        );
        assert_eq!(a.unsupported, 0);
        assert!(a.grounding > 0.8, "{}", a.grounding);
        assert_eq!(a.citations.len(), 1);
        let c = &a.citations[0];
        let passage = &hits()[0];
        assert_eq!((c.n, c.page, &c.doc_id), (1, 1, &passage.doc_id));
        let local = c.span.start - passage.span.start..c.span.end - passage.span.start;
        assert_eq!(passage.text[local].to_string(), c.quote);
        assert!(c.quote.starts_with("Close the printer tray"), "{}", c.quote);
        assert!(
            a.answer.ends_with("[1]") && !a.answer.contains("[7]"),
            "{}",
            a.answer
        );
        // The prompt numbers both passages and ends with the question.
        let prompt = g.prompts.lock().unwrap()[0].clone();
        assert!(
            prompt.contains("[1] Doc 1 (page 1)\nThe printer jams"),
            "{prompt}"
        );
        assert!(prompt.contains("[2] Doc 2 (page 2)\nCoffee"), "{prompt}");
        assert!(prompt.contains("Question: how do I clear a printer jam"));
    }

    #[tokio::test]
    async fn unsupported_sentences_are_flagged_or_dropped() {
        let text = "Close the printer tray and press resume to clear the printer jam [1]. \
                    Press resume to clear the printer, then close the tray [1]. \
                    Holiday badges are printed by security on Mondays [2].";
        let g = Fixed::new(text);
        let flag = GenerateConfig {
            drop_unsupported: false,
            ..GenerateConfig::default()
        };
        let a = answer(&g, &flag).await;
        assert_eq!(a.mode, AnswerMode::Generated);
        assert_eq!(a.unsupported, 1);
        let flagged: Vec<_> = a.sentences.iter().filter(|s| !s.supported).collect();
        assert_eq!(flagged.len(), 1);
        assert!(flagged[0].text.starts_with("Holiday badges"));

        let cfg = GenerateConfig {
            drop_unsupported: true,
            ..GenerateConfig::default()
        };
        let a = answer(&Fixed::new(text), &cfg).await;
        assert_eq!(a.sentences.len(), 2);
        assert!(!a.answer.contains("Holiday"));
        assert!(
            a.citations.iter().all(|c| c.n == 1),
            "passage 2 is no longer cited"
        );
    }

    /// A sentence the model left without a marker cites the passage that supports it, marked
    /// as cairn's citation; with `attribute` off it is unsupported.
    #[tokio::test]
    async fn uncited_sentences_are_attributed() {
        let text = "Close the printer tray and press resume to clear the printer jam.";
        let a = answer(&Fixed::new(text), &GenerateConfig::default()).await;
        assert_eq!(a.mode, AnswerMode::Generated);
        assert_eq!(a.sentences.len(), 1);
        let s = &a.sentences[0];
        assert!(s.attributed && s.supported && s.citations == [1], "{s:?}");
        assert_eq!(a.citations.len(), 1);
        assert!(a.citations[0].quote.starts_with("Close the printer tray"));
        assert_eq!(a.answer, format!("{text} [1]"));

        let cfg = GenerateConfig {
            attribute: false,
            ..GenerateConfig::default()
        };
        let a = answer(&Fixed::new(text), &cfg).await;
        assert_eq!(a.mode, AnswerMode::Extractive, "no sentence was supported");
        assert_eq!(a.unsupported, 1);
    }

    /// With `entailment`, each sentence that passes `min_support` is put to the model with
    /// its cited passages: "no" flags it, "yes" keeps it, anything else leaves it as it was.
    #[tokio::test]
    async fn the_model_judges_entailment_when_asked() {
        let text = "Close the printer tray and press resume to clear the printer jam [1]. \
                    Press resume to clear the printer, then close the tray [1]. \
                    The printer jams when the tray is open [1]. \
                    Holiday badges are printed by security on Mondays [2].";
        let mut g = Fixed::new(text);
        g.judge = vec![
            ("Close the printer", " Yes."),
            ("then close the tray", "No"),
            ("jams when", "maybe"),
        ];
        // Four sentences: no limit on their number.
        let base = GenerateConfig {
            max_sentences: 0,
            drop_unsupported: false,
            ..GenerateConfig::default()
        };
        let cfg = GenerateConfig {
            entailment: true,
            min_supported_share: 0.25,
            ..base.clone()
        };
        let a = answer(&g, &cfg).await;
        let judged: Vec<(bool, Option<bool>)> = a
            .sentences
            .iter()
            .map(|s| (s.supported, s.entailed))
            .collect();
        assert_eq!(
            judged,
            [
                (true, Some(true)),
                (false, Some(false)),
                (true, None),
                (false, None), // below min_support: not asked
            ]
        );
        assert_eq!(a.unsupported, 2);
        // One answer and three questions, each with the cited passage and the claim.
        let prompts = g.prompts.lock().unwrap().clone();
        assert_eq!(prompts.len(), 4);
        assert!(
            prompts[1..]
                .iter()
                .all(|p| p.starts_with("Passages:\nThe printer jams") && !p.contains("Coffee"))
        );
        // Off by default: no questions.
        let g = Fixed::new(text);
        let a = answer(&g, &base).await;
        assert!(a.sentences.iter().all(|s| s.entailed.is_none()));
        assert_eq!(g.prompts.lock().unwrap().len(), 1);
    }

    /// With `max_sentences`, the generation is cancelled once the model begins one sentence
    /// too many, and neither the answer nor the stream holds any of it.
    #[tokio::test]
    async fn generation_stops_after_max_sentences() {
        let text = "Close the printer tray and press resume to clear the printer jam. [1] \
                    The printer jams when the tray is open [1]. \
                    Coffee is free on Fridays [2]. The coffee machine is on floor two [2]. \
                    Holiday badges are printed by security on Mondays.";
        let all = text.split_inclusive(' ').count();
        for (limit, want) in [(1, 1), (2, 2), (3, 3), (0, 5), (9, 5)] {
            let g = Fixed::paced(text);
            // The last sentence is not supported: shown flagged, it still counts.
            let cfg = GenerateConfig {
                max_sentences: limit,
                drop_unsupported: false,
                ..GenerateConfig::default()
            };
            let (a, streamed) = answer_streamed(&g, &cfg).await;
            assert_eq!(a.mode, AnswerMode::Generated, "limit {limit}");
            assert_eq!(a.sentences.len(), want, "limit {limit}: {}", a.answer);
            assert_eq!(a.sentences[0].citations, [1], "the marker after the stop");
            let words = g.words.load(std::sync::atomic::Ordering::Relaxed);
            if want < 5 {
                // Stopped at the first word of the next sentence.
                let kept: usize = a
                    .sentences
                    .iter()
                    .map(|s| s.text.split_whitespace().count())
                    .sum();
                // Each kept sentence has one marker, a word of its own.
                assert_eq!(words, kept + want + 1, "limit {limit}");
                assert!(words < all);
                assert!(text.starts_with(&streamed), "{streamed}");
                assert_eq!(parse(&streamed, 2).sentences.len(), want, "{streamed}");
            } else {
                assert_eq!(words, all);
                assert_eq!(streamed, text);
            }
        }
    }

    /// A model caught in a loop is stopped once it has repeated a sentence, and a repeat
    /// at the very end is left out.
    #[tokio::test]
    async fn repeated_sentences_are_left_out() {
        let clear = "Close the printer tray and press resume to clear the printer jam [1].";
        let open = "The printer jams when the tray is open [1].";
        for (text, words) in [
            // Stopped at the first word after the repeat (13 pieces to C, 9 to O).
            ("C O C O C O C", 13 + 9 + 13 + 1),
            // Nothing comes after the repeat: the model stopped by itself.
            ("C O C", 13 + 9 + 13),
        ] {
            let text: &'static str = text.replace('C', clear).replace('O', open).leak();
            let g = Fixed::paced(text);
            let (a, _) = answer_streamed(&g, &GenerateConfig::default()).await;
            let kept: Vec<&str> = a.sentences.iter().map(|s| s.text.as_str()).collect();
            assert_eq!(
                kept,
                [&clear.replace(" [1]", "")[..], &open.replace(" [1]", "")],
                "{text}"
            );
            assert_eq!(
                g.words.load(std::sync::atomic::Ordering::Relaxed),
                words,
                "{text}"
            );
        }
    }

    #[test]
    fn judgments_are_read_from_the_first_word() {
        assert_eq!(judgment("Yes, it does."), Some(true));
        assert_eq!(judgment("\n no"), Some(false));
        assert_eq!(judgment("Not stated"), None);
        assert_eq!(judgment(""), None);
    }

    #[tokio::test]
    async fn an_unsupported_answer_is_replaced_by_quotes() {
        let g = Fixed::new("Holiday badges are printed by security on Mondays [2].");
        let a = answer(&g, &GenerateConfig::default()).await;
        assert_eq!(a.mode, AnswerMode::Extractive);
        assert!(!a.abstained);
        assert!(
            a.note.as_deref().unwrap_or("").contains("not supported"),
            "{:?}",
            a.note
        );
        assert!(a.citations.iter().any(|c| c.quote.contains("press resume")));
    }

    #[tokio::test]
    async fn the_model_saying_no_answer_is_an_abstention() {
        let g = Fixed::new("The documents do not answer this question.");
        let a = answer(&g, &GenerateConfig::default()).await;
        assert!(a.abstained);
        assert_eq!(a.answer, ABSTAIN_TEXT);
        assert!(a.citations.is_empty());
        assert!(!a.passages.is_empty(), "the closest passages are shown");
    }

    #[test]
    fn the_instruction_offers_a_way_out_only_when_the_model_may_decline() {
        let default = system_prompt(&GenerateConfig::default());
        assert_eq!(default, SYSTEM_PROMPT);
        assert!(!default.contains("do not answer"));
        let may = system_prompt(&GenerateConfig {
            model_may_decline: true,
            ..GenerateConfig::default()
        });
        assert_eq!(may, format!("{SYSTEM_PROMPT}{DECLINE_PROMPT}"));
        assert!(says_no_answer("The documents do not answer this question."));
    }

    #[test]
    fn passages_are_packed_into_the_context() {
        let long = "word ".repeat(300);
        let many: Vec<Hit> = (1..=5).map(|i| hit(i, 0, &long)).collect();
        let mut g = Fixed::new("");
        // Room for the reserved parts and about 1.5 passages.
        let reserved = 100
            + TEMPLATE_TOKENS
            + g.count_tokens(SYSTEM_PROMPT)
            + g.count_tokens("Question: q\nAnswer with citations:");
        g.context = reserved + 460;
        let (prompt, used) = build_prompt(SYSTEM_PROMPT, "q", &many, 5, &g, 100).expect("prompt");
        assert_eq!(used, 2, "one whole passage and one cut");
        assert!(prompt.contains("[2] Doc 2") && !prompt.contains("[3]"));
        assert!(g.count_tokens(&prompt) <= g.context - 100);

        g.context = reserved - 1;
        let err = build_prompt(SYSTEM_PROMPT, "q", &many, 5, &g, 100).expect_err("no room");
        assert!(err.message.contains("too long"), "{}", err.message);
    }
}
