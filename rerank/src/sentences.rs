//! The sentence reranker: a passage scores the cosine between the query and its sentence
//! closest to it, both embedded by the index's own embedder. A chunk's vector averages
//! everything the chunk says, so a passage whose one line answers the question can sit
//! below a passage that is loosely about the topic throughout; its best sentence does not.
//! It needs no model beyond the embedder, and reads passages without their headings.

use async_trait::async_trait;
use cairn_core::{Embedder, Error, Reranker, Result};
use std::sync::Arc;

/// Reranks by each passage's best sentence in the embedder's space (see the module docs).
pub struct SentenceReranker {
    embedder: Arc<dyn Embedder>,
    model_id: String,
}

impl std::fmt::Debug for SentenceReranker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentenceReranker")
            .field("model_id", &self.model_id)
            .finish_non_exhaustive()
    }
}

impl SentenceReranker {
    pub fn new(embedder: Arc<dyn Embedder>) -> Self {
        let model_id = format!("sentences:{}", embedder.model_id());
        SentenceReranker { embedder, model_id }
    }
}

#[async_trait]
impl Reranker for SentenceReranker {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn reads_headings(&self) -> bool {
        false
    }

    /// The query and every sentence of every passage go to the embedder in one call. A
    /// passage with no sentence (only blanks) scores 0.
    async fn score(&self, query: &str, passages: Vec<String>) -> Result<Vec<f32>> {
        let mut texts = vec![query.to_string()];
        let mut owner = Vec::new();
        for (i, passage) in passages.iter().enumerate() {
            for piece in pieces(passage) {
                texts.push(piece.to_string());
                owner.push(i);
            }
        }
        let count = texts.len();
        let embedded = self.embedder.embed(texts).await?;
        if embedded.vectors.len() != count {
            return Err(Error::internal(format!(
                "the embedder {} returned {} vectors for {count} texts",
                self.embedder.model_id(),
                embedded.vectors.len()
            )));
        }
        let mut vectors = embedded.vectors.iter();
        let query = vectors.next().map(Vec::as_slice).unwrap_or_default();
        let mut best = vec![f32::NEG_INFINITY; passages.len()];
        for (vector, &i) in vectors.zip(&owner) {
            let cosine: f32 = query.iter().zip(vector).map(|(a, b)| a * b).sum();
            best[i] = best[i].max(cosine);
        }
        Ok(best
            .into_iter()
            .map(|s| if s.is_finite() { s } else { 0.0 })
            .collect())
    }
}

/// What the reranker embeds of a passage: its lines (extracted PDF text breaks lines inside
/// sentences, and then a line is the unit), each cut again after a sentence or clause mark
/// followed by white space. Trimmed, never empty.
pub fn pieces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut start = 0;
        let mut chars = line.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let ends = matches!(c, '.' | '!' | '?' | ';' | ':' | '。' | '！' | '？' | '；');
            if ends && chars.peek().is_some_and(|(_, next)| next.is_whitespace()) {
                let end = i + c.len_utf8();
                out.push(&line[start..end]);
                start = end;
            }
        }
        out.push(&line[start..]);
    }
    out.into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::{Embedded, TokenCounter};
    use std::sync::Mutex;

    #[test]
    fn pieces_are_lines_cut_after_sentence_marks() {
        let text =
            "Press Ctrl-Alt-F3. Then log in;  type reset\nto fix it: done\n\n  \nv1.2 is out";
        assert_eq!(
            pieces(text),
            [
                "Press Ctrl-Alt-F3.",
                "Then log in;",
                "type reset",
                "to fix it:",
                "done",
                "v1.2 is out"
            ]
        );
        assert_eq!(pieces("完成。 下一步"), ["完成。", "下一步"]);
        assert!(pieces(" \n ").is_empty());
    }

    /// Embeds a text as the counts of three words, normalised: transparent enough to check
    /// the reranker's arithmetic, and it records what it was asked to embed.
    struct Words(Mutex<Vec<Vec<String>>>);
    impl TokenCounter for Words {
        fn count_tokens(&self, text: &str) -> usize {
            text.split_whitespace().count()
        }
    }
    #[async_trait]
    impl Embedder for Words {
        fn model_id(&self) -> &str {
            "words"
        }
        fn dims(&self) -> usize {
            3
        }
        fn max_tokens(&self) -> usize {
            100
        }
        async fn embed(&self, texts: Vec<String>) -> Result<Embedded> {
            self.0.lock().unwrap().push(texts.clone());
            let vectors = texts
                .iter()
                .map(|t| {
                    let v: Vec<f32> = ["vpn", "key", "disk"]
                        .iter()
                        .map(|w| t.matches(w).count() as f32)
                        .collect();
                    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
                    v.into_iter().map(|x| x / n).collect()
                })
                .collect();
            let truncated = vec![false; texts.len()];
            Ok(Embedded { vectors, truncated })
        }
    }

    #[tokio::test]
    async fn a_passage_scores_its_best_sentence_in_one_embedding_call() {
        let words = Arc::new(Words(Mutex::new(Vec::new())));
        let reranker = SentenceReranker::new(words.clone());
        assert_eq!(reranker.model_id(), "sentences:words");
        assert!(!reranker.reads_headings());
        let passages = vec![
            // the whole passage is mostly about disks; one sentence is exactly the query
            "disk disk disk. disk quotas. rotate the vpn key".to_string(),
            "vpn disk".to_string(),
            "   ".to_string(),
        ];
        let scores = reranker.score("vpn key", passages).await.unwrap();
        let calls = words.0.lock().unwrap().clone();
        assert_eq!(calls.len(), 1, "one call for the query and all sentences");
        assert_eq!(
            calls[0],
            [
                "vpn key",
                "disk disk disk.",
                "disk quotas.",
                "rotate the vpn key",
                "vpn disk"
            ]
        );
        assert!((scores[0] - 1.0).abs() < 1e-6, "{scores:?}");
        assert!((scores[1] - 0.5).abs() < 1e-6, "{scores:?}");
        assert_eq!(scores[2], 0.0);
    }
}
