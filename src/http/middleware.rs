//! Cross-cutting layers: PocketBase's CORS and security headers, the body size limit, the NUL
//! check on query strings, the panic → 500 conversion and the JSON 404. No routes, no services.
//! Request ids, the request span, metrics and logging are in `observe`.

use std::any::Any;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_REQUEST_HEADERS, CONNECTION, CONTENT_LENGTH, ORIGIN, VARY,
};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::http::error::{ApiError, TOO_LARGE_413};

/// Bodies larger than this get 413 (files are a later feature; JSON bodies are small). The same
/// default as PocketBase's `DefaultMaxBodySize`.
pub const MAX_BODY_BYTES: usize = 32 << 20;

/// PocketBase's CORS with its default "any origin" settings (its echo-derived middleware, header
/// for header): every response varies on `Origin`; requests with an `Origin` get
/// `Access-Control-Allow-Origin: *`; every `OPTIONS` request is a preflight answered here with
/// 204, whatever the path, so the routes never see `OPTIONS`.
pub async fn cors(req: Request, next: Next) -> Response {
    let has_origin = req.headers().contains_key(ORIGIN);
    if req.method() == Method::OPTIONS {
        let mut res = StatusCode::NO_CONTENT.into_response();
        let h = res.headers_mut();
        h.append(VARY, HeaderValue::from_static("Origin"));
        if has_origin {
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
        return res;
    }
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.append(VARY, HeaderValue::from_static("Origin"));
    if has_origin {
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    }
    res
}

pub fn security_headers() -> [SetResponseHeaderLayer<HeaderValue>; 4] {
    let h = |name: &'static str, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        )
    };
    [
        h("x-content-type-options", "nosniff"),
        h("x-frame-options", "SAMEORIGIN"),
        h("x-xss-protection", "1; mode=block"),
        h("cross-origin-opener-policy", "same-origin"),
    ]
}

/// Refuses a declared `Content-Length` over the limit before a byte of the body is read, and
/// closes the connection: otherwise the client keeps sending a body nobody will read, and a
/// client that waits for an answer before sending the rest waits forever. A body without a
/// declared length (chunked) is cut off where it is read (`extract::Body`, through axum's
/// `DefaultBodyLimit`); its 413 closes the connection too, as the rest of the body is unread.
pub async fn limit_body(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let mut res = if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE_413).into_response()
    } else {
        next.run(req).await
    };
    if res.status() == StatusCode::PAYLOAD_TOO_LARGE {
        res.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

/// Refuses a NUL character in any query parameter (`crate::http::extract::check_query`).
pub async fn refuse_nul_in_query(req: Request, next: Next) -> Response {
    if let Some(q) = req.uri().query() {
        if let Err(e) = crate::http::extract::check_query(q) {
            return e.into_response();
        }
    }
    next.run(req).await
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
