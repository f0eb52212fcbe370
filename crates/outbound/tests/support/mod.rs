//! Test fixtures on loopback: a scripted SMTP server with STARTTLS, AUTH, PIPELINING, CHUNKING and
//! per-recipient replies, and an HTTPS host serving an MTA-STS policy. The DNS server, the test
//! certificates and the in-memory queue come from `wharf_testkit`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wharf_outbound::dkim::{self, Algorithm, DkimKey, DkimSigners, GeneratedKey};

use wharf_outbound::route::{Router, RouterConfig};
use wharf_outbound::{BounceSink, ClientConfig, Outbound, QueueConfig, TrustAnchors};
// Every test file of the crate includes this module and uses some of these.
#[allow(unused_imports)]
pub use wharf_testkit::{MemoryQueue, TestCert, Zone, dkim_results, start_dns};

// ---------------------------------------------------------------- Outbound

/// Signers holding new keys for `domain` (one per selector and algorithm), and the keys, whose
/// `dns_name`/`txt_value` the test publishes in its zone.
pub fn dkim_keys(domain: &str, keys: &[(&str, Algorithm)]) -> (DkimSigners, Vec<GeneratedKey>) {
    let mut signers = DkimSigners::new();
    let mut out = Vec::new();
    for (selector, algorithm) in keys {
        let key = dkim::generate(domain, selector, *algorithm).unwrap();
        signers.add(DkimKey::from_pem(domain, selector, key.private_key_pem.as_bytes()).unwrap());
        out.push(key);
    }
    (signers, out)
}

/// The worker settings of most tests: node `node-1`, a retry every second, a 10 s command
/// timeout.
pub fn quick_worker(q: &mut QueueConfig, c: &mut ClientConfig) {
    q.retry_schedule = vec![std::time::Duration::from_secs(1)];
    q.node_id = "node-1".into();
    c.command_timeout = std::time::Duration::from_secs(10);
}

/// An `Outbound` sending as `hostname` over `queue`, with no trust anchors (a test certificate is
/// trusted by DANE or not at all); `tweak` adjusts the configs before it starts.
pub fn test_outbound(
    queue: &Arc<MemoryQueue>,
    hostname: &str,
    rc: RouterConfig,
    tweak: impl FnOnce(&mut QueueConfig, &mut ClientConfig),
    dkim: DkimSigners,
    sink: Option<Arc<dyn BounceSink>>,
) -> Arc<Outbound> {
    let mut q = QueueConfig::new(hostname);
    let mut c = ClientConfig::new(hostname);
    c.anchors = TrustAnchors::empty();
    tweak(&mut q, &mut c);
    Outbound::new(queue.clone(), Router::new(rc).unwrap(), c, q, dkim, sink)
}

// ---------------------------------------------------------------- SMTP

#[derive(Clone)]
pub struct FakeConfig {
    pub greeting: String,
    /// Wait before the greeting (a slow destination).
    pub greeting_delay: std::time::Duration,
    /// EHLO keywords after the first line (STARTTLS is added when `tls` is set and not yet active).
    pub extensions: Vec<String>,
    pub reject_ehlo: bool,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Advertise STARTTLS but answer it with 454.
    pub refuse_starttls: bool,
    /// (user, password) accepted by AUTH PLAIN/LOGIN.
    pub auth: Option<(String, String)>,
    /// Mechanisms advertised with AUTH.
    pub auth_mechs: String,
    /// Reply to RCPT TO for an address (default 250).
    pub rcpt: Arc<dyn Fn(&str) -> String + Send + Sync>,
    /// Reply after the message body.
    pub final_reply: String,
}

impl Default for FakeConfig {
    fn default() -> FakeConfig {
        FakeConfig {
            greeting: "220 fake.test ESMTP".into(),
            greeting_delay: std::time::Duration::ZERO,
            extensions: vec![
                "PIPELINING".into(),
                "8BITMIME".into(),
                "SIZE 10000000".into(),
            ],
            reject_ehlo: false,
            tls: None,
            refuse_starttls: false,
            auth: None,
            auth_mechs: "PLAIN LOGIN".into(),
            rcpt: Arc::new(|_| "250 2.1.5 ok".into()),
            final_reply: "250 2.0.0 queued".into(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Received {
    pub mail_from: String,
    pub rcpts: Vec<String>,
    pub data: Vec<u8>,
    pub tls: bool,
    pub authed: Option<String>,
    /// MAIL arrived with the rest of the transaction already buffered (PIPELINING used).
    pub pipelined: bool,
    pub via_bdat: bool,
}

#[derive(Clone, Default)]
pub struct FakeState {
    pub commands: Arc<Mutex<Vec<String>>>,
    pub messages: Arc<Mutex<Vec<Received>>>,
    pub connections: Arc<AtomicUsize>,
}

impl FakeState {
    pub fn messages(&self) -> Vec<Received> {
        self.messages.lock().unwrap().clone()
    }
    pub fn commands(&self) -> Vec<String> {
        self.commands.lock().unwrap().clone()
    }
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

pub async fn start_fake(cfg: FakeConfig) -> (SocketAddr, FakeState) {
    start_fake_on("127.0.0.1:0", cfg).await
}

pub async fn start_fake_on(bind: &str, cfg: FakeConfig) -> (SocketAddr, FakeState) {
    let l = TcpListener::bind(bind).await.unwrap();
    let addr = l.local_addr().unwrap();
    (addr, serve_fake(l, cfg))
}

pub fn serve_fake(l: TcpListener, cfg: FakeConfig) -> FakeState {
    let state = FakeState::default();
    let st = state.clone();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            st.connections.fetch_add(1, Ordering::SeqCst);
            let cfg = cfg.clone();
            let st = st.clone();
            tokio::spawn(async move {
                let _ = session(s, cfg, st).await;
            });
        }
    });
    state
}

trait Rw: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Rw for T {}

struct Io {
    s: Box<dyn Rw>,
    buf: Vec<u8>,
}

impl Io {
    async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(p) = self.buf.iter().position(|&b| b == b'\n') {
                let l: Vec<u8> = self.buf.drain(..=p).collect();
                return Some(String::from_utf8_lossy(&l).trim_end().to_string());
            }
            let mut c = [0u8; 4096];
            let n = self.s.read(&mut c).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&c[..n]);
        }
    }
    async fn exact(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            let mut c = [0u8; 4096];
            let k = self.s.read(&mut c).await.ok()?;
            if k == 0 {
                return None;
            }
            self.buf.extend_from_slice(&c[..k]);
        }
        Some(self.buf.drain(..n).collect())
    }
    async fn send(&mut self, s: &str) -> Option<()> {
        self.s.write_all(format!("{s}\r\n").as_bytes()).await.ok()?;
        self.s.flush().await.ok()
    }
}

async fn session(tcp: TcpStream, cfg: FakeConfig, st: FakeState) -> Option<()> {
    let mut io = Io {
        s: Box::new(tcp),
        buf: Vec::new(),
    };
    let mut tls_active = false;
    let mut authed: Option<String> = None;
    let mut cur: Option<Received> = None;
    ::tokio::time::sleep(cfg.greeting_delay).await;
    io.send(&cfg.greeting).await?;
    if !cfg.greeting.starts_with("220") {
        return None;
    }
    loop {
        let line = io.line().await?;
        st.commands.lock().unwrap().push(line.clone());
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            if cfg.reject_ehlo {
                io.send("502 5.5.2 EHLO not implemented").await?;
                continue;
            }
            let mut ext = cfg.extensions.clone();
            if (cfg.tls.is_some() || cfg.refuse_starttls) && !tls_active {
                ext.push("STARTTLS".into());
            }
            if cfg.auth.is_some() && tls_active {
                ext.push(format!("AUTH {}", cfg.auth_mechs));
            }
            let mut out = String::from("250-fake.test");
            for (i, e) in ext.iter().enumerate() {
                out.push_str(if i + 1 == ext.len() {
                    "\r\n250 "
                } else {
                    "\r\n250-"
                });
                out.push_str(e);
            }
            if ext.is_empty() {
                out = "250 fake.test".into();
            }
            io.send(&out).await?;
        } else if upper.starts_with("HELO") {
            io.send("250 fake.test").await?;
        } else if upper == "STARTTLS" && cfg.refuse_starttls {
            io.send("454 4.7.0 TLS not available").await?;
        } else if upper == "STARTTLS" {
            let Some(tls) = cfg.tls.clone() else {
                io.send("502 5.5.1 no").await?;
                continue;
            };
            io.send("220 2.0.0 go ahead").await?;
            io.buf.clear();
            let acceptor = tokio_rustls::TlsAcceptor::from(tls);
            // Re-box the stream through the handshake.
            let inner = std::mem::replace(&mut io.s, Box::new(empty::EmptyRw));
            let t = acceptor.accept(inner).await.ok()?;
            io.s = Box::new(t);
            tls_active = true;
            cur = None;
        } else if upper.starts_with("AUTH PLAIN ") {
            let tok = &line[11..];
            let dec = base64::engine::general_purpose::STANDARD
                .decode(tok)
                .unwrap_or_default();
            let parts: Vec<&[u8]> = dec.split(|&b| b == 0).collect();
            let ok = cfg.auth.as_ref().is_some_and(|(u, p)| {
                parts.len() == 3 && parts[1] == u.as_bytes() && parts[2] == p.as_bytes()
            });
            if ok && tls_active {
                authed = cfg.auth.as_ref().map(|(u, _)| u.clone());
                io.send("235 2.7.0 ok").await?;
            } else {
                io.send("535 5.7.8 bad").await?;
            }
        } else if upper == "AUTH LOGIN" {
            io.send("334 VXNlcm5hbWU6").await?;
            let u = io.line().await?;
            io.send("334 UGFzc3dvcmQ6").await?;
            let p = io.line().await?;
            let d = |s: &str| {
                String::from_utf8(
                    base64::engine::general_purpose::STANDARD
                        .decode(s)
                        .unwrap_or_default(),
                )
                .unwrap_or_default()
            };
            let (u, p) = (d(&u), d(&p));
            if cfg
                .auth
                .as_ref()
                .is_some_and(|(cu, cp)| *cu == u && *cp == p)
                && tls_active
            {
                authed = Some(u);
                io.send("235 2.7.0 ok").await?;
            } else {
                io.send("535 5.7.8 bad").await?;
            }
        } else if upper.starts_with("MAIL FROM:") {
            if cfg.auth.is_some() && authed.is_none() {
                io.send("530 5.7.0 auth first").await?;
                continue;
            }
            let from = between(&line, '<', '>');
            let pipelined = io.buf.windows(4).any(|w| w == b"RCPT");
            cur = Some(Received {
                mail_from: from,
                tls: tls_active,
                authed: authed.clone(),
                pipelined,
                ..Received::default()
            });
            io.send("250 2.1.0 ok").await?;
        } else if upper.starts_with("RCPT TO:") {
            let to = between(&line, '<', '>');
            let reply = (cfg.rcpt)(&to);
            if reply.starts_with('2')
                && let Some(c) = cur.as_mut()
            {
                c.rcpts.push(to);
            }
            io.send(&reply).await?;
        } else if upper == "DATA" {
            if cur.as_ref().is_none_or(|c| c.rcpts.is_empty()) {
                io.send("554 5.5.1 no valid recipients").await?;
                continue;
            }
            io.send("354 go").await?;
            let mut data = Vec::new();
            loop {
                let l = io.line_raw().await?;
                if l == b".\r\n" {
                    break;
                }
                let l = if l.starts_with(b".") {
                    l[1..].to_vec()
                } else {
                    l
                };
                data.extend_from_slice(&l);
            }
            let mut c = cur.take().unwrap_or_default();
            c.data = data;
            if cfg.final_reply.starts_with('2') {
                st.messages.lock().unwrap().push(c);
            }
            io.send(&cfg.final_reply).await?;
        } else if upper.starts_with("BDAT ") {
            let mut words = line.split_whitespace().skip(1);
            let n: usize = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
            let last = words.next().is_some_and(|w| w.eq_ignore_ascii_case("LAST"));
            let chunk = io.exact(n).await?;
            let c = cur.get_or_insert_with(Received::default);
            c.data.extend_from_slice(&chunk);
            c.via_bdat = true;
            if last {
                let c = cur.take().unwrap_or_default();
                if cfg.final_reply.starts_with('2') {
                    st.messages.lock().unwrap().push(c);
                }
                io.send(&cfg.final_reply).await?;
            } else {
                io.send("250 2.0.0 chunk").await?;
            }
        } else if upper == "RSET" {
            cur = None;
            io.send("250 2.0.0 ok").await?;
        } else if upper == "QUIT" {
            io.send("221 2.0.0 bye").await?;
            return Some(());
        } else if upper == "NOOP" {
            io.send("250 ok").await?;
        } else {
            io.send("500 5.5.2 what").await?;
        }
    }
}

impl Io {
    async fn line_raw(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(p) = self.buf.iter().position(|&b| b == b'\n') {
                return Some(self.buf.drain(..=p).collect());
            }
            let mut c = [0u8; 4096];
            let n = self.s.read(&mut c).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&c[..n]);
        }
    }
}

fn between(s: &str, a: char, b: char) -> String {
    let start = s.find(a).map(|i| i + 1).unwrap_or(0);
    let end = s[start..].find(b).map(|i| i + start).unwrap_or(s.len());
    s[start..end].to_string()
}

mod empty {
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    /// Placeholder stream while the real one is inside the TLS handshake.
    pub struct EmptyRw;
    impl AsyncRead for EmptyRw {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }
    impl AsyncWrite for EmptyRw {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            b: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Poll::Ready(Ok(b.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }
}

// ---------------------------------------------------------------- HTTPS (MTA-STS policy host)

/// Serves `body` as text/plain to any GET over TLS on 127.0.0.1; counts requests.
pub async fn start_https(
    tls: Arc<rustls::ServerConfig>,
    body: String,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.clone());
            let body = body.clone();
            let h = h.clone();
            tokio::spawn(async move {
                let Ok(mut t) = acceptor.accept(s).await else {
                    return;
                };
                let mut req = Vec::new();
                let mut c = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match t.read(&mut c).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&c[..n]),
                    }
                }
                h.fetch_add(1, Ordering::SeqCst);
                let ok = req.starts_with(b"GET /.well-known/mta-sts.txt ");
                let resp = if ok {
                    format!(
                        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string()
                };
                let _ = t.write_all(resp.as_bytes()).await;
                let _ = t.shutdown().await;
            });
        }
    });
    (addr, hits)
}
