//! A throwaway database on the local PostgreSQL (127.0.0.1:5432, user postgres, trust auth):
//! created with a unique name, dropped (forcibly, with its connections) when the handle drops.
//!
//! Creation and removal run on a thread of their own with its own runtime, so the same handle
//! works from async tests, from plain `#[test]` functions and from `Drop` inside a runtime.

use sqlx::Connection;

/// Where the admin connection goes; the `test` database exists on every test machine.
const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub struct TempDatabase {
    name: String,
}

impl TempDatabase {
    /// Creates `<prefix>_<random hex>`; `prefix` names the crate or test for whoever looks.
    pub fn create(prefix: &str) -> TempDatabase {
        assert!(
            prefix.starts_with(|c: char| c.is_ascii_lowercase())
                && prefix
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "database prefix must be a lower-case letter, then lower-case letters, digits and _: {prefix}"
        );
        let name = format!("{prefix}_{:016x}", rand::random::<u64>());
        if let Err(e) = admin(format!("CREATE DATABASE {name}")) {
            panic!("creating {name} on PostgreSQL 127.0.0.1:5432 (user postgres, trust): {e}");
        }
        TempDatabase { name }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The connection URL of this database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        let _ = admin(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

/// Runs one statement on the admin connection, on a thread with its own runtime.
fn admin(sql: String) -> Result<(), String> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let mut c = sqlx::PgConnection::connect(ADMIN_URL)
                .await
                .map_err(|e| e.to_string())?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut c)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    })
    .join()
    .unwrap_or_else(|_| Err("the database thread panicked".into()))
}
