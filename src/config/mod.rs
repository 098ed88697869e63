//! Boot configuration: what needs a restart to change. Built once by `cli` from flags (clap also
//! reads the `BASALT_*` environment variables), then passed explicitly; no globals.

use std::net::SocketAddr;
use std::path::PathBuf;

/// How to run a server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (tests).
    pub http: SocketAddr,
    /// Data directory holding `data.db`.
    pub data_dir: PathBuf,
}
