//! The real `basalt` binary: `superuser` commands, `serve` (address printed on stdout, graceful
//! SIGTERM), data surviving a restart, `--version`/`--help`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_basalt");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("BASALT_DIR")
        .env_remove("BASALT_HTTP")
        .output()
        .expect("binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A running `basalt serve`, killed on drop if the test fails before stopping it.
pub(crate) struct Server {
    child: Option<Child>,
    pub(crate) url: String,
    client: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Server {
    /// Starts `serve --http 127.0.0.1:0` and reads the address from the startup line.
    async fn start(dir: &Path) -> Server {
        Server::start_with(dir, &[], &[]).await
    }

    /// `start` with more flags (e.g. `--db URL`) and environment variables.
    pub(crate) async fn start_with(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--http", "127.0.0.1:0", "--dir"])
            .arg(dir)
            .args(args)
            .envs(envs.iter().copied())
            .env_remove("BASALT_HTTP")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve starts");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let line = tokio::task::spawn_blocking(move || loop {
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(l) if l.starts_with("Server started at http://") => break l,
                Ok(_) => continue,
                Err(e) => panic!("no startup line: {e}"),
            }
        })
        .await
        .expect("reader");
        let url = line.trim_start_matches("Server started at ").trim().to_string();
        assert!(url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"), "{line}");
        Server { child: Some(child), url, client: reqwest::Client::new() }
    }

    /// SIGKILL: no shutdown of any kind.
    pub(crate) fn kill_hard(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        let mut req = self.client.post(format!("{}{path}", self.url)).json(&body);
        if let Some(t) = token {
            req = req.header("Authorization", t);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.client.get(format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.header("Authorization", t);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn login(&self, email: &str, password: &str) -> Result<String, Value> {
        let (status, body) = self
            .post(
                "/api/collections/_superusers/auth-with-password",
                None,
                json!({"identity": email, "password": password}),
            )
            .await;
        match status {
            StatusCode::OK => Ok(body["token"].as_str().expect("token").to_string()),
            _ => Err(body),
        }
    }

    /// Sends SIGTERM and waits (polling) for the process to exit; returns its exit code.
    async fn terminate(mut self) -> Option<i32> {
        let mut child = self.child.take().expect("running");
        let kill = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(kill.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "server did not exit after SIGTERM");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn superuser_upsert_then_serve_login_and_sigterm() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("fresh").join("data");
    let dir_s = dir.to_str().expect("utf8");
    let out = run(&["superuser", "upsert", "admin@example.com", "password12345", "--dir", dir_s]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).contains("Successfully saved superuser \"admin@example.com\""),
        "{}",
        stdout(&out)
    );
    assert!(dir.join("data.db").exists(), "data.db created");
    let server = Server::start(&dir).await;
    let (status, health) = server.get("/api/health", None).await;
    assert_eq!((status, &health["code"]), (StatusCode::OK, &json!(200)));
    let token = server.login("admin@example.com", "password12345").await.expect("login");
    assert!(server.login("admin@example.com", "wrongpassword").await.is_err());
    let (status, _) = server.get("/api/collections", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    // Upsert again while serving: the new password works at once.
    let out =
        run(&["superuser", "upsert", "admin@example.com", "changedpassword1", "--dir", dir_s]);
    assert!(out.status.success(), "{out:?}");
    server.login("admin@example.com", "changedpassword1").await.expect("new password");
    assert!(
        server.login("admin@example.com", "password12345").await.is_err(),
        "old password rejected"
    );
    assert_eq!(server.terminate().await, Some(0), "SIGTERM is a clean exit");
}

#[tokio::test]
async fn data_survives_a_restart() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let dir_s = dir.to_str().expect("utf8");
    assert!(run(&["superuser", "upsert", "admin@example.com", "password12345", "--dir", dir_s])
        .status
        .success());
    let server = Server::start(dir).await;
    let token = server.login("admin@example.com", "password12345").await.expect("login");
    let (status, body) = server
        .post(
            "/api/collections",
            Some(&token),
            json!({"name": "keep", "listRule": "", "fields": [{"name": "t", "type": "text"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut ids = Vec::new();
    for i in 0..20 {
        let (status, rec) = server
            .post("/api/collections/keep/records", Some(&token), json!({"t": format!("v{i}")}))
            .await;
        assert_eq!(status, StatusCode::OK, "{rec}");
        ids.push(rec["id"].as_str().expect("id").to_string());
    }
    assert_eq!(server.terminate().await, Some(0));
    let server = Server::start(dir).await;
    let (status, list) = server.get("/api/collections/keep/records?perPage=100&sort=t", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["totalItems"], 20);
    let (status, rec) =
        server.get(&format!("/api/collections/keep/records/{}", ids[7]), Some(&token)).await;
    assert_eq!((status, &rec["t"]), (StatusCode::OK, &json!("v7")));
    // The old token still works: signing keys are persisted, not per process.
    let (status, _) = server.get("/api/collections", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.terminate().await, Some(0));
}

#[tokio::test]
async fn superuser_create_and_delete() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path().to_str().expect("utf8");
    let out = run(&["superuser", "create", "a@example.com", "password12345", "--dir", d]);
    assert!(out.status.success(), "{out:?}");
    let out = run(&["superuser", "create", "a@example.com", "password12345", "--dir", d]);
    assert!(!out.status.success(), "create of an existing superuser fails");
    assert!(run(&["superuser", "upsert", "b@example.com", "password12345", "--dir", d])
        .status
        .success());
    let out = run(&["superuser", "delete", "a@example.com", "--dir", d]);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains("a@example.com"), "{}", stdout(&out));
    let out = run(&["superuser", "delete", "a@example.com", "--dir", d]);
    assert!(!out.status.success(), "deleting a missing superuser fails");
    let out = run(&["superuser", "upsert", "bad-email", "password12345", "--dir", d]);
    assert!(!out.status.success(), "invalid email is rejected");
    let out = run(&["superuser", "upsert", "c@example.com", "short", "--dir", d]);
    assert!(!out.status.success(), "short password is rejected");
    let server = Server::start(tmp.path()).await;
    assert!(server.login("a@example.com", "password12345").await.is_err(), "deleted");
    server.login("b@example.com", "password12345").await.expect("kept");
    assert!(server.login("c@example.com", "short").await.is_err());
    assert_eq!(server.terminate().await, Some(0));
}

#[test]
fn version_help_and_bad_arguments() {
    let out = run(&["--version"]);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains(env!("CARGO_PKG_VERSION")), "{}", stdout(&out));
    for args in [&["--help"][..], &["serve", "--help"], &["superuser", "--help"]] {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert!(!stdout(&out).is_empty());
    }
    assert!(stdout(&run(&["--help"])).contains("serve"));
    for args in [
        &["nope"][..],
        &["serve", "--http", "not-an-address"],
        &["superuser", "upsert", "only-email@example.com"],
    ] {
        let out = run(args);
        assert!(!out.status.success(), "{args:?} must fail");
    }
}

/// The binary with only the given `BASALT_*` variables (none inherited from the test's process).
fn run_with_env(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (name, _) in std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v))) {
        if name.starts_with("BASALT_") {
            cmd.env_remove(name);
        }
    }
    cmd.envs(vars.iter().copied()).output().expect("binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `dir` from a config file, then the environment, then a flag: each wins over the one before,
/// as seen by where `superuser upsert` creates its database.
#[test]
fn config_file_then_env_then_flag() {
    let tmp = tempfile::tempdir().expect("tmp");
    let at = |name: &str| tmp.path().join(name);
    let file = at("basalt.toml");
    std::fs::write(&file, format!("dir = {:?}\nlog_format = \"text\"\n", at("from-file")))
        .expect("write");
    let file_s = file.to_str().expect("utf8");
    let upsert = ["superuser", "upsert", "a@example.com", "password12345"];
    let with = |extra: &[&str], vars: &[(&str, &str)]| {
        let args: Vec<&str> = upsert.iter().chain(extra).copied().collect();
        let out = run_with_env(&args, vars);
        assert!(out.status.success(), "{extra:?} {vars:?}: {}", stderr(&out));
    };
    with(&["--config", file_s], &[]);
    assert!(at("from-file/data.db").is_file(), "the file's dir");
    let env_dir = at("from-env");
    let env_dir = env_dir.to_str().expect("utf8");
    with(&[], &[("BASALT_CONFIG", file_s), ("BASALT_DIR", env_dir)]);
    assert!(at("from-env/data.db").is_file(), "the env var over the file");
    let flag_dir = at("from-flag");
    with(&["--dir", flag_dir.to_str().expect("utf8")], &[("BASALT_DIR", env_dir)]);
    assert!(at("from-flag/data.db").is_file(), "the flag over the env var");
}

#[test]
fn config_errors_name_their_source() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().to_str().expect("utf8");
    let missing = tmp.path().join("missing.toml");
    let out =
        run_with_env(&["migrate", "--dir", dir, "--config", missing.to_str().expect("u")], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot read the config file"), "{}", stderr(&out));
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "dir = \"x\"\nhtpp = \"127.0.0.1:1\"\n").expect("write");
    let out = run_with_env(&["migrate", "--config", bad.to_str().expect("utf8")], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("line 2: unknown field `htpp`"), "{}", stderr(&out));
    let out = run_with_env(&["migrate", "--dir", dir], &[("BASALT_LOG_FORMAT", "xml")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("environment variable BASALT_LOG_FORMAT"), "{}", stderr(&out));
    let out = run_with_env(&["migrate", "--db", "mysql://u:hunter2@h/db"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("flag --db: unsupported database URL") && !err.contains("hunter2"),
        "{err}"
    );
    assert!(!tmp.path().join("x").exists() && !tmp.path().join("data.db").exists());
}

/// `basalt jobs ls | retry | purge` on a data directory.
#[tokio::test]
async fn jobs_commands_list_retry_and_purge() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8");
    let out = run(&["superuser", "upsert", "j@example.com", "password-123456", "--dir", d]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A job that succeeds and one an external worker fails for good, through a server.
    let server = Server::start(dir.path()).await;
    let token = server.login("j@example.com", "password-123456").await.expect("login");
    let (_, ok) = server.post("/api/jobs", Some(&token), json!({"kind": "noop"})).await;
    let ok_id = ok["id"].as_str().expect("id").to_string();
    let (_, bad) = server
        .post("/api/jobs", Some(&token), json!({"kind": "ext", "queue": "x", "maxAttempts": 1}))
        .await;
    let bad_id = bad["id"].as_str().expect("id").to_string();
    let (_, got) = server.post("/api/jobs/claim", Some(&token), json!({"queue": "x"})).await;
    let lease = got["items"][0]["lease"].clone();
    let (status, _) = server
        .post(
            &format!("/api/jobs/{bad_id}/fail"),
            Some(&token),
            json!({"lease": lease, "error": "nope"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.get(&format!("/api/jobs/{ok_id}"), Some(&token)).await.1["state"] != "succeeded" {
        assert!(Instant::now() < deadline, "the noop job ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.terminate().await, Some(0));

    let ls = stdout(&run(&["jobs", "ls", "--dir", d]));
    let line = |id: &str| ls.lines().find(|l| l.starts_with(id)).unwrap_or_default().to_string();
    assert!(line(&ok_id).contains("succeeded"), "{ls}");
    assert!(line(&bad_id).contains("dead") && line(&bad_id).contains("nope"), "{ls}");
    let dead = stdout(&run(&["jobs", "ls", "--state", "dead", "--dir", d]));
    assert!(dead.contains(&bad_id) && !dead.contains(&ok_id), "{dead}");

    assert!(run(&["jobs", "retry", &bad_id, "--dir", d]).status.success());
    let again = run(&["jobs", "retry", &bad_id, "--dir", d]);
    assert!(!again.status.success(), "only dead jobs");
    let pending = stdout(&run(&["jobs", "ls", "--state", "pending", "--dir", d]));
    assert!(pending.contains(&bad_id), "{pending}");

    let purged = run(&["jobs", "purge", "--dir", d]);
    assert!(stdout(&purged).contains("Deleted 1 succeeded jobs."), "{}", stdout(&purged));
    assert!(!stdout(&run(&["jobs", "ls", "--dir", d])).contains(&ok_id));
    assert!(!run(&["jobs", "purge", "--state", "pending", "--dir", d]).status.success());
}
