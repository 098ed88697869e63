//! `ApiError`: the ONLY mapping from errors to HTTP responses, in PocketBase's envelope
//! `{"data":{…},"message":"…","status":N}`. A 5xx keeps its cause (the whole `source()` chain)
//! in the response's extensions as `ErrorCause`; `observe::observe` logs it once, with the
//! request id. Nothing here logs, and the cause is never sent.

use std::error::Error;
use std::sync::Arc;

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
    /// Why a 5xx happened, for the log line; never rendered.
    pub cause: Option<Arc<dyn Error + Send + Sync>>,
}

pub const GENERIC_400: &str = "Something went wrong while processing your request.";
pub const TOO_LARGE_413: &str = "Request entity too large.";
pub const UNAVAILABLE_503: &str = "The database is unavailable, try again later.";

/// The cause of a 5xx, carried from the handler to the logging middleware in the response's
/// extensions (extensions must be `Clone`, hence the `Arc`).
#[derive(Clone, Debug)]
pub struct ErrorCause(pub Arc<dyn Error + Send + Sync>);

impl ErrorCause {
    /// The error and its sources, outermost first: `a: b: c`.
    pub fn chain(&self) -> String {
        let mut out = self.0.to_string();
        let mut next = self.0.source();
        while let Some(e) = next {
            out.push_str(": ");
            out.push_str(&e.to_string());
            next = e.source();
        }
        out
    }
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), data: Map::new(), cause: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// The generic 500 envelope, remembering `cause` for the log.
    pub fn internal(cause: Arc<dyn Error + Send + Sync>) -> Self {
        ApiError {
            cause: Some(cause),
            ..ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, GENERIC_400)
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::BadRequest { message, data } => {
                ApiError { status: StatusCode::BAD_REQUEST, message, data, cause: None }
            }
            ServiceError::Unauthorized(m) => ApiError::new(StatusCode::UNAUTHORIZED, m),
            ServiceError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, m),
            ServiceError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, m),
            ServiceError::TooManyRequests(m) => ApiError::new(StatusCode::TOO_MANY_REQUESTS, m),
            // Login routes answer this one themselves (`routes::auth::login_answer`).
            ServiceError::MfaRequired(_) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "Multi-factor authentication required.")
            }
            e @ ServiceError::Unavailable(_) => ApiError {
                cause: Some(Arc::new(e)),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE_503)
            },
            e @ (ServiceError::Internal(_) | ServiceError::Store(_)) => {
                ApiError::internal(Arc::new(e))
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            json!({"data": self.data, "message": self.message, "status": self.status.as_u16()});
        let mut res = (self.status, Json(body)).into_response();
        if let Some(cause) = self.cause {
            res.extensions_mut().insert(ErrorCause(cause));
        }
        res
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

    /// A 5xx keeps its whole chain for the log; the client sees only the generic envelope.
    #[tokio::test]
    async fn a_5xx_keeps_its_chain_for_the_log_and_not_for_the_client() {
        #[derive(Debug, thiserror::Error)]
        #[error("disk I/O error")]
        struct Disk;
        #[derive(Debug, thiserror::Error)]
        #[error("database error")]
        struct Db(#[source] Disk);
        let res = ApiError::internal(Arc::new(Db(Disk))).into_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let cause = res.extensions().get::<ErrorCause>().expect("cause kept");
        assert_eq!(cause.chain(), "database error: disk I/O error");
        let body = axum::body::to_bytes(res.into_body(), 1 << 16).await.expect("body");
        let body: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(body, json!({"data": {}, "message": GENERIC_400, "status": 500}));
    }
}
