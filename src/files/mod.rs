//! Files: where uploads live and how they are named, typed and thumbnailed. `FileStore`
//! (`store.rs`) wraps `object_store` (the local disk under `<data dir>/storage`, or any
//! S3-compatible service) behind checked keys (`keys.rs`, PocketBase's layout); `names.rs` mangles
//! client names as PocketBase does; `mime.rs` detects types from the bytes; `thumbs.rs` parses
//! `?thumb=` sizes and renders thumbnails (off the async threads, once per key); `cache.rs` keeps
//! hot objects (immutable under their keys) in memory.
//!
//! Nothing here knows HTTP, SQL, records or rules: services decide which file may be read or
//! written, this module only does it safely.

pub mod cache;
pub mod keys;
pub mod mime;
pub mod names;
pub mod store;
pub mod thumbs;
pub mod upload;

pub use keys::{FileKey, KeyPrefix};
pub use store::{Download, FileMeta, FileStore, PutInfo, S3Config};
pub use upload::{FileContent, UploadedFile};

/// What can go wrong in this module.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// A key segment failed the whitelist (a client-provided name, usually).
    #[error("invalid file key {0}")]
    InvalidKey(String),
    #[error("file not found")]
    NotFound,
    /// A byte range outside the object.
    #[error("the requested range is not satisfiable")]
    RangeNotSatisfiable,
    /// Bad storage configuration (bucket missing, endpoint not a URL…).
    #[error("invalid storage configuration: {0}")]
    Config(String),
    #[error("storage error")]
    Store(#[source] object_store::Error),
    #[error("local I/O error")]
    Io(#[source] std::io::Error),
    /// The upload's own stream failed (the client went away, a temp file broke).
    #[error("reading the upload failed")]
    Source(#[source] std::io::Error),
    /// An image refused before or while decoding (too large, malformed, unsupported).
    #[error("cannot make a thumbnail: {0}")]
    Image(String),
    /// A background task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
}

impl From<object_store::Error> for FileError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => FileError::NotFound,
            e => FileError::Store(e),
        }
    }
}
