//! TLS configuration: the hot-swappable rustls server config (TLS 1.2 and
//! 1.3 only, ring provider), PEM loading, self-signed certificates, the
//! RFC 8737 (TLS-ALPN-01) challenge hook, and the description of a
//! negotiated session.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use tokio::io::{AsyncRead, AsyncWrite};

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

use crate::NetError;

/// How a listener speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plaintext only.
    #[default]
    None,
    /// Plaintext until the client asks for STARTTLS/STLS.
    StartTls,
    /// TLS handshake before the first protocol byte (465, 993, 995).
    Implicit,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::None => "none",
            TlsMode::StartTls => "starttls",
            TlsMode::Implicit => "implicit",
        }
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TlsMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(TlsMode::None),
            "starttls" => Ok(TlsMode::StartTls),
            "implicit" => Ok(TlsMode::Implicit),
            other => Err(format!(
                "unknown TLS mode {other:?} (expected \"none\", \"starttls\" or \"implicit\")"
            )),
        }
    }
}

/// What was negotiated on a TLS connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// "TLSv1.2" or "TLSv1.3".
    pub version: String,
    /// IANA cipher suite name as rustls spells it, e.g. "TLS13_AES_256_GCM_SHA384".
    pub cipher: String,
}

impl TlsInfo {
    pub(crate) fn from_connection(conn: &rustls::ServerConnection) -> TlsInfo {
        let version = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
            Some(other) => format!("{other:?}"),
            None => "unknown".to_string(),
        };
        let cipher = match conn.negotiated_cipher_suite() {
            Some(cs) => {
                let suite = cs.suite();
                suite
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{suite:?}"))
            }
            None => "unknown".to_string(),
        };
        TlsInfo { version, cipher }
    }
}

/// Reloadable TLS server configuration. Clones share one slot, so a reload
/// (SIGHUP, ACME renewal) through any clone changes the certificate for every
/// new handshake on every listener, while live sessions keep theirs.
#[derive(Clone)]
pub struct TlsProvider {
    slot: Arc<RwLock<Arc<ServerConfig>>>,
    /// RFC 8737 validation certificates by (lower-case) server name. Kept
    /// as whole configs because answering `acme-tls/1` needs that ALPN
    /// configured, and putting it into the normal config would make rustls
    /// refuse every client whose ALPN list it does not overlap.
    alpn_challenges: Arc<RwLock<HashMap<String, Arc<ServerConfig>>>>,
}

/// The ALPN protocol of RFC 8737 validation handshakes.
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

impl fmt::Debug for TlsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsProvider").finish_non_exhaustive()
    }
}

impl TlsProvider {
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<TlsProvider, NetError> {
        let config = config_from_files(cert, key)?;
        Ok(TlsProvider::with_config(config))
    }

    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<TlsProvider, NetError> {
        let config = build_config(cert_pem, key_pem, "certificate", "key")?;
        Ok(TlsProvider::with_config(config))
    }

    fn with_config(config: ServerConfig) -> TlsProvider {
        TlsProvider {
            slot: Arc::new(RwLock::new(Arc::new(config))),
            alpn_challenges: Arc::new(RwLock::new(HashMap::new())),
        }
    }

    /// Answers RFC 8737 validation handshakes for `name` (ClientHello with
    /// SNI `name` and ALPN `acme-tls/1` only) with this certificate until
    /// [`TlsProvider::clear_acme_challenge`]. Other handshakes are unaffected.
    pub fn set_acme_challenge(
        &self,
        name: &str,
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<(), NetError> {
        let mut config = build_challenge_config(cert_pem, key_pem)?;
        config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
        let mut map = self
            .alpn_challenges
            .write()
            .unwrap_or_else(|e| e.into_inner());
        map.insert(name.to_ascii_lowercase(), Arc::new(config));
        Ok(())
    }

    pub fn clear_acme_challenge(&self, name: &str) {
        let mut map = self
            .alpn_challenges
            .write()
            .unwrap_or_else(|e| e.into_inner());
        map.remove(&name.to_ascii_lowercase());
    }

    /// The config for one handshake: the RFC 8737 challenge config when
    /// the client asks for `acme-tls/1` alone for a name with a pending
    /// challenge, the current certificate otherwise.
    pub fn config_for(&self, hello: &rustls::server::ClientHello<'_>) -> Arc<ServerConfig> {
        let acme_only = hello
            .alpn()
            .map(|mut protos| protos.next() == Some(ACME_TLS_ALPN) && protos.next().is_none())
            .unwrap_or(false);
        if acme_only && let Some(name) = hello.server_name() {
            let map = self
                .alpn_challenges
                .read()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(config) = map.get(&name.to_ascii_lowercase()) {
                return Arc::clone(config);
            }
        }
        self.server_config()
    }

    /// Runs the server side of a handshake on `io`, choosing the config
    /// from the ClientHello ([`TlsProvider::config_for`]).
    pub async fn accept<IO>(&self, io: IO) -> std::io::Result<tokio_rustls::server::TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let start =
            tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io).await?;
        let config = self.config_for(&start.client_hello());
        start.into_stream(config).await
    }

    /// Replaces the certificate for new handshakes. On error the old
    /// certificate stays in service.
    pub fn reload_from_pem_files(&self, cert: &Path, key: &Path) -> Result<(), NetError> {
        let config = config_from_files(cert, key)?;
        self.swap(config);
        tracing::info!(cert = %cert.display(), "TLS certificate reloaded");
        Ok(())
    }

    /// Replaces the certificate from PEM bytes (ACME hands them over in memory).
    pub fn reload_from_pem(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<(), NetError> {
        let config = build_config(cert_pem, key_pem, "certificate", "key")?;
        self.swap(config);
        tracing::info!("TLS certificate reloaded");
        Ok(())
    }

    pub fn server_config(&self) -> Arc<ServerConfig> {
        // A poisoned lock only means a writer panicked between two plain
        // assignments; the stored Arc is still a complete config.
        let guard = self.slot.read().unwrap_or_else(|e| e.into_inner());
        Arc::clone(&guard)
    }

    fn swap(&self, config: ServerConfig) {
        let mut guard = self.slot.write().unwrap_or_else(|e| e.into_inner());
        *guard = Arc::new(config);
    }
}

fn config_from_files(cert: &Path, key: &Path) -> Result<ServerConfig, NetError> {
    let cert_pem = std::fs::read(cert).map_err(|source| NetError::ReadFile {
        path: cert.to_path_buf(),
        source,
    })?;
    let key_pem = std::fs::read(key).map_err(|source| NetError::ReadFile {
        path: key.to_path_buf(),
        source,
    })?;
    build_config(
        &cert_pem,
        &key_pem,
        &cert.display().to_string(),
        &key.display().to_string(),
    )
}

fn build_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_name: &str,
    key_name: &str,
) -> Result<ServerConfig, NetError> {
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| NetError::Pem {
            what: cert_name.to_string(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(NetError::Pem {
            what: cert_name.to_string(),
            reason: "no CERTIFICATE block found".to_string(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| NetError::Pem {
        what: key_name.to_string(),
        reason: match e {
            rustls_pki_types::pem::Error::NoItemsFound => {
                "no PRIVATE KEY block found (PKCS#8, PKCS#1 or SEC1 expected)".to_string()
            }
            other => other.to_string(),
        },
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(config)
}

/// The RFC 8737 validation certificate carries a critical extension
/// (acmeIdentifier) that webpki refuses to parse, so `with_single_cert`'s
/// key check cannot be used: the certificate is served by a resolver.
fn build_challenge_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<ServerConfig, NetError> {
    let what = || "challenge certificate".to_string();
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| NetError::Pem {
            what: what(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(NetError::Pem {
            what: what(),
            reason: "no CERTIFICATE block found".to_string(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| NetError::Pem {
        what: "challenge key".to_string(),
        reason: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let signing_key = provider.key_provider.load_private_key(key)?;
    let certified = Arc::new(rustls::sign::CertifiedKey::new(certs, signing_key));
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(ChallengeCert(certified)));
    Ok(config)
}

#[derive(Debug)]
struct ChallengeCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for ChallengeCert {
    fn resolve(
        &self,
        _: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// Self-signed certificate (rcgen, ECDSA P-256) for `hostname` plus
/// `extra_names` (DNS names or IP addresses). Returns (cert_pem, key_pem).
pub fn generate_self_signed(
    hostname: &str,
    extra_names: &[String],
) -> Result<(String, String), NetError> {
    let mut names = Vec::with_capacity(1 + extra_names.len());
    names.push(hostname.to_string());
    for n in extra_names {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    let mut params =
        rcgen::CertificateParams::new(names).map_err(|e| NetError::CertGen(e.to_string()))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, hostname);
    let key = rcgen::KeyPair::generate().map_err(|e| NetError::CertGen(e.to_string()))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| NetError::CertGen(e.to_string()))?;
    Ok((cert.pem(), key.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_mode_names() {
        for m in [TlsMode::None, TlsMode::StartTls, TlsMode::Implicit] {
            assert_eq!(m.as_str().parse::<TlsMode>().unwrap(), m);
        }
        assert!("tls".parse::<TlsMode>().is_err());
    }

    #[test]
    fn self_signed_loads() {
        let (cert, key) =
            generate_self_signed("mail.example.com", &["127.0.0.1".to_string()]).unwrap();
        assert!(cert.contains("BEGIN CERTIFICATE"));
        assert!(key.contains("PRIVATE KEY"));
        let p = TlsProvider::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
        let cfg = p.server_config();
        assert!(!cfg.ignore_client_order);
    }

    #[test]
    fn mismatched_key_refused() {
        let (cert, _) = generate_self_signed("a.example", &[]).unwrap();
        let (_, key2) = generate_self_signed("b.example", &[]).unwrap();
        let err = TlsProvider::from_pem(cert.as_bytes(), key2.as_bytes()).unwrap_err();
        assert!(matches!(err, NetError::Tls(_)), "{err}");
    }

    #[test]
    fn garbage_pem_refused() {
        let err = TlsProvider::from_pem(b"hello", b"world").unwrap_err();
        assert!(err.to_string().contains("no CERTIFICATE"), "{err}");
        let (cert, _) = generate_self_signed("a.example", &[]).unwrap();
        let err = TlsProvider::from_pem(cert.as_bytes(), b"nope").unwrap_err();
        assert!(err.to_string().contains("PRIVATE KEY"), "{err}");
    }

    #[test]
    fn missing_file_named() {
        let err = TlsProvider::from_pem_files(
            Path::new("/nonexistent/cert.pem"),
            Path::new("/nonexistent/key.pem"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
    }
}
