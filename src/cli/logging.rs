//! Logging for the binary, from the `Config`: `log` (`BASALT_LOG`) is an `EnvFilter` (default
//! `store::DEFAULT_LOG_FILTER`) and `log_format` (`BASALT_LOG_FORMAT`) picks `text` (for people)
//! or `json` (one JSON object per line, for log collectors). Logs go to stderr; stdout is the
//! CLI's own output.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// Installs the global subscriber (once, before the command runs).
pub(crate) fn init_logging(config: &Config) -> anyhow::Result<()> {
    let default = || EnvFilter::new(crate::store::DEFAULT_LOG_FILTER);
    // A filter that does not parse falls back to the default (as it always has), with a
    // warning once logging is up.
    let (filter, bad) = match config.log.as_deref().map(EnvFilter::try_new) {
        None => (default(), None),
        Some(Ok(filter)) => (filter, None),
        Some(Err(e)) => (default(), Some(e)),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        // The request span (method, route, request id) is on every line logged inside it;
        // the list of all enclosing spans would only repeat it.
        LogFormat::Json => {
            builder.json().with_ansi(false).with_current_span(true).with_span_list(false).init();
        }
    }
    if let Some(e) = bad {
        tracing::warn!(error = %e, "the log filter (BASALT_LOG / `log`) does not parse; using the default");
    }
    Ok(())
}
