//! The `basalt` binary: logging setup (`cli::init_logging`), then the CLI.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let result = match basalt::cli::init_logging() {
        Ok(()) => basalt::cli::run().await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
