//! Shared test helpers: a real SCRAM client (Python `scramp`) driven as a subprocess, and a
//! directory on a fresh embedded store.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// Client side of a SCRAM-SHA-256 exchange, performed by the `scramp` library.
/// Protocol on its stdio: it prints client-first, reads server-first, prints client-final, reads
/// server-final, then prints `OK` or `FAIL <reason>`.
const CLIENT: &str = r#"
import sys
try:
    import scramp
except ImportError:
    print("NOSCRAMP", flush=True)
    sys.exit(3)
user, password = sys.argv[1], sys.argv[2]
c = scramp.ScramClient(["SCRAM-SHA-256"], user, password)
print(c.get_client_first(), flush=True)
c.set_server_first(sys.stdin.readline().rstrip("\n"))
print(c.get_client_final(), flush=True)
try:
    c.set_server_final(sys.stdin.readline().rstrip("\n"))
except Exception as e:
    print("FAIL", e, flush=True)
    sys.exit(1)
print("OK", flush=True)
"#;

pub struct ScrampClient {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl ScrampClient {
    pub fn start(user: &str, password: &str) -> ScrampClient {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(CLIENT)
            .arg(user)
            .arg(password)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 must be installed for the SCRAM client tests");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        ScrampClient {
            child,
            stdin,
            stdout,
        }
    }

    pub fn read(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let line = line.trim_end_matches('\n').to_string();
        assert_ne!(
            line, "NOSCRAMP",
            "the Python package scramp is required: pip install scramp"
        );
        line
    }

    pub fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }
}

impl Drop for ScrampClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use wharf_directory::{Directory, DirectoryConfig};

pub const IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
pub const DOMAIN: &str = "example.test";
pub const PASSWORD: &str = "correct horse battery";

/// Short delays so tests can watch them; a long window, so that slow machines still count every
/// failure of a test in one window (tests of recovery shorten it).
pub fn fast_config() -> DirectoryConfig {
    DirectoryConfig {
        auth_fail_delay_base: Duration::from_millis(20),
        auth_fail_max_delay: Duration::from_millis(80),
        auth_ip_lockout_after: 100,
        auth_account_lockout_after: 5,
        auth_lockout: Duration::from_secs(60),
        auth_known_source_ttl: Duration::from_secs(3600),
        credential_cache_ttl: Duration::from_secs(60),
        min_password_len: 10,
    }
}

/// A directory on a fresh embedded store with the domain `example.test`.
pub async fn directory(cfg: DirectoryConfig) -> (tempfile::TempDir, Directory) {
    let tmp = tempfile::tempdir().unwrap();
    let store = wharf_store::open_embedded(tmp.path()).await.unwrap();
    let dir = Directory::new(store, cfg);
    dir.add_domain(DOMAIN).await.unwrap();
    (tmp, dir)
}

/// The store backend a test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    /// 127.0.0.1:5432, user postgres; the test creates and drops its own database.
    Postgres,
}

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/test";

struct PgDb {
    name: String,
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut c) = sqlx::PgConnection::connect(PG_ADMIN).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut c)
                        .await;
                }
            });
        })
        .join();
    }
}

/// A directory with the domain `example.test` on a fresh store of the given backend.
pub struct Fixture {
    pub dir: Directory,
    // Dropped after `dir` (field order): the database and files outlive the store handle.
    _pg: Option<PgDb>,
    _tmp: tempfile::TempDir,
}

pub async fn fixture(backend: Backend, cfg: DirectoryConfig) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let (store, pg) = match backend {
        Backend::Sqlite => (wharf_store::open_embedded(tmp.path()).await.unwrap(), None),
        Backend::Postgres => {
            use sqlx::Connection;
            let name = format!("wharf_directory_{:016x}", rand::random::<u64>());
            let mut c = sqlx::PgConnection::connect(PG_ADMIN)
                .await
                .expect("PostgreSQL on 127.0.0.1:5432 (user postgres, trust)");
            let sql = format!("CREATE DATABASE {name}");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut c)
                .await
                .unwrap();
            let pg = PgDb { name: name.clone() };
            let cfg = wharf_store::StoreConfig {
                url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
                blob_dir: tmp.path().join("blobs"),
            };
            (wharf_store::open(&cfg).await.unwrap(), Some(pg))
        }
    };
    let dir = Directory::new(store, cfg);
    dir.add_domain(DOMAIN).await.unwrap();
    Fixture {
        dir,
        _pg: pg,
        _tmp: tmp,
    }
}

/// Runs each listed `async fn name(backend: Backend)` once per backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            )*
        }
    };
}
