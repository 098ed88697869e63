//! `GET|HEAD /api/health`.

use axum::Json;
use serde_json::{json, Value};

use crate::http::extract::Req;

pub async fn check(Req(info): Req) -> Json<Value> {
    let data = if info.is_superuser() {
        json!({"canBackup": false, "realIP": "", "possibleProxyHeader": ""})
    } else {
        json!({})
    };
    Json(json!({"message": "API is healthy.", "code": 200, "data": data}))
}
