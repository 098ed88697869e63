//! API rules: scenario tables (guest / owner / other user / superuser × every action) over an
//! owner-rule collection, an all-null and an all-"" collection (contract §7), then rules using
//! relation paths, `@request.body.*:isset`/`:changed`, headers and method, and how related
//! collections' rules limit expand and relation filters, and who may use `@request.*` and
//! `@collection.*` in filters and sorts. Checked against PocketBase 0.40.6.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{enc, spawn_app, TestApp};

#[derive(Clone, Copy, Debug)]
enum Who {
    Guest,
    Owner,
    Other,
    Su,
}

struct Case {
    who: Who,
    method: Method,
    /// `{r1}` (owned by Owner), `{r2}` (owned by Other), `{owner}`, `{other}` are replaced.
    path: &'static str,
    body: Option<Value>,
    status: u16,
    /// For lists: the expected `totalItems`.
    count: Option<i64>,
}

fn case(who: Who, method: Method, path: &'static str, body: Option<Value>, status: u16) -> Case {
    Case { who, method, path, body, status, count: None }
}

fn list(who: Who, path: &'static str, status: u16, count: Option<i64>) -> Case {
    Case { who, method: Method::GET, path, body: None, status, count }
}

struct World {
    su: String,
    owner: (String, String),
    other: (String, String),
}

async fn world(app: &TestApp) -> World {
    let su = app.su_token().await;
    let owner = app.create_user("owner@example.com", "password123").await;
    let other = app.create_user("other@example.com", "password123").await;
    World { su, owner, other }
}

/// Creates `name` with the given rules and two records (r1 owned by Owner, r2 by Other).
async fn rules_collection(app: &TestApp, w: &World, name: &str, rules: Value) -> (String, String) {
    let mut def = json!({"name": name, "fields": [
        {"name": "title", "type": "text"},
        {"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1}]});
    for (k, v) in rules.as_object().expect("rules") {
        def[k] = v.clone();
    }
    app.create_collection(&w.su, def).await;
    let r1 = app.create_id(Some(&w.su), name, json!({"title": "r1", "owner": w.owner.0})).await;
    let r2 = app.create_id(Some(&w.su), name, json!({"title": "r2", "owner": w.other.0})).await;
    (r1, r2)
}

async fn run_table(app: &TestApp, w: &World, ids: &(String, String), cases: Vec<Case>) {
    let fill = |s: &str| {
        s.replace("{r1}", &ids.0)
            .replace("{r2}", &ids.1)
            .replace("{owner}", &w.owner.0)
            .replace("{other}", &w.other.0)
    };
    let mut failures = Vec::new();
    for c in &cases {
        let token = match c.who {
            Who::Guest => None,
            Who::Owner => Some(w.owner.1.as_str()),
            Who::Other => Some(w.other.1.as_str()),
            Who::Su => Some(w.su.as_str()),
        };
        let path = fill(c.path);
        let body =
            c.body.as_ref().map(|b| serde_json::from_str(&fill(&b.to_string())).expect("json"));
        let (status, res) = app.send(c.method.clone(), &path, token, body).await;
        let count_ok = c.count.is_none_or(|n| res["totalItems"] == n);
        if status.as_u16() != c.status || !count_ok {
            failures.push(format!(
                "{:?} {} {path}: want {} (count {:?}), got {status} {res}",
                c.who, c.method, c.status, c.count
            ));
        }
        if status.as_u16() >= 400 && res["status"] != status.as_u16() {
            failures.push(format!("{:?} {} {path}: not an error envelope: {res}", c.who, c.method));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn owner_rules_table() {
    use Method as M;
    use Who::*;
    let app = spawn_app().await;
    let w = world(&app).await;
    let own = "owner = @request.auth.id";
    let ids = rules_collection(
        &app,
        &w,
        "owned",
        json!({"listRule": own, "viewRule": own, "updateRule": own, "deleteRule": own,
               "createRule": "@request.auth.id != '' && @request.body.owner = @request.auth.id"}),
    )
    .await;
    let p = "/api/collections/owned/records";
    let r1 = "/api/collections/owned/records/{r1}";
    let r2 = "/api/collections/owned/records/{r2}";
    let cases = vec![
        list(Guest, p, 200, Some(0)),
        list(Owner, p, 200, Some(1)),
        list(Other, p, 200, Some(1)),
        list(Su, p, 200, Some(2)),
        list(Guest, "/api/collections/owned/records?filter=title%3D'r1'", 200, Some(0)),
        list(Owner, "/api/collections/owned/records?filter=title%3D'r2'", 200, Some(0)),
        case(Guest, M::GET, r1, None, 404),
        case(Owner, M::GET, r1, None, 200),
        case(Other, M::GET, r1, None, 404),
        case(Su, M::GET, r1, None, 200),
        case(Guest, M::POST, p, Some(json!({"title": "g", "owner": "{owner}"})), 400),
        case(Owner, M::POST, p, Some(json!({"title": "o", "owner": "{owner}"})), 200),
        case(Owner, M::POST, p, Some(json!({"title": "o", "owner": "{other}"})), 400),
        case(Owner, M::POST, p, Some(json!({"title": "o"})), 400),
        case(Other, M::POST, p, Some(json!({"title": "x", "owner": "{owner}"})), 400),
        case(Su, M::POST, p, Some(json!({"title": "s", "owner": "{other}"})), 200),
        list(Owner, p, 200, Some(2)),
        list(Su, p, 200, Some(4)),
        case(Guest, M::PATCH, r1, Some(json!({"title": "g"})), 404),
        case(Other, M::PATCH, r1, Some(json!({"title": "x"})), 404),
        case(Owner, M::PATCH, r1, Some(json!({"title": "o2"})), 200),
        case(Su, M::PATCH, r1, Some(json!({"title": "s2"})), 200),
        case(Owner, M::GET, r1, None, 200),
        case(Guest, M::DELETE, r1, None, 404),
        case(Other, M::DELETE, r1, None, 404),
        case(Owner, M::GET, r1, None, 200),
        case(Owner, M::DELETE, r1, None, 204),
        case(Owner, M::GET, r1, None, 404),
        case(Owner, M::DELETE, r2, None, 404),
        case(Su, M::DELETE, r2, None, 204),
        list(Su, p, 200, Some(2)),
    ];
    run_table(&app, &w, &ids, cases).await;
    // The rejected writes changed nothing.
    let (_, all) = app.get("/api/collections/owned/records?sort=title", Some(&w.su)).await;
    let titles: Vec<&str> = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|r| r["title"].as_str())
        .collect();
    assert_eq!(titles, ["o", "s"]);
    app.stop().await;
}

#[tokio::test]
async fn null_rules_table() {
    use Method as M;
    use Who::*;
    let app = spawn_app().await;
    let w = world(&app).await;
    let ids = rules_collection(&app, &w, "locked", json!({})).await;
    let p = "/api/collections/locked/records";
    let r1 = "/api/collections/locked/records/{r1}";
    let mut cases = Vec::new();
    for who in [Guest, Owner, Other] {
        cases.push(list(who, p, 403, None));
        cases.push(case(who, M::GET, r1, None, 403));
        cases.push(case(who, M::POST, p, Some(json!({"title": "x", "owner": "{owner}"})), 403));
        cases.push(case(who, M::PATCH, r1, Some(json!({"title": "x"})), 403));
        cases.push(case(who, M::DELETE, r1, None, 403));
        // Even a missing id is 403, not 404: the rule is checked first.
        cases.push(case(who, M::GET, "/api/collections/locked/records/missingmissing1", None, 403));
    }
    cases.extend([
        list(Su, p, 200, Some(2)),
        case(Su, M::GET, r1, None, 200),
        case(Su, M::POST, p, Some(json!({"title": "s"})), 200),
        case(Su, M::PATCH, r1, Some(json!({"title": "s2"})), 200),
        case(Su, M::DELETE, r1, None, 204),
        list(Su, p, 200, Some(2)),
    ]);
    run_table(&app, &w, &ids, cases).await;
    let (_, body) = app.get(p, None).await;
    assert_eq!(body["message"], "Only superusers can perform this action.");
    app.stop().await;
}

#[tokio::test]
async fn empty_rules_table() {
    use Method as M;
    use Who::*;
    let app = spawn_app().await;
    let w = world(&app).await;
    let ids = rules_collection(
        &app,
        &w,
        "open",
        json!({"listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": ""}),
    )
    .await;
    let p = "/api/collections/open/records";
    let r1 = "/api/collections/open/records/{r1}";
    let r2 = "/api/collections/open/records/{r2}";
    let cases = vec![
        list(Guest, p, 200, Some(2)),
        list(Owner, p, 200, Some(2)),
        list(Other, p, 200, Some(2)),
        list(Su, p, 200, Some(2)),
        case(Guest, M::GET, r1, None, 200),
        case(Other, M::GET, r1, None, 200),
        case(Guest, M::POST, p, Some(json!({"title": "g"})), 200),
        case(Other, M::POST, p, Some(json!({"title": "x", "owner": "{owner}"})), 200),
        case(Guest, M::PATCH, r1, Some(json!({"title": "g2"})), 200),
        case(Other, M::PATCH, r1, Some(json!({"title": "x2"})), 200),
        case(Guest, M::GET, "/api/collections/open/records/missingmissing1", None, 404),
        case(
            Guest,
            M::PATCH,
            "/api/collections/open/records/missingmissing1",
            Some(json!({})),
            404,
        ),
        case(Guest, M::DELETE, r1, None, 204),
        case(Other, M::DELETE, r2, None, 204),
        list(Guest, p, 200, Some(2)),
    ];
    run_table(&app, &w, &ids, cases).await;
    app.stop().await;
}

/// Rules reading the request body (`:isset`, `:changed`), method and headers; the update rule
/// is evaluated against the stored record, before the change.
#[tokio::test]
async fn body_method_and_header_rules() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    app.create_collection(
        &su,
        json!({"name": "flow", "listRule": "", "viewRule": "",
               "createRule": "@request.body.secret:isset = false && title != 'forbidden'",
               "updateRule": "@request.body.locked:changed = false && status = 'draft'",
               "deleteRule": "@request.method = 'DELETE' && @request.headers.x_key = 'k1'",
               "fields": [{"name": "title", "type": "text"}, {"name": "secret", "type": "text"},
                          {"name": "locked", "type": "bool"}, {"name": "status", "type": "text"}]}),
    )
    .await;
    let p = "/api/collections/flow/records";
    let (status, _) = app.post(p, None, json!({"title": "a", "secret": "x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "secret:isset");
    let (status, _) = app.post(p, None, json!({"title": "a", "secret": ""})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an empty value is still set");
    let (status, body) = app.post(p, None, json!({"title": "forbidden"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "rule sees the new record's fields");
    assert_eq!(body["message"], "Failed to create record.");
    assert_eq!(body["data"], json!({}));
    let id = app.create_id(None, "flow", json!({"title": "ok", "status": "draft"})).await;
    assert_eq!(app.list("flow", "", None).await["totalItems"], 1, "rejected creates wrote nothing");
    let r = format!("{p}/{id}");
    let steps = [
        (json!({"locked": false}), 200, "locked sent but unchanged"),
        (json!({"locked": true}), 404, "locked changed"),
        (json!({"title": "x"}), 200, "locked not sent"),
        (json!({"status": "published"}), 200, "rule sees the stored status (draft)"),
        (json!({"title": "y"}), 404, "now published"),
    ];
    for (body, want, why) in steps {
        let (status, res) = app.patch(&r, None, body.clone()).await;
        assert_eq!(status.as_u16(), want, "{why}: {body} → {res}");
    }
    let (_, rec) = app.get(&r, None).await;
    assert_eq!(
        (&rec["title"], &rec["locked"], &rec["status"]),
        (&json!("x"), &json!(false), &json!("published"))
    );
    let (status, _) = app.delete(&r, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no header");
    let (status, _) = app.send_raw(Method::DELETE, &r, &[("X-Key", "wrong")], None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "wrong header");
    let (status, _) = app.send_raw(Method::DELETE, &r, &[("X-Key", "k1")], None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.stop().await;
}

#[tokio::test]
async fn rules_with_relation_paths_auth_fields_and_hidden_fields() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let (u1, t1) = app.create_user("a@example.com", "password123").await;
    let (u2, t2) = app.create_user("b@example.com", "password123").await;
    let projects = app
        .create_collection(&su, json!({"name": "projects", "fields": [
            {"name": "name", "type": "text"},
            {"name": "members", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 5}]}))
        .await;
    let rule = "project.members.id ?= @request.auth.id";
    app.create_collection(
        &su,
        json!({"name": "tasks", "listRule": rule, "viewRule": rule, "fields": [
        {"name": "title", "type": "text"},
        {"name": "project", "type": "relation", "collectionId": projects["id"], "maxSelect": 1}]}),
    )
    .await;
    let p1 = app.create_id(Some(&su), "projects", json!({"name": "p1", "members": [u1]})).await;
    let p2 = app.create_id(Some(&su), "projects", json!({"name": "p2", "members": [u2]})).await;
    let p3 = app.create_id(Some(&su), "projects", json!({"name": "p3", "members": [u1, u2]})).await;
    let mut tasks = Vec::new();
    for (t, p) in [("t1", &p1), ("t2", &p2), ("t3", &p3)] {
        tasks.push(app.create_id(Some(&su), "tasks", json!({"title": t, "project": p})).await);
    }
    let sorted = |v: &Value| crate::helpers::pluck_sorted(v, "title");
    assert_eq!(sorted(&app.list("tasks", "", None).await), Vec::<String>::new());
    assert_eq!(sorted(&app.list("tasks", "", Some(&t1)).await), ["t1", "t3"]);
    assert_eq!(sorted(&app.list("tasks", "", Some(&t2)).await), ["t2", "t3"]);
    let (status, _) =
        app.get(&format!("/api/collections/tasks/records/{}", tasks[1]), Some(&t1)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) =
        app.get(&format!("/api/collections/tasks/records/{}", tasks[2]), Some(&t1)).await;
    assert_eq!(status, StatusCode::OK);
    // Rules may read @request.auth.* fields and hidden fields (clients may not filter on them).
    app.create_collection(
        &su,
        json!({"name": "authonly", "listRule": "@request.auth.collectionName = 'users'",
        "fields": [{"name": "t", "type": "text"}]}),
    )
    .await;
    app.create_record(Some(&su), "authonly", json!({"t": "x"})).await;
    assert_eq!(app.list("authonly", "", None).await["totalItems"], 0);
    assert_eq!(app.list("authonly", "", Some(&t1)).await["totalItems"], 1);
    let hidden_rule = "code = @request.query.code";
    app.create_collection(
        &su,
        json!({"name": "hid", "listRule": hidden_rule, "viewRule": hidden_rule, "fields": [
        {"name": "title", "type": "text"}, {"name": "code", "type": "text", "hidden": true}]}),
    )
    .await;
    app.create_record(Some(&su), "hid", json!({"title": "h1", "code": "c1"})).await;
    app.create_record(Some(&su), "hid", json!({"title": "h2", "code": "c2"})).await;
    let list = app.list("hid", "code=c1", None).await;
    assert_eq!(crate::helpers::pluck(&list, "title"), ["h1"]);
    assert!(list["items"][0].get("code").is_none(), "hidden field not shown: {list}");
    assert_eq!(app.list("hid", "", None).await["totalItems"], 0);
    let (status, _) = app
        .get(&format!("/api/collections/hid/records?code=c1&filter={}", enc("code = 'c1'")), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "hidden fields are not client-filterable");
    app.stop().await;
}

/// Expand and relation filters go through the related collection's rules.
#[tokio::test]
async fn related_rules_limit_expand_and_relation_filters() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let (u1, t1) = app.create_user("a@example.com", "password123").await;
    let (_, t2) = app.create_user("b@example.com", "password123").await;
    let own = "owner = @request.auth.id";
    let secrets = app
        .create_collection(&su, json!({"name": "secrets", "listRule": own, "viewRule": own, "fields": [
            {"name": "label", "type": "text"},
            {"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1}]}))
        .await;
    app.create_collection(
        &su,
        json!({"name": "notes", "listRule": "", "viewRule": "", "fields": [
        {"name": "text", "type": "text"},
        {"name": "secret", "type": "relation", "collectionId": secrets["id"], "maxSelect": 1}]}),
    )
    .await;
    let sid = app.create_id(Some(&su), "secrets", json!({"label": "x", "owner": u1})).await;
    let nid = app.create_id(Some(&su), "notes", json!({"text": "n", "secret": sid})).await;
    let view = format!("/api/collections/notes/records/{nid}?expand=secret");
    let filter = format!("filter={}", enc("secret.label = 'x'"));
    for (who, token, visible) in [
        ("guest", None, false),
        ("owner", Some(t1.as_str()), true),
        ("other", Some(t2.as_str()), false),
        ("su", Some(su.as_str()), true),
    ] {
        let (status, rec) = app.get(&view, token).await;
        assert_eq!(status, StatusCode::OK, "{who}");
        assert_eq!(rec["secret"], sid.as_str(), "{who}: the raw id is always there");
        assert_eq!(rec["expand"]["secret"]["label"].is_string(), visible, "{who} expand: {rec}");
        let list = app.list("notes", &filter, token).await;
        assert_eq!(list["totalItems"], i64::from(visible), "{who} relation filter: {list}");
    }
    // listRule null on the related collection: relation filters are refused for non-superusers,
    // while expand follows the (open) viewRule.
    let (status, body) = app
        .patch("/api/collections/secrets", Some(&su), json!({"listRule": null, "viewRule": ""}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for token in [None, Some(t1.as_str())] {
        let (status, body) =
            app.get(&format!("/api/collections/notes/records?{filter}"), token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (_, rec) = app.get(&view, token).await;
        assert_eq!(rec["expand"]["secret"]["label"], "x", "{rec}");
    }
    assert_eq!(app.list("notes", &filter, Some(&su)).await["totalItems"], 1);
    app.stop().await;
}

/// Only superusers may use `@request.*` and `@collection.*` in `filter` and `sort`, and the
/// check reads the parsed expression: the same text inside a string literal is just text.
/// PocketBase 0.40.6 searches the raw text and refuses the literal too (a deliberate difference,
/// see docs/architecture.md).
#[tokio::test]
async fn request_and_collection_identifiers_in_client_filters() {
    let app = spawn_app().await;
    let w = world(&app).await;
    rules_collection(&app, &w, "open", json!({"listRule": "", "viewRule": ""})).await;
    app.create_record(Some(&w.su), "open", json!({"title": "a@request.b"})).await;
    let p = "/api/collections/open/records";
    let message =
        |name: &str| format!("Only superusers can use @request. and @collection. in \"{name}\".");
    for (query, token, want, count) in [
        (format!("filter={}", enc("title = \"a@request.b\"")), None, 200, Some(1)),
        (format!("filter={}", enc("title ~ '@collection.open.title'")), None, 200, Some(0)),
        (format!("filter={}", enc("@request.auth.id = \"\"")), None, 403, None),
        (
            format!("filter={}", enc("title = 'x' || @request.auth.id != ''")),
            Some(&w.owner.1),
            403,
            None,
        ),
        (
            format!("filter={}", enc("strftime('%Y', @collection.open.title) = '1'")),
            None,
            403,
            None,
        ),
        (format!("sort={}", enc("@collection.open.title")), None, 403, None),
        (format!("sort={}", enc("-@request.auth.id")), Some(&w.owner.1), 403, None),
        (format!("filter={}", enc("@request.auth.id != \"\"")), Some(&w.su), 200, Some(3)),
        (format!("sort={}", enc("@request.auth.id")), Some(&w.su), 200, Some(3)),
    ] {
        let (status, body) = app.get(&format!("{p}?{query}"), token.map(String::as_str)).await;
        assert_eq!(status.as_u16(), want, "{query}: {body}");
        match count {
            Some(n) => assert_eq!(body["totalItems"], n, "{query}: {body}"),
            None => {
                let name = query.split('=').next().unwrap_or_default();
                assert_eq!(body["message"], message(name), "{query}");
            }
        }
    }
    app.stop().await;
}
