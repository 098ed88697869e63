//! Several Basalt instances on one PostgreSQL database behave as one server: data written
//! through one is read through another at once, schema changes propagate without a restart
//! (LISTEN/NOTIFY), and tokens issued by one are accepted by all. PostgreSQL only.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{eventually, spawn_app, spawn_app_on, TestDb};
use crate::pg_test_server;

#[tokio::test]
async fn two_instances_share_data_schema_and_tokens() {
    let Some(server) = pg_test_server::server("several instances on one PostgreSQL database")
    else {
        return;
    };
    let db = TestDb::create(&server).await;
    let a = spawn_app_on(&db.url()).await;
    let b = spawn_app_on(&db.url()).await;
    let su_a = a.su_token().await;

    // A token issued by A works on B (secrets live in the shared database).
    let (status, _) = b.get("/api/collections", Some(&su_a)).await;
    assert_eq!(status, StatusCode::OK);

    // A collection created through A is served by B without a restart.
    a.create_collection(
        &su_a,
        json!({"name": "shared", "listRule": "", "viewRule": "", "createRule": "",
        "fields": [{"name": "title", "type": "text"}]}),
    )
    .await;
    let seen = eventually(Duration::from_secs(10), || async {
        b.get("/api/collections/shared/records", None).await.0 == StatusCode::OK
    })
    .await;
    assert!(seen, "B never served the collection created through A");

    // A record written through A is read through B at once (no caches in between).
    let (status, rec) =
        a.post("/api/collections/shared/records", None, json!({"title": "x"})).await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    let id = rec["id"].as_str().unwrap().to_string();
    let (status, got) = b.get(&format!("/api/collections/shared/records/{id}"), None).await;
    assert_eq!((status, got["title"].clone()), (StatusCode::OK, json!("x")));

    // A field added through B is accepted by A, and its column type change does not break
    // A's pooled connections (prepared statements are retired on the notification).
    let (status, body) = b
        .patch(
            "/api/collections/shared",
            Some(&su_a),
            json!({"fields": [{"name": "title", "type": "text"}, {"name": "n", "type": "number"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let accepted = eventually(Duration::from_secs(10), || async {
        let (s, r) =
            a.post("/api/collections/shared/records", None, json!({"title": "y", "n": 5})).await;
        s == StatusCode::OK && r["n"] == 5
    })
    .await;
    assert!(accepted, "A never accepted the field added through B");

    // A user signed up on B logs in on A; B accepts A's user token.
    let (status, _) = b
        .post(
            "/api/collections/users/records",
            None,
            json!({"email": "m@example.com", "password": "password123", "passwordConfirm": "password123"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let user_token = a.login("users", "m@example.com", "password123").await;
    let (status, _) =
        b.post("/api/collections/users/auth-refresh", Some(&user_token), json!({})).await;
    assert_eq!(status, StatusCode::OK);

    // A collection deleted through A disappears from B.
    let (status, _) = a.delete("/api/collections/shared", Some(&su_a)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let gone = eventually(Duration::from_secs(10), || async {
        b.get("/api/collections/shared/records", None).await.0 == StatusCode::NOT_FOUND
    })
    .await;
    assert!(gone, "B kept serving a collection deleted through A");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn instances_starting_together_on_a_fresh_database_both_come_up() {
    let Some(server) = pg_test_server::server("several instances on one PostgreSQL database")
    else {
        return;
    };
    let db = TestDb::create(&server).await;
    let url = db.url();
    let (a, b) = tokio::join!(spawn_app_on(&url), spawn_app_on(&url));
    for app in [&a, &b] {
        let (status, _) = app.get("/api/collections/users/auth-methods", None).await;
        assert_eq!(status, StatusCode::OK);
    }
    // The single-database app of the suite still works next to them.
    let solo = spawn_app().await;
    assert_eq!(solo.get("/api/health", None).await.0, StatusCode::OK);
}
