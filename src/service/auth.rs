//! Authentication: password hashing (bcrypt, PocketBase-compatible), JWT auth tokens (HS256,
//! PocketBase's claims, signed with the record's `tokenKey` + the collection secret, so changing
//! the password revokes every token), resolving a request's token, and the auth endpoints.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::model::collection::{Collection, TokenKind};
use crate::model::policy::{Action, Decision, Policy};
use crate::model::request::{AuthRecord, RequestInfo};
use crate::model::ErrorCode;
use crate::service::params::ViewParams;
use crate::service::passwords::{hash_password, verify_password};
use crate::service::render::FieldsSpec;
use crate::service::{error_entry, Result, Service, ServiceError};
use crate::store::Row;

/// bcrypt cost for new hashes (PocketBase's default).

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(rename = "collectionId")]
    collection_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refreshable: Option<bool>,
    exp: i64,
}

/// What every token of ours names (auth and file tokens alike): the record, its collection and
/// the token's type.
#[derive(Deserialize)]
struct TokenSubject {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(rename = "collectionId")]
    collection_id: String,
}

fn signing_key(coll: &Collection, record: &Row) -> Vec<u8> {
    token_key(coll, record, TokenKind::Auth)
}

/// The signing key of a `kind` token of `record`: its `tokenKey` and the collection's secret
/// for that kind (so a rotated `tokenKey` voids every token of the record).
pub(crate) fn token_key(coll: &Collection, record: &Row, kind: TokenKind) -> Vec<u8> {
    let token_key = record.get("tokenKey").and_then(Value::as_str).unwrap_or_default();
    let secret = coll.auth.as_ref().map(|a| a.tokens.get(kind).secret.as_str()).unwrap_or_default();
    format!("{token_key}{secret}").into_bytes()
}

/// The claims of a token, unverified (read before or after `Service::verify_token` checks the
/// signature); empty when it is no JWT.
pub(crate) fn unverified_claims(token: &str) -> Map<String, Value> {
    let mut v = Validation::new(Algorithm::HS256);
    v.insecure_disable_signature_validation();
    v.validate_exp = false;
    v.required_spec_claims.clear();
    jsonwebtoken::decode::<Map<String, Value>>(token, &DecodingKey::from_secret(&[]), &v)
        .map(|t| t.claims)
        .unwrap_or_default()
}

/// The body of `auth-with-password`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordLogin {
    #[serde(default)]
    pub identity: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub identity_field: Option<String>,
    /// The MFA session of a first factor passed before (see `auth_flows::login_with_factor`).
    #[serde(default)]
    pub mfa_id: Option<Value>,
}

impl Service {
    /// Issues an auth token for a record.
    pub(crate) fn issue_token(&self, coll: &Collection, record: &Row) -> Result<String> {
        let duration = coll.auth.as_ref().map_or(86400, |a| a.tokens.get(TokenKind::Auth).duration);
        self.issue_token_for(coll, record, duration, true)
    }

    /// An auth token valid `duration` seconds; `refreshable: false` for impersonation.
    pub(crate) fn issue_token_for(
        &self,
        coll: &Collection,
        record: &Row,
        duration: i64,
        refreshable: bool,
    ) -> Result<String> {
        let claims = Claims {
            id: record.get("id").and_then(Value::as_str).unwrap_or_default().to_string(),
            kind: "auth".into(),
            collection_id: coll.id.clone(),
            refreshable: Some(refreshable),
            exp: chrono::Utc::now().timestamp() + duration,
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&signing_key(coll, record)),
        )
        .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// Resolves an `Authorization` header value (with or without `Bearer `) to its record.
    /// Any invalid, expired or revoked token resolves to `Ok(None)` (guest); only an unavailable
    /// database is an error, so an outage is a 503 instead of silently logging the client out.
    pub async fn authenticate(&self, header: &str) -> Result<Option<AuthRecord>> {
        let token = header.trim();
        let token = token
            .strip_prefix("Bearer ")
            .or_else(|| token.strip_prefix("bearer "))
            .unwrap_or(token)
            .trim();
        if token.is_empty() {
            return Ok(None);
        }
        self.verify_token(token, "auth", signing_key).await
    }

    /// The auth record a token of type `kind` names, if the token is valid: its signature (with
    /// `key(collection, record)`, so a changed `tokenKey` revokes it) and expiry. Invalid,
    /// expired or revoked tokens are `Ok(None)`; only an unavailable database is an error.
    pub(crate) async fn verify_token(
        &self,
        token: &str,
        kind: &str,
        key: fn(&Collection, &Row) -> Vec<u8>,
    ) -> Result<Option<AuthRecord>> {
        let mut insecure = Validation::new(Algorithm::HS256);
        insecure.insecure_disable_signature_validation();
        insecure.validate_exp = false;
        let Ok(unverified) =
            jsonwebtoken::decode::<TokenSubject>(token, &DecodingKey::from_secret(&[]), &insecure)
        else {
            return Ok(None);
        };
        if unverified.claims.kind != kind {
            return Ok(None);
        }
        let schema = self.schema();
        let Some(coll) = schema.by_id(&unverified.claims.collection_id).cloned() else {
            return Ok(None);
        };
        if !coll.is_auth() {
            return Ok(None);
        }
        let found = self
            .store
            .get_record(&schema, &coll, &RequestInfo::default(), &unverified.claims.id, None)
            .await;
        let row = match found {
            Ok(Some(row)) => row,
            Ok(None) => return Ok(None),
            Err(crate::store::StoreError::Unavailable(cause)) => {
                return Err(ServiceError::Unavailable(cause))
            }
            Err(_) => return Ok(None),
        };
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        let key = DecodingKey::from_secret(&key(&coll, &row));
        if jsonwebtoken::decode::<TokenSubject>(token, &key, &validation).is_err() {
            return Ok(None);
        }
        Ok(Some(AuthRecord { collection: coll, record: row }))
    }

    /// The auth collection `name` (404 as PocketBase when it is not one).
    pub(crate) fn auth_collection(&self, name: &str) -> Result<Arc<Collection>> {
        let (_, c) = self.collection(name).map_err(|_| missing_auth_collection())?;
        if !c.is_auth() {
            return Err(missing_auth_collection());
        }
        Ok(c)
    }

    /// `POST /api/collections/{c}/auth-with-password`.
    pub async fn auth_with_password(
        &self,
        coll: &str,
        login: PasswordLogin,
        p: &ViewParams,
        info: &RequestInfo,
    ) -> Result<Value> {
        let coll = self.auth_collection(coll)?;
        let opts = coll.auth.clone().ok_or_else(missing_auth_collection)?;
        if !opts.password_auth_enabled {
            return Err(ServiceError::Forbidden(
                "The collection is not configured to allow password authentication.".into(),
            ));
        }
        let mut data = Map::new();
        if login.identity.is_empty() {
            data.insert("identity".into(), error_entry(ErrorCode::Required, "Cannot be blank."));
        }
        if login.password.is_empty() {
            data.insert("password".into(), error_entry(ErrorCode::Required, "Cannot be blank."));
        }
        if let Some(f) = &login.identity_field {
            if !opts.identity_fields.contains(f) {
                data.insert(
                    "identityField".into(),
                    error_entry(ErrorCode::InInvalid, "Must be a valid value."),
                );
            }
        }
        if !data.is_empty() {
            return Err(ServiceError::fields(
                "An error occurred while validating the submitted data.",
                data,
            ));
        }
        let fields = match &login.identity_field {
            Some(f) => vec![f.clone()],
            None => opts.identity_fields.clone(),
        };
        let mut found = None;
        for f in fields {
            if coll.field(&f).is_none() {
                continue;
            }
            if let Some(row) = self.store.find_by_field(&coll, &f, &login.identity).await? {
                found = Some(row);
                break;
            }
        }
        let failed = || ServiceError::bad("Failed to authenticate.");
        let Some(row) = found else {
            // Spend the same time as a real check so response times don't reveal which
            // identities exist.
            let dummy = self
                .dummy_hash
                .get_or_try_init(|| hash_password(crate::util::random_alnum(32)))
                .await?
                .clone();
            verify_password(login.password, dummy).await;
            return Err(failed());
        };
        let hash = row.get("password").and_then(Value::as_str).unwrap_or_default().to_string();
        if !verify_password(login.password, hash).await {
            return Err(failed());
        }
        let auth = AuthRecord { collection: coll.clone(), record: row };
        self.login_with_factor(auth, "password", login.mfa_id.as_ref(), p, info).await
    }

    /// `POST /api/collections/{c}/auth-refresh`.
    /// `token` is the one the request carried: one that is not refreshable (impersonation)
    /// comes back unchanged, as in PocketBase.
    pub async fn auth_refresh(
        &self,
        coll: &str,
        token: &str,
        p: &ViewParams,
        info: &RequestInfo,
    ) -> Result<Value> {
        let coll = self.auth_collection(coll)?;
        let auth = same_collection_auth(&coll, info)?;
        self.check_auth_rule(&auth, info).await?;
        let token = token.trim();
        let token = token.strip_prefix("Bearer ").unwrap_or(token).trim();
        if token_is_not_refreshable(token) {
            return self.auth_response_with(auth, token.to_string(), p, info).await;
        }
        self.auth_response(auth, p, info).await
    }

    /// `GET /api/collections/{c}/auth-methods`.
    pub fn auth_methods(&self, coll: &str) -> Result<Value> {
        let coll = self.auth_collection(coll)?;
        let opts = coll.auth.clone().ok_or_else(missing_auth_collection)?;
        let email_password =
            opts.password_auth_enabled && opts.identity_fields.iter().any(|f| f == "email");
        let username_password =
            opts.password_auth_enabled && opts.identity_fields.iter().any(|f| f == "username");
        // Enabled groups show their duration, disabled ones 0 (as PocketBase).
        let group = |key: &str| {
            let g = opts.extra.get(key);
            let enabled =
                g.and_then(|g| g.get("enabled")).and_then(Value::as_bool).unwrap_or(false);
            let duration = g.and_then(|g| g.get("duration")).and_then(Value::as_i64).unwrap_or(0);
            json!({"enabled": enabled, "duration": if enabled { duration } else { 0 }})
        };
        Ok(json!({
            "password": {"enabled": opts.password_auth_enabled, "identityFields": opts.identity_fields},
            "oauth2": {"enabled": false, "providers": []},
            "mfa": group("mfa"),
            "otp": group("otp"),
            "authProviders": [],
            "usernamePassword": username_password,
            "emailPassword": email_password,
        }))
    }

    /// The collection's `authRule` must let this record in; `null` lets nobody in, unless the
    /// request itself comes from a superuser (who passes every rule), as in PocketBase 0.40.6.
    /// A refusal is PocketBase's 403, not a failed login: the password was right.
    pub(crate) async fn check_auth_rule(
        &self,
        auth: &AuthRecord,
        info: &RequestInfo,
    ) -> Result<()> {
        let refused = || {
            ServiceError::Forbidden(
                "The request doesn't satisfy the collection requirements to authenticate.".into(),
            )
        };
        let rule = match Policy::new(info).decide(&auth.collection, Action::Auth) {
            Decision::All => return Ok(()),
            _ if auth.collection.auth.is_none() => return Err(missing_auth_collection()),
            Decision::Denied => return Err(refused()),
            Decision::Filter(rule) => rule,
        };
        let mut rinfo = info.clone();
        rinfo.auth = Some(auth.clone());
        let schema = self.schema();
        let found = self
            .store
            .get_record(&schema, &auth.collection, &rinfo, auth.id(), Some(&rule))
            .await?;
        if found.is_none() {
            return Err(refused());
        }
        Ok(())
    }

    /// `{token, record}` for a login that passed every check.
    pub(crate) async fn login_response(
        &self,
        auth: AuthRecord,
        p: &ViewParams,
        info: &RequestInfo,
    ) -> Result<Value> {
        // The device is remembered (and an alert mailed) after every factor passed; failing
        // to do so must not lock the record out.
        if let Err(e) = self.remember_origin(&auth, info).await {
            tracing::warn!(error = %e, "auth: remembering the login's device failed");
        }
        self.auth_response(auth, p, info).await
    }

    async fn auth_response(
        &self,
        auth: AuthRecord,
        p: &ViewParams,
        info: &RequestInfo,
    ) -> Result<Value> {
        let token = self.issue_token(&auth.collection, &auth.record)?;
        self.auth_response_with(auth, token, p, info).await
    }

    async fn auth_response_with(
        &self,
        auth: AuthRecord,
        token: String,
        p: &ViewParams,
        info: &RequestInfo,
    ) -> Result<Value> {
        let mut viewer = info.clone();
        viewer.auth = Some(auth.clone());
        let schema = self.schema();
        // `fields` picks from the whole answer (`fields=token`, `fields=record.email,token`), as
        // in PocketBase; `expand` still applies to the record.
        let record_params = ViewParams { expand: p.expand.clone(), fields: None };
        let record = self
            .present_one(&schema, &auth.collection, auth.record, &record_params, &viewer)
            .await?;
        let answer = json!({"token": token, "record": record});
        Ok(match p.fields.as_deref().and_then(FieldsSpec::parse) {
            Some(spec) => spec.apply(&answer),
            None => answer,
        })
    }
}

/// Whether a (verified) token says `refreshable: false`.
fn token_is_not_refreshable(token: &str) -> bool {
    unverified_claims(token).get("refreshable") == Some(&Value::Bool(false))
}

/// The request's auth record, which must belong to `coll` (401 without one, 403 naming the
/// caller's collection otherwise, as PocketBase's middleware words it).
pub(crate) fn same_collection_auth(coll: &Collection, info: &RequestInfo) -> Result<AuthRecord> {
    let Some(auth) = info.auth.clone() else {
        return Err(ServiceError::Unauthorized(
            "The request requires valid record authorization token.".into(),
        ));
    };
    if auth.collection.id != coll.id {
        return Err(ServiceError::Forbidden(format!(
            "The request requires auth record from {} collection.",
            auth.collection.name
        )));
    }
    Ok(auth)
}

pub(crate) fn missing_auth_collection() -> ServiceError {
    ServiceError::NotFound("Missing or invalid auth collection context.".into())
}

impl Service {
    /// A request context that acts as a superuser (CLI commands).
    pub(crate) fn system_info(&self) -> Result<RequestInfo> {
        let (_, coll) = self.collection(crate::model::collection::SUPERUSERS)?;
        Ok(RequestInfo {
            auth: Some(AuthRecord { collection: coll, record: Map::new() }),
            method: "POST".into(),
            context: "default",
            ..Default::default()
        })
    }

    /// Creates a superuser or (with `allow_update`) sets the password of an existing one.
    pub async fn upsert_superuser(
        &self,
        email: &str,
        password: &str,
        allow_update: bool,
    ) -> Result<()> {
        let info = self.system_info()?;
        let (_, coll) = self.collection(crate::model::collection::SUPERUSERS)?;
        let body = Map::from_iter([
            ("email".to_string(), json!(email)),
            ("password".to_string(), json!(password)),
            ("passwordConfirm".to_string(), json!(password)),
        ]);
        let params = ViewParams::default();
        match self.store.find_by_field(&coll, "email", email).await? {
            Some(row) if allow_update => {
                let id = row.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
                self.update_record(&coll.name, &id, body, &params, &info).await?;
            }
            Some(_) => {
                return Err(ServiceError::bad(format!("superuser {email:?} already exists")))
            }
            None => match self.create_record(&coll.name, body.clone(), &params, &info).await {
                Ok(_) => {}
                // Another process created it between our lookup and insert: update it instead.
                Err(ServiceError::BadRequest { data, .. })
                    if allow_update
                        && data
                            .get("email")
                            .is_some_and(|e| e["code"] == ErrorCode::NotUnique.as_str()) =>
                {
                    let row = self.store.find_by_field(&coll, "email", email).await?;
                    let id = row
                        .as_ref()
                        .and_then(|r| r.get("id"))
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    self.update_record(&coll.name, id, body, &params, &info).await?;
                }
                Err(e) => return Err(e),
            },
        }
        Ok(())
    }

    /// Deletes a superuser by email.
    pub async fn delete_superuser(&self, email: &str) -> Result<()> {
        let info = self.system_info()?;
        let (_, coll) = self.collection(crate::model::collection::SUPERUSERS)?;
        let row = self
            .store
            .find_by_field(&coll, "email", email)
            .await?
            .ok_or_else(ServiceError::not_found)?;
        let id = row.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
        self.delete_record(&coll.name, &id, &info).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hash written by PocketBase 0.40.6 (`superuser upsert x@y.co pocketbase-pass-1`).
    const POCKETBASE_HASH: &str = "$2a$10$HYdhmE8Iu/l1U0snSY.jn.f5nmWYQrrf9Da1LLiue6lcBERwqqjza";

    #[tokio::test]
    async fn verifies_pocketbase_hashes_and_writes_the_same_format() {
        assert!(verify_password("pocketbase-pass-1".into(), POCKETBASE_HASH.into()).await);
        assert!(!verify_password("wrong".into(), POCKETBASE_HASH.into()).await);
        let ours = hash_password("secret-123".into()).await.unwrap();
        assert!(ours.starts_with("$2a$10$"), "{ours}");
        assert!(verify_password("secret-123".into(), ours).await);
        assert!(!verify_password("x".into(), String::new()).await);
    }
}
