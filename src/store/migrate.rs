//! System migrations: the SQL files of `migrations/<engine>/`, embedded in the binary and applied
//! in name order, each once, recorded in `_migrations`.

use rusqlite::Transaction;

use crate::store::StoreError;

/// `(file name, SQL)` in apply order. Append-only.
const SQLITE: &[(&str, &str)] =
    &[("0001_init.sql", include_str!("../../migrations/sqlite/0001_init.sql"))];

#[cfg(test)]
pub(crate) fn sqlite_names() -> Vec<&'static str> {
    SQLITE.iter().map(|(n, _)| *n).collect()
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
    #[test]
    fn sqlite_and_postgres_migrations_match_name_for_name() {
        let names = |engine: &str| {
            let dir = format!("{}/migrations/{engine}", env!("CARGO_MANIFEST_DIR"));
            let mut files: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            files.sort();
            files
        };
        assert_eq!(names("sqlite"), names("postgres"));
    }

    #[test]
    fn every_migration_file_is_embedded_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        assert_eq!(files, super::sqlite_names());
    }
}
