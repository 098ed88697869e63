//! Tests of the filter lexer/parser and of `parse_sort`, including property tests (no panics on
//! arbitrary input; printed ASTs re-parse to themselves).

use super::ast::{CmpOp, Expr, Ident, Op, Operand};
use super::{parse, parse_sort, ParseError, SortItem};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Helpers

fn id(raw: &str, segments: &[&str], modifier: Option<&str>) -> Ident {
    Ident {
        raw: raw.to_string(),
        segments: segments.iter().map(|s| s.to_string()).collect(),
        modifier: modifier.map(str::to_string),
    }
}

/// A plain identifier without dots or modifier.
fn field(name: &str) -> Operand {
    Operand::Ident(id(name, &[name], None))
}

fn num(n: f64) -> Operand {
    Operand::Number(n)
}

fn text(s: &str) -> Operand {
    Operand::Text(s.to_string())
}

fn op(kind: CmpOp) -> Op {
    Op { kind, any: false }
}

fn cmp(left: Operand, op: Op, right: Operand) -> Expr {
    Expr::Cmp { left, op, right }
}

fn eq(left: Operand, right: Operand) -> Expr {
    cmp(left, op(CmpOp::Eq), right)
}

fn and(a: Expr, b: Expr) -> Expr {
    Expr::And(Box::new(a), Box::new(b))
}

fn or(a: Expr, b: Expr) -> Expr {
    Expr::Or(Box::new(a), Box::new(b))
}

fn ok(input: &str) -> Expr {
    match parse(input) {
        Ok(expr) => expr,
        Err(e) => panic!("{input:?} should parse, got {e}"),
    }
}

fn fails(input: &str) -> ParseError {
    match parse(input) {
        Ok(expr) => panic!("{input:?} should fail, got {expr:?}"),
        Err(e) => e,
    }
}

/// Asserts that `input` fails at byte `position` with a message containing `needle`.
fn fails_with(input: &str, position: usize, needle: &str) {
    let e = fails(input);
    assert_eq!(e.position, position, "{input:?}: wrong position in {e}");
    assert!(e.message.contains(needle), "{input:?}: {e:?} does not mention {needle:?}");
}

/// The right-hand operand of `f = <operand>`.
fn operand(src: &str) -> Operand {
    match ok(&format!("f = {src}")) {
        Expr::Cmp { right, .. } => right,
        other => panic!("not a comparison: {other:?}"),
    }
}

fn sort_ok(input: &str) -> Vec<SortItem> {
    match parse_sort(input) {
        Ok(items) => items,
        Err(e) => panic!("{input:?} should parse as sort, got {e}"),
    }
}

fn sort_fails(input: &str, position: usize, needle: &str) {
    match parse_sort(input) {
        Ok(items) => panic!("{input:?} should fail, got {items:?}"),
        Err(e) => {
            assert_eq!(e.position, position, "{input:?}: wrong position in {e}");
            assert!(e.message.contains(needle), "{input:?}: {e:?} does not mention {needle:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Structure

#[test]
fn single_comparison() {
    assert_eq!(ok("title = 'abc'"), eq(field("title"), text("abc")));
}

#[test]
fn and_binds_tighter_than_or() {
    let a = eq(field("a"), num(1.0));
    let b = eq(field("b"), num(2.0));
    let c = eq(field("c"), num(3.0));
    assert_eq!(ok("a=1 || b=2 && c=3"), or(a.clone(), and(b.clone(), c.clone())));
    assert_eq!(ok("a=1 && b=2 || c=3"), or(and(a.clone(), b.clone()), c.clone()));
}

#[test]
fn chains_are_left_associative() {
    let a = eq(field("a"), num(1.0));
    let b = eq(field("b"), num(2.0));
    let c = eq(field("c"), num(3.0));
    assert_eq!(ok("a=1 && b=2 && c=3"), and(and(a.clone(), b.clone()), c.clone()));
    assert_eq!(ok("a=1 || b=2 || c=3"), or(or(a.clone(), b.clone()), c.clone()));
}

#[test]
fn parentheses_group() {
    let a = eq(field("a"), num(1.0));
    let b = eq(field("b"), num(2.0));
    let c = eq(field("c"), num(3.0));
    assert_eq!(ok("(a=1 || b=2) && c=3"), and(or(a.clone(), b.clone()), c.clone()));
    assert_eq!(ok("a=1 && (b=2 || c=3)"), and(a.clone(), or(b.clone(), c.clone())));
    assert_eq!(ok("((a=1))"), a.clone());
    assert_eq!(ok("a=1 && (b=2 && c=3)"), and(a.clone(), and(b.clone(), c.clone())));
    assert_eq!(ok(" ( ( a = 1 ) ) "), a);
}

#[test]
fn all_operators() {
    let table = [
        ("=", CmpOp::Eq),
        ("!=", CmpOp::Neq),
        (">", CmpOp::Gt),
        (">=", CmpOp::Gte),
        ("<", CmpOp::Lt),
        ("<=", CmpOp::Lte),
        ("~", CmpOp::Like),
        ("!~", CmpOp::NotLike),
    ];
    for (text_op, kind) in table {
        for any in [false, true] {
            let prefix = if any { "?" } else { "" };
            for src in [
                format!("a {prefix}{text_op} 1"),
                format!("a{prefix}{text_op}1"),
                format!("a{prefix}{text_op}-1"),
            ] {
                let Expr::Cmp { op, .. } = ok(&src) else {
                    panic!("{src:?} is not a comparison");
                };
                assert_eq!(op, Op { kind, any }, "{src:?}");
            }
        }
    }
}

#[test]
fn whitespace_is_optional() {
    assert_eq!(
        ok("views>10&&published=true"),
        and(
            cmp(field("views"), op(CmpOp::Gt), num(10.0)),
            eq(field("published"), Operand::Bool(true))
        )
    );
    assert_eq!(
        ok("(a='x'||b!=\"y\")&&c?~'%z'"),
        and(
            or(eq(field("a"), text("x")), cmp(field("b"), op(CmpOp::Neq), text("y"))),
            cmp(field("c"), Op { kind: CmpOp::Like, any: true }, text("%z"))
        )
    );
    assert_eq!(ok("\t\r\n a \n=\n 1 \u{a0}"), eq(field("a"), num(1.0)));
}

#[test]
fn comments_are_ignored() {
    assert_eq!(ok("a = 1 // trailing"), eq(field("a"), num(1.0)));
    assert_eq!(
        ok("// leading\na = 1 // why\n&& // more\n b = 'x // not a comment' // end"),
        and(eq(field("a"), num(1.0)), eq(field("b"), text("x // not a comment")))
    );
    assert_eq!(ok("a=1//c\n||b=2"), or(eq(field("a"), num(1.0)), eq(field("b"), num(2.0))));
    assert_eq!(ok("a=1// ünïcode ✓"), eq(field("a"), num(1.0)));
    fails_with("// only a comment", 17, "empty filter");
    fails_with("a = // 1", 8, "expected an operand");
}

// ---------------------------------------------------------------------------------------------
// Operands

#[test]
fn literals() {
    assert_eq!(operand("null"), Operand::Null);
    assert_eq!(operand("true"), Operand::Bool(true));
    assert_eq!(operand("false"), Operand::Bool(false));
    assert_eq!(ok("null = true"), eq(Operand::Null, Operand::Bool(true)));
    // Only the exact lowercase words are literals; the resolver handles anything else.
    assert_eq!(operand("NULL"), field("NULL"));
    assert_eq!(operand("nullable"), field("nullable"));
    assert_eq!(operand("true.x"), Operand::Ident(id("true.x", &["true", "x"], None)));
}

#[test]
fn numbers() {
    assert_eq!(operand("10"), num(10.0));
    assert_eq!(operand("-1.5"), num(-1.5));
    assert_eq!(operand("0.5"), num(0.5));
    assert_eq!(operand("0"), num(0.0));
    assert_eq!(operand("007"), num(7.0));
    assert_eq!(operand("-0"), num(0.0));
    assert_eq!(operand("123456789.125"), num(123_456_789.125));
    assert_eq!(ok("-1 < a"), cmp(num(-1.0), op(CmpOp::Lt), field("a")));
}

#[test]
fn invalid_numbers() {
    fails_with("a = 1.2.3", 4, "invalid number \"1.2.3\"");
    fails_with("a = 1.", 4, "invalid number");
    fails_with("a = 1.x", 4, "invalid number");
    fails_with("a = 10px", 4, "invalid number \"10px\"");
    fails_with("a = -", 4, "unexpected character \"-\"");
    fails_with("a = -x", 4, "unexpected character \"-\"");
    fails_with("a = - 1", 4, "unexpected character \"-\"");
    fails_with("a = .5", 4, "unexpected character \".\"");
    let huge = format!("a = 1{}", "0".repeat(400));
    fails_with(&huge, 4, "out of range");
}

/// How a string literal should lex: its decoded text, or an error message containing the needle.
#[derive(Debug, Clone, Copy)]
enum Lexed {
    Text(&'static str),
    Error(&'static str),
}

/// `(literal source, Basalt's result, deliberate)`. Rows with `deliberate: false` are what
/// PocketBase 0.40.6 does (probed on a running server). `deliberate: true` rows differ on
/// purpose: Basalt decodes `\b`, `\f` and `\uXXXX`, which PocketBase keeps as written (backslash
/// included), so the JS SDK's `pb.filter` (JSON.stringify) round-trips every string; and NUL,
/// however written, is refused on every engine.
const ESCAPE_CASES: &[(&str, Lexed, bool)] = {
    use Lexed::{Error, Text};
    &[
        // Plain literals; raw newlines, unicode and `//` are text.
        (r#"'single'"#, Text("single"), false),
        (r#""double""#, Text("double"), false),
        (r#"''"#, Text(""), false),
        (r#""""#, Text(""), false),
        ("'line1\nline2 ✓ 日本'", Text("line1\nline2 ✓ 日本"), false),
        (r#"'http://x'"#, Text("http://x"), false),
        (r#"'say "hi"'"#, Text("say \"hi\""), false),
        (r#""it's""#, Text("it's"), false),
        // Backslash and both quotes decode in both quote styles.
        (r#"'a\\b'"#, Text("a\\b"), false),
        (r#""a\\b""#, Text("a\\b"), false),
        (r#""a\"b""#, Text("a\"b"), false),
        (r#"'a\'b'"#, Text("a'b"), false),
        (r#"'a\"b'"#, Text("a\"b"), false),
        (r#""a\'b""#, Text("a'b"), false),
        (r#"'it\'s'"#, Text("it's"), false),
        // `\n`, `\t`, `\r` decode in both quote styles.
        (r#"'C:\new'"#, Text("C:\new"), false),
        (r#""C:\new""#, Text("C:\new"), false),
        (r#""C:\\new""#, Text("C:\\new"), false),
        (r#"'C:\\new'"#, Text("C:\\new"), false),
        (r#""a\tb""#, Text("a\tb"), false),
        (r#"'a\tb'"#, Text("a\tb"), false),
        (r#""a\rb""#, Text("a\rb"), false),
        (r#"'a\rb'"#, Text("a\rb"), false),
        (r#""tab\there""#, Text("tab\there"), false),
        (r#""\\n""#, Text("\\n"), false),
        // Any other escape keeps the backslash and the char.
        (r#"'\q'"#, Text("\\q"), false),
        (r#""\q""#, Text("\\q"), false),
        (r#""\/""#, Text("\\/"), false),
        (r#""\$""#, Text("\\$"), false),
        (r#""\0""#, Text("\\0"), false),
        (r#"'\0'"#, Text("\\0"), false),
        (r#""\x41""#, Text("\\x41"), false),
        (r#""\101""#, Text("\\101"), false),
        (r#""\a""#, Text("\\a"), false),
        (r#""\v""#, Text("\\v"), false),
        (r#""\U0001F600""#, Text("\\U0001F600"), false),
        (r#""\é""#, Text("\\é"), false),
        // An escaped backslash does not escape the closing quote; an escaped quote never closes.
        (r#""x\\""#, Text("x\\"), false),
        (r#"'x\\'"#, Text("x\\"), false),
        (r#""a\\\"b""#, Text("a\\\"b"), false),
        (r#"'a\\\'b'"#, Text("a\\'b"), false),
        (r#""it's \"quoted\" \\ back""#, Text("it's \"quoted\" \\ back"), false),
        (r#""x\""#, Error("unterminated string"), false),
        (r#"'x\'"#, Error("unterminated string"), false),
        (r#""a\"#, Error("unterminated string"), false),
        (r#"'abc"#, Error("unterminated string"), false),
        (r#""abc'"#, Error("unterminated string"), false),
        (r#"'"#, Error("unterminated string"), false),
        // Deliberate: `\b`, `\f` and `\uXXXX` decode (PocketBase keeps them as written).
        (r#""\b""#, Text("\u{8}"), true),
        (r#"'\b'"#, Text("\u{8}"), true),
        (r#""\f""#, Text("\u{c}"), true),
        (r#""\u0041""#, Text("A"), true),
        (r#"'\u00e9'"#, Text("é"), true),
        (r#""\u00E9""#, Text("é"), true),
        (r#""\u0001\u001f\u007F""#, Text("\u{1}\u{1f}\u{7f}"), true),
        (r#""\u2028""#, Text("\u{2028}"), true),
        (r#""\uD83D\uDE00""#, Text("😀"), true),
        (r#""\ud83d\ude00""#, Text("😀"), true),
        (r#""\uD83D\uD83D\uDE00""#, Text("\\uD83D😀"), true),
        (r#""\\u0041""#, Text("\\u0041"), true),
        // A `\u` that is not 4 hex digits, or a lone surrogate, stays as written.
        (r#""\u""#, Text("\\u"), false),
        (r#""\u12""#, Text("\\u12"), false),
        (r#""\u12G4""#, Text("\\u12G4"), false),
        (r#""\u{41}""#, Text("\\u{41}"), false),
        (r#""\u+041""#, Text("\\u+041"), false),
        (r#""\uD83D""#, Text("\\uD83D"), false),
        (r#""\uD83Dx""#, Text("\\uD83Dx"), false),
        (r#""\uDE00""#, Text("\\uDE00"), false),
        (r#""\uDE00\uD83D""#, Text("\\uDE00\\uD83D"), false),
        (r#""\uD83D\u0041""#, Text("\\uD83DA"), true),
        (r#""\uD83D\u""#, Text("\\uD83D\\u"), false),
        // NUL is refused however it is written.
        (r#""\u0000""#, Error("NUL characters are not allowed"), true),
        (r#""a\uD800\u0000""#, Error("NUL characters are not allowed"), true),
        ("'a\0b'", Error("NUL characters are not allowed"), true),
        ("'a\\\0b'", Error("NUL characters are not allowed"), true),
    ]
};

#[test]
fn string_escapes_table() {
    let mut failures = Vec::new();
    for &(src, want, deliberate) in ESCAPE_CASES {
        let got = parse(&format!("f = {src}"));
        let ok = match (&got, want) {
            (Ok(Expr::Cmp { right: Operand::Text(s), .. }), Lexed::Text(t)) => s == t,
            (Err(e), Lexed::Error(needle)) => e.message.contains(needle),
            _ => false,
        };
        if !ok {
            failures.push(format!("{src} (deliberate: {deliberate}): want {want:?}, got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        ESCAPE_CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn string_error_positions() {
    fails_with("a = 'abc", 4, "unterminated string");
    fails_with("a = 'abc\\'", 4, "unterminated string");
    fails_with("a = 'abc\\", 4, "unterminated string");
    // NUL errors point at the escape (or the raw char) inside the literal.
    fails_with(r#"a = "xy\u0000""#, 7, "NUL characters are not allowed");
    fails_with("a = 'x\0'", 6, "NUL characters are not allowed");
    fails_with("a = 'x\\\0'", 7, "NUL characters are not allowed");
}

#[test]
fn js_sdk_filter_output() {
    // SDK 0.28.1: pb.filter("title = {:t}", { t: "it's \"q\" \\ \n\u{1}" }) writes JSON.stringify.
    assert_eq!(
        ok(r#"title = "it's \"q\" \\ \n\u0001""#),
        eq(field("title"), text("it's \"q\" \\ \n\u{1}"))
    );
    // Objects are JSON.stringify-ed twice: the inner JSON text comes back intact.
    assert_eq!(ok(r#"meta = "{\"a\":\"x\\\"y\"}""#), eq(field("meta"), text(r#"{"a":"x\"y"}"#)));
    // Older SDKs single-quoted strings and escaped only `'`.
    assert_eq!(ok(r"title = 'it\'s'"), eq(field("title"), text("it's")));
}

#[test]
fn identifiers() {
    assert_eq!(operand("title"), field("title"));
    assert_eq!(operand("_x1"), field("_x1"));
    assert_eq!(
        operand("author.name"),
        Operand::Ident(id("author.name", &["author", "name"], None))
    );
    assert_eq!(operand("tags:each"), Operand::Ident(id("tags:each", &["tags"], Some("each"))));
    assert_eq!(
        operand("tags:length"),
        Operand::Ident(id("tags:length", &["tags"], Some("length")))
    );
    assert_eq!(
        operand("@request.auth.id"),
        Operand::Ident(id("@request.auth.id", &["@request", "auth", "id"], None))
    );
    assert_eq!(
        operand("@request.body.title:isset"),
        Operand::Ident(id(
            "@request.body.title:isset",
            &["@request", "body", "title"],
            Some("isset")
        ))
    );
    assert_eq!(
        operand("@collection.posts:p.title:lower"),
        Operand::Ident(id(
            "@collection.posts:p.title:lower",
            &["@collection", "posts:p", "title"],
            Some("lower")
        ))
    );
    assert_eq!(
        operand("@collection.posts:p.title"),
        Operand::Ident(id("@collection.posts:p.title", &["@collection", "posts:p", "title"], None))
    );
    assert_eq!(operand("@now"), Operand::Ident(id("@now", &["@now"], None)));
    assert_eq!(operand("#x"), Operand::Ident(id("#x", &["#x"], None)));
    assert_eq!(operand("a.0.b_c"), Operand::Ident(id("a.0.b_c", &["a", "0", "b_c"], None)));
    // Everything after the first `:` of the last segment is the modifier (validated later).
    assert_eq!(operand("a:b:c"), Operand::Ident(id("a:b:c", &["a"], Some("b:c"))));
    // Both sides of a comparison can be identifiers.
    assert_eq!(
        ok("author = @request.auth.id"),
        eq(
            field("author"),
            Operand::Ident(id("@request.auth.id", &["@request", "auth", "id"], None))
        )
    );
}

#[test]
fn invalid_identifiers() {
    fails_with("a..b = 1", 2, "empty path segment");
    fails_with("a. = 1", 2, "empty path segment");
    fails_with("x = a.", 6, "empty path segment");
    fails_with("x = @request..auth", 13, "empty path segment");
    fails_with("tags: = 1", 5, "expected a name after \":\"");
    fails_with("x = a.:each", 6, "expected a name before \":\"");
    fails_with("x = posts::p.b", 10, "expected a name after \":\"");
    fails_with("x = a.b:", 8, "expected a name after \":\"");
    fails_with("x = $a", 4, "unexpected character \"$\"");
    fails_with("x = é", 4, "unexpected character \"é\"");
    fails_with("x = a-b", 5, "unexpected character \"-\"");
}

#[test]
fn function_calls() {
    assert_eq!(
        ok("strftime('%Y', pub) = '2024'"),
        eq(
            Operand::Func { name: "strftime".to_string(), args: vec![text("%Y"), field("pub")] },
            text("2024")
        )
    );
    assert_eq!(
        ok("geoDistance(lon, lat, 1.5, -2) < 25"),
        cmp(
            Operand::Func {
                name: "geoDistance".to_string(),
                args: vec![field("lon"), field("lat"), num(1.5), num(-2.0)],
            },
            op(CmpOp::Lt),
            num(25.0)
        )
    );
    assert_eq!(operand("now()"), Operand::Func { name: "now".to_string(), args: vec![] });
    assert_eq!(operand("f ( )"), Operand::Func { name: "f".to_string(), args: vec![] });
    assert_eq!(
        operand("outer(inner(a.b:lower), 'x', null, true)"),
        Operand::Func {
            name: "outer".to_string(),
            args: vec![
                Operand::Func {
                    name: "inner".to_string(),
                    args: vec![Operand::Ident(id("a.b:lower", &["a", "b"], Some("lower")))],
                },
                text("x"),
                Operand::Null,
                Operand::Bool(true),
            ],
        }
    );
    assert_eq!(
        ok("a=f(1)&&g()!=2"),
        and(
            eq(field("a"), Operand::Func { name: "f".to_string(), args: vec![num(1.0)] }),
            cmp(Operand::Func { name: "g".to_string(), args: vec![] }, op(CmpOp::Neq), num(2.0))
        )
    );
}

#[test]
fn invalid_function_calls() {
    fails_with("a.b(1) = 1", 0, "invalid function name \"a.b\"");
    fails_with("f:x(1) = 1", 0, "invalid function name");
    fails_with("@f(1) = 1", 0, "invalid function name");
    fails_with("f(1,) = 1", 4, "unexpected \")\", expected an operand");
    fails_with("f(,1) = 1", 2, "unexpected \",\", expected an operand");
    fails_with("f(1 2) = 1", 4, "expected \",\" or \")\" in the call to \"f\"");
    fails_with("f(1", 3, "missing closing \")\" in the call to \"f\"");
    fails_with("f(a = 1) = 1", 4, "expected \",\" or \")\"");
    fails_with("f(1) && a = 1", 5, "expected a comparison operator after \"f(1)\"");
}

// ---------------------------------------------------------------------------------------------
// Errors

#[test]
fn bare_operands_are_errors() {
    fails_with("true", 4, "unexpected end of input, expected a comparison operator after \"true\"");
    fails_with("title", 5, "expected a comparison operator after \"title\"");
    fails_with(
        "title && a = 1",
        6,
        "unexpected \"&&\", expected a comparison operator after \"title\"",
    );
    fails_with("a = 1 || (b)", 11, "expected a comparison operator after \"b\"");
    fails_with("'x'", 3, "expected a comparison operator after \"'x'\"");
}

#[test]
fn dangling_and_missing_parts() {
    fails_with("title = 'a' &&", 14, "unexpected end of input, expected an operand");
    fails_with("title = 'a' ||", 14, "expected an operand");
    fails_with("&& a = 1", 0, "unexpected \"&&\", expected an operand");
    fails_with("a = 1 && && b = 1", 9, "unexpected \"&&\", expected an operand");
    fails_with("title =", 7, "unexpected end of input, expected an operand");
    fails_with("title = = 1", 8, "unexpected \"=\", expected an operand");
    fails_with("title == 1", 7, "unexpected \"=\", expected an operand");
    fails_with("= 1", 0, "expected an operand");
    fails_with("a = 1 b = 2", 6, "unexpected \"b\", expected \"&&\" or \"||\"");
    fails_with("a = 1 'x'", 6, "expected \"&&\" or \"||\"");
    fails_with("", 0, "empty filter");
    fails_with("   ", 3, "empty filter");
}

#[test]
fn parenthesis_errors() {
    fails_with("()", 1, "unexpected \")\", expected an operand");
    fails_with("a = 1 && ()", 10, "expected an operand");
    fails_with("(a = 1", 6, "missing closing \")\" for the \"(\" at character 0");
    fails_with("((a = 1)", 8, "missing closing \")\"");
    fails_with("(a = 1 b = 2)", 7, "unexpected \"b\", expected \"&&\", \"||\" or \")\"");
    fails_with("a = 1)", 5, "unexpected \")\" without a matching \"(\"");
    fails_with(")", 0, "expected an operand");
    fails_with("a = (1)", 4, "unexpected \"(\", expected an operand");
}

#[test]
fn unknown_operators() {
    fails_with("title ^ 'x'", 6, "unexpected character \"^\"");
    fails_with("a = 1 & b = 2", 6, "unexpected \"&\", expected \"&&\"");
    fails_with("a = 1 | b = 2", 6, "unexpected \"|\", expected \"||\"");
    fails_with("a ! 1", 2, "expected \"!=\" or \"!~\"");
    fails_with("a ?! 1", 2, "unknown operator \"?\"");
    fails_with("a ? 1", 2, "unknown operator \"?\"");
    fails_with("a ?? 1", 2, "unknown operator \"?\"");
    fails_with("a => 1", 3, "unexpected \">\", expected an operand");
    fails_with("a / 1", 2, "unexpected character \"/\"");
    fails_with("a = 1 &&& b = 2", 8, "unexpected \"&\", expected \"&&\"");
}

#[test]
fn leftmost_error_wins() {
    // The parser fails at the bare operand before the lexer reaches the bad string.
    fails_with("a && b = 'unterminated", 2, "expected a comparison operator");
    fails_with("a = 'ok' && b ^ 'x", 14, "unexpected character \"^\"");
}

#[test]
fn error_display_includes_position() {
    let e = fails("title = 'a' &&");
    assert_eq!(e.to_string(), "unexpected end of input, expected an operand (at character 14)");
}

#[test]
fn long_snippets_are_truncated() {
    let long = "x".repeat(100);
    let e = fails(&long);
    assert!(e.message.contains(&format!("\"{}...\"", "x".repeat(40))), "{e}");
    assert!(e.message.len() < 120, "{e}");
}

#[test]
fn input_length_limit() {
    let base = "a = 1";
    let pad = " ".repeat(3500 - base.len());
    assert!(parse(&format!("{base}{pad}")).is_ok());
    fails_with(&format!("{base}{pad} "), 3500, "too long");
    assert!(parse_sort(&"a,".repeat(2000)).is_err());
}

#[test]
fn comparison_limit() {
    let at_limit = vec!["a=1"; 200].join("&&");
    assert!(parse(&at_limit).is_ok());
    let over = vec!["a=1"; 201].join("||");
    fails_with(&over, 200 * 5, "too many comparisons (max 200)");
}

#[test]
fn nesting_limit() {
    let nested = |depth: usize| format!("{}a=1{}", "(".repeat(depth), ")".repeat(depth));
    assert_eq!(ok(&nested(32)), eq(field("a"), num(1.0)));
    fails_with(&nested(33), 32, "nesting is too deep");
    fails_with(&"(".repeat(3000), 32, "nesting is too deep");

    let calls = |depth: usize| format!("{}1{} = 1", "f(".repeat(depth), ")".repeat(depth));
    assert!(parse(&calls(32)).is_ok());
    fails_with(&calls(33), 65, "nesting is too deep");
    // Parentheses and calls share the budget.
    let mixed =
        format!("{}{}1{} = 1{}", "(".repeat(16), "f(".repeat(17), ")".repeat(17), ")".repeat(16));
    fails_with(&mixed, 16 + 2 * 16 + 1, "nesting is too deep");
    // Very long flat inputs are fine (no recursion per `&&`).
    let flat = vec!["a=1"; 150].join(" && ");
    assert!(parse(&flat).is_ok());
}

#[test]
fn non_ascii_never_panics() {
    for input in [
        "é",
        "日本 = 1",
        "a = 'é",
        "a = \"😀",
        "a😀 = 1",
        "a = 1 && é",
        "a = 1 // é",
        "\\",
        "'\\",
        "a = '\\é'",
        "a = '\\u00é'",
        "a = '\\ud83d\\u😀'",
        "a = 1é",
        "a=-é",
        "é.a",
        "a.é",
        "a:é",
        "(é",
        "f(é)",
        "a ?é 1",
        "a !é 1",
        "a &é",
        "a |é",
    ] {
        let _ = parse(input);
        let _ = parse_sort(input);
        // Every char-boundary slice too.
        for (i, _) in input.char_indices() {
            let _ = parse(&input[i..]);
            let _ = parse(&input[..i]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sort

fn sort_item(raw: &str, segments: &[&str], modifier: Option<&str>, desc: bool) -> SortItem {
    SortItem { ident: id(raw, segments, modifier), desc }
}

#[test]
fn sort_lists() {
    assert_eq!(
        sort_ok("-created,+title,name"),
        vec![
            sort_item("created", &["created"], None, true),
            sort_item("title", &["title"], None, false),
            sort_item("name", &["name"], None, false),
        ]
    );
    assert_eq!(
        sort_ok(" @random , -@rowid ,author.name , title:lower"),
        vec![
            sort_item("@random", &["@random"], None, false),
            sort_item("@rowid", &["@rowid"], None, true),
            sort_item("author.name", &["author", "name"], None, false),
            sort_item("title:lower", &["title"], Some("lower"), false),
        ]
    );
    // `+` arrives as a space when the query string wasn't percent-encoded.
    assert_eq!(sort_ok(" title"), vec![sort_item("title", &["title"], None, false)]);
    assert_eq!(sort_ok("a,b,c,d,e,f,g,h").len(), 8);
}

#[test]
fn sort_errors() {
    sort_fails("", 0, "empty sort");
    sort_fails("  ", 0, "empty sort");
    sort_fails("a,,b", 2, "empty sort item");
    sort_fails("a, ,b", 3, "empty sort item");
    sort_fails("a,", 2, "empty sort item");
    sort_fails(",a", 0, "empty sort item");
    sort_fails("a,b,c,d,e,f,g,h,i", 16, "too many sort fields (max 8)");
    sort_fails("-", 1, "unexpected end of item, expected a field name");
    sort_fails("a,- b", 3, "unexpected \" \", expected a field name");
    sort_fails("--a", 1, "unexpected \"-\", expected a field name");
    sort_fails("1a", 0, "expected a field name");
    sort_fails("é", 0, "unexpected \"é\", expected a field name");
    sort_fails("a b", 1, "unexpected \" \" in sort field");
    sort_fails("a(b)", 1, "unexpected \"(\" in sort field");
    sort_fails("title,a..b", 8, "empty path segment");
    sort_fails("title:", 6, "expected a name after \":\"");
}

// ---------------------------------------------------------------------------------------------
// Property tests

const FRAGMENTS: &[&str] = &[
    "(",
    ")",
    "&&",
    "||",
    "&",
    "|",
    "=",
    "!=",
    "?=",
    "?!=",
    ">",
    ">=",
    "<",
    "<=",
    "~",
    "!~",
    "?~",
    "?",
    "!",
    "'",
    "\"",
    "\\",
    "\\u",
    "\\ud83d",
    "\\u00e9",
    "@request.",
    "@collection.posts:p.",
    "a.b",
    "a",
    ":each",
    ":",
    ".",
    ",",
    "1.5",
    "-",
    "10",
    "0",
    " ",
    "\n",
    "//",
    "null",
    "true",
    "f(",
    "é",
    "😀",
    "\u{0}",
];

fn fexpr_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..40).prop_map(|parts| parts.concat())
}

#[derive(Debug, Clone, Copy)]
enum Style {
    Spaced,
    Compact,
    Commented,
}

impl Style {
    fn sep(self) -> &'static str {
        match self {
            Style::Spaced => " ",
            Style::Compact => "",
            Style::Commented => " // note ( && ' \n\t",
        }
    }
}

fn print_op(op: Op) -> String {
    let base = match op.kind {
        CmpOp::Eq => "=",
        CmpOp::Neq => "!=",
        CmpOp::Gt => ">",
        CmpOp::Gte => ">=",
        CmpOp::Lt => "<",
        CmpOp::Lte => "<=",
        CmpOp::Like => "~",
        CmpOp::NotLike => "!~",
    };
    format!("{}{base}", if op.any { "?" } else { "" })
}

/// Quotes `s`, alternating between quote styles and minimal/maximal escaping by `variant`.
fn print_text(s: &str, variant: u8) -> String {
    let quote_char = if variant & 1 == 0 { '\'' } else { '"' };
    let escape_all = variant & 2 != 0;
    let mut out = String::new();
    out.push(quote_char);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if c == quote_char => {
                out.push('\\');
                out.push(c);
            }
            // Both quotes decode in both quote styles, so the other one may be escaped too.
            '\'' | '"' if escape_all => {
                out.push('\\');
                out.push(c);
            }
            '\n' if escape_all => out.push_str("\\n"),
            '\t' if escape_all => out.push_str("\\t"),
            '\u{8}' if escape_all => out.push_str("\\b"),
            c if escape_all && c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote_char);
    out
}

fn print_operand(operand: &Operand, style: Style, out: &mut String) {
    match operand {
        Operand::Null => out.push_str("null"),
        Operand::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Operand::Number(n) => out.push_str(&n.to_string()),
        Operand::Text(s) => {
            let variant = (s.len() % 4) as u8;
            out.push_str(&print_text(s, variant));
        }
        Operand::Ident(ident) => out.push_str(&ident.raw),
        Operand::Func { name, args } => {
            out.push_str(name);
            out.push('(');
            for (i, arg) in args.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                    out.push_str(style.sep());
                }
                print_operand(arg, style, out);
            }
            out.push(')');
        }
    }
}

fn print_expr(expr: &Expr, style: Style, out: &mut String) {
    let sep = style.sep();
    let paren = |e: &Expr, out: &mut String| {
        out.push('(');
        out.push_str(sep);
        print_expr(e, style, out);
        out.push_str(sep);
        out.push(')');
    };
    match expr {
        Expr::Or(l, r) => {
            print_expr(l, style, out);
            out.push_str(sep);
            out.push_str("||");
            out.push_str(sep);
            match **r {
                Expr::Or(..) => paren(r, out),
                _ => print_expr(r, style, out),
            }
        }
        Expr::And(l, r) => {
            match **l {
                Expr::Or(..) => paren(l, out),
                _ => print_expr(l, style, out),
            }
            out.push_str(sep);
            out.push_str("&&");
            out.push_str(sep);
            match **r {
                Expr::Or(..) | Expr::And(..) => paren(r, out),
                _ => print_expr(r, style, out),
            }
        }
        Expr::Cmp { left, op, right } => {
            print_operand(left, style, out);
            out.push_str(sep);
            out.push_str(&print_op(*op));
            out.push_str(sep);
            print_operand(right, style, out);
        }
    }
}

fn arb_op() -> impl Strategy<Value = Op> {
    let kinds = prop::sample::select(vec![
        CmpOp::Eq,
        CmpOp::Neq,
        CmpOp::Gt,
        CmpOp::Gte,
        CmpOp::Lt,
        CmpOp::Lte,
        CmpOp::Like,
        CmpOp::NotLike,
    ]);
    (kinds, any::<bool>()).prop_map(|(kind, any)| Op { kind, any })
}

fn arb_ident() -> impl Strategy<Value = Ident> {
    let first = "[A-Za-z_@#][A-Za-z0-9_]{0,5}(:[A-Za-z0-9_]{1,3})?";
    let rest = prop::collection::vec("[A-Za-z0-9_]{1,5}(:[A-Za-z0-9_]{1,3})?", 0..3);
    let modifier = prop::option::of("[A-Za-z0-9_]{1,6}");
    (first, rest, modifier)
        .prop_map(|(first, rest, modifier)| {
            let mut segments = vec![first];
            segments.extend(rest);
            // Only the last segment's text may not contain `:` (it would become the modifier).
            if let Some(last) = segments.last_mut() {
                if let Some((name, _)) = last.split_once(':') {
                    *last = name.to_string();
                }
            }
            let mut raw = segments.join(".");
            if let Some(m) = &modifier {
                raw.push(':');
                raw.push_str(m);
            }
            Ident { raw, segments, modifier }
        })
        .prop_filter("keywords parse as literals", |ident| {
            !matches!(ident.raw.as_str(), "null" | "true" | "false")
        })
}

fn arb_number() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<i32>().prop_map(f64::from),
        -1e6f64..1e6,
        (-1e3f64..1e3).prop_map(|n| (n * 100.0).round() / 100.0),
        any::<f64>().prop_filter("finite, moderate", |n| n.is_finite()
            && n.abs() < 1e30
            && (*n == 0.0 || n.abs() > 1e-30)),
    ]
}

fn arb_leaf_operand() -> impl Strategy<Value = Operand> {
    prop_oneof![
        Just(Operand::Null),
        any::<bool>().prop_map(Operand::Bool),
        arb_number().prop_map(Operand::Number),
        // NUL is refused in literals however it is written.
        any::<String>().prop_map(|s| Operand::Text(s.replace('\0', ""))),
        "[ -~]{0,8}".prop_map(Operand::Text),
        arb_ident().prop_map(Operand::Ident),
    ]
}

fn arb_operand() -> impl Strategy<Value = Operand> {
    arb_leaf_operand().prop_recursive(3, 12, 4, |inner| {
        let call = ("[A-Za-z_][A-Za-z0-9_]{0,6}", prop::collection::vec(inner.clone(), 0..4))
            .prop_map(|(name, args)| Operand::Func { name, args });
        prop_oneof![2 => inner, 1 => call]
    })
}

fn arb_expr() -> impl Strategy<Value = Expr> {
    let leaf = (arb_operand(), arb_op(), arb_operand()).prop_map(|(left, op, right)| Expr::Cmp {
        left,
        op,
        right,
    });
    leaf.prop_recursive(6, 40, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| Expr::Or(Box::new(a), Box::new(b))),
        ]
    })
}

fn arb_sort_item() -> impl Strategy<Value = SortItem> {
    (arb_ident(), any::<bool>()).prop_map(|(ident, desc)| SortItem { ident, desc })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_strings_never_panic(input in any::<String>()) {
        let _ = parse(&input);
        let _ = parse_sort(&input);
    }

    #[test]
    fn fexpr_soup_never_panics(input in fexpr_soup()) {
        let _ = parse(&input);
        let _ = parse_sort(&input);
    }

    #[test]
    fn errors_point_inside_the_input(input in fexpr_soup()) {
        if let Err(e) = parse(&input) {
            prop_assert!(e.position <= input.len(), "{e} for {input:?}");
            prop_assert!(input.is_char_boundary(e.position), "{e} for {input:?}");
            prop_assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn mutated_valid_input_never_panics(expr in arb_expr(), cut in any::<prop::sample::Index>(), insert in prop::sample::select(FRAGMENTS)) {
        let mut printed = String::new();
        print_expr(&expr, Style::Spaced, &mut printed);
        let boundaries: Vec<usize> = printed.char_indices().map(|(i, _)| i).chain([printed.len()]).collect();
        let at = boundaries[cut.index(boundaries.len())];
        let _ = parse(&printed[..at]);
        let _ = parse(&printed[at..]);
        let mut mutated = printed.clone();
        mutated.insert_str(at, insert);
        let _ = parse(&mutated);
    }

    #[test]
    fn printed_ast_round_trips(expr in arb_expr()) {
        for style in [Style::Spaced, Style::Compact, Style::Commented] {
            let mut printed = String::new();
            print_expr(&expr, style, &mut printed);
            prop_assume!(printed.len() <= 3500);
            match parse(&printed) {
                Ok(parsed) => prop_assert_eq!(&parsed, &expr, "printed as {:?}", printed),
                Err(e) => prop_assert!(false, "{} for {:?}", e, printed),
            }
        }
    }

    #[test]
    fn printed_sort_round_trips(items in prop::collection::vec(arb_sort_item(), 1..=8), spaced in any::<bool>()) {
        let printed = items
            .iter()
            .map(|item| format!("{}{}", if item.desc { "-" } else if spaced { "+" } else { "" }, item.ident.raw))
            .collect::<Vec<_>>()
            .join(if spaced { " , " } else { "," });
        match parse_sort(&printed) {
            Ok(parsed) => prop_assert_eq!(parsed, items),
            Err(e) => prop_assert!(false, "{} for {:?}", e, printed),
        }
    }
}

#[test]
fn idents_are_listed_left_to_right_with_function_arguments() {
    let e = ok("a = 'x@request.y' || (strftime('%Y', b.c) = @request.auth.id && d:lower ~ 1)");
    let raws: Vec<&str> = e.idents().iter().map(|i| i.raw.as_str()).collect();
    assert_eq!(raws, ["a", "b.c", "@request.auth.id", "d:lower"]);
}
