//! The local [`Engine`] behind the [`Generator`] seam: chat prompt from the model's own
//! template, tokens streamed as they come, cancellation when the caller's future is dropped.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use cairn_core::{ChatRole, GenerateRequest, Generated, Generator, TokenCounter};
use candle_core::Device;

use crate::error::InferError;
use cairn_llm::{ChatMessage, Engine, EngineOptions, Event, Role, SamplingParams, WeightFormat};

/// A GGUF model run by cairn's continuous-batching [`Engine`].
#[derive(Debug, Clone)]
pub struct LocalGenerator {
    engine: Arc<Engine>,
    model_id: String,
}

impl LocalGenerator {
    /// Loads the GGUF file at `path` (or the one in the folder) on `device`. On a CPU, Q4_1
    /// and Q8_0 weights run on cairn's own kernels and other types without SIMD kernels are
    /// requantized to Q8_0 for them ([`WeightFormat::Fast`]).
    pub fn load(path: &Path, device: &Device, options: EngineOptions) -> cairn_core::Result<Self> {
        let engine = Engine::load(path, device, WeightFormat::for_device(device), options)?;
        let model_id = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let model_id = model_id.trim_end_matches(".gguf").to_string();
        Ok(Self::new(Arc::new(engine), model_id))
    }

    /// Wraps a running engine.
    pub fn new(engine: Arc<Engine>, model_id: String) -> Self {
        Self { engine, model_id }
    }

    /// The engine, for requests that bring their own messages and sampling settings.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }
}

impl TokenCounter for LocalGenerator {
    fn count_tokens(&self, text: &str) -> usize {
        self.engine
            .tokenizer()
            .encode(text, false)
            .map_or(text.len() / 3, |ids| ids.len())
    }
}

#[async_trait]
impl Generator for LocalGenerator {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn context_tokens(&self) -> usize {
        self.engine.context_length()
    }

    async fn generate(
        &self,
        req: GenerateRequest,
        on_text: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> cairn_core::Result<Generated> {
        let messages: Vec<ChatMessage> = req
            .messages
            .into_iter()
            .map(|turn| {
                let role = match turn.role {
                    ChatRole::System => Role::System,
                    ChatRole::User => Role::User,
                    ChatRole::Assistant => Role::Assistant,
                };
                ChatMessage::new(role, turn.content)
            })
            .collect();
        let params = SamplingParams {
            max_tokens: req.max_tokens,
            temperature: req.temperature,
            top_p: req.top_p,
            seed: req.seed,
            stop: req.stop,
        };
        let prompt = self.engine.chat_prompt(&messages)?;
        // Dropping this future drops the generation, which cancels it.
        let mut generation = self.engine.submit(prompt, params)?;
        let mut text = String::new();
        while let Some(event) = generation.recv().await {
            match event {
                Event::Text(piece) => {
                    on_text(&piece);
                    text.push_str(&piece);
                }
                Event::Done(done) => {
                    return Ok(Generated {
                        text,
                        finish_reason: done.reason.as_str().to_string(),
                        prompt_tokens: done.prompt_tokens,
                        completion_tokens: done.completion_tokens,
                    });
                }
                Event::Failed(message) => return Err(InferError::WorkerFailed(message).into()),
            }
        }
        Err(InferError::WorkerGone.into())
    }
}
