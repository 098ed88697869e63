//! Range, precondition and Content-Disposition tests; the expectations marked "probed" were
//! read from PocketBase 0.40.6 serving a 121-byte PNG.

use axum::http::HeaderMap;
use chrono::TimeZone;

use super::*;

fn full(h: &str, size: u64) -> RangeDecision {
    decide_range(Some(h), size, true)
}

#[test]
fn single_ranges() {
    assert_eq!(decide_range(None, 121, true), RangeDecision::Full);
    assert_eq!(full("", 121), RangeDecision::Full);
    // Probed: 0-9 → 206 `bytes 0-9/121`; -5 → `bytes 116-120/121`.
    assert_eq!(full("bytes=0-9", 121), RangeDecision::Partial(0..10));
    assert_eq!(content_range(Some(&(0..10)), 121), "bytes 0-9/121");
    assert_eq!(full("bytes=-5", 121), RangeDecision::Partial(116..121));
    assert_eq!(content_range(Some(&(116..121)), 121), "bytes 116-120/121");
    assert_eq!(full("bytes=100-", 121), RangeDecision::Partial(100..121));
    assert_eq!(full("bytes=100-5000", 121), RangeDecision::Partial(100..121));
    assert_eq!(full("bytes=-500", 121), RangeDecision::Partial(0..121));
    assert_eq!(full("bytes= 3 - 4 ", 121), RangeDecision::Partial(3..5));
    assert_eq!(full("bytes=120-120", 121), RangeDecision::Partial(120..121));
}

#[test]
fn unsatisfiable_and_malformed_ranges_are_416() {
    // Probed: `bytes=500-` on 121 bytes → 416 with `Content-Range: bytes */121`; `bytes=abc`
    // and `items=0-1` → 416.
    for h in [
        "bytes=500-",
        "bytes=121-",
        "bytes=abc",
        "items=0-1",
        "bytes=5-1",
        "bytes=1",
        "bytes=--1",
        "bytes=-",
        "bytes=-0",
        "bytes=1-2-3",
        "bytes=+1-2",
        "bytes=0x10-20",
        "bytes=99999999999999999999999-",
        "bytes=0-99999999999999999999999",
    ] {
        assert_eq!(full(h, 121), RangeDecision::NotSatisfiable, "{h}");
    }
    assert_eq!(content_range(None, 121), "bytes */121");
}

#[test]
fn several_ranges_get_the_whole_file() {
    assert_eq!(full("bytes=0-9,20-29", 121), RangeDecision::Full);
    assert_eq!(full("bytes=0-100,0-100", 121), RangeDecision::Full);
    // A range past the end next to a good one: only the good one counts.
    assert_eq!(full("bytes=500-600, 0-9", 121), RangeDecision::Partial(0..10));
    assert_eq!(full("bytes=0-9,", 121), RangeDecision::Partial(0..10));
}

#[test]
fn empty_files_and_stale_if_range_are_served_whole() {
    assert_eq!(full("bytes=0-9", 0), RangeDecision::Full);
    assert_eq!(decide_range(Some("bytes=0-9"), 121, false), RangeDecision::Full);
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 11, 47, 33).single().expect("date")
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_str(v).expect("value"));
    }
    h
}

#[test]
fn validators() {
    assert_eq!(http_date(at()), "Wed, 02 Dec 2026 11:47:33 GMT");
    assert_eq!(etag(Some("abc"), 1, at()), "\"abc\"");
    assert_eq!(etag(Some("\"abc\""), 1, at()), "\"abc\"");
    assert_eq!(etag(Some("W/\"x\""), 1, at()), "W/\"x\"");
    assert_eq!(etag(Some("a\"b"), 1, at()), "\"ab\"");
    assert_eq!(etag(None, 255, at()), format!("W/\"ff-{:x}\"", at().timestamp()));
}

#[test]
fn conditional_requests() {
    let get = Method::GET;
    let tag = "\"abc\"";
    let check = |pairs: &[(&'static str, &str)], m: &Method| {
        check_preconditions(&headers(pairs), m, tag, at())
    };
    assert_eq!(check(&[], &get), Precondition::Proceed);
    assert_eq!(check(&[("if-none-match", "\"abc\"")], &get), Precondition::NotModified);
    assert_eq!(check(&[("if-none-match", "W/\"abc\"")], &get), Precondition::NotModified);
    assert_eq!(check(&[("if-none-match", "\"x\", \"abc\"")], &get), Precondition::NotModified);
    assert_eq!(check(&[("if-none-match", "*")], &get), Precondition::NotModified);
    assert_eq!(check(&[("if-none-match", "\"other\"")], &get), Precondition::Proceed);
    assert_eq!(check(&[("if-none-match", "\"abc\"")], &Method::POST), Precondition::Failed);
    // Probed: the Last-Modified value echoed back → 304.
    let lm = http_date(at());
    assert_eq!(check(&[("if-modified-since", &lm)], &get), Precondition::NotModified);
    assert_eq!(
        check(&[("if-modified-since", "Wed, 02 Dec 2026 11:47:32 GMT")], &get),
        Precondition::Proceed
    );
    assert_eq!(check(&[("if-modified-since", "garbage")], &get), Precondition::Proceed);
    // If-None-Match wins over If-Modified-Since.
    assert_eq!(
        check(&[("if-none-match", "\"other\""), ("if-modified-since", &lm)], &get),
        Precondition::Proceed
    );
    assert_eq!(check(&[("if-match", "\"abc\"")], &get), Precondition::Proceed);
    assert_eq!(check(&[("if-match", "\"nope\"")], &get), Precondition::Failed);
    assert_eq!(check(&[("if-match", "W/\"abc\"")], &get), Precondition::Failed);
    assert_eq!(
        check(&[("if-unmodified-since", "Wed, 02 Dec 2026 11:00:00 GMT")], &get),
        Precondition::Failed
    );
}

#[test]
fn if_range() {
    let tag = "\"abc\"";
    assert!(if_range_holds(&headers(&[]), tag, at()));
    assert!(if_range_holds(&headers(&[("if-range", "\"abc\"")]), tag, at()));
    assert!(!if_range_holds(&headers(&[("if-range", "\"old\"")]), tag, at()));
    assert!(!if_range_holds(&headers(&[("if-range", "W/\"abc\"")]), tag, at()));
    assert!(if_range_holds(&headers(&[("if-range", &http_date(at()))]), tag, at()));
    assert!(!if_range_holds(&headers(&[("if-range", "Tue, 01 Dec 2026 00:00:00 GMT")]), tag, at()));
    assert_eq!(range_header(&headers(&[("range", "bytes=0-1")])), Some("bytes=0-1"));
}

#[test]
fn content_disposition_is_safe() {
    // Probed: `inline; filename="a_b_22c_686qhchlbl.png"`, `attachment; …` with ?download=1.
    let cd = |n: &str, a| content_disposition(n, a).to_str().expect("ascii").to_string();
    assert_eq!(cd("a_x.png", false), "inline; filename=\"a_x.png\"");
    assert_eq!(cd("a_x.png", true), "attachment; filename=\"a_x.png\"");
    assert_eq!(
        cd("café \"x\".txt", true),
        "attachment; filename=\"caf___x_.txt\"; filename*=UTF-8''caf%C3%A9%20%22x%22.txt"
    );
    for hostile in [
        "a\r\nSet-Cookie: x=y",
        "a\"; filename=\"evil.html",
        "a; filename=x",
        "a\\\"b",
        "\0",
        "日本",
        "",
    ] {
        let v = cd(hostile, false);
        assert!(!v.contains('\r') && !v.contains('\n') && !v.contains('\0'), "{v}");
        let quoted = v.split("filename=\"").nth(1).and_then(|r| r.split('"').next()).expect("q");
        assert!(!quoted.contains('\\'), "{v}");
        assert_eq!(v.matches("filename=").count(), 1, "{v}");
    }
}

#[test]
fn download_flag_is_go_parse_bool() {
    for yes in ["1", "t", "T", "true", "TRUE", "True"] {
        assert!(wants_download(Some(yes)), "{yes}");
    }
    for no in ["0", "false", "", "yes", "on", "2", "tRuE"] {
        assert!(!wants_download(Some(no)), "{no}");
    }
    assert!(!wants_download(None));
}
