//! `DbLocation`: where the data lives, parsed once from the settings (or `migrate-db`'s
//! `--from`/`--to`). This is the only code that reads a database URL's scheme; `Store::open`
//! matches on the parsed value. Must not: connect, or put a URL in a message (it may hold a
//! password): errors name the scheme at most.

use std::fmt;
use std::path::PathBuf;

use crate::config::Secret;

/// The database a command works on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbLocation {
    /// The embedded SQLite database in `dir/data.db` (created if needed).
    Sqlite { dir: PathBuf },
    /// A PostgreSQL database: a `postgres://` or `postgresql://` URL, which may hold a password.
    Postgres { url: Secret },
}

/// Why a database URL was refused. Never holds the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    #[error(
        "unsupported database URL scheme {0:?}: only postgres:// and postgresql:// URLs are supported"
    )]
    UnsupportedScheme(String),
    #[error("malformed PostgreSQL URL: {0}")]
    Malformed(String),
}

impl DbLocation {
    /// Parses a database location:
    /// - `postgres://…` or `postgresql://…` → `Postgres` (checked to be a well-formed URL);
    /// - `sqlite://PATH` (anything after `?` ignored) or a value without `://` → `Sqlite` at
    ///   `PATH`, a data directory (`migrate-db --from` also accepts the database file itself);
    /// - any other scheme → `UnsupportedScheme`.
    pub fn parse(value: &str) -> Result<DbLocation, LocationError> {
        let Some((scheme, rest)) = value.split_once("://") else {
            return Ok(DbLocation::Sqlite { dir: PathBuf::from(value) });
        };
        match scheme {
            "postgres" | "postgresql" => {
                // The same parser sqlx uses, so what passes here is what the pool will accept;
                // `url::ParseError` never quotes its input.
                url::Url::parse(value).map_err(|e| LocationError::Malformed(e.to_string()))?;
                Ok(DbLocation::Postgres { url: Secret::new(value) })
            }
            "sqlite" => {
                let path = rest.split('?').next().unwrap_or(rest);
                Ok(DbLocation::Sqlite { dir: PathBuf::from(path) })
            }
            // NOTE: a scheme is short and never a secret; the rest of the URL may be.
            other => Err(LocationError::UnsupportedScheme(other.chars().take(32).collect())),
        }
    }
}

/// For people and logs: `SQLite in DIR` or `PostgreSQL at HOST:PORT/DB`, never the user,
/// password or query parameters.
impl fmt::Display for DbLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbLocation::Sqlite { dir } => write!(f, "SQLite in {}", dir.display()),
            DbLocation::Postgres { url } => match url::Url::parse(url.expose()) {
                Ok(u) => {
                    let host = u.host_str().unwrap_or("localhost");
                    let port = u.port().unwrap_or(5432);
                    write!(f, "PostgreSQL at {host}:{port}{}", u.path())
                }
                Err(_) => f.write_str("PostgreSQL"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn postgres(url: &str) -> DbLocation {
        DbLocation::Postgres { url: Secret::new(url) }
    }

    #[test]
    fn the_scheme_decides_the_engine() {
        let pg = "postgres://u:pw@db.example:6543/app?sslmode=disable";
        assert_eq!(DbLocation::parse(pg), Ok(postgres(pg)));
        let pg = "postgresql://u@localhost/app";
        assert_eq!(DbLocation::parse(pg), Ok(postgres(pg)));
        let sqlite = |dir: &str| Ok(DbLocation::Sqlite { dir: PathBuf::from(dir) });
        assert_eq!(DbLocation::parse("./basalt_data"), sqlite("./basalt_data"));
        assert_eq!(DbLocation::parse("sqlite:///srv/data.db?mode=ro"), sqlite("/srv/data.db"));
        assert_eq!(DbLocation::parse("sqlite://rel/dir"), sqlite("rel/dir"));
    }

    #[test]
    fn other_schemes_and_broken_urls_are_refused_without_the_url() {
        let e = DbLocation::parse("mysql://u:secret@h/db").expect_err("mysql");
        assert_eq!(e, LocationError::UnsupportedScheme("mysql".into()));
        let msg = e.to_string();
        assert!(msg.contains("unsupported database URL") && !msg.contains("secret"), "{msg}");
        for broken in ["postgres://u:secret@h:notaport/db", "postgres://u:secret@[::1/db"] {
            let e = DbLocation::parse(broken).expect_err(broken).to_string();
            assert!(e.starts_with("malformed PostgreSQL URL") && !e.contains("secret"), "{e}");
        }
        // Case matters, as it always did: `Postgres://` is not a PostgreSQL URL here.
        assert!(DbLocation::parse("Postgres://h/db").is_err());
    }

    #[test]
    fn display_names_the_place_without_credentials() {
        let pg = postgres("postgres://admin:hunter2@db.example/app?password=hunter2");
        assert_eq!(pg.to_string(), "PostgreSQL at db.example:5432/app");
        assert!(!format!("{pg:?}").contains("hunter2"));
        let lite = DbLocation::Sqlite { dir: PathBuf::from("./data") };
        assert_eq!(lite.to_string(), "SQLite in ./data");
    }
}
