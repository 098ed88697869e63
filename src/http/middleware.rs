//! Cross-cutting layers: PocketBase's security headers, CORS, body size limits, the JSON 404.

use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::IntoResponse;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::http::error::ApiError;

/// Bodies larger than this get 413 (files are a later feature; JSON bodies are small).
pub const MAX_BODY_BYTES: usize = 32 << 20;

pub fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::PUT,
            Method::PATCH,
            Method::POST,
            Method::DELETE,
        ])
        .allow_headers(AllowHeaders::mirror_request())
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

/// Unknown routes: PocketBase answers with its envelope and "File not found.".
pub async fn not_found() -> impl IntoResponse {
    ApiError::not_found("File not found.")
}

/// Wrong method on a known route.
pub async fn method_not_allowed() -> impl IntoResponse {
    (
        [(header::ALLOW, "GET, HEAD, POST, PATCH, PUT, DELETE")],
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed."),
    )
}
