//! Deciding a rule or filter in memory, for the cases where that is certain: one record's own
//! single-valued fields compared with literals, request values (`@request.auth.*`,
//! `.context`, `.method`, `.query.*`, `.headers.*`) or each other, joined by `&&` and `||`.
//! Realtime asks this once per subscriber instead of one query each; `None` means "not
//! decidable here" and the caller runs the SQL the store compiles. It must never answer what
//! the SQL would not: anything outside the subset (relations followed, `@collection`,
//! modifiers, `~`, multi-value or JSON fields, mixed types) is `None`.
//!
//! The comparisons mirror `store::query`: text compares as `COALESCE(x, '')` (a guest's
//! `@request.auth.*` is `''`), numbers as numbers, booleans as booleans.

use serde_json::{Map, Value};

use crate::model::collection::Collection;
use crate::model::field::FieldKind;
use crate::model::filter::ast::{CmpOp, Expr, Ident, Operand};
use crate::model::request::RequestInfo;

/// A value the evaluator compares.
#[derive(Debug, Clone, PartialEq)]
enum V {
    Text(String),
    Num(f64),
    Bool(bool),
}

/// Decides `expr` for `row` of `coll` and the request `info`; `client` for a client filter
/// (hidden fields are not addressable there: undecidable here, refused by the SQL).
pub fn decide(
    expr: &Expr,
    coll: &Collection,
    row: &Map<String, Value>,
    info: &RequestInfo,
    client: bool,
) -> Option<bool> {
    match expr {
        Expr::And(a, b) => match decide(a, coll, row, info, client) {
            Some(false) => Some(false),
            first => match (first, decide(b, coll, row, info, client)) {
                (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            },
        },
        Expr::Or(a, b) => match decide(a, coll, row, info, client) {
            Some(true) => Some(true),
            first => match (first, decide(b, coll, row, info, client)) {
                (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
        },
        Expr::Cmp { left, op, right } => {
            if op.any {
                return None;
            }
            let l = operand(left, coll, row, info, client)?;
            let r = operand(right, coll, row, info, client)?;
            compare(op.kind, &l, &r)
        }
    }
}

fn compare(kind: CmpOp, l: &V, r: &V) -> Option<bool> {
    use std::cmp::Ordering;
    let ord = match (l, r) {
        (V::Text(a), V::Text(b)) => a.as_bytes().cmp(b.as_bytes()),
        (V::Num(a), V::Num(b)) => a.partial_cmp(b)?,
        (V::Bool(a), V::Bool(b)) => match kind {
            CmpOp::Eq => return Some(a == b),
            CmpOp::Neq => return Some(a != b),
            _ => return None,
        },
        _ => return None,
    };
    Some(match kind {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Neq => ord != Ordering::Equal,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Gte => ord != Ordering::Less,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Lte => ord != Ordering::Greater,
        CmpOp::Like | CmpOp::NotLike => return None,
    })
}

fn operand(
    o: &Operand,
    coll: &Collection,
    row: &Map<String, Value>,
    info: &RequestInfo,
    client: bool,
) -> Option<V> {
    match o {
        Operand::Text(s) => Some(V::Text(s.clone())),
        Operand::Number(n) => Some(V::Num(*n)),
        Operand::Bool(b) => Some(V::Bool(*b)),
        Operand::Null | Operand::Func { .. } => None,
        Operand::Ident(id) if id.modifier.is_some() => None,
        Operand::Ident(id) if id.raw.starts_with('@') => request(id, info),
        Operand::Ident(id) => {
            let [name] = id.segments.as_slice() else { return None };
            let f = coll.field(name)?;
            if client && f.hidden {
                return None;
            }
            field_value(&f.kind, f.is_multi(), row.get(name))
        }
    }
}

/// A stored value of a single-valued field of a comparable kind.
fn field_value(kind: &FieldKind, multi: bool, v: Option<&Value>) -> Option<V> {
    if multi {
        return None;
    }
    match kind {
        FieldKind::Text { .. }
        | FieldKind::Email { .. }
        | FieldKind::Url { .. }
        | FieldKind::Editor { .. }
        | FieldKind::Date { .. }
        | FieldKind::Autodate { .. }
        | FieldKind::Select { .. }
        | FieldKind::Relation { .. } => match v {
            None | Some(Value::Null) => Some(V::Text(String::new())),
            Some(Value::String(s)) => Some(V::Text(s.clone())),
            _ => None,
        },
        FieldKind::Number { .. } => v.and_then(Value::as_f64).map(V::Num),
        FieldKind::Bool => v.and_then(Value::as_bool).map(V::Bool),
        _ => None,
    }
}

fn request(id: &Ident, info: &RequestInfo) -> Option<V> {
    let seg: Vec<&str> = id.segments.iter().map(String::as_str).collect();
    match seg.as_slice() {
        ["@request", "method"] => Some(V::Text(info.method.clone())),
        ["@request", "context"] => Some(V::Text(info.context.to_string())),
        ["@request", "auth", field] => match &info.auth {
            // A guest's `@request.auth.*` compiles to `''`.
            None => Some(V::Text(String::new())),
            Some(auth) => match *field {
                "collectionId" => Some(V::Text(auth.collection.id.clone())),
                "collectionName" => Some(V::Text(auth.collection.name.clone())),
                name => {
                    let f = auth.collection.field(name)?;
                    field_value(&f.kind, f.is_multi(), auth.record.get(name))
                }
            },
        },
        ["@request", "query" | "headers", key] => {
            let map = if seg[1] == "query" { &info.query } else { &info.headers };
            match map.get(*key) {
                Some(Value::String(s)) => Some(V::Text(s.clone())),
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::collection::CollectionType;
    use crate::model::filter;
    use crate::model::request::AuthRecord;
    use serde_json::json;
    use std::sync::Arc;

    fn posts() -> Collection {
        let mut c = Collection::blank(CollectionType::Base, "posts");
        let def = json!({"fields": [
            {"name": "title", "type": "text"},
            {"name": "n", "type": "number"},
            {"name": "on", "type": "bool"},
            {"name": "secret", "type": "text", "hidden": true},
            {"name": "author", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1},
            {"name": "tags", "type": "select", "values": ["a", "b"], "maxSelect": 2},
        ]});
        c.apply_json(def.as_object().unwrap()).unwrap();
        c.ensure_system_fields();
        c
    }

    fn user(id: &str) -> RequestInfo {
        let users = Arc::new(Collection::blank(CollectionType::Auth, "users"));
        let record = json!({"id": id, "email": "a@b.c", "verified": true});
        RequestInfo {
            auth: Some(AuthRecord {
                collection: users,
                record: record.as_object().unwrap().clone(),
            }),
            context: "realtime",
            ..RequestInfo::default()
        }
    }

    fn run(rule: &str, row: Value, info: &RequestInfo, client: bool) -> Option<bool> {
        let expr = filter::parse(rule).unwrap();
        decide(&expr, &posts(), row.as_object().unwrap(), info, client)
    }

    #[test]
    fn decides_what_it_can_and_nothing_else() {
        let row = json!({"id": "r1", "title": "hi", "n": 5, "on": true, "secret": "s",
                         "author": "u1", "tags": ["a"]});
        let alice = user("u1");
        let bob = user("u2");
        let guest = RequestInfo::default();
        for (rule, info, want) in [
            ("author = @request.auth.id", &alice, Some(true)),
            ("author = @request.auth.id", &bob, Some(false)),
            ("author = @request.auth.id", &guest, Some(false)),
            ("@request.auth.id != ''", &guest, Some(false)),
            ("@request.auth.id != '' && title = 'hi'", &alice, Some(true)),
            ("title = 'no' || n > 4", &guest, Some(true)),
            ("n >= 5 && n < 6 && on = true", &guest, Some(true)),
            ("@request.auth.verified = true", &alice, Some(true)),
            ("@request.auth.collectionName = 'users'", &alice, Some(true)),
            ("@request.context = 'realtime'", &alice, Some(true)),
            // Outside the subset: the caller asks the database.
            ("title ~ 'h'", &alice, None),
            ("author.name = 'x'", &alice, None),
            ("tags ?= 'a'", &alice, None),
            ("tags = 'a'", &alice, None),
            ("title:lower = 'hi'", &alice, None),
            ("n = '5'", &alice, None),
            ("@collection.users.id = 'x'", &alice, None),
            ("@request.query.k = 'v'", &alice, None),
            // A decided false side decides an `&&`, a true side an `||`.
            ("title ~ 'h' && n = 1", &alice, Some(false)),
            ("title ~ 'h' || n = 5", &alice, Some(true)),
        ] {
            assert_eq!(run(rule, row.clone(), info, false), want, "{rule}");
        }
        // A guest whose rule compares an empty relation with `@request.auth.id`: true, as the
        // SQL (and PocketBase) has it.
        let empty = json!({"id": "r2", "title": "", "n": 0, "on": false, "author": ""});
        assert_eq!(run("author = @request.auth.id", empty, &guest, false), Some(true));
        // Hidden fields: a rule may read them, a client filter may not (the SQL refuses).
        assert_eq!(run("secret = 's'", row.clone(), &guest, false), Some(true));
        assert_eq!(run("secret = 's'", row, &guest, true), None);
    }
}
