//! API keys: secrets for programs (an external worker, a CI job) with named scopes, instead of
//! a superuser's login. `POST /api/keys {name, scopes}` (superusers) returns the key once
//! (`bsk_<id>_<secret>`); only the secret's SHA-256 is stored. A request sends it as its
//! `Authorization` (with or without `Bearer `). Scopes: `jobs` (the `/api/jobs` API: enqueue,
//! read, operate, and the external workers' claim/heartbeat/complete/fail). To everything else
//! a key's request is a guest's.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::model::request::RequestInfo;
use crate::model::ErrorCode;
use crate::service::collections::require_superuser;
use crate::service::{error_entry, Result, Service, ServiceError};
use crate::store::system::ApiKey;

/// What a key may do.
pub const SCOPES: [&str; 1] = ["jobs"];
/// The prefix telling a key from a token.
pub const PREFIX: &str = "bsk_";
/// Keys in all.
pub const MAX_KEYS: usize = 1000;

/// `POST /api/keys`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRequest {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub scopes: Vec<String>,
}

fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Splits `bsk_<id>_<secret>`.
fn parse(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 15 && !secret.is_empty()).then_some((id, secret))
}

/// Superusers, or a key with `scope`; else the 401/403 a superuser-only route gives.
pub(crate) fn require_scope(info: &RequestInfo, scope: &str) -> Result<()> {
    if info.auth.is_none() && info.scopes.iter().any(|s| s == scope) {
        return Ok(());
    }
    require_superuser(info)
}

impl Service {
    /// The scopes of the key in an `Authorization` value; empty for anything else (a token,
    /// an unknown, revoked or wrong key).
    pub async fn api_key_scopes(&self, token: &str) -> Result<Vec<String>> {
        let Some((id, secret)) = parse(token) else { return Ok(Vec::new()) };
        let Some(key) = self.store.api_keys(Some(id)).await?.pop() else { return Ok(Vec::new()) };
        if bool::from(digest(secret).as_bytes().ct_eq(key.hash.as_bytes())) {
            Ok(key.scopes)
        } else {
            Ok(Vec::new())
        }
    }

    /// `POST /api/keys`: the new key, its secret shown this once.
    pub async fn create_api_key(&self, req: KeyRequest, info: &RequestInfo) -> Result<Value> {
        require_superuser(info)?;
        let mut data = Map::new();
        let name = req.name.trim().to_string();
        if name.is_empty() {
            data.insert("name".into(), error_entry(ErrorCode::Required, "Cannot be blank."));
        } else if name.chars().count() > 100 {
            data.insert(
                "name".into(),
                error_entry(ErrorCode::LengthOutOfRange, "The length must be between 1 and 100."),
            );
        }
        let mut scopes = req.scopes.clone();
        scopes.sort();
        scopes.dedup();
        if scopes.is_empty() {
            data.insert("scopes".into(), error_entry(ErrorCode::Required, "Cannot be blank."));
        } else if scopes.iter().any(|s| !SCOPES.contains(&s.as_str())) {
            data.insert(
                "scopes".into(),
                error_entry(ErrorCode::InInvalid, &format!("Must be among {SCOPES:?}.")),
            );
        }
        if self.store.api_keys(None).await?.len() >= MAX_KEYS {
            data.insert(
                "name".into(),
                error_entry(ErrorCode::TooManyValues, &format!("At most {MAX_KEYS} keys.")),
            );
        }
        if !data.is_empty() {
            return Err(ServiceError::fields("Failed to create the API key.", data));
        }
        let id = crate::util::random_from(b"abcdefghijklmnopqrstuvwxyz0123456789", 15);
        let secret = crate::util::random_alnum(40);
        let key = ApiKey {
            id: id.clone(),
            name,
            scopes,
            hash: digest(&secret),
            created: chrono::Utc::now().timestamp_millis(),
        };
        self.store.put_api_key(key.clone()).await?;
        let mut out = serde_json::to_value(&key).unwrap_or_else(|_| json!({}));
        out["key"] = json!(format!("{PREFIX}{id}_{secret}"));
        Ok(out)
    }

    /// `GET /api/keys`: without secrets.
    pub async fn list_api_keys(&self, info: &RequestInfo) -> Result<Value> {
        require_superuser(info)?;
        let keys = self.store.api_keys(None).await?;
        Ok(serde_json::to_value(keys).unwrap_or_else(|_| json!([])))
    }

    /// `DELETE /api/keys/{id}`: the key stops working at once, on every instance.
    pub async fn delete_api_key(&self, id: &str, info: &RequestInfo) -> Result<()> {
        require_superuser(info)?;
        if !self.store.delete_api_key(id).await? {
            return Err(ServiceError::not_found());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_only_in_their_shape() {
        assert_eq!(parse("bsk_abcdefghijklmno_secret"), Some(("abcdefghijklmno", "secret")));
        assert_eq!(parse("bsk_short_secret"), None);
        assert_eq!(parse("eyJhbGciOi.x.y"), None);
        assert_eq!(parse("bsk_abcdefghijklmno_"), None);
    }
}
