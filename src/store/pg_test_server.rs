//! Test support: which PostgreSQL server the PostgreSQL tests use, or that they skip. One
//! decision for the store's unit tests (`pg_test_db`) and for `tests/api`, which includes this
//! file with `#[path]`; so it uses only `std`.
//!
//! 1. `BASALT_TEST_POSTGRES` set: that server, unprobed (the API suite was asked to run on
//!    PostgreSQL: an unreachable one must fail, not skip).
//! 2. Otherwise `BASALT_TEST_POSTGRES_SERVER` (default `postgres://postgres@127.0.0.1:5432`),
//!    if a TCP connect to it succeeds within a second (probed once per test process).
//! 3. Otherwise, with `BASALT_REQUIRE_POSTGRES` set (CI, `scripts/test` with a required
//!    server), a panic; without it the test prints `SKIPPED: … (no PostgreSQL at host:port)`,
//!    appends its name to the file named by `BASALT_SKIP_LOG` (`scripts/test` counts them as
//!    not run) and returns without testing anything.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::OnceLock;
use std::time::Duration;

const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432";

/// The server URL (`postgres://user@host:port`, no database) for a test that needs
/// PostgreSQL, or `None` after reporting the skip. `what` says what is skipped.
pub fn server(what: &str) -> Option<String> {
    if let Some(url) = env("BASALT_TEST_POSTGRES") {
        return Some(url.trim_end_matches('/').to_string());
    }
    let url = env("BASALT_TEST_POSTGRES_SERVER").unwrap_or_else(|| DEFAULT_SERVER.to_string());
    let url = url.trim_end_matches('/').to_string();
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    let probed = PROBE.get_or_init(|| probe(&url));
    let Err(why) = probed else { return Some(url) };
    let at = host_port(&url);
    if env("BASALT_REQUIRE_POSTGRES").is_some_and(|v| v != "0") {
        panic!("PostgreSQL is required (BASALT_REQUIRE_POSTGRES) but {at} is unreachable: {why}");
    }
    let test = std::thread::current().name().unwrap_or("(unnamed test)").to_string();
    eprintln!("SKIPPED: {test}: {what} (no PostgreSQL at {at}: {why})");
    if let Some(log) = env("BASALT_SKIP_LOG") {
        let line = format!("{test}\t{what}\n");
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = appended {
            eprintln!("warning: cannot append to BASALT_SKIP_LOG {log}: {e}");
        }
    }
    None
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `host:port` of a `postgres://[user[:password]@]host[:port][/db]` URL (the password is
/// dropped: this goes into test output).
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let has_port = match host.strip_prefix('[') {
        Some(v6) => v6.split_once(']').is_some_and(|(_, p)| p.starts_with(':')),
        None => host.contains(':'),
    };
    if has_port {
        host.to_string()
    } else {
        format!("{host}:5432")
    }
}

fn probe(url: &str) -> Result<(), String> {
    let at = host_port(url);
    let addrs = at.to_socket_addrs().map_err(|e| format!("cannot resolve: {e}"))?;
    let mut last = "no address".to_string();
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}
