//! Test support for the store's PostgreSQL tests: throw-away databases on a real server
//! (127.0.0.1:5432, user `postgres`, or `BASALT_TEST_POSTGRES_URL`), dropped when their guard
//! goes out of scope, and small field builders. An unreachable server FAILS the tests unless
//! `BASALT_SKIP_POSTGRES=1` is set (CI requires PostgreSQL).

use std::path::Path;

use sqlx::{Connection, Executor, PgConnection};

use crate::model::field::{Field, FieldKind};
use crate::store::Store;

pub(crate) const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A throw-away database, dropped (with its connections) when the guard goes out of scope.
pub(crate) struct TestDb {
    pub(crate) name: String,
    pub(crate) admin_url: String,
    pub(crate) url: String,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin_url.clone(), self.name.clone());
        // Drop may run inside the test's runtime (which cannot block on itself): use a thread
        // with its own runtime.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&admin).await.ok()?;
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                conn.execute(sql.as_str()).await.ok()?;
                conn.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

impl TestDb {
    /// The URL with extra query parameters (e.g. `pool_max_conns=1`).
    pub(crate) fn url_with(&self, query: &str) -> String {
        format!("{}?{query}", self.url)
    }

    pub(crate) async fn store(&self) -> Store {
        Store::open(Path::new("/nonexistent-basalt-data"), Some(&self.url)).await.unwrap()
    }
}

/// Creates a fresh database, or `None` when the server is unreachable and skipping is allowed.
pub(crate) async fn test_db() -> Option<TestDb> {
    let admin_url =
        std::env::var("BASALT_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.into());
    let connected =
        tokio::time::timeout(std::time::Duration::from_secs(10), PgConnection::connect(&admin_url))
            .await;
    let mut conn = match connected {
        Ok(Ok(conn)) => conn,
        failed => {
            let why = match failed {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out after 10 s".into(),
            };
            if std::env::var("BASALT_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
                eprintln!("SKIPPED: PostgreSQL at {admin_url} is unreachable ({why}) and BASALT_SKIP_POSTGRES=1");
                return None;
            }
            panic!(
                "PostgreSQL is required by the store::postgres tests but {admin_url} is \
                 unreachable: {why}. Start PostgreSQL (user postgres, trust auth) or set \
                 BASALT_SKIP_POSTGRES=1 to skip these tests."
            );
        }
    };
    let name = format!("basalt_test_{}", crate::util::new_record_id());
    conn.execute(format!("CREATE DATABASE \"{name}\"").as_str()).await.unwrap();
    let _ = conn.close().await;
    let mut url = url::Url::parse(&admin_url).unwrap();
    url.set_path(&format!("/{name}"));
    url.set_query(None);
    Some(TestDb { name, admin_url, url: url.to_string() })
}

/// `let t = pg!();` — a fresh database, or return from the test when skipping.
macro_rules! pg {
    () => {
        match crate::store::pg_test_db::test_db().await {
            Some(t) => t,
            None => return,
        }
    };
}

pub(crate) fn field(name: &str, kind: FieldKind) -> Field {
    Field {
        id: Field::default_id(kind.type_name(), name),
        name: name.into(),
        system: false,
        hidden: false,
        presentable: false,
        required: false,
        help: String::new(),
        kind,
    }
}

pub(crate) fn text(name: &str) -> Field {
    field(
        name,
        FieldKind::Text {
            min: 0,
            max: 0,
            pattern: String::new(),
            autogenerate_pattern: String::new(),
            primary_key: false,
        },
    )
}

pub(crate) use pg;
