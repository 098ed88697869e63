//! Observability: request ids (echoed when sane, generated otherwise), `/api/metrics` (who may
//! read it, what it counts, the metrics token) and JSON log lines from the real binary.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::header::HeaderValue;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_configured, TestApp};

const BIN: &str = env!("CARGO_BIN_EXE_basalt");

/// Sends `GET path` with the given `x-request-id` values; returns the status and the echoed id.
async fn request_id(app: &TestApp, path: &str, sent: &[HeaderValue]) -> (StatusCode, String) {
    let mut req = app.client.get(format!("{}{path}", app.url));
    for v in sent {
        req = req.header("x-request-id", v.clone());
    }
    let res = req.send().await.expect("request");
    let ids: Vec<_> = res.headers().get_all("x-request-id").iter().cloned().collect();
    assert_eq!(ids.len(), 1, "exactly one x-request-id in the response: {ids:?}");
    let id = ids[0].to_str().expect("ASCII id").to_string();
    (res.status(), id)
}

/// A generated id: a UUID (36 characters, hex and dashes).
/// A generated id: the server's 8-character prefix, a dash, a hexadecimal counter.
fn is_generated(id: &str) -> bool {
    id.split_once('-').is_some_and(|(prefix, n)| {
        prefix.len() == 8
            && prefix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

#[tokio::test]
async fn a_sane_request_id_is_echoed_and_a_missing_one_generated() {
    let app = spawn_app().await;
    let sent = HeaderValue::from_static("client-id_42:a/b=c");
    let (status, id) = request_id(&app, "/api/health", &[sent]).await;
    assert_eq!((status, id.as_str()), (StatusCode::OK, "client-id_42:a/b=c"));
    let longest = "x".repeat(128);
    let (_, id) =
        request_id(&app, "/api/health", &[HeaderValue::from_str(&longest).expect("hv")]).await;
    assert_eq!(id, longest);

    let (_, first) = request_id(&app, "/api/health", &[]).await;
    let (_, second) = request_id(&app, "/api/health", &[]).await;
    assert!(is_generated(&first), "{first}");
    assert_ne!(first, second, "every request gets its own id");
    // Errors and unknown routes get one too.
    let (status, id) = request_id(&app, "/api/nope", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(is_generated(&id), "{id}");
    app.stop().await;
}

#[tokio::test]
async fn a_garbage_or_oversized_request_id_is_replaced() {
    let app = spawn_app().await;
    let garbage = [
        vec![HeaderValue::from_str(&"x".repeat(129)).expect("hv")],
        vec![HeaderValue::from_static("has space")],
        vec![HeaderValue::from_static("tab\there")],
        vec![HeaderValue::from_bytes(b"caf\xe9").expect("obs-text is a valid header value")],
        vec![HeaderValue::from_static("\"quoted\" value")],
        // Two ids: neither is taken.
        vec![HeaderValue::from_static("one"), HeaderValue::from_static("two")],
    ];
    for sent in garbage {
        let (status, id) = request_id(&app, "/api/health", &sent).await;
        assert_eq!(status, StatusCode::OK);
        assert!(is_generated(&id), "{sent:?} was not replaced: {id}");
    }
    app.stop().await;
}

/// The value of the sample `name{labels}` in Prometheus text, if present.
fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn metrics_are_for_superusers_and_count_requests_by_route_template() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let (_, user) = app.create_user("metrics-user@example.com", "password12345").await;

    let (status, body) = app.get("/api/metrics", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"data": {}, "message": "The request requires valid record authorization token.",
               "status": 401})
    );
    let (status, body) = app.get("/api/metrics", Some(&user)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        json!({"data": {}, "message": "The authorized record is not allowed to perform this action.",
               "status": 403})
    );
    // A garbage bearer is a guest.
    let (status, _) = app.get("/api/metrics", Some("Bearer not-a-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    for _ in 0..3 {
        let (status, _) = app.get("/api/collections/users/records", Some(&user)).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _) = app.get("/api/no/such/route/abc123", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let res = app
        .client
        .get(format!("{}/api/metrics", app.url))
        .header("Authorization", &su)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::OK);
    let ct = res.headers()["content-type"].to_str().expect("ct").to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = res.text().await.expect("body");
    let records = r#"basalt_http_requests_total{route="/api/collections/{c}/records",method="GET",status="200"}"#;
    assert_eq!(sample(&text, records), Some(3.0), "{text}");
    let unmatched = r#"basalt_http_requests_total{route="unmatched",method="GET",status="404"}"#;
    assert_eq!(sample(&text, unmatched), Some(1.0), "{text}");
    let denied = r#"basalt_http_requests_total{route="/api/metrics",method="GET",status="401"}"#;
    assert_eq!(sample(&text, denied), Some(2.0), "{text}");
    assert!(
        !text.contains("abc123") && !text.contains("/api/collections/users"),
        "raw paths leak into labels: {text}"
    );
    assert!(
        text.contains(r#"basalt_http_request_duration_seconds_bucket{route="/api/collections/{c}/records",method="GET",le="#),
        "{text}"
    );
    assert!(sample(&text, r#"basalt_db_pool_connections{state="in_use"}"#).is_some(), "{text}");
    assert!(sample(&text, r#"basalt_db_pool_connections{state="idle"}"#).is_some(), "{text}");
    assert!(sample(&text, "basalt_change_feed_position").is_some(), "{text}");
    assert!(sample(&text, "basalt_change_feed_lag_seconds").is_some(), "{text}");
    let max = sample(&text, "basalt_db_pool_max_connections").expect("pool size");
    assert!(max >= 1.0, "{text}");
    app.stop().await;
}

#[tokio::test]
async fn the_metrics_token_reads_metrics_and_nothing_else() {
    const TOKEN: &str = "scrape-0123456789abcdef";
    let app =
        spawn_app_configured(|c| c.metrics_token = Some(basalt::config::Secret::new(TOKEN))).await;
    let (status, _) = app.get("/api/health", None).await;
    assert_eq!(status, StatusCode::OK);
    let res = app
        .client
        .get(format!("{}/api/metrics", app.url))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.expect("body");
    let health = r#"basalt_http_requests_total{route="/api/health",method="GET",status="200"}"#;
    assert_eq!(sample(&text, health), Some(1.0), "{text}");

    for wrong in [TOKEN.to_string(), format!("Bearer {TOKEN}x"), format!("Bearer {}", &TOKEN[1..])]
    {
        let (status, _) = app.get("/api/metrics", Some(&wrong)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{wrong}");
    }
    // The token is not a login anywhere else.
    let bearer = format!("Bearer {TOKEN}");
    let (status, _) = app.get("/api/collections", Some(&bearer)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Superusers still may.
    let su = app.su_token().await;
    let (status, _) = app.get("/api/metrics", Some(&su)).await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}

/// `BASALT_LOG_FORMAT=json`: every stderr line of the real binary is a JSON object, and the
/// line of a request carries its request id, method, route and status.
#[tokio::test]
async fn json_log_lines_from_the_binary() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut child = Command::new(BIN)
        .args(["serve", "--http", "127.0.0.1:0", "--dir"])
        .arg(dir.path())
        .env_remove("BASALT_HTTP")
        .env_remove("BASALT_DB")
        // The access log is at DEBUG (off by default); this turns it on.
        .env("BASALT_LOG", "info,basalt::http=debug")
        .env("BASALT_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let (stdout, stderr) = (child.stdout.take().expect("out"), child.stderr.take().expect("err"));
    let (tx, rx) = std::sync::mpsc::channel::<(bool, String)>();
    for (is_err, pipe) in
        [(false, Box::new(stdout) as Box<dyn std::io::Read + Send>), (true, Box::new(stderr))]
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send((is_err, line));
            }
        });
    }
    let mut log = Vec::new();
    let next = |rx: &std::sync::mpsc::Receiver<(bool, String)>| {
        rx.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|e| panic!("no output: {e}"))
    };
    let url = loop {
        match next(&rx) {
            (false, l) if l.starts_with("Server started at http://") => {
                break l.trim_start_matches("Server started at ").trim().to_string()
            }
            (true, l) => log.push(l),
            _ => {}
        }
    };
    let res = reqwest::Client::new()
        .get(format!("{url}/api/collections/users/records/nope"))
        .header("x-request-id", "json-log-test-1")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let line = loop {
        let (is_err, l) = next(&rx);
        if is_err {
            log.push(l.clone());
            if l.contains("json-log-test-1") {
                break l;
            }
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    for l in &log {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{l}");
    }
    let v: Value = serde_json::from_str(&line).expect("json");
    assert_eq!(v["level"], "DEBUG", "{line}");
    assert_eq!(v["fields"]["message"], "request completed", "{line}");
    let span = &v["span"];
    assert_eq!(span["request_id"], "json-log-test-1", "{line}");
    assert_eq!(span["method"], "GET", "{line}");
    assert_eq!(span["route"], "/api/collections/{c}/records/{id}", "{line}");
    assert_eq!(span["status"], 404, "{line}");
    assert!(span["latency_ms"].is_number(), "{line}");
}
