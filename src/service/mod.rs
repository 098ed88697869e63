//! Use cases: collections, records, auth. Rules, validation and transaction boundaries live here;
//! plain Rust types in and out (no axum, no SQL).
//!
//! `Service` owns the `Store` and the current `Schema` snapshot. Schema changes replace the
//! snapshot atomically; requests keep the `Arc<Schema>` they started with.

pub mod apikeys;
pub mod auth;
pub mod auth_flows;
pub mod collections;
pub mod crons;
mod expand;
pub mod files;
pub mod jobs;
pub mod mail;
pub mod params;
pub mod passwords;
pub mod realtime;
pub mod records;
mod render;
pub mod settings;
pub mod webhooks;

use std::sync::{Arc, RwLock};

use serde_json::{json, Map, Value};

use crate::files::cache::FileCache;
use crate::files::thumbs::{ThumbLimits, Thumbnailer};
use crate::files::FileStore;
use crate::model::collection::{
    Collection, CollectionType, Schema, TokenKind, SUPERUSERS, SUPERUSERS_ID, USERS_ID,
};
use crate::model::policy::Rule;
use crate::model::value::FieldError;
use crate::model::ErrorCode;
use crate::store::{Store, StoreError};

/// A use-case failure, mapped to HTTP by `http::error` (and only there).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// 400 with a message and per-field details (`{field: {code, message[, params]}}`).
    #[error("{message}")]
    BadRequest { message: String, data: Map<String, Value> },
    /// 401.
    #[error("{0}")]
    Unauthorized(String),
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 429: too many attempts.
    #[error("{0}")]
    TooManyRequests(String),
    /// A first factor passed where MFA applies: PocketBase's bare 401 `{"mfaId": …}` (no error
    /// envelope), the session's id for the second factor.
    #[error("multi-factor authentication required")]
    MfaRequired(String),
    /// 500; the text is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
    /// 500 from the store, kept whole so the log shows its `source()` chain; never sent.
    #[error("the store failed")]
    Store(#[source] StoreError),
    /// 503: the database cannot be reached right now; the text is logged, never sent.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

impl ServiceError {
    pub fn bad(message: impl Into<String>) -> Self {
        ServiceError::BadRequest { message: message.into(), data: Map::new() }
    }

    pub fn fields(message: impl Into<String>, data: Map<String, Value>) -> Self {
        ServiceError::BadRequest { message: message.into(), data }
    }

    pub fn not_found() -> Self {
        ServiceError::NotFound("The requested resource wasn't found.".into())
    }

    pub fn superusers_only() -> Self {
        ServiceError::Forbidden("Only superusers can perform this action.".into())
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Query(q) => ServiceError::fields(
                "Something went wrong while processing your request.",
                Map::from_iter([("error".to_string(), json!(q.0))]),
            ),
            StoreError::NotFound => ServiceError::not_found(),
            StoreError::Unavailable(cause) => ServiceError::Unavailable(cause),
            other => ServiceError::Store(other),
        }
    }
}

/// Renders one field error as PocketBase does.
pub(crate) fn field_error_json(e: &FieldError) -> Value {
    let mut o = json!({"code": e.code, "message": e.message});
    if let Some(p) = &e.params {
        o["params"] = p.clone();
    }
    o
}

pub(crate) fn error_entry(code: ErrorCode, message: &str) -> Value {
    json!({"code": code, "message": message})
}

/// Memory for hot files (metadata and small files' bytes): 64 MiB. FIXME(#16): from the
/// settings, with the other caches.
const FILE_CACHE_BYTES: u64 = 64 << 20;
/// Files up to this size are kept whole in that memory.
const FILE_CACHE_MAX_OBJECT: u64 = 1 << 20;

/// The application core: storage plus the schema snapshot.
pub struct Service {
    store: Arc<Store>,
    /// Shared with the schema watcher task (see `watch_schema`).
    schema: Arc<RwLock<Arc<Schema>>>,
    /// A bcrypt hash checked against when a login names an unknown identity (equal timing).
    dummy_hash: tokio::sync::OnceCell<String>,
    /// Uploaded files (local disk or S3) and their thumbnails.
    files: FileStore,
    thumbs: Arc<Thumbnailer>,
    /// Hot files' metadata and small files' bytes (see `files::cache`).
    file_cache: Arc<FileCache>,
    /// How mail and webhooks leave the server.
    outbound: Outbound,
    webhook_client: std::sync::OnceLock<reqwest13::Client>,
    /// Signalled when a cron schedule is saved or removed here.
    crons_changed: tokio::sync::Notify,
    /// Verification and reset mails sent in the last `auth_flows::RESEND_EVERY`, by flow and
    /// record (this instance's view: PocketBase's resend window).
    flow_mails: moka::sync::Cache<String, ()>,
    /// `auth-with-otp` attempts per auth record in the last `auth_flows::OTP_WINDOW`.
    otp_attempts: moka::sync::Cache<String, Arc<std::sync::atomic::AtomicU32>>,
}

/// How side effects reach the outside (from the boot config).
#[derive(Debug, Clone)]
pub struct Outbound {
    /// The command mail goes through while SMTP is disabled (`sendmail -i -t`).
    pub sendmail: String,
    /// Networks webhooks may reach although private, loopback or link-local.
    pub webhooks_allow: Vec<ipnet::IpNet>,
}

impl Default for Outbound {
    fn default() -> Self {
        Outbound { sendmail: "sendmail".into(), webhooks_allow: Vec::new() }
    }
}

impl Service {
    /// Loads the schema and creates the default collections of a fresh data directory.
    /// `files` holds the records' uploaded files.
    pub async fn new(store: Arc<Store>, files: FileStore, outbound: Outbound) -> Result<Service> {
        let thumbs = Arc::new(Thumbnailer::new(files.clone(), ThumbLimits::default()));
        let svc = Service {
            store,
            schema: Arc::new(RwLock::new(Arc::new(Schema::default()))),
            dummy_hash: tokio::sync::OnceCell::new(),
            files,
            thumbs,
            file_cache: Arc::new(FileCache::new(FILE_CACHE_BYTES, FILE_CACHE_MAX_OBJECT)),
            outbound,
            webhook_client: std::sync::OnceLock::new(),
            crons_changed: tokio::sync::Notify::new(),
            flow_mails: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(auth_flows::RESEND_EVERY)
                .build(),
            otp_attempts: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(auth_flows::OTP_WINDOW)
                .build(),
        };
        svc.reload_schema().await?;
        svc.ensure_default_collections().await?;
        Ok(svc)
    }

    /// The HTTP client of webhook deliveries (built on first use).
    pub(crate) fn webhook_client(&self) -> std::result::Result<reqwest13::Client, String> {
        if let Some(c) = self.webhook_client.get() {
            return Ok(c.clone());
        }
        let c = webhooks::client(&self.outbound.webhooks_allow)?;
        Ok(self.webhook_client.get_or_init(|| c).clone())
    }

    /// Stops using the database: checkpoints SQLite's WAL or closes the PostgreSQL pool.
    pub async fn close(&self) {
        self.store.close().await;
    }

    /// How busy the database connections are (engine-neutral numbers, for metrics).
    /// How current the change feed is: (last position published, delivery lag in ms).
    pub fn feed_stats(&self) -> (i64, i64) {
        use std::sync::atomic::Ordering::Relaxed;
        let s = self.store.feed_stats();
        (s.position.load(Relaxed), s.lag_ms.load(Relaxed))
    }

    pub fn pool_stats(&self) -> crate::store::PoolStats {
        self.store.pool_stats()
    }

    /// Read statements run so far (tests use it to catch a query per row).
    pub fn query_count(&self) -> u64 {
        self.store.query_count()
    }

    /// The stored record of `coll` whose `field` equals `value`, every field included (hidden
    /// ones too): for trusted callers (CLI, tests), never for a client answer.
    pub async fn find_record_by(
        &self,
        coll: &str,
        field: &str,
        value: &str,
    ) -> Result<Option<crate::store::Row>> {
        let (_, c) = self.collection(coll)?;
        Ok(self.store.find_by_field(&c, field, value).await?)
    }

    /// With several instances on one database, reloads the schema snapshot whenever any of
    /// them announces a change, so collections created or altered elsewhere are served here
    /// without a restart.
    /// The task is the caller's to own and stop (the `App` aborts it on shutdown); `None` on
    /// engines with one instance (SQLite).
    pub fn watch_schema(&self) -> Option<tokio::task::JoinHandle<()>> {
        let mut events = self.store.schema_events()?;
        let (store, slot) = (self.store.clone(), self.schema.clone());
        Some(tokio::spawn(async move {
            while events.changed().await.is_ok() {
                match store.load_collections().await {
                    Ok(all) => {
                        let next = Arc::new(Schema::new(all));
                        match slot.write() {
                            Ok(mut s) => *s = next,
                            Err(poisoned) => *poisoned.into_inner() = next,
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "schema reload after a change failed"),
                }
            }
        }))
    }

    /// The current schema snapshot.
    pub fn schema(&self) -> Arc<Schema> {
        match self.schema.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(crate) async fn reload_schema(&self) -> Result<()> {
        let all = self.store.load_collections().await?;
        let next = Arc::new(Schema::new(all));
        match self.schema.write() {
            Ok(mut s) => *s = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
        Ok(())
    }

    async fn ensure_default_collections(&self) -> Result<()> {
        let schema = self.schema();
        let now = crate::util::now_string();
        if let Some(old) = schema.get(SUPERUSERS) {
            self.add_superuser_dates(old).await?;
        } else {
            let mut c = Collection::blank(CollectionType::Auth, SUPERUSERS);
            c.id = SUPERUSERS_ID.into();
            c.system = true;
            c.created.clone_from(&now);
            c.updated.clone_from(&now);
            if let Some(a) = c.auth.as_mut() {
                a.tokens.get_mut(TokenKind::Auth).duration = 86400;
                a.auth_rule = Rule::open();
            }
            c.indexes = vec![
                "CREATE UNIQUE INDEX idx_tokenKey_pbc_3142635823 ON _superusers (tokenKey)".into(),
                "CREATE UNIQUE INDEX idx_email_pbc_3142635823 ON _superusers (email) WHERE email != ''".into(),
            ];
            c.fields.extend(superuser_autodates()?);
            self.create_default(&c).await?;
        }
        if schema.get(USERS_ID).is_none() && schema.get("users").is_none() {
            let mut c = Collection::blank(CollectionType::Auth, "users");
            c.id = USERS_ID.into();
            c.created.clone_from(&now);
            c.updated.clone_from(&now);
            let own = Rule::new(Some("id = @request.auth.id".to_string()));
            c.rules.list = own.clone();
            c.rules.view = own.clone();
            c.rules.create = Rule::open();
            c.rules.update = own.clone();
            c.rules.delete = own;
            c.fields.extend(default_fields(&[
                json!({"name": "name", "type": "text", "max": 255}),
                json!({"name": "avatar", "type": "file", "maxSelect": 1, "maxSize": 0,
                       "mimeTypes": ["image/jpeg", "image/png", "image/svg+xml", "image/gif", "image/webp"]}),
            ])?);
            c.fields.extend(autodate_fields()?);
            c.indexes = vec![
                "CREATE UNIQUE INDEX idx_tokenKey__pb_users_auth_ ON users (tokenKey)".into(),
                "CREATE UNIQUE INDEX idx_email__pb_users_auth_ ON users (email) WHERE email != ''"
                    .into(),
            ];
            self.create_default(&c).await?;
        }
        for c in auth_system_collections(&now)? {
            if schema.by_id(&c.id).is_none() && schema.get(&c.name).is_none() {
                self.create_default(&c).await?;
            }
        }
        self.reload_schema().await
    }

    /// Data directories made before `_superusers` had PocketBase's `created`/`updated` fields
    /// get them on start (existing superusers keep an empty date until their next update).
    /// Another instance may add them at the same moment; losing that race is fine.
    async fn add_superuser_dates(&self, old: &Arc<Collection>) -> Result<()> {
        if old.field("created").is_some() && old.field("updated").is_some() {
            return Ok(());
        }
        let mut c = (**old).clone();
        let missing: Vec<_> =
            superuser_autodates()?.into_iter().filter(|f| c.field(&f.name).is_none()).collect();
        c.fields.extend(missing);
        c.updated = crate::util::now_string();
        if let Err(e) = self.store.update_collection(old, &c).await {
            let all = self.store.load_collections().await?;
            let done = all.iter().any(|x| x.id == c.id && x.field("created").is_some());
            if !done {
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Creates a default collection; another instance starting on the same database at the
    /// same moment may have won the race, which is fine.
    async fn create_default(&self, c: &Collection) -> Result<()> {
        if let Err(e) = self.store.create_collection(c).await {
            let exists = self.store.load_collections().await?.iter().any(|x| x.id == c.id);
            if !exists {
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// The change feed: every record change committed from now on (cascades and relation
    /// clean-ups included; on PostgreSQL, other instances' too). See `Store::subscribe`.
    pub fn changes(&self) -> tokio::sync::broadcast::Receiver<crate::store::Change> {
        self.store.subscribe()
    }

    /// Catch-up for a feed consumer that lagged or restarted: the changes after `pos`.
    pub async fn changes_since(&self, pos: i64, limit: i64) -> Result<Vec<crate::store::Change>> {
        Ok(self.store.changes_since(pos, limit).await?)
    }

    /// Drops outbox rows older than `retention`; returns the highest pruned position.
    pub async fn prune_changes(&self, retention: chrono::Duration) -> Result<i64> {
        Ok(self.store.prune_changes(retention).await?)
    }

    /// Looks a collection up by id or name, with PocketBase's 404 message.
    pub(crate) fn collection(&self, id_or_name: &str) -> Result<(Arc<Schema>, Arc<Collection>)> {
        let schema = self.schema();
        let c = schema
            .get(id_or_name)
            .cloned()
            .ok_or_else(|| ServiceError::NotFound("Missing collection context.".into()))?;
        Ok((schema, c))
    }
}

/// Fields of the default collections from their PocketBase JSON, with PocketBase's field ids.
fn default_fields(defs: &[Value]) -> Result<Vec<crate::model::field::Field>> {
    defs.iter()
        .map(|e| {
            let mut f = crate::model::field::Field::from_json(e)
                .map_err(|e| ServiceError::Internal(e.to_string()))?;
            f.id = crate::model::field::Field::default_id(f.kind.type_name(), &f.name);
            Ok(f)
        })
        .collect()
}

/// `created` and `updated`, as every PocketBase default collection has them.
fn autodate_fields() -> Result<Vec<crate::model::field::Field>> {
    default_fields(&[
        json!({"name": "created", "type": "autodate", "onCreate": true, "onUpdate": false}),
        json!({"name": "updated", "type": "autodate", "onCreate": true, "onUpdate": true}),
    ])
}

/// PocketBase's system collections of the auth flows, with its ids, fields, rules and indexes:
/// `_mfas` (first factors passed), `_otps` (one-time codes, hashed), `_externalAuths` (OAuth2
/// links), `_authOrigins` (devices a record signed in from). Each row names its auth record
/// (`collectionRef`, `recordRef`), which alone may list and view it (and unlink or forget an
/// OAuth2 link or an origin).
fn auth_system_collections(now: &str) -> Result<Vec<Collection>> {
    struct SystemSpec {
        id: &'static str,
        name: &'static str,
        /// Its fields after `collectionRef` and `recordRef`.
        extra: Vec<Value>,
        /// Whether the owner may delete its rows.
        owner_deletes: bool,
        indexes: Vec<&'static str>,
    }
    fn spec(
        id: &'static str,
        name: &'static str,
        extra: Vec<Value>,
        owner_deletes: bool,
        indexes: Vec<&'static str>,
    ) -> SystemSpec {
        SystemSpec { id, name, extra, owner_deletes, indexes }
    }
    let owner = "@request.auth.id != '' && recordRef = @request.auth.id && \
                 collectionRef = @request.auth.collectionId";
    let text = |name: &str, required: bool, hidden: bool| json!({"name": name, "type": "text", "required": required, "hidden": hidden, "system": true});
    let specs: [SystemSpec; 4] = [
        spec(
            "pbc_2279338944",
            "_mfas",
            vec![text("method", true, false)],
            false,
            vec![
                "CREATE INDEX idx_mfas_collectionRef_recordRef ON _mfas (collectionRef, recordRef)",
            ],
        ),
        spec(
            "pbc_1638494021",
            "_otps",
            vec![
                json!({"name": "password", "type": "password", "required": true, "hidden": true,
                       "system": true, "cost": 8}),
                text("sentTo", false, true),
            ],
            false,
            vec![
                "CREATE INDEX idx_otps_collectionRef_recordRef ON _otps (collectionRef, recordRef)",
            ],
        ),
        spec(
            "pbc_2281828961",
            "_externalAuths",
            vec![text("provider", true, false), text("providerId", true, false)],
            true,
            vec![
                "CREATE UNIQUE INDEX idx_externalAuths_record_provider ON _externalAuths \
                 (collectionRef, recordRef, provider)",
                "CREATE UNIQUE INDEX idx_externalAuths_collection_provider ON _externalAuths \
                 (collectionRef, provider, providerId)",
            ],
        ),
        spec(
            "pbc_4275539003",
            "_authOrigins",
            vec![text("fingerprint", true, false)],
            true,
            vec![
                "CREATE UNIQUE INDEX idx_authOrigins_unique_pairs ON _authOrigins \
                 (collectionRef, recordRef, fingerprint)",
            ],
        ),
    ];
    specs
        .into_iter()
        .map(|SystemSpec { id, name, extra, owner_deletes, indexes }| {
            let mut c = Collection::blank(CollectionType::Base, name);
            c.id = id.into();
            c.system = true;
            c.created = now.to_string();
            c.updated = now.to_string();
            c.rules.list = Rule::new(Some(owner.to_string()));
            c.rules.view = c.rules.list.clone();
            if owner_deletes {
                c.rules.delete = c.rules.list.clone();
            }
            let mut fields =
                vec![text("collectionRef", true, false), text("recordRef", true, false)];
            fields.extend(extra);
            c.fields.extend(default_fields(&fields)?);
            c.fields.extend(superuser_autodates()?);
            c.indexes = indexes.into_iter().map(String::from).collect();
            Ok(c)
        })
        .collect()
}

/// `_superusers`' autodates are system fields there (PocketBase 0.40.6), unlike in `users`.
fn superuser_autodates() -> Result<Vec<crate::model::field::Field>> {
    let mut fields = autodate_fields()?;
    for f in &mut fields {
        f.system = true;
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store failure keeps the store's error as its source, so the 5xx log line shows both.
    #[test]
    fn a_store_failure_keeps_its_source() {
        let e = ServiceError::from(StoreError::Db("disk I/O error".into()));
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("database error: disk I/O error"));
    }
}
