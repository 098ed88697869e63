//! Records API: CRUD, zero values, input coercions, validation codes per field type, update
//! modifiers, custom ids, and malformed requests.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

/// A public `items` collection with one field of every value type.
async fn setup_all_types(app: &TestApp, su: &str) -> String {
    let tgt = app
        .create_collection(
            su,
            json!({"name": "tgt", "listRule": "", "viewRule": "", "fields": [{"name": "t", "type": "text"}]}),
        )
        .await;
    let tgt_id = tgt["id"].as_str().expect("id").to_string();
    app.create_collection(
        su,
        json!({"name": "items", "listRule": "", "viewRule": "", "createRule": "", "updateRule": "",
               "deleteRule": "", "fields": [
            {"name": "t", "type": "text"},
            {"name": "n", "type": "number"},
            {"name": "b", "type": "bool"},
            {"name": "e", "type": "email"},
            {"name": "u", "type": "url"},
            {"name": "ed", "type": "editor"},
            {"name": "d", "type": "date"},
            {"name": "created", "type": "autodate", "onCreate": true},
            {"name": "updated", "type": "autodate", "onCreate": true, "onUpdate": true},
            {"name": "s", "type": "select", "values": ["a", "b", "c"]},
            {"name": "sm", "type": "select", "values": ["a", "b", "c"], "maxSelect": 3},
            {"name": "j", "type": "json"},
            {"name": "r", "type": "relation", "collectionId": tgt_id, "maxSelect": 1},
            {"name": "rm", "type": "relation", "collectionId": tgt_id, "maxSelect": 5},
            {"name": "p", "type": "password"},
            {"name": "g", "type": "geoPoint"},
            {"name": "secret", "type": "text", "hidden": true}
        ]}),
    )
    .await;
    tgt_id
}

#[tokio::test]
async fn crud_roundtrip() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    setup_all_types(&app, &su).await;
    let t1 = app.create_id(Some(&su), "tgt", json!({"t": "one"})).await;
    let t2 = app.create_id(Some(&su), "tgt", json!({"t": "two"})).await;
    let (status, rec) = app
        .post(
            "/api/collections/items/records",
            None,
            json!({"t": "hello", "n": 3.5, "b": true, "e": "a@b.co", "u": "https://x.io/a",
                   "ed": "<p>hi</p>", "d": "2024-01-02 03:04:05", "s": "b", "sm": ["a", "c"],
                   "r": t1, "rm": [t1, t2], "j": {"k": [1, 2]}, "p": "secret123",
                   "g": {"lon": 10.5, "lat": -20.25}, "secret": "shh"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    let id = rec["id"].as_str().expect("id").to_string();
    assert_eq!(id.len(), 15);
    assert!(id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()), "{id}");
    assert_eq!(rec["collectionName"], "items");
    assert!(rec["collectionId"].as_str().is_some_and(|s| s.starts_with("pbc_")));
    let expected = json!({"t": "hello", "n": 3.5, "b": true, "e": "a@b.co", "u": "https://x.io/a",
        "ed": "<p>hi</p>", "d": "2024-01-02 03:04:05.000Z", "s": "b", "sm": ["a", "c"], "r": t1,
        "rm": [t1, t2], "j": {"k": [1, 2]}, "p": "", "g": {"lon": 10.5, "lat": -20.25}});
    for (k, v) in expected.as_object().expect("object") {
        assert_eq!(&rec[k], v, "{k} in {rec}");
    }
    assert!(rec.get("secret").is_none(), "hidden field shown to a guest: {rec}");
    let created = rec["created"].as_str().expect("created").to_string();
    assert_eq!(created, rec["updated"].as_str().expect("updated"));
    // View: as guest (hidden field omitted) and as superuser (shown).
    let (status, view) = app.get(&format!("/api/collections/items/records/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view, rec, "view returns what create returned");
    // The guest's value for the hidden field was ignored (as PocketBase does); superusers see
    // the field and may write it.
    let (_, view) = app.get(&format!("/api/collections/items/records/{id}"), Some(&su)).await;
    assert_eq!(view["secret"], "");
    let (_, view) = app
        .patch(&format!("/api/collections/items/records/{id}"), Some(&su), json!({"secret": "shh"}))
        .await;
    assert_eq!(view["secret"], "shh");
    // Partial update; autodate fields: created stays, updated moves; client values are ignored.
    let (status, upd) = app
        .patch(
            &format!("/api/collections/items/records/{id}"),
            None,
            json!({"n": 4, "created": "2000-01-01 00:00:00.000Z", "updated": "2000-01-01 00:00:00.000Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{upd}");
    assert_eq!(upd["n"], 4);
    assert_eq!(upd["t"], "hello", "untouched fields kept");
    assert_eq!(upd["rm"], json!([t1, t2]));
    assert_eq!(upd["created"], created.as_str(), "created never changes");
    assert!(upd["updated"]
        .as_str()
        .is_some_and(|u| u >= created.as_str() && u != "2000-01-01 00:00:00.000Z"));
    // Collection addressed by id works too.
    let cid = rec["collectionId"].as_str().expect("cid");
    let (status, _) = app.get(&format!("/api/collections/{cid}/records/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    // Delete: 204 with no body, then 404 with the envelope.
    let (status, body) = app.delete(&format!("/api/collections/items/records/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);
    let (status, body) = app.get(&format!("/api/collections/items/records/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"data": {}, "message": "The requested resource wasn't found.", "status": 404})
    );
    let (status, _) = app.delete(&format!("/api/collections/items/records/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    if crate::helpers::postgres_server().is_none() {
        let db = app.dir.path().join("data.db");
        assert!(db.metadata().is_ok_and(|m| m.len() > 0), "data lives in the app's own dir");
    }
    let (status, _) =
        app.patch(&format!("/api/collections/items/records/{id}"), None, json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = app.get("/api/collections/nope/records", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "Missing collection context.");
    app.stop().await;
}

#[tokio::test]
async fn empty_body_gives_zero_values() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    setup_all_types(&app, &su).await;
    let rec = app.create_record(None, "items", json!({})).await;
    let zeros = json!({"t": "", "n": 0, "b": false, "e": "", "u": "", "ed": "", "d": "",
        "s": "", "sm": [], "j": null, "r": "", "rm": [], "p": "", "g": {"lon": 0, "lat": 0}});
    for (k, v) in zeros.as_object().expect("object") {
        assert_eq!(&rec[k], v, "{k} in {rec}");
    }
    // An empty body (no bytes at all) is also a valid create.
    let (status, rec) =
        app.send_raw(Method::POST, "/api/collections/items/records", &[], None).await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    assert_eq!(rec["n"], 0);
    app.stop().await;
}

#[tokio::test]
async fn input_coercions_follow_pocketbase() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    setup_all_types(&app, &su).await;
    let zero_point = json!({"lon": 0, "lat": 0});
    let cases: Vec<(&str, Value, Value)> = vec![
        ("n", json!("42"), json!(42)),
        ("n", json!("abc"), json!(0)),
        ("n", json!(""), json!(0)),
        ("n", Value::Null, json!(0)),
        ("n", json!(true), json!(1)),
        ("n", json!(false), json!(0)),
        ("n", json!("1.5"), json!(1.5)),
        ("b", json!("true"), json!(true)),
        ("b", json!("TRUE"), json!(true)),
        ("b", json!("1"), json!(true)),
        ("b", json!(1), json!(true)),
        ("b", json!("on"), json!(false)),
        ("b", json!("yes"), json!(false)),
        ("b", json!("false"), json!(false)),
        ("b", json!(0), json!(false)),
        ("b", Value::Null, json!(false)),
        ("d", json!("2024-01-02"), json!("2024-01-02 00:00:00.000Z")),
        ("d", json!("2024-01-02T03:04:05Z"), json!("2024-01-02 03:04:05.000Z")),
        ("d", json!("2024-01-02T03:04:05+02:00"), json!("2024-01-02 01:04:05.000Z")),
        ("d", json!("2024-01-02 03:04:05.123Z"), json!("2024-01-02 03:04:05.123Z")),
        ("d", json!("2024-01-02 03:04:05"), json!("2024-01-02 03:04:05.000Z")),
        ("d", json!("garbage"), json!("")),
        ("d", json!("2024/01/02"), json!("")),
        ("d", json!(1700000000), json!("")),
        ("d", json!("1700000000"), json!("")),
        ("s", json!(["a", "b"]), json!("b")),
        ("s", json!([]), json!("")),
        ("s", Value::Null, json!("")),
        ("sm", json!("a"), json!(["a"])),
        ("sm", json!(["a", "a", "b"]), json!(["a", "b"])),
        ("sm", Value::Null, json!([])),
        ("j", json!("[1,2]"), json!([1, 2])),
        ("j", json!("true"), json!(true)),
        ("j", json!("hello"), json!("hello")),
        ("j", json!("\"q\""), json!("q")),
        ("j", json!({"a": 1}), json!({"a": 1})),
        ("j", json!(0), json!(0)),
        ("j", json!("null"), Value::Null),
        ("g", json!("x"), zero_point.clone()),
        ("g", json!([1, 2]), zero_point.clone()),
        ("g", json!({"lon": 1}), json!({"lon": 1, "lat": 0})),
        ("t", json!(5), json!("5")),
        ("t", json!(true), json!("true")),
        ("t", Value::Null, json!("")),
        ("e", Value::Null, json!("")),
    ];
    let mut failures = Vec::new();
    for (field, input, want) in cases {
        let (status, rec) =
            app.post("/api/collections/items/records", None, json!({ field: input })).await;
        if status != StatusCode::OK || rec[field] != want {
            failures.push(format!("{field} = {input}: want {want}, got {status} {}", rec[field]));
        }
    }
    assert!(failures.is_empty(), "coercion mismatches:\n{}", failures.join("\n"));
    app.stop().await;
}

/// One failing value per constraint, with the code (and params) PocketBase answers.
#[tokio::test]
async fn validation_codes_per_field_type() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let tgt = app
        .create_collection(&su, json!({"name": "tgt", "fields": [{"name": "t", "type": "text"}]}))
        .await;
    let tgt_id = tgt["id"].as_str().expect("id");
    app.create_collection(
        &su,
        json!({"name": "v", "createRule": "", "fields": [
            {"name": "t", "type": "text", "min": 3, "max": 5, "pattern": "^[a-z]+$"},
            {"name": "tr", "type": "text", "required": true},
            {"name": "tl", "type": "text"},
            {"name": "n", "type": "number", "min": 1, "max": 10, "onlyInt": true},
            {"name": "nr", "type": "number", "required": true},
            {"name": "b", "type": "bool", "required": true},
            {"name": "e", "type": "email", "onlyDomains": ["good.io"]},
            {"name": "e2", "type": "email", "exceptDomains": ["bad.io"]},
            {"name": "u", "type": "url", "onlyDomains": ["good.io"]},
            {"name": "u2", "type": "url", "exceptDomains": ["bad.io"]},
            {"name": "s", "type": "select", "values": ["a", "b", "c"]},
            {"name": "sm", "type": "select", "values": ["a", "b", "c"], "maxSelect": 2},
            {"name": "d", "type": "date", "min": "2024-01-01 00:00:00.000Z", "max": "2024-12-31 00:00:00.000Z"},
            {"name": "j", "type": "json", "maxSize": 10},
            {"name": "r", "type": "relation", "collectionId": tgt_id, "maxSelect": 1},
            {"name": "rm", "type": "relation", "collectionId": tgt_id, "maxSelect": 2},
            {"name": "g", "type": "geoPoint"},
            {"name": "ed", "type": "editor", "maxSize": 10}
        ]}),
    )
    .await;
    let mut t = Vec::new();
    for i in 0..3 {
        t.push(app.create_id(Some(&su), "tgt", json!({"t": i.to_string()})).await);
    }
    let valid = json!({"tr": "x", "nr": 1, "b": true});
    let (status, body) = app.post("/api/collections/v/records", None, valid.clone()).await;
    assert_eq!(status, StatusCode::OK, "baseline must be valid: {body}");
    let long = "x".repeat(5001);
    let cases: Vec<(&str, Value, &str, Option<Value>)> = vec![
        ("t", json!("ab"), "validation_min_text_constraint", Some(json!({"min": 3}))),
        ("t", json!("abcdef"), "validation_max_text_constraint", Some(json!({"max": 5}))),
        ("t", json!("ABC"), "validation_invalid_format", None),
        ("tr", json!(""), "validation_required", None),
        ("tr", Value::Null, "validation_required", None),
        ("tl", json!(long), "validation_max_text_constraint", Some(json!({"max": 5000}))),
        ("n", json!(-5), "validation_min_number_constraint", None),
        ("n", json!(11), "validation_max_number_constraint", Some(json!({"max": 10}))),
        ("n", json!(1.5), "validation_only_int_constraint", None),
        ("nr", json!(0), "validation_required", None),
        ("b", json!(false), "validation_required", None),
        ("e", json!("nope"), "validation_is_email", None),
        ("e", json!("a@bad.io"), "validation_email_domain_not_allowed", None),
        ("e2", json!("a@bad.io"), "validation_email_domain_not_allowed", None),
        ("u", json!("nope"), "validation_invalid_url", None),
        ("u", json!("https://bad.io"), "validation_url_domain_not_allowed", None),
        ("u2", json!("https://bad.io/x"), "validation_url_domain_not_allowed", None),
        ("s", json!("z"), "validation_invalid_value", Some(json!({"value": "z"}))),
        ("s", json!(["a", "z"]), "validation_invalid_value", Some(json!({"value": "z"}))),
        ("sm", json!(["a", "b", "c"]), "validation_too_many_values", Some(json!({"maxSelect": 2}))),
        ("sm", json!(["a", "z"]), "validation_invalid_value", Some(json!({"value": "z"}))),
        ("sm", json!("a,b"), "validation_invalid_value", Some(json!({"value": "a,b"}))),
        ("d", json!("2023-01-01"), "validation_min_greater_equal_than_required", None),
        ("d", json!("2025-06-01"), "validation_max_less_equal_than_required", None),
        (
            "j",
            json!({"k": "0123456789"}),
            "validation_json_size_limit",
            Some(json!({"maxSize": 10})),
        ),
        ("r", json!("nopenopenopenop"), "validation_missing_rel_records", None),
        ("rm", json!([t[0], "nopenopenopenop"]), "validation_missing_rel_records", None),
        ("rm", json!(t), "validation_too_many_values", Some(json!({"maxSelect": 2}))),
        ("g", json!({"lon": 200, "lat": 0}), "validation_invalid_longitude", None),
        ("g", json!({"lon": 0, "lat": -100}), "validation_invalid_latitude", None),
        (
            "ed",
            json!("<p>0123456789</p>"),
            "validation_content_size_limit",
            Some(json!({"maxSize": 10})),
        ),
    ];
    let mut failures = Vec::new();
    for (field, input, code, params) in cases {
        let mut body = valid.clone();
        body[field] = input.clone();
        let (status, res) = app.post("/api/collections/v/records", None, body).await;
        let err = &res["data"][field];
        let ok = status == StatusCode::BAD_REQUEST
            && err["code"] == code
            && err["message"].is_string()
            && params.as_ref().is_none_or(|p| &err["params"] == p)
            && res["message"] == "Failed to create record.";
        if !ok {
            failures.push(format!("{field}={input}: want {code} {params:?}, got {status} {res}"));
        }
    }
    // Non-required fields holding their zero value skip min checks (PocketBase: `n: 0` is fine).
    let mut body = valid.clone();
    body["n"] = json!(0);
    let (status, res) = app.post("/api/collections/v/records", None, body).await;
    if status != StatusCode::OK {
        failures.push(format!("n=0 (not required) should pass: {status} {res}"));
    }
    // Nothing invalid was written.
    let count = app.list("v", "", Some(&su)).await["totalItems"].clone();
    if count != 2 {
        failures.push(format!("expected 2 stored records, got {count}"));
    }
    assert!(failures.is_empty(), "validation mismatches:\n{}", failures.join("\n"));
    // Every failing field is reported at once, on update too.
    let id = app.create_id(Some(&su), "v", valid.clone()).await;
    let (status, res) = app
        .patch(
            &format!("/api/collections/v/records/{id}"),
            Some(&su),
            json!({"t": "ab", "n": 11, "tr": ""}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
    assert_eq!(res["message"], "Failed to update record.");
    let keys: Vec<&String> = res["data"].as_object().expect("data").keys().collect();
    assert_eq!(keys.len(), 3, "{res}");
    app.stop().await;
}

#[tokio::test]
async fn update_modifiers() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let tgt_id = setup_all_types(&app, &su).await;
    let _ = tgt_id;
    let mut t = Vec::new();
    for i in 0..4 {
        t.push(app.create_id(Some(&su), "tgt", json!({"t": i.to_string()})).await);
    }
    let id = app.create_id(None, "items", json!({"n": 5, "sm": ["a"]})).await;
    let path = format!("/api/collections/items/records/{id}");
    let steps: Vec<(Value, Value, Value, Value)> = vec![
        // body, n, sm, rm
        (json!({"sm+": "b", "n+": 10}), json!(15), json!(["a", "b"]), json!([])),
        (json!({"sm-": ["a"], "n-": 3}), json!(12), json!(["b"]), json!([])),
        (json!({"+sm": "c"}), json!(12), json!(["c", "b"]), json!([])),
        (json!({"sm+": ["a", "b"]}), json!(12), json!(["c", "b", "a"]), json!([])),
        (json!({"sm-": "nope"}), json!(12), json!(["c", "b", "a"]), json!([])),
        (json!({"rm+": [t[0], t[1]]}), json!(12), json!(["c", "b", "a"]), json!([t[0], t[1]])),
        (json!({"+rm": t[2]}), json!(12), json!(["c", "b", "a"]), json!([t[2], t[0], t[1]])),
        (json!({"rm-": t[0]}), json!(12), json!(["c", "b", "a"]), json!([t[2], t[1]])),
        (json!({"n+": "2"}), json!(14), json!(["c", "b", "a"]), json!([t[2], t[1]])),
        (json!({"n-": -1.5}), json!(15.5), json!(["c", "b", "a"]), json!([t[2], t[1]])),
        (json!({"sm": null, "rm": []}), json!(15.5), json!([]), json!([])),
    ];
    for (body, n, sm, rm) in steps {
        let (status, rec) = app.patch(&path, None, body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}: {rec}");
        assert_eq!((&rec["n"], &rec["sm"], &rec["rm"]), (&n, &sm, &rm), "after {body}: {rec}");
    }
    // A modifier adding an unknown relation id is validated like a plain value.
    let (status, res) = app.patch(&path, None, json!({"rm+": "nonexistentid00"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
    assert_eq!(res["data"]["rm"]["code"], "validation_missing_rel_records");
    // Modifiers on create apply to the zero value.
    let rec = app.create_record(None, "items", json!({"n+": 3, "sm+": "a"})).await;
    assert_eq!((&rec["n"], &rec["sm"]), (&json!(3), &json!(["a"])), "{rec}");
    // Stored, not just echoed.
    let (_, rec) = app.get(&path, None).await;
    assert_eq!(rec["n"], 15.5);
    app.stop().await;
}

#[tokio::test]
async fn custom_ids() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    setup_all_types(&app, &su).await;
    let rec = app.create_record(None, "items", json!({"id": "abcdefghij12345"})).await;
    assert_eq!(rec["id"], "abcdefghij12345");
    let (status, _) = app.get("/api/collections/items/records/abcdefghij12345", None).await;
    assert_eq!(status, StatusCode::OK);
    let cases = [
        ("abc", "validation_min_text_constraint"),
        ("abcdefghijklmnop", "validation_max_text_constraint"),
        ("ABCDEFGHIJKLMNO", "validation_invalid_format"),
        ("abcdefghijklm-o", "validation_invalid_format"),
        ("abcdefghijklm o", "validation_invalid_format"),
        ("abcdefghij'1234", "validation_invalid_format"),
        ("abcdefghij12345", "validation_not_unique"),
    ];
    for (id, code) in cases {
        let (status, res) =
            app.post("/api/collections/items/records", None, json!({"id": id})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{id}: {res}");
        assert_eq!(res["data"]["id"]["code"], code, "{id}: {res}");
    }
    let (status, res) =
        app.post("/api/collections/items/records", None, json!({"id": "abc"})).await;
    assert_eq!(
        (status, &res["data"]["id"]["params"]),
        (StatusCode::BAD_REQUEST, &json!({"min": 15}))
    );
    // The id cannot be changed by an update.
    let (status, rec) = app
        .patch(
            "/api/collections/items/records/abcdefghij12345",
            None,
            json!({"id": "zzzzzzzzzzzzzzz", "t": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{rec}");
    assert_eq!(rec["data"]["id"]["code"], "validation_pk_change", "{rec}");
    let (status, _) = app.get("/api/collections/items/records/zzzzzzzzzzzzzzz", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(app.list("items", "", None).await["totalItems"], 1);
    app.stop().await;
}

#[tokio::test]
async fn unknown_and_system_body_keys_are_ignored() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    setup_all_types(&app, &su).await;
    let rec = app
        .create_record(
            None,
            "items",
            json!({"t": "x", "nope": 1, "collectionName": "zz", "collectionId": "zz", "expand": {"a": 1}}),
        )
        .await;
    assert_eq!(rec["t"], "x");
    assert_eq!(rec["collectionName"], "items");
    assert!(rec.get("nope").is_none() && rec.get("expand").is_none(), "{rec}");
    app.stop().await;
}

#[tokio::test]
async fn urlencoded_bodies_work_for_records() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    setup_all_types(&app, &su).await;
    let (status, rec) = app
        .send_raw(
            Method::POST,
            "/api/collections/items/records",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some(b"t=form+value&n=7&b=true&sm=a&sm=c".to_vec()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    assert_eq!((&rec["t"], &rec["n"], &rec["b"]), (&json!("form value"), &json!(7), &json!(true)));
    assert_eq!(rec["sm"], json!(["a", "c"]));
    app.stop().await;
}

#[tokio::test]
async fn malformed_requests_get_the_error_envelope() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    setup_all_types(&app, &su).await;
    let json_ct = [("Content-Type", "application/json")];
    for raw in [&b"notjson"[..], b"{\"t\": ", b"[1,2]", b"\"str\"", b"42"] {
        let (status, body) = app
            .send_raw(Method::POST, "/api/collections/items/records", &json_ct, Some(raw.to_vec()))
            .await;
        let shown = String::from_utf8_lossy(raw);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{shown}: {body}");
        assert_eq!(body["status"], 400, "{shown}: {body}");
        assert!(body["message"].is_string() && body["data"].is_object(), "{shown}: {body}");
    }
    let (status, body) = app.get("/api/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"data": {}, "message": "File not found.", "status": 404}));
    for q in ["page=x", "perPage=x", "page=1.5", "perPage=-x"] {
        let (status, body) = app.get(&format!("/api/collections/items/records?{q}"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {body}");
        assert_eq!(body["status"], 400);
    }
    assert_eq!(app.list("items", "", Some(&su)).await["totalItems"], 0, "nothing was created");
    app.stop().await;
}

#[tokio::test]
async fn forty_megabyte_body_is_413() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    setup_all_types(&app, &su).await;
    let mut big = b"{\"t\":\"".to_vec();
    big.resize(big.len() + 40 * 1024 * 1024, b'a');
    big.extend_from_slice(b"\"}");
    let res = app
        .client
        .post(format!("{}/api/collections/items/records", app.url))
        .header("Content-Type", "application/json")
        .body(big)
        .send()
        .await
        .expect("the server answers before resetting the connection");
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = res.json().await.expect("json envelope");
    assert_eq!(body["status"], 413, "{body}");
    // The server is still fine afterwards.
    assert_eq!(app.list("items", "", Some(&su)).await["totalItems"], 0);
    app.stop().await;
}
