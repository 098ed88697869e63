//! Command line (clap), with PocketBase's commands and flags: `serve`, `superuser`, `migrate`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::app::{open_service, shutdown_signal, App};
use crate::config::Config;

#[derive(Debug, Parser)]
#[command(name = "basalt", version, about = "A PocketBase-compatible backend in one binary")]
pub struct Cli {
    /// The data directory.
    #[arg(long, global = true, env = "BASALT_DIR", default_value = "./basalt_data")]
    dir: PathBuf,
    /// Store data in PostgreSQL instead of the embedded SQLite (`postgres://user@host/db`).
    #[arg(long, global = true, env = "BASALT_DB")]
    db: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Starts the web server.
    Serve {
        /// TCP address to listen on.
        #[arg(long, env = "BASALT_HTTP", default_value = "127.0.0.1:8090")]
        http: SocketAddr,
    },
    /// Manages superusers.
    Superuser {
        #[command(subcommand)]
        action: SuperuserCmd,
    },
    /// Applies pending system migrations and exits.
    Migrate,
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

/// Parses the command line and runs the command.
pub async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut config = Config {
        http: SocketAddr::from(([127, 0, 0, 1], 8090)),
        data_dir: cli.dir,
        db_url: cli.db,
    };
    match cli.command {
        Command::Serve { http } => {
            config.http = http;
            let app = App::build(&config).await?;
            let addr = app.local_addr()?;
            tracing::info!(%addr, dir = %config.data_dir.display(), "server started");
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
            svc.store.close().await;
        }
        Command::Migrate => {
            let svc = open_service(&config).await.context("migrating")?;
            svc.store.close().await;
            println_out("Migrations applied.");
        }
    }
    Ok(())
}

fn describe(e: crate::service::ServiceError) -> anyhow::Error {
    match e {
        crate::service::ServiceError::BadRequest { message, data } if !data.is_empty() => {
            anyhow::anyhow!("{message} {}", serde_json::Value::Object(data))
        }
        other => anyhow::anyhow!("{other}"),
    }
}

#[allow(clippy::print_stdout)] // The CLI's output is its interface.
fn println_out(s: &str) {
    println!("{s}");
}
