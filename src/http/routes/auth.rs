//! `/api/collections/{c}/auth-*`: password login, token refresh, available methods.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::Value;

use crate::http::error::ApiError;
use crate::http::extract::{Body, Query, Req};
use crate::http::routes::records::ViewQs;
use crate::http::AppState;
use crate::service::auth::PasswordLogin;

type Res<T> = Result<T, ApiError>;

pub async fn methods(State(s): State<AppState>, Path(c): Path<String>) -> Res<Json<Value>> {
    Ok(Json(s.svc.auth_methods(&c)?))
}

pub async fn with_password(
    State(s): State<AppState>,
    Req(info): Req,
    Path(c): Path<String>,
    Query(q): Query<ViewQs>,
    Body(body): Body,
) -> Res<Json<Value>> {
    let login: PasswordLogin = serde_json::from_value(Value::Object(body))
        .map_err(|_| ApiError::bad_request(crate::http::error::GENERIC_400))?;
    Ok(Json(s.svc.auth_with_password(&c, login, &q.into(), &info).await?))
}

pub async fn refresh(
    State(s): State<AppState>,
    Req(info): Req,
    Path(c): Path<String>,
    Query(q): Query<ViewQs>,
) -> Res<Json<Value>> {
    Ok(Json(s.svc.auth_refresh(&c, &q.into(), &info).await?))
}
