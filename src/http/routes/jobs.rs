//! `/api/jobs…`: the job queue over HTTP (superusers): enqueue, list, view, stats, retry.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use crate::http::error::ApiError;
use crate::http::extract::{Body, Query, Req};
use crate::http::AppState;
use crate::service::jobs::{ClaimRequest, EnqueueRequest, LeaseRequest};

type Res<T> = Result<T, ApiError>;

/// `POST /api/jobs`.
pub async fn enqueue(
    State(s): State<AppState>,
    Req(info): Req,
    Body(body): Body,
) -> Res<Json<Value>> {
    let req: EnqueueRequest = serde_json::from_value(Value::Object(body))
        .map_err(|e| ApiError::bad_request(format!("Failed to load the submitted data: {e}.")))?;
    let job = s.svc.enqueue_job(req, &info).await?;
    Ok(Json(serde_json::to_value(job).unwrap_or(Value::Null)))
}

/// `POST /api/jobs/batch {"jobs": [...]}`: `{"items": [...]}` in the order given.
pub async fn enqueue_batch(
    State(s): State<AppState>,
    Req(info): Req,
    Body(mut body): Body,
) -> Res<Json<Value>> {
    let jobs = match body.remove("jobs") {
        Some(Value::Array(jobs)) => jobs,
        _ => {
            return Err(ApiError::bad_request(
                "Failed to load the submitted data: \"jobs\" must be an array of jobs.",
            ))
        }
    };
    let reqs = jobs
        .into_iter()
        .enumerate()
        .map(|(i, j)| {
            serde_json::from_value::<EnqueueRequest>(j).map_err(|e| {
                ApiError::bad_request(format!("Failed to load the submitted data: jobs.{i}: {e}."))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let items = s.svc.enqueue_jobs(reqs, &info).await?;
    Ok(Json(serde_json::json!({ "items": items })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQs {
    queue: Option<String>,
    state: Option<String>,
    kind: Option<String>,
    page: Option<i64>,
    per_page: Option<i64>,
}

/// `GET /api/jobs`.
pub async fn list(
    State(s): State<AppState>,
    Req(info): Req,
    Query(q): Query<ListQs>,
) -> Res<Json<Value>> {
    let page = q.page.unwrap_or(1);
    let per_page = q.per_page.unwrap_or(30);
    let out = s
        .svc
        .list_jobs(q.queue.as_deref(), q.state.as_deref(), q.kind.as_deref(), page, per_page, &info)
        .await?;
    Ok(Json(out))
}

/// `GET /api/jobs/stats`.
pub async fn stats(State(s): State<AppState>, Req(info): Req) -> Res<Json<Value>> {
    Ok(Json(s.svc.job_stats(&info).await?))
}

/// `GET /api/jobs/{id}`.
pub async fn view(
    State(s): State<AppState>,
    Req(info): Req,
    Path(id): Path<String>,
) -> Res<Json<Value>> {
    let job = s.svc.view_job(&id, &info).await?;
    Ok(Json(serde_json::to_value(job).unwrap_or(Value::Null)))
}

/// `POST /api/jobs/{id}/retry`.
pub async fn retry(
    State(s): State<AppState>,
    Req(info): Req,
    Path(id): Path<String>,
) -> Res<Json<Value>> {
    let job = s.svc.retry_job(&id, &info).await?;
    Ok(Json(serde_json::to_value(job).unwrap_or(Value::Null)))
}

fn body<T: serde::de::DeserializeOwned>(body: serde_json::Map<String, Value>) -> Res<T> {
    serde_json::from_value(Value::Object(body))
        .map_err(|e| ApiError::bad_request(format!("Failed to load the submitted data: {e}.")))
}

/// `POST /api/jobs/claim` (external workers).
pub async fn claim(State(s): State<AppState>, Req(info): Req, Body(b): Body) -> Res<Json<Value>> {
    Ok(Json(s.svc.claim_for_worker(body::<ClaimRequest>(b)?, &info).await?))
}

/// `POST /api/jobs/{id}/heartbeat`.
pub async fn heartbeat(
    State(s): State<AppState>,
    Req(info): Req,
    Path(id): Path<String>,
    Body(b): Body,
) -> Res<StatusCode> {
    s.svc.heartbeat_for_worker(&id, body::<LeaseRequest>(b)?, &info).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/jobs/{id}/complete`.
pub async fn complete(
    State(s): State<AppState>,
    Req(info): Req,
    Path(id): Path<String>,
    Body(b): Body,
) -> Res<StatusCode> {
    s.svc.complete_for_worker(&id, body::<LeaseRequest>(b)?, &info).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/jobs/{id}/fail`.
pub async fn fail(
    State(s): State<AppState>,
    Req(info): Req,
    Path(id): Path<String>,
    Body(b): Body,
) -> Res<StatusCode> {
    s.svc.fail_for_worker(&id, body::<LeaseRequest>(b)?, &info).await?;
    Ok(StatusCode::NO_CONTENT)
}
