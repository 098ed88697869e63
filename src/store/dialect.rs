//! `Dialect`: the few pieces of SQL text that differ between database engines.
//!
//! `query.rs` builds every statement through this trait, so a second engine only implements it
//! (plus its connection code) instead of re-writing the query builder.

/// SQL text that differs per engine.
pub(crate) trait Dialect: Send + Sync {
    /// The placeholder for the 1-based parameter `n`; numbered so a fragment may reuse it.
    fn placeholder(&self, n: usize) -> String;
    /// A table-valued source iterating the elements of a JSON array expression, named `alias`.
    fn json_each(&self, json_expr: &str, alias: &str) -> String;
    /// The element value column of a `json_each` source.
    fn json_each_value(&self, alias: &str) -> String;
    /// Extracts the JSON path held by the placeholder `path` (e.g. `$."a"."b"`).
    fn json_extract(&self, json_expr: &str, path: &str) -> String;
    fn json_array_length(&self, json_expr: &str) -> String;
    fn random(&self) -> &'static str;
    /// Turns a boolean SQL condition that may be NULL into a strict true/false one.
    fn is_true(&self, cond: &str) -> String;
    /// `strftime(format, value)` over PocketBase's datetime text.
    fn strftime(&self, format: &str, value: &str) -> String;
    /// The insertion-order column.
    fn rowid(&self, alias: &str) -> String;
    /// Great-circle distance in kilometres between two lon/lat points.
    fn geo_distance(&self, lon1: &str, lat1: &str, lon2: &str, lat2: &str) -> String;
}

pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// SQLite's dialect.
pub(crate) struct Sqlite;

impl Dialect for Sqlite {
    fn placeholder(&self, n: usize) -> String {
        format!("?{n}")
    }
    fn json_each(&self, json_expr: &str, alias: &str) -> String {
        // NOTE: json_each over a non-array (e.g. '' or invalid JSON) would raise an error;
        // json_valid guards rows whose column holds something else.
        format!(
            "json_each(CASE WHEN json_valid({json_expr}) THEN {json_expr} ELSE '[]' END) {alias}"
        )
    }
    fn json_each_value(&self, alias: &str) -> String {
        format!("{alias}.value")
    }
    fn json_extract(&self, json_expr: &str, path: &str) -> String {
        format!("(CASE WHEN json_valid({json_expr}) THEN json_extract({json_expr}, {path}) END)")
    }
    fn json_array_length(&self, json_expr: &str) -> String {
        format!(
            "(CASE WHEN json_valid({json_expr}) THEN json_array_length({json_expr}) ELSE 0 END)"
        )
    }
    fn random(&self) -> &'static str {
        "RANDOM()"
    }
    fn is_true(&self, cond: &str) -> String {
        format!("COALESCE(({cond}), 0)")
    }
    fn strftime(&self, format: &str, value: &str) -> String {
        format!("strftime({format}, {value})")
    }
    fn rowid(&self, alias: &str) -> String {
        format!("{alias}.rowid")
    }
    fn geo_distance(&self, lon1: &str, lat1: &str, lon2: &str, lat2: &str) -> String {
        // The bundled SQLite has no math functions; `sqlite.rs` registers this one in Rust.
        format!("basalt_geo_distance({lon1}, {lat1}, {lon2}, {lat2})")
    }
}
