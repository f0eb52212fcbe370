//! DKIM for outbound mail (RFC 6376, RFC 8463): key generation with the DNS TXT record to
//! publish, loading keys from PEM, and signing with every key of the From domain
//! (relaxed/relaxed), so a message may carry both an RSA-SHA256 and an Ed25519-SHA256 signature.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

/// Headers signed when present: what a reader sees and what threading and MIME depend on.
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "Reply-To",
    "Subject",
    "Date",
    "To",
    "Cc",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Rsa,
    Ed25519,
}

#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("key: {0}")]
    Key(String),
    #[error("signing: {0}")]
    Sign(String),
}

/// A fresh key and what to publish for it.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    pub algorithm: Algorithm,
    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub private_key_pem: String,
    /// `selector._domainkey.domain`
    pub dns_name: String,
    /// The TXT value, unsplit: `v=DKIM1; k=ed25519; p=…`.
    pub txt_value: String,
}

impl GeneratedKey {
    /// A zone-file line; long values are split in quoted strings of at most 255 bytes
    /// (RFC 1035 character-strings; RFC 6376 §3.6.2.2 concatenates them).
    pub fn zone_line(&self) -> String {
        let chunks: Vec<String> = self
            .txt_value
            .as_bytes()
            .chunks(255)
            .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
            .collect();
        format!("{}. IN TXT ( {} )", self.dns_name, chunks.join(" "))
    }
}

/// Creates a key (RSA-2048 or Ed25519) for `selector._domainkey.domain`.
pub fn generate(
    domain: &str,
    selector: &str,
    algorithm: Algorithm,
) -> Result<GeneratedKey, DkimError> {
    let (pem, txt) = match algorithm {
        Algorithm::Rsa => {
            use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
            let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
                .map_err(|e| DkimError::Key(e.to_string()))?;
            let pem = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| DkimError::Key(e.to_string()))?
                .to_string();
            let spki = rsa::RsaPublicKey::from(&key)
                .to_public_key_der()
                .map_err(|e| DkimError::Key(e.to_string()))?;
            (
                pem,
                format!("v=DKIM1; k=rsa; p={}", B64.encode(spki.as_bytes())),
            )
        }
        Algorithm::Ed25519 => {
            let der = Ed25519Key::generate_pkcs8().map_err(|e| DkimError::Key(e.to_string()))?;
            let key =
                Ed25519Key::from_pkcs8_der(&der).map_err(|e| DkimError::Key(e.to_string()))?;
            (
                pem_encode("PRIVATE KEY", &der),
                format!("v=DKIM1; k=ed25519; p={}", B64.encode(key.public_key())),
            )
        }
    };
    Ok(GeneratedKey {
        algorithm,
        private_key_pem: pem,
        dns_name: format!("{selector}._domainkey.{}", domain.to_ascii_lowercase()),
        txt_value: txt,
    })
}

/// The TXT value (`v=DKIM1; k=…; p=…`) a stored private key needs, in the same form `generate`
/// prints: `wharf dns` and `wharf doctor` compare the published record with it.
pub fn txt_value_from_pem(pem: &[u8]) -> Result<(Algorithm, String), DkimError> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
    let der = PrivateKeyDer::from_pem_slice(pem).map_err(|e| DkimError::Key(e.to_string()))?;
    if let PrivateKeyDer::Pkcs8(p) = &der
        && let Ok(key) = Ed25519Key::from_pkcs8_der(p.secret_pkcs8_der())
    {
        return Ok((
            Algorithm::Ed25519,
            format!("v=DKIM1; k=ed25519; p={}", B64.encode(key.public_key())),
        ));
    }
    let key = match &der {
        PrivateKeyDer::Pkcs8(p) => rsa::RsaPrivateKey::from_pkcs8_der(p.secret_pkcs8_der())
            .map_err(|e| DkimError::Key(e.to_string()))?,
        PrivateKeyDer::Pkcs1(p) => rsa::RsaPrivateKey::from_pkcs1_der(p.secret_pkcs1_der())
            .map_err(|e| DkimError::Key(e.to_string()))?,
        _ => return Err(DkimError::Key("neither an RSA nor an Ed25519 key".into())),
    };
    let spki = rsa::RsaPublicKey::from(&key)
        .to_public_key_der()
        .map_err(|e| DkimError::Key(e.to_string()))?;
    Ok((
        Algorithm::Rsa,
        format!("v=DKIM1; k=rsa; p={}", B64.encode(spki.as_bytes())),
    ))
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

enum Signer {
    Rsa(DkimSigner<RsaKey<Sha256>, Done>),
    Ed25519(DkimSigner<Ed25519Key, Done>),
}

/// One loaded signing key.
pub struct DkimKey {
    pub domain: String,
    pub selector: String,
    pub algorithm: Algorithm,
    signer: Signer,
}

impl std::fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DkimKey({}, {}, {:?})",
            self.domain, self.selector, self.algorithm
        )
    }
}

impl DkimKey {
    /// From a PEM private key: PKCS#8 Ed25519, PKCS#8 RSA or PKCS#1 RSA.
    pub fn from_pem(domain: &str, selector: &str, pem: &[u8]) -> Result<DkimKey, DkimError> {
        let der = PrivateKeyDer::from_pem_slice(pem).map_err(|e| DkimError::Key(e.to_string()))?;
        let domain = domain.to_ascii_lowercase();
        let (algorithm, signer) = match &der {
            PrivateKeyDer::Pkcs8(p) if Ed25519Key::from_pkcs8_der(p.secret_pkcs8_der()).is_ok() => {
                let key = Ed25519Key::from_pkcs8_der(p.secret_pkcs8_der())
                    .map_err(|e| DkimError::Key(e.to_string()))?;
                (
                    Algorithm::Ed25519,
                    Signer::Ed25519(configure(DkimSigner::from_key(key), &domain, selector)),
                )
            }
            _ => {
                let key = RsaKey::<Sha256>::from_key_der(der.clone_key())
                    .map_err(|e| DkimError::Key(e.to_string()))?;
                (
                    Algorithm::Rsa,
                    Signer::Rsa(configure(DkimSigner::from_key(key), &domain, selector)),
                )
            }
        };
        Ok(DkimKey {
            domain,
            selector: selector.to_string(),
            algorithm,
            signer,
        })
    }

    /// The `DKIM-Signature:` header field (CRLF-terminated) for `message`.
    pub fn signature_header(&self, message: &[u8]) -> Result<String, DkimError> {
        let sig = match &self.signer {
            Signer::Rsa(s) => s.sign(message),
            Signer::Ed25519(s) => s.sign(message),
        }
        .map_err(|e| DkimError::Sign(e.to_string()))?;
        Ok(sig.to_header())
    }
}

fn configure<T: mail_auth::common::crypto::SigningKey>(
    s: DkimSigner<T, mail_auth::dkim::NeedDomain>,
    domain: &str,
    selector: &str,
) -> DkimSigner<T, Done> {
    s.domain(domain)
        .selector(selector)
        .headers(SIGNED_HEADERS.iter().copied())
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
}

/// Every loaded key, by domain.
#[derive(Debug, Default)]
pub struct DkimSigners {
    keys: HashMap<String, Vec<DkimKey>>,
}

impl DkimSigners {
    pub fn new() -> DkimSigners {
        DkimSigners::default()
    }

    pub fn add(&mut self, key: DkimKey) {
        self.keys.entry(key.domain.clone()).or_default().push(key);
    }

    pub fn has_domain(&self, domain: &str) -> bool {
        self.keys.contains_key(&domain.to_ascii_lowercase())
    }

    /// The message with one signature per key of its From: domain prepended; unchanged when the
    /// domain has no key. Each signature covers the message without the others (RFC 6376 §5.4
    /// excludes other DKIM-Signature fields unless listed).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, DkimError> {
        let Some(domain) = from_domain(message) else {
            return Ok(message.to_vec());
        };
        let Some(keys) = self.keys.get(&domain) else {
            return Ok(message.to_vec());
        };
        let mut headers = String::new();
        for key in keys {
            headers.push_str(&key.signature_header(message)?);
        }
        let mut out = headers.into_bytes();
        out.extend_from_slice(message);
        Ok(out)
    }
}

/// Lower-cased domain of the first From: address.
pub fn from_domain(message: &[u8]) -> Option<String> {
    let parsed = mail_parser::MessageParser::default().parse_headers(message)?;
    let addr = parsed.from()?.first()?.address()?;
    addr.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_key_round_trip_and_record() {
        let g = generate("Example.ORG", "s1", Algorithm::Ed25519).unwrap();
        assert_eq!(g.dns_name, "s1._domainkey.example.org");
        assert!(g.txt_value.starts_with("v=DKIM1; k=ed25519; p="));
        let key = DkimKey::from_pem("example.org", "s1", g.private_key_pem.as_bytes()).unwrap();
        assert_eq!(key.algorithm, Algorithm::Ed25519);
        let mut s = DkimSigners::new();
        s.add(key);
        let msg = b"From: a@example.org\r\nTo: b@x.example\r\nSubject: hi\r\n\r\nbody\r\n";
        let signed = String::from_utf8(s.sign(msg).unwrap()).unwrap();
        assert!(
            signed.starts_with(
                "DKIM-Signature: v=1; a=ed25519-sha256; s=s1; d=example.org; c=relaxed/relaxed;"
            ),
            "{signed}"
        );
        // Another domain's mail is left alone.
        let other = b"From: a@elsewhere.example\r\n\r\nx\r\n";
        assert_eq!(s.sign(other).unwrap(), other.to_vec());
    }

    #[test]
    fn public_record_from_stored_key() {
        for algo in [Algorithm::Ed25519, Algorithm::Rsa] {
            let g = generate("example.org", "s1", algo).unwrap();
            let (a, txt) = txt_value_from_pem(g.private_key_pem.as_bytes()).unwrap();
            assert_eq!((a, txt), (algo, g.txt_value));
        }
        assert!(txt_value_from_pem(b"junk").is_err());
    }

    #[test]
    fn rsa_zone_line_is_split() {
        let g = generate("example.org", "r1", Algorithm::Rsa).unwrap();
        assert!(g.txt_value.len() > 255);
        let line = g.zone_line();
        assert!(line.starts_with("r1._domainkey.example.org. IN TXT ( \"v=DKIM1; k=rsa; p="));
        assert!(line.matches('"').count() >= 4);
        let key = DkimKey::from_pem("example.org", "r1", g.private_key_pem.as_bytes()).unwrap();
        assert_eq!(key.algorithm, Algorithm::Rsa);
    }
}
