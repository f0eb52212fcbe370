//! A real ManageSieve server for end-to-end tests: wharf_net::Server on 127.0.0.1:0 (STARTTLS
//! and implicit TLS listeners), an embedded store in a temp dir, a Directory with alice and bob,
//! a self-signed certificate, and the test script checker. Plus a raw line client over plain
//! TCP that can switch to TLS (STARTTLS) and read ManageSieve responses.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wharf_directory::{Directory, DirectoryConfig};
use wharf_managesieve::{ManageSieveConfig, ManageSieveService};
use wharf_net::Limits;
use wharf_net::Server;
use wharf_store::{Account, Store};
use wharf_testkit::store::seed_accounts;
use wharf_testkit::{LineClient, Loopback, TestCert};

use crate::common::Checker;

pub const USER: &str = "alice@example.org";
pub const PASS: &str = "Correct-Horse-42";

pub struct Env {
    pub store: Arc<dyn Store>,
    pub directory: Directory,
    pub server: Server,
    pub cert: TestCert,
    pub starttls: SocketAddr,
    pub implicit: SocketAddr,
    pub account: Account,
}

pub async fn start(dir: &Path, cfg: ManageSieveConfig) -> Env {
    start_with(dir, cfg, DirectoryConfig::default()).await
}

pub async fn start_with(dir: &Path, cfg: ManageSieveConfig, dircfg: DirectoryConfig) -> Env {
    let store = wharf_store::open_embedded(dir).await.unwrap();
    let directory = Directory::new(store.clone(), dircfg);
    seed_accounts(&directory, &[USER, "bob@example.org"], PASS).await;
    let account = store.get_account_by_address(USER).await.unwrap().unwrap();
    let cert = TestCert::localhost();
    let mut listeners = Loopback::new(Some(&cert), Limits::default());
    let service = Arc::new(ManageSieveService::new(
        cfg,
        "sieve.example.org".into(),
        directory.clone(),
        Arc::new(Checker),
    ));
    let (starttls, implicit) = listeners
        .listen_pair("managesieve", "managesieves", service)
        .await;
    Env {
        store,
        directory,
        server: listeners.start(),
        cert,
        starttls,
        implicit,
        account,
    }
}

pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A raw ManageSieve client: lines and responses, STARTTLS.
pub struct Client {
    pub raw: LineClient<Box<dyn Stream>>,
}

impl Client {
    /// Connects and reads the greeting (capabilities and OK); returns both.
    pub async fn connect(addr: SocketAddr) -> (Client, String) {
        let s = TcpStream::connect(addr).await.unwrap();
        let mut c = Client {
            raw: LineClient::new(Box::new(s) as Box<dyn Stream>),
        };
        let g = c.response().await;
        assert!(g.contains("\r\nOK "), "{g}");
        (c, g)
    }

    /// Connects to an implicit TLS listener.
    pub async fn connect_tls(addr: SocketAddr, cert: &TestCert) -> (Client, String) {
        let s = TcpStream::connect(addr).await.unwrap();
        let s = tls(s, cert).await;
        let mut c = Client {
            raw: LineClient::new(Box::new(s) as Box<dyn Stream>),
        };
        let g = c.response().await;
        (c, g)
    }

    /// STARTTLS, the handshake, and the capabilities sent again.
    pub async fn starttls(self, cert: &TestCert) -> (Client, String) {
        let mut c = self;
        assert_eq!(
            c.cmd("STARTTLS").await,
            "OK \"Begin TLS negotiation now\"\r\n"
        );
        let inner = c.raw.into_inner();
        let s = tls(inner, cert).await;
        let mut c = Client {
            raw: LineClient::new(Box::new(s) as Box<dyn Stream>),
        };
        let caps = c.response().await;
        (c, caps)
    }

    pub async fn send(&mut self, data: &[u8]) {
        self.raw.send(data).await;
    }

    /// Sends a command line and returns the whole response.
    pub async fn cmd(&mut self, cmd: &str) -> String {
        self.raw.send(format!("{cmd}\r\n").as_bytes()).await;
        self.response().await
    }

    /// Everything up to and including the OK/NO/BYE line (literals read whole).
    pub async fn response(&mut self) -> String {
        let mut out = Vec::new();
        loop {
            let l = self.raw.raw_line().await;
            assert!(
                !l.is_empty(),
                "EOF inside a response: {}",
                String::from_utf8_lossy(&out)
            );
            out.extend_from_slice(&l);
            let text = wharf_managesieve::syntax::trim_line(&l);
            if let Some(n) = wharf_managesieve::syntax::literal_at_end(text) {
                let mut buf = vec![0u8; usize::try_from(n).unwrap()];
                tokio::io::AsyncReadExt::read_exact(&mut self.raw.io, &mut buf)
                    .await
                    .unwrap();
                out.extend_from_slice(&buf);
                continue;
            }
            if text.starts_with(b"OK") || text.starts_with(b"NO") || text.starts_with(b"BYE") {
                return String::from_utf8_lossy(&out).to_string();
            }
        }
    }

    pub async fn login(&mut self, user: &str, pass: &str) -> String {
        use base64::Engine;
        let ir = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pass}"));
        self.cmd(&format!("AUTHENTICATE \"PLAIN\" \"{ir}\"")).await
    }

    pub async fn closed(&mut self) -> bool {
        self.raw.closed().await
    }
}

async fn tls<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    s: S,
    cert: &TestCert,
) -> tokio_rustls::client::TlsStream<S> {
    let connector = tokio_rustls::TlsConnector::from(cert.client_config());
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, s).await.unwrap()
}
