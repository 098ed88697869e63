//! Command line (clap), with PocketBase's commands and flags: `serve`, `superuser`, `migrate`,
//! plus `migrate-db` (copy a SQLite project into PostgreSQL). The flags are one layer of the
//! `Config` (`config::Config::load` merges them over the config file and the environment);
//! `logging` sets up tracing for the binary from it.

mod logging;

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::app::{open_service, shutdown_signal, App};
use crate::config::{Config, DbLocation, Flags, Secret};

#[derive(Debug, Parser)]
#[command(name = "basalt", version, about = "A PocketBase-compatible backend in one binary")]
pub struct Cli {
    /// A TOML config file (see README, "Configuration"); env: BASALT_CONFIG.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// The data directory [default: ./basalt_data; env: BASALT_DIR].
    #[arg(long, global = true, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Store data in PostgreSQL instead of the embedded SQLite (`postgres://user@host/db`)
    /// [env: BASALT_DB].
    #[arg(long, global = true, value_name = "URL")]
    db: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Starts the web server.
    Serve {
        /// TCP address to listen on [default: 127.0.0.1:8090; env: BASALT_HTTP].
        #[arg(long, value_name = "ADDR")]
        http: Option<SocketAddr>,
        /// A bearer token that may read /api/metrics (superusers always may)
        /// [env: BASALT_METRICS_TOKEN].
        #[arg(long, value_name = "TOKEN")]
        metrics_token: Option<String>,
    },
    /// Manages superusers.
    Superuser {
        #[command(subcommand)]
        action: SuperuserCmd,
    },
    /// Lists, retries and purges background jobs.
    Jobs {
        #[command(subcommand)]
        action: JobsCmd,
    },
    /// Lists, saves and removes cron schedules (each tick enqueues a job).
    Crons {
        #[command(subcommand)]
        action: CronsCmd,
    },
    /// Applies pending system migrations and exits.
    Migrate,
    /// Copies a SQLite project (collections, records, system tables) into PostgreSQL.
    ///
    /// Safe to run again: collections and records already on the target (same id) are kept.
    /// Stop the server using the source first, or later writes are not copied.
    MigrateDb {
        /// The source: a data directory holding data.db, or sqlite:///path/to/data.db.
        #[arg(long, value_name = "DIR_OR_SQLITE_URL")]
        from: String,
        /// The target: postgres://user[:password]@host[:port]/database.
        #[arg(long, value_name = "POSTGRES_URL")]
        to: String,
        /// Rows read and written per batch.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
        batch_size: u32,
    },
}

#[derive(Debug, Subcommand)]
enum JobsCmd {
    /// Lists jobs, newest first: id, queue, kind, state, attempts, last error.
    Ls {
        #[arg(long)]
        queue: Option<String>,
        /// pending, running, succeeded, failed or dead.
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Sends a dead job back to pending with fresh attempts.
    Retry { id: String },
    /// Deletes finished jobs: succeeded (default) or dead ones, finished more than
    /// --older-than-days ago (0: all).
    Purge {
        #[arg(long, default_value = "succeeded")]
        state: String,
        #[arg(long, default_value_t = 0)]
        older_than_days: u64,
    },
}

#[derive(Debug, Subcommand)]
enum CronsCmd {
    /// Lists the schedules: id, expression, kind, queue, last tick.
    Ls,
    /// Creates or replaces a schedule: a five-field expression (UTC) or @hourly, @daily…
    Set {
        id: String,
        expression: String,
        kind: String,
        #[arg(long)]
        queue: Option<String>,
        /// The job's payload, JSON.
        #[arg(long)]
        payload: Option<String>,
    },
    /// Removes a schedule.
    Rm { id: String },
}

#[derive(Debug, Subcommand)]
enum SuperuserCmd {
    /// Creates a superuser, or sets the password of an existing one.
    Upsert { email: String, password: String },
    /// Creates a new superuser (fails if it exists).
    Create { email: String, password: String },
    /// Deletes a superuser.
    Delete { email: String },
}

impl Cli {
    /// This command line as the top configuration layer.
    fn flags(&self) -> Flags {
        let mut flags = Flags {
            config: self.config.clone(),
            dir: self.dir.clone(),
            db: self.db.clone().map(Secret::new),
            ..Flags::default()
        };
        if let Command::Serve { http, metrics_token } = &self.command {
            flags.http = *http;
            flags.metrics_token = metrics_token.clone().map(Secret::new);
        }
        flags
    }
}

/// Parses the command line, loads the configuration, sets up logging and runs the command.
pub async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(&cli.flags())?;
    logging::init_logging(&config)?;
    match cli.command {
        Command::Serve { .. } => {
            let app = App::build(&config).await?;
            let addr = app.local_addr()?;
            tracing::info!(%addr, db = %config.db, "server started");
            println_out(&format!("Server started at http://{addr}\n├─ REST API:  http://{addr}/api/\n└─ Dashboard: http://{addr}/_/"));
            app.run_until(shutdown_signal()).await?;
        }
        Command::Superuser { action } => {
            let svc = open_service(&config).await?;
            match action {
                SuperuserCmd::Upsert { email, password } => {
                    svc.upsert_superuser(&email, &password, true).await.map_err(describe)?;
                    println_out(&format!("Successfully saved superuser \"{email}\"!"));
                }
                SuperuserCmd::Create { email, password } => {
                    svc.upsert_superuser(&email, &password, false).await.map_err(describe)?;
                    println_out(&format!("Successfully created new superuser \"{email}\"!"));
                }
                SuperuserCmd::Delete { email } => {
                    svc.delete_superuser(&email).await.map_err(describe)?;
                    println_out(&format!("Successfully deleted superuser \"{email}\"!"));
                }
            }
            svc.close().await;
        }
        Command::Jobs { action } => {
            let svc = open_service(&config).await?;
            let res = jobs_command(&svc, action).await;
            svc.close().await;
            res?;
        }
        Command::Crons { action } => {
            let svc = open_service(&config).await?;
            let res = crons_command(&svc, action).await;
            svc.close().await;
            res?;
        }
        Command::Migrate => {
            let svc = open_service(&config).await.context("migrating")?;
            svc.close().await;
            println_out("Migrations applied.");
        }
        Command::MigrateDb { from, to, batch_size } => migrate_db(&from, &to, batch_size).await?,
    }
    Ok(())
}

/// `basalt jobs …`.
async fn jobs_command(svc: &crate::service::Service, action: JobsCmd) -> anyhow::Result<()> {
    match action {
        JobsCmd::Ls { queue, state, kind, limit } => {
            let jobs = svc
                .jobs_for_cli(queue.as_deref(), state.as_deref(), kind.as_deref(), limit)
                .await
                .map_err(describe)?;
            let mut out = String::from("ID               QUEUE        KIND                 STATE      ATTEMPTS  LAST ERROR");
            for j in jobs {
                let error: String = j.last_error.chars().take(60).collect();
                out.push_str(&format!(
                    "\n{:<16} {:<12} {:<20} {:<10} {:>3}/{:<4}  {}",
                    j.id, j.queue, j.kind, j.state, j.attempts, j.max_attempts, error
                ));
            }
            println_out(&out);
        }
        JobsCmd::Retry { id } => {
            if !svc.revive_job(&id).await.map_err(describe)? {
                anyhow::bail!("job {id:?} is not dead (or does not exist)");
            }
            println_out(&format!("Job {id} is pending again."));
        }
        JobsCmd::Purge { state, older_than_days } => {
            let age = std::time::Duration::from_secs(older_than_days.saturating_mul(86_400));
            let n = svc.purge_jobs(&state, age).await.map_err(describe)?;
            println_out(&format!("Deleted {n} {state} jobs."));
        }
    }
    Ok(())
}

/// `basalt crons …`.
async fn crons_command(svc: &crate::service::Service, action: CronsCmd) -> anyhow::Result<()> {
    match action {
        CronsCmd::Ls => {
            let mut out = String::from("ID                   EXPRESSION        KIND                 QUEUE        LAST TICK");
            for c in svc.crons().await.map_err(describe)? {
                let last = if c.last_tick == 0 {
                    "never".to_string()
                } else {
                    chrono::DateTime::from_timestamp_millis(c.last_tick)
                        .map_or_else(String::new, |d| d.to_rfc3339())
                };
                out.push_str(&format!(
                    "\n{:<20} {:<17} {:<20} {:<12} {}",
                    c.id, c.expression, c.kind, c.queue, last
                ));
            }
            println_out(&out);
        }
        CronsCmd::Set { id, expression, kind, queue, payload } => {
            let payload = payload
                .map(|p| serde_json::from_str(&p))
                .transpose()
                .context("--payload is not JSON")?;
            let req = crate::service::crons::CronRequest { expression, kind, queue, payload };
            let c = svc.put_cron_cli(&id, req).await.map_err(describe)?;
            println_out(&format!("Saved cron {} ({}).", c.id, c.expression));
        }
        CronsCmd::Rm { id } => {
            if !svc.delete_cron_cli(&id).await.map_err(describe)? {
                anyhow::bail!("no cron {id:?}");
            }
            println_out(&format!("Removed cron {id}."));
        }
    }
    Ok(())
}

/// The SQLite file named by `--from`: a data directory (its `data.db`) or a file, given as a
/// path or a `sqlite://` URL of either (`sqlite:///abs/path`, `sqlite://relative/path`).
fn sqlite_source(from: &str) -> anyhow::Result<PathBuf> {
    let path = match DbLocation::parse(from) {
        Ok(DbLocation::Sqlite { dir }) => dir,
        Ok(DbLocation::Postgres { .. }) => {
            anyhow::bail!(
                "--from: PostgreSQL is not a source: expected a data directory or a sqlite:// URL"
            )
        }
        Err(e) => anyhow::bail!("--from: {e}; expected a data directory or a sqlite:// URL"),
    };
    if path.is_dir() {
        let file = path.join("data.db");
        if !file.is_file() {
            anyhow::bail!("--from {from:?}: {} has no data.db", path.display());
        }
        return Ok(file);
    }
    if !path.is_file() {
        anyhow::bail!("--from {from:?}: {} does not exist", path.display());
    }
    Ok(path)
}

/// The PostgreSQL database named by `--to`.
fn postgres_target(to: &str) -> anyhow::Result<DbLocation> {
    match DbLocation::parse(to) {
        Ok(pg @ DbLocation::Postgres { .. }) => Ok(pg),
        Ok(DbLocation::Sqlite { .. }) => {
            anyhow::bail!("--to: expected a postgres:// or postgresql:// URL")
        }
        Err(e) => anyhow::bail!("--to: {e}"),
    }
}

/// `basalt migrate-db`: copies, shows progress on stderr and the count check on stdout; fails
/// (exit code 1) when a table's counts differ.
async fn migrate_db(from: &str, to: &str, batch_size: u32) -> anyhow::Result<()> {
    use crate::store::{copy_database, Progress, Store};
    let source = sqlite_source(from)?;
    let target = postgres_target(to)?;
    let src = Store::open_sqlite_file(&source)
        .await
        .with_context(|| format!("opening the source {}", source.display()))?;
    let dst = Store::open(&target).await.context("opening the target")?;
    let started = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut show = |p: &Progress| {
        // A terminal gets one line per table, rewritten after every batch; logs get the last.
        let line = format!("{:<24} {}/{}", p.table, p.copied, p.total);
        let mut err = std::io::stderr().lock();
        let _ = match (tty, p.finished) {
            (true, false) => write!(err, "\r{line}"),
            (true, true) => writeln!(err, "\r{line}"),
            (false, true) => writeln!(err, "{line}"),
            (false, false) => Ok(()),
        };
    };
    let result = copy_database(&src, &dst, batch_size as usize, &mut show).await;
    src.close().await;
    dst.close().await;
    let report = result.context("copying")?;
    let secs = started.elapsed().as_secs_f64();
    let mut out = format!(
        "{:<24} {:>10} {:>10} {:>10}  {:<10} {}\n",
        "TABLE", "SOURCE", "TARGET", "INSERTED", "DEFINITION", "CHECK"
    );
    for t in &report.tables {
        out.push_str(&format!(
            "{:<24} {:>10} {:>10} {:>10}  {:<10} {}\n",
            t.table,
            t.source_count,
            t.target_count,
            t.inserted.map_or("-".to_string(), |n| n.to_string()),
            t.definition.map_or("-", |d| d.as_str()),
            match (t.rows_skipped, t.matches()) {
                (true, _) => "rows not copied",
                (false, true) => "ok",
                (false, false) => "MISMATCH",
            }
        ));
    }
    let rows: i64 = report.tables.iter().map(|t| t.source_count).sum();
    if report.ok() {
        out.push_str(&format!(
            "All {} tables match ({rows} rows) in {secs:.1}s.",
            report.tables.len()
        ));
        println_out(&out);
        return Ok(());
    }
    println_out(&out);
    let bad: Vec<String> = report
        .mismatches()
        .map(|t| format!("{} (source {}, target {})", t.table, t.source_count, t.target_count))
        .collect();
    anyhow::bail!("row counts differ: {}", bad.join(", "))
}

fn describe(e: crate::service::ServiceError) -> anyhow::Error {
    match e {
        crate::service::ServiceError::BadRequest { message, data } if !data.is_empty() => {
            anyhow::anyhow!("{message} {}", serde_json::Value::Object(data))
        }
        // `Error::new` keeps the source chain, which `main` prints with `{:#}`.
        other => anyhow::Error::new(other),
    }
}

#[allow(clippy::print_stdout)] // The CLI's output is its interface.
fn println_out(s: &str) {
    println!("{s}");
}
