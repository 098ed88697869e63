//! The one integration test binary: every test starts a real Basalt server on a loopback port 0
//! with its own temporary data directory and talks HTTP to it.

mod architecture;
mod auth;
mod auth_flows;
mod change_feed;
mod cli;
mod collection_indexes;
mod collections;
mod collections_admin;
mod concurrency;
mod files;
mod filter_escapes;
mod filter_security;
mod helpers;
mod http_edges;
mod jobs;
mod migrate_db;
mod multi_instance;
mod numbers;
mod observability;
mod outbound;
mod pg_outage;
/// Which PostgreSQL server the PostgreSQL tests use, or that they skip: the same decision as the
/// store's unit tests (one file, shared).
#[path = "../../src/store/pg_test_server.rs"]
mod pg_test_server;
mod query;
mod query_list;
mod realtime;
mod records;
mod records_delete;
mod rules;
mod scale_out;
mod seed;
mod smoke;
mod smtp;
mod user_report;
