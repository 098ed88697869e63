//! Deleting referenced records: ids removed from optional relations, required relations block,
//! `cascadeDelete` removes referencing records (also across several levels).

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

async fn coll_id(app: &TestApp, su: &str, def: Value) -> String {
    app.create_collection(su, def).await["id"].as_str().expect("id").to_string()
}

async fn exists(app: &TestApp, su: &str, coll: &str, id: &str) -> bool {
    let (status, _) = app.get(&format!("/api/collections/{coll}/records/{id}"), Some(su)).await;
    match status {
        StatusCode::OK => true,
        StatusCode::NOT_FOUND => false,
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn deleting_a_record_removes_it_from_optional_relations() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let tags =
        coll_id(&app, &su, json!({"name": "tags", "fields": [{"name": "name", "type": "text"}]}))
            .await;
    coll_id(
        &app,
        &su,
        json!({"name": "posts", "fields": [
            {"name": "title", "type": "text"},
            {"name": "main", "type": "relation", "collectionId": tags, "maxSelect": 1},
            {"name": "tags", "type": "relation", "collectionId": tags, "maxSelect": 5}]}),
    )
    .await;
    let a = app.create_id(Some(&su), "tags", json!({"name": "a"})).await;
    let b = app.create_id(Some(&su), "tags", json!({"name": "b"})).await;
    let p1 =
        app.create_id(Some(&su), "posts", json!({"title": "1", "main": a, "tags": [a, b]})).await;
    let p2 =
        app.create_id(Some(&su), "posts", json!({"title": "2", "main": b, "tags": [b, a]})).await;
    let (status, body) = app.delete(&format!("/api/collections/tags/records/{a}"), Some(&su)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, r1) = app.get(&format!("/api/collections/posts/records/{p1}"), Some(&su)).await;
    assert_eq!((&r1["main"], &r1["tags"]), (&json!(""), &json!([b])), "{r1}");
    let (_, r2) = app.get(&format!("/api/collections/posts/records/{p2}"), Some(&su)).await;
    assert_eq!((&r2["main"], &r2["tags"]), (&json!(b), &json!([b])), "{r2}");
    // No dangling id is left for filters either.
    let list = app
        .list(
            "posts",
            &format!("filter={}", crate::helpers::enc(&format!("tags ~ '{a}' || main = '{a}'"))),
            Some(&su),
        )
        .await;
    assert_eq!(list["totalItems"], 0, "{list}");
    app.stop().await;
}

#[tokio::test]
async fn required_relation_blocks_delete() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let tags =
        coll_id(&app, &su, json!({"name": "tags", "fields": [{"name": "name", "type": "text"}]}))
            .await;
    coll_id(
        &app,
        &su,
        json!({"name": "posts", "fields": [
            {"name": "main", "type": "relation", "collectionId": tags, "maxSelect": 1, "required": true}]}),
    )
    .await;
    coll_id(
        &app,
        &su,
        json!({"name": "multi", "fields": [
            {"name": "tags", "type": "relation", "collectionId": tags, "maxSelect": 5, "required": true}]}),
    )
    .await;
    let a = app.create_id(Some(&su), "tags", json!({"name": "a"})).await;
    let b = app.create_id(Some(&su), "tags", json!({"name": "b"})).await;
    let c = app.create_id(Some(&su), "tags", json!({"name": "c"})).await;
    let p = app.create_id(Some(&su), "posts", json!({"main": a})).await;
    let m = app.create_id(Some(&su), "multi", json!({"tags": [b, c]})).await;
    let (status, body) = app.delete(&format!("/api/collections/tags/records/{a}"), Some(&su)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["message"],
        "Failed to delete record. Make sure that the record is not part of a required relation reference."
    );
    assert!(exists(&app, &su, "tags", &a).await, "nothing deleted");
    assert!(exists(&app, &su, "posts", &p).await);
    // A required multi relation only blocks when it would become empty.
    let (status, body) = app.delete(&format!("/api/collections/tags/records/{b}"), Some(&su)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, rec) = app.get(&format!("/api/collections/multi/records/{m}"), Some(&su)).await;
    assert_eq!(rec["tags"], json!([c]));
    let (status, _) = app.delete(&format!("/api/collections/tags/records/{c}"), Some(&su)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(exists(&app, &su, "tags", &c).await);
    // Once the referencing record is gone, the delete works.
    let (status, _) = app.delete(&format!("/api/collections/posts/records/{p}"), Some(&su)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.delete(&format!("/api/collections/tags/records/{a}"), Some(&su)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.stop().await;
}

#[tokio::test]
async fn cascade_delete_removes_referencing_records_across_levels() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let orgs =
        coll_id(&app, &su, json!({"name": "orgs", "fields": [{"name": "name", "type": "text"}]}))
            .await;
    let teams = coll_id(
        &app,
        &su,
        json!({"name": "teams", "fields": [
            {"name": "name", "type": "text"},
            {"name": "org", "type": "relation", "collectionId": orgs, "maxSelect": 1,
             "cascadeDelete": true, "required": true}]}),
    )
    .await;
    coll_id(
        &app,
        &su,
        json!({"name": "members", "fields": [
            {"name": "name", "type": "text"},
            {"name": "teams", "type": "relation", "collectionId": teams, "maxSelect": 5, "cascadeDelete": true}]}),
    )
    .await;
    coll_id(
        &app,
        &su,
        json!({"name": "notes", "fields": [
            {"name": "team", "type": "relation", "collectionId": teams, "maxSelect": 1}]}),
    )
    .await;
    let o1 = app.create_id(Some(&su), "orgs", json!({"name": "o1"})).await;
    let o2 = app.create_id(Some(&su), "orgs", json!({"name": "o2"})).await;
    let t1 = app.create_id(Some(&su), "teams", json!({"name": "t1", "org": o1})).await;
    let t2 = app.create_id(Some(&su), "teams", json!({"name": "t2", "org": o1})).await;
    let t3 = app.create_id(Some(&su), "teams", json!({"name": "t3", "org": o2})).await;
    let m1 = app.create_id(Some(&su), "members", json!({"name": "m1", "teams": [t1]})).await;
    let m2 = app.create_id(Some(&su), "members", json!({"name": "m2", "teams": [t3]})).await;
    let n1 = app.create_id(Some(&su), "notes", json!({"team": t2})).await;
    let (status, body) =
        app.delete(&format!("/api/collections/orgs/records/{o1}"), Some(&su)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(!exists(&app, &su, "orgs", &o1).await);
    assert!(!exists(&app, &su, "teams", &t1).await, "level 1 cascade");
    assert!(!exists(&app, &su, "teams", &t2).await, "level 1 cascade");
    assert!(!exists(&app, &su, "members", &m1).await, "level 2 cascade");
    assert!(exists(&app, &su, "teams", &t3).await, "other org untouched");
    assert!(exists(&app, &su, "members", &m2).await);
    let (_, note) = app.get(&format!("/api/collections/notes/records/{n1}"), Some(&su)).await;
    assert_eq!(note["team"], "", "non-cascading reference to a cascaded record is cleared: {note}");
    assert!(exists(&app, &su, "orgs", &o2).await);
    app.stop().await;
}

#[tokio::test]
async fn cascade_is_all_or_nothing_when_a_required_reference_blocks() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let orgs =
        coll_id(&app, &su, json!({"name": "orgs", "fields": [{"name": "name", "type": "text"}]}))
            .await;
    let teams = coll_id(
        &app,
        &su,
        json!({"name": "teams", "fields": [
            {"name": "org", "type": "relation", "collectionId": orgs, "maxSelect": 1, "cascadeDelete": true}]}),
    )
    .await;
    coll_id(
        &app,
        &su,
        json!({"name": "pins", "fields": [
            {"name": "team", "type": "relation", "collectionId": teams, "maxSelect": 1, "required": true}]}),
    )
    .await;
    let o = app.create_id(Some(&su), "orgs", json!({"name": "o"})).await;
    let t = app.create_id(Some(&su), "teams", json!({"org": o})).await;
    app.create_id(Some(&su), "pins", json!({"team": t})).await;
    let (status, body) = app.delete(&format!("/api/collections/orgs/records/{o}"), Some(&su)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(exists(&app, &su, "orgs", &o).await, "rolled back");
    assert!(exists(&app, &su, "teams", &t).await, "rolled back");
    app.stop().await;
}

#[tokio::test]
async fn self_relation_cascade_terminates() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let c = app
        .create_collection(
            &su,
            json!({"name": "nodes", "fields": [{"name": "name", "type": "text"}]}),
        )
        .await;
    let cid = c["id"].as_str().expect("id");
    let mut fields = c["fields"].as_array().expect("fields").clone();
    fields.push(json!({"name": "parent", "type": "relation", "collectionId": cid, "maxSelect": 1, "cascadeDelete": true}));
    let (status, body) =
        app.patch("/api/collections/nodes", Some(&su), json!({"fields": fields})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let root = app.create_id(Some(&su), "nodes", json!({"name": "root"})).await;
    let child = app.create_id(Some(&su), "nodes", json!({"name": "child", "parent": root})).await;
    let grandchild =
        app.create_id(Some(&su), "nodes", json!({"name": "gc", "parent": child})).await;
    let other = app.create_id(Some(&su), "nodes", json!({"name": "other"})).await;
    let (status, body) =
        app.delete(&format!("/api/collections/nodes/records/{root}"), Some(&su)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(!exists(&app, &su, "nodes", &child).await);
    assert!(!exists(&app, &su, "nodes", &grandchild).await);
    assert!(exists(&app, &su, "nodes", &other).await);
    app.stop().await;
}
