//! `/api/collections/{c}/auth-*`: password login, token refresh, available methods; the mail
//! flows (verification, password reset, email change) and impersonation.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::http::error::ApiError;
use crate::http::extract::{Body, Query, Req};
use crate::http::routes::records::ViewQs;
use crate::http::AppState;
use crate::service::auth::PasswordLogin;
use crate::service::auth_flows::{
    EmailChangeConfirm, EmailChangeRequest, EmailRequest, OtpLogin, PasswordResetConfirm,
    TokenConfirm,
};
use crate::service::ServiceError;

type Res<T> = Result<T, ApiError>;

pub async fn methods(State(s): State<AppState>, Path(c): Path<String>) -> Res<Json<Value>> {
    Ok(Json(s.svc.auth_methods(&c)?))
}

/// A login's `mfaId` may come in the body or, as the SDK sends its extra options, in the query
/// string (PocketBase reads both).
fn with_mfa_from_query(
    mut body: serde_json::Map<String, Value>,
    info: &crate::model::request::RequestInfo,
) -> serde_json::Map<String, Value> {
    if !body.contains_key("mfaId") {
        if let Some(id) = info.query.get("mfaId") {
            body.insert("mfaId".into(), id.clone());
        }
    }
    body
}

pub async fn with_password(
    State(s): State<AppState>,
    Req(info): Req,
    Path(c): Path<String>,
    Query(q): Query<ViewQs>,
    Body(body): Body,
) -> Res<Response> {
    let body = with_mfa_from_query(body, &info);
    let login: PasswordLogin = serde_json::from_value(Value::Object(body))
        .map_err(|_| ApiError::bad_request(crate::http::error::GENERIC_400))?;
    login_answer(s.svc.auth_with_password(&c, login, &q.into(), &info).await)
}

/// A login's answer: `{token, record}`, or PocketBase's bare 401 `{"mfaId"}` when a second
/// factor is needed, or the error.
fn login_answer(res: Result<Value, ServiceError>) -> Res<Response> {
    match res {
        Ok(v) => Ok(Json(v).into_response()),
        Err(ServiceError::MfaRequired(id)) => {
            Ok((StatusCode::UNAUTHORIZED, Json(serde_json::json!({"mfaId": id}))).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn refresh(
    State(s): State<AppState>,
    Req(info): Req,
    headers: HeaderMap,
    Path(c): Path<String>,
    Query(q): Query<ViewQs>,
) -> Res<Json<Value>> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    Ok(Json(s.svc.auth_refresh(&c, token, &q.into(), &info).await?))
}

/// A flow's body; a value of the wrong type is PocketBase's generic 400.
fn flow_body<T: DeserializeOwned>(body: serde_json::Map<String, Value>) -> Res<T> {
    serde_json::from_value(Value::Object(body))
        .map_err(|_| ApiError::bad_request(crate::http::error::GENERIC_400))
}

pub async fn request_verification(
    State(s): State<AppState>,
    Path(c): Path<String>,
    Body(body): Body,
) -> Res<StatusCode> {
    s.svc.request_verification(&c, flow_body::<EmailRequest>(body)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn confirm_verification(
    State(s): State<AppState>,
    Path(c): Path<String>,
    Body(body): Body,
) -> Res<StatusCode> {
    s.svc.confirm_verification(&c, flow_body::<TokenConfirm>(body)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn request_password_reset(
    State(s): State<AppState>,
    Path(c): Path<String>,
    Body(body): Body,
) -> Res<StatusCode> {
    s.svc.request_password_reset(&c, flow_body::<EmailRequest>(body)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn confirm_password_reset(
    State(s): State<AppState>,
    Path(c): Path<String>,
    Body(body): Body,
) -> Res<StatusCode> {
    s.svc.confirm_password_reset(&c, flow_body::<PasswordResetConfirm>(body)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn request_email_change(
    State(s): State<AppState>,
    Req(info): Req,
    Path(c): Path<String>,
    Body(body): Body,
) -> Res<StatusCode> {
    s.svc.request_email_change(&c, flow_body::<EmailChangeRequest>(body)?, &info).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn confirm_email_change(
    State(s): State<AppState>,
    Path(c): Path<String>,
    Body(body): Body,
) -> Res<StatusCode> {
    s.svc.confirm_email_change(&c, flow_body::<EmailChangeConfirm>(body)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/collections/{c}/impersonate/{id} {duration}`: `duration` whole seconds.
pub async fn impersonate(
    State(s): State<AppState>,
    Req(info): Req,
    Path((c, id)): Path<(String, String)>,
    Query(q): Query<ViewQs>,
    Body(body): Body,
) -> Res<Json<Value>> {
    let duration = match body.get("duration") {
        None | Some(Value::Null) => 0,
        Some(v) => v.as_i64().ok_or_else(|| {
            ApiError::bad_request("An error occurred while loading the submitted data.")
        })?,
    };
    Ok(Json(s.svc.impersonate(&c, &id, duration, &q.into(), &info).await?))
}

pub async fn request_otp(
    State(s): State<AppState>,
    Path(c): Path<String>,
    Body(body): Body,
) -> Res<Json<Value>> {
    Ok(Json(s.svc.request_otp(&c, flow_body::<EmailRequest>(body)?).await?))
}

pub async fn with_otp(
    State(s): State<AppState>,
    Req(info): Req,
    Path(c): Path<String>,
    Query(q): Query<ViewQs>,
    Body(body): Body,
) -> Res<Response> {
    let body = with_mfa_from_query(body, &info);
    login_answer(s.svc.auth_with_otp(&c, flow_body::<OtpLogin>(body)?, &q.into(), &info).await)
}
