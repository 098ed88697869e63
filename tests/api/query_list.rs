//! Listing over the seeded blog: sort, paging, `fields`, `expand` (shapes, nesting, rules) and
//! the query budget of expand (no N+1). Expected values were captured from PocketBase 0.40.6.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{enc, spawn_app};
use crate::seed::{codes, codes_sorted, seed_blog};

#[tokio::test]
async fn sort_orders() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let blog = seed_blog(&app, &su).await;
    let cases: &[(&str, &[&str])] = &[
        ("title", &["HW", "JS", "RT", "GA", "HA"]),
        ("%2Btitle", &["HW", "JS", "RT", "GA", "HA"]),
        ("-views", &["HA", "RT", "HW", "JS", "GA"]),
        ("published,-views", &["JS", "GA", "HA", "RT", "HW"]),
        ("@rowid", &["HW", "RT", "JS", "GA", "HA"]),
        ("-@rowid", &["HA", "GA", "JS", "RT", "HW"]),
        ("author.name,title", &["GA", "HW", "JS", "RT", "HA"]),
        ("-author.name,title", &["RT", "HA", "HW", "JS", "GA"]),
        ("-pub", &["JS", "RT", "HW", "HA", "GA"]),
        ("meta.x,title", &["JS", "GA", "HA", "RT", "HW"]),
        ("title:lower", &["GA", "HA", "HW", "JS", "RT"]),
        ("title,title,title,title,title,title,title,title", &["HW", "JS", "RT", "GA", "HA"]),
    ];
    let mut failures = Vec::new();
    for (sort, want) in cases {
        let (status, body) =
            app.get(&format!("/api/collections/posts/records?sort={sort}"), Some(&su)).await;
        if status != StatusCode::OK || codes(&body) != *want {
            failures.push(format!("sort={sort}: want {want:?}, got {status} {body}"));
        }
    }
    // No sort = insertion order.
    let list = app.list("posts", "", Some(&su)).await;
    if codes(&list) != ["HW", "RT", "JS", "GA", "HA"] {
        failures.push(format!("natural order: {list}"));
    }
    let list = app.list("posts", "sort=@random", Some(&su)).await;
    if codes_sorted(&list) != ["GA", "HA", "HW", "JS", "RT"] {
        failures.push(format!("@random must keep every row: {list}"));
    }
    for bad in [
        "nope",
        "title,nope",
        "-",
        "title,,views",
        "title,title,title,title,title,title,title,title,title",
    ] {
        let (status, body) =
            app.get(&format!("/api/collections/posts/records?sort={}", enc(bad)), Some(&su)).await;
        if status != StatusCode::BAD_REQUEST {
            failures.push(format!("sort={bad}: want 400, got {status} {body}"));
        }
    }
    // Relation sorts go through the related listRule, but (unlike PocketBase, whose join drops
    // the rows) a hidden related record only sorts as empty: sorting never filters.
    let (status, list) = app.get("/api/collections/posts/records?sort=author.name", None).await;
    if status != StatusCode::OK || codes_sorted(&list).len() != 5 {
        failures.push(format!("guest sort=author.name: want all 5 rows, got {status} {list}"));
    }
    let (status, list) =
        app.get("/api/collections/posts/records?sort=-author.name", Some(&blog.u1_token)).await;
    let got = codes(&list);
    if status != StatusCode::OK
        || got.len() != 5
        || !got[..2].iter().all(|c| ["HW", "JS"].contains(c))
    {
        failures
            .push(format!("u1 sort=-author.name: want u1's HW,JS first of 5, got {status} {list}"));
    }
    // Hidden fields and @request are not sortable by non-superusers.
    let (status, _) = app.get("/api/collections/posts/records?sort=secret", None).await;
    if status != StatusCode::BAD_REQUEST {
        failures.push(format!("guest sort=secret: want 400, got {status}"));
    }
    let (status, _) = app.get("/api/collections/posts/records?sort=secret", Some(&su)).await;
    if status != StatusCode::OK {
        failures.push(format!("su sort=secret: want 200, got {status}"));
    }
    let (status, _) = app.get("/api/collections/posts/records?sort=%40request.auth.id", None).await;
    if status != StatusCode::FORBIDDEN {
        failures.push(format!("guest sort=@request.auth.id: want 403, got {status}"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    app.stop().await;
}

#[tokio::test]
async fn paging_and_totals() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    seed_blog(&app, &su).await;
    /// (query, codes, page, perPage, totalItems, totalPages)
    type Paged = (&'static str, &'static [&'static str], i64, i64, i64, i64);
    let cases: &[Paged] = &[
        ("perPage=2", &["HW", "RT"], 1, 2, 5, 3),
        ("perPage=2&page=2", &["JS", "GA"], 2, 2, 5, 3),
        ("perPage=2&page=3", &["HA"], 3, 2, 5, 3),
        ("perPage=2&page=4", &[], 4, 2, 5, 3),
        ("perPage=0", &["HW", "RT", "JS", "GA", "HA"], 1, 30, 5, 1),
        ("perPage=-1", &["HW", "RT", "JS", "GA", "HA"], 1, 30, 5, 1),
        ("perPage=5000", &["HW", "RT", "JS", "GA", "HA"], 1, 1000, 5, 1),
        ("page=0", &["HW", "RT", "JS", "GA", "HA"], 1, 30, 5, 1),
        ("page=-1", &["HW", "RT", "JS", "GA", "HA"], 1, 30, 5, 1),
        ("skipTotal=1&perPage=2", &["HW", "RT"], 1, 2, -1, -1),
        ("skipTotal=true", &["HW", "RT", "JS", "GA", "HA"], 1, 30, -1, -1),
        ("skipTotal=0&perPage=2", &["HW", "RT"], 1, 2, 5, 3),
        ("skipTotal=false&perPage=4", &["HW", "RT", "JS", "GA"], 1, 4, 5, 2),
        ("perPage=1&page=2&sort=-views&filter=published%3Dtrue", &["RT"], 2, 1, 3, 3),
    ];
    let mut failures = Vec::new();
    for (q, want, page, per_page, total, pages) in cases {
        let list = app.list("posts", q, Some(&su)).await;
        let got = (
            codes(&list),
            &list["page"],
            &list["perPage"],
            &list["totalItems"],
            &list["totalPages"],
        );
        let expected =
            (want.to_vec(), &json!(page), &json!(per_page), &json!(total), &json!(pages));
        if got != expected {
            failures.push(format!("{q}: want {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    app.stop().await;
}

#[tokio::test]
async fn fields_parameter() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let blog = seed_blog(&app, &su).await;
    let first = |q: &str| format!("{q}&sort=%40rowid&perPage=1");
    let list = app.list("posts", &first("fields=id,title"), Some(&su)).await;
    assert_eq!(list["items"][0], json!({"id": blog.id("HW"), "title": "Hello World"}));
    let list = app.list("posts", &first("fields=*,title:excerpt(5,true)"), Some(&su)).await;
    assert_eq!(list["items"][0]["title"], "Hello...");
    assert_eq!(list["items"][0]["views"], 10, "`*` keeps every other key");
    assert_eq!(list["items"][0]["collectionName"], "posts");
    let list = app.list("posts", &first("fields=title:excerpt(3)"), Some(&su)).await;
    assert_eq!(list["items"][0], json!({"title": "Hel"}));
    let list = app.list("posts", &first("fields=body:excerpt(10,true)"), Some(&su)).await;
    assert_eq!(list["items"][0], json!({"body": "Hello bold..."}), "HTML stripped");
    let list = app.list("posts", &first("fields=body:excerpt(100)"), Some(&su)).await;
    assert_eq!(list["items"][0], json!({"body": "Hello bold world, this is long"}));
    let list = app.list("posts", "fields=nope&perPage=2", Some(&su)).await;
    assert_eq!(list["items"], json!([{}, {}]), "unknown names ignored");
    assert_eq!(list["totalItems"], 5, "fields never touches the envelope");
    let list =
        app.list("posts", &first("fields=id,expand.author.name&expand=author"), Some(&su)).await;
    assert_eq!(
        list["items"][0],
        json!({"id": blog.id("HW"), "expand": {"author": {"name": "User One"}}})
    );
    let list = app.list("posts", "fields=title,expand.tags.name&expand=tags", Some(&su)).await;
    let want = json!([
        {"title": "Hello World", "expand": {"tags": [{"name": "js"}, {"name": "rust"}]}},
        {"title": "Rust tips", "expand": {"tags": [{"name": "rust"}]}},
        {"title": "JS tricks", "expand": {"tags": [{"name": "js"}]}},
        {"title": "go away", "expand": {}},
        {"title": "hello again", "expand": {"tags": [{"name": "go"}]}}]);
    assert_eq!(list["items"], want);
    let list = app
        .list(
            "posts",
            &first("fields=title,expand.tags.expand.org.name&expand=tags.org"),
            Some(&su),
        )
        .await;
    assert_eq!(
        list["items"][0],
        json!({"title": "Hello World", "expand": {"tags": [
            {"expand": {"org": {"name": "Acme"}}}, {"expand": {"org": {"name": "Acme"}}}]}})
    );
    // View, create and update honour fields too.
    let (_, rec) = app
        .get(&format!("/api/collections/posts/records/{}?fields=title,views", blog.id("RT")), None)
        .await;
    assert_eq!(rec, json!({"title": "Rust tips", "views": 50}));
    let (status, rec) = app
        .post("/api/collections/orgs/records?fields=name", Some(&su), json!({"name": "X"}))
        .await;
    assert_eq!((status, rec), (StatusCode::OK, json!({"name": "X"})));
    let (_, rec) = app
        .patch(
            &format!("/api/collections/orgs/records/{}?fields=id", blog.id("acme")),
            Some(&su),
            json!({}),
        )
        .await;
    assert_eq!(rec, json!({"id": blog.id("acme")}));
    app.stop().await;
}

#[tokio::test]
async fn expand_shapes_nesting_and_rules() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let blog = seed_blog(&app, &su).await;
    // Single → object, multi → array in stored order, empty → absent (expand {} on the row).
    let list = app.list("posts", "expand=author,tags&sort=%40rowid", Some(&su)).await;
    let hw = &list["items"][0];
    assert_eq!(hw["expand"]["author"]["name"], "User One");
    assert_eq!(hw["expand"]["author"]["email"], "u1@example.com", "superuser sees emails");
    assert_eq!(hw["expand"]["author"]["collectionName"], "users");
    assert!(
        hw["expand"]["author"].get("password").is_none()
            && hw["expand"]["author"].get("tokenKey").is_none()
    );
    let names: Vec<&Value> =
        hw["expand"]["tags"].as_array().expect("tags").iter().map(|t| &t["name"]).collect();
    assert_eq!(names, [&json!("js"), &json!("rust")]);
    assert_eq!(list["items"][3]["expand"], json!({}), "go away: nothing to expand");
    assert_eq!(hw["author"], blog.id("u1"), "the raw id stays");
    // Unknown paths are ignored: no expand key at all.
    for q in ["expand=nope", "expand=author.nope,tags.nope", "expand=title"] {
        let list = app.list("posts", &format!("{q}&perPage=1&sort=%40rowid"), Some(&su)).await;
        let item = &list["items"][0];
        assert!(
            item.get("expand").is_none()
                || item["expand"].get("nope").is_none() && item["expand"].get("title").is_none(),
            "{q}: {item}"
        );
    }
    let list = app.list("posts", "expand=nope&perPage=1&sort=%40rowid", Some(&su)).await;
    assert!(list["items"][0].get("expand").is_none(), "{list}");
    // Back-relation: always an array.
    let list = app
        .list(
            "posts",
            "expand=comments_via_post&fields=title,expand.comments_via_post.msg",
            Some(&su),
        )
        .await;
    assert_eq!(
        list["items"],
        json!([
            {"title": "Hello World", "expand": {"comments_via_post": [{"msg": "c00"}]}},
            {"title": "Rust tips", "expand": {"comments_via_post": [{"msg": "c11"}, {"msg": "c12"}]}},
            {"title": "JS tricks", "expand": {}},
            {"title": "go away", "expand": {}},
            {"title": "hello again", "expand": {}}])
    );
    // Three levels.
    let list = app
        .list(
            "comments",
            "expand=post.tags.org&fields=msg,expand.post.title,expand.post.expand.tags.name,expand.post.expand.tags.expand.org.name",
            Some(&su),
        )
        .await;
    assert_eq!(
        list["items"][0],
        json!({"msg": "c00", "expand": {"post": {"title": "Hello World", "expand": {"tags": [
            {"name": "js", "expand": {"org": {"name": "Acme"}}},
            {"name": "rust", "expand": {"org": {"name": "Acme"}}}]}}}})
    );
    // One view with everything at once.
    let (status, rec) = app
        .get(
            &format!(
                "/api/collections/posts/records/{}?expand=author,tags.org,comments_via_post&fields=id,expand.author.name,expand.tags.name,expand.tags.expand.org.name,expand.comments_via_post.msg",
                blog.id("RT")
            ),
            Some(&su),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        rec,
        json!({"id": blog.id("RT"), "expand": {
            "author": {"name": "User Two"},
            "tags": [{"name": "rust", "expand": {"org": {"name": "Acme"}}}],
            "comments_via_post": [{"msg": "c11"}, {"msg": "c12"}]}})
    );
    // The related viewRule applies: users are owner-only.
    let list = app
        .list("posts", "expand=author,tags&fields=title,expand.author.name,expand.tags.name", None)
        .await;
    assert_eq!(
        list["items"][0],
        json!({"title": "Hello World", "expand": {"tags": [{"name": "js"}, {"name": "rust"}]}})
    );
    let list = app
        .list(
            "posts",
            "expand=author&fields=title,expand.author.name,expand.author.email",
            Some(&blog.u1_token),
        )
        .await;
    assert_eq!(
        list["items"],
        json!([
            {"title": "Hello World", "expand": {"author": {"name": "User One", "email": "u1@example.com"}}},
            {"title": "Rust tips", "expand": {}},
            {"title": "JS tricks", "expand": {"author": {"name": "User One", "email": "u1@example.com"}}},
            {"title": "go away", "expand": {}},
            {"title": "hello again", "expand": {}}])
    );
    // Expand on create and update responses.
    let (status, rec) = app
        .post(
            "/api/collections/comments/records?expand=post",
            Some(&su),
            json!({"msg": "new", "post": blog.id("JS")}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rec["expand"]["post"]["title"], "JS tricks");
    app.stop().await;
}

/// Expanding relations costs one query per relation path, never one per row.
#[tokio::test]
async fn expand_does_not_query_per_row() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let blog = seed_blog(&app, &su).await;
    let (u1, js, rust) =
        (blog.id("u1").to_string(), blog.id("js").to_string(), blog.id("rust").to_string());
    for i in 0..95 {
        app.create_record(
            Some(&su),
            "posts",
            json!({"title": format!("p{i}"), "author": u1, "tags": [js, rust]}),
        )
        .await;
    }
    let mut deltas = Vec::new();
    for (q, token) in [
        ("perPage=10&expand=author,tags", None),
        ("perPage=100&expand=author,tags", None),
        ("perPage=100&expand=author,tags", Some(blog.u1_token.as_str())),
        ("perPage=100&expand=tags.org", None),
    ] {
        let before = app.svc.query_count();
        let list = app.list("posts", q, token).await;
        let delta = app.svc.query_count() - before;
        assert_eq!(list["totalItems"], 100);
        let n = list["items"].as_array().map(Vec::len).unwrap_or(0);
        assert!(n == 10 || n == 100, "{q}: {n} items");
        let expanded = list["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|i| i["expand"]["tags"].is_array())
            .count();
        assert!(expanded >= n - 1, "{q}: tags expanded on {expanded}/{n} rows");
        deltas.push((q, token.is_some(), delta));
    }
    for (q, authed, delta) in &deltas {
        // list + count + one per relation level (+1 to resolve the token when authenticated).
        let budget = 4 + u64::from(*authed);
        assert!(*delta <= budget, "{q}: {delta} queries (budget {budget}); all: {deltas:?}");
    }
    assert_eq!(deltas[0].2, deltas[1].2, "10 rows and 100 rows must cost the same: {deltas:?}");
    app.stop().await;
}

#[tokio::test]
async fn geo_distance_filter() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    app.create_collection(
        &su,
        json!({"name": "places", "listRule": "", "fields": [{"name": "name", "type": "text"}, {"name": "at", "type": "geoPoint"}]}),
    )
    .await;
    for (name, lon, lat) in
        [("paris", 2.3522, 48.8566), ("london", -0.1276, 51.5072), ("sydney", 151.2093, -33.8688)]
    {
        app.create_record(
            Some(&su),
            "places",
            json!({"name": name, "at": {"lon": lon, "lat": lat}}),
        )
        .await;
    }
    // Paris–London is about 344 km.
    let near = app
        .list(
            "places",
            &format!("filter={}", enc("geoDistance(at.lon, at.lat, 2.3522, 48.8566) < 400")),
            None,
        )
        .await;
    assert_eq!(crate::helpers::pluck_sorted(&near, "name"), ["london", "paris"]);
    let ring = app
        .list("places", &format!("filter={}", enc("geoDistance(at.lon, at.lat, 2.3522, 48.8566) > 300 && geoDistance(at.lon, at.lat, 2.3522, 48.8566) < 400")), None)
        .await;
    assert_eq!(crate::helpers::pluck(&ring, "name"), ["london"]);
    let (status, _) = app
        .get(
            &format!("/api/collections/places/records?filter={}", enc("geoDistance(at.lon) < 1")),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    app.stop().await;
}
