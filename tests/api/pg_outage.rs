//! PostgreSQL outages (PostgreSQL only): after every connection to the database is terminated, or
//! while the database refuses connections, each request answers 200 or PocketBase's 503 (never a
//! 500, a crash, or a wait past the pool's 5 s acquire timeout), and service resumes on its own;
//! with two server processes, schema changes made after the drop still reach the other one.
//!
//! The server is built like `spawn_app` does, but keeps its `TestDb` in reach: the test needs
//! the database's name to cut its connections.

use std::time::{Duration, Instant};

use basalt::app::App;
use basalt::config::{Config, DbLocation};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection;

use crate::helpers::{TestDb, SU_EMAIL, SU_PASSWORD};
use crate::pg_test_server;
use crate::scale_out::{cluster, poll, PROPAGATION};

/// A TCP relay to the PostgreSQL server, on a loopback port. `cut` closes its listener and
/// every relayed connection (the database server is gone: connections reset, new ones refused);
/// starting it again on the same port brings the server back.
struct Relay {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(port: u16, server: &str) -> Relay {
        let url = url::Url::parse(server).expect("server URL");
        let upstream = format!("{}:{}", url.host_str().expect("host"), url.port().unwrap_or(5432));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            // Owned by this task: aborting it drops (aborts) every relayed connection too.
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                conns.spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                while conns.try_join_next().is_some() {}
            }
        });
        Relay { port, task }
    }

    /// The server URL through the relay.
    fn url(&self, server: &str) -> String {
        let mut url = url::Url::parse(server).expect("server URL");
        url.set_host(Some("127.0.0.1")).expect("host");
        url.set_port(Some(self.port)).expect("port");
        url.as_str().trim_end_matches('/').to_string()
    }

    async fn cut(self) -> u16 {
        self.task.abort();
        let _ = self.task.await;
        self.port
    }
}

/// Longest a request may take while the database is away (pool acquire timeout 5 s + slack).
const MAX_WAIT: Duration = Duration::from_millis(6500);
/// How soon reads and writes must work again once the database is back.
const RECOVERY: Duration = Duration::from_secs(10);

fn unavailable() -> Value {
    json!({"data": {}, "message": "The database is unavailable, try again later.", "status": 503})
}

/// An HTTP client for the server.
#[derive(Clone)]
struct Api {
    url: String,
    http: reqwest::Client,
}

impl Api {
    /// Sends a request (as `token`'s holder, or as a guest); returns the status and the JSON
    /// body. Fails past `MAX_WAIT`.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_as(None, method, path, body).await
    }

    async fn call_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.header("Authorization", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let started = Instant::now();
        let res = req.send().await.unwrap_or_else(|e| panic!("{method} {path}: no answer: {e}"));
        let status = res.status();
        let bytes = res.bytes().await.expect("body");
        let took = started.elapsed();
        assert!(took < MAX_WAIT, "{method} {path} took {took:?} (answered {status})");
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// A request during or after an outage: 200, or exactly PocketBase's 503. Returns whether
    /// it succeeded.
    async fn tolerant(&self, method: Method, path: &str, body: Option<Value>) -> bool {
        self.tolerant_as(None, method, path, body).await
    }

    async fn tolerant_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> bool {
        let (status, body) = self.call_as(token, method.clone(), path, body).await;
        match status {
            StatusCode::OK => true,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(body, unavailable(), "{method} {path}: the 503 envelope");
                false
            }
            other => panic!("{method} {path}: {other} {body} (want 200 or 503)"),
        }
    }

    /// A list, a view and a create on `items`, concurrently; returns (reads ok, write ok).
    async fn round(&self, id: &str) -> (bool, bool) {
        let view = format!("/api/collections/items/records/{id}");
        let (list, view, create) = tokio::join!(
            self.tolerant(Method::GET, "/api/collections/items/records", None),
            self.tolerant(Method::GET, &view, None),
            self.tolerant(Method::POST, "/api/collections/items/records", Some(json!({"n": 1}))),
        );
        (list && view, create)
    }

    /// Polls rounds until reads and writes both succeed twice in a row; returns how long it took.
    async fn recovers(&self, id: &str, what: &str) -> Duration {
        let started = Instant::now();
        let mut streak = 0;
        while streak < 2 {
            let (reads, write) = self.round(id).await;
            streak = if reads && write { streak + 1 } else { 0 };
            assert!(started.elapsed() < RECOVERY, "no recovery within {RECOVERY:?} {what}");
            if streak == 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        started.elapsed()
    }
}

/// A server on a fresh database, with an `items` collection (public list/view/create) and one
/// record in it.
struct Running {
    api: Api,
    id: String,
    /// A superuser token issued before the outage.
    su: String,
    task: tokio::task::JoinHandle<()>,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
    /// Declared last: dropped once the server is told to stop.
    db: TestDb,
}

/// Creates the database on `server`; the app reaches it through `via` (the same server, or a
/// `Relay` to it).
async fn start(server: &str, via: &str) -> Running {
    let db = TestDb::create(server).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        http: "127.0.0.1:0".parse().expect("addr"),
        db: DbLocation::parse(&format!("{via}/{}", db.name)).expect("a PostgreSQL URL"),
        ..Config::default()
    };
    let app = App::build(&config).await.expect("app builds");
    let addr = app.local_addr().expect("bound");
    app.svc.upsert_superuser(SU_EMAIL, SU_PASSWORD, true).await.expect("superuser");
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app.run_until(async move {
            let _ = rx.await;
        })
        .await
        .expect("server runs");
    });
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
    let api = Api { url: format!("http://{addr}"), http };

    let login = json!({"identity": SU_EMAIL, "password": SU_PASSWORD});
    let path = "/api/collections/_superusers/auth-with-password";
    let (status, body) = api.call(Method::POST, path, Some(login)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let su = body["token"].as_str().expect("token").to_string();
    let def = json!({"name": "items", "listRule": "", "viewRule": "", "createRule": "",
                     "fields": [{"name": "n", "type": "number"}]});
    let (status, body) = api.call_as(Some(&su), Method::POST, "/api/collections", Some(def)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, rec) =
        api.call(Method::POST, "/api/collections/items/records", Some(json!({"n": 0}))).await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    let id = rec["id"].as_str().expect("id").to_string();
    Running { api, id, su, task, _stop: stop, _dir: dir, db }
}

/// Runs `sql` (with the database name as `$1` where it has one) on the maintenance database.
async fn admin(server: &str, sql: &str, db: &str) {
    let mut conn =
        sqlx::PgConnection::connect(&format!("{server}/postgres")).await.expect("admin connects");
    let q = sqlx::query(sql);
    let q = if sql.contains("$1") { q.bind(db) } else { q };
    q.execute(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = conn.close().await;
}

const TERMINATE: &str = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE datname = $1 AND pid <> pg_backend_pid()";

/// Sends the `mix` concurrently while the database is away: each must be the 503 envelope within
/// `MAX_WAIT`; `/api/health` stays 200.
async fn expect_503s(app: &Running, when: &str) {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (token, method, path, body) in mix(app) {
        let api = app.api.clone();
        tasks.spawn(async move {
            let res = api.call_as(token.as_deref(), method.clone(), &path, body).await;
            (format!("{method} {path}"), res)
        });
    }
    let mut wrong = Vec::new();
    while let Some(res) = tasks.join_next().await {
        let (what, (status, body)) = res.expect("request task panicked (see above)");
        if (status, &body) != (StatusCode::SERVICE_UNAVAILABLE, &unavailable()) {
            wrong.push(format!("{what}: {status} {body}"));
        }
    }
    let (status, _) = app.api.call(Method::GET, "/api/health", None).await;
    assert_eq!(status, StatusCode::OK, "health does not need the database");
    eprintln!("{when}: the requests answered within {:?}", started.elapsed());
    assert!(wrong.is_empty(), "{when}, want 503s: {wrong:#?}");
}

/// The requests checked during an outage: guest list, view and create, a superuser request
/// (its token is checked against the database) and a login.
fn mix(app: &Running) -> Vec<(Option<String>, Method, String, Option<Value>)> {
    let records = "/api/collections/items/records".to_string();
    let login = json!({"identity": SU_EMAIL, "password": SU_PASSWORD});
    vec![
        (None, Method::GET, records.clone(), None),
        (None, Method::GET, format!("{records}/{}", app.id), None),
        (None, Method::POST, records, Some(json!({"n": 2}))),
        (Some(app.su.clone()), Method::GET, "/api/collections".into(), None),
        (None, Method::POST, "/api/collections/_superusers/auth-with-password".into(), Some(login)),
    ]
}

#[tokio::test]
async fn terminated_connections_give_200_or_503_then_recover() {
    let Some(server) = pg_test_server::server("PostgreSQL outages") else { return };
    let app = start(&server, &server).await;
    // Several pooled connections, all about to die.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let api = app.api.clone();
        tasks.spawn(
            async move { api.call(Method::GET, "/api/collections/items/records", None).await },
        );
    }
    while let Some(res) = tasks.join_next().await {
        assert_eq!(res.expect("task").0, StatusCode::OK);
    }

    admin(&server, TERMINATE, &app.db.name).await;
    // The first requests meet the dead connections: concurrently, then in rounds.
    let mut tasks = tokio::task::JoinSet::new();
    for (token, method, path, body) in mix(&app).into_iter().chain(mix(&app)) {
        let api = app.api.clone();
        tasks.spawn(async move { api.tolerant_as(token.as_deref(), method, &path, body).await });
    }
    let mut ok = 0;
    while let Some(res) = tasks.join_next().await {
        ok += usize::from(res.expect("request task panicked (see above)"));
    }
    let took = app.api.recovers(&app.id, "after pg_terminate_backend").await;
    eprintln!("after pg_terminate_backend: {ok}/10 first requests were 200; recovered in {took:?}");
    assert!(!app.task.is_finished(), "the server stopped");
    let (status, list) = app.api.call(Method::GET, "/api/collections/items/records", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(list["totalItems"].as_u64().expect("total") >= 3, "{list}");
}

#[tokio::test]
async fn refused_connections_give_503_within_the_acquire_timeout_then_recover() {
    let Some(server) = pg_test_server::server("PostgreSQL outages") else { return };
    let app = start(&server, &server).await;
    let name = app.db.name.clone();
    admin(&server, &format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"), &name).await;
    admin(&server, TERMINATE, &name).await;
    expect_503s(&app, "while the database refuses connections").await;
    admin(&server, &format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"), &name).await;
    let took = app.api.recovers(&app.id, "after ALLOW_CONNECTIONS true").await;
    eprintln!("recovered {took:?} after connections were allowed again");
    assert!(!app.task.is_finished(), "the server stopped");
}

#[tokio::test]
async fn schema_changes_reach_other_processes_after_connections_drop() {
    let Some(server) = pg_test_server::server("PostgreSQL outages") else { return };
    let (db, _tmp, _procs, nodes, su) = cluster(&server, 2).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    admin(&server, TERMINATE, &db.name).await;
    // Created while B's schema listener (if any) is reconnecting: B must catch up anyway.
    let def = json!({"name": "late", "listRule": "", "fields": [{"name": "t", "type": "text"}]});
    poll("A creates a collection after the drop", PROPAGATION, || async {
        match a.post("/api/collections", Some(&su), def.clone()).await {
            (StatusCode::OK, _) => Ok(()),
            (StatusCode::SERVICE_UNAVAILABLE, body) => Err(format!("503 {body}")),
            (s, body) => panic!("create after the drop: {s} {body}"),
        }
    })
    .await;
    let took = b.await_status("/api/collections/late/records", StatusCode::OK).await;
    eprintln!("collection create after the drop reached B after {took:?}");
}

#[tokio::test]
async fn an_unreachable_server_gives_503_within_the_acquire_timeout_then_recovers() {
    let Some(server) = pg_test_server::server("PostgreSQL outages") else { return };
    let relay = Relay::start(0, &server).await;
    let app = start(&server, &relay.url(&server)).await;
    let port = relay.cut().await;
    expect_503s(&app, "while PostgreSQL is unreachable").await;
    let _relay = Relay::start(port, &server).await;
    let took = app.api.recovers(&app.id, "once PostgreSQL is reachable again").await;
    eprintln!("recovered {took:?} after PostgreSQL came back");
    assert!(!app.task.is_finished(), "the server stopped");
}
