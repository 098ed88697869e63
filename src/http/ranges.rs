//! Download helpers, as Go's `http.ServeContent` and PocketBase's `filesystem.Serve` answer
//! (probed on 0.40.6): `Range: bytes=` (one range → 206; several → the whole file with 200, a
//! deliberate simplification of Go's `multipart/byteranges`; malformed or wholly past the end →
//! 416 with `Content-Range: bytes */size`, as Go), `If-Range`, the validators (`ETag`,
//! `Last-Modified`) with `If-None-Match`/`If-Modified-Since` (304) and `If-Match`/
//! `If-Unmodified-Since` (412), `Content-Disposition` (PocketBase's `inline`/`attachment` and
//! `?download=`, with an RFC 6266 `filename*` when the name is not plain ASCII) and the fixed
//! headers PocketBase sends with files. Pure: headers in, decisions out.

use std::ops::Range;

use axum::http::header::{
    IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE, RANGE,
};
use axum::http::{HeaderMap, HeaderValue, Method};
use chrono::{DateTime, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// PocketBase's `Content-Security-Policy` for served files.
pub const FILE_CSP: &str =
    "default-src 'none'; media-src 'self'; style-src 'unsafe-inline'; sandbox";
/// PocketBase's `Cache-Control` for served files (30 days, revalidate in the background for a
/// day).
pub const FILE_CACHE_CONTROL: &str = "max-age=2592000, stale-while-revalidate=86400";

/// What to send for a `Range` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RangeDecision {
    /// 200 with the whole file.
    Full,
    /// 206 with this byte range (end exclusive).
    Partial(Range<u64>),
    /// 416 with `Content-Range: bytes */size`.
    NotSatisfiable,
}

/// What the conditional headers ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precondition {
    Proceed,
    /// 304: the client's copy is current.
    NotModified,
    /// 412.
    Failed,
}

/// Decides a `Range` header against a file of `size` bytes. `validators_match` is the result of
/// [`if_range_holds`]: a stale `If-Range` means the whole file.
pub fn decide_range(header: Option<&str>, size: u64, validators_match: bool) -> RangeDecision {
    let Some(header) = header.map(str::trim).filter(|h| !h.is_empty()) else {
        return RangeDecision::Full;
    };
    if !validators_match || size == 0 {
        return RangeDecision::Full;
    }
    let Some(spec) = header.strip_prefix("bytes=") else {
        return RangeDecision::NotSatisfiable;
    };
    let mut ranges: Vec<Range<u64>> = Vec::new();
    let mut no_overlap = false;
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((start, end)) = part.split_once('-') else {
            return RangeDecision::NotSatisfiable;
        };
        let (start, end) = (start.trim(), end.trim());
        let number = |s: &str| -> Option<u64> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        if start.is_empty() {
            // `-N`: the last N bytes.
            let Some(n) = number(end) else { return RangeDecision::NotSatisfiable };
            if n == 0 {
                no_overlap = true;
                continue;
            }
            ranges.push(size - n.min(size)..size);
            continue;
        }
        let Some(first) = number(start) else { return RangeDecision::NotSatisfiable };
        if first >= size {
            no_overlap = true;
            continue;
        }
        let last = if end.is_empty() {
            size - 1
        } else {
            match number(end) {
                Some(last) if last >= first => last.min(size - 1),
                _ => return RangeDecision::NotSatisfiable,
            }
        };
        ranges.push(first..last + 1);
    }
    match ranges.as_slice() {
        [] if no_overlap => RangeDecision::NotSatisfiable,
        [] => RangeDecision::Full,
        [one] => RangeDecision::Partial(one.clone()),
        // Several ranges: the whole file (Go sends multipart/byteranges unless they add up to
        // more than the file; a server may always ignore Range).
        _ => RangeDecision::Full,
    }
}

/// `Content-Range` for a 206 (`bytes 0-9/121`) or, with `None`, a 416 (`bytes */121`).
pub fn content_range(range: Option<&Range<u64>>, size: u64) -> String {
    match range {
        Some(r) => format!("bytes {}-{}/{size}", r.start, r.end.saturating_sub(1)),
        None => format!("bytes */{size}"),
    }
}

/// The `ETag` to send: the store's tag, quoted if it is not already; without one, a weak tag
/// from the size and modification time.
pub fn etag(store_tag: Option<&str>, size: u64, last_modified: DateTime<Utc>) -> String {
    match store_tag.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) if t.starts_with('"') || t.starts_with("W/\"") => t.to_string(),
        Some(t) => format!("\"{}\"", t.replace('"', "")),
        None => format!("W/\"{size:x}-{:x}\"", last_modified.timestamp()),
    }
}

/// `Last-Modified` / HTTP-date text: `Wed, 02 Dec 2026 11:47:33 GMT`.
pub fn http_date(at: DateTime<Utc>) -> String {
    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Evaluates the conditional headers as Go's `checkPreconditions` does (times compared in whole
/// seconds, `If-None-Match` before `If-Modified-Since`, `If-Match` before
/// `If-Unmodified-Since`).
pub fn check_preconditions(
    headers: &HeaderMap,
    method: &Method,
    etag: &str,
    last_modified: DateTime<Utc>,
) -> Precondition {
    let get_or_head = method == Method::GET || method == Method::HEAD;
    if let Some(im) = header(headers, IF_MATCH) {
        if !etag_list_matches(im, etag, true) {
            return Precondition::Failed;
        }
    } else if let Some(since) = header(headers, IF_UNMODIFIED_SINCE).and_then(parse_http_date) {
        if last_modified.timestamp() > since.timestamp() {
            return Precondition::Failed;
        }
    }
    if let Some(inm) = header(headers, IF_NONE_MATCH) {
        if etag_list_matches(inm, etag, false) {
            return if get_or_head { Precondition::NotModified } else { Precondition::Failed };
        }
    } else if get_or_head {
        if let Some(since) = header(headers, IF_MODIFIED_SINCE).and_then(parse_http_date) {
            if last_modified.timestamp() <= since.timestamp() {
                return Precondition::NotModified;
            }
        }
    }
    Precondition::Proceed
}

/// Whether a `Range` should be honoured given `If-Range` (absent, or naming the current strong
/// ETag or exactly the current `Last-Modified`).
pub fn if_range_holds(headers: &HeaderMap, etag: &str, last_modified: DateTime<Utc>) -> bool {
    let Some(v) = header(headers, IF_RANGE) else { return true };
    if v.starts_with('"') || v.starts_with("W/") {
        return !v.starts_with("W/") && !etag.starts_with("W/") && v == etag;
    }
    parse_http_date(v).is_some_and(|d| d.timestamp() == last_modified.timestamp())
}

/// The `Range` header's text, if any.
pub fn range_header(headers: &HeaderMap) -> Option<&str> {
    header(headers, RANGE)
}

/// `Content-Disposition` for a served file. Names as `files::names` makes them come out as
/// PocketBase sends them (`inline; filename="a_x.png"`); any other name gets a reduced ASCII
/// fallback and an RFC 6266 `filename*=UTF-8''…`, so no name can break out of the header or
/// add a parameter.
pub fn content_disposition(file_name: &str, attachment: bool) -> HeaderValue {
    let kind = if attachment { "attachment" } else { "inline" };
    // Stored names only hold these (see `files::names`); anything else takes the long way.
    let plain = |c: char| c.is_ascii_alphanumeric() || "._-*+=#".contains(c);
    let value = if !file_name.is_empty() && file_name.chars().all(plain) {
        format!("{kind}; filename=\"{file_name}\"")
    } else {
        let fallback: String = file_name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' })
            .collect();
        const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
            .remove(b'!')
            .remove(b'#')
            .remove(b'$')
            .remove(b'&')
            .remove(b'+')
            .remove(b'-')
            .remove(b'.')
            .remove(b'^')
            .remove(b'_')
            .remove(b'`')
            .remove(b'|')
            .remove(b'~');
        let encoded = utf8_percent_encode(file_name, ATTR_CHAR);
        format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
    };
    // Only visible ASCII and spaces remain, which a header value always accepts.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// `?download=` as PocketBase reads it (Go's `strconv.ParseBool`; anything else is false).
pub fn wants_download(param: Option<&str>) -> bool {
    matches!(param, Some("1" | "t" | "T" | "TRUE" | "true" | "True"))
}

fn header(headers: &HeaderMap, name: axum::http::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

fn parse_http_date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(s).ok().map(|d| d.with_timezone(&Utc))
}

/// `*` or a comma-separated list of entity tags; `strong` for `If-Match` (weak tags never match).
fn etag_list_matches(list: &str, etag: &str, strong: bool) -> bool {
    if list.trim() == "*" {
        return true;
    }
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_string();
    list.split(',').map(str::trim).filter(|t| !t.is_empty()).any(|candidate| {
        if strong {
            !candidate.starts_with("W/") && !etag.starts_with("W/") && candidate == etag
        } else {
            opaque(candidate) == opaque(etag)
        }
    })
}

#[cfg(test)]
#[path = "ranges_tests.rs"]
mod tests;
