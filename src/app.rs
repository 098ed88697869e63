//! Composition root: opens the store, builds the service and the router, serves until a shutdown
//! signal, then lets in-flight requests finish and checkpoints the database.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::files::{FileStore, S3Config};
use crate::http::metrics::Metrics;
use crate::http::{router::router, AppState};
use crate::jobs;
use crate::realtime::{self, Hub};
use crate::service::{Service, ServiceError};
use crate::store::Store;

/// A built application bound to its port, ready to serve.
pub struct App {
    pub svc: Arc<Service>,
    jobs: jobs::RunnerConfig,
    /// This app's own metrics recorder (never the process-wide one: tests run many apps).
    metrics: Arc<Metrics>,
    listener: TcpListener,
}

/// How often recorded latencies are folded into their histogram buckets.
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot start: {0}")]
    Service(#[from] ServiceError),
    #[error("cannot open the database: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot open the file storage: {0}")]
    Files(#[from] crate::files::FileError),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Opens the data directory and the core service without binding a port (CLI commands).
pub async fn open_service(config: &Config) -> Result<Arc<Service>, AppError> {
    let files = file_store(config)?;
    let store = Arc::new(Store::open(&config.db).await?);
    let outbound = crate::service::Outbound {
        sendmail: config.sendmail.clone(),
        webhooks_allow: config.webhooks_allow.clone(),
    };
    Ok(Arc::new(Service::new(store, files, outbound).await?))
}

/// Where uploaded files live: the S3 bucket when one is configured, else `<dir>/storage`.
pub fn file_store(config: &Config) -> Result<FileStore, AppError> {
    match &config.s3 {
        Some(s3) => Ok(FileStore::s3(&S3Config {
            endpoint: s3.endpoint.clone(),
            bucket: s3.bucket.clone(),
            region: s3.region.clone(),
            access_key: s3.access_key.clone(),
            secret: s3.secret.expose().to_string(),
            force_path_style: s3.force_path_style,
        })?),
        None => Ok(FileStore::local(&config.dir)?),
    }
}

impl App {
    pub async fn build(config: &Config) -> Result<App, AppError> {
        let svc = open_service(config).await?;
        let listener = TcpListener::bind(config.http)
            .await
            .map_err(|source| AppError::Bind { addr: config.http, source })?;
        let token = config.metrics_token.as_ref().map(|t| t.expose().to_string());
        let metrics = Arc::new(Metrics::new(token));
        let jobs = jobs::RunnerConfig { lease: config.jobs_lease, ..jobs::RunnerConfig::default() };
        Ok(App { svc, jobs, metrics, listener })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves; in-flight requests finish first.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let hub = Arc::new(Hub::default());
        let app = router(AppState {
            svc: self.svc.clone(),
            metrics: self.metrics.clone(),
            hub: hub.clone(),
        });
        let metrics = self.metrics.clone();
        // Background tasks the App owns; all stop when serving stops.
        let upkeep = tokio::spawn(async move {
            let mut every = tokio::time::interval(METRICS_UPKEEP);
            loop {
                every.tick().await;
                metrics.upkeep();
            }
        });
        let pruner = tokio::spawn(prune_changes(self.svc.clone()));
        let dispatch = tokio::spawn(realtime::run_dispatch(hub.clone(), self.svc.clone()));
        let (stop_jobs, jobs_stop) = tokio::sync::watch::channel(false);
        let runner = tokio::spawn(jobs::run(
            self.svc.clone(),
            self.jobs.clone(),
            jobs::builtin_handlers(),
            jobs_stop.clone(),
        ));
        let ticker = tokio::spawn(jobs::cron::run(self.svc.clone(), jobs_stop));
        // Realtime streams never finish on their own: end them when shutdown starts, so the
        // graceful shutdown does not wait for them.
        let closing = hub.clone();
        let shutdown = async move {
            shutdown.await;
            closing.close_all();
        };
        let schema_watch = self.svc.watch_schema();
        // The peer address reaches handlers as `ConnectInfo` (realtime pins a client to it).
        let app = axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
            SocketAddr,
        >(app);
        let served = axum::serve(self.listener, app).with_graceful_shutdown(shutdown).await;
        upkeep.abort();
        pruner.abort();
        dispatch.abort();
        // Running jobs get the runner's grace period; then their leases are given back.
        let _ = stop_jobs.send(true);
        let _ = ticker.await;
        if let Err(e) = runner.await {
            tracing::warn!(error = %e, "the job runner ended abnormally");
        }
        if let Some(watch) = schema_watch {
            watch.abort();
        }
        served?;
        self.svc.close().await;
        Ok(())
    }
}

/// Keeps the change feed's outbox and the succeeded jobs to their retention while the server
/// runs (every instance does it; the statements are idempotent).
async fn prune_changes(svc: Arc<Service>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        every.tick().await;
        if let Err(e) = svc.prune_changes(crate::store::changes::RETENTION).await {
            tracing::warn!(error = %e, "pruning the change feed's outbox failed; retrying later");
        }
        if let Err(e) = svc.prune_jobs(crate::service::jobs::SUCCEEDED_RETENTION).await {
            tracing::warn!(error = %e, "pruning succeeded jobs failed; retrying later");
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received, finishing in-flight requests");
}
