//! `cairn-web`: the HTTP face of cairn, an axum server. Handlers only extract typed input
//! and the [`Caller`] (the principal of the request's key, [`auth`]), call one operation of
//! [`cairn_service::Service`] (the same ones the CLI calls), and return its typed report;
//! errors leave through [`ApiError`] as JSON. Limits are layers.
//!
//! Every route but the page, its assets and `/healthz` needs a key (401 without one);
//! what a key may do is the service's decision (403 for a role that may not, 404 for a
//! document the key may not read).
//!
//! | method | path | does |
//! |---|---|---|
//! | GET | `/` | the upload-and-ask page (its assets under `/assets/`, built into the binary) |
//! | GET | `/openapi.json` | this API as OpenAPI 3.1 ([`openapi`]); `/docs` shows it |
//! | GET | `/readyz` | 200 when every index has caught up with the catalog, else 503 |
//! | GET | `/metrics` | Prometheus metrics (an admin key of the operator's tenant) |
//! | GET | `/healthz` | liveness and the catalog write every index reflects; with a key, the documents it may read |
//! | GET | `/v1/me` | the key's tenant, groups and role |
//! | POST | `/v1/search` | `{query, top_k?, mode?, filter?}` → `{results, took_ms, stages}`; `mode`: `hybrid` (default), `bm25`, `dense`, `graph`, `mix` |
//! | POST | `/v1/ask` | `{question, top_k?, rerank?, filter?, mode?, stream?}` → an answer with citations, or an abstention (SSE with `stream`) |
//! | POST | `/v1/chat/completions` | OpenAI-compatible: model `cairn` answers over the knowledge base, the generator's name talks to the LLM ([`chat`]) |
//! | GET | `/v1/models` | the models `/v1/chat/completions` serves |
//! | POST | `/v1/documents` | multipart upload of one or more files → 201 `{documents, failed}` |
//! | GET | `/v1/graph/concepts` | `?q=&limit=` → the size of the caller's concept graph and its concepts, most mentioned first |
//! | GET | `/v1/graph/concepts/{key}` | a concept's neighbourhood: its passages, its strongest neighbours and each edge's evidence passages |
//! | GET | `/v1/documents` | the caller's documents |
//! | GET | `/v1/documents/{id}` | one document with its chunks |
//! | DELETE | `/v1/documents/{id}` | removes it from the catalog and every index |
//! | GET | `/v1/documents/{id}/original` | the uploaded file as it was sent (uploads only) |
//! | POST | `/v1/documents/{id}/reindex` | reads it again: an upload's kept original, or its file on the server (admin, under `[ingest] roots`) |
//! | POST | `/v1/admin/reindex` | `{sources, include?, exclude?, dry_run?, groups?}` → the re-index report (admin, under `[ingest] roots`; `cairn reindex` sends the data dir's token) |
//! | POST | `/v1/admin/keys` | `{role, name?, groups?, tenant?, expires_in_days?}` → the new key, shown once (admin) |
//! | GET | `/v1/admin/keys` | the tenant's keys, without secrets (admin) |
//! | DELETE | `/v1/admin/keys/{id}` | revokes a key (admin) |
//! | GET | `/v1/admin/audit` | `?since=&key=&limit=` → audit lines, newest first (admin) |

pub mod auth;
mod chat;
mod error;
pub mod limits;
pub mod observe;
pub mod openapi;

pub use auth::{Auth, Caller, MaybeCaller, Proxy};
pub use error::{ApiError, error_body, status_of};

use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, body::Bytes};
use cairn_core::{
    Answer, AskRequest, CommunityList, CommunityReport, ConceptDetail, ConceptList, Error,
    Principal, SearchRequest, SearchResponse,
};
use cairn_ingest::reindex::ReindexReport;
use cairn_service::wire::{
    AuditLines, AuditRequest, CommunityQuery, ConceptQuery, CreateKeyRequest, CreatedKey, Deleted,
    DocumentDetail, DocumentList, Health, KeyList, ListRequest, Me, Readiness, ReindexRequest,
    Reingested, Revoked, UploadFile, UploadReport, UploadRequest,
};
use cairn_service::{AskEvent, Service};
use openapi::{ErrorBody, Refusals, UploadForm};
use serde_json::json;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Everything a handler needs, shared.
#[derive(Clone)]
pub struct AppState {
    pub service: Service,
    pub auth: Auth,
    pub limits: limits::RateLimit,
    /// `[limits] request_timeout_secs` (zero: none).
    pub request_timeout: std::time::Duration,
    pub max_body_bytes: usize,
}

/// The router with all routes and layers.
pub fn router(state: AppState) -> Router {
    let (router, api) = api_router().split_for_parts();
    serve(router, api, state)
}

/// The routes and their description, one declaration each.
fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(page))
        .routes(routes!(asset))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(me))
        .routes(routes!(search))
        .routes(routes!(ask))
        .routes(routes!(chat::completions))
        .routes(routes!(chat::models))
        .routes(routes!(graph_concepts))
        .routes(routes!(graph_concept))
        .routes(routes!(graph_communities))
        .routes(routes!(graph_community))
        .routes(routes!(upload, list_documents))
        .routes(routes!(get_document, delete_document))
        .routes(routes!(original))
        .routes(routes!(reindex_document))
        .routes(routes!(admin_reindex))
        .routes(routes!(create_key, list_keys))
        .routes(routes!(revoke_key))
        .routes(routes!(audit))
        .routes(routes!(openapi_json))
        .routes(routes!(docs))
}

/// The OpenAPI description of every route (what `/openapi.json` serves).
pub fn api() -> utoipa::openapi::OpenApi {
    api_router().split_for_parts().1
}

fn serve(router: Router<AppState>, api: utoipa::openapi::OpenApi, state: AppState) -> Router {
    let limit = state.max_body_bytes;
    let timeout = state.request_timeout;
    let spec: Arc<str> = api
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
        .into();
    router
        .route_layer(axum::middleware::from_fn(observe::track))
        .fallback(not_found)
        .layer(axum::Extension(Spec(spec)))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            limit,
            reject_declared_oversize,
        ))
        .layer(axum::middleware::from_fn_with_state(
            timeout,
            limits::time_limit,
        ))
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |req: &axum::http::Request<axum::body::Body>| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", id, method = %req.method(), path = req.uri().path())
                },
            )
            // One access line per request: status and latency, in the request's span.
            .on_response(tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(tower_http::request_id::PropagateRequestIdLayer::x_request_id())
        .layer(tower_http::request_id::SetRequestIdLayer::x_request_id(
            tower_http::request_id::MakeRequestUuid,
        ))
        .with_state(state)
}

/// The spec as JSON, made once.
#[derive(Clone)]
struct Spec(Arc<str>);

/// This description of the API.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", responses((status = 200, description = "this description (OpenAPI 3.1)", content_type = "application/json")))]
async fn openapi_json(axum::Extension(Spec(spec)): axum::Extension<Spec>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        spec.to_string(),
    )
        .into_response()
}

/// A viewer of this description.
#[utoipa::path(get, path = "/docs", tag = "meta", responses((status = 200, description = "a viewer of this description (HTML, built in)", content_type = "text/html")))]
async fn docs() -> Response {
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../assets/docs.html"),
    )
        .into_response()
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

/// The upload-and-ask page.
#[utoipa::path(get, path = "/", tag = "meta", responses((status = 200, description = "the upload-and-ask page (HTML)", content_type = "text/html")))]
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

/// A file of the page (script, style).
#[utoipa::path(get, path = "/assets/{name}", tag = "meta", params(("name" = String, Path, description = "app.js or app.css")),
    responses((status = 200, description = "a file of the page"), (status = 404, body = ErrorBody)))]
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

/// Liveness, the catalog write every index reflects, and for a key the number of documents it may read.
#[utoipa::path(get, path = "/healthz", tag = "meta", security((), ("api_key" = [])),
    responses((status = 200, description = "liveness; with a key, how many documents it may read", body = Health), Refusals))]
async fn healthz(
    State(s): State<AppState>,
    MaybeCaller(p): MaybeCaller,
) -> Result<Response, ApiError> {
    let health = s.service.health(p.as_ref()).await?;
    let mut body = json!(health);
    body["max_upload_bytes"] = json!(s.max_body_bytes);
    Ok(Json(body).into_response())
}

/// Ready when every index has applied the catalog's newest write (503 otherwise).
#[utoipa::path(get, path = "/readyz", tag = "meta",
    responses((status = 200, description = "ready: models loaded, every index caught up with the catalog", body = Readiness),
        (status = 503, description = "not ready; the body says which index lags", body = Readiness)))]
async fn readyz(State(s): State<AppState>) -> Result<Response, ApiError> {
    let r = s.service.readiness().await?;
    let status = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((status, Json(r)).into_response())
}

/// Prometheus metrics, for an admin key of the operator's tenant (`tenant` in the
/// configuration) or a command on the server's machine.
#[utoipa::path(get, path = "/metrics", tag = "meta", security(("api_key" = [])),
    responses((status = 200, description = "Prometheus text format: requests and latency per route and search stage, model queues and batch sizes, index sizes, ingest counts", content_type = "text/plain"), Refusals))]
async fn metrics(State(s): State<AppState>, Caller(p): Caller) -> Result<Response, ApiError> {
    s.service.require_operator(&p)?;
    s.service.readiness().await?;
    let text = observe::recorder().map(|h| h.render()).unwrap_or_default();
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
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

/// Who the key acts as: tenant, groups, role.
#[utoipa::path(get, path = "/v1/me", tag = "meta", security(("api_key" = [])),
    responses((status = 200, description = "the key's tenant, groups and role", body = Me), Refusals))]
async fn me(State(s): State<AppState>, Caller(p): Caller) -> Json<Me> {
    Json(s.service.whoami(&p))
}

/// Hybrid (or BM25, or dense) search within what the key may read.
#[utoipa::path(post, path = "/v1/search", tag = "search", security(("api_key" = [])), request_body = SearchRequest,
    responses((status = 200, description = "the passages, best first, each citing document, page and span", body = SearchResponse), Refusals))]
async fn search(
    State(s): State<AppState>,
    Caller(p): Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: SearchRequest = parse_json(body)?;
    Ok(Json(s.service.search(&p, &req).await?).into_response())
}

/// Answers a question from the passages the key may read, citing them.
#[utoipa::path(post, path = "/v1/ask", tag = "answers", security(("api_key" = [])), request_body = AskRequest,
    responses((status = 200, description = "an answer whose sentences cite their passages, or an abstention with the closest passages; with `stream`, Server-Sent Events `retrieval`, `token`, `citation`, `done` (this body) or `error`", body = Answer), Refusals))]
async fn ask(
    State(s): State<AppState>,
    Caller(p): Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: cairn_core::AskRequest = parse_json(body)?;
    if req.stream {
        return Ok(ask_stream(s, p, req).into_response());
    }
    let answer = s.service.ask(&p, &req, &mut |_| {}).await?;
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
    p: Principal,
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
            .service
            .ask(&p, &req, &mut |e| match e {
                AskEvent::Retrieved(hits) => {
                    let _ = sink.send(event("retrieval", &json!({ "passages": hits })));
                }
                AskEvent::Text(piece) => {
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

/// Uploads one or more files (writer).
#[utoipa::path(post, path = "/v1/documents", tag = "documents", security(("api_key" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, description = "what was stored, and the files refused with their reasons (400 when none was stored)", body = UploadReport), Refusals))]
async fn upload(
    State(s): State<AppState>,
    Caller(p): Caller,
    mut form: Multipart,
) -> Result<Response, ApiError> {
    // Read the whole form first: a request that breaks a limit halfway stores nothing.
    let mut req = UploadRequest::default();
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
                req.files.push(UploadFile {
                    name: file_name,
                    bytes: data.to_vec(),
                });
            }
            None if name == "groups" => {
                let text = field.text().await.map_err(multipart_error)?;
                req.groups = text
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
    let report = s.service.upload(&p, req).await?;
    if report.documents.is_empty() {
        let summary: Vec<String> = report
            .failed
            .iter()
            .map(|f| format!("{}: {}", f.file, f.error.message))
            .collect();
        let body = json!({
            "error": { "code": "bad_request", "message": format!("no file could be ingested: {}", summary.join("; ")) },
            "failed": report.failed,
        });
        return Ok((StatusCode::BAD_REQUEST, Json(body)).into_response());
    }
    Ok((StatusCode::CREATED, Json(report)).into_response())
}

fn query_error(e: QueryRejection) -> ApiError {
    ApiError::user(format!("malformed query string: {}", e.body_text()))
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large("upload is larger than the server's limit")
    } else {
        ApiError::user(format!("malformed multipart upload: {}", e.body_text()))
    }
}

/// The documents the key may read.
#[utoipa::path(get, path = "/v1/documents", tag = "documents", security(("api_key" = [])), params(ListRequest),
    responses((status = 200, description = "the documents the key may read", body = DocumentList), Refusals))]
async fn list_documents(
    State(s): State<AppState>,
    Caller(p): Caller,
    req: Result<Query<ListRequest>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(req) = req.map_err(query_error)?;
    Ok(Json(s.service.list(&p, &req).await?).into_response())
}

/// The concepts of the key's graph, assembled from the chunks it may read only: the
/// graph's size and the concepts whose name contains `q`, most mentioned first.
#[utoipa::path(get, path = "/v1/graph/concepts", tag = "graph", security(("api_key" = [])), params(ConceptQuery),
    responses((status = 200, description = "the graph's size and the matching concepts", body = ConceptList), Refusals))]
async fn graph_concepts(
    State(s): State<AppState>,
    Caller(p): Caller,
    req: Result<Query<ConceptQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(req) = req.map_err(query_error)?;
    Ok(Json(s.service.graph_concepts(&p, &req).await?).into_response())
}

/// A concept of the key's graph: the passages that mention it, its strongest neighbours,
/// and for each edge the passages with a sentence naming both. 404 when the key's graph
/// has no such concept.
#[utoipa::path(get, path = "/v1/graph/concepts/{key}", tag = "graph", security(("api_key" = [])), params(("key" = String, Path), ConceptQuery),
    responses((status = 200, description = "the concept's neighbourhood and its passages", body = ConceptDetail), Refusals))]
async fn graph_concept(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(key): Path<String>,
    req: Result<Query<ConceptQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(req) = req.map_err(query_error)?;
    Ok(Json(s.service.graph_concept(&p, &key, &req).await?).into_response())
}

/// The communities of the key's graph (hierarchical Leiden over the concepts of the chunks
/// it may read) at one level, the most chunks first, each with its extractive report: main
/// concepts, strongest relations with their evidence chunks, representative chunks.
#[utoipa::path(get, path = "/v1/graph/communities", tag = "graph", security(("api_key" = [])), params(CommunityQuery),
    responses((status = 200, description = "the graph's size and its communities at the level", body = CommunityList), Refusals))]
async fn graph_communities(
    State(s): State<AppState>,
    Caller(p): Caller,
    req: Result<Query<CommunityQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(req) = req.map_err(query_error)?;
    Ok(Json(s.service.graph_communities(&p, &req).await?).into_response())
}

/// A community of the key's graph: its report and the passages behind it (representative
/// passages and the relations' evidence). 404 when the key's graph has no such community.
#[utoipa::path(get, path = "/v1/graph/communities/{id}", tag = "graph", security(("api_key" = [])), params(("id" = String, Path), CommunityQuery),
    responses((status = 200, description = "the community's report and its passages", body = CommunityReport), Refusals))]
async fn graph_community(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    req: Result<Query<CommunityQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(req) = req.map_err(query_error)?;
    Ok(Json(s.service.graph_community(&p, &id, &req).await?).into_response())
}

/// A document and its chunks.
#[utoipa::path(get, path = "/v1/documents/{id}", tag = "documents", security(("api_key" = [])), params(("id" = String, Path)),
    responses((status = 200, description = "the document and its chunks", body = DocumentDetail), Refusals))]
async fn get_document(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(s.service.show(&p, &id).await?).into_response())
}

/// The original bytes of an uploaded document, as `application/octet-stream` with its
/// name.
#[utoipa::path(get, path = "/v1/documents/{id}/original", tag = "documents", security(("api_key" = [])), params(("id" = String, Path)),
    responses((status = 200, description = "the uploaded file as it was sent", content_type = "application/octet-stream"), Refusals))]
async fn original(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (doc, bytes) = s.service.original(&p, &id).await?;
    let Some(bytes) = bytes else {
        return Err(ApiError(Error::not_found(format!(
            "document {id} has no kept original (it was not uploaded, or was uploaded before originals were kept)"
        ))));
    };
    let name: String = doc
        .origin
        .file_name()
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/octet-stream".to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// Deletes a document from the catalog and every index (writer).
#[utoipa::path(delete, path = "/v1/documents/{id}", tag = "documents", security(("api_key" = [])), params(("id" = String, Path)),
    responses((status = 200, description = "removed from the catalog and every index", body = Deleted), Refusals))]
async fn delete_document(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(s.service.delete(&p, &id).await?).into_response())
}

/// Reads a document again: its file, when it came from a path on the server, or the
/// original kept when it was uploaded. A changed file, ACL or chunker setting gives a
/// new version; otherwise nothing changes.
#[utoipa::path(post, path = "/v1/documents/{id}/reindex", tag = "documents", security(("api_key" = [])), params(("id" = String, Path)),
    responses((status = 200, description = "read again: `unchanged`, or a new version", body = Reingested), Refusals))]
async fn reindex_document(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(s.service.reingest(&p, &id).await?).into_response())
}

/// Runs `cairn reindex` inside the server (which holds the data dir): for the command
/// when `cairn serve` is running (it sends the data dir's token), or for an admin key on
/// folders under `[ingest] roots`. One run at a time: a second gets 409.
#[utoipa::path(post, path = "/v1/admin/reindex", tag = "admin", security(("api_key" = [])), request_body = ReindexRequest,
    responses((status = 200, description = "the re-index report", body = ReindexReport), (status = 409, description = "another re-index is running", body = ErrorBody), Refusals))]
async fn admin_reindex(
    State(s): State<AppState>,
    Caller(p): Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: ReindexRequest = parse_json(body)?;
    let report = s.service.reindex(&p, req, &mut |_| {}).await?;
    Ok(Json(report).into_response())
}

/// Makes an API key of the tenant (admin); the key is shown once.
#[utoipa::path(post, path = "/v1/admin/keys", tag = "admin", security(("api_key" = [])), request_body = CreateKeyRequest,
    responses((status = 201, description = "the new key; `key` is shown only here", body = CreatedKey), Refusals))]
async fn create_key(
    State(s): State<AppState>,
    Caller(p): Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: CreateKeyRequest = parse_json(body)?;
    let created = s.service.create_key(&p, req).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// The tenant's API keys, without their secrets (admin).
#[utoipa::path(get, path = "/v1/admin/keys", tag = "admin", security(("api_key" = [])),
    responses((status = 200, description = "the tenant's keys, without secrets", body = KeyList), Refusals))]
async fn list_keys(State(s): State<AppState>, Caller(p): Caller) -> Result<Response, ApiError> {
    Ok(Json(s.service.list_keys(&p, None).await?).into_response())
}

/// Revokes an API key of the tenant (admin).
#[utoipa::path(delete, path = "/v1/admin/keys/{id}", tag = "admin", security(("api_key" = [])), params(("id" = String, Path, description = "the key's id: the 16 hex digits after `cairn_`")),
    responses((status = 200, description = "revoked: it stops working at once", body = Revoked), Refusals))]
async fn revoke_key(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(s.service.revoke_key(&p, &id).await?).into_response())
}

/// The tenant's audit log, newest first (admin).
#[utoipa::path(get, path = "/v1/admin/audit", tag = "admin", security(("api_key" = [])), params(AuditRequest),
    responses((status = 200, description = "audit lines of the tenant, newest first", body = AuditLines), Refusals))]
async fn audit(
    State(s): State<AppState>,
    Caller(p): Caller,
    req: Result<Query<AuditRequest>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(req) = req.map_err(query_error)?;
    Ok(Json(s.service.audit(&p, &req).await?).into_response())
}
