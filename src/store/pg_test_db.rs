//! Test support for the store's PostgreSQL tests: throw-away databases on a real server, dropped
//! when their guard goes out of scope, and small field builders. Which server, and whether a
//! missing one skips or fails, is decided by `pg_test_server` (shared with `tests/api`).

use sqlx::{Connection, Executor, PgConnection};

use crate::model::field::{Field, FieldKind};
use crate::store::Store;

#[path = "pg_test_server.rs"]
mod pg_test_server;

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
        Store::open(&crate::config::DbLocation::parse(&self.url).unwrap()).await.unwrap()
    }
}

/// Creates a fresh database, or `None` when there is no server and skipping is allowed.
pub(crate) async fn test_db() -> Option<TestDb> {
    let admin_url = format!("{}/postgres", pg_test_server::server("a store PostgreSQL test")?);
    // The server answered the probe: failing to log in now is a real failure, not a skip.
    let connected =
        tokio::time::timeout(std::time::Duration::from_secs(10), PgConnection::connect(&admin_url))
            .await;
    let mut conn = match connected {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => panic!("cannot connect to the PostgreSQL test server: {e}"),
        Err(_) => panic!("connecting to the PostgreSQL test server timed out after 10 s"),
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
