//! Collections API administration: deleting and truncating, superuser-only access on every
//! endpoint, the collections list (filter/sort/paging/fields) and import.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::collections::field_names;
use crate::helpers::{enc, spawn_app, TestApp};

#[tokio::test]
async fn delete_collection_semantics() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let target = app
        .create_collection(
            &su,
            json!({"name": "target", "listRule": "", "fields": [{"name": "t", "type": "text"}]}),
        )
        .await;
    app.create_collection(
        &su,
        json!({"name": "posts", "fields": [{"name": "r", "type": "relation",
               "collectionId": target["id"], "maxSelect": 1}]}),
    )
    .await;
    app.create_record(Some(&su), "target", json!({"t": "x"})).await;
    let (status, body) = app.delete("/api/collections/target", Some(&su)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["message"],
        "Failed to delete collection probably due to existing reference in posts."
    );
    let (status, body) = app.delete("/api/collections/_superusers", Some(&su)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(!app.su_token().await.is_empty(), "superusers survive");
    // Remove the referencing collection first, then the target goes.
    let (status, body) = app.delete("/api/collections/posts", Some(&su)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(body, Value::Null, "204 has no body");
    let (status, body) = app
        .delete(&format!("/api/collections/{}", target["id"].as_str().expect("id")), Some(&su))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = app.get("/api/collections/target/records", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "Missing collection context.");
    let (status, _) = app.get("/api/collections/target", Some(&su)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.delete("/api/collections/target", Some(&su)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The table is really gone: a new collection with the same name starts empty.
    app.create_collection(
        &su,
        json!({"name": "target", "listRule": "", "fields": [{"name": "t", "type": "text"}]}),
    )
    .await;
    assert_eq!(app.list("target", "", None).await["totalItems"], 0);
    app.stop().await;
}

#[tokio::test]
async fn truncate_removes_every_record() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    app.create_collection(&su, json!({"name": "tr", "fields": [{"name": "t", "type": "text"}]}))
        .await;
    for i in 0..3 {
        app.create_record(Some(&su), "tr", json!({"t": i.to_string()})).await;
    }
    let (status, _) = app.delete("/api/collections/tr/truncate", Some(&su)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.list("tr", "", Some(&su)).await["totalItems"], 0);
    app.stop().await;
}

/// Every collections endpoint: 401 for guests, 403 for regular users, never a success.
#[tokio::test]
async fn collections_endpoints_are_superuser_only() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    app.create_collection(
        &su,
        json!({"name": "guarded", "fields": [{"name": "t", "type": "text"}]}),
    )
    .await;
    app.create_record(Some(&su), "guarded", json!({"t": "x"})).await;
    let (_, user) = app.create_user("u@example.com", "password123").await;
    let endpoints: Vec<(Method, &str, Option<Value>)> = vec![
        (Method::GET, "/api/collections", None),
        (Method::POST, "/api/collections", Some(json!({"name": "sneaky"}))),
        (Method::GET, "/api/collections/guarded", None),
        (Method::PATCH, "/api/collections/guarded", Some(json!({"listRule": ""}))),
        (Method::DELETE, "/api/collections/guarded", None),
        (Method::DELETE, "/api/collections/guarded/truncate", None),
        (
            Method::PUT,
            "/api/collections/import",
            Some(json!({"collections": [{"name": "sneaky2"}]})),
        ),
        (Method::GET, "/api/collections/meta/scaffolds", None),
    ];
    for (method, path, body) in endpoints {
        for (who, token, want) in [
            ("guest", None, StatusCode::UNAUTHORIZED),
            ("garbage token", Some("garbage"), StatusCode::UNAUTHORIZED),
            ("user", Some(user.as_str()), StatusCode::FORBIDDEN),
        ] {
            let (status, res) = app.send(method.clone(), path, token, body.clone()).await;
            assert_eq!(status, want, "{who} {method} {path}: {res}");
            assert_eq!(res["status"], want.as_u16(), "envelope: {res}");
        }
    }
    // Nothing changed.
    let (status, c) = app.get("/api/collections/guarded", Some(&su)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(c["listRule"], Value::Null);
    assert_eq!(app.list("guarded", "", Some(&su)).await["totalItems"], 1);
    let (status, _) = app.get("/api/collections/sneaky", Some(&su)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get("/api/collections/sneaky2", Some(&su)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn collections_list_filters_sorts_and_pages() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    for n in ["c_one", "c_two", "c_three"] {
        app.create_collection(&su, json!({"name": n})).await;
    }
    let (status, body) = app
        .get(
            &format!("/api/collections?filter={}&fields=id,name", enc("name = 'c_two'")),
            Some(&su),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["totalItems"], 1);
    assert_eq!(body["items"][0].as_object().map(|o| o.len()), Some(2), "{body}");
    assert_eq!(body["items"][0]["name"], "c_two");
    let (_, body) = app
        .get(&format!("/api/collections?filter={}&sort=-name", enc("name ~ 'c_'")), Some(&su))
        .await;
    let names: Vec<&str> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["c_two", "c_three", "c_one"]);
    let (_, body) = app.get("/api/collections?perPage=2&page=2", Some(&su)).await;
    assert_eq!(body["perPage"], 2);
    assert_eq!(body["page"], 2);
    assert_eq!(body["items"].as_array().map(Vec::len), Some(2));
    assert!(body["totalItems"].as_i64().is_some_and(|n| n >= 5), "{body}");
    let (status, _) =
        app.get(&format!("/api/collections?filter={}", enc("name = ")), Some(&su)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    app.stop().await;
}

async fn all_collections(app: &TestApp, su: &str) -> Vec<Value> {
    let (status, body) = app.get("/api/collections?perPage=500", Some(su)).await;
    assert_eq!(status, StatusCode::OK);
    body["items"].as_array().expect("items").clone()
}

#[tokio::test]
async fn import_creates_updates_and_deletes_missing() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let (status, body) = app
        .send(Method::PUT, "/api/collections/import", Some(&su), Some(json!({"collections": []})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["data"]["collections"]["code"], "validation_required", "{body}");
    app.create_collection(&su, json!({"name": "gone", "fields": [{"name": "x", "type": "text"}]}))
        .await;
    let keep = app
        .create_collection(&su, json!({"name": "keep", "fields": [{"name": "x", "type": "text"}]}))
        .await;
    app.create_record(Some(&su), "keep", json!({"x": "data"})).await;
    let mut list: Vec<Value> =
        all_collections(&app, &su).await.into_iter().filter(|c| c["name"] != "gone").collect();
    for c in &mut list {
        if c["name"] == "keep" {
            let fields = c["fields"].as_array_mut().expect("fields");
            fields.push(json!({"name": "y", "type": "number"}));
            c["listRule"] = json!("");
        }
    }
    list.push(json!({"name": "fresh", "type": "base", "fields": [{"name": "z", "type": "bool"}]}));
    let (status, body) = app
        .send(
            Method::PUT,
            "/api/collections/import",
            Some(&su),
            Some(json!({"collections": list, "deleteMissing": true})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = app.get("/api/collections/gone", Some(&su)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "deleteMissing removed it");
    let (status, k) = app.get("/api/collections/keep", Some(&su)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(k["id"], keep["id"]);
    assert_eq!(field_names(&k), ["id", "x", "y"]);
    assert_eq!(k["listRule"], "");
    let list = app.list("keep", "", None).await;
    assert_eq!(list["items"][0]["x"], "data", "import kept the data: {list}");
    assert_eq!(list["items"][0]["y"], 0);
    let (status, f) = app.get("/api/collections/fresh", Some(&su)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(field_names(&f), ["id", "z"]);
    assert!(app.get("/api/collections/users", Some(&su)).await.0.is_success(), "system kept");
    // A broken item fails the whole import with PocketBase's code.
    let (status, body) = app
        .send(
            Method::PUT,
            "/api/collections/import",
            Some(&su),
            Some(json!({"collections": [{"name": "imp_bad", "fields": [{"name": "x", "type": "bogus"}]}]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["data"]["collections"]["code"], "validation_collections_import_failure");
    let (status, _) = app.get("/api/collections/imp_bad", Some(&su)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}
