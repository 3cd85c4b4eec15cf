//! Scoring prompts by the model's next-token choice between two answers, and the reranking
//! prompt built on it.
//!
//! A reranking prompt asks, through the model's own chat template, whether a passage answers
//! a query and ends where the assistant's answer starts. The score is the model's
//! probability of answering "yes" rather than "no": the softmax over just those two tokens'
//! logits at the last position, `sigmoid(logit_yes - logit_no)`. Prompts are batched by
//! length (sorted, then cut into batches) so that little padding is computed; scores come
//! back in the callers' order.

use std::path::Path;

use candle_core::{Device, Tensor};

use super::model::{Batch, DecoderModel, WeightFormat};
use super::template::{ChatMessage, ChatTemplate, Role};
use super::tokenizer::GgufTokenizer;
use crate::error::{LlmError, Result};

/// Passages are cut to this many tokens by default.
pub const DEFAULT_MAX_PASSAGE_TOKENS: usize = 384;
/// Queries are cut to this many tokens by default.
pub const DEFAULT_MAX_QUERY_TOKENS: usize = 128;

/// The default instruction of the reranking prompt.
pub const DEFAULT_RERANK_INSTRUCTION: &str = "You judge search results. Read the query and \
the passage, then decide whether the passage answers the query. Reply with one word: \
\"yes\" if it does, \"no\" if it does not.";

/// How [`LlmScorer::rerank_prompt`] words and bounds a (query, passage) prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RerankPrompt {
    /// The system message.
    pub instruction: String,
    /// The query is cut to this many tokens.
    pub max_query_tokens: usize,
    /// The passage is cut to this many tokens.
    pub max_passage_tokens: usize,
}

impl Default for RerankPrompt {
    fn default() -> Self {
        Self {
            instruction: DEFAULT_RERANK_INSTRUCTION.to_string(),
            max_query_tokens: DEFAULT_MAX_QUERY_TOKENS,
            max_passage_tokens: DEFAULT_MAX_PASSAGE_TOKENS,
        }
    }
}

/// A decoder LM with its tokenizer and chat template, used to score prompts.
#[derive(Debug)]
pub struct LlmScorer {
    model: DecoderModel,
    tokenizer: GgufTokenizer,
    template: ChatTemplate,
}

impl LlmScorer {
    /// Loads model, tokenizer and chat template from one GGUF file (or the folder holding
    /// it) onto `device`, weight matrices in `format`.
    pub fn load(path: &Path, device: &Device, format: WeightFormat) -> Result<Self> {
        let (model, tokenizer, template) = super::load_parts(path, device, format)?;
        Ok(Self::new(model, tokenizer, template))
    }

    /// Bundles parts loaded separately.
    pub fn new(model: DecoderModel, tokenizer: GgufTokenizer, template: ChatTemplate) -> Self {
        Self {
            model,
            tokenizer,
            template,
        }
    }

    /// The model.
    pub fn model(&self) -> &DecoderModel {
        &self.model
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &GgufTokenizer {
        &self.tokenizer
    }

    /// The chat template.
    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// Token ids of a rendered prompt: [`GgufTokenizer::encode_prompt`].
    pub fn encode_prompt(&self, prompt: &str) -> Result<Vec<u32>> {
        self.tokenizer.encode_prompt(prompt)
    }

    /// The chat prompt asking whether `passage` answers `query`, ending where the assistant's
    /// answer starts. Query and passage are cut to their token budgets and cleared of
    /// control-token texts, so the prompt keeps its shape whatever they hold.
    pub fn rerank_prompt(&self, query: &str, passage: &str, opts: &RerankPrompt) -> Result<String> {
        let query = self.tokenizer.strip_special(query);
        let passage = self.tokenizer.strip_special(passage);
        let (query, _) = self.tokenizer.truncate(&query, opts.max_query_tokens)?;
        let (passage, _) = self.tokenizer.truncate(&passage, opts.max_passage_tokens)?;
        let user = format!(
            "Query: {}\nPassage: {}\nDoes the passage answer the query?",
            query.trim(),
            passage.trim()
        );
        self.template.render(
            &[
                ChatMessage::new(Role::System, opts.instruction.as_str()),
                ChatMessage::new(Role::User, user),
            ],
            true,
        )
    }

    /// Relevance of each passage to `query`: P("yes") of [`LlmScorer::rerank_prompt`], in
    /// the passages' order.
    pub fn rerank<P: AsRef<str>>(
        &self,
        query: &str,
        passages: &[P],
        opts: &RerankPrompt,
        batch_size: usize,
    ) -> Result<Vec<f32>> {
        let prompts = passages
            .iter()
            .map(|p| self.rerank_prompt(query, p.as_ref(), opts))
            .collect::<Result<Vec<_>>>()?;
        self.score_yes_no(&prompts, "yes", "no", batch_size)
    }

    /// For each prompt, `P(yes) / (P(yes) + P(no))` of the next token: the softmax over the
    /// logits of the two answer tokens. `yes` and `no` must each be one token (as the model
    /// would write them right after the prompt). Prompts run `batch_size` at a time, grouped
    /// by length; scores come back in the prompts' order.
    pub fn score_yes_no(
        &self,
        prompts: &[String],
        yes: &str,
        no: &str,
        batch_size: usize,
    ) -> Result<Vec<f32>> {
        if batch_size == 0 {
            return Err(LlmError::InvalidSetting(
                "batch size must be at least 1".into(),
            ));
        }
        let yes_id = self.single_token(yes)?;
        let no_id = self.single_token(no)?;
        let encoded = prompts
            .iter()
            .map(|p| self.encode_prompt(p))
            .collect::<Result<Vec<_>>>()?;
        let device = self.model.device();
        let answers = Tensor::new(&[yes_id, no_id], device)?;

        let mut order: Vec<usize> = (0..encoded.len()).collect();
        order.sort_by_key(|&i| encoded[i].len());
        let mut scores = vec![0f32; encoded.len()];
        for chunk in order.chunks(batch_size) {
            let seqs: Vec<&[u32]> = chunk.iter().map(|&i| encoded[i].as_slice()).collect();
            let batch = Batch::new(&seqs)?;
            let logits = self.model.forward_last(&batch)?;
            let pairs: Vec<Vec<f32>> = logits.index_select(&answers, 1)?.to_vec2()?;
            for (&i, pair) in chunk.iter().zip(pairs) {
                scores[i] = yes_probability(pair[0], pair[1]);
            }
        }
        Ok(scores)
    }

    fn single_token(&self, word: &str) -> Result<u32> {
        match self.tokenizer.encode(word, false)?.as_slice() {
            [id] => Ok(*id),
            ids => Err(LlmError::InvalidSetting(format!(
                "the answer {word:?} is {} tokens for this model; answers must be one token",
                ids.len()
            ))),
        }
    }
}

/// The softmax probability of the first of two logits.
fn yes_probability(yes: f32, no: f32) -> f32 {
    1.0 / (1.0 + (no - yes).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_way_softmax() {
        assert!((yes_probability(0.0, 0.0) - 0.5).abs() < 1e-7);
        let p = yes_probability(2.0, -1.0);
        let want = 2f32.exp() / (2f32.exp() + (-1f32).exp());
        assert!((p - want).abs() < 1e-6, "{p} vs {want}");
        assert!(yes_probability(-100.0, 100.0) < 1e-30);
        assert!((yes_probability(100.0, -100.0) - 1.0).abs() < 1e-7);
    }
}
