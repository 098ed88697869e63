//! Hostile input through every request part that reaches SQL: filter values, sort, field names,
//! expand, fields, collection names and record ids. Each must be 400/403/404 or the correct
//! (usually empty) result, never a 5xx, and the data must be intact afterwards. Plus a proptest
//! throwing random filters and sorts at a running server.

use proptest::prelude::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{enc, spawn_app, TestApp};
use crate::seed::{codes_sorted, seed_blog};

/// Everything still there and still readable.
async fn assert_intact(app: &TestApp, su: &str) {
    for (coll, n) in [("posts", 5), ("tags", 3), ("orgs", 2), ("comments", 3), ("users", 2)] {
        let list = app.list(coll, "", Some(su)).await;
        assert_eq!(list["totalItems"], n, "{coll} damaged: {list}");
    }
    let (status, _) = app.get("/api/collections/_superusers/records", Some(su)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn injection_through_filter_values_and_syntax() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    seed_blog(&app, &su).await;
    let attempts = [
        "title = \"x' OR 1=1 --\"",
        "title = 'x'' OR ''1''=''1'",
        "title = 'a') OR (1=1",
        "title = 'a' OR 1=1",
        "title = 'a'; DROP TABLE posts; --",
        "title = \"a\"; DROP TABLE posts",
        "title ~ '%' || 1=1) --",
        "title = 'x' UNION SELECT * FROM _superusers",
        "title = 'x') UNION SELECT password FROM _superusers --",
        "title = 1; DELETE FROM posts",
        "title = '\\'; DROP TABLE posts; --'",
        "title = 'x\" OR \"1\"=\"1'",
        "title = 'a\0b'",
        "title = 'x' /* comment */",
        "title = char(65)",
        "title = sqlite_version()",
        "title = (SELECT 1)",
        "meta.a' OR 1=1 -- = 1",
        "meta.\"a\" = 1",
        "\"title\" = 'x'",
        "`title` = 'x'",
        "title]; DROP TABLE posts; -- = 1",
        "posts.title = 'x'",
        "t.title = 'x'",
        "rowid = 1",
        "_rowid_ > 0",
        "sqlite_master.name = 'posts'",
        "@collection._superusers.password != ''",
        "@collection.posts;DROP.id != ''",
        "strftime('%Y', pub) = '2024') OR (1=1",
        "strftime('%Y'); DROP TABLE posts; --', pub) = 1",
        "title ~ 'x' ESCAPE 'x'",
        "title = ?",
        "title = ?1",
        "title = :name",
        "title = $1",
    ];
    let mut failures = Vec::new();
    for f in attempts {
        for token in [Some(su.as_str()), None] {
            let (status, body) =
                app.get(&format!("/api/collections/posts/records?filter={}", enc(f)), token).await;
            let ok = match status {
                StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN => true,
                // Valid filters must return exactly what they say: nothing matches these.
                StatusCode::OK => {
                    body["totalItems"] == 0 || f.starts_with("@collection") && token.is_some()
                }
                _ => false,
            };
            if !ok {
                failures.push(format!("{f:?} (su: {}): {status} {body}", token.is_some()));
            }
        }
    }
    // Values are bound: a title containing SQL is matched literally.
    let evil = "x' OR 1=1 --";
    app.create_record(Some(&su), "posts", json!({"title": evil})).await;
    let list =
        app.list("posts", &format!("filter={}", enc("title = \"x' OR 1=1 --\"")), None).await;
    if list["totalItems"] != 1 || list["items"][0]["title"] != evil {
        failures.push(format!("literal match of an SQL-looking value: {list}"));
    }
    let (status, _) = app
        .delete(
            &format!(
                "/api/collections/posts/records/{}",
                list["items"][0]["id"].as_str().unwrap_or("")
            ),
            Some(&su),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_intact(&app, &su).await;
    app.stop().await;
}

#[tokio::test]
async fn injection_through_sort_expand_and_fields() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    seed_blog(&app, &su).await;
    let mut failures = Vec::new();
    let sorts = [
        "title;DROP TABLE posts",
        "title; DROP TABLE posts; --",
        "title DESC",
        "title) --",
        "(SELECT 1)",
        "1",
        "-1",
        "random()",
        "title COLLATE NOCASE",
        "\"title\"",
        "title,(select password from _superusers)",
        "author.name;--",
        "@random;DROP TABLE posts",
        "meta.a') --",
        "meta.a'); DROP TABLE posts; --",
    ];
    for s in sorts {
        let (status, body) =
            app.get(&format!("/api/collections/posts/records?sort={}", enc(s)), Some(&su)).await;
        if status != StatusCode::BAD_REQUEST
            && !(status == StatusCode::OK && codes_sorted(&body).len() == 5)
        {
            failures.push(format!("sort {s:?}: {status} {body}"));
        }
    }
    let expands = [
        "author;DROP TABLE posts",
        "author') --",
        "comments_via_post;--",
        "x_via_y",
        "posts_via_author",
        "_superusers_via_id",
        "author.author.author.author.author.author.author.author",
        "tags.org.tags_via_org.org.tags_via_org.org.tags_via_org",
        &"a.".repeat(500),
        ",,,",
        "*",
    ];
    for e in expands {
        let (status, body) =
            app.get(&format!("/api/collections/posts/records?expand={}", enc(e)), Some(&su)).await;
        if status.is_server_error() || status == StatusCode::OK && codes_sorted(&body).len() != 5 {
            failures.push(format!("expand {e:?}: {status} {body}"));
        }
    }
    for f in [
        "id;DROP TABLE posts",
        "title:excerpt(-1)",
        "title:excerpt(999999999999999999999)",
        "title:excerpt(",
        "*,*,*",
        "expand.*.*",
        "title:excerpt(5,true,1,2)",
        "'",
    ] {
        let (status, body) =
            app.get(&format!("/api/collections/posts/records?fields={}", enc(f)), Some(&su)).await;
        if status.is_server_error()
            || status == StatusCode::OK && body["items"].as_array().map(Vec::len) != Some(5)
        {
            failures.push(format!("fields {f:?}: {status} {body}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_intact(&app, &su).await;
    app.stop().await;
}

#[tokio::test]
async fn injection_through_collection_names_and_ids() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let blog = seed_blog(&app, &su).await;
    let mut failures = Vec::new();
    let names = [
        "posts;DROP TABLE posts",
        "posts\"; DROP TABLE posts; --",
        "posts'",
        "posts%00",
        "sqlite_master",
        "sqlite_sequence",
        "_collections",
        "_migrations",
        "posts t",
        "..%2F..%2Fetc%2Fpasswd",
        "%27%20OR%201%3D1",
    ];
    for n in names {
        let path = format!("/api/collections/{}/records", enc(n));
        for (method, body) in [(Method::GET, None), (Method::POST, Some(json!({"title": "x"})))] {
            let (status, res) = app.send(method.clone(), &path, Some(&su), body).await;
            if status != StatusCode::NOT_FOUND && status != StatusCode::BAD_REQUEST {
                failures.push(format!("{method} collection {n:?}: {status} {res}"));
            }
        }
        let (status, res) = app.get(&format!("/api/collections/{}", enc(n)), Some(&su)).await;
        if status != StatusCode::NOT_FOUND && status != StatusCode::BAD_REQUEST {
            failures.push(format!("view collection {n:?}: {status} {res}"));
        }
    }
    let hw = blog.id("HW").to_string();
    let ids = [
        format!("{hw}' OR '1'='1"),
        format!("{hw}\" OR \"1\"=\"1"),
        "x' OR 1=1 --".to_string(),
        "' UNION SELECT id FROM _superusers --".to_string(),
        "%".to_string(),
        "_______________".to_string(),
        "*".to_string(),
        "1 OR 1=1".to_string(),
    ];
    for id in &ids {
        let path = format!("/api/collections/posts/records/{}", enc(id));
        for (method, body) in [
            (Method::GET, None),
            (Method::PATCH, Some(json!({"title": "pwned"}))),
            (Method::DELETE, None),
        ] {
            let (status, res) = app.send(method.clone(), &path, Some(&su), body).await;
            if status != StatusCode::NOT_FOUND && status != StatusCode::BAD_REQUEST {
                failures.push(format!("{method} id {id:?}: {status} {res}"));
            }
        }
    }
    // Ids in bodies and relation values are data, not SQL.
    let (status, res) = app
        .post(
            "/api/collections/posts/records",
            Some(&su),
            json!({"title": "x", "author": "' OR 1=1 --", "tags": ["x') --"]}),
        )
        .await;
    if status != StatusCode::BAD_REQUEST {
        failures.push(format!("relation ids with SQL: {status} {res}"));
    }
    let (status, res) = app
        .post("/api/collections/posts/records", Some(&su), json!({"id": "abc' OR 1=1 --"}))
        .await;
    if status != StatusCode::BAD_REQUEST {
        failures.push(format!("custom id with SQL: {status} {res}"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let list = app.list("posts", &format!("filter={}", enc("title = 'pwned'")), Some(&su)).await;
    assert_eq!(list["totalItems"], 0);
    assert_intact(&app, &su).await;
    app.stop().await;
}

#[tokio::test]
async fn hostile_field_names_and_rules_in_collection_definitions() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    seed_blog(&app, &su).await;
    let mut failures = Vec::new();
    let defs = [
        json!({"name": "x1", "fields": [{"name": "a\"; DROP TABLE posts; --", "type": "text"}]}),
        json!({"name": "x2", "fields": [{"name": "a) ; DROP TABLE posts", "type": "text"}]}),
        json!({"name": "x3", "listRule": "1=1) OR (1=1"}),
        json!({"name": "x4", "listRule": "id = ''; DROP TABLE posts"}),
        json!({"name": "x5", "indexes": ["CREATE INDEX x ON posts (title); DROP TABLE posts"]}),
        json!({"name": "x6", "indexes": ["CREATE INDEX idx_evil ON posts (title)"]}),
        json!({"name": "x7", "fields": [{"name": "t", "type": "select", "values": ["a'); DROP TABLE posts; --"]}]}),
    ];
    for def in defs {
        let (status, res) = app.post("/api/collections", Some(&su), def.clone()).await;
        if status.is_server_error() {
            failures.push(format!("{def}: {status} {res}"));
        }
    }
    // A select value full of SQL is stored and matched as data.
    let (status, _) = app.get("/api/collections/x7", Some(&su)).await;
    if status == StatusCode::OK {
        let (status, res) = app
            .post(
                "/api/collections/x7/records",
                Some(&su),
                json!({"t": "a'); DROP TABLE posts; --"}),
            )
            .await;
        if status != StatusCode::OK {
            failures.push(format!("x7 record: {status} {res}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_intact(&app, &su).await;
    app.stop().await;
}

fn token_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("title".to_string()),
        Just("views".to_string()),
        Just("author.name".to_string()),
        Just("tags.org.name".to_string()),
        Just("comments_via_post.msg".to_string()),
        Just("meta.a.b".to_string()),
        Just("labels:each".to_string()),
        Just("tags:length".to_string()),
        Just("@request.auth.id".to_string()),
        Just("@collection.tags.name".to_string()),
        Just("@now".to_string()),
        Just("null".to_string()),
        Just("true".to_string()),
        Just("'x'".to_string()),
        Just("\"y\"".to_string()),
        Just("10".to_string()),
        Just("-1.5".to_string()),
        Just("strftime('%Y', pub)".to_string()),
        Just("geoDistance(1, 2, 3, 4)".to_string()),
        "[=!<>~?&|()]{1,3}",
        "[a-z_.:@]{1,12}",
        "'[^']{0,8}'",
        "[ -~]{1,6}",
        ".{0,4}",
    ]
}

fn filter_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(token_strategy(), 1..10).prop_map(|t| t.join(" "))
}

fn sort_strategy() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("title".to_string()),
        Just("-views".to_string()),
        Just("+published".to_string()),
        Just("@random".to_string()),
        Just("-@rowid".to_string()),
        Just("author.name".to_string()),
        Just("meta.x".to_string()),
        Just("tags.name".to_string()),
        Just("title:lower".to_string()),
        "[-+]?[a-z_.:@;() ]{0,10}",
        "[ -~]{0,8}",
    ];
    prop::collection::vec(key, 1..10).prop_map(|k| k.join(","))
}

/// Random filters and sorts, as a superuser and as a guest: never a 5xx, and every answer is a
/// well-formed list envelope or error envelope. 64 cases, each three HTTP requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_filters_and_sorts_never_500() {
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let app = spawn_app().await;
    let su = app.su_token().await;
    seed_blog(&app, &su).await;
    let mut runner =
        TestRunner::new(Config { cases: 64, failure_persistence: None, ..Config::default() });
    let handle = tokio::runtime::Handle::current();
    let strategy = (filter_strategy(), sort_strategy(), any::<bool>());
    let result = tokio::task::block_in_place(|| {
        runner.run(&strategy, |(filter, sort, guest)| {
            handle.block_on(async {
                let token = if guest { None } else { Some(su.as_str()) };
                for q in [
                    format!("filter={}", enc(&filter)),
                    format!("sort={}", enc(&sort)),
                    format!(
                        "filter={}&sort={}&expand=author,tags.org&perPage=3",
                        enc(&filter),
                        enc(&sort)
                    ),
                ] {
                    let (status, body) =
                        app.get(&format!("/api/collections/posts/records?{q}"), token).await;
                    prop_assert!(!status.is_server_error(), "{q}: {status} {body}");
                    if status == StatusCode::OK {
                        prop_assert!(
                            body["items"].is_array() && body["totalItems"].is_i64(),
                            "{q}: {body}"
                        );
                    } else {
                        prop_assert_eq!(
                            &body["status"],
                            &json!(status.as_u16()),
                            "envelope: {}",
                            q
                        );
                    }
                }
                Ok::<(), TestCaseError>(())
            })
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    assert_intact(&app, &su).await;
    app.stop().await;
}
