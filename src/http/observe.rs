//! Request observability: every request gets an id, runs inside a `request` span, is counted
//! in the metrics and ends with at most one log line. Layers only; no routes, no services.
//!
//! - The id is the client's `x-request-id` when it is sane (1–128 visible ASCII characters),
//!   else a new one from `SequentialIds` (through tower-http's `SetRequestIdLayer`); either way it is echoed in the
//!   response's `x-request-id` (`PropagateRequestIdLayer`).
//! - The span carries method, path (never the query string, which may hold secrets), request
//!   id, and, once known, the matched route template, status and latency. Headers are never
//!   recorded, so `Authorization` cannot reach a log.
//! - A 5xx is logged here and only here, at ERROR, with the `source()` chain of its cause
//!   (`error::ErrorCause`, put in the response by `ApiError` or the panic handler); every
//!   other response gets one DEBUG line (the access log, off by default).
//!
//! The matched route is known only after routing, inside the router, so `observe` puts an
//! empty `RouteSlot` into the request and `TagRoute` (a route layer, which runs only for
//! matched routes) fills it. A slot rather than a response extension: a panicking handler
//! produces no response of its own, yet its request should still count under its route.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::ORIGIN;
use axum::http::{HeaderName, HeaderValue, Method};
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

/// The matched route template of a request, filled in by `TagRoute`.
#[derive(Clone, Default)]
pub struct RouteSlot(Arc<OnceLock<MatchedPath>>);

/// Route layer: records the matched route template on the request span and in its slot.
#[derive(Clone, Copy, Default)]
pub struct TagRouteLayer;

impl<S> tower::Layer<S> for TagRouteLayer {
    type Service = TagRoute<S>;
    fn layer(&self, inner: S) -> TagRoute<S> {
        TagRoute(inner)
    }
}

/// Tags a matched request with its route template (`TagRouteLayer`). A plain service rather
/// than `from_fn`: that boxes the inner service and the future for every request, and this runs
/// on every route.
#[derive(Clone)]
pub struct TagRoute<S>(S);

impl<S, B> tower::Service<axum::http::Request<B>> for TagRoute<S>
where
    S: tower::Service<axum::http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        if let Some(path) = req.extensions().get::<MatchedPath>() {
            tracing::Span::current().record("route", tracing::field::display(path.as_str()));
            if let Some(slot) = req.extensions().get::<RouteSlot>() {
                let _ = slot.0.set(path.clone());
            }
        }
        self.0.call(req)
    }
}

/// Request ids for requests that come without a usable one: a random prefix per server and a
/// counter (`k3j9x2mq-1f`). Unique per server run, and nearly free: a UUID per request costs a
/// trip to the OS random source, which showed in the throughput of cheap requests.
#[derive(Clone)]
pub struct SequentialIds {
    prefix: Arc<str>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl SequentialIds {
    pub fn new() -> SequentialIds {
        SequentialIds {
            prefix: crate::util::random_alnum(8).to_lowercase().into(),
            next: Arc::new(std::sync::atomic::AtomicU64::new(1)),
        }
    }
}

impl SequentialIds {
    /// The next id.
    pub fn next(&self) -> HeaderValue {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Lowercase letters, digits and a dash: always a valid header value.
        HeaderValue::from_str(&format!("{}-{n:x}", self.prefix))
            .unwrap_or(HeaderValue::from_static("basalt"))
    }
}

impl Default for SequentialIds {
    fn default() -> Self {
        SequentialIds::new()
    }
}

/// What the edge middleware needs: this server's metrics and request-id source.
pub struct Edge {
    pub metrics: Arc<Metrics>,
    pub ids: SequentialIds,
}

/// The one middleware every request passes, outside the router: the request id (a client's
/// sane one kept, else a new one; echoed in the response), observation (span, metrics, at most
/// one log line; outside everything that answers, so a preflight or a 413 is counted too),
/// CORS (preflights answered here, without the security headers, as in PocketBase), the early
/// refusals (`middleware::refuse_early`), then the routes, the security headers and CORS on the
/// way out.
pub async fn edge(State(edge): State<Arc<Edge>>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = client_request_id(&req).unwrap_or_else(|| edge.ids.next());
    req.headers_mut().insert(REQUEST_ID, id.clone());
    let method = req.method().clone();
    let slot = RouteSlot::default();
    req.extensions_mut().insert(slot.clone());
    // Cheap clones (reference-counted bytes): kept for the span and a 5xx line.
    let uri = req.uri().clone();
    let path = uri.path();
    let id_text = id.clone();
    let id_text = id_text.to_str().unwrap_or_default();
    // DEBUG, not INFO: a span and a line per request cost as much as a cheap request itself
    // (measured with pbbench: /api/health at half its throughput with INFO lines on stderr).
    // `BASALT_LOG=info,basalt::http=debug` turns the access log on; 5xx are always logged.
    let span = tracing::debug_span!(
        "request",
        method = %method,
        path = %path,
        request_id = %id_text,
        route = Empty,
        status = Empty,
        latency_ms = Empty,
    );
    let mut res = if method == Method::OPTIONS {
        crate::http::middleware::preflight(&req)
    } else {
        let has_origin = req.headers().contains_key(ORIGIN);
        let mut res = match crate::http::middleware::refuse_early(&req) {
            Some(early) => early,
            None => next.run(req).instrument(span.clone()).await,
        };
        crate::http::middleware::close_if_too_large(&mut res);
        crate::http::middleware::add_security_headers(&mut res);
        crate::http::middleware::add_cors(&mut res, has_origin);
        res
    };
    res.headers_mut().insert(REQUEST_ID, id);
    let took = started.elapsed();
    let status = res.status();
    let route = slot.0.get().map_or(UNMATCHED, MatchedPath::as_str);
    edge.metrics.record_request(route, method.as_str(), status.as_u16(), took);
    if status.is_server_error() {
        // The request's fields are on the event itself: the span is usually disabled.
        let cause = res.extensions().get::<ErrorCause>().map(ErrorCause::chain);
        tracing::error!(
            method = %method,
            path = %path,
            request_id = %id_text,
            route = %route,
            status = status.as_u16(),
            latency_ms = took.as_secs_f64() * 1000.0,
            error = %cause.as_deref().unwrap_or("(no cause recorded)"),
            "request failed"
        );
    } else if !span.is_disabled() {
        span.record("status", status.as_u16());
        span.record("latency_ms", took.as_secs_f64() * 1000.0);
        span.in_scope(|| tracing::debug!("request completed"));
    }
    res
}

/// The client's `x-request-id` when it is sane and sent once.
fn client_request_id(req: &Request) -> Option<HeaderValue> {
    let mut ids = req.headers().get_all(&REQUEST_ID).iter();
    match (ids.next(), ids.next()) {
        (Some(v), None) if is_sane_request_id(v) => Some(v.clone()),
        _ => None,
    }
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
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let routes = Router::new()
            .route("/fail/{x}", get(fails))
            .route("/boom", get(boom))
            .route_layer(TagRouteLayer);
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
        assert!(text.contains("request_id=req-404"), "other requests get a DEBUG line: {text}");
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
