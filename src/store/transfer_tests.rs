//! Tests of `copy_database`: a SQLite store with every field type and awkward values copied into
//! a real PostgreSQL database (`pg_test_server` decides which; by default 127.0.0.1:5432, user
//! `postgres`), compared row by row in insertion order; re-runs, conflicts.
//!
//! Without a server these tests print SKIPPED and pass, unless `BASALT_REQUIRE_POSTGRES` is set.

use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};

use super::{batch_sql, copy_database, params_table, Cursor, Definition, Key, Progress, ROWID_KEY};
use crate::model::collection::{Collection, CollectionType};
use crate::model::field::{Field, FieldKind};
use crate::store::{sqlite, Backend, Row, Store, StoreError};

use crate::store::pg_test_db::{field, pg, text, TestDb};

fn collection(kind: CollectionType, id: &str, name: &str, fields: Vec<Field>) -> Collection {
    let mut c = Collection::blank(kind, name);
    c.id = id.into();
    c.created = "2024-01-02 03:04:05.678Z".into();
    c.updated = c.created.clone();
    c.fields.extend(fields);
    c
}

fn tags() -> Collection {
    let mut c = collection(CollectionType::Base, "pbc_tags", "tags", vec![text("name")]);
    c.indexes = vec!["CREATE UNIQUE INDEX idx_tags_name ON tags (name)".into()];
    c
}

fn members() -> Collection {
    // Relates to `things`, which is created (and copied) after it.
    let fav = FieldKind::Relation {
        collection_id: "pbc_things".into(),
        cascade_delete: false,
        min_select: 0,
        max_select: 1,
    };
    collection(CollectionType::Auth, "pbc_members", "members", vec![field("favorite", fav)])
}

/// Every field type, single and multi.
fn things() -> Collection {
    let rel = |max_select| FieldKind::Relation {
        collection_id: "pbc_tags".into(),
        cascade_delete: false,
        min_select: 0,
        max_select,
    };
    let sel = |max_select| FieldKind::Select {
        values: vec!["a".into(), "b".into(), "c".into()],
        max_select,
    };
    let file = |max_select| FieldKind::File {
        max_select,
        max_size: 0,
        mime_types: vec![],
        thumbs: vec![],
        protected: false,
    };
    let fields = vec![
        text("title"),
        field("n", FieldKind::Number { min: None, max: None, only_int: false }),
        field("flag", FieldKind::Bool),
        field("meta", FieldKind::Json { max_size: 0 }),
        field("when", FieldKind::Date { min: String::new(), max: String::new() }),
        field("stamp", FieldKind::Autodate { on_create: true, on_update: false }),
        field("one", sel(1)),
        field("many", sel(3)),
        field("tag", rel(1)),
        field("tags", rel(5)),
        field("doc", file(1)),
        field("docs", file(4)),
        field("place", FieldKind::GeoPoint),
        field("body", FieldKind::Editor { max_size: 0, convert_urls: false }),
        field("mail", FieldKind::Email { only_domains: vec![], except_domains: vec![] }),
        field("site", FieldKind::Url { only_domains: vec![], except_domains: vec![] }),
    ];
    let mut c = collection(CollectionType::Base, "pbc_things", "things", fields);
    c.indexes = vec!["CREATE INDEX idx_things_n ON things (n)".into()];
    c
}

fn row(v: Value) -> Row {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

async fn sqlite_source(dir: &Path) -> Store {
    let store = Store::open(&crate::config::DbLocation::Sqlite { dir: dir.into() }).await.unwrap();
    for c in [tags(), members(), things()] {
        store.create_collection(&c).await.unwrap();
    }
    let tags_c = Arc::new(tags());
    for i in 0..7 {
        let r = row(json!({"id": format!("tag{i:011}"), "name": format!("tag {i}")}));
        store.insert_record(&tags_c, r, None).await.unwrap();
    }
    let members_c = Arc::new(members());
    for i in 0..3 {
        let r = row(json!({
            "id": format!("mem{i:012}"), "email": format!("m{i}@example.com"),
            "password": "$2a$10$abcdefghijklmnopqrstuuJ1ZxVQ9Qv0n8K1e9p5Yy1mQn0rZ6x9e",
            "tokenKey": format!("key{i}"), "verified": i == 1, "emailVisibility": false,
            "favorite": format!("thing{:010}", 13 - i),
        }));
        store.insert_record(&members_c, r, None).await.unwrap();
    }
    let things_c = Arc::new(things());
    let values = [
        json!({"title": "plain", "n": 0, "flag": false, "meta": null}),
        json!({"title": "Café ☕ ünïcödé \"quoted\" 'single' \\ back", "n": 42, "flag": true,
               "meta": {"a": [1, 2.5, "x", null, true], "b": {"c": "d"}}}),
        json!({"title": "", "n": -3.25, "meta": [1, 2, 3], "when": "2024-05-06 07:08:09.123Z"}),
        json!({"n": 1e300, "meta": "just a string", "one": "b", "many": ["a", "c"]}),
        json!({"n": 9_007_199_254_740_991_i64, "meta": 17, "tag": "tag00000000003",
               "tags": ["tag00000000001", "tag00000000002"]}),
        json!({"n": -0.000_001, "meta": false, "doc": "report_abc123.pdf",
               "docs": ["a_1.png", "b_2.jpg"]}),
        json!({"place": {"lon": 12.5, "lat": -45.25}, "body": "<p>hi <b>there</b></p>",
               "mail": "a@b.co", "site": "https://example.com/?q=1&r=2"}),
        json!({"meta": {}, "many": [], "tags": [], "docs": []}),
    ];
    for i in 0..30 {
        let mut r = row(values[i % values.len()].clone());
        r.insert("id".into(), json!(format!("thing{i:010}")));
        r.insert("stamp".into(), json!(format!("2024-01-01 00:00:{:02}.000Z", i % 60)));
        store.insert_record(&things_c, r, None).await.unwrap();
    }
    // Out of id order: the copy keeps insertion order, not id order.
    let r = row(json!({"id": "aaaaaaaaaaaaaaa", "title": "inserted last"}));
    store.insert_record(&things_c, r, None).await.unwrap();
    let Backend::Sqlite(db) = &store.backend else { unreachable!() };
    db.write(|tx| {
        sqlite::execute(
            tx,
            "INSERT INTO _params (id, value, created, updated) VALUES \
             ('settings', '{\"meta\":{\"appName\":\"x\"}}', '2024-01-01', '2024-01-02'), \
             ('other', '', '', '')",
            &[],
        )
    })
    .await
    .unwrap();
    // A schedule, an API key, and jobs: two to run (one pending, one running), one finished.
    let cron = crate::store::system::Cron {
        id: "nightly".into(),
        expression: "0 3 * * *".into(),
        kind: "noop".into(),
        queue: "default".into(),
        payload: json!({"a": 1}),
        last_tick: 5,
        created: 1,
        updated: 2,
    };
    store.put_cron(cron).await.unwrap();
    let key = crate::store::system::ApiKey {
        id: "key000000000001".into(),
        name: "ci".into(),
        scopes: vec!["jobs".into()],
        hash: "ab".repeat(32),
        created: 3,
    };
    store.put_api_key(key).await.unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let job = |id: &str, run_at: i64| crate::store::jobs::NewJob {
        id: id.into(),
        queue: "q".into(),
        kind: "k".into(),
        payload: json!({"id": id}),
        priority: 0,
        run_at,
        max_attempts: 3,
        unique_key: None,
    };
    let mut w = store.work();
    w.enqueue_job(job("job-running", now - 2)).enqueue_job(job("job-done", now - 1));
    store.commit(w).await.unwrap();
    let claim = |max| crate::store::jobs::Claim {
        queue: "q".into(),
        kinds: vec![],
        max,
        owner: "w".into(),
        now,
        lease_until: now + 60_000,
    };
    assert_eq!(store.claim_jobs(claim(2)).await.unwrap().len(), 2);
    let done = crate::store::jobs::Outcome::Succeeded(None);
    assert!(store.finish_job("job-done", "w", done).await.unwrap());
    let mut w = store.work();
    w.enqueue_job(job("job-pending", now + 3_600_000));
    store.commit(w).await.unwrap();
    store
}

/// Every row of a table in the order the copy reads it.
async fn all_rows(store: &Store, coll: &Collection, key: Key) -> Vec<Row> {
    let mut reader = coll.clone();
    if matches!(key, Key::Rowid) {
        reader.fields.push(super::rowid_field());
    }
    let reader = Arc::new(reader);
    let (sql, params) = batch_sql(store.dialect(), coll, key, &Cursor::Start, 1_000_000);
    let mut rows = store.rows(&reader, sql, params).await.unwrap();
    for r in &mut rows {
        r.remove(ROWID_KEY);
    }
    rows
}

async fn pg_store(t: &TestDb) -> Store {
    Store::open(&crate::config::DbLocation::parse(&t.url).unwrap()).await.unwrap()
}

#[tokio::test]
async fn copies_every_value_in_order_then_reruns_without_changes() {
    let t = pg!();
    let dir = tempfile::tempdir().unwrap();
    let src = sqlite_source(dir.path()).await;
    let dst = pg_store(&t).await;
    // The target already has `tags` under the same id, renamed and without its field.
    let mut old = collection(CollectionType::Base, "pbc_tags", "labels", vec![]);
    old.created = "2020-01-01 00:00:00.000Z".into();
    dst.create_collection(&old).await.unwrap();

    let mut seen: Vec<Progress> = Vec::new();
    let report = copy_database(&src, &dst, 4, &mut |p| seen.push(p.clone())).await.unwrap();
    assert!(report.ok(), "{report:?}");
    let summary: Vec<(&str, Option<Definition>, Option<u64>, i64)> = report
        .tables
        .iter()
        .map(|t| (t.table.as_str(), t.definition, t.inserted, t.target_count))
        .collect();
    assert_eq!(
        summary,
        [
            ("_collections", None, None, 3),
            ("_params", None, Some(2), 2),
            ("_crons", None, Some(1), 1),
            ("_apikeys", None, Some(1), 1),
            ("_jobs", None, Some(2), 2),
            ("tags", Some(Definition::Updated), Some(7), 7),
            ("members", Some(Definition::Created), Some(3), 3),
            ("things", Some(Definition::Created), Some(31), 31),
        ]
    );
    let things_progress: Vec<(u64, u64, bool)> = seen
        .iter()
        .filter(|p| p.table == "things")
        .map(|p| (p.copied, p.total, p.finished))
        .collect();
    let mut expected: Vec<(u64, u64, bool)> = vec![(0, 31, false)];
    expected.extend((1..=7).map(|b| (b * 4, 31, false)));
    expected.extend([(31, 31, false), (31, 31, true)]);
    assert_eq!(things_progress, expected);

    // Definitions (token secrets included) and rows are identical, in insertion order.
    let by_id = |mut v: Vec<Collection>| {
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    };
    assert_eq!(
        by_id(dst.load_collections().await.unwrap()),
        by_id(src.load_collections().await.unwrap())
    );
    for (c, key) in [
        (params_table(), Key::Id),
        (tags(), Key::Rowid),
        (members(), Key::Rowid),
        (things(), Key::Rowid),
    ] {
        let (a, b) = (all_rows(&src, &c, key).await, all_rows(&dst, &c, key).await);
        assert_eq!(a.len(), b.len(), "{}", c.name);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x, y, "{}", c.name);
        }
    }
    assert_eq!(dst.crons().await.unwrap(), src.crons().await.unwrap());
    assert_eq!(dst.api_keys(None).await.unwrap()[0].hash, "ab".repeat(32));
    let running = dst.job("job-running").await.unwrap().unwrap();
    assert_eq!((running.state.as_str(), running.max_attempts), ("pending", 3), "given back");
    let pending = dst.job("job-pending").await.unwrap().unwrap();
    let source = src.job("job-pending").await.unwrap().unwrap();
    assert_eq!((pending.payload, pending.run_at), (source.payload, source.run_at));
    assert!(dst.job("job-done").await.unwrap().is_none(), "finished jobs stay behind");
    let things_rows = all_rows(&dst, &things(), Key::Rowid).await;
    assert_eq!(things_rows.last().unwrap()["title"], "inserted last");
    assert_eq!(things_rows[1]["meta"], json!({"a": [1, 2.5, "x", null, true], "b": {"c": "d"}}));
    assert_eq!(things_rows[3]["n"], json!(1e300));
    assert_eq!(things_rows[0]["meta"], Value::Null);

    // Again: nothing inserted, nothing changed, still consistent.
    let again = copy_database(&src, &dst, 1000, &mut |_| {}).await.unwrap();
    assert!(again.ok(), "{again:?}");
    for t in &again.tables {
        assert!(matches!(t.inserted, None | Some(0)), "{t:?}");
        assert!(matches!(t.definition, None | Some(Definition::Unchanged)), "{t:?}");
    }
    // A missing row (as if a table had been emptied on the target) is copied again.
    let Backend::Postgres(db) = &dst.backend else { unreachable!() };
    db.execute("DELETE FROM \"things\" WHERE \"id\" = 'thing0000000005'", &[]).await.unwrap();
    let third = copy_database(&src, &dst, 1000, &mut |_| {}).await.unwrap();
    let things_report = third.tables.iter().find(|t| t.table == "things").unwrap();
    assert_eq!((things_report.inserted, things_report.target_count), (Some(1), 31));
    src.close().await;
    dst.close().await;
}

#[tokio::test]
async fn a_name_taken_by_another_id_is_refused_before_writing() {
    let t = pg!();
    let dir = tempfile::tempdir().unwrap();
    let src = sqlite_source(dir.path()).await;
    let dst = pg_store(&t).await;
    let other = collection(CollectionType::Base, "pbc_other", "THINGS", vec![]);
    dst.create_collection(&other).await.unwrap();
    let err = copy_database(&src, &dst, 1000, &mut |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("another id"), "{err}");
    let names: Vec<String> =
        dst.load_collections().await.unwrap().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["THINGS"], "nothing was written");
}

#[tokio::test]
async fn a_unique_conflict_rolls_back_the_table_and_names_it() {
    let t = pg!();
    let dir = tempfile::tempdir().unwrap();
    let src = sqlite_source(dir.path()).await;
    let dst = pg_store(&t).await;
    dst.create_collection(&tags()).await.unwrap();
    let r = row(json!({"id": "zzzzzzzzzzzzzzz", "name": "tag 5"}));
    dst.insert_record(&Arc::new(tags()), r, None).await.unwrap();
    let err = copy_database(&src, &dst, 2, &mut |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("tags: a unique index"), "{err}");
    // The batches before the conflicting one were rolled back with it.
    let Backend::Postgres(db) = &dst.backend else { unreachable!() };
    assert_eq!(db.query_i64("SELECT COUNT(*) FROM \"tags\"", &[]).await.unwrap(), 1);
}

#[tokio::test]
async fn the_target_must_be_postgres() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let src =
        Store::open(&crate::config::DbLocation::Sqlite { dir: a.path().into() }).await.unwrap();
    let dst =
        Store::open(&crate::config::DbLocation::Sqlite { dir: b.path().into() }).await.unwrap();
    let err = copy_database(&src, &dst, 10, &mut |_| {}).await.unwrap_err();
    assert!(matches!(err, StoreError::Db(ref m) if m.contains("PostgreSQL")), "{err}");
}

#[tokio::test]
async fn open_sqlite_file_never_creates_one() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.db");
    assert!(Store::open_sqlite_file(&missing).await.is_err());
    assert!(!missing.exists());
}
