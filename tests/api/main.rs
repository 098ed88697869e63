//! The one integration test binary: every test starts a real Basalt server on a loopback port 0
//! with its own temporary data directory and talks HTTP to it.

mod collections;
mod helpers;
mod records;
mod records_delete;
mod smoke;
