//! DKIM signing keys on disk: `wharf dkim generate` writes `<data_dir>/dkim/<domain>/<selector>.pem`
//! (mode 0600, folders 0700) and prints the TXT record; `serve` loads every key found there, so a
//! domain with both an RSA and an Ed25519 key gets both signatures.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use wharf_outbound::dkim::{self, Algorithm, DkimKey, DkimSigners, GeneratedKey};

use crate::cli::DkimAlgo;

pub fn key_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("dkim")
}

/// A selector is one DNS label (RFC 6376 §3.1 allows dotted ones; one label keeps file names plain).
fn valid_selector(s: &str) -> bool {
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

/// Creates and stores a key; refuses to overwrite an existing one (its record may be published).
pub fn generate(
    data_dir: &Path,
    domain: &str,
    selector: Option<&str>,
    algo: DkimAlgo,
) -> Result<(GeneratedKey, PathBuf)> {
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
    let dir = key_dir(data_dir).join(&domain);
    let path = dir.join(format!("{selector}.pem"));
    if path.exists() {
        bail!(
            "{} already exists; choose another --selector (a published key must not change under its selector)",
            path.display()
        );
    }
    let algorithm = match algo {
        DkimAlgo::Ed25519 => Algorithm::Ed25519,
        DkimAlgo::Rsa => Algorithm::Rsa,
    };
    let key = dkim::generate(&domain, &selector, algorithm)
        .map_err(|e| anyhow!("cannot generate the key: {e}"))?;
    crate::storage::create_private_dir(&dir)?;
    write_new_private(&path, key.private_key_pem.as_bytes())?;
    Ok((key, path))
}

fn write_new_private(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The key files of `domain`: (selector, path), in no particular order; none when the domain
/// has no key folder.
pub fn key_files(data_dir: &Path, domain: &str) -> Result<Vec<(String, PathBuf)>> {
    let dir = key_dir(data_dir).join(domain);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(anyhow!("cannot read {}: {e}", dir.display())),
    };
    let mut files = Vec::new();
    for f in entries {
        let f = f.with_context(|| format!("cannot read {}", dir.display()))?;
        let path = f.path();
        if let Some(selector) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".pem"))
        {
            files.push((selector.to_string(), path.clone()));
        }
    }
    Ok(files)
}

/// Every stored key. A file that does not load stops the start: signing silently without it
/// would fail DMARC for that domain.
pub fn load_all(data_dir: &Path) -> Result<(DkimSigners, Vec<String>)> {
    let mut signers = DkimSigners::new();
    let mut loaded = Vec::new();
    let root = key_dir(data_dir);
    let domains = match fs::read_dir(&root) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((signers, loaded)),
        Err(e) => return Err(anyhow!("cannot read {}: {e}", root.display())),
    };
    let mut files = Vec::new();
    for d in domains {
        let d = d.with_context(|| format!("cannot read {}", root.display()))?;
        if !d.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let domain = d.file_name().to_string_lossy().to_string();
        for (selector, path) in key_files(data_dir, &domain)? {
            files.push((domain.clone(), selector, path));
        }
    }
    files.sort();
    for (domain, selector, path) in files {
        let pem = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let key = DkimKey::from_pem(&domain, &selector, &pem)
            .map_err(|e| anyhow!("DKIM key {}: {e}", path.display()))?;
        loaded.push(format!("{domain}/{selector} ({:?})", key.algorithm));
        signers.add(key);
    }
    Ok((signers, loaded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_then_load_both_algorithms() {
        let dir = tempfile::tempdir().unwrap();
        let (ed, path) =
            generate(dir.path(), "Example.TEST", Some("s1"), DkimAlgo::Ed25519).unwrap();
        assert_eq!(ed.dns_name, "s1._domainkey.example.test");
        assert!(ed.txt_value.starts_with("v=DKIM1; k=ed25519; p="));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (rsa, _) = generate(dir.path(), "example.test", Some("s2"), DkimAlgo::Rsa).unwrap();
        assert!(rsa.txt_value.starts_with("v=DKIM1; k=rsa; p="));
        let again = generate(dir.path(), "example.test", Some("s1"), DkimAlgo::Rsa);
        assert!(again.unwrap_err().to_string().contains("already exists"));
        assert!(generate(dir.path(), "example.test", Some("a.b"), DkimAlgo::Rsa).is_err());
        let (signers, loaded) = load_all(dir.path()).unwrap();
        assert_eq!(loaded.len(), 2, "{loaded:?}");
        let signed = signers
            .sign(b"From: a@example.test\r\nSubject: x\r\n\r\nbody\r\n")
            .unwrap();
        let text = String::from_utf8(signed).unwrap();
        assert_eq!(text.matches("DKIM-Signature:").count(), 2, "{text}");
        assert!(text.contains("a=ed25519-sha256") && text.contains("a=rsa-sha256"));
    }

    #[test]
    fn a_broken_key_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let d = key_dir(dir.path()).join("example.test");
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("bad.pem"), "not a key").unwrap();
        let e = load_all(dir.path()).err().unwrap().to_string();
        assert!(e.contains("bad.pem"), "{e}");
    }

    #[test]
    fn default_selectors_are_dated() {
        let t = chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap();
        assert_eq!(default_selector(DkimAlgo::Ed25519, t), "202611e");
        assert_eq!(default_selector(DkimAlgo::Rsa, t), "202611r");
    }
}
