//! `/api/settings`, `/api/crons` and `/api/keys` (superusers).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::Value;

use crate::http::error::ApiError;
use crate::http::extract::{Body, Req};
use crate::http::AppState;
use crate::service::crons::CronRequest;

type Res<T> = Result<T, ApiError>;

/// `GET /api/settings`.
pub async fn get(State(s): State<AppState>, Req(info): Req) -> Res<Json<Value>> {
    Ok(Json(s.svc.get_settings(&info).await?))
}

/// `PATCH /api/settings`.
pub async fn patch(State(s): State<AppState>, Req(info): Req, Body(b): Body) -> Res<Json<Value>> {
    Ok(Json(s.svc.update_settings(&info, Value::Object(b)).await?))
}

/// `GET /api/crons`.
pub async fn crons(State(s): State<AppState>, Req(info): Req) -> Res<Json<Value>> {
    Ok(Json(s.svc.list_crons(&info).await?))
}

/// `PUT /api/crons/{id}`.
pub async fn put_cron(
    State(s): State<AppState>,
    Req(info): Req,
    Path(id): Path<String>,
    Body(b): Body,
) -> Res<Json<Value>> {
    let req: CronRequest = serde_json::from_value(Value::Object(b))
        .map_err(|e| ApiError::bad_request(format!("Failed to load the submitted data: {e}.")))?;
    Ok(Json(s.svc.put_cron(&id, req, &info).await?))
}

/// `POST /api/crons/{id}`: run now.
pub async fn run_cron(
    State(s): State<AppState>,
    Req(info): Req,
    Path(id): Path<String>,
) -> Res<StatusCode> {
    s.svc.run_cron(&id, &info).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/crons/{id}`.
pub async fn delete_cron(
    State(s): State<AppState>,
    Req(info): Req,
    Path(id): Path<String>,
) -> Res<StatusCode> {
    s.svc.delete_cron(&id, &info).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/keys`.
pub async fn keys(State(s): State<AppState>, Req(info): Req) -> Res<Json<Value>> {
    Ok(Json(s.svc.list_api_keys(&info).await?))
}

/// `POST /api/keys`.
pub async fn create_key(
    State(s): State<AppState>,
    Req(info): Req,
    Body(b): Body,
) -> Res<Json<Value>> {
    let req: crate::service::apikeys::KeyRequest = serde_json::from_value(Value::Object(b))
        .map_err(|e| ApiError::bad_request(format!("Failed to load the submitted data: {e}.")))?;
    Ok(Json(s.svc.create_api_key(req, &info).await?))
}

/// `DELETE /api/keys/{id}`.
pub async fn delete_key(
    State(s): State<AppState>,
    Req(info): Req,
    Path(id): Path<String>,
) -> Res<StatusCode> {
    s.svc.delete_api_key(&id, &info).await?;
    Ok(StatusCode::NO_CONTENT)
}
