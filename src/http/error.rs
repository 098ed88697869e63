//! `ApiError`: the ONLY mapping from errors to HTTP responses, in PocketBase's envelope
//! `{"data":{…},"message":"…","status":N}`. 5xx causes are logged here once and never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::service::ServiceError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub data: Map<String, Value>,
}

pub const GENERIC_400: &str = "Something went wrong while processing your request.";
pub const TOO_LARGE_413: &str = "Request entity too large.";
pub const UNAVAILABLE_503: &str = "The database is unavailable, try again later.";

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), data: Map::new() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::BadRequest { message, data } => {
                ApiError { status: StatusCode::BAD_REQUEST, message, data }
            }
            ServiceError::Unauthorized(m) => ApiError::new(StatusCode::UNAUTHORIZED, m),
            ServiceError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, m),
            ServiceError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, m),
            ServiceError::Internal(cause) => {
                tracing::error!(error = %cause, "request failed");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, GENERIC_400)
            }
            ServiceError::Unavailable(cause) => {
                tracing::error!(error = %cause, "database unavailable");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE_503)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            json!({"data": self.data, "message": self.message, "status": self.status.as_u16()});
        (self.status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unavailable_database_is_a_generic_503() {
        let e = ApiError::from(ServiceError::Unavailable("connection refused: secret".into()));
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.message, "The database is unavailable, try again later.");
        assert!(e.data.is_empty());
    }
}
