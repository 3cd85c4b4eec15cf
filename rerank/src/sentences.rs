//! The sentence reranker: a passage scores the cosine between the query and its sentence
//! closest to it, both embedded by the index's own embedder. A chunk's vector averages
//! everything the chunk says, so a passage whose one line answers the question can sit
//! below a passage that is loosely about the topic throughout; its best sentence does not.
//! It needs no model beyond the embedder, and reads passages without their headings. The
//! pieces' vectors are read from the catalog where ingest stored them (`[chunk]
//! piece_vectors`); the pieces of other passages are embedded at query time.

use async_trait::async_trait;
use cairn_core::{Catalog, Embedder, Hit, Reranker, Result, embed_pieces};
use std::sync::Arc;

/// Reranks by each passage's best sentence in the embedder's space (see the module docs).
pub struct SentenceReranker {
    embedder: Arc<dyn Embedder>,
    catalog: Option<Arc<dyn Catalog>>,
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
        SentenceReranker {
            embedder,
            catalog: None,
            model_id,
        }
    }

    /// Reads the piece vectors that ingest stored with the chunks from `catalog` (which
    /// must hold vectors of this reranker's embedder).
    pub fn with_catalog(mut self, catalog: Arc<dyn Catalog>) -> Self {
        self.catalog = Some(catalog);
        self
    }

    /// Each passage's best cosine with `query`: over `stored[i]` (piece vectors one after
    /// another) where given, else over the pieces of `texts[i]`, which are embedded with
    /// the query in one call (the query only when its vector is not given). A passage
    /// with no piece scores 0.
    async fn best(
        &self,
        query: &str,
        query_vector: Option<&[f32]>,
        texts: &[&str],
        stored: &[Option<&[f32]>],
    ) -> Result<Vec<f32>> {
        let missing: Vec<Option<&str>> = texts
            .iter()
            .zip(stored)
            .map(|(text, s)| s.is_none().then_some(*text))
            .collect();
        let given = query_vector.filter(|v| v.len() == self.embedder.dims());
        let extra = match given {
            Some(_) => Vec::new(),
            None => vec![query.to_string()],
        };
        let (embedded_query, fresh) = embed_pieces(&*self.embedder, extra, &missing).await?;
        let query = given
            .or_else(|| embedded_query.first().map(Vec::as_slice))
            .unwrap_or_default();
        tracing::debug!(
            passages = texts.len(),
            stored = stored.iter().filter(|s| s.is_some()).count(),
            embedded = fresh.iter().map(Vec::len).sum::<usize>() / query.len().max(1),
            "sentence rerank: passages with stored piece vectors, pieces embedded now"
        );
        Ok(stored
            .iter()
            .zip(&fresh)
            .map(|(s, fresh)| {
                s.unwrap_or(fresh)
                    .chunks_exact(query.len().max(1))
                    .map(|v| query.iter().zip(v).map(|(a, b)| a * b).sum::<f32>())
                    .fold(f32::NEG_INFINITY, f32::max)
            })
            .map(|best| if best.is_finite() { best } else { 0.0 })
            .collect())
    }
}

#[async_trait]
impl Reranker for SentenceReranker {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    async fn score(&self, query: &str, passages: Vec<String>) -> Result<Vec<f32>> {
        let texts: Vec<&str> = passages.iter().map(String::as_str).collect();
        self.best(query, None, &texts, &vec![None; texts.len()])
            .await
    }

    /// Reads the hits' text (no headings), and their stored piece vectors where the catalog
    /// has them (of the embedder's length; anything else is embedded again).
    async fn score_hits(
        &self,
        query: &str,
        query_vector: Option<&[f32]>,
        hits: &[Hit],
    ) -> Result<Vec<f32>> {
        let stored = match &self.catalog {
            Some(catalog) => {
                let ids: Vec<_> = hits.iter().map(|h| h.chunk_id).collect();
                catalog.piece_vectors(&ids).await?
            }
            None => Default::default(),
        };
        let dims = self.embedder.dims().max(1);
        let flat: Vec<Option<&[f32]>> = hits
            .iter()
            .map(|h| {
                stored
                    .get(&h.chunk_id)
                    .map(Vec::as_slice)
                    .filter(|v| !v.is_empty() && v.len() % dims == 0)
            })
            .collect();
        let texts: Vec<&str> = hits.iter().map(|h| h.text.as_str()).collect();
        self.best(query, query_vector, &texts, &flat).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::{Embedded, TokenCounter};
    use std::sync::Mutex;

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

    #[tokio::test]
    async fn stored_piece_vectors_are_read_instead_of_embedded() {
        let words = Arc::new(Words(Mutex::new(Vec::new())));
        let reranker = SentenceReranker::new(words.clone());
        let r = std::f32::consts::FRAC_1_SQRT_2;
        // passage 0's two stored pieces are "disk" and "vpn key" (its text says otherwise,
        // and is not read); passages 1 and 2 have none stored
        let stored_0 = [0.0, 0.0, 1.0, r, r, 0.0];
        let texts = ["disk disk", "vpn disk", "vpn key"];
        let stored = [Some(&stored_0[..]), None, None];
        let scores = reranker
            .best("vpn key", None, &texts, &stored)
            .await
            .unwrap();
        assert!((scores[0] - 1.0).abs() < 1e-6, "{scores:?}");
        assert!((scores[1] - 0.5).abs() < 1e-6, "{scores:?}");
        assert!((scores[2] - 1.0).abs() < 1e-6, "{scores:?}");
        assert_eq!(
            words.0.lock().unwrap().clone(),
            [["vpn key", "vpn disk", "vpn key"]],
            "only the query and the passages without stored vectors are embedded"
        );
        // Given the query's vector (from the search), the query is not embedded again.
        words.0.lock().unwrap().clear();
        let q = [r, r, 0.0];
        let again = reranker
            .best("vpn key", Some(&q[..]), &texts, &stored)
            .await
            .unwrap();
        assert_eq!(again, scores);
        assert_eq!(
            words.0.lock().unwrap().clone(),
            [["vpn disk", "vpn key"]],
            "only the passages are embedded"
        );
    }
}
