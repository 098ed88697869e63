//! PostgreSQL through sqlx: a connection pool, the embedded system migrations, schema change
//! announcements (LISTEN/NOTIFY), reading column values into `stored::Cell`, and the `engine::Tx`
//! the engine-neutral writes (`work.rs`) run on. Statements are built at run time (no sqlx
//! macros) with `$n` placeholders.
//!
//! Column types are decided in `schema_sql::PG_TYPES`. Every collection table also has the
//! hidden `"_rowid" BIGSERIAL` insertion-order column (`schema_sql::PG_ROWID`).

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::postgres::{
    PgArguments, PgConnectOptions, PgDatabaseError, PgPool, PgPoolOptions, PgRow,
};
use sqlx::query::Query;
use sqlx::types::Json;
use sqlx::{Connection, Executor, PgConnection, Postgres, Row as _, TypeInfo, ValueRef};

use crate::model::collection::Collection;
use crate::store::changes::{self, Action, Change, Pending};
use crate::store::engine::Tx;
use crate::store::query::Param;
use crate::store::stored::{self, Cell};
use crate::store::work::{self, Op};
use crate::store::{migrate, schema_sql, Row, StoreError};

/// Connections in the pool unless the URL says otherwise (`?pool_max_conns=N`).
const DEFAULT_POOL_SIZE: u32 = 16;
/// How long a statement waits for a free connection before the store reports `Unavailable`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// PostgreSQL truncates identifiers to 63 bytes (NAMEDATALEN - 1).
const MAX_IDENT: usize = 63;

type PgQuery<'q> = Query<'q, Postgres, PgArguments>;
type BoxFut<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A PostgreSQL database.
pub(crate) struct Db {
    pool: PgPool,
    /// When `pool` was created; `schema_changed` counts from it.
    epoch: Instant,
    /// Nanoseconds after `epoch` at which the last schema change committed (0: never).
    /// Pooled connections opened before it are discarded on acquire: their cached prepared
    /// statements may describe the old columns (e.g. a TEXT column that became JSONB), which
    /// PostgreSQL rejects with "cached plan must not change result type".
    schema_changed: Arc<AtomicU64>,
    /// Bumped whenever any instance on this database changed the schema (LISTEN/NOTIFY), or
    /// when notifications may have been missed (the listening connection was lost).
    schema_events: tokio::sync::watch::Receiver<u64>,
    /// Stops the listener task (and the change-feed tasks) on `close`.
    stop_listener: tokio::sync::watch::Sender<bool>,
    /// Woken when any instance signals new outbox rows (`feed.rs`).
    changes_wake: Arc<tokio::sync::Notify>,
    /// Poked after each local commit that wrote outbox rows (`feed::spawn_signaler`).
    changes_signal: Arc<tokio::sync::Notify>,
    /// Woken with `changes_wake`, for the job runner (a Notify wakes one waiter).
    jobs_wake: Arc<tokio::sync::Notify>,
}

/// The channel schema changes are announced on; the payload is the collection id, never data.
const SCHEMA_CHANNEL: &str = "basalt_schema";

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        map_error(e, None)
    }
}

/// Maps a sqlx error; `coll` is the collection written to, which names unique indexes.
fn map_error(e: sqlx::Error, coll: Option<&Collection>) -> StoreError {
    match &e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => return StoreError::Unavailable(e.to_string()),
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if code == "23505" {
                let detail = db.try_downcast_ref::<PgDatabaseError>().and_then(|p| p.detail());
                return StoreError::Unique(unique_columns(coll, db.constraint(), detail));
            }
            // Class 08: connection exceptions (but 08P01, a protocol violation, is a bug);
            // 57P0x: the server is shutting down or starting; 53300: too many connections.
            let connection = code.starts_with("08") && code != "08P01";
            // Also what a refused new connection reports: 55000 (database not accepting
            // connections), 28xxx (authentication), 3D000 (no such database), 57P04 (dropped).
            let refused = matches!(&*code, "55000" | "28000" | "28P01" | "3D000" | "57P04");
            if connection || refused || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300") {
                return StoreError::Unavailable(e.to_string());
            }
        }
        _ => {}
    }
    StoreError::Db(e.to_string())
}

/// An identifier as PostgreSQL stores it (truncated to 63 bytes on a character boundary).
fn stored_ident(name: &str) -> &str {
    if name.len() <= MAX_IDENT {
        return name;
    }
    let mut end = MAX_IDENT;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// The fields a violated unique constraint covers: the collection's index definitions name
/// them, its primary key is `id`; otherwise the `Key (a, b)=(…)` detail is read.
fn unique_columns(
    coll: Option<&Collection>,
    constraint: Option<&str>,
    detail: Option<&str>,
) -> Vec<String> {
    if let (Some(c), Some(name)) = (coll, constraint) {
        let indexes = schema_sql::indexes(c).unwrap_or_default();
        if let Some(idx) = indexes.iter().find(|i| stored_ident(&i.name) == name) {
            return idx.columns.iter().map(|(n, _)| n.clone()).collect();
        }
        let pkey = format!("{}_pkey", c.name);
        // A renamed table keeps its old `<old>_pkey` name; any other unique constraint of a
        // collection table is its primary key.
        if name == stored_ident(&pkey) || name.contains("_pkey") {
            return vec!["id".into()];
        }
    }
    match constraint {
        Some("_collections_pkey") => return vec!["id".into()],
        Some("idx__collections_name") => return vec!["name".into()],
        _ => {}
    }
    let Some(list) = detail
        .and_then(|d| d.strip_prefix("Key ("))
        .and_then(|d| d.split_once(")=(").map(|(cols, _)| cols))
    else {
        return Vec::new();
    };
    list.split(',')
        .map(|p| {
            let p = p.trim();
            let p = p.strip_prefix("lower(").and_then(|x| x.strip_suffix(')')).unwrap_or(p);
            p.trim_matches('"').to_string()
        })
        .collect()
}

/// Splits the pool size (`pool_max_conns`, as in pgx) off the URL.
/// Pool knobs read from (and removed from) the URL: `pool_max_conns=N` and
/// `pool_acquire_timeout=SECONDS` (how long a request waits for a connection before a 503).
pub(crate) struct PoolSettings {
    pub url: String,
    pub size: u32,
    pub acquire_timeout: Duration,
}

fn pool_settings(url: &str) -> Result<PoolSettings, StoreError> {
    let mut parsed =
        url::Url::parse(url).map_err(|e| StoreError::Db(format!("invalid PostgreSQL URL: {e}")))?;
    let mut size = DEFAULT_POOL_SIZE;
    let mut acquire_timeout = ACQUIRE_TIMEOUT;
    let mut rest: Vec<(String, String)> = Vec::new();
    for (k, v) in parsed.query_pairs() {
        if k == "pool_acquire_timeout" {
            acquire_timeout = v
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0 && *s <= 3600.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| StoreError::Db(format!("invalid pool_acquire_timeout {v:?}")))?;
        } else if k == "pool_max_conns" {
            size = v
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| StoreError::Db(format!("invalid pool_max_conns {v:?}")))?;
        } else {
            rest.push((k.into_owned(), v.into_owned()));
        }
    }
    if rest.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(rest);
    }
    Ok(PoolSettings { url: parsed.to_string(), size, acquire_timeout })
}

/// Whether a pooled connection opened `age` ago may be reused after the schema change at
/// `changed` nanoseconds past `epoch`.
fn opened_after(epoch: Instant, age: Duration, changed: u64) -> bool {
    if changed == 0 {
        return true;
    }
    let Some(opened) = Instant::now().checked_sub(age) else { return false };
    opened.saturating_duration_since(epoch).as_nanos() > u128::from(changed)
}

impl Db {
    /// Connects and applies the system migrations.
    pub(crate) async fn open(url: &str) -> Result<Db, StoreError> {
        let PoolSettings { url, size, acquire_timeout } = pool_settings(url)?;
        let options = PgConnectOptions::from_str(&url)
            .map_err(|e| StoreError::Db(format!("invalid PostgreSQL URL: {e}")))?
            .application_name("basalt");
        // One direct connection first: its error says why (refused, authentication, unknown
        // database) where a pool would only time out; it also applies the migrations.
        let mut conn = tokio::time::timeout(acquire_timeout, PgConnection::connect_with(&options))
            .await
            .map_err(|_| StoreError::Unavailable("timed out connecting to PostgreSQL".into()))??;
        migrate::apply_postgres(&mut conn).await?;
        let _ = conn.close().await;
        let epoch = Instant::now();
        let schema_changed = Arc::new(AtomicU64::new(0));
        let changed = schema_changed.clone();
        let pool = PgPoolOptions::new()
            .max_connections(size)
            .acquire_timeout(acquire_timeout)
            .before_acquire(move |_conn, meta| {
                let keep = opened_after(epoch, meta.age, changed.load(Ordering::Acquire));
                Box::pin(async move { Ok(keep) })
            })
            .connect_lazy_with(options);
        let (events_tx, schema_events) = tokio::sync::watch::channel(0u64);
        let (stop_listener, stop_rx) = tokio::sync::watch::channel(false);
        let db = Db {
            pool,
            epoch,
            schema_changed,
            schema_events,
            stop_listener,
            changes_wake: Arc::new(tokio::sync::Notify::new()),
            changes_signal: Arc::new(tokio::sync::Notify::new()),
            jobs_wake: Arc::new(tokio::sync::Notify::new()),
        };
        db.spawn_listener(url, events_tx, stop_rx);
        Ok(db)
    }

    /// Starts publishing other instances' changes on `feed` and signalling local ones.
    pub(crate) fn start_feed(
        &self,
        instance: &str,
        feed: tokio::sync::broadcast::Sender<crate::store::changes::Change>,
        stats: Arc<crate::store::changes::FeedStats>,
    ) {
        let stop = self.stop_listener.subscribe();
        feed::spawn_tailer(
            self.pool.clone(),
            instance.to_string(),
            feed,
            stats,
            self.changes_wake.clone(),
            stop.clone(),
        );
        feed::spawn_signaler(self.pool.clone(), self.changes_signal.clone(), stop);
    }

    /// Woken whenever any instance signals the change feed.
    pub(crate) fn feed_signal(&self) -> Arc<tokio::sync::Notify> {
        self.jobs_wake.clone()
    }

    /// Tells the other instances (after the commit) that outbox rows are waiting.
    pub(crate) fn signal_changes(&self) {
        self.changes_signal.notify_one();
    }

    /// Listens for schema changes made by any instance on this database. On each one (and
    /// after a reconnect, when some may have been missed) pooled connections are retired and
    /// `schema_events` is bumped so the service reloads its schema snapshot.
    fn spawn_listener(
        &self,
        url: String,
        events: tokio::sync::watch::Sender<u64>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let (epoch, changed) = (self.epoch, self.schema_changed.clone());
        let wake = self.changes_wake.clone();
        let jobs_wake = self.jobs_wake.clone();
        let bump = move || {
            let nanos = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1);
            changed.store(nanos, Ordering::Release);
            events.send_modify(|n| *n += 1);
        };
        tokio::spawn(async move {
            loop {
                let listener = async {
                    // Its own connection, outside the pool: it must not take a pooled slot.
                    let mut l = sqlx::postgres::PgListener::connect(&url).await?;
                    l.listen_all([SCHEMA_CHANNEL, feed::CHANGES_CHANNEL]).await?;
                    // Changes made while we were not listening are unknown: reload once.
                    bump();
                    wake.notify_one();
                    loop {
                        match l.try_recv().await? {
                            Some(n) if n.channel() == feed::CHANGES_CHANNEL => {
                                wake.notify_one();
                                jobs_wake.notify_one();
                            }
                            Some(_) => bump(),
                            // The connection dropped; the next call reconnects.
                            None => {
                                bump();
                                wake.notify_one();
                            }
                        }
                    }
                    #[allow(unreachable_code)]
                    Ok::<(), sqlx::Error>(())
                };
                tokio::select! {
                    res = listener => {
                        if let Err(e) = res {
                            tracing::warn!(error = %e, "schema listener lost its connection; retrying");
                        }
                    }
                    _ = stop.changed() => return,
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = stop.changed() => return,
                }
            }
        });
    }

    /// A receiver bumped on every schema change announced on this database.
    pub(crate) fn schema_events(&self) -> tokio::sync::watch::Receiver<u64> {
        self.schema_events.clone()
    }

    /// Closes every connection (waiting for the ones in use).
    pub(crate) async fn close(&self) {
        let _ = self.stop_listener.send(true);
        self.pool.close().await;
    }

    /// Records that the schema changed: connections opened before now are not reused.
    fn mark_schema_changed(&self) {
        let nanos = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1);
        self.schema_changed.store(nanos, Ordering::Release);
    }

    /// Runs a unit of work in one transaction (`work::run`). A lone record write without a
    /// rule check is one statement instead (`with_outbox`): no BEGIN/COMMIT round trips.
    pub(crate) async fn commit(
        &self,
        instance: &str,
        ops: &[Op],
    ) -> Result<Vec<Change>, StoreError> {
        if let [op] = ops {
            if let Some(changes) = self.write_one(instance, op).await? {
                return Ok(changes);
            }
            // A queue operation alone needs no transaction around its statements: autocommit
            // saves BEGIN and COMMIT, two of its three or four round trips.
            if op.autocommit() {
                let mut pg = PgTx(Conn::Pool(self.pool.acquire().await?));
                return work::run(&mut pg, instance, ops).await;
            }
        }
        let mut pg = PgTx(Conn::Tx(self.pool.begin().await?));
        let res = work::run(&mut pg, instance, ops).await;
        let changes = match pg.0 {
            Conn::Tx(tx) => finish(tx, res).await?,
            Conn::Pool(_) => res?,
        };
        if ops.iter().any(Op::changes_schema) {
            self.mark_schema_changed();
        }
        Ok(changes)
    }

    /// A record insert or update without a check, combined with its outbox row into one
    /// statement; `None` for any other operation.
    async fn write_one(&self, instance: &str, op: &Op) -> Result<Option<Vec<Change>>, StoreError> {
        let (coll, sql, mut params, change) = match op {
            // A collection with webhooks enqueues deliveries too: the general path.
            Op::InsertRecord { coll, row, check: None } if coll.webhooks.is_empty() => {
                let sql = schema_sql::insert_sql(&crate::store::dialect::Postgres, coll);
                let change =
                    Pending::new(&coll.id, changes::id_of(row), Action::Create).with_record(row);
                (coll, sql, stored::row_params(coll, row), change)
            }
            Op::UpdateRecord { coll, id, row, check: None } if coll.webhooks.is_empty() => {
                let sql = schema_sql::update_sql(&crate::store::dialect::Postgres, coll);
                let mut params = stored::row_params(coll, row);
                params.push(Param::Text(id.clone()));
                (coll, sql, params, Pending::new(&coll.id, id, Action::Update).with_record(row))
            }
            _ => return Ok(None),
        };
        let sql = with_outbox(&sql, params.len() + 1);
        params.extend(change.params(instance));
        let sql = keyed(&sql, &params);
        let row = with_params(&sql, &params)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| map_error(e, Some(coll)))?;
        let Some(row) = row else { return Err(StoreError::NotFound) };
        let pos: i64 = row.try_get(0)?;
        Ok(Some(vec![change.into_change(pos)]))
    }

    pub(crate) async fn execute(&self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        execute(&self.pool, sql, params).await
    }

    /// Runs a SELECT of `schema_sql::select_list` columns and decodes each row.
    pub(crate) async fn query_rows(
        &self,
        coll: &Collection,
        sql: &str,
        params: &[Param],
    ) -> Result<Vec<Row>, StoreError> {
        let sql = keyed(sql, params);
        let rows = with_params(&sql, params).fetch_all(&self.pool).await?;
        rows.iter().map(|r| stored::decode_row(coll, |i| cell(r, i))).collect()
    }

    pub(crate) async fn query_i64(&self, sql: &str, params: &[Param]) -> Result<i64, StoreError> {
        query_i64(&self.pool, sql, params).await
    }

    pub(crate) async fn query_strings(
        &self,
        sql: &str,
        params: &[Param],
    ) -> Result<Vec<String>, StoreError> {
        query_strings(&self.pool, sql, params).await
    }

    /// The outbox rows after `pos` (oldest first, at most `limit`).
    pub(crate) async fn changes_since(
        &self,
        instance: &str,
        pos: i64,
        limit: i64,
    ) -> Result<Vec<Change>, StoreError> {
        let rows: Vec<changes::OutboxRow> =
            sqlx::query_as(&changes::since_sql(&crate::store::dialect::Postgres))
                .bind(pos)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|r| changes::from_outbox(instance, r)).collect())
    }
}

// ---------------------------------------------------------------------------------------------
// Statements

fn bind_param<'q>(q: PgQuery<'q>, p: &Param) -> PgQuery<'q> {
    match p {
        Param::Null => q.bind(Option::<String>::None),
        Param::Bool(b) => q.bind(*b),
        Param::Int(i) => q.bind(*i),
        Param::Real(f) => q.bind(*f),
        Param::Text(s) => q.bind(s.clone()),
        Param::Json(v) => q.bind(Json(v.clone())),
        Param::JsonNull => q.bind(Option::<Json<Value>>::None),
    }
}

/// `sql` prefixed with the types of its parameters (`/* p:tir */ SELECT …`).
///
/// sqlx caches prepared statements per connection keyed by the SQL text alone, and a statement
/// keeps the parameter types it was prepared with. The query compiler emits the same text for
/// `n = 2.5` and `n = '1'`, so without the key the second would send TEXT bytes to a statement
/// expecting a float8: an error at best, a wrong value at worst.
fn keyed(sql: &str, params: &[Param]) -> String {
    if params.is_empty() {
        return sql.to_string();
    }
    let sig: String = params
        .iter()
        .map(|p| match p {
            Param::Null | Param::Text(_) => 't',
            Param::Bool(_) => 'b',
            Param::Int(_) => 'i',
            Param::Real(_) => 'r',
            Param::Json(_) | Param::JsonNull => 'j',
        })
        .collect();
    format!("/* p:{sig} */ {sql}")
}

/// Binds `params` in order to `$1…$n` (run `sql` through `keyed` first).
fn with_params<'q>(sql: &'q str, params: &[Param]) -> PgQuery<'q> {
    params.iter().fold(sqlx::query(sql), bind_param)
}

async fn execute<'c, E>(ex: E, sql: &str, params: &[Param]) -> Result<u64, StoreError>
where
    E: Executor<'c, Database = Postgres>,
{
    let sql = keyed(sql, params);
    Ok(with_params(&sql, params).execute(ex).await?.rows_affected())
}

async fn query_i64<'c, E>(ex: E, sql: &str, params: &[Param]) -> Result<i64, StoreError>
where
    E: Executor<'c, Database = Postgres>,
{
    let sql = keyed(sql, params);
    let row = with_params(&sql, params).fetch_one(ex).await?;
    match cell(&row, 0)? {
        Cell::Int(i) => Ok(i),
        Cell::Real(f) => Ok(f as i64),
        Cell::Bool(b) => Ok(i64::from(b)),
        Cell::Null => Ok(0),
        Cell::Text(t) => {
            t.trim().parse().map_err(|_| StoreError::Db(format!("not an integer: {t}")))
        }
        Cell::Json(v) => v.as_i64().ok_or_else(|| StoreError::Db(format!("not an integer: {v}"))),
    }
}

async fn query_strings<'c, E>(ex: E, sql: &str, params: &[Param]) -> Result<Vec<String>, StoreError>
where
    E: Executor<'c, Database = Postgres>,
{
    let sql = keyed(sql, params);
    let rows = with_params(&sql, params).fetch_all(ex).await?;
    rows.iter().map(|r| Ok(r.try_get::<String, _>(0)?)).collect()
}

/// Announces a schema change to every instance; delivered when the transaction commits.
async fn notify_schema(conn: &mut PgConnection, collection_id: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(SCHEMA_CHANNEL)
        .bind(collection_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Commits `tx` when `res` is a success; otherwise rolls it back right away (rather than when
/// the dropped transaction's connection is next used) and returns the error.
async fn finish<T>(
    tx: sqlx::Transaction<'static, Postgres>,
    res: Result<T, StoreError>,
) -> Result<T, StoreError> {
    match res {
        Ok(v) => {
            tx.commit().await?;
            Ok(v)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

// NOTE: helpers taking `&mut PgConnection` return boxed `Send` futures: awaiting sqlx's
// `Executor<'c> for &'c mut PgConnection` inside a plain `async fn` makes callers' futures fail
// the higher-ranked `Send` check axum handlers need ("implementation of `Executor` is not
// general enough", rust-lang/rust#102211).

/// `write` (a record INSERT or UPDATE whose parameters end at `first - 1`) combined with its
/// outbox row into one statement: the outbox INSERT reads the written row, so an UPDATE that
/// matched nothing writes no change, and the position is drawn after the record write (the
/// transaction already has an xid then, which the tailer's gap rule relies on).
fn with_outbox(write: &str, first: usize) -> String {
    let p: Vec<String> = (first..first + 5).map(|i| format!("${i}")).collect();
    format!(
        "WITH w AS ({write} RETURNING \"id\") \
         INSERT INTO _changes (instance, collection, record, action, created) \
         SELECT {} FROM w RETURNING pos",
        p.join(", ")
    )
}

/// A PostgreSQL transaction, or (for work that needs none, `Op::autocommit`) a pooled
/// connection in autocommit, as an `engine::Tx`. It owns its connection: a borrowed one's
/// lifetime trips the compiler's `Send` check of the algorithm's future (see the NOTE above);
/// so does a generic wrapper, hence the enum.
struct PgTx(Conn);

enum Conn {
    Tx(sqlx::Transaction<'static, Postgres>),
    Pool(sqlx::pool::PoolConnection<Postgres>),
}

impl PgTx {
    fn conn(&mut self) -> &mut PgConnection {
        match &mut self.0 {
            Conn::Tx(tx) => tx,
            Conn::Pool(c) => c,
        }
    }
}

impl Tx for PgTx {
    type Fut<'a, T: 'a>
        = BoxFut<'a, T>
    where
        Self: 'a;

    fn dialect(&self) -> &'static dyn crate::store::dialect::Dialect {
        &crate::store::dialect::Postgres
    }
    fn strings<'a>(&'a mut self, sql: &'a str, params: &'a [Param]) -> Self::Fut<'a, Vec<String>> {
        Box::pin(query_strings(self.conn(), sql, params))
    }
    fn int<'a>(&'a mut self, sql: &'a str, params: &'a [Param]) -> Self::Fut<'a, i64> {
        Box::pin(query_i64(self.conn(), sql, params))
    }
    fn exec<'a>(&'a mut self, sql: &'a str, params: &'a [Param]) -> Self::Fut<'a, u64> {
        Box::pin(execute(self.conn(), sql, params))
    }
    fn write<'a>(
        &'a mut self,
        coll: &'a Collection,
        sql: &'a str,
        params: &'a [Param],
    ) -> Self::Fut<'a, u64> {
        Box::pin(async move {
            let sql = keyed(sql, params);
            let done = with_params(&sql, params)
                .execute(self.conn())
                .await
                .map_err(|e| map_error(e, Some(coll)))?;
            Ok(done.rows_affected())
        })
    }
    fn ddl<'a>(&'a mut self, sql: &'a str) -> Self::Fut<'a, ()> {
        Box::pin(async move {
            // A bare `&str` runs through the simple-query protocol: unprepared, never cached.
            self.conn().execute(sql).await?;
            Ok(())
        })
    }
    fn schema_changed<'a>(&'a mut self, collection_id: &'a str) -> Self::Fut<'a, ()> {
        Box::pin(notify_schema(self.conn(), collection_id))
    }
}

// ---------------------------------------------------------------------------------------------
// Values

fn cell(row: &PgRow, i: usize) -> Result<Cell, StoreError> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Cell::Null);
    }
    let ty = raw.type_info().name().to_string();
    Ok(match ty.as_str() {
        "FLOAT8" => Cell::Real(row.try_get::<f64, _>(i)?),
        "FLOAT4" => Cell::Real(f64::from(row.try_get::<f32, _>(i)?)),
        "INT8" => Cell::Int(row.try_get::<i64, _>(i)?),
        "INT4" => Cell::Int(i64::from(row.try_get::<i32, _>(i)?)),
        "INT2" => Cell::Int(i64::from(row.try_get::<i16, _>(i)?)),
        "BOOL" => Cell::Bool(row.try_get::<bool, _>(i)?),
        "JSONB" | "JSON" => Cell::Json(row.try_get::<Json<Value>, _>(i)?.0),
        _ => Cell::Text(row.try_get::<String, _>(i)?),
    })
}

/// The outbox tailer and wake-up signal of the change feed.
mod feed;

/// Bulk import for `basalt migrate-db` (`store::transfer`).
pub(crate) mod import;

#[cfg(test)]
mod tests;

/// Store futures must be `Send` for any lifetime (axum handlers, `tokio::spawn`): a compile-time
/// check.
#[cfg(test)]
#[allow(dead_code)]
fn assert_send<'a>(db: &'a Db, c: &'a Collection, ops: &'a [Op]) {
    fn is_send<T: Send>(_: T) {}
    is_send(db.commit("", ops));
    is_send(db.query_rows(c, "", &[]));
    is_send(db.query_strings("", &[]));
    is_send(Db::open(""));
}

impl Db {
    /// The sqlx pool's usage.
    pub(crate) fn pool_stats(&self) -> crate::store::PoolStats {
        let open = self.pool.size();
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        crate::store::PoolStats {
            max: self.pool.options().get_max_connections(),
            idle,
            in_use: open.saturating_sub(idle),
        }
    }
}
