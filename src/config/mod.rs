//! Boot configuration: what needs a restart to change. Built once by `cli` from flags (clap also
//! reads the `BASALT_*` environment variables), then passed explicitly; no globals.

use std::net::SocketAddr;
use std::path::PathBuf;

/// How to run a server.
#[derive(Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (tests).
    pub http: SocketAddr,
    /// Data directory holding `data.db`.
    pub data_dir: PathBuf,
    /// A `postgres://` URL to store everything in PostgreSQL instead of SQLite. It may hold a
    /// password: never log it (`Debug` redacts it).
    pub db_url: Option<String>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("http", &self.http)
            .field("data_dir", &self.data_dir)
            .field("db_url", &self.db_url.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}
