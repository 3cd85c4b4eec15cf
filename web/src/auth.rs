//! Who is calling: the [`Caller`] extractor turns a request's credentials into the
//! [`Principal`] every handler hands to the service. In order:
//!
//! 1. `Authorization: Bearer <key>` (or `X-API-Key: <key>`): the data dir's token (a
//!    `cairn` command on the server's machine handing its work over, acting as the
//!    machine's local admin), or an API key checked by the service. A key that is
//!    malformed, unknown, revoked or expired is refused (401); it never falls through to
//!    the other ways.
//! 2. Proxy mode (`[auth] trusted_header`): the user a trusted proxy named.
//! 3. `--no-auth` (loopback only): requests without credentials act as the configured
//!    tenant's admin, with no more reach into the server's disk than a key.
//! 4. Otherwise 401, saying how to get a key.

use crate::{ApiError, AppState};
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use cairn_core::{Actor, Error, Principal, Role};
use std::sync::Arc;

/// How the server authenticates requests.
#[derive(Clone, Default)]
pub struct Auth {
    /// `--no-auth`: the principal of requests without credentials.
    pub open: Option<Principal>,
    /// The data dir's token and the principal it stands for.
    pub local_token: Option<(Arc<str>, Principal)>,
    /// Proxy mode.
    pub proxy: Option<Proxy>,
}

/// Proxy mode's headers (`[auth]`) and the tenant for users whose proxy names none.
#[derive(Clone, Debug)]
pub struct Proxy {
    pub user_header: String,
    pub tenant_header: String,
    pub groups_header: String,
    pub role_header: String,
    pub default_tenant: String,
}

/// The caller of a request, authenticated.
pub struct Caller(pub Principal);

/// The caller when one presented credentials; `None` for a request without any (the
/// liveness probe answers those too).
pub struct MaybeCaller(pub Option<Principal>);

const NEEDS_KEY: &str = "this server needs an API key: send `Authorization: Bearer <key>`; an admin makes keys with `cairn keys create` or POST /v1/admin/keys";

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| {
            ApiError(Error::unauthenticated(format!(
                "the {name} header is not readable text"
            )))
        }),
    }
}

/// The key a request presents, if any.
fn presented(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    if let Some(v) = header(headers, "authorization")? {
        let Some(key) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        else {
            return Err(ApiError(Error::unauthenticated(
                "the Authorization header must be `Bearer <key>`",
            )));
        };
        return Ok(Some(key.trim()));
    }
    Ok(header(headers, "x-api-key")?.map(str::trim))
}

impl Auth {
    /// The principal of a request; `Ok(None)` when it presents no credentials and the
    /// server is not in `--no-auth` mode.
    pub async fn resolve(
        &self,
        state: &AppState,
        headers: &HeaderMap,
    ) -> Result<Option<Principal>, ApiError> {
        if let Some(key) = presented(headers)? {
            if let Some((token, principal)) = &self.local_token
                && same_secret(key.as_bytes(), token.as_bytes())
            {
                return Ok(Some(principal.clone()));
            }
            return Ok(Some(state.service.authenticate(key).await?));
        }
        if let Some(proxy) = &self.proxy
            && let Some(user) = header(headers, &proxy.user_header)?
        {
            return proxy.principal(user, headers).map(Some);
        }
        Ok(self.open.clone())
    }
}

impl Proxy {
    fn principal(&self, user: &str, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let user = user.trim();
        if user.is_empty() {
            return Err(ApiError(Error::unauthenticated(format!(
                "the proxy's {} header is empty",
                self.user_header
            ))));
        }
        let tenant = header(headers, &self.tenant_header)?
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .unwrap_or(&self.default_tenant)
            .to_string();
        let groups = header(headers, &self.groups_header)?
            .map(|g| {
                g.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let role = match header(headers, &self.role_header)? {
            None => Role::Reader,
            Some(r) => Role::parse(r.trim()).ok_or_else(|| {
                ApiError(Error::unauthenticated(format!(
                    "the proxy's {} header names no role (reader, writer, admin)",
                    self.role_header
                )))
            })?,
        };
        Ok(Principal {
            tenant,
            groups,
            role,
            actor: Actor::Proxy(user.to_string()),
        })
    }
}

/// Why a request got no caller: refused credentials, or over its rate.
pub enum Refusal {
    Refused(ApiError),
    OverRate { retry_after: u64 },
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Refused(e)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Refused(e) => e.into_response(),
            Refusal::OverRate { retry_after } => crate::limits::too_many(retry_after),
        }
    }
}

fn within_rate(state: &AppState, p: &Principal) -> Result<(), Refusal> {
    state
        .limits
        .check(p)
        .map_err(|retry_after| Refusal::OverRate { retry_after })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Refusal> {
        match state.auth.resolve(state, &parts.headers).await? {
            Some(p) => {
                within_rate(state, &p)?;
                Ok(Caller(p))
            }
            None => Err(ApiError(Error::unauthenticated(NEEDS_KEY)).into()),
        }
    }
}

impl FromRequestParts<AppState> for MaybeCaller {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Refusal> {
        let p = state.auth.resolve(state, &parts.headers).await?;
        if let Some(p) = &p {
            within_rate(state, p)?;
        }
        Ok(MaybeCaller(p))
    }
}

/// Compares two secrets in time that depends only on their lengths.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
