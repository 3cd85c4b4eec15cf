//! `cairn-generate`: answers drawn from retrieved passages, each sentence citing the exact
//! passage (document, page, byte span) behind it, and an honest abstention when the
//! passages do not answer.
//!
//! - [`extractive`]: the answerer with no language model, which scores the passages'
//!   sentences against the question and quotes the best, so every claim is verbatim from a
//!   document;
//! - [`generated`]: a language model ([`cairn_core::Generator`]: the local engine of
//!   `cairn-infer`, or [`OpenAiGenerator`]) writes the answer from numbered passages;
//! - [`verify`]: the `[n]` markers of generated text parsed and checked, each sentence scored
//!   against the passages it cites.

pub mod extractive;
pub mod generated;
pub mod openai;
mod terms;
pub mod verify;

pub use extractive::{ABSTAIN_TEXT, Scored, abstention, quote, score};
pub use generated::generated;
pub use openai::OpenAiGenerator;
pub use terms::{capitalised_names, identifiers, is_cjk, latin_names, question_names};

/// The embedding of one text (tests: the question as a search would have embedded it).
#[cfg(test)]
pub(crate) async fn test_vector(embedder: &dyn cairn_core::Embedder, text: &str) -> Vec<f32> {
    embedder
        .embed(vec![text.to_string()])
        .await
        .unwrap()
        .vectors
        .remove(0)
}

/// An embedder for unit tests: a text's vector counts a few vocabulary words, normalised,
/// so texts on the same topic point the same way.
#[cfg(test)]
pub(crate) struct BagOfWords(pub &'static [&'static str]);

#[cfg(test)]
impl cairn_core::TokenCounter for BagOfWords {
    fn count_tokens(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }
}

#[cfg(test)]
#[async_trait::async_trait]
impl cairn_core::Embedder for BagOfWords {
    fn model_id(&self) -> &str {
        "bag-of-words"
    }
    fn dims(&self) -> usize {
        self.0.len()
    }
    fn max_tokens(&self) -> usize {
        512
    }
    async fn embed(&self, texts: Vec<String>) -> cairn_core::Result<cairn_core::Embedded> {
        let vectors: Vec<Vec<f32>> = texts
            .iter()
            .map(|t| {
                let t = t.to_lowercase();
                let v: Vec<f32> = self.0.iter().map(|w| t.matches(w).count() as f32).collect();
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
                v.into_iter().map(|x| x / n).collect()
            })
            .collect();
        Ok(cairn_core::Embedded {
            truncated: vec![false; vectors.len()],
            vectors,
        })
    }
}
