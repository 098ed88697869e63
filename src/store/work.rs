//! The unit of work: the writes the service wants to commit together (a record and the rows it
//! causes; later jobs and file metadata), written once for both engines. The service builds a
//! [`Work`] with `Store::work()`, adds operations, and `Store::commit` runs them all in one
//! transaction: every outbox row is written with them, and nothing is kept if one fails.
//!
//! Operations are plain data, so SQLite's writer thread can run them without borrowing from
//! the request, and a new kind of write is one `Op` variant plus its function here (or in
//! `ddl.rs` / `cascade.rs`), whatever the engine.

use std::sync::Arc;

use crate::model::collection::{Collection, Schema};
use crate::store::changes::{self, Action, Change, Pending};
use crate::store::dialect::{quote_ident, Dialect};
use crate::store::engine::Tx;
use crate::store::query::{self, Param};
use crate::store::{cascade, ddl, jobs, schema_sql, stored, system, Row, RuleCheck, StoreError};

/// A compiled rule check: `SELECT COUNT(*) …` that must not be 0 after the write.
pub(crate) type Check = (String, Vec<Param>);

/// One write of a unit of work.
pub(crate) enum Op {
    CreateCollection(Box<Collection>),
    UpdateCollection {
        old: Box<Collection>,
        new: Box<Collection>,
    },
    DeleteCollection(Box<Collection>),
    /// Deletes every record (no relation semantics, no outbox rows: PocketBase's truncate).
    Truncate(Box<Collection>),
    InsertRecord {
        coll: Arc<Collection>,
        row: Row,
        check: Option<Check>,
    },
    UpdateRecord {
        coll: Arc<Collection>,
        id: String,
        row: Row,
        check: Option<Check>,
    },
    DeleteRecord {
        schema: Arc<Schema>,
        coll: Arc<Collection>,
        id: String,
    },
    /// Adds a job (nothing if a live job holds its unique key).
    EnqueueJob {
        job: jobs::NewJob,
        now: i64,
        /// Where to put the stored job (`None` if not inserted), when the caller wants it.
        out: Option<jobs::Slot<Option<jobs::Job>>>,
    },
    /// Leases due jobs; the claimed ones are put in `out`.
    ClaimJobs {
        claim: jobs::Claim,
        out: jobs::Slot<Vec<jobs::Job>>,
    },
    /// Ends an attempt; `out` says whether the lease was still the worker's.
    FinishJob {
        id: String,
        owner: String,
        outcome: jobs::Outcome,
        now: i64,
        out: jobs::Slot<bool>,
    },
    /// Ends attempts of `ids` that succeeded without a result, in one statement; `out` gets the
    /// ids whose lease was still `owner`'s.
    SucceedJobs {
        ids: Vec<String>,
        owner: String,
        now: i64,
        out: jobs::Slot<Vec<String>>,
    },
    HeartbeatJob {
        id: String,
        owner: String,
        lease_until: i64,
        out: jobs::Slot<bool>,
    },
    ReleaseJobs {
        owner: String,
        now: i64,
    },
    BuryExpiredJobs {
        now: i64,
    },
    /// Deletes jobs in `state` that finished before `cutoff`; the count goes to `out`.
    PruneJobs {
        state: String,
        cutoff: i64,
        out: jobs::Slot<u64>,
    },
    ReviveJob {
        id: String,
        now: i64,
        out: jobs::Slot<bool>,
    },
    PutParam {
        id: String,
        value: String,
        /// PocketBase's date text (`_params` keeps its times as text).
        now: String,
    },
    PutCron(Box<system::Cron>),
    DeleteCron {
        id: String,
        out: jobs::Slot<bool>,
    },
    PutApiKey(Box<system::ApiKey>),
    DeleteApiKey {
        id: String,
        out: jobs::Slot<bool>,
    },
    /// Moves a cron's last tick to `tick` and enqueues `job`, unless the tick already fired.
    FireCron {
        id: String,
        tick: i64,
        job: Box<jobs::NewJob>,
        now: i64,
        out: jobs::Slot<bool>,
    },
}

impl Op {
    /// Whether this changes a collection's definition (other instances must reload).
    pub(crate) fn changes_schema(&self) -> bool {
        matches!(
            self,
            Op::CreateCollection(_) | Op::UpdateCollection { .. } | Op::DeleteCollection(_)
        )
    }

    /// Whether this operation, alone in its unit, is correct as autocommitted statements: each
    /// of its statements stands on its own (a claim's sweep of expired leases and the claim
    /// itself may commit apart), and it produces no change for the feed.
    pub(crate) fn autocommit(&self) -> bool {
        matches!(
            self,
            Op::EnqueueJob { .. }
                | Op::ClaimJobs { .. }
                | Op::FinishJob { .. }
                | Op::SucceedJobs { .. }
                | Op::HeartbeatJob { .. }
        )
    }
}

/// Writes that commit together or not at all (see the module docs).
pub struct Work {
    pub(crate) dialect: &'static dyn Dialect,
    pub(crate) ops: Vec<Op>,
}

impl Work {
    pub(crate) fn new(dialect: &'static dyn Dialect) -> Work {
        Work { dialect, ops: Vec::new() }
    }

    pub(crate) fn push(&mut self, op: Op) -> &mut Work {
        self.ops.push(op);
        self
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn create_collection(&mut self, c: &Collection) -> &mut Work {
        self.push(Op::CreateCollection(Box::new(c.clone())))
    }

    /// Migrates the table of `old` to `new` (fields matched by id keep their data).
    pub fn update_collection(&mut self, old: &Collection, new: &Collection) -> &mut Work {
        self.push(Op::UpdateCollection { old: Box::new(old.clone()), new: Box::new(new.clone()) })
    }

    pub fn delete_collection(&mut self, c: &Collection) -> &mut Work {
        self.push(Op::DeleteCollection(Box::new(c.clone())))
    }

    pub fn truncate_collection(&mut self, c: &Collection) -> &mut Work {
        self.push(Op::Truncate(Box::new(c.clone())))
    }

    /// Inserts a record; with `check`, the rule must match the new row or nothing commits.
    pub fn insert_record(
        &mut self,
        coll: &Arc<Collection>,
        row: Row,
        check: Option<RuleCheck<'_>>,
    ) -> Result<&mut Work, StoreError> {
        let check = check.map(|c| check_sql(self.dialect, coll, &row, c)).transpose()?;
        Ok(self.push(Op::InsertRecord { coll: coll.clone(), row, check }))
    }

    /// Replaces the stored values of record `id` (every field of `row`); `check` as for
    /// inserts; `NotFound` if there is no such record.
    pub fn update_record(
        &mut self,
        coll: &Arc<Collection>,
        id: &str,
        row: Row,
        check: Option<RuleCheck<'_>>,
    ) -> Result<&mut Work, StoreError> {
        let check = check.map(|c| check_sql(self.dialect, coll, &row, c)).transpose()?;
        Ok(self.push(Op::UpdateRecord { coll: coll.clone(), id: id.to_string(), row, check }))
    }

    /// Enqueues a job with this unit: it exists exactly when the unit commits.
    pub fn enqueue_job(&mut self, job: jobs::NewJob) -> &mut Work {
        let now = chrono::Utc::now().timestamp_millis();
        self.push(Op::EnqueueJob { job, now, out: None })
    }

    /// Adds a job and puts the stored job in `out` (`None`: a live job holds its unique key).
    pub fn enqueue_job_returning(
        &mut self,
        job: jobs::NewJob,
        out: jobs::Slot<Option<jobs::Job>>,
    ) -> &mut Work {
        let now = chrono::Utc::now().timestamp_millis();
        self.push(Op::EnqueueJob { job, now, out: Some(out) })
    }

    /// Deletes a record with relation semantics for the records referencing it (cascade,
    /// block on a required relation, or remove the id): every record touched is a change.
    pub fn delete_record(
        &mut self,
        schema: Arc<Schema>,
        coll: &Arc<Collection>,
        id: &str,
    ) -> &mut Work {
        self.push(Op::DeleteRecord { schema, coll: coll.clone(), id: id.to_string() })
    }
}

/// The statement counting whether the written row `row` of `coll` satisfies `check.rule`.
fn check_sql(
    d: &'static dyn Dialect,
    coll: &Arc<Collection>,
    row: &Row,
    check: RuleCheck<'_>,
) -> Result<Check, StoreError> {
    let mut c = query::Compiler::new(d, check.schema, check.info);
    let id = row.get("id").and_then(serde_json::Value::as_str).unwrap_or_default();
    let idp = c.param(Param::Text(id.into()));
    let rule = c.rule(coll, "t", check.rule)?;
    let sql = format!(
        "SELECT COUNT(*) FROM {} t WHERE t.\"id\" = {idp} AND {rule}",
        quote_ident(&coll.name)
    );
    Ok((sql, c.params))
}

/// Runs every operation of a unit of work in the caller's open transaction (the engine commits
/// or rolls back); returns the changes written to the outbox, in order.
pub(crate) async fn run<T: Tx>(
    tx: &mut T,
    instance: &str,
    ops: &[Op],
) -> Result<Vec<Change>, StoreError> {
    let mut pending = Vec::new();
    for op in ops {
        match op {
            Op::CreateCollection(c) => ddl::create_collection(tx, c).await?,
            Op::UpdateCollection { old, new } => ddl::update_collection(tx, old, new).await?,
            Op::DeleteCollection(c) => ddl::delete_collection(tx, c).await?,
            Op::Truncate(c) => {
                tx.exec(&format!("DELETE FROM {}", quote_ident(&c.name)), &[]).await?;
            }
            Op::InsertRecord { coll, row, check } => {
                let sql = schema_sql::insert_sql(tx.dialect(), coll);
                tx.write(coll, &sql, &stored::row_params(coll, row)).await?;
                run_check(tx, check.as_ref()).await?;
                pending.push(
                    Pending::new(&coll.id, changes::id_of(row), Action::Create).with_record(row),
                );
            }
            Op::UpdateRecord { coll, id, row, check } => {
                let sql = schema_sql::update_sql(tx.dialect(), coll);
                let mut params = stored::row_params(coll, row);
                params.push(Param::Text(id.clone()));
                if tx.write(coll, &sql, &params).await? == 0 {
                    return Err(StoreError::NotFound);
                }
                run_check(tx, check.as_ref()).await?;
                pending.push(Pending::new(&coll.id, id, Action::Update).with_record(row));
            }
            Op::DeleteRecord { schema, coll, id } => {
                pending.extend(cascade::delete(tx, schema, coll, id).await?);
            }
            Op::EnqueueJob { job, now, out } => {
                let stored = jobs::enqueue(tx, job, *now, out.is_some()).await?;
                if let Some(out) = out {
                    *out.lock().unwrap_or_else(|p| p.into_inner()) = stored;
                }
            }
            Op::ClaimJobs { claim, out } => {
                let claimed = jobs::claim(tx, claim).await?;
                *out.lock().unwrap_or_else(|p| p.into_inner()) = claimed;
            }
            Op::FinishJob { id, owner, outcome, now, out } => {
                let held = jobs::finish(tx, id, owner, outcome, *now).await?;
                *out.lock().unwrap_or_else(|p| p.into_inner()) = held;
            }
            Op::SucceedJobs { ids, owner, now, out } => {
                let held = jobs::succeed_many(tx, ids, owner, *now).await?;
                *out.lock().unwrap_or_else(|p| p.into_inner()) = held;
            }
            Op::HeartbeatJob { id, owner, lease_until, out } => {
                let held = jobs::heartbeat(tx, id, owner, *lease_until).await?;
                *out.lock().unwrap_or_else(|p| p.into_inner()) = held;
            }
            Op::ReleaseJobs { owner, now } => {
                jobs::release(tx, owner, *now).await?;
            }
            Op::BuryExpiredJobs { now } => {
                jobs::bury_expired(tx, *now).await?;
            }
            Op::PruneJobs { state, cutoff, out } => {
                let n = jobs::prune(tx, state, *cutoff).await?;
                *out.lock().unwrap_or_else(|p| p.into_inner()) = n;
            }
            Op::ReviveJob { id, now, out } => {
                let done = jobs::revive(tx, id, *now).await?;
                *out.lock().unwrap_or_else(|p| p.into_inner()) = done;
            }
            Op::PutParam { id, value, now } => system::put_param(tx, id, value, now).await?,
            Op::PutCron(c) => system::put_cron(tx, c).await?,
            Op::DeleteCron { id, out } => {
                let existed = system::delete_cron(tx, id).await?;
                *out.lock().unwrap_or_else(|p| p.into_inner()) = existed;
            }
            Op::PutApiKey(k) => system::put_api_key(tx, k).await?,
            Op::DeleteApiKey { id, out } => {
                let existed = system::delete_api_key(tx, id).await?;
                *out.lock().unwrap_or_else(|p| p.into_inner()) = existed;
            }
            Op::FireCron { id, tick, job, now, out } => {
                let fired = system::fire_cron(tx, id, *tick, job, *now).await?;
                *out.lock().unwrap_or_else(|p| p.into_inner()) = fired;
            }
        }
    }
    let changes = write_changes(tx, instance, pending).await?;
    crate::store::webhooks::enqueue(tx, ops, &changes).await?;
    Ok(changes)
}

/// `RuleFailed` when the check counts 0 (the caller rolls back).
async fn run_check<T: Tx>(tx: &mut T, check: Option<&Check>) -> Result<(), StoreError> {
    if let Some((sql, params)) = check {
        if tx.int(sql, params).await? == 0 {
            return Err(StoreError::RuleFailed);
        }
    }
    Ok(())
}

/// Writes the outbox rows of `pending`; returns them positioned.
async fn write_changes<T: Tx>(
    tx: &mut T,
    instance: &str,
    pending: Vec<Pending>,
) -> Result<Vec<Change>, StoreError> {
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("{} RETURNING pos", changes::insert_sql(tx.dialect(), 1));
    let mut out = Vec::with_capacity(pending.len());
    for p in pending {
        let pos = tx.int(&sql, &p.params(instance)).await?;
        out.push(p.into_change(pos));
    }
    Ok(out)
}

#[cfg(test)]
#[path = "work_tests.rs"]
mod tests;
