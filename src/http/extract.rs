//! Request extractors: `Req` (the caller as rules see it: auth record, method, headers, query)
//! and `Body` (JSON object, urlencoded or multipart form as a JSON map, with our own error
//! envelope), `Form` (the same with a multipart body's files), and
//! `Query` (typed query parameters, first value wins) and `check_query`, the one check of every
//! query string (run for every request by a middleware).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::files::UploadedFile;
use crate::http::error::{ApiError, GENERIC_400, TOO_LARGE_413};
use crate::http::multipart::{self, MultipartLimits};
use crate::http::AppState;
use crate::model::request::RequestInfo;

/// The request as seen by services and rules.
pub struct Req(pub RequestInfo);

/// Only who is calling (the auth record behind the token, if any): for handlers that evaluate
/// no rule and so need none of the headers and query `Req` copies.
pub struct Caller(pub RequestInfo);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let mut info = RequestInfo { context: "default", ..Default::default() };
        if let Some(h) = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
            let bare = h.trim().trim_start_matches("Bearer ").trim_start_matches("bearer ").trim();
            if bare.starts_with(crate::service::apikeys::PREFIX) {
                info.scopes = state.svc.api_key_scopes(bare).await?;
            } else {
                info.auth = state.svc.authenticate(h).await?;
            }
        }
        Ok(Caller(info))
    }
}

impl FromRequestParts<AppState> for Req {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Caller(mut info) = Caller::from_request_parts(parts, state).await?;
        info.method = parts.method.as_str().to_string();
        // FIXME(#15): behind a trusted proxy, the settings' forwarded-for header.
        if let Some(axum::extract::ConnectInfo(addr)) =
            parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        {
            info.ip = addr.ip().to_string();
        }
        for (name, value) in &parts.headers {
            if name == AUTHORIZATION {
                continue;
            }
            if let Ok(v) = value.to_str() {
                info.headers
                    .insert(crate::util::snake_case(name.as_str()), Value::String(v.to_string()));
            }
        }
        if let Some(q) = parts.uri.query() {
            info.query = form_to_map(q.as_bytes());
        }
        Ok(Req(info))
    }
}

/// Refuses a NUL character in any query parameter, naming it. PostgreSQL cannot bind NUL in text,
/// and elsewhere a NUL silently changes meaning (`fields=id%00,x` matched no `id` and dropped it),
/// so no parameter, known or not, may carry one on any route. PocketBase itself answers a bare 400 for
/// some parameters and ignores NUL in others; one clear rule is better.
pub fn check_query(query: &str) -> Result<(), ApiError> {
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if name.contains('\0') {
            return Err(ApiError::bad_request(format!(
                "Invalid query parameter name \"{}\": NUL characters (\\u0000) are not allowed.",
                name.replace('\0', "\\u0000")
            )));
        }
        if value.contains('\0') {
            return Err(ApiError::bad_request(format!(
                "Invalid \"{name}\" query parameter: NUL characters (\\u0000) are not allowed."
            )));
        }
    }
    Ok(())
}

/// Typed query parameters. Unlike axum's `Query`, a repeated parameter is not an error (a plain
/// text 400): the first value wins, as in PocketBase (Go's `url.Values.Get`), and any failure is
/// our JSON envelope.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut first = Map::new();
        for (k, v) in url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
        {
            first.entry(k.into_owned()).or_insert_with(|| Value::String(v.into_owned()));
        }
        serde_json::from_value(Value::Object(first))
            .map(Query)
            .map_err(|_| ApiError::bad_request(GENERIC_400))
    }
}

/// Parses `a=1&b=2&b=3` into `{"a":"1","b":["2","3"]}`.
pub fn form_to_map(raw: &[u8]) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in url::form_urlencoded::parse(raw) {
        let v = Value::String(v.into_owned());
        match out.get_mut(k.as_ref()) {
            Some(Value::Array(items)) => items.push(v),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, v]);
            }
            None => {
                out.insert(k.into_owned(), v);
            }
        }
    }
    out
}

/// A request body as a JSON object (JSON, `application/x-www-form-urlencoded` or
/// `multipart/form-data`, whose values are typed as PocketBase types them and whose files are
/// dropped: only record writes take files, through [`Form`]).
pub struct Body(pub Map<String, Value>);

/// A request body with its uploaded files (only a multipart body has files).
pub struct Form {
    pub values: Map<String, Value>,
    pub files: Vec<UploadedFile>,
}

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Form { values, .. } = read_form(req, state, &MultipartLimits::default()).await?;
        Ok(Body(values))
    }
}

/// Record writes: a multipart body may be as large as PocketBase allows there, 32 MiB plus
/// `maxSize × maxSelect` of every file field of the collection (the `{c}` path parameter).
impl FromRequest<AppState> for Form {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let params = axum::extract::RawPathParams::from_request_parts(&mut parts, state)
            .await
            .map_err(|_| ApiError::bad_request(GENERIC_400))?;
        let coll = params.iter().find(|(k, _)| *k == "c").map(|(_, v)| v).unwrap_or_default();
        let mut limits = MultipartLimits::default();
        limits.max_body += state.svc.upload_allowance(coll);
        let req = Request::from_parts(parts, body);
        let declared = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > limits.max_body) {
            return Err(ApiError::new(axum::http::StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE_413));
        }
        read_form(req, state, &limits).await
    }
}

/// Any body as values and files; `limits` for a multipart one.
async fn read_form<S: Send + Sync>(
    req: Request,
    state: &S,
    limits: &MultipartLimits,
) -> Result<Form, ApiError> {
    let raw_ct = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if multipart::is_multipart(&raw_ct) {
        let form = multipart::parse(&raw_ct, req.into_body(), limits).await?;
        return Ok(Form { values: form.values, files: form.files });
    }
    let ct = raw_ct.to_ascii_lowercase();
    let bytes = Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(e.status(), TOO_LARGE_413)
        } else {
            ApiError::bad_request(GENERIC_400)
        }
    })?;
    let values = plain_body(&ct, &bytes)?;
    Ok(Form { values, files: Vec::new() })
}

/// A JSON or urlencoded body as a JSON object.
fn plain_body(ct: &str, bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    if ct.starts_with("application/x-www-form-urlencoded") {
        if bytes.contains(&0) || bytes.windows(3).any(|w| w.eq_ignore_ascii_case(b"%00")) {
            return Err(nul_error());
        }
        let mut map = form_to_map(bytes);
        if let Some(Value::String(payload)) = map.remove("@jsonPayload") {
            if let Ok(Value::Object(extra)) = serde_json::from_str(&payload) {
                map.extend(extra);
            }
        }
        return Ok(map);
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) if has_nul(&Value::Object(m.clone())) => Err(nul_error()),
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::bad_request("The request body must be a JSON object.")),
        Err(e) => Err(ApiError::bad_request(format!("{GENERIC_400} Invalid JSON body: {e}."))),
    }
}

/// NUL characters are refused in every body: PostgreSQL cannot store them in text or JSON, and
/// one behaviour on both engines beats silently different data.
fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

fn nul_error() -> ApiError {
    ApiError::bad_request(
        "The request body contains a NUL character (\\u0000), which is not allowed.",
    )
}
