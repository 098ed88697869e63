//! Side effects through the job queue, against real peers on loopback: mail received by a real
//! SMTP server (aiosmtpd, started here; `scripts/test` installs it), the `sendmail` fallback,
//! webhooks delivered to a receiver that checks the signature, and the settings that drive
//! them. Also cron schedules over the API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{eventually, spawn_app, spawn_app_configured, TestApp};
use crate::smtp::{messages, send_mail_through, start_smtp};

async fn job_state(app: &TestApp, su: &str, id: &str) -> Value {
    app.get(&format!("/api/jobs/{id}"), Some(su)).await.1
}

#[tokio::test]
async fn settings_keep_secrets_and_check_fields() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let (status, s) = app.get("/api/settings", Some(&su)).await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["meta"]["appName"], "Acme");
    assert_eq!(s["smtp"]["port"], 587);
    assert_eq!(s["batch"]["maxRequests"], 50);

    let (status, s) = app
        .patch(
            "/api/settings",
            Some(&su),
            json!({"smtp": {"enabled": true, "host": "mx.example.com", "port": 2525,
                            "username": "u", "password": "hunter2-secret"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["smtp"]["host"], "mx.example.com");
    assert_eq!(s["meta"]["appName"], "Acme", "a deep merge keeps the other sections");
    let (_, again) = app.get("/api/settings", Some(&su)).await;
    assert!(!again.to_string().contains("hunter2"), "the password is write-only: {again}");
    assert!(again["smtp"].get("password").is_none());
    // The stored password is kept by a PATCH that leaves it out.
    let stored = app.svc.settings().await.expect("settings");
    assert_eq!(stored.smtp.password, "hunter2-secret");
    app.patch("/api/settings", Some(&su), json!({"smtp": {"port": 2526}})).await;
    assert_eq!(app.svc.settings().await.expect("settings").smtp.password, "hunter2-secret");

    let (status, e) = app
        .patch(
            "/api/settings",
            Some(&su),
            json!({"meta": {"appName": "", "senderAddress": "bad", "appURL": "nope"},
                   "smtp": {"enabled": true, "host": "", "authMethod": "BAD"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["data"]["meta"]["appName"]["code"], "validation_required");
    assert_eq!(e["data"]["meta"]["senderAddress"]["code"], "validation_is_email");
    assert_eq!(e["data"]["meta"]["appURL"]["code"], "validation_is_url");
    assert_eq!(e["data"]["smtp"]["host"]["code"], "validation_required");
    assert_eq!(e["data"]["smtp"]["authMethod"]["code"], "validation_in_invalid");
    let (status, _) = app.patch("/api/settings", Some(&su), json!({"meta": "x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Nothing of the refused PATCHes was kept.
    assert_eq!(app.get("/api/settings", Some(&su)).await.1["meta"]["appName"], "Acme");

    // Superusers only.
    assert_eq!(app.get("/api/settings", None).await.0, StatusCode::UNAUTHORIZED);
    let (_, user) = app.create_user("plain@example.com", "password123").await;
    assert_eq!(app.get("/api/settings", Some(&user)).await.0, StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test]
async fn mail_goes_through_a_real_smtp_server() {
    let smtp = start_smtp().await;
    let app = spawn_app().await;
    let su = app.su_token().await;
    let meta = json!({"senderName": "Basalt Test", "senderAddress": "noreply@basalt.test"});
    send_mail_through(&app, &su, &smtp, meta).await;

    // Bad payloads are refused with the field.
    let (status, e) = app
        .post("/api/jobs", Some(&su), json!({"kind": "email", "payload": {"to": ["nope"]}}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["data"]["payload"]["to"]["code"], "validation_is_email");
    assert_eq!(e["data"]["payload"]["subject"]["code"], "validation_required");

    let (status, job) = app
        .post(
            "/api/jobs",
            Some(&su),
            json!({"kind": "email", "payload": {
                "to": ["Bob <bob@example.com>"], "cc": "carol@example.com",
                "bcc": ["dave@example.com"], "replyTo": "help@basalt.test",
                "subject": "Welcome, Bob", "text": "Hello in text", "html": "<p>Hello</p>",
                "headers": {"X-Basalt-Test": "42"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{job}");
    let id = job["id"].as_str().expect("id").to_string();
    let sent = eventually(Duration::from_secs(20), || async {
        job_state(&app, &su, &id).await["state"] == "succeeded"
    })
    .await;
    assert!(sent, "the email job succeeded: {}", job_state(&app, &su, &id).await);
    let got =
        eventually(Duration::from_secs(5), || async { !messages(smtp.maildir.path()).is_empty() })
            .await;
    assert!(got, "the SMTP server received the message");
    let all = messages(smtp.maildir.path());
    assert_eq!(all.len(), 1, "one message");
    let m = &all[0];
    let header = |name: &str| {
        m.lines().find(|l| l.starts_with(&format!("{name}: "))).unwrap_or_default().to_string()
    };
    assert!(
        header("From").contains("Basalt Test") && header("From").contains("<noreply@basalt.test>"),
        "{m}"
    );
    assert!(header("To").contains("Bob") && header("To").contains("<bob@example.com>"), "{m}");
    for needle in [
        "Cc: carol@example.com",
        "Reply-To: help@basalt.test",
        "Subject: Welcome, Bob",
        "X-Basalt-Test: 42",
        "multipart/alternative",
        "Hello in text",
        "<p>Hello</p>",
    ] {
        assert!(m.contains(needle), "{needle:?} in\n{m}");
    }
    assert!(!m.contains("Bcc:"), "no Bcc header in what recipients see:\n{m}");
    // aiosmtpd records the envelope: the Bcc recipient was sent to.
    let rcpt = m.lines().find(|l| l.starts_with("X-RcptTo:")).unwrap_or_default();
    assert!(rcpt.contains("dave@example.com") && rcpt.contains("bob@example.com"), "{rcpt}");

    // An unreachable server fails attempts (retried), it never loses the job.
    drop(smtp);
    let (_, job) = app
        .post(
            "/api/jobs",
            Some(&su),
            json!({"kind": "email", "maxAttempts": 1,
                   "payload": {"to": "x@example.com", "subject": "s", "text": "t"}}),
        )
        .await;
    let id = job["id"].as_str().expect("id").to_string();
    let dead = eventually(Duration::from_secs(20), || async {
        job_state(&app, &su, &id).await["state"] == "dead"
    })
    .await;
    let j = job_state(&app, &su, &id).await;
    assert!(dead, "{j}");
    assert!(j["lastError"].as_str().unwrap_or_default().contains("SMTP"), "{j}");
    app.stop().await;
}

#[tokio::test]
async fn without_smtp_mail_goes_through_sendmail() {
    let dir = tempfile::tempdir().expect("dir");
    let script = dir.path().join("sendmail");
    let out = dir.path().join("out");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" > {0}/args\ncat > {0}/message\n", dir.path().display()),
    )
    .expect("script");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let _ = out;
    let path: PathBuf = script.clone();
    let app = spawn_app_configured(move |c| c.sendmail = path.display().to_string()).await;
    let su = app.su_token().await;
    let (_, job) = app
        .post(
            "/api/jobs",
            Some(&su),
            json!({"kind": "email", "payload": {"to": "a@example.com", "bcc": "hidden@example.com",
                                                 "subject": "Via sendmail", "text": "body"}}),
        )
        .await;
    let id = job["id"].as_str().expect("id").to_string();
    let done = eventually(Duration::from_secs(15), || async {
        job_state(&app, &su, &id).await["state"] == "succeeded"
    })
    .await;
    assert!(done, "{}", job_state(&app, &su, &id).await);
    let args = std::fs::read_to_string(dir.path().join("args")).expect("args");
    assert_eq!(args.trim(), "-i -t hidden@example.com");
    let msg = std::fs::read_to_string(dir.path().join("message")).expect("message");
    assert!(msg.contains("Subject: Via sendmail") && msg.contains("To: a@example.com"), "{msg}");
    assert!(msg.contains("From: Support <support@example.com>"), "{msg}");
    app.stop().await;
}

/// What the webhook receiver saw: (headers, body) per request.
type Seen = Arc<Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>;

/// A webhook receiver on loopback: answers 500 to the first `fail_first` requests, then 200.
async fn receiver(fail_first: usize) -> (SocketAddr, Seen) {
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let log = log.clone();
            async move {
                let mut l = log.lock().expect("lock");
                l.push((headers, body.to_vec()));
                if l.len() <= fail_first {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, seen)
}

const SECRET: &str = "a-webhook-secret-of-some-length";

/// What a receiver does: recompute the signature over the raw body.
fn verify(headers: &axum::http::HeaderMap, body: &[u8]) -> bool {
    let Some(sig) = headers.get("x-basalt-signature").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(body);
    let Ok(raw) = hex::decode(sig) else { return false };
    mac.verify_slice(&raw).is_ok()
}

#[tokio::test]
async fn webhooks_are_signed_filtered_and_retried() {
    let (addr, seen) = receiver(1).await;
    let app = spawn_app_configured(|c| {
        c.webhooks_allow = vec!["127.0.0.0/8".parse().expect("net")];
    })
    .await;
    let su = app.su_token().await;
    let url = format!("http://{addr}/hook");
    let (status, coll) = app
        .post(
            "/api/collections",
            Some(&su),
            json!({"name": "posts", "type": "base",
                   "listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": "",
                   "fields": [{"name": "title", "type": "text"}, {"name": "status", "type": "text"}],
                   "webhooks": [{"url": url, "secret": SECRET, "events": ["create", "delete"],
                                 "filter": "status = 'published'"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{coll}");
    let hook = &coll["webhooks"][0];
    assert_eq!(
        (hook["url"].as_str(), hook["filter"].as_str()),
        (Some(url.as_str()), Some("status = 'published'"))
    );
    assert!(hook.get("secret").is_none(), "the secret is write-only: {coll}");
    assert!(hook["id"].as_str().is_some_and(|i| !i.is_empty()));

    // Filtered out: no delivery. Matching: one (after a failed first attempt).
    app.create_record(None, "posts", json!({"title": "draft", "status": "draft"})).await;
    let rec =
        app.create_record(None, "posts", json!({"title": "hello", "status": "published"})).await;
    let rid = rec["id"].as_str().expect("id").to_string();
    let delivered =
        eventually(Duration::from_secs(20), || async { seen.lock().expect("lock").len() >= 2 })
            .await;
    assert!(
        delivered,
        "a failed delivery is retried: {} requests",
        seen.lock().expect("lock").len()
    );
    {
        let l = seen.lock().expect("lock");
        assert_eq!(l[0].1, l[1].1, "the retry sends the same event");
        for (headers, body) in l.iter() {
            assert!(verify(headers, body), "signature verifies");
            assert_eq!(
                headers.get("content-type").and_then(|v| v.to_str().ok()),
                Some("application/json")
            );
        }
        let ev: Value = serde_json::from_slice(&l[1].1).expect("json");
        assert_eq!(
            (ev["action"].as_str(), ev["collection"].as_str()),
            (Some("create"), Some("posts"))
        );
        assert_eq!(ev["record"]["id"], rid.as_str());
        assert_eq!(ev["record"]["title"], "hello");
        assert_eq!(ev["record"]["collectionName"], "posts");
        assert_eq!(l[1].0.get("x-basalt-event").and_then(|v| v.to_str().ok()), ev["id"].as_str());
    }
    // Updates are not subscribed; the delete is (with the record as it was).
    app.patch(&format!("/api/collections/posts/records/{rid}"), None, json!({"title": "edited"}))
        .await;
    let (status, _) = app.delete(&format!("/api/collections/posts/records/{rid}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let got =
        eventually(Duration::from_secs(20), || async { seen.lock().expect("lock").len() >= 3 })
            .await;
    assert!(got);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let l = seen.lock().expect("lock").clone();
    assert_eq!(l.len(), 3, "no delivery for the update or the draft");
    let ev: Value = serde_json::from_slice(&l[2].1).expect("json");
    assert_eq!(
        (ev["action"].as_str(), ev["record"]["title"].as_str()),
        (Some("delete"), Some("edited"))
    );
    assert!(verify(&l[2].0, &l[2].1));

    // Saving the collection again without the secret keeps it (write-only).
    let (status, again) = app
        .patch(
            "/api/collections/posts",
            Some(&su),
            json!({"webhooks": [{"id": hook["id"], "url": url, "events": ["create"]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    app.create_record(None, "posts", json!({"title": "x", "status": "draft"})).await;
    let got =
        eventually(Duration::from_secs(20), || async { seen.lock().expect("lock").len() >= 4 })
            .await;
    assert!(got, "no filter now: every create");
    let l = seen.lock().expect("lock").clone();
    assert!(verify(&l[3].0, &l[3].1), "signed with the kept secret");
    app.stop().await;
}

#[tokio::test]
async fn webhook_definitions_are_checked() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let def = |hooks: Value| {
        json!({"name": "things", "type": "base", "fields": [{"name": "n", "type": "number"},
               {"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_"}],
               "webhooks": hooks})
    };
    let cases = [
        (
            json!([{"url": "http://127.0.0.1:9/x", "secret": SECRET, "events": ["create"]}]),
            "url",
            "validation_invalid_url",
        ),
        (
            json!([{"url": "http://169.254.169.254/latest", "secret": SECRET, "events": ["create"]}]),
            "url",
            "validation_invalid_url",
        ),
        (
            json!([{"url": "http://localhost/x", "secret": SECRET, "events": ["create"]}]),
            "url",
            "validation_invalid_url",
        ),
        (
            json!([{"url": "ftp://example.com/x", "secret": SECRET, "events": ["create"]}]),
            "url",
            "validation_invalid_url",
        ),
        (
            json!([{"url": "", "secret": SECRET, "events": ["create"]}]),
            "url",
            "validation_required",
        ),
        (
            json!([{"url": "https://example.com/x", "secret": "short", "events": ["create"]}]),
            "secret",
            "validation_length_out_of_range",
        ),
        (
            json!([{"url": "https://example.com/x", "secret": SECRET, "events": []}]),
            "events",
            "validation_required",
        ),
        (
            json!([{"url": "https://example.com/x", "secret": SECRET, "events": ["insert"]}]),
            "events",
            "validation_in_invalid",
        ),
        (
            json!([{"url": "https://example.com/x", "secret": SECRET, "events": ["create"], "filter": "n >"}]),
            "filter",
            "validation_invalid_rule",
        ),
        (
            json!([{"url": "https://example.com/x", "secret": SECRET, "events": ["create"], "filter": "owner.email = 'a'"}]),
            "filter",
            "validation_invalid_rule",
        ),
        (
            json!([{"url": "https://example.com/x", "secret": SECRET, "events": ["create"], "filter": "nope = 1"}]),
            "filter",
            "validation_invalid_rule",
        ),
    ];
    for (hooks, field, code) in cases {
        let (status, e) = app.post("/api/collections", Some(&su), def(hooks.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{hooks} → {e}");
        assert_eq!(e["data"]["webhooks"]["0"][field]["code"], code, "{hooks} → {e}");
    }
    let (status, e) = app.post("/api/collections", Some(&su), def(json!("x"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    let (status, ok) = app
        .post(
            "/api/collections",
            Some(&su),
            def(json!([{"url": "https://example.com/x", "secret": SECRET, "events": ["update"], "filter": "n > 1 && owner != ''"}])),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ok}");
    app.stop().await;
}

#[tokio::test]
async fn crons_are_managed_and_fire() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    for (body, field) in [
        (json!({"expression": "nonsense", "kind": "noop"}), "expression"),
        (json!({"expression": "61 * * * *", "kind": "noop"}), "expression"),
        (json!({"expression": "* * * *", "kind": "noop"}), "expression"),
        (json!({"expression": "* * * * *", "kind": "Bad Kind"}), "kind"),
        (json!({"expression": "* * * * *", "kind": ""}), "kind"),
        (json!({"expression": "* * * * *", "kind": "email", "payload": {"to": "x"}}), "payload"),
    ] {
        let (status, e) =
            app.send(reqwest::Method::PUT, "/api/crons/c1", Some(&su), Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {e}");
        assert!(e["data"].get(field).is_some(), "{body} → {e}");
    }
    let (status, _) = app
        .send(
            reqwest::Method::PUT,
            "/api/crons/has%20space",
            Some(&su),
            Some(json!({"expression": "* * * * *", "kind": "noop"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Every second (six fields): a tick enqueues one job due at the tick.
    let (status, c) = app
        .send(reqwest::Method::PUT, "/api/crons/every-second", Some(&su),
              Some(json!({"expression": "* * * * * *", "kind": "noop", "queue": "default", "payload": {"from": "cron"}})))
        .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert!(c["nextTick"].as_i64().is_some(), "{c}");
    let (_, list) = app.get("/api/crons", Some(&su)).await;
    assert_eq!(list[0]["id"], "every-second");
    assert_eq!(list[0]["expression"], "* * * * * *");
    let fired = eventually(Duration::from_secs(10), || async {
        app.get("/api/jobs?kind=noop", Some(&su)).await.1["totalItems"].as_i64().unwrap_or(0) >= 2
    })
    .await;
    assert!(fired, "the schedule fired");
    let (status, _) = app.delete("/api/crons/every-second", Some(&su)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.delete("/api/crons/every-second", Some(&su)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Run now (PocketBase's POST /api/crons/{id}), and a missing one.
    app.send(reqwest::Method::PUT, "/api/crons/yearly", Some(&su),
             Some(json!({"expression": "@yearly", "kind": "report.build", "queue": "reports", "payload": {"y": 1}})))
        .await;
    let (status, _) = app.post("/api/crons/yearly", Some(&su), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, jobs) = app.get("/api/jobs?queue=reports", Some(&su)).await;
    assert_eq!(jobs["items"][0]["payload"], json!({"y": 1}), "{jobs}");
    let (status, e) = app.post("/api/crons/missing", Some(&su), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{e}");
    assert_eq!(app.get("/api/crons", None).await.0, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

/// A receiver that records every delivery's event id and record id, taking `delay` per
/// request (so deliveries are in flight when the server is killed).
async fn counting_sink(delay: Duration) -> (SocketAddr, Arc<Mutex<Vec<(String, String)>>>) {
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/sink",
        axum::routing::post(move |body: axum::body::Bytes| {
            let log = log.clone();
            async move {
                tokio::time::sleep(delay).await;
                let ev: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let pair = (
                    ev["id"].as_str().unwrap_or_default().to_string(),
                    ev["record"]["id"].as_str().unwrap_or_default().to_string(),
                );
                log.lock().expect("lock").push(pair);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, seen)
}

/// `kill -9` while webhook deliveries run loses none: every created record's event reaches the
/// sink at least once (duplicates counted). SQLite: the server restarts and finishes. PostgreSQL:
/// a second instance on the same database finishes the killed one's leased jobs, no restart.
#[tokio::test]
async fn a_killed_server_loses_no_deliveries() {
    use crate::cli::{Server, BIN};

    let (addr, seen) = counting_sink(Duration::from_millis(20)).await;
    let db = match crate::helpers::postgres_server() {
        Some(server) => Some(crate::helpers::TestDb::create(&server).await),
        None => None,
    };
    let url = db.as_ref().map(|d| d.url());
    let mut args: Vec<&str> = Vec::new();
    if let Some(u) = &url {
        args.extend(["--db", u.as_str()]);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let upsert = Command::new(BIN)
        .args(["superuser", "upsert", "crash@example.com", "password-123456", "--dir"])
        .arg(dir.path())
        .args(&args)
        .output()
        .expect("upsert");
    assert!(upsert.status.success(), "{}", String::from_utf8_lossy(&upsert.stderr));
    let env = [("BASALT_JOBS_LEASE", "2"), ("BASALT_WEBHOOKS_ALLOW", "127.0.0.1/32")];
    let mut first = Server::start_with(dir.path(), &args, &env).await;
    let other_dir = tempfile::tempdir().expect("tempdir");
    let second = match url {
        Some(_) => Some(Server::start_with(other_dir.path(), &args, &env).await),
        None => None,
    };
    let su = first.login("crash@example.com", "password-123456").await.expect("login");
    let (status, c) = first
        .post(
            "/api/collections",
            Some(&su),
            json!({"name": "events", "type": "base", "createRule": "",
                   "fields": [{"name": "n", "type": "number"}],
                   "webhooks": [{"url": format!("http://{addr}/sink"), "secret": SECRET,
                                 "events": ["create"]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    if let Some(s) = &second {
        // The other instance sees the new collection (schema reload) before it takes jobs.
        let ready = eventually(Duration::from_secs(10), || async {
            // 403 (list rule) once it knows the collection, 404 before.
            s.get("/api/collections/events/records", None).await.0 == StatusCode::FORBIDDEN
        })
        .await;
        assert!(ready);
    }
    const N: usize = 600;
    let mut ids = Vec::with_capacity(N);
    for chunk in (0..N).collect::<Vec<_>>().chunks(50) {
        let posts = chunk
            .iter()
            .map(|i| first.post("/api/collections/events/records", None, json!({"n": i})));
        for (status, rec) in futures_util::future::join_all(posts).await {
            assert_eq!(status, StatusCode::OK, "{rec}");
            ids.push(rec["id"].as_str().expect("id").to_string());
        }
    }
    let before = seen.lock().expect("lock").len();
    first.kill_hard();

    let survivor = match second {
        Some(s) => s,
        None => Server::start_with(dir.path(), &args, &env).await,
    };
    let all = eventually(Duration::from_secs(90), || async {
        let l = seen.lock().expect("lock");
        let mut distinct: Vec<&String> = l.iter().map(|(_, r)| r).collect();
        distinct.sort();
        distinct.dedup();
        distinct.len() >= N
    })
    .await;
    let l = seen.lock().expect("lock").clone();
    let mut records: Vec<String> = l.iter().map(|(_, r)| r.clone()).collect();
    records.sort();
    records.dedup();
    ids.sort();
    assert!(all, "{} of {N} records delivered", records.len());
    assert_eq!(records, ids, "every created record's event, and no other");
    let mut events: Vec<String> = l.iter().map(|(e, _)| e.clone()).collect();
    events.sort();
    events.dedup();
    assert_eq!(events.len(), N, "one event id per record (a retry repeats its id)");
    let engine =
        if url.is_some() { "PostgreSQL, the other instance finished" } else { "SQLite, restarted" };
    eprintln!(
        "webhooks kill -9 ({engine}): {before}/{N} delivered before; all {N} after; {} duplicates",
        l.len() - N
    );
    drop(survivor);
}

#[tokio::test]
async fn api_keys_with_the_jobs_scope_reach_only_the_jobs_api() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    for (body, field) in [
        (json!({"name": "", "scopes": ["jobs"]}), "name"),
        (json!({"name": "w", "scopes": []}), "scopes"),
        (json!({"name": "w", "scopes": ["admin"]}), "scopes"),
    ] {
        let (status, e) = app.post("/api/keys", Some(&su), body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {e}");
        assert!(e["data"].get(field).is_some(), "{body} → {e}");
    }
    let (status, created) =
        app.post("/api/keys", Some(&su), json!({"name": "worker", "scopes": ["jobs"]})).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let key = created["key"].as_str().expect("key").to_string();
    assert!(key.starts_with("bsk_"), "{created}");
    assert!(created.get("hash").is_none(), "{created}");
    let (_, list) = app.get("/api/keys", Some(&su)).await;
    assert_eq!(list[0]["name"], "worker");
    assert!(!list.to_string().contains(&key[20..]), "the secret is shown once: {list}");

    // The jobs API, with or without "Bearer ".
    let (status, job) =
        app.post("/api/jobs", Some(&key), json!({"kind": "ext.work", "queue": "ext"})).await;
    assert_eq!(status, StatusCode::OK, "{job}");
    let bearer = format!("Bearer {key}");
    let (status, claimed) =
        app.post("/api/jobs/claim", Some(&bearer), json!({"queue": "ext", "max": 1})).await;
    assert_eq!(status, StatusCode::OK, "{claimed}");
    assert_eq!(app.get("/api/jobs/stats", Some(&key)).await.0, StatusCode::OK);
    // Nothing else: to the rest of the API the key's request is a guest's.
    assert_eq!(app.get("/api/settings", Some(&key)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/api/keys", Some(&key)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/api/collections", Some(&key)).await.0, StatusCode::UNAUTHORIZED);
    // A wrong secret, a made-up key, a deleted key: refused.
    let wrong = format!("{}x", &key[..key.len() - 1]);
    assert_eq!(app.get("/api/jobs/stats", Some(&wrong)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get("/api/jobs/stats", Some("bsk_aaaaaaaaaaaaaaa_nope")).await.0,
        StatusCode::UNAUTHORIZED
    );
    let id = created["id"].as_str().expect("id");
    assert_eq!(app.delete(&format!("/api/keys/{id}"), Some(&su)).await.0, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/jobs/stats", Some(&key)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.delete(&format!("/api/keys/{id}"), Some(&su)).await.0, StatusCode::NOT_FOUND);
    app.stop().await;
}
