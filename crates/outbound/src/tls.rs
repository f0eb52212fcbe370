//! Client-side TLS for outbound SMTP (rustls, ring provider): opportunistic STARTTLS accepts any
//! certificate (RFC 7435: encryption without authentication still beats plaintext) but records
//! whether it would have verified, so logs and policies can tell the difference; `verify` mode
//! refuses certificates that do not chain to the trust anchors or do not match the host name;
//! `dane` mode (RFC 7672) authenticates by TLSA records instead of the trust anchors.

use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;

use crate::dane::{self, DanePolicy};

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
    /// Which TLSA record authenticated the peer (DANE mode).
    dane: Mutex<Option<String>>,
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

/// RFC 7672 certificate check: the TLSA records decide, never the trust anchors.
#[derive(Debug)]
struct DaneVerifier {
    policy: Arc<DanePolicy>,
    provider: Arc<CryptoProvider>,
    verdict: Arc<Verdict>,
}

impl DaneVerifier {
    fn accept(&self, how: String) -> Result<ServerCertVerified, rustls::Error> {
        self.verdict.verified.store(true, Ordering::SeqCst);
        if let Ok(mut d) = self.verdict.dane.lock() {
            *d = Some(how);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn refuse(&self, why: String) -> Result<ServerCertVerified, rustls::Error> {
        tracing::warn!(mx = %self.policy.host, "{why}");
        Err(rustls::Error::General(why))
    }

    /// DANE-TA: the presented certificates a usage-2 record names become the only trust
    /// anchors; the leaf must chain to one of them (webpki: signatures, validity, key usage) and
    /// carry the MX host or the next-hop domain as a name.
    fn verify_ta(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Option<Result<ServerCertVerified, rustls::Error>> {
        let mut roots = RootCertStore::empty();
        let mut matched = Vec::new();
        for t in self.policy.records.iter().filter(|t| t.usage == 2) {
            for c in intermediates.iter().chain(std::iter::once(end_entity)) {
                if t.matches(c) && roots.add(c.clone().into_owned()).is_ok() {
                    matched.push(t.to_string());
                }
            }
        }
        if roots.is_empty() {
            return None;
        }
        let verifier = match WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            self.provider.clone(),
        )
        .build()
        {
            Ok(v) => v,
            Err(e) => {
                return Some(
                    self.refuse(format!("DANE: {}: DANE-TA verifier: {e}", self.policy.host)),
                );
            }
        };
        let mut errors = Vec::new();
        for name in &self.policy.names {
            let Ok(sn) = ServerName::try_from(name.trim_end_matches('.').to_string()) else {
                continue;
            };
            match verifier.verify_server_cert(end_entity, intermediates, &sn, ocsp_response, now) {
                Ok(_) => {
                    return Some(self.accept(format!("DANE-TA {} ({name})", matched.join(", "))));
                }
                Err(e) => errors.push(format!("{name}: {e}")),
            }
        }
        Some(self.refuse(format!(
            "DANE: {}: TLSA {} matched a certificate of the chain but the chain does not verify ({})",
            self.policy.host,
            matched.join(", "),
            errors.join("; ")
        )))
    }
}

impl ServerCertVerifier for DaneVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // DANE-EE: the key (or certificate) itself is pinned; name and dates do not matter
        // (RFC 7672 §3.1.1), which is what lets self-signed certificates be authenticated.
        if let Some(t) = self
            .policy
            .records
            .iter()
            .find(|t| t.usage == 3 && t.matches(end_entity))
        {
            return self.accept(format!("DANE-EE {t}"));
        }
        if let Some(r) = self.verify_ta(end_entity, intermediates, ocsp_response, now) {
            return r;
        }
        self.refuse(format!(
            "DANE: {}: TLSA {} did not match certificate ({})",
            self.policy.host,
            self.policy.summary(),
            dane::fingerprints(end_entity)
        ))
    }

    // The handshake signature is still checked with the leaf's key: a TLSA match proves nothing
    // unless the peer holds that key.
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

    /// DANE mode: the handshake fails unless the chain matches `policy`'s TLSA records.
    pub fn dane(policy: Arc<DanePolicy>) -> Result<ClientTls, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verdict = Arc::new(Verdict::default());
        let verifier = DaneVerifier {
            policy,
            provider: provider.clone(),
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

    /// The TLSA record that authenticated the peer, in DANE mode.
    pub fn dane_match(&self) -> Option<String> {
        self.verdict.dane.lock().ok().and_then(|d| d.clone())
    }

    pub fn verified(&self) -> bool {
        self.verdict.verified.load(Ordering::SeqCst)
    }
}
