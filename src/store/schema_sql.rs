//! DDL derived from the model: column definitions per field type (SQLite and PostgreSQL), select
//! lists, and the parsing and re-rendering of `CREATE [UNIQUE] INDEX` statements from collection
//! definitions.

use regex::Regex;

use crate::model::collection::Collection;
use crate::model::field::{Field, FieldKind};
use crate::store::dialect::{quote_ident, Dialect};
use crate::store::StoreError;

/// The column type of each kind of field, per engine (`column_def`).
pub(crate) struct ColumnTypes {
    primary_key: &'static str,
    number: &'static str,
    bool: &'static str,
    json: &'static str,
    geo_point: &'static str,
    multi: &'static str,
    text: &'static str,
    /// Columns every table has besides the fields.
    hidden: &'static [&'static str],
}

/// SQLite's column types, as PocketBase declares them.
pub(crate) const SQLITE_TYPES: ColumnTypes = ColumnTypes {
    primary_key: "TEXT PRIMARY KEY NOT NULL",
    number: "NUMERIC DEFAULT 0 NOT NULL",
    bool: "BOOLEAN DEFAULT FALSE NOT NULL",
    json: "JSON DEFAULT NULL",
    geo_point: "JSON DEFAULT '{\"lon\":0,\"lat\":0}' NOT NULL",
    multi: "JSON DEFAULT '[]' NOT NULL",
    text: "TEXT DEFAULT '' NOT NULL",
    hidden: &[],
};

/// The hidden insertion-order column of every PostgreSQL collection table (SQLite has `rowid`).
/// Not a field: never selected, never rendered; `@rowid` sorts and the default order use it.
pub(crate) const PG_ROWID: &str = "_rowid";

/// PostgreSQL's column types.
///
/// Why these types:
/// - text-like fields (text, email, url, editor, password, single select/relation/file) are
///   `TEXT COLLATE "C" NOT NULL DEFAULT ''`: '' means empty exactly as on SQLite, and the "C"
///   collation compares and sorts by bytes like SQLite's BINARY (and makes `ILIKE` fold ASCII
///   only, like SQLite's `LIKE`), whatever the database's default collation is;
/// - date/autodate are the same TEXT holding PocketBase's `YYYY-MM-DD HH:MM:SS.mmmZ`: a
///   `timestamptz` would change string comparison with filter literals, ordering of '' and the
///   rendered format, and '' (unset) has no timestamp value;
/// - number is `DOUBLE PRECISION NOT NULL DEFAULT 0` (PocketBase numbers are float64; integral
///   values are rendered as JSON integers when read);
/// - bool is `BOOLEAN NOT NULL DEFAULT FALSE`;
/// - json is `JSONB NULL` (NULL is "no value", distinct from the JSON `null`), geoPoint is
///   `JSONB NOT NULL DEFAULT '{"lon":0,"lat":0}'`, multi-value select/relation/file are
///   `JSONB NOT NULL DEFAULT '[]'`: JSONB gives containment and element iteration for filters
///   and relation semantics, and validates what is stored;
/// - every table also has the hidden `"_rowid" BIGSERIAL` insertion-order column.
pub(crate) const PG_TYPES: ColumnTypes = ColumnTypes {
    primary_key: "TEXT COLLATE \"C\" PRIMARY KEY NOT NULL",
    number: "DOUBLE PRECISION NOT NULL DEFAULT 0",
    bool: "BOOLEAN NOT NULL DEFAULT FALSE",
    json: "JSONB NULL DEFAULT NULL",
    geo_point: "JSONB NOT NULL DEFAULT '{\"lon\":0,\"lat\":0}'::jsonb",
    multi: "JSONB NOT NULL DEFAULT '[]'::jsonb",
    text: "TEXT COLLATE \"C\" NOT NULL DEFAULT ''",
    hidden: &["\"_rowid\" BIGSERIAL NOT NULL"],
};

/// The column definition of a field.
pub(crate) fn column_def(f: &Field, t: &ColumnTypes) -> String {
    let ty = match &f.kind {
        FieldKind::Text { primary_key: true, .. } => t.primary_key,
        FieldKind::Number { .. } => t.number,
        FieldKind::Bool => t.bool,
        FieldKind::Json { .. } => t.json,
        FieldKind::GeoPoint => t.geo_point,
        _ if f.is_multi() => t.multi,
        _ => t.text,
    };
    format!("{} {ty}", quote_ident(&f.name))
}

/// `CREATE TABLE` with the fields' columns and the engine's hidden ones.
pub(crate) fn create_table(c: &Collection, t: &ColumnTypes) -> String {
    let mut cols: Vec<String> = c.fields.iter().map(|f| column_def(f, t)).collect();
    cols.extend(t.hidden.iter().map(|h| h.to_string()));
    format!("CREATE TABLE {} ({})", quote_ident(&c.name), cols.join(", "))
}

/// An index on the hidden `_rowid` column (auto-named by PostgreSQL, so a renamed table never
/// blocks a new one), making the default order and `@rowid` sorts index scans.
pub(crate) fn pg_rowid_index(c: &Collection) -> String {
    format!("CREATE INDEX ON {} ({})", quote_ident(&c.name), quote_ident(PG_ROWID))
}

/// `INSERT INTO "c" ("id", …) VALUES (<1>, …)`: every field, in field order, with the
/// dialect's placeholders (both engines bind the row values in that order).
pub(crate) fn insert_sql(d: &dyn Dialect, c: &Collection) -> String {
    let cols: Vec<String> = c.fields.iter().map(|f| quote_ident(&f.name)).collect();
    let marks: Vec<String> = (1..=cols.len()).map(|i| d.placeholder(i)).collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({})",
        quote_ident(&c.name),
        cols.join(", "),
        marks.join(", ")
    )
}

/// `UPDATE "c" SET "a" = <1>, … WHERE "id" = <n+1>`: every field in field order, then the id.
pub(crate) fn update_sql(d: &dyn Dialect, c: &Collection) -> String {
    let sets: Vec<String> = c
        .fields
        .iter()
        .enumerate()
        .map(|(i, f)| format!("{} = {}", quote_ident(&f.name), d.placeholder(i + 1)))
        .collect();
    let id = d.placeholder(sets.len() + 1);
    format!("UPDATE {} SET {} WHERE \"id\" = {id}", quote_ident(&c.name), sets.join(", "))
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
            let suffix = cc.get(2).map(|m| m.as_str()).unwrap_or_default().to_ascii_uppercase();
            if let Some(coll) = suffix.split_whitespace().skip_while(|w| *w != "COLLATE").nth(1) {
                // SQLite's built-in collations; both engines must accept the same definitions.
                if !matches!(coll, "NOCASE" | "BINARY" | "RTRIM") {
                    return Err(StoreError::Index(format!(
                        "unknown collation {coll:?} (use NOCASE, BINARY or RTRIM)"
                    )));
                }
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
        self.render(table, &cols, self.where_clause.clone())
    }

    /// `CREATE [UNIQUE] INDEX name ON table (cols) [WHERE …]`.
    fn render(&self, table: &str, cols: &[String], where_clause: Option<String>) -> String {
        let mut sql = format!(
            "CREATE {}INDEX {} ON {} ({})",
            if self.unique { "UNIQUE " } else { "" },
            quote_ident(&self.name),
            quote_ident(table),
            cols.join(", ")
        );
        if let Some(w) = where_clause {
            sql.push_str(" WHERE ");
            sql.push_str(&w);
        }
        sql
    }
}

impl IndexDef {
    /// Renders the statement for PostgreSQL: `COLLATE NOCASE` becomes a `lower(col)` expression,
    /// `COLLATE BINARY` the "C" collation (`RTRIM` has no equivalent and is dropped), and bare
    /// field names in the WHERE clause are quoted with their exact case (PostgreSQL folds
    /// unquoted identifiers to lower case; SQLite matches them case-insensitively).
    pub fn pg_create_sql(&self, c: &Collection, table: &str) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|(n, suffix)| {
                let mut col = quote_ident(n);
                let mut dir = "";
                let words: Vec<&str> = suffix.split_whitespace().collect();
                let mut i = 0;
                while i < words.len() {
                    let w = words[i];
                    if w.eq_ignore_ascii_case("COLLATE") {
                        let coll = words.get(i + 1).copied().unwrap_or_default();
                        if coll.eq_ignore_ascii_case("NOCASE") {
                            col = format!("lower({col})");
                        } else if coll.eq_ignore_ascii_case("BINARY") {
                            col = format!("{col} COLLATE \"C\"");
                        }
                        i += 2;
                        continue;
                    }
                    if w.eq_ignore_ascii_case("ASC") {
                        dir = " ASC";
                    } else if w.eq_ignore_ascii_case("DESC") {
                        dir = " DESC";
                    }
                    i += 1;
                }
                format!("{col}{dir}")
            })
            .collect();
        let where_clause = self.where_clause.as_deref().map(|w| quote_field_names(w, c));
        self.render(table, &cols, where_clause)
    }
}

/// Words that keep their SQL meaning even when a field has the same name (as in SQLite).
const SQL_WORDS: &[&str] = &[
    "and", "or", "not", "null", "is", "in", "like", "glob", "between", "true", "false", "escape",
    "collate", "case", "when", "then", "else", "end", "exists", "distinct", "from", "select",
];

/// Quotes the bare words of `sql` that name a field of `c` (case-insensitively), leaving string
/// literals and already quoted identifiers alone.
fn quote_field_names(sql: &str, c: &Collection) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch == '\'' || ch == '"' || ch == '`' {
            out.push(ch);
            let close = ch;
            while let Some(n) = chars.next() {
                out.push(n);
                if n == close {
                    // A doubled quote is an escaped one: stay inside.
                    if chars.peek() == Some(&close) {
                        if let Some(d) = chars.next() {
                            out.push(d);
                        }
                        continue;
                    }
                    break;
                }
            }
        } else if ch.is_ascii_alphabetic() || ch == '_' {
            let mut word = String::from(ch);
            while let Some(&n) = chars.peek() {
                if n.is_ascii_alphanumeric() || n == '_' {
                    word.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            let rest: String = chars.clone().collect();
            let is_call = rest.trim_start().starts_with('(');
            let keyword = SQL_WORDS.iter().any(|k| k.eq_ignore_ascii_case(&word));
            match c.fields.iter().find(|f| f.name.eq_ignore_ascii_case(&word)) {
                Some(f) if !is_call && !keyword => out.push_str(&quote_ident(&f.name)),
                _ => out.push_str(&word),
            }
        } else if ch.is_ascii_digit() {
            // Numbers (and words starting with a digit) are never field names.
            out.push(ch);
            while let Some(&n) = chars.peek() {
                if n.is_ascii_alphanumeric() || n == '_' || n == '.' {
                    out.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
        } else {
            out.push(ch);
        }
    }
    out
}

/// Every index of the collection, parsed.
pub(crate) fn indexes(c: &Collection) -> Result<Vec<IndexDef>, StoreError> {
    c.indexes.iter().map(|s| IndexDef::parse(s, c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::collection::{Collection, CollectionType};

    fn users() -> Collection {
        Collection::blank(CollectionType::Auth, "users")
    }

    #[test]
    fn pg_index_sql_quotes_fields_and_maps_collations() {
        let c = users();
        let idx = IndexDef::parse(
            "CREATE UNIQUE INDEX idx_x ON users (email COLLATE NOCASE DESC, tokenKey) WHERE tokenKey != '' AND emailVisibility = TRUE AND email != 'tokenKey'",
            &c,
        )
        .unwrap();
        assert_eq!(
            idx.pg_create_sql(&c, "users"),
            "CREATE UNIQUE INDEX \"idx_x\" ON \"users\" (lower(\"email\") DESC, \"tokenKey\") WHERE \"tokenKey\" != '' AND \"emailVisibility\" = TRUE AND \"email\" != 'tokenKey'"
        );
    }

    #[test]
    fn pg_table_has_the_hidden_rowid() {
        let sql = create_table(&users(), &PG_TYPES);
        assert!(sql.starts_with("CREATE TABLE \"users\" (\"id\" TEXT COLLATE \"C\" PRIMARY KEY"));
        assert!(sql.ends_with("\"_rowid\" BIGSERIAL NOT NULL)"), "{sql}");
    }
}
