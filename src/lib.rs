//! Basalt: a self-hosted, PocketBase-compatible backend-as-a-service in one binary.
//!
//! Modules in dependency order (each may use only those after it):
//! `cli` → `app` → `http` → `realtime`, `jobs` → `service` → `store` → `model` → `util`, plus
//! `config`;
//! `files` (stored files: keys, names, types, thumbnails) sits beside `store` and uses only `util`.
//! See `docs/architecture.md` for the map and its invariants.

pub mod app;
pub mod cli;
pub mod config;
pub mod files;
pub mod http;
pub mod jobs;
pub mod model;
pub mod realtime;
pub mod service;
pub mod store;
pub mod util;
