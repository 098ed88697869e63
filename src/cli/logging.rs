//! Logging for the binary: `BASALT_LOG` filters (an `EnvFilter`, default
//! `store::DEFAULT_LOG_FILTER`) and `BASALT_LOG_FORMAT` picks the format: `text` (the default,
//! for people) or `json` (one JSON object per line, for log collectors). Logs go to stderr;
//! stdout is the CLI's own output.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The formats `BASALT_LOG_FORMAT` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// Unset or empty is `text`; anything unknown is an error rather than a silent fallback,
    /// so a typo does not leave a log collector parsing human lines.
    pub fn parse(value: Option<&str>) -> anyhow::Result<LogFormat> {
        match value.map(str::trim).unwrap_or_default().to_ascii_lowercase().as_str() {
            "" | "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => anyhow::bail!("BASALT_LOG_FORMAT must be \"text\" or \"json\", not {other:?}"),
        }
    }
}

/// Installs the global subscriber (once, from `main`).
pub fn init_logging() -> anyhow::Result<()> {
    let format = LogFormat::parse(std::env::var("BASALT_LOG_FORMAT").ok().as_deref())?;
    let filter = EnvFilter::try_from_env("BASALT_LOG")
        .unwrap_or_else(|_| EnvFilter::new(crate::store::DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        // The request span (method, route, request id) is on every line logged inside it;
        // the list of all enclosing spans would only repeat it.
        LogFormat::Json => {
            builder.json().with_ansi(false).with_current_span(true).with_span_list(false).init();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse() {
        assert_eq!(LogFormat::parse(None).ok(), Some(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("")).ok(), Some(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("JSON")).ok(), Some(LogFormat::Json));
        assert_eq!(LogFormat::parse(Some(" text ")).ok(), Some(LogFormat::Text));
        let e = LogFormat::parse(Some("xml")).expect_err("unknown format");
        assert!(e.to_string().contains("\"xml\""), "{e}");
    }
}
