//! Storage: the ONLY place with SQL text, rusqlite, sqlx, or an engine name.
//!
//! `Store` is a concrete facade over `Backend` (SQLite or PostgreSQL); every method dispatches
//! with one `match` on it. Services hand it model types (collections, filter ASTs, rows as JSON
//! maps) and get model types back. Every collection is a real table whose columns are its fields.
//! SQL built here goes through `Dialect` (placeholders, JSON functions) so it runs on both.

mod cascade;
pub mod changes;
mod ddl;
mod dialect;
mod engine;
pub mod jobs;
mod migrate;
#[cfg(test)]
mod pg_test_db;
mod postgres;
mod query;
mod schema_sql;
mod sqlite;
mod stored;
pub mod system;
mod transfer;
pub mod webhooks;
mod work;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::config::DbLocation;
use crate::model::collection::{Collection, Schema};
use crate::model::filter::ast::Expr;
use crate::model::filter::SortItem;
use crate::model::request::RequestInfo;

pub use changes::{Action, Change, FeedStats, FEED_CAPACITY};
pub use query::{Param, QueryError};
pub use transfer::{copy_database, Definition, Progress, Report, TableReport, DEFAULT_BATCH_SIZE};
pub use work::Work;

/// The default log filter: `info`, with the database driver's own notices (e.g. PostgreSQL's
/// "relation already exists, skipping" from idempotent migrations) kept to warnings.
pub const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn";

/// A record as stored: field name → value in its stored JSON shape.
pub type Row = Map<String, Value>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The engine failed; the text is for logs only, never for clients.
    #[error("database error: {0}")]
    Db(String),
    /// A unique index rejected the write; the fields it covers.
    #[error("unique constraint failed on {0:?}")]
    Unique(Vec<String>),
    /// A filter, sort or rule that cannot be compiled (client error).
    #[error("invalid expression: {0}")]
    Query(#[from] QueryError),
    /// A rule checked inside the write transaction rejected it; nothing was written.
    #[error("rule check failed")]
    RuleFailed,
    /// A record to delete is still referenced by a required relation.
    #[error("record is referenced by a required relation in {0}")]
    RequiredRelation(String),
    #[error("not found")]
    NotFound,
    /// The change feed's outbox no longer holds the changes after the asked position: they were
    /// pruned up to this position.
    #[error("changes up to position {0} were pruned")]
    ChangesPruned(i64),
    /// An index definition that cannot be used.
    #[error("invalid index: {0}")]
    Index(String),
    /// The database cannot be reached (connection lost, refused, or no free connection in
    /// time); the request may succeed later. The text is for logs only.
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

/// How busy the database connections are, in engine-neutral numbers (for metrics). SQLite
/// counts its pool of read-only connections (the one writer is not pooled); PostgreSQL its
/// connection pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections the pool may open at most.
    pub max: u32,
    /// Open connections waiting for work.
    pub idle: u32,
    /// Connections running a statement right now.
    pub in_use: u32,
}

/// One "page" request over a collection.
pub struct ListQuery<'a> {
    pub schema: &'a Schema,
    pub collection: &'a Arc<Collection>,
    pub info: &'a RequestInfo,
    /// The API rule to apply (already decided: `None` means no restriction).
    pub rule: Option<&'a Expr>,
    pub filter: Option<&'a Expr>,
    pub sort: &'a [SortItem],
    pub limit: i64,
    pub offset: i64,
    pub count_total: bool,
}

/// How records are fetched for `expand`.
pub enum RelatedBy<'a> {
    /// Records whose id is in the list.
    Ids(&'a [String]),
    /// Records whose relation field `field` contains one of the ids (back-relation).
    Field { field: &'a str, ids: &'a [String] },
}

/// A checked rule evaluated against a freshly written row inside its transaction.
pub struct RuleCheck<'a> {
    pub schema: &'a Schema,
    pub info: &'a RequestInfo,
    pub rule: &'a Expr,
}

enum Backend {
    Sqlite(sqlite::Db),
    Postgres(postgres::Db),
}

/// The storage facade.
pub struct Store {
    backend: Backend,
    queries: AtomicU64,
    /// This process's name in the outbox (its own rows are published without re-reading).
    instance: String,
    /// The change feed: local changes after commit, other instances' from the outbox tailer.
    feed: tokio::sync::broadcast::Sender<Change>,
    feed_stats: Arc<FeedStats>,
    /// Signalled after a local commit that may have added jobs.
    jobs_ready: tokio::sync::Notify,
}

/// `SELECT` of the ids of `coll` that are in `ids` (bound as one JSON array parameter).
pub(crate) fn existing_ids_sql(
    d: &dyn dialect::Dialect,
    coll: &Collection,
    ids: &[String],
) -> (String, Vec<Param>) {
    let sql = format!(
        "SELECT t.\"id\" FROM {} t WHERE t.\"id\" IN (SELECT {} FROM {})",
        dialect::quote_ident(&coll.name),
        d.json_each_value("ids"),
        d.json_each(&d.placeholder(1), "ids")
    );
    (sql, vec![Param::Text(Value::from(ids.to_vec()).to_string())])
}

/// `SELECT` of the first record of `coll` whose `field` equals `value`.
pub(crate) fn find_by_field_sql(
    d: &dyn dialect::Dialect,
    coll: &Collection,
    field: &str,
    value: &str,
) -> (String, Vec<Param>) {
    let sql = format!(
        "SELECT {} FROM {} t WHERE t.{} = {} LIMIT 1",
        schema_sql::select_list(coll, "t"),
        dialect::quote_ident(&coll.name),
        dialect::quote_ident(field),
        d.placeholder(1)
    );
    (sql, vec![Param::Text(value.to_string())])
}

impl Store {
    /// Opens the database `location` names and applies system migrations: SQLite in
    /// `dir/data.db` (created if needed) or PostgreSQL. The one place that picks the engine.
    pub async fn open(location: &DbLocation) -> Result<Store, StoreError> {
        match location {
            DbLocation::Postgres { url } => {
                let db = postgres::Db::open(url.expose()).await?;
                let store = Store::with_backend(Backend::Postgres(db));
                if let Backend::Postgres(db) = &store.backend {
                    db.start_feed(&store.instance, store.feed.clone(), store.feed_stats.clone());
                }
                Ok(store)
            }
            DbLocation::Sqlite { dir } => {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Db(e.to_string()))?;
                let db = sqlite::Db::open(&dir.join("data.db"))?;
                db.write(migrate::apply_sqlite).await?;
                Ok(Store::with_backend(Backend::Sqlite(db)))
            }
        }
    }

    fn with_backend(backend: Backend) -> Store {
        let (feed, _) = tokio::sync::broadcast::channel(FEED_CAPACITY);
        Store {
            backend,
            queries: AtomicU64::new(0),
            instance: crate::util::random_alnum(16),
            feed,
            feed_stats: Arc::default(),
            jobs_ready: tokio::sync::Notify::new(),
        }
    }

    /// How current the change feed is (position and delivery lag), for metrics.
    pub fn feed_stats(&self) -> &FeedStats {
        &self.feed_stats
    }

    /// The change feed: every record change committed from now on, by this process or (on
    /// PostgreSQL) by any instance on the same database. A receiver that falls more than
    /// [`FEED_CAPACITY`] changes behind gets `RecvError::Lagged(n)` and can catch up with
    /// [`Store::changes_since`] from the last position it saw.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.feed.subscribe()
    }

    /// The outbox rows after `pos`, oldest first, at most `limit` (records not included);
    /// `ChangesPruned` when changes after `pos` were already pruned (the consumer must
    /// resynchronise from the records themselves).
    pub async fn changes_since(&self, pos: i64, limit: i64) -> Result<Vec<Change>, StoreError> {
        let pruned = self.scalar(changes::PRUNED_SQL, Vec::new()).await?;
        if pos < pruned {
            return Err(StoreError::ChangesPruned(pruned));
        }
        let instance = self.instance.clone();
        match &self.backend {
            Backend::Sqlite(db) => {
                db.read(move |conn| sqlite::changes_since(conn, &instance, pos, limit)).await
            }
            Backend::Postgres(db) => db.changes_since(&instance, pos, limit).await,
        }
    }

    /// Deletes outbox rows written before `now - retention`; returns the highest pruned
    /// position.
    pub async fn prune_changes(&self, retention: chrono::Duration) -> Result<i64, StoreError> {
        let cut = (chrono::Utc::now() - retention).timestamp_millis();
        let [raise, delete] = changes::prune_sql(self.dialect());
        let cut = vec![Param::Int(cut)];
        match &self.backend {
            Backend::Sqlite(db) => {
                db.write(move |tx| {
                    sqlite::execute(tx, &raise, &cut)?;
                    sqlite::execute(tx, &delete, &[])
                })
                .await?;
            }
            Backend::Postgres(db) => {
                db.execute(&raise, &cut).await?;
                db.execute(&delete, &[]).await?;
            }
        }
        self.scalar(changes::PRUNED_SQL, Vec::new()).await
    }

    /// One integer from a statement without a collection (system tables).
    async fn scalar(&self, sql: &'static str, params: Vec<Param>) -> Result<i64, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.read(move |conn| sqlite::query_i64(conn, sql, &params)).await,
            Backend::Postgres(db) => db.query_i64(sql, &params).await,
        }
    }

    /// Publishes committed changes (no subscriber is fine) and wakes other instances.
    fn publish(&self, changes: &[Change]) {
        let Some(last) = changes.last() else { return };
        self.feed_stats.published(last.pos, None);
        // Nobody subscribed (the common case until realtime and jobs arrive): no clones.
        if self.feed.receiver_count() > 0 {
            for c in changes {
                let _ = self.feed.send(c.clone());
            }
        }
        if let Backend::Postgres(db) = &self.backend {
            db.signal_changes();
        }
    }

    /// Bumped whenever another instance (or this one) changed the schema, on engines shared by
    /// several instances (PostgreSQL); `None` for the embedded SQLite.
    pub fn schema_events(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        match &self.backend {
            Backend::Sqlite(_) => None,
            Backend::Postgres(db) => Some(db.schema_events()),
        }
    }

    /// How busy the connection pool is right now.
    pub fn pool_stats(&self) -> PoolStats {
        match &self.backend {
            Backend::Sqlite(db) => db.pool_stats(),
            Backend::Postgres(db) => db.pool_stats(),
        }
    }

    /// Number of read statements executed so far (tests use it to catch N+1 queries).
    pub fn query_count(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    fn dialect(&self) -> &'static dyn dialect::Dialect {
        match &self.backend {
            Backend::Sqlite(_) => &dialect::Sqlite,
            Backend::Postgres(_) => &dialect::Postgres,
        }
    }

    /// Runs a SELECT of `schema_sql::select_list` columns on either engine.
    async fn rows(
        &self,
        coll: &Arc<Collection>,
        sql: String,
        params: Vec<Param>,
    ) -> Result<Vec<Row>, StoreError> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        match &self.backend {
            Backend::Sqlite(db) => {
                let coll = coll.clone();
                db.read(move |conn| sqlite::query_rows(conn, &coll, &sql, &params)).await
            }
            Backend::Postgres(db) => db.query_rows(coll, &sql, &params).await,
        }
    }

    pub async fn load_collections(&self) -> Result<Vec<Collection>, StoreError> {
        let sql = self.dialect().collections_sql();
        ddl::parse_collections(self.strings(sql, Vec::new()).await?)
    }

    /// A unit of work: writes that `commit` runs in one transaction (see `work.rs`).
    pub fn work(&self) -> Work {
        Work::new(self.dialect())
    }

    /// Runs `work` in one transaction; returns (and publishes on the feed) what changed.
    pub async fn commit(&self, work: Work) -> Result<Vec<Change>, StoreError> {
        if work.is_empty() {
            return Ok(Vec::new());
        }
        let instance = self.instance.clone();
        // Jobs other instances' runners may take: they hear of them with the change feed's
        // signal (sent after the commit, never inside it).
        let new_jobs = work.ops.iter().any(|op| {
            matches!(
                op,
                work::Op::EnqueueJob { .. }
                    | work::Op::FireCron { .. }
                    | work::Op::ReviveJob { .. }
            )
        }) || webhooks::may_enqueue(&work.ops);
        let changes = match &self.backend {
            Backend::Sqlite(db) => {
                db.write(move |tx| sqlite::commit(tx, &instance, &work.ops)).await?
            }
            Backend::Postgres(db) => db.commit(&instance, &work.ops).await?,
        };
        self.publish(&changes);
        if new_jobs {
            // This process's runner now; other instances' with the feed's signal.
            self.jobs_ready.notify_one();
            if changes.is_empty() {
                if let Backend::Postgres(db) = &self.backend {
                    db.signal_changes();
                }
            }
        }
        Ok(changes)
    }

    /// Signalled after a commit that may have added jobs (the local runner waits on it).
    pub fn jobs_ready(&self) -> &tokio::sync::Notify {
        &self.jobs_ready
    }

    /// Woken when another instance signalled the change feed (new changes, or new jobs): the
    /// job runner looks for work then instead of waiting for its poll. `None` on SQLite (one
    /// process: the service's own notify suffices).
    pub fn feed_signal(&self) -> Option<Arc<tokio::sync::Notify>> {
        match &self.backend {
            Backend::Sqlite(_) => None,
            Backend::Postgres(db) => Some(db.feed_signal()),
        }
    }

    /// Runs one job operation in its own transaction and returns what it put in its slot.
    async fn job_op<T: Default + Send + 'static>(
        &self,
        make: impl FnOnce(jobs::Slot<T>) -> work::Op,
    ) -> Result<T, StoreError> {
        let slot: jobs::Slot<T> = Arc::new(std::sync::Mutex::new(T::default()));
        let mut w = self.work();
        w.push(make(slot.clone()));
        self.commit(w).await?;
        let mut v = slot.lock().unwrap_or_else(|p| p.into_inner());
        Ok(std::mem::take(&mut *v))
    }

    /// Leases due jobs (see `jobs::claim`).
    pub async fn claim_jobs(&self, claim: jobs::Claim) -> Result<Vec<jobs::Job>, StoreError> {
        self.job_op(|out| work::Op::ClaimJobs { claim, out }).await
    }

    /// Enqueues `jobs` in one transaction; each one's stored job, or `None` where a live job
    /// held its unique key (or its id).
    pub async fn enqueue_jobs(
        &self,
        jobs: Vec<jobs::NewJob>,
    ) -> Result<Vec<Option<jobs::Job>>, StoreError> {
        let mut w = self.work();
        let mut slots = Vec::with_capacity(jobs.len());
        for job in jobs {
            let out: jobs::Slot<Option<jobs::Job>> = Arc::new(std::sync::Mutex::new(None));
            slots.push(out.clone());
            w.enqueue_job_returning(job, out);
        }
        self.commit(w).await?;
        Ok(slots.iter().map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).take()).collect())
    }

    /// When the next pending job of `queue` due after `now` (Unix ms) is due, if any.
    pub async fn next_job_due(&self, queue: &str, now: i64) -> Result<Option<i64>, StoreError> {
        let sql = jobs::next_due_sql(self.dialect());
        let at = self.count(&sql, vec![Param::Text(queue.into()), Param::Int(now)]).await?;
        Ok((at > 0).then_some(at))
    }

    /// Ends an attempt; `false` if the lease was no longer `owner`'s.
    pub async fn finish_job(
        &self,
        id: &str,
        owner: &str,
        outcome: jobs::Outcome,
    ) -> Result<bool, StoreError> {
        let (id, owner) = (id.to_string(), owner.to_string());
        let now = chrono::Utc::now().timestamp_millis();
        self.job_op(|out| work::Op::FinishJob { id, owner, outcome, now, out }).await
    }

    /// Ends several attempts in one transaction; whether each lease was still `owner`'s.
    pub async fn finish_jobs(
        &self,
        owner: &str,
        outcomes: Vec<(String, jobs::Outcome)>,
    ) -> Result<Vec<bool>, StoreError> {
        let now = chrono::Utc::now().timestamp_millis();
        let mut w = self.work();
        // Plain successes (the common case) go in one statement; the others one by one.
        let plain: Vec<String> = outcomes
            .iter()
            .filter(|(_, o)| matches!(o, jobs::Outcome::Succeeded(None)))
            .map(|(id, _)| id.clone())
            .collect();
        let succeeded: jobs::Slot<Vec<String>> = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut slots = Vec::with_capacity(outcomes.len());
        for (id, outcome) in outcomes {
            if matches!(outcome, jobs::Outcome::Succeeded(None)) {
                slots.push((id, None));
                continue;
            }
            let out: jobs::Slot<bool> = Arc::new(std::sync::Mutex::new(false));
            slots.push((id.clone(), Some(out.clone())));
            w.push(work::Op::FinishJob { id, owner: owner.to_string(), outcome, now, out });
        }
        if !plain.is_empty() {
            let (owner, out) = (owner.to_string(), succeeded.clone());
            w.push(work::Op::SucceedJobs { ids: plain, owner, now, out });
        }
        self.commit(w).await?;
        let held: std::collections::HashSet<String> =
            std::mem::take(&mut *succeeded.lock().unwrap_or_else(|p| p.into_inner()))
                .into_iter()
                .collect();
        Ok(slots
            .iter()
            .map(|(id, slot)| match slot {
                Some(s) => *s.lock().unwrap_or_else(|p| p.into_inner()),
                None => held.contains(id),
            })
            .collect())
    }

    pub async fn heartbeat_job(
        &self,
        id: &str,
        owner: &str,
        lease_until: i64,
    ) -> Result<bool, StoreError> {
        let (id, owner) = (id.to_string(), owner.to_string());
        self.job_op(|out| work::Op::HeartbeatJob { id, owner, lease_until, out }).await
    }

    /// Gives back `owner`'s leases (graceful shutdown).
    pub async fn release_jobs(&self, owner: &str) -> Result<(), StoreError> {
        let mut w = self.work();
        let now = chrono::Utc::now().timestamp_millis();
        w.push(work::Op::ReleaseJobs { owner: owner.to_string(), now });
        self.commit(w).await.map(drop)
    }

    /// Marks dead the jobs whose last attempt's lease expired.
    pub async fn bury_expired_jobs(&self) -> Result<(), StoreError> {
        let mut w = self.work();
        w.push(work::Op::BuryExpiredJobs { now: chrono::Utc::now().timestamp_millis() });
        self.commit(w).await.map(drop)
    }

    /// Deletes the jobs in `state` (succeeded or dead) that finished before `cutoff` (Unix
    /// ms); returns how many.
    pub async fn prune_jobs(&self, state: &str, cutoff: i64) -> Result<u64, StoreError> {
        let state = state.to_string();
        self.job_op(|out| work::Op::PruneJobs { state, cutoff, out }).await
    }

    /// A dead job back to pending with fresh attempts; `false` if it is not dead.
    pub async fn revive_job(&self, id: &str) -> Result<bool, StoreError> {
        let (id, now) = (id.to_string(), chrono::Utc::now().timestamp_millis());
        self.job_op(|out| work::Op::ReviveJob { id, now, out }).await
    }

    /// One job.
    pub async fn job(&self, id: &str) -> Result<Option<jobs::Job>, StoreError> {
        let d = self.dialect();
        let sql = format!(
            "SELECT {} FROM _jobs j WHERE j.id = {}",
            jobs::job_json(d, "j"),
            d.placeholder(1)
        );
        Ok(jobs::parse_jobs(self.strings(&sql, vec![Param::Text(id.into())]).await?)?.pop())
    }

    /// The live job holding `unique_key`, if any.
    pub async fn job_by_unique_key(&self, key: &str) -> Result<Option<jobs::Job>, StoreError> {
        let d = self.dialect();
        let sql = format!(
            "SELECT {} FROM _jobs j WHERE j.unique_key = {} AND j.state IN ('pending', 'running')",
            jobs::job_json(d, "j"),
            d.placeholder(1)
        );
        Ok(jobs::parse_jobs(self.strings(&sql, vec![Param::Text(key.into())]).await?)?.pop())
    }

    /// Jobs, newest first, optionally of one queue, state and kind; and how many match.
    pub async fn list_jobs(
        &self,
        queue: Option<&str>,
        state: Option<&str>,
        kind: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<jobs::Job>, i64), StoreError> {
        let d = self.dialect();
        let mut conds = vec!["1=1".to_string()];
        let mut params = Vec::new();
        for (col, v) in [("queue", queue), ("state", state), ("kind", kind)] {
            if let Some(v) = v {
                params.push(Param::Text(v.to_string()));
                conds.push(format!("j.{col} = {}", d.placeholder(params.len())));
            }
        }
        let wh = conds.join(" AND ");
        let sql = format!(
            "SELECT {} FROM _jobs j WHERE {wh} ORDER BY j.created DESC, j.id LIMIT {} OFFSET {}",
            jobs::job_json(d, "j"),
            limit.max(0),
            offset.max(0)
        );
        let total_sql = format!("SELECT COUNT(*) FROM _jobs j WHERE {wh}");
        let items = jobs::parse_jobs(self.strings(&sql, params.clone()).await?)?;
        let total = self.count(&total_sql, params).await?;
        Ok((items, total))
    }

    /// The stored param `id` (`_params`), e.g. the settings document.
    pub async fn param(&self, id: &str) -> Result<Option<String>, StoreError> {
        let sql = system::param_sql(self.dialect());
        Ok(self.strings(&sql, vec![Param::Text(id.into())]).await?.pop())
    }

    /// Stores the param `id` in its own transaction.
    pub async fn put_param(&self, id: &str, value: String) -> Result<(), StoreError> {
        let mut w = self.work();
        w.push(work::Op::PutParam { id: id.to_string(), value, now: crate::util::now_string() });
        self.commit(w).await.map(drop)
    }

    /// Every cron schedule, by id.
    pub async fn crons(&self) -> Result<Vec<system::Cron>, StoreError> {
        let sql = format!("SELECT {} FROM _crons ORDER BY id", system::cron_json(self.dialect()));
        system::parse_crons(self.strings(&sql, Vec::new()).await?)
    }

    pub async fn put_cron(&self, cron: system::Cron) -> Result<(), StoreError> {
        let mut w = self.work();
        w.push(work::Op::PutCron(Box::new(cron)));
        self.commit(w).await.map(drop)
    }

    /// Whether the schedule existed.
    pub async fn delete_cron(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.job_op(|out| work::Op::DeleteCron { id, out }).await
    }

    /// API keys, oldest first; with `id`, that one only.
    pub async fn api_keys(&self, id: Option<&str>) -> Result<Vec<system::ApiKey>, StoreError> {
        let d = self.dialect();
        let (wh, params) = match id {
            Some(id) => (format!("WHERE id = {}", d.placeholder(1)), vec![Param::Text(id.into())]),
            None => (String::new(), Vec::new()),
        };
        let sql =
            format!("SELECT {} FROM _apikeys {wh} ORDER BY created, id", system::api_key_json(d));
        system::parse_api_keys(self.strings(&sql, params).await?)
    }

    pub async fn put_api_key(&self, key: system::ApiKey) -> Result<(), StoreError> {
        let mut w = self.work();
        w.push(work::Op::PutApiKey(Box::new(key)));
        self.commit(w).await.map(drop)
    }

    /// Whether the key existed.
    pub async fn delete_api_key(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.job_op(|out| work::Op::DeleteApiKey { id, out }).await
    }

    /// Fires a cron tick unless another instance did (see `system::fire_cron`).
    pub async fn fire_cron(
        &self,
        id: &str,
        tick: i64,
        job: jobs::NewJob,
    ) -> Result<bool, StoreError> {
        let id = id.to_string();
        let now = chrono::Utc::now().timestamp_millis();
        self.job_op(|out| work::Op::FireCron { id, tick, job: Box::new(job), now, out }).await
    }

    /// Per queue: the due time of the oldest due pending job, and the jobs that succeeded and
    /// that failed an attempt in the minute before `now` (ms).
    pub async fn job_activity(&self, now: i64) -> Result<Vec<jobs::QueueActivity>, StoreError> {
        let d = self.dialect();
        let (p1, p2) = (d.placeholder(1), d.placeholder(2));
        let sql = format!(
            "SELECT {} FROM _jobs GROUP BY queue ORDER BY queue",
            d.json_object(&[
                ("queue", "queue".into()),
                (
                    "oldestDue",
                    format!("MIN(CASE WHEN state = 'pending' AND run_at <= {p1} THEN run_at END)"),
                ),
                (
                    "succeeded",
                    format!(
                        "SUM(CASE WHEN state = 'succeeded' AND finished >= {p2} THEN 1 ELSE 0 END)"
                    ),
                ),
                (
                    "failed",
                    format!(
                        "SUM(CASE WHEN last_error <> '' AND state IN ('pending', 'dead') \
                         AND updated >= {p2} THEN 1 ELSE 0 END)"
                    ),
                ),
            ])
        );
        let params = vec![Param::Int(now), Param::Int(now - 60_000)];
        jobs::parse_json_rows(self.strings(&sql, params).await?, "queue activity")
    }

    /// Jobs per (queue, state).
    pub async fn job_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let d = self.dialect();
        let sql = format!(
            "SELECT {} FROM _jobs GROUP BY queue, state ORDER BY queue, state",
            d.json_object(&[
                ("queue", "queue".into()),
                ("state", "state".into()),
                ("n", "COUNT(*)".into())
            ])
        );
        let mut out = Vec::new();
        for t in self.strings(&sql, Vec::new()).await? {
            let v: serde_json::Value =
                serde_json::from_str(&t).map_err(|e| StoreError::Db(e.to_string()))?;
            out.push((
                v["queue"].as_str().unwrap_or_default().to_string(),
                v["state"].as_str().unwrap_or_default().to_string(),
                v["n"].as_i64().unwrap_or(0),
            ));
        }
        Ok(out)
    }

    async fn count(&self, sql: &str, params: Vec<Param>) -> Result<i64, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => {
                let sql = sql.to_string();
                db.read(move |conn| sqlite::query_i64(conn, &sql, &params)).await
            }
            Backend::Postgres(db) => db.query_i64(sql, &params).await,
        }
    }

    pub async fn create_collection(&self, c: &Collection) -> Result<(), StoreError> {
        let mut work = self.work();
        work.create_collection(c);
        self.commit(work).await.map(drop)
    }

    /// Migrates the table of `old` to the shape of `new` in one transaction: fields are matched
    /// by id, so renamed fields keep their data.
    pub async fn update_collection(
        &self,
        old: &Collection,
        new: &Collection,
    ) -> Result<(), StoreError> {
        let mut work = self.work();
        work.update_collection(old, new);
        self.commit(work).await.map(drop)
    }

    pub async fn delete_collection(&self, c: &Collection) -> Result<(), StoreError> {
        let mut work = self.work();
        work.delete_collection(c);
        self.commit(work).await.map(drop)
    }

    pub async fn truncate_collection(&self, c: &Collection) -> Result<(), StoreError> {
        let mut work = self.work();
        work.truncate_collection(c);
        self.commit(work).await.map(drop)
    }

    /// Lists a page of records plus (optionally) the total count.
    pub async fn list_records(
        &self,
        q: ListQuery<'_>,
    ) -> Result<(Vec<Row>, Option<i64>), StoreError> {
        let mut c = query::Compiler::new(self.dialect(), q.schema, q.info);
        let mut wheres = Vec::new();
        if let Some(rule) = q.rule {
            wheres.push(c.rule(q.collection, "t", rule)?);
        }
        if let Some(filter) = q.filter {
            wheres.push(c.client_filter(q.collection, "t", filter)?);
        }
        // The count statement has no ORDER BY: it binds the parameters compiled so far only.
        let count_params = c.params.clone();
        let mut order = c.sort(q.collection, "t", q.sort)?;
        if order.is_empty() && matches!(self.backend, Backend::Postgres(_)) {
            // SQLite returns rows in rowid order by default; a PostgreSQL heap does not keep
            // insertion order (updated rows move), so the hidden insertion-order column does.
            order.push(format!("{} ASC", self.dialect().rowid("t")));
        }
        let where_sql = if wheres.is_empty() { "1=1".to_string() } else { wheres.join(" AND ") };
        let table = dialect::quote_ident(&q.collection.name);
        let cols = schema_sql::select_list(q.collection, "t");
        let mut sql = format!("SELECT {cols} FROM {table} t WHERE {where_sql}");
        if !order.is_empty() {
            sql.push_str(" ORDER BY ");
            sql.push_str(&order.join(", "));
        }
        sql.push_str(&format!(" LIMIT {} OFFSET {}", q.limit.max(0), q.offset.max(0)));
        let count_sql =
            q.count_total.then(|| format!("SELECT COUNT(*) FROM {table} t WHERE {where_sql}"));
        let params = c.params;
        let coll = q.collection.clone();
        self.queries.fetch_add(1 + u64::from(count_sql.is_some()), Ordering::Relaxed);
        match &self.backend {
            Backend::Sqlite(db) => {
                db.read(move |conn| {
                    let rows = sqlite::query_rows(conn, &coll, &sql, &params)?;
                    let total = match count_sql {
                        Some(cs) => Some(sqlite::query_i64(conn, &cs, &count_params)?),
                        None => None,
                    };
                    Ok((rows, total))
                })
                .await
            }
            Backend::Postgres(db) => {
                let rows = db.query_rows(&coll, &sql, &params);
                match count_sql {
                    Some(cs) => {
                        let (rows, total) =
                            tokio::try_join!(rows, db.query_i64(&cs, &count_params))?;
                        Ok((rows, Some(total)))
                    }
                    None => Ok((rows.await?, None)),
                }
            }
        }
    }

    /// Whether `row`, a record that no longer exists (a delete's row), passes `rule` and the
    /// client `filter` for `info`: the list query's SQL, with the collection's table shadowed
    /// by a one-row CTE holding `row`. Related records are read as they are now; a rule that
    /// reaches the same collection through a relation sees only this row.
    pub async fn row_visible(
        &self,
        schema: &Schema,
        coll: &Arc<Collection>,
        info: &RequestInfo,
        row: &Row,
        rule: Option<&Expr>,
        filter: Option<&Expr>,
    ) -> Result<bool, StoreError> {
        let (sql, params) =
            query::shadow_count_sql(self.dialect(), schema, coll, info, row, rule, filter)?;
        self.queries.fetch_add(1, Ordering::Relaxed);
        let n = match &self.backend {
            Backend::Sqlite(db) => {
                db.read(move |conn| sqlite::query_i64(conn, &sql, &params)).await?
            }
            Backend::Postgres(db) => db.query_i64(&sql, &params).await?,
        };
        Ok(n > 0)
    }

    /// Fetches one record by id, optionally through a rule.
    pub async fn get_record(
        &self,
        schema: &Schema,
        coll: &Arc<Collection>,
        info: &RequestInfo,
        id: &str,
        rule: Option<&Expr>,
    ) -> Result<Option<Row>, StoreError> {
        let mut c = query::Compiler::new(self.dialect(), schema, info);
        let idp = c.param(Param::Text(id.to_string()));
        let mut where_sql = format!("t.\"id\" = {idp}");
        if let Some(rule) = rule {
            where_sql = format!("{where_sql} AND {}", c.rule(coll, "t", rule)?);
        }
        let sql = format!(
            "SELECT {} FROM {} t WHERE {where_sql} LIMIT 1",
            schema_sql::select_list(coll, "t"),
            dialect::quote_ident(&coll.name)
        );
        Ok(self.rows(coll, sql, c.params).await?.into_iter().next())
    }

    /// Fetches related records for `expand` in ONE statement, optionally through a rule.
    pub async fn related_records(
        &self,
        schema: &Schema,
        coll: &Arc<Collection>,
        info: &RequestInfo,
        by: RelatedBy<'_>,
        rule: Option<&Expr>,
    ) -> Result<Vec<Row>, StoreError> {
        let d = self.dialect();
        let mut c = query::Compiler::new(d, schema, info);
        let where_sql = match by {
            RelatedBy::Ids(ids) => {
                let p = c.param(Param::Text(Value::from(ids.to_vec()).to_string()));
                format!(
                    "t.\"id\" IN (SELECT {} FROM {})",
                    d.json_each_value("ids"),
                    d.json_each(&p, "ids")
                )
            }
            RelatedBy::Field { field, ids } => {
                let p = c.param(Param::Text(Value::from(ids.to_vec()).to_string()));
                let col = format!("t.{}", dialect::quote_ident(field));
                let multi = coll.field(field).is_some_and(|f| f.is_multi());
                let inner =
                    format!("SELECT {} FROM {}", d.json_each_value("ids"), d.json_each(&p, "ids"));
                if multi {
                    format!(
                        "EXISTS (SELECT 1 FROM {} WHERE {} IN ({inner}))",
                        d.json_each(&col, "v"),
                        d.json_each_value("v")
                    )
                } else {
                    format!("{col} IN ({inner})")
                }
            }
        };
        let mut where_sql = where_sql;
        if let Some(rule) = rule {
            where_sql = format!("{where_sql} AND {}", c.rule(coll, "t", rule)?);
        }
        let sql = format!(
            "SELECT {} FROM {} t WHERE {where_sql}",
            schema_sql::select_list(coll, "t"),
            dialect::quote_ident(&coll.name)
        );
        self.rows(coll, sql, c.params).await
    }

    /// Finds a record of an auth collection by an identity field (email, username…).
    pub async fn find_by_field(
        &self,
        coll: &Arc<Collection>,
        field: &str,
        value: &str,
    ) -> Result<Option<Row>, StoreError> {
        let (sql, params) = find_by_field_sql(self.dialect(), coll, field, value);
        Ok(self.rows(coll, sql, params).await?.into_iter().next())
    }

    /// Inserts a record; with `check`, the rule must match the new row or nothing is written.
    /// Returns (and publishes on the feed) what changed.
    pub async fn insert_record(
        &self,
        coll: &Arc<Collection>,
        row: Row,
        check: Option<RuleCheck<'_>>,
    ) -> Result<Vec<Change>, StoreError> {
        let mut work = self.work();
        work.insert_record(coll, row, check)?;
        self.commit(work).await
    }

    /// Replaces the stored values of an existing record (all fields of `row`). Returns (and
    /// publishes on the feed) what changed.
    pub async fn update_record(
        &self,
        coll: &Arc<Collection>,
        id: &str,
        row: Row,
        check: Option<RuleCheck<'_>>,
    ) -> Result<Vec<Change>, StoreError> {
        let mut work = self.work();
        work.update_record(coll, id, row, check)?;
        self.commit(work).await
    }

    /// Deletes a record, applying relation semantics to referencing records in the same
    /// transaction: cascade, block (required relation), or remove the id. Returns (and
    /// publishes on the feed) every record deleted or cleaned up, the cascaded ones first.
    pub async fn delete_record(
        &self,
        schema: Arc<Schema>,
        coll: &Arc<Collection>,
        id: &str,
    ) -> Result<Vec<Change>, StoreError> {
        let mut work = self.work();
        work.delete_record(schema, coll, id);
        self.commit(work).await
    }

    /// Which of `ids` exist in `coll`.
    pub async fn existing_ids(
        &self,
        coll: &Arc<Collection>,
        ids: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let (sql, params) = existing_ids_sql(self.dialect(), coll, ids);
        self.queries.fetch_add(1, Ordering::Relaxed);
        self.strings(&sql, params).await
    }

    /// The first column of every row, as text, on a read connection.
    async fn strings(&self, sql: &str, params: Vec<Param>) -> Result<Vec<String>, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => {
                let sql = sql.to_string();
                db.read(move |conn| sqlite::query_strings(conn, &sql, &params)).await
            }
            Backend::Postgres(db) => db.query_strings(sql, &params).await,
        }
    }

    /// Compiles a rule against a schema without running it (validation of collection rules).
    pub fn check_rule(
        &self,
        schema: &Schema,
        coll: &Arc<Collection>,
        expr: &Expr,
    ) -> Result<(), QueryError> {
        let info = RequestInfo::default();
        let mut c = query::Compiler::new(self.dialect(), schema, &info);
        c.rule(coll, "t", expr).map(|_| ())
    }

    /// Checks that every index definition of `coll` can be created: `(position, reason)`.
    /// Index names are global in both engines, so a name used twice here or by another
    /// collection of `schema` is refused too.
    pub fn check_indexes(&self, schema: &Schema, coll: &Collection) -> Result<(), (usize, String)> {
        let mut names: Vec<String> = Vec::new();
        for (i, sql) in coll.indexes.iter().enumerate() {
            let def = schema_sql::IndexDef::parse(sql, coll).map_err(|e| (i, e.to_string()))?;
            if def.name.len() > 63 {
                // PostgreSQL truncates identifiers to 63 bytes: longer names could collide.
                return Err((i, format!("the index name {:?} is longer than 63 bytes", def.name)));
            }
            let name = def.name.to_lowercase();
            let elsewhere = schema.all().iter().filter(|o| o.id != coll.id).any(|o| {
                o.indexes
                    .iter()
                    .filter_map(|x| schema_sql::IndexDef::parse(x, o).ok())
                    .any(|d| d.name.to_lowercase() == name)
            });
            if names.contains(&name) || elsewhere {
                return Err((i, format!("the index name {:?} is already used", def.name)));
            }
            names.push(name);
        }
        Ok(())
    }

    /// Stops accepting work: checkpoints SQLite's WAL, or closes the PostgreSQL pool.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(db) => db.close().await,
            Backend::Postgres(db) => db.close().await,
        }
    }
}
