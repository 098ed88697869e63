//! Realtime over raw SSE: PocketBase's framing, subscription requests and their errors, rules
//! per subscriber, topic options, auth binding.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

/// One SSE connection, read frame by frame.
struct Sse {
    res: reqwest::Response,
    buf: String,
    id: String,
}

#[derive(Debug)]
struct Frame {
    id: String,
    event: String,
    data: Value,
}

impl Sse {
    async fn open(app: &TestApp) -> Sse {
        let res = app.client.get(format!("{}/api/realtime", app.url)).send().await.expect("GET");
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        assert_eq!(res.headers()["cache-control"], "no-store");
        assert_eq!(res.headers()["x-accel-buffering"], "no");
        let mut sse = Sse { res, buf: String::new(), id: String::new() };
        let raw = sse.raw_frame(Duration::from_secs(5)).await.expect("PB_CONNECT");
        let id = raw.lines().next().and_then(|l| l.strip_prefix("id:")).expect("id").to_string();
        assert_eq!(id.len(), 40);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
        assert_eq!(raw, format!("id:{id}\nevent:PB_CONNECT\ndata:{{\"clientId\":\"{id}\"}}"));
        sse.id = id;
        sse
    }

    /// The next frame's text (without its closing blank line), or `None` after `wait`.
    async fn raw_frame(&mut self, wait: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let frame = self.buf[..end].to_string();
                self.buf.drain(..end + 2);
                return Some(frame);
            }
            match tokio::time::timeout_at(deadline, self.res.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }

    async fn next(&mut self) -> Frame {
        self.try_next(Duration::from_secs(5)).await.expect("an event")
    }

    async fn try_next(&mut self, wait: Duration) -> Option<Frame> {
        let raw = self.raw_frame(wait).await?;
        let mut f = Frame { id: String::new(), event: String::new(), data: Value::Null };
        for line in raw.lines() {
            if let Some(v) = line.strip_prefix("id:") {
                f.id = v.to_string();
            } else if let Some(v) = line.strip_prefix("event:") {
                f.event = v.to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                f.data = serde_json::from_str(v).expect("JSON data");
            }
        }
        Some(f)
    }

    async fn subscribe(&self, app: &TestApp, token: Option<&str>, topics: &[&str]) -> StatusCode {
        let (status, _) = app
            .post("/api/realtime", token, json!({"clientId": self.id, "subscriptions": topics}))
            .await;
        status
    }
}

async fn collections(app: &TestApp, su: &str) {
    let users = "_pb_users_auth_";
    for def in [
        json!({"name": "posts", "type": "base", "listRule": "", "viewRule": "", "createRule": "",
            "updateRule": "", "deleteRule": "",
            "fields": [{"name": "title", "type": "text"},
                       {"name": "secret", "type": "text", "hidden": true},
                       {"name": "author", "type": "relation", "collectionId": users, "maxSelect": 1}]}),
        json!({"name": "owned", "type": "base", "createRule": "",
            "listRule": "author = @request.auth.id", "viewRule": "author = @request.auth.id",
            "fields": [{"name": "title", "type": "text"},
                       {"name": "author", "type": "relation", "collectionId": users, "maxSelect": 1}]}),
        json!({"name": "private", "type": "base", "createRule": "",
            "fields": [{"name": "title", "type": "text"}]}),
    ] {
        app.create_collection(su, def).await;
    }
}

#[tokio::test]
async fn events_follow_rules_options_and_pocketbase_s_framing() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    collections(&app, &su).await;
    let (alice, alice_token) = app.create_user("alice@example.com", "password123").await;
    let (_, bob_token) = app.create_user("bob@example.com", "password123").await;

    let mut guest = Sse::open(&app).await;
    let mut owner = Sse::open(&app).await;
    let mut admin = Sse::open(&app).await;
    assert_ne!(guest.id, owner.id);
    let all = ["posts/*", "owned/*", "private/*"];
    assert_eq!(guest.subscribe(&app, None, &all).await, StatusCode::NO_CONTENT);
    assert_eq!(owner.subscribe(&app, Some(&alice_token), &all).await, StatusCode::NO_CONTENT);
    assert_eq!(admin.subscribe(&app, Some(&su), &all).await, StatusCode::NO_CONTENT);

    // A public post: everyone, hidden fields for the superuser only.
    let (status, post) = app
        .post("/api/collections/posts/records", Some(&su), json!({"title": "hi", "secret": "s"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{post}");
    let post_id = post["id"].as_str().expect("id").to_string();
    for sse in [&mut guest, &mut owner] {
        let f = sse.next().await;
        assert_eq!(f.id, sse.id);
        assert_eq!(f.event, "posts/*");
        assert_eq!(f.data["action"], "create");
        assert_eq!(f.data["record"]["title"], "hi");
        assert_eq!(f.data["record"]["collectionName"], "posts");
        assert!(f.data["record"].get("secret").is_none(), "{f:?}");
    }
    let f = admin.next().await;
    assert_eq!(f.data["record"]["secret"], "s");

    // Alice's own record: alice and the superuser; a private one: the superuser only.
    app.post("/api/collections/owned/records", None, json!({"title": "mine", "author": alice}))
        .await;
    app.post("/api/collections/private/records", None, json!({"title": "p"})).await;
    let f = owner.next().await;
    assert_eq!((f.event.as_str(), f.data["record"]["title"].as_str()), ("owned/*", Some("mine")));
    assert_eq!(admin.next().await.data["record"]["title"], "mine");
    assert_eq!(admin.next().await.data["record"]["title"], "p");
    // The guest saw neither: its next event is the update below.
    app.patch(&format!("/api/collections/posts/records/{post_id}"), None, json!({"title": "hi2"}))
        .await;
    let f = guest.next().await;
    assert_eq!(
        (f.data["action"].as_str(), f.data["record"]["title"].as_str()),
        (Some("update"), Some("hi2"))
    );
    assert!(owner.next().await.data["record"]["title"] == "hi2");
    assert!(owner.try_next(Duration::from_millis(200)).await.is_none(), "nothing else for alice");

    // Options: fields, filter, expand; a record topic; the event is named by the topic as sent.
    let opts = |o: Value| format!("posts/*?options={}", crate::helpers::enc(&o.to_string()));
    let fields = opts(json!({"query": {"fields": "id,title"}}));
    let filtered = opts(json!({"query": {"filter": "title = 'wanted'"}}));
    let expanded = opts(json!({"query": {"expand": "author"}}));
    let record = format!("posts/{post_id}");
    let topics = [fields.as_str(), filtered.as_str(), expanded.as_str(), record.as_str()];
    assert_eq!(owner.subscribe(&app, Some(&alice_token), &topics).await, StatusCode::NO_CONTENT);
    app.post("/api/collections/posts/records", None, json!({"title": "other", "author": alice}))
        .await;
    let mut got = vec![owner.next().await, owner.next().await];
    got.sort_by(|a, b| a.event.cmp(&b.event));
    assert!(owner.try_next(Duration::from_millis(200)).await.is_none(), "the filter held one back");
    let by = |t: &str| got.iter().find(|f| f.event == t).unwrap_or_else(|| panic!("{t}: {got:?}"));
    assert_eq!(
        by(&fields).data["record"],
        json!({"id": by(&fields).data["record"]["id"], "title": "other"})
    );
    assert_eq!(by(&expanded).data["record"]["expand"]["author"]["id"], alice.as_str());
    app.post("/api/collections/posts/records", None, json!({"title": "wanted"})).await;
    let mut got = [owner.next().await, owner.next().await, owner.next().await];
    got.sort_by(|a, b| a.event.cmp(&b.event));
    assert!(got.iter().any(|f| f.event == filtered && f.data["record"]["title"] == "wanted"));
    // The record topic: its delete carries the record as it was.
    let (status, _) = app.delete(&format!("/api/collections/posts/records/{post_id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let mut deletes = Vec::new();
    while let Some(f) = owner.try_next(Duration::from_millis(500)).await {
        deletes.push(f);
    }
    let f = deletes.iter().find(|f| f.event == record).expect("the record topic's delete");
    assert_eq!(f.data["action"], "delete");
    assert_eq!(f.data["record"]["title"], "hi2");

    // Binding: another caller cannot take a bound client over; unknown ids are 404.
    assert_eq!(owner.subscribe(&app, Some(&bob_token), &all).await, StatusCode::FORBIDDEN);
    assert_eq!(owner.subscribe(&app, None, &all).await, StatusCode::FORBIDDEN);
    // A guest client may become authenticated.
    assert_eq!(guest.subscribe(&app, Some(&bob_token), &all).await, StatusCode::NO_CONTENT);
    let (status, body) = app
        .post("/api/realtime", None, json!({"clientId": "nope", "subscriptions": ["posts/*"]}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "Missing or invalid client id.");
}

#[tokio::test]
async fn subscription_requests_are_checked_like_pocketbase() {
    let app = spawn_app().await;
    let sse = Sse::open(&app).await;
    let (status, body) = app.post("/api/realtime", None, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["data"]["clientId"]["code"], "validation_required");
    let (status, body) = app.post("/api/realtime", None, json!({"clientId": 5})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["data"], json!({}));
    let (status, body) =
        app.post("/api/realtime", None, json!({"clientId": "x".repeat(256)})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["data"]["clientId"]["code"], "validation_length_out_of_range");
    let many: Vec<String> = (0..1001).map(|i| format!("posts/{i}")).collect();
    let (status, body) =
        app.post("/api/realtime", None, json!({"clientId": sse.id, "subscriptions": many})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["data"]["subscriptions"]["code"], "validation_length_too_long");
    let long = vec!["a".to_string(), "é".repeat(1251)];
    let (status, body) =
        app.post("/api/realtime", None, json!({"clientId": sse.id, "subscriptions": long})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the limit counts bytes");
    assert_eq!(body["data"]["subscriptions"]["1"]["code"], "validation_length_too_long");
    // 10,000 topics in one request: refused, and the server is fine.
    let huge: Vec<String> = (0..10_000).map(|i| format!("posts/{i}")).collect();
    let (status, _) =
        app.post("/api/realtime", None, json!({"clientId": sse.id, "subscriptions": huge})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let exact: Vec<String> = (0..1000).map(|i| format!("posts/{i}")).collect();
    let (status, _) =
        app.post("/api/realtime", None, json!({"clientId": sse.id, "subscriptions": exact})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) =
        app.post("/api/realtime", None, json!({"ClientId": sse.id, "subscriptions": null})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "keys match without regard to case");
}

#[tokio::test]
async fn a_closed_stream_forgets_its_client() {
    let app = spawn_app().await;
    let sse = Sse::open(&app).await;
    let id = sse.id.clone();
    drop(sse);
    let gone = crate::helpers::eventually(Duration::from_secs(5), || async {
        let (status, _) = app
            .post("/api/realtime", None, json!({"clientId": id, "subscriptions": ["posts/*"]}))
            .await;
        status == StatusCode::NOT_FOUND
    })
    .await;
    assert!(gone, "the client id is unknown once its stream closed");
}

/// With three instances on one PostgreSQL database, a write through A reaches subscribers
/// connected to B and C (each instance follows the shared change feed).
#[tokio::test]
async fn events_reach_subscribers_on_every_instance() {
    let Some(server) = crate::pg_test_server::server("realtime across instances") else {
        return;
    };
    let db = crate::helpers::TestDb::create(&server).await;
    let a = crate::helpers::spawn_app_on(&db.url()).await;
    let b = crate::helpers::spawn_app_on(&db.url()).await;
    let c = crate::helpers::spawn_app_on(&db.url()).await;
    let su = a.su_token().await;
    a.create_collection(
        &su,
        json!({"name": "shared", "listRule": "", "viewRule": "", "createRule": "",
            "updateRule": "", "deleteRule": "", "fields": [{"name": "title", "type": "text"}]}),
    )
    .await;
    for app in [&b, &c] {
        let seen = crate::helpers::eventually(Duration::from_secs(10), || async {
            app.get("/api/collections/shared/records", None).await.0 == StatusCode::OK
        })
        .await;
        assert!(seen, "the collection reached every instance");
    }
    let mut on_b = Sse::open(&b).await;
    let mut on_c = Sse::open(&c).await;
    assert_eq!(on_b.subscribe(&b, None, &["shared/*"]).await, StatusCode::NO_CONTENT);
    assert_eq!(on_c.subscribe(&c, Some(&su), &["shared/*"]).await, StatusCode::NO_CONTENT);
    // A's client id is unknown to the other instances (clients live where they connected).
    let (status, _) =
        b.post("/api/realtime", None, json!({"clientId": on_c.id, "subscriptions": []})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, rec) =
        a.post("/api/collections/shared/records", None, json!({"title": "from a"})).await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    let id = rec["id"].as_str().expect("id");
    for sse in [&mut on_b, &mut on_c] {
        let f = sse.try_next(Duration::from_secs(10)).await.expect("an event from A's write");
        assert_eq!(f.event, "shared/*");
        assert_eq!(f.data["action"], "create");
        assert_eq!(f.data["record"]["id"], id);
        assert_eq!(f.data["record"]["title"], "from a");
    }
    a.patch(&format!("/api/collections/shared/records/{id}"), None, json!({"title": "again"}))
        .await;
    let f = on_c.try_next(Duration::from_secs(10)).await.expect("the update");
    assert!(on_b.try_next(Duration::from_secs(10)).await.is_some());
    // Another instance's delete carries the row (the outbox keeps it).
    let (status, _) = a.delete(&format!("/api/collections/shared/records/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for sse in [&mut on_b, &mut on_c] {
        let d = sse.try_next(Duration::from_secs(10)).await.expect("the delete");
        assert_eq!(d.data["action"], "delete");
        assert_eq!(d.data["record"]["title"], "again");
    }
    assert_eq!(
        (f.data["action"].as_str(), f.data["record"]["title"].as_str()),
        (Some("update"), Some("again"))
    );
}

/// A delete is checked against the row it removed: the list rule and the topic's filter for
/// each subscriber, as PocketBase checks them before the row goes.
#[tokio::test]
async fn deletes_are_checked_against_the_deleted_row() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    collections(&app, &su).await;
    let (alice, alice_token) = app.create_user("alice@example.com", "password123").await;
    let (_, bob_token) = app.create_user("bob@example.com", "password123").await;
    let filter = format!(
        "owned/*?options={}",
        crate::helpers::enc(&json!({"query": {"filter": "title = 'x'"}}).to_string())
    );
    let mut a = Sse::open(&app).await;
    let mut b = Sse::open(&app).await;
    let mut g = Sse::open(&app).await;
    assert_eq!(
        a.subscribe(&app, Some(&alice_token), &["owned/*", &filter]).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(b.subscribe(&app, Some(&bob_token), &["owned/*"]).await, StatusCode::NO_CONTENT);
    assert_eq!(g.subscribe(&app, None, &["owned/*"]).await, StatusCode::NO_CONTENT);
    let mut ids = Vec::new();
    for title in ["x", "y"] {
        let (status, rec) = app
            .post("/api/collections/owned/records", None, json!({"title": title, "author": alice}))
            .await;
        assert_eq!(status, StatusCode::OK, "{rec}");
        ids.push(rec["id"].as_str().expect("id").to_string());
    }
    // Creates: x to both of alice's topics, y to the plain one.
    for _ in 0..3 {
        assert_eq!(a.next().await.data["action"], "create");
    }
    for id in &ids {
        let (status, _) =
            app.delete(&format!("/api/collections/owned/records/{id}"), Some(&su)).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    let mut got = Vec::new();
    while let Some(f) = a.try_next(Duration::from_millis(500)).await {
        got.push((
            f.event,
            f.data["action"].as_str().unwrap_or("").to_string(),
            f.data["record"]["title"].as_str().unwrap_or("").to_string(),
        ));
    }
    got.sort();
    assert_eq!(
        got,
        [
            ("owned/*".to_string(), "delete".to_string(), "x".to_string()),
            ("owned/*".to_string(), "delete".to_string(), "y".to_string()),
            (filter.clone(), "delete".to_string(), "x".to_string()),
        ]
    );
    assert!(b.try_next(Duration::from_millis(200)).await.is_none(), "bob sees none of alice's");
    assert!(g.try_next(Duration::from_millis(200)).await.is_none(), "nor does a guest");
}

/// Rules decided in memory cost no query per subscriber: one change fanned out to many users,
/// each under `author = @request.auth.id`, reads the database a fixed number of times. Rules
/// that need the database (a relation followed) still decide correctly, for creates and
/// deletes.
#[tokio::test]
async fn rule_checks_are_batched_and_fall_back_to_sql() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    collections(&app, &su).await;
    app.create_collection(
        &su,
        json!({"name": "via", "type": "base", "createRule": "", "deleteRule": "",
            "listRule": "author.email = @request.auth.email",
            "fields": [{"name": "title", "type": "text"},
                       {"name": "author", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1}]}),
    )
    .await;
    let mut users = Vec::new();
    for i in 0..12 {
        users.push(app.create_user(&format!("u{i}@example.com"), "password123").await);
    }
    let mut streams = Vec::new();
    for (_, token) in &users {
        let sse = Sse::open(&app).await;
        assert_eq!(
            sse.subscribe(&app, Some(token), &["owned/*", "via/*"]).await,
            StatusCode::NO_CONTENT
        );
        streams.push(sse);
    }
    let owner = users[3].0.clone();
    // Settle, then count the reads one change costs with twelve subscribers.
    let before = app.svc.query_count();
    let (status, rec) = app
        .post("/api/collections/owned/records", None, json!({"title": "t", "author": owner}))
        .await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    let f = streams[3].next().await;
    assert_eq!((f.event.as_str(), f.data["action"].as_str()), ("owned/*", Some("create")));
    for (i, s) in streams.iter_mut().enumerate() {
        if i != 3 {
            assert!(s.try_next(Duration::from_millis(50)).await.is_none(), "user {i}");
        }
    }
    let reads = app.svc.query_count() - before;
    // One read of the record for everyone (plus the create's own); 12 queries without batching.
    assert!(reads <= 3, "{reads} reads for one change with 12 subscribers");

    // A rule through a relation: the database decides, per subscriber.
    let (status, rec) = app
        .post("/api/collections/via/records", None, json!({"title": "v", "author": owner}))
        .await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    let id = rec["id"].as_str().expect("id").to_string();
    let f = streams[3].next().await;
    assert_eq!((f.event.as_str(), f.data["record"]["title"].as_str()), ("via/*", Some("v")));
    let (status, _) = app.delete(&format!("/api/collections/via/records/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let f = streams[3].next().await;
    assert_eq!((f.event.as_str(), f.data["action"].as_str()), ("via/*", Some("delete")));
    for (i, s) in streams.iter_mut().enumerate() {
        if i != 3 {
            assert!(s.try_next(Duration::from_millis(50)).await.is_none(), "user {i}");
        }
    }
}

/// A client id is worthless to anyone else: another address is refused, a bound auth cannot be
/// swapped; filters cannot probe hidden fields or what related rules hide; the bound auth
/// follows its record (a password change or a new token secret makes the client a guest).
#[tokio::test]
async fn hostile_clients_and_auth_changes() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    collections(&app, &su).await;
    let (alice, alice_token) = app.create_user("alice@example.com", "password123").await;

    let sse = Sse::open(&app).await;
    let elsewhere = reqwest::Client::builder()
        .local_address(Some("127.0.0.2".parse().expect("ip")))
        .build()
        .expect("client");
    let res = elsewhere
        .post(format!("{}/api/realtime", app.url))
        .json(&json!({"clientId": sse.id, "subscriptions": ["posts/*"]}))
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["message"], "Invalid realtime client.");

    // Filters: a hidden field, or a relation the related list rule hides, send nothing.
    let opts = |f: &str| {
        format!(
            "posts/*?options={}",
            crate::helpers::enc(&json!({"query": {"filter": f}}).to_string())
        )
    };
    let mut probe = Sse::open(&app).await;
    let hidden = opts("secret = 's'");
    let related = opts("author.email = 'alice@example.com'");
    assert_eq!(probe.subscribe(&app, None, &[&hidden, &related]).await, StatusCode::NO_CONTENT);
    let (status, _) = app
        .post(
            "/api/collections/posts/records",
            Some(&su),
            json!({"title": "p", "secret": "s", "author": alice}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(probe.try_next(Duration::from_millis(300)).await.is_none(), "no oracle");

    // Alice's client follows her auth record.
    let mut mine = Sse::open(&app).await;
    assert_eq!(
        mine.subscribe(&app, Some(&alice_token), &["owned/*"]).await,
        StatusCode::NO_CONTENT
    );
    let create = |title: &str| {
        let body = json!({"title": title, "author": alice});
        let app = &app;
        async move { app.post("/api/collections/owned/records", None, body).await.0 }
    };
    assert_eq!(create("one").await, StatusCode::OK);
    assert_eq!(mine.next().await.data["record"]["title"], "one");
    let (status, body) = app
        .patch(
            &format!("/api/collections/users/records/{alice}"),
            Some(&su),
            json!({"password": "password456", "passwordConfirm": "password456"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(create("two").await, StatusCode::OK);
    assert!(
        mine.try_next(Duration::from_millis(300)).await.is_none(),
        "a guest after the password change"
    );
    // A guest client may take the new token, and events resume.
    let fresh = app.login("users", "alice@example.com", "password456").await;
    assert_eq!(mine.subscribe(&app, Some(&fresh), &["owned/*"]).await, StatusCode::NO_CONTENT);
    assert_eq!(create("three").await, StatusCode::OK);
    assert_eq!(mine.next().await.data["record"]["title"], "three");
    // A new token secret for the collection unbinds too.
    let secret = json!({"authToken": {"secret": "abcdefghijabcdefghijabcdefghij-rotated"}});
    let (status, body) = app.patch("/api/collections/users", Some(&su), secret).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let settled = crate::helpers::eventually(Duration::from_secs(5), || async {
        app.get("/api/collections/users/records", Some(&fresh)).await.0 != StatusCode::OK
            || app.get(&format!("/api/collections/users/records/{alice}"), Some(&fresh)).await.0
                != StatusCode::OK
    })
    .await;
    assert!(settled, "the old token stopped working");
    assert_eq!(create("four").await, StatusCode::OK);
    assert!(
        mine.try_next(Duration::from_millis(300)).await.is_none(),
        "a guest after the secret changed"
    );
}

/// Stopping the server ends every stream at once (the SDKs reconnect to the next one).
#[tokio::test]
async fn shutdown_ends_the_streams() {
    let app = spawn_app().await;
    let mut sse = Sse::open(&app).await;
    let stopped = tokio::time::timeout(Duration::from_secs(10), app.stop()).await;
    assert!(stopped.is_ok(), "the server stopped with a stream open");
    let end = tokio::time::timeout(Duration::from_secs(5), sse.res.chunk()).await;
    assert!(matches!(end, Ok(Ok(None)) | Ok(Err(_))), "the stream ended: {end:?}");
}

/// Cascaded deletes send a delete for every record they remove, and auth records follow
/// email visibility as in the REST API (the owner sees its email, others do not unless it is
/// visible).
#[tokio::test]
async fn cascades_and_email_visibility() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    collections(&app, &su).await;
    let posts = app.get("/api/collections/posts", Some(&su)).await.1["id"]
        .as_str()
        .expect("id")
        .to_string();
    app.create_collection(
        &su,
        json!({"name": "comments", "type": "base", "listRule": "", "viewRule": "", "createRule": "",
            "fields": [{"name": "body", "type": "text"},
                       {"name": "post", "type": "relation", "collectionId": posts, "maxSelect": 1,
                        "cascadeDelete": true}]}),
    )
    .await;
    let (status, post) =
        app.post("/api/collections/posts/records", None, json!({"title": "p"})).await;
    assert_eq!(status, StatusCode::OK);
    let post_id = post["id"].as_str().expect("id").to_string();
    for body in ["c1", "c2"] {
        let (status, _) = app
            .post("/api/collections/comments/records", None, json!({"body": body, "post": post_id}))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let mut guest = Sse::open(&app).await;
    assert_eq!(
        guest.subscribe(&app, None, &["comments/*", "posts/*"]).await,
        StatusCode::NO_CONTENT
    );
    let (status, _) = app.delete(&format!("/api/collections/posts/records/{post_id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let mut got = Vec::new();
    while let Some(f) = guest.try_next(Duration::from_millis(500)).await {
        let r = &f.data["record"];
        got.push((
            f.event.clone(),
            f.data["action"].as_str().unwrap_or("").to_string(),
            r["body"].as_str().or(r["title"].as_str()).unwrap_or("").to_string(),
        ));
    }
    got.sort();
    let want: Vec<(String, String, String)> =
        [("comments/*", "c1"), ("comments/*", "c2"), ("posts/*", "p")]
            .iter()
            .map(|(e, t)| (e.to_string(), "delete".to_string(), t.to_string()))
            .collect();
    assert_eq!(got, want);

    // Email visibility: users' rules let anyone list them here; the owner sees its own email.
    let (status, _) = app
        .patch("/api/collections/users", Some(&su), json!({"listRule": "", "viewRule": ""}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (alice, alice_token) = app.create_user("alice@example.com", "password123").await;
    let mut own = Sse::open(&app).await;
    let mut other = Sse::open(&app).await;
    assert_eq!(own.subscribe(&app, Some(&alice_token), &["users/*"]).await, StatusCode::NO_CONTENT);
    assert_eq!(other.subscribe(&app, None, &["users/*"]).await, StatusCode::NO_CONTENT);
    let (status, _) = app
        .patch(
            &format!("/api/collections/users/records/{alice}"),
            Some(&su),
            json!({"name": "Alice"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mine = own.next().await;
    assert_eq!(mine.data["record"]["email"], "alice@example.com");
    let theirs = other.next().await;
    assert_eq!(theirs.data["record"]["name"], "Alice");
    assert!(theirs.data["record"].get("email").is_none(), "{:?}", theirs.data);
}
