//! The unit of work on both engines: everything in a `Work` commits together or not at all,
//! outbox rows included, and nothing is published for a rolled-back unit.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::model::collection::{Collection, CollectionType, Schema};
use crate::model::field::FieldKind;
use crate::model::request::RequestInfo;
use crate::store::pg_test_db::{field, test_db, text};
use crate::store::{Action, Row, Store, StoreError};

fn row(v: Value) -> Row {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn collection(name: &str, fields: Vec<crate::model::field::Field>) -> Collection {
    let mut c = Collection::blank(CollectionType::Base, name);
    c.id = Collection::default_id(CollectionType::Base, name);
    c.created = "2024-01-01 00:00:00.000Z".into();
    c.updated = c.created.clone();
    c.fields.extend(fields);
    c
}

fn posts() -> Collection {
    collection("posts", vec![text("t")])
}

fn comments() -> Collection {
    let post = field(
        "post",
        FieldKind::Relation {
            collection_id: Collection::default_id(CollectionType::Base, "posts"),
            cascade_delete: true,
            min_select: 0,
            max_select: 1,
        },
    );
    collection("comments", vec![text("body"), post])
}

async fn ids(store: &Store, schema: &Schema, coll: &str) -> Vec<String> {
    let c = schema.get(coll).expect("collection");
    let all: Vec<String> =
        ["p1", "p2", "c1", "c2", "x1"].iter().map(|s| format!("{s:0>15}")).collect();
    let mut found = store.existing_ids(c, &all).await.expect("ids");
    found.sort();
    found
}

fn id(s: &str) -> String {
    format!("{s:0>15}")
}

/// The same scenario on any engine.
async fn units_commit_whole_or_not_at_all(store: Store) {
    let mut feed = store.subscribe();
    // DDL and rows in one unit: the collections and their first records together.
    let mut work = store.work();
    work.create_collection(&posts()).create_collection(&comments());
    store.commit(work).await.expect("collections");
    let schema = Arc::new(Schema::new(store.load_collections().await.expect("load")));
    let (p, c) = (schema.get("posts").expect("posts"), schema.get("comments").expect("comments"));

    let mut work = store.work();
    work.insert_record(p, row(json!({"id": id("p1"), "t": "one"})), None).expect("op");
    work.insert_record(c, row(json!({"id": id("c1"), "body": "hi", "post": id("p1")})), None)
        .expect("op");
    let changes = store.commit(work).await.expect("commit");
    assert_eq!(changes.len(), 2);
    assert!(changes[0].pos < changes[1].pos, "{changes:?}");
    assert_eq!(feed.recv().await.expect("feed").record_id, id("p1"));
    assert_eq!(feed.recv().await.expect("feed").record_id, id("c1"));

    // A failure in the last operation undoes the earlier ones and publishes nothing.
    let before = store.changes_since(0, 1000).await.expect("outbox").len();
    let mut work = store.work();
    work.insert_record(p, row(json!({"id": id("p2"), "t": "two"})), None).expect("op");
    work.update_record(p, &id("p1"), row(json!({"id": id("p1"), "t": "changed"})), None)
        .expect("op");
    work.insert_record(c, row(json!({"id": id("c1"), "body": "dup"})), None).expect("op");
    let e = store.commit(work).await;
    assert!(matches!(e, Err(StoreError::Unique(_))), "{e:?}");
    assert_eq!(ids(&store, &schema, "posts").await, [id("p1")]);
    let info = RequestInfo::default();
    let kept = store.get_record(&schema, p, &info, &id("p1"), None).await.expect("get");
    assert_eq!(kept.expect("p1")["t"], json!("one"));
    assert_eq!(store.changes_since(0, 1000).await.expect("outbox").len(), before);
    assert!(feed.try_recv().is_err(), "nothing published for a rolled-back unit");

    // A rule check failing in the middle rolls back too.
    let rule = crate::model::filter::parse("t = 'ok'").expect("rule");
    let mut work = store.work();
    work.insert_record(p, row(json!({"id": id("p2"), "t": "ok"})), None).expect("op");
    let check = crate::store::RuleCheck { schema: &schema, info: &info, rule: &rule };
    work.insert_record(p, row(json!({"id": id("x1"), "t": "no"})), Some(check)).expect("op");
    let e = store.commit(work).await;
    assert!(matches!(e, Err(StoreError::RuleFailed)), "{e:?}");
    assert_eq!(ids(&store, &schema, "posts").await, [id("p1")]);

    // A delete with its cascade and an insert, together; the changes come back in order.
    let mut work = store.work();
    work.delete_record(schema.clone(), p, &id("p1"));
    work.insert_record(p, row(json!({"id": id("p2"), "t": "two"})), None).expect("op");
    let changes = store.commit(work).await.expect("commit");
    let got: Vec<(String, Action)> =
        changes.iter().map(|c| (c.record_id.clone(), c.action)).collect();
    assert_eq!(
        got,
        [(id("c1"), Action::Delete), (id("p1"), Action::Delete), (id("p2"), Action::Create)]
    );
    assert!(changes.windows(2).all(|w| w[0].pos < w[1].pos), "{changes:?}");
    assert_eq!(ids(&store, &schema, "posts").await, [id("p2")]);
    assert!(ids(&store, &schema, "comments").await.is_empty());
    store.close().await;
}

#[tokio::test]
async fn sqlite_units_commit_whole_or_not_at_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = crate::config::DbLocation::Sqlite { dir: dir.path().into() };
    units_commit_whole_or_not_at_all(Store::open(&location).await.expect("open")).await;
}

#[tokio::test]
async fn postgres_units_commit_whole_or_not_at_all() {
    let Some(t) = test_db().await else { return };
    units_commit_whole_or_not_at_all(t.store().await).await;
}
