//! DDL derived from the model: column definitions per field type, select lists, and the parsing
//! and re-rendering of `CREATE [UNIQUE] INDEX` statements from collection definitions.

use regex::Regex;

use crate::model::collection::Collection;
use crate::model::field::{Field, FieldKind};
use crate::store::dialect::quote_ident;
use crate::store::StoreError;

/// The column definition of a field (SQLite types, PocketBase-compatible).
pub(crate) fn column_def(f: &Field) -> String {
    let ty = match &f.kind {
        FieldKind::Text { primary_key: true, .. } => "TEXT PRIMARY KEY NOT NULL",
        FieldKind::Number { .. } => "NUMERIC DEFAULT 0 NOT NULL",
        FieldKind::Bool => "BOOLEAN DEFAULT FALSE NOT NULL",
        FieldKind::Json { .. } => "JSON DEFAULT NULL",
        FieldKind::GeoPoint => "JSON DEFAULT '{\"lon\":0,\"lat\":0}' NOT NULL",
        _ if f.is_multi() => "JSON DEFAULT '[]' NOT NULL",
        _ => "TEXT DEFAULT '' NOT NULL",
    };
    format!("{} {ty}", quote_ident(&f.name))
}

pub(crate) fn create_table(c: &Collection) -> String {
    let cols: Vec<String> = c.fields.iter().map(column_def).collect();
    format!("CREATE TABLE {} ({})", quote_ident(&c.name), cols.join(", "))
}

/// `t."a", t."b", …` in field order; rows are decoded in the same order.
pub(crate) fn select_list(c: &Collection, alias: &str) -> String {
    let cols: Vec<String> =
        c.fields.iter().map(|f| format!("{alias}.{}", quote_ident(&f.name))).collect();
    cols.join(", ")
}

/// A parsed index definition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IndexDef {
    pub name: String,
    pub unique: bool,
    /// Column names with their optional `COLLATE x` / `ASC|DESC` suffix.
    pub columns: Vec<(String, String)>,
    pub where_clause: Option<String>,
}

impl IndexDef {
    pub fn parse(sql: &str, c: &Collection) -> Result<IndexDef, StoreError> {
        let re = Regex::new(
            r#"(?is)^\s*CREATE\s+(UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?[`"\[]?(\w+)[`"\]]?\s+ON\s+[`"\[]?(\w+)[`"\]]?\s*\((.+?)\)\s*(?:WHERE\s+(.+?))?\s*;?\s*$"#,
        )
        .map_err(|e| StoreError::Index(e.to_string()))?;
        let caps = re
            .captures(sql)
            .ok_or_else(|| StoreError::Index(format!("not a CREATE INDEX statement: {sql}")))?;
        let cap = |i: usize| caps.get(i).map(|m| m.as_str().to_string());
        let col_re = Regex::new(
            r#"(?is)^\s*[`"\[]?(\w+)[`"\]]?\s*((?:COLLATE\s+\w+)?\s*(?:ASC|DESC)?)\s*$"#,
        )
        .map_err(|e| StoreError::Index(e.to_string()))?;
        let mut columns = Vec::new();
        for part in cap(4).unwrap_or_default().split(',') {
            let cc = col_re
                .captures(part)
                .ok_or_else(|| StoreError::Index(format!("unsupported index column {part:?}")))?;
            let name = cc.get(1).map(|m| m.as_str()).unwrap_or_default();
            if c.field(name).is_none() {
                return Err(StoreError::Index(format!("unknown column {name:?} in index")));
            }
            columns.push((
                name.to_string(),
                cc.get(2).map(|m| m.as_str().trim()).unwrap_or("").to_string(),
            ));
        }
        let where_clause = cap(5).filter(|w| !w.trim().is_empty());
        if where_clause.as_deref().is_some_and(|w| w.contains(';')) {
            return Err(StoreError::Index("index WHERE clause may not contain ';'".into()));
        }
        Ok(IndexDef {
            name: cap(2).unwrap_or_default(),
            unique: caps.get(1).is_some(),
            columns,
            where_clause,
        })
    }

    /// Renders the statement for the collection's current table name.
    pub fn create_sql(&self, table: &str) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(
                |(n, s)| {
                    if s.is_empty() {
                        quote_ident(n)
                    } else {
                        format!("{} {s}", quote_ident(n))
                    }
                },
            )
            .collect();
        let mut sql = format!(
            "CREATE {}INDEX {} ON {} ({})",
            if self.unique { "UNIQUE " } else { "" },
            quote_ident(&self.name),
            quote_ident(table),
            cols.join(", ")
        );
        if let Some(w) = &self.where_clause {
            sql.push_str(" WHERE ");
            sql.push_str(w);
        }
        sql
    }
}

/// Every index of the collection, parsed.
pub(crate) fn indexes(c: &Collection) -> Result<Vec<IndexDef>, StoreError> {
    c.indexes.iter().map(|s| IndexDef::parse(s, c)).collect()
}
