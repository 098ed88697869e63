//! SQLite through rusqlite: one writer connection and a pool of readers over a WAL database,
//! value mapping between SQLite and the stored JSON shape, and the statements that run in them.
//!
//! All blocking work runs on tokio's blocking pool; callers only see async functions.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{params_from_iter, Connection, OpenFlags, Transaction};
use serde_json::{Map, Value};
use tokio::sync::Semaphore;

use crate::model::collection::{Collection, Schema};
use crate::model::field::FieldKind;
use crate::model::value::number_value;
use crate::store::cascade;
use crate::store::changes::{self, Action, Change, Pending};
use crate::store::dialect::quote_ident;
use crate::store::engine::{self, Tx};
use crate::store::query::Param;
use crate::store::schema_sql;
use crate::store::sqlite_writer::Writer;
use crate::store::{Row, StoreError};

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
    /// `sqlite_writer.rs`); answers after the commit.
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
        Param::Null => SqlValue::Null,
        Param::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Param::Int(i) => SqlValue::Integer(*i),
        Param::Real(f) => SqlValue::Real(*f),
        Param::Text(s) => SqlValue::Text(s.clone()),
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
        let mut m = Map::new();
        for (i, f) in coll.fields.iter().enumerate() {
            let v = decode(&f.kind, f.is_multi(), r.get_ref(i)?);
            m.insert(f.name.clone(), v);
        }
        out.push(m);
    }
    Ok(out)
}

fn decode(kind: &FieldKind, multi: bool, v: ValueRef<'_>) -> Value {
    match kind {
        FieldKind::Number { .. } => match v {
            ValueRef::Integer(i) => Value::from(i),
            ValueRef::Real(f) => number_value(f),
            ValueRef::Text(t) => std::str::from_utf8(t)
                .ok()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .map(number_value)
                .unwrap_or(Value::from(0)),
            _ => Value::from(0),
        },
        FieldKind::Bool => match v {
            ValueRef::Integer(i) => Value::Bool(i != 0),
            ValueRef::Text(t) => Value::Bool(t == b"1" || t.eq_ignore_ascii_case(b"true")),
            _ => Value::Bool(false),
        },
        FieldKind::Json { .. } | FieldKind::GeoPoint => match v {
            ValueRef::Text(t) | ValueRef::Blob(t) => {
                serde_json::from_slice(t).unwrap_or(Value::Null)
            }
            ValueRef::Integer(i) => Value::from(i),
            ValueRef::Real(f) => Value::from(f),
            ValueRef::Null => Value::Null,
        },
        _ if multi => match v {
            ValueRef::Text(t) => match serde_json::from_slice::<Value>(t) {
                Ok(Value::Array(a)) => Value::Array(a),
                _ if t.is_empty() => Value::Array(vec![]),
                _ => Value::Array(vec![Value::String(String::from_utf8_lossy(t).into_owned())]),
            },
            _ => Value::Array(vec![]),
        },
        _ => match v {
            ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Integer(i) => Value::String(i.to_string()),
            ValueRef::Real(f) => Value::String(f.to_string()),
            _ => Value::String(String::new()),
        },
    }
}

/// The stored SQL value of a field value.
fn encode(kind: &FieldKind, multi: bool, v: &Value) -> SqlValue {
    match (kind, v) {
        (FieldKind::Json { .. }, Value::Null) => SqlValue::Null,
        (FieldKind::Json { .. } | FieldKind::GeoPoint, other) => SqlValue::Text(other.to_string()),
        (_, Value::Array(_)) if multi => SqlValue::Text(v.to_string()),
        (_, Value::Null) if multi => SqlValue::Text("[]".into()),
        (FieldKind::Bool, Value::Bool(b)) => SqlValue::Integer(i64::from(*b)),
        (FieldKind::Number { .. }, Value::Number(n)) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(0.0)),
        },
        (_, Value::String(s)) => SqlValue::Text(s.clone()),
        (_, Value::Null) => SqlValue::Text(String::new()),
        (_, Value::Bool(b)) => SqlValue::Integer(i64::from(*b)),
        (_, Value::Number(n)) => SqlValue::Text(n.to_string()),
        (_, other) => SqlValue::Text(other.to_string()),
    }
}

pub(crate) fn load_collections(conn: &Connection) -> Result<Vec<Collection>, StoreError> {
    let mut stmt = conn.prepare("SELECT data FROM _collections ORDER BY rowid")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for data in rows {
        let v: Value = serde_json::from_str(&data?).map_err(|e| StoreError::Db(e.to_string()))?;
        let c = crate::model::collection::Collection::from_stored_json(&v)
            .map_err(|e| StoreError::Db(format!("corrupt collection definition: {e}")))?;
        out.push(c);
    }
    Ok(out)
}

fn save_collection_row(tx: &Transaction<'_>, c: &Collection) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO _collections (id, name, type, system, data, created, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, type = excluded.type, system = excluded.system, \
         data = excluded.data, updated = excluded.updated",
        rusqlite::params![c.id, c.name, c.kind.as_str(), c.system, c.to_json(true).to_string(), c.created, c.updated],
    )?;
    Ok(())
}

fn create_indexes(tx: &Transaction<'_>, c: &Collection) -> Result<(), StoreError> {
    for idx in schema_sql::indexes(c)? {
        if let Err(e) = tx.execute_batch(&idx.create_sql(&c.name)) {
            // The statement is the user's: its failure is theirs to fix (400), unless existing
            // rows violate a new unique index, which is reported as such.
            return Err(match StoreError::from(e) {
                StoreError::Unique(cols) => StoreError::Unique(cols),
                other => StoreError::Index(format!("index {:?}: {other}", idx.name)),
            });
        }
    }
    Ok(())
}

fn drop_indexes(tx: &Transaction<'_>, c: &Collection) -> Result<(), StoreError> {
    for idx in schema_sql::indexes(c)? {
        tx.execute_batch(&format!("DROP INDEX IF EXISTS {}", quote_ident(&idx.name)))?;
    }
    Ok(())
}

pub(crate) fn create_collection(tx: &Transaction<'_>, c: &Collection) -> Result<(), StoreError> {
    save_collection_row(tx, c)?;
    tx.execute_batch(&schema_sql::create_table(c))?;
    create_indexes(tx, c)
}

/// Migrates the table of `old` to the shape of `new` in the caller's transaction: fields are
/// matched by id, so renamed fields keep their data.
pub(crate) fn update_collection(
    tx: &Transaction<'_>,
    old: &Collection,
    new: &Collection,
) -> Result<(), StoreError> {
    drop_indexes(tx, old)?;
    if old.name != new.name {
        tx.execute_batch(&format!(
            "ALTER TABLE {} RENAME TO {}",
            quote_ident(&old.name),
            quote_ident(&new.name)
        ))?;
    }
    let table = quote_ident(&new.name);
    for of in &old.fields {
        if !new.fields.iter().any(|nf| nf.id == of.id) {
            tx.execute_batch(&format!(
                "ALTER TABLE {table} DROP COLUMN {}",
                quote_ident(&of.name)
            ))?;
        }
    }
    for nf in &new.fields {
        match old.fields.iter().find(|of| of.id == nf.id) {
            Some(of) => {
                if of.name != nf.name {
                    tx.execute_batch(&format!(
                        "ALTER TABLE {table} RENAME COLUMN {} TO {}",
                        quote_ident(&of.name),
                        quote_ident(&nf.name)
                    ))?;
                }
                let col = quote_ident(&nf.name);
                if !of.is_multi() && nf.is_multi() {
                    tx.execute_batch(&format!(
                        "UPDATE {table} SET {col} = CASE WHEN {col} = '' THEN '[]' ELSE json_array({col}) END"
                    ))?;
                } else if of.is_multi() && !nf.is_multi() {
                    tx.execute_batch(&format!(
                        "UPDATE {table} SET {col} = CASE WHEN json_valid({col}) THEN COALESCE(json_extract({col}, '$[#-1]'), '') ELSE '' END"
                    ))?;
                }
            }
            None => {
                tx.execute_batch(&format!(
                    "ALTER TABLE {table} ADD COLUMN {}",
                    schema_sql::column_def(nf)
                ))?;
            }
        }
    }
    save_collection_row(tx, new)?;
    create_indexes(tx, new)
}

pub(crate) fn delete_collection(tx: &Transaction<'_>, c: &Collection) -> Result<(), StoreError> {
    drop_indexes(tx, c)?;
    tx.execute_batch(&format!("DROP TABLE IF EXISTS {}", quote_ident(&c.name)))?;
    tx.execute("DELETE FROM _collections WHERE id = ?1", [&c.id])?;
    Ok(())
}

fn row_values(coll: &Collection, row: &Row) -> Vec<SqlValue> {
    coll.fields
        .iter()
        .map(|f| match row.get(&f.name) {
            Some(v) => encode(&f.kind, f.is_multi(), v),
            None => encode(&f.kind, f.is_multi(), &f.zero_value()),
        })
        .collect()
}

fn run_check(tx: &Transaction<'_>, check: Option<&(String, Vec<Param>)>) -> Result<(), StoreError> {
    if let Some((sql, params)) = check {
        if query_i64(tx, sql, params)? == 0 {
            return Err(StoreError::RuleFailed);
        }
    }
    Ok(())
}

pub(crate) fn insert_record(
    tx: &Transaction<'_>,
    instance: &str,
    coll: &Collection,
    row: &Row,
    check: Option<&(String, Vec<Param>)>,
) -> Result<Vec<Change>, StoreError> {
    let sql = schema_sql::insert_sql(&crate::store::dialect::Sqlite, coll);
    tx.prepare_cached(&sql)?.execute(params_from_iter(row_values(coll, row)))?;
    run_check(tx, check)?;
    let change = Pending::new(&coll.id, changes::id_of(row), Action::Create).with_record(row);
    write_changes(tx, instance, vec![change])
}

pub(crate) fn update_record(
    tx: &Transaction<'_>,
    instance: &str,
    coll: &Collection,
    id: &str,
    row: &Row,
    check: Option<&(String, Vec<Param>)>,
) -> Result<Vec<Change>, StoreError> {
    let sql = schema_sql::update_sql(&crate::store::dialect::Sqlite, coll);
    let mut values = row_values(coll, row);
    values.push(SqlValue::Text(id.to_string()));
    let n = tx.prepare_cached(&sql)?.execute(params_from_iter(values))?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    run_check(tx, check)?;
    let change = Pending::new(&coll.id, id, Action::Update).with_record(row);
    write_changes(tx, instance, vec![change])
}

/// Writes the outbox rows of `pending` in the caller's transaction; returns them positioned.
fn write_changes(
    tx: &Transaction<'_>,
    instance: &str,
    pending: Vec<Pending>,
) -> Result<Vec<Change>, StoreError> {
    let sql = changes::insert_sql(&crate::store::dialect::Sqlite, 1);
    let mut stmt = tx.prepare_cached(&sql)?;
    let mut out = Vec::with_capacity(pending.len());
    for p in pending {
        let values: Vec<SqlValue> = p.params(instance).iter().map(to_sql).collect();
        // `pos` is the rowid.
        stmt.execute(params_from_iter(values))?;
        out.push(p.into_change(tx.last_insert_rowid()));
    }
    Ok(out)
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
    let rows = stmt
        .query_map([pos, limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(changes::from_outbox(instance, row?));
    }
    Ok(out)
}

/// Deletes `id` and applies relation semantics to referencing rows (`cascade::delete`); every
/// record deleted or cleaned up is a change, written to the outbox in the same transaction.
pub(crate) fn delete_record(
    tx: &Transaction<'_>,
    instance: &str,
    schema: &Schema,
    coll: &Collection,
    id: &str,
) -> Result<Vec<Change>, StoreError> {
    let pending = engine::ready(cascade::delete(&mut SqliteTx(tx), schema, coll, id))?;
    write_changes(tx, instance, pending)
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
