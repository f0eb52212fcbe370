//! A real POP3 server for end-to-end tests: wharf_net::Server on 127.0.0.1:0 (STLS and implicit
//! TLS listeners), an embedded store in a temp dir, a Directory, a self-signed certificate, and
//! a varied set of messages in alice's INBOX. Plus a minimal line client for raw transcripts.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::TcpStream;
use wharf_directory::{Directory, DirectoryConfig};
use wharf_net::{Limits, Server};
use wharf_pop3::{Pop3Config, Pop3Service};
use wharf_store::{Account, Delivery, DeliveryResult, Flags, Mailbox, Store};
use wharf_testkit::store::seed_accounts;
use wharf_testkit::{LineClient, Loopback, TestCert};

pub const USER: &str = "alice@example.org";
pub const PASS: &str = "Correct-Horse-42";

pub struct Env {
    pub store: Arc<dyn Store>,
    pub directory: Directory,
    pub server: Server,
    pub starttls: SocketAddr,
    pub implicit: SocketAddr,
    pub account: Account,
}

impl Env {
    /// Alice's INBOX.
    pub async fn inbox(&self) -> Mailbox {
        self.store
            .get_mailbox(self.account.id, "INBOX")
            .await
            .unwrap()
            .unwrap()
    }
}

pub async fn start_on(dir: &Path, cfg: Pop3Config, fresh: bool) -> Env {
    start_with(dir, cfg, DirectoryConfig::default(), fresh).await
}

/// The store in `dir` (alice and bob added when `fresh`, else opened again as after a restart).
pub async fn start_with(dir: &Path, cfg: Pop3Config, dircfg: DirectoryConfig, fresh: bool) -> Env {
    let store = wharf_store::open_embedded(dir).await.unwrap();
    let directory = Directory::new(store.clone(), dircfg);
    if fresh {
        seed_accounts(&directory, &[USER, "bob@example.org"], PASS).await;
    }
    let account = store.get_account_by_address(USER).await.unwrap().unwrap();
    let cert = TestCert::localhost();
    let mut listeners = Loopback::new(Some(&cert), Limits::default());
    let service = Arc::new(Pop3Service::new(
        cfg,
        "pop.example.org".into(),
        directory.clone(),
    ));
    let (starttls, implicit) = listeners.listen_pair("pop3", "pop3s", service).await;
    Env {
        store,
        directory,
        server: listeners.start(),
        starttls,
        implicit,
        account,
    }
}

/// Plaintext allowed on loopback so raw-socket tests can log in without TLS.
pub fn loopback_cfg() -> Pop3Config {
    Pop3Config {
        allow_plaintext_auth_on_loopback: true,
        ..Pop3Config::default()
    }
}

/// 100 varied messages: sizes from a few octets to ~300 KB, dot lines, 8-bit text, long lines,
/// a missing final CRLF, empty bodies, and some stored with bare LF (IMAP APPEND).
pub fn varied_messages(n: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for i in 0..n {
        let mut m = format!(
            "Received: from sender.test by pop.example.org; Sat, 28 Nov 2026 12:00:00 +0000\r\nFrom: sender{i}@test.example\r\nTo: {USER}\r\nSubject: message {i}\r\nMessage-ID: <{i}@test.example>\r\nX-Seq: {i}\r\n\r\n"
        )
        .into_bytes();
        match i % 7 {
            0 => m.extend_from_slice(b".\r\n..\r\n.leading dot\r\nend\r\n"),
            1 => {
                for j in 0..(i * 97 % 5000) {
                    m.extend_from_slice(
                        format!("line {j} of a larger body, padded padded padded\r\n").as_bytes(),
                    );
                }
            }
            2 => m.extend_from_slice(
                "8-bit: \u{e9}t\u{e9}, \u{4e2d}\u{6587}, \u{1f600}\r\n".as_bytes(),
            ),
            3 => m.extend_from_slice(b"no final line ending"),
            4 => {}
            5 => {
                m.extend_from_slice(&vec![b'x'; 990]);
                m.extend_from_slice(b"\r\n");
            }
            _ => {
                for j in 0..20 {
                    m.extend_from_slice(format!(".{j}\r\n").as_bytes());
                }
            }
        }
        if i % 11 == 5 {
            // Bare LF everywhere, as a careless IMAP client might APPEND it.
            m = String::from_utf8_lossy(&m)
                .replace("\r\n", "\n")
                .into_bytes();
        }
        out.push(m);
    }
    out
}

/// What a POP3 client receives as the message: CRLF lines, a final CRLF.
pub fn wire_form(raw: &[u8]) -> Vec<u8> {
    let mut s = String::from_utf8_lossy(raw)
        .replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .into_bytes();
    if !s.is_empty() && !s.ends_with(b"\r\n") {
        s.extend_from_slice(b"\r\n");
    }
    s
}

/// Stores the messages in alice's INBOX (delivery for CRLF ones, APPEND for bare-LF ones) and
/// returns them in UID order.
pub async fn fill_inbox(env: &Env, msgs: &[Vec<u8>]) {
    let inbox = env.inbox().await;
    for m in msgs {
        if m.windows(2).any(|w| w == b"\r\n") || !m.contains(&b'\n') {
            let r = env
                .store
                .deliver(Delivery {
                    raw: Bytes::copy_from_slice(m),
                    internal_date: 1_790_000_000,
                    recipients: vec![env.account.id],
                    junk: false,
                })
                .await
                .unwrap();
            assert!(matches!(r[0], DeliveryResult::Stored(_)), "{r:?}");
        } else {
            env.store
                .append(
                    inbox.id,
                    Bytes::copy_from_slice(m),
                    Flags::empty(),
                    &[],
                    1_790_000_000,
                )
                .await
                .unwrap();
        }
    }
}

pub async fn inbox_uids(env: &Env) -> Vec<u32> {
    let inbox = env.inbox().await;
    env.store
        .mailbox_index(inbox.id)
        .await
        .unwrap()
        .iter()
        .map(|e| e.uid)
        .collect()
}

/// A raw POP3 client over plain TCP: the test kit's line client plus POP3's multi-line answers.
pub struct Client {
    pub raw: LineClient<TcpStream>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let mut c = Client {
            raw: LineClient::connect(addr).await,
        };
        let g = c.line().await;
        assert!(g.starts_with("+OK"), "{g}");
        c
    }

    pub async fn line(&mut self) -> String {
        self.raw.line().await
    }

    /// Everything up to and including the terminating ".CRLF", raw bytes.
    pub async fn multiline(&mut self) -> Vec<u8> {
        self.raw.until_line(b".\r\n").await
    }

    pub async fn send(&mut self, cmd: &str) {
        self.raw.send(format!("{cmd}\r\n").as_bytes()).await;
    }

    pub async fn cmd(&mut self, cmd: &str) -> String {
        self.raw.cmd(cmd).await
    }

    pub async fn login(&mut self, user: &str) {
        assert_eq!(self.cmd(&format!("USER {user}")).await, "+OK send PASS\r\n");
        let r = self.cmd(&format!("PASS {PASS}")).await;
        assert!(r.starts_with("+OK"), "{r}");
    }

    /// RETR n: (status line, un-stuffed message) or the -ERR line.
    pub async fn retr(&mut self, n: usize) -> Result<Vec<u8>, String> {
        let st = self.cmd(&format!("RETR {n}")).await;
        if !st.starts_with("+OK") {
            return Err(st);
        }
        let body = self.multiline().await;
        let body = &body[..body.len() - 3];
        let mut out = Vec::new();
        for l in body.split_inclusive(|&b| b == b'\n') {
            out.extend_from_slice(l.strip_prefix(b".").unwrap_or(l));
        }
        let size: usize = st.split(' ').nth(1).unwrap().parse().unwrap();
        assert_eq!(size, out.len(), "RETR size matches the octets sent");
        Ok(out)
    }

    /// UIDL listing as (number, uid string).
    pub async fn uidl(&mut self) -> Vec<(usize, String)> {
        assert!(self.cmd("UIDL").await.starts_with("+OK"));
        let body = self.multiline().await;
        String::from_utf8(body)
            .unwrap()
            .lines()
            .filter(|l| *l != ".")
            .map(|l| {
                let (n, u) = l.split_once(' ').unwrap();
                (n.parse().unwrap(), u.to_string())
            })
            .collect()
    }

    pub async fn closed(&mut self) -> bool {
        self.raw.closed().await
    }
}
