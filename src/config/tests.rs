//! `Config::resolve`: each layer overrides the one below it, key by key; bad values name their
//! source; no secret survives any formatting; README documents every key.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::*;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> =
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |name| map.get(name).cloned()
}

fn file(text: &str) -> ConfigFile {
    ConfigFile { path: PathBuf::from("/etc/basalt.toml"), text: text.to_string() }
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn sqlite(dir: &str) -> DbLocation {
    DbLocation::Sqlite { dir: PathBuf::from(dir) }
}

fn postgres(url: &str) -> DbLocation {
    DbLocation::Postgres { url: Secret::new(url) }
}

fn resolve(f: Option<&ConfigFile>, e: &dyn Fn(&str) -> Option<String>, fl: &Flags) -> Config {
    Config::resolve(f, e, fl).expect("resolves")
}

fn error(f: Option<&ConfigFile>, e: &dyn Fn(&str) -> Option<String>, fl: &Flags) -> String {
    Config::resolve(f, e, fl).expect_err("must fail").to_string()
}

const FULL_FILE: &str = r#"
# every key
http = "0.0.0.0:1001"
dir = "/file/dir"
metrics_token = "file-token"
log = "warn"
log_format = "json"
"#;

#[test]
fn no_sources_give_the_defaults() {
    let c = resolve(None, &no_env, &Flags::default());
    assert_eq!(c, Config::default());
    assert_eq!(c.http.to_string(), "127.0.0.1:8090");
    assert_eq!(c.db, sqlite("./basalt_data"));
    assert_eq!((c.metrics_token, c.log, c.log_format), (None, None, LogFormat::Text));
}

#[test]
fn the_file_overrides_the_defaults() {
    let c = resolve(Some(&file(FULL_FILE)), &no_env, &Flags::default());
    assert_eq!(c.http.to_string(), "0.0.0.0:1001");
    assert_eq!(c.db, sqlite("/file/dir"));
    assert_eq!(c.metrics_token, Some(Secret::new("file-token")));
    assert_eq!(c.log.as_deref(), Some("warn"));
    assert_eq!(c.log_format, LogFormat::Json);
    let c = resolve(Some(&file("db = \"postgres://f@h/db\"")), &no_env, &Flags::default());
    assert_eq!(c.db, postgres("postgres://f@h/db"));
}

#[test]
fn the_environment_overrides_the_file() {
    let e = env(&[
        ("BASALT_HTTP", "10.0.0.1:2002"),
        ("BASALT_DIR", "/env/dir"),
        ("BASALT_METRICS_TOKEN", "env-token"),
        ("BASALT_LOG", "debug"),
        ("BASALT_LOG_FORMAT", "text"),
    ]);
    let c = resolve(Some(&file(FULL_FILE)), &e, &Flags::default());
    assert_eq!(c.http.to_string(), "10.0.0.1:2002");
    assert_eq!(c.db, sqlite("/env/dir"));
    assert_eq!(c.metrics_token, Some(Secret::new("env-token")));
    assert_eq!(c.log.as_deref(), Some("debug"));
    assert_eq!(c.log_format, LogFormat::Text);
    let e = env(&[("BASALT_DB", "postgresql://e@h/db")]);
    let c = resolve(Some(&file("db = \"postgres://f@h/db\"")), &e, &Flags::default());
    assert_eq!(c.db, postgres("postgresql://e@h/db"));
}

#[test]
fn flags_override_the_environment() {
    let e = env(&[
        ("BASALT_HTTP", "10.0.0.1:2002"),
        ("BASALT_DIR", "/env/dir"),
        ("BASALT_DB", "postgres://e@h/db"),
        ("BASALT_METRICS_TOKEN", "env-token"),
    ]);
    let flags = Flags {
        config: None,
        http: Some("127.0.0.2:3003".parse().expect("addr")),
        dir: Some(PathBuf::from("/flag/dir")),
        db: None,
        metrics_token: Some(Secret::new("flag-token")),
    };
    let c = resolve(Some(&file(FULL_FILE)), &e, &flags);
    assert_eq!(c.http.to_string(), "127.0.0.2:3003");
    // `--dir` changes the data directory, but the environment's `db` still wins over SQLite.
    assert_eq!(c.db, postgres("postgres://e@h/db"));
    assert_eq!(c.metrics_token, Some(Secret::new("flag-token")));
    let flags = Flags { db: Some(Secret::new("postgres://flag@h/db")), ..flags };
    assert_eq!(resolve(None, &e, &flags).db, postgres("postgres://flag@h/db"));
    let flags = Flags { db: None, ..flags };
    assert_eq!(resolve(None, &no_env, &flags).db, sqlite("/flag/dir"));
}

#[test]
fn keys_resolve_independently_and_empty_values_are_not_given() {
    let e = env(&[("BASALT_DIR", "/env/dir"), ("BASALT_HTTP", ""), ("BASALT_METRICS_TOKEN", "")]);
    let f = file("http = \"0.0.0.0:1001\"\nmetrics_token = \"\"");
    let c = resolve(Some(&f), &e, &Flags { dir: Some(PathBuf::new()), ..Flags::default() });
    assert_eq!(c.http.to_string(), "0.0.0.0:1001", "from the file: the env var is empty");
    assert_eq!(c.db, sqlite("/env/dir"), "from the env: the flag is empty");
    assert_eq!(c.metrics_token, None, "empty everywhere is no token");
    let flags = Flags { metrics_token: Some(Secret::new("")), ..Flags::default() };
    assert_eq!(resolve(None, &no_env, &flags).metrics_token, None);
}

#[test]
fn bad_values_name_their_source() {
    let f = file("\nhttp = \"not an address\"");
    let e = error(Some(&f), &no_env, &Flags::default());
    assert_eq!(
        e,
        "config file /etc/basalt.toml, key `http`: \"not an address\" is not a listen address \
         (HOST:PORT)"
    );
    let e = error(None, &env(&[("BASALT_HTTP", "nope")]), &Flags::default());
    assert!(e.starts_with("environment variable BASALT_HTTP: \"nope\""), "{e}");
    let e = error(None, &env(&[("BASALT_LOG_FORMAT", "xml")]), &Flags::default());
    assert_eq!(
        e,
        "environment variable BASALT_LOG_FORMAT: must be \"text\" or \"json\", not \"xml\""
    );
    let e = error(Some(&file("log_format = \"yaml\"")), &no_env, &Flags::default());
    assert!(e.starts_with("config file /etc/basalt.toml, key `log_format`: "), "{e}");
    let flags = Flags { db: Some(Secret::new("mysql://u:pw@h/db")), ..Flags::default() };
    let e = error(None, &no_env, &flags);
    assert_eq!(
        e,
        "flag --db: unsupported database URL scheme \"mysql\": only postgres:// and \
         postgresql:// URLs are supported"
    );
    let e = error(None, &env(&[("BASALT_DB", "sqlite:///tmp/x")]), &Flags::default());
    assert!(e.starts_with("environment variable BASALT_DB: unsupported database URL"), "{e}");
    let e = error(Some(&file("db = \"./some/dir\"")), &no_env, &Flags::default());
    assert!(e.starts_with("config file /etc/basalt.toml, key `db`: unsupported"), "{e}");
    let e = error(None, &env(&[("BASALT_DB", "postgres://h:port/db")]), &Flags::default());
    assert!(e.starts_with("environment variable BASALT_DB: malformed PostgreSQL URL"), "{e}");
}

#[test]
fn the_file_is_strict_toml_and_errors_name_the_key() {
    let e = error(Some(&file("http = \"127.0.0.1:1\"\nhtpp = \"x\"")), &no_env, &Flags::default());
    assert!(e.starts_with("config file /etc/basalt.toml: line 2: unknown field `htpp`"), "{e}");
    let e = error(Some(&file("http = 8090")), &no_env, &Flags::default());
    assert!(e.starts_with("config file /etc/basalt.toml: line 1, key `http`: invalid type"), "{e}");
    let e = error(Some(&file("[server]\nhttp = \"x\"")), &no_env, &Flags::default());
    assert!(e.contains("unknown field `server`"), "{e}");
    let e = error(Some(&file("http = \"unterminated")), &no_env, &Flags::default());
    assert!(e.starts_with("config file /etc/basalt.toml: line 1"), "{e}");
    // Every documented key is a key the file accepts.
    for key in KEYS {
        let text = format!("{} = \"\"", key.file);
        assert!(Config::resolve(Some(&file(&text)), &no_env, &Flags::default()).is_ok(), "{text}");
    }
}

#[test]
fn a_config_file_named_but_missing_is_an_error() {
    let missing = Path::new("/nonexistent/basalt.toml");
    let e = ConfigFile::read(missing).expect_err("missing");
    assert!(matches!(&e, ConfigError::Read { path, .. } if path == missing), "{e}");
    assert_eq!(e.to_string(), "cannot read the config file /nonexistent/basalt.toml");
    let flags = Flags { config: Some(missing.to_path_buf()), ..Flags::default() };
    assert!(matches!(Config::load(&flags), Err(ConfigError::Read { .. })));
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("basalt.toml");
    std::fs::write(&path, "http = \"127.0.0.1:4004\"").expect("write");
    let read = ConfigFile::read(&path).expect("exists");
    assert_eq!(resolve(Some(&read), &no_env, &Flags::default()).http.to_string(), "127.0.0.1:4004");
}

/// Every way a config, its parts or its errors can be formatted, with secrets from every source.
#[test]
fn no_formatting_shows_a_secret() {
    const SECRETS: [&str; 3] = ["pw-in-url", "token-value", "99887766"];
    let f = file("metrics_token = \"token-value\"\ndb = \"postgres://u:pw-in-url@h/db\"");
    let c = resolve(Some(&f), &no_env, &Flags::default());
    let Some(token) = &c.metrics_token else { panic!("a token") };
    assert_eq!(token.expose(), "token-value");
    let DbLocation::Postgres { url } = &c.db else { panic!("postgres") };
    assert_eq!(url.expose(), "postgres://u:pw-in-url@h/db");
    let flags = Flags {
        db: Some(Secret::new("postgres://u:pw-in-url@h/db")),
        metrics_token: Some(Secret::new("token-value")),
        ..Flags::default()
    };
    let mut shown = vec![
        format!("{c:?}"),
        format!("{c:#?}"),
        c.db.to_string(),
        format!("{:?}", c.db),
        format!("{token} {token:?}"),
        format!("{flags:?} {flags:#?}"),
        format!("{f:?} {f:#?}"),
    ];
    // Errors about secret values, from each layer.
    let bad_db = "mysql://u:pw-in-url@h/db";
    shown.push(error(None, &env(&[("BASALT_DB", bad_db)]), &Flags::default()));
    shown.push(error(Some(&file(&format!("db = \"{bad_db}\""))), &no_env, &Flags::default()));
    let flags = Flags { db: Some(Secret::new(bad_db)), ..Flags::default() };
    shown.push(error(None, &no_env, &flags));
    shown.push(error(Some(&file("db = \"u:pw-in-url@h\"")), &no_env, &Flags::default()));
    shown.push(error(Some(&file("metrics_token = 99887766")), &no_env, &Flags::default()));
    shown.push(error(Some(&file("db = 99887766")), &no_env, &Flags::default()));
    let e = Config::resolve(Some(&file("db = 99887766")), &no_env, &Flags::default());
    shown.push(format!("{e:?}"));
    for s in &shown {
        for secret in SECRETS {
            assert!(!s.contains(secret), "{secret} shown in {s}");
        }
    }
}

#[test]
fn log_formats_parse() {
    assert_eq!(LogFormat::parse("JSON"), Ok(LogFormat::Json));
    assert_eq!(LogFormat::parse(" text "), Ok(LogFormat::Text));
    let e = LogFormat::parse("xml").expect_err("unknown format");
    assert!(e.contains("\"xml\""), "{e}");
}

/// README's "Configuration" table has a row per key with its env var, flag and default.
#[test]
fn readme_documents_every_key() {
    let readme = include_str!("../../README.md");
    let start = readme.find("## Configuration").expect("README has a Configuration section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    for key in KEYS {
        let row = section
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` ", key.file)))
            .unwrap_or_else(|| panic!("no README row for `{}`", key.file));
        assert!(row.contains(&format!("`{}`", key.env)), "{row}");
        if let Some(flag) = key.flag {
            assert!(row.contains(&format!("`{flag}`")), "{row}");
        }
    }
    assert!(section.contains(CONFIG_ENV) && section.contains("--config"));
}

#[test]
fn the_data_dir_survives_postgres_and_s3_needs_a_bucket() {
    let e = env(&[("BASALT_DB", "postgres://u@h/db"), ("BASALT_DIR", "/data")]);
    let c = resolve(None, &e, &Flags::default());
    assert_eq!(c.dir, Path::new("/data"));
    assert!(c.s3.is_none());
    // Only the endpoint: no bucket, no S3.
    let c = resolve(None, &env(&[("BASALT_S3_ENDPOINT", "http://x")]), &Flags::default());
    assert!(c.s3.is_none());
    let f = file("s3_bucket = \"b\"\ns3_secret = \"s3-secret-value\"\ns3_force_path_style = true");
    let e = env(&[("BASALT_S3_ENDPOINT", "http://127.0.0.1:9000"), ("BASALT_S3_REGION", "eu")]);
    let c = resolve(Some(&f), &e, &Flags::default());
    let s3 = c.s3.clone().expect("s3");
    assert_eq!(
        (s3.endpoint.as_str(), s3.bucket.as_str(), s3.region.as_str()),
        ("http://127.0.0.1:9000", "b", "eu")
    );
    assert!(s3.force_path_style);
    assert_eq!(s3.secret.expose(), "s3-secret-value");
    assert!(!format!("{c:?}").contains("s3-secret-value"));
    let e = env(&[("BASALT_S3_BUCKET", "b"), ("BASALT_S3_FORCE_PATH_STYLE", "yes")]);
    let err = error(None, &e, &Flags::default());
    assert!(err.starts_with("environment variable BASALT_S3_FORCE_PATH_STYLE"), "{err}");
}
