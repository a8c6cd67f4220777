//! Test support for the PostgreSQL store: a throwaway database per test.
//!
//! The tests read an admin URL from `INFRALOG_TEST_POSTGRES` (`.ci/postgres`
//! starts a server and prints one). Without it they are skipped with a line on
//! stderr, except under `CI=true`, where a missing database is a failure: CI must
//! never pass by skipping them.

use std::future::Future;

use tokio_postgres::NoTls;
use uuid::Uuid;

/// The environment variable holding the admin URL.
pub const ADMIN_URL_VARIABLE: &str = "INFRALOG_TEST_POSTGRES";

/// A database made for one test and dropped when this is dropped.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

fn run<T>(work: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the test database")
        .block_on(work)
}

async fn execute(admin_url: &str, statement: &str) -> Result<(), tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(admin_url, NoTls).await?;
    let driver = tokio::spawn(connection);
    let outcome = client.batch_execute(statement).await;
    drop(client);
    let _ = driver.await;
    outcome
}

impl TestDatabase {
    /// A new empty database, or `None` (after saying so) when no server is
    /// configured outside CI.
    pub fn create() -> Option<TestDatabase> {
        let Ok(admin_url) = std::env::var(ADMIN_URL_VARIABLE) else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{ADMIN_URL_VARIABLE} is not set: CI must run the PostgreSQL tests (.ci/postgres)");
            }
            eprintln!("SKIPPED: {ADMIN_URL_VARIABLE} is not set (start one with .ci/postgres)");
            return None;
        };
        let name = format!("infralog_test_{}", Uuid::new_v4().simple());
        run(execute(&admin_url, &format!("CREATE DATABASE {name}")))
            .unwrap_or_else(|e| panic!("creating the test database on {ADMIN_URL_VARIABLE}: {e}"));
        let base = admin_url
            .rsplit_once('/')
            .map(|(base, _)| base)
            .expect("the admin URL is postgres://…/database");
        let url = format!("{base}/{name}");
        Some(TestDatabase {
            admin_url,
            name,
            url,
        })
    }

    /// The URL of the test's database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The first column of the first row of a query (an integer), in the test's
    /// database.
    pub fn query_i64(&self, query: &str) -> Result<i64, tokio_postgres::Error> {
        run(async {
            let (client, connection) = tokio_postgres::connect(&self.url, NoTls).await?;
            let driver = tokio::spawn(connection);
            let value = client.query_one(query, &[]).await.map(|row| row.get(0));
            drop(client);
            let _ = driver.await;
            value
        })
    }

    /// The database's name (for statements made from the admin connection).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs SQL through the admin connection (to cut the test's database off:
    /// `ALTER DATABASE … ALLOW_CONNECTIONS false`, `pg_terminate_backend`).
    pub fn execute_as_admin(&self, statement: &str) -> Result<(), tokio_postgres::Error> {
        run(execute(&self.admin_url, statement))
    }

    /// Runs SQL in the test's database (damage injection, inspection).
    pub fn execute(&self, statement: &str) -> Result<(), tokio_postgres::Error> {
        run(execute(&self.url, statement))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(error) = run(execute(&self.admin_url, &statement)) {
            eprintln!("dropping the test database {}: {error}", self.name);
        }
    }
}
