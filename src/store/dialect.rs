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
    /// The value bound for a JSON path into a json field (`a.b.0` as segments).
    fn json_path(&self, segments: &[String]) -> String;
    /// The expression as text (a no-op where types are dynamic).
    fn cast_text(&self, expr: &str) -> String;
    /// The expression as text with NULL folded to ''.
    fn text_coalesce(&self, expr: &str) -> String;
    fn lower(&self, expr: &str) -> String;
    /// Case-insensitive (ASCII at least) `LIKE` with `\` as the escape character.
    fn like(&self, text: &str, pattern: &str, negate: bool) -> String;
    /// A scalar expression as a JSON value comparable with JSON columns and paths.
    fn json_value(&self, expr: &str) -> String;
    /// `IS` / `IS NOT`: equality where NULL equals NULL.
    fn null_safe_eq(&self, left: &str, right: &str, eq: bool) -> String;
    /// A table-valued function source joined after FROM items it refers to.
    fn lateral_join(&self, source: &str) -> String;
    /// Whether the stored JSON array `col` (a multi-value column) holds the text `elem`.
    fn json_array_contains(&self, col: &str, elem: &str) -> String;
    /// The stored JSON array `col` without the text `elem`, in order, as the column's type.
    fn json_array_without(&self, col: &str, elem: &str) -> String;
    /// Translates a `strftime` format (SQLite's `%Y-%m-%d …`) into the engine's own.
    fn strftime_format(&self, format: &str) -> String;
    /// An ORDER BY term; NULLs sort first ascending (SQLite's rule) on every engine.
    fn order_term(&self, expr: &str, desc: bool) -> String;
    /// A JSON value (e.g. a JSON path result) as a number.
    fn json_number(&self, expr: &str) -> String;
    /// A boolean as text the way SQLite stores it: `'1'` / `'0'`.
    fn bool_text(&self, expr: &str) -> String;
    /// The values of `cols` as one JSON text: an array of arrays of at most 50 values each, in
    /// order (functions take at most 100 arguments on PostgreSQL, 127 on SQLite).
    fn row_json(&self, cols: &[String]) -> String;
    /// A bound value standing for the column of `f` (in a one-row CTE): typed as the column
    /// where the engine types parameters by their binding.
    fn typed_value(&self, expr: &str, f: &crate::model::field::Field) -> String;
    /// `{"k": v, …}` as JSON text from `(key, SQL expression)` pairs.
    fn json_object(&self, pairs: &[(&str, String)]) -> String;
    /// A text column holding JSON (or NULL) as a JSON value inside `json_object`.
    fn json_from_text(&self, expr: &str) -> String;
    /// What follows a row-locking subquery so concurrent claimers skip each other's rows.
    fn skip_locked(&self) -> &'static str;

    // DDL: the algorithms that change collections (`ddl.rs`) are written once over these.

    /// The statements creating the table of a collection (its columns: `schema_sql`).
    fn create_table(&self, c: &Collection) -> Vec<String>;
    /// The column definition of a field added to an existing table.
    fn column_def(&self, f: &Field) -> String;
    /// The statements converting `col` of `table` from a single value to a JSON array of it
    /// (`to_multi`: '' → [], x → [x]) or back (the last element; [] → '').
    fn convert_column(&self, table: &str, col: &str, to_multi: bool) -> Vec<String>;
    /// `CREATE [UNIQUE] INDEX` for `idx` on the current table of `c`.
    fn create_index(&self, idx: &IndexDef, c: &Collection) -> String;
    /// `SELECT data FROM _collections` in creation order.
    fn collections_sql(&self) -> &'static str;
}

use crate::model::collection::Collection;
use crate::model::field::Field;
use crate::store::schema_sql::{self, IndexDef};

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
        // The bundled SQLite has no math functions; `sqlite/mod.rs` registers this one in Rust.
        format!("basalt_geo_distance({lon1}, {lat1}, {lon2}, {lat2})")
    }
    fn json_path(&self, segments: &[String]) -> String {
        let mut path = String::from("$");
        for s in segments {
            match s.parse::<u32>() {
                Ok(n) => path.push_str(&format!("[{n}]")),
                Err(_) => path.push_str(&format!(".\"{}\"", s.replace('"', ""))),
            }
        }
        path
    }
    fn cast_text(&self, expr: &str) -> String {
        expr.to_string()
    }
    fn text_coalesce(&self, expr: &str) -> String {
        format!("COALESCE({expr}, '')")
    }
    fn lower(&self, expr: &str) -> String {
        format!("LOWER({expr})")
    }
    fn like(&self, text: &str, pattern: &str, negate: bool) -> String {
        let not = if negate { "NOT " } else { "" };
        format!("{text} {not}LIKE {pattern} ESCAPE '\\'")
    }
    fn json_value(&self, expr: &str) -> String {
        expr.to_string()
    }
    fn null_safe_eq(&self, left: &str, right: &str, eq: bool) -> String {
        format!("{left} {} {right}", if eq { "IS" } else { "IS NOT" })
    }
    fn lateral_join(&self, source: &str) -> String {
        format!("CROSS JOIN {source}")
    }
    fn json_array_contains(&self, col: &str, elem: &str) -> String {
        format!("EXISTS (SELECT 1 FROM {} WHERE je.value = {elem})", self.json_each(col, "je"))
    }
    fn row_json(&self, cols: &[String]) -> String {
        nested_arrays("json_array", cols)
    }
    fn typed_value(&self, expr: &str, _f: &crate::model::field::Field) -> String {
        expr.to_string()
    }
    fn json_object(&self, pairs: &[(&str, String)]) -> String {
        let args: Vec<String> = pairs.iter().map(|(k, v)| format!("'{k}', {v}")).collect();
        format!("json_object({})", args.join(", "))
    }
    fn json_from_text(&self, expr: &str) -> String {
        format!("json({expr})")
    }
    fn skip_locked(&self) -> &'static str {
        // One writer: nothing to skip.
        ""
    }
    fn json_array_without(&self, col: &str, elem: &str) -> String {
        format!(
            "(SELECT json_group_array(je.value) FROM {} WHERE je.value != {elem})",
            self.json_each(col, "je")
        )
    }
    fn strftime_format(&self, format: &str) -> String {
        format.to_string()
    }
    fn order_term(&self, expr: &str, desc: bool) -> String {
        format!("{expr} {}", if desc { "DESC" } else { "ASC" })
    }
    fn json_number(&self, expr: &str) -> String {
        expr.to_string()
    }
    fn bool_text(&self, expr: &str) -> String {
        expr.to_string()
    }

    fn create_table(&self, c: &Collection) -> Vec<String> {
        vec![schema_sql::create_table(c, &schema_sql::SQLITE_TYPES)]
    }
    fn column_def(&self, f: &Field) -> String {
        schema_sql::column_def(f, &schema_sql::SQLITE_TYPES)
    }
    fn convert_column(&self, table: &str, col: &str, to_multi: bool) -> Vec<String> {
        let set = if to_multi {
            format!("CASE WHEN {col} = '' THEN '[]' ELSE json_array({col}) END")
        } else {
            format!(
                "CASE WHEN json_valid({col}) THEN COALESCE(json_extract({col}, '$[#-1]'), '') ELSE '' END"
            )
        };
        vec![format!("UPDATE {table} SET {col} = {set}")]
    }
    fn create_index(&self, idx: &IndexDef, c: &Collection) -> String {
        idx.create_sql(&c.name)
    }
    fn collections_sql(&self) -> &'static str {
        "SELECT data FROM _collections ORDER BY rowid"
    }
}

/// PostgreSQL's dialect (values are typed: the compiler lines types up before comparing).
pub(crate) struct Postgres;

impl Dialect for Postgres {
    fn placeholder(&self, n: usize) -> String {
        format!("${n}")
    }
    fn json_each(&self, json_expr: &str, alias: &str) -> String {
        format!(
            "jsonb_array_elements_text(CASE WHEN jsonb_typeof(({json_expr})::jsonb) = 'array' \
             THEN ({json_expr})::jsonb ELSE '[]'::jsonb END) AS {alias}(value)"
        )
    }
    fn json_each_value(&self, alias: &str) -> String {
        format!("{alias}.value")
    }
    fn json_extract(&self, json_expr: &str, path: &str) -> String {
        // JSON null reads as SQL NULL, as SQLite's json_extract does.
        format!("NULLIF(({json_expr})::jsonb #> ({path})::text[], 'null'::jsonb)")
    }
    fn json_array_length(&self, json_expr: &str) -> String {
        format!(
            "(CASE WHEN jsonb_typeof(({json_expr})::jsonb) = 'array' \
             THEN jsonb_array_length(({json_expr})::jsonb) ELSE 0 END)"
        )
    }
    fn random(&self) -> &'static str {
        "RANDOM()"
    }
    fn is_true(&self, cond: &str) -> String {
        format!("COALESCE(({cond}), FALSE)")
    }
    fn strftime(&self, format: &str, value: &str) -> String {
        format!(
            "to_char(to_timestamp(NULLIF(substr({value}, 1, 23), ''), 'YYYY-MM-DD HH24:MI:SS.MS'), {format})"
        )
    }
    fn rowid(&self, alias: &str) -> String {
        format!("{alias}.\"_rowid\"")
    }
    fn geo_distance(&self, lon1: &str, lat1: &str, lon2: &str, lat2: &str) -> String {
        format!(
            "(6371 * 2 * asin(sqrt(power(sin((radians({lat2}) - radians({lat1})) / 2), 2) + \
             cos(radians({lat1})) * cos(radians({lat2})) * power(sin((radians({lon2}) - radians({lon1})) / 2), 2))))"
        )
    }
    fn json_path(&self, segments: &[String]) -> String {
        let parts: Vec<String> =
            segments.iter().map(|s| format!("\"{}\"", s.replace(['"', '\\'], ""))).collect();
        format!("{{{}}}", parts.join(","))
    }
    fn cast_text(&self, expr: &str) -> String {
        format!("({expr})::text")
    }
    fn text_coalesce(&self, expr: &str) -> String {
        format!("COALESCE(({expr})::text, '')")
    }
    fn lower(&self, expr: &str) -> String {
        format!("LOWER(({expr})::text)")
    }
    fn like(&self, text: &str, pattern: &str, negate: bool) -> String {
        let not = if negate { "NOT " } else { "" };
        format!("{text} {not}ILIKE {pattern} ESCAPE '\\'")
    }
    fn json_value(&self, expr: &str) -> String {
        format!("to_jsonb({expr})")
    }
    fn null_safe_eq(&self, left: &str, right: &str, eq: bool) -> String {
        format!("{left} IS {}DISTINCT FROM {right}", if eq { "NOT " } else { "" })
    }
    fn lateral_join(&self, source: &str) -> String {
        format!("CROSS JOIN LATERAL {source}")
    }
    fn row_json(&self, cols: &[String]) -> String {
        format!("{}::text", nested_arrays("json_build_array", cols))
    }
    fn typed_value(&self, expr: &str, f: &crate::model::field::Field) -> String {
        use crate::model::field::FieldKind;
        let ty = match &f.kind {
            FieldKind::Number { .. } => "DOUBLE PRECISION",
            FieldKind::Bool => "BOOLEAN",
            FieldKind::Json { .. } | FieldKind::GeoPoint => "JSONB",
            _ if f.is_multi() => "JSONB",
            _ => return format!("CAST({expr} AS TEXT) COLLATE \"C\""),
        };
        format!("CAST({expr} AS {ty})")
    }
    fn json_object(&self, pairs: &[(&str, String)]) -> String {
        let args: Vec<String> = pairs.iter().map(|(k, v)| format!("'{k}', {v}")).collect();
        format!("json_build_object({})::text", args.join(", "))
    }
    fn json_from_text(&self, expr: &str) -> String {
        format!("({expr})::json")
    }
    fn skip_locked(&self) -> &'static str {
        " FOR UPDATE SKIP LOCKED"
    }
    fn json_array_contains(&self, col: &str, elem: &str) -> String {
        // Containment can use a GIN index on the column.
        format!("{col} @> jsonb_build_array({elem}::text)")
    }
    fn json_array_without(&self, col: &str, elem: &str) -> String {
        let arr =
            format!("(CASE WHEN jsonb_typeof({col}) = 'array' THEN {col} ELSE '[]'::jsonb END)");
        format!(
            "COALESCE((SELECT jsonb_agg(e.value ORDER BY e.n) FROM jsonb_array_elements({arr}) \
             WITH ORDINALITY AS e(value, n) WHERE e.value <> to_jsonb({elem}::text)), '[]'::jsonb)"
        )
    }
    fn strftime_format(&self, format: &str) -> String {
        let mut out = String::new();
        let mut chars = format.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                // Text outside tokens is quoted so to_char does not read it as a pattern.
                out.push_str(&format!("\"{c}\""));
                continue;
            }
            out.push_str(match chars.next() {
                Some('Y') => "YYYY",
                Some('m') => "MM",
                Some('d') => "DD",
                Some('H') => "HH24",
                Some('M') => "MI",
                Some('S') => "SS",
                Some('f') => "SS.MS",
                Some('j') => "DDD",
                Some('w') => "D",
                Some('W') => "WW",
                Some('s') => "SSSS",
                Some('%') => "\"%\"",
                _ => "",
            });
        }
        out
    }
    fn order_term(&self, expr: &str, desc: bool) -> String {
        format!("{expr} {}", if desc { "DESC NULLS LAST" } else { "ASC NULLS FIRST" })
    }
    fn json_number(&self, expr: &str) -> String {
        format!("(CASE WHEN jsonb_typeof({expr}) = 'number' THEN ({expr} #>> '{{}}')::double precision END)")
    }
    fn bool_text(&self, expr: &str) -> String {
        format!("(CASE WHEN {expr} THEN '1' WHEN NOT {expr} THEN '0' END)")
    }

    fn create_table(&self, c: &Collection) -> Vec<String> {
        vec![schema_sql::create_table(c, &schema_sql::PG_TYPES), schema_sql::pg_rowid_index(c)]
    }
    fn column_def(&self, f: &Field) -> String {
        schema_sql::column_def(f, &schema_sql::PG_TYPES)
    }
    fn convert_column(&self, table: &str, col: &str, to_multi: bool) -> Vec<String> {
        let (ty, using, default) = if to_multi {
            (
                "JSONB",
                format!("CASE WHEN {col} = '' THEN '[]'::jsonb ELSE jsonb_build_array({col}) END"),
                "'[]'::jsonb",
            )
        } else {
            // Keeps the last element, like SQLite's `$[#-1]`; [] → ''.
            (
                "TEXT COLLATE \"C\"",
                format!(
                    "COALESCE(CASE WHEN jsonb_typeof({col}) = 'array' THEN {col} ->> -1 END, '')"
                ),
                "''",
            )
        };
        // The old default cannot be cast to the new type: drop it first.
        vec![
            format!("ALTER TABLE {table} ALTER COLUMN {col} DROP DEFAULT"),
            format!("ALTER TABLE {table} ALTER COLUMN {col} TYPE {ty} USING {using}"),
            format!("ALTER TABLE {table} ALTER COLUMN {col} SET DEFAULT {default}"),
        ]
    }
    fn create_index(&self, idx: &IndexDef, c: &Collection) -> String {
        idx.pg_create_sql(c, &c.name)
    }
    fn collections_sql(&self) -> &'static str {
        // `created` has millisecond precision; `id` makes the order total.
        "SELECT data FROM _collections ORDER BY created, id"
    }
}

/// `f(f(c1, …, c50), f(c51, …), …)`: see `Dialect::row_json`.
fn nested_arrays(f: &str, cols: &[String]) -> String {
    let inner: Vec<String> = cols.chunks(50).map(|c| format!("{f}({})", c.join(", "))).collect();
    format!("{f}({})", inner.join(", "))
}
