//! `POST /v1/chat/completions` and `GET /v1/models`: the OpenAI-compatible face of cairn, so
//! any OpenAI client library or chat front end can talk to it.
//!
//! Two models are served:
//! - `cairn` (also chosen when `model` is empty): answers the last user message over the
//!   knowledge base, exactly as `POST /v1/ask` would, with the caller's permissions. The
//!   message is the answer with its `[n]` markers followed by a "Sources" list naming each
//!   cited document and page; the full answer (sentences with their support, citations
//!   with exact spans) rides along in a `cairn` field.
//! - the configured generator's own name (`[generate] model`, e.g. `qwen2.5-coder-0.5b`): the
//!   conversation goes to the language model as it is, with the request's sampling
//!   settings, as from any OpenAI-compatible server. This is also what another cairn with
//!   `[generate] backend = "openai"` pointed at this one calls.
//!
//! With `stream: true` the answer comes as `chat.completion.chunk` events ending with
//! `data: [DONE]`; a client that goes away cancels the generation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use cairn_core::{Answer, AskRequest, ChatRole, ChatTurn, Error, GenerateRequest};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::openapi::Refusals;
use crate::{AbortOnDrop, ApiError, AppState, Caller, error_body, parse_json};

/// The name of the knowledge-base model.
pub const RAG_MODEL: &str = "cairn";

/// The most tokens a pass-through request may ask for.
const MAX_TOKENS_LIMIT: usize = 4096;

/// An OpenAI-style chat completion request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ChatRequest {
    #[serde(default)]
    model: String,
    messages: Vec<ChatTurn>,
    #[serde(default)]
    stream: bool,
    max_tokens: Option<usize>,
    max_completion_tokens: Option<usize>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    seed: Option<u64>,
    stop: Option<Stop>,
    n: Option<usize>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

/// The models `/v1/chat/completions` serves.
#[utoipa::path(get, path = "/v1/models", tag = "answers", security(("api_key" = [])),
    responses((status = 200, description = "`{object: list, data: [{id, object, created, owned_by}]}`: `cairn` and the generator, if any", body = Object), Refusals))]
pub async fn models(State(s): State<AppState>, Caller(p): Caller) -> Json<Value> {
    let created = now();
    let mut data =
        vec![json!({"id": RAG_MODEL, "object": "model", "created": created, "owned_by": "cairn"})];
    if let Some(g) = s.service.generator(&p) {
        data.push(
            json!({"id": g.model_id(), "object": "model", "created": created, "owned_by": "cairn"}),
        );
    }
    Json(json!({"object": "list", "data": data}))
}

/// OpenAI-compatible chat: model `cairn` answers over the knowledge base, the generator's name talks to the language model.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "answers", security(("api_key" = [])),
    request_body = ChatRequest,
    responses((status = 200, description = "an OpenAI `chat.completion` (model `cairn`: with the full answer in a `cairn` field), or `chat.completion.chunk` events with `stream`", body = Object), Refusals))]
pub async fn completions(
    State(s): State<AppState>,
    Caller(p): Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: ChatRequest = parse_json(body)?;
    if req.messages.is_empty() {
        return Err(Error::user("messages is empty").into());
    }
    if req.n.is_some_and(|n| n != 1) {
        return Err(Error::user("only n = 1 is supported").into());
    }
    let model = if req.model.is_empty() {
        RAG_MODEL.to_string()
    } else {
        req.model.clone()
    };
    if model == RAG_MODEL {
        return rag(s, p, req).await;
    }
    let Some(generator) = s.service.generator(&p) else {
        return Err(Error::new(
            cairn_core::ErrorKind::NotFound,
            format!("model {model:?} is not served here: use \"{RAG_MODEL}\" (answers over the knowledge base); no language model is configured ([generate] backend)"),
        )
        .into());
    };
    if generator.model_id() != model {
        return Err(Error::new(
            cairn_core::ErrorKind::NotFound,
            format!(
                "model {model:?} is not served here: use \"{RAG_MODEL}\" (answers over the knowledge base) or {:?}",
                generator.model_id()
            ),
        )
        .into());
    }
    let max_tokens = req
        .max_completion_tokens
        .or(req.max_tokens)
        .unwrap_or(s.service.generate_config().max_tokens);
    if max_tokens == 0 || max_tokens > MAX_TOKENS_LIMIT {
        return Err(Error::user(format!(
            "max_tokens must be between 1 and {MAX_TOKENS_LIMIT}"
        ))
        .into());
    }
    let gen_req = GenerateRequest {
        temperature: req.temperature.unwrap_or(1.0),
        top_p: req.top_p.unwrap_or(1.0),
        seed: req.seed,
        stop: match req.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s],
            Some(Stop::Many(v)) => v,
        },
        ..GenerateRequest::new(req.messages, max_tokens)
    };
    let id = completion_id();
    if !req.stream {
        let out = generator.generate(gen_req, &mut |_| {}).await?;
        let body = completion(
            &id,
            &model,
            &out.text,
            &out.finish_reason,
            usage(out.prompt_tokens, out.completion_tokens),
            None,
        );
        return Ok(Json(body).into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let task = tokio::spawn(async move {
        let _ = tx.send(chunk(
            &id,
            &model,
            json!({"role": "assistant", "content": ""}),
            None,
        ));
        let sink = tx.clone();
        let (id2, model2) = (id.clone(), model.clone());
        let result = generator
            .generate(gen_req, &mut |piece| {
                let _ = sink.send(chunk(&id2, &model2, json!({ "content": piece }), None));
            })
            .await;
        match result {
            Ok(out) => {
                let mut last = chunk_value(&id, &model, json!({}), Some(&out.finish_reason));
                last["usage"] = usage(out.prompt_tokens, out.completion_tokens);
                let _ = tx.send(data(&last));
            }
            Err(e) => {
                let _ = tx.send(data(&error_body(&e)));
            }
        }
        let _ = tx.send(Event::default().data("[DONE]"));
    });
    Ok(stream(rx, AbortOnDrop(task.abort_handle())).into_response())
}

/// The knowledge-base model: the last user message is the question.
async fn rag(
    s: AppState,
    p: cairn_core::Principal,
    req: ChatRequest,
) -> Result<Response, ApiError> {
    let Some(question) = req
        .messages
        .iter()
        .rev()
        .find(|m| m.role == ChatRole::User)
        .map(|m| m.content.clone())
    else {
        return Err(Error::user("no user message to answer").into());
    };
    let ask = AskRequest {
        question,
        top_k: None,
        rerank: None,
        filter: Default::default(),
        mode: Default::default(),
        stream: req.stream,
    };
    let id = completion_id();
    if !req.stream {
        let answer = s.service.ask(&p, &ask, &mut |_| {}).await?;
        let content = format!("{}{}", answer.answer, sources(&answer));
        let body = completion(&id, RAG_MODEL, &content, "stop", usage(0, 0), Some(&answer));
        return Ok(Json(body).into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let task = tokio::spawn(async move {
        let _ = tx.send(chunk(
            &id,
            RAG_MODEL,
            json!({"role": "assistant", "content": ""}),
            None,
        ));
        let sink = tx.clone();
        let mut streamed = String::new();
        let id2 = id.clone();
        let result = s
            .service
            .ask(&p, &ask, &mut |e| {
                if let cairn_service::AskEvent::Text(piece) = e {
                    streamed.push_str(piece);
                    let _ = sink.send(chunk(&id2, RAG_MODEL, json!({ "content": piece }), None));
                }
            })
            .await;
        match result {
            Ok(answer) => {
                // What was streamed is the model's raw text; when the final answer differs
                // (an extractive answer, or quotes replacing an unsupported one), send it.
                let rest = if streamed.is_empty() {
                    answer.answer.clone()
                } else if answer.answer != streamed.trim() && answer.note.is_some() {
                    format!(
                        "\n\n({})\n\n{}",
                        answer.note.as_deref().unwrap_or_default(),
                        answer.answer
                    )
                } else {
                    String::new()
                };
                let content = format!("{rest}{}", sources(&answer));
                let mut last =
                    chunk_value(&id, RAG_MODEL, json!({ "content": content }), Some("stop"));
                last["cairn"] = json!(answer);
                let _ = tx.send(data(&last));
            }
            Err(e) => {
                let _ = tx.send(data(&error_body(&e)));
            }
        }
        let _ = tx.send(Event::default().data("[DONE]"));
    });
    Ok(stream(rx, AbortOnDrop(task.abort_handle())).into_response())
}

/// The "Sources" list that follows an answer's text.
fn sources(answer: &Answer) -> String {
    if answer.citations.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n\nSources:");
    for c in &answer.citations {
        if c.page > 0 {
            out.push_str(&format!("\n[{}] {}, page {}", c.n, c.title, c.page));
        } else {
            out.push_str(&format!("\n[{}] {}", c.n, c.title));
        }
    }
    out
}

fn stream(
    rx: tokio::sync::mpsc::UnboundedReceiver<Event>,
    guard: AbortOnDrop,
) -> Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let events = futures_util::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        rx.recv().await.map(|e| (Ok(e), (rx, guard)))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

fn completion(
    id: &str,
    model: &str,
    content: &str,
    finish_reason: &str,
    usage: Value,
    answer: Option<&Answer>,
) -> Value {
    let mut body = json!({
        "id": id,
        "object": "chat.completion",
        "created": now(),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": finish_reason,
        }],
        "usage": usage,
    });
    if let Some(answer) = answer {
        body["cairn"] = json!(answer);
    }
    body
}

fn chunk_value(id: &str, model: &str, delta: Value, finish_reason: Option<&str>) -> Value {
    json!({
        "id": id,
        "object": "chat.completion.chunk",
        "created": now(),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    })
}

fn chunk(id: &str, model: &str, delta: Value, finish_reason: Option<&str>) -> Event {
    data(&chunk_value(id, model, delta, finish_reason))
}

fn data(value: &Value) -> Event {
    Event::default().data(value.to_string())
}

fn usage(prompt: usize, completion: usize) -> Value {
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn completion_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "chatcmpl-{:x}{:04x}",
        now(),
        NEXT.fetch_add(1, Ordering::Relaxed) & 0xffff
    )
}
