//! Files under the ACME state directory: the account (its private key
//! inside), the certificate chain and its key. Secrets are written 0600,
//! atomically (temporary file, fsync, rename), so a crash never leaves a
//! half-written key behind the running certificate.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use instant_acme::AccountCredentials;
use serde::{Deserialize, Serialize};

use crate::AcmeError;

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

    pub(crate) fn load_account(&self) -> Result<Option<StoredAccount>, AcmeError> {
        let path = self.account_path();
        let Some(bytes) = read_optional(&path)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| AcmeError::BadFile {
                path,
                reason: e.to_string(),
            })
    }

    pub(crate) fn save_account(&self, account: &StoredAccount) -> Result<(), AcmeError> {
        let path = self.account_path();
        let json = serde_json::to_vec_pretty(account).map_err(|e| AcmeError::BadFile {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        write_private(&path, &json)
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
