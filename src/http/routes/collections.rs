//! `/api/collections…`: superuser-only collection management.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::Value;

use crate::http::error::ApiError;
use crate::http::extract::{Body, Query, Req};
use crate::http::routes::records::ListQs;
use crate::http::AppState;

type Res<T> = Result<T, ApiError>;

pub async fn list(
    State(s): State<AppState>,
    Req(info): Req,
    Query(q): Query<ListQs>,
) -> Res<Json<Value>> {
    Ok(Json(s.svc.list_collections(&q.into(), &info).await?))
}

pub async fn view(
    State(s): State<AppState>,
    Req(info): Req,
    Path(c): Path<String>,
) -> Res<Json<Value>> {
    Ok(Json(s.svc.view_collection(&c, &info)?))
}

pub async fn create(
    State(s): State<AppState>,
    Req(info): Req,
    Body(body): Body,
) -> Res<Json<Value>> {
    Ok(Json(s.svc.create_collection(body, &info).await?))
}

pub async fn update(
    State(s): State<AppState>,
    Req(info): Req,
    Path(c): Path<String>,
    Body(body): Body,
) -> Res<Json<Value>> {
    Ok(Json(s.svc.update_collection(&c, body, &info).await?))
}

pub async fn delete(
    State(s): State<AppState>,
    Req(info): Req,
    Path(c): Path<String>,
) -> Res<StatusCode> {
    s.svc.delete_collection(&c, &info).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn truncate(
    State(s): State<AppState>,
    Req(info): Req,
    Path(c): Path<String>,
) -> Res<StatusCode> {
    s.svc.truncate_collection(&c, &info).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn import(
    State(s): State<AppState>,
    Req(info): Req,
    Body(body): Body,
) -> Res<StatusCode> {
    s.svc.import_collections(body, &info).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn scaffolds(State(s): State<AppState>, Req(info): Req) -> Res<Json<Value>> {
    Ok(Json(s.svc.collection_scaffolds(&info)?))
}
