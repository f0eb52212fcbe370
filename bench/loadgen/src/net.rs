//! One client connection: TCP to a loopback port, optionally wrapped in implicit TLS, read line by line.
//! Certificates are not verified: every server under test uses the same throw-away self-signed certificate,
//! and resumption is off so every connection pays a full handshake on every server alike.

use anyhow::{Context, Result, bail};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::sync::{Arc, OnceLock};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[derive(Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

pub struct Conn {
    inner: BufReader<Box<dyn Io>>,
    /// Bytes received so far (for throughput figures).
    pub received: u64,
}

/// Lines longer than this are a broken server, not a workload. A `* SEARCH` of a 1,000,000-message
/// mailbox where every message matches is about 7 MB.
const MAX_LINE: usize = 64 << 20;

impl Conn {
    pub async fn connect(ep: &Endpoint) -> Result<Conn> {
        let tcp = TcpStream::connect((ep.host.as_str(), ep.port))
            .await
            .with_context(|| format!("connect {}:{}", ep.host, ep.port))?;
        tcp.set_nodelay(true)?;
        let io: Box<dyn Io> = if ep.tls {
            let name = ServerName::try_from("mx.bench.test")?;
            let tls = tokio_rustls::TlsConnector::from(tls_config())
                .connect(name, tcp)
                .await
                .context("TLS handshake")?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        Ok(Conn {
            inner: BufReader::with_capacity(16 * 1024, io),
            received: 0,
        })
    }

    /// Reads one line including its CRLF into `line` (cleared first).
    pub async fn line(&mut self, line: &mut Vec<u8>) -> Result<()> {
        line.clear();
        let n = (&mut self.inner)
            .take(MAX_LINE as u64)
            .read_until(b'\n', line)
            .await?;
        if n == 0 {
            bail!("connection closed by server");
        }
        if !line.ends_with(b"\n") {
            bail!("line longer than {MAX_LINE} bytes");
        }
        self.received += n as u64;
        Ok(())
    }

    /// Reads exactly `n` bytes (an IMAP literal), appending them to `out` when given.
    pub async fn exact(&mut self, n: usize, out: Option<&mut Vec<u8>>) -> Result<()> {
        let mut left = n;
        let mut buf = [0u8; 16 * 1024];
        let mut out = out;
        while left > 0 {
            let want = left.min(buf.len());
            let got = self.inner.read(&mut buf[..want]).await?;
            if got == 0 {
                bail!("connection closed inside a literal");
            }
            if let Some(o) = out.as_deref_mut() {
                o.extend_from_slice(&buf[..got]);
            }
            left -= got;
        }
        self.received += n as u64;
        Ok(())
    }

    pub async fn send(&mut self, data: &[u8]) -> Result<()> {
        self.inner.get_mut().write_all(data).await?;
        self.inner.get_mut().flush().await?;
        Ok(())
    }

    pub async fn shutdown(mut self) {
        let _ = self.inner.get_mut().shutdown().await;
    }
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions();
            // The ring provider always supports the default versions; fall back to TLS 1.3 alone if not.
            let builder = match builder {
                Ok(b) => b,
                Err(_) => {
                    rustls::ClientConfig::builder_with_protocol_versions(&[&rustls::version::TLS13])
                }
            };
            let mut config = builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
                .with_no_client_auth();
            config.resumption = rustls::client::Resumption::disabled();
            Arc::new(config)
        })
        .clone()
}

#[derive(Debug)]
struct AnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
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
            &self.0.signature_verification_algorithms,
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
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
