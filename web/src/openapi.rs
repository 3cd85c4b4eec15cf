//! The REST API described as OpenAPI 3.1: every route is registered through
//! `utoipa_axum`'s `routes!`, so a route and its description are one declaration and the
//! spec cannot miss a route. Served at `/openapi.json`; `/docs` is a viewer for it, built
//! into the binary (`assets/docs.html`, no CDN).

use cairn_service::wire::ErrorInfo;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// Every error: `{"error": {"code", "message"}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorInfo,
}

/// What any route that needs a key may answer besides its own answers.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // describes responses; never built
pub enum Refusals {
    /// Malformed input: bad JSON, an unknown field (a body cannot widen its scope), a bad
    /// query string.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No key, or one that is malformed, unknown, revoked or expired.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The key's role may not do this.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// No such thing, or one the key may not read.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The body is over `[server] max_body_bytes`.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// Over the key's rate (`[limits]`); see `Retry-After`.
    #[response(status = 429)]
    RateLimited(ErrorBody),
    /// Busy (a full queue, or past `[limits] request_timeout_secs`); see `Retry-After`.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// A multipart upload: one or more `file` parts and an optional `groups` part.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the form; never built
pub struct UploadForm {
    /// The files (repeat the part for several); names are reduced to their base name.
    #[schema(value_type = Vec<String>, format = Binary)]
    file: Vec<Vec<u8>>,
    /// Comma-separated groups that may read the documents (empty: the whole tenant); a
    /// writer may give only its own.
    groups: Option<String>,
}

struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("cairn_<16 hex id>_<64 hex secret>")
                    .description(Some(
                        "An API key (`cairn keys create`, `POST /v1/admin/keys`); also accepted as `X-API-Key`.",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "cairn",
        description = "Enterprise RAG: hybrid search and cited answers over your documents, with tenants, API keys and document permissions on every route."
    ),
    modifiers(&Security),
    components(schemas(ErrorBody)),
    tags(
        (name = "search", description = "Hybrid, BM25, dense, graph and mix search"),
        (name = "graph", description = "The concept graph of the documents the key may read"),
        (name = "answers", description = "Cited answers, and the OpenAI-compatible face"),
        (name = "documents", description = "Uploads and the library"),
        (name = "admin", description = "Keys, the audit log and server-side re-index (admin keys)"),
        (name = "meta", description = "Health, the page, this description")
    )
)]
pub struct ApiDoc;
