//! Rerankers on their own thread: a BERT cross-encoder ([`CrossEncoder`]) or a decoder LM
//! asked whether each passage answers the query ([`LlmScorer`]). One OS thread owns the
//! model; [`RerankWorker`] is the cloneable handle that implements
//! [`cairn_core::Reranker`], taking one request (a query and its candidates, scored in
//! batches) at a time from a bounded queue.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use cairn_core::Reranker;
use candle_core::Device;
use tokio::sync::{mpsc, oneshot};

use crate::cross::CrossEncoder;
use crate::error::{InferError, Result};
use cairn_llm::{LlmScorer, RerankPrompt, WeightFormat};

/// Scores (query, passage) pairs, synchronously, on the thread that owns the model.
pub trait PairScorer: Send + 'static {
    fn score(&mut self, query: &str, passages: &[String]) -> Result<Vec<f32>>;
}

impl PairScorer for CrossEncoder {
    fn score(&mut self, query: &str, passages: &[String]) -> Result<Vec<f32>> {
        let refs: Vec<&str> = passages.iter().map(String::as_str).collect();
        self.score_pairs(query, &refs)
    }
}

/// An LLM reranker: the model, its prompt and how many prompts go in one forward pass.
pub struct LlmReranker {
    pub scorer: LlmScorer,
    pub prompt: RerankPrompt,
    pub batch_size: usize,
}

impl PairScorer for LlmReranker {
    fn score(&mut self, query: &str, passages: &[String]) -> Result<Vec<f32>> {
        Ok(self
            .scorer
            .rerank(query, passages, &self.prompt, self.batch_size)?)
    }
}

struct Request {
    query: String,
    passages: Vec<String>,
    reply: oneshot::Sender<Result<Vec<f32>>>,
}

/// Handle to a reranker running on its own thread; the thread stops with the last handle.
#[derive(Clone)]
pub struct RerankWorker {
    tx: mpsc::Sender<Request>,
    model_id: Arc<str>,
}

impl std::fmt::Debug for RerankWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RerankWorker")
            .field("model_id", &self.model_id)
            .finish_non_exhaustive()
    }
}

impl RerankWorker {
    /// Starts a thread that owns `scorer`; up to `queue` requests wait (callers wait when
    /// the queue is full).
    pub fn spawn(mut scorer: impl PairScorer, model_id: String, queue: usize) -> RerankWorker {
        let (tx, mut rx) = mpsc::channel::<Request>(queue.max(1));
        std::thread::Builder::new()
            .name("cairn-rerank".into())
            .spawn(move || {
                while let Some(req) = rx.blocking_recv() {
                    let scored =
                        catch_unwind(AssertUnwindSafe(|| scorer.score(&req.query, &req.passages)))
                            .unwrap_or_else(|panic| {
                                Err(InferError::WorkerFailed(format!(
                                    "the reranker panicked: {}",
                                    cairn_core::panic_message(panic.as_ref())
                                )))
                            });
                    // The caller may have gone away; nothing to do then.
                    let _ = req.reply.send(scored);
                }
            })
            .expect("spawning the reranker thread");
        RerankWorker {
            tx,
            model_id: model_id.into(),
        }
    }
}

#[async_trait]
impl Reranker for RerankWorker {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    async fn score(&self, query: &str, passages: Vec<String>) -> cairn_core::Result<Vec<f32>> {
        if passages.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        let req = Request {
            query: query.to_string(),
            passages,
            reply,
        };
        let stopped = || InferError::WorkerFailed("the reranker thread stopped".into());
        self.tx.send(req).await.map_err(|_| stopped())?;
        Ok(answer.await.map_err(|_| stopped())??)
    }
}

/// Loads the reranker in `path` and starts its worker: a folder (or file) with a `.gguf`
/// model is an LLM reranker, a folder with `config.json` and `model.safetensors` a BERT
/// cross-encoder. `max_passage_tokens` bounds what the model reads of each passage.
pub fn load_reranker(
    path: &Path,
    device: &Device,
    batch_size: usize,
    max_passage_tokens: usize,
) -> cairn_core::Result<Arc<dyn Reranker>> {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let is_gguf = path.extension().is_some_and(|e| e == "gguf")
        || std::fs::read_dir(path).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "gguf"))
        });
    let worker = if is_gguf {
        // The generator's formats: cairn's own kernels on a CPU, the file's types on a GPU.
        let scorer = LlmScorer::load(path, device, WeightFormat::for_device(device))?;
        let prompt = RerankPrompt {
            max_passage_tokens,
            ..RerankPrompt::default()
        };
        let id = format!("llm:{name}:yes-no-v1:{max_passage_tokens}");
        let llm = LlmReranker {
            scorer,
            prompt,
            batch_size: batch_size.max(1),
        };
        RerankWorker::spawn(llm, id, 16)
    } else {
        let cross = CrossEncoder::load(path, device, max_passage_tokens.max(16))?
            .with_batch_size(batch_size.max(1));
        let id = format!("cross:{}", cross.model_id());
        RerankWorker::spawn(cross, id, 16)
    };
    Ok(Arc::new(worker))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Lengths;
    impl PairScorer for Lengths {
        fn score(&mut self, query: &str, passages: &[String]) -> Result<Vec<f32>> {
            if query == "boom" {
                panic!("model exploded");
            }
            Ok(passages.iter().map(|p| p.len() as f32).collect())
        }
    }

    #[tokio::test]
    async fn the_worker_scores_in_order_and_survives_a_panic() {
        let w = RerankWorker::spawn(Lengths, "lengths".into(), 2);
        let scores = w.score("q", vec!["abc".into(), "a".into()]).await.unwrap();
        assert_eq!(scores, [3.0, 1.0]);
        let err = w.score("boom", vec!["a".into()]).await.unwrap_err();
        assert!(err.message.contains("model exploded"), "{}", err.message);
        // the thread is still there for the next request
        assert_eq!(w.score("q", vec!["ab".into()]).await.unwrap(), [2.0]);
        assert_eq!(w.model_id(), "lengths");
    }

    #[test]
    fn a_missing_reranker_folder_is_a_user_error() {
        let err = load_reranker(Path::new("/no/such/reranker"), &Device::Cpu, 4, 128)
            .err()
            .expect("missing folder");
        assert_eq!(err.kind, cairn_core::ErrorKind::User);
        assert!(err.message.contains("/no/such/reranker"), "{}", err.message);
    }
}
