//! Boot configuration: what needs a restart to change. `Config::load` reads every source once,
//! in increasing precedence: built-in defaults < a config file (`--config` / `BASALT_CONFIG`,
//! TOML) < `BASALT_*` environment variables < command-line flags. `Config::resolve` is the same
//! merge as a pure function (tests). The result is passed explicitly; no globals.
//!
//! The only module that reads the process environment, and the only one that reads a database
//! URL (`DbLocation`). Must not depend on any room but `util`, or print a secret (`Secret`).

mod location;
mod secret;

pub use location::{DbLocation, LocationError};
pub use secret::Secret;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// How to run a server. Every field has a default (`Config::default()`), so tests build one
/// with `..Config::default()`.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (tests).
    pub http: SocketAddr,
    /// The data directory: SQLite's file (unless `db` is PostgreSQL) and local file storage
    /// (`<dir>/storage`, unless `s3` is set).
    pub dir: PathBuf,
    /// Where the data lives: SQLite in the data directory, or a PostgreSQL URL.
    pub db: DbLocation,
    /// An S3-compatible bucket for uploaded files instead of `<dir>/storage` (set when a bucket
    /// is given).
    pub s3: Option<S3Settings>,
    /// A bearer token that may read `/api/metrics` besides superusers (a Prometheus scraper has
    /// no superuser login).
    pub metrics_token: Option<Secret>,
    /// The log filter (an `EnvFilter` directive); `None` is the built-in default.
    pub log: Option<String>,
    pub log_format: LogFormat,
    /// Seconds a job runner's claim holds a job (renewed while it runs): how soon the jobs of
    /// an instance that died are taken by another.
    pub jobs_lease: std::time::Duration,
    /// The command mail goes through when SMTP is disabled in the settings (`sendmail -i -t`).
    pub sendmail: String,
    /// Networks webhooks may reach although they are private, loopback or link-local (none by
    /// default: a webhook URL must not reach into the server's own network).
    pub webhooks_allow: Vec<ipnet::IpNet>,
}

/// An S3-compatible bucket, PocketBase's `s3` settings (`forcePathStyle` for MinIO, moto and
/// most self-hosted servers). `Debug` never shows the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Settings {
    /// Empty: AWS's default endpoint for the region.
    pub endpoint: String,
    pub bucket: String,
    /// Empty: `us-east-1`.
    pub region: String,
    pub access_key: String,
    pub secret: Secret,
    pub force_path_style: bool,
}

/// The log line formats: `text` for people, `json` (one object per line) for log collectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// What the command line said, already typed by clap where it can be; `None` (or an empty
/// value) is "not given". Only the `serve` command has `http` and `metrics_token`.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub config: Option<PathBuf>,
    pub http: Option<SocketAddr>,
    pub dir: Option<PathBuf>,
    pub db: Option<Secret>,
    pub metrics_token: Option<Secret>,
}

/// A config file's path (named in errors) and text. `Debug` shows the path only: the text may
/// hold secrets.
#[derive(Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {}: {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error("{origin}: {message}")]
    Invalid { origin: Origin, message: String },
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File { path: PathBuf, key: &'static str },
    Env(&'static str),
    Flag(&'static str),
}

/// One setting: its key in the config file, its environment variable, its flag (if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub file: &'static str,
    pub env: &'static str,
    pub flag: Option<&'static str>,
}

/// Names the config file to read (the `--config` flag wins over it).
pub const CONFIG_ENV: &str = "BASALT_CONFIG";

const HTTP: Key = Key { file: "http", env: "BASALT_HTTP", flag: Some("--http") };
const DIR: Key = Key { file: "dir", env: "BASALT_DIR", flag: Some("--dir") };
const DB: Key = Key { file: "db", env: "BASALT_DB", flag: Some("--db") };
const METRICS_TOKEN: Key =
    Key { file: "metrics_token", env: "BASALT_METRICS_TOKEN", flag: Some("--metrics-token") };
const S3_ENDPOINT: Key = Key { file: "s3_endpoint", env: "BASALT_S3_ENDPOINT", flag: None };
const S3_BUCKET: Key = Key { file: "s3_bucket", env: "BASALT_S3_BUCKET", flag: None };
const S3_REGION: Key = Key { file: "s3_region", env: "BASALT_S3_REGION", flag: None };
const S3_ACCESS_KEY: Key = Key { file: "s3_access_key", env: "BASALT_S3_ACCESS_KEY", flag: None };
const S3_SECRET: Key = Key { file: "s3_secret", env: "BASALT_S3_SECRET", flag: None };
const S3_FORCE_PATH_STYLE: Key =
    Key { file: "s3_force_path_style", env: "BASALT_S3_FORCE_PATH_STYLE", flag: None };
const LOG: Key = Key { file: "log", env: "BASALT_LOG", flag: None };
const LOG_FORMAT: Key = Key { file: "log_format", env: "BASALT_LOG_FORMAT", flag: None };
const JOBS_LEASE: Key = Key { file: "jobs_lease", env: "BASALT_JOBS_LEASE", flag: None };
const SENDMAIL: Key = Key { file: "sendmail", env: "BASALT_SENDMAIL", flag: None };
const WEBHOOKS_ALLOW: Key =
    Key { file: "webhooks_allow", env: "BASALT_WEBHOOKS_ALLOW", flag: None };

/// Every setting (README's "Configuration" table lists the same; a test compares them).
pub const KEYS: [Key; 15] = [
    HTTP,
    DIR,
    DB,
    METRICS_TOKEN,
    S3_ENDPOINT,
    S3_BUCKET,
    S3_REGION,
    S3_ACCESS_KEY,
    S3_SECRET,
    S3_FORCE_PATH_STYLE,
    LOG,
    LOG_FORMAT,
    JOBS_LEASE,
    SENDMAIL,
    WEBHOOKS_ALLOW,
];

const DEFAULT_HTTP: ([u8; 4], u16) = ([127, 0, 0, 1], 8090);
const DEFAULT_DIR: &str = "./basalt_data";
const DEFAULT_JOBS_LEASE: std::time::Duration = std::time::Duration::from_secs(30);
const DEFAULT_SENDMAIL: &str = "sendmail";

/// The config file's shape: every key optional, any other key an error naming it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileValues {
    http: Option<String>,
    dir: Option<String>,
    db: Option<Secret>,
    metrics_token: Option<Secret>,
    s3_endpoint: Option<String>,
    s3_bucket: Option<String>,
    s3_region: Option<String>,
    s3_access_key: Option<String>,
    s3_secret: Option<Secret>,
    /// A string like the environment's value (`"true"`), or a TOML boolean.
    s3_force_path_style: Option<BoolOrText>,
    log: Option<String>,
    log_format: Option<String>,
    jobs_lease: Option<String>,
    sendmail: Option<String>,
    webhooks_allow: Option<String>,
}

/// `true` or `"true"` in the config file.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum BoolOrText {
    Bool(bool),
    Text(String),
}

/// The two text layers under the flags: the environment over the config file.
struct TextLayers<'a> {
    path: Option<&'a Path>,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http: SocketAddr::from(DEFAULT_HTTP),
            dir: PathBuf::from(DEFAULT_DIR),
            db: DbLocation::Sqlite { dir: PathBuf::from(DEFAULT_DIR) },
            s3: None,
            metrics_token: None,
            log: None,
            log_format: LogFormat::Text,
            jobs_lease: DEFAULT_JOBS_LEASE,
            sendmail: DEFAULT_SENDMAIL.into(),
            webhooks_allow: Vec::new(),
        }
    }
}

impl Config {
    /// Reads the environment and the config file named by `flags.config` or `BASALT_CONFIG`
    /// (there is no implicit one; a file named but missing is an error), then `resolve`s.
    pub fn load(flags: &Flags) -> Result<Config, ConfigError> {
        let mut env = std::collections::HashMap::new();
        for name in KEYS.iter().map(|k| k.env).chain([CONFIG_ENV]) {
            if let Some(value) = std::env::var_os(name) {
                let value = value.into_string().map_err(|_| ConfigError::Invalid {
                    origin: Origin::Env(name),
                    message: "not valid UTF-8".into(),
                })?;
                env.insert(name, value);
            }
        }
        let env = |name: &str| env.get(name).cloned();
        let path = non_empty(flags.config.clone())
            .or_else(|| env(CONFIG_ENV).filter(|p| !p.is_empty()).map(PathBuf::from));
        let file = path.map(|p| ConfigFile::read(&p)).transpose()?;
        Config::resolve(file.as_ref(), &env, flags)
    }

    /// Merges the sources, each key on its own: the flag if given, else the environment
    /// variable, else the config file's key, else the default. An empty value counts as not
    /// given. A bad value is an error naming where it came from (never quoting a secret).
    pub fn resolve(
        file: Option<&ConfigFile>,
        env: &dyn Fn(&str) -> Option<String>,
        flags: &Flags,
    ) -> Result<Config, ConfigError> {
        let mut from_file = match file {
            Some(f) => f.values()?,
            None => FileValues::default(),
        };
        let text = TextLayers { path: file.map(|f| f.path.as_path()), env };
        let s3 = s3_settings(&text, &mut from_file)?;
        let http = match flags.http {
            Some(addr) => addr,
            None => match text.pick(HTTP, from_file.http) {
                Some((v, origin)) => v.trim().parse().map_err(|_| {
                    origin.invalid(format!("{v:?} is not a listen address (HOST:PORT)"))
                })?,
                None => SocketAddr::from(DEFAULT_HTTP),
            },
        };
        let dir = non_empty(flags.dir.clone())
            .or_else(|| text.pick(DIR, from_file.dir).map(|(v, _)| PathBuf::from(v)))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
        let db =
            match flag_text(&flags.db, DB).or_else(|| text.pick(DB, exposed(from_file.db))) {
                None => DbLocation::Sqlite { dir: dir.clone() },
                Some((url, origin)) => match DbLocation::parse(&url) {
                    Ok(pg @ DbLocation::Postgres { .. }) => pg,
                    Ok(DbLocation::Sqlite { .. }) => return Err(origin.invalid(
                        "unsupported database URL: only postgres:// and postgresql:// URLs are \
                         supported (SQLite is the default; `dir` sets its data directory)",
                    )),
                    Err(e) => return Err(origin.invalid(e.to_string())),
                },
            };
        let metrics_token = flag_text(&flags.metrics_token, METRICS_TOKEN)
            .or_else(|| text.pick(METRICS_TOKEN, exposed(from_file.metrics_token)))
            .map(|(token, _)| Secret::new(token));
        let log = text.pick(LOG, from_file.log).map(|(v, _)| v);
        let log_format = match text.pick(LOG_FORMAT, from_file.log_format) {
            Some((v, origin)) => LogFormat::parse(&v).map_err(|m| origin.invalid(m))?,
            None => LogFormat::Text,
        };
        let jobs_lease = match text.pick(JOBS_LEASE, from_file.jobs_lease) {
            Some((v, origin)) => match v.trim().parse::<u64>() {
                Ok(s) if (1..=3600).contains(&s) => std::time::Duration::from_secs(s),
                _ => {
                    return Err(
                        origin.invalid(format!("{v:?} is not a number of seconds from 1 to 3600"))
                    )
                }
            },
            None => DEFAULT_JOBS_LEASE,
        };
        let sendmail = text
            .pick(SENDMAIL, from_file.sendmail)
            .map_or_else(|| DEFAULT_SENDMAIL.to_string(), |(v, _)| v);
        let webhooks_allow = match text.pick(WEBHOOKS_ALLOW, from_file.webhooks_allow) {
            Some((v, origin)) => parse_networks(&v).map_err(|m| origin.invalid(m))?,
            None => Vec::new(),
        };
        Ok(Config {
            http,
            dir,
            db,
            s3,
            metrics_token,
            log,
            log_format,
            jobs_lease,
            sendmail,
            webhooks_allow,
        })
    }
}

/// `10.0.0.0/8, 127.0.0.1, ::1`: networks (CIDR) or single addresses, comma-separated.
fn parse_networks(v: &str) -> Result<Vec<ipnet::IpNet>, String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("{s:?} is not a network (10.0.0.0/8) or an IP address"))
        })
        .collect()
}

impl LogFormat {
    /// `text` or `json`, any case. Anything else is an error rather than a silent fallback, so
    /// a typo does not leave a log collector parsing human lines.
    pub fn parse(value: &str) -> Result<LogFormat, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("must be \"text\" or \"json\", not {value:?}")),
        }
    }
}

impl ConfigFile {
    /// Reads `path`; a missing file is an error (it was named on purpose).
    pub fn read(path: &Path) -> Result<ConfigFile, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(ConfigFile { path: path.to_path_buf(), text }),
            Err(source) => Err(ConfigError::Read { path: path.to_path_buf(), source }),
        }
    }

    fn values(&self) -> Result<FileValues, ConfigError> {
        toml::from_str(&self.text).map_err(|e| ConfigError::File {
            path: self.path.clone(),
            message: describe_toml_error(&e, &self.text),
        })
    }
}

impl fmt::Debug for ConfigFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigFile").field("path", &self.path).finish_non_exhaustive()
    }
}

impl TextLayers<'_> {
    /// `key` from the environment, else from the config file (`file`, its value there).
    fn pick(&self, key: Key, file: Option<String>) -> Option<(String, Origin)> {
        if let Some(v) = (self.env)(key.env).filter(|v| !v.is_empty()) {
            return Some((v, Origin::Env(key.env)));
        }
        let v = file.filter(|v| !v.is_empty())?;
        let path = self.path.map(Path::to_path_buf).unwrap_or_default();
        Some((v, Origin::File { path, key: key.file }))
    }
}

impl Origin {
    fn invalid(self, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid { origin: self, message: message.into() }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, key } => write!(f, "config file {}, key `{key}`", path.display()),
            Origin::Env(name) => write!(f, "environment variable {name}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// The S3 keys; `None` unless a bucket is given (the other keys alone configure nothing).
fn s3_settings(
    text: &TextLayers<'_>,
    from_file: &mut FileValues,
) -> Result<Option<S3Settings>, ConfigError> {
    let pick = |key: Key, v: Option<String>| text.pick(key, v).map(|(v, _)| v);
    let endpoint = pick(S3_ENDPOINT, from_file.s3_endpoint.take()).unwrap_or_default();
    let bucket = pick(S3_BUCKET, from_file.s3_bucket.take());
    let region = pick(S3_REGION, from_file.s3_region.take()).unwrap_or_default();
    let access_key = pick(S3_ACCESS_KEY, from_file.s3_access_key.take()).unwrap_or_default();
    let secret = pick(S3_SECRET, exposed(from_file.s3_secret.take())).unwrap_or_default();
    let style = from_file.s3_force_path_style.take().map(|v| match v {
        BoolOrText::Bool(b) => b.to_string(),
        BoolOrText::Text(t) => t,
    });
    let force_path_style = match text.pick(S3_FORCE_PATH_STYLE, style) {
        None => false,
        Some((v, origin)) => match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(origin.invalid(format!("{v:?} is not true or false"))),
        },
    };
    Ok(bucket.map(|bucket| S3Settings {
        endpoint,
        bucket,
        region,
        access_key,
        secret: Secret::new(secret),
        force_path_style,
    }))
}

fn non_empty(path: Option<PathBuf>) -> Option<PathBuf> {
    path.filter(|p| !p.as_os_str().is_empty())
}

/// A secret flag's text, if given, with its origin.
fn flag_text(flag: &Option<Secret>, key: Key) -> Option<(String, Origin)> {
    let value = flag.as_ref().map(|s| s.expose().to_string()).filter(|v| !v.is_empty())?;
    Some((value, Origin::Flag(key.flag.unwrap_or(key.file))))
}

fn exposed(secret: Option<Secret>) -> Option<String> {
    secret.map(|s| s.expose().to_string())
}

/// toml's error as one line: where (line and key) and what, without its source excerpt, which
/// would quote the line (maybe a secret).
fn describe_toml_error(e: &toml::de::Error, text: &str) -> String {
    let what = e.message().trim_end();
    let Some(span) = e.span() else { return what.to_string() };
    let start = span.start.min(text.len());
    let line_no = text[..start].matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or_default();
    let key = line.split_once('=').map(|(k, _)| k.trim()).unwrap_or_default();
    let is_key =
        !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if is_key && !what.contains(&format!("`{key}`")) {
        format!("line {line_no}, key `{key}`: {what}")
    } else {
        format!("line {line_no}: {what}")
    }
}

#[cfg(test)]
mod tests;
