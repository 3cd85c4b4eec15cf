//! A [`Generator`] that asks an OpenAI-compatible server: vLLM, TGI, Ollama, OpenAI, or
//! another cairn (`POST /v1/chat/completions`, streamed).
//!
//! The request runs on a blocking thread (`ureq`); its Server-Sent Events are read line by
//! line and each `choices[0].delta.content` is handed to the caller as it arrives. Dropping
//! the future closes the channel, and the reading thread then drops the connection, which
//! tells the server to stop. A server that cannot be reached, or answers with an error, is
//! an [`ErrorKind::Upstream`] error (502); one that does not answer in time is
//! [`ErrorKind::UpstreamTimeout`] (504).

use std::io::{BufRead, BufReader};
use std::time::Duration;

use async_trait::async_trait;
use cairn_core::config::GenerateConfig;
use cairn_core::{Error, ErrorKind, GenerateRequest, Generated, Generator, Result, TokenCounter};
use serde_json::{Value, json};

/// The client of one model on one OpenAI-compatible server.
#[derive(Debug, Clone)]
pub struct OpenAiGenerator {
    base_url: String,
    model: String,
    api_key: Option<String>,
    timeout: Duration,
    context_tokens: usize,
    model_id: String,
}

impl OpenAiGenerator {
    /// A client for `cfg.model` at `cfg.base_url`, with the key read from the environment
    /// variable `cfg.api_key_env` (none sent when it is unset or empty).
    pub fn from_config(cfg: &GenerateConfig) -> Self {
        let api_key = std::env::var(&cfg.api_key_env)
            .ok()
            .filter(|k| !k.trim().is_empty());
        Self::new(
            &cfg.base_url,
            &cfg.model,
            api_key,
            Duration::from_secs(cfg.timeout_secs.max(1)),
        )
    }

    /// A client for `model` at `base_url` (up to and including `/v1`).
    pub fn new(base_url: &str, model: &str, api_key: Option<String>, timeout: Duration) -> Self {
        let base_url = base_url.trim_end_matches('/').to_string();
        Self {
            model_id: model.to_string(),
            base_url,
            model: model.to_string(),
            api_key,
            timeout,
            context_tokens: 8192,
        }
    }

    /// Sets the context size assumed for packing prompts (default 8192 tokens).
    pub fn with_context_tokens(mut self, tokens: usize) -> Self {
        self.context_tokens = tokens;
        self
    }

    fn body(&self, req: &GenerateRequest) -> Value {
        let mut body = json!({
            "model": self.model,
            "messages": req.messages,
            "max_tokens": req.max_tokens,
            "temperature": req.temperature,
            "top_p": req.top_p,
            "stream": true,
        });
        if let Some(seed) = req.seed {
            body["seed"] = json!(seed);
        }
        if !req.stop.is_empty() {
            body["stop"] = json!(req.stop);
        }
        body
    }

    /// Runs the request on this (blocking) thread, sending text pieces to `tx`.
    fn run(
        &self,
        body: Value,
        tx: tokio::sync::mpsc::UnboundedSender<String>,
    ) -> Result<Generated> {
        let url = format!("{}/chat/completions", self.base_url);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10).min(self.timeout)))
            .timeout_recv_response(Some(self.timeout))
            .timeout_per_read(Some(self.timeout))
            .build()
            .into();
        let mut request = agent.post(&url).header("Accept", "text/event-stream");
        if let Some(key) = &self.api_key {
            request = request.header("Authorization", &format!("Bearer {key}"));
        }
        let response = request
            .send_json(&body)
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status().as_u16();
        if status != 200 {
            let text = response.into_body().read_to_string().unwrap_or_default();
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| text.chars().take(300).collect());
            return Err(Error::new(
                ErrorKind::Upstream,
                format!(
                    "the generation server {} answered {status}: {message}",
                    self.base_url
                ),
            ));
        }
        let reader = BufReader::new(response.into_body().into_reader());
        let mut out = Generated {
            text: String::new(),
            finish_reason: "stop".into(),
            prompt_tokens: 0,
            completion_tokens: 0,
        };
        for line in reader.lines() {
            let line = line.map_err(|e| self.read_error(&e))?;
            let Some(data) = line.strip_prefix("data:").map(str::trim) else {
                continue;
            };
            if data == "[DONE]" {
                return Ok(out);
            }
            let chunk: Value = serde_json::from_str(data).map_err(|e| {
                Error::new(
                    ErrorKind::Upstream,
                    format!("the generation server sent a malformed event: {e}"),
                )
            })?;
            if let Some(message) = chunk["error"]["message"].as_str() {
                return Err(Error::new(
                    ErrorKind::Upstream,
                    format!("the generation server failed: {message}"),
                ));
            }
            let choice = &chunk["choices"][0];
            if let Some(piece) = choice["delta"]["content"]
                .as_str()
                .filter(|p| !p.is_empty())
            {
                out.text.push_str(piece);
                if tx.send(piece.to_string()).is_err() {
                    // The caller went away: dropping the response closes the connection.
                    return Ok(out);
                }
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                out.finish_reason = reason.to_string();
            }
            if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
                out.prompt_tokens = usage["prompt_tokens"].as_u64().unwrap_or(0) as usize;
                out.completion_tokens = usage["completion_tokens"].as_u64().unwrap_or(0) as usize;
            }
        }
        Err(Error::new(
            ErrorKind::Upstream,
            format!(
                "the generation server {} closed the stream before it finished",
                self.base_url
            ),
        ))
    }

    fn transport_error(&self, e: &ureq::Error) -> Error {
        match e {
            ureq::Error::Timeout(_) => self.timeout_error(),
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                self.timeout_error()
            }
            other => Error::new(
                ErrorKind::Upstream,
                format!(
                    "cannot reach the generation server at {}: {other}",
                    self.base_url
                ),
            ),
        }
    }

    fn read_error(&self, e: &std::io::Error) -> Error {
        let timed_out = matches!(
            e.kind(),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
        ) || e.to_string().contains("imeout");
        if timed_out {
            self.timeout_error()
        } else {
            Error::new(
                ErrorKind::Upstream,
                format!("the generation server {} broke off: {e}", self.base_url),
            )
        }
    }

    fn timeout_error(&self) -> Error {
        Error::new(
            ErrorKind::UpstreamTimeout,
            format!(
                "the generation server at {} did not answer within {} s",
                self.base_url,
                self.timeout.as_secs()
            ),
        )
    }
}

impl TokenCounter for OpenAiGenerator {
    /// The server's tokenizer is not at hand: about four bytes per token for English, fewer
    /// for other scripts, so count one token per three bytes to stay on the safe side.
    fn count_tokens(&self, text: &str) -> usize {
        text.len().div_ceil(3)
    }
}

#[async_trait]
impl Generator for OpenAiGenerator {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn context_tokens(&self) -> usize {
        self.context_tokens
    }

    async fn generate(
        &self,
        req: GenerateRequest,
        on_text: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> Result<Generated> {
        let body = self.body(&req);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let client = self.clone();
        let task = tokio::task::spawn_blocking(move || client.run(body, tx));
        while let Some(piece) = rx.recv().await {
            on_text(&piece);
        }
        task.await
            .map_err(|e| Error::internal(format!("the generation request failed: {e}")))?
    }
}
