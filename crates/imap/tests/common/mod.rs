//! Shared test fixtures: a temp embedded store with one account, a transcript driver over the
//! sans-io session, and an in-process server on 127.0.0.1:0.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use wharf_directory::{Directory, DirectoryConfig};
use wharf_imap::{ConnInfo, ImapConfig, ImapService, Next, Session};
use wharf_net::{Limits, ListenerSpec, Server, TlsMode, TlsProvider};
use wharf_store::Store;

pub const USER: &str = "alice@example.test";
pub const PASS: &str = "correct horse battery";
pub const USER2: &str = "bob@example.test";

pub struct Env {
    pub dir: tempfile::TempDir,
    pub directory: Directory,
    pub store: Arc<dyn Store>,
}

pub async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = wharf_store::open_embedded(dir.path()).await.unwrap();
    let directory = Directory::new(store.clone(), DirectoryConfig::default());
    directory.add_domain("example.test").await.unwrap();
    directory.add_account(USER, PASS, 0).await.unwrap();
    directory.add_account(USER2, PASS, 0).await.unwrap();
    Env {
        dir,
        directory,
        store,
    }
}

/// Drives a session with whole commands, as the connection loop would.
pub struct T {
    pub s: Session,
}

impl T {
    pub fn new(env: &Env, tls: bool, cfg: ImapConfig) -> T {
        let info = ConnInfo {
            peer: "127.0.0.1".parse().unwrap(),
            tls,
            starttls_available: !tls,
        };
        T {
            s: Session::new(Arc::new(cfg), env.directory.clone(), info, 1),
        }
    }

    /// A TLS session, logged in as alice.
    pub async fn login(env: &Env) -> T {
        let mut t = T::new(env, true, ImapConfig::default());
        let r = t.cmd(&format!("a0 LOGIN {USER} \"{PASS}\"")).await;
        assert!(r.contains("a0 OK"), "{r}");
        t
    }

    /// Sends one command line (CRLF added); literals must be inline.
    pub async fn cmd(&mut self, line: &str) -> String {
        self.raw(format!("{line}\r\n").as_bytes()).await
    }

    pub async fn raw(&mut self, bytes: &[u8]) -> String {
        self.next(bytes).await.0
    }

    /// Runs one command to completion (resuming chunked output) and reports what comes next.
    pub async fn next(&mut self, bytes: &[u8]) -> (String, Next) {
        let mut r = self.s.handle(bytes).await;
        let mut out = std::mem::take(&mut r.out);
        while r.next == Next::More {
            r = self.s.resume().await;
            out.extend_from_slice(&r.out);
        }
        (String::from_utf8_lossy(&out).into_owned(), r.next)
    }

    /// APPENDs a message to a mailbox, returning its UID.
    pub async fn append(&mut self, mailbox: &str, flags: &str, msg: &str) -> u32 {
        let cmd = format!("ap APPEND {mailbox} {flags}{{{}}}\r\n{msg}\r\n", msg.len());
        let r = self.raw(cmd.as_bytes()).await;
        assert!(r.contains("ap OK [APPENDUID"), "{r}");
        let code = r.split("APPENDUID ").nth(1).unwrap();
        code.split([' ', ']']).nth(1).unwrap().parse().unwrap()
    }
}

pub fn message(i: usize) -> String {
    format!(
        "From: Sender {i} <sender{i}@example.org>\r\nTo: alice@example.test\r\nSubject: Message number {i}\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <m{i}@example.org>\r\n\r\nHello body {i}\r\n"
    )
}

/// Starts the IMAP service on two loopback listeners: STARTTLS (143-like) and implicit TLS.
pub async fn server(env: &Env, cfg: ImapConfig) -> (Server, SocketAddr, SocketAddr, String) {
    let (cert, key) = wharf_net::generate_self_signed("localhost", &[]).unwrap();
    let tls = TlsProvider::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
    let mut server = Server::new(
        Some(tls),
        Limits {
            max_connections: 100,
            max_per_ip: 100,
            idle_timeout: Duration::from_secs(60),
            tls_handshake_timeout: Duration::from_secs(10),
        },
    );
    let handler = Arc::new(ImapService::new(
        cfg,
        "localhost".into(),
        env.directory.clone(),
    ));
    let plain = server
        .bind(
            ListenerSpec {
                name: "imap".into(),
                addr: "127.0.0.1:0".parse().unwrap(),
                tls: TlsMode::StartTls,
                proxy_protocol: false,
            },
            handler.clone(),
        )
        .await
        .unwrap();
    let implicit = server
        .bind(
            ListenerSpec {
                name: "imaps".into(),
                addr: "127.0.0.1:0".parse().unwrap(),
                tls: TlsMode::Implicit,
                proxy_protocol: false,
            },
            handler,
        )
        .await
        .unwrap();
    server.start();
    let cert_path = env.dir.path().join("cert.pem");
    std::fs::write(&cert_path, &cert).unwrap();
    (
        server,
        plain,
        implicit,
        cert_path.to_string_lossy().into_owned(),
    )
}
