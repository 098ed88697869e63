//! Tests of the PostgreSQL backend against a real server (`pg_test_server` decides which: by
//! default 127.0.0.1:5432, user `postgres`).
//!
//! Each test creates its own database `basalt_test_<random>` and a guard drops it at the end,
//! also when the test fails. Without a server each test prints SKIPPED and passes, unless
//! `BASALT_REQUIRE_POSTGRES` is set (CI), which makes it fail.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::model::collection::{Collection, CollectionType, Schema};
use crate::model::field::{Field, FieldKind};
use crate::model::request::RequestInfo;
use crate::store::{Backend, ListQuery, Param, RelatedBy, Row, RuleCheck, Store, StoreError};

use crate::store::pg_test_db::{field, pg, text};

fn number(name: &str) -> Field {
    field(name, FieldKind::Number { min: None, max: None, only_int: false })
}

fn select(name: &str, max_select: i64) -> Field {
    field(name, FieldKind::Select { values: vec!["a".into(), "b".into(), "c".into()], max_select })
}

fn relation(name: &str, target: &str, max_select: i64, cascade: bool, required: bool) -> Field {
    let mut f = field(
        name,
        FieldKind::Relation {
            collection_id: Collection::default_id(CollectionType::Base, target),
            cascade_delete: cascade,
            min_select: 0,
            max_select,
        },
    );
    f.required = required;
    f
}

fn collection(name: &str, fields: Vec<Field>, indexes: &[&str]) -> Collection {
    let mut c = Collection::blank(CollectionType::Base, name);
    c.id = Collection::default_id(CollectionType::Base, name);
    c.created = "2024-01-01 00:00:00.000Z".into();
    c.updated = c.created.clone();
    c.fields.extend(fields);
    c.indexes = indexes.iter().map(|s| s.to_string()).collect();
    c
}

fn row(v: Value) -> Row {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn get<'a>(schema: &'a Schema, name: &str) -> &'a Arc<Collection> {
    schema.get(name).unwrap()
}

async fn fetch(store: &Store, schema: &Schema, coll: &str, id: &str) -> Option<Row> {
    let info = RequestInfo::default();
    store.get_record(schema, get(schema, coll), &info, id, None).await.unwrap()
}

async fn list(store: &Store, schema: &Schema, coll: &str, sort: &str, limit: i64) -> Vec<Row> {
    let info = RequestInfo::default();
    let sort =
        if sort.is_empty() { Vec::new() } else { crate::model::filter::parse_sort(sort).unwrap() };
    let (rows, _) = store
        .list_records(ListQuery {
            schema,
            collection: get(schema, coll),
            info: &info,
            rule: None,
            filter: None,
            sort: &sort,
            limit,
            offset: 0,
            count_total: false,
        })
        .await
        .unwrap();
    rows
}

fn ids(rows: &[Row]) -> Vec<&str> {
    rows.iter().map(|r| r["id"].as_str().unwrap()).collect()
}

/// Creates the collections and returns the schema holding them.
async fn setup(store: &Store, colls: Vec<Collection>) -> Schema {
    for c in &colls {
        store.create_collection(c).await.unwrap();
    }
    Schema::new(store.load_collections().await.unwrap())
}

#[tokio::test]
async fn migrations_are_idempotent_and_safe_to_race() {
    let t = pg!();
    // Two instances starting together, then a third one later.
    let location = crate::config::DbLocation::parse(&t.url).unwrap();
    let (a, b) = tokio::join!(Store::open(&location), Store::open(&location));
    let (a, b) = (a.unwrap(), b.unwrap());
    a.close().await;
    b.close().await;
    let s = t.store().await;
    assert!(s.load_collections().await.unwrap().is_empty());
    let Backend::Postgres(db) = &s.backend else { panic!("not PostgreSQL") };
    let files = db.query_strings("SELECT file FROM _migrations ORDER BY file", &[]).await.unwrap();
    assert_eq!(files, crate::store::migrate::postgres_names());
    s.close().await;
}

#[tokio::test]
async fn every_field_type_round_trips() {
    let t = pg!();
    let store = t.store().await;
    let fields = vec![
        text("title"),
        number("n"),
        field("ok", FieldKind::Bool),
        field("mail", FieldKind::Email { only_domains: vec![], except_domains: vec![] }),
        field("site", FieldKind::Url { only_domains: vec![], except_domains: vec![] }),
        field("body", FieldKind::Editor { max_size: 0, convert_urls: false }),
        field("when", FieldKind::Date { min: String::new(), max: String::new() }),
        field("created", FieldKind::Autodate { on_create: true, on_update: false }),
        select("one", 1),
        select("many", 3),
        field(
            "doc",
            FieldKind::File {
                max_select: 1,
                max_size: 0,
                mime_types: vec![],
                thumbs: vec![],
                protected: false,
            },
        ),
        field(
            "docs",
            FieldKind::File {
                max_select: 5,
                max_size: 0,
                mime_types: vec![],
                thumbs: vec![],
                protected: false,
            },
        ),
        relation("parent", "things", 1, false, false),
        relation("links", "things", 5, false, false),
        field("meta", FieldKind::Json { max_size: 0 }),
        field("secret", FieldKind::Password { min: 0, max: 0, pattern: String::new(), cost: 0 }),
        field("at", FieldKind::GeoPoint),
    ];
    let schema = setup(&store, vec![collection("things", fields, &[])]).await;
    let full = json!({
        "id": "aaaaaaaaaaaaaa1", "title": "Hello", "n": 5, "ok": true, "mail": "a@b.c",
        "site": "https://x.y", "body": "<p>x</p>", "when": "2024-05-06 07:08:09.123Z",
        "created": "2024-01-01 00:00:00.000Z", "one": "b", "many": ["a", "c"], "doc": "f.txt",
        "docs": ["f1.txt", "f2.txt"], "parent": "aaaaaaaaaaaaaa2", "links": ["x", "y"],
        "meta": {"k": [1, 2.5, "s", null], "n": 3}, "secret": "$2a$hash",
        "at": {"lon": 12.5, "lat": -3}
    });
    let things = get(&schema, "things");
    store.insert_record(things, row(full.clone()), None).await.unwrap();
    let got = fetch(&store, &schema, "things", "aaaaaaaaaaaaaa1").await.unwrap();
    assert_eq!(Value::Object(got), full);

    // Fields left out get their zero values.
    store.insert_record(things, row(json!({"id": "aaaaaaaaaaaaaa2"})), None).await.unwrap();
    let got = fetch(&store, &schema, "things", "aaaaaaaaaaaaaa2").await.unwrap();
    assert_eq!(
        Value::Object(got),
        json!({
            "id": "aaaaaaaaaaaaaa2", "title": "", "n": 0, "ok": false, "mail": "", "site": "",
            "body": "", "when": "", "created": "", "one": "", "many": [], "doc": "", "docs": [],
            "parent": "", "links": [], "meta": null, "secret": "", "at": {"lon": 0, "lat": 0}
        })
    );

    // The column types chosen in `schema_sql::PG_TYPES`, plus the hidden `_rowid`.
    let Backend::Postgres(db) = &store.backend else { panic!("not PostgreSQL") };
    let types = db
        .query_strings(
            "SELECT column_name || ':' || data_type || ':' || is_nullable FROM information_schema.columns \
             WHERE table_name = 'things' AND column_name IN ('id', 'n', 'ok', 'when', 'many', 'meta', 'at', '_rowid') \
             ORDER BY column_name",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        types,
        [
            "_rowid:bigint:NO",
            "at:jsonb:NO",
            "id:text:NO",
            "many:jsonb:NO",
            "meta:jsonb:YES",
            "n:double precision:NO",
            "ok:boolean:NO",
            "when:text:NO"
        ]
    );
    store.close().await;
}

#[tokio::test]
async fn numbers_render_as_integers_when_integral() {
    let t = pg!();
    let store = t.store().await;
    let schema = setup(&store, vec![collection("nums", vec![number("n")], &[])]).await;
    let nums = get(&schema, "nums");
    for (id, n) in [
        ("n00000000000001", json!(5)),
        ("n00000000000002", json!(2.5)),
        ("n00000000000003", json!(-7.0)),
        ("n00000000000004", json!(1e300)),
    ] {
        store.insert_record(nums, row(json!({"id": id, "n": n})), None).await.unwrap();
    }
    let rows = list(&store, &schema, "nums", "", 10).await;
    let rendered: Vec<String> =
        rows.iter().map(|r| serde_json::to_string(&r["n"]).unwrap()).collect();
    assert_eq!(rendered[..3], ["5", "2.5", "-7"]);
    assert!(rows[0]["n"].is_i64() && rows[2]["n"].is_i64());
    assert_eq!(rows[3]["n"], json!(1e300), "too large for an integer: stays a float");
    store.close().await;
}

#[tokio::test]
async fn list_sorts_limits_and_keeps_insertion_order() {
    let t = pg!();
    let store = t.store().await;
    let schema =
        setup(&store, vec![collection("items", vec![text("title"), number("n")], &[])]).await;
    let items = get(&schema, "items");
    // Ids in reverse alphabetical order, so insertion order differs from id order.
    for (i, id) in ["e", "d", "c", "b", "a"].iter().enumerate() {
        let r = json!({"id": format!("{id}00000000000000"), "title": format!("t{i}"), "n": (i * 7) % 5});
        store.insert_record(items, row(r), None).await.unwrap();
    }
    // Updating a row moves it in PostgreSQL's heap; the default order must not change.
    let r = json!({"id": "e00000000000000", "title": "changed", "n": 0});
    store.update_record(items, "e00000000000000", row(r), None).await.unwrap();
    let natural = list(&store, &schema, "items", "", 10).await;
    assert_eq!(
        ids(&natural),
        [
            "e00000000000000",
            "d00000000000000",
            "c00000000000000",
            "b00000000000000",
            "a00000000000000"
        ]
    );
    let by_rowid = list(&store, &schema, "items", "-@rowid", 2).await;
    assert_eq!(ids(&by_rowid), ["a00000000000000", "b00000000000000"]);
    // n: e=0, d=2, c=4, b=1, a=3.
    let by_n = list(&store, &schema, "items", "-n", 3).await;
    assert_eq!(ids(&by_n), ["c00000000000000", "a00000000000000", "d00000000000000"]);
    let by_title = list(&store, &schema, "items", "title,id", 2).await;
    assert_eq!(ids(&by_title), ["e00000000000000", "d00000000000000"]);

    // Offset and total count.
    let info = RequestInfo::default();
    let sort = crate::model::filter::parse_sort("id").unwrap();
    let (rows, total) = store
        .list_records(ListQuery {
            schema: &schema,
            collection: items,
            info: &info,
            rule: None,
            filter: None,
            sort: &sort,
            limit: 2,
            offset: 1,
            count_total: true,
        })
        .await
        .unwrap();
    assert_eq!(ids(&rows), ["b00000000000000", "c00000000000000"]);
    assert_eq!(total, Some(5));
    store.close().await;
}

#[tokio::test]
async fn update_replaces_values_and_reports_missing_records() {
    let t = pg!();
    let store = t.store().await;
    let schema = setup(
        &store,
        vec![collection("notes", vec![text("title"), number("n"), select("tags", 3)], &[])],
    )
    .await;
    let notes = get(&schema, "notes");
    let id = "u00000000000001";
    store
        .insert_record(notes, row(json!({"id": id, "title": "a", "n": 1, "tags": ["a"]})), None)
        .await
        .unwrap();
    store
        .update_record(notes, id, row(json!({"id": id, "title": "b", "n": 2.5, "tags": []})), None)
        .await
        .unwrap();
    let got = fetch(&store, &schema, "notes", id).await.unwrap();
    assert_eq!(Value::Object(got), json!({"id": id, "title": "b", "n": 2.5, "tags": []}));
    let missing = store.update_record(notes, "nope", row(json!({"id": "nope"})), None).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    // The primary key may change too.
    store
        .update_record(notes, id, row(json!({"id": "u00000000000002", "title": "c"})), None)
        .await
        .unwrap();
    assert!(fetch(&store, &schema, "notes", id).await.is_none());
    assert!(fetch(&store, &schema, "notes", "u00000000000002").await.is_some());
    store.close().await;
}

#[tokio::test]
async fn unique_violations_name_their_fields() {
    let t = pg!();
    let store = t.store().await;
    let c = collection(
        "people",
        vec![text("email"), text("first"), text("last")],
        &[
            "CREATE UNIQUE INDEX idx_people_email ON people (email COLLATE NOCASE) WHERE email != ''",
            "CREATE UNIQUE INDEX idx_people_name ON people (first, last)",
        ],
    );
    let schema = setup(&store, vec![c]).await;
    let people = get(&schema, "people");
    let p = |id: &str, email: &str, first: &str| {
        row(json!({"id": id, "email": email, "first": first, "last": "x"}))
    };
    store.insert_record(people, p("p00000000000001", "A@x.io", "a"), None).await.unwrap();
    let e = store.insert_record(people, p("p00000000000002", "a@X.io", "b"), None).await;
    assert!(matches!(&e, Err(StoreError::Unique(cols)) if cols == &["email"]), "{e:?}");
    let e = store.insert_record(people, p("p00000000000003", "", "a"), None).await;
    assert!(matches!(&e, Err(StoreError::Unique(cols)) if cols == &["first", "last"]), "{e:?}");
    let e = store.insert_record(people, p("p00000000000001", "", "z"), None).await;
    assert!(matches!(&e, Err(StoreError::Unique(cols)) if cols == &["id"]), "{e:?}");
    // Empty emails are outside the partial index.
    store.insert_record(people, p("p00000000000004", "", "c"), None).await.unwrap();
    store.insert_record(people, p("p00000000000005", "", "d"), None).await.unwrap();
    // Updates too.
    let e = store
        .update_record(people, "p00000000000004", p("p00000000000004", "a@x.io", "c"), None)
        .await;
    assert!(matches!(&e, Err(StoreError::Unique(cols)) if cols == &["email"]), "{e:?}");

    // After a rename the primary key constraint keeps its old name: still `id`.
    let old = (**people).clone();
    let mut new = old.clone();
    new.name = "humans".into();
    new.indexes =
        vec!["CREATE UNIQUE INDEX idx_people_email ON humans (email) WHERE email != ''".into()];
    store.update_collection(&old, &new).await.unwrap();
    let schema = Schema::new(store.load_collections().await.unwrap());
    let humans = get(&schema, "humans");
    let e = store.insert_record(humans, p("p00000000000001", "q@x.io", "q"), None).await;
    assert!(matches!(&e, Err(StoreError::Unique(cols)) if cols == &["id"]), "{e:?}");
    let e = store.insert_record(humans, p("p00000000000009", "A@x.io", "q"), None).await;
    assert!(matches!(&e, Err(StoreError::Unique(cols)) if cols == &["email"]), "{e:?}");
    store.close().await;
}

#[tokio::test]
async fn a_failed_rule_check_rolls_the_write_back() {
    let t = pg!();
    let store = t.store().await;
    let schema = setup(&store, vec![collection("scores", vec![number("n")], &[])]).await;
    let scores = get(&schema, "scores");
    let info = RequestInfo::default();
    let rule = crate::model::filter::parse("n > 5").unwrap();
    let check = || Some(RuleCheck { schema: &schema, info: &info, rule: &rule });

    let e =
        store.insert_record(scores, row(json!({"id": "s00000000000001", "n": 1})), check()).await;
    assert!(matches!(e, Err(StoreError::RuleFailed)), "{e:?}");
    assert!(fetch(&store, &schema, "scores", "s00000000000001").await.is_none());

    store
        .insert_record(scores, row(json!({"id": "s00000000000002", "n": 10})), check())
        .await
        .unwrap();
    let e = store
        .update_record(
            scores,
            "s00000000000002",
            row(json!({"id": "s00000000000002", "n": 2})),
            check(),
        )
        .await;
    assert!(matches!(e, Err(StoreError::RuleFailed)), "{e:?}");
    let kept = fetch(&store, &schema, "scores", "s00000000000002").await.unwrap();
    assert_eq!(kept["n"], json!(10));
    store
        .update_record(
            scores,
            "s00000000000002",
            row(json!({"id": "s00000000000002", "n": 6})),
            check(),
        )
        .await
        .unwrap();
    store.close().await;
}

/// posts ← comments.post (single, cascade), reviews.post (single, required),
/// lists.posts (multi, optional), pins.post (single, optional), sets.posts (multi, required).
async fn relation_schema(store: &Store) -> Schema {
    setup(
        store,
        vec![
            collection("posts", vec![text("title")], &[]),
            collection("comments", vec![relation("post", "posts", 1, true, false)], &[]),
            collection("reviews", vec![relation("post", "posts", 1, false, true)], &[]),
            collection("lists", vec![relation("posts", "posts", 5, false, false)], &[]),
            collection("pins", vec![relation("post", "posts", 1, false, false)], &[]),
            collection("sets", vec![relation("posts", "posts", 5, false, true)], &[]),
        ],
    )
    .await
}

async fn insert(store: &Store, schema: &Schema, coll: &str, v: Value) {
    store.insert_record(get(schema, coll), row(v), None).await.unwrap();
}

#[tokio::test]
async fn delete_cascades_and_removes_ids() {
    let t = pg!();
    let store = t.store().await;
    let schema = Arc::new(relation_schema(&store).await);
    for id in ["post00000000001", "post00000000002", "post00000000003"] {
        insert(&store, &schema, "posts", json!({"id": id, "title": id})).await;
    }
    insert(
        &store,
        &schema,
        "comments",
        json!({"id": "comm00000000001", "post": "post00000000001"}),
    )
    .await;
    insert(
        &store,
        &schema,
        "comments",
        json!({"id": "comm00000000002", "post": "post00000000002"}),
    )
    .await;
    insert(
        &store,
        &schema,
        "lists",
        json!({"id": "list00000000001", "posts": ["post00000000003", "post00000000001", "post00000000002"]}),
    )
    .await;
    insert(&store, &schema, "pins", json!({"id": "pin000000000001", "post": "post00000000001"}))
        .await;
    insert(
        &store,
        &schema,
        "sets",
        json!({"id": "set000000000001", "posts": ["post00000000001", "post00000000002"]}),
    )
    .await;

    store.delete_record(schema.clone(), get(&schema, "posts"), "post00000000001").await.unwrap();
    assert!(fetch(&store, &schema, "posts", "post00000000001").await.is_none());
    assert!(fetch(&store, &schema, "comments", "comm00000000001").await.is_none(), "cascaded");
    assert!(fetch(&store, &schema, "comments", "comm00000000002").await.is_some());
    let list = fetch(&store, &schema, "lists", "list00000000001").await.unwrap();
    assert_eq!(list["posts"], json!(["post00000000003", "post00000000002"]), "order kept");
    let pin = fetch(&store, &schema, "pins", "pin000000000001").await.unwrap();
    assert_eq!(pin["post"], json!(""));
    let set = fetch(&store, &schema, "sets", "set000000000001").await.unwrap();
    assert_eq!(set["posts"], json!(["post00000000002"]));

    let missing = store.delete_record(schema.clone(), get(&schema, "posts"), "nope").await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    store.close().await;
}

#[tokio::test]
async fn delete_is_blocked_by_required_relations_and_rolls_back() {
    let t = pg!();
    let store = t.store().await;
    let schema = Arc::new(relation_schema(&store).await);
    for id in ["post00000000001", "post00000000002"] {
        insert(&store, &schema, "posts", json!({"id": id, "title": id})).await;
    }
    insert(
        &store,
        &schema,
        "comments",
        json!({"id": "comm00000000001", "post": "post00000000001"}),
    )
    .await;
    insert(&store, &schema, "reviews", json!({"id": "revi00000000001", "post": "post00000000001"}))
        .await;
    insert(&store, &schema, "sets", json!({"id": "set000000000001", "posts": ["post00000000002"]}))
        .await;

    let e = store.delete_record(schema.clone(), get(&schema, "posts"), "post00000000001").await;
    assert!(matches!(&e, Err(StoreError::RequiredRelation(c)) if c == "reviews"), "{e:?}");
    assert!(fetch(&store, &schema, "posts", "post00000000001").await.is_some());
    assert!(fetch(&store, &schema, "comments", "comm00000000001").await.is_some(), "rolled back");

    // A required multi relation left empty blocks too.
    let e = store.delete_record(schema.clone(), get(&schema, "posts"), "post00000000002").await;
    assert!(matches!(&e, Err(StoreError::RequiredRelation(c)) if c == "sets"), "{e:?}");
    let set = fetch(&store, &schema, "sets", "set000000000001").await.unwrap();
    assert_eq!(set["posts"], json!(["post00000000002"]));
    store.close().await;
}

#[tokio::test]
async fn renames_keep_data_and_columns_are_added_and_dropped() {
    let t = pg!();
    let store = t.store().await;
    let c = collection(
        "books",
        vec![text("title"), number("pages"), text("isbn")],
        &["CREATE INDEX idx_books_title ON books (title)"],
    );
    let schema = setup(&store, vec![c]).await;
    let books = get(&schema, "books");
    insert(
        &store,
        &schema,
        "books",
        json!({"id": "b00000000000001", "title": "Dune", "pages": 412, "isbn": "x"}),
    )
    .await;
    let _ = fetch(&store, &schema, "books", "b00000000000001").await;

    let old = (**books).clone();
    let mut new = old.clone();
    new.name = "novels".into();
    new.fields[1].name = "name".into(); // title → name (same field id)
    new.fields.retain(|f| f.name != "isbn");
    new.fields.push(field("read", FieldKind::Bool));
    new.indexes = vec!["CREATE INDEX idx_books_title ON novels (name)".into()];
    store.update_collection(&old, &new).await.unwrap();

    let schema = Schema::new(store.load_collections().await.unwrap());
    assert!(schema.get("books").is_none());
    let got = fetch(&store, &schema, "novels", "b00000000000001").await.unwrap();
    assert_eq!(
        Value::Object(got),
        json!({"id": "b00000000000001", "name": "Dune", "pages": 412, "read": false})
    );
    // A new collection may take the old name (no leftover sequence/constraint/index clash).
    let again =
        collection("books", vec![text("title")], &["CREATE INDEX idx_books2 ON books (title)"]);
    store.create_collection(&again).await.unwrap();
    store.close().await;
}

#[tokio::test]
async fn a_failed_schema_change_changes_nothing() {
    let t = pg!();
    let store = t.store().await;
    let schema = setup(&store, vec![collection("codes", vec![text("code")], &[])]).await;
    insert(&store, &schema, "codes", json!({"id": "c00000000000001", "code": "x"})).await;
    insert(&store, &schema, "codes", json!({"id": "c00000000000002", "code": "x"})).await;
    let old = (**get(&schema, "codes")).clone();
    let mut new = old.clone();
    new.name = "renamed".into();
    new.fields[1].name = "ident".into();
    new.fields.push(number("extra"));
    new.indexes = vec!["CREATE UNIQUE INDEX idx_codes_ident ON renamed (ident)".into()];
    let e = store.update_collection(&old, &new).await;
    assert!(matches!(&e, Err(StoreError::Unique(cols)) if cols == &["ident"]), "{e:?}");
    let schema = Schema::new(store.load_collections().await.unwrap());
    assert!(schema.get("renamed").is_none());
    let got = fetch(&store, &schema, "codes", "c00000000000001").await.unwrap();
    assert_eq!(Value::Object(got), json!({"id": "c00000000000001", "code": "x"}));
    store.close().await;
}

#[tokio::test]
async fn single_multi_conversions_keep_data() {
    let t = pg!();
    // One connection: the statement cached before the conversion is on the connection used
    // after it, which must not fail with "cached plan must not change result type".
    let store =
        Store::open(&crate::config::DbLocation::parse(&t.url_with("pool_max_conns=1")).unwrap())
            .await
            .unwrap();
    let schema = setup(
        &store,
        vec![
            collection("targets", vec![], &[]),
            collection(
                "tagged",
                vec![select("tag", 1), relation("target", "targets", 1, false, false)],
                &[],
            ),
        ],
    )
    .await;
    insert(
        &store,
        &schema,
        "tagged",
        json!({"id": "t00000000000001", "tag": "b", "target": "x00000000000001"}),
    )
    .await;
    insert(&store, &schema, "tagged", json!({"id": "t00000000000002", "tag": "", "target": ""}))
        .await;
    let before = list(&store, &schema, "tagged", "", 10).await;
    assert_eq!(before[0]["tag"], json!("b"));

    let old = (**get(&schema, "tagged")).clone();
    let mut multi = old.clone();
    multi.fields[1] = select("tag", 3);
    multi.fields[2] = relation("target", "targets", 4, false, false);
    store.update_collection(&old, &multi).await.unwrap();
    let schema = Schema::new(store.load_collections().await.unwrap());
    let rows = list(&store, &schema, "tagged", "", 10).await;
    assert_eq!(rows[0]["tag"], json!(["b"]));
    assert_eq!(rows[0]["target"], json!(["x00000000000001"]));
    assert_eq!(rows[1]["tag"], json!([]));
    assert_eq!(rows[1]["target"], json!([]));

    // New rows get the new default; multi → single keeps the last element.
    insert(&store, &schema, "tagged", json!({"id": "t00000000000003"})).await;
    let tagged = get(&schema, "tagged");
    store
        .update_record(
            tagged,
            "t00000000000001",
            row(json!({"id": "t00000000000001", "tag": ["a", "c"], "target": ["x00000000000001"]})),
            None,
        )
        .await
        .unwrap();
    let mut single = (**tagged).clone();
    single.fields[1] = select("tag", 1);
    store.update_collection(tagged, &single).await.unwrap();
    let schema = Schema::new(store.load_collections().await.unwrap());
    let rows = list(&store, &schema, "tagged", "", 10).await;
    assert_eq!(rows[0]["tag"], json!("c"));
    assert_eq!(rows[1]["tag"], json!(""));
    assert_eq!(rows[2]["tag"], json!(""));
    store.close().await;
}

#[tokio::test]
async fn lookups_expand_and_truncate() {
    let t = pg!();
    let store = t.store().await;
    let schema = relation_schema(&store).await;
    for id in ["post00000000001", "post00000000002"] {
        insert(&store, &schema, "posts", json!({"id": id, "title": format!("T {id}")})).await;
    }
    insert(
        &store,
        &schema,
        "lists",
        json!({"id": "list00000000001", "posts": ["post00000000002"]}),
    )
    .await;
    let posts = get(&schema, "posts");

    let found = store.find_by_field(posts, "title", "T post00000000002").await.unwrap();
    assert_eq!(found.unwrap()["id"], json!("post00000000002"));
    assert!(store.find_by_field(posts, "title", "nope").await.unwrap().is_none());

    let wanted = vec!["post00000000002".to_string(), "zzz".to_string(), "post00000000001".into()];
    let mut existing = store.existing_ids(posts, &wanted).await.unwrap();
    existing.sort();
    assert_eq!(existing, ["post00000000001", "post00000000002"]);

    let info = RequestInfo::default();
    let related =
        store.related_records(&schema, posts, &info, RelatedBy::Ids(&wanted), None).await.unwrap();
    assert_eq!(related.len(), 2);
    let back = store
        .related_records(
            &schema,
            get(&schema, "lists"),
            &info,
            RelatedBy::Field { field: "posts", ids: &["post00000000002".to_string()] },
            None,
        )
        .await
        .unwrap();
    assert_eq!(ids(&back), ["list00000000001"]);

    store.truncate_collection(posts).await.unwrap();
    assert!(list(&store, &schema, "posts", "", 10).await.is_empty());
    store.close().await;
}

#[tokio::test]
async fn statements_are_cached_per_parameter_types() {
    let t = pg!();
    // One connection, so the second statement meets the first one's cached preparation.
    let store =
        Store::open(&crate::config::DbLocation::parse(&t.url_with("pool_max_conns=1")).unwrap())
            .await
            .unwrap();
    let Backend::Postgres(db) = &store.backend else { panic!("not PostgreSQL") };
    let sql = "SELECT CAST($1 AS TEXT)";
    let real = db.query_strings(sql, &[Param::Real(2.5)]).await.unwrap();
    assert_eq!(real, ["2.5"]);
    // Eight bytes of text would silently decode as a float8 in a statement prepared for one.
    let text = db.query_strings(sql, &[Param::Text("abcdefgh".into())]).await.unwrap();
    assert_eq!(text, ["abcdefgh"]);
    let int = db.query_strings(sql, &[Param::Int(7)]).await.unwrap();
    assert_eq!(int, ["7"]);
    store.close().await;
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    // Nothing listens on port 1: the connection is refused.
    let e = Store::open(
        &crate::config::DbLocation::parse("postgres://postgres@127.0.0.1:1/x").unwrap(),
    )
    .await;
    assert!(matches!(e, Err(StoreError::Unavailable(_))), "{:?}", e.err());
}

#[test]
fn unique_columns_fall_back_to_the_error_detail() {
    assert_eq!(
        super::unique_columns(
            None,
            Some("whatever"),
            Some("Key (a, \"B\")=(1, 2) already exists.")
        ),
        ["a", "B"]
    );
    assert_eq!(super::unique_columns(None, Some("idx__collections_name"), None), ["name"]);
    assert!(super::unique_columns(None, None, None).is_empty());
}

#[test]
fn pool_size_comes_from_the_url() {
    let p = super::pool_settings(
        "postgres://u@h/db?pool_max_conns=3&sslmode=disable&pool_acquire_timeout=1.5",
    )
    .unwrap();
    assert_eq!((p.url.as_str(), p.size), ("postgres://u@h/db?sslmode=disable", 3));
    assert_eq!(p.acquire_timeout, std::time::Duration::from_millis(1500));
    let p = super::pool_settings("postgres://u@h/db").unwrap();
    assert_eq!((p.url.as_str(), p.size), ("postgres://u@h/db", 16));
    assert_eq!(p.acquire_timeout, std::time::Duration::from_secs(5));
    assert!(super::pool_settings("postgres://u@h/db?pool_max_conns=0").is_err());
    assert!(super::pool_settings("postgres://u@h/db?pool_acquire_timeout=-1").is_err());
}

/// Filters, sorts and rules compiled by `query.rs` run on PostgreSQL and must select the same
/// records as on SQLite.
#[tokio::test]
async fn filters_match_sqlite() {
    let t = pg!();
    let dir = tempfile::tempdir().unwrap();
    let lite =
        Store::open(&crate::config::DbLocation::Sqlite { dir: dir.path().into() }).await.unwrap();
    let pg = t.store().await;

    let mut users = Collection::blank(CollectionType::Auth, "users");
    users.id = Collection::default_id(CollectionType::Auth, "users");
    users.rules.list = crate::model::policy::Rule::open();
    users.fields.push(number("n"));
    let mut authors = collection("authors", vec![text("name")], &[]);
    authors.rules.list = crate::model::policy::Rule::open();
    let mut owner = relation("owner", "users", 1, false, false);
    if let FieldKind::Relation { collection_id, .. } = &mut owner.kind {
        collection_id.clone_from(&users.id);
    }
    let posts = collection(
        "posts",
        vec![
            text("title"),
            number("n"),
            field("ok", FieldKind::Bool),
            field("date", FieldKind::Date { min: String::new(), max: String::new() }),
            select("tag", 1),
            select("tags", 3),
            relation("author", "authors", 1, false, false),
            relation("authors", "authors", 5, false, false),
            field("meta", FieldKind::Json { max_size: 0 }),
            field("loc", FieldKind::GeoPoint),
            owner,
        ],
        &[],
    );
    let colls = vec![users, authors, posts];
    let u1 = json!({"id": "u00000000000001", "email": "u1@x.io", "emailVisibility": true,
        "verified": true, "tokenKey": "k", "password": "p", "n": 2});
    let data = [
        ("users", u1.clone()),
        ("authors", json!({"id": "a00000000000001", "name": "Ann"})),
        ("authors", json!({"id": "a00000000000002", "name": "bob"})),
        (
            "posts",
            json!({"id": "p00000000000001", "title": "Alpha", "n": 1, "ok": true,
            "date": "2024-03-01 10:00:00.000Z", "tag": "a", "tags": ["a", "b"],
            "author": "a00000000000001", "authors": ["a00000000000001", "a00000000000002"],
            "meta": {"x": 1, "s": "str"}, "loc": {"lon": 10, "lat": 20}, "owner": "u00000000000001"}),
        ),
        (
            "posts",
            json!({"id": "p00000000000002", "title": "beta", "n": 2.5, "ok": false,
            "date": "", "tag": "", "tags": [], "author": "", "authors": [], "meta": null,
            "loc": {"lon": 0, "lat": 0}, "owner": ""}),
        ),
        (
            "posts",
            json!({"id": "p00000000000003", "title": "", "n": 0, "ok": false,
            "date": "2023-12-31 23:59:59.999Z", "tag": "b", "tags": ["b"],
            "author": "a00000000000002", "authors": ["a00000000000002"], "meta": {"x": 3},
            "loc": {"lon": -1, "lat": -1}, "owner": "u00000000000001"}),
        ),
    ];
    let mut schemas = Vec::new();
    for store in [&lite, &pg] {
        let schema = setup(store, colls.clone()).await;
        for (c, v) in &data {
            store.insert_record(get(&schema, c), row(v.clone()), None).await.unwrap();
        }
        schemas.push(schema);
    }
    let auth = crate::model::request::AuthRecord {
        collection: get(&schemas[0], "users").clone(),
        record: row(u1),
    };
    let info = RequestInfo {
        auth: Some(auth),
        method: "GET".into(),
        body: row(json!({"title": "Alpha"})),
        query: row(json!({"q": "Alpha"})),
        ..RequestInfo::default()
    };

    let filters = [
        "title = 'Alpha'",
        "title != ''",
        "title ~ 'alp'",
        "title !~ 'a'",
        "title:lower = 'alpha'",
        "title = null",
        "title != null",
        "n > 1",
        "n >= 2.5",
        "n = 2.5",
        "n = '1'",
        "n = ''",
        "n = null",
        "n != 0",
        "ok = true",
        "ok = false",
        "ok != true",
        "ok = 1",
        "ok = 'true'",
        "ok = '1'",
        "ok != 'false'",
        "ok = ''",
        "date > '2024-01-01'",
        "date = ''",
        "date != ''",
        "date < @now",
        "date >= @todayStart",
        "strftime('%Y', date) = '2024'",
        "tag = 'a'",
        "tag = ''",
        "tags ?= 'a'",
        "tags = 'b'",
        "tags:each = 'b'",
        "tags:each ?= 'a'",
        "tags:length > 1",
        "tags:length = 0",
        "tags ~ 'a'",
        "author = 'a00000000000001'",
        "author = ''",
        "author.name = 'Ann'",
        "author.name ~ 'B'",
        "author.name != 'Ann'",
        "authors ?= 'a00000000000002'",
        "authors.name ?= 'bob'",
        "authors.name = 'bob'",
        "authors:length = 2",
        "authors.name ?~ 'an'",
        "meta.x = 1",
        "meta.x > 1",
        "meta.s = 'str'",
        "meta.x = null",
        "meta.x != null",
        "meta = null",
        "meta != null",
        "loc.lat > 0",
        "loc.lon = 0",
        "geoDistance(loc.lon, loc.lat, 10, 20) < 1",
        "@request.auth.id != ''",
        "owner = @request.auth.id",
        "owner.email = @request.auth.email",
        "owner.verified = true",
        "@request.auth.verified = true",
        "@request.auth.n > 1",
        "@request.auth.n = n + 1",
        "@collection.authors.name ?= 'bob'",
        "@collection.authors.name ?= title",
        "@collection.authors.id ?= author",
        "id = @request.query.q",
        "title = @request.query.q",
        "title = @request.body.title",
        "@request.body.title:isset = true",
        "@request.body.title:changed = true",
        "@request.method = 'GET'",
        "n > 1 && ok = false",
        "n > 1 || ok = true",
        "(title ~ 'a' || n = 0) && tags:length >= 1",
    ];
    let sorts =
        ["title", "-n", "ok,-date", "author.name,id", "-@rowid", "meta.x,id", "-tag,id", "@random"];
    let mut bad = Vec::new();
    for (expr, is_sort) in
        filters.iter().map(|f| (*f, false)).chain(sorts.iter().map(|s| (*s, true)))
    {
        let mut results = Vec::new();
        for (store, schema) in [&lite, &pg].into_iter().zip(&schemas) {
            let filter = if is_sort { None } else { crate::model::filter::parse(expr).ok() };
            if !is_sort && filter.is_none() {
                results.push(Err("does not parse".to_string()));
                continue;
            }
            let sort = if is_sort {
                crate::model::filter::parse_sort(expr).unwrap()
            } else {
                crate::model::filter::parse_sort("id").unwrap()
            };
            let got = store
                .list_records(ListQuery {
                    schema,
                    collection: get(schema, "posts"),
                    info: &info,
                    rule: None,
                    filter: filter.as_ref(),
                    sort: &sort,
                    limit: 10,
                    offset: 0,
                    count_total: true,
                })
                .await;
            results.push(
                got.map(|(rows, total)| {
                    let mut ids: Vec<String> = ids(&rows).into_iter().map(String::from).collect();
                    if expr == "@random" {
                        ids.sort();
                    }
                    (ids, total)
                })
                .map_err(|e| e.to_string()),
            );
        }
        let what = if is_sort { "sort" } else { "filter" };
        match (&results[0], &results[1]) {
            (Ok(a), Ok(b)) if a == b => {}
            (Ok(a), Ok(b)) => bad.push(format!("{what} {expr:?}: SQLite {a:?} ≠ PostgreSQL {b:?}")),
            (Err(a), Err(b)) if a == b => {}
            (Ok(_), Err(e)) => bad.push(format!("{what} {expr:?}: PostgreSQL error: {e}")),
            (a, b) => bad.push(format!("{what} {expr:?}: SQLite {a:?}, PostgreSQL {b:?}")),
        }
    }
    lite.close().await;
    pg.close().await;
    for b in &bad {
        eprintln!("{b}");
    }
    assert!(
        bad.is_empty(),
        "{} of {} expressions differ on PostgreSQL",
        bad.len(),
        filters.len() + sorts.len()
    );
}
