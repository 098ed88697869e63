//! System migrations: the SQL files of `migrations/<engine>/`, embedded in the binary and applied
//! in name order, each once, recorded in `_migrations`.

use std::future::Future;
use std::pin::Pin;

use rusqlite::Transaction;
use sqlx::{Connection, Executor, PgConnection};

use crate::store::StoreError;

/// `(file name, SQL)` in apply order. Append-only.
const SQLITE: &[(&str, &str)] = &[
    ("0001_init.sql", include_str!("../../migrations/sqlite/0001_init.sql")),
    ("0002_changes.sql", include_str!("../../migrations/sqlite/0002_changes.sql")),
    ("0003_changes_data.sql", include_str!("../../migrations/sqlite/0003_changes_data.sql")),
    ("0004_jobs.sql", include_str!("../../migrations/sqlite/0004_jobs.sql")),
    ("0005_jobs_crons_keys.sql", include_str!("../../migrations/sqlite/0005_jobs_crons_keys.sql")),
    (
        "0006_jobs_claim_indexes.sql",
        include_str!("../../migrations/sqlite/0006_jobs_claim_indexes.sql"),
    ),
];

/// The PostgreSQL mirror of `SQLITE`, name for name. Append-only.
const POSTGRES: &[(&str, &str)] = &[
    ("0001_init.sql", include_str!("../../migrations/postgres/0001_init.sql")),
    ("0002_changes.sql", include_str!("../../migrations/postgres/0002_changes.sql")),
    ("0003_changes_data.sql", include_str!("../../migrations/postgres/0003_changes_data.sql")),
    ("0004_jobs.sql", include_str!("../../migrations/postgres/0004_jobs.sql")),
    (
        "0005_jobs_crons_keys.sql",
        include_str!("../../migrations/postgres/0005_jobs_crons_keys.sql"),
    ),
    (
        "0006_jobs_claim_indexes.sql",
        include_str!("../../migrations/postgres/0006_jobs_claim_indexes.sql"),
    ),
];

/// The `pg_advisory_xact_lock` key serialising migrations of instances sharing a database
/// ("basalt_m" as bytes).
const PG_MIGRATION_LOCK: i64 = 0x6261_7361_6c74_5f6d;

#[cfg(test)]
pub(crate) fn sqlite_names() -> Vec<&'static str> {
    SQLITE.iter().map(|(n, _)| *n).collect()
}

#[cfg(test)]
pub(crate) fn postgres_names() -> Vec<&'static str> {
    POSTGRES.iter().map(|(n, _)| *n).collect()
}

/// Applies the pending PostgreSQL migrations in ONE transaction that first takes an advisory
/// lock, so instances starting together apply each file once (the second waits, then sees it).
///
/// Boxed (and statements without parameters run as bare `&str`s, unprepared) so the future is
/// `Send` for any lifetime: see the NOTE in `postgres/mod.rs`.
pub(crate) fn apply_postgres(
    conn: &mut PgConnection,
) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + '_>> {
    Box::pin(async move {
        let mut tx = conn.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PG_MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        (&mut *tx)
            .execute(
                "CREATE TABLE IF NOT EXISTS _migrations \
                 (file TEXT PRIMARY KEY NOT NULL, applied BIGINT NOT NULL)",
            )
            .await?;
        for (name, sql) in POSTGRES {
            let done: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _migrations WHERE file = $1")
                .bind(*name)
                .fetch_one(&mut *tx)
                .await?;
            if done == 0 {
                (&mut *tx).execute(*sql).await?;
                sqlx::query(
                    "INSERT INTO _migrations (file, applied) \
                     VALUES ($1, EXTRACT(EPOCH FROM now())::BIGINT)",
                )
                .bind(*name)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    })
}

pub(crate) fn apply_sqlite(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch("CREATE TABLE IF NOT EXISTS _migrations (file TEXT PRIMARY KEY NOT NULL, applied INTEGER NOT NULL)")?;
    for (name, sql) in SQLITE {
        let done: i64 =
            tx.query_row("SELECT COUNT(*) FROM _migrations WHERE file = ?1", [name], |r| r.get(0))?;
        if done == 0 {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO _migrations (file, applied) VALUES (?1, strftime('%s','now'))",
                [name],
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The `.sql` files of `migrations/<engine>/`, sorted.
    fn files(engine: &str) -> Vec<String> {
        let dir = format!("{}/migrations/{engine}", env!("CARGO_MANIFEST_DIR"));
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn sqlite_and_postgres_migrations_match_name_for_name() {
        assert_eq!(files("sqlite"), files("postgres"));
    }

    #[test]
    fn every_migration_file_is_embedded_in_order() {
        assert_eq!(files("sqlite"), super::sqlite_names());
        assert_eq!(files("postgres"), super::postgres_names());
    }
}
