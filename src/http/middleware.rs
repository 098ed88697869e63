//! The edge's pieces: PocketBase's CORS and security headers, the body size limit, the NUL check
//! on query strings, the panic → 500 conversion and the JSON 404. No routes, no services.
//! `observe::edge`, the one middleware every request passes, applies them in order (one layer
//! rather than one per concern: each axum middleware layer clones and boxes the rest of the
//! stack per request, which cost a third of `/api/health`'s throughput).

use std::any::Any;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_REQUEST_HEADERS, CONNECTION, CONTENT_LENGTH, ORIGIN, VARY,
};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::http::error::{ApiError, TOO_LARGE_413};

/// Bodies larger than this get 413 (files are a later feature; JSON bodies are small). The same
/// default as PocketBase's `DefaultMaxBodySize`.
pub const MAX_BODY_BYTES: usize = 32 << 20;

/// PocketBase's CORS with its default "any origin" settings (its echo-derived middleware, header
/// for header): every `OPTIONS` request is a preflight answered with 204 before routing,
/// whatever the path, so the routes never see `OPTIONS`; without the security headers.
pub fn preflight(req: &Request) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    h.append(VARY, HeaderValue::from_static("Origin"));
    if req.headers().contains_key(ORIGIN) {
        h.append(VARY, HeaderValue::from_static("Access-Control-Request-Method"));
        h.append(VARY, HeaderValue::from_static("Access-Control-Request-Headers"));
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        h.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET,HEAD,PUT,PATCH,POST,DELETE"),
        );
        // No allow-list of headers: whatever the browser asks for is allowed.
        if let Some(asked) = req.headers().get(ACCESS_CONTROL_REQUEST_HEADERS) {
            h.insert(ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
        }
    }
    res
}

/// Every other response varies on `Origin`; requests with an `Origin` get
/// `Access-Control-Allow-Origin: *` (PocketBase's CORS).
pub fn add_cors(res: &mut Response, has_origin: bool) {
    let h = res.headers_mut();
    h.append(VARY, HeaderValue::from_static("Origin"));
    if has_origin {
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    }
}

/// PocketBase's security headers, where the handler did not set them.
pub fn add_security_headers(res: &mut Response) {
    const HEADERS: [(&str, &str); 4] = [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "SAMEORIGIN"),
        ("x-xss-protection", "1; mode=block"),
        ("cross-origin-opener-policy", "same-origin"),
    ];
    let h = res.headers_mut();
    for (name, value) in HEADERS {
        let name = HeaderName::from_static(name);
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
}

/// Answers before routing what must not reach a handler: a declared `Content-Length` over the
/// limit is a 413 before a byte of the body is read (otherwise the client keeps sending a body
/// nobody will read, and one that waits for an answer before sending the rest waits forever),
/// and a NUL in the query string is a 400. A body without a declared length (chunked) is cut
/// off where it is read (`extract::Body`, through axum's `DefaultBodyLimit`). Either 413 closes
/// the connection (`close_if_too_large`).
pub fn refuse_early(req: &Request) -> Option<Response> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) && !is_record_upload(req) {
        return Some(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE_413).into_response());
    }
    // A NUL character in any query parameter (`crate::http::extract::check_query`).
    let q = req.uri().query()?;
    crate::http::extract::check_query(q).err().map(IntoResponse::into_response)
}

/// A multipart record create or update, whose limit grows with the collection's file fields:
/// `extract::Form` checks it (still before reading the body).
fn is_record_upload(req: &Request) -> bool {
    let ct = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    (req.method() == Method::POST || req.method() == Method::PATCH)
        && crate::http::multipart::is_multipart(ct)
        && req.uri().path().starts_with("/api/collections/")
        && req.uri().path().split('/').nth(4) == Some("records")
}

/// A 413 leaves the rest of the body unread: the connection cannot be reused.
pub fn close_if_too_large(res: &mut Response) {
    if res.status() == StatusCode::PAYLOAD_TOO_LARGE {
        res.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    }
}

/// A panic in a handler, as the cause of its 500.
#[derive(Debug, thiserror::Error)]
#[error("request handler panicked: {0}")]
struct Panicked(String);

/// What `tower_http`'s `CatchPanicLayer` answers when a handler panics: the client gets the
/// generic 500 envelope, never a dropped connection; the panic message is its cause, logged
/// once by `observe::observe` with the request id.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    ApiError::internal(Arc::new(Panicked(detail.to_string()))).into_response()
}

/// Unknown routes and known routes with another method. PocketBase serves files for `GET`/`HEAD`
/// on any path it has no route for ("File not found."); every other method reaches its router's
/// own 404, which has another message. It never answers 405.
pub async fn not_found(method: Method) -> ApiError {
    if method == Method::GET || method == Method::HEAD {
        ApiError::not_found("File not found.")
    } else {
        ApiError::not_found("The requested resource wasn't found.")
    }
}
