//! SQLite through rusqlite: one writer connection (`writer.rs`) and a pool of readers over a WAL
//! database, reading column values into `stored::Cell`, and the `engine::Tx` of the writer's
//! transaction that the engine-neutral writes (`work.rs`) run on.
//!
//! All blocking work runs on tokio's blocking pool; callers only see async functions.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{params_from_iter, Connection, OpenFlags, Transaction};
use tokio::sync::Semaphore;

use crate::model::collection::Collection;
use crate::store::changes::{self, Change};
use crate::store::engine::{self, Tx};
use crate::store::query::Param;
use crate::store::stored::{self, Cell};
use crate::store::work::{self, Op};
use crate::store::{Row, StoreError};
use writer::Writer;

mod writer;

const READERS: usize = 8;

pub(crate) struct Db {
    path: PathBuf,
    writer: Writer,
    readers: Arc<Mutex<Vec<Connection>>>,
    read_permits: Arc<Semaphore>,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(f, Some(msg)) = &e {
            if f.code == rusqlite::ErrorCode::ConstraintViolation && msg.contains("UNIQUE") {
                return StoreError::Unique(unique_columns(msg));
            }
        }
        StoreError::Db(e.to_string())
    }
}

/// `UNIQUE constraint failed: posts.a, posts.b` → `["a", "b"]`.
fn unique_columns(msg: &str) -> Vec<String> {
    let list = msg.split(": ").nth(1).unwrap_or_default();
    list.split(',').filter_map(|p| p.trim().rsplit('.').next()).map(str::to_string).collect()
}

fn open_conn(path: &Path, read_only: bool) -> Result<Connection, StoreError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -16000; \
         PRAGMA temp_store = MEMORY;",
    )?;
    conn.set_prepared_statement_cache_capacity(256);
    register_functions(&conn)?;
    Ok(conn)
}

/// SQL functions the dialect relies on that the bundled SQLite lacks.
fn register_functions(conn: &Connection) -> Result<(), StoreError> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        "basalt_geo_distance",
        4,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let mut v = [0f64; 4];
            for (i, slot) in v.iter_mut().enumerate() {
                *slot = ctx.get::<Option<f64>>(i)?.unwrap_or(0.0);
            }
            Ok(haversine_km(v[0], v[1], v[2], v[3]))
        },
    )?;
    Ok(())
}

/// Great-circle distance in kilometres (mean Earth radius 6371 km).
fn haversine_km(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    6371.0 * 2.0 * a.sqrt().asin()
}

impl Db {
    pub(crate) fn open(path: &Path) -> Result<Db, StoreError> {
        let writer = open_conn(path, false)?;
        // WAL lets readers proceed while the single writer commits.
        writer.pragma_update(None, "journal_mode", "WAL")?;
        Ok(Db {
            path: path.to_path_buf(),
            writer: Writer::spawn(writer)?,
            readers: Arc::new(Mutex::new(Vec::new())),
            read_permits: Arc::new(Semaphore::new(READERS)),
        })
    }

    /// Runs `f` in a transaction of the writer (grouped with other waiting writes, see
    /// `writer.rs`); answers after the commit.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.writer.write(f).await
    }

    /// Runs `f` on a pooled read-only connection.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = self
            .read_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Db("store closed".into()))?;
        let readers = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let pooled =
                readers.lock().map_err(|_| StoreError::Db("pool lock poisoned".into()))?.pop();
            let conn = match pooled {
                Some(c) => c,
                None => open_conn(&path, true)?,
            };
            let out = f(&conn);
            if let Ok(mut pool) = readers.lock() {
                pool.push(conn);
            }
            drop(permit);
            out
        })
        .await
        .map_err(|e| StoreError::Db(format!("reader task failed: {e}")))?
    }

    pub(crate) async fn close(&self) {
        self.read_permits.close();
        self.writer.close().await;
    }
}

fn to_sql(p: &Param) -> SqlValue {
    match p {
        Param::Null | Param::JsonNull => SqlValue::Null,
        Param::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Param::Int(i) => SqlValue::Integer(*i),
        Param::Real(f) => SqlValue::Real(*f),
        Param::Text(s) => SqlValue::Text(s.clone()),
        Param::Json(v) => SqlValue::Text(v.to_string()),
    }
}

pub(crate) fn execute(conn: &Connection, sql: &str, params: &[Param]) -> Result<usize, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    Ok(stmt.execute(params_from_iter(params.iter().map(to_sql)))?)
}

pub(crate) fn query_i64(conn: &Connection, sql: &str, params: &[Param]) -> Result<i64, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    Ok(stmt.query_row(params_from_iter(params.iter().map(to_sql)), |r| r.get(0))?)
}

pub(crate) fn query_strings(
    conn: &Connection,
    sql: &str,
    params: &[Param],
) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows =
        stmt.query_map(params_from_iter(params.iter().map(to_sql)), |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Runs a SELECT of `schema_sql::select_list` columns and decodes each row.
pub(crate) fn query_rows(
    conn: &Connection,
    coll: &Collection,
    sql: &str,
    params: &[Param],
) -> Result<Vec<Row>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params_from_iter(params.iter().map(to_sql)))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(stored::decode_row(coll, |i| Ok(cell(r.get_ref(i)?)))?);
    }
    Ok(out)
}

/// A column as read, for `stored::decode`.
fn cell(v: ValueRef<'_>) -> Cell {
    match v {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(i) => Cell::Int(i),
        ValueRef::Real(f) => Cell::Real(f),
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            Cell::Text(String::from_utf8_lossy(t).into_owned())
        }
    }
}

/// Runs a unit of work in the writer's transaction (`work::run`).
pub(crate) fn commit(
    tx: &Transaction<'_>,
    instance: &str,
    ops: &[Op],
) -> Result<Vec<Change>, StoreError> {
    engine::ready(work::run(&mut SqliteTx(tx), instance, ops))
}

/// The outbox rows after `pos` (oldest first, at most `limit`).
pub(crate) fn changes_since(
    conn: &Connection,
    instance: &str,
    pos: i64,
    limit: i64,
) -> Result<Vec<Change>, StoreError> {
    let sql = changes::since_sql(&crate::store::dialect::Sqlite);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([pos, limit], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        out.push(changes::from_outbox(instance, row?));
    }
    Ok(out)
}

/// The writer's transaction as an `engine::Tx`: every statement runs when its future is made.
struct SqliteTx<'t, 'c>(&'t Transaction<'c>);

impl Tx for SqliteTx<'_, '_> {
    type Fut<'a, T: 'a>
        = std::future::Ready<Result<T, StoreError>>
    where
        Self: 'a;

    fn dialect(&self) -> &'static dyn crate::store::dialect::Dialect {
        &crate::store::dialect::Sqlite
    }
    fn strings<'a>(&'a mut self, sql: &'a str, params: &'a [Param]) -> Self::Fut<'a, Vec<String>> {
        std::future::ready(query_strings(self.0, sql, params))
    }
    fn int<'a>(&'a mut self, sql: &'a str, params: &'a [Param]) -> Self::Fut<'a, i64> {
        std::future::ready(query_i64(self.0, sql, params))
    }
    fn exec<'a>(&'a mut self, sql: &'a str, params: &'a [Param]) -> Self::Fut<'a, u64> {
        std::future::ready(execute(self.0, sql, params).map(|n| n as u64))
    }
    fn write<'a>(
        &'a mut self,
        _coll: &'a Collection,
        sql: &'a str,
        params: &'a [Param],
    ) -> Self::Fut<'a, u64> {
        // SQLite's unique violations name their columns themselves (`unique_columns`).
        self.exec(sql, params)
    }
    fn ddl<'a>(&'a mut self, sql: &'a str) -> Self::Fut<'a, ()> {
        std::future::ready(self.0.execute_batch(sql).map_err(StoreError::from))
    }
    fn schema_changed<'a>(&'a mut self, _collection_id: &'a str) -> Self::Fut<'a, ()> {
        // One process owns the file: its schema is reloaded by the service that changed it.
        std::future::ready(Ok(()))
    }
}

impl Db {
    /// The read pool's usage: a held permit is a reader at work (or being opened).
    pub(crate) fn pool_stats(&self) -> crate::store::PoolStats {
        let in_use = READERS.saturating_sub(self.read_permits.available_permits());
        let idle = self.readers.lock().map(|r| r.len()).unwrap_or(0);
        crate::store::PoolStats {
            max: u32::try_from(READERS).unwrap_or(u32::MAX),
            idle: u32::try_from(idle).unwrap_or(u32::MAX),
            in_use: u32::try_from(in_use).unwrap_or(u32::MAX),
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod plan_tests;
