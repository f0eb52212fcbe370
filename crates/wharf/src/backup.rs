//! `wharf backup DIR` and `wharf restore DIR`: an online, consistent copy of the store (see
//! `wharf_store::backup` for the guarantee) plus the data folder's key material, and its restore
//! into a fresh data folder.
//!
//! A backup folder holds:
//! - `wharf.db`: the SQLite snapshot (one self-contained file);
//! - `blobs/ab/cd/<sha256>`: every message body and queued message the snapshot names;
//! - `files/dkim/`, `files/acme/`, `files/tls/`: those folders of `data_dir`, when present
//!   (DKIM signing keys published in DNS, the ACME account and certificates, the generated
//!   self-signed certificate);
//! - `files/state.key`: the node-state key, which the DKIM keys in the database are sealed with
//!   (restored where `[server] state_key_file` says, unless a key is already there);
//! - `manifest.json`, written last (format, wharf version, backend, counts, the database's
//!   SHA-256): a folder without it is an unfinished backup and restore refuses it.
//!
//! Not included: `wharf.toml` and files it names outside the data folder (TLS certificates of
//! `[tls]`, Sieve scripts of `[sieve]`), and `data/spool` (transient).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::config::Loaded;
use crate::storage::{create_private_dir, store_config, store_err};

/// The data folder's folders copied along (under `files/` in the backup).
const KEY_FOLDERS: [&str; 3] = ["dkim", "acme", "tls"];
/// Where they go inside the backup folder.
const FILES_DIR: &str = "files";
/// The node-state key (`[server] state_key_file`) inside `files/`.
const STATE_KEY_FILE: &str = "state.key";

/// `wharf backup` and `wharf restore` copy a blob folder; bodies in S3 are the bucket's to keep.
fn refuse_s3(cfg: &Loaded) -> Result<()> {
    if let Some(s3) = cfg.blob_s3() {
        bail!(
            "the message bodies are in S3 ({}): back up the database (pg_dump) and the bucket \
             with the object store's own tools (docs/operations.md, Backup)",
            s3.url()
        );
    }
    Ok(())
}

pub async fn backup(cfg: &Loaded, dir: &Path) -> Result<()> {
    refuse_s3(cfg)?;
    let store = store_config(cfg);
    if dir.exists() {
        let mut entries =
            fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        if entries.next().is_some() {
            bail!(
                "backup folder {} is not empty (choose a new folder)",
                dir.display()
            );
        }
    }
    create_private_dir(dir)?;
    let started = std::time::Instant::now();
    let mut copied_files = 0usize;
    for name in KEY_FOLDERS {
        let from = cfg.data_dir.join(name);
        if from.is_dir() {
            copied_files += copy_tree(&from, &dir.join(FILES_DIR).join(name))?;
        }
    }
    // The node-state key: without it the DKIM keys in the database do not open.
    let state_key = crate::state_key::key_path(cfg);
    if state_key.is_file() {
        let to = dir.join(FILES_DIR).join(STATE_KEY_FILE);
        create_private_dir(&dir.join(FILES_DIR))?;
        fs::copy(&state_key, &to)
            .with_context(|| format!("cannot copy {} into the backup", state_key.display()))?;
        fs::File::open(&to)?.sync_all()?;
        copied_files += 1;
    }
    let manifest = wharf_store::backup::backup(&store, dir, env!("CARGO_PKG_VERSION"))
        .await
        .map_err(store_err)?;
    let c = &manifest.counts;
    println!(
        "backup written to {}: {} accounts, {} mailboxes, {} messages, {} queued, {} blobs ({} bytes), {} key files; database sha256 {} ({:.1} s)",
        dir.display(),
        c.accounts,
        c.mailboxes,
        c.messages,
        c.queue,
        c.blobs,
        c.blob_bytes,
        copied_files,
        manifest.database.sha256,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub async fn restore(cfg: &Loaded, dir: &Path) -> Result<()> {
    refuse_s3(cfg)?;
    let store = store_config(cfg);
    // Checked before anything is written: a damaged or foreign folder fails here.
    wharf_store::backup::read_manifest(dir).map_err(store_err)?;
    for name in KEY_FOLDERS {
        let to = cfg.data_dir.join(name);
        if dir.join(FILES_DIR).join(name).is_dir() && non_empty(&to) {
            bail!(
                "{} is not empty; restore only into a fresh data folder",
                to.display()
            );
        }
    }
    create_private_dir(&cfg.data_dir)?;
    let manifest = wharf_store::backup::restore(&store, dir)
        .await
        .map_err(store_err)?;
    let mut copied_files = 0usize;
    for name in KEY_FOLDERS {
        let from = dir.join(FILES_DIR).join(name);
        if from.is_dir() {
            copied_files += copy_tree(&from, &cfg.data_dir.join(name))?;
        }
    }
    let saved_key = dir.join(FILES_DIR).join(STATE_KEY_FILE);
    if saved_key.is_file() {
        let to = crate::state_key::key_path(cfg);
        if !to.exists() {
            if let Some(parent) = to.parent().filter(|p| !p.as_os_str().is_empty()) {
                create_private_dir(parent)?;
            }
            fs::copy(&saved_key, &to).with_context(|| {
                format!("cannot restore the node-state key to {}", to.display())
            })?;
            fs::File::open(&to)?.sync_all()?;
            copied_files += 1;
        }
    }
    // Open it once as the server will: migrations of an older backup run now, and a store that
    // cannot be opened is reported here rather than at the next start.
    let opened = wharf_store::open(&store).await.map_err(store_err)?;
    drop(opened);
    let c = &manifest.counts;
    println!(
        "restored {} (taken {} by wharf {}): {} accounts, {} mailboxes, {} messages, {} queued, {} blobs, {} key files; all hashes verified",
        dir.display(),
        chrono::DateTime::from_timestamp(manifest.created_at, 0)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_else(|| manifest.created_at.to_string()),
        manifest.wharf_version,
        c.accounts,
        c.mailboxes,
        c.messages,
        c.queue,
        c.blobs,
        copied_files
    );
    Ok(())
}

fn non_empty(dir: &Path) -> bool {
    fs::read_dir(dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
}

/// Copies the folder `from` into `to` (created private), files keeping their permissions.
/// Returns how many files were copied. Symbolic links are not followed.
fn copy_tree(from: &Path, to: &Path) -> Result<usize> {
    create_private_dir(to)?;
    let mut count = 0;
    let mut pending: Vec<(PathBuf, PathBuf)> = vec![(from.to_path_buf(), to.to_path_buf())];
    while let Some((src, dst)) = pending.pop() {
        for entry in fs::read_dir(&src).with_context(|| format!("cannot read {}", src.display()))? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let target = dst.join(entry.file_name());
            if kind.is_dir() {
                create_private_dir(&target)?;
                pending.push((entry.path(), target));
            } else if kind.is_file() {
                fs::copy(entry.path(), &target).with_context(|| {
                    format!(
                        "cannot copy {} to {}",
                        entry.path().display(),
                        target.display()
                    )
                })?;
                fs::File::open(&target)?.sync_all()?;
                count += 1;
            }
        }
        fs::File::open(&dst)?.sync_all()?;
    }
    Ok(count)
}
