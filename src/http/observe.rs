//! Request observability: every request gets an id, runs inside a `request` span, is counted
//! in the metrics and ends with exactly one log line. Layers only; no routes, no services.
//!
//! - The id is the client's `x-request-id` when it is sane (1–128 visible ASCII characters),
//!   else a new UUID (tower-http's `SetRequestIdLayer`); either way it is echoed in the
//!   response's `x-request-id` (`PropagateRequestIdLayer`).
//! - The span carries method, path (never the query string, which may hold secrets), request
//!   id, and, once known, the matched route template, status and latency. Headers are never
//!   recorded, so `Authorization` cannot reach a log.
//! - A 5xx is logged here and only here, at ERROR, with the `source()` chain of its cause
//!   (`error::ErrorCause`, put in the response by `ApiError` or the panic handler); every
//!   other response gets one INFO line.
//!
//! The matched route is known only after routing, inside the router, so `observe` puts an
//! empty `RouteSlot` into the request and `tag_route` (a route layer, which runs only for
//! matched routes) fills it. A slot rather than a response extension: a panicking handler
//! produces no response of its own, yet its request should still count under its route.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::field::Empty;
use tracing::Instrument;

use crate::http::error::ErrorCause;
use crate::http::metrics::{Metrics, UNMATCHED};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longer client ids are replaced: they end up in every log line of the request.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Whether a client's `x-request-id` may be kept: 1 to `MAX_REQUEST_ID_LEN` visible ASCII
/// characters (no spaces or control characters, which would make log lines ambiguous).
pub fn is_sane_request_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty() && b.len() <= MAX_REQUEST_ID_LEN && b.iter().all(|c| (0x21..=0x7e).contains(c))
}

/// Removes a client's `x-request-id` that is not sane (or is sent more than once), so that
/// `SetRequestIdLayer`, which keeps any id present, generates a fresh one.
pub async fn drop_insane_request_id(mut req: Request, next: Next) -> Response {
    let ids = req.headers().get_all(&REQUEST_ID);
    let mut iter = ids.iter();
    let keep = match (iter.next(), iter.next()) {
        (None, _) => true,
        (Some(v), None) => is_sane_request_id(v),
        (Some(_), Some(_)) => false,
    };
    if !keep {
        req.headers_mut().remove(&REQUEST_ID);
    }
    next.run(req).await
}

/// The matched route template of a request, filled in by `tag_route`.
#[derive(Clone, Default)]
pub struct RouteSlot(Arc<OnceLock<String>>);

/// Route layer: records the matched route template on the request span and in its slot.
pub async fn tag_route(req: Request, next: Next) -> Response {
    if let Some(path) = req.extensions().get::<MatchedPath>() {
        tracing::Span::current().record("route", tracing::field::display(path.as_str()));
        if let Some(slot) = req.extensions().get::<RouteSlot>() {
            let _ = slot.0.set(path.as_str().to_string());
        }
    }
    next.run(req).await
}

/// The span, the metrics and the one log line of every request (see the module docs).
pub async fn observe(
    State(metrics): State<Arc<Metrics>>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let slot = RouteSlot::default();
    req.extensions_mut().insert(slot.clone());
    let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let span = tracing::info_span!(
        "request",
        method = %method,
        path = %req.uri().path(),
        request_id = %id,
        route = Empty,
        status = Empty,
        latency_ms = Empty,
    );
    let res = next.run(req).instrument(span.clone()).await;
    let took = started.elapsed();
    let status = res.status();
    let route = slot.0.get().map_or(UNMATCHED, String::as_str);
    metrics.record_request(route, method.as_str(), status.as_u16(), took);
    span.record("status", status.as_u16());
    span.record("latency_ms", took.as_secs_f64() * 1000.0);
    span.in_scope(|| {
        if status.is_server_error() {
            match res.extensions().get::<ErrorCause>() {
                Some(cause) => tracing::error!(error = %cause.chain(), "request failed"),
                None => tracing::error!("request failed (no cause recorded)"),
            }
        } else {
            tracing::info!("request completed");
        }
    });
    res
}

#[cfg(test)]
mod tests {
    use std::io::{self, Write};
    use std::sync::Mutex;

    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    use super::*;
    use crate::http::error::ApiError;
    use crate::http::router::with_edge_layers;

    /// Log output captured in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().map_err(|_| io::Error::other("poisoned"))?.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    /// A failing handler and a panicking one each give exactly one ERROR line, carrying the
    /// cause, the request id and the route; the Authorization header never reaches the log.
    #[tokio::test]
    async fn a_5xx_is_logged_once_with_its_cause_and_request_id() {
        async fn fails() -> Result<(), ApiError> {
            Err(ApiError::internal(Arc::new(io::Error::other("disk full"))))
        }
        async fn boom() -> &'static str {
            panic!("deliberate panic in a test handler")
        }
        let logs = Captured::default();
        let subscriber =
            tracing_subscriber::fmt().with_writer(logs.clone()).with_ansi(false).finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let routes = Router::new()
            .route("/fail/{x}", get(fails))
            .route("/boom", get(boom))
            .route_layer(axum::middleware::from_fn(tag_route));
        let app = with_edge_layers(routes, Arc::new(Metrics::new(None)));
        for (path, id) in [("/fail/1", "req-fail"), ("/boom", "req-boom"), ("/nope", "req-404")] {
            let req = Request::get(path)
                .header("x-request-id", id)
                .header("authorization", "Bearer top-secret-token")
                .body(Body::empty())
                .expect("request");
            let res = app.clone().oneshot(req).await.expect("infallible");
            assert_eq!(res.headers()["x-request-id"], id);
            let want = if id == "req-404" { StatusCode::NOT_FOUND } else { StatusCode::OK };
            assert!(res.status().is_server_error() || res.status() == want, "{path}");
        }
        let text = String::from_utf8(logs.0.lock().expect("logs").clone()).expect("utf8");
        let errors: Vec<&str> = text.lines().filter(|l| l.contains("ERROR")).collect();
        assert_eq!(errors.len(), 2, "one ERROR line per 5xx:\n{text}");
        assert!(errors[0].contains("req-fail") && errors[0].contains("disk full"), "{text}");
        assert!(
            errors[0].contains("route=/fail/{x}") && errors[0].contains("status=500"),
            "{text}"
        );
        assert!(errors[1].contains("req-boom") && errors[1].contains("deliberate panic"), "{text}");
        assert!(text.contains("request_id=req-404"), "other requests get an INFO line: {text}");
        assert!(!text.contains("top-secret-token"), "{text}");
    }

    #[test]
    fn sane_request_ids() {
        let ok = |s: &str| is_sane_request_id(&HeaderValue::from_str(s).expect("header value"));
        assert!(ok("abc-123"));
        assert!(ok("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"));
        assert!(ok(&"x".repeat(MAX_REQUEST_ID_LEN)));
        assert!(!ok(&"x".repeat(MAX_REQUEST_ID_LEN + 1)));
        assert!(!ok(""));
        assert!(!ok("has space"));
        assert!(!ok("tab\there"));
        let latin1 = HeaderValue::from_bytes(b"caf\xe9").expect("obs-text is a valid header");
        assert!(!is_sane_request_id(&latin1));
    }
}
