//! `GET /api/metrics`: Prometheus text for superusers, or for a scraper presenting the
//! configured metrics token (`Authorization: Bearer <token>`). Everyone else gets PocketBase's
//! 401 (guest) or 403 (not a superuser) envelope.

use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::http::error::ApiError;
use crate::http::extract::Req;
use crate::http::metrics;
use crate::http::AppState;
use crate::service::collections::require_superuser;

pub async fn render(
    State(s): State<AppState>,
    headers: HeaderMap,
    Req(info): Req,
) -> Result<Response, ApiError> {
    let authorization = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    if !s.metrics.token_allows(authorization) {
        require_superuser(&info)?;
    }
    let pool = s.svc.pool_stats();
    s.metrics.set_pool(pool.max, pool.idle, pool.in_use);
    let (position, lag_ms) = s.svc.feed_stats();
    s.metrics.set_feed(position, lag_ms);
    match s.svc.job_counts().await {
        Ok(counts) => s.metrics.set_jobs(&counts),
        Err(e) => tracing::debug!(error = %e, "metrics: counting jobs failed"),
    }
    match s.svc.job_waits().await {
        Ok(waits) => s.metrics.set_job_waits(&waits),
        Err(e) => tracing::debug!(error = %e, "metrics: reading job waits failed"),
    }
    let content_type = HeaderValue::from_static(metrics::CONTENT_TYPE);
    Ok(([(CONTENT_TYPE, content_type)], s.metrics.render()).into_response())
}
