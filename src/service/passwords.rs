//! Password hashes: bcrypt in PocketBase's `$2a$` format, on tokio's blocking pool (a hash takes
//! tens of milliseconds). Used by logins (`auth.rs`) and record writes (`records.rs`); it has
//! no other service dependency, which keeps those two modules from importing each other.

use crate::service::{Result, ServiceError};

/// bcrypt's cost, as PocketBase uses.
pub const BCRYPT_COST: u32 = 10;

pub(crate) async fn hash_password(password: String) -> Result<String> {
    // `$2a$` like Go's bcrypt, so a Basalt database can move to PocketBase and back.
    tokio::task::spawn_blocking(move || {
        bcrypt::hash_with_result(password, BCRYPT_COST)
            .map(|h| h.format_for_version(bcrypt::Version::TwoA))
    })
    .await
    .map_err(|e| ServiceError::Internal(e.to_string()))?
    .map_err(|e| ServiceError::Internal(e.to_string()))
}

pub(crate) async fn verify_password(password: String, hash: String) -> bool {
    if hash.is_empty() {
        return false;
    }
    tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
        .await
        .unwrap_or(false)
}
