//! Where the ACME state lives (`AcmeState`): the account (its private key
//! inside), the certificate chain and its key, and, when several nodes share
//! it, the right to order and the answers to pending challenges.
//!
//! `AcmeStore` keeps it in files under the state directory, for one node:
//! secrets are written 0600, atomically (temporary file, fsync, rename), so a
//! crash never leaves a half-written key behind the running certificate. A
//! backend shared by several nodes (Wharf's store) implements the same trait.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use instant_acme::AccountCredentials;
use serde::{Deserialize, Serialize};

use crate::AcmeError;

/// The answer to one pending challenge, as published for the other nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChallengeAnswer {
    Http01 {
        token: String,
        key_authorization: String,
    },
    TlsAlpn01 {
        name: String,
        cert_pem: String,
        key_pem: String,
    },
}

impl ChallengeAnswer {
    /// Unique among the pending answers: the kind and the token or name.
    pub fn id(&self) -> String {
        match self {
            ChallengeAnswer::Http01 { token, .. } => format!("http-01:{token}"),
            ChallengeAnswer::TlsAlpn01 { name, .. } => format!("tls-alpn-01:{name}"),
        }
    }
}

/// The ACME state of a certificate manager. One node: `AcmeStore` (files). Several nodes:
/// a shared backend, where only the node that `lead`s orders, and the others install the
/// certificate it stores and answer the challenges it publishes (the CA may connect to any
/// node behind the balancer).
#[async_trait::async_trait]
pub trait AcmeState: Send + Sync + std::fmt::Debug + 'static {
    /// The account JSON (`StoredAccount`), if one was saved.
    async fn load_account(&self) -> Result<Option<Vec<u8>>, AcmeError>;
    async fn save_account(&self, json: &[u8]) -> Result<(), AcmeError>;
    /// The stored (chain PEM, key PEM).
    async fn load_certificate(&self) -> Result<Option<(String, String)>, AcmeError>;
    /// The chain and its key, replaced together.
    async fn save_certificate(&self, chain_pem: &str, key_pem: &str) -> Result<(), AcmeError>;
    /// True when other nodes share this state: they must be told of challenges, and only the
    /// leader orders.
    fn shared(&self) -> bool {
        false
    }
    /// Takes or renews the right to order for `ttl`; false while another node has it.
    async fn lead(&self, _ttl: Duration) -> Result<bool, AcmeError> {
        Ok(true)
    }
    /// Publishes an answer for the other nodes until `ttl` has passed or it is withdrawn.
    async fn publish(&self, _answer: &ChallengeAnswer, _ttl: Duration) -> Result<(), AcmeError> {
        Ok(())
    }
    async fn withdraw(&self, _id: &str) -> Result<(), AcmeError> {
        Ok(())
    }
    /// The answers published and not yet over (any node's).
    async fn answers(&self) -> Result<Vec<ChallengeAnswer>, AcmeError> {
        Ok(Vec::new())
    }
}

#[derive(Debug, Clone)]
pub struct AcmeStore {
    dir: PathBuf,
}

/// An account is only good for the CA that created it.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredAccount {
    pub directory_url: String,
    pub credentials: AccountCredentials,
}

impl AcmeStore {
    /// Creates `dir` (0700) when missing.
    pub fn open(dir: &Path) -> Result<AcmeStore, AcmeError> {
        std::fs::create_dir_all(dir).map_err(|e| AcmeError::io(dir, e))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| AcmeError::io(dir, e))?;
        Ok(AcmeStore {
            dir: dir.to_path_buf(),
        })
    }

    pub fn account_path(&self) -> PathBuf {
        self.dir.join("account.json")
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    /// The stored (chain PEM, key PEM), if both exist.
    pub fn load_certificate(&self) -> Result<Option<(String, String)>, AcmeError> {
        let (cert_path, key_path) = (self.cert_path(), self.key_path());
        let (Some(cert), Some(key)) = (read_optional(&cert_path)?, read_optional(&key_path)?)
        else {
            return Ok(None);
        };
        let cert = String::from_utf8(cert).map_err(|_| AcmeError::BadFile {
            path: cert_path,
            reason: "not UTF-8 PEM".to_string(),
        })?;
        let key = String::from_utf8(key).map_err(|_| AcmeError::BadFile {
            path: key_path,
            reason: "not UTF-8 PEM".to_string(),
        })?;
        Ok(Some((cert, key)))
    }

    /// Key first: a reader that finds the new chain also finds its key.
    pub(crate) fn save_certificate(&self, chain_pem: &str, key_pem: &str) -> Result<(), AcmeError> {
        write_private(&self.key_path(), key_pem.as_bytes())?;
        write_private(&self.cert_path(), chain_pem.as_bytes())
    }
}

#[async_trait::async_trait]
impl AcmeState for AcmeStore {
    async fn load_account(&self) -> Result<Option<Vec<u8>>, AcmeError> {
        read_optional(&self.account_path())
    }
    async fn save_account(&self, json: &[u8]) -> Result<(), AcmeError> {
        write_private(&self.account_path(), json)
    }
    async fn load_certificate(&self) -> Result<Option<(String, String)>, AcmeError> {
        AcmeStore::load_certificate(self)
    }
    async fn save_certificate(&self, chain_pem: &str, key_pem: &str) -> Result<(), AcmeError> {
        AcmeStore::save_certificate(self, chain_pem, key_pem)
    }
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, AcmeError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AcmeError::io(path, e)),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), AcmeError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        // A file left by an older run may have wider permissions.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        AcmeError::io(path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = AcmeStore::open(&dir.path().join("acme")).unwrap();
        assert!(store.load_certificate().unwrap().is_none());
        store.save_certificate("CHAIN", "KEY").unwrap();
        let (c, k) = store.load_certificate().unwrap().unwrap();
        assert_eq!((c.as_str(), k.as_str()), ("CHAIN", "KEY"));
        for p in [store.cert_path(), store.key_path()] {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
    }
}
