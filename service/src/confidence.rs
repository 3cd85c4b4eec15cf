//! How sure an answer is. Once an answer is made (or declined), its signals are completed
//! (`AnswerSignals`: the best sentence's score, the closest passage's embedding cosine),
//! `[answer.calibration]` turns them into `confidence`, the probability that the passages
//! answer the question, and an answer a person should check before relying on it is marked
//! `needs_review`, with the reason in words:
//! - its confidence is below `[answer] review_below`;
//! - some of its generated sentences are not supported by the passages they cite.
//!
//! An abstention is never marked: it already says that the documents do not answer.

use cairn_core::config::{AnswerConfig, Calibration};
use cairn_core::{Answer, AnswerMode, AnswerSignals, Hit};

/// The calibration for `question`: `[answer.calibration_cjk]` for a question in CJK
/// script, `[answer.calibration]` for any other.
pub fn calibration<'a>(cfg: &'a AnswerConfig, question: &str) -> &'a Calibration {
    if cairn_generate::is_cjk(question) {
        &cfg.calibration_cjk
    } else {
        &cfg.calibration
    }
}

/// The calibrated confidence of answering `question` with these signals.
pub fn confidence(cfg: &AnswerConfig, question: &str, signals: &AnswerSignals) -> f32 {
    calibration(cfg, question).confidence(signals)
}

/// The best dense-retriever score (embedding cosine) among `hits`; `None` when none has one.
pub fn closest_dense(hits: &[Hit]) -> Option<f32> {
    hits.iter()
        .filter_map(|h| h.dense().map(|d| d.score))
        .reduce(f32::max)
}

/// Completes `answer.signals` with the retrieved passages' [`closest_dense`] and the
/// judge's score, sets the answer's calibrated confidence and whether it needs review; see
/// the module documentation.
pub fn assess(
    answer: &mut Answer,
    question: &str,
    closest_dense: Option<f32>,
    judge: Option<f32>,
    cfg: &AnswerConfig,
) {
    answer.signals.closest_dense = closest_dense;
    answer.signals.judge = judge;
    answer.confidence = confidence(cfg, question, &answer.signals);
    let mut reasons = Vec::new();
    if !answer.abstained {
        if answer.confidence < cfg.review_below {
            reasons.push(format!(
                "its confidence is {:.2}, below [answer] review_below {:.2}: the passages may \
                 not answer the question",
                answer.confidence, cfg.review_below
            ));
        }
        // Only sentences the reader sees flagged ask for review: a generated answer replaced
        // by quotes, or one whose unsupported sentences were left out
        // (`[generate] drop_unsupported`), keeps their count but shows none of them.
        let flagged = answer.sentences.iter().filter(|s| !s.supported).count();
        if answer.mode == AnswerMode::Generated && flagged > 0 {
            reasons.push(format!(
                "{flagged} of its {} sentences are not supported by the passages they cite",
                answer.sentences.len()
            ));
        }
    }
    answer.needs_review = !reasons.is_empty();
    answer.review_reason = (!reasons.is_empty()).then(|| reasons.join("; "));
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::config::Calibration;
    use cairn_core::{AnswerSentence, AnswerSignals, ChunkId, DENSE, DocId, RetrieverScore, Span};

    fn hit(dense: Option<f32>) -> Hit {
        Hit {
            chunk_id: ChunkId(1),
            doc_id: DocId("d".into()),
            title: "T".into(),
            source: "t.md".into(),
            page: 1,
            span: Span::new(0, 1),
            heading_path: vec![],
            text: "x".into(),
            score: 1.0,
            retrievers: dense
                .map(|score| (DENSE.to_string(), RetrieverScore { rank: 1, score }))
                .into_iter()
                .collect(),
            rerank: None,
            community: None,
        }
    }

    fn answer(best: f32, abstained: bool, unsupported: usize) -> Answer {
        Answer {
            answer: "a".into(),
            sentences: Vec::new(),
            citations: Vec::new(),
            grounding: 1.0,
            confidence: best,
            signals: AnswerSignals {
                best_sentence: best,
                ..AnswerSignals::default()
            },
            needs_review: false,
            review_reason: None,
            abstained,
            passages: Vec::new(),
            mode: AnswerMode::Extractive,
            model: None,
            unsupported,
            dropped_citations: 0,
            note: None,
            took_ms: 0.0,
        }
    }

    fn cfg() -> AnswerConfig {
        AnswerConfig {
            calibration: Calibration {
                intercept: -5.0,
                best_sentence: 5.0,
                closest_dense: 5.0,
                closest_dense_absent: 0.5,
                judge: 0.0,
                judge_absent: 0.0,
            },
            review_below: 0.5,
            ..AnswerConfig::default()
        }
    }

    #[test]
    fn confidence_rises_with_each_signal_and_an_absent_one_takes_its_default() {
        let cfg = cfg();
        let at = |best: f32, dense: Option<f32>| {
            let mut a = answer(best, false, 0);
            let hits = [hit(dense), hit(dense.map(|d| d - 0.1))];
            assess(&mut a, "q", closest_dense(&hits), None, &cfg);
            assert_eq!(a.signals.closest_dense, dense, "the closest of the hits");
            a.confidence
        };
        assert!((at(0.5, Some(0.5)) - 0.5).abs() < 1e-6);
        assert!(at(0.6, Some(0.5)) > at(0.5, Some(0.5)));
        assert!(at(0.5, Some(0.6)) > at(0.5, Some(0.5)));
        assert_eq!(at(0.5, None), at(0.5, Some(0.5)));
        assert!((0.0..=1.0).contains(&at(-3.0, Some(-1.0))));
    }

    #[test]
    fn the_judges_score_weighs_in_and_its_absence_takes_the_default() {
        let mut cfg = cfg();
        cfg.calibration.judge = 2.0;
        cfg.calibration.judge_absent = 0.25;
        let at = |judge: Option<f32>| {
            let mut a = answer(0.5, false, 0);
            assess(&mut a, "q", Some(0.5), judge, &cfg);
            assert_eq!(a.signals.judge, judge);
            a.confidence
        };
        assert!(at(Some(1.0)) > at(Some(0.0)));
        assert_eq!(at(None), at(Some(0.25)));
        cfg.calibration.judge = 0.0;
        let unweighted = |judge| {
            let mut a = answer(0.5, false, 0);
            assess(&mut a, "q", Some(0.5), judge, &cfg);
            a.confidence
        };
        assert_eq!(
            unweighted(Some(9.0)),
            unweighted(None),
            "weight 0: no effect"
        );
    }

    #[test]
    fn questions_in_cjk_script_take_their_own_calibration() {
        let mut cfg = cfg();
        cfg.calibration_cjk = Calibration {
            intercept: 5.0,
            ..cfg.calibration.clone()
        };
        let at = |question: &str| {
            let mut a = answer(0.5, false, 0);
            assess(&mut a, question, Some(0.5), None, &cfg);
            a.confidence
        };
        assert!((at("how do I mount a disk?") - 0.5).abs() < 1e-6);
        assert!(at("怎样挂载磁盘？") > 0.99);
    }

    #[test]
    fn low_confidence_and_unsupported_sentences_ask_for_review_with_the_reason() {
        let cfg = cfg();
        let mut sure = answer(0.9, false, 0);
        assess(&mut sure, "q", Some(0.8), None, &cfg);
        assert!(!sure.needs_review && sure.review_reason.is_none());

        let mut unsure = answer(0.3, false, 0);
        assess(&mut unsure, "q", Some(0.3), None, &cfg);
        assert!(unsure.needs_review);
        let reason = unsure.review_reason.expect("a reason");
        assert!(reason.contains("review_below 0.50"), "{reason}");

        let mut quoted = answer(0.9, false, 2);
        assess(&mut quoted, "q", Some(0.8), None, &cfg);
        assert!(
            !quoted.needs_review,
            "quotes that replaced an unsupported generated answer are supported"
        );
        let sentence = |supported| AnswerSentence {
            text: "s.".into(),
            citations: vec![1],
            support: if supported { 0.9 } else { 0.1 },
            relevance: 0.5,
            supported,
            entailed: None,
            attributed: false,
        };
        let mut flagged = Answer {
            mode: AnswerMode::Generated,
            sentences: vec![sentence(false), sentence(true), sentence(false)],
            ..answer(0.9, false, 2)
        };
        assess(&mut flagged, "q", Some(0.8), None, &cfg);
        assert!(flagged.needs_review);
        assert!(
            flagged
                .review_reason
                .as_deref()
                .is_some_and(|r| r.contains("2 of its 3 sentences are not supported")),
            "{:?}",
            flagged.review_reason
        );
        // With drop_unsupported the two were left out: what is shown is supported.
        let mut dropped = Answer {
            mode: AnswerMode::Generated,
            sentences: vec![sentence(true)],
            ..answer(0.9, false, 2)
        };
        assess(&mut dropped, "q", Some(0.8), None, &cfg);
        assert!(!dropped.needs_review, "{:?}", dropped.review_reason);

        let mut declined = answer(0.1, true, 0);
        assess(&mut declined, "q", Some(0.1), None, &cfg);
        assert!(!declined.needs_review, "an abstention is not marked");
        assert!(declined.confidence < 0.5);
    }
}
