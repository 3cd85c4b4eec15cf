//! The shapes of an answer: what `POST /v1/ask` and `cairn ask` take and give back. Every
//! sentence of an answer names the passages behind it, and every citation names the exact
//! passage: document, page and byte span, with the quoted text.

use crate::{ChunkId, DocId, Hit, SearchFilter, SearchMode, Span};
use serde::{Deserialize, Serialize};

/// A question as the API and CLI take it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AskRequest {
    pub question: String,
    /// Passages retrieved to answer from; `None`: the configured default.
    #[serde(default)]
    pub top_k: Option<usize>,
    /// Rerank the retrieved passages first; `None`: the configured default.
    #[serde(default)]
    pub rerank: Option<bool>,
    #[serde(default)]
    pub filter: SearchFilter,
    /// The retrievers that find the passages (as in `POST /v1/search`).
    #[serde(default)]
    pub mode: SearchMode,
    /// Answer as Server-Sent Events (`retrieval`, `token`, `citation`, `done`, `error`)
    /// instead of one JSON body.
    #[serde(default)]
    pub stream: bool,
}

/// One passage an answer cites: `[n]` in the answer text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Citation {
    /// The marker number, 1-based.
    pub n: usize,
    pub chunk_id: ChunkId,
    pub doc_id: DocId,
    pub title: String,
    pub source: String,
    pub page: u32,
    /// Byte range of `quote` in the document's extracted text.
    pub span: Span,
    /// The cited words, exactly as they stand in the document.
    pub quote: String,
}

/// One sentence of an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AnswerSentence {
    pub text: String,
    /// The `n` of each citation behind it.
    pub citations: Vec<usize>,
    /// How well its citations support it, 0..=1 (1 for a verbatim quote).
    pub support: f32,
    /// How well it matches the question, 0..=1.
    pub relevance: f32,
    /// Whether its support reaches `[generate] min_support`. Generated sentences below it
    /// are flagged (or dropped with `drop_unsupported`); quotes are always supported.
    #[serde(default = "supported_default")]
    pub supported: bool,
    /// With `[generate] entailment`, the language model's judgment of whether the cited
    /// passages entail the sentence (`None` when it was not asked or gave no clear answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entailed: Option<bool>,
    /// The model cited nothing here; cairn cited the passage that supports the sentence
    /// best (`[generate] attribute`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub attributed: bool,
}

fn supported_default() -> bool {
    true
}

/// How an answer was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AnswerMode {
    /// The best sentences of the passages, quoted (no language model).
    Extractive,
    /// Written by a language model from the numbered passages, its `[n]` citations checked.
    Generated,
}

/// The measurements an answer's confidence is computed from, for this question and the
/// passages the caller may read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AnswerSignals {
    /// The best sentence of the passages read, 0..=1: 0.75 × its embedding cosine with the
    /// question + 0.25 × the share of the question's terms it contains.
    pub best_sentence: f32,
    /// The best dense-retriever score (embedding cosine) among the retrieved passages;
    /// `None` when none has one (`bm25` mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closest_dense: Option<f32>,
    /// The answerability judge's best score among the passages read (`[answer] judge`: a
    /// cross-encoder's logit, or a language model's P("yes") that the passage answers the
    /// question); `None` when no judge is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<f32>,
}

/// An answer with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Answer {
    /// The answer text with `[n]` markers, or the statement that the documents do not
    /// answer the question.
    pub answer: String,
    pub sentences: Vec<AnswerSentence>,
    pub citations: Vec<Citation>,
    /// The support of the answer as a whole, 0..=1 (0 when abstained).
    pub grounding: f32,
    /// How likely it is, 0..=1, that the passages answer the question: the calibrated
    /// model of `[answer.calibration]` over [`Answer::signals`].
    pub confidence: f32,
    /// What `confidence` was computed from.
    #[serde(default)]
    pub signals: AnswerSignals,
    /// The answer should be checked by a person before it is relied on; `review_reason`
    /// says why (a confidence below `[answer] review_below`, sentences their citations do
    /// not support, …). Never set on an abstention.
    #[serde(default)]
    pub needs_review: bool,
    /// Why `needs_review` is set, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_reason: Option<String>,
    /// The documents do not answer the question; `passages` holds the closest ones.
    pub abstained: bool,
    /// The passages the answer was drawn from (when abstained: the closest ones).
    pub passages: Vec<Hit>,
    pub mode: AnswerMode,
    /// The generator that wrote the answer (`None` for extractive answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Generated sentences whose citations do not support them (flagged, or dropped with
    /// `[generate] drop_unsupported`).
    #[serde(default)]
    pub unsupported: usize,
    /// `[n]` markers of the generated text that named no passage, removed.
    #[serde(default)]
    pub dropped_citations: usize,
    /// Why the answer is not what was asked for, when it is not: e.g. a generated answer
    /// that its passages did not support, replaced by quotes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub took_ms: f64,
}
