//! `/api/collections/{c}/records…`: records CRUD.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use crate::http::error::ApiError;
use crate::http::extract::{Form, Query, Req};
use crate::http::AppState;
use crate::service::params::{ListParams, ViewParams};

type Res<T> = Result<T, ApiError>;

/// List query string; every value stays text so the service can report bad numbers.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQs {
    page: Option<String>,
    per_page: Option<String>,
    sort: Option<String>,
    filter: Option<String>,
    expand: Option<String>,
    fields: Option<String>,
    skip_total: Option<String>,
}

impl From<ListQs> for ListParams {
    fn from(q: ListQs) -> Self {
        ListParams {
            page: q.page,
            per_page: q.per_page,
            sort: q.sort,
            filter: q.filter,
            expand: q.expand,
            fields: q.fields,
            skip_total: q.skip_total,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ViewQs {
    expand: Option<String>,
    fields: Option<String>,
}

impl From<ViewQs> for ViewParams {
    fn from(q: ViewQs) -> Self {
        ViewParams { expand: q.expand, fields: q.fields }
    }
}

pub async fn list(
    State(s): State<AppState>,
    Req(info): Req,
    Path(c): Path<String>,
    Query(q): Query<ListQs>,
) -> Res<Json<Value>> {
    Ok(Json(s.svc.list_records(&c, &q.into(), &info).await?))
}

pub async fn view(
    State(s): State<AppState>,
    Req(info): Req,
    Path((c, id)): Path<(String, String)>,
    Query(q): Query<ViewQs>,
) -> Res<Json<Value>> {
    Ok(Json(s.svc.view_record(&c, &id, &q.into(), &info).await?))
}

pub async fn create(
    State(s): State<AppState>,
    Req(info): Req,
    Path(c): Path<String>,
    Query(q): Query<ViewQs>,
    Form { values, files }: Form,
) -> Res<Json<Value>> {
    Ok(Json(s.svc.create_record_with_files(&c, values, files, &q.into(), &info).await?))
}

pub async fn update(
    State(s): State<AppState>,
    Req(info): Req,
    Path((c, id)): Path<(String, String)>,
    Query(q): Query<ViewQs>,
    Form { values, files }: Form,
) -> Res<Json<Value>> {
    Ok(Json(s.svc.update_record_with_files(&c, &id, values, files, &q.into(), &info).await?))
}

pub async fn delete(
    State(s): State<AppState>,
    Req(info): Req,
    Path((c, id)): Path<(String, String)>,
) -> Res<StatusCode> {
    s.svc.delete_record(&c, &id, &info).await?;
    Ok(StatusCode::NO_CONTENT)
}
