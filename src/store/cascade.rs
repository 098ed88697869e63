//! Deleting a record with PocketBase's relation semantics, once for both engines: every record
//! that references it through a relation field is deleted too (`cascadeDelete`), blocks the
//! delete (`required`, nothing else left in the field), or loses the id. Runs inside the
//! caller's transaction through `engine::Tx`; reports every record it deleted or cleaned up.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use crate::model::collection::{Collection, Schema};
use crate::model::field::{Field, FieldKind};
use crate::store::changes::{Action, Pending};
use crate::store::dialect::quote_ident;
use crate::store::engine::Tx;
use crate::store::query::Param;
use crate::store::stored::{self, Cell};
use crate::store::StoreError;

/// Cascades deeper than this stop (a cycle is also cut by `seen`).
const MAX_DEPTH: usize = 64;

/// A record being deleted: its referencing fields are visited one by one, then it goes.
struct Frame<'s> {
    coll: &'s Collection,
    id: String,
    depth: usize,
    refs: Vec<(&'s Arc<Collection>, &'s Field)>,
    /// How many of `refs` were started.
    next_ref: usize,
    /// The referencing records of `refs[next_ref - 1]` still to handle.
    ids: VecDeque<String>,
}

impl<'s> Frame<'s> {
    fn new(schema: &'s Schema, coll: &'s Collection, id: String, depth: usize) -> Frame<'s> {
        let refs = schema.references_to(&coll.id).collect();
        Frame { coll, id, depth, refs, next_ref: 0, ids: VecDeque::new() }
    }
}

/// Deletes `id` of `coll` and applies relation semantics, depth first (a cascaded record goes
/// before the record it pointed to, as the recursive form would). `NotFound` if `id` does not
/// exist; `RequiredRelation` (the caller rolls back) if a required relation would be emptied.
pub(crate) async fn delete<T: Tx>(
    tx: &mut T,
    schema: &Schema,
    coll: &Collection,
    id: &str,
) -> Result<Vec<Pending>, StoreError> {
    let mut changed = Vec::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    seen.insert((coll.id.clone(), id.to_string()));
    let mut stack = vec![Frame::new(schema, coll, id.to_string(), 0)];
    while let Some(top) = stack.last_mut() {
        if let Some(ref_id) = top.ids.pop_front() {
            let (rc, f) = top.refs[top.next_ref - 1];
            if rc.id == top.coll.id && ref_id == top.id {
                continue;
            }
            if matches!(f.kind, FieldKind::Relation { cascade_delete: true, .. }) {
                let depth = top.depth + 1;
                if depth <= MAX_DEPTH && seen.insert((rc.id.clone(), ref_id.clone())) {
                    stack.push(Frame::new(schema, rc, ref_id, depth));
                }
                continue;
            }
            let gone = top.id.clone();
            remove_reference(tx, rc, f, &ref_id, &gone).await?;
            changed.push(Pending::new(&rc.id, &ref_id, Action::Update));
            continue;
        }
        if top.next_ref < top.refs.len() {
            let (rc, f) = top.refs[top.next_ref];
            top.next_ref += 1;
            let (sql, params) = find_references(tx, rc, f, &top.id);
            top.ids = tx.strings(&sql, &params).await?.into();
            continue;
        }
        let done = stack.pop();
        let Some(done) = done else { break };
        // The row comes back with the delete: the change feed carries what was deleted
        // (realtime sends it to subscribers).
        let cols: Vec<String> = done.coll.fields.iter().map(|f| quote_ident(&f.name)).collect();
        let sql = format!(
            "DELETE FROM {} WHERE \"id\" = {} RETURNING {}",
            quote_ident(&done.coll.name),
            tx.dialect().placeholder(1),
            tx.dialect().row_json(&cols)
        );
        let gone = tx.strings(&sql, &[Param::Text(done.id.clone())]).await?;
        let Some(json) = gone.first() else {
            if done.depth == 0 {
                return Err(StoreError::NotFound);
            }
            continue;
        };
        let pending = Pending::new(&done.coll.id, &done.id, Action::Delete);
        changed.push(match decode_row_json(done.coll, json) {
            Some(row) => pending.with_record(&row),
            None => pending,
        });
    }
    Ok(changed)
}

/// The ids of `rc` records whose relation field `f` holds `id`.
fn find_references<T: Tx>(tx: &T, rc: &Collection, f: &Field, id: &str) -> (String, Vec<Param>) {
    let d = tx.dialect();
    let (table, col, p) = (quote_ident(&rc.name), quote_ident(&f.name), d.placeholder(1));
    let cond = if f.is_multi() {
        d.json_array_contains(&format!("t.{col}"), &p)
    } else {
        format!("t.{col} = {p}")
    };
    (format!("SELECT t.\"id\" FROM {table} t WHERE {cond}"), vec![Param::Text(id.to_string())])
}

/// Takes `gone` out of record `ref_id`'s field `f` (a required field must keep another id).
async fn remove_reference<T: Tx>(
    tx: &mut T,
    rc: &Collection,
    f: &Field,
    ref_id: &str,
    gone: &str,
) -> Result<(), StoreError> {
    let d = tx.dialect();
    let (table, col) = (quote_ident(&rc.name), quote_ident(&f.name));
    let (p1, p2) = (d.placeholder(1), d.placeholder(2));
    let pair = [Param::Text(ref_id.to_string()), Param::Text(gone.to_string())];
    if !f.is_multi() {
        if f.required {
            return Err(StoreError::RequiredRelation(rc.name.clone()));
        }
        let sql = format!("UPDATE {table} SET {col} = '' WHERE \"id\" = {p1}");
        tx.exec(&sql, &pair[..1]).await?;
        return Ok(());
    }
    if f.required {
        let sql = format!(
            "SELECT COUNT(*) FROM {table} t, {} WHERE t.\"id\" = {p1} AND {} <> {p2}",
            d.json_each(&format!("t.{col}"), "je"),
            d.json_each_value("je")
        );
        if tx.int(&sql, &pair).await? == 0 {
            return Err(StoreError::RequiredRelation(rc.name.clone()));
        }
    }
    let sql = format!(
        "UPDATE {table} SET {col} = {} WHERE \"id\" = {p1}",
        d.json_array_without(&format!("{table}.{col}"), &p2)
    );
    tx.exec(&sql, &pair).await?;
    Ok(())
}

/// The row `Dialect::row_json` returned, decoded as a read would decode it.
pub(crate) fn decode_row_json(coll: &Collection, json: &str) -> Option<crate::store::Row> {
    let chunks: Vec<Vec<serde_json::Value>> = serde_json::from_str(json).ok()?;
    let mut values = chunks.into_iter().flatten();
    let row = stored::decode_row(coll, |_| {
        Ok(match values.next().unwrap_or(serde_json::Value::Null) {
            serde_json::Value::Null => Cell::Null,
            serde_json::Value::Bool(b) => Cell::Bool(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Cell::Int(i),
                None => Cell::Real(n.as_f64().unwrap_or(0.0)),
            },
            serde_json::Value::String(s) => Cell::Text(s),
            other => Cell::Json(other),
        })
    });
    row.ok()
}
