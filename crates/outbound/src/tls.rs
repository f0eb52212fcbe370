//! Client-side TLS for outbound SMTP (rustls, ring provider): opportunistic STARTTLS accepts any
//! certificate (RFC 7435: encryption without authentication still beats plaintext) but records
//! whether it would have verified, so logs and policies can tell the difference; `verify` mode
//! refuses certificates that do not chain to the trust anchors or do not match the host name.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;

/// Trust anchors for verifying receiving servers.
#[derive(Clone)]
pub struct TrustAnchors {
    roots: Arc<RootCertStore>,
}

impl std::fmt::Debug for TrustAnchors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrustAnchors({} roots)", self.roots.len())
    }
}

impl TrustAnchors {
    pub fn empty() -> TrustAnchors {
        TrustAnchors {
            roots: Arc::new(RootCertStore::empty()),
        }
    }

    /// The system bundle (Debian's `/etc/ssl/certs/ca-certificates.crt`) when present, else empty.
    pub fn system() -> TrustAnchors {
        let path = Path::new("/etc/ssl/certs/ca-certificates.crt");
        match TrustAnchors::empty().with_pem_file(path) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "no system trust anchors; TLS peers will not verify");
                TrustAnchors::empty()
            }
        }
    }

    pub fn with_pem(mut self, pem: &[u8]) -> Result<TrustAnchors, String> {
        let mut store = (*self.roots).clone();
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("bad PEM certificate: {e}"))?;
            if store.add(cert).is_ok() {
                added += 1;
            }
        }
        if added == 0 {
            return Err("no usable certificate in PEM".into());
        }
        self.roots = Arc::new(store);
        Ok(self)
    }

    pub fn with_pem_file(self, path: &Path) -> Result<TrustAnchors, String> {
        let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        self.with_pem(&pem)
    }
}

/// Verification outcome shared with the connection that owns it.
#[derive(Debug, Default)]
struct Verdict {
    verified: AtomicBool,
}

#[derive(Debug)]
struct RecordingVerifier {
    inner: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    require: bool,
    verdict: Arc<Verdict>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = match &self.inner {
            Some(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(rustls::Error::General("no trust anchors configured".into())),
        };
        match result {
            Ok(ok) => {
                self.verdict.verified.store(true, Ordering::SeqCst);
                Ok(ok)
            }
            Err(e) if self.require => Err(e),
            Err(e) => {
                tracing::debug!(server = ?server_name, error = %e, "certificate does not verify; continuing (opportunistic TLS)");
                Ok(ServerCertVerified::assertion())
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A per-connection client config plus the flag the handshake sets when the peer verified.
pub struct ClientTls {
    pub config: Arc<rustls::ClientConfig>,
    verdict: Arc<Verdict>,
}

impl ClientTls {
    /// `require_valid`: refuse the handshake when the certificate does not verify.
    pub fn new(anchors: &TrustAnchors, require_valid: bool) -> Result<ClientTls, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner = if anchors.roots.is_empty() {
            None
        } else {
            Some(
                WebPkiServerVerifier::builder_with_provider(
                    anchors.roots.clone(),
                    provider.clone(),
                )
                .build()
                .map_err(|e| format!("verifier: {e}"))?,
            )
        };
        let verdict = Arc::new(Verdict::default());
        let verifier = RecordingVerifier {
            inner,
            provider: provider.clone(),
            require: require_valid,
            verdict: verdict.clone(),
        };
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS versions: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(ClientTls {
            config: Arc::new(config),
            verdict,
        })
    }

    pub fn verified(&self) -> bool {
        self.verdict.verified.load(Ordering::SeqCst)
    }
}
