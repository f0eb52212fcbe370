//! The SRS key (`wharf_smtp::srs`): `[sieve] srs_secret` when set, otherwise one key for every
//! node of the store, kept sealed in the shared node state (scope `srs`) and made by the first
//! node that needs it. With a key per node, a bounce to an address that node A rewrote and that
//! reaches node B would be refused (issue 19 item 3).
//!
//! Earlier versions generated the key into `<data_dir>/srs.key`. When the store has no key yet,
//! that file's key becomes the stored one, so addresses it signed still verify; either way the
//! file is then renamed `srs.key.imported`, and a file that differs from the store's key is
//! named in a warning (addresses it signed no longer verify).

use std::path::Path;

use anyhow::{Context as _, Result, anyhow};
use wharf_store::Store;

use crate::config::Loaded;
use crate::state_key::StateKey;
use crate::storage::store_err;

const SCOPE: &str = "srs";
const NAME: &str = "key";
/// Bound into the sealed value: a value moved to another row does not open as this one.
const CONTEXT: &str = "srs:key";
const LEGACY_FILE: &str = "srs.key";

/// The key SRS signs and verifies with on this node.
pub async fn srs_key(cfg: &Loaded, store: &dyn Store, state: &StateKey) -> Result<Vec<u8>> {
    match &cfg.config.sieve.srs_secret {
        Some(k) if !k.is_empty() => Ok(k.as_bytes().to_vec()),
        _ => stored(&cfg.data_dir, store, state).await,
    }
}

/// The store's key, made (or imported from the legacy file) when it has none.
async fn stored(data_dir: &Path, store: &dyn Store, state: &StateKey) -> Result<Vec<u8>> {
    let legacy = data_dir.join(LEGACY_FILE);
    let file_key = read_legacy(&legacy)?;
    if let Some(key) = load(store, state).await? {
        if let Some(old) = file_key {
            if old != key {
                tracing::warn!(
                    file = %legacy.display(),
                    "this node's SRS key file differs from the key the store's nodes share: the store's key is used, and bounces to addresses this node rewrote with its own key are refused"
                );
            }
            retire(&legacy)?;
        }
        return Ok(key);
    }
    let (key, imported) = match file_key {
        Some(k) => (k, true),
        None => (
            format!(
                "{:032x}{:032x}",
                rand::random::<u128>(),
                rand::random::<u128>()
            )
            .into_bytes(),
            false,
        ),
    };
    let sealed = state.seal(CONTEXT, &key)?;
    let now = chrono::Utc::now().timestamp();
    let stored_now = store
        .node_state_put(SCOPE, NAME, &sealed, None, now, true)
        .await
        .map_err(store_err)?;
    if !stored_now {
        // Another node stored its key first: everyone uses that one.
        let key = load(store, state)
            .await?
            .ok_or_else(|| anyhow!("the stored SRS key disappeared while it was being read"))?;
        if imported {
            retire(&legacy)?;
        }
        return Ok(key);
    }
    if imported {
        retire(&legacy)?;
        tracing::info!(file = %legacy.display(), "SRS key file moved into the store");
    }
    Ok(key)
}

async fn load(store: &dyn Store, state: &StateKey) -> Result<Option<Vec<u8>>> {
    let Some(row) = store.node_state_get(SCOPE, NAME).await.map_err(store_err)? else {
        return Ok(None);
    };
    state
        .open_value(CONTEXT, &row.value)
        .map(Some)
        .context("the stored SRS key")
}

/// The legacy key file's key, when there is a non-empty one.
fn read_legacy(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read_to_string(path) {
        Ok(k) if !k.trim().is_empty() => Ok(Some(k.trim().as_bytes().to_vec())),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn retire(path: &Path) -> Result<()> {
    let done = path.with_extension("key.imported");
    std::fs::rename(path, &done)
        .with_context(|| format!("cannot rename {} after importing it", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wharf_testkit::store::TestStore;

    fn state_key(dir: &Path) -> std::path::PathBuf {
        dir.join("state.key")
    }

    #[tokio::test]
    async fn one_key_for_every_node_and_a_legacy_file_becomes_it() {
        let files = TestStore::sqlite();
        let store = files.open().await;
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        // Node A has a key file from an earlier version; B has one of its own, joins later.
        std::fs::write(a.path().join(LEGACY_FILE), "old-key-of-a\n").unwrap();
        std::fs::write(b.path().join(LEGACY_FILE), "old-key-of-b\n").unwrap();
        let key_a = StateKey::open_at(&state_key(a.path()), &*store)
            .await
            .unwrap();
        std::fs::copy(state_key(a.path()), state_key(b.path())).unwrap();
        let key_b = StateKey::open_at(&state_key(b.path()), &*store)
            .await
            .unwrap();

        let got_a = stored(a.path(), &*store, &key_a).await.unwrap();
        assert_eq!(got_a, b"old-key-of-a", "A's file kept its addresses valid");
        assert!(!a.path().join(LEGACY_FILE).exists());
        assert!(a.path().join("srs.key.imported").exists());
        let got_b = stored(b.path(), &*store, &key_b).await.unwrap();
        assert_eq!(got_b, got_a, "B uses the shared key, not its file");
        assert!(!b.path().join(LEGACY_FILE).exists());
        // Again: the same key, and nothing in the store is readable without the state key.
        assert_eq!(stored(a.path(), &*store, &key_a).await.unwrap(), got_a);
        let row = store.node_state_get(SCOPE, NAME).await.unwrap().unwrap();
        assert!(!row.value.windows(12).any(|w| w == b"old-key-of-a"));
    }

    #[tokio::test]
    async fn a_new_store_gets_a_random_key_once() {
        let files = TestStore::sqlite();
        let store = files.open().await;
        let dir = tempfile::tempdir().unwrap();
        let key = StateKey::open_at(&state_key(dir.path()), &*store)
            .await
            .unwrap();
        let first = stored(dir.path(), &*store, &key).await.unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(stored(dir.path(), &*store, &key).await.unwrap(), first);
        assert!(!dir.path().join(LEGACY_FILE).exists());
    }
}
