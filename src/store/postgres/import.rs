//! Bulk import into PostgreSQL for `store::transfer` (`basalt migrate-db`): one transaction per
//! table, holding multi-row `INSERT … ON CONFLICT ("id") DO NOTHING` statements, so copying the
//! same rows again inserts nothing and fails nothing.
//!
//! A child module of `postgres` (it binds values as record writes do, `store::stored`).

use sqlx::Postgres;

use super::{keyed, map_error, with_params, BoxFut, Db};
use crate::model::collection::Collection;
use crate::store::dialect::quote_ident;
use crate::store::{stored, Row, StoreError};

/// PostgreSQL accepts at most 65 535 bind parameters in one statement.
const MAX_PARAMS: usize = 65_535;

/// An open import transaction on one connection. Dropping it without `commit` rolls it back.
pub(crate) struct Import {
    tx: sqlx::Transaction<'static, Postgres>,
}

impl Db {
    /// Starts an import transaction.
    pub(crate) async fn begin_import(&self) -> Result<Import, StoreError> {
        Ok(Import { tx: self.pool.begin().await? })
    }
}

/// `INSERT INTO t (cols) VALUES ($1…), (…) ON CONFLICT ("id") DO NOTHING` for `rows` rows.
fn insert_sql(coll: &Collection, rows: usize) -> String {
    let cols: Vec<String> = coll.fields.iter().map(|f| quote_ident(&f.name)).collect();
    let n = cols.len();
    let tuples: Vec<String> = (0..rows)
        .map(|r| {
            let marks: Vec<String> = (1..=n).map(|i| format!("${}", r * n + i)).collect();
            format!("({})", marks.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO {} ({}) VALUES {} ON CONFLICT (\"id\") DO NOTHING",
        quote_ident(&coll.name),
        cols.join(", "),
        tuples.join(", ")
    )
}

impl Import {
    /// Inserts `rows` (stored JSON shapes, as `Store` reads them) into `coll`'s table in the
    /// open transaction, skipping ids that already exist; returns how many were inserted.
    /// Rows are inserted in the given order, so the hidden `_rowid` keeps it.
    pub(crate) fn insert<'a>(
        &'a mut self,
        coll: &'a Collection,
        rows: &'a [Row],
    ) -> BoxFut<'a, u64> {
        Box::pin(async move {
            let per_statement = (MAX_PARAMS / coll.fields.len().max(1)).max(1);
            let mut inserted = 0;
            for chunk in rows.chunks(per_statement) {
                let params: Vec<_> =
                    chunk.iter().flat_map(|row| stored::row_params(coll, row)).collect();
                let sql = keyed(&insert_sql(coll, chunk.len()), &params);
                let done = with_params(&sql, &params)
                    .execute(&mut *self.tx)
                    .await
                    .map_err(|e| map_error(e, Some(coll)))?;
                inserted += done.rows_affected();
            }
            Ok(inserted)
        })
    }

    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }

    /// Rolls back now (rather than when the connection is next used).
    pub(crate) async fn rollback(self) {
        let _ = self.tx.rollback().await;
    }
}

#[cfg(test)]
mod tests {
    use crate::model::collection::{Collection, CollectionType};

    #[test]
    fn insert_sql_numbers_every_row() {
        let c = Collection::blank(CollectionType::Base, "posts");
        let sql = super::insert_sql(&c, 3);
        assert_eq!(
            sql,
            "INSERT INTO \"posts\" (\"id\") VALUES ($1), ($2), ($3) \
             ON CONFLICT (\"id\") DO NOTHING"
        );
    }
}
