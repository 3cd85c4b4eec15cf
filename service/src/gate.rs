//! Whether to answer at all: every decision to abstain before an answer is written lives
//! here, taken on the retrieved passages and the extractive scores of their sentences
//! (`cairn_generate::score`). A language model is asked only when the gate says answer.
//!
//! The answer abstains, with the closest passages, when
//! - the passages hold no sentence to quote;
//! - its calibrated confidence (`[answer.calibration]` over the best sentence's score and
//!   the closest passage's embedding cosine: the probability that the passages answer the
//!   question, `crate::confidence`) is below `[answer] abstain_below`. Not applied when the
//!   question names identifiers (letters with digits, "FIN-88R") that the passages read all
//!   contain: embeddings place such codes poorly, and a passage that has them is about them;
//! - with `[answer] unknown_names`, the question names something (a Latin-script word in a
//!   CJK question, a capitalised word in another: `cairn_generate::question_names`) that
//!   no passage the caller may read mentions: not in the hits, and a BM25 search for it
//!   alone in the caller's scope finds nothing.
//!
//! Two rules on single signals remain as options, off by default: the best sentence below
//! `[answer] min_score` (0.75 × embedding cosine + 0.25 × the share of the question's terms
//! it contains), and the closest passage below `[answer] min_dense` (`min_dense_cjk` for a
//! question in CJK script; waived for identifiers as above).
//!
//! The calibration and the thresholds are chosen on the tune split of `eval/debian`
//! (`eval/debian/RESULTS.md`).

use cairn_core::config::AnswerConfig;
use cairn_core::{Hit, Principal, Result, SearchFilter, SearchMode, SearchRequest};
use cairn_generate::{identifiers, is_cjk, question_names};
use cairn_retrieve::Retriever;

/// The gate's decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Answer,
    /// Abstain; `note` says why when the confidence alone does not.
    Abstain {
        note: Option<String>,
    },
}

/// The decision on the sentence scores, the passages' closeness and the calibrated
/// `confidence` of answering from them; see the module documentation. `best` is the best
/// sentence's score (`None`: nothing to quote).
pub fn judge(
    question: &str,
    hits: &[Hit],
    best: Option<f32>,
    confidence: f32,
    cfg: &AnswerConfig,
) -> Verdict {
    let Some(best) = best else {
        return Verdict::Abstain { note: None };
    };
    let read = &hits[..hits.len().min(cfg.max_passages)];
    let ids = identifiers(question);
    let identified = !ids.is_empty()
        && ids.iter().all(|id| {
            let id = id.to_lowercase();
            read.iter().any(|h| h.text.to_lowercase().contains(&id))
        });
    if confidence < cfg.abstain_below && !identified {
        return Verdict::Abstain {
            note: Some(format!(
                "the passages are unlikely to answer the question: confidence {confidence:.2}, \
                 below [answer] abstain_below {:.2}",
                cfg.abstain_below
            )),
        };
    }
    if best < cfg.min_score {
        return Verdict::Abstain { note: None };
    }
    let floor = if is_cjk(question) {
        cfg.min_dense_cjk
    } else {
        cfg.min_dense
    };
    match crate::confidence::closest_dense(hits) {
        Some(closest) if closest < floor && !identified => Verdict::Abstain {
            note: Some(format!(
                "no passage is close enough to the question: the closest scores {closest:.2} \
                 (embedding cosine), below [answer] min_dense {floor:.2}"
            )),
        },
        _ => Verdict::Answer,
    }
}

/// The first name the question mentions that no passage `principal` may read mentions;
/// see the module documentation.
pub async fn unknown_name(
    retriever: &Retriever,
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
        if retriever
            .search(&probe, principal)
            .await?
            .results
            .is_empty()
        {
            return Ok(Some(name.to_string()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::{ChunkId, DENSE, DocId, RetrieverScore, Span};

    fn hit(i: usize, text: &str, dense: Option<f32>) -> Hit {
        Hit {
            chunk_id: ChunkId(i as i64),
            doc_id: DocId(format!("d{i}")),
            title: "T".into(),
            source: "t.md".into(),
            page: 1,
            span: Span::new(0, text.len()),
            heading_path: vec![],
            text: text.into(),
            score: 1.0,
            retrievers: dense
                .map(|score| (DENSE.to_string(), RetrieverScore { rank: i + 1, score }))
                .into_iter()
                .collect(),
            rerank: None,
            community: None,
        }
    }

    fn passages(cosines: [f32; 2]) -> Vec<Hit> {
        vec![
            hit(
                0,
                "Close the printer tray and press resume to clear the printer jam.",
                Some(cosines[0]),
            ),
            hit(1, "The printer is in room 4.", Some(cosines[1])),
        ]
    }

    fn abstains(v: &Verdict) -> bool {
        matches!(v, Verdict::Abstain { .. })
    }

    #[test]
    fn nothing_to_quote_or_a_low_confidence_abstains() {
        let cfg = AnswerConfig::default();
        let hits = passages([0.7, 0.3]);
        assert_eq!(
            judge("q", &hits, None, 0.99, &cfg),
            Verdict::Abstain { note: None }
        );
        let low = judge("q", &hits, Some(0.8), cfg.abstain_below - 0.01, &cfg);
        assert!(
            matches!(&low, Verdict::Abstain { note: Some(n) } if n.contains("abstain_below 0.70")),
            "{low:?}"
        );
        assert_eq!(
            judge("q", &hits, Some(0.1), cfg.abstain_below, &cfg),
            Verdict::Answer,
            "the best sentence alone decides nothing by default"
        );
        let strict = AnswerConfig {
            min_score: 0.4,
            ..AnswerConfig::default()
        };
        assert_eq!(
            judge("q", &hits, Some(0.39), 0.99, &strict),
            Verdict::Abstain { note: None }
        );
        assert_eq!(judge("q", &hits, Some(0.4), 0.99, &strict), Verdict::Answer);
    }

    #[test]
    fn passages_far_from_the_question_as_a_whole_abstain_when_asked_to() {
        let q = "how do I clear a printer jam";
        let good = Some(0.8);
        let cfg = AnswerConfig {
            min_dense: 0.45,
            ..AnswerConfig::default()
        };
        assert_eq!(
            judge(q, &passages([0.62, 0.3]), good, 0.99, &cfg),
            Verdict::Answer
        );
        let far = judge(q, &passages([0.41, 0.3]), good, 0.99, &cfg);
        assert!(
            matches!(&far, Verdict::Abstain { note: Some(n) } if n.contains("0.41")),
            "{far:?}"
        );
        // Off by default.
        assert_eq!(
            judge(
                q,
                &passages([0.41, 0.3]),
                good,
                0.99,
                &AnswerConfig::default()
            ),
            Verdict::Answer
        );
        // Questions in CJK script have their own floor, off unless set.
        let cjk = "printer jam 卡纸";
        assert_eq!(
            judge(cjk, &passages([0.41, 0.3]), good, 0.99, &cfg),
            Verdict::Answer
        );
        let higher = AnswerConfig {
            min_dense_cjk: 0.6,
            ..cfg.clone()
        };
        let v = judge(cjk, &passages([0.55, 0.3]), good, 0.99, &higher);
        assert!(matches!(&v, Verdict::Abstain { note: Some(n) } if n.contains("0.60")));
        // Hits without a dense score (bm25 mode) are not judged by it.
        let bm25: Vec<Hit> = passages([0.41, 0.3])
            .into_iter()
            .map(|h| Hit {
                retrievers: Default::default(),
                ..h
            })
            .collect();
        assert_eq!(judge(q, &bm25, good, 0.99, &cfg), Verdict::Answer);
    }

    #[test]
    fn identifiers_the_passages_contain_lift_the_confidence_check() {
        let cfg = AnswerConfig::default();
        let good = Some(0.8);
        let low = cfg.abstain_below - 0.2;
        // "4B" is not in the passages: judged by confidence as before.
        let room = "how do I clear a printer jam in room 4B";
        assert!(abstains(&judge(
            room,
            &passages([0.41, 0.3]),
            good,
            low,
            &cfg
        )));
        let tray = "how do I clear a printer jam in tray T2";
        let with_t2: Vec<Hit> = passages([0.41, 0.3])
            .into_iter()
            .map(|h| Hit {
                text: h.text.replace("printer tray", "printer tray T2"),
                ..h
            })
            .collect();
        assert_eq!(judge(tray, &with_t2, good, low, &cfg), Verdict::Answer);
    }
}
