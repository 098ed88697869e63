//! Escapes in filter string literals, end to end: texts are stored as records, then each filter
//! must match exactly the records PocketBase 0.40.6 matched when probed with the same texts and
//! filters, except the rows marked as Basalt's deliberate difference (`\b`, `\f` and `\uXXXX`
//! decode, so the JS SDK's `pb.filter` round-trips every string; `\u0000` is refused).

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{enc, pluck_sorted, spawn_app};

const COLLECTION: &str = "escapes";

/// `(code, stored text)`; the code names the record in the expectations below.
const TEXTS: &[(&str, &str)] = &[
    ("BS", "a\\b"),
    ("DQ", "a\"b"),
    ("SQ", "a'b"),
    ("NL", "C:\new"),
    ("NLRAW", "C:\\new"),
    ("TAB", "tab\there"),
    ("TABRAW", "tab\\there"),
    ("CR", "a\rb"),
    ("Q", "\\q"),
    ("SL", "\\/"),
    ("DOL", "\\$"),
    ("ZERO", "\\0"),
    ("X41", "\\x41"),
    ("OCT", "\\101"),
    ("BA", "\\a"),
    ("BV", "\\v"),
    ("BB", "\\b"),
    ("BBCHAR", "\u{8}"),
    ("FF", "\\f"),
    ("FFCHAR", "\u{c}"),
    ("U41", "\\u0041"),
    ("A", "A"),
    ("CTL", "\u{1}"),
    ("UPPERU", "\\U0001F600"),
    ("PAIR", "\\uD83D\\uDE00"),
    ("EMOJI", "😀"),
    ("LONE", "\\uD83D"),
    ("XBS", "x\\"),
    ("X", "x"),
    ("BSDQ", "a\\\"b"),
    ("BSSQ", "a\\'b"),
    ("QUOTED", "it's \"quoted\" \\ back"),
];

/// Which records a filter matches (sorted codes), or the error status.
type Outcome = Result<&'static [&'static str], u16>;

/// One probe: the filter, what PocketBase 0.40.6 answered, and what Basalt answers. The two
/// differ only on rows marked `deliberate`.
struct Case {
    filter: &'static str,
    pocketbase: Outcome,
    basalt: Outcome,
    deliberate: bool,
}

/// A row where Basalt answers exactly as PocketBase.
const fn same(filter: &'static str, want: Outcome) -> Case {
    Case { filter, pocketbase: want, basalt: want, deliberate: false }
}

/// A row where Basalt differs from PocketBase on purpose.
const fn deliberate(filter: &'static str, pocketbase: Outcome, basalt: Outcome) -> Case {
    Case { filter, pocketbase, basalt, deliberate: true }
}

const CASES: &[Case] = &[
    // `\\`, `\"` and `\'` decode, both quotes in both quote styles.
    same(r#"t = "a\\b""#, Ok(&["BS"])),
    same(r#"t = 'a\\b'"#, Ok(&["BS"])),
    same(r#"t = "a\"b""#, Ok(&["DQ"])),
    same(r#"t = 'a\'b'"#, Ok(&["SQ"])),
    same(r#"t = 'a\"b'"#, Ok(&["DQ"])),
    same(r#"t = "a\'b""#, Ok(&["SQ"])),
    // `\n`, `\t`, `\r` decode in both quote styles.
    same(r#"t = 'C:\new'"#, Ok(&["NL"])),
    same(r#"t = "C:\new""#, Ok(&["NL"])),
    same(r#"t = "C:\\new""#, Ok(&["NLRAW"])),
    same(r#"t = 'C:\\new'"#, Ok(&["NLRAW"])),
    same(r#"t = "tab\there""#, Ok(&["TAB"])),
    same(r#"t = 'tab\there'"#, Ok(&["TAB"])),
    same(r#"t = "tab\\there""#, Ok(&["TABRAW"])),
    same(r#"t = "a\rb""#, Ok(&["CR"])),
    same(r#"t = 'a\rb'"#, Ok(&["CR"])),
    // Any other escape keeps the backslash and the char.
    same(r#"t = "\q""#, Ok(&["Q"])),
    same(r#"t = '\q'"#, Ok(&["Q"])),
    same(r#"t = "\/""#, Ok(&["SL"])),
    same(r#"t = "\$""#, Ok(&["DOL"])),
    same(r#"t = "\0""#, Ok(&["ZERO"])),
    same(r#"t = "\x41""#, Ok(&["X41"])),
    same(r#"t = "\101""#, Ok(&["OCT"])),
    same(r#"t = "\a""#, Ok(&["BA"])),
    same(r#"t = "\v""#, Ok(&["BV"])),
    same(r#"t = "\U0001F600""#, Ok(&["UPPERU"])),
    same(r#"t = "\uD83D""#, Ok(&["LONE"])),
    same(r#"t = "\\uD83D\\uDE00""#, Ok(&["PAIR"])),
    same(r#"t = "\\u0041""#, Ok(&["U41"])),
    // An escaped backslash does not escape the closing quote; an escaped quote never closes.
    same(r#"t = "x\\""#, Ok(&["XBS"])),
    same(r#"t = 'x\\'"#, Ok(&["XBS"])),
    same(r#"t = "x\""#, Err(400)),
    same(r#"t = 'x\'"#, Err(400)),
    same(r#"t = "a\"#, Err(400)),
    same(r#"t = "a\\\"b""#, Ok(&["BSDQ"])),
    same(r#"t = 'a\\\'b'"#, Ok(&["BSSQ"])),
    same(r#"t = "it's \"quoted\" \\ back""#, Ok(&["QUOTED"])),
    // Deliberate: `\b`, `\f`, `\uXXXX` decode (PocketBase keeps them with their backslash).
    deliberate(r#"t = "\b""#, Ok(&["BB"]), Ok(&["BBCHAR"])),
    deliberate(r#"t = '\b'"#, Ok(&["BB"]), Ok(&["BBCHAR"])),
    deliberate(r#"t = "\f""#, Ok(&["FF"]), Ok(&["FFCHAR"])),
    deliberate(r#"t = "\u0041""#, Ok(&["U41"]), Ok(&["A"])),
    deliberate(r#"t = "\u0001""#, Ok(&[]), Ok(&["CTL"])),
    deliberate(r#"t = "\uD83D\uDE00""#, Ok(&["PAIR"]), Ok(&["EMOJI"])),
    deliberate(r#"t = "\ud83d\ude00""#, Ok(&[]), Ok(&["EMOJI"])),
    deliberate(r#"t = "\u0000""#, Ok(&[]), Err(400)),
];

#[tokio::test]
async fn filter_escapes_match_pocketbase() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    app.create_collection(
        &su,
        json!({"name": COLLECTION, "fields": [
            {"name": "code", "type": "text"},
            {"name": "t", "type": "text"},
        ]}),
    )
    .await;
    for (code, text) in TEXTS {
        let rec = app.create_record(Some(&su), COLLECTION, json!({"code": code, "t": text})).await;
        assert_eq!(rec["t"], *text, "{code} stored as written");
    }
    let mut failures = Vec::new();
    for case in CASES {
        let path = format!(
            "/api/collections/{COLLECTION}/records?perPage=100&filter={}",
            enc(case.filter)
        );
        let (status, body) = app.get(&path, Some(&su)).await;
        let got = if status == StatusCode::OK {
            Ok(pluck_sorted(&body, "code"))
        } else {
            Err(status.as_u16())
        };
        let want = case.basalt.map(|codes| codes.iter().map(|c| c.to_string()).collect());
        if got != want {
            failures.push(format!(
                "{} (deliberate: {}, PocketBase: {:?}): want {want:?}, got {got:?} {body}",
                case.filter, case.deliberate, case.pocketbase
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} filters wrong:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
    app.stop().await;
}

#[tokio::test]
async fn filter_escape_errors_explain_themselves() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    app.create_collection(
        &su,
        json!({"name": COLLECTION, "fields": [{"name": "t", "type": "text"}]}),
    )
    .await;
    for (filter, needle) in [
        (r#"t = "x\""#, "unterminated string"),
        (r#"t = "a\"#, "unterminated string"),
        (r#"t = "\u0000""#, "NUL characters are not allowed"),
    ] {
        let path = format!("/api/collections/{COLLECTION}/records?filter={}", enc(filter));
        let (status, body) = app.get(&path, Some(&su)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{filter}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{filter}: {message:?} lacks {needle:?}");
    }
    app.stop().await;
}
