//! Collection definitions and their tables, once for both engines, over `engine::Tx`: the
//! `_collections` row, the table (`Dialect::create_table`), its migration when fields change
//! and its indexes. Each function runs inside the caller's transaction; a failure rolls back
//! the whole change.

use crate::model::collection::Collection;
use crate::store::dialect::quote_ident;
use crate::store::engine::Tx;
use crate::store::query::Param;
use crate::store::{schema_sql, StoreError};

/// The statements that parse a collections row back: `Dialect::collections_sql` reads them.
pub(crate) fn parse_collections(rows: Vec<String>) -> Result<Vec<Collection>, StoreError> {
    rows.iter()
        .map(|data| {
            let v: serde_json::Value =
                serde_json::from_str(data).map_err(|e| StoreError::Db(e.to_string()))?;
            Collection::from_stored_json(&v)
                .map_err(|e| StoreError::Db(format!("corrupt collection definition: {e}")))
        })
        .collect()
}

async fn save_row<T: Tx>(tx: &mut T, c: &Collection) -> Result<(), StoreError> {
    let d = tx.dialect();
    let p: Vec<String> = (1..=7).map(|i| d.placeholder(i)).collect();
    let sql = format!(
        "INSERT INTO _collections (id, name, type, system, data, created, updated) \
         VALUES ({}) ON CONFLICT (id) DO UPDATE SET name = excluded.name, type = excluded.type, \
         system = excluded.system, data = excluded.data, updated = excluded.updated",
        p.join(", ")
    );
    let params = [
        Param::Text(c.id.clone()),
        Param::Text(c.name.clone()),
        Param::Text(c.kind.as_str().to_string()),
        Param::Bool(c.system),
        Param::Text(c.to_json(true).to_string()),
        Param::Text(c.created.clone()),
        Param::Text(c.updated.clone()),
    ];
    tx.exec(&sql, &params).await?;
    Ok(())
}

async fn create_indexes<T: Tx>(tx: &mut T, c: &Collection) -> Result<(), StoreError> {
    for idx in schema_sql::indexes(c)? {
        let sql = tx.dialect().create_index(&idx, c);
        match tx.ddl(&sql).await {
            Ok(()) => {}
            // The statement is the user's: its failure is theirs to fix (400), unless the
            // database is gone or existing rows violate a new unique index.
            Err(e @ (StoreError::Unavailable(_) | StoreError::Unique(_))) => return Err(e),
            Err(other) => return Err(StoreError::Index(format!("index {:?}: {other}", idx.name))),
        }
    }
    Ok(())
}

async fn drop_indexes<T: Tx>(tx: &mut T, c: &Collection) -> Result<(), StoreError> {
    for idx in schema_sql::indexes(c)? {
        tx.ddl(&format!("DROP INDEX IF EXISTS {}", quote_ident(&idx.name))).await?;
    }
    Ok(())
}

pub(crate) async fn create_collection<T: Tx>(tx: &mut T, c: &Collection) -> Result<(), StoreError> {
    save_row(tx, c).await?;
    for sql in tx.dialect().create_table(c) {
        tx.ddl(&sql).await?;
    }
    create_indexes(tx, c).await?;
    tx.schema_changed(&c.id).await
}

/// Migrates the table of `old` to the shape of `new`: fields are matched by id, so renamed
/// fields keep their data; single↔multi changes convert the column.
pub(crate) async fn update_collection<T: Tx>(
    tx: &mut T,
    old: &Collection,
    new: &Collection,
) -> Result<(), StoreError> {
    drop_indexes(tx, old).await?;
    if old.name != new.name {
        let (from, to) = (quote_ident(&old.name), quote_ident(&new.name));
        tx.ddl(&format!("ALTER TABLE {from} RENAME TO {to}")).await?;
    }
    let table = quote_ident(&new.name);
    for of in &old.fields {
        if !new.fields.iter().any(|nf| nf.id == of.id) {
            tx.ddl(&format!("ALTER TABLE {table} DROP COLUMN {}", quote_ident(&of.name))).await?;
        }
    }
    for nf in &new.fields {
        let Some(of) = old.fields.iter().find(|of| of.id == nf.id) else {
            let def = tx.dialect().column_def(nf);
            tx.ddl(&format!("ALTER TABLE {table} ADD COLUMN {def}")).await?;
            continue;
        };
        let col = quote_ident(&nf.name);
        if of.name != nf.name {
            let from = quote_ident(&of.name);
            tx.ddl(&format!("ALTER TABLE {table} RENAME COLUMN {from} TO {col}")).await?;
        }
        if of.is_multi() != nf.is_multi() {
            for sql in tx.dialect().convert_column(&table, &col, nf.is_multi()) {
                tx.ddl(&sql).await?;
            }
        }
    }
    save_row(tx, new).await?;
    create_indexes(tx, new).await?;
    tx.schema_changed(&new.id).await
}

pub(crate) async fn delete_collection<T: Tx>(tx: &mut T, c: &Collection) -> Result<(), StoreError> {
    drop_indexes(tx, c).await?;
    tx.ddl(&format!("DROP TABLE IF EXISTS {}", quote_ident(&c.name))).await?;
    let sql = format!("DELETE FROM _collections WHERE id = {}", tx.dialect().placeholder(1));
    tx.exec(&sql, &[Param::Text(c.id.clone())]).await?;
    tx.schema_changed(&c.id).await
}
