//! The job queue's storage on both engines: a job commits with its unit or not at all; claims
//! follow priority and due time and never hand one job to two workers; failures retry until
//! dead; unique keys; expired leases; released leases.

use std::sync::Arc;

use serde_json::json;

use crate::model::collection::{Collection, CollectionType, Schema};
use crate::store::jobs::{Claim, NewJob, Outcome};
use crate::store::pg_test_db::{test_db, text};
use crate::store::{Store, StoreError};

fn now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn job(id: &str, priority: i64, run_at: i64) -> NewJob {
    NewJob {
        id: id.into(),
        queue: "q".into(),
        kind: "k".into(),
        payload: json!({"n": id}),
        priority,
        run_at,
        max_attempts: 2,
        unique_key: None,
    }
}

fn claim(owner: &str, max: i64, lease_ms: i64) -> Claim {
    let now = now();
    Claim {
        queue: "q".into(),
        kinds: vec!["k".into()],
        max,
        owner: owner.into(),
        now,
        lease_until: now + lease_ms,
    }
}

async fn enqueue(store: &Store, j: NewJob) {
    let mut w = store.work();
    w.enqueue_job(j);
    store.commit(w).await.expect("enqueue");
}

async fn queue_semantics(store: Store) {
    // A job enqueued with a record that fails to commit does not exist.
    let mut posts = Collection::blank(CollectionType::Base, "posts");
    posts.id = "pbc_posts".into();
    posts.fields.push(text("t"));
    store.create_collection(&posts).await.expect("collection");
    let schema = Arc::new(Schema::new(store.load_collections().await.expect("load")));
    let p = schema.get("posts").expect("posts");
    let row = |id: &str| json!({"id": id, "t": "x"}).as_object().expect("obj").clone();
    let mut w = store.work();
    w.insert_record(p, row("aaaaaaaaaaaaaa1"), None).expect("op");
    w.enqueue_job(job("with-record", 0, now()));
    store.commit(w).await.expect("commit");
    let mut w = store.work();
    w.enqueue_job(job("rolled-back", 0, now()));
    w.insert_record(p, row("aaaaaaaaaaaaaa1"), None).expect("op");
    assert!(matches!(store.commit(w).await, Err(StoreError::Unique(_))));
    assert!(store.job("with-record").await.expect("read").is_some());
    assert!(store.job("rolled-back").await.expect("read").is_none());

    // Priority first, then due time; a future job waits; another kind or queue is not taken.
    enqueue(&store, job("low", 0, now() - 60_000)).await;
    enqueue(&store, job("high", 5, now())).await;
    enqueue(&store, job("later", 9, now() + 60_000)).await;
    enqueue(&store, NewJob { kind: "other".into(), ..job("other-kind", 9, now()) }).await;
    let got: Vec<String> = store
        .claim_jobs(claim("w1", 10, 30_000))
        .await
        .expect("claim")
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(got, ["high", "low", "with-record"]);
    assert!(store.claim_jobs(claim("w2", 10, 30_000)).await.expect("claim").is_empty(), "leased");
    let high = store.job("high").await.expect("read").expect("high");
    assert_eq!((high.state.as_str(), high.attempts), ("running", 1));
    assert_eq!(high.payload, json!({"n": "high"}));

    // Success; a failure retries at the given time, the last one is dead; retry revives.
    assert!(store
        .finish_job("high", "w1", Outcome::Succeeded(Some(json!({"ok": 1}))))
        .await
        .expect("finish"));
    let high = store.job("high").await.expect("read").expect("high");
    assert_eq!((high.state.as_str(), high.result.clone()), ("succeeded", Some(json!({"ok": 1}))));
    assert!(high.finished.is_some());
    assert!(
        !store.finish_job("low", "w2", Outcome::Succeeded(None)).await.expect("finish"),
        "not w2's lease"
    );
    let fail = |at| Outcome::Failed { error: "boom".into(), at };
    assert!(store.finish_job("low", "w1", fail(now())).await.expect("fail"));
    let low = store.job("low").await.expect("read").expect("low");
    assert_eq!((low.state.as_str(), low.attempts, low.last_error.as_str()), ("pending", 1, "boom"));
    let again = store.claim_jobs(claim("w1", 1, 30_000)).await.expect("claim");
    assert_eq!(again[0].id, "low");
    assert!(store.finish_job("low", "w1", fail(now())).await.expect("fail"));
    let low = store.job("low").await.expect("read").expect("low");
    assert_eq!((low.state.as_str(), low.attempts), ("dead", 2));
    assert!(store.revive_job("low").await.expect("revive"));
    let low = store.job("low").await.expect("read").expect("low");
    assert_eq!((low.state.as_str(), low.attempts), ("pending", 0));
    assert!(!store.revive_job("high").await.expect("revive"), "only dead jobs");

    // Unique keys: one live job per key; a finished one frees the key.
    let keyed =
        |id: &str| NewJob { unique_key: Some("key-1".into()), ..job(id, 0, now() + 60_000) };
    enqueue(&store, keyed("u1")).await;
    enqueue(&store, keyed("u2")).await;
    assert!(store.job("u2").await.expect("read").is_none());
    assert_eq!(store.job_by_unique_key("key-1").await.expect("read").expect("u1").id, "u1");

    // An expired lease: the job is claimable again and the first worker's outcome is refused.
    let _ = store.claim_jobs(claim("w1", 10, 30_000)).await.expect("drain");
    enqueue(&store, job("lease", 0, now())).await;
    let first = store.claim_jobs(claim("w3", 1, 1)).await.expect("claim");
    assert_eq!(first[0].id, "lease");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let second = store.claim_jobs(claim("w4", 1, 30_000)).await.expect("claim");
    assert_eq!((second[0].id.as_str(), second[0].attempts), ("lease", 2));
    assert!(!store.finish_job("lease", "w3", Outcome::Succeeded(None)).await.expect("finish"));
    assert!(store.heartbeat_job("lease", "w4", now() + 60_000).await.expect("beat"));
    // Given back on shutdown: pending again, the interrupted attempt not counted.
    store.release_jobs("w4").await.expect("release");
    let lease = store.job("lease").await.expect("read").expect("lease");
    assert_eq!((lease.state.as_str(), lease.attempts), ("pending", 1));

    let (items, total) =
        store.list_jobs(Some("q"), Some("pending"), None, 100, 0).await.expect("list");
    assert_eq!(total, items.len() as i64);
    assert!(items.iter().all(|j| j.state == "pending"));
    let counts = store.job_counts().await.expect("counts");
    assert!(counts.iter().any(|(q, s, n)| q == "q" && s == "succeeded" && *n >= 1), "{counts:?}");
    // Pruning takes succeeded jobs finished before the cut-off, and nothing else.
    assert_eq!(
        store.prune_jobs("succeeded", now() - 60_000).await.expect("prune"),
        0,
        "too recent"
    );
    assert!(store.prune_jobs("succeeded", now() + 1).await.expect("prune") >= 1);
    assert!(store.job("high").await.expect("read").is_none(), "succeeded and old: gone");
    assert!(store.job("lease").await.expect("read").is_some(), "pending stays");
    store.close().await;
}

/// Outcomes recorded in one batch: plain successes in one statement, the others one by one;
/// a job whose lease is another worker's is refused whatever its outcome.
async fn batch_finish(store: Store) {
    for id in ["b1", "b2", "b3", "b4"] {
        enqueue(&store, job(id, 0, now())).await;
    }
    let mut mine: Vec<String> = store
        .claim_jobs(claim("w1", 3, 30_000))
        .await
        .expect("claim")
        .into_iter()
        .map(|j| j.id)
        .collect();
    mine.sort();
    assert_eq!(mine, ["b1", "b2", "b3"]);
    let theirs = store.claim_jobs(claim("w2", 1, 30_000)).await.expect("claim");
    assert_eq!(theirs[0].id, "b4");
    let fail = Outcome::Failed { error: "no".into(), at: now() };
    let held = store
        .finish_jobs(
            "w1",
            vec![
                ("b1".into(), Outcome::Succeeded(None)),
                ("b2".into(), fail),
                ("b4".into(), Outcome::Succeeded(None)),
                ("b3".into(), Outcome::Succeeded(Some(json!({"r": 1})))),
            ],
        )
        .await
        .expect("finish");
    assert_eq!(held, [true, true, false, true]);
    let state = |id: &'static str| {
        let store = &store;
        async move { store.job(id).await.expect("read").expect("job") }
    };
    assert_eq!(state("b1").await.state, "succeeded");
    assert!(state("b1").await.finished.is_some());
    assert_eq!(state("b2").await.state, "pending");
    assert_eq!(
        (state("b3").await.state, state("b3").await.result),
        ("succeeded".to_string(), Some(json!({"r": 1})))
    );
    assert_eq!(state("b4").await.state, "running", "still w2's");
    store.close().await;
}

/// Two workers claiming at once never get the same job.
async fn concurrent_claims(store: Store) {
    let store = Arc::new(store);
    for i in 0..60 {
        enqueue(&store, job(&format!("c{i:02}"), 0, now())).await;
    }
    let mut tasks = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got =
                    store.claim_jobs(claim(&format!("w{w}"), 3, 30_000)).await.expect("claim");
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|j| j.id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!((before, all.len()), (60, 60), "each job claimed exactly once");
}

/// A cron tick fires once however many instances see it at once: one job per tick, and a tick
/// not after the last one fired never fires.
async fn cron_ticks_fire_once(stores: Vec<Arc<Store>>) {
    let t0 = now();
    let cron = crate::store::system::Cron {
        id: "every".into(),
        expression: "* * * * * *".into(),
        kind: "k".into(),
        queue: "cron".into(),
        payload: json!({}),
        last_tick: 0,
        created: t0,
        updated: t0,
    };
    stores[0].put_cron(cron.clone()).await.expect("put");
    for tick in [t0 + 1000, t0 + 2000, t0 + 3000] {
        let mut tasks = Vec::new();
        for (i, store) in stores.iter().cycle().take(6).enumerate() {
            let store = store.clone();
            let j = NewJob {
                queue: "cron".into(),
                run_at: tick,
                ..job(&format!("t{tick}-{i}"), 0, tick)
            };
            tasks.push(tokio::spawn(async move { store.fire_cron("every", tick, j).await }));
        }
        let mut fired = 0;
        for t in tasks {
            fired += usize::from(t.await.expect("task").expect("fire"));
        }
        assert_eq!(fired, 1, "tick {tick} fired once");
    }
    let late = NewJob { queue: "cron".into(), ..job("late", 0, t0) };
    assert!(!stores[0].fire_cron("every", t0 + 2000, late).await.expect("fire"), "an old tick");
    let (jobs, total) = stores[0].list_jobs(Some("cron"), None, None, 100, 0).await.expect("list");
    assert_eq!(total, 3, "{jobs:?}");
    let stored = stores[0].crons().await.expect("crons");
    assert_eq!(stored[0].last_tick, t0 + 3000);
    // Replacing the definition keeps the last tick.
    stores[0]
        .put_cron(crate::store::system::Cron { expression: "@daily".into(), ..cron })
        .await
        .expect("put");
    assert_eq!(stores[0].crons().await.expect("crons")[0].last_tick, t0 + 3000);
}

#[tokio::test]
async fn sqlite_cron_ticks_fire_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = crate::config::DbLocation::Sqlite { dir: dir.path().into() };
    cron_ticks_fire_once(vec![Arc::new(Store::open(&location).await.expect("open"))]).await;
}

#[tokio::test]
async fn postgres_cron_ticks_fire_once_across_instances() {
    let Some(t) = test_db().await else { return };
    // Two stores on one database: two instances.
    let (a, b) = (t.store().await, t.store().await);
    cron_ticks_fire_once(vec![Arc::new(a), Arc::new(b)]).await;
}

#[tokio::test]
async fn sqlite_queue_semantics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = crate::config::DbLocation::Sqlite { dir: dir.path().into() };
    queue_semantics(Store::open(&location).await.expect("open")).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let location = crate::config::DbLocation::Sqlite { dir: dir.path().into() };
    concurrent_claims(Store::open(&location).await.expect("open")).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let location = crate::config::DbLocation::Sqlite { dir: dir.path().into() };
    batch_finish(Store::open(&location).await.expect("open")).await;
}

#[tokio::test]
async fn postgres_queue_semantics() {
    let Some(t) = test_db().await else { return };
    queue_semantics(t.store().await).await;
    let Some(t) = test_db().await else { return };
    concurrent_claims(t.store().await).await;
    let Some(t) = test_db().await else { return };
    batch_finish(t.store().await).await;
}
