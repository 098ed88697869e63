//! `basalt migrate-db`, the real binary: a SQLite project seeded over HTTP (users with passwords,
//! relations, every kind of value, 10 000 posts) is copied into a fresh PostgreSQL database, twice;
//! a server on PostgreSQL then answers like the SQLite one did, old passwords and old tokens
//! included. Needs PostgreSQL (`pg_test_server` decides which server, or that the test skips).

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::files::file;
use crate::helpers::{enc, pluck, spawn_app_sqlite, spawn_app_with_db, TestApp, TestDb};
use crate::pg_test_server;

const BIN: &str = env!("CARGO_BIN_EXE_basalt");
const USERS: usize = 20;
const TAGS: usize = 30;
const POSTS: usize = 10_000;
const PASSWORD: &str = "old-password-123";

pub(crate) fn migrate_db(from: &str, to: &str) -> (Output, Duration) {
    let started = Instant::now();
    let out = Command::new(BIN)
        .args(["migrate-db", "--from", from, "--to", to])
        .env_remove("BASALT_DIR")
        .env_remove("BASALT_DB")
        .output()
        .expect("binary runs");
    (out, started.elapsed())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The summary line of `table`: `[source, target, inserted, definition, check]`.
fn summary_row(stdout: &str, table: &str) -> Vec<String> {
    let line = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(table))
        .unwrap_or_else(|| panic!("no summary line for {table} in:\n{stdout}"));
    line.split_whitespace().skip(1).map(str::to_string).collect()
}

fn post_body(i: usize, users: &[String], tags: &[String]) -> Value {
    let status = ["draft", "published", "archived"][i % 3];
    // Label k is set when bit k of i is: every combination, the empty one included.
    let labels: Vec<&str> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .filter(|(k, _)| (i >> k) & 1 == 1)
        .map(|(_, l)| *l)
        .collect();
    let mut body = json!({
        "title": if i % 17 == 0 { format!("Café ☕ «{i}»") } else { format!("Post {i:05}") },
        "author": users[i % users.len()],
        "tags": [tags[i % tags.len()], tags[(i * 7 + 3) % tags.len()]],
        "status": status,
        "labels": labels,
        "published": if i % 10 == 0 {
            String::new()
        } else {
            format!("2024-{:02}-{:02} {:02}:{:02}:00.000Z", 1 + i % 12, 1 + i % 28, i % 24, i % 60)
        },
        "featured": i % 4 == 0,
        "views": if i % 5 == 0 { json!((i % 1000) as f64 + 0.5) } else { json!((i * 37) % 1000) },
        "location": {"lon": (i % 360) as f64 - 180.0, "lat": ((i % 180) as f64 - 90.0) / 2.0},
    });
    if i % 7 != 0 {
        body["meta"] =
            json!({"n": i, "even": i % 2 == 0, "list": [i, "x", null], "s": format!("m{i}")});
    }
    body
}

/// Creates the posts over HTTP, 8 requests at a time.
async fn create_posts(app: &TestApp, su: &str, users: &[String], tags: &[String]) {
    let workers = 8;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (client, url, su) = (app.client.clone(), app.url.clone(), su.to_string());
        let (users, tags) = (users.to_vec(), tags.to_vec());
        tasks.push(tokio::spawn(async move {
            for i in (w..POSTS).step_by(workers) {
                let res = client
                    .post(format!("{url}/api/collections/posts/records"))
                    .header("Authorization", &su)
                    .json(&post_body(i, &users, &tags))
                    .send()
                    .await
                    .expect("request");
                if res.status() != StatusCode::OK {
                    panic!("post {i}: {} {}", res.status(), res.text().await.unwrap_or_default());
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
}

/// The queries whose answers must not change when the project moves to PostgreSQL.
fn queries() -> Vec<(&'static str, String)> {
    vec![
        (
            "posts",
            format!(
                "filter={}&sort={}&expand=author,tags&perPage=100&page=2",
                enc("(featured = true && views >= 500) || tags.name ?= 'tag 7'"),
                enc("-views,published,id")
            ),
        ),
        (
            "posts",
            format!(
                "filter={}&sort={}&perPage=40",
                enc("labels:each ?= 'b' && meta.n > 5000 && published >= '2024-06' && author.email ~ 'user1'"),
                enc("published,-id")
            ),
        ),
        // The default order is insertion order on both engines.
        ("posts", "perPage=50&page=37".into()),
        ("posts", format!("filter={}&perPage=60", enc("meta = null || gallery:length = 2"))),
        ("users", format!("sort={}&perPage=50&expand=favorite", enc("-email"))),
        ("tags", "perPage=100&sort=name".into()),
    ]
}

async fn answers(app: &TestApp, su: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for (coll, q) in queries() {
        out.push(app.list(coll, &q, Some(su)).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrate_db_moves_a_sqlite_project_to_postgres() {
    let Some(server) = pg_test_server::server("migrate-db into PostgreSQL") else { return };
    let mut app = spawn_app_sqlite().await;
    let su = app.su_token().await;

    // 20 users with passwords.
    let mut users = Vec::new();
    let mut user_tokens = Vec::new();
    for i in 0..USERS {
        let (id, token) = app.create_user(&format!("user{i}@example.com"), PASSWORD).await;
        users.push(id);
        user_tokens.push(token);
    }
    app.create_collection(
        &su,
        json!({"name": "tags", "listRule": "", "viewRule": "",
               "fields": [{"name": "name", "type": "text", "required": true}],
               "indexes": ["CREATE UNIQUE INDEX idx_tags_name ON tags (name)"]}),
    )
    .await;
    let mut tags = Vec::new();
    for i in 0..TAGS {
        tags.push(app.create_id(Some(&su), "tags", json!({"name": format!("tag {i}")})).await);
    }
    let tags_id = app.svc.schema().get("tags").expect("tags").id.clone();
    app.create_collection(
        &su,
        json!({
            "name": "posts", "listRule": "", "viewRule": "",
            "fields": [
                {"name": "title", "type": "text", "required": true},
                {"name": "author", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1},
                {"name": "tags", "type": "relation", "collectionId": tags_id, "maxSelect": 5},
                {"name": "status", "type": "select", "values": ["draft", "published", "archived"], "maxSelect": 1},
                {"name": "labels", "type": "select", "values": ["a", "b", "c"], "maxSelect": 3},
                {"name": "meta", "type": "json"},
                {"name": "published", "type": "date"},
                {"name": "featured", "type": "bool"},
                {"name": "views", "type": "number"},
                {"name": "cover", "type": "file", "maxSelect": 1},
                {"name": "gallery", "type": "file", "maxSelect": 4},
                {"name": "location", "type": "geoPoint"},
                {"name": "created", "type": "autodate", "onCreate": true},
                {"name": "updated", "type": "autodate", "onCreate": true, "onUpdate": true}
            ],
            "indexes": ["CREATE INDEX idx_posts_views ON posts (views)"]
        }),
    )
    .await;
    // `users` (copied first) gets a relation to `posts` (copied later).
    let (status, users_def) = app.get("/api/collections/users", Some(&su)).await;
    assert_eq!(status, StatusCode::OK);
    let posts_id = app.svc.schema().get("posts").expect("posts").id.clone();
    let mut fields = users_def["fields"].as_array().expect("fields").clone();
    fields.push(
        json!({"name": "favorite", "type": "relation", "collectionId": posts_id, "maxSelect": 1}),
    );
    let (status, body) =
        app.patch("/api/collections/users", Some(&su), json!({"fields": fields})).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let seeding = Instant::now();
    create_posts(&app, &su, &users, &tags).await;
    let seeding = seeding.elapsed();
    let some_posts = app.list("posts", "perPage=20&sort=id", Some(&su)).await;
    for (i, post) in pluck(&some_posts, "id").iter().enumerate() {
        let (status, body) = app
            .patch(
                &format!("/api/collections/users/records/{}", users[i]),
                Some(&su),
                json!({"favorite": post}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // File names are only ever the record's own uploads (PocketBase refuses any other name).
        let mut parts = vec![file("cover", "cover.png", b"c")];
        if i % 3 == 0 {
            parts.extend([file("gallery", "g1.jpg", b"1"), file("gallery", "g2.webp", b"2")]);
        }
        let (status, body) = app
            .patch_form(&format!("/api/collections/posts/records/{post}"), Some(&su), &parts)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let before = answers(&app, &su).await;
    assert_eq!(before[0]["totalItems"].as_i64().map(|n| n > 100), Some(true), "{}", before[0]);
    assert_eq!(before[1]["items"].as_array().map(|a| !a.is_empty()), Some(true), "{}", before[1]);
    let (status, _) = app.get("/api/health", None).await;
    assert_eq!(status, StatusCode::OK);

    // Keep the data directory; stop the server.
    let dir = std::mem::replace(&mut app.dir, tempfile::tempdir().expect("tmp"));
    app.stop().await;

    let target = TestDb::create(&server).await;
    let url = target.url();
    let from = dir.path().to_str().expect("utf8").to_string();
    let (out, first) = migrate_db(&from, &url);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{}", text(&out.stderr));
    assert!(stdout.contains("All 13 tables match"), "{stdout}");
    let n = POSTS.to_string();
    assert_eq!(summary_row(&stdout, "posts"), [n.as_str(), &n, &n, "created", "ok"]);
    assert_eq!(summary_row(&stdout, "users")[..3], ["20", "20", "20"]);
    assert_eq!(summary_row(&stdout, "_collections")[..2], ["8", "8"]);
    // Login state (MFA sessions, codes, remembered devices) is not copied.
    assert_eq!(
        summary_row(&stdout, "_authOrigins")[2..],
        ["-", "created", "rows", "not", "copied"]
    );
    assert!(
        text(&out.stderr).contains(&format!("posts {}{n}/{n}", " ".repeat(19))),
        "{}",
        text(&out.stderr)
    );

    // Again: nothing duplicated, nothing failed.
    let (out, second) = migrate_db(&format!("sqlite://{}/data.db", dir.path().display()), &url);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{}", text(&out.stderr));
    assert_eq!(summary_row(&stdout, "posts"), [n.as_str(), &n, "0", "unchanged", "ok"]);
    assert_eq!(summary_row(&stdout, "users"), ["20", "20", "0", "unchanged", "ok"]);
    eprintln!(
        "seeding {POSTS} posts over HTTP: {seeding:.1?}; migrate-db: {first:.1?}, again: {second:.1?}"
    );

    // Relation columns have no foreign keys, so the copy order cannot break them.
    {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
        let fks: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.table_constraints WHERE constraint_type = 'FOREIGN KEY'",
        )
        .fetch_one(&mut conn)
        .await
        .expect("count");
        assert_eq!(fks, 0);
    }

    // A server on PostgreSQL answers as the SQLite one did.
    let pg = spawn_app_with_db(Some(url.clone())).await;
    let pg_su = pg.su_token().await;
    let after = answers(&pg, &pg_su).await;
    for (((coll, q), a), b) in queries().iter().zip(&before).zip(&after) {
        assert_eq!(a, b, "{coll}?{q} differs after the move");
    }
    for (coll, total) in [("posts", POSTS), ("users", USERS), ("tags", TAGS)] {
        let list = pg.list(coll, "perPage=1", Some(&pg_su)).await;
        assert_eq!(list["totalItems"], json!(total), "{coll}");
    }
    // Old passwords log in; a token issued by the SQLite server is still accepted.
    pg.login("users", "user3@example.com", PASSWORD).await;
    let (status, body) =
        pg.post("/api/collections/users/auth-refresh", Some(&user_tokens[5]), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["record"]["id"], json!(users[5]));
    let (status, body) = pg
        .get(&format!("/api/collections/users/records/{}", users[7]), Some(&user_tokens[7]))
        .await;
    assert_eq!((status, &body["email"]), (StatusCode::OK, &json!("user7@example.com")), "{body}");
    // And it keeps working: new records follow the copied ones.
    let id = pg.create_id(Some(&pg_su), "posts", post_body(POSTS, &users, &tags)).await;
    let last = pg.list("posts", &format!("perPage=1&page={}", POSTS + 1), Some(&pg_su)).await;
    assert_eq!(pluck(&last, "id"), [id]);
    pg.stop().await;

    // The target now has a post the source lacks: the count check fails the command. (The
    // logins above remembered their devices on the target: login state is not copied, so
    // that is no conflict.)
    let (out, _) = migrate_db(&from, &url);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\nstderr:\n{}", text(&out.stderr));
    assert!(stdout.contains("posts"), "stdout:\n{stdout}\nstderr:\n{}", text(&out.stderr));
    let more = (POSTS + 1).to_string();
    assert_eq!(summary_row(&stdout, "posts"), [n.as_str(), &more, "0", "unchanged", "MISMATCH"]);
    assert!(
        text(&out.stderr)
            .contains(&format!("row counts differ: posts (source {n}, target {more})")),
        "{}",
        text(&out.stderr)
    );
    drop(target);
}

#[test]
fn migrate_db_refuses_a_missing_source() {
    let tmp = tempfile::tempdir().expect("tmp");
    let missing = tmp.path().join("does-not-exist");
    let missing_s = missing.to_str().expect("utf8").to_string();
    let empty = tmp.path().to_str().expect("utf8").to_string();
    for (from, says) in [
        (missing_s.clone(), "does not exist"),
        (format!("sqlite://{missing_s}/data.db"), "does not exist"),
        (empty, "has no data.db"),
        ("mysql://localhost/x".to_string(), "a sqlite:// URL"),
    ] {
        // The source is checked first: the target is never contacted.
        let (out, _) = migrate_db(&from, "postgres://nobody@127.0.0.1:1/none");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{from}: {stderr}");
        assert!(stderr.contains(says), "{from}: {stderr}");
    }
    assert!(!missing.exists(), "nothing was created");
    assert!(!Path::new(&tmp.path().join("data.db")).exists(), "nothing was created");
}
