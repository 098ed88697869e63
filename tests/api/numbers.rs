//! Numbers are never changed on the way through (issue #9, item 2): every finite f64 sent to a
//! number field comes back as the same f64 from create, update (plain and `n+`), view, list and
//! expand, on the engine the suite runs on; on SQLite, also after `migrate-db` to PostgreSQL.
//! Integral values render as integers (`5`, not `5.0`), as PocketBase renders them.
//!
//! The usual cause of such changes is JSON parsing that is not correctly rounded (serde_json
//! without `float_roundtrip` reads `90.28571428571429` as `90.28571428571428`).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{postgres_server, spawn_app, spawn_app_with_db, TestApp, TestDb};
use crate::migrate_db::migrate_db;
use crate::pg_test_server;

/// Finite f64 values of every shape: any bit pattern (huge and tiny exponents, subnormals,
/// negatives), integral values, and the `w + i/7` values that exposed the bug.
fn any_finite() -> impl Strategy<Value = f64> {
    use proptest::num::f64 as pf;
    prop_oneof![
        4 => pf::POSITIVE | pf::NEGATIVE | pf::NORMAL | pf::SUBNORMAL | pf::ZERO,
        2 => (-1000i64..1000, 1i64..7).prop_map(|(w, i)| w as f64 + i as f64 / 7.0),
        1 => any::<i64>().prop_map(|i| i as f64),
        1 => (-1_000_000i64..1_000_000).prop_map(|i| i as f64),
        1 => (-320i32..309).prop_map(|e| 10f64.powi(e)),
    ]
}

/// The number a JSON value holds; `None` for anything else.
fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// Whether `v` holds `want`, rendered as PocketBase renders it: integral values as JSON
/// integers within the i64 range (and up to 2^64 when positive). Beyond that serde_json cannot
/// hold the integer exactly, and the exponent form reads back to the same f64.
fn same(v: &Value, want: f64) -> bool {
    let as_integer = want.fract() == 0.0
        && (want.abs() < 9_223_372_036_854_775_808.0
            || (want > 0.0 && want < 18_446_744_073_709_551_616.0));
    num(v) == Some(want) && (!as_integer || v.is_i64() || v.is_u64())
}

async fn setup(app: &TestApp, su: &str) -> String {
    app.create_collection(su, json!({"name": "nums", "fields": [{"name": "n", "type": "number"}]}))
        .await;
    let nums = app.get("/api/collections/nums", Some(su)).await.1["id"].clone();
    app.create_collection(
        su,
        json!({"name": "holder", "fields": [
            {"name": "rels", "type": "relation", "collectionId": nums, "maxSelect": 999}
        ]}),
    )
    .await;
    nums.as_str().unwrap_or_default().to_string()
}

/// Creates, views, lists, expands and updates one record per value; checks every answer.
async fn round_trip(app: &TestApp, su: &str, values: &[f64]) -> Result<Vec<(String, f64)>, String> {
    let mut ids = Vec::new();
    for &v in values {
        let (status, body) =
            app.post("/api/collections/nums/records", Some(su), json!({ "n": v })).await;
        if status != StatusCode::OK || !same(&body["n"], v) {
            return Err(format!("create {v:?}: {status} {body}"));
        }
        ids.push((body["id"].as_str().unwrap_or_default().to_string(), v));
    }
    for (id, v) in &ids {
        let (_, body) = app.get(&format!("/api/collections/nums/records/{id}"), Some(su)).await;
        if !same(&body["n"], *v) {
            return Err(format!("view {v:?}: {body}"));
        }
    }
    let all: Vec<&String> = ids.iter().map(|(id, _)| id).collect();
    let holder = app.create_id(Some(su), "holder", json!({ "rels": all })).await;
    let (_, body) =
        app.get(&format!("/api/collections/holder/records/{holder}?expand=rels"), Some(su)).await;
    let expanded = body["expand"]["rels"].as_array().cloned().unwrap_or_default();
    if expanded.len() != ids.len() {
        return Err(format!("expand returned {} of {}", expanded.len(), ids.len()));
    }
    for (item, (_, v)) in expanded.iter().zip(&ids) {
        if !same(&item["n"], *v) {
            return Err(format!("expand {v:?}: {item}"));
        }
    }
    // Update to the values in reverse order, then add 1.5 with the `n+` modifier.
    let mut updated = Vec::new();
    for ((id, _), v) in ids.iter().zip(values.iter().rev()) {
        let path = format!("/api/collections/nums/records/{id}");
        let (_, body) = app.patch(&path, Some(su), json!({ "n": v })).await;
        if !same(&body["n"], *v) {
            return Err(format!("update {v:?}: {body}"));
        }
        let sum = v + 1.5;
        let (_, body) = app.patch(&path, Some(su), json!({ "n+": 1.5 })).await;
        if sum.is_finite() && !same(&body["n"], sum) {
            return Err(format!("update n+ 1.5 on {v:?}: {body}"));
        }
        let (_, body) = app.patch(&path, Some(su), json!({ "n": v })).await;
        if !same(&body["n"], *v) {
            return Err(format!("update back {v:?}: {body}"));
        }
        updated.push((id.clone(), *v));
    }
    check_list(app, su, &updated).await?;
    Ok(updated)
}

/// Every listed record holds the expected number.
async fn check_list(app: &TestApp, su: &str, want: &[(String, f64)]) -> Result<(), String> {
    let mut page = 1;
    let mut seen = std::collections::HashMap::new();
    loop {
        let list =
            app.list("nums", &format!("perPage=1000&page={page}&skipTotal=1"), Some(su)).await;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        for item in &items {
            seen.insert(item["id"].as_str().unwrap_or_default().to_string(), item["n"].clone());
        }
        if items.len() < 1000 {
            break;
        }
        page += 1;
    }
    for (id, v) in want {
        match seen.get(id) {
            Some(n) if same(n, *v) => {}
            other => return Err(format!("list {v:?}: {other:?}")),
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_finite_number_round_trips() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    setup(&app, &su).await;
    // The value from the report, and the run that found it (`w + i/7`), first.
    let mut fixed = vec![
        90.28571428571429,
        0.1,
        1e21,
        1e-7,
        -0.0,
        5e-324,
        f64::MAX,
        f64::MIN,
        -1.2e19,
        1.2e19,
        9_223_372_036_854_775_808.0,
        -9_223_372_036_854_775_808.0,
    ];
    fixed.extend((0..7).flat_map(|w| (1..7).map(move |i| f64::from(w * 13) + f64::from(i) / 7.0)));
    let mut all = round_trip(&app, &su, &fixed).await.unwrap_or_else(|e| panic!("{e}"));

    let mut runner =
        TestRunner::new(Config { cases: 8, failure_persistence: None, ..Config::default() });
    let handle = tokio::runtime::Handle::current();
    let found = std::sync::Mutex::new(Vec::new());
    let result = tokio::task::block_in_place(|| {
        runner.run(&prop::collection::vec(any_finite(), 40), |values| {
            handle.block_on(async {
                let done = round_trip(&app, &su, &values).await.map_err(TestCaseError::fail)?;
                found.lock().map_err(|_| TestCaseError::fail("poisoned"))?.extend(done);
                Ok(())
            })
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    all.extend(found.into_inner().unwrap_or_default());

    // On SQLite, the same records moved to PostgreSQL keep every number.
    if postgres_server().is_none() {
        if let Some(server) =
            pg_test_server::server("the migrate-db part (numbers moved to PostgreSQL)")
        {
            let dir = app.dir.path().to_str().expect("utf8").to_string();
            let target = TestDb::create(&server).await;
            let (out, _) = migrate_db(&dir, &target.url());
            assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
            let pg = spawn_app_with_db(Some(target.url())).await;
            let pg_su = pg.su_token().await;
            check_list(&pg, &pg_su, &all).await.unwrap_or_else(|e| panic!("after migrate-db: {e}"));
            pg.stop().await;
        }
    }
    app.stop().await;
}

/// `@request.body.n:changed` compares numbers exactly: sending the stored value back is no
/// change, and the smallest step away from it is one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_compares_numbers_exactly() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    app.create_collection(
        &su,
        json!({"name": "nums", "viewRule": "", "updateRule": "@request.body.n:changed = false",
               "fields": [{"name": "n", "type": "number"}]}),
    )
    .await;
    for v in [90.28571428571429_f64, 0.1 + 0.2, 1e-300, 123456789.12345679, 1e21, 7.0] {
        let id = app.create_id(Some(&su), "nums", json!({ "n": v })).await;
        let path = format!("/api/collections/nums/records/{id}");
        let (status, body) = app.patch(&path, None, json!({ "n": v })).await;
        assert_eq!(status, StatusCode::OK, "{v:?} sent back unchanged: {body}");
        let next = f64::from_bits(v.to_bits() + 1);
        let (status, body) = app.patch(&path, None, json!({ "n": next })).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{next:?} differs from {v:?}: {body}");
    }
    app.stop().await;
}
