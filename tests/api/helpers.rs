//! `spawn_app()` and HTTP helpers shared by the integration tests.

use std::sync::Arc;

use basalt::app::App;
use basalt::config::{Config, DbLocation};
use basalt::service::Service;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub const SU_EMAIL: &str = "root@example.com";
pub const SU_PASSWORD: &str = "rootpassword123";

/// A running server and a client for it.
pub struct TestApp {
    pub url: String,
    pub svc: Arc<Service>,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    /// Where its files are stored: this data dir (`<dir>/storage`), or an S3 bucket.
    pub storage: (std::path::PathBuf, Option<basalt::config::S3Settings>),
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Declared last: dropped after the server, so its database goes once nothing uses it.
    _db: Option<TestDb>,
}

/// The PostgreSQL server the whole suite runs against, if any: `BASALT_TEST_POSTGRES`
/// (e.g. `postgres://postgres@127.0.0.1:5432`). Unset: `spawn_app` uses a fresh SQLite file.
/// Tests that need PostgreSQL whatever the suite's engine ask `pg_test_server::server` instead.
pub fn postgres_server() -> Option<String> {
    std::env::var("BASALT_TEST_POSTGRES").ok().filter(|s| !s.is_empty())
}

/// The S3-compatible server (moto on loopback, started by `scripts/test`) every app of the suite
/// stores its files in, one fresh bucket per app: `BASALT_TEST_S3` (e.g.
/// `http://127.0.0.1:5000`). Unset: files go to the app's `<dir>/storage`.
pub fn s3_server() -> Option<String> {
    std::env::var("BASALT_TEST_S3").ok().filter(|s| !s.is_empty())
}

/// Creates a bucket for one app on the test S3 server (moto accepts unsigned requests).
async fn s3_bucket(endpoint: &str) -> basalt::config::S3Settings {
    let bucket = format!("basalt-t-{}", basalt::util::new_record_id());
    let res = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .expect("the S3 test server (BASALT_TEST_S3) is reachable");
    assert!(res.status().is_success(), "creating bucket {bucket}: {}", res.status());
    basalt::config::S3Settings {
        endpoint: endpoint.to_string(),
        bucket,
        region: "us-east-1".into(),
        access_key: "testing".into(),
        secret: basalt::config::Secret::new("testing"),
        force_path_style: true,
    }
}

/// A database created for one test and dropped when the test ends (also when it fails).
pub struct TestDb {
    server: String,
    pub name: String,
}

impl TestDb {
    pub async fn create(server: &str) -> TestDb {
        use sqlx::Connection;
        let name = format!("basalt_t_{}", basalt::util::new_record_id());
        let mut conn = sqlx::PgConnection::connect(&format!("{server}/postgres"))
            .await
            .expect("the PostgreSQL test server is reachable");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create db");
        TestDb { server: server.to_string(), name }
    }

    pub fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop runs outside async code: use a short-lived runtime on its own thread.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut conn) =
                    sqlx::PgConnection::connect(&format!("{server}/postgres")).await
                {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(&sql).execute(&mut conn).await;
                }
            });
        })
        .join();
    }
}

/// Starts a fresh server (empty data dir or database, one superuser) on a random loopback port.
pub async fn spawn_app() -> TestApp {
    let db = match postgres_server() {
        Some(server) => Some(TestDb::create(&server).await),
        None => None,
    };
    let url = db.as_ref().map(TestDb::url);
    start_app(url, db).await
}

/// Starts another server on an existing PostgreSQL database (several instances as one).
pub async fn spawn_app_on(db_url: &str) -> TestApp {
    start_app(Some(db_url.to_string()), None).await
}

/// Starts another server on an existing PostgreSQL database, storing files where `other` does
/// (its data dir or its bucket): several instances as one, files included.
pub async fn spawn_app_sharing_files(db_url: &str, other: &TestApp) -> TestApp {
    let (dir, s3) = other.storage.clone();
    start_app_with(Some(db_url.to_string()), None, move |config| {
        config.dir = dir;
        config.s3 = s3;
    })
    .await
}

/// Like `spawn_app` (same engine), with settings changed by `configure` (e.g. a metrics token).
pub async fn spawn_app_configured(configure: impl FnOnce(&mut Config)) -> TestApp {
    let db = match postgres_server() {
        Some(server) => Some(TestDb::create(&server).await),
        None => None,
    };
    let url = db.as_ref().map(TestDb::url);
    start_app_with(url, db, configure).await
}

async fn start_app(db_url: Option<String>, db: Option<TestDb>) -> TestApp {
    start_app_with(db_url, db, |_| {}).await
}

async fn start_app_with(
    db_url: Option<String>,
    db: Option<TestDb>,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config {
        http: "127.0.0.1:0".parse().expect("addr"),
        db: match db_url {
            Some(url) => DbLocation::parse(&url).expect("a PostgreSQL URL"),
            None => DbLocation::Sqlite { dir: dir.path().to_path_buf() },
        },
        dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    if let Some(endpoint) = s3_server() {
        config.s3 = Some(s3_bucket(&endpoint).await);
    }
    configure(&mut config);
    let storage = (config.dir.clone(), config.s3.clone());
    let app = App::build(&config).await.expect("app builds");
    let addr = app.local_addr().expect("bound");
    let svc = app.svc.clone();
    svc.upsert_superuser(SU_EMAIL, SU_PASSWORD, true).await.expect("superuser");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app.run_until(async move {
            let _ = rx.await;
        })
        .await
        .expect("server runs");
    });
    TestApp {
        url: format!("http://{addr}"),
        svc,
        client: reqwest::Client::new(),
        dir,
        storage,
        stop: Some(tx),
        task: Some(task),
        _db: db,
    }
}

/// Polls `check` every 20 ms until it returns true or `timeout` passes; returns the last result.
pub async fn eventually<F, Fut>(timeout: std::time::Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

impl TestApp {
    /// Sends a request; returns the status and the JSON body (`Value::Null` when empty).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.header("Authorization", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let bytes = res.bytes().await.expect("body read");
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        (status, value)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.send(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.send(Method::PATCH, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.send(Method::DELETE, path, token, None).await
    }

    /// Logs in to an auth collection and returns the token.
    pub async fn login(&self, collection: &str, identity: &str, password: &str) -> String {
        let (status, body) = self
            .post(
                &format!("/api/collections/{collection}/auth-with-password"),
                None,
                json!({"identity": identity, "password": password}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login failed: {body}");
        body["token"].as_str().expect("token").to_string()
    }

    pub async fn su_token(&self) -> String {
        self.login("_superusers", SU_EMAIL, SU_PASSWORD).await
    }

    /// Creates a collection as superuser, asserting success; returns its JSON.
    pub async fn create_collection(&self, su: &str, def: Value) -> Value {
        let (status, body) = self.post("/api/collections", Some(su), def).await;
        assert_eq!(status, StatusCode::OK, "collection create failed: {body}");
        body
    }

    /// Creates a user in `users` and returns (id, token).
    pub async fn create_user(&self, email: &str, password: &str) -> (String, String) {
        let (status, body) = self
            .post(
                "/api/collections/users/records",
                None,
                json!({"email": email, "password": password, "passwordConfirm": password}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "user create failed: {body}");
        let id = body["id"].as_str().expect("id").to_string();
        (id, self.login("users", email, password).await)
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// Percent-encodes a query-string value (filters, sorts, fields…).
pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `items[*][key]` of a list response, as strings, in response order.
pub fn pluck(list: &Value, key: &str) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list response: {list}"))
        .iter()
        .map(|it| match &it[key] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// Like `pluck` but sorted, for order-independent comparisons.
pub fn pluck_sorted(list: &Value, key: &str) -> Vec<String> {
    let mut v = pluck(list, key);
    v.sort();
    v
}

impl TestApp {
    /// Sends raw bytes with extra headers; returns the status and the JSON body (`Null` if not JSON).
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.url));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let bytes = res.bytes().await.expect("body read");
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Creates a record, asserting 200; returns it.
    pub async fn create_record(&self, token: Option<&str>, collection: &str, body: Value) -> Value {
        let (status, rec) =
            self.post(&format!("/api/collections/{collection}/records"), token, body).await;
        assert_eq!(status, StatusCode::OK, "record create in {collection} failed: {rec}");
        rec
    }

    /// Creates a record (asserting 200) and returns its id.
    pub async fn create_id(&self, token: Option<&str>, collection: &str, body: Value) -> String {
        self.create_record(token, collection, body).await["id"]
            .as_str()
            .expect("record id")
            .to_string()
    }

    /// Lists records of a collection with a raw query string (already encoded); asserts 200.
    pub async fn list(&self, collection: &str, query: &str, token: Option<&str>) -> Value {
        let (status, body) =
            self.get(&format!("/api/collections/{collection}/records?{query}"), token).await;
        assert_eq!(status, StatusCode::OK, "list {collection}?{query} failed: {body}");
        body
    }

    /// Creates an auth record in any auth collection (as guest, or with `token`) and logs in.
    pub async fn create_auth_record(
        &self,
        collection: &str,
        token: Option<&str>,
        extra: Value,
        email: &str,
        password: &str,
    ) -> (String, String) {
        let mut body = json!({"email": email, "password": password, "passwordConfirm": password});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let rec = self.create_record(token, collection, body).await;
        let id = rec["id"].as_str().expect("id").to_string();
        (id, self.login(collection, email, password).await)
    }
}

/// Starts a fresh server on SQLite whatever `BASALT_TEST_POSTGRES` says (tests that need a
/// SQLite project, e.g. `migrate-db`'s source).
pub async fn spawn_app_sqlite() -> TestApp {
    spawn_app_with_db(None).await
}

/// Starts a server on `db_url` (an existing PostgreSQL database, not dropped afterwards), or on
/// a fresh SQLite data directory when `None`; upserts the test superuser.
pub async fn spawn_app_with_db(db_url: Option<String>) -> TestApp {
    start_app(db_url, None).await
}
