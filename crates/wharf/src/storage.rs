//! The data folder and the store as every verb opens them: private folders and files, the store
//! and directory settings derived from the configuration, opening the directory, and the one-line
//! errors store and directory failures become. Depends on `config` only, so any module may use it.

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use wharf_directory::{Directory, DirectoryError};
use wharf_store::{Account, Store, StoreError};

use crate::config::Loaded;

pub fn store_config(cfg: &Loaded) -> wharf_store::StoreConfig {
    wharf_store::StoreConfig {
        url: cfg.store_url(),
        blob_dir: cfg.blob_dir(),
        blob_s3: cfg.blob_s3(),
        blob_grace: Duration::from_secs(cfg.config.store.blob_grace_secs),
    }
}

/// How often the blob sweep runs: half the grace period, within 10 s .. 5 min.
pub fn blob_sweep_every(grace: Duration) -> Duration {
    (grace / 2).clamp(Duration::from_secs(10), Duration::from_secs(300))
}

/// Removes, now and then, the message bodies whose grace period is over and crash leftovers
/// (`Store::sweep_orphans`). Every node runs one: the store makes concurrent sweeps safe.
pub fn spawn_blob_sweep(store: Arc<dyn Store>, grace: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(blob_sweep_every(grace));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await;
        loop {
            every.tick().await;
            match store.sweep_orphans().await {
                Ok(0) => {}
                Ok(removed) => {
                    tracing::info!(removed, "store: removed unreferenced message bodies")
                }
                Err(e) => tracing::warn!(error = %e, "store: blob sweep failed (next run retries)"),
            }
        }
    })
}

/// Forgets, once an hour, the UIDs expunged more than `horizon` ago (QRESYNC tombstones), so
/// that table stays bounded. Every node runs one; concurrent prunes are harmless.
pub fn spawn_tombstone_prune(
    store: Arc<dyn Store>,
    horizon: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            match store.prune_tombstones(horizon).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "store: forgot old expunged UIDs"),
                Err(e) => {
                    tracing::warn!(error = %e, "store: tombstone prune failed (next run retries)")
                }
            }
        }
    })
}

/// Fills in the header search text of messages stored before Wharf kept it, a batch at a time
/// with pauses between, so an upgraded store serves while it catches up; ends when none is left.
pub fn spawn_header_text_backfill(store: Arc<dyn Store>) -> tokio::task::JoinHandle<()> {
    const BATCH: usize = 200;
    tokio::spawn(async move {
        let mut done = 0usize;
        loop {
            match store.backfill_header_text(BATCH).await {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) => {
                    tracing::warn!(error = %e, "store: header text backfill failed (retrying)");
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if done > 0 {
            tracing::info!(messages = done, "store: header search text backfilled");
        }
    })
}

/// Extracts the text of document attachments (PDF, DOCX, XLSX, PPTX, ODT/ODS/ODP) of stored
/// messages into their search text, in small batches, for the life of the server (issue 22): new
/// messages are picked up within `IDLE` of their delivery. Extraction is the store's, on blocking
/// threads within a size, text and time budget per message.
pub fn spawn_attachment_text(store: Arc<dyn Store>) -> tokio::task::JoinHandle<()> {
    const BATCH: usize = 16;
    const IDLE: Duration = Duration::from_secs(5);
    tokio::spawn(async move {
        let limits = Default::default();
        loop {
            match store.extract_attachment_text(BATCH, limits).await {
                Ok(0) => tokio::time::sleep(IDLE).await,
                Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(e) => {
                    tracing::warn!(error = %e, "store: attachment text extraction failed (retrying)");
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
            }
        }
    })
}

pub fn directory_config(cfg: &Loaded) -> wharf_directory::DirectoryConfig {
    let d = &cfg.config.directory;
    wharf_directory::DirectoryConfig {
        auth_fail_delay_base: Duration::from_secs(d.auth_fail_delay_base),
        auth_fail_max_delay: Duration::from_secs(d.auth_fail_max_delay),
        auth_ip_lockout_after: d.auth_ip_lockout_after,
        auth_account_lockout_after: d.auth_account_lockout_after,
        auth_lockout: Duration::from_secs(d.auth_lockout),
        auth_known_source_ttl: Duration::from_secs(d.auth_known_source_days.saturating_mul(86_400)),
        credential_cache_ttl: Duration::from_secs(d.credential_cache_ttl),
        min_password_len: d.min_password_len,
        postmaster: Some(
            d.postmaster
                .clone()
                .unwrap_or_else(|| format!("admin@{}", cfg.primary_domain())),
        ),
    }
}

/// How long the PostgreSQL backend waits before answering "temporarily unavailable" (`[store]`).
pub fn pg_timeouts(cfg: &Loaded) -> wharf_store::PgTimeouts {
    let s = &cfg.config.store;
    wharf_store::PgTimeouts {
        acquire: Duration::from_millis(s.pg_acquire_timeout_ms),
        statement: Duration::from_millis(s.pg_statement_timeout_ms),
        heavy_statement: Duration::from_millis(s.pg_heavy_statement_timeout_ms),
    }
}

/// The directory over the configured store, for an admin verb.
pub async fn open_directory(cfg: &Loaded) -> Result<Directory> {
    // An admin verb may be the first to touch the data folder: it gets the same private mode.
    if cfg.config.store.url.is_none() {
        create_private_dir(&cfg.data_dir)?;
    }
    let store = wharf_store::open_with_timeouts(&store_config(cfg), pg_timeouts(cfg))
        .await
        .with_context(|| format!("cannot open the store {}", cfg.store_url()))?;
    Ok(Directory::new(store, directory_config(cfg)))
}

pub async fn find_account(store: &Arc<dyn Store>, address: &str) -> Result<Account> {
    store
        .get_account_by_address(address.trim())
        .await
        .map_err(store_err)?
        .ok_or_else(|| anyhow!("no such account: {}", address.trim()))
}

pub fn store_err(e: StoreError) -> anyhow::Error {
    anyhow!("store: {e}")
}

/// One line naming what went wrong, in the operator's terms.
pub fn directory_error(e: DirectoryError) -> anyhow::Error {
    match e {
        DirectoryError::UnknownDomain(d) => {
            anyhow!("unknown domain {d} (add it first: wharf domain add {d})")
        }
        DirectoryError::DuplicateAccount(a) => anyhow!("account {a} already exists"),
        DirectoryError::WeakPassword(rule) => anyhow!("password refused: {rule}"),
        DirectoryError::InvalidAddress(a) => anyhow!("invalid address: {a}"),
        DirectoryError::NotFound(a) => anyhow!("no such account: {a}"),
        DirectoryError::Store(e) => anyhow!("store: {e}"),
    }
}

/// Creates a folder (and parents) that only its owner can enter: it holds password hashes,
/// mail and private keys. An existing folder keeps the permissions its operator gave it.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the folder {}", dir.display()))
}

/// Creates or replaces a file readable by its owner only (private keys).
pub fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}
