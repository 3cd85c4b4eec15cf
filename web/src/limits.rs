//! What one caller may ask of the server: a token bucket per key (`[limits]
//! requests_per_second`, `burst`; 429 with `Retry-After` past it), and a time limit per
//! request (503 with `Retry-After`). A `cairn` command on the server's machine (the data
//! dir's token) is not limited. Body size is limited by its own layer
//! (`[server] max_body_bytes`, 413).

use crate::ApiError;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cairn_core::{Actor, Error, ErrorKind, Principal};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// The per-key rate limit; `None` inside: no limit.
#[derive(Clone, Default)]
pub struct RateLimit(Option<Arc<DefaultKeyedRateLimiter<String>>>);

impl RateLimit {
    /// `per_second` requests per second on average, `burst` at once; 0 turns it off.
    pub fn new(per_second: f64, burst: u32) -> RateLimit {
        if per_second <= 0.0 || !per_second.is_finite() {
            return RateLimit(None);
        }
        let period = Duration::from_secs_f64(1.0 / per_second).max(Duration::from_nanos(1));
        let Some(quota) = Quota::with_period(period) else {
            return RateLimit(None);
        };
        let quota = quota.allow_burst(NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN));
        RateLimit(Some(Arc::new(RateLimiter::keyed(quota))))
    }

    /// `Err(seconds to wait)` when `p` is over its rate.
    pub fn check(&self, p: &Principal) -> Result<(), u64> {
        let Some(limiter) = &self.0 else {
            return Ok(());
        };
        if p.actor == Actor::Local {
            return Ok(());
        }
        limiter.check_key(&p.actor.label()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs_f64().ceil().max(1.0) as u64
        })
    }
}

/// A 429 saying when to come back.
pub fn too_many(retry_after: u64) -> Response {
    let mut resp = ApiError(Error::new(
        ErrorKind::RateLimited,
        format!("this key is over its request rate ([limits] requests_per_second); retry in {retry_after} s"),
    ))
    .into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    resp
}

/// Cancels a request that has not answered within the limit, with 503 and `Retry-After`.
pub async fn time_limit(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    if limit.is_zero() {
        return next.run(req).await;
    }
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError(Error::transient(format!(
            "the request did not finish within {} s ([limits] request_timeout_secs); the server may be busy",
            limit.as_secs()
        )))
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_has_its_own_bucket_and_the_local_admin_none() {
        let limit = RateLimit::new(0.5, 2);
        let a = Principal::new("t", vec![]).with_actor(Actor::Key("a".into()));
        let b = Principal::new("t", vec![]).with_actor(Actor::Key("b".into()));
        assert!(limit.check(&a).is_ok() && limit.check(&a).is_ok());
        let wait = limit.check(&a).unwrap_err();
        assert!((1..=2).contains(&wait), "{wait}");
        assert!(limit.check(&b).is_ok(), "another key is not slowed");
        let local = Principal::local("t", vec![]);
        for _ in 0..10 {
            assert!(limit.check(&local).is_ok());
        }
        let off = RateLimit::new(0.0, 1);
        for _ in 0..100 {
            assert!(off.check(&a).is_ok());
        }
    }
}

#[cfg(test)]
mod timeout_tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_request_past_the_time_limit_is_cancelled_with_503_and_retry_after() {
        let app = Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    "late"
                }),
            )
            .route("/quick", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(
                Duration::from_millis(50),
                time_limit,
            ));
        let req = |p: &str| {
            Request::builder()
                .uri(p)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let slow = app.clone().oneshot(req("/slow")).await.unwrap();
        assert_eq!(slow.status(), 503);
        assert_eq!(slow.headers()[header::RETRY_AFTER], "1");
        let quick = app.oneshot(req("/quick")).await.unwrap();
        assert_eq!(quick.status(), 200);
    }
}
