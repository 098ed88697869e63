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
    // The same counts on /api/metrics, every state of a queue present.
    let res = app
        .client
        .get(format!("{}/api/metrics", app.url))
        .header("Authorization", su.as_str())
        .send()
        .await
        .expect("metrics");
    let text = res.text().await.expect("metrics");
    let line = |q: &str, s: &str| {
        text.lines()
            .find(|l| {
                l.starts_with("basalt_jobs{")
                    && l.contains(&format!("queue=\"{q}\""))
                    && l.contains(&format!("state=\"{s}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_string)
    };
    assert_eq!(line("default", "succeeded").as_deref(), Some("1"), "{text}");
    assert_eq!(line("media", "pending").as_deref(), Some("2"), "{text}");
    assert_eq!(line("media", "dead").as_deref(), Some("0"), "{text}");
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

    // A batch is all or nothing, and names the bad job.
    let batch = json!({"jobs": [{"kind": "k", "queue": "b"}, {"kind": "Bad"}, {"kind": "k"}]});
    let (status, res) = app.post("/api/jobs/batch", Some(&su), batch).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
    assert_eq!(res["data"]["jobs"]["1"]["kind"]["code"], "validation_match_invalid", "{res}");
    assert!(res["data"]["jobs"].get("0").is_none(), "{res}");
    let too_many: Vec<Value> = (0..1001).map(|_| json!({"kind": "k"})).collect();
    for body in [json!({"jobs": []}), json!({"jobs": too_many}), json!({"jobs": "k"}), json!({})] {
        let (status, res) = app.post("/api/jobs/batch", Some(&su), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
    }
    let (status, _) =
        app.post("/api/jobs/batch", Some(&user), json!({"jobs": [{"kind": "k"}]})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, body): (StatusCode, Value) = app.get("/api/jobs", Some(&su)).await;
    assert_eq!(body["totalItems"], 0, "nothing stored: {body}");
    // In one transaction, answered in order; a unique key taken earlier in the batch returns
    // that job.
    let batch = json!({"jobs": [
        {"kind": "k", "queue": "b", "priority": 3},
        {"kind": "k", "queue": "b", "uniqueKey": "once"},
        {"kind": "k", "queue": "b", "uniqueKey": "once", "priority": 9},
    ]});
    let (status, res) = app.post("/api/jobs/batch", Some(&su), batch).await;
    assert_eq!(status, StatusCode::OK, "{res}");
    let items = res["items"].as_array().expect("items");
    assert_eq!(items.len(), 3);
    assert_eq!(
        (items[0]["priority"].as_i64(), items[0]["state"].as_str()),
        (Some(3), Some("pending"))
    );
    assert_eq!(items[1]["id"], items[2]["id"], "{res}");
    assert_eq!(items[2]["priority"], 0);
    let (_, body): (StatusCode, Value) = app.get("/api/jobs?queue=b", Some(&su)).await;
    assert_eq!(body["totalItems"], 2, "{body}");
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
    handlers.insert("ok".into(), Arc::new(|_, _| Box::pin(async { Ok(None) })));
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
        // Longer than the test: retries after a backoff and delayed jobs run because the runner
        // sleeps only until the next job is due, never because a poll came round.
        poll: Duration::from_secs(3600),
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
    // A delayed job starts when due, with no poll to find it.
    let (_, delayed) =
        app.post("/api/jobs", Some(&su), json!({"kind": "ok", "queue": "t", "delay": 300})).await;
    let delayed_id = delayed["id"].as_str().expect("id").to_string();
    let done = eventually(Duration::from_secs(10), || async {
        app.get(&format!("/api/jobs/{delayed_id}"), Some(&su)).await.1["state"] == "succeeded"
    })
    .await;
    let (_, job) = app.get(&format!("/api/jobs/{delayed_id}"), Some(&su)).await;
    assert!(done, "{job}");
    assert!(job["started"].as_i64() >= job["runAt"].as_i64(), "not before it is due: {job}");

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

/// External workers over HTTP: claim under a lease, heartbeat, complete, fail; a stale lease is
/// refused. Then the Python and JavaScript example workers in `examples/jobs/` drain a queue.
#[tokio::test]
async fn external_workers_claim_over_http_and_the_examples_run() {
    use crate::helpers::{SU_EMAIL, SU_PASSWORD};

    let app = spawn_app().await;
    let su = app.su_token().await;
    for n in [1, 2] {
        let (status, _) = app
            .post(
                "/api/jobs",
                Some(&su),
                json!({"kind": "sum", "queue": "w", "payload": {"numbers": [n]}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let claim = json!({"queue": "w", "kinds": ["sum"], "max": 1, "lease": 30});
    let (status, got) = app.post("/api/jobs/claim", Some(&su), claim.clone()).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    let job = got["items"][0].clone();
    assert_eq!(got["items"].as_array().map(Vec::len), Some(1));
    let (id, lease) = (job["id"].as_str().expect("id"), job["lease"].as_str().expect("lease"));
    assert_eq!((job["state"].as_str(), job["attempts"].as_i64()), (Some("running"), Some(1)));
    let path = |what: &str| format!("/api/jobs/{id}/{what}");
    let (status, body) = app.post(&path("heartbeat"), Some(&su), json!({"lease": "stolen"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["data"]["lease"]["code"], "validation_invalid_value");
    let (status, _) =
        app.post(&path("heartbeat"), Some(&su), json!({"lease": lease, "extend": 60})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) =
        app.post(&path("complete"), Some(&su), json!({"lease": lease, "result": {"sum": 1}})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.post(&path("complete"), Some(&su), json!({"lease": lease})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "finished already");
    let (_, done) = app.get(&format!("/api/jobs/{id}"), Some(&su)).await;
    assert_eq!(
        (done["state"].as_str(), done["result"].clone()),
        (Some("succeeded"), json!({"sum": 1}))
    );

    let (_, got) = app.post("/api/jobs/claim", Some(&su), claim.clone()).await;
    let other = got["items"][0].clone();
    let other_id = other["id"].as_str().expect("id").to_string();
    let fail = json!({"lease": other["lease"], "error": "disk full", "retryIn": 0});
    let (status, _) = app.post(&format!("/api/jobs/{other_id}/fail"), Some(&su), fail).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, failed) = app.get(&format!("/api/jobs/{other_id}"), Some(&su)).await;
    assert_eq!(
        (failed["state"].as_str(), failed["attempts"].as_i64(), failed["lastError"].as_str()),
        (Some("pending"), Some(1), Some("disk full"))
    );
    for (body, field) in [
        (json!({"max": 0}), "max"),
        (json!({"lease": 0}), "lease"),
        (json!({"queue": "Bad Queue"}), "queue"),
    ] {
        let (status, res) = app.post("/api/jobs/claim", Some(&su), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
        assert!(res["data"].get(field).is_some(), "{res}");
    }
    let (status, _) = app.post("/api/jobs/claim", None, json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The example workers, each on a queue of its own.
    let root = env!("CARGO_MANIFEST_DIR");
    for (queue, program, script) in [
        ("examples", "python3", "examples/jobs/worker.py"),
        ("examples-js", "node", "examples/jobs/worker.mjs"),
    ] {
        let mut ids = Vec::new();
        for numbers in [json!([1, 2, 3]), json!([10, 20])] {
            let (_, job) = app
                .post(
                    "/api/jobs",
                    Some(&su),
                    json!({"kind": "sum", "queue": queue, "payload": {"numbers": numbers}}),
                )
                .await;
            ids.push(job["id"].as_str().expect("id").to_string());
        }
        let (_, boom) = app
            .post(
                "/api/jobs",
                Some(&su),
                json!({"kind": "explode", "queue": queue, "maxAttempts": 1}),
            )
            .await;
        // On a blocking thread: the server runs on this test's runtime meanwhile.
        let (url, path) = (app.url.clone(), format!("{root}/{script}"));
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(program)
                .arg(path)
                .args([url.as_str(), SU_EMAIL, SU_PASSWORD, "--queue", queue, "--exit-when-idle"])
                .output()
        })
        .await
        .expect("task")
        .expect("run the example worker");
        assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
        let sums: Vec<Value> = {
            let mut v = Vec::new();
            for id in &ids {
                let (_, job) = app.get(&format!("/api/jobs/{id}"), Some(&su)).await;
                assert_eq!(job["state"], "succeeded", "{script}: {job}");
                v.push(job["result"]["sum"].clone());
            }
            v
        };
        assert_eq!(sums, [json!(6), json!(30)], "{script}");
        let (_, dead) =
            app.get(&format!("/api/jobs/{}", boom["id"].as_str().expect("id")), Some(&su)).await;
        assert_eq!(dead["state"], "dead", "{script}: {dead}");
        assert!(dead["lastError"].as_str().unwrap_or("").contains("exploded on purpose"), "{dead}");
    }
}

/// `kill -9` while jobs run loses none: after a restart every job reaches `succeeded` (an
/// attempt cut short runs again once its lease expires; duplicates are counted).
#[tokio::test]
async fn a_killed_server_loses_no_jobs() {
    use crate::cli::{Server, BIN};

    let dir = tempfile::tempdir().expect("tempdir");
    let db = match crate::helpers::postgres_server() {
        Some(server) => Some(crate::helpers::TestDb::create(&server).await),
        None => None,
    };
    let url = db.as_ref().map(|d| d.url());
    let mut args: Vec<&str> = Vec::new();
    if let Some(u) = &url {
        args.extend(["--db", u.as_str()]);
    }
    let upsert = std::process::Command::new(BIN)
        .args(["superuser", "upsert", "crash@example.com", "password-123456", "--dir"])
        .arg(dir.path())
        .args(&args)
        .output()
        .expect("upsert");
    assert!(upsert.status.success(), "{}", String::from_utf8_lossy(&upsert.stderr));
    let env = [("BASALT_JOBS_LEASE", "2")];
    let mut server = Server::start_with(dir.path(), &args, &env).await;
    let token = server.login("crash@example.com", "password-123456").await.expect("login");
    const N: usize = 1500;
    let mut enqueued = 0;
    for chunk in (0..N).collect::<Vec<_>>().chunks(50) {
        let posts = chunk.iter().map(|i| {
            server.post("/api/jobs", Some(&token), json!({"kind": "noop", "payload": {"i": i}}))
        });
        for (status, _) in futures_util::future::join_all(posts).await {
            assert_eq!(status, StatusCode::OK);
            enqueued += 1;
        }
    }
    let (_, stats) = server.get("/api/jobs/stats", Some(&token)).await;
    let done_before = stats["queues"]["default"]["succeeded"].as_i64().unwrap_or(0);
    server.kill_hard();

    let server = Server::start_with(dir.path(), &args, &env).await;
    let token = server.login("crash@example.com", "password-123456").await.expect("login");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let stats = loop {
        let (_, stats) = server.get("/api/jobs/stats", Some(&token)).await;
        let q = &stats["queues"]["default"];
        if q["succeeded"].as_i64() == Some(N as i64) || std::time::Instant::now() > deadline {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let q = &stats["queues"]["default"];
    assert_eq!(q["succeeded"].as_i64(), Some(enqueued as i64), "{stats}");
    for state in ["pending", "running", "dead"] {
        assert!(q.get(state).is_none(), "{state}: {stats}");
    }
    let (_, again) = server.get("/api/jobs?state=succeeded&perPage=500", Some(&token)).await;
    let twice = again["items"]
        .as_array()
        .map(|items| items.iter().filter(|j| j["attempts"].as_i64() > Some(1)).count())
        .unwrap_or(0);
    eprintln!("kill -9 with {done_before}/{N} done: all {N} succeeded after the restart; {twice}+ ran twice");
}
