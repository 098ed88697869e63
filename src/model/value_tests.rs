//! Tests for `model::value`: every coercion example of the contract (§5) and every validation
//! code of every field type, the modifiers example and autogenerate patterns.

use serde_json::{json, Value};

use super::*;

#[track_caller]
fn field(def: Value) -> Field {
    Field::from_json(&def).unwrap_or_else(|e| panic!("bad field {def}: {e}"))
}

fn of_type(type_name: &str) -> Field {
    field(json!({"name": "f", "type": type_name}))
}

#[track_caller]
fn check_coerce(f: &Field, cases: &[(Value, Value)]) {
    for (input, want) in cases {
        assert_eq!(&coerce(f, input), want, "{} coerce({input})", f.kind.type_name());
    }
}

/// Asserts the error code, and the message/params when given.
#[track_caller]
fn check_err(
    f: &Field,
    value: Value,
    code: ErrorCode,
    message: Option<&str>,
    params: Option<Value>,
) {
    let err = match validate(f, &value) {
        Err(err) => err,
        Ok(()) => panic!("{} {value}: expected {code}, got Ok", f.kind.type_name()),
    };
    assert_eq!(err.code, code, "{value}");
    if let Some(message) = message {
        assert_eq!(err.message, message, "{value}");
    }
    if params.is_some() {
        assert_eq!(err.params, params, "{value}");
    }
}

#[track_caller]
fn check_ok(f: &Field, values: &[Value]) {
    for value in values {
        assert_eq!(validate(f, value), Ok(()), "{} {value}", f.kind.type_name());
    }
}

// ---------------------------------------------------------------------------------------------
// Coercion.

#[test]
fn text_like_fields_keep_strings_and_render_scalars() {
    for t in ["text", "email", "url", "editor", "password"] {
        check_coerce(
            &of_type(t),
            &[
                (json!("hello"), json!("hello")),
                (json!("  spaced  "), json!("  spaced  ")),
                (json!(3.5), json!("3.5")),
                (json!(42), json!("42")),
                (json!(-7), json!("-7")),
                (json!(1e21), json!("1000000000000000000000")),
                (json!(true), json!("true")),
                (json!(false), json!("false")),
                (Value::Null, json!("")),
                (json!([1, 2]), json!("")),
                (json!({"a": 1}), json!("")),
            ],
        );
    }
}

#[test]
fn number_coercion() {
    let f = of_type("number");
    check_coerce(
        &f,
        &[
            (json!(3.5), json!(3.5)),
            (json!(42), json!(42)),
            (json!(42.0), json!(42)),
            (json!(-0.0), json!(0)),
            (json!("42"), json!(42)),
            (json!("-1.25"), json!(-1.25)),
            (json!("1e3"), json!(1000)),
            (json!("abc"), json!(0)),
            (json!(""), json!(0)),
            (json!(" 42"), json!(0)),
            (json!("NaN"), json!(0)),
            (json!("inf"), json!(0)),
            (Value::Null, json!(0)),
            (json!(true), json!(1)),
            (json!(false), json!(0)),
            (json!([1]), json!(0)),
        ],
    );
    // Integral values are JSON integers, not 42.0.
    assert!(coerce(&f, &json!("42")).is_i64());
    assert!(coerce(&f, &json!(42.0)).is_i64());
}

#[test]
fn bool_coercion() {
    let f = of_type("bool");
    for yes in
        [json!(true), json!("true"), json!("1"), json!(1), json!("TRUE"), json!("t"), json!(2.5)]
    {
        assert_eq!(coerce(&f, &yes), json!(true), "{yes}");
    }
    for no in [
        json!(false),
        json!("false"),
        json!("0"),
        json!(0),
        json!("on"),
        json!("yes"),
        json!(""),
        Value::Null,
        json!([true]),
        json!({}),
    ] {
        assert_eq!(coerce(&f, &no), json!(false), "{no}");
    }
}

#[test]
fn date_coercion() {
    check_coerce(
        &of_type("date"),
        &[
            (json!("2024-01-02"), json!("2024-01-02 00:00:00.000Z")),
            (json!("2024-01-02 03:04:05"), json!("2024-01-02 03:04:05.000Z")),
            (json!("2024-01-02T03:04:05Z"), json!("2024-01-02 03:04:05.000Z")),
            (json!("2024-01-02T03:04:05+02:00"), json!("2024-01-02 01:04:05.000Z")),
            (json!("2024-01-02 03:04:05.123Z"), json!("2024-01-02 03:04:05.123Z")),
            (json!("garbage"), json!("")),
            (json!("2024/01/02"), json!("")),
            (json!("1700000000"), json!("")),
            (json!(1700000000), json!("")),
            (json!(""), json!("")),
            (Value::Null, json!("")),
        ],
    );
}

#[test]
fn autodate_passes_strings_through() {
    check_coerce(
        &of_type("autodate"),
        &[
            (json!("2024-01-02 03:04:05.000Z"), json!("2024-01-02 03:04:05.000Z")),
            (json!("whatever"), json!("whatever")),
            (json!(5), json!("")),
            (Value::Null, json!("")),
        ],
    );
    assert_eq!(validate(&of_type("autodate"), &json!("")), Ok(()));
}

#[test]
fn single_value_lists_keep_the_last_item() {
    let select = field(json!({"name": "s", "type": "select", "values": ["a", "b", "c"]}));
    let relation = field(json!({"name": "r", "type": "relation", "collectionId": "x"}));
    let file = of_type("file");
    for f in [&select, &relation, &file] {
        check_coerce(
            f,
            &[
                (json!("b"), json!("b")),
                (json!(["a", "c"]), json!("c")),
                (json!(["a", "c", "a"]), json!("c")),
                (json!([]), json!("")),
                (json!(""), json!("")),
                (Value::Null, json!("")),
                (json!("a,b"), json!("a,b")),
            ],
        );
    }
    // A JSON-encoded array string (multipart forms) is decoded first.
    check_coerce(&select, &[(json!("[\"a\",\"b\"]"), json!("b")), (json!("[x"), json!("[x"))]);
}

#[test]
fn multi_value_lists_are_deduplicated_arrays() {
    let select =
        field(json!({"name": "s", "type": "select", "values": ["a", "b", "c"], "maxSelect": 3}));
    let relation =
        field(json!({"name": "r", "type": "relation", "collectionId": "x", "maxSelect": 5}));
    let file = field(json!({"name": "f", "type": "file", "maxSelect": 2}));
    for f in [&select, &relation, &file] {
        check_coerce(
            f,
            &[
                (json!(["a", "c"]), json!(["a", "c"])),
                (json!("a"), json!(["a"])),
                (json!(["b", "a", "b", ""]), json!(["b", "a"])),
                (json!(["a", null]), json!(["a"])),
                (json!("[\"a\",\"b\"]"), json!(["a", "b"])),
                (json!(""), json!([])),
                (Value::Null, json!([])),
                (json!({"a": 1}), json!([])),
            ],
        );
    }
    check_coerce(&select, &[(json!([1, "a"]), json!(["1", "a"])), (json!([["a"]]), json!([]))]);
    // File arrays keep only elements that name exactly one file.
    check_coerce(&file, &[(json!(["x.txt", "[\"a\",\"b\"]", "y.png"]), json!(["x.txt", "y.png"]))]);
}

#[test]
fn json_coercion() {
    check_coerce(
        &of_type("json"),
        &[
            (json!("[1,2]"), json!([1, 2])),
            (json!("true"), json!(true)),
            (json!("false"), json!(false)),
            (json!("null"), Value::Null),
            (json!("42"), json!(42)),
            (json!("-1.5"), json!(-1.5)),
            (json!("{\"a\":1}"), json!({"a": 1})),
            (json!("\"quoted\""), json!("quoted")),
            (json!("abc"), json!("abc")),
            (json!(""), json!("")),
            (json!(" [1]"), json!(" [1]")),
            (json!("[1,"), json!("[1,")),
            (json!({"k": [1, 2]}), json!({"k": [1, 2]})),
            (json!({"k": 2.0}), json!({"k": 2})),
            (json!(3.5), json!(3.5)),
            (Value::Null, Value::Null),
        ],
    );
}

#[test]
fn geo_point_coercion() {
    check_coerce(
        &of_type("geoPoint"),
        &[
            (json!({"lon": 10.5, "lat": -20.25}), json!({"lon": 10.5, "lat": -20.25})),
            (json!({"lon": "10.5", "lat": "2"}), json!({"lon": 10.5, "lat": 2})),
            (json!({"lon": 1}), json!({"lon": 1, "lat": 0})),
            (json!("{\"lon\":1,\"lat\":2}"), json!({"lon": 1, "lat": 2})),
            (json!({"lon": "x", "lat": true}), json!({"lon": 0, "lat": 0})),
            (json!("x"), json!({"lon": 0, "lat": 0})),
            (json!(5), json!({"lon": 0, "lat": 0})),
            (json!([1, 2]), json!({"lon": 0, "lat": 0})),
            (Value::Null, json!({"lon": 0, "lat": 0})),
        ],
    );
}

#[test]
fn coerced_zero_values_match_the_field_zero_value() {
    for t in [
        "text", "number", "bool", "email", "url", "editor", "date", "select", "file", "relation",
        "json", "password", "geoPoint",
    ] {
        let f = of_type(t);
        assert_eq!(coerce(&f, &Value::Null), f.zero_value(), "{t}");
    }
}

// ---------------------------------------------------------------------------------------------
// Validation.

#[test]
fn required_rejects_every_blank_value() {
    let blanks = [
        ("text", json!("")),
        ("number", json!(0)),
        ("bool", json!(false)),
        ("email", json!("")),
        ("url", json!("")),
        ("editor", json!("")),
        ("date", json!("")),
        ("select", json!("")),
        ("file", json!("")),
        ("relation", json!("")),
        ("json", Value::Null),
        ("json", json!("")),
        ("json", json!([])),
        ("json", json!({})),
        ("password", json!("")),
        ("geoPoint", json!({"lon": 0, "lat": 0})),
    ];
    for (t, blank) in blanks {
        let required = field(json!({"name": "f", "type": t, "required": true, "values": ["a"]}));
        check_err(&required, blank.clone(), ErrorCode::Required, Some("Cannot be blank."), None);
        assert_eq!(validate(&required, &blank).map_err(|e| e.params), Err(None));
        let optional = field(json!({"name": "f", "type": t, "values": ["a"]}));
        check_ok(&optional, &[blank]);
    }
    let multi = field(
        json!({"name": "f", "type": "select", "values": ["a"], "maxSelect": 2, "required": true}),
    );
    check_err(&multi, json!([]), ErrorCode::Required, None, None);
}

#[test]
fn text_validation() {
    let f = field(json!({"name": "t", "type": "text", "min": 3, "max": 5, "pattern": "^[a-z]+$"}));
    check_ok(&f, &[json!(""), json!("abc"), json!("abcde")]);
    check_err(
        &f,
        json!("ab"),
        ErrorCode::MinTextConstraint,
        Some("Must be at least 3 character(s)."),
        Some(json!({"min": 3})),
    );
    check_err(
        &f,
        json!("abcdef"),
        ErrorCode::MaxTextConstraint,
        Some("Must be no more than 5 character(s)."),
        Some(json!({"max": 5})),
    );
    check_err(&f, json!("ABC"), ErrorCode::InvalidFormat, Some("Invalid value format."), None);
    check_err(&f, json!(5), ErrorCode::UnsupportedValueType, None, None);

    // max 0 means 5000 characters, counted as chars not bytes.
    let unlimited = of_type("text");
    check_ok(&unlimited, &[json!("é".repeat(5000))]);
    check_err(
        &unlimited,
        json!("x".repeat(5001)),
        ErrorCode::MaxTextConstraint,
        Some("Must be no more than 5000 character(s)."),
        Some(json!({"max": 5000})),
    );
    let three = field(json!({"name": "t", "type": "text", "max": 3}));
    check_ok(&three, &[json!("日本語")]);
    // A broken pattern never matches.
    let broken = field(json!({"name": "t", "type": "text", "pattern": "(("}));
    check_err(&broken, json!("x"), ErrorCode::InvalidFormat, None, None);
}

#[test]
fn primary_key_text_validation() {
    let id = field(json!({"name": "id", "type": "text", "primaryKey": true, "min": 15, "max": 15,
        "pattern": "^[a-z0-9]+$"}));
    check_err(&id, json!(""), ErrorCode::Required, None, None);
    check_err(&id, json!("abc"), ErrorCode::MinTextConstraint, None, Some(json!({"min": 15})));
    check_err(&id, json!("ABCDEFGHIJKLMNO"), ErrorCode::InvalidFormat, None, None);
    check_ok(&id, &[json!("abcdefghijklmno")]);

    let custom = field(json!({"name": "id", "type": "text", "primaryKey": true}));
    check_err(
        &custom,
        json!("a/b"),
        ErrorCode::ForbiddenPkCharacter,
        Some("'/' is not a valid primary key character."),
        Some(json!({"ch": "/"})),
    );
    check_err(
        &custom,
        json!("nul"),
        ErrorCode::ReservedPk,
        Some("The primary key 'NUL' is reserved and cannot be used."),
        Some(json!({"reserved": "NUL"})),
    );
    check_ok(&custom, &[json!("Hello-World_1")]);
}

#[test]
fn number_validation() {
    let f = field(json!({"name": "n", "type": "number", "min": 5, "max": 10, "onlyInt": true}));
    check_ok(&f, &[json!(0), json!(5), json!(10), json!(7.0)]);
    check_err(
        &f,
        json!(4),
        ErrorCode::MinNumberConstraint,
        Some("Must be greater or equal than 5."),
        Some(json!({"min": 5})),
    );
    check_err(
        &f,
        json!(11),
        ErrorCode::MaxNumberConstraint,
        Some("Must be less or equal than 10."),
        Some(json!({"max": 10})),
    );
    check_err(
        &f,
        json!(7.5),
        ErrorCode::OnlyIntConstraint,
        Some("Decimal numbers are not allowed."),
        None,
    );
    check_err(&f, json!("7"), ErrorCode::UnsupportedValueType, None, None);

    let decimals = field(json!({"name": "n", "type": "number", "min": 2.5, "max": 1e6}));
    check_err(
        &decimals,
        json!(1),
        ErrorCode::MinNumberConstraint,
        Some("Must be greater or equal than 2.5."),
        Some(json!({"min": 2.5})),
    );
    check_err(
        &decimals,
        json!(2e6),
        ErrorCode::MaxNumberConstraint,
        Some("Must be less or equal than 1e+06."),
        Some(json!({"max": 1000000})),
    );
    check_ok(&decimals, &[json!(2.5), json!(-0.0)]);
}

#[test]
fn go_float_formatting() {
    for (f, want) in [
        (5.0, "5"),
        (-2.5, "-2.5"),
        (123456.0, "123456"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-1e21, "-1e+21"),
    ] {
        assert_eq!(go_float(f), want, "{f}");
    }
}

#[test]
fn email_validation() {
    let f = of_type("email");
    check_ok(
        &f,
        &[
            json!(""),
            json!("a@b.co"),
            json!("x.y+tag@sub.example.org"),
            json!("üser@exämple.com"),
            json!("\"a b\"@x.co"),
        ],
    );
    for bad in ["nope", "a@b", "a b@c.com", "a@@b.co", "@b.co", "a@b.c0", "a..b@c.co", "a@-b.co"] {
        check_err(&f, json!(bad), ErrorCode::IsEmail, Some("Must be a valid email address."), None);
    }
    let only = field(json!({"name": "e", "type": "email", "onlyDomains": ["example.com"]}));
    check_ok(&only, &[json!("a@example.com")]);
    check_err(
        &only,
        json!("a@example.org"),
        ErrorCode::EmailDomainNotAllowed,
        Some("Email domain is not allowed."),
        None,
    );
    let except = field(json!({"name": "e", "type": "email", "exceptDomains": ["spam.io"]}));
    check_ok(&except, &[json!("a@example.org")]);
    check_err(&except, json!("a@spam.io"), ErrorCode::EmailDomainNotAllowed, None, None);
}

#[test]
fn url_validation() {
    let f = of_type("url");
    check_ok(
        &f,
        &[
            json!(""),
            json!("https://x.io/a"),
            json!("http://localhost:8090/api?x=1#y"),
            json!("ftp://user:pw@files.example.com/a.txt"),
        ],
    );
    for bad in [
        "invalid",
        "example.com",
        "https://",
        "http://exa mple.com",
        "https://x.io/a b",
        "mailto:a@b.co",
        "javascript:alert(1)",
        "/relative/path",
    ] {
        check_err(&f, json!(bad), ErrorCode::InvalidUrl, Some("Must be a valid url."), None);
    }
    let only = field(json!({"name": "u", "type": "url", "onlyDomains": ["example.com"]}));
    check_ok(&only, &[json!("https://example.com/path"), json!("https://user@example.com")]);
    check_err(
        &only,
        json!("https://example.org"),
        ErrorCode::UrlDomainNotAllowed,
        Some("Url domain is not allowed."),
        None,
    );
    // Like Go's url.Host, the port is part of the compared host.
    check_err(
        &only,
        json!("https://example.com:8080/"),
        ErrorCode::UrlDomainNotAllowed,
        None,
        None,
    );
    let except = field(json!({"name": "u", "type": "url", "exceptDomains": ["evil.io"]}));
    check_err(&except, json!("http://evil.io"), ErrorCode::UrlDomainNotAllowed, None, None);
    check_ok(&except, &[json!("http://good.io")]);
}

#[test]
fn editor_validation() {
    let f = field(json!({"name": "ed", "type": "editor", "maxSize": 10}));
    check_ok(&f, &[json!(""), json!("<p>hi</p>")]);
    check_err(
        &f,
        json!("<p>hello</p>"),
        ErrorCode::ContentSizeLimit,
        Some("The maximum allowed content size is 10 bytes."),
        Some(json!({"maxSize": 10})),
    );
    // maxSize 0 means 5 MB, counted in bytes.
    let default = of_type("editor");
    check_ok(&default, &[json!("x".repeat(5 << 20))]);
    check_err(
        &default,
        json!("é".repeat((5 << 20) / 2 + 1)),
        ErrorCode::ContentSizeLimit,
        None,
        Some(json!({"maxSize": 5 << 20})),
    );
}

#[test]
fn date_validation() {
    let f = field(json!({"name": "d", "type": "date", "min": "2024-01-01 00:00:00.000Z",
        "max": "2024-12-31 23:59:59.500Z"}));
    check_ok(
        &f,
        &[json!(""), json!("2024-01-01 00:00:00.000Z"), json!("2024-06-01 12:00:00.000Z")],
    );
    check_err(
        &f,
        json!("2023-12-31 23:59:59.999Z"),
        ErrorCode::MinGreaterEqualThanRequired,
        Some("Must be no less than 2024-01-01 00:00:00 +0000 UTC."),
        Some(json!({"threshold": "2024-01-01T00:00:00Z"})),
    );
    check_err(
        &f,
        json!("2025-01-01 00:00:00.000Z"),
        ErrorCode::MaxLessEqualThanRequired,
        Some("Must be no greater than 2024-12-31 23:59:59.5 +0000 UTC."),
        Some(json!({"threshold": "2024-12-31T23:59:59.5Z"})),
    );
    // No bounds, unparsable bounds: nothing to check.
    check_ok(&field(json!({"name": "d", "type": "date", "min": "nope"})), &[json!("1999-01-01")]);
}

#[test]
fn select_validation() {
    let single = field(json!({"name": "s", "type": "select", "values": ["a", "b"]}));
    check_ok(&single, &[json!(""), json!("a")]);
    check_err(
        &single,
        json!("z"),
        ErrorCode::InvalidValue,
        Some("Invalid value z."),
        Some(json!({"value": "z"})),
    );
    let comma = coerce(&single, &json!("a,b"));
    check_err(&single, comma, ErrorCode::InvalidValue, None, Some(json!({"value": "a,b"})));
    check_err(
        &single,
        json!(["a", "b"]),
        ErrorCode::TooManyValues,
        Some("Select no more than 1."),
        Some(json!({"maxSelect": 1})),
    );

    let multi =
        field(json!({"name": "s", "type": "select", "values": ["a", "b", "c"], "maxSelect": 2}));
    check_ok(&multi, &[json!([]), json!(["a", "c"])]);
    check_err(
        &multi,
        json!(["a", "b", "c"]),
        ErrorCode::TooManyValues,
        Some("Select no more than 2."),
        Some(json!({"maxSelect": 2})),
    );
    check_err(&multi, json!(["a", "x"]), ErrorCode::InvalidValue, Some("Invalid value x."), None);
}

#[test]
fn relation_validation() {
    let f = field(json!({"name": "r", "type": "relation", "collectionId": "c", "minSelect": 2,
        "maxSelect": 3}));
    check_ok(&f, &[json!([]), json!(["a", "b"]), json!(["a", "b", "c"])]);
    check_err(
        &f,
        json!(["a"]),
        ErrorCode::NotEnoughValues,
        Some("Select at least 2."),
        Some(json!({"minSelect": 2})),
    );
    check_err(
        &f,
        json!(["a", "b", "c", "d"]),
        ErrorCode::TooManyValues,
        Some("Select no more than 3."),
        Some(json!({"maxSelect": 3})),
    );
    let single = field(json!({"name": "r", "type": "relation", "collectionId": "c"}));
    check_ok(&single, &[json!("abc")]);
    check_err(
        &single,
        json!(["a", "b"]),
        ErrorCode::TooManyValues,
        None,
        Some(json!({"maxSelect": 1})),
    );
}

#[test]
fn file_validation() {
    let f = field(json!({"name": "f", "type": "file", "maxSelect": 2}));
    check_ok(&f, &[json!([]), json!(["a.txt", "b.txt"])]);
    check_err(
        &f,
        json!(["a.txt", "b.txt", "c.txt"]),
        ErrorCode::TooManyFiles,
        Some("The maximum allowed files is 2."),
        Some(json!({"maxSelect": 2})),
    );
    check_err(
        &of_type("file"),
        json!(["a", "b"]),
        ErrorCode::TooManyFiles,
        None,
        Some(json!({"maxSelect": 1})),
    );
}

#[test]
fn json_validation() {
    let f = field(json!({"name": "j", "type": "json", "maxSize": 10}));
    check_ok(&f, &[Value::Null, json!([1, 2, 3]), json!("123456")]);
    check_err(
        &f,
        json!({"k": [1, 2, 3]}),
        ErrorCode::JsonSizeLimit,
        Some("The maximum allowed JSON size is 10 bytes."),
        Some(json!({"maxSize": 10})),
    );
    // maxSize 0 means 1 MB of serialized JSON ("..." counts its quotes).
    let default = of_type("json");
    check_ok(&default, &[json!("x".repeat((1 << 20) - 2))]);
    check_err(
        &default,
        json!("x".repeat((1 << 20) - 1)),
        ErrorCode::JsonSizeLimit,
        None,
        Some(json!({"maxSize": 1 << 20})),
    );
    let required = field(json!({"name": "j", "type": "json", "required": true}));
    check_ok(&required, &[json!(0), json!(false), json!([0]), json!("x")]);
}

#[test]
fn password_validation() {
    let f = field(json!({"name": "p", "type": "password", "min": 8, "pattern": "[0-9]"}));
    check_ok(&f, &[json!(""), json!("secret123")]);
    check_err(
        &f,
        json!("short1"),
        ErrorCode::MinTextConstraint,
        Some("Must be at least 8 character(s)."),
        None,
    );
    assert_eq!(validate(&f, &json!("short1")).map_err(|e| e.params), Err(None));
    check_err(
        &f,
        json!("x".repeat(71) + "1"),
        ErrorCode::MaxTextConstraint,
        Some("Must be less than 71 character(s)."),
        None,
    );
    check_err(
        &f,
        json!("secretsecret"),
        ErrorCode::InvalidFormat,
        Some("Invalid value format."),
        None,
    );
    let max = field(json!({"name": "p", "type": "password", "max": 10}));
    check_ok(&max, &[json!("0123456789")]);
    check_err(
        &max,
        json!("01234567890"),
        ErrorCode::MaxTextConstraint,
        Some("Must be less than 10 character(s)."),
        None,
    );
}

#[test]
fn geo_point_validation() {
    let f = of_type("geoPoint");
    check_ok(
        &f,
        &[
            json!({"lon": 0, "lat": 0}),
            json!({"lon": 180, "lat": -90}),
            json!({"lon": -180.0, "lat": 90.0}),
        ],
    );
    check_err(
        &f,
        json!({"lon": 181, "lat": 0}),
        ErrorCode::InvalidLongitude,
        Some("Longitude must be between -180 and 180 degrees."),
        None,
    );
    check_err(
        &f,
        json!({"lon": 0, "lat": -90.5}),
        ErrorCode::InvalidLatitude,
        Some("Latitude must be between -90 and 90 degrees."),
        None,
    );
    check_err(&f, json!("x"), ErrorCode::UnsupportedValueType, None, None);
}

#[test]
fn bool_validation() {
    let f = field(json!({"name": "b", "type": "bool", "required": true}));
    check_ok(&f, &[json!(true)]);
    check_err(&f, json!("true"), ErrorCode::UnsupportedValueType, None, None);
}

#[test]
fn field_error_renders_like_pocketbase() {
    let plain = FieldError::required();
    assert_eq!(
        plain.to_json(),
        json!({"code": "validation_required", "message": "Cannot be blank."})
    );
    let with = FieldError::new(ErrorCode::MinTextConstraint, "Must be at least 3 character(s).")
        .with_params(json!({"min": 3}));
    assert_eq!(
        with.to_json(),
        json!({"code": "validation_min_text_constraint",
               "message": "Must be at least 3 character(s).", "params": {"min": 3}})
    );
    assert_eq!(plain.to_string(), "validation_required: Cannot be blank.");
}

// ---------------------------------------------------------------------------------------------
// Modifiers.

#[test]
fn contract_modifier_example() {
    let num = of_type("number");
    let sels =
        field(json!({"name": "sels", "type": "select", "values": ["x", "y", "z"], "maxSelect": 3}));
    let (mut n, mut s) = (json!(5), json!(["x"]));

    // PATCH {"sels+":"y","num+":10}
    s = apply_modifier(&sels, &s, Modifier::Append, &json!("y"));
    n = apply_modifier(&num, &n, Modifier::Append, &json!(10));
    assert_eq!((&n, &s), (&json!(15), &json!(["x", "y"])));
    // PATCH {"sels-":["x"],"num-":3}
    s = apply_modifier(&sels, &s, Modifier::Remove, &json!(["x"]));
    n = apply_modifier(&num, &n, Modifier::Remove, &json!(3));
    assert_eq!((&n, &s), (&json!(12), &json!(["y"])));
    // PATCH {"+sels":"z"}
    s = apply_modifier(&sels, &s, Modifier::Prepend, &json!("z"));
    assert_eq!(s, json!(["z", "y"]));
}

#[test]
fn number_modifiers_coerce_both_sides() {
    let num = of_type("number");
    assert_eq!(apply_modifier(&num, &json!(1.5), Modifier::Append, &json!("2.5")), json!(4));
    assert_eq!(apply_modifier(&num, &Value::Null, Modifier::Remove, &json!(0.25)), json!(-0.25));
    assert_eq!(apply_modifier(&num, &json!(3), Modifier::Append, &json!("abc")), json!(3));
    // There is no `+num` setter: the value is left alone.
    assert_eq!(apply_modifier(&num, &json!(3), Modifier::Prepend, &json!(1)), json!(3));
}

#[test]
fn list_modifiers() {
    let rel = field(json!({"name": "r", "type": "relation", "collectionId": "c", "maxSelect": 9}));
    let cur = json!(["a", "b"]);
    assert_eq!(
        apply_modifier(&rel, &cur, Modifier::Append, &json!(["c", "a"])),
        json!(["a", "b", "c"])
    );
    assert_eq!(
        apply_modifier(&rel, &cur, Modifier::Prepend, &json!(["c", "b"])),
        json!(["c", "b", "a"])
    );
    assert_eq!(apply_modifier(&rel, &cur, Modifier::Remove, &json!("a")), json!(["b"]));
    assert_eq!(apply_modifier(&rel, &cur, Modifier::Remove, &json!(["a", "b", "zz"])), json!([]));
    assert_eq!(apply_modifier(&rel, &Value::Null, Modifier::Append, &json!("a")), json!(["a"]));

    let files = field(json!({"name": "f", "type": "file", "maxSelect": 5}));
    let cur = json!(["one.png", "two.png"]);
    assert_eq!(
        apply_modifier(&files, &cur, Modifier::Remove, &json!("one.png")),
        json!(["two.png"])
    );
    assert_eq!(
        apply_modifier(&files, &cur, Modifier::Append, &json!(["three.png"])),
        json!(["one.png", "two.png", "three.png"])
    );
}

#[test]
fn single_value_modifiers() {
    let sel = field(json!({"name": "s", "type": "select", "values": ["a", "b"]}));
    // `s+` sets, `s-` clears only an equal value, `+s` fills only an empty value.
    assert_eq!(apply_modifier(&sel, &json!("a"), Modifier::Append, &json!("b")), json!("b"));
    assert_eq!(apply_modifier(&sel, &json!("a"), Modifier::Append, &json!([])), json!("a"));
    assert_eq!(apply_modifier(&sel, &json!("a"), Modifier::Remove, &json!("a")), json!(""));
    assert_eq!(apply_modifier(&sel, &json!("a"), Modifier::Remove, &json!("b")), json!("a"));
    assert_eq!(apply_modifier(&sel, &json!("a"), Modifier::Prepend, &json!("b")), json!("a"));
    assert_eq!(apply_modifier(&sel, &json!(""), Modifier::Prepend, &json!("b")), json!("b"));
    let rel = field(json!({"name": "r", "type": "relation", "collectionId": "c"}));
    assert_eq!(apply_modifier(&rel, &json!("id1"), Modifier::Remove, &json!(["id1"])), json!(""));
}

#[test]
fn other_types_ignore_modifiers() {
    for (t, cur) in [("text", json!("x")), ("bool", json!(true)), ("json", json!("42"))] {
        let f = of_type(t);
        for m in [Modifier::Append, Modifier::Prepend, Modifier::Remove] {
            assert_eq!(apply_modifier(&f, &cur, m, &json!("y")), cur, "{t} {m:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Autogenerate patterns.

#[track_caller]
fn generated(pattern: &str) -> String {
    generate_from_pattern(pattern).unwrap_or_else(|| panic!("{pattern} should be supported"))
}

#[test]
fn generates_default_id_and_token_key_patterns() {
    for _ in 0..20 {
        let id = generated("[a-z0-9]{15}");
        assert_eq!(id.len(), 15);
        assert!(id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()), "{id}");
        let key = generated("[a-zA-Z0-9]{50}");
        assert_eq!(key.len(), 50);
        assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()), "{key}");
    }
    // 20 draws of 50 chars from 62 symbols use more than one of each class.
    let many: String = (0..20).map(|_| generated("[a-zA-Z0-9]{50}")).collect();
    assert!(
        many.bytes().any(|b| b.is_ascii_uppercase()) && many.bytes().any(|b| b.is_ascii_digit())
    );
}

#[test]
fn generates_literals_escapes_and_ranges() {
    let s = generated("abc[0-9]{3}");
    assert!(
        s.starts_with("abc") && s.len() == 6 && s[3..].bytes().all(|b| b.is_ascii_digit()),
        "{s}"
    );
    assert_eq!(generated("^x{3}-y$"), "xxx-y");
    let d = generated(r"\d{4}\-[_.]");
    assert!(d.len() == 6 && d[..4].bytes().all(|b| b.is_ascii_digit()) && &d[4..5] == "-", "{d}");
    for _ in 0..20 {
        let v = generated("[ab]{2,4}");
        assert!((2..=4).contains(&v.len()) && v.bytes().all(|b| b == b'a' || b == b'b'), "{v}");
    }
    let w = generated(r"[\w-]{30}");
    assert!(w.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'), "{w}");
}

#[test]
fn rejects_patterns_outside_the_subset() {
    for pattern in [
        "(a|b)+",
        "",
        "a+",
        "[a-z]*",
        ".{3}",
        "[^a]{3}",
        "[z-a]",
        "[a-z",
        "[]",
        "a{3",
        "a{x}",
        "a{4,2}",
        "[a-z]{999999}",
        r"\p{L}",
        "é{2}",
        "a|b",
    ] {
        assert_eq!(generate_from_pattern(pattern), None, "{pattern}");
    }
}
