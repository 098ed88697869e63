//! The job queue's storage (`_jobs`, migration 0004), written once for both engines over `Tx`.
//! Enqueueing is a unit-of-work operation, so a record write and the jobs it causes commit
//! together. Claiming takes due jobs under a lease in one statement (PostgreSQL: `FOR UPDATE
//! SKIP LOCKED`, so instances never take the same job; SQLite: the one writer); a job whose
//! lease expired (its worker died) is claimable again. Finishing checks the lease is still
//! ours, so a worker that lost its lease cannot overwrite the next attempt.
//!
//! Times are Unix milliseconds. Nothing here knows handlers or HTTP (see `jobs/`).

use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::Value;

use crate::store::dialect::Dialect;
use crate::store::engine::Tx;
use crate::store::query::Param;
use crate::store::StoreError;

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: String,
    pub queue: String,
    pub kind: String,
    pub payload: Value,
    pub priority: i64,
    pub run_at: i64,
    pub max_attempts: i64,
    /// While a job with this key is pending or running, enqueueing another does nothing.
    pub unique_key: Option<String>,
}

/// A stored job, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub id: String,
    pub queue: String,
    pub kind: String,
    pub payload: Value,
    pub priority: i64,
    pub run_at: i64,
    pub attempts: i64,
    pub max_attempts: i64,
    pub state: String,
    pub last_error: String,
    pub unique_key: Option<String>,
    pub result: Option<Value>,
    pub created: i64,
    pub updated: i64,
    /// When the current (or last) attempt started; `None` before the first.
    #[serde(default)]
    pub started: Option<i64>,
    pub finished: Option<i64>,
}

/// A queue's recent activity (`Store::job_activity`).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueActivity {
    pub queue: String,
    /// When the oldest due pending job became due (ms); `None` when none waits.
    pub oldest_due: Option<i64>,
    /// Succeeded in the last minute.
    #[serde(default, deserialize_with = "lenient_count")]
    pub succeeded: i64,
    /// Failed an attempt (and is waiting to retry, or dead) in the last minute.
    #[serde(default, deserialize_with = "lenient_count")]
    pub failed: i64,
}

/// A count PostgreSQL's SUM gives as a numeric (maybe `"3"` or `3.0` in JSON).
fn lenient_count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v: Value = serde::Deserialize::deserialize(d)?;
    Ok(match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).unwrap_or(0),
        Value::String(s) => s.parse::<f64>().map(|f| f as i64).unwrap_or(0),
        _ => 0,
    })
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    Succeeded(Option<Value>),
    /// Failed; try again at `at` (if attempts remain, else the job is dead).
    Failed {
        error: String,
        at: i64,
    },
}

/// Where an operation that reads back puts its answer (operations are plain data).
pub type Slot<T> = Arc<Mutex<T>>;

/// A claim request.
#[derive(Debug, Clone)]
pub struct Claim {
    pub queue: String,
    /// Only these kinds (empty: any).
    pub kinds: Vec<String>,
    pub max: i64,
    pub owner: String,
    pub now: i64,
    pub lease_until: i64,
}

/// The columns of a job as one JSON text (`Job`'s serde names).
pub(crate) fn job_json(d: &dyn Dialect, alias: &str) -> String {
    let c = |name: &str| format!("{alias}.{name}");
    d.json_object(&[
        ("id", c("id")),
        ("queue", c("queue")),
        ("kind", c("kind")),
        ("payload", d.json_from_text(&c("payload"))),
        ("priority", c("priority")),
        ("runAt", c("run_at")),
        ("attempts", c("attempts")),
        ("maxAttempts", c("max_attempts")),
        ("state", c("state")),
        ("lastError", c("last_error")),
        ("uniqueKey", c("unique_key")),
        ("result", d.json_from_text(&c("result"))),
        ("created", c("created")),
        ("updated", c("updated")),
        ("started", c("started")),
        ("finished", c("finished")),
    ])
}

pub(crate) fn parse_jobs(texts: Vec<String>) -> Result<Vec<Job>, StoreError> {
    parse_json_rows(texts, "job")
}

/// Rows selected as one JSON text each (`Dialect::json_object`), decoded; `what` names the
/// kind of row in the error.
pub(crate) fn parse_json_rows<T: serde::de::DeserializeOwned>(
    texts: Vec<String>,
    what: &str,
) -> Result<Vec<T>, StoreError> {
    texts
        .into_iter()
        .map(|t| {
            serde_json::from_str(&t)
                .map_err(|e| StoreError::Db(format!("a stored {what} does not parse: {e}")))
        })
        .collect()
}

/// Inserts `job` unless a live job holds its unique key (or its id is taken); with `returning`,
/// the stored job when it was inserted (no second read to answer the enqueue).
pub(crate) async fn enqueue<T: Tx>(
    tx: &mut T,
    job: &NewJob,
    now: i64,
    returning: bool,
) -> Result<Option<Job>, StoreError> {
    let d = tx.dialect();
    let p: Vec<String> = (1..=10).map(|i| d.placeholder(i)).collect();
    let sql = format!(
        "INSERT INTO _jobs (id, queue, kind, payload, priority, run_at, max_attempts, state, \
         unique_key, created, updated) VALUES ({}, {}, {}, {}, {}, {}, {}, 'pending', {}, {}, {}) \
         ON CONFLICT DO NOTHING{}",
        p[0],
        p[1],
        p[2],
        p[3],
        p[4],
        p[5],
        p[6],
        p[7],
        p[8],
        p[9],
        if returning { format!(" RETURNING {}", job_json(d, "_jobs")) } else { String::new() }
    );
    let params = vec![
        Param::Text(job.id.clone()),
        Param::Text(job.queue.clone()),
        Param::Text(job.kind.clone()),
        Param::Text(job.payload.to_string()),
        Param::Int(job.priority),
        Param::Int(job.run_at),
        Param::Int(job.max_attempts),
        job.unique_key.clone().map_or(Param::Null, Param::Text),
        Param::Int(now),
        Param::Int(now),
    ];
    if !returning {
        tx.exec(&sql, &params).await?;
        return Ok(None);
    }
    Ok(parse_jobs(tx.strings(&sql, &params).await?)?.pop())
}

/// Takes up to `c.max` due jobs of `c.queue` under a lease for `c.owner`, highest priority
/// first, then the oldest due. First the queue's running jobs whose lease expired (their worker
/// died) with attempts left go back to pending, so they are claimed like any other. Both
/// statements read only their partial index (`_jobs_leases`, `_jobs_due`, migration 0006): the
/// cost of a claim does not grow with the finished jobs the table keeps.
pub(crate) async fn claim<T: Tx>(tx: &mut T, c: &Claim) -> Result<Vec<Job>, StoreError> {
    let d = tx.dialect();
    let requeue = [Param::Text(c.queue.clone()), Param::Int(c.now)];
    tx.exec(&requeue_expired_sql(d), &requeue).await?;
    let mut params = vec![
        Param::Text(c.owner.clone()),
        Param::Int(c.lease_until),
        Param::Int(c.now),
        Param::Text(c.queue.clone()),
    ];
    params.extend(c.kinds.iter().map(|k| Param::Text(k.clone())));
    let sql = claim_sql(d, c.kinds.len(), c.max.clamp(0, MAX_CLAIM));
    // RETURNING keeps no order: hand them out in the claim's.
    let mut jobs = parse_jobs(tx.strings(&sql, &params).await?)?;
    jobs.sort_by(|a, b| {
        (b.priority, a.run_at, a.created, &a.id).cmp(&(a.priority, b.run_at, b.created, &b.id))
    });
    Ok(jobs)
}

/// Running jobs of queue `$1` whose lease expired before `$2` with attempts left: pending again.
pub(crate) fn requeue_expired_sql(d: &dyn Dialect) -> String {
    format!(
        "UPDATE _jobs SET state = 'pending', lease_owner = '', lease_until = 0 \
         WHERE queue = {} AND state = 'running' AND lease_until < {} \
         AND attempts < max_attempts",
        d.placeholder(1),
        d.placeholder(2)
    )
}

/// The most jobs one claim takes.
pub const MAX_CLAIM: i64 = 1000;

/// Leases (owner `$1`, until `$2`, now `$3`) up to `limit` due pending jobs of queue `$4`, of
/// the `kinds` kinds given from `$5` on (any when 0). `+run_at` keeps the due-time bound off
/// the indexes (a unary plus is the documented way on SQLite, harmless on PostgreSQL): read
/// through `_jobs_next`, a range on `run_at`, every due job would be sorted for each claim,
/// where `_jobs_due` hands them out in claim order and stops at the limit. The limit is written
/// into the statement (an integer of ours, not input): PostgreSQL's generic plan for a
/// prepared `LIMIT $n` assumes a tenth of the rows and, with a long queue, sorted them all.
pub(crate) fn claim_sql(d: &dyn Dialect, kinds: usize, limit: i64) -> String {
    let (p1, p2, p3, p4) = (d.placeholder(1), d.placeholder(2), d.placeholder(3), d.placeholder(4));
    let kinds = if kinds == 0 {
        String::new()
    } else {
        let list: Vec<String> = (5..5 + kinds).map(|i| d.placeholder(i)).collect();
        format!(" AND kind IN ({})", list.join(", "))
    };
    format!(
        "UPDATE _jobs SET state = 'running', attempts = attempts + 1, lease_owner = {p1}, \
         lease_until = {p2}, updated = {p3}, started = {p3} \
         WHERE id IN (SELECT id FROM _jobs WHERE queue = {p4} AND state = 'pending' \
           AND +run_at <= {p3}{kinds} \
           ORDER BY priority DESC, run_at, created LIMIT {limit}{}) \
         RETURNING {}",
        d.skip_locked(),
        job_json(d, "_jobs")
    )
}

/// The SQL for the earliest `run_at` of a pending job of queue `$1` due after `$2` (ms), read
/// from `_jobs_next` (0 when none): the runner sleeps until then instead of a whole poll.
pub(crate) fn next_due_sql(d: &dyn Dialect) -> String {
    format!(
        "SELECT COALESCE(MIN(run_at), 0) FROM _jobs WHERE queue = {} AND state = 'pending' AND run_at > {}",
        d.placeholder(1),
        d.placeholder(2)
    )
}

/// Running jobs whose lease expired after their last attempt: dead (nobody will finish them).
pub(crate) async fn bury_expired<T: Tx>(tx: &mut T, now: i64) -> Result<u64, StoreError> {
    let p = tx.dialect().placeholder(1);
    let sql = format!(
        "UPDATE _jobs SET state = 'dead', last_error = 'the lease expired on the last attempt', \
         lease_owner = '', updated = {p}, finished = {p} \
         WHERE state = 'running' AND lease_until < {p} AND attempts >= max_attempts"
    );
    tx.exec(&sql, &[Param::Int(now)]).await
}

/// Records how an attempt of `id` (leased by `owner`) ended; `false` if the lease is no
/// longer `owner`'s (it expired and another worker took the job).
pub(crate) async fn finish<T: Tx>(
    tx: &mut T,
    id: &str,
    owner: &str,
    outcome: &Outcome,
    now: i64,
) -> Result<bool, StoreError> {
    let d = tx.dialect();
    let (p1, p2, p3, p4, p5) =
        (d.placeholder(1), d.placeholder(2), d.placeholder(3), d.placeholder(4), d.placeholder(5));
    let (sql, params) = match outcome {
        Outcome::Succeeded(result) => (
            format!(
                "UPDATE _jobs SET state = 'succeeded', result = {p3}, lease_owner = '', \
                 updated = {p4}, finished = {p4}, last_error = '' \
                 WHERE id = {p1} AND lease_owner = {p2} AND state = 'running'"
            ),
            vec![
                Param::Text(id.into()),
                Param::Text(owner.into()),
                result.as_ref().map_or(Param::Null, |v| Param::Text(v.to_string())),
                Param::Int(now),
            ],
        ),
        Outcome::Failed { error, at } => (
            format!(
                "UPDATE _jobs SET last_error = {p3}, lease_owner = '', updated = {p4}, \
                 state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'pending' END, \
                 finished = CASE WHEN attempts >= max_attempts THEN {p4} ELSE NULL END, \
                 run_at = {p5} \
                 WHERE id = {p1} AND lease_owner = {p2} AND state = 'running'"
            ),
            vec![
                Param::Text(id.into()),
                Param::Text(owner.into()),
                Param::Text(error.chars().take(4000).collect()),
                Param::Int(now),
                Param::Int(*at),
            ],
        ),
    };
    Ok(tx.exec(&sql, &params).await? > 0)
}

/// Records the success (no result) of the attempts of `ids` leased by `owner`, in one
/// statement: one round trip for a batch, not one per job. Returns the ids whose lease was
/// still `owner`'s.
pub(crate) async fn succeed_many<T: Tx>(
    tx: &mut T,
    ids: &[String],
    owner: &str,
    now: i64,
) -> Result<Vec<String>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let d = tx.dialect();
    let list: Vec<String> = (3..3 + ids.len()).map(|i| d.placeholder(i)).collect();
    let sql = format!(
        "UPDATE _jobs SET state = 'succeeded', result = NULL, lease_owner = '', updated = {p2}, \
         finished = {p2}, last_error = '' \
         WHERE lease_owner = {p1} AND state = 'running' AND id IN ({}) RETURNING id",
        list.join(", "),
        p1 = d.placeholder(1),
        p2 = d.placeholder(2),
    );
    let mut params = vec![Param::Text(owner.into()), Param::Int(now)];
    params.extend(ids.iter().map(|id| Param::Text(id.clone())));
    tx.strings(&sql, &params).await
}

/// Extends the lease of `id` if `owner` still holds it.
pub(crate) async fn heartbeat<T: Tx>(
    tx: &mut T,
    id: &str,
    owner: &str,
    lease_until: i64,
) -> Result<bool, StoreError> {
    let d = tx.dialect();
    let sql = format!(
        "UPDATE _jobs SET lease_until = {} WHERE id = {} AND lease_owner = {} AND state = 'running'",
        d.placeholder(1),
        d.placeholder(2),
        d.placeholder(3)
    );
    let params = [Param::Int(lease_until), Param::Text(id.into()), Param::Text(owner.into())];
    Ok(tx.exec(&sql, &params).await? > 0)
}

/// Gives back the leases of `owner` (graceful shutdown): its running jobs are pending again and
/// the interrupted attempt does not count.
pub(crate) async fn release<T: Tx>(tx: &mut T, owner: &str, now: i64) -> Result<u64, StoreError> {
    let d = tx.dialect();
    let sql = format!(
        "UPDATE _jobs SET state = 'pending', attempts = attempts - 1, lease_owner = '', \
         lease_until = 0, updated = {} WHERE lease_owner = {} AND state = 'running'",
        d.placeholder(1),
        d.placeholder(2)
    );
    tx.exec(&sql, &[Param::Int(now), Param::Text(owner.into())]).await
}

/// Deletes the jobs in `state` (a finished one: succeeded or dead) that finished before
/// `cutoff`; returns how many.
pub(crate) async fn prune<T: Tx>(tx: &mut T, state: &str, cutoff: i64) -> Result<u64, StoreError> {
    let d = tx.dialect();
    let sql = format!(
        "DELETE FROM _jobs WHERE state = {} AND finished < {}",
        d.placeholder(1),
        d.placeholder(2)
    );
    tx.exec(&sql, &[Param::Text(state.into()), Param::Int(cutoff)]).await
}

/// Sends a dead (or failed) job back to pending with fresh attempts (operators' "retry").
pub(crate) async fn revive<T: Tx>(tx: &mut T, id: &str, now: i64) -> Result<bool, StoreError> {
    let d = tx.dialect();
    let sql = format!(
        "UPDATE _jobs SET state = 'pending', attempts = 0, run_at = {p}, updated = {p}, \
         finished = NULL WHERE id = {i} AND state IN ('dead', 'failed')",
        p = d.placeholder(1),
        i = d.placeholder(2)
    );
    Ok(tx.exec(&sql, &[Param::Int(now), Param::Text(id.into())]).await? > 0)
}

#[cfg(test)]
#[path = "jobs_tests.rs"]
mod tests;
