//! The one mapping between a field's JSON value and what a column stores, for both engines:
//! `encode` turns a record value into the bound parameter of its column, `decode` turns a read
//! column (`Cell`, which each engine builds from its own value type) back into the JSON shape.
//!
//! Stored forms (the column types are `Dialect::column_def`'s):
//! - number: a float (PocketBase numbers are float64), rendered by `model::value::number_value`;
//! - bool: a boolean (SQLite keeps 0/1);
//! - json and geoPoint: JSON (SQLite: its text), `NULL` for "no value" in a json field;
//! - multi-value select/relation/file: always a JSON array — a bare value is wrapped, `''` and
//!   `null` are `[]` (SQLite used to keep a bare value as bare text; reads accept both);
//! - everything else: text, `''` for empty.

use serde_json::{Map, Value};

use crate::model::collection::Collection;
use crate::model::field::{Field, FieldKind};
use crate::model::value::number_value;
use crate::store::query::Param;
use crate::store::{Row, StoreError};

/// One column value as an engine read it.
pub(crate) enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Bool(bool),
    Text(String),
    Json(Value),
}

/// The parameter a field's value is stored as.
pub(crate) fn encode(f: &Field, v: &Value) -> Param {
    let multi = f.is_multi();
    match (&f.kind, v) {
        (FieldKind::Json { .. }, Value::Null) => Param::JsonNull,
        (FieldKind::Json { .. } | FieldKind::GeoPoint, other) => Param::Json(other.clone()),
        (_, Value::Array(_)) if multi => Param::Json(v.clone()),
        (_, Value::Null) if multi => Param::Json(Value::Array(vec![])),
        (_, Value::String(s)) if multi && s.is_empty() => Param::Json(Value::Array(vec![])),
        (_, other) if multi => Param::Json(Value::Array(vec![other.clone()])),
        (FieldKind::Number { .. }, v) => Param::Real(match v {
            Value::Number(n) => n.as_f64().unwrap_or(0.0),
            Value::Bool(b) => f64::from(u8::from(*b)),
            Value::String(s) => s.trim().parse().unwrap_or(0.0),
            _ => 0.0,
        }),
        (FieldKind::Bool, v) => Param::Bool(match v {
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
            Value::String(s) => s == "1" || s.eq_ignore_ascii_case("true"),
            _ => false,
        }),
        (_, Value::String(s)) => Param::Text(s.clone()),
        (_, Value::Null) => Param::Text(String::new()),
        (_, Value::Bool(b)) => Param::Text(if *b { "1" } else { "0" }.into()),
        (_, Value::Number(n)) => Param::Text(n.to_string()),
        (_, other) => Param::Text(other.to_string()),
    }
}

/// Every field of `row` in field order (missing ones as their zero value): the parameters of
/// `schema_sql::insert_sql` / `update_sql`.
pub(crate) fn row_params(coll: &Collection, row: &Row) -> Vec<Param> {
    coll.fields
        .iter()
        .map(|f| match row.get(&f.name) {
            Some(v) => encode(f, v),
            None => encode(f, &f.zero_value()),
        })
        .collect()
}

/// The JSON value of a column read back for field `f`.
pub(crate) fn decode(f: &Field, v: Cell) -> Value {
    match &f.kind {
        FieldKind::Number { .. } => match v {
            Cell::Int(i) => Value::from(i),
            Cell::Real(x) => number_value(x),
            Cell::Bool(b) => Value::from(i64::from(b)),
            Cell::Text(t) => t.trim().parse::<f64>().map(number_value).unwrap_or(Value::from(0)),
            Cell::Json(Value::Number(n)) => n.as_f64().map(number_value).unwrap_or(Value::from(0)),
            _ => Value::from(0),
        },
        FieldKind::Bool => match v {
            Cell::Bool(b) => Value::Bool(b),
            Cell::Int(i) => Value::Bool(i != 0),
            Cell::Real(x) => Value::Bool(x != 0.0),
            Cell::Text(t) => Value::Bool(t == "1" || t.eq_ignore_ascii_case("true")),
            Cell::Json(Value::Bool(b)) => Value::Bool(b),
            _ => Value::Bool(false),
        },
        FieldKind::Json { .. } | FieldKind::GeoPoint => match v {
            Cell::Json(v) => v,
            Cell::Text(t) => serde_json::from_str(&t).unwrap_or(Value::Null),
            Cell::Int(i) => Value::from(i),
            Cell::Real(x) => number_value(x),
            Cell::Bool(b) => Value::Bool(b),
            Cell::Null => Value::Null,
        },
        _ if f.is_multi() => match v {
            Cell::Json(Value::Array(a)) => Value::Array(a),
            Cell::Json(Value::Null) | Cell::Null => Value::Array(vec![]),
            Cell::Json(Value::String(s)) if s.is_empty() => Value::Array(vec![]),
            Cell::Json(other) => Value::Array(vec![other]),
            Cell::Text(t) => match serde_json::from_str::<Value>(&t) {
                Ok(Value::Array(a)) => Value::Array(a),
                _ if t.is_empty() => Value::Array(vec![]),
                _ => Value::Array(vec![Value::String(t)]),
            },
            _ => Value::Array(vec![]),
        },
        _ => match v {
            Cell::Text(t) => Value::String(t),
            Cell::Int(i) => Value::String(i.to_string()),
            Cell::Real(x) => Value::String(x.to_string()),
            Cell::Bool(b) => Value::String(if b { "1" } else { "0" }.into()),
            Cell::Json(Value::String(s)) => Value::String(s),
            Cell::Json(other) => Value::String(other.to_string()),
            Cell::Null => Value::String(String::new()),
        },
    }
}

/// A row of `schema_sql::select_list` columns: `cell(i)` reads column `i`.
pub(crate) fn decode_row(
    coll: &Collection,
    mut cell: impl FnMut(usize) -> Result<Cell, StoreError>,
) -> Result<Row, StoreError> {
    let mut m = Map::new();
    for (i, f) in coll.fields.iter().enumerate() {
        m.insert(f.name.clone(), decode(f, cell(i)?));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(kind: &str, options: Value) -> Field {
        let mut v = json!({"name": "f", "type": kind});
        if let (Some(m), Value::Object(o)) = (v.as_object_mut(), options) {
            m.extend(o);
        }
        Field::from_json(&v).expect("field")
    }

    #[test]
    fn multi_value_fields_always_store_an_array() {
        let f = field("select", json!({"values": ["a", "b"], "maxSelect": 2}));
        assert_eq!(encode(&f, &json!("a")), Param::Json(json!(["a"])));
        assert_eq!(encode(&f, &json!("")), Param::Json(json!([])));
        assert_eq!(encode(&f, &Value::Null), Param::Json(json!([])));
        assert_eq!(encode(&f, &json!(["a", "b"])), Param::Json(json!(["a", "b"])));
        // Reads accept what older SQLite data directories hold: bare text and ''.
        assert_eq!(decode(&f, Cell::Text("a".into())), json!(["a"]));
        assert_eq!(decode(&f, Cell::Text(String::new())), json!([]));
        assert_eq!(decode(&f, Cell::Text("[\"a\"]".into())), json!(["a"]));
    }

    #[test]
    fn scalars_round_trip() {
        let n = field("number", json!({}));
        assert_eq!(encode(&n, &json!(2)), Param::Real(2.0));
        assert_eq!(decode(&n, Cell::Real(2.0)), json!(2));
        assert_eq!(decode(&n, Cell::Int(3)), json!(3));
        let b = field("bool", json!({}));
        assert_eq!(encode(&b, &json!(true)), Param::Bool(true));
        assert_eq!(decode(&b, Cell::Int(1)), json!(true));
        let j = field("json", json!({}));
        assert_eq!(encode(&j, &Value::Null), Param::JsonNull);
        assert_eq!(decode(&j, Cell::Null), Value::Null);
        assert_eq!(decode(&j, Cell::Text("{\"a\":1}".into())), json!({"a": 1}));
        let t = field("text", json!({}));
        assert_eq!(encode(&t, &Value::Null), Param::Text(String::new()));
        assert_eq!(decode(&t, Cell::Null), json!(""));
    }
}
