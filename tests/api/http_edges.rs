//! The HTTP edge: oversized bodies (413 without reading them, connection closed), NUL characters
//! in query parameters, paging numbers at the limits of i64 (never a panic or a 5xx), and
//! PocketBase's answers for unknown routes, wrong methods and CORS preflights.
//! Expected answers were probed on PocketBase 0.40.6 (`tests/probes/http_edges.py`).

use std::time::Duration;

use proptest::prelude::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{enc, spawn_app, TestApp};
use crate::seed::seed_blog;

/// A failure guard only: a healthy server answers in milliseconds.
const GUARD: Duration = Duration::from_secs(10);

fn too_large() -> Value {
    json!({"data": {}, "message": "Request entity too large.", "status": 413})
}

async fn connect(app: &TestApp) -> TcpStream {
    let addr = app.url.trim_start_matches("http://");
    TcpStream::connect(addr).await.expect("connect")
}

/// Reads until the server closes the connection (or the guard fires, which fails the test).
async fn read_to_close(reader: &mut (impl AsyncReadExt + Unpin)) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(GUARD, async {
        let mut buf = [0u8; 8192];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                // A reset after the answer arrived still counts as closed.
                Err(_) => break,
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer and no close within {GUARD:?}; got so far: {out:?}");
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits a raw HTTP/1.1 response into status, lower-cased header block and JSON body.
fn parse_response(raw: &str) -> (u16, String, Value) {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no head: {raw:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {raw:?}"));
    (status, head.to_ascii_lowercase(), serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn declared_oversized_body_is_413_without_reading_it() {
    let app = spawn_app().await;
    for path in ["/api/collections/users/records", "/api/collections", "/api/health"] {
        let mut stream = connect(&app).await;
        // 1 GiB declared, a few bytes sent: the answer must not wait for the rest.
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: 1073741824\r\n\r\n{{\"a\":\""
        );
        stream.write_all(head.as_bytes()).await.expect("send head");
        let raw = read_to_close(&mut stream).await;
        let (status, headers, body) = parse_response(&raw);
        assert_eq!(status, 413, "{path}: {raw}");
        assert!(headers.contains("connection: close"), "{path}: {raw}");
        assert!(headers.contains("x-frame-options: sameorigin"), "{path}: {raw}");
        assert_eq!(body, too_large(), "{path}");
    }
    // Just over the limit is refused too; the limit itself is not (the body is then read).
    let mut stream = connect(&app).await;
    let head = format!(
        "POST /api/collections/users/records HTTP/1.1\r\nHost: x\r\n\
         Content-Length: {}\r\n\r\n",
        (32 << 20) + 1
    );
    stream.write_all(head.as_bytes()).await.expect("send head");
    assert_eq!(parse_response(&read_to_close(&mut stream).await).0, 413);
    let (status, _) = app.get("/api/health", None).await;
    assert_eq!(status, StatusCode::OK, "the server is fine afterwards");
    app.stop().await;
}

#[tokio::test]
async fn chunked_body_crossing_the_limit_is_413() {
    let app = spawn_app().await;
    let stream = connect(&app).await;
    let (mut reader, mut writer) = stream.into_split();
    // The writer may be cut off by the server's close; the answer is read concurrently.
    let sender = tokio::spawn(async move {
        let head = "POST /api/collections/users/records HTTP/1.1\r\nHost: x\r\n\
                    Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
                    6\r\n{\"a\":\"\r\n";
        writer.write_all(head.as_bytes()).await?;
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..40 {
            writer.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
            writer.write_all(&chunk).await?;
            writer.write_all(b"\r\n").await?;
        }
        writer.write_all(b"2\r\n\"}\r\n0\r\n\r\n").await?;
        Ok::<_, std::io::Error>(writer)
    });
    let raw = read_to_close(&mut reader).await;
    let (status, headers, body) = parse_response(&raw);
    assert_eq!(status, 413, "{raw}");
    assert!(headers.contains("connection: close"), "{raw}");
    assert_eq!(body, too_large());
    let _ = sender.await;
    let (status, list) =
        app.get("/api/collections/users/records", Some(&app.su_token().await)).await;
    assert_eq!((status, &list["totalItems"]), (StatusCode::OK, &json!(0)), "nothing was created");
    app.stop().await;
}

#[tokio::test]
async fn nul_in_any_query_parameter_is_400_naming_it() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let blog = seed_blog(&app, &su).await;
    let post = blog.id("HW");
    let login =
        json!({"identity": crate::helpers::SU_EMAIL, "password": crate::helpers::SU_PASSWORD});
    let endpoints: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/api/collections/posts/records".into(), None),
        (Method::GET, format!("/api/collections/posts/records/{post}"), None),
        (Method::POST, "/api/collections/posts/records".into(), Some(json!({"title": "new"}))),
        (
            Method::PATCH,
            format!("/api/collections/posts/records/{post}"),
            Some(json!({"title": "z"})),
        ),
        (Method::GET, "/api/collections".into(), None),
        (Method::GET, "/api/collections/posts".into(), None),
        (Method::POST, "/api/collections/_superusers/auth-with-password".into(), Some(login)),
        (Method::POST, "/api/collections/_superusers/auth-refresh".into(), None),
        (Method::GET, "/api/collections/users/auth-methods".into(), None),
        (Method::GET, "/api/health".into(), None),
    ];
    let params = ["filter", "sort", "expand", "fields", "page", "perPage", "skipTotal", "other"];
    for (method, path, body) in &endpoints {
        for name in params {
            let url = format!("{path}?{name}=id%00x");
            let (status, res) = app.send(method.clone(), &url, Some(&su), body.clone()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {url}: {res}");
            let message = res["message"].as_str().unwrap_or_default();
            assert!(message.contains(&format!("\"{name}\"")), "{method} {url}: {res}");
            assert!(message.contains("NUL"), "{method} {url}: {res}");
            assert_eq!(res["status"], 400);
        }
    }
    // The case from the issue: `fields=id%00,…` used to drop `id` silently.
    let (status, res) = app.get("/api/collections/posts/records?fields=id%00,title", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
    // A NUL in the name of a parameter, and a NUL after valid parameters.
    let (status, res) = app.get("/api/collections/posts/records?pa%00ge=1", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
    assert!(res["message"].as_str().unwrap_or_default().contains("pa\\u0000ge"), "{res}");
    let (status, _) = app.get("/api/collections/posts/records?page=1&sort=%00", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Nothing was written by the refused create/update requests.
    let list = app.list("posts", "perPage=100", None).await;
    assert_eq!(list["totalItems"], 5, "{list}");
    assert!(list["items"].as_array().is_some_and(|items| items.iter().all(|p| p["title"] != "z")));
    app.stop().await;
}

#[tokio::test]
async fn page_numbers_at_the_limits_of_i64_do_not_overflow() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    seed_blog(&app, &su).await;
    let max = i64::MAX;
    for path in ["/api/collections", "/api/collections/posts/records"] {
        for q in [
            format!("page={max}"),
            format!("page={max}&perPage=1000"),
            format!("page={max}&perPage={max}&skipTotal=1"),
            format!("page={}&perPage=4", 1i64 << 62),
            format!("page={}&perPage={}", i64::MIN, i64::MIN),
        ] {
            let (status, body) = app.get(&format!("{path}?{q}"), Some(&su)).await;
            assert_eq!(status, StatusCode::OK, "{path}?{q}: {body}");
            assert!(body["items"].is_array(), "{path}?{q}: {body}");
        }
        let (_, body) = app.get(&format!("{path}?page={max}"), Some(&su)).await;
        assert_eq!(body["page"], json!(max), "{path}");
        assert_eq!(body["items"], json!([]), "{path}: a page past the end is empty");
        // Like PocketBase: beyond i64, or not an integer, is a 400 on both list endpoints.
        for q in ["page=9223372036854775808", "page=x", "perPage=1.5"] {
            let (status, body) = app.get(&format!("{path}?{q}"), Some(&su)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}?{q}: {body}");
            assert_eq!(body["status"], 400, "{path}?{q}: JSON envelope");
        }
        // A repeated parameter is not an error: the first value wins, as in PocketBase.
        let (status, body) =
            app.get(&format!("{path}?page=2&page=x&perPage=&perPage="), Some(&su)).await;
        assert_eq!((status, &body["page"]), (StatusCode::OK, &json!(2)), "{path}: {body}");
        let (status, body) = app.get(&format!("{path}?page=x&page=2"), Some(&su)).await;
        assert_eq!((status, &body["status"]), (StatusCode::BAD_REQUEST, &json!(400)), "{path}");
    }
    app.stop().await;
}

fn param_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(i64::MAX.to_string()),
        Just(i64::MIN.to_string()),
        Just(u64::MAX.to_string()),
        Just("99999999999999999999999999".to_string()),
        Just("-1".to_string()),
        Just("0".to_string()),
        Just("1e309".to_string()),
        Just("NaN".to_string()),
        Just("id,@random,-created".to_string()),
        Just("*,expand.*:excerpt(9999999999999999999)".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        "[ -~]{0,16}",
        "\\PC{0,12}",
    ]
}

/// Random paging, sort, fields, filter and skipTotal values on both list endpoints, as superuser
/// and as guest: never a 5xx (nor a dropped connection), always a JSON body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_list_parameters_never_500() {
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let app = spawn_app().await;
    let su = app.su_token().await;
    seed_blog(&app, &su).await;
    let names = ["page", "perPage", "sort", "fields", "filter", "skipTotal"];
    let params = prop::collection::vec((prop::sample::select(names.to_vec()), param_value()), 1..5);
    let mut runner =
        TestRunner::new(Config { cases: 64, failure_persistence: None, ..Config::default() });
    let handle = tokio::runtime::Handle::current();
    let result = tokio::task::block_in_place(|| {
        runner.run(&(params, any::<bool>()), |(params, guest)| {
            handle.block_on(async {
                let token = if guest { None } else { Some(su.as_str()) };
                let q: Vec<String> =
                    params.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect();
                let q = q.join("&");
                for path in ["/api/collections", "/api/collections/posts/records"] {
                    let (status, body) = app.get(&format!("{path}?{q}"), token).await;
                    prop_assert!(!status.is_server_error(), "{path}?{q}: {status} {body}");
                    prop_assert!(body.is_object(), "{path}?{q}: {status}, not JSON");
                    if status == StatusCode::OK {
                        prop_assert!(body["items"].is_array(), "{path}?{q}: {body}");
                    } else {
                        prop_assert_eq!(&body["status"], &json!(status.as_u16()), "{}", q);
                    }
                }
                Ok::<(), TestCaseError>(())
            })
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    app.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_404_like_pocketbase() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let file = json!({"data": {}, "message": "File not found.", "status": 404});
    let resource =
        json!({"data": {}, "message": "The requested resource wasn't found.", "status": 404});
    let cases = [
        (Method::GET, "/api/nope", &file),
        (Method::GET, "/nope", &file),
        (Method::GET, "/api/collections/users/auth-with-password", &file),
        (Method::GET, "/api/collections/users/truncate", &file),
        (Method::POST, "/api/nope", &resource),
        (Method::DELETE, "/api/nope", &resource),
        (Method::DELETE, "/api/health", &resource),
        (Method::PUT, "/api/collections", &resource),
        (Method::PATCH, "/api/collections/users/auth-with-password", &resource),
        (Method::POST, "/api/collections/users/truncate", &resource),
        (Method::from_bytes(b"TRACE").expect("method"), "/api/health", &resource),
    ];
    for (method, path, expected) in cases {
        let (status, body) = app.send(method.clone(), path, Some(&su), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        assert_eq!(&body, expected, "{method} {path}");
    }
    let res = app.client.head(format!("{}/api/nope", app.url)).send().await.expect("head");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn cors_preflight_is_204_with_pocketbase_headers() {
    let app = spawn_app().await;
    let preflight = |path: &str| {
        app.client
            .request(Method::OPTIONS, format!("{}{path}", app.url))
            .header("Origin", "http://example.com")
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "content-type, authorization")
    };
    // Known and unknown paths alike: the preflight never reaches the router.
    for path in ["/api/collections", "/api/collections/users/records", "/api/nope"] {
        let res = preflight(path).send().await.expect("preflight");
        assert_eq!(res.status(), StatusCode::NO_CONTENT, "{path}");
        let h = res.headers();
        assert_eq!(h["access-control-allow-origin"], "*");
        assert_eq!(h["access-control-allow-methods"], "GET,HEAD,PUT,PATCH,POST,DELETE");
        assert_eq!(h["access-control-allow-headers"], "content-type, authorization");
        let vary: Vec<_> = h.get_all("vary").iter().map(|v| v.to_str().unwrap_or("")).collect();
        assert_eq!(
            vary,
            ["Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"]
        );
        assert!(h.get("x-frame-options").is_none(), "PocketBase sends no security headers here");
        assert!(h.get("allow").is_none(), "no Allow header from the method router");
        assert!(res.bytes().await.expect("body").is_empty());
    }
    // Without an Origin an OPTIONS request is still 204, with nothing but `Vary: Origin`.
    let res = app
        .client
        .request(Method::OPTIONS, format!("{}/api/health", app.url))
        .send()
        .await
        .expect("options");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(res.headers().get("access-control-allow-origin").is_none());
    assert_eq!(res.headers()["vary"], "Origin");
    // A simple request with an Origin gets the allow-origin header and the security headers.
    let res = app
        .client
        .get(format!("{}/api/health", app.url))
        .header("Origin", "http://example.com")
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    assert_eq!(res.headers()["vary"], "Origin");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    app.stop().await;
}
