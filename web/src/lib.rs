//! `cairn-web`: the HTTP face of cairn, an axum server. Handlers only extract typed input,
//! call one function of a library crate (the same ones the CLI calls) and return typed
//! output; errors leave through [`ApiError`] as JSON. Limits are layers.
//!
//! | method | path | does |
//! |---|---|---|
//! | GET | `/` | the upload-and-ask page (its assets under `/assets/`, built into the binary) |
//! | GET | `/healthz` | liveness, with document count and the catalog write every index reflects |
//! | POST | `/v1/search` | `{query, top_k?, mode?, filter?}` → `{results, took_ms, stages}` |
//! | POST | `/v1/ask` | `{question, top_k?, rerank?, filter?, stream?}` → an answer with citations, or an abstention (SSE with `stream`) |
//! | POST | `/v1/chat/completions` | OpenAI-compatible: model `cairn` answers over the knowledge base, the generator's name talks to the LLM ([`chat`]) |
//! | GET | `/v1/models` | the models `/v1/chat/completions` serves |
//! | POST | `/v1/documents` | multipart upload of one or more files → 201 `{documents, failed}` |
//! | GET | `/v1/documents` | the caller's documents |
//! | GET | `/v1/documents/{id}` | one document with its chunks |
//! | DELETE | `/v1/documents/{id}` | removes it from the catalog and every index |
//! | POST | `/v1/documents/{id}/reindex` | reads its file again (documents ingested from a path on the server) |
//! | POST | `/v1/admin/reindex` | `{sources, include?, exclude?, dry_run?, groups?}` → the re-index report; needs the data dir's admin token |

mod chat;
mod error;

pub use error::{ApiError, error_body, status_of};

use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router, body::Bytes, extract::rejection::BytesRejection};
use cairn_core::{Acl, Catalog, DocQuery, DocumentStore, Error, Principal, SearchRequest};
use cairn_ingest::Ingestor;
use cairn_retrieve::Retriever;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

/// Everything a handler needs, shared.
#[derive(Clone)]
pub struct AppState {
    pub retriever: Retriever,
    pub ingestor: Arc<Ingestor>,
    pub catalog: Arc<dyn Catalog>,
    pub store: Arc<dyn DocumentStore>,
    /// The principal of every request until API keys exist.
    pub principal: Principal,
    pub max_body_bytes: usize,
    /// How answers are made (`[answer]`).
    pub answer: cairn_core::config::AnswerConfig,
    /// Administration (server-side re-index); absent: those routes answer 404.
    pub admin: Option<Admin>,
}

/// What the administrative routes need: the token a caller must show (`Authorization:
/// Bearer ...`), which `cairn serve` writes into the data dir so that only someone who can
/// read the data dir can use them, and the guard that keeps re-index runs from overlapping.
#[derive(Clone)]
pub struct Admin {
    pub token: Arc<str>,
    pub reindexing: Arc<tokio::sync::Mutex<()>>,
}

impl Admin {
    pub fn new(token: impl Into<Arc<str>>) -> Admin {
        Admin {
            token: token.into(),
            reindexing: Arc::default(),
        }
    }
}

/// The router with all routes and layers.
pub fn router(state: AppState) -> Router {
    let limit = state.max_body_bytes;
    Router::new()
        .route("/", get(page))
        .route("/assets/{name}", get(asset))
        .route("/healthz", get(healthz))
        .route("/v1/search", post(search))
        .route("/v1/ask", post(ask))
        .route("/v1/chat/completions", post(chat::completions))
        .route("/v1/models", get(chat::models))
        .route("/v1/documents", post(upload).get(list_documents))
        .route(
            "/v1/documents/{id}",
            get(get_document).delete(delete_document),
        )
        .route("/v1/documents/{id}/reindex", post(reindex_document))
        .route("/v1/admin/reindex", post(admin_reindex))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            limit,
            reject_declared_oversize,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Answers 413 at once when the declared `Content-Length` is over the limit, before any of
/// the body is read (a client that sent `Expect: 100-continue` never sends it). Bodies
/// without a length are cut by the streaming limit instead.
async fn reject_declared_oversize(
    State(limit): State<usize>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len > limit as u64 => ApiError::too_large(format!(
            "request body of {len} bytes is larger than the limit of {limit} bytes"
        ))
        .into_response(),
        _ => next.run(req).await,
    }
}

async fn not_found() -> ApiError {
    ApiError(Error::not_found(
        "no such endpoint; see the API list in the README",
    ))
}

/// The page's files, compiled into the binary: no CDN, nothing fetched at run time.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../assets/app.css"),
    ),
];

async fn page() -> Response {
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../assets/index.html"),
    )
        .into_response()
}

async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    let Some((_, mime, body)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return Err(ApiError(Error::not_found(format!("no asset {name}"))));
    };
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, *mime),
            (axum::http::header::CACHE_CONTROL, "no-cache"),
        ],
        *body,
    )
        .into_response())
}

async fn healthz(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let docs = s.catalog.list_documents(&DocQuery::default()).await?.len();
    Ok(Json(json!({
        "status": "ok",
        "documents": docs,
        "visible_seq": s.retriever.visible_seq(),
        "max_upload_bytes": s.max_body_bytes,
    })))
}

/// Reads a JSON body with errors in words: too large → 413, malformed → 400.
fn parse_json<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large("request body is larger than the server's limit")
        } else {
            ApiError::user(format!("could not read the request body: {r}"))
        }
    })?;
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::user(format!("malformed JSON request: {e}")))
}

async fn search(
    State(s): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: SearchRequest = parse_json(body)?;
    let resp = s.retriever.search(&req, &s.principal).await?;
    Ok(Json(resp).into_response())
}

async fn ask(
    State(s): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: cairn_core::AskRequest = parse_json(body)?;
    if req.stream {
        return Ok(ask_stream(s, req).into_response());
    }
    let answer = s.retriever.ask(&req, &s.principal, &s.answer).await?;
    Ok(Json(answer).into_response())
}

/// `POST /v1/ask` with `stream: true`: Server-Sent Events. `retrieval` carries the
/// passages as soon as they are found; then `token`s, the pieces of the answer text in order
/// as the model writes them (an extractive answer is one piece); one `citation` per
/// citation; and `done` with the whole answer (the JSON body of the non-streaming call),
/// which is what to show in the end: its sentences carry their support, and a generated
/// answer that its passages did not support is replaced there by quotes. Or `error` with
/// `{"error": {code, message}}`. A client that goes away cancels the work, generation
/// included.
fn ask_stream(
    s: AppState,
    req: cairn_core::AskRequest,
) -> axum::response::sse::Sse<
    impl futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let task = tokio::spawn(async move {
        let event = |name: &str, data: &serde_json::Value| {
            Event::default()
                .event(name)
                .json_data(data)
                .unwrap_or_else(|_| Event::default().event(name))
        };
        let sink = tx.clone();
        let mut streamed = false;
        let result = s
            .retriever
            .ask_with(&req, &s.principal, &s.answer, &mut |e| match e {
                cairn_retrieve::AskEvent::Retrieved(hits) => {
                    let _ = sink.send(event("retrieval", &json!({ "passages": hits })));
                }
                cairn_retrieve::AskEvent::Text(piece) => {
                    streamed = true;
                    let _ = sink.send(event("token", &json!({ "text": piece })));
                }
            })
            .await;
        match result {
            Ok(answer) => {
                if !streamed {
                    // Extractive answers are whole at once: their text is one token.
                    let _ = tx.send(event("token", &json!({ "text": answer.answer })));
                }
                for c in &answer.citations {
                    let _ = tx.send(event("citation", &json!(c)));
                }
                let _ = tx.send(event("done", &json!(answer)));
            }
            Err(e) => {
                let _ = tx.send(event("error", &error_body(&e)));
            }
        }
    });
    // Dropping the stream (the client went away) aborts the task, and with it the
    // generation.
    let guard = AbortOnDrop(task.abort_handle());
    let stream = futures_util::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        rx.recv().await.map(|e| (Ok(e), (rx, guard)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Serialize)]
struct Failed {
    file: String,
    error: serde_json::Value,
}

async fn upload(State(s): State<AppState>, mut form: Multipart) -> Result<Response, ApiError> {
    // Read the whole form first: a request that breaks a limit halfway stores nothing.
    let mut files: Vec<(String, Bytes)> = Vec::new();
    let mut groups: Vec<String> = Vec::new();
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(e)),
        };
        let name = field.name().unwrap_or_default().to_string();
        match field.file_name().map(str::to_string) {
            Some(file_name) => {
                let data = field.bytes().await.map_err(multipart_error)?;
                files.push((file_name, data));
            }
            None if name == "groups" => {
                let text = field.text().await.map_err(multipart_error)?;
                groups = text
                    .split(',')
                    .map(|g| g.trim().to_string())
                    .filter(|g| !g.is_empty())
                    .collect();
            }
            None => {
                return Err(ApiError::user(format!(
                    "unexpected form field {name:?}: send files, and optionally `groups`"
                )));
            }
        }
    }
    if files.is_empty() {
        return Err(ApiError::user(
            "no files in the upload: send one or more multipart file fields",
        ));
    }
    let acl = Acl {
        tenant: s.principal.tenant.clone(),
        groups,
    };
    let mut documents = Vec::new();
    let mut failed = Vec::new();
    for (name, data) in files {
        let stored = match s.ingestor.ingest_bytes(&data, &name, &acl).await {
            // The original is kept for "re-index one" (a new parser or chunker setting).
            Ok(outcome) => s
                .store
                .keep_original(&outcome.doc_id, &data)
                .await
                .map(|()| outcome),
            Err(e) => Err(e),
        };
        match stored {
            Ok(outcome) => documents.push(outcome),
            Err(e) => {
                tracing::warn!(file = %name, error = %e, "upload rejected");
                failed.push(Failed {
                    file: name,
                    error: error_body(&e)["error"].clone(),
                });
            }
        }
    }
    if documents.is_empty() {
        let summary: Vec<String> = failed
            .iter()
            .map(|f| {
                format!(
                    "{}: {}",
                    f.file,
                    f.error["message"].as_str().unwrap_or("failed")
                )
            })
            .collect();
        let body = json!({
            "error": { "code": "bad_request", "message": format!("no file could be ingested: {}", summary.join("; ")) },
            "failed": failed,
        });
        return Ok((StatusCode::BAD_REQUEST, Json(body)).into_response());
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({ "documents": documents, "failed": failed })),
    )
        .into_response())
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large("upload is larger than the server's limit")
    } else {
        ApiError::user(format!("malformed multipart upload: {}", e.body_text()))
    }
}

async fn list_documents(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let q = DocQuery {
        principal: Some(s.principal.clone()),
        ..DocQuery::default()
    };
    let docs = s.catalog.list_documents(&q).await?;
    Ok(Json(json!({ "documents": docs })))
}

async fn get_document(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let doc = cairn_retrieve::visible_document(s.catalog.as_ref(), &id, &s.principal).await?;
    let chunks = s.catalog.chunks_of(&doc.id).await?;
    Ok(Json(json!({ "document": doc, "chunks": chunks })))
}

async fn delete_document(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let doc = cairn_retrieve::visible_document(s.catalog.as_ref(), &id, &s.principal).await?;
    let seq = s.store.delete_document(&doc.id).await?;
    Ok(Json(json!({ "deleted": doc.id, "seq": seq })))
}

/// Reads a document again: its file, when it came from a path on the server (`cairn ingest`,
/// `cairn reindex`), or the original kept when it was uploaded. A changed file, ACL or
/// chunker setting gives a new version; otherwise nothing changes.
async fn reindex_document(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let doc = cairn_retrieve::visible_document(s.catalog.as_ref(), &id, &s.principal).await?;
    let path = std::path::Path::new(&doc.source);
    let outcome = if path.is_absolute() {
        s.ingestor.ingest_path(path, &doc.acl).await?
    } else {
        let Some(bytes) = s.store.original(&doc.id).await? else {
            return Err(ApiError::user(format!(
                "{} was uploaded before cairn kept originals, so there is nothing to read again; upload it again instead",
                doc.source
            )));
        };
        s.ingestor
            .ingest_bytes(&bytes, &doc.source, &doc.acl)
            .await?
    };
    Ok(Json(json!({ "document": outcome })))
}

/// The body of `POST /v1/admin/reindex`: what `cairn reindex` takes on its command line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReindexRequest {
    /// Absolute paths on the server's machine.
    sources: Vec<std::path::PathBuf>,
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    dry_run: bool,
    /// ACL groups of the documents added or updated.
    #[serde(default)]
    groups: Vec<String>,
}

/// Runs `cairn reindex` inside the server (which holds the data dir), for the command
/// when `cairn serve` is running. One run at a time: a second gets 409.
async fn admin_reindex(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Some(admin) = &s.admin else {
        return Err(not_found().await);
    };
    let shown = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !same_secret(shown.as_bytes(), admin.token.as_bytes()) {
        let body = json!({ "error": {
            "code": "unauthorized",
            "message": "this route needs the admin token that cairn serve writes into its data dir (serve.json)",
        }});
        return Ok((StatusCode::UNAUTHORIZED, Json(body)).into_response());
    }
    let req: ReindexRequest = parse_json(body)?;
    if let Some(p) = req.sources.iter().find(|p| !p.is_absolute()) {
        return Err(ApiError::user(format!(
            "source {} is not an absolute path (paths are read on the server's machine)",
            p.display()
        )));
    }
    let walker = cairn_ingest::walk::Walker::new(&req.include, &req.exclude)?;
    let Ok(_running) = admin.reindexing.try_lock() else {
        return Err(ApiError(Error::new(
            cairn_core::ErrorKind::Conflict,
            "a re-index is already running in this server; try again when it has finished",
        )));
    };
    let opts = cairn_ingest::reindex::ReindexOptions {
        sources: req.sources,
        walker,
        acl: Acl {
            tenant: s.principal.tenant.clone(),
            groups: req.groups,
        },
        dry_run: req.dry_run,
    };
    let report = cairn_ingest::reindex::reindex(
        &s.ingestor,
        Arc::clone(&s.catalog),
        Arc::clone(&s.store),
        &opts,
        &mut |_| {},
    )
    .await?;
    Ok(Json(report).into_response())
}

/// Compares two secrets in time that depends only on their lengths.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
