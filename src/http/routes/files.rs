//! `/api/files…`: downloads of records' files (and thumbnails) and file tokens. The service
//! decides which file may be read; this handler only turns it into an HTTP answer (validators,
//! `Range`, `Content-Disposition`, PocketBase's fixed headers) and streams the bytes.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE,
    CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, LAST_MODIFIED,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::files::FileError;
use crate::http::error::ApiError;
use crate::http::extract::{Query, Req};
use crate::http::ranges::{self, Precondition, RangeDecision};
use crate::http::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct DownloadQs {
    thumb: Option<String>,
    download: Option<String>,
    token: Option<String>,
}

/// `GET /api/files/{collection}/{recordId}/{filename}`.
pub async fn download(
    State(s): State<AppState>,
    Path((c, id, name)): Path<(String, String, String)>,
    Query(q): Query<DownloadQs>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let served = s.svc.open_file(&c, &id, &name, q.thumb.as_deref(), q.token.as_deref()).await?;
    let meta = &served.meta;
    let etag = ranges::etag(meta.e_tag.as_deref(), meta.size, meta.last_modified);
    let mut out = validator_headers(&etag, meta.last_modified);
    match ranges::check_preconditions(&headers, &method, &etag, meta.last_modified) {
        Precondition::Proceed => {}
        Precondition::NotModified => return Ok((StatusCode::NOT_MODIFIED, out).into_response()),
        Precondition::Failed => {
            return Ok((StatusCode::PRECONDITION_FAILED, out).into_response());
        }
    }
    let attachment = ranges::wants_download(q.download.as_deref())
        || !crate::files::mime::serves_inline(&served.content_type);
    out.insert(CONTENT_TYPE, text(&served.content_type));
    out.insert(CONTENT_DISPOSITION, ranges::content_disposition(&served.name, attachment));
    let holds = ranges::if_range_holds(&headers, &etag, meta.last_modified);
    let (status, range) =
        match ranges::decide_range(ranges::range_header(&headers), meta.size, holds) {
            RangeDecision::Full => (StatusCode::OK, None),
            RangeDecision::Partial(r) => (StatusCode::PARTIAL_CONTENT, Some(r)),
            RangeDecision::NotSatisfiable => return Ok(not_satisfiable(out, meta.size)),
        };
    if let Some(r) = &range {
        out.insert(CONTENT_RANGE, text(&ranges::content_range(Some(r), meta.size)));
    }
    let length = range.as_ref().map_or(meta.size, |r| r.end - r.start);
    out.insert(CONTENT_LENGTH, text(&length.to_string()));
    if method == Method::HEAD || length == 0 {
        return Ok((status, out).into_response());
    }
    if let Some(bytes) = served.bytes {
        let r = range.unwrap_or(0..meta.size);
        let (start, end) = (r.start as usize, (r.end as usize).min(bytes.len()));
        return Ok((status, out, Body::from(bytes.slice(start.min(end)..end))).into_response());
    }
    let opened = s.svc.files().get(&served.key, range).await.map_err(|e| match e {
        FileError::NotFound => ApiError::not_found("The requested resource wasn't found."),
        e => ApiError::internal(std::sync::Arc::new(e)),
    })?;
    Ok((status, out, Body::from_stream(opened.stream)).into_response())
}

/// The headers every answer about a file carries (PocketBase's set, with the validators).
fn validator_headers(etag: &str, last_modified: chrono::DateTime<chrono::Utc>) -> HeaderMap {
    let mut out = HeaderMap::new();
    out.insert(ETAG, text(etag));
    out.insert(LAST_MODIFIED, text(&ranges::http_date(last_modified)));
    out.insert(CACHE_CONTROL, HeaderValue::from_static(ranges::FILE_CACHE_CONTROL));
    out.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(ranges::FILE_CSP));
    out.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    out
}

/// A 416, as Go's file server answers it: a short text, without the file's caching headers.
fn not_satisfiable(mut out: HeaderMap, size: u64) -> Response {
    out.remove(CACHE_CONTROL);
    out.remove(ACCEPT_RANGES);
    out.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    out.insert(CONTENT_RANGE, text(&ranges::content_range(None, size)));
    let body = "The requested range is not satisfiable.\n";
    (StatusCode::RANGE_NOT_SATISFIABLE, out, body).into_response()
}

/// A header value from text we built (never a client's); an impossible bad byte gives "".
fn text(v: &str) -> HeaderValue {
    HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static(""))
}

/// `POST /api/files/token`.
pub async fn token(State(s): State<AppState>, Req(info): Req) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"token": s.svc.file_token(&info)?})))
}
