//! An isolated database per test: a temp SQLite file, or — when `TEST_DATABASE_URL` names a
//! PostgreSQL server — a fresh `castellan_test_<unix>_<uuid>` database, dropped when the test
//! ends. Databases left behind by a killed run are swept when the first test starts.

use std::sync::Once;

use sea_orm::{ConnectionTrait, Database};

pub enum TestDb {
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        admin_url: String,
        name: String,
        url: String,
    },
}

impl TestDb {
    pub async fn new() -> TestDb {
        match std::env::var("TEST_DATABASE_URL") {
            Ok(admin) if !admin.trim().is_empty() => Self::postgres(admin).await,
            _ => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("castellan.db").display()
                );
                TestDb::Sqlite { _dir: dir, url }
            }
        }
    }

    async fn postgres(admin_url: String) -> TestDb {
        static SWEEP: Once = Once::new();
        let admin = Database::connect(admin_url.as_str())
            .await
            .expect("TEST_DATABASE_URL is set but PostgreSQL does not answer");
        let mut sweep = false;
        SWEEP.call_once(|| sweep = true);
        if sweep {
            sweep_leftovers(&admin).await;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let name = format!("castellan_test_{now}_{}", uuid::Uuid::new_v4().simple());
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        let _ = admin.close().await;
        let url = with_database(&admin_url, &name);
        TestDb::Postgres {
            admin_url,
            name,
            url,
        }
    }

    pub fn url(&self) -> &str {
        match self {
            TestDb::Sqlite { url, .. } | TestDb::Postgres { url, .. } => url,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, TestDb::Postgres { .. })
    }
}

/// Replaces the database name in a PostgreSQL URL.
fn with_database(admin_url: &str, name: &str) -> String {
    let mut url = url::Url::parse(admin_url).expect("TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// Drops test databases older than an hour (left by an interrupted run).
async fn sweep_leftovers(admin: &sea_orm::DatabaseConnection) {
    use sea_orm::{FromQueryResult, Statement};
    #[derive(FromQueryResult)]
    struct Row {
        datname: String,
    }
    let Ok(rows) = Row::find_by_statement(Statement::from_string(
        admin.get_database_backend(),
        "SELECT datname FROM pg_database WHERE datname LIKE 'castellan\\_test\\_%'",
    ))
    .all(admin)
    .await
    else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for row in rows {
        let created: u64 = row
            .datname
            .split('_')
            .nth(2)
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        if now.saturating_sub(created) > 3600 {
            let _ = admin
                .execute_unprepared(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    row.datname
                ))
                .await;
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres {
            admin_url, name, ..
        } = self
        {
            let admin_url = admin_url.clone();
            let name = name.clone();
            // Drop runs inside the test's runtime: do the async work on a thread of its own.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async {
                    if let Ok(admin) = Database::connect(admin_url.as_str()).await {
                        let _ = admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .await;
                        let _ = admin.close().await;
                    }
                });
            })
            .join();
        }
    }
}
