//! HTTP transport (axum only): routes, extractors, the error envelope, middleware, request
//! observability (ids, spans, logs, metrics) and the embedded admin UI. Handlers parse, call one
//! service function and render; no SQL, no rules.

pub mod admin_ui;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod middleware;
pub mod multipart;
pub mod observe;
pub mod ranges;
pub mod router;
pub mod routes;

use std::sync::Arc;

use crate::http::metrics::Metrics;
use crate::service::Service;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub svc: Arc<Service>,
    /// This server's metrics (one recorder per app, see `metrics`).
    pub metrics: Arc<Metrics>,
    /// The realtime clients connected to this process.
    pub hub: Arc<crate::realtime::Hub>,
}
