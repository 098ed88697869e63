//! Concurrent requests: unique constraints hold under races (400, never 500 or duplicates) and
//! schema changes while requests are in flight never surface as server errors.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::spawn_app;

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut req = client.post(url).json(&body);
    if let Some(t) = token {
        req = req.header("Authorization", t);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_creates_respect_unique_indexes() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    app.create_collection(
        &su,
        json!({"name": "codes", "listRule": "", "createRule": "", "fields": [{"name": "code", "type": "text"}],
               "indexes": ["CREATE UNIQUE INDEX idx_codes_code ON codes (code)"]}),
    )
    .await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (client, url) =
            (app.client.clone(), format!("{}/api/collections/codes/records", app.url));
        tasks.spawn(async move { post(&client, &url, None, json!({"code": "same"})).await });
    }
    for i in 0..10 {
        let (client, url) =
            (app.client.clone(), format!("{}/api/collections/users/records", app.url));
        let body = json!({"email": "race@example.com", "password": "password123", "passwordConfirm": "password123", "name": i.to_string()});
        tasks.spawn(async move { post(&client, &url, None, body).await });
    }
    let (mut ok, mut dup, mut other) = (0, 0, Vec::new());
    while let Some(res) = tasks.join_next().await {
        let (status, body) = res.expect("task");
        let field_code = body["data"]["code"]["code"].clone();
        let email_code = body["data"]["email"]["code"].clone();
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::BAD_REQUEST
                if field_code == "validation_not_unique"
                    || email_code == "validation_not_unique" =>
            {
                dup += 1
            }
            _ => other.push(format!("{status} {body}")),
        }
    }
    assert!(other.is_empty(), "unexpected answers: {other:?}");
    assert_eq!((ok, dup), (2, 28), "one winner per race");
    assert_eq!(app.list("codes", "", None).await["totalItems"], 1);
    let users = app
        .list(
            "users",
            &format!("filter={}", crate::helpers::enc("email = 'race@example.com'")),
            Some(&su),
        )
        .await;
    assert_eq!(users["totalItems"], 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_changes_while_serving() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let c = app
        .create_collection(
            &su,
            json!({"name": "busy", "listRule": "", "viewRule": "", "createRule": "", "fields": [{"name": "title", "type": "text"}]}),
        )
        .await;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..4 {
        let (client, base) = (app.client.clone(), app.url.clone());
        tasks.spawn(async move {
            let mut created = 0;
            let mut errors = Vec::new();
            for i in 0..25 {
                let (status, body) = post(
                    &client,
                    &format!("{base}/api/collections/busy/records"),
                    None,
                    json!({"title": format!("w{w}-{i}")}),
                )
                .await;
                match status {
                    StatusCode::OK => created += 1,
                    s if s.is_server_error() => errors.push(format!("create: {s} {body}")),
                    _ => {}
                }
                let res = client
                    .get(format!("{base}/api/collections/busy/records?perPage=5&sort=-title"))
                    .send()
                    .await
                    .expect("get");
                if res.status().is_server_error() {
                    errors.push(format!("list: {}", res.status()));
                }
            }
            (created, errors)
        });
    }
    let mut fields = c["fields"].as_array().expect("fields").clone();
    for i in 0..5 {
        fields.push(json!({"name": format!("extra{i}"), "type": "number"}));
        let (status, body) =
            app.patch("/api/collections/busy", Some(&su), json!({"fields": fields})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        fields = body["fields"].as_array().expect("fields").clone();
    }
    let mut total = 0;
    let mut errors = Vec::new();
    while let Some(res) = tasks.join_next().await {
        let (created, errs) = res.expect("task");
        total += created;
        errors.extend(errs);
    }
    assert!(errors.is_empty(), "server errors under schema changes: {errors:?}");
    assert_eq!(total, 100, "every create succeeded");
    let list = app.list("busy", "", None).await;
    assert_eq!(list["totalItems"], 100);
    assert_eq!(
        list["items"][0]["extra4"], 0,
        "new columns visible with zero values: {}",
        list["items"][0]
    );
    app.stop().await;
}
