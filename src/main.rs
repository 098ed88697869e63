//! The `basalt` binary: runs the CLI (which loads the configuration and sets up logging) and
//! turns its result into the exit code.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match basalt::cli::run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
