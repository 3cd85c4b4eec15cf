//! The embedding worker: one OS thread owns the model and its device, and takes requests from
//! a bounded channel. Requests waiting in the queue are merged into one batch (up to
//! `batch_size` texts) so that concurrent callers share forward passes.
//!
//! [`EmbedWorker`] is the cheap, cloneable handle that implements [`cairn_core::Embedder`];
//! the thread stops when the last handle is dropped. A failure never panics the caller: a
//! stopped or panicking worker is reported as an [`cairn_core::ErrorKind::Internal`] error.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use async_trait::async_trait;
use cairn_core::{Embedded, Embedder, TokenCounter};
use tokio::sync::{mpsc, oneshot};

use crate::bert::BertEncoder;
use crate::error::{InferError, Result};

type Vectors = (Vec<Vec<f32>>, Vec<bool>);

/// One caller's texts and where to send their vectors.
struct Request {
    texts: Vec<String>,
    reply: oneshot::Sender<Result<Vectors>>,
}

/// What the handle answers without asking the worker.
struct ModelInfo {
    model_id: String,
    dims: usize,
    max_tokens: usize,
    counter: Arc<dyn TokenCounter>,
}

struct Shared {
    tx: mpsc::Sender<Request>,
    info: ModelInfo,
}

/// Handle to a model running on its own thread. Clone it freely; all clones share the worker.
#[derive(Clone)]
pub struct EmbedWorker {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EmbedWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbedWorker")
            .field("model_id", &self.shared.info.model_id)
            .field("dims", &self.shared.info.dims)
            .field("max_tokens", &self.shared.info.max_tokens)
            .finish_non_exhaustive()
    }
}

impl EmbedWorker {
    /// Starts a thread that owns `encoder`. Up to `queue` requests wait in the channel
    /// (callers wait when it is full); the worker merges waiting requests into batches of up
    /// to `batch_size` texts. Both are raised to at least 1.
    pub fn spawn(encoder: BertEncoder, batch_size: usize, queue: usize) -> EmbedWorker {
        let batch_size = batch_size.max(1);
        let encoder = encoder.with_batch_size(batch_size);
        let counter: Arc<dyn TokenCounter> = Arc::new(encoder.counter());
        let (model_id, dims, max_tokens) = (
            encoder.model_id().to_string(),
            encoder.dims(),
            encoder.max_tokens(),
        );
        Self::spawn_with(
            move |texts: &[String]| encoder.encode_batch(texts),
            batch_size,
            queue,
            ModelInfo {
                model_id,
                dims,
                max_tokens,
                counter,
            },
        )
    }

    /// Starts the worker loop around any batch encoder.
    fn spawn_with<F>(encode: F, batch_size: usize, queue: usize, info: ModelInfo) -> Self
    where
        F: FnMut(&[String]) -> Result<Vectors> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let spawned = std::thread::Builder::new()
            .name("cairn-embed".into())
            .spawn(move || run(encode, rx, batch_size.max(1)));
        if let Err(err) = spawned {
            // The receiver went down with the closure: every request reports the worker gone.
            tracing::error!(error = %err, "cannot start the embedding worker thread");
        }
        EmbedWorker {
            shared: Arc::new(Shared { tx, info }),
        }
    }

    /// Embeds `texts` and returns the crate's own error (see [`Embedder::embed`]).
    pub async fn embed_texts(&self, texts: Vec<String>) -> Result<Vectors> {
        if texts.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let (reply, answer) = oneshot::channel();
        self.shared
            .tx
            .send(Request { texts, reply })
            .await
            .map_err(|_| InferError::WorkerGone)?;
        answer.await.map_err(|_| InferError::WorkerGone)?
    }
}

impl TokenCounter for EmbedWorker {
    fn count_tokens(&self, text: &str) -> usize {
        self.shared.info.counter.count_tokens(text)
    }
}

#[async_trait]
impl Embedder for EmbedWorker {
    fn model_id(&self) -> &str {
        &self.shared.info.model_id
    }

    fn dims(&self) -> usize {
        self.shared.info.dims
    }

    fn max_tokens(&self) -> usize {
        self.shared.info.max_tokens
    }

    async fn embed(&self, texts: Vec<String>) -> cairn_core::Result<Embedded> {
        let (vectors, truncated) = self.embed_texts(texts).await?;
        Ok(Embedded { vectors, truncated })
    }
}

/// The worker loop: ends when every sender (handle) is gone.
fn run<F>(mut encode: F, mut rx: mpsc::Receiver<Request>, batch_size: usize)
where
    F: FnMut(&[String]) -> Result<Vectors>,
{
    let mut held: Option<Request> = None;
    loop {
        let first = match held.take() {
            Some(request) => request,
            None => match rx.blocking_recv() {
                Some(request) => request,
                None => break,
            },
        };
        let mut count = first.texts.len();
        let mut batch = vec![first];
        while count < batch_size {
            match rx.try_recv() {
                Ok(request) if count + request.texts.len() > batch_size => {
                    held = Some(request);
                    break;
                }
                Ok(request) => {
                    count += request.texts.len();
                    batch.push(request);
                }
                Err(_) => break,
            }
        }
        // Callers that gave up (dropped their future) need no work.
        batch.retain(|request| !request.reply.is_closed());
        metrics::gauge!("cairn_embed_queue_depth").set(rx.len() as f64);
        if !batch.is_empty() {
            metrics::histogram!("cairn_embed_batch_texts")
                .record(batch.iter().map(|r| r.texts.len()).sum::<usize>() as f64);
            serve(&mut encode, batch);
        }
    }
    tracing::debug!("embedding worker stopped");
}

/// Encodes the texts of `batch` together and answers each request with its own slice. If the
/// joint batch fails, each request is retried alone so one bad input fails only its caller.
fn serve<F>(encode: &mut F, batch: Vec<Request>)
where
    F: FnMut(&[String]) -> Result<Vectors>,
{
    if batch.len() == 1 {
        for Request { texts, reply } in batch {
            let _ = reply.send(guarded(encode, &texts));
        }
        return;
    }
    let mut lens = Vec::with_capacity(batch.len());
    let mut replies = Vec::with_capacity(batch.len());
    let mut texts = Vec::new();
    for request in batch {
        lens.push(request.texts.len());
        replies.push(request.reply);
        texts.extend(request.texts);
    }
    match guarded(encode, &texts) {
        Ok((vectors, truncated)) => {
            let mut vectors = vectors.into_iter();
            let mut truncated = truncated.into_iter();
            for (len, reply) in lens.into_iter().zip(replies) {
                let mine = (
                    vectors.by_ref().take(len).collect(),
                    truncated.by_ref().take(len).collect(),
                );
                let _ = reply.send(Ok(mine));
            }
        }
        Err(err) => {
            tracing::warn!(error = %err, "joint embedding batch failed; retrying requests one by one");
            let mut texts = texts.into_iter();
            for (len, reply) in lens.into_iter().zip(replies) {
                let mine: Vec<String> = texts.by_ref().take(len).collect();
                let _ = reply.send(guarded(encode, &mine));
            }
        }
    }
}

/// Runs `encode`, turning a panic into an error so the worker keeps serving.
fn guarded<F>(encode: &mut F, texts: &[String]) -> Result<Vectors>
where
    F: FnMut(&[String]) -> Result<Vectors>,
{
    let result = catch_unwind(AssertUnwindSafe(|| encode(texts))).unwrap_or_else(|payload| {
        let message = cairn_core::panic_message(payload.as_ref());
        tracing::error!(panic = %message, "the embedding model panicked");
        Err(InferError::WorkerFailed(format!(
            "the model panicked: {message}"
        )))
    });
    if let Ok((vectors, truncated)) = &result
        && (vectors.len() != texts.len() || truncated.len() != texts.len())
    {
        return Err(InferError::WorkerFailed(format!(
            "encoder returned {} vectors for {} texts",
            vectors.len(),
            texts.len()
        )));
    }
    result
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use cairn_core::ErrorKind;

    use super::*;

    struct Words;
    impl TokenCounter for Words {
        fn count_tokens(&self, text: &str) -> usize {
            text.split_whitespace().count()
        }
    }

    fn info() -> ModelInfo {
        ModelInfo {
            model_id: "fake@00000000".into(),
            dims: 1,
            max_tokens: 4,
            counter: Arc::new(Words),
        }
    }

    /// A fake encoder: the vector of a text is its length; "bad" fails, "boom" panics.
    /// Records the size of every batch it sees, and waits a little so requests pile up.
    fn fake(batches: Arc<Mutex<Vec<usize>>>) -> impl FnMut(&[String]) -> Result<Vectors> + Send {
        move |texts: &[String]| {
            batches.lock().expect("lock").push(texts.len());
            std::thread::sleep(Duration::from_millis(20));
            if texts.iter().any(|t| t == "boom") {
                panic!("boom");
            }
            if texts.iter().any(|t| t == "bad") {
                return Err(InferError::Encode("bad input".into()));
            }
            Ok((
                texts.iter().map(|t| vec![t.len() as f32]).collect(),
                texts.iter().map(|t| t.len() > 4).collect(),
            ))
        }
    }

    fn texts(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn concurrent_requests_share_batches_and_get_their_own_answers() {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let worker = EmbedWorker::spawn_with(fake(batches.clone()), 8, 16, info());
        let mut tasks = Vec::new();
        for i in 0..12 {
            let worker = worker.clone();
            tasks.push(tokio::spawn(async move {
                let input = texts(&[&"x".repeat(i + 1), &"y".repeat(i + 20)]);
                (i, worker.embed(input).await)
            }));
        }
        for task in tasks {
            let (i, result) = task.await.expect("task");
            let embedded = result.expect("embedding works");
            assert_eq!(
                embedded.vectors,
                vec![vec![(i + 1) as f32], vec![(i + 20) as f32]]
            );
            assert_eq!(embedded.truncated, vec![i + 1 > 4, true]);
        }
        let batches = batches.lock().expect("lock").clone();
        assert_eq!(batches.iter().sum::<usize>(), 24);
        assert!(batches.iter().all(|&n| n <= 8), "{batches:?}");
        assert!(
            batches.iter().any(|&n| n > 2),
            "no request was merged: {batches:?}"
        );
    }

    #[tokio::test]
    async fn one_bad_request_fails_only_its_caller() {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let worker = EmbedWorker::spawn_with(fake(batches), 32, 16, info());
        // Occupy the worker so the next three requests are merged into one batch.
        let busy = tokio::spawn({
            let worker = worker.clone();
            async move { worker.embed(texts(&["warm"])).await }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (good, bad, panics) = tokio::join!(
            worker.embed(texts(&["ok"])),
            worker.embed(texts(&["bad"])),
            worker.embed(texts(&["boom"])),
        );
        assert!(busy.await.expect("task").is_ok());
        assert_eq!(good.expect("good input embeds").vectors, vec![vec![2.0]]);
        assert_eq!(bad.expect_err("bad input fails").kind, ErrorKind::User);
        assert_eq!(
            panics.expect_err("panic is reported").kind,
            ErrorKind::Internal
        );
        // The worker survived the panic.
        assert!(worker.embed(texts(&["again"])).await.is_ok());
    }

    #[tokio::test]
    async fn empty_input_gives_empty_output() {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let worker = EmbedWorker::spawn_with(fake(batches.clone()), 8, 4, info());
        let embedded = worker.embed(Vec::new()).await.expect("empty is fine");
        assert!(embedded.vectors.is_empty() && embedded.truncated.is_empty());
        assert!(
            batches.lock().expect("lock").is_empty(),
            "the model was not asked"
        );
    }

    #[tokio::test]
    async fn a_stopped_worker_is_an_internal_error() {
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let worker = EmbedWorker {
            shared: Arc::new(Shared { tx, info: info() }),
        };
        let err = worker
            .embed(texts(&["hello"]))
            .await
            .expect_err("no worker");
        assert_eq!(err.kind, ErrorKind::Internal);
        assert_eq!(
            worker.count_tokens("two words"),
            2,
            "counting needs no worker"
        );
        assert_eq!(
            (worker.model_id(), worker.dims(), worker.max_tokens()),
            ("fake@00000000", 1, 4)
        );
    }

    #[test]
    fn the_thread_ends_when_the_last_handle_drops() {
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let worker = EmbedWorker::spawn_with(
            move |texts: &[String]| {
                let _keep = &done_tx; // dropped with the closure when the loop ends
                Ok((vec![vec![0.0]; texts.len()], vec![false; texts.len()]))
            },
            4,
            4,
            info(),
        );
        let clone = worker.clone();
        drop(worker);
        assert_eq!(
            done_rx.recv_timeout(Duration::from_millis(100)),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout),
            "a clone still holds the worker"
        );
        drop(clone);
        assert_eq!(
            done_rx.recv_timeout(Duration::from_secs(5)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected),
            "the worker thread stopped"
        );
    }
}
