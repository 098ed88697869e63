//! Every route of the API in one list, and the layers every request passes through.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

use crate::http::metrics::Metrics;
use crate::http::routes::{
    auth, collections, files, health, jobs, metrics, realtime, records, settings,
};
use crate::http::{admin_ui, middleware, observe, AppState};

/// The whole HTTP application as one service (`axum::serve` takes it through
/// `axum::ServiceExt::into_make_service`).
pub fn router(state: AppState) -> impl Edged {
    let m = state.metrics.clone();
    let api = Router::new()
        .route("/api/health", get(health::check).head(health::check))
        .route("/api/metrics", get(metrics::render))
        .route("/api/collections", get(collections::list).post(collections::create))
        .route("/api/collections/import", put(collections::import))
        .route("/api/collections/meta/scaffolds", get(collections::scaffolds))
        .route(
            "/api/collections/{c}",
            get(collections::view).patch(collections::update).delete(collections::delete),
        )
        .route("/api/collections/{c}/truncate", delete(collections::truncate))
        .route("/api/collections/{c}/records", get(records::list).post(records::create))
        .route(
            "/api/collections/{c}/records/{id}",
            get(records::view).patch(records::update).delete(records::delete),
        )
        .route("/api/collections/{c}/auth-methods", get(auth::methods))
        .route("/api/collections/{c}/auth-with-password", post(auth::with_password))
        .route("/api/collections/{c}/auth-refresh", post(auth::refresh))
        .route("/api/collections/{c}/request-verification", post(auth::request_verification))
        .route("/api/collections/{c}/confirm-verification", post(auth::confirm_verification))
        .route("/api/collections/{c}/request-password-reset", post(auth::request_password_reset))
        .route("/api/collections/{c}/confirm-password-reset", post(auth::confirm_password_reset))
        .route("/api/collections/{c}/request-email-change", post(auth::request_email_change))
        .route("/api/collections/{c}/confirm-email-change", post(auth::confirm_email_change))
        .route("/api/collections/{c}/impersonate/{id}", post(auth::impersonate))
        .route("/api/collections/{c}/request-otp", post(auth::request_otp))
        .route("/api/collections/{c}/auth-with-otp", post(auth::with_otp))
        .route("/api/realtime", get(realtime::connect).post(realtime::subscribe))
        .route("/api/jobs", get(jobs::list).post(jobs::enqueue))
        .route("/api/jobs/stats", get(jobs::stats))
        .route("/api/jobs/batch", post(jobs::enqueue_batch))
        .route("/api/jobs/claim", post(jobs::claim))
        .route("/api/jobs/{id}/heartbeat", post(jobs::heartbeat))
        .route("/api/jobs/{id}/complete", post(jobs::complete))
        .route("/api/jobs/{id}/fail", post(jobs::fail))
        .route("/api/jobs/{id}", get(jobs::view))
        .route("/api/jobs/{id}/retry", post(jobs::retry))
        .route("/api/settings", get(settings::get).patch(settings::patch))
        .route("/api/crons", get(settings::crons))
        .route("/api/keys", get(settings::keys).post(settings::create_key))
        .route("/api/keys/{id}", delete(settings::delete_key))
        .route(
            "/api/crons/{id}",
            post(settings::run_cron).put(settings::put_cron).delete(settings::delete_cron),
        )
        .route("/api/files/token", post(files::token))
        .route("/api/files/{c}/{id}/{name}", get(files::download).head(files::download))
        .route("/_/", get(admin_ui::index))
        .route("/_/{*path}", get(admin_ui::asset))
        // Only matched routes pass here: their template becomes the request's route label.
        .route_layer(observe::TagRouteLayer)
        // PocketBase has no 405: a known path with another method is an unknown route.
        .method_not_allowed_fallback(middleware::not_found)
        .fallback(middleware::not_found);
    with_edge_layers(api.with_state(state), m)
}

/// Wraps `routes` in the layers every request passes through, outermost first: the edge
/// (`observe::edge`: request id, observation, CORS, early refusals, security headers), panic →
/// 500, the body limit. A separate function so a test can wrap its own handlers in exactly the
/// production stack.
///
/// The layers wrap the router as a plain tower service: through `Router::layer`, axum would put
/// them inside each route's method router, which then stamps an `Allow` header on every answer
/// that came through its fallback (preflights included); and an outer router around the routes
/// would cost a second routing step and a boxed clone per request.
pub fn with_edge_layers(routes: Router, metrics: Arc<Metrics>) -> impl Edged {
    let edge = Arc::new(observe::Edge { metrics, ids: observe::SequentialIds::new() });
    tower::ServiceBuilder::new()
        .layer(axum::middleware::from_fn_with_state(edge, observe::edge))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        // The limit for bodies without a declared length is enforced where bodies are read
        // (`extract::Body`), so that 413 gets the JSON envelope too.
        .layer(DefaultBodyLimit::max(middleware::MAX_BODY_BYTES))
        .service(routes)
}

/// What `with_edge_layers` returns: the application as a cloneable tower service.
pub trait Edged:
    tower::Service<
        axum::extract::Request,
        Response = axum::response::Response,
        Error = std::convert::Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + Sync
    + 'static
{
}

impl<T> Edged for T where
    T: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + Sync
        + 'static
{
}

#[cfg(test)]
mod tests {
    use axum::body::{to_bytes, Body};
    use axum::http::{Request, StatusCode};
    use serde_json::{json, Value};
    use tower::ServiceExt;

    use super::*;

    /// The production layer stack turns a panicking handler into the generic 500 envelope (with
    /// the usual headers) instead of a dropped connection. The panicking route exists only here.
    #[tokio::test]
    async fn a_panicking_handler_is_a_500_with_the_json_envelope() {
        async fn boom() -> &'static str {
            panic!("deliberate panic in a test handler")
        }
        let app =
            with_edge_layers(Router::new().route("/boom", get(boom)), Arc::new(Metrics::new(None)));
        let req = Request::get("/boom").body(Body::empty()).expect("request");
        let res = app.oneshot(req).await.expect("infallible");
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(res.headers()["x-frame-options"], "SAMEORIGIN");
        assert_eq!(res.headers()["content-type"], "application/json");
        assert!(res.headers().contains_key("x-request-id"), "the id is echoed on a panic too");
        let body = to_bytes(res.into_body(), 1 << 16).await.expect("body");
        let body: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(
            body,
            json!({"data": {}, "message": "Something went wrong while processing your request.", "status": 500})
        );
    }
}
