//! Boot configuration: what needs a restart to change. Built once by `cli` from flags (clap also
//! reads the `BASALT_*` environment variables), then passed explicitly; no globals.

use std::net::SocketAddr;
use std::path::PathBuf;

/// How to run a server. Build it with `..Config::default()` so new settings keep their defaults.
#[derive(Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (tests).
    pub http: SocketAddr,
    /// Data directory holding `data.db`.
    pub data_dir: PathBuf,
    /// A `postgres://` URL to store everything in PostgreSQL instead of SQLite. It may hold a
    /// password: never log it (`Debug` redacts it).
    pub db_url: Option<String>,
    /// A bearer token that may read `/api/metrics` besides superusers (a Prometheus scraper has
    /// no superuser login). A secret: `Debug` redacts it.
    pub metrics_token: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http: SocketAddr::from(([127, 0, 0, 1], 8090)),
            data_dir: PathBuf::from("./basalt_data"),
            db_url: None,
            metrics_token: None,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("Config")
            .field("http", &self.http)
            .field("data_dir", &self.data_dir)
            .field("db_url", &redacted(&self.db_url))
            .field("metrics_token", &redacted(&self.metrics_token))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secrets() {
        let c = Config {
            db_url: Some("postgres://u:pw@h/db".into()),
            metrics_token: Some("s3cret-token".into()),
            ..Config::default()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("pw@") && !shown.contains("s3cret"), "{shown}");
    }
}
