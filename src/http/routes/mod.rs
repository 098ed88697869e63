//! Thin handlers, one file per resource.
pub mod auth;
pub mod collections;
pub mod files;
pub mod health;
pub mod jobs;
pub mod metrics;
pub mod realtime;
pub mod records;
pub mod settings;
