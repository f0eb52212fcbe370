//! A temp store for tests: the embedded SQLite backend in a temp folder, or PostgreSQL on a
//! throwaway database with its blobs in a temp folder; and a `Directory` over it with a domain
//! and accounts already made.

use std::path::Path;
use std::sync::Arc;

use wharf_directory::{Directory, DirectoryConfig};
use wharf_store::queue::QueueStore;
use wharf_store::{Account, NewAccount, Store, StoreConfig};

use crate::postgres::TempDatabase;

/// The store backend a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    /// 127.0.0.1:5432, user postgres; each `TestStore` creates and drops its own database.
    Postgres,
}

/// Where a test's store lives. Open it (again, to test restarts) with `open`; the files and the
/// database go away when this drops, so keep it after every handle opened on it.
pub struct TestStore {
    pub config: StoreConfig,
    pg: Option<TempDatabase>,
    dir: tempfile::TempDir,
}

impl TestStore {
    pub fn new(backend: Backend) -> TestStore {
        let dir = tempfile::tempdir().expect("a temp folder");
        let (config, pg) = match backend {
            Backend::Sqlite => (
                StoreConfig {
                    // Tests see a body go with its last reference at once; the grace period
                    // has its own test.
                    blob_grace: std::time::Duration::ZERO,
                    ..wharf_store::embedded_config(dir.path()).expect("an embedded store config")
                },
                None,
            ),
            Backend::Postgres => {
                let db = TempDatabase::create("wharf_test");
                let config = StoreConfig {
                    url: db.url(),
                    blob_dir: dir.path().join("blobs"),
                    blob_s3: None,
                    blob_grace: std::time::Duration::ZERO,
                };
                (config, Some(db))
            }
        };
        TestStore { config, pg, dir }
    }

    /// The embedded backend in a fresh temp folder.
    pub fn sqlite() -> TestStore {
        TestStore::new(Backend::Sqlite)
    }

    pub fn backend(&self) -> Backend {
        if self.pg.is_some() {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    /// The temp folder (SQLite file and blobs, or blobs only).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn blob_dir(&self) -> &Path {
        &self.config.blob_dir
    }

    pub async fn open(&self) -> Arc<dyn Store> {
        wharf_store::open(&self.config)
            .await
            .unwrap_or_else(|e| panic!("opening the test store {}: {e}", self.config.url))
    }

    /// The store with its queue and report tallies (`wharf_store::open_all`).
    pub async fn open_all(&self) -> wharf_store::Opened {
        wharf_store::open_all(&self.config, wharf_store::PgTimeouts::default())
            .await
            .unwrap_or_else(|e| panic!("opening the test store {}: {e}", self.config.url))
    }

    pub async fn open_with_queue(&self) -> (Arc<dyn Store>, Arc<dyn QueueStore>) {
        wharf_store::open_with_queue(&self.config)
            .await
            .unwrap_or_else(|e| panic!("opening the test store {}: {e}", self.config.url))
    }
}

/// A `Directory` over a fresh `TestStore`.
pub struct TestDirectory {
    pub directory: Directory,
    pub store: Arc<dyn Store>,
    // Dropped after the handles (field order): the database and files outlive them.
    pub files: TestStore,
}

impl TestDirectory {
    /// An empty store (no domain).
    pub async fn new(backend: Backend, cfg: DirectoryConfig) -> TestDirectory {
        let files = TestStore::new(backend);
        let store = files.open().await;
        let directory = Directory::new(store.clone(), cfg);
        TestDirectory {
            directory,
            store,
            files,
        }
    }

    /// The domain of the first address and every account in `addresses`, all with `password`
    /// and no quota, on the embedded backend with the default directory settings.
    pub async fn with_accounts(addresses: &[&str], password: &str) -> TestDirectory {
        let t = TestDirectory::new(Backend::Sqlite, DirectoryConfig::default()).await;
        seed_accounts(&t.directory, addresses, password).await;
        t
    }

    pub fn path(&self) -> &Path {
        self.files.path()
    }
}

/// Creates the domains of `addresses` (when missing) and the accounts, with `password` and no
/// quota; returns the accounts in order.
pub async fn seed_accounts(dir: &Directory, addresses: &[&str], password: &str) -> Vec<Account> {
    let mut out = Vec::with_capacity(addresses.len());
    for address in addresses {
        let domain = address
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or_else(|| panic!("not an address: {address}"));
        let known = dir
            .store()
            .get_domain(domain)
            .await
            .unwrap_or_else(|e| panic!("reading domain {domain}: {e}"));
        if known.is_none() {
            dir.add_domain(domain)
                .await
                .unwrap_or_else(|e| panic!("adding domain {domain}: {e}"));
        }
        out.push(
            dir.add_account(address, password, 0)
                .await
                .unwrap_or_else(|e| panic!("adding account {address}: {e}")),
        );
    }
    out
}

/// An account made straight in the store (its domain too, when missing), with a placeholder
/// password hash: for store tests, where nobody logs in.
pub async fn store_account(store: &dyn Store, address: &str, quota_bytes: i64) -> Account {
    let domain = address
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or_else(|| panic!("not an address: {address}"));
    let known = store
        .get_domain(domain)
        .await
        .unwrap_or_else(|e| panic!("reading domain {domain}: {e}"));
    if known.is_none() {
        store
            .create_domain(domain)
            .await
            .unwrap_or_else(|e| panic!("creating domain {domain}: {e}"));
    }
    store
        .create_account(NewAccount {
            address: address.into(),
            secret_hash: "$argon2id$fake".into(),
            scram_sha256: String::new(),
            quota_bytes,
        })
        .await
        .unwrap_or_else(|e| panic!("creating account {address}: {e}"))
}

/// The blob files under a blob directory (not the `tmp` staging folder, not dot files).
pub fn blob_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries =
            std::fs::read_dir(&d).unwrap_or_else(|e| panic!("reading {}: {e}", d.display()));
        for e in entries {
            let e = e.unwrap_or_else(|e| panic!("reading {}: {e}", d.display()));
            let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if is_dir {
                if e.file_name() != "tmp" {
                    stack.push(e.path());
                }
            } else if !e.file_name().to_string_lossy().starts_with('.') {
                out.push(e.path());
            }
        }
    }
    out
}

/// Runs each listed `async fn name(backend: Backend)` once per backend, as the tests
/// `sqlite::name` and `postgres::name`, on a multi-thread runtime (2 workers, or `threads = N;`).
#[macro_export]
macro_rules! on_both_backends {
    (threads = $threads:literal; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = $threads)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = $threads)]
                async fn $name() {
                    super::$name($crate::Backend::Postgres).await
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        $crate::on_both_backends!(threads = 2; $($name),*);
    };
}
