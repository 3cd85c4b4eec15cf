//! The extractive answerer: quotes the sentences of the retrieved passages that best answer
//! the question, each with its citation.
//!
//! [`score`] scores each sentence of the first `max_passages` passages against the question
//! by `0.75 * cosine(embedding) + 0.25 * term overlap` (the share of the question's words,
//! or for Chinese its characters, that the sentence contains); the question's vector comes
//! from the search that found the passages, so only the sentences are embedded, in one
//! batch. [`quote`] then quotes the best sentences within `margin` of the best (at most
//! `max_sentences`) in passage order, each citing its own exact span, so every claim is
//! verbatim from a document and its support is 1. Whether to answer at all (the best
//! sentence's score, how close the passages are) is not decided here but by the caller's
//! gate (`cairn-service`); [`abstention`] is the answer it gives when it declines.

use crate::terms::{is_cjk, overlap, terms};
use cairn_core::config::AnswerConfig;
use cairn_core::sentences::sentences;
use cairn_core::{
    Answer, AnswerMode, AnswerSentence, AnswerSignals, Citation, Embedder, Hit, Result, Span,
};

/// The text of an abstention.
pub const ABSTAIN_TEXT: &str =
    "The documents do not answer this question. The closest passages are listed below.";

/// Sentences longer than this many bytes are not quoted (they are tables or run-on text).
const MAX_SENTENCE_BYTES: usize = 600;

struct Candidate {
    passage: usize,
    start: usize,
    end: usize,
    score: f32,
}

/// The sentences of the passages read, scored against the question.
pub struct Scored {
    candidates: Vec<Candidate>,
    /// The best sentence's score; `None` when the passages have no sentence to quote.
    pub best: Option<f32>,
}

/// Scores the sentences of the first `max_passages` of `hits` against `question`, whose
/// embedding is `question_vector`; see the module documentation.
pub async fn score(
    question: &str,
    question_vector: &[f32],
    hits: &[Hit],
    embedder: &dyn Embedder,
    cfg: &AnswerConfig,
) -> Result<Scored> {
    let read = hits.len().min(cfg.max_passages);
    let mut candidates = Vec::new();
    for (passage, hit) in hits[..read].iter().enumerate() {
        for (start, end) in sentences(&hit.text) {
            let words = hit.text[start..end].split_whitespace().count();
            if end - start <= MAX_SENTENCE_BYTES && (words >= 3 || is_cjk(&hit.text[start..end])) {
                candidates.push(Candidate {
                    passage,
                    start,
                    end,
                    score: 0.0,
                });
            }
        }
    }
    if candidates.is_empty() {
        return Ok(Scored {
            candidates,
            best: None,
        });
    }
    let texts: Vec<String> = candidates
        .iter()
        .map(|c| hits[c.passage].text[c.start..c.end].to_string())
        .collect();
    let embedded = embedder.embed(texts).await?;
    let terms = terms(question);
    for (c, v) in candidates.iter_mut().zip(&embedded.vectors) {
        let cosine: f32 = question_vector.iter().zip(v).map(|(a, b)| a * b).sum();
        let overlap = overlap(&terms, &hits[c.passage].text[c.start..c.end]);
        c.score = 0.75 * cosine + 0.25 * overlap;
    }
    let best = candidates.iter().map(|c| c.score).reduce(f32::max);
    Ok(Scored { candidates, best })
}

/// Quotes the best scored sentences of `hits`; see the module documentation. Scored
/// sentences of none: the abstention.
pub fn quote(scored: Scored, hits: Vec<Hit>, cfg: &AnswerConfig) -> Answer {
    let started = std::time::Instant::now();
    let Scored {
        mut candidates,
        best,
    } = scored;
    let Some(best) = best else {
        return abstention(hits, cfg, 0.0, None);
    };
    candidates.retain(|c| c.score >= best - cfg.margin);
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    candidates.truncate(cfg.max_sentences.max(1));
    candidates.sort_by_key(|c| (c.passage, c.start));

    let mut sentences_out = Vec::new();
    let mut citations = Vec::new();
    let mut answer = String::new();
    let mut used = Vec::new();
    for c in &candidates {
        let hit = &hits[c.passage];
        let quote = hit.text[c.start..c.end].to_string();
        let n = citations.len() + 1;
        citations.push(Citation {
            n,
            chunk_id: hit.chunk_id,
            doc_id: hit.doc_id.clone(),
            title: hit.title.clone(),
            source: hit.source.clone(),
            page: hit.page,
            span: Span::new(hit.span.start + c.start, hit.span.start + c.end),
            quote: quote.clone(),
        });
        if !answer.is_empty() {
            answer.push(' ');
        }
        answer.push_str(&format!("{quote} [{n}]"));
        sentences_out.push(AnswerSentence {
            text: quote,
            citations: vec![n],
            support: 1.0,
            relevance: c.score,
            supported: true,
            entailed: None,
            attributed: false,
        });
        if !used.contains(&c.passage) {
            used.push(c.passage);
        }
    }
    let passages = used.iter().map(|&i| hits[i].clone()).collect();
    Answer {
        answer,
        sentences: sentences_out,
        citations,
        grounding: 1.0,
        confidence: best,
        signals: AnswerSignals {
            best_sentence: best,
            ..AnswerSignals::default()
        },
        needs_review: false,
        review_reason: None,
        abstained: false,
        passages,
        mode: AnswerMode::Extractive,
        model: None,
        unsupported: 0,
        dropped_citations: 0,
        note: None,
        took_ms: started.elapsed().as_secs_f64() * 1000.0,
    }
}

/// The answer that declines: says the documents do not answer, shows the closest
/// `[answer] closest` of `hits` (best first), and says why in `note`.
pub fn abstention(
    mut hits: Vec<Hit>,
    cfg: &AnswerConfig,
    confidence: f32,
    note: Option<String>,
) -> Answer {
    hits.truncate(cfg.closest);
    Answer {
        answer: ABSTAIN_TEXT.to_string(),
        sentences: Vec::new(),
        citations: Vec::new(),
        grounding: 0.0,
        confidence: confidence.max(0.0),
        signals: AnswerSignals {
            best_sentence: confidence.max(0.0),
            ..AnswerSignals::default()
        },
        needs_review: false,
        review_reason: None,
        abstained: true,
        passages: hits,
        mode: AnswerMode::Extractive,
        model: None,
        unsupported: 0,
        dropped_citations: 0,
        note,
        took_ms: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::{ChunkId, DocId};

    const TOPICS: crate::BagOfWords = crate::BagOfWords(&["coffee", "printer", "holiday", "badge"]);

    fn hit(id: i64, offset: usize, text: &str) -> Hit {
        Hit {
            chunk_id: ChunkId(id),
            doc_id: DocId(format!("doc{id}")),
            title: format!("Doc {id}"),
            source: format!("doc{id}.md"),
            page: 2,
            span: Span::new(offset, offset + text.len()),
            heading_path: Vec::new(),
            text: text.to_string(),
            score: 1.0,
            retrievers: Default::default(),
            rerank: None,
            community: None,
        }
    }

    /// Scores and quotes, the question embedded as a search would.
    pub(crate) async fn extract(question: &str, hits: Vec<Hit>, cfg: &AnswerConfig) -> Answer {
        let q = crate::test_vector(&TOPICS, question).await;
        let scored = score(question, &q, &hits, &TOPICS, cfg).await.unwrap();
        quote(scored, hits, cfg)
    }

    #[tokio::test]
    async fn quotes_the_best_sentence_with_its_exact_span() {
        let doc = "Intro. The printer jams when the tray is open. Close the printer tray and \
                   press resume to clear the printer jam. Lunch is at noon.";
        let offset = 100;
        let hits = vec![
            hit(
                1,
                7,
                "Coffee is free on Fridays. The coffee machine is on floor two.",
            ),
            hit(2, offset, doc),
        ];
        let a = extract(
            "how do I clear a printer jam",
            hits,
            &AnswerConfig::default(),
        )
        .await;
        assert!(!a.abstained);
        assert!(!a.citations.is_empty() && a.citations.len() <= 3);
        let best = a
            .citations
            .iter()
            .find(|c| c.quote.contains("press resume"))
            .expect("the answering sentence is quoted");
        assert_eq!(best.doc_id, DocId("doc2".into()));
        assert_eq!(best.page, 2);
        let at = doc.find("Close the printer").unwrap();
        assert_eq!(
            best.span,
            Span::new(offset + at, offset + at + best.quote.len())
        );
        assert!(a.citations.iter().all(|c| !c.quote.contains("Coffee")));
        assert!(a.answer.contains(&format!("[{}]", best.n)));
        assert_eq!(a.grounding, 1.0);
        assert!(
            a.sentences
                .iter()
                .all(|s| s.support == 1.0 && s.citations.len() == 1)
        );
    }

    #[tokio::test]
    async fn quotes_are_whole_sentences_across_the_line_breaks_of_a_pdf() {
        let page = "Intro text here.\nA printer jam is caused by the absence of vertical\n\
                    alignment in the printer tray. Coffee is served\nat noon.";
        let a = extract(
            "what causes a printer jam",
            vec![hit(1, 0, page)],
            &AnswerConfig::default(),
        )
        .await;
        let quote = &a.citations[0].quote;
        assert_eq!(
            quote,
            "A printer jam is caused by the absence of vertical\nalignment in the printer tray."
        );
    }

    #[tokio::test]
    async fn scores_say_how_close_the_best_sentence_is_and_nothing_quotable_is_an_abstention() {
        let cfg = AnswerConfig::default();
        let q = crate::test_vector(&TOPICS, "how do I clear a printer jam").await;
        let on_topic = vec![hit(
            1,
            0,
            "Close the printer tray to clear the printer jam.",
        )];
        let off_topic = vec![hit(2, 0, "The coffee machine is on floor two.")];
        let near = score("how do I clear a printer jam", &q, &on_topic, &TOPICS, &cfg)
            .await
            .unwrap();
        let far = score(
            "how do I clear a printer jam",
            &q,
            &off_topic,
            &TOPICS,
            &cfg,
        )
        .await
        .unwrap();
        assert!(near.best.unwrap() > far.best.unwrap());
        // Fragments of fewer than three words are not quotable.
        let none = score("jam", &q, &[hit(3, 0, "Jam.")], &TOPICS, &cfg)
            .await
            .unwrap();
        assert_eq!(none.best, None);
        let a = quote(none, vec![hit(3, 0, "Jam.")], &cfg);
        assert!(a.abstained && a.answer == ABSTAIN_TEXT && a.citations.is_empty());
        let a = abstention(
            (0..5)
                .map(|i| hit(i, 0, "The printer is in room 4."))
                .collect(),
            &cfg,
            0.3,
            Some("why".into()),
        );
        assert_eq!(
            a.passages.len(),
            cfg.closest,
            "the closest passages are shown"
        );
        assert_eq!((a.confidence, a.note.as_deref()), (0.3, Some("why")));
    }
}
