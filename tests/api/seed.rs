//! The blog dataset of the contract's §6 capture (users, orgs, tags, posts, comments), used by the
//! query, security and rules tests. Expected results in those tests were checked against
//! PocketBase 0.40.6 seeded with exactly this data.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::helpers::TestApp;

/// Post titles and the short codes the tests use.
pub const POSTS: [(&str, &str); 5] = [
    ("Hello World", "HW"),
    ("Rust tips", "RT"),
    ("JS tricks", "JS"),
    ("go away", "GA"),
    ("hello again", "HA"),
];

/// Ids of the seeded records by short name (`u1`, `u2`, `acme`, `globex`, `js`, `rust`, `go`,
/// `HW`, `RT`, `JS`, `GA`, `HA`), plus tokens of the two users.
pub struct Blog {
    pub ids: HashMap<String, String>,
    pub u1_token: String,
    pub u2_token: String,
}

impl Blog {
    pub fn id(&self, key: &str) -> &str {
        self.ids.get(key).unwrap_or_else(|| panic!("no seeded id {key}"))
    }

    /// Replaces `{key}` placeholders with seeded ids.
    pub fn fill(&self, s: &str) -> String {
        let mut out = s.to_string();
        for (k, v) in &self.ids {
            out = out.replace(&format!("{{{k}}}"), v);
        }
        out
    }
}

/// Short codes of the posts in a list response, in response order.
pub fn codes(list: &Value) -> Vec<&'static str> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|it| {
            let title = it["title"].as_str().unwrap_or_else(|| panic!("no title: {it}"));
            POSTS
                .iter()
                .find(|(t, _)| *t == title)
                .map(|(_, c)| *c)
                .unwrap_or_else(|| panic!("unknown post {title}"))
        })
        .collect()
}

/// Like `codes`, sorted.
pub fn codes_sorted(list: &Value) -> Vec<&'static str> {
    let mut v = codes(list);
    v.sort_unstable();
    v
}

/// Creates the collections and records; `posts`, `tags`, `orgs`, `comments` are public
/// (list/view `""`), `users` keeps its default owner-only rules.
pub async fn seed_blog(app: &TestApp, su: &str) -> Blog {
    let orgs = app
        .create_collection(
            su,
            json!({"name": "orgs", "listRule": "", "viewRule": "", "fields": [{"name": "name", "type": "text"}]}),
        )
        .await;
    let tags = app
        .create_collection(
            su,
            json!({"name": "tags", "listRule": "", "viewRule": "", "fields": [
                {"name": "name", "type": "text"},
                {"name": "org", "type": "relation", "collectionId": orgs["id"], "maxSelect": 1}]}),
        )
        .await;
    let posts = app
        .create_collection(
            su,
            json!({"name": "posts", "listRule": "", "viewRule": "", "fields": [
                {"name": "title", "type": "text"},
                {"name": "views", "type": "number"},
                {"name": "published", "type": "bool"},
                {"name": "author", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1},
                {"name": "tags", "type": "relation", "collectionId": tags["id"], "maxSelect": 5},
                {"name": "cat", "type": "select", "values": ["news", "tech", "misc"], "maxSelect": 1},
                {"name": "labels", "type": "select", "values": ["a", "b", "c"], "maxSelect": 3},
                {"name": "pub", "type": "date"},
                {"name": "meta", "type": "json"},
                {"name": "body", "type": "editor"},
                {"name": "secret", "type": "text", "hidden": true},
                {"name": "created", "type": "autodate", "onCreate": true},
                {"name": "updated", "type": "autodate", "onCreate": true, "onUpdate": true}]}),
        )
        .await;
    app.create_collection(
        su,
        json!({"name": "comments", "listRule": "", "viewRule": "", "fields": [
            {"name": "msg", "type": "text"},
            {"name": "post", "type": "relation", "collectionId": posts["id"], "maxSelect": 1}]}),
    )
    .await;
    let mut ids = HashMap::new();
    let pw = "password123";
    let user = |email: &str, name: &str, visible: bool| json!({"email": email, "password": pw, "passwordConfirm": pw, "name": name, "emailVisibility": visible});
    let u1 = app.create_id(Some(su), "users", user("u1@example.com", "User One", false)).await;
    let u2 = app.create_id(Some(su), "users", user("u2@example.com", "User Two", true)).await;
    let acme = app.create_id(Some(su), "orgs", json!({"name": "Acme"})).await;
    let globex = app.create_id(Some(su), "orgs", json!({"name": "Globex"})).await;
    let js = app.create_id(Some(su), "tags", json!({"name": "js", "org": acme})).await;
    let rust = app.create_id(Some(su), "tags", json!({"name": "rust", "org": acme})).await;
    let go = app.create_id(Some(su), "tags", json!({"name": "go", "org": globex})).await;
    let post_bodies = [
        json!({"title": "Hello World", "views": 10, "published": true, "author": u1, "tags": [js, rust],
               "cat": "news", "labels": ["a"], "pub": "2024-03-01 10:00:00.000Z", "meta": {"a": {"b": 1}, "x": 5},
               "body": "<p>Hello <b>bold</b> world, this is long</p>", "secret": "s1"}),
        json!({"title": "Rust tips", "views": 50, "published": true, "author": u2, "tags": [rust],
               "cat": "tech", "labels": ["a", "b"], "pub": "2024-06-15 12:00:00.000Z", "meta": {"a": {"b": 2}, "x": 1},
               "secret": "s2"}),
        json!({"title": "JS tricks", "views": 5, "published": false, "author": u1, "tags": [js],
               "cat": "tech", "labels": ["b"], "pub": "2025-01-01 00:00:00.000Z", "meta": {"y": "s"}}),
        json!({"title": "go away", "views": 0, "published": false}),
        json!({"title": "hello again", "views": 100, "published": true, "author": u2, "tags": [go],
               "cat": "misc", "labels": ["b", "c"], "pub": "2023-12-31 23:00:00.000Z", "meta": {"a": {"b": 3}}}),
    ];
    for ((_, code), body) in POSTS.iter().zip(post_bodies) {
        ids.insert(code.to_string(), app.create_id(Some(su), "posts", body).await);
    }
    for (msg, post) in [("c00", "HW"), ("c11", "RT"), ("c12", "RT")] {
        let post = ids[post].clone();
        ids.insert(
            msg.to_string(),
            app.create_id(Some(su), "comments", json!({"msg": msg, "post": post})).await,
        );
    }
    for (k, v) in [
        ("u1", u1),
        ("u2", u2),
        ("acme", acme),
        ("globex", globex),
        ("js", js),
        ("rust", rust),
        ("go", go),
    ] {
        ids.insert(k.to_string(), v);
    }
    let u1_token = app.login("users", "u1@example.com", pw).await;
    let u2_token = app.login("users", "u2@example.com", pw).await;
    Blog { ids, u1_token, u2_token }
}
