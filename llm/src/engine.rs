//! Continuous batching: one thread owns a [`DecoderModel`] and runs every request through it
//! together.
//!
//! Requests wait in a bounded queue ([`LlmError::Busy`] when it is full, which the REST
//! layer answers with 503). Between two forward steps the scheduler admits waiting requests
//! up to `max_batch` running sequences, and each step then runs, in one packed batch, one new
//! token of every decoding sequence plus a chunk of at most `prefill_chunk` prompt tokens
//! spread over the sequences still reading their prompt, so a long prompt never stalls the
//! others. Each sequence has its own [`KvCache`] and position. A sequence leaves the batch
//! as soon as it is done (end-of-turn token, stop sequence, token limit, context full), or
//! when its [`Generation`] is dropped: a client that goes away cancels its work.
//!
//! ```no_run
//! use std::path::Path;
//! use cairn_llm::{ChatMessage, Engine, EngineOptions, Role, SamplingParams, WeightFormat};
//!
//! # fn demo() -> Result<(), cairn_llm::LlmError> {
//! let device = candle_core::Device::Cpu; // or cairn_infer::pick_device()
//! let engine = Engine::load(Path::new("models/smollm2-135m"), &device, WeightFormat::Fast,
//!     EngineOptions::default())?;
//! let prompt = engine.chat_prompt(&[ChatMessage::new(Role::User, "Say hello.")])?;
//! let done = engine.submit(prompt, SamplingParams::greedy(32))?.wait()?;
//! println!("{}", done.text);
//! # Ok(())
//! # }
//! ```

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use candle_core::Device;
use tokio::sync::mpsc;

use super::model::{DecoderModel, KvCache, WeightFormat};
use super::sample::{Sampler, SamplingParams, TextOut};
use super::template::{ChatMessage, ChatTemplate};
use super::tokenizer::GgufTokenizer;
use crate::error::{LlmError, Result};

/// Limits of the scheduler.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineOptions {
    /// The most sequences in one forward step.
    pub max_batch: usize,
    /// The most requests waiting to join the batch; more are refused as busy.
    pub max_queue: usize,
    /// The most prompt tokens read in one step, over all sequences still reading theirs.
    pub prefill_chunk: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            max_batch: 8,
            max_queue: 64,
            prefill_chunk: 256,
        }
    }
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// The model ended its turn, or a stop sequence was reached.
    Stop,
    /// `max_tokens` were generated, or the model's context is full.
    Length,
}

impl FinishReason {
    /// The OpenAI name: `stop` or `length`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
        }
    }
}

/// What a [`Generation`] yields.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// More text (never half a character, never part of a stop sequence).
    Text(String),
    /// The end: no event follows.
    Done(Finished),
    /// The forward pass failed; no event follows.
    Failed(String),
}

/// The end of a generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// Why it ended.
    pub reason: FinishReason,
    /// Tokens of the prompt.
    pub prompt_tokens: usize,
    /// Tokens generated (the end-of-turn token included).
    pub completion_tokens: usize,
}

/// A finished generation, collected by [`Generation::wait`].
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// All the text.
    pub text: String,
    /// How it ended.
    pub finished: Finished,
}

/// One request's stream of events. Dropping it cancels the request: the scheduler takes
/// the sequence out of the batch at its next step and frees its cache.
#[derive(Debug)]
pub struct Generation {
    rx: mpsc::UnboundedReceiver<Event>,
    cancelled: Arc<AtomicBool>,
}

impl Generation {
    /// The next event; `None` after `Done` or `Failed`, or if the engine stopped.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next event, blocking the thread (not for use inside an async task).
    pub fn blocking_recv(&mut self) -> Option<Event> {
        self.rx.blocking_recv()
    }

    /// Blocks until the end and returns the whole text.
    pub fn wait(mut self) -> Result<Completion> {
        let mut text = String::new();
        while let Some(event) = self.blocking_recv() {
            match event {
                Event::Text(t) => text.push_str(&t),
                Event::Done(finished) => return Ok(Completion { text, finished }),
                Event::Failed(message) => return Err(LlmError::WorkerFailed(message)),
            }
        }
        Err(LlmError::WorkerGone)
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }
}

/// Counters of the scheduler, for benchmarks and logs.
#[derive(Debug, Default)]
pub struct EngineStats {
    /// Forward steps run.
    pub steps: AtomicU64,
    /// Tokens generated, over all requests.
    pub generated: AtomicU64,
    /// Prompt tokens read.
    pub prefilled: AtomicU64,
    /// Requests cancelled by their client.
    pub cancelled: AtomicU64,
}

struct Job {
    prompt: Vec<u32>,
    params: SamplingParams,
    tx: mpsc::UnboundedSender<Event>,
    cancelled: Arc<AtomicBool>,
}

struct Queue {
    waiting: VecDeque<Job>,
    shutdown: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    stats: EngineStats,
}

/// A decoder LM served by a continuous-batching scheduler on its own thread.
pub struct Engine {
    shared: Arc<Shared>,
    tokenizer: Arc<GgufTokenizer>,
    template: ChatTemplate,
    context_length: usize,
    options: EngineOptions,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("context_length", &self.context_length)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Loads model, tokenizer and chat template from one GGUF file (or the folder holding
    /// it) and starts the scheduler.
    pub fn load(
        path: &Path,
        device: &Device,
        format: WeightFormat,
        options: EngineOptions,
    ) -> Result<Self> {
        let (model, tokenizer, template) = super::load_parts(path, device, format)?;
        Self::start(model, tokenizer, template, options)
    }

    /// Starts the scheduler on parts loaded separately.
    pub fn start(
        model: DecoderModel,
        tokenizer: GgufTokenizer,
        template: ChatTemplate,
        options: EngineOptions,
    ) -> Result<Self> {
        if options.max_batch == 0 || options.prefill_chunk == 0 {
            return Err(LlmError::InvalidSetting(
                "max_batch and prefill_chunk must be at least 1".into(),
            ));
        }
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                waiting: VecDeque::new(),
                shutdown: false,
            }),
            wake: Condvar::new(),
            stats: EngineStats::default(),
        });
        let tokenizer = Arc::new(tokenizer);
        let context_length = model.config().context_length;
        let scheduler = Scheduler {
            stop_ids: stop_ids(&tokenizer),
            model,
            tokenizer: Arc::clone(&tokenizer),
            shared: Arc::clone(&shared),
            options: options.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("cairn-generate".into())
            .spawn(move || scheduler.run())
            .map_err(|e| LlmError::WorkerFailed(format!("cannot start the generator: {e}")))?;
        Ok(Self {
            shared,
            tokenizer,
            template,
            context_length,
            options,
            thread: Some(thread),
        })
    }

    /// The tokenizer, to count and encode prompts.
    pub fn tokenizer(&self) -> &GgufTokenizer {
        &self.tokenizer
    }

    /// The chat template.
    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// The model's context, in tokens: prompt and generated tokens together.
    pub fn context_length(&self) -> usize {
        self.context_length
    }

    /// The scheduler's limits.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// The scheduler's counters.
    pub fn stats(&self) -> &EngineStats {
        &self.shared.stats
    }

    /// Token ids of `messages` rendered by the chat template, ready for the assistant's turn.
    pub fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        let text = self.template.render(messages, true)?;
        self.tokenizer.encode_prompt(&text)
    }

    /// Queues a generation. Fails at once when the prompt leaves no room in the context, the
    /// settings are out of range, or the queue is full ([`LlmError::Busy`]).
    pub fn submit(&self, prompt: Vec<u32>, params: SamplingParams) -> Result<Generation> {
        params.validate()?;
        if prompt.is_empty() {
            return Err(LlmError::BadInput("the prompt is empty".into()));
        }
        if prompt.len() >= self.context_length {
            return Err(LlmError::BadInput(format!(
                "the prompt has {} tokens; the model's context holds {}",
                prompt.len(),
                self.context_length
            )));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let cancelled = Arc::new(AtomicBool::new(false));
        let job = Job {
            prompt,
            params,
            tx,
            cancelled: Arc::clone(&cancelled),
        };
        {
            let mut queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            if queue.shutdown {
                return Err(LlmError::WorkerGone);
            }
            if queue.waiting.len() >= self.options.max_queue {
                metrics::counter!("cairn_generate_refused_total").increment(1);
                return Err(LlmError::Busy(queue.waiting.len()));
            }
            queue.waiting.push_back(job);
            metrics::gauge!("cairn_generate_queue_depth").set(queue.waiting.len() as f64);
        }
        self.shared.wake.notify_one();
        Ok(Generation { rx, cancelled })
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .shutdown = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Token ids that end an assistant turn: EOS and the end-of-turn markers of the common chat
/// formats that the vocabulary has.
fn stop_ids(tokenizer: &GgufTokenizer) -> Vec<u32> {
    let mut ids: Vec<u32> = tokenizer.eos().map(|t| t.id).into_iter().collect();
    for text in [
        "<|im_end|>",
        "<|eot_id|>",
        "<|end_of_text|>",
        "<|endoftext|>",
        "<end_of_turn>",
        "<|end|>",
    ] {
        if let Some(id) = tokenizer.token_id(text).filter(|id| !ids.contains(id)) {
            ids.push(id);
        }
    }
    ids
}

/// A request in the running batch.
struct Running {
    job: Job,
    cache: KvCache,
    /// Prompt tokens already run through the model.
    read: usize,
    generated: Vec<u32>,
    /// The last token sampled, to be run next.
    next: Option<u32>,
    sampler: Sampler,
    out: TextOut,
}

struct Scheduler {
    model: DecoderModel,
    tokenizer: Arc<GgufTokenizer>,
    shared: Arc<Shared>,
    options: EngineOptions,
    stop_ids: Vec<u32>,
}

impl Scheduler {
    fn run(self) {
        let mut running: Vec<Running> = Vec::new();
        loop {
            // Admit waiting requests, or sleep until there are some.
            {
                let mut queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if queue.shutdown {
                        return;
                    }
                    while running.len() < self.options.max_batch {
                        let Some(job) = queue.waiting.pop_front() else {
                            break;
                        };
                        if job.cancelled.load(Ordering::Relaxed) {
                            continue;
                        }
                        running.push(Running {
                            sampler: Sampler::new(&job.params),
                            out: TextOut::new(&job.params.stop),
                            cache: self.model.new_cache(),
                            read: 0,
                            generated: Vec::new(),
                            next: None,
                            job,
                        });
                    }
                    if !running.is_empty() {
                        break;
                    }
                    queue = self
                        .shared
                        .wake
                        .wait(queue)
                        .unwrap_or_else(|e| e.into_inner());
                }
            }
            running.retain(|r| {
                let gone = r.job.cancelled.load(Ordering::Relaxed) || r.job.tx.is_closed();
                if gone {
                    self.shared.stats.cancelled.fetch_add(1, Ordering::Relaxed);
                }
                !gone
            });
            if running.is_empty() {
                continue;
            }
            metrics::histogram!("cairn_generate_batch_sequences").record(running.len() as f64);
            if let Err(err) = self.step(&mut running) {
                let message = format!("generation failed: {err}");
                tracing::error!("{message}");
                for r in running.drain(..) {
                    let _ = r.job.tx.send(Event::Failed(message.clone()));
                }
            }
        }
    }

    /// One forward step over the running batch; finished sequences leave it.
    fn step(&self, running: &mut Vec<Running>) -> Result<()> {
        let started = Instant::now();
        // What each sequence runs this step: its last sampled token, or the next chunk of
        // its prompt while the step's prefill budget lasts. Prompts are always cut at the
        // same places (every `prefill_chunk` tokens from their start), whatever else is in
        // the batch: attention over a chunk is one matrix product whose shape would
        // otherwise depend on the company, and with it the last bits of the result.
        let chunk_len = self.options.prefill_chunk;
        let mut budget = chunk_len;
        let mut plan: Vec<(usize, Vec<u32>, bool)> = Vec::with_capacity(running.len());
        for (i, r) in running.iter().enumerate() {
            if let Some(token) = r.next {
                plan.push((i, vec![token], true));
            } else {
                let take = (r.job.prompt.len() - r.read).min(chunk_len);
                if take > budget {
                    continue;
                }
                budget -= take;
                let chunk = r.job.prompt[r.read..r.read + take].to_vec();
                plan.push((i, chunk, r.read + take == r.job.prompt.len()));
            }
        }
        let prefilled: usize = plan
            .iter()
            .filter(|p| running[p.0].next.is_none())
            .map(|p| p.1.len())
            .sum();
        // Borrow each planned sequence's cache mutably, in plan order.
        let logits = {
            let mut caches: Vec<Option<&mut KvCache>> =
                running.iter_mut().map(|r| Some(&mut r.cache)).collect();
            let mut steps: Vec<(&[u32], &mut KvCache)> = plan
                .iter()
                .map(|(i, tokens, _)| (tokens.as_slice(), caches[*i].take().expect("planned once")))
                .collect();
            self.model.forward_cached(&mut steps)?.to_vec2::<f32>()?
        };
        let stats = &self.shared.stats;
        stats.steps.fetch_add(1, Ordering::Relaxed);
        stats
            .prefilled
            .fetch_add(prefilled as u64, Ordering::Relaxed);

        let mut done = vec![false; running.len()];
        for ((i, tokens, sample), row) in plan.into_iter().zip(logits) {
            let r = &mut running[i];
            if r.next.is_none() {
                r.read += tokens.len();
            }
            if !sample {
                continue;
            }
            let token = r.sampler.sample(&row);
            stats.generated.fetch_add(1, Ordering::Relaxed);
            r.generated.push(token);
            done[i] = self.advance(r, token);
        }
        let mut index = 0;
        running.retain(|_| {
            index += 1;
            !done[index - 1]
        });
        tracing::trace!(
            batch = done.len(),
            prefilled,
            took_ms = started.elapsed().as_secs_f64() * 1e3,
            "generation step"
        );
        Ok(())
    }

    /// Sends the text `token` adds and returns whether the sequence is finished.
    fn advance(&self, r: &mut Running, token: u32) -> bool {
        let ended_turn = self.stop_ids.contains(&token);
        if !ended_turn {
            let ids = &r.generated;
            let decoded = self.tokenizer.decode(ids, true).unwrap_or_default();
            let text = r.out.update(decoded);
            if !text.is_empty() {
                let _ = r.job.tx.send(Event::Text(text));
            }
        }
        let full_context = r.cache.len() + 1 >= self.model.config().context_length;
        let reason = if ended_turn || r.out.stopped() {
            FinishReason::Stop
        } else if r.generated.len() >= r.job.params.max_tokens || full_context {
            FinishReason::Length
        } else {
            r.next = Some(token);
            return false;
        };
        let rest = r.out.flush();
        if !rest.is_empty() {
            let _ = r.job.tx.send(Event::Text(rest));
        }
        let _ = r.job.tx.send(Event::Done(Finished {
            reason,
            prompt_tokens: r.job.prompt.len(),
            completion_tokens: r.generated.len(),
        }));
        true
    }
}
