//! Collections API: create with every field type and its defaults, schema changes that keep
//! data, renames, indexes, rule validation, deletes, access control and import.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{enc, spawn_app};

fn field<'a>(coll: &'a Value, name: &str) -> &'a Value {
    coll["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no field {name} in {coll}"))
}

pub(crate) fn field_names(coll: &Value) -> Vec<String> {
    coll["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["name"].as_str().expect("name").to_string())
        .collect()
}

/// Asserts that `f` has exactly the keys of `expected` plus the common ones, with those values.
fn assert_field(f: &Value, expected: Value) {
    let mut want = json!({"system": false, "hidden": false, "presentable": false});
    if f["type"] != "autodate" {
        want["required"] = json!(false);
        want["help"] = json!("");
    }
    for (k, v) in expected.as_object().expect("object") {
        want[k] = v.clone();
    }
    let got = f.as_object().expect("field object");
    for (k, v) in want.as_object().expect("object") {
        assert_eq!(got.get(k), Some(v), "option {k} of {f}");
    }
    for k in got.keys() {
        assert!(k == "id" || k == "name" || want.get(k).is_some(), "unexpected option {k} in {f}");
    }
}

#[tokio::test]
async fn create_base_collection_with_every_field_type_returns_defaults() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let c = app
        .create_collection(
            &su,
            json!({"name": "allf", "fields": [
                {"name": "t", "type": "text"},
                {"name": "n", "type": "number"},
                {"name": "b", "type": "bool"},
                {"name": "e", "type": "email"},
                {"name": "u", "type": "url"},
                {"name": "ed", "type": "editor"},
                {"name": "d", "type": "date"},
                {"name": "ad", "type": "autodate", "onCreate": true},
                {"name": "s", "type": "select", "values": ["a", "b", "c"]},
                {"name": "sm", "type": "select", "values": ["a", "b", "c"], "maxSelect": 3},
                {"name": "j", "type": "json"},
                {"name": "r", "type": "relation", "collectionId": "_pb_users_auth_"},
                {"name": "rm", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 5},
                {"name": "f", "type": "file"},
                {"name": "p", "type": "password"},
                {"name": "g", "type": "geoPoint"}
            ]}),
        )
        .await;
    assert_eq!(c["id"], "pbc_2844260936", "crc32(type+name) id");
    assert_eq!(c["name"], "allf");
    assert_eq!(c["type"], "base");
    assert_eq!(c["system"], false);
    for r in ["listRule", "viewRule", "createRule", "updateRule", "deleteRule"] {
        assert_eq!(c[r], Value::Null, "{r} defaults to null");
    }
    assert_eq!(c["indexes"], json!([]));
    assert!(c["created"].as_str().is_some_and(|s| s.len() == 24 && s.ends_with('Z')), "{c}");
    let names = field_names(&c);
    assert_eq!(names[0], "id", "id first");
    assert!(!names.contains(&"created".to_string()), "API collections get no created: {names:?}");
    assert!(!names.contains(&"updated".to_string()));
    assert_eq!(names.len(), 17);
    assert_field(
        field(&c, "id"),
        json!({"id": "text3208210256", "type": "text", "system": true, "required": true,
               "min": 15, "max": 15, "pattern": "^[a-z0-9]+$", "autogeneratePattern": "[a-z0-9]{15}",
               "primaryKey": true}),
    );
    assert_eq!(field(&c, "t")["id"], "text2238339752", "field id = type + crc32(name)");
    let cases = [
        (
            "t",
            json!({"type": "text", "min": 0, "max": 0, "pattern": "", "autogeneratePattern": "", "primaryKey": false}),
        ),
        ("n", json!({"type": "number", "min": null, "max": null, "onlyInt": false})),
        ("b", json!({"type": "bool"})),
        ("e", json!({"type": "email", "onlyDomains": [], "exceptDomains": []})),
        ("u", json!({"type": "url", "onlyDomains": [], "exceptDomains": []})),
        ("ed", json!({"type": "editor", "maxSize": 0, "convertURLs": false})),
        ("d", json!({"type": "date", "min": "", "max": ""})),
        ("ad", json!({"type": "autodate", "onCreate": true, "onUpdate": false})),
        ("s", json!({"type": "select", "values": ["a", "b", "c"], "maxSelect": 0})),
        ("sm", json!({"type": "select", "values": ["a", "b", "c"], "maxSelect": 3})),
        ("j", json!({"type": "json", "maxSize": 0})),
        (
            "r",
            json!({"type": "relation", "collectionId": "_pb_users_auth_", "cascadeDelete": false, "minSelect": 0, "maxSelect": 0}),
        ),
        (
            "rm",
            json!({"type": "relation", "collectionId": "_pb_users_auth_", "cascadeDelete": false, "minSelect": 0, "maxSelect": 5}),
        ),
        (
            "f",
            json!({"type": "file", "maxSelect": 0, "maxSize": 0, "mimeTypes": [], "thumbs": [], "protected": false}),
        ),
        ("p", json!({"type": "password", "min": 0, "max": 0, "pattern": "", "cost": 0})),
        ("g", json!({"type": "geoPoint"})),
    ];
    for (name, expected) in cases {
        assert_field(field(&c, name), expected);
    }
    // The view endpoint returns the same definition, by name and by id.
    let (status, by_name) = app.get("/api/collections/allf", Some(&su)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, by_id) = app.get("/api/collections/pbc_2844260936", Some(&su)).await;
    assert_eq!(by_name, c);
    assert_eq!(by_id, c);
    // A blank record holds every zero value.
    let rec = app.create_record(Some(&su), "allf", json!({})).await;
    let zeros = json!({"t": "", "n": 0, "b": false, "e": "", "u": "", "ed": "", "d": "",
        "s": "", "sm": [], "j": null, "r": "", "rm": [], "f": "", "p": "", "g": {"lon": 0, "lat": 0}});
    for (k, v) in zeros.as_object().expect("object") {
        assert_eq!(&rec[k], v, "zero value of {k} in {rec}");
    }
    assert!(rec["ad"].as_str().is_some_and(|s| s.len() == 24), "autodate set: {rec}");
    app.stop().await;
}

#[tokio::test]
async fn create_auth_collection_adds_system_fields_and_options() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let c = app.create_collection(&su, json!({"name": "members", "type": "auth"})).await;
    assert_eq!(c["type"], "auth");
    assert_eq!(c["id"], "pbc_2620428958");
    assert_eq!(
        field_names(&c),
        ["id", "password", "tokenKey", "email", "emailVisibility", "verified"]
    );
    assert_eq!(field(&c, "password")["hidden"], true);
    assert_eq!(field(&c, "password")["system"], true);
    assert_eq!(field(&c, "tokenKey")["hidden"], true);
    assert_eq!(field(&c, "email")["required"], true);
    assert_eq!(field(&c, "email")["type"], "email");
    assert_eq!(field(&c, "verified")["type"], "bool");
    assert_eq!(c["authRule"], "");
    assert_eq!(c["manageRule"], Value::Null);
    assert_eq!(c["passwordAuth"], json!({"enabled": true, "identityFields": ["email"]}));
    assert_eq!(c["authToken"]["duration"], 432000);
    assert!(c["authToken"].get("secret").is_none(), "token secret must not leak: {c}");
    let idx = c["indexes"].as_array().expect("indexes");
    assert_eq!(idx.len(), 2, "{idx:?}");
    assert!(idx
        .iter()
        .any(|i| i.as_str().is_some_and(|s| s.contains("UNIQUE") && s.contains("tokenKey"))));
    assert!(idx.iter().any(|i| i
        .as_str()
        .is_some_and(|s| s.contains("UNIQUE") && s.contains("email") && s.contains("WHERE"))));
    assert_eq!(c["createRule"], Value::Null, "auth collections start locked too");
    // The new collection is usable for login right away.
    let (_, tok) =
        app.create_auth_record("members", Some(&su), json!({}), "m@x.io", "password123").await;
    assert!(!tok.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn update_adds_renames_and_removes_fields_keeping_data() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let c = app
        .create_collection(
            &su,
            json!({"name": "docs", "listRule": "", "viewRule": "", "fields": [
                {"name": "title", "type": "text"},
                {"name": "body", "type": "text"},
                {"name": "n", "type": "number"}]}),
        )
        .await;
    let a = app.create_id(Some(&su), "docs", json!({"title": "A", "body": "alpha", "n": 1})).await;
    let b = app.create_id(Some(&su), "docs", json!({"title": "B", "body": "beta", "n": 2})).await;
    let body_id = field(&c, "body")["id"].clone();
    let title_id = field(&c, "title")["id"].clone();
    let fields = json!([
        field(&c, "id"),
        field(&c, "title"),
        {"id": body_id, "name": "content", "type": "text"},
        {"name": "extra", "type": "bool"}
    ]);
    let (status, updated) =
        app.patch("/api/collections/docs", Some(&su), json!({"fields": fields})).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(field_names(&updated), ["id", "title", "content", "extra"]);
    assert_eq!(field(&updated, "content")["id"], body_id, "a rename keeps the field id");
    assert_eq!(field(&updated, "title")["id"], title_id);
    for (id, title, content) in [(&a, "A", "alpha"), (&b, "B", "beta")] {
        let (status, rec) = app.get(&format!("/api/collections/docs/records/{id}"), None).await;
        assert_eq!(status, StatusCode::OK, "{rec}");
        assert_eq!(rec["title"], title, "untouched field keeps its data");
        assert_eq!(rec["content"], content, "renamed field keeps its data");
        assert_eq!(rec["extra"], false, "added field has its zero value");
        assert!(rec.get("body").is_none() && rec.get("n").is_none(), "{rec}");
    }
    let list = app.list("docs", &format!("filter={}", enc("content = 'beta'")), None).await;
    assert_eq!(list["totalItems"], 1);
    let (status, _) =
        app.get(&format!("/api/collections/docs/records?filter={}", enc("n = 1")), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "removed field is no longer filterable");
    // Re-adding a removed field by name gives a fresh, empty column.
    let mut fields = updated["fields"].as_array().expect("fields").clone();
    fields.push(json!({"name": "n", "type": "number"}));
    let (status, body) =
        app.patch("/api/collections/docs", Some(&su), json!({"fields": fields})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, rec) = app.get(&format!("/api/collections/docs/records/{a}"), None).await;
    assert_eq!(rec["n"], 0, "{rec}");
    // A partial update without `fields` keeps them.
    let (status, body) =
        app.patch("/api/collections/docs", Some(&su), json!({"listRule": null})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(field_names(&body), ["id", "title", "content", "extra", "n"]);
    assert_eq!(body["listRule"], Value::Null);
    assert_eq!(body["viewRule"], "");
    app.stop().await;
}

#[tokio::test]
async fn field_type_change_is_rejected() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let c = app
        .create_collection(&su, json!({"name": "fc", "fields": [{"name": "a", "type": "text"}]}))
        .await;
    let fid = field(&c, "a")["id"].clone();
    let (status, body) = app
        .patch(
            "/api/collections/fc",
            Some(&su),
            json!({"fields": [field(&c, "id"), {"id": fid, "name": "a", "type": "number"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["data"]["fields"]["1"]["code"], "validation_field_type_change", "{body}");
    app.stop().await;
}

#[tokio::test]
async fn renamed_collection_keeps_records_and_relations() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let old = app
        .create_collection(
            &su,
            json!({"name": "old_name", "listRule": "", "viewRule": "",
                   "fields": [{"name": "title", "type": "text"}]}),
        )
        .await;
    let cid = old["id"].as_str().expect("id").to_string();
    app.create_collection(
        &su,
        json!({"name": "refs", "listRule": "", "viewRule": "", "fields": [
            {"name": "target", "type": "relation", "collectionId": cid, "maxSelect": 1}]}),
    )
    .await;
    let id = app.create_id(Some(&su), "old_name", json!({"title": "kept"})).await;
    let rid = app.create_id(Some(&su), "refs", json!({"target": id})).await;
    let (status, body) =
        app.patch("/api/collections/old_name", Some(&su), json!({"name": "new_name"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], cid.as_str(), "rename keeps the id");
    let list = app.list("new_name", "", None).await;
    assert_eq!(list["totalItems"], 1);
    assert_eq!(list["items"][0]["title"], "kept");
    assert_eq!(list["items"][0]["collectionName"], "new_name");
    let (status, _) = app.get("/api/collections/old_name/records", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get(&format!("/api/collections/{cid}/records/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "by id still works");
    let (status, rec) =
        app.get(&format!("/api/collections/refs/records/{rid}?expand=target"), None).await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    assert_eq!(rec["expand"]["target"]["title"], "kept", "{rec}");
    assert_eq!(rec["expand"]["target"]["collectionName"], "new_name");
    // Records can still be written under the new name.
    app.create_record(Some(&su), "new_name", json!({"title": "second"})).await;
    assert_eq!(app.list("new_name", "", None).await["totalItems"], 2);
    app.stop().await;
}

#[tokio::test]
async fn unique_index_rejects_duplicate_records() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let c = app
        .create_collection(
            &su,
            json!({"name": "ix", "fields": [{"name": "t", "type": "text"}, {"name": "u", "type": "text"}],
                   "indexes": ["CREATE UNIQUE INDEX idx_ix_t ON ix (t)"]}),
        )
        .await;
    assert_eq!(c["indexes"], json!(["CREATE UNIQUE INDEX idx_ix_t ON ix (t)"]), "verbatim");
    let first = app.create_id(Some(&su), "ix", json!({"t": "a", "u": "x"})).await;
    let (status, body) =
        app.post("/api/collections/ix/records", Some(&su), json!({"t": "a", "u": "y"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["data"]["t"]["code"], "validation_not_unique", "{body}");
    assert_eq!(body["message"], "Failed to create record.");
    assert_eq!(app.list("ix", "", Some(&su)).await["totalItems"], 1, "nothing written");
    // Updating another record into the duplicate value is rejected too.
    let second = app.create_id(Some(&su), "ix", json!({"t": "b"})).await;
    let (status, body) = app
        .patch(&format!("/api/collections/ix/records/{second}"), Some(&su), json!({"t": "a"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["data"]["t"]["code"], "validation_not_unique");
    assert_eq!(body["message"], "Failed to update record.");
    // Updating a record to its own value is fine.
    let (status, _) = app
        .patch(&format!("/api/collections/ix/records/{first}"), Some(&su), json!({"t": "a"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    // Adding a unique index that existing data violates fails.
    app.create_record(Some(&su), "ix", json!({"t": "c", "u": "x"})).await;
    let (status, body) = app
        .patch(
            "/api/collections/ix",
            Some(&su),
            json!({"indexes": ["CREATE UNIQUE INDEX idx_ix_t ON ix (t)", "CREATE UNIQUE INDEX idx_ix_u ON ix (u)"]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["data"]["indexes"].is_object(), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn invalid_indexes_rules_names_and_types_are_400() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let bad = |name: &str, extra: Value| {
        let mut def = json!({"name": name, "fields": [{"name": "t", "type": "text"}]});
        for (k, v) in extra.as_object().expect("object") {
            def[k] = v.clone();
        }
        def
    };
    let post = |def: Value| {
        let app = &app;
        let su = su.clone();
        async move { app.post("/api/collections", Some(&su), def).await }
    };
    // Index on an unknown column, and an index that isn't one.
    for idx in ["CREATE INDEX bad ON ix2 (nope)", "garbage", "DROP TABLE users"] {
        let (status, body) = post(bad("ix2", json!({"indexes": [idx]}))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{idx}: {body}");
        assert_eq!(
            body["data"]["indexes"]["0"]["code"], "validation_invalid_index_expression",
            "{idx}: {body}"
        );
    }
    let (status, body) = post(bad("ix3", json!({"listRule": "nope = 1"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["data"]["listRule"]["code"], "validation_invalid_rule");
    assert_eq!(body["message"], "Failed to create collection.");
    for rule in ["t = ", "t ^ 'x'", "true", "@request.nope = 1", "@collection.missing.x = 1"] {
        let (status, body) = post(bad("ix3", json!({"viewRule": rule}))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "rule {rule:?}: {body}");
        assert_eq!(body["data"]["viewRule"]["code"], "validation_invalid_rule", "{rule}: {body}");
    }
    // Unknown field type → generic formatting error; unknown collection type → 400.
    let (status, body) = app
        .post(
            "/api/collections",
            Some(&su),
            json!({"name": "x1", "fields": [{"name": "a", "type": "nope"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["message"], "Failed to load the submitted data due to invalid formatting.");
    assert_eq!(body["data"], json!({}));
    let (status, _) =
        app.post("/api/collections", Some(&su), json!({"name": "x2", "type": "weird"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Names.
    app.create_collection(&su, json!({"name": "taken"})).await;
    for name in ["taken", "TAKEN", "Taken", "users", "USERS"] {
        let (status, body) = app.post("/api/collections", Some(&su), json!({"name": name})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
        assert_eq!(body["data"]["name"]["code"], "validation_collection_name_exists", "{name}");
    }
    for name in ["", "bad name", "semi;colon", "quote\"d", "a-b"] {
        let (status, body) = app.post("/api/collections", Some(&su), json!({"name": name})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name:?}: {body}");
        assert!(body["data"]["name"]["code"].is_string(), "{name:?}: {body}");
    }
    // Renaming onto an existing name (case-insensitive) is rejected too.
    app.create_collection(&su, json!({"name": "other"})).await;
    let (status, body) =
        app.patch("/api/collections/other", Some(&su), json!({"name": "Taken"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["data"]["name"]["code"], "validation_collection_name_exists");
    app.stop().await;
}

/// Field-definition errors, with the codes PocketBase 0.40.6 answers (checked against it).
#[tokio::test]
async fn field_definition_errors_use_pocketbase_codes() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"name": "s", "type": "select"}), "values", "validation_required"),
        (json!({"name": "r", "type": "relation"}), "collectionId", "validation_required"),
        (
            json!({"name": "r", "type": "relation", "collectionId": "nope"}),
            "collectionId",
            "validation_field_relation_missing_collection",
        ),
        (json!({"name": "ad", "type": "autodate"}), "onCreate", "validation_required"),
        (json!({"name": "expand", "type": "text"}), "name", "validation_not_in_invalid"),
        (json!({"name": "bad name", "type": "text"}), "name", "validation_match_invalid"),
    ];
    let mut failures = Vec::new();
    for (i, (f, key, code)) in cases.into_iter().enumerate() {
        let def = json!({"name": format!("fd{i}"), "fields": [f]});
        let (status, body) = app.post("/api/collections", Some(&su), def).await;
        if status != StatusCode::BAD_REQUEST || body["data"]["fields"]["1"][key]["code"] != code {
            failures.push(format!("{f}: want 400 fields.1.{key}.code={code}, got {status} {body}"));
        }
    }
    let (status, body) = app
        .post(
            "/api/collections",
            Some(&su),
            json!({"name": "dup", "fields": [{"name": "a", "type": "text"}, {"name": "A", "type": "text"}]}),
        )
        .await;
    if status != StatusCode::BAD_REQUEST
        || body["data"]["fields"]["2"]["name"]["code"] != "validation_duplicated_field_name"
    {
        failures.push(format!("duplicate field name: {status} {body}"));
    }
    let (status, body) = app.post("/api/collections", Some(&su), json!({"name": "bad name"})).await;
    if status != StatusCode::BAD_REQUEST
        || body["data"]["name"]["code"] != "validation_match_invalid"
    {
        failures.push(format!("invalid collection name: {status} {body}"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    app.stop().await;
}
