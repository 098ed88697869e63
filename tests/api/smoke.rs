//! A first end-to-end pass: health, superuser login, a collection, a record.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn health_collection_and_record_roundtrip() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["code"], 200);

    let su = app.su_token().await;
    app.create_collection(
        &su,
        json!({"name": "notes", "listRule": "", "viewRule": "", "createRule": "",
        "fields": [{"name": "title", "type": "text", "required": true}]}),
    )
    .await;
    let (status, rec) =
        app.post("/api/collections/notes/records", None, json!({"title": "hi"})).await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    assert_eq!(rec["title"], "hi");
    assert_eq!(rec["id"].as_str().map(str::len), Some(15));
    let (status, list) = app.get("/api/collections/notes/records", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["totalItems"], 1);
    app.stop().await;
}
