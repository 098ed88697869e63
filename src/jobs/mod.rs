//! The in-process job runner: claims due jobs of the kinds it has handlers for, runs each on
//! its own task under a timeout (a panic or a hang fails that attempt only), extends leases while
//! a job runs, and records the outcome: success, or a retry with exponential backoff and jitter,
//! or `dead` once the attempts are spent (the store decides). It wakes on a local enqueue, on
//! the change feed's signal from other instances (PostgreSQL), when the next delayed job is due,
//! and otherwise polls (expired leases, lost signals). On shutdown it stops
//! claiming, lets running jobs finish up to a grace period, then gives back the leases it holds.
//!
//! Kinds without a handler here stay for other workers. Must not: know HTTP.

pub mod cron;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, watch, Notify, Semaphore};

use crate::service::Service;
use crate::store::jobs::{Claim, Job, Outcome};

/// What a handler returns: a result to store, or why the attempt failed.
pub type HandlerResult = Result<Option<Value>, String>;
pub type HandlerFuture = Pin<Box<dyn Future<Output = HandlerResult> + Send>>;
/// A job kind's code.
pub type Handler = Arc<dyn Fn(Arc<Service>, Job) -> HandlerFuture + Send + Sync>;

/// How the runner works.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    pub queue: String,
    /// Jobs running at once.
    pub concurrency: usize,
    /// How long a claim holds a job; renewed every third of it while the job runs.
    pub lease: Duration,
    /// How often to look for due jobs when nothing wakes the runner.
    pub poll: Duration,
    /// An attempt running longer fails.
    pub attempt_timeout: Duration,
    /// The first retry's delay; doubled per attempt, capped at `max_backoff`, ±25 % jitter.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// How long shutdown waits for running jobs.
    pub grace: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            queue: "default".into(),
            concurrency: 8,
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            attempt_timeout: Duration::from_secs(300),
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(3600),
            grace: Duration::from_secs(10),
        }
    }
}

/// The delay before retrying after the `attempts`-th failed attempt.
pub fn backoff(cfg: &RunnerConfig, attempts: i64) -> Duration {
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let delay = crate::service::jobs::retry_delay(attempts, ms(cfg.backoff), ms(cfg.max_backoff));
    Duration::from_millis(u64::try_from(delay).unwrap_or(0))
}

/// The built-in kinds.
pub fn builtin_handlers() -> HashMap<String, Handler> {
    let mut h: HashMap<String, Handler> = HashMap::new();
    // Does nothing: health checks of the queue, benchmarks.
    h.insert("noop".into(), Arc::new(|_, _| Box::pin(async { Ok(None) })));
    // Files a committed write dropped, and folders of deleted records or collections.
    h.insert(
        crate::service::files::FILES_DELETE.into(),
        Arc::new(|svc, job| {
            Box::pin(async move { svc.run_files_delete(&job.payload).await.map(|()| None) })
        }),
    );
    h.insert(
        crate::service::mail::EMAIL.into(),
        Arc::new(|svc, job| {
            Box::pin(async move { svc.run_email(&job.payload).await.map(|()| None) })
        }),
    );
    h.insert(
        crate::store::webhooks::WEBHOOK.into(),
        Arc::new(|svc, job| Box::pin(async move { svc.run_webhook(&job.payload).await })),
    );
    h.insert(
        crate::service::files::FILES_SWEEP.into(),
        Arc::new(|svc, job| {
            Box::pin(async move { svc.run_files_sweep(&job.payload).await.map(|()| None) })
        }),
    );
    h
}

/// Runs jobs until `stop` turns true.
pub async fn run(
    svc: Arc<Service>,
    cfg: RunnerConfig,
    handlers: HashMap<String, Handler>,
    mut stop: watch::Receiver<bool>,
) {
    let owner = format!("runner-{}", crate::util::random_alnum(12));
    let handlers = Arc::new(handlers);
    let kinds: Vec<String> = handlers.keys().cloned().collect();
    let slots = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    // Each finished attempt wakes the loop: with a backlog, a free slot is work to claim now,
    // not at the next poll.
    let freed = Arc::new(Notify::new());
    // Outcomes go to one finisher that records all those waiting in one transaction: with
    // short jobs a transaction per job, not the jobs, is the limit. A slot is free again as
    // soon as its handler returns, so claiming the next jobs overlaps with recording the last
    // ones; outcomes not yet recorded are capped (`MAX_UNRECORDED` per slot) so a slow database
    // makes the runner claim less, not pile up results.
    let (done_tx, done_rx) = mpsc::unbounded_channel::<Done>();
    let unrecorded = Arc::new(AtomicUsize::new(0));
    let finisher = tokio::spawn(finish_batches(
        svc.clone(),
        owner.clone(),
        done_rx,
        freed.clone(),
        unrecorded.clone(),
    ));
    let max_unrecorded = cfg.concurrency.max(1) * MAX_UNRECORDED;
    let mut last_bury = tokio::time::Instant::now();
    // Other instances' enqueues (PostgreSQL): the change feed's signal, sent after their commit.
    let remote = svc.remote_jobs_signal();
    loop {
        if *stop.borrow() {
            break;
        }
        let free = if unrecorded.load(Ordering::Acquire) >= max_unrecorded {
            0
        } else {
            slots.available_permits()
        };
        let mut claimed = 0;
        if free > 0 {
            let now = chrono::Utc::now().timestamp_millis();
            let claim = Claim {
                queue: cfg.queue.clone(),
                kinds: kinds.clone(),
                max: free as i64,
                owner: owner.clone(),
                now,
                lease_until: now + cfg.lease.as_millis() as i64,
            };
            match svc.claim_jobs(claim).await {
                Ok(jobs) => {
                    claimed = jobs.len();
                    for job in jobs {
                        let Ok(permit) = slots.clone().acquire_owned().await else { break };
                        let (svc, cfg, owner, handlers, done, unrecorded, freed) = (
                            svc.clone(),
                            cfg.clone(),
                            owner.clone(),
                            handlers.clone(),
                            done_tx.clone(),
                            unrecorded.clone(),
                            freed.clone(),
                        );
                        tokio::spawn(async move {
                            let outcome = attempt(&svc, &cfg, &owner, &handlers, job).await;
                            if outcome.is_some() {
                                unrecorded.fetch_add(1, Ordering::AcqRel);
                            }
                            // The finisher gone (shutdown past its grace): the lease expires.
                            let _ = done.send(Done { outcome });
                            drop(permit);
                            freed.notify_one();
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "jobs: claiming failed; retrying"),
            }
        }
        if last_bury.elapsed() >= cfg.lease {
            last_bury = tokio::time::Instant::now();
            if let Err(e) = svc.bury_expired_jobs().await {
                tracing::warn!(error = %e, "jobs: burying expired leases failed");
            }
        }
        // More may be due at once: claim again right away while the slots keep filling.
        if claimed > 0 && claimed == free {
            continue;
        }
        // Nothing more due now: sleep until the next delayed job is due (or a poll, at most),
        // unless an enqueue, another instance's signal or a free slot wakes the loop first.
        let mut nap = cfg.poll;
        if free > 0 {
            let now = chrono::Utc::now().timestamp_millis();
            match svc.next_job_due(&cfg.queue, now).await {
                Ok(Some(at)) => {
                    nap = nap.min(Duration::from_millis(u64::try_from(at - now).unwrap_or(0)))
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "jobs: reading the next due time failed"),
            }
        }
        let remote = async {
            match &remote {
                Some(n) => n.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = svc.jobs_ready().notified() => {}
            _ = remote => {}
            _ = freed.notified() => {}
            _ = tokio::time::sleep(nap) => {}
            _ = stop.changed() => {}
        }
    }
    // Shutdown: no more claims; running jobs get the grace period, then their leases go back.
    let all = u32::try_from(cfg.concurrency.max(1)).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(cfg.grace, slots.acquire_many(all)).await;
    // The outcomes of the jobs that ended get recorded before the leases go back (a job still
    // running past the grace keeps its sender: wait for the count, not for the channel).
    drop(done_tx);
    let deadline = tokio::time::Instant::now() + FINISH_GRACE;
    while unrecorded.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
        let _ = tokio::time::timeout(Duration::from_millis(20), freed.notified()).await;
    }
    finisher.abort();
    if let Err(e) = svc.release_jobs(&owner).await {
        tracing::warn!(error = %e, "jobs: giving back leases failed; they expire instead");
    }
}

/// One attempt: the handler on its own task (a panic is a failure), under the timeout, with
/// the lease renewed while it runs; returns the outcome to record.
async fn attempt(
    svc: &Arc<Service>,
    cfg: &RunnerConfig,
    owner: &str,
    handlers: &HashMap<String, Handler>,
    job: Job,
) -> Option<(String, Outcome)> {
    let handler = handlers.get(&job.kind).cloned()?;
    let (id, attempts) = (job.id.clone(), job.attempts);
    let mut task = tokio::spawn(handler(svc.clone(), job));
    let renew_every = cfg.lease / 3;
    let deadline = tokio::time::sleep(cfg.attempt_timeout);
    tokio::pin!(deadline);
    let result: HandlerResult = loop {
        tokio::select! {
            res = &mut task => break match res {
                Ok(r) => r,
                Err(e) if e.is_panic() => Err("the handler panicked".into()),
                Err(e) => Err(format!("the handler stopped: {e}")),
            },
            _ = &mut deadline => {
                task.abort();
                break Err(format!("timed out after {:?}", cfg.attempt_timeout));
            }
            _ = tokio::time::sleep(renew_every) => {
                let until = chrono::Utc::now().timestamp_millis() + cfg.lease.as_millis() as i64;
                match svc.heartbeat_job(&id, owner, until).await {
                    Ok(true) => {}
                    // The lease is gone (another worker has the job): stop this attempt.
                    Ok(false) => {
                        task.abort();
                        return None;
                    }
                    Err(e) => tracing::warn!(job = %id, error = %e, "jobs: renewing a lease failed"),
                }
            }
        }
    };
    let outcome = match result {
        Ok(r) => Outcome::Succeeded(r),
        Err(error) => {
            let at =
                chrono::Utc::now().timestamp_millis() + backoff(cfg, attempts).as_millis() as i64;
            tracing::info!(job = %id, attempts, error, "jobs: an attempt failed");
            Outcome::Failed { error, at }
        }
    };
    Some((id, outcome))
}

/// An attempt's end, travelling to the finisher.
struct Done {
    /// `None`: nothing to record (the lease was lost, or no handler).
    outcome: Option<(String, Outcome)>,
}

/// Outcomes waiting to be recorded, per slot, before the runner stops claiming.
const MAX_UNRECORDED: usize = 4;

/// How long shutdown waits for the last outcomes to be recorded.
const FINISH_GRACE: Duration = Duration::from_secs(5);

/// Records outcomes as they come, all those waiting in one transaction (at most `BATCH`).
async fn finish_batches(
    svc: Arc<Service>,
    owner: String,
    mut rx: mpsc::UnboundedReceiver<Done>,
    freed: Arc<Notify>,
    unrecorded: Arc<AtomicUsize>,
) {
    const BATCH: usize = 512;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(d) => batch.push(d),
                Err(_) => break,
            }
        }
        let outcomes: Vec<(String, Outcome)> =
            batch.iter_mut().filter_map(|d| d.outcome.take()).collect();
        if !outcomes.is_empty() {
            let n = outcomes.len();
            let ids: Vec<String> = outcomes.iter().map(|(id, _)| id.clone()).collect();
            match svc.finish_jobs(&owner, outcomes).await {
                Ok(held) => {
                    for (id, held) in ids.iter().zip(held) {
                        if !held {
                            tracing::info!(job = %id, "jobs: finished after losing the lease; ignored");
                        }
                    }
                }
                // Not recorded: the leases expire and the jobs run again (at least once).
                Err(e) => {
                    tracing::warn!(error = %e, jobs = ids.len(), "jobs: recording outcomes failed")
                }
            }
            unrecorded.fetch_sub(n, Ordering::AcqRel);
        }
        drop(batch);
        freed.notify_one();
    }
}
