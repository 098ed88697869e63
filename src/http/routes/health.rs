//! `GET|HEAD /api/health`.

use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::http::extract::Caller;

/// What everyone but a superuser gets (PocketBase's answer, keys in serde_json's order).
const GUEST: &str = r#"{"code":200,"data":{},"message":"API is healthy."}"#;

pub async fn check(Caller(info): Caller) -> Response {
    if info.is_superuser() {
        let data = json!({"canBackup": false, "realIP": "", "possibleProxyHeader": ""});
        return Json(json!({"message": "API is healthy.", "code": 200, "data": data}))
            .into_response();
    }
    // A load balancer polls this: no JSON to build per request.
    ([(CONTENT_TYPE, HeaderValue::from_static("application/json"))], GUEST).into_response()
}
