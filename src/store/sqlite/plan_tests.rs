//! Query plans of the job queue's hot statements on SQLite (the driver lives here only).

use crate::store::Store;

/// Claiming reads only its partial indexes (migration 0006): neither the sweep of expired leases
/// nor the claim scans the table or sorts, however many finished jobs it keeps.
#[tokio::test]
async fn sqlite_claims_read_only_their_indexes() {
    use rusqlite::types::Value as V;

    let dir = tempfile::tempdir().expect("tempdir");
    let location = crate::config::DbLocation::Sqlite { dir: dir.path().into() };
    Store::open(&location).await.expect("open").close().await;
    let conn = rusqlite::Connection::open(dir.path().join("data.db")).expect("conn");
    let d = crate::store::dialect::Sqlite;
    let plan = |sql: &str, params: Vec<V>| -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("prepare");
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |r| r.get::<_, String>(3))
            .expect("plan");
        rows.map(|r| r.expect("row")).collect::<Vec<_>>().join(" | ")
    };
    let (text, int) = (|s: &str| V::Text(s.into()), V::Integer);
    let requeue = plan(&crate::store::jobs::requeue_expired_sql(&d), vec![text("q"), int(1)]);
    assert!(requeue.contains("USING INDEX _jobs_leases"), "{requeue}");
    let claim = plan(
        &crate::store::jobs::claim_sql(&d, 2, 8),
        vec![text("o"), int(2), int(1), text("q"), text("a"), text("b")],
    );
    assert!(claim.contains("USING INDEX _jobs_due"), "{claim}");
    let next = plan(&crate::store::jobs::next_due_sql(&d), vec![text("q"), int(1)]);
    assert!(next.contains("_jobs_next"), "{next}");
    for p in [&requeue, &claim, &next] {
        assert!(!p.contains("SCAN _jobs") && !p.contains("TEMP B-TREE"), "{p}");
    }
}
