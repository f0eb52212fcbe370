//! The node-state key: seals the secrets that every node of a store shares through the database
//! (DKIM private keys, the ACME account and certificate key) with ChaCha20-Poly1305, so a dump of the database alone does not
//! reveal them. One random 256-bit key per site, in a file each node reads
//! (`[server] state_key_file`, default `<data_dir>/state.key`, hex, mode 0600).
//!
//! The first node to start with no key file and an empty store creates both the file and a check
//! value in the store (`node_state` scope `state`, name `key-check`). A node whose key does not
//! open the check value refuses to start with a message naming the file to copy, instead of
//! failing later on every key it cannot open, or worse, sealing new secrets with a second key.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use wharf_store::Store;

use crate::config::Loaded;

/// The format byte in front of every sealed value.
const SEALED_V1: u8 = 1;
const KEY_LEN: usize = 32;
const CHECK_SCOPE: &str = "state";
const CHECK_NAME: &str = "key-check";
const CHECK_PLAIN: &[u8] = b"wharf node-state key";

pub struct StateKey {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for StateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateKey(..)")
    }
}

fn missing_key(path: &Path) -> anyhow::Error {
    anyhow!(
        "the store holds secrets sealed with a node-state key, and {} does not exist: \
         copy that file from a node of this store (or set [server] state_key_file)",
        path.display()
    )
}

/// Where the key file of this configuration is.
pub fn key_path(cfg: &Loaded) -> PathBuf {
    match &cfg.config.server.state_key_file {
        Some(p) => cfg.resolve(p),
        None => cfg.data_dir.join("state.key"),
    }
}

impl StateKey {
    fn from_bytes(bytes: &[u8]) -> Result<StateKey> {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, bytes)
            .map_err(|_| anyhow!("a node-state key is {KEY_LEN} bytes"))?;
        Ok(StateKey {
            key: LessSafeKey::new(unbound),
            rng: SystemRandom::new(),
        })
    }

    /// Reads the key file: 64 hex digits, surrounding white space allowed.
    pub fn read(path: &Path) -> Result<Option<StateKey>> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(anyhow!(
                    "cannot read the node-state key {}: {e}",
                    path.display()
                ));
            }
        };
        let bytes = hex::decode(text.trim())
            .ok()
            .filter(|b| b.len() == KEY_LEN)
            .ok_or_else(|| {
                anyhow!(
                    "{} is not a node-state key (64 hex digits expected)",
                    path.display()
                )
            })?;
        StateKey::from_bytes(&bytes).map(Some)
    }

    /// Makes a new random key and writes it to `path`, which must not exist (mode 0600).
    fn create(path: &Path) -> Result<StateKey> {
        let mut bytes = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| anyhow!("no randomness for the node-state key"))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::storage::create_private_dir(dir)?;
        }
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot create the node-state key {}", path.display()))?;
        f.write_all(format!("{}\n", hex::encode(bytes)).as_bytes())
            .and_then(|()| f.sync_all())
            .with_context(|| format!("cannot write {}", path.display()))?;
        StateKey::from_bytes(&bytes)
    }

    /// The key of this configuration, checked against the store; created with the check value
    /// when neither exists yet.
    pub async fn open(cfg: &Loaded, store: &dyn Store) -> Result<StateKey> {
        StateKey::open_at(&key_path(cfg), store).await
    }

    /// For commands that only read sealed values (`wharf dns`, `wharf doctor`, listings): the
    /// key when the store has sealed anything, checked; None when it has not (then there is
    /// nothing to open, and no key file is made by a command that may run as another user).
    pub async fn open_existing(cfg: &Loaded, store: &dyn Store) -> Result<Option<StateKey>> {
        let path = key_path(cfg);
        let Some(check) = store
            .node_state_get(CHECK_SCOPE, CHECK_NAME)
            .await
            .map_err(crate::storage::store_err)?
        else {
            return Ok(None);
        };
        let Some(key) = StateKey::read(&path)? else {
            return Err(missing_key(&path));
        };
        key.verify(&path, &check.value)?;
        Ok(Some(key))
    }

    /// Fails unless `sealed` (the store's check value) opens with this key.
    fn verify(&self, path: &Path, sealed: &[u8]) -> Result<()> {
        if self.open_value(CHECK_NAME, sealed).ok().as_deref() != Some(CHECK_PLAIN) {
            bail!(
                "{} is not the node-state key this store's secrets are sealed with: copy \
                 the file from a node of this store",
                path.display()
            );
        }
        Ok(())
    }

    pub async fn open_at(path: &Path, store: &dyn Store) -> Result<StateKey> {
        let check = store
            .node_state_get(CHECK_SCOPE, CHECK_NAME)
            .await
            .map_err(crate::storage::store_err)?;
        let key = match (StateKey::read(path)?, &check) {
            (Some(key), _) => key,
            (None, None) => StateKey::create(path)?,
            (None, Some(_)) => return Err(missing_key(path)),
        };
        match check {
            Some(entry) => key.verify(path, &entry.value)?,
            None => {
                let sealed = key.seal(CHECK_NAME, CHECK_PLAIN)?;
                let now = chrono::Utc::now().timestamp();
                let fresh = store
                    .node_state_put(CHECK_SCOPE, CHECK_NAME, &sealed, None, now, true)
                    .await
                    .map_err(crate::storage::store_err)?;
                if !fresh {
                    // Another node wrote its check first: this key must be the same as its.
                    return Box::pin(StateKey::open_at(path, store)).await;
                }
            }
        }
        Ok(key)
    }

    /// Seals `plain`; `context` (what the value is, e.g. its row's name) is bound to it, so a
    /// sealed value copied onto another row does not open there.
    pub fn seal(&self, context: &str, plain: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| anyhow!("no randomness for a nonce"))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plain.len() + CHACHA20_POLY1305.tag_len());
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut body,
            )
            .map_err(|_| anyhow!("sealing failed"))?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens a value `seal` made with the same key and context.
    pub fn open_value(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        let rest = match sealed.split_first() {
            Some((&SEALED_V1, rest)) if rest.len() >= NONCE_LEN + CHACHA20_POLY1305.tag_len() => {
                rest
            }
            _ => bail!("not a sealed value"),
        };
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow!("bad nonce"))?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut body)
            .map_err(|_: ring::error::Unspecified| {
                anyhow!("the value does not open with this node-state key")
            })?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> StateKey {
        StateKey::from_bytes(&[byte; KEY_LEN]).unwrap()
    }

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let k = key(7);
        let sealed = k.seal("dkim:example.com/s1", b"secret pem").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"), "not in clear");
        assert_eq!(
            k.open_value("dkim:example.com/s1", &sealed).unwrap(),
            b"secret pem"
        );
        assert!(k.open_value("dkim:example.com/s2", &sealed).is_err());
        assert!(key(8).open_value("dkim:example.com/s1", &sealed).is_err());
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(k.open_value("dkim:example.com/s1", &flipped).is_err());
        assert!(k.open_value("x", b"").is_err());
        assert!(k.open_value("x", &[SEALED_V1; 5]).is_err());
        // Two seals of one value differ (fresh nonce each time).
        assert_ne!(
            sealed,
            k.seal("dkim:example.com/s1", b"secret pem").unwrap()
        );
    }

    #[test]
    fn key_files_are_hex_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("state.key");
        assert!(StateKey::read(&path).unwrap().is_none());
        let made = StateKey::create(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let again = StateKey::read(&path).unwrap().unwrap();
        let sealed = made.seal("c", b"v").unwrap();
        assert_eq!(again.open_value("c", &sealed).unwrap(), b"v");
        assert!(StateKey::create(&path).is_err(), "never replaced");
        fs::write(&path, "abcd\n").unwrap();
        let e = StateKey::read(&path).err().unwrap().to_string();
        assert!(e.contains("64 hex digits"), "{e}");
    }
}
