//! `multipart/form-data` bodies, read as PocketBase reads them (`tools/router/event.go`
//! `BindBody`, `unmarshal_request_data.go`, Go's `mime/multipart`): plain values become a JSON
//! map (a repeated key becomes an array; `""`, `true`, `false` and numbers that print back the
//! same are typed like PocketBase's `inferValue`), every `@jsonPayload` part is a JSON object
//! merged over them in order, and file parts are kept aside with their detected type. A file stays
//! in memory up to a threshold and is spooled to a temp file past it, so a 10 MB upload never
//! sits in memory whole. Limits: the body size (413), at most 1000 parts (Go's default; 1001 is a
//! 400 there too), the total size of plain values; a part without a name, a broken boundary, a
//! NUL in a value or a file name are 400s. Errors are `ApiError`s in PocketBase's envelope.

use std::path::PathBuf;

use axum::body::Body;
use axum::http::StatusCode;
use bytes::BytesMut;
use futures_util::TryStreamExt;
use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;

use crate::files::mime;
use crate::files::names;
pub use crate::files::upload::{FileContent, UploadedFile};
use crate::http::error::{ApiError, GENERIC_400, TOO_LARGE_413};

/// The key of a part holding a JSON object to merge over the form values.
pub const JSON_PAYLOAD_KEY: &str = "@jsonPayload";

/// How much a multipart body may hold.
#[derive(Clone, Debug)]
pub struct MultipartLimits {
    /// The whole body, in bytes (PocketBase: 32 MiB, plus `maxSize × maxSelect` of every file
    /// field on record create/update).
    pub max_body: u64,
    /// Parts of any kind.
    pub max_parts: usize,
    /// The plain values together (Go allows 10 MB of them).
    pub max_values_bytes: usize,
    /// A file larger than this is spooled to disk.
    pub memory_threshold: usize,
    /// Files kept in memory together; past this every further file is spooled.
    pub max_memory: usize,
    /// Where spooled files go (the system temp dir when `None`).
    pub spool_dir: Option<PathBuf>,
}

impl Default for MultipartLimits {
    fn default() -> Self {
        MultipartLimits {
            max_body: crate::http::middleware::MAX_BODY_BYTES as u64,
            max_parts: 1000,
            max_values_bytes: 10 << 20,
            memory_threshold: 256 << 10,
            max_memory: 4 << 20,
            spool_dir: None,
        }
    }
}

/// A parsed body.
#[derive(Debug, Default)]
pub struct MultipartForm {
    /// Plain values with `@jsonPayload` merged in.
    pub values: Map<String, Value>,
    /// File parts in body order.
    pub files: Vec<UploadedFile>,
}

impl MultipartForm {
    /// The files sent under one field name, in order.
    pub fn files_for<'a>(&'a self, field: &'a str) -> impl Iterator<Item = &'a UploadedFile> + 'a {
        self.files.iter().filter(move |f| f.field == field)
    }
}

/// Whether a `Content-Type` header announces a multipart form (as PocketBase: by prefix).
pub fn is_multipart(content_type: &str) -> bool {
    content_type.trim_start().to_ascii_lowercase().starts_with("multipart/form-data")
}

/// Reads a `multipart/form-data` body whose `Content-Type` header is `content_type`.
pub async fn parse(
    content_type: &str,
    body: Body,
    limits: &MultipartLimits,
) -> Result<MultipartForm, ApiError> {
    let boundary =
        multer::parse_boundary(content_type).map_err(|_| ApiError::bad_request(GENERIC_400))?;
    let constraints = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().whole_stream(limits.max_body));
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let mut mp = multer::Multipart::with_constraints(stream, boundary, constraints);

    let mut form = MultipartForm::default();
    let mut payloads: Vec<String> = Vec::new();
    let mut raw: Vec<(String, String)> = Vec::new();
    let (mut parts, mut values_bytes, mut in_memory) = (0usize, 0usize, 0usize);
    while let Some(mut field) = mp.next_field().await.map_err(multer_error)? {
        parts += 1;
        if parts > limits.max_parts {
            return Err(ApiError::bad_request(format!(
                "The multipart body has more than {} parts.",
                limits.max_parts
            )));
        }
        let name = field.name().unwrap_or_default().to_string();
        if name.is_empty() {
            return Err(ApiError::bad_request("A part of the multipart body has no name."));
        }
        if name.contains('\0') {
            return Err(nul_error());
        }
        let file_name =
            field.file_name().map(str::to_string).or_else(|| extended_file_name(&field));
        match file_name.filter(|n| !n.is_empty()) {
            None => {
                let mut buf = BytesMut::new();
                while let Some(chunk) = field.chunk().await.map_err(multer_error)? {
                    values_bytes += chunk.len();
                    if values_bytes > limits.max_values_bytes {
                        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE_413));
                    }
                    buf.extend_from_slice(&chunk);
                }
                let value = String::from_utf8(buf.to_vec()).map_err(|_| {
                    ApiError::bad_request(format!("The value of \"{name}\" is not valid UTF-8."))
                })?;
                if value.contains('\0') {
                    return Err(nul_error());
                }
                if name == JSON_PAYLOAD_KEY {
                    payloads.push(value);
                } else {
                    raw.push((name, value));
                }
            }
            Some(file_name) => {
                if file_name.contains('\0') {
                    return Err(nul_error());
                }
                let budget =
                    limits.max_memory.saturating_sub(in_memory).min(limits.memory_threshold);
                let file = read_file(&mut field, name, &file_name, budget, limits).await?;
                if let FileContent::Memory(b) = &file.content {
                    in_memory += b.len();
                }
                form.files.push(file);
            }
        }
    }
    form.values = values_map(raw);
    for payload in payloads {
        match serde_json::from_str::<Value>(&payload) {
            Ok(Value::Object(obj)) if has_nul(&obj) => return Err(nul_error()),
            Ok(Value::Object(obj)) => form.values.extend(obj),
            _ => return Err(ApiError::bad_request(GENERIC_400)),
        }
    }
    Ok(form)
}

/// PocketBase's `inferValue`: `""` stays a string, `true`/`false` are booleans, a number whose
/// shortest rendering is the text itself is a number (`"5"`, `"-1.5"`; not `"007"`, `"1e3"`,
/// `"1.0"`), anything else is a string.
pub fn infer_value(raw: &str) -> Value {
    match raw {
        "" => Value::String(String::new()),
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => {
            let numeric = raw.bytes().all(|b| b == b'-' || b == b'.' || b.is_ascii_digit());
            let starts = raw.starts_with('-') || raw.starts_with(|c: char| c.is_ascii_digit());
            if numeric && starts {
                if let Ok(f) = raw.parse::<f64>() {
                    // Rust prints the shortest round-trip decimal without an exponent, as Go's
                    // `FormatFloat(f, 'f', -1, 64)` does.
                    if f.is_finite() && f.to_string() == raw {
                        if let Some(n) = serde_json::Number::from_f64(f) {
                            return Value::Number(n);
                        }
                    }
                }
            }
            Value::String(raw.to_string())
        }
    }
}

/// Repeated keys become arrays, in body order, each value typed by [`infer_value`].
fn values_map(raw: Vec<(String, String)>) -> Map<String, Value> {
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for (k, v) in raw {
        match grouped.iter_mut().find(|(name, _)| *name == k) {
            Some((_, vs)) => vs.push(v),
            None => grouped.push((k, vec![v])),
        }
    }
    grouped
        .into_iter()
        .map(|(k, vs)| {
            let value = if vs.len() == 1 {
                infer_value(&vs[0])
            } else {
                Value::Array(vs.iter().map(|v| infer_value(v)).collect())
            };
            (k, value)
        })
        .collect()
}

async fn read_file(
    field: &mut multer::Field<'_>,
    name: String,
    file_name: &str,
    memory_budget: usize,
    limits: &MultipartLimits,
) -> Result<UploadedFile, ApiError> {
    let mut head = BytesMut::new();
    let mut memory = BytesMut::new();
    let mut spool: Option<(tempfile::NamedTempFile, tokio::fs::File)> = None;
    let mut size = 0u64;
    let io_error = |e: std::io::Error| ApiError::internal(std::sync::Arc::new(e));
    while let Some(chunk) = field.chunk().await.map_err(multer_error)? {
        size += chunk.len() as u64;
        if head.len() < mime::SNIFF_LEN {
            let take = (mime::SNIFF_LEN - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        if spool.is_none() && memory.len() + chunk.len() > memory_budget {
            let tmp = match &limits.spool_dir {
                Some(dir) => tempfile::NamedTempFile::new_in(dir),
                None => tempfile::NamedTempFile::new(),
            }
            .map_err(io_error)?;
            let mut file = tokio::fs::File::from_std(tmp.reopen().map_err(io_error)?);
            file.write_all(&memory).await.map_err(io_error)?;
            memory = BytesMut::new();
            spool = Some((tmp, file));
        }
        match &mut spool {
            Some((_, file)) => file.write_all(&chunk).await.map_err(io_error)?,
            None => memory.extend_from_slice(&chunk),
        }
    }
    let content = match spool {
        Some((tmp, mut file)) => {
            file.flush().await.map_err(io_error)?;
            file.sync_data().await.map_err(io_error)?;
            FileContent::Spooled(tmp)
        }
        None => FileContent::Memory(memory.freeze()),
    };
    let head = head.freeze();
    Ok(UploadedFile {
        field: name,
        original_name: names::base_name(file_name).to_string(),
        detected: mime::detect(&head),
        size,
        head,
        content,
    })
}

/// `filename*=UTF-8''caf%C3%A9.txt` (RFC 5987/2231), which Go decodes and multer ignores.
fn extended_file_name(field: &multer::Field<'_>) -> Option<String> {
    let header = field.headers().get(axum::http::header::CONTENT_DISPOSITION)?.to_str().ok()?;
    let value = header.split(';').map(str::trim).find_map(|p| p.strip_prefix("filename*="))?;
    let (charset, rest) = value.split_once('\'')?;
    let (_lang, encoded) = rest.split_once('\'')?;
    if !charset.eq_ignore_ascii_case("utf-8") {
        return None;
    }
    let decoded =
        percent_encoding::percent_decode_str(encoded.trim_matches('"')).decode_utf8().ok()?;
    Some(decoded.into_owned())
}

fn multer_error(e: multer::Error) -> ApiError {
    match &e {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE_413)
        }
        multer::Error::StreamReadFailed(inner) if is_length_limit(inner.as_ref()) => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE_413)
        }
        _ => ApiError::bad_request(GENERIC_400),
    }
}

/// Whether a body read failed because axum's `DefaultBodyLimit` cut it off.
fn is_length_limit(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(err) = next {
        if err.to_string().contains("length limit exceeded") {
            return true;
        }
        next = err.source();
    }
    false
}

/// A NUL anywhere in a JSON payload (keys included, `\u0000` escapes decoded).
fn has_nul(obj: &Map<String, Value>) -> bool {
    fn value(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().any(value),
            Value::Object(m) => has_nul(m),
            _ => false,
        }
    }
    obj.iter().any(|(k, v)| k.contains('\0') || value(v))
}

fn nul_error() -> ApiError {
    ApiError::bad_request(
        "The request body contains a NUL character (\\u0000), which is not allowed.",
    )
}

#[cfg(test)]
#[path = "multipart_tests.rs"]
mod tests;
