//! A real SMTP server on loopback for the mail tests: aiosmtpd (PyPI, installed by
//! `scripts/test` from tests/smtp/requirements.txt) writing each message into a Maildir.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{eventually, TestApp};

/// Points the app's mail at `smtp` (settings `smtp`), with `meta` (sender, app name…).
pub async fn send_mail_through(app: &TestApp, su: &str, smtp: &Smtp, meta: Value) {
    let body = json!({"meta": meta,
                      "smtp": {"enabled": true, "host": "127.0.0.1", "port": smtp.port}});
    let (status, s) = app.patch("/api/settings", Some(su), body).await;
    assert_eq!(status, StatusCode::OK, "{s}");
}

/// A real SMTP server writing each message into a Maildir.
pub struct Smtp {
    child: Child,
    pub port: u16,
    pub maildir: tempfile::TempDir,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub async fn start_smtp() -> Smtp {
    let python = std::env::var("BASALT_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let maildir = tempfile::tempdir().expect("maildir");
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(maildir.path().join(sub)).expect("maildir");
    }
    let port = free_port();
    let child = Command::new(&python)
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {python} -m aiosmtpd ({e}): pip install -r tests/smtp/requirements.txt"));
    let mut smtp = Smtp { child, port, maildir };
    let up = eventually(Duration::from_secs(15), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
    })
    .await;
    if !up {
        let _ = smtp.child.kill();
        let out = smtp.child.wait_with_output_stderr();
        panic!(
            "aiosmtpd did not start on {port} (pip install -r tests/smtp/requirements.txt): {out}"
        );
    }
    smtp
}

trait StderrOf {
    fn wait_with_output_stderr(&mut self) -> String;
}

impl StderrOf for Child {
    fn wait_with_output_stderr(&mut self) -> String {
        use std::io::Read;
        let mut s = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}

/// The messages the Maildir holds.
pub fn messages(dir: &Path) -> Vec<String> {
    let new = dir.join("new");
    let Ok(entries) = std::fs::read_dir(&new) else { return Vec::new() };
    entries.filter_map(|e| e.ok()).filter_map(|e| std::fs::read_to_string(e.path()).ok()).collect()
}
