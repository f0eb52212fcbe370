//! Shared test fixtures: a tiny line protocol handler on a loopback listener (from
//! `wharf_testkit`), and TLS clients that trust the test certificate.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wharf_net::{Conn, Handler, Limits, Line, Server, TlsMode, TlsProvider, async_trait};
pub use wharf_testkit::LineClient as Client;
pub use wharf_testkit::TestCert;
use wharf_testkit::{Loopback, test_limits};

pub const TOO_BUSY: &[u8] = b"-ERR too busy\r\n";
pub const SLAM_REPLY: usize = 1 << 20;

/// Speaks a line protocol close enough to POP3 that `openssl s_client
/// -starttls pop3` can drive it: greeting "+OK", "STLS"/"STARTTLS" upgrade.
#[derive(Default)]
pub struct TestHandler {
    /// Every line the handler received, in order.
    pub seen: Mutex<Vec<String>>,
}

impl TestHandler {
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait]
impl Handler for TestHandler {
    async fn handle(&self, mut conn: Conn) {
        if conn.write_all(b"+OK hello\r\n").await.is_err() {
            return;
        }
        loop {
            let line = match conn.read_line(256).await {
                Ok(Line::Complete(l)) => l,
                Ok(Line::TooLong) => {
                    let _ = conn.write_all(b"-ERR too long\r\n").await;
                    continue;
                }
                Ok(Line::Eof) => return,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    let _ = conn.write_all(b"-ERR timeout\r\n").await;
                    return;
                }
                Err(_) => return,
            };
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            self.seen.lock().unwrap().push(text.clone());
            let upper = text.to_ascii_uppercase();
            match upper.as_str() {
                "STLS" | "STARTTLS" => {
                    if !conn.starttls_available() {
                        let _ = conn.write_all(b"-ERR no TLS\r\n").await;
                        continue;
                    }
                    if conn.write_all(b"+OK begin TLS\r\n").await.is_err() {
                        return;
                    }
                    if conn.start_tls().await.is_err() {
                        return;
                    }
                }
                "INFO" => {
                    let tls = conn
                        .tls_info()
                        .map(|i| format!("{} {}", i.version, i.cipher))
                        .unwrap_or_else(|| "plain".into());
                    let msg = format!(
                        "+OK peer={} tls={} listener={}\r\n",
                        conn.peer(),
                        tls,
                        conn.listener_name()
                    );
                    if conn.write_all(msg.as_bytes()).await.is_err() {
                        return;
                    }
                }
                "WAIT" => {
                    let mut sig = conn.shutdown_signal();
                    let _ = conn.write_all(b"+OK waiting\r\n").await;
                    let _ = sig.wait_for(|v| *v).await;
                    let _ = conn.write_all(b"+OK shutting down\r\n").await;
                    return;
                }
                "HANG" => {
                    let _ = conn.write_all(b"+OK hanging\r\n").await;
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                "PANIC" => panic!("test handler asked to panic"),
                "SLAM" => {
                    // A large answer, then hang up without reading what else
                    // came: the answer is still in the kernel's send queue.
                    let mut reply = b"+OK ".to_vec();
                    reply.extend(std::iter::repeat_n(b'r', SLAM_REPLY));
                    reply.extend_from_slice(b"\r\n");
                    let _ = conn.write_all(&reply).await;
                    return;
                }
                "QUIT" => {
                    let _ = conn.write_all(b"+OK bye\r\n").await;
                    let _ = conn.close().await;
                    return;
                }
                _ => {
                    let reply = format!("+OK echo {text}\r\n");
                    if conn.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    fn too_busy(&self) -> &'static [u8] {
        TOO_BUSY
    }
}

/// A self-signed certificate for `host`, `localhost` and `127.0.0.1`.
pub fn test_cert(host: &str) -> TestCert {
    TestCert::new(host, &["localhost", "127.0.0.1"])
}

pub fn limits() -> Limits {
    Limits {
        idle_timeout: Duration::from_secs(30),
        ..test_limits()
    }
}

pub struct Running {
    pub server: Server,
    pub addr: SocketAddr,
    pub handler: Arc<TestHandler>,
}

/// The test handler on one listener named `test`.
pub async fn serve(
    tls: Option<TlsProvider>,
    mode: TlsMode,
    proxy_protocol: bool,
    limits: Limits,
) -> Running {
    // RUST_LOG=info shows the server's log lines in failing tests.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let handler = Arc::new(TestHandler::default());
    let mut listeners = Loopback::with_tls(tls, limits);
    let addr = listeners
        .listen_with("test", mode, proxy_protocol, handler.clone())
        .await;
    Running {
        server: listeners.start(),
        addr,
        handler,
    }
}

pub fn client_config(
    trust: &[CertificateDer<'static>],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in trust {
        roots.add(c.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

pub async fn tls_connect<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<S>> {
    let connector = tokio_rustls::TlsConnector::from(config);
    connector
        .connect(ServerName::try_from("localhost").unwrap(), stream)
        .await
}

pub async fn plain_client(addr: SocketAddr) -> Client<TcpStream> {
    Client::new(TcpStream::connect(addr).await.unwrap())
}
