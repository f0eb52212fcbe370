//! Test certificates: self-signed for the names a test connects to, or a leaf signed by a test
//! CA (for DANE-TA and chain checks), in every form the tests hand around: PEM (files for
//! external clients), DER (trust anchors, TLSA digests), a `wharf_net::TlsProvider` (Wharf's
//! listeners) and a rustls `ServerConfig` (scripted peers).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use wharf_net::TlsProvider;

pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: Vec<u8>,
    /// Presents this certificate (and its CA, when signed by one).
    pub server: Arc<rustls::ServerConfig>,
}

impl TestCert {
    /// Self-signed for `host` (also its common name) and `extra` names.
    pub fn new(host: &str, extra: &[&str]) -> TestCert {
        let mut names = vec![host.to_string()];
        names.extend(extra.iter().map(|s| s.to_string()));
        let mut params = rcgen::CertificateParams::new(names).expect("valid certificate names");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, host);
        let key = rcgen::KeyPair::generate().expect("a key pair");
        let cert = params.self_signed(&key).expect("a self-signed certificate");
        TestCert::assemble(cert.pem(), cert.der().to_vec(), &key, Vec::new())
    }

    /// Self-signed for `localhost` and `127.0.0.1`: what loopback listeners present.
    pub fn localhost() -> TestCert {
        TestCert::new("localhost", &["127.0.0.1"])
    }

    /// A CA and a leaf for `names` it signed; the server presents [leaf, CA] as RFC 7672 §3.2.2
    /// asks of DANE-TA servers. Returns the CA certificate (DER) and the leaf.
    pub fn signed_by_new_ca(names: &[&str]) -> (Vec<u8>, TestCert) {
        let ca_key = rcgen::KeyPair::generate().expect("a key pair");
        let mut ca_params =
            rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Test CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("a CA");
        let leaf_key = rcgen::KeyPair::generate().expect("a key pair");
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let leaf = rcgen::CertificateParams::new(names)
            .expect("valid certificate names")
            .signed_by(&leaf_key, &*ca)
            .expect("a CA-signed leaf");
        let ca_der = ca.der().to_vec();
        let cert = TestCert::assemble(
            leaf.pem(),
            leaf.der().to_vec(),
            &leaf_key,
            vec![ca.der().clone()],
        );
        (ca_der, cert)
    }

    fn assemble(
        cert_pem: String,
        cert_der: Vec<u8>,
        key: &rcgen::KeyPair,
        chain: Vec<CertificateDer<'static>>,
    ) -> TestCert {
        let key_der = PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let mut certs = vec![CertificateDer::from(cert_der.clone())];
        certs.extend(chain);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("default TLS versions")
            .with_no_client_auth()
            .with_single_cert(certs, key_der)
            .expect("a server config for the test certificate");
        TestCert {
            cert_pem,
            key_pem: key.serialize_pem(),
            cert_der,
            server: Arc::new(server),
        }
    }

    pub fn der(&self) -> CertificateDer<'static> {
        CertificateDer::from(self.cert_der.clone())
    }

    /// What Wharf's listeners present.
    pub fn provider(&self) -> TlsProvider {
        TlsProvider::from_pem(self.cert_pem.as_bytes(), self.key_pem.as_bytes())
            .expect("the test certificate loads")
    }

    /// Writes the certificate as `cert.pem` in `dir` (a CA file for external clients).
    pub fn write_pem(&self, dir: &Path) -> PathBuf {
        let path = dir.join("cert.pem");
        std::fs::write(&path, &self.cert_pem)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    /// A rustls client config trusting only this certificate.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der()).expect("a trust anchor");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("default TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
}

/// One request an `https_sink` received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Request line and header fields, CRLF-separated, without the blank line.
    pub head: String,
    pub body: Vec<u8>,
}

/// An HTTPS server on 127.0.0.1 presenting `cert` that answers every request (with a
/// `Content-Length` body) with `status` (e.g. `"200 OK"`) and passes on what it received: a
/// TLS-RPT endpoint, say. Returns its port.
pub async fn https_sink(
    cert: &TestCert,
    status: &'static str,
) -> (u16, tokio::sync::mpsc::Receiver<Received>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let port = listener.local_addr().expect("its address").port();
    let acceptor = tokio_rustls::TlsAcceptor::from(cert.server.clone());
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let Ok(mut s) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, length) = loop {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_string();
                        let length: usize = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length").then(|| v.trim())
                            })
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        buf.drain(..end + 4);
                        break (head, length);
                    }
                };
                while buf.len() < length {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
                let _ = s.write_all(answer.as_bytes()).await;
                let _ = s.shutdown().await;
                let _ = tx.send(Received { head, body: buf }).await;
            });
        }
    });
    (port, rx)
}
