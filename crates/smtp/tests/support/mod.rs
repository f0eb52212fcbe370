//! Shared test harness: a real SMTP service on loopback listeners (MX, submission with STARTTLS,
//! submission with implicit TLS) over a temporary embedded store, plus a raw line-level client.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wharf_directory::{Directory, DirectoryConfig};
use wharf_net::{Limits, Server, TlsMode};
use wharf_smtp::{RemoteHandoff, SmtpConfig, SmtpRole, SmtpService};
use wharf_store::Store;
use wharf_testkit::{Loopback, TestCert};

pub const DOMAIN: &str = "example.test";
pub const ALICE: &str = "alice@example.test";
pub const BOB: &str = "bob@example.test";
pub const CAROL: &str = "carol@example.test";
/// An account whose quota is already used up by a seeded message.
pub const FULL: &str = "full@example.test";
/// An account whose quota (2000 octets) is smaller than big test messages.
pub const TINY: &str = "tiny@example.test";
pub const PASSWORD: &str = "correct horse battery staple";
pub const HOSTNAME: &str = "mx.example.test";

pub struct TestServer {
    pub mx: SocketAddr,
    pub submission: SocketAddr,
    pub smtps: SocketAddr,
    pub store: Arc<dyn Store>,
    pub dir: Directory,
    pub cert_path: PathBuf,
    server: Option<Server>,
    pub tmp: tempfile::TempDir,
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "wharf_smtp=debug".into()))
        .with_test_writer()
        .try_init();
}

/// Config used by most tests: defaults, with plaintext AUTH on loopback left off.
pub fn test_config() -> SmtpConfig {
    SmtpConfig {
        max_connection_rate_per_ip: 0,
        max_connections_per_ip: 0,
        ..SmtpConfig::default()
    }
}

pub async fn start() -> TestServer {
    start_with(test_config()).await
}

pub async fn start_with(cfg: SmtpConfig) -> TestServer {
    start_full(cfg, None).await
}

/// Both roles share `handoff` when given (the binary wires one queue behind MX and submission).
pub async fn start_full(cfg: SmtpConfig, handoff: Option<Arc<dyn RemoteHandoff>>) -> TestServer {
    let limits = Limits {
        idle_timeout: Duration::from_secs(60),
        ..Limits::default()
    };
    start_with_limits(cfg, handoff, limits).await
}

/// `start_full` with the server's own connection limits (load tests open more than 50).
pub async fn start_with_limits(
    cfg: SmtpConfig,
    handoff: Option<Arc<dyn RemoteHandoff>>,
    limits: Limits,
) -> TestServer {
    init_tracing();
    let tmp = tempfile::tempdir().unwrap();
    let store = wharf_store::open_embedded(tmp.path()).await.unwrap();
    let dir = Directory::new(store.clone(), DirectoryConfig::default());
    seed(&dir).await;
    let cert = TestCert::new(HOSTNAME, &["localhost"]);
    let cert_path = cert.write_pem(tmp.path());
    let mut listeners = Loopback::new(Some(&cert), limits);
    let mut mx_svc = SmtpService::new(cfg.clone(), HOSTNAME.into(), dir.clone(), SmtpRole::Mx);
    let mut sub_svc = SmtpService::new(cfg, HOSTNAME.into(), dir.clone(), SmtpRole::Submission);
    if let Some(h) = handoff {
        mx_svc = mx_svc.with_handoff(Arc::clone(&h));
        sub_svc = sub_svc.with_handoff(h);
    }
    let (mx_svc, sub_svc) = (Arc::new(mx_svc), Arc::new(sub_svc));
    let mx = listeners.listen("smtp", TlsMode::StartTls, mx_svc).await;
    let (submission, smtps) = listeners
        .listen_pair("submission", "submissions", sub_svc)
        .await;
    let server = listeners.start();
    TestServer {
        mx,
        submission,
        smtps,
        store,
        dir,
        cert_path,
        server: Some(server),
        tmp,
    }
}

pub async fn seed(dir: &Directory) {
    if dir.store().get_domain(DOMAIN).await.unwrap().is_some() {
        return;
    }
    dir.add_domain(DOMAIN).await.unwrap();
    for a in [ALICE, BOB, CAROL] {
        dir.add_account(a, PASSWORD, 0).await.unwrap();
    }
    dir.add_account(TINY, PASSWORD, 2000).await.unwrap();
    let full = dir.add_account(FULL, PASSWORD, 100).await.unwrap();
    let inbox = dir
        .store()
        .get_mailbox(full.id, "INBOX")
        .await
        .unwrap()
        .unwrap();
    // Quota is enforced on append, so make room first, fill it, then shrink it back.
    dir.store().set_account_quota(full.id, 0).await.unwrap();
    dir.store()
        .append(
            inbox.id,
            bytes::Bytes::from(vec![b'x'; 200]),
            wharf_store::Flags::empty(),
            &[],
            0,
        )
        .await
        .unwrap();
    dir.store().set_account_quota(full.id, 100).await.unwrap();
    dir.add_alias("sales@example.test", ALICE).await.unwrap();
    dir.add_alias("team@example.test", ALICE).await.unwrap();
    dir.add_alias("team@example.test", BOB).await.unwrap();
    dir.add_alias("fwd@example.test", "someone@remote.test")
        .await
        .unwrap();
    dir.add_alias("alice-alias@example.test", ALICE)
        .await
        .unwrap();
}

impl TestServer {
    /// Raw messages in the account's INBOX, ascending by UID.
    pub async fn inbox(&self, address: &str) -> Vec<Vec<u8>> {
        inbox_of(&self.store, address).await
    }

    pub async fn shutdown(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown(Duration::from_secs(2)).await;
        }
    }
}

pub async fn inbox_of(store: &Arc<dyn Store>, address: &str) -> Vec<Vec<u8>> {
    let acct = store
        .get_account_by_address(address)
        .await
        .unwrap()
        .unwrap();
    let inbox = store.get_mailbox(acct.id, "INBOX").await.unwrap().unwrap();
    let mut out = Vec::new();
    for e in store.mailbox_index(inbox.id).await.unwrap() {
        out.push(store.message_raw(e.message_id).await.unwrap().to_vec());
    }
    out
}

/// The stored message without the trace headers Wharf prepends (Return-Path, Received).
pub fn strip_trace(raw: &[u8]) -> &[u8] {
    let mut pos = 0;
    let starts = |p: usize, name: &[u8]| {
        raw.len() >= p + name.len() && raw[p..p + name.len()].eq_ignore_ascii_case(name)
    };
    assert!(
        starts(0, b"Return-Path:"),
        "no Return-Path first: {:?}",
        String::from_utf8_lossy(raw)
    );
    loop {
        if !(starts(pos, b"Return-Path:") || starts(pos, b"Received:")) {
            return &raw[pos..];
        }
        // Skip this field and its continuation lines.
        loop {
            let nl = raw[pos..].iter().position(|b| *b == b'\n').unwrap();
            pos += nl + 1;
            if pos >= raw.len() || (raw[pos] != b' ' && raw[pos] != b'\t') {
                break;
            }
        }
    }
}

pub fn trace_headers(raw: &[u8]) -> String {
    let body = strip_trace(raw);
    String::from_utf8_lossy(&raw[..raw.len() - body.len()]).into_owned()
}

/// A line-level SMTP client over a plain TCP socket, for transcripts and raw byte sequences.
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).await.unwrap();
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    /// Connects and reads the 220 greeting.
    pub async fn open(addr: SocketAddr) -> Raw {
        let mut r = Raw::connect(addr).await;
        let (code, _) = r.reply().await;
        assert_eq!(code, 220);
        r
    }

    pub async fn send(&mut self, data: &[u8]) {
        self.stream.write_all(data).await.unwrap();
    }

    async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Some(String::from_utf8_lossy(&line).trim_end().to_string());
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(20), self.stream.read(&mut chunk))
                .await
                .expect("timed out waiting for a reply")
                .ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// One complete (possibly multi-line) reply: (code, text of the last line).
    pub async fn reply(&mut self) -> (u16, String) {
        self.try_reply()
            .await
            .expect("connection closed before a reply")
    }

    pub async fn try_reply(&mut self) -> Option<(u16, String)> {
        let mut all = String::new();
        loop {
            let line = self.line().await?;
            assert!(line.len() >= 3, "short reply line {line:?}");
            let code: u16 = line[..3].parse().unwrap();
            all.push_str(&line);
            all.push('\n');
            if line.as_bytes().get(3) != Some(&b'-') {
                return Some((code, all));
            }
        }
    }

    /// Sends a command and returns its reply.
    pub async fn cmd(&mut self, line: &str) -> (u16, String) {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    pub async fn expect(&mut self, line: &str, code: u16) -> String {
        let (c, text) = self.cmd(line).await;
        assert_eq!(c, code, "{line} -> {text}");
        text
    }

    /// True when the server closed the connection (EOF) within a few seconds.
    pub async fn closed(&mut self) -> bool {
        let mut chunk = [0u8; 1024];
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// Runs a command and returns (exit status success, stdout, stderr).
pub async fn run(cmd: &str, args: &[&str], stdin: Option<&[u8]>) -> (bool, String, String) {
    use std::process::Stdio;
    let mut c = tokio::process::Command::new(cmd);
    c.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = c
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    if let Some(data) = stdin {
        let mut si = child.stdin.take().unwrap();
        si.write_all(data).await.unwrap();
        drop(si);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn script(name: &str) -> String {
    format!("{}/tests/clients/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A message with CRLF line endings, a unique subject and the given From.
pub fn message(from: &str, to: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: Sat, 28 Nov 2026 12:00:00 +0000\r\nMessage-ID: <{subject}@client.test>\r\n\r\n{body}"
    )
    .replace("\r\n", "\n")
    .replace('\n', "\r\n")
    .into_bytes()
}

/// One step of a Python-driven transcript (tests/clients/transcript.py), for TLS sessions.
pub enum Step<'a> {
    Send(&'a str),
    Expect(u16),
    Contains(&'a str),
    Lacks(&'a str),
    StartTls,
    Closed,
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Runs the steps against 127.0.0.1:`port` (implicit TLS when `ssl`); panics with the transcript on
/// the first mismatch.
pub async fn transcript(port: u16, ssl: bool, steps: &[Step<'_>]) -> String {
    let json: Vec<String> = steps
        .iter()
        .map(|s| match s {
            Step::Send(t) => format!("{{\"send\":{}}}", json_str(t)),
            Step::Expect(c) => format!("{{\"expect\":{c}}}"),
            Step::Contains(t) => format!("{{\"contains\":{}}}", json_str(t)),
            Step::Lacks(t) => format!("{{\"lacks\":{}}}", json_str(t)),
            Step::StartTls => "{\"starttls\":true}".into(),
            Step::Closed => "{\"closed\":true}".into(),
        })
        .collect();
    let input = format!("[{}]", json.join(","));
    let port = port.to_string();
    let path = script("transcript.py");
    let mut args = vec![path.as_str(), "127.0.0.1", port.as_str()];
    if ssl {
        args.push("ssl");
    }
    let (ok, out, err) = run("python3", &args, Some(input.as_bytes())).await;
    assert!(
        ok && out.contains("PASS"),
        "transcript failed:\n{out}\n{err}"
    );
    out
}

pub fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}
