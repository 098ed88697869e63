//! Background jobs as a use case: enqueueing (over the API, superusers only for now; from other
//! use cases inside their unit of work), reading and operating the queue, and the store calls
//! the runner (`jobs/`) makes. Input is checked here: kind and queue names, payload size,
//! priorities, attempts, delays.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::model::request::RequestInfo;
use crate::model::ErrorCode;
use crate::service::apikeys::require_scope;
use crate::service::{error_entry, Result, Service, ServiceError};
use crate::store::jobs::{Claim, Job, NewJob, Outcome};

/// The largest payload accepted (bytes of JSON).
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// Attempts when the request does not say.
pub const DEFAULT_MAX_ATTEMPTS: i64 = 5;
/// The most attempts a job may ask for.
pub const MAX_ATTEMPTS: i64 = 100;
/// How long succeeded jobs are kept (FIXME(#15): from the settings).
pub const SUCCEEDED_RETENTION: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);
/// Kinds only the server's own producers enqueue.
const RESERVED_KINDS: [&str; 3] = [
    crate::store::webhooks::WEBHOOK,
    crate::service::files::FILES_DELETE,
    crate::service::files::FILES_SWEEP,
];
/// The furthest into the future a job may be scheduled (one year, in ms).
/// The most jobs one `POST /api/jobs/batch` enqueues.
pub const MAX_BATCH: usize = 1000;
pub const MAX_DELAY_MS: i64 = 366 * 24 * 3600 * 1000;

/// `POST /api/jobs`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnqueueRequest {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub queue: Option<String>,
    #[serde(default)]
    pub payload: Option<Value>,
    #[serde(default)]
    pub priority: Option<i64>,
    /// Unix milliseconds.
    #[serde(default)]
    pub run_at: Option<i64>,
    /// Milliseconds from now (instead of `runAt`).
    #[serde(default)]
    pub delay: Option<i64>,
    #[serde(default)]
    pub max_attempts: Option<i64>,
    #[serde(default)]
    pub unique_key: Option<String>,
}

/// `POST /api/jobs/claim`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaimRequest {
    #[serde(default)]
    pub queue: Option<String>,
    #[serde(default)]
    pub kinds: Option<Vec<String>>,
    #[serde(default)]
    pub max: Option<i64>,
    /// Seconds.
    #[serde(default)]
    pub lease: Option<i64>,
}

/// The body of a worker's heartbeat, complete and fail calls.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeaseRequest {
    /// The token the claim returned with the job.
    #[serde(default)]
    pub lease: String,
    #[serde(default)]
    pub extend: Option<i64>,
    #[serde(default)]
    pub result: Option<Value>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub retry_in: Option<i64>,
}

/// A worker's call on a job whose lease is no longer its own (it expired and another worker
/// took the job, or the job finished).
fn lease_held(held: bool) -> Result<()> {
    if held {
        return Ok(());
    }
    let data = Map::from_iter([(
        "lease".to_string(),
        error_entry(
            ErrorCode::InvalidValue,
            "The lease is not held: it expired, or the job is not running.",
        ),
    )]);
    Err(ServiceError::fields("The job's lease is not yours.", data))
}

/// The delay before retrying after the `attempts`-th failed attempt: `base_ms` doubled per
/// attempt, capped at `max_ms`, with ±25 % jitter (so retries of many jobs spread out).
pub fn retry_delay(attempts: i64, base_ms: i64, max_ms: i64) -> i64 {
    let exp = u32::try_from(attempts.clamp(1, 40) - 1).unwrap_or(0);
    let base = base_ms.saturating_mul(2i64.saturating_pow(exp)).min(max_ms);
    let jitter = 0.75 + rand::random::<f64>() * 0.5;
    (base as f64 * jitter) as i64
}

/// `^[a-z][a-z0-9_.-]{0,63}$`: kind and queue names.
fn valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_.-".contains(c))
}

impl EnqueueRequest {
    /// The job to store, or the 400 naming each bad field.
    pub fn into_job(self, now: i64) -> Result<NewJob> {
        let mut data = Map::new();
        let mut bad = |field: &str, code: ErrorCode, message: &str| {
            data.insert(field.to_string(), error_entry(code, message));
        };
        if self.kind.is_empty() {
            bad("kind", ErrorCode::Required, "Cannot be blank.");
        } else if !valid_name(&self.kind) {
            bad(
                "kind",
                ErrorCode::MatchInvalid,
                "Must be lowercase letters, digits, _ . - (at most 64).",
            );
        }
        let queue = self.queue.unwrap_or_else(|| "default".into());
        if !valid_name(&queue) {
            bad(
                "queue",
                ErrorCode::MatchInvalid,
                "Must be lowercase letters, digits, _ . - (at most 64).",
            );
        }
        let payload = self.payload.unwrap_or_else(|| json!({}));
        if payload.to_string().len() > MAX_PAYLOAD_BYTES {
            bad(
                "payload",
                ErrorCode::JsonSizeLimit,
                &format!("The payload must be at most {MAX_PAYLOAD_BYTES} bytes of JSON."),
            );
        }
        // Built-in kinds: payloads checked now rather than failing attempt after attempt; the
        // server's own producers' kinds are not for the API.
        if self.kind == crate::service::mail::EMAIL {
            if let Err(errors) = crate::service::mail::EmailJob::check(&payload) {
                data.insert("payload".into(), Value::Object(errors));
            }
        } else if RESERVED_KINDS.contains(&self.kind.as_str()) {
            bad(
                "kind",
                ErrorCode::InvalidValue,
                "This kind is enqueued by the server itself, not over the API.",
            );
        }
        let mut bad = |field: &str, code: ErrorCode, message: &str| {
            data.insert(field.to_string(), error_entry(code, message));
        };
        let priority = self.priority.unwrap_or(0);
        if !(-1000..=1000).contains(&priority) {
            bad("priority", ErrorCode::InvalidValue, "Must be between -1000 and 1000.");
        }
        let max_attempts = self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        if !(1..=MAX_ATTEMPTS).contains(&max_attempts) {
            bad(
                "maxAttempts",
                ErrorCode::InvalidValue,
                &format!("Must be between 1 and {MAX_ATTEMPTS}."),
            );
        }
        let run_at = match (self.run_at, self.delay) {
            (Some(_), Some(_)) => {
                bad("delay", ErrorCode::InvalidValue, "Give runAt or delay, not both.");
                now
            }
            (Some(at), None) => at.max(now),
            (None, Some(d)) if !(0..=MAX_DELAY_MS).contains(&d) => {
                bad("delay", ErrorCode::InvalidValue, "Must be between 0 and one year (ms).");
                now
            }
            (None, Some(d)) => now + d,
            (None, None) => now,
        };
        if run_at > now + MAX_DELAY_MS {
            bad("runAt", ErrorCode::InvalidValue, "Must be within a year from now.");
        }
        if let Some(k) = &self.unique_key {
            if k.is_empty() || k.len() > 255 {
                bad("uniqueKey", ErrorCode::InvalidValue, "Must be 1 to 255 characters.");
            }
        }
        if !data.is_empty() {
            return Err(ServiceError::fields("Failed to enqueue the job.", data));
        }
        Ok(NewJob {
            id: crate::util::random_from(b"abcdefghijklmnopqrstuvwxyz0123456789", 15),
            queue,
            kind: self.kind,
            payload,
            priority,
            run_at,
            max_attempts,
            unique_key: self.unique_key,
        })
    }
}

impl Service {
    /// `POST /api/jobs`: the stored job (for a unique key already live: that job).
    pub async fn enqueue_job(&self, req: EnqueueRequest, info: &RequestInfo) -> Result<Job> {
        require_scope(info, "jobs")?;
        let job = req.into_job(chrono::Utc::now().timestamp_millis())?;
        let mut stored = self.store_jobs(vec![job]).await?;
        stored.pop().ok_or_else(|| ServiceError::Internal("an enqueued job is missing".into()))
    }

    /// `POST /api/jobs/batch {"jobs": [...]}`: up to `MAX_BATCH` jobs in one transaction, all
    /// or none; a bad one is a 400 naming it (`jobs.3.kind`).
    pub async fn enqueue_jobs(
        &self,
        reqs: Vec<EnqueueRequest>,
        info: &RequestInfo,
    ) -> Result<Vec<Job>> {
        require_scope(info, "jobs")?;
        if reqs.is_empty() || reqs.len() > MAX_BATCH {
            let mut data = Map::new();
            let message = format!("Must have 1 to {MAX_BATCH} jobs.");
            data.insert("jobs".into(), error_entry(ErrorCode::InvalidValue, &message));
            return Err(ServiceError::fields("Failed to enqueue the jobs.", data));
        }
        let now = chrono::Utc::now().timestamp_millis();
        let mut jobs = Vec::with_capacity(reqs.len());
        let mut bad = Map::new();
        for (i, req) in reqs.into_iter().enumerate() {
            match req.into_job(now) {
                Ok(job) => jobs.push(job),
                Err(ServiceError::BadRequest { data, .. }) => {
                    bad.insert(i.to_string(), Value::Object(data));
                }
                Err(e) => return Err(e),
            }
        }
        if !bad.is_empty() {
            let mut data = Map::new();
            data.insert("jobs".into(), Value::Object(bad));
            return Err(ServiceError::fields("Failed to enqueue the jobs.", data));
        }
        self.store_jobs(jobs).await
    }

    /// Stores checked jobs in one transaction; for a job whose unique key a live job holds,
    /// that job.
    async fn store_jobs(&self, jobs: Vec<NewJob>) -> Result<Vec<Job>> {
        let keys: Vec<Option<String>> = jobs.iter().map(|j| j.unique_key.clone()).collect();
        let stored = self.store.enqueue_jobs(jobs).await?;
        self.jobs_ready().notify_one();
        let mut out = Vec::with_capacity(stored.len());
        for (job, key) in stored.into_iter().zip(keys) {
            let job = match (job, key) {
                (Some(job), _) => Some(job),
                // Not inserted: a live job holds the unique key (maybe one of this batch).
                (None, Some(k)) => self.store.job_by_unique_key(&k).await?,
                (None, None) => None,
            };
            out.push(
                job.ok_or_else(|| ServiceError::Internal("an enqueued job is missing".into()))?,
            );
        }
        Ok(out)
    }

    /// `GET /api/jobs/{id}`.
    pub async fn view_job(&self, id: &str, info: &RequestInfo) -> Result<Job> {
        require_scope(info, "jobs")?;
        self.store.job(id).await?.ok_or_else(ServiceError::not_found)
    }

    /// `GET /api/jobs?queue=&state=&kind=&page=&perPage=`.
    pub async fn list_jobs(
        &self,
        queue: Option<&str>,
        state: Option<&str>,
        kind: Option<&str>,
        page: i64,
        per_page: i64,
        info: &RequestInfo,
    ) -> Result<Value> {
        require_scope(info, "jobs")?;
        let (page, per_page) = (page.max(1), per_page.clamp(1, 500));
        let (items, total) =
            self.store.list_jobs(queue, state, kind, per_page, (page - 1) * per_page).await?;
        Ok(json!({
            "items": items, "page": page, "perPage": per_page, "totalItems": total,
            "totalPages": (total + per_page - 1) / per_page,
        }))
    }

    /// `GET /api/jobs/stats`: jobs per queue and state.
    pub async fn job_stats(&self, info: &RequestInfo) -> Result<Value> {
        require_scope(info, "jobs")?;
        let mut queues = Map::new();
        for (queue, state, n) in self.store.job_counts().await? {
            let entry = queues.entry(queue).or_insert_with(|| json!({}));
            entry[state] = json!(n);
        }
        let now = chrono::Utc::now().timestamp_millis();
        for a in self.store.job_activity(now).await? {
            let entry = queues.entry(a.queue).or_insert_with(|| json!({}));
            entry["oldestPendingAgeMs"] = json!(a.oldest_due.map_or(0, |t| (now - t).max(0)));
            entry["succeededLastMinute"] = json!(a.succeeded);
            entry["failedLastMinute"] = json!(a.failed);
        }
        Ok(json!({ "queues": queues }))
    }

    /// `POST /api/jobs/{id}/retry`: a dead job runs again with fresh attempts.
    pub async fn retry_job(&self, id: &str, info: &RequestInfo) -> Result<Job> {
        require_scope(info, "jobs")?;
        if !self.store.revive_job(id).await? {
            return match self.store.job(id).await? {
                None => Err(ServiceError::not_found()),
                Some(_) => Err(ServiceError::bad("Only dead jobs can be retried.")),
            };
        }
        self.jobs_ready().notify_one();
        self.store.job(id).await?.ok_or_else(ServiceError::not_found)
    }

    /// `POST /api/jobs/claim {queue?, kinds?, max?, lease?}` for an external worker: up to `max`
    /// (1–100, default 1) due jobs of `queue` (default `default`) and `kinds` (any if empty),
    /// leased for `lease` seconds (1–3600, default 30). Each job carries the `lease` token
    /// the worker sends back with its heartbeats and outcome.
    pub async fn claim_for_worker(&self, req: ClaimRequest, info: &RequestInfo) -> Result<Value> {
        require_scope(info, "jobs")?;
        let mut data = Map::new();
        let queue = req.queue.unwrap_or_else(|| "default".into());
        if !valid_name(&queue) {
            data.insert(
                "queue".into(),
                error_entry(
                    ErrorCode::MatchInvalid,
                    "Must be lowercase letters, digits, _ . - (at most 64).",
                ),
            );
        }
        let kinds = req.kinds.unwrap_or_default();
        if kinds.len() > 100 || kinds.iter().any(|k| !valid_name(k)) {
            data.insert(
                "kinds".into(),
                error_entry(ErrorCode::InvalidValue, "At most 100 valid kind names."),
            );
        }
        let max = req.max.unwrap_or(1);
        if !(1..=100).contains(&max) {
            data.insert(
                "max".into(),
                error_entry(ErrorCode::InvalidValue, "Must be between 1 and 100."),
            );
        }
        let lease = req.lease.unwrap_or(30);
        if !(1..=3600).contains(&lease) {
            data.insert(
                "lease".into(),
                error_entry(ErrorCode::InvalidValue, "Must be between 1 and 3600 seconds."),
            );
        }
        if !data.is_empty() {
            return Err(ServiceError::fields("Failed to claim jobs.", data));
        }
        let owner = format!("api-{}", crate::util::random_alnum(24));
        let now = chrono::Utc::now().timestamp_millis();
        let claim =
            Claim { queue, kinds, max, owner: owner.clone(), now, lease_until: now + lease * 1000 };
        let jobs = self.store.claim_jobs(claim).await?;
        let items: Vec<Value> = jobs
            .into_iter()
            .map(|j| {
                let mut v = serde_json::to_value(j).unwrap_or(Value::Null);
                v["lease"] = json!(owner);
                v
            })
            .collect();
        Ok(json!({ "items": items }))
    }

    /// `POST /api/jobs/{id}/heartbeat {lease, extend?}`: keeps the lease `extend` more seconds
    /// (1–3600, default 30).
    pub async fn heartbeat_for_worker(
        &self,
        id: &str,
        req: LeaseRequest,
        info: &RequestInfo,
    ) -> Result<()> {
        require_scope(info, "jobs")?;
        let extend = req.extend.unwrap_or(30);
        if !(1..=3600).contains(&extend) {
            let data = Map::from_iter([(
                "extend".to_string(),
                error_entry(ErrorCode::InvalidValue, "Must be between 1 and 3600 seconds."),
            )]);
            return Err(ServiceError::fields("Failed to extend the lease.", data));
        }
        let until = chrono::Utc::now().timestamp_millis() + extend * 1000;
        lease_held(self.store.heartbeat_job(id, &req.lease, until).await?)
    }

    /// `POST /api/jobs/{id}/complete {lease, result?}`.
    pub async fn complete_for_worker(
        &self,
        id: &str,
        req: LeaseRequest,
        info: &RequestInfo,
    ) -> Result<()> {
        require_scope(info, "jobs")?;
        if let Some(r) = &req.result {
            if r.to_string().len() > MAX_PAYLOAD_BYTES {
                let data = Map::from_iter([(
                    "result".to_string(),
                    error_entry(
                        ErrorCode::JsonSizeLimit,
                        &format!("The result must be at most {MAX_PAYLOAD_BYTES} bytes of JSON."),
                    ),
                )]);
                return Err(ServiceError::fields("Failed to complete the job.", data));
            }
        }
        lease_held(self.store.finish_job(id, &req.lease, Outcome::Succeeded(req.result)).await?)
    }

    /// `POST /api/jobs/{id}/fail {lease, error, retryIn?}`: retried after `retryIn` seconds
    /// (0–one year), or after the queue's backoff, while attempts remain; dead after.
    pub async fn fail_for_worker(
        &self,
        id: &str,
        req: LeaseRequest,
        info: &RequestInfo,
    ) -> Result<()> {
        require_scope(info, "jobs")?;
        let attempts = self.store.job(id).await?.ok_or_else(ServiceError::not_found)?.attempts;
        let delay_ms = match req.retry_in {
            Some(s) if !(0..=MAX_DELAY_MS / 1000).contains(&s) => {
                let data = Map::from_iter([(
                    "retryIn".to_string(),
                    error_entry(
                        ErrorCode::InvalidValue,
                        "Must be between 0 and one year (seconds).",
                    ),
                )]);
                return Err(ServiceError::fields("Failed to fail the job.", data));
            }
            Some(s) => s * 1000,
            None => retry_delay(attempts, 1000, 3_600_000),
        };
        let error = req.error.unwrap_or_else(|| "failed".into());
        let at = chrono::Utc::now().timestamp_millis() + delay_ms;
        lease_held(self.store.finish_job(id, &req.lease, Outcome::Failed { error, at }).await?)
    }

    // The server's own calls (no caller to check).

    /// Deletes jobs that succeeded more than `retention` ago (dead ones stay for operators).
    pub async fn prune_jobs(&self, retention: std::time::Duration) -> Result<u64> {
        self.purge_jobs("succeeded", retention).await
    }

    /// Deletes jobs in `state` (`succeeded` or `dead`) that finished more than `age` ago
    /// (`basalt jobs purge`).
    pub async fn purge_jobs(&self, state: &str, age: std::time::Duration) -> Result<u64> {
        if !matches!(state, "succeeded" | "dead") {
            return Err(ServiceError::bad("Only succeeded or dead jobs can be purged."));
        }
        let cutoff = chrono::Utc::now().timestamp_millis()
            - i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
        Ok(self.store.prune_jobs(state, cutoff).await?)
    }

    /// Jobs, newest first (`basalt jobs ls`).
    pub async fn jobs_for_cli(
        &self,
        queue: Option<&str>,
        state: Option<&str>,
        kind: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Job>> {
        Ok(self.store.list_jobs(queue, state, kind, limit.clamp(1, 10_000), 0).await?.0)
    }

    /// A dead job back to pending (`basalt jobs retry`); `false` if it is not dead.
    pub async fn revive_job(&self, id: &str) -> Result<bool> {
        Ok(self.store.revive_job(id).await?)
    }

    /// Jobs per (queue, state), for metrics.
    /// Per queue: the oldest due pending job's wait in ms (metrics).
    pub async fn job_waits(&self) -> Result<Vec<(String, i64)>> {
        let now = chrono::Utc::now().timestamp_millis();
        Ok(self
            .store
            .job_activity(now)
            .await?
            .into_iter()
            .map(|a| (a.queue, a.oldest_due.map_or(0, |t| (now - t).max(0))))
            .collect())
    }

    /// Woken when another instance signals new changes or jobs (PostgreSQL); `None` on SQLite.
    pub fn remote_jobs_signal(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        self.store.feed_signal()
    }

    pub async fn job_counts(&self) -> Result<Vec<(String, String, i64)>> {
        Ok(self.store.job_counts().await?)
    }

    pub async fn claim_jobs(&self, claim: Claim) -> Result<Vec<Job>> {
        Ok(self.store.claim_jobs(claim).await?)
    }

    /// When the next pending job of `queue` due after `now` (Unix ms) is due, if any.
    pub async fn next_job_due(&self, queue: &str, now: i64) -> Result<Option<i64>> {
        Ok(self.store.next_job_due(queue, now).await?)
    }

    /// Records several attempts' outcomes in one transaction; whether each lease was held.
    pub async fn finish_jobs(
        &self,
        owner: &str,
        outcomes: Vec<(String, Outcome)>,
    ) -> Result<Vec<bool>> {
        Ok(self.store.finish_jobs(owner, outcomes).await?)
    }

    pub async fn finish_job(&self, id: &str, owner: &str, outcome: Outcome) -> Result<bool> {
        Ok(self.store.finish_job(id, owner, outcome).await?)
    }

    pub async fn heartbeat_job(&self, id: &str, owner: &str, lease_until: i64) -> Result<bool> {
        Ok(self.store.heartbeat_job(id, owner, lease_until).await?)
    }

    pub async fn release_jobs(&self, owner: &str) -> Result<()> {
        Ok(self.store.release_jobs(owner).await?)
    }

    pub async fn bury_expired_jobs(&self) -> Result<()> {
        Ok(self.store.bury_expired_jobs().await?)
    }

    /// Wakes the runner: a job was enqueued on this instance.
    pub fn jobs_ready(&self) -> &tokio::sync::Notify {
        self.store.jobs_ready()
    }
}
