//! Webhook deliveries enqueued in the write's transaction: for every change of a collection
//! with webhooks, one `webhook` job per webhook whose events include the action and whose
//! filter matches the record (as written, or as it was when deleted). The job carries the body
//! to send; the secret stays in the collection's definition (the runner signs with the current
//! one), so it never lands in the jobs table.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::model::collection::{Collection, Schema};
use crate::model::filter::ast::Expr;
use crate::model::filter::eval;
use crate::model::policy::Parsed;
use crate::model::request::RequestInfo;
use crate::store::changes::Change;
use crate::store::dialect::quote_ident;
use crate::store::engine::Tx;
use crate::store::jobs::{self, NewJob};
use crate::store::query::{self, Param};
use crate::store::work::Op;
use crate::store::{Row, StoreError};

/// The job kind of a delivery.
pub const WEBHOOK: &str = "webhook";
/// Attempts per delivery (backoff from 1 s doubling: about 17 minutes in all).
const MAX_ATTEMPTS: i64 = 10;

/// The collections of `ops` that have webhooks, by id (empty: nothing to do, the usual case).
fn hooked(ops: &[Op]) -> HashMap<String, Arc<Collection>> {
    let mut out = HashMap::new();
    for op in ops {
        match op {
            Op::InsertRecord { coll, .. } | Op::UpdateRecord { coll, .. }
                if !coll.webhooks.is_empty() =>
            {
                out.insert(coll.id.clone(), coll.clone());
            }
            Op::DeleteRecord { schema, .. } => {
                for c in schema.all().iter().filter(|c| !c.webhooks.is_empty()) {
                    out.insert(c.id.clone(), c.clone());
                }
            }
            _ => {}
        }
    }
    out
}

/// Whether running `ops` may enqueue deliveries (a record write on a collection with webhooks).
pub(crate) fn may_enqueue(ops: &[Op]) -> bool {
    !hooked(ops).is_empty()
}

/// Enqueues the deliveries of `changes` (already in the outbox) in the open transaction.
pub(crate) async fn enqueue<T: Tx>(
    tx: &mut T,
    ops: &[Op],
    changes: &[Change],
) -> Result<(), StoreError> {
    let colls = hooked(ops);
    if colls.is_empty() {
        return Ok(());
    }
    let now = chrono::Utc::now().timestamp_millis();
    for change in changes {
        let Some(coll) = colls.get(&change.collection_id) else { continue };
        let action = change.action.as_str();
        let hooks: Vec<_> =
            coll.webhooks.iter().filter(|w| w.events.iter().any(|e| e == action)).collect();
        if hooks.is_empty() {
            continue;
        }
        let row = match &change.record {
            Some(r) => r.clone(),
            // A relation clean-up: read the row as it is now.
            None => match read_row(tx, coll, &change.record_id).await? {
                Some(r) => r,
                None => continue,
            },
        };
        for hook in hooks {
            let matches = match hook.filter.parsed() {
                Parsed::Expr(expr) => matches(tx, coll, &row, expr).await?,
                _ => true,
            };
            if !matches {
                continue;
            }
            let body = json!({
                "id": crate::util::random_alnum(20),
                "action": action,
                "collection": coll.name,
                "record": record_json(coll, &row),
            });
            let job = NewJob {
                id: crate::util::random_alnum(15),
                queue: "default".into(),
                kind: WEBHOOK.into(),
                payload: json!({"collectionId": coll.id, "webhook": hook.id, "url": hook.url,
                                "body": body}),
                priority: 0,
                run_at: now,
                max_attempts: MAX_ATTEMPTS,
                unique_key: None,
            };
            jobs::enqueue(tx, &job, now, false).await?;
        }
    }
    Ok(())
}

/// The record as a webhook shows it: every field but the password hash and token key, with
/// PocketBase's `collectionId` and `collectionName`.
fn record_json(coll: &Collection, row: &Row) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("collectionId".into(), json!(coll.id));
    o.insert("collectionName".into(), json!(coll.name));
    for f in &coll.fields {
        if coll.is_auth() && (f.name == "password" || f.name == "tokenKey") {
            continue;
        }
        o.insert(f.name.clone(), row.get(&f.name).cloned().unwrap_or(Value::Null));
    }
    Value::Object(o)
}

/// Whether `row` matches the webhook filter: in memory when that is certain, else by SQL over
/// the row alone (a filter is on the record's own fields: see `service::webhooks`).
async fn matches<T: Tx>(
    tx: &mut T,
    coll: &Arc<Collection>,
    row: &Row,
    expr: &Expr,
) -> Result<bool, StoreError> {
    let info = RequestInfo::default();
    if let Some(decided) = eval::decide(expr, coll, row, &info, false) {
        return Ok(decided);
    }
    let schema = Schema::new(vec![(**coll).clone()]);
    let (sql, params) =
        query::shadow_count_sql(tx.dialect(), &schema, coll, &info, row, Some(expr), None)?;
    Ok(tx.int(&sql, &params).await? > 0)
}

/// The stored row `id` of `coll`, decoded, read inside the transaction.
async fn read_row<T: Tx>(
    tx: &mut T,
    coll: &Collection,
    id: &str,
) -> Result<Option<Row>, StoreError> {
    let cols: Vec<String> = coll.fields.iter().map(|f| quote_ident(&f.name)).collect();
    let sql = format!(
        "SELECT {} FROM {} WHERE \"id\" = {}",
        tx.dialect().row_json(&cols),
        quote_ident(&coll.name),
        tx.dialect().placeholder(1)
    );
    let texts = tx.strings(&sql, &[Param::Text(id.into())]).await?;
    Ok(texts.first().and_then(|json| crate::store::cascade::decode_row_json(coll, json)))
}
