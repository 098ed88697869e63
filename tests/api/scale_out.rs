//! Several real `basalt serve` processes on one PostgreSQL database (PostgreSQL only): tokens,
//! records and collection changes made through one instance are served by the others;
//! `examples/scale-out/run.sh` (three instances behind nginx) gives consistent answers and stops
//! everything on SIGTERM. `pg_outage` reuses `cluster` for dropped connections.

use std::collections::BTreeSet;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{TestDb, SU_EMAIL, SU_PASSWORD};
use crate::pg_test_server;

const BIN: &str = env!("CARGO_BIN_EXE_basalt");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/scale-out/run.sh");
/// How long a schema change made through one instance may take to reach another.
pub(crate) const PROPAGATION: Duration = Duration::from_secs(10);

/// Child processes, killed and reaped on drop (also when an assertion fails).
#[derive(Default)]
pub(crate) struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Reads a child's stdout (on a thread, to the end) until a line starts with `prefix`; returns
/// the lines read, that one last.
async fn read_until(child: &mut Child, prefix: &str, timeout: Duration) -> Vec<String> {
    let out = child.stdout.take().expect("piped stdout");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = Vec::new();
    while let Ok(Some(line)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        let done = line.starts_with(prefix);
        seen.push(line);
        if done {
            return seen;
        }
    }
    panic!("no line starting with {prefix:?} within {timeout:?}; got {seen:?}");
}

/// Polls `check` (Err: why not yet) until it succeeds; panics after `timeout`. Returns how long
/// it took.
pub(crate) async fn poll<F, Fut>(what: &str, timeout: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(()) => return start.elapsed(),
            Err(why) if start.elapsed() >= timeout => {
                panic!("{what}: not within {timeout:?}; last: {why}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
}

/// One server (or the load balancer) and an HTTP client for it.
#[derive(Clone)]
pub(crate) struct Node {
    url: String,
    client: reqwest::Client,
}

impl Node {
    fn new(url: &str) -> Node {
        let client =
            reqwest::Client::builder().timeout(Duration::from_secs(15)).build().expect("client");
        Node { url: url.trim_end_matches('/').to_string(), client }
    }

    /// Sends a request; returns the status, the JSON body and the `X-Basalt-Upstream` header.
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value, String) {
        let mut req = self.client.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.header("Authorization", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap_or_else(|e| panic!("{path} on {}: {e}", self.url));
        let status = res.status();
        let header = res.headers().get("x-basalt-upstream").and_then(|v| v.to_str().ok());
        let upstream = header.unwrap_or_default().to_string();
        let bytes = res.bytes().await.expect("body");
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null), upstream)
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let (status, body, _) = self.call(Method::GET, path, token, None).await;
        (status, body)
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        let (status, body, _) = self.call(Method::POST, path, token, Some(body)).await;
        (status, body)
    }

    /// POSTs, asserting a 200; returns the body.
    async fn post_ok(&self, path: &str, token: Option<&str>, body: Value) -> Value {
        let (status, body) = self.post(path, token, body).await;
        assert_eq!(status, StatusCode::OK, "POST {path} on {}: {body}", self.url);
        body
    }

    /// Polls creating `body` in `collection` until the stored record has `body[key]` (a schema
    /// change has arrived); then lists 20 times (every pooled connection) checking each record.
    async fn await_field(&self, coll: &str, body: Value, key: &str, ok: fn(&Value) -> bool) {
        let path = format!("/api/collections/{coll}/records");
        let took = poll(&format!("{} stores {key}", self.url), PROPAGATION, || async {
            match self.post(&path, None, body.clone()).await {
                (StatusCode::OK, r) if r[key] == body[key] => Ok(()),
                (s, r) => Err(format!("{s} {r}")),
            }
        })
        .await;
        eprintln!("{coll}.{key} reached {} after {took:?}", self.url);
        for _ in 0..20 {
            let (status, list) = self.get(&format!("{path}?perPage=100"), None).await;
            assert_eq!(status, StatusCode::OK, "list {coll} on {}: {list}", self.url);
            assert!(list["items"].as_array().expect("items").iter().all(ok), "{list}");
        }
    }

    async fn login(&self, collection: &str, identity: &str, password: &str) -> String {
        let path = format!("/api/collections/{collection}/auth-with-password");
        let (status, body) =
            self.post(&path, None, json!({"identity": identity, "password": password})).await;
        assert_eq!(status, StatusCode::OK, "login to {collection} on {}: {body}", self.url);
        body["token"].as_str().expect("token").to_string()
    }

    /// Polls until `GET path` answers `want`; returns how long that took.
    pub(crate) async fn await_status(&self, path: &str, want: StatusCode) -> Duration {
        let what = format!("GET {path} on {} answers {want}", self.url);
        poll(&what, PROPAGATION, || async {
            match self.get(path, None).await {
                (s, _) if s == want => Ok(()),
                (s, body) => Err(format!("{s} {body}")),
            }
        })
        .await
    }
}

/// `basalt superuser upsert` on the database.
fn upsert_superuser(db_url: &str, dir: &Path) {
    let out = Command::new(BIN)
        .args(["superuser", "upsert", SU_EMAIL, SU_PASSWORD, "--dir"])
        .arg(dir)
        .env("BASALT_DB", db_url)
        .output()
        .expect("basalt runs");
    assert!(out.status.success(), "superuser upsert: {out:?}");
}

/// Starts `basalt serve --db … --http 127.0.0.1:0 --dir DIR` and reads its address.
async fn serve(procs: &mut Procs, db_url: &str, dir: &Path) -> Node {
    let child = Command::new(BIN)
        .args(["serve", "--db", db_url, "--http", "127.0.0.1:0", "--dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    procs.0.push(child); // Killed on drop even if it never starts.
    let child = procs.0.last_mut().expect("pushed");
    let lines = read_until(child, "Server started at http://", Duration::from_secs(30)).await;
    let line = lines.last().expect("startup line");
    Node::new(line.trim_start_matches("Server started at ").trim())
}

/// A fresh database, a superuser, and `n` instances on it; returns them and a superuser token.
pub(crate) async fn cluster(
    server: &str,
    n: usize,
) -> (TestDb, tempfile::TempDir, Procs, Vec<Node>, String) {
    let db = TestDb::create(server).await;
    let tmp = tempfile::tempdir().expect("tmp");
    upsert_superuser(&db.url(), &tmp.path().join("cli"));
    let mut procs = Procs::default();
    let mut nodes = Vec::new();
    for i in 0..n {
        nodes.push(serve(&mut procs, &db.url(), &tmp.path().join(format!("n{i}"))).await);
    }
    let su = nodes[0].login("_superusers", SU_EMAIL, SU_PASSWORD).await;
    (db, tmp, procs, nodes, su)
}

#[tokio::test]
async fn two_instances_share_tokens_records_and_schema_changes() {
    let Some(server) = pg_test_server::server("scale-out on PostgreSQL") else { return };
    let (_db, _tmp, _procs, nodes, su) = cluster(&server, 2).await;
    let (a, b) = (&nodes[0], &nodes[1]);

    // Tokens: signing keys and token keys live in the database.
    let (status, body) = b.get("/api/collections", Some(&su)).await;
    assert_eq!(status, StatusCode::OK, "B accepts A's superuser token: {body}");
    let pw = "userpassword1";
    let new_user = json!({"email": "u@example.com", "password": pw, "passwordConfirm": pw});
    let user = b.post_ok("/api/collections/users/records", None, new_user).await;
    let user_token = b.login("users", "u@example.com", pw).await;
    let (status, body) =
        a.post("/api/collections/users/auth-refresh", Some(&user_token), json!({})).await;
    assert_eq!(status, StatusCode::OK, "A accepts B's user token: {body}");
    assert_eq!(body["record"]["id"], user["id"]);

    // A collection created through A is served by B.
    let def = json!({"name": "notes", "listRule": "", "viewRule": "", "createRule": "",
                     "fields": [{"name": "title", "type": "text"}]});
    let coll = a.post_ok("/api/collections", Some(&su), def).await;
    let took = b.await_status("/api/collections/notes/records", StatusCode::OK).await;
    eprintln!("collection create reached B after {took:?}");

    // Records: written through one, read through the other at once.
    let rec = a.post_ok("/api/collections/notes/records", None, json!({"title": "a"})).await;
    let path = format!("/api/collections/notes/records/{}", rec["id"].as_str().expect("id"));
    let (status, seen) = b.get(&path, None).await;
    assert_eq!((status, &seen["title"]), (StatusCode::OK, &json!("a")), "{seen}");
    b.post_ok("/api/collections/notes/records", None, json!({"title": "b"})).await;
    let (status, list) = a.get("/api/collections/notes/records?sort=title", None).await;
    assert_eq!((status, &list["totalItems"]), (StatusCode::OK, &json!(2)), "{list}");

    // A field added through A: B accepts it on create, then reads it on every connection.
    let mut fields = coll["fields"].as_array().expect("fields").clone();
    fields.push(json!({"name": "views", "type": "number"}));
    let patch = Some(json!({"fields": fields}));
    let (status, body, _) = a.call(Method::PATCH, "/api/collections/notes", Some(&su), patch).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    b.await_field("notes", json!({"title": "v", "views": 7}), "views", |r| {
        r.get("views").is_some()
    })
    .await;

    // A collection deleted through A is gone on B.
    let (status, body, _) = a.call(Method::DELETE, "/api/collections/notes", Some(&su), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let took = b.await_status("/api/collections/notes/records", StatusCode::NOT_FOUND).await;
    eprintln!("collection delete reached B after {took:?}");
    let (status, _) = b.get("/api/collections/notes", Some(&su)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Re-created with another shape (same table name, `title` now a number): B must not reuse
    // statements prepared for the old table.
    let def = json!({"name": "notes", "listRule": "", "viewRule": "", "createRule": "",
                     "fields": [{"name": "title", "type": "number"}]});
    a.post_ok("/api/collections", Some(&su), def).await;
    b.await_field("notes", json!({"title": 5}), "title", |r| r["title"].is_number()).await;
}

/// The `pid` of `/proc/<pid>` is gone (or a zombie waiting for its parent).
fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

/// The run.sh script; on drop (a failed test) stopped like `terminate`, then killed with the
/// processes it started.
struct Script {
    child: Child,
    pids: Vec<u32>,
}

impl Script {
    /// Sends SIGTERM and polls (blocking, up to 30 s) for the exit; returns whether it exited.
    fn terminate(&mut self) -> bool {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() && !self.terminate() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for pid in self.pids.iter().filter(|p| !process_gone(**p)) {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
    }
}

/// The number after `pid ` in a line of run.sh's output.
fn pid_in(line: &str) -> u32 {
    let rest = line.split_once("pid ").expect("pid in line").1;
    rest.split(|c: char| !c.is_ascii_digit()).next().and_then(|p| p.parse().ok()).expect("pid")
}

#[tokio::test]
async fn the_scale_out_example_serves_consistent_results_through_nginx() {
    let Some(server) = pg_test_server::server("scale-out on PostgreSQL") else { return };
    let started = Instant::now();
    let db = TestDb::create(&server).await;
    let tmp = tempfile::tempdir().expect("tmp");
    upsert_superuser(&db.url(), &tmp.path().join("cli"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let err_log = tmp.path().join("run.err");
    let child = Command::new("bash")
        .arg(SCRIPT)
        .args(["--db", &db.url(), "--bin", BIN, "--port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err_log).expect("log file"))
        .spawn()
        .expect("bash runs");
    // Generous: the first run may install nginx.
    let mut script = Script { child, pids: Vec::new() };
    let lines = read_until(&mut script.child, "Ready at http://", Duration::from_secs(180)).await;
    script.pids = lines.iter().filter(|l| l.contains("pid ")).map(|l| pid_in(l)).collect();
    let instances: Vec<Node> = lines
        .iter()
        .filter(|l| l.starts_with("basalt "))
        .map(|l| Node::new(l.split_whitespace().nth(2).expect("instance url")))
        .collect();
    assert_eq!((instances.len(), script.pids.len()), (3, 4), "{lines:?}");
    let lb = Node::new(lines.last().expect("ready").split_whitespace().nth(2).expect("url"));
    assert_eq!(lb.url, format!("http://127.0.0.1:{port}"));
    eprintln!("run.sh ready after {:?}", started.elapsed());

    let su = lb.login("_superusers", SU_EMAIL, SU_PASSWORD).await;
    let def = json!({"name": "items", "listRule": "", "viewRule": "", "createRule": "",
                     "fields": [{"name": "n", "type": "number"}, {"name": "label", "type": "text"}]});
    let (status, body) = lb.post("/api/collections", Some(&su), def).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for node in &instances {
        node.await_status("/api/collections/items/records", StatusCode::OK).await;
    }

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let lb = lb.clone();
        tasks.spawn(async move {
            let body = json!({"n": i, "label": format!("item {i}")});
            lb.post("/api/collections/items/records", None, body).await
        });
    }
    let mut ids = BTreeSet::new();
    while let Some(res) = tasks.join_next().await {
        let (status, rec) = res.expect("task");
        assert_eq!(status, StatusCode::OK, "create through nginx: {rec}");
        ids.insert(rec["id"].as_str().expect("id").to_string());
    }
    assert_eq!(ids.len(), 50);

    let mut upstreams = BTreeSet::new();
    for _ in 0..20 {
        let path = "/api/collections/items/records?perPage=100&sort=n";
        let (status, list, upstream) = lb.call(Method::GET, path, None, None).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(list["totalItems"], 50, "from {upstream}");
        let items = list["items"].as_array().expect("items");
        let got: BTreeSet<String> =
            items.iter().map(|r| r["id"].as_str().expect("id").to_string()).collect();
        assert_eq!(got, ids, "from {upstream}");
        let ns: Vec<i64> = items.iter().map(|r| r["n"].as_i64().expect("n")).collect();
        assert_eq!(ns, (0..50).collect::<Vec<_>>(), "from {upstream}");
        upstreams.insert(upstream);
    }
    assert_eq!(upstreams.len(), 3, "round-robin reaches every instance: {upstreams:?}");

    let stop = Instant::now();
    let exited = script.terminate();
    let stderr = std::fs::read_to_string(&err_log).unwrap_or_default();
    assert!(exited, "run.sh did not exit after SIGTERM; stderr:\n{stderr}");
    eprintln!("run.sh stopped in {:?} (total {:?})", stop.elapsed(), started.elapsed());
    for pid in &script.pids {
        assert!(process_gone(*pid), "pid {pid} still running after run.sh exited");
    }
    for url in instances.iter().map(|n| &n.url).chain([&lb.url]) {
        let addr = url.trim_start_matches("http://");
        assert!(std::net::TcpStream::connect(addr).is_err(), "{addr} still accepts connections");
    }
}
