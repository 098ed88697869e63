//! Copying a whole database into PostgreSQL (`basalt migrate-db`): collection definitions
//! (token secrets included), `_params`, cron schedules, API keys, the jobs still to run, and
//! every record, then a row-count check of every table.
//!
//! - Definitions go through `Store::create_collection` (or `update_collection` when the target
//!   already has the collection under the same id but a different definition), so the target's
//!   tables and indexes get the target engine's DDL. A target collection with the same name and a
//!   different id is refused before anything is written.
//! - Rows are read from the source in batches in insertion order (keyset on SQLite's `rowid` or
//!   PostgreSQL's `_rowid`, so the target's hidden `_rowid` keeps the source's default order) and
//!   written with multi-row `INSERT … ON CONFLICT ("id") DO NOTHING`, ONE transaction per table:
//!   an interrupted run leaves every table either complete or untouched, and running again skips
//!   the rows already copied.
//! - Relation columns carry no foreign keys on either engine, so tables are copied in the
//!   source's collection order even when a relation points to a collection copied later.
//!
//! The source may be either engine; the target must be PostgreSQL (a SQLite copy is a file copy).

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use crate::model::collection::{Collection, CollectionType};
use crate::model::field::{Field, FieldKind};
use crate::store::dialect::{quote_ident, Dialect};
use crate::store::postgres::import::Import;
use crate::store::{migrate, schema_sql, sqlite, Backend, Param, Store, StoreError};

/// Rows per batch unless the caller says otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 1000;

/// The synthetic last column holding each row's insertion-order key while reading. `@` cannot
/// start a field name, so it never collides with one.
const ROWID_KEY: &str = "@rowid";

/// What happened to a collection's definition on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Definition {
    /// The target did not have it: table and indexes created.
    Created,
    /// The target had it under the same id with another definition: migrated to the source's.
    Updated,
    /// The target already had exactly this definition.
    Unchanged,
}

impl Definition {
    pub fn as_str(self) -> &'static str {
        match self {
            Definition::Created => "created",
            Definition::Updated => "updated",
            Definition::Unchanged => "unchanged",
        }
    }
}

/// Progress of the table being copied, reported after every batch.
#[derive(Debug, Clone)]
pub struct Progress {
    pub table: String,
    /// Rows read from the source so far.
    pub copied: u64,
    /// Rows the source table had when its copy started.
    pub total: u64,
    /// The table's transaction has committed.
    pub finished: bool,
}

/// One table of the final count check.
#[derive(Debug, Clone)]
pub struct TableReport {
    pub table: String,
    /// `None` for system tables (`_collections`, `_params`).
    pub definition: Option<Definition>,
    /// Rows inserted on the target by this run (the others already existed); `None` for
    /// `_collections`, which is written through the definitions.
    pub inserted: Option<u64>,
    /// `SELECT COUNT(*)` on each side after the copy.
    pub source_count: i64,
    pub target_count: i64,
    /// The definition was copied but not the rows (`SESSION_TABLES`): no count check.
    pub rows_skipped: bool,
}

impl TableReport {
    pub fn matches(&self) -> bool {
        self.rows_skipped || self.source_count == self.target_count
    }
}

/// Collections whose rows are not copied: MFA sessions, one-time codes and remembered devices
/// are short-lived state of the source's logins (sessions and codes expire within minutes;
/// devices only decide whether a login alert is mailed). A copy would carry nothing anyone needs,
/// and rows of the target's own logins would collide with them on a second run.
pub const SESSION_TABLES: &[&str] = &["_mfas", "_otps", "_authOrigins"];

/// The outcome of `copy_database`: every table in copy order, system tables first.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub tables: Vec<TableReport>,
}

impl Report {
    /// Whether every table has as many rows on the target as on the source.
    pub fn ok(&self) -> bool {
        self.tables.iter().all(TableReport::matches)
    }

    pub fn mismatches(&self) -> impl Iterator<Item = &TableReport> {
        self.tables.iter().filter(|t| !t.matches())
    }
}

/// How rows of a table are paged through.
#[derive(Clone, Copy)]
enum Key {
    /// The engine's insertion order (`rowid` / `_rowid`): collection tables.
    Rowid,
    /// The `id` primary key: system tables (PostgreSQL's have no `_rowid`).
    Id,
}

/// Where the previous batch ended.
enum Cursor {
    Start,
    Rowid(i64),
    Id(String),
}

/// Copies every collection definition, `_params` and every record of `from` into `to`, then
/// compares the row counts of every table. Safe to run again: existing collections (same id)
/// and rows (same id) are kept; the report then shows 0 inserted rows.
///
/// `batch_size` rows are read and inserted at a time (at least 1); `progress` is called when a
/// table starts, after every batch, and when its transaction has committed.
pub async fn copy_database(
    from: &Store,
    to: &Store,
    batch_size: usize,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Report, StoreError> {
    let Backend::Postgres(target) = &to.backend else {
        return Err(StoreError::Db("the target of a database copy must be PostgreSQL".into()));
    };
    let batch_size = batch_size.max(1);
    let source_colls = from.load_collections().await?;
    let target_colls = to.load_collections().await?;

    // Refuse conflicts before writing anything.
    for c in &source_colls {
        if let Some(t) =
            target_colls.iter().find(|t| t.id != c.id && t.name.eq_ignore_ascii_case(&c.name))
        {
            return Err(StoreError::Db(format!(
                "the target already has a collection named {:?} with another id ({} on the \
                 target, {} on the source); copy into an empty database",
                t.name, t.id, c.id
            )));
        }
    }

    let mut definitions = Vec::with_capacity(source_colls.len());
    for c in &source_colls {
        let definition = match target_colls.iter().find(|t| t.id == c.id) {
            Some(t) if t == c => Definition::Unchanged,
            Some(t) => {
                to.update_collection(t, c).await.map_err(|e| context(&c.name, e))?;
                Definition::Updated
            }
            None => {
                to.create_collection(c).await.map_err(|e| context(&c.name, e))?;
                Definition::Created
            }
        };
        definitions.push(definition);
    }

    let mut report = Report::default();
    report.tables.push(TableReport {
        table: "_collections".into(),
        definition: None,
        inserted: None,
        source_count: 0,
        target_count: 0,
        rows_skipped: false,
    });
    let params = Arc::new(params_table());
    let inserted = copy_table(from, target, &params, Key::Id, batch_size, progress).await?;
    report.tables.push(TableReport {
        table: params.name.clone(),
        definition: None,
        inserted: Some(inserted),
        source_count: 0,
        target_count: 0,
        rows_skipped: false,
    });
    copy_system(from, to, &mut report).await?;
    for (c, definition) in source_colls.into_iter().zip(definitions) {
        let c = Arc::new(c);
        if SESSION_TABLES.contains(&c.name.as_str()) {
            report.tables.push(TableReport {
                table: c.name.clone(),
                definition: Some(definition),
                inserted: None,
                source_count: 0,
                target_count: 0,
                rows_skipped: true,
            });
            continue;
        }
        let inserted = copy_table(from, target, &c, Key::Rowid, batch_size, progress).await?;
        report.tables.push(TableReport {
            table: c.name.clone(),
            definition: Some(definition),
            inserted: Some(inserted),
            source_count: 0,
            target_count: 0,
            rows_skipped: false,
        });
    }

    for t in &mut report.tables {
        if t.table == "_jobs" {
            t.source_count = live_jobs(from).await?;
            t.target_count = live_jobs(to).await?;
        } else {
            t.source_count = from.count_rows(&t.table).await?;
            t.target_count = to.count_rows(&t.table).await?;
        }
    }
    Ok(report)
}

/// Cron schedules, API keys and the jobs still to run: copied through the store's own
/// operations, skipping what the target has (same id). Jobs go over pending (a running one's
/// attempt is given back: the source is stopped); finished ones (succeeded, dead) are history
/// and stay behind, so `_jobs` is checked on its pending and running rows only.
async fn copy_system(from: &Store, to: &Store, report: &mut Report) -> Result<(), StoreError> {
    let mut row = |table: &str, inserted: u64| {
        report.tables.push(TableReport {
            table: table.into(),
            definition: None,
            inserted: Some(inserted),
            source_count: 0,
            target_count: 0,
            rows_skipped: false,
        })
    };
    let have: std::collections::HashSet<String> =
        to.crons().await?.into_iter().map(|c| c.id).collect();
    let mut n = 0;
    for c in from.crons().await? {
        if !have.contains(&c.id) {
            to.put_cron(c).await.map_err(|e| context("_crons", e))?;
            n += 1;
        }
    }
    row("_crons", n);
    let have: std::collections::HashSet<String> =
        to.api_keys(None).await?.into_iter().map(|k| k.id).collect();
    let mut n = 0;
    for k in from.api_keys(None).await? {
        if !have.contains(&k.id) {
            to.put_api_key(k).await.map_err(|e| context("_apikeys", e))?;
            n += 1;
        }
    }
    row("_apikeys", n);
    let before = live_jobs(to).await?;
    for state in ["pending", "running"] {
        // Paged by offset: the source is stopped, so its pages do not move.
        let mut offset = 0;
        loop {
            let (jobs, _) = from.list_jobs(None, Some(state), None, 1000, offset).await?;
            if jobs.is_empty() {
                break;
            }
            offset += jobs.len() as i64;
            let mut w = to.work();
            for j in jobs {
                // Attempts spent stay spent (an interrupted one does not count).
                let spent = if state == "running" { j.attempts - 1 } else { j.attempts };
                w.enqueue_job(super::jobs::NewJob {
                    id: j.id,
                    queue: j.queue,
                    kind: j.kind,
                    payload: j.payload,
                    priority: j.priority,
                    run_at: j.run_at,
                    max_attempts: (j.max_attempts - spent).max(1),
                    unique_key: j.unique_key,
                });
            }
            to.commit(w).await.map_err(|e| context("_jobs", e))?;
        }
    }
    let after = live_jobs(to).await?;
    row("_jobs", u64::try_from(after - before).unwrap_or(0));
    Ok(())
}

/// Jobs pending or running.
async fn live_jobs(store: &Store) -> Result<i64, StoreError> {
    let mut n = 0;
    for state in ["pending", "running"] {
        n += store.list_jobs(None, Some(state), None, 0, 0).await?.1;
    }
    Ok(n)
}

/// Copies the rows of one table in one target transaction; returns how many were inserted.
async fn copy_table(
    from: &Store,
    target: &super::postgres::Db,
    coll: &Arc<Collection>,
    key: Key,
    batch_size: usize,
    progress: &mut dyn FnMut(&Progress),
) -> Result<u64, StoreError> {
    let total = u64::try_from(from.count_rows(&coll.name).await?).unwrap_or(0);
    let mut p = Progress { table: coll.name.clone(), copied: 0, total, finished: false };
    progress(&p);
    let mut import = target.begin_import().await.map_err(|e| context(&coll.name, e))?;
    match copy_rows(from, &mut import, coll, key, batch_size, &mut p, progress).await {
        Ok(inserted) => {
            import.commit().await.map_err(|e| context(&coll.name, e))?;
            p.finished = true;
            progress(&p);
            Ok(inserted)
        }
        Err(e) => {
            import.rollback().await;
            Err(context(&coll.name, e))
        }
    }
}

async fn copy_rows(
    from: &Store,
    import: &mut Import,
    coll: &Arc<Collection>,
    key: Key,
    batch_size: usize,
    p: &mut Progress,
    progress: &mut dyn FnMut(&Progress),
) -> Result<u64, StoreError> {
    // The rows are read with the insertion-order key as an extra last column.
    let reader = match key {
        Key::Rowid => {
            let mut r = Collection::clone(coll);
            r.fields.push(rowid_field());
            Arc::new(r)
        }
        Key::Id => coll.clone(),
    };
    let mut cursor = Cursor::Start;
    let mut inserted = 0;
    loop {
        let (sql, params) = batch_sql(from.dialect(), coll, key, &cursor, batch_size);
        let mut rows = from.rows(&reader, sql, params).await?;
        let Some(last) = rows.last_mut() else { break };
        cursor = match key {
            Key::Rowid => Cursor::Rowid(
                last.remove(ROWID_KEY)
                    .and_then(|v| v.as_i64())
                    .ok_or_else(|| StoreError::Db("row without an insertion-order key".into()))?,
            ),
            Key::Id => Cursor::Id(last.get("id").and_then(Value::as_str).unwrap_or("").into()),
        };
        for row in &mut rows {
            row.remove(ROWID_KEY);
        }
        inserted += import.insert(coll, &rows).await?;
        p.copied += rows.len() as u64;
        progress(p);
        if rows.len() < batch_size {
            break;
        }
    }
    Ok(inserted)
}

/// The next batch after `cursor` in `key` order (with the insertion-order key as the last
/// column for `Key::Rowid`).
fn batch_sql(
    d: &dyn Dialect,
    coll: &Collection,
    key: Key,
    cursor: &Cursor,
    limit: usize,
) -> (String, Vec<Param>) {
    let cols = schema_sql::select_list(coll, "t");
    let (select, order) = match key {
        Key::Rowid => {
            let rowid = d.rowid("t");
            (format!("{cols}, {rowid}"), rowid)
        }
        Key::Id => (cols, "t.\"id\"".to_string()),
    };
    let (where_sql, params) = match cursor {
        Cursor::Start => (String::new(), Vec::new()),
        Cursor::Rowid(r) => {
            (format!(" WHERE {order} > {}", d.placeholder(1)), vec![Param::Int(*r)])
        }
        Cursor::Id(id) => {
            (format!(" WHERE {order} > {}", d.placeholder(1)), vec![Param::Text(id.clone())])
        }
    };
    let sql = format!(
        "SELECT {select} FROM {} t{where_sql} ORDER BY {order} LIMIT {limit}",
        quote_ident(&coll.name)
    );
    (sql, params)
}

/// `_params` as a collection of text columns, so it is read and written like one.
fn params_table() -> Collection {
    let mut c = Collection::blank(CollectionType::Base, "_params");
    for name in ["value", "created", "updated"] {
        c.fields.push(Field {
            id: name.into(),
            name: name.into(),
            system: true,
            hidden: false,
            presentable: false,
            required: false,
            help: String::new(),
            kind: FieldKind::Text {
                min: 0,
                max: 0,
                pattern: String::new(),
                autogenerate_pattern: String::new(),
                primary_key: false,
            },
        });
    }
    c
}

/// The synthetic field the insertion-order key is decoded as.
fn rowid_field() -> Field {
    Field {
        id: ROWID_KEY.into(),
        name: ROWID_KEY.into(),
        system: true,
        hidden: true,
        presentable: false,
        required: false,
        help: String::new(),
        kind: FieldKind::Number { min: None, max: None, only_int: true },
    }
}

/// Names the table an error happened in.
fn context(table: &str, e: StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(format!("{table}: {m}")),
        StoreError::Db(m) => StoreError::Db(format!("{table}: {m}")),
        StoreError::Unique(fields) => StoreError::Db(format!(
            "{table}: a unique index on {fields:?} rejected a row whose id is not on the target \
             (the target holds other data)"
        )),
        other => StoreError::Db(format!("{table}: {other}")),
    }
}

impl Store {
    /// Opens an existing SQLite database file (any name) as a copy source and applies pending
    /// system migrations to it. Unlike `Store::open`, never creates one.
    pub async fn open_sqlite_file(path: &Path) -> Result<Store, StoreError> {
        if !path.is_file() {
            return Err(StoreError::Db(format!("no SQLite database at {}", path.display())));
        }
        let db = sqlite::Db::open(path)?;
        db.write(migrate::apply_sqlite).await?;
        Ok(Store::with_backend(Backend::Sqlite(db)))
    }

    /// `SELECT COUNT(*)` of a table.
    async fn count_rows(&self, table: &str) -> Result<i64, StoreError> {
        let sql = format!("SELECT COUNT(*) FROM {}", quote_ident(table));
        match &self.backend {
            Backend::Sqlite(db) => db.read(move |conn| sqlite::query_i64(conn, &sql, &[])).await,
            Backend::Postgres(db) => db.query_i64(&sql, &[]).await,
        }
    }
}

#[cfg(test)]
#[path = "transfer_tests.rs"]
mod tests;
