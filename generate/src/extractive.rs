//! The extractive answerer: quotes the sentences of the retrieved passages that best answer
//! the question, each with its citation, or abstains.
//!
//! Each sentence of the first `max_passages` passages is scored against the question by
//! `0.75 * cosine(embedding) + 0.25 * term overlap` (the share of the question's words, or
//! for Chinese its characters, that the sentence contains). The question and all sentences
//! are embedded in one batch. When even the best sentence scores below `min_score`, the
//! answer abstains: "the documents do not answer" with the closest passages. Otherwise the
//! best sentences within `margin` of the best (at most `max_sentences`) are quoted in
//! passage order, each citing its own exact span, so every claim is verbatim from a
//! document and its support is 1.
//!
//! The answer also abstains when no passage as a whole comes close to the question: when the
//! best dense-retriever score (embedding cosine) among the hits is below `min_dense`
//! (`min_dense_cjk` for a question in CJK script). A sentence can share the question's words
//! while its passage is about something else; on the judged set this check catches
//! unanswerable questions the sentence score lets through (eval/debian/RESULTS.md). It is
//! not made when the question names identifiers (words with letters and digits: "FIN-88R")
//! and the passages read contain every one verbatim: embeddings place such codes poorly, and
//! a passage that has them is about them.

use crate::sentences::sentences;
use crate::terms::{identifiers, is_cjk, overlap, terms};
use cairn_core::config::AnswerConfig;
use cairn_core::{Answer, AnswerMode, AnswerSentence, Citation, Embedder, Hit, Result, Span};

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

/// Answers `question` from `hits` (best first) by quoting; see the module documentation.
pub async fn extractive(
    question: &str,
    hits: Vec<Hit>,
    embedder: &dyn Embedder,
    cfg: &AnswerConfig,
) -> Result<Answer> {
    let started = std::time::Instant::now();
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
        return Ok(abstain(hits, cfg, 0.0, started));
    }
    let mut texts = vec![question.to_string()];
    texts.extend(
        candidates
            .iter()
            .map(|c| hits[c.passage].text[c.start..c.end].to_string()),
    );
    let embedded = embedder.embed(texts).await?;
    let q = &embedded.vectors[0];
    let terms = terms(question);
    for (c, v) in candidates.iter_mut().zip(&embedded.vectors[1..]) {
        let cosine: f32 = q.iter().zip(v).map(|(a, b)| a * b).sum();
        let overlap = overlap(&terms, &hits[c.passage].text[c.start..c.end]);
        c.score = 0.75 * cosine + 0.25 * overlap;
    }
    let best = candidates
        .iter()
        .map(|c| c.score)
        .fold(f32::NEG_INFINITY, f32::max);
    if best < cfg.min_score {
        return Ok(abstain(hits, cfg, best, started));
    }
    let floor = if is_cjk(question) {
        cfg.min_dense_cjk
    } else {
        cfg.min_dense
    };
    let closest = hits
        .iter()
        .filter_map(|h| h.dense.map(|d| d.score))
        .reduce(f32::max);
    let ids = identifiers(question);
    let identified = !ids.is_empty()
        && ids.iter().all(|id| {
            let id = id.to_lowercase();
            hits[..read]
                .iter()
                .any(|h| h.text.to_lowercase().contains(&id))
        });
    if let Some(closest) = closest.filter(|&c| c < floor && !identified) {
        let mut a = abstain(hits, cfg, best, started);
        a.note = Some(format!(
            "no passage is close enough to the question: the closest scores {closest:.2} \
             (embedding cosine), below [answer] min_dense {floor:.2}"
        ));
        return Ok(a);
    }
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
    Ok(Answer {
        answer,
        sentences: sentences_out,
        citations,
        grounding: 1.0,
        confidence: best,
        abstained: false,
        passages,
        mode: AnswerMode::Extractive,
        model: None,
        unsupported: 0,
        dropped_citations: 0,
        note: None,
        took_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

/// An abstention that shows the closest of `hits` (best first) and says why in its `note`.
pub fn abstention(hits: Vec<Hit>, cfg: &AnswerConfig, note: String) -> Answer {
    let mut a = abstain(hits, cfg, 0.0, std::time::Instant::now());
    a.note = Some(note);
    a
}

fn abstain(
    mut hits: Vec<Hit>,
    cfg: &AnswerConfig,
    best: f32,
    started: std::time::Instant,
) -> Answer {
    hits.truncate(cfg.closest);
    Answer {
        answer: ABSTAIN_TEXT.to_string(),
        sentences: Vec::new(),
        citations: Vec::new(),
        grounding: 0.0,
        confidence: best.max(0.0),
        abstained: true,
        passages: hits,
        mode: AnswerMode::Extractive,
        model: None,
        unsupported: 0,
        dropped_citations: 0,
        note: None,
        took_ms: started.elapsed().as_secs_f64() * 1000.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::{ChunkId, DocId, RetrieverScore};

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
            bm25: None,
            dense: None,
            rerank: None,
        }
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
        let a = extractive(
            "how do I clear a printer jam",
            hits,
            &TOPICS,
            &AnswerConfig::default(),
        )
        .await
        .unwrap();
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
    async fn abstains_when_nothing_is_close() {
        let hits = vec![
            hit(1, 0, "The coffee machine is on floor two."),
            hit(2, 0, "Badges are printed by security."),
            hit(3, 0, "Holiday requests go to HR."),
            hit(4, 0, "The printer is in room 4."),
        ];
        let a = extractive(
            "what is the airspeed of a swallow",
            hits,
            &TOPICS,
            &AnswerConfig::default(),
        )
        .await
        .unwrap();
        assert!(a.abstained);
        assert_eq!(a.answer, ABSTAIN_TEXT);
        assert!(a.citations.is_empty());
        assert_eq!(a.grounding, 0.0);
        assert_eq!(a.passages.len(), 3, "the closest passages are shown");
        let none = extractive("anything", Vec::new(), &TOPICS, &AnswerConfig::default())
            .await
            .unwrap();
        assert!(none.abstained && none.passages.is_empty());
    }

    #[tokio::test]
    async fn abstains_when_no_passage_is_close_as_a_whole() {
        let passages = [
            "Close the printer tray and press resume to clear the printer jam.",
            "The printer is in room 4.",
        ];
        let question = "how do I clear a printer jam";
        let with_dense = |cosines: [f32; 2]| {
            passages
                .iter()
                .zip(cosines)
                .enumerate()
                .map(|(i, (text, score))| Hit {
                    dense: Some(RetrieverScore { rank: i + 1, score }),
                    ..hit(i as i64 + 1, 0, text)
                })
                .collect::<Vec<_>>()
        };
        let answer = |question: &'static str, cosines, cfg: AnswerConfig| async move {
            extractive(question, with_dense(cosines), &TOPICS, &cfg)
                .await
                .unwrap()
        };
        let cfg = AnswerConfig::default();
        // The best sentence matches the question well either way.
        let close = answer(question, [0.62, 0.30], cfg.clone()).await;
        assert!(!close.abstained, "{:?}", close.note);
        let far = answer(question, [0.41, 0.30], cfg.clone()).await;
        assert!(far.abstained);
        assert_eq!(far.answer, ABSTAIN_TEXT);
        assert!(
            far.confidence >= cfg.min_score,
            "the sentence score is kept"
        );
        assert!(far.note.unwrap().contains("0.41"));
        assert_eq!(far.passages.len(), 2);
        // Off at 0.
        let off = AnswerConfig {
            min_dense: 0.0,
            ..AnswerConfig::default()
        };
        assert!(!answer(question, [0.41, 0.30], off).await.abstained);
        // Questions in CJK script have their own floor, off by default.
        let cjk = "printer jam 卡纸";
        assert!(!answer(cjk, [0.41, 0.30], cfg.clone()).await.abstained);
        let higher = AnswerConfig {
            min_dense_cjk: 0.6,
            ..AnswerConfig::default()
        };
        assert!(
            !answer(question, [0.55, 0.30], higher.clone())
                .await
                .abstained
        );
        let a = answer(cjk, [0.55, 0.30], higher).await;
        assert!(a.abstained && a.note.unwrap().contains("0.60"));
        // A question naming an identifier that the passages read contain is answered
        // however far its embedding; one they do not contain is judged as before.
        let room = "how do I clear a printer jam in room 4B";
        assert!(answer(room, [0.41, 0.30], cfg.clone()).await.abstained);
        let tray = "how do I clear a printer jam in tray T2";
        let passages_t2 = passages.map(|p| p.replace("printer tray", "printer tray T2"));
        let hits = with_dense([0.41, 0.30])
            .into_iter()
            .zip(&passages_t2)
            .map(|(h, text)| Hit {
                text: text.clone(),
                ..h
            })
            .collect();
        let a = extractive(tray, hits, &TOPICS, &cfg).await.unwrap();
        assert!(!a.abstained, "{:?}", a.note);
        // Hits without a dense score (bm25 mode) are not judged by it.
        let a = extractive(
            question,
            with_dense([0.41, 0.30])
                .into_iter()
                .map(|h| Hit { dense: None, ..h })
                .collect(),
            &TOPICS,
            &cfg,
        )
        .await
        .unwrap();
        assert!(!a.abstained);
    }
}
