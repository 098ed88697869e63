//! The job queue over HTTP and the in-process runner: enqueue and run, validation, unique
//! keys, dead jobs retried, access.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use basalt::store::jobs::{Claim, Outcome};

use crate::helpers::{eventually, spawn_app};

#[tokio::test]
async fn jobs_are_enqueued_run_and_operated() {
    let app = spawn_app().await;
    let su = app.su_token().await;

    // A built-in kind runs on this server's runner.
    let (status, job) =
        app.post("/api/jobs", Some(&su), json!({"kind": "noop", "payload": {"a": 1}})).await;
    assert_eq!(status, StatusCode::OK, "{job}");
    assert_eq!(job["queue"], "default");
    // The runner may have taken it already.
    assert!(
        ["pending", "running", "succeeded"].contains(&job["state"].as_str().unwrap_or("")),
        "{job}"
    );
    let id = job["id"].as_str().expect("id").to_string();
    let done = eventually(Duration::from_secs(10), || async {
        app.get(&format!("/api/jobs/{id}"), Some(&su)).await.1["state"] == "succeeded"
    })
    .await;
    assert!(done, "the noop job ran");
    let (_, job) = app.get(&format!("/api/jobs/{id}"), Some(&su)).await;
    assert_eq!((job["attempts"].as_i64(), job["payload"].clone()), (Some(1), json!({"a": 1})));
    assert!(job["finished"].as_i64().is_some());

    // Kinds without a handler here wait for other workers; a unique key holds one live job.
    let ext =
        json!({"kind": "resize.image", "queue": "media", "uniqueKey": "img-1", "priority": 3});
    let (status, first) = app.post("/api/jobs", Some(&su), ext.clone()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (_, second) = app.post("/api/jobs", Some(&su), ext).await;
    assert_eq!(second["id"], first["id"], "the live job with that key");
    let (_, delayed) = app
        .post(
            "/api/jobs",
            Some(&su),
            json!({"kind": "resize.image", "queue": "media", "delay": 60000}),
        )
        .await;
    assert!(delayed["runAt"].as_i64() > first["runAt"].as_i64());

    // An external worker's attempts (the service calls behind the claim API): fail twice with
    // two attempts allowed, then the job is dead; an operator retries it.
    let (_, one) = app
        .post("/api/jobs", Some(&su), json!({"kind": "flaky", "queue": "ext", "maxAttempts": 2}))
        .await;
    let one_id = one["id"].as_str().expect("id").to_string();
    for _ in 0..2 {
        let now = chrono::Utc::now().timestamp_millis();
        let claim = Claim {
            queue: "ext".into(),
            kinds: vec!["flaky".into()],
            max: 1,
            owner: "worker-a".into(),
            now,
            lease_until: now + 30_000,
        };
        let got = app.svc.claim_jobs(claim).await.expect("claim");
        assert_eq!(got.len(), 1);
        let failed = Outcome::Failed { error: "no luck".into(), at: now };
        assert!(app.svc.finish_job(&one_id, "worker-a", failed).await.expect("finish"));
    }
    let (_, dead) = app.get(&format!("/api/jobs/{one_id}"), Some(&su)).await;
    assert_eq!(
        (dead["state"].as_str(), dead["lastError"].as_str()),
        (Some("dead"), Some("no luck"))
    );
    let (status, list) = app.get("/api/jobs?state=dead", Some(&su)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["totalItems"], 1);
    assert_eq!(list["items"][0]["id"], one_id.as_str());
    let (status, revived) =
        app.post(&format!("/api/jobs/{one_id}/retry"), Some(&su), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{revived}");
    assert_eq!(
        (revived["state"].as_str(), revived["attempts"].as_i64()),
        (Some("pending"), Some(0))
    );
    let (status, _) = app.post(&format!("/api/jobs/{one_id}/retry"), Some(&su), json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "only dead jobs");
    let (status, _) = app.post("/api/jobs/nope/retry", Some(&su), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, stats) = app.get("/api/jobs/stats", Some(&su)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["queues"]["default"]["succeeded"], 1, "{stats}");
    assert_eq!(stats["queues"]["media"]["pending"], 2, "{stats}");
}

#[tokio::test]
async fn bad_jobs_are_refused_with_the_field() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let big = "x".repeat(300 * 1024);
    for (body, field, code) in [
        (json!({}), "kind", "validation_required"),
        (json!({"kind": "Bad Kind"}), "kind", "validation_match_invalid"),
        (json!({"kind": "k", "queue": "../x"}), "queue", "validation_match_invalid"),
        (json!({"kind": "k", "payload": {"big": big}}), "payload", "validation_json_size_limit"),
        (json!({"kind": "k", "maxAttempts": 0}), "maxAttempts", "validation_invalid_value"),
        (json!({"kind": "k", "priority": 5000}), "priority", "validation_invalid_value"),
        (json!({"kind": "k", "delay": -1}), "delay", "validation_invalid_value"),
        (json!({"kind": "k", "delay": 1, "runAt": 1}), "delay", "validation_invalid_value"),
        (json!({"kind": "k", "uniqueKey": ""}), "uniqueKey", "validation_invalid_value"),
    ] {
        let (status, res) = app.post("/api/jobs", Some(&su), body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {res}");
        assert_eq!(res["data"][field]["code"], code, "{body}: {res}");
    }
    let (status, res) = app.post("/api/jobs", Some(&su), json!({"kind": "k", "bogus": 1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
    let (status, _) =
        app.post("/api/jobs", Some(&su), json!({"kind": "k", "priority": "high"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Superusers only.
    let (_, user) = app.create_user("u@example.com", "password123").await;
    let (status, _) = app.post("/api/jobs", None, json!({"kind": "noop"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.post("/api/jobs", Some(&user), json!({"kind": "noop"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.get("/api/jobs", Some(&user)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body): (StatusCode, Value) = app.get("/api/jobs", Some(&su)).await;
    assert_eq!((status, body["totalItems"].as_i64()), (StatusCode::OK, Some(0)), "nothing stored");
}

/// The runner: a handler that fails, panics or hangs fails that attempt only, retries back off,
/// the last attempt buries the job; on shutdown a running job's lease is given back.
#[tokio::test]
async fn the_runner_survives_bad_handlers_and_gives_back_leases() {
    use std::collections::HashMap;
    use std::sync::Arc;

    use basalt::jobs::{self, Handler, RunnerConfig};

    let app = spawn_app().await;
    let su = app.su_token().await;
    let mut handlers: HashMap<String, Handler> = HashMap::new();
    handlers.insert("fails".into(), Arc::new(|_, _| Box::pin(async { Err("no".to_string()) })));
    handlers.insert("panics".into(), Arc::new(|_, _| Box::pin(async { panic!("handler bug") })));
    handlers.insert(
        "hangs".into(),
        Arc::new(|_, _| {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(None)
            })
        }),
    );
    let cfg = RunnerConfig {
        queue: "t".into(),
        concurrency: 4,
        lease: Duration::from_millis(600),
        poll: Duration::from_millis(50),
        attempt_timeout: Duration::from_millis(300),
        backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        grace: Duration::from_millis(200),
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let runner = tokio::spawn(jobs::run(app.svc.clone(), cfg, handlers.clone(), stopped));
    let mut ids = HashMap::new();
    for kind in ["fails", "panics", "hangs"] {
        let (_, job) = app
            .post("/api/jobs", Some(&su), json!({"kind": kind, "queue": "t", "maxAttempts": 2}))
            .await;
        ids.insert(kind, job["id"].as_str().expect("id").to_string());
    }
    for (kind, why) in [("fails", "no"), ("panics", "the handler panicked"), ("hangs", "timed out")]
    {
        let id = &ids[kind];
        let dead = eventually(Duration::from_secs(10), || async {
            app.get(&format!("/api/jobs/{id}"), Some(&su)).await.1["state"] == "dead"
        })
        .await;
        let (_, job) = app.get(&format!("/api/jobs/{id}"), Some(&su)).await;
        assert!(dead, "{kind}: {job}");
        assert_eq!(job["attempts"], 2, "{kind}");
        assert!(job["lastError"].as_str().unwrap_or("").contains(why), "{kind}: {job}");
    }
    // The runner still works after all that.
    let (_, later) = app
        .post("/api/jobs", Some(&su), json!({"kind": "fails", "queue": "t", "maxAttempts": 1}))
        .await;
    let later_id = later["id"].as_str().expect("id").to_string();
    let dead = eventually(Duration::from_secs(10), || async {
        app.get(&format!("/api/jobs/{later_id}"), Some(&su)).await.1["state"] == "dead"
    })
    .await;
    assert!(dead);

    // Shutdown with a job running: after the grace period its lease goes back.
    let (_, held) = app
        .post("/api/jobs", Some(&su), json!({"kind": "hangs", "queue": "t", "maxAttempts": 3}))
        .await;
    let held_id = held["id"].as_str().expect("id").to_string();
    let running = eventually(Duration::from_secs(10), || async {
        app.get(&format!("/api/jobs/{held_id}"), Some(&su)).await.1["state"] == "running"
    })
    .await;
    assert!(running);
    stop.send(true).expect("stop");
    tokio::time::timeout(Duration::from_secs(5), runner)
        .await
        .expect("stops in time")
        .expect("runner");
    let (_, job) = app.get(&format!("/api/jobs/{held_id}"), Some(&su)).await;
    assert_eq!(
        (job["state"].as_str(), job["attempts"].as_i64()),
        (Some("pending"), Some(0)),
        "{job}"
    );
}
