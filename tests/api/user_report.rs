//! Regressions from trying Basalt side by side with PocketBase 0.40.6 as a user and as a hostile
//! client would (issue #9): hidden fields written by clients (item 3), `@request.body` rules
//! bypassed with modifier keys (item 4), hidden relations expanded by guests (item 7), and the
//! auth and expand differences of item 9. Each expectation is what PocketBase answered to the
//! same requests (probes in `tests/probes/`), except where a comment says Basalt does better.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

async fn open_users(app: &TestApp, su: &str) {
    let (status, body) = app
        .patch(
            "/api/collections/users",
            Some(su),
            json!({"createRule": "", "listRule": "", "viewRule": ""}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn su_view(app: &TestApp, su: &str, coll: &str, id: &str) -> Value {
    let (status, body) = app.get(&format!("/api/collections/{coll}/records/{id}"), Some(su)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Item 3: a hidden field is silently ignored when a non-superuser writes it, in every spelling,
/// on create, update and sign-up; rules do not see it in `@request.body`; superusers write it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_cannot_write_hidden_fields() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    app.create_collection(
        &su,
        json!({"name": "posts", "createRule": "", "updateRule": "", "viewRule": "", "listRule": "",
               "fields": [{"name": "t", "type": "text"},
                          {"name": "secret", "type": "text", "hidden": true},
                          {"name": "n", "type": "number", "hidden": true},
                          {"name": "tags", "type": "select", "values": ["a", "b"], "maxSelect": 2, "hidden": true}]}),
    )
    .await;
    let rec = app
        .create_record(None, "posts", json!({"t": "x", "secret": "s1", "n": 5, "tags+": "a"}))
        .await;
    let id = rec["id"].as_str().expect("id");
    assert_eq!(rec.get("secret"), None, "hidden fields are not rendered: {rec}");
    let stored = su_view(&app, &su, "posts", id).await;
    assert_eq!(
        (&stored["secret"], &stored["n"], &stored["tags"]),
        (&json!(""), &json!(0), &json!([]))
    );

    let path = format!("/api/collections/posts/records/{id}");
    for body in [
        json!({"t": "y", "secret": "s2"}),
        json!({"n+": 3}),
        json!({"n-": 1}),
        json!({"tags": ["a"]}),
        json!({"+tags": "b"}),
        json!({"tags-": "a"}),
    ] {
        let (status, out) = app.patch(&path, None, body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}: {out}");
        let stored = su_view(&app, &su, "posts", id).await;
        assert_eq!(
            (&stored["secret"], &stored["n"], &stored["tags"]),
            (&json!(""), &json!(0), &json!([])),
            "{body}"
        );
    }
    // Superusers may write hidden fields.
    let (status, out) = app.patch(&path, Some(&su), json!({"secret": "s3", "n+": 2})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!((&out["secret"], &out["n"]), (&json!("s3"), &json!(2)));

    // The rule does not see a hidden field in the body either (PocketBase: 200).
    app.patch(
        "/api/collections/posts",
        Some(&su),
        json!({"updateRule": "@request.body.secret:isset = false"}),
    )
    .await;
    let (status, out) = app.patch(&path, None, json!({"secret": "zz", "t": "z"})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(su_view(&app, &su, "posts", id).await["secret"], json!("s3"));

    // Sign-up and self-update of an auth record.
    app.patch(
        "/api/collections/users",
        Some(&su),
        json!({"createRule": "", "fields": [{"name": "role", "type": "text", "hidden": true}]}),
    )
    .await;
    let (uid, token) = app
        .create_auth_record("users", None, json!({"role": "admin"}), "u1@example.com", "12345678x")
        .await;
    assert_eq!(su_view(&app, &su, "users", &uid).await["role"], json!(""));
    let (status, out) = app
        .patch(
            &format!("/api/collections/users/records/{uid}"),
            Some(&token),
            json!({"role": "owner"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(su_view(&app, &su, "users", &uid).await["role"], json!(""));
    // The password (a hidden field) stays writable at sign-up: the login above worked.
    app.stop().await;
}

/// Item 4: `@request.body.<field>` (plain, `:isset`, `:changed`, `:length`, `:each`) sees the
/// value a modifier key produces, however the client spelled the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_rules_see_modifier_keys() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    open_users(&app, &su).await;
    let (u0, t0) = app.create_user("u0@example.com", "12345678x").await;
    let (u1, _t1) = app.create_user("u1@example.com", "12345678x").await;
    app.create_collection(
        &su,
        json!({"name": "docs", "listRule": "", "viewRule": "",
               "createRule": "@request.body.owner = @request.auth.id",
               "updateRule": "owner = @request.auth.id && (@request.body.owner:isset = false || @request.body.owner = @request.auth.id)",
               "fields": [{"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1},
                          {"name": "tags", "type": "select", "values": ["a", "b", "c"], "maxSelect": 3},
                          {"name": "n", "type": "number"}]}),
    )
    .await;
    let doc = app.create_id(Some(&t0), "docs", json!({"owner": u0})).await;
    let path = format!("/api/collections/docs/records/{doc}");

    // (body, PocketBase's status, owner afterwards). A single relation keeps the last id.
    let cases = [
        (json!({"owner": u1}), 404, &u0),
        (json!({"owner+": u1}), 404, &u0),
        (json!({"+owner": u1}), 200, &u0),
        (json!({"owner-": u1}), 200, &u0),
        (json!({"owner-": u0}), 404, &u0),
        (json!({"owner": u0, "owner+": u1}), 404, &u0),
    ];
    for (body, status, owner) in cases {
        let (got, out) = app.patch(&path, Some(&t0), body.clone()).await;
        assert_eq!(got.as_u16(), status, "{body}: {out}");
        assert_eq!(&su_view(&app, &su, "docs", &doc).await["owner"], &json!(owner), "{body}");
    }
    // Create: the rule sees the resolved owner.
    for (body, status) in [
        (json!({"owner+": u0}), 200),
        (json!({"owner+": u1}), 400),
        (json!({"+owner": u0}), 200),
        (json!({"+owner": u1}), 400),
        (json!({"owner-": u0}), 400),
    ] {
        let (got, out) = app.post("/api/collections/docs/records", Some(&t0), body.clone()).await;
        assert_eq!(got.as_u16(), status, "create {body}: {out}");
    }

    // :length, :each and :changed on modified multi-value and number fields.
    app.patch(
        "/api/collections/docs",
        Some(&su),
        json!({"updateRule": "@request.body.tags:length <= 2 && @request.body.tags:each != 'c' && @request.body.n:changed = false"}),
    )
    .await;
    let cases = [
        (json!({"tags+": "a"}), 200, json!(["a"]), 0),
        (json!({"tags+": ["a", "b"]}), 200, json!(["a", "b"]), 0),
        (json!({"tags+": ["a", "b", "c"]}), 404, json!(["a", "b"]), 0),
        (json!({"+tags": "c"}), 404, json!(["a", "b"]), 0),
        (json!({"tags-": "a"}), 200, json!(["b"]), 0),
        (json!({"n+": 1}), 404, json!(["b"]), 0),
        (json!({"n+": 0}), 200, json!(["b"]), 0),
        (json!({"n-": 5}), 404, json!(["b"]), 0),
        (json!({"tags+": "b", "tags": ["a"]}), 200, json!(["a", "b"]), 0),
    ];
    for (body, status, tags, n) in cases {
        let (got, out) = app.patch(&path, Some(&t0), body.clone()).await;
        assert_eq!(got.as_u16(), status, "{body}: {out}");
        let stored = su_view(&app, &su, "docs", &doc).await;
        assert_eq!((&stored["tags"], &stored["n"]), (&tags, &json!(n)), "{body}");
    }
    // :isset sees `n+`/`n-` but not `+n` (numbers take no prepend: the key is ignored).
    app.patch(
        "/api/collections/docs",
        Some(&su),
        json!({"updateRule": "@request.body.n:isset = true && @request.body.n > 3"}),
    )
    .await;
    for (body, status, n) in [
        (json!({"n+": 5}), 200, 5),
        (json!({"n+": 1}), 200, 6),
        (json!({"n-": 100}), 404, 6),
        (json!({"+n": 10}), 404, 6),
    ] {
        let (got, out) = app.patch(&path, Some(&t0), body.clone()).await;
        assert_eq!(got.as_u16(), status, "{body}: {out}");
        assert_eq!(su_view(&app, &su, "docs", &doc).await["n"], json!(n), "{body}");
    }
    app.stop().await;
}

async fn comments_setup(app: &TestApp, su: &str) -> (String, String) {
    let posts = app
        .create_collection(
            su,
            json!({"name": "posts", "listRule": "", "viewRule": "", "fields": [{"name": "t", "type": "text"}]}),
        )
        .await["id"]
        .clone();
    app.create_collection(
        su,
        json!({"name": "comments", "listRule": "", "viewRule": "", "fields": [
            {"name": "post", "type": "relation", "collectionId": posts, "maxSelect": 1},
            {"name": "hpost", "type": "relation", "collectionId": posts, "maxSelect": 1, "hidden": true},
            {"name": "body", "type": "text"}]}),
    )
    .await;
    let p = app.create_id(Some(su), "posts", json!({"t": "hello"})).await;
    let c = app.create_id(Some(su), "comments", json!({"post": p, "hpost": p, "body": "c1"})).await;
    (p, c)
}

/// Item 7 (Basalt does better than PocketBase 0.40.6, which expands hidden relations for
/// anyone): only superusers expand, filter or sort through a hidden relation field, including
/// the back-relation over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_relations_are_for_superusers_only() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let (p, c) = comments_setup(&app, &su).await;
    let (_, guest) =
        app.get(&format!("/api/collections/comments/records/{c}?expand=hpost,post"), None).await;
    assert_eq!(guest["expand"].get("hpost"), None, "{guest}");
    assert_eq!(guest["expand"]["post"]["id"], json!(p), "{guest}");
    let (_, sub) =
        app.get(&format!("/api/collections/comments/records/{c}?expand=hpost"), Some(&su)).await;
    assert_eq!(sub["expand"]["hpost"]["id"], json!(p), "{sub}");

    let (_, guest) = app
        .get(&format!("/api/collections/posts/records/{p}?expand=comments_via_hpost"), None)
        .await;
    assert_eq!(guest.get("expand").and_then(|e| e.get("comments_via_hpost")), None, "{guest}");
    let (_, sub) = app
        .get(&format!("/api/collections/posts/records/{p}?expand=comments_via_hpost"), Some(&su))
        .await;
    assert_eq!(sub["expand"]["comments_via_hpost"][0]["id"], json!(c), "{sub}");

    for q in ["filter=hpost.t%3D'hello'", "filter=hpost%3D'x'", "sort=hpost", "sort=hpost.t"] {
        let (status, body) = app.get(&format!("/api/collections/comments/records?{q}"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {body}");
        let (status, body) =
            app.get(&format!("/api/collections/comments/records?{q}"), Some(&su)).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
    }
    app.stop().await;
}

/// Item 9: the deprecated back-relation form `collection(field)` still expands, under the key as
/// written, by collection name or id, nested too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_back_relation_expand() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let (p, c) = comments_setup(&app, &su).await;
    let (_, body) =
        app.get(&format!("/api/collections/posts/records/{p}?expand=comments(post)"), None).await;
    assert_eq!(body["expand"]["comments(post)"][0]["id"], json!(c), "{body}");
    let comments_id = app.get("/api/collections/comments", Some(&su)).await.1["id"].clone();
    let key = format!("{}(post)", comments_id.as_str().expect("id"));
    let (_, body) =
        app.get(&format!("/api/collections/posts/records/{p}?expand={key}"), None).await;
    assert_eq!(body["expand"][&key][0]["id"], json!(c), "{body}");
    let list = app.list("posts", "expand=comments(post).post", None).await;
    assert_eq!(list["items"][0]["expand"]["comments(post)"][0]["expand"]["post"]["id"], json!(p));
    // Unknown collections or non-relation fields expand nothing, like PocketBase.
    for key in ["nope(post)", "comments(body)", "comments(hpost)"] {
        let (status, body) =
            app.get(&format!("/api/collections/posts/records/{p}?expand={key}"), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body.get("expand").and_then(|e| e.get(key)), None, "{key}: {body}");
    }
    app.stop().await;
}

/// Item 9: a login the `authRule` refuses is PocketBase's 403; `fields` applies to the whole
/// auth answer on auth-with-password and auth-refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_rule_refusal_and_fields_on_auth_answers() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    open_users(&app, &su).await;
    let (uid, token) = app.create_user("u0@example.com", "12345678x").await;
    let login = |q: &'static str, password: &'static str| {
        let app = &app;
        async move {
            app.post(
                &format!("/api/collections/users/auth-with-password{q}"),
                None,
                json!({"identity": "u0@example.com", "password": password}),
            )
            .await
        }
    };
    app.patch("/api/collections/users", Some(&su), json!({"authRule": "verified = true"})).await;
    let (status, body) = login("", "12345678x").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["message"],
        json!("The request doesn't satisfy the collection requirements to authenticate.")
    );
    let (status, body) = login("", "wrong-password").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) =
        app.post("/api/collections/users/auth-refresh", Some(&token), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // `null`: nobody logs in, unless a superuser sends the request.
    app.patch("/api/collections/users", Some(&su), json!({"authRule": null})).await;
    let (status, _) = login("", "12345678x").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app
        .post(
            "/api/collections/users/auth-with-password",
            Some(&su),
            json!({"identity": "u0@example.com", "password": "12345678x"}),
        )
        .await;
    assert_eq!((status, &body["record"]["id"]), (StatusCode::OK, &json!(uid)), "{body}");
    app.patch("/api/collections/users", Some(&su), json!({"authRule": ""})).await;

    let (_, body) = login("?fields=token", "12345678x").await;
    assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{body}");
    assert!(body["token"].is_string());
    let (_, body) = login("?fields=record.email,token", "12345678x").await;
    assert_eq!(body["record"], json!({"email": "u0@example.com"}), "{body}");
    assert!(body["token"].is_string());
    let (_, body) = login("?fields=record", "12345678x").await;
    assert_eq!(body.get("token"), None, "{body}");
    assert_eq!(body["record"]["id"], json!(uid));
    let (_, body) = login("?fields=*", "12345678x").await;
    assert!(body["token"].is_string() && body["record"]["id"] == json!(uid), "{body}");
    let (_, body) = app
        .post("/api/collections/users/auth-refresh?fields=record.id", Some(&token), json!({}))
        .await;
    assert_eq!(body, json!({"record": {"id": uid}}));
    app.stop().await;
}

/// Item 9: `_superusers` has PocketBase's `created`/`updated` autodate fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn superusers_have_autodates() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let (_, coll) = app.get("/api/collections/_superusers", Some(&su)).await;
    let names: Vec<&str> = coll["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "id",
            "password",
            "tokenKey",
            "email",
            "emailVisibility",
            "verified",
            "created",
            "updated"
        ]
    );
    let created = &coll["fields"][6];
    assert_eq!(
        (&created["type"], &created["id"], &created["system"]),
        (&json!("autodate"), &json!("autodate2990389176"), &json!(true))
    );
    let list = app.list("_superusers", "fields=created,updated,email", Some(&su)).await;
    let item = &list["items"][0];
    assert!(item["created"].as_str().is_some_and(|d| d.len() == 24), "{item}");
    assert!(item["updated"].as_str().is_some_and(|d| d.len() == 24), "{item}");
    app.stop().await;
}
