//! Index definitions are user input: any that cannot be created is a 400 on `indexes`, never a
//! 500, and leaves nothing behind (the collection is not created).

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn unusable_index_definitions_are_400_and_create_nothing() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let cases = [
        ("bad_where", vec!["CREATE INDEX i_bw ON bad_where (a) WHERE nope = 1"]),
        (
            "dup_names",
            vec!["CREATE INDEX i_dup ON dup_names (a)", "CREATE INDEX i_dup ON dup_names (a)"],
        ),
        // `users` already owns this index name; index names are global in both engines.
        ("taken_name", vec!["CREATE INDEX idx_email__pb_users_auth_ ON taken_name (a)"]),
        ("bad_collate", vec!["CREATE INDEX i_bc ON bad_collate (a COLLATE nope)"]),
    ];
    for (name, indexes) in cases {
        let def =
            json!({"name": name, "fields": [{"name": "a", "type": "text"}], "indexes": indexes});
        let (status, body) = app.post("/api/collections", Some(&su), def).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
        assert!(body["data"]["indexes"].is_object(), "{name}: {body}");
        let (status, _) = app.get(&format!("/api/collections/{name}"), Some(&su)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{name} must not exist after a failed create");
    }
    // The same rules on update: the collection and its data stay as they were.
    app.create_collection(
        &su,
        json!({"name": "keep", "listRule": "", "createRule": "",
        "fields": [{"name": "a", "type": "text"}]}),
    )
    .await;
    let (status, _) = app.post("/api/collections/keep/records", None, json!({"a": "x"})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .patch(
            "/api/collections/keep",
            Some(&su),
            json!({"indexes": ["CREATE INDEX k ON keep (a) WHERE zz > 1"]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, list) = app.get("/api/collections/keep/records", None).await;
    assert_eq!((status, list["totalItems"].clone()), (StatusCode::OK, json!(1)));
}

#[tokio::test]
async fn names_longer_than_63_bytes_are_refused_on_every_engine() {
    // PostgreSQL truncates identifiers to 63 bytes, so two longer names could collide there.
    let app = spawn_app().await;
    let su = app.su_token().await;
    let long = "n".repeat(64);
    let ok63 = "m".repeat(63);
    let (status, body) = app.post("/api/collections", Some(&su), json!({"name": long})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["data"]["name"].is_object(), "{body}");
    let def = json!({"name": "longf", "fields": [{"name": long, "type": "text"}]});
    let (status, body) = app.post("/api/collections", Some(&su), def).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["data"]["fields"]["1"]["name"].is_object(), "{body}");
    let idx = format!("CREATE INDEX {long} ON longi (a)");
    let def = json!({"name": "longi", "fields": [{"name": "a", "type": "text"}], "indexes": [idx]});
    let (status, body) = app.post("/api/collections", Some(&su), def).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Exactly 63 bytes is fine for collections and fields.
    let def = json!({"name": ok63, "listRule": "", "createRule": "",
        "fields": [{"name": ok63, "type": "text"}]});
    app.create_collection(&su, def).await;
    let (status, rec) = app
        .post(&format!("/api/collections/{ok63}/records"), None, json!({ok63.clone(): "v"}))
        .await;
    assert_eq!((status, rec[&ok63].clone()), (StatusCode::OK, json!("v")));
}
