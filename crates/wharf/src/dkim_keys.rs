//! DKIM signing keys, kept in the store so every node of it signs with the same keys: one
//! `node_state` row per key (scope `dkim`, name `<domain>/<selector>`), its PEM sealed with the
//! node-state key (`state_key`). `wharf dkim generate` and the API add keys; `serve` loads them
//! at start and on reload, so a domain with both an RSA and an Ed25519 key gets both signatures.
//!
//! Keys of earlier versions were files, `<data_dir>/dkim/<domain>/<selector>.pem`: `import_files`
//! moves each into the store (renamed `.pem.imported` once stored, so it is not imported again
//! after the key was deleted from the store).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use wharf_outbound::dkim::{self, Algorithm, DkimKey, DkimSigners, GeneratedKey};
use wharf_store::Store;

use crate::cli::DkimAlgo;
use crate::state_key::StateKey;
use crate::storage::store_err;

const SCOPE: &str = "dkim";

/// The folder of the key files of earlier versions.
pub fn key_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("dkim")
}

/// One signing key, opened.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub domain: String,
    pub selector: String,
    pub pem: Vec<u8>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoredKey({}/{})", self.domain, self.selector)
    }
}

fn row_name(domain: &str, selector: &str) -> String {
    format!("{domain}/{selector}")
}

/// What the sealed PEM is bound to (see `StateKey::seal`).
fn context(name: &str) -> String {
    format!("dkim:{name}")
}

/// A selector is one DNS label (RFC 6376 §3.1 allows dotted ones; one label keeps names plain).
pub fn valid_selector(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// `202611e` / `202611r`: dated, so a rotated key gets a new selector and both can be published.
pub fn default_selector(algo: DkimAlgo, now: chrono::DateTime<chrono::Utc>) -> String {
    let suffix = match algo {
        DkimAlgo::Ed25519 => 'e',
        DkimAlgo::Rsa => 'r',
    };
    format!("{}{suffix}", now.format("%Y%m"))
}

/// Every key in the store, sorted by domain and selector. A key that does not open stops the
/// caller: signing silently without it would fail DMARC for that domain.
pub async fn load(store: &dyn Store, key: &StateKey) -> Result<Vec<StoredKey>> {
    let rows = store.node_state_list(SCOPE).await.map_err(store_err)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let Some((domain, selector)) = row.name.split_once('/') else {
            bail!("DKIM key row {:?} is not domain/selector", row.name);
        };
        let pem = key
            .open_value(&context(&row.name), &row.value)
            .with_context(|| format!("DKIM key {}", row.name))?;
        out.push(StoredKey {
            domain: domain.to_string(),
            selector: selector.to_string(),
            pem,
        });
    }
    out.sort_by(|a, b| (&a.domain, &a.selector).cmp(&(&b.domain, &b.selector)));
    Ok(out)
}

/// The keys of one domain.
pub fn of_domain<'a>(
    keys: &'a [StoredKey],
    domain: &'a str,
) -> impl Iterator<Item = &'a StoredKey> {
    keys.iter().filter(move |k| k.domain == domain)
}

/// Signers for every key, and a line per key for the logs. A key that does not parse is named.
pub fn signers(keys: &[StoredKey]) -> Result<(DkimSigners, Vec<String>)> {
    let mut signers = DkimSigners::new();
    let mut loaded = Vec::new();
    for k in keys {
        let key = DkimKey::from_pem(&k.domain, &k.selector, &k.pem)
            .map_err(|e| anyhow!("DKIM key {}/{}: {e}", k.domain, k.selector))?;
        loaded.push(format!("{}/{} ({:?})", k.domain, k.selector, key.algorithm));
        signers.add(key);
    }
    Ok((signers, loaded))
}

/// Stores a key, sealed; false when the domain already has one under this selector (a
/// published key must not change under its selector).
async fn store_key(
    store: &dyn Store,
    key: &StateKey,
    domain: &str,
    selector: &str,
    pem: &[u8],
) -> Result<bool> {
    let name = row_name(domain, selector);
    let sealed = key.seal(&context(&name), pem)?;
    store
        .node_state_put(
            SCOPE,
            &name,
            &sealed,
            None,
            chrono::Utc::now().timestamp(),
            true,
        )
        .await
        .map_err(store_err)
}

/// Whether the domain has a key under this selector.
pub async fn exists(store: &dyn Store, domain: &str, selector: &str) -> Result<bool> {
    Ok(store
        .node_state_get(SCOPE, &row_name(domain, selector))
        .await
        .map_err(store_err)?
        .is_some())
}

/// Creates and stores a key; refuses to replace an existing one (its record may be published).
pub async fn generate(
    store: &dyn Store,
    state: &StateKey,
    domain: &str,
    selector: Option<&str>,
    algo: DkimAlgo,
) -> Result<GeneratedKey> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if !crate::config::valid_hostname(&domain) {
        bail!("invalid domain {domain}");
    }
    let selector = match selector {
        Some(s) => s.to_ascii_lowercase(),
        None => default_selector(algo, chrono::Utc::now()),
    };
    if !valid_selector(&selector) {
        bail!("invalid selector {selector}: use letters, digits and inner hyphens (one DNS label)");
    }
    let algorithm = match algo {
        DkimAlgo::Ed25519 => Algorithm::Ed25519,
        DkimAlgo::Rsa => Algorithm::Rsa,
    };
    let (d, s) = (domain.clone(), selector.clone());
    // RSA generation takes a while: off the async threads.
    let key = tokio::task::spawn_blocking(move || dkim::generate(&d, &s, algorithm))
        .await
        .map_err(|e| anyhow!("key generation: {e}"))?
        .map_err(|e| anyhow!("cannot generate the key: {e}"))?;
    if !store_key(
        store,
        state,
        &domain,
        &selector,
        key.private_key_pem.as_bytes(),
    )
    .await?
    {
        return Err(SelectorTaken { domain, selector }.into());
    }
    Ok(key)
}

/// `generate` found the selector taken (also by a generation running at the same moment):
/// callers tell it apart from other failures with `downcast_ref`.
#[derive(Debug)]
pub struct SelectorTaken {
    pub domain: String,
    pub selector: String,
}

impl std::fmt::Display for SelectorTaken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} already has a key with selector {}; choose another --selector (a published key must not change under its selector)",
            self.domain, self.selector
        )
    }
}

impl std::error::Error for SelectorTaken {}

/// Removes a key; false when there was none.
pub async fn delete(store: &dyn Store, domain: &str, selector: &str) -> Result<bool> {
    store
        .node_state_delete(SCOPE, &row_name(domain, selector))
        .await
        .map_err(store_err)
}

/// Moves the key files of earlier versions into the store: each file that parses as a key is
/// stored (unless the store has that selector already) and renamed `.pem.imported`. Returns
/// `domain/selector` of each imported key. A file that does not parse stays and is named.
pub async fn import_files(
    data_dir: &Path,
    store: &dyn Store,
    state: &StateKey,
) -> Result<Vec<String>> {
    let root = key_dir(data_dir);
    let domains = match fs::read_dir(&root) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(anyhow!("cannot read {}: {e}", root.display())),
    };
    let mut files = Vec::new();
    for d in domains {
        let d = d.with_context(|| format!("cannot read {}", root.display()))?;
        if !d.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let domain = d.file_name().to_string_lossy().to_ascii_lowercase();
        let entries = fs::read_dir(d.path())
            .with_context(|| format!("cannot read {}", d.path().display()))?;
        for f in entries {
            let path = f
                .with_context(|| format!("cannot read {}", d.path().display()))?
                .path();
            if let Some(selector) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".pem"))
            {
                files.push((domain.clone(), selector.to_ascii_lowercase(), path.clone()));
            }
        }
    }
    files.sort();
    let mut imported = Vec::new();
    for (domain, selector, path) in files {
        let pem = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        DkimKey::from_pem(&domain, &selector, &pem)
            .map_err(|e| anyhow!("DKIM key {}: {e}", path.display()))?;
        if store_key(store, state, &domain, &selector, &pem).await? {
            imported.push(row_name(&domain, &selector));
        } else {
            tracing::warn!(
                file = %path.display(),
                "a DKIM key file names a selector the store already has: the store's key is kept"
            );
        }
        let done = path.with_extension("pem.imported");
        fs::rename(&path, &done)
            .with_context(|| format!("cannot rename {} after importing it", path.display()))?;
    }
    if !imported.is_empty() {
        tracing::info!(keys = %imported.join(", "), "DKIM key files moved into the store");
    }
    Ok(imported)
}

/// Imports any key files of earlier versions, then loads every key: what `serve` and a reload do.
pub async fn import_and_load(
    data_dir: &Path,
    store: &dyn Store,
    state: &StateKey,
) -> Result<Vec<StoredKey>> {
    import_files(data_dir, store, state).await?;
    load(store, state).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use wharf_testkit::store::TestStore;

    #[tokio::test]
    async fn generate_then_load_both_algorithms() {
        let files = TestStore::sqlite();
        let store = files.open().await;
        let dir = tempfile::tempdir().unwrap();
        let state = StateKey::open_at(&dir.path().join("state.key"), &*store)
            .await
            .unwrap();
        let ed = generate(
            &*store,
            &state,
            "Example.TEST",
            Some("s1"),
            DkimAlgo::Ed25519,
        )
        .await
        .unwrap();
        assert_eq!(ed.dns_name, "s1._domainkey.example.test");
        assert!(ed.txt_value.starts_with("v=DKIM1; k=ed25519; p="));
        // Sealed in the store: the PEM is not there in clear.
        let row = store
            .node_state_get("dkim", "example.test/s1")
            .await
            .unwrap()
            .unwrap();
        assert!(!row.value.windows(11).any(|w| w == b"PRIVATE KEY"));
        let rsa = generate(&*store, &state, "example.test", Some("s2"), DkimAlgo::Rsa)
            .await
            .unwrap();
        assert!(rsa.txt_value.starts_with("v=DKIM1; k=rsa; p="));
        let again = generate(&*store, &state, "example.test", Some("s1"), DkimAlgo::Rsa).await;
        assert!(again.unwrap_err().to_string().contains("already has a key"));
        assert!(
            generate(&*store, &state, "example.test", Some("a.b"), DkimAlgo::Rsa)
                .await
                .is_err()
        );
        let keys = load(&*store, &state).await.unwrap();
        let (signers, loaded) = signers(&keys).unwrap();
        assert_eq!(loaded.len(), 2, "{loaded:?}");
        let signed = signers
            .sign(b"From: a@example.test\r\nSubject: x\r\n\r\nbody\r\n")
            .unwrap();
        let text = String::from_utf8(signed).unwrap();
        assert_eq!(text.matches("DKIM-Signature:").count(), 2, "{text}");
        assert!(text.contains("a=ed25519-sha256") && text.contains("a=rsa-sha256"));
        assert!(delete(&*store, "example.test", "s1").await.unwrap());
        assert!(!delete(&*store, "example.test", "s1").await.unwrap());
        assert_eq!(load(&*store, &state).await.unwrap().len(), 1);
        // Another key file does not open what this one sealed.
        let other = StateKey::open_at(&dir.path().join("other.key"), &*store).await;
        assert!(other.unwrap_err().to_string().contains("does not exist"));
        std::fs::write(
            dir.path().join("other.key"),
            format!("{}\n", "11".repeat(32)),
        )
        .unwrap();
        let other = StateKey::open_at(&dir.path().join("other.key"), &*store).await;
        assert!(
            other
                .unwrap_err()
                .to_string()
                .contains("is not the node-state key")
        );
    }

    #[tokio::test]
    async fn key_files_of_earlier_versions_move_into_the_store() {
        let files = TestStore::sqlite();
        let store = files.open().await;
        let dir = tempfile::tempdir().unwrap();
        let state = StateKey::open_at(&dir.path().join("state.key"), &*store)
            .await
            .unwrap();
        let d = key_dir(dir.path()).join("example.test");
        fs::create_dir_all(&d).unwrap();
        let made = dkim::generate("example.test", "old", Algorithm::Ed25519).unwrap();
        fs::write(d.join("old.pem"), &made.private_key_pem).unwrap();
        let keys = import_and_load(dir.path(), &*store, &state).await.unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(
            (keys[0].domain.as_str(), keys[0].selector.as_str()),
            ("example.test", "old")
        );
        assert_eq!(keys[0].pem, made.private_key_pem.as_bytes());
        assert!(!d.join("old.pem").exists() && d.join("old.pem.imported").exists());
        // Deleted from the store, it is not imported again.
        delete(&*store, "example.test", "old").await.unwrap();
        assert!(
            import_and_load(dir.path(), &*store, &state)
                .await
                .unwrap()
                .is_empty()
        );
        // A broken file is named and stays.
        fs::write(d.join("bad.pem"), "not a key").unwrap();
        let e = import_files(dir.path(), &*store, &state)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.pem"), "{e}");
        assert!(d.join("bad.pem").exists());
    }

    #[test]
    fn default_selectors_are_dated() {
        let t = chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap();
        assert_eq!(default_selector(DkimAlgo::Ed25519, t), "202611e");
        assert_eq!(default_selector(DkimAlgo::Rsa, t), "202611r");
    }
}
