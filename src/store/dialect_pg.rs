//! PostgreSQL's `Dialect`: a minimal implementation so the `pg-backend` branch works on its own.
//!
//! NOTE: the full `impl Dialect for Postgres` is being written in `dialect.rs` on `main`; when the
//! branches merge, this file goes away and `Store::dialect()` returns `dialect::Postgres`.
//!
//! JSON inputs may be JSONB columns (multi-value, `json` and `geoPoint` fields) or bound text
//! parameters holding JSON, so every JSON expression is cast with `::jsonb` (a no-op on JSONB).

use crate::store::dialect::Dialect;

/// PostgreSQL's dialect.
pub(crate) struct Postgres;

/// `expr` as a JSONB array: anything that is not an array (a scalar, an object, SQL NULL)
/// iterates as an empty one, like SQLite's `json_valid` guard.
fn jsonb_array(json_expr: &str) -> String {
    format!(
        "(CASE WHEN jsonb_typeof(({json_expr})::jsonb) = 'array' THEN ({json_expr})::jsonb ELSE '[]'::jsonb END)"
    )
}

impl Dialect for Postgres {
    fn placeholder(&self, n: usize) -> String {
        format!("${n}")
    }
    fn json_each(&self, json_expr: &str, alias: &str) -> String {
        format!("jsonb_array_elements_text({}) AS {alias}(value)", jsonb_array(json_expr))
    }
    fn json_each_value(&self, alias: &str) -> String {
        format!("{alias}.value")
    }
    fn json_extract(&self, json_expr: &str, path: &str) -> String {
        // The path is SQLite's (`$."a"."b"`, `$[0]`), which is also valid SQL/JSON path syntax;
        // `#>> '{}'` turns the found JSON value into text (strings unquoted, like SQLite).
        format!("(jsonb_path_query_first(({json_expr})::jsonb, ({path})::jsonpath) #>> '{{}}')")
    }
    fn json_array_length(&self, json_expr: &str) -> String {
        format!("jsonb_array_length({})", jsonb_array(json_expr))
    }
    fn random(&self) -> &'static str {
        "RANDOM()"
    }
    fn is_true(&self, cond: &str) -> String {
        format!("COALESCE(({cond}), false)")
    }
    fn strftime(&self, format: &str, value: &str) -> String {
        // SQLite's `%` codes translated to `to_char` patterns at run time (the format is bound).
        let mut fmt = format!("({format})::text");
        for (from, to) in [
            ("%Y", "YYYY"),
            ("%m", "MM"),
            ("%d", "DD"),
            ("%H", "HH24"),
            ("%M", "MI"),
            ("%S", "SS"),
            ("%f", "SS.MS"),
            ("%j", "DDD"),
            ("%%", "%"),
        ] {
            fmt = format!("replace({fmt}, '{from}', '{to}')");
        }
        format!("to_char((NULLIF(({value})::text, '')::timestamptz AT TIME ZONE 'UTC'), {fmt})")
    }
    fn rowid(&self, alias: &str) -> String {
        format!("{alias}.\"_rowid\"")
    }
    fn geo_distance(&self, lon1: &str, lat1: &str, lon2: &str, lat2: &str) -> String {
        let f = |x: &str| format!("CAST(({x}) AS DOUBLE PRECISION)");
        let (lon1, lat1, lon2, lat2) = (f(lon1), f(lat1), f(lon2), f(lat2));
        // Haversine, mean Earth radius 6371 km (the same formula as SQLite's Rust function).
        format!(
            "(6371.0 * 2.0 * asin(sqrt(LEAST(1.0, power(sin(radians({lat2} - {lat1}) / 2.0), 2) \
             + cos(radians({lat1})) * cos(radians({lat2})) * power(sin(radians({lon2} - {lon1}) / 2.0), 2)))))"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_pieces() {
        let d = Postgres;
        assert_eq!(d.placeholder(3), "$3");
        assert_eq!(d.rowid("t"), "t.\"_rowid\"");
        assert!(d.json_each("t.\"tags\"", "je1").ends_with("AS je1(value)"));
        assert_eq!(d.is_true("a = b"), "COALESCE((a = b), false)");
    }
}
