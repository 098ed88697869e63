//! System state kept beside the data, written once for both engines over `Tx`: application
//! settings (`_params` of migration 0001, one JSON document per key, as PocketBase keeps them) and cron
//! schedules (`_crons`), API keys (`_apikeys`). Migration 0005.
//!
//! A cron tick fires with a compare-and-set on `last_tick` and enqueues its job in the same
//! transaction, so with several instances on one database each tick enqueues exactly once.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::engine::Tx;
use crate::store::jobs::{self, NewJob};
use crate::store::query::Param;
use crate::store::StoreError;

/// A stored cron schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cron {
    pub id: String,
    pub expression: String,
    pub kind: String,
    pub queue: String,
    pub payload: Value,
    /// The last tick that fired (Unix ms; 0: none yet).
    pub last_tick: i64,
    pub created: i64,
    pub updated: i64,
}

/// Inserts or replaces the param `id`.
pub(crate) async fn put_param<T: Tx>(
    tx: &mut T,
    id: &str,
    value: &str,
    now: &str,
) -> Result<(), StoreError> {
    let d = tx.dialect();
    let (p1, p2, p3) = (d.placeholder(1), d.placeholder(2), d.placeholder(3));
    let sql = format!(
        "INSERT INTO _params (id, value, created, updated) VALUES ({p1}, {p2}, {p3}, {p3}) \
         ON CONFLICT (id) DO UPDATE SET value = excluded.value, updated = excluded.updated"
    );
    let params = [Param::Text(id.into()), Param::Text(value.into()), Param::Text(now.into())];
    tx.exec(&sql, &params).await.map(drop)
}

/// `SELECT value FROM _params WHERE id = ?`.
pub(crate) fn param_sql(d: &dyn crate::store::dialect::Dialect) -> String {
    format!("SELECT value FROM _params WHERE id = {}", d.placeholder(1))
}

/// The columns of a cron as one JSON text (`Cron`'s serde names).
pub(crate) fn cron_json(d: &dyn crate::store::dialect::Dialect) -> String {
    d.json_object(&[
        ("id", "id".into()),
        ("expression", "expression".into()),
        ("kind", "kind".into()),
        ("queue", "queue".into()),
        ("payload", d.json_from_text("payload")),
        ("lastTick", "last_tick".into()),
        ("created", "created".into()),
        ("updated", "updated".into()),
    ])
}

pub(crate) fn parse_crons(texts: Vec<String>) -> Result<Vec<Cron>, StoreError> {
    jobs::parse_json_rows(texts, "cron")
}

/// Inserts or replaces a schedule. A replaced schedule keeps its `last_tick` (no tick fires
/// twice because its definition changed) and its `created`.
pub(crate) async fn put_cron<T: Tx>(tx: &mut T, c: &Cron) -> Result<(), StoreError> {
    let d = tx.dialect();
    let p: Vec<String> = (1..=8).map(|i| d.placeholder(i)).collect();
    let sql = format!(
        "INSERT INTO _crons (id, expression, kind, queue, payload, last_tick, created, updated) \
         VALUES ({}, {}, {}, {}, {}, {}, {}, {}) ON CONFLICT (id) DO UPDATE SET \
         expression = excluded.expression, kind = excluded.kind, queue = excluded.queue, \
         payload = excluded.payload, updated = excluded.updated",
        p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]
    );
    let params = [
        Param::Text(c.id.clone()),
        Param::Text(c.expression.clone()),
        Param::Text(c.kind.clone()),
        Param::Text(c.queue.clone()),
        Param::Text(c.payload.to_string()),
        Param::Int(c.last_tick),
        Param::Int(c.created),
        Param::Int(c.updated),
    ];
    tx.exec(&sql, &params).await.map(drop)
}

/// Deletes a schedule; whether it existed.
pub(crate) async fn delete_cron<T: Tx>(tx: &mut T, id: &str) -> Result<bool, StoreError> {
    let sql = format!("DELETE FROM _crons WHERE id = {}", tx.dialect().placeholder(1));
    Ok(tx.exec(&sql, &[Param::Text(id.into())]).await? > 0)
}

/// Fires the tick `tick` of cron `id` if no instance fired it (or a later one) yet: moves
/// `last_tick` forward and enqueues `job` in this transaction. Whether this call fired it.
pub(crate) async fn fire_cron<T: Tx>(
    tx: &mut T,
    id: &str,
    tick: i64,
    job: &NewJob,
    now: i64,
) -> Result<bool, StoreError> {
    let d = tx.dialect();
    let sql = format!(
        "UPDATE _crons SET last_tick = {p1} WHERE id = {p2} AND last_tick < {p1}",
        p1 = d.placeholder(1),
        p2 = d.placeholder(2)
    );
    if tx.exec(&sql, &[Param::Int(tick), Param::Text(id.into())]).await? == 0 {
        return Ok(false);
    }
    jobs::enqueue(tx, job, now, false).await?;
    Ok(true)
}

/// A stored API key (the secret's SHA-256 only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    /// Hex SHA-256 of the secret.
    #[serde(default, skip_serializing)]
    pub hash: String,
    pub created: i64,
}

/// The columns of a key as one JSON text.
pub(crate) fn api_key_json(d: &dyn crate::store::dialect::Dialect) -> String {
    d.json_object(&[
        ("id", "id".into()),
        ("name", "name".into()),
        ("scopes", d.json_from_text("scopes")),
        ("hash", "hash".into()),
        ("created", "created".into()),
    ])
}

pub(crate) fn parse_api_keys(texts: Vec<String>) -> Result<Vec<ApiKey>, StoreError> {
    jobs::parse_json_rows(texts, "API key")
}

pub(crate) async fn put_api_key<T: Tx>(tx: &mut T, k: &ApiKey) -> Result<(), StoreError> {
    let d = tx.dialect();
    let p: Vec<String> = (1..=5).map(|i| d.placeholder(i)).collect();
    let sql = format!(
        "INSERT INTO _apikeys (id, name, scopes, hash, created) VALUES ({}, {}, {}, {}, {})",
        p[0], p[1], p[2], p[3], p[4]
    );
    let params = [
        Param::Text(k.id.clone()),
        Param::Text(k.name.clone()),
        Param::Text(Value::from(k.scopes.clone()).to_string()),
        Param::Text(k.hash.clone()),
        Param::Int(k.created),
    ];
    tx.exec(&sql, &params).await.map(drop)
}

pub(crate) async fn delete_api_key<T: Tx>(tx: &mut T, id: &str) -> Result<bool, StoreError> {
    let sql = format!("DELETE FROM _apikeys WHERE id = {}", tx.dialect().placeholder(1));
    Ok(tx.exec(&sql, &[Param::Text(id.into())]).await? > 0)
}
