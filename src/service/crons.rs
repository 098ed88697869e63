//! Cron schedules: each tick of a standard five-field expression (UTC; `@hourly`, `@daily`…
//! too; six fields add seconds) enqueues one job of a kind with a payload. Managed over the API (superusers:
//! `GET /api/crons`, `PUT|DELETE /api/crons/{id}`, `POST /api/crons/{id}` runs one now, as
//! PocketBase's) and the CLI. The ticker (`jobs::cron`) fires due ticks through the store's
//! compare-and-set, so with several instances each tick enqueues exactly one job; ticks missed
//! while no instance ran fire once, not once per missed tick.

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron as Expr;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::model::request::RequestInfo;
use crate::model::ErrorCode;
use crate::service::collections::require_superuser;
use crate::service::jobs::{EnqueueRequest, MAX_PAYLOAD_BYTES};
use crate::service::{error_entry, Result, Service, ServiceError};
use crate::store::jobs::NewJob;
use crate::store::system::Cron;

/// Schedules in all.
pub const MAX_CRONS: usize = 1000;

/// `PUT /api/crons/{id}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CronRequest {
    #[serde(default)]
    pub expression: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub queue: Option<String>,
    #[serde(default)]
    pub payload: Option<Value>,
}

/// Parses a schedule: five fields (minute hour day-of-month month day-of-week), six with
/// seconds first (Basalt's extension: sub-minute schedules), or a macro (`@hourly`…).
pub fn parse_expression(expr: &str) -> std::result::Result<Expr, String> {
    let e = expr.trim();
    if e.is_empty() {
        return Err("Cannot be blank.".into());
    }
    let fields = e.split_whitespace().count();
    if !e.starts_with('@') && !(5..=6).contains(&fields) {
        return Err("Must have five fields (minute hour day-of-month month day-of-week), or six \
                    with seconds first."
            .into());
    }
    Expr::new(e)
        .with_seconds_optional()
        .parse()
        .map_err(|err| format!("Invalid cron expression: {err}."))
}

/// The latest tick of `expr` after `after` and not after `now` (ms), if any.
pub fn due_tick(expr: &Expr, after: i64, now: i64) -> Option<i64> {
    let mut t: DateTime<Utc> = Utc.timestamp_millis_opt(after).single()?;
    let mut last = None;
    // Bounded: a schedule missed for years fires once, without walking every minute.
    for _ in 0..100_000 {
        let next = expr.find_next_occurrence(&t, false).ok()?;
        if next.timestamp_millis() > now {
            break;
        }
        last = Some(next.timestamp_millis());
        t = next;
    }
    last
}

/// The next tick of `expr` after `after` (ms).
pub fn next_tick(expr: &Expr, after: i64) -> Option<i64> {
    let t: DateTime<Utc> = Utc.timestamp_millis_opt(after).single()?;
    expr.find_next_occurrence(&t, false).ok().map(|d| d.timestamp_millis())
}

fn cron_json(c: &Cron) -> Value {
    let next = parse_expression(&c.expression)
        .ok()
        .and_then(|e| next_tick(&e, c.last_tick.max(chrono::Utc::now().timestamp_millis())));
    json!({"id": c.id, "expression": c.expression, "kind": c.kind, "queue": c.queue,
           "payload": c.payload, "lastTick": c.last_tick, "nextTick": next})
}

fn missing() -> ServiceError {
    ServiceError::NotFound("Missing or invalid cron job.".into())
}

/// The job a tick (or a run-now) enqueues; `at` is its due time (a tick's time: one job per
/// tick is then visible in `runAt`).
pub fn tick_job(c: &Cron, at: i64) -> NewJob {
    NewJob {
        id: crate::util::random_from(b"abcdefghijklmnopqrstuvwxyz0123456789", 15),
        queue: c.queue.clone(),
        kind: c.kind.clone(),
        payload: c.payload.clone(),
        priority: 0,
        run_at: at,
        max_attempts: crate::service::jobs::DEFAULT_MAX_ATTEMPTS,
        unique_key: None,
    }
}

impl Service {
    /// `GET /api/crons`: PocketBase's `[{id, expression}]`, with Basalt's fields beside.
    pub async fn list_crons(&self, info: &RequestInfo) -> Result<Value> {
        require_superuser(info)?;
        Ok(Value::Array(self.store.crons().await?.iter().map(cron_json).collect()))
    }

    /// Every schedule (the ticker and the CLI).
    pub async fn crons(&self) -> Result<Vec<Cron>> {
        Ok(self.store.crons().await?)
    }

    /// `PUT /api/crons/{id}`: creates or replaces a schedule (a replaced one keeps its last
    /// tick, so it does not fire again for a tick it already fired).
    pub async fn put_cron(&self, id: &str, req: CronRequest, info: &RequestInfo) -> Result<Value> {
        require_superuser(info)?;
        let cron = self.check_cron(id, req).await?;
        self.store.put_cron(cron.clone()).await?;
        self.crons_changed.notify_waiters();
        Ok(cron_json(&cron))
    }

    /// Validates a schedule: `{field: error}` in a 400.
    pub async fn check_cron(&self, id: &str, req: CronRequest) -> Result<Cron> {
        let mut data = Map::new();
        let valid_id = !id.is_empty()
            && id.len() <= 100
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
        if !valid_id {
            data.insert(
                "id".into(),
                error_entry(ErrorCode::MatchInvalid, "Must be 1-100 letters, digits, _ - ."),
            );
        }
        if let Err(e) = parse_expression(&req.expression) {
            data.insert("expression".into(), error_entry(ErrorCode::InvalidValue, &e));
        }
        // The job's checks are the API's (kind and queue names, payload size, built-in kinds).
        let as_job = EnqueueRequest {
            kind: req.kind.clone(),
            queue: req.queue.clone(),
            payload: req.payload.clone(),
            ..EnqueueRequest::default()
        };
        let now = chrono::Utc::now().timestamp_millis();
        if let Err(ServiceError::BadRequest { data: job_errors, .. }) = as_job.into_job(now) {
            data.extend(job_errors);
        }
        let existing = self.store.crons().await?;
        let known = existing.iter().find(|c| c.id == id);
        if known.is_none() && existing.len() >= MAX_CRONS {
            data.insert(
                "id".into(),
                error_entry(ErrorCode::TooManyValues, &format!("At most {MAX_CRONS} schedules.")),
            );
        }
        if !data.is_empty() {
            return Err(ServiceError::fields("Failed to save the cron job.", data));
        }
        let payload = req.payload.unwrap_or_else(|| json!({}));
        debug_assert!(payload.to_string().len() <= MAX_PAYLOAD_BYTES);
        Ok(Cron {
            id: id.to_string(),
            expression: req.expression.trim().to_string(),
            kind: req.kind,
            queue: req.queue.unwrap_or_else(|| "default".into()),
            payload,
            last_tick: known.map_or(0, |c| c.last_tick),
            created: known.map_or(now, |c| c.created),
            updated: now,
        })
    }

    /// `DELETE /api/crons/{id}`.
    pub async fn delete_cron(&self, id: &str, info: &RequestInfo) -> Result<()> {
        require_superuser(info)?;
        if !self.store.delete_cron(id).await? {
            return Err(missing());
        }
        self.crons_changed.notify_waiters();
        Ok(())
    }

    /// `POST /api/crons/{id}`: enqueues the schedule's job now (ticks are unaffected).
    pub async fn run_cron(&self, id: &str, info: &RequestInfo) -> Result<()> {
        require_superuser(info)?;
        let crons = self.store.crons().await?;
        let cron = crons.iter().find(|c| c.id == id).ok_or_else(missing)?;
        let now = chrono::Utc::now().timestamp_millis();
        let mut w = self.store.work();
        w.enqueue_job(tick_job(cron, now));
        self.store.commit(w).await?;
        self.jobs_ready().notify_one();
        Ok(())
    }

    /// Fires `tick` of `cron` unless an instance did; whether this call fired it.
    pub async fn fire_cron(&self, cron: &Cron, tick: i64) -> Result<bool> {
        let fired = self.store.fire_cron(&cron.id, tick, tick_job(cron, tick)).await?;
        if fired {
            self.jobs_ready().notify_one();
        }
        Ok(fired)
    }

    /// Signalled when a schedule is saved or removed here (the ticker reloads at once).
    pub fn crons_changed(&self) -> &tokio::sync::Notify {
        &self.crons_changed
    }

    /// Saves a schedule (the CLI: no request, the operator is trusted).
    pub async fn put_cron_cli(&self, id: &str, req: CronRequest) -> Result<Cron> {
        let cron = self.check_cron(id, req).await?;
        self.store.put_cron(cron.clone()).await?;
        Ok(cron)
    }

    /// Removes a schedule (the CLI); whether it existed.
    pub async fn delete_cron_cli(&self, id: &str) -> Result<bool> {
        Ok(self.store.delete_cron(id).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).map(|d| d.timestamp_millis()).unwrap_or(0)
    }

    #[test]
    fn expressions_are_standard_five_fields() {
        assert!(parse_expression("*/5 * * * *").is_ok());
        assert!(parse_expression("@daily").is_ok());
        assert!(parse_expression("").is_err());
        assert!(parse_expression("* * * *").is_err());
        assert!(parse_expression("*/2 0 0 * * *").is_ok());
        assert!(parse_expression("0 0 0 * * * *").is_err());
        assert!(parse_expression("61 * * * *").is_err());
        assert!(parse_expression("nonsense").is_err());
    }

    #[test]
    fn the_latest_due_tick_fires_once() {
        let e = parse_expression("*/15 * * * *").unwrap();
        let after = ms("2026-01-01T10:00:00Z");
        assert_eq!(due_tick(&e, after, ms("2026-01-01T10:14:59Z")), None);
        assert_eq!(
            due_tick(&e, after, ms("2026-01-01T10:15:00Z")),
            Some(ms("2026-01-01T10:15:00Z"))
        );
        // Three ticks missed: only the last fires.
        assert_eq!(
            due_tick(&e, after, ms("2026-01-01T10:50:00Z")),
            Some(ms("2026-01-01T10:45:00Z"))
        );
        assert_eq!(next_tick(&e, after), Some(ms("2026-01-01T10:15:00Z")));
    }
}
