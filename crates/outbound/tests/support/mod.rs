//! Test fixtures on loopback: an authoritative DNS server (UDP and TCP, hickory-proto messages)
//! and a scripted SMTP server with STARTTLS, AUTH, PIPELINING, CHUNKING and per-recipient replies.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::rdata::tlsa::{CertUsage, Matching, Selector};
use hickory_resolver::proto::rr::rdata::{A, AAAA, MX, SOA, TLSA, TXT};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

// ---------------------------------------------------------------- DNS

#[derive(Default, Clone)]
pub struct Zone {
    records: HashMap<(String, RecordType), Vec<RData>>,
    /// Answers carry the AD bit (as a validating resolver's would for a signed zone)...
    secure: bool,
    /// ...except for these names (an unsigned delegation).
    insecure: HashSet<String>,
    /// SERVFAIL for these questions (a bogus or unreachable zone).
    servfail: HashSet<(String, RecordType)>,
    /// Over UDP, answers for these names come back truncated (TC=1, no records): TCP needed.
    truncate: HashSet<String>,
}

fn key(name: &str) -> String {
    let n = name.to_ascii_lowercase();
    if n.ends_with('.') { n } else { format!("{n}.") }
}

impl Zone {
    pub fn mx(mut self, domain: &str, pref: u16, host: &str) -> Zone {
        let exch = if host == "." {
            Name::root()
        } else {
            Name::from_ascii(key(host)).unwrap()
        };
        self.records
            .entry((key(domain), RecordType::MX))
            .or_default()
            .push(RData::MX(MX::new(pref, exch)));
        self
    }
    pub fn a(mut self, host: &str, ip: &str) -> Zone {
        let rd = match ip.parse::<IpAddr>().unwrap() {
            IpAddr::V4(v4) => (RecordType::A, RData::A(A(v4))),
            IpAddr::V6(v6) => (RecordType::AAAA, RData::AAAA(AAAA(v6))),
        };
        self.records
            .entry((key(host), rd.0))
            .or_default()
            .push(rd.1);
        self
    }
    pub fn txt(mut self, name: &str, value: &str) -> Zone {
        let parts: Vec<String> = value
            .as_bytes()
            .chunks(255)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        self.records
            .entry((key(name), RecordType::TXT))
            .or_default()
            .push(RData::TXT(TXT::new(parts)));
        self
    }

    /// Answers as a validating resolver does for a DNSSEC-signed zone: AD=1.
    pub fn secure(mut self) -> Zone {
        self.secure = true;
        self
    }
    /// Answers for `name` come without AD (insecure) even in a secure zone.
    pub fn insecure(mut self, name: &str) -> Zone {
        self.insecure.insert(key(name));
        self
    }
    pub fn servfail(mut self, name: &str, rtype: RecordType) -> Zone {
        self.servfail.insert((key(name), rtype));
        self
    }
    pub fn truncate_udp(mut self, name: &str) -> Zone {
        self.truncate.insert(key(name));
        self
    }
    pub fn tlsa(mut self, name: &str, usage: u8, selector: u8, matching: u8, data: &[u8]) -> Zone {
        self.records
            .entry((key(name), RecordType::TLSA))
            .or_default()
            .push(RData::TLSA(TLSA::new(
                CertUsage::from(usage),
                Selector::from(selector),
                Matching::from(matching),
                data.to_vec(),
            )));
        self
    }

    fn answer(&self, query: &[u8], udp: bool) -> Option<Vec<u8>> {
        let req = Message::from_vec(query).ok()?;
        let q = req.queries.first()?.clone();
        let name = q.name().to_ascii().to_ascii_lowercase();
        let mut resp = Message::response(req.metadata.id, req.metadata.op_code);
        resp.metadata.authoritative = true;
        resp.metadata.recursion_desired = req.metadata.recursion_desired;
        resp.metadata.recursion_available = true;
        resp.add_query(q.clone());
        resp.metadata.authentic_data = self.secure && !self.insecure.contains(&name);
        if udp && self.truncate.contains(&name) {
            resp.metadata.truncation = true;
            return resp.to_vec().ok();
        }
        if self.servfail.contains(&(name.clone(), q.query_type())) {
            resp.metadata.response_code = ResponseCode::ServFail;
            resp.metadata.authentic_data = false;
            return resp.to_vec().ok();
        }
        let known = self.records.keys().any(|(n, _)| *n == name);
        match self.records.get(&(name.clone(), q.query_type())) {
            Some(rds) => {
                for rd in rds {
                    resp.add_answer(Record::from_rdata(q.name().clone(), 60, rd.clone()));
                }
            }
            None => {
                if !known {
                    resp.metadata.response_code = ResponseCode::NXDomain;
                }
                let soa = SOA::new(
                    Name::from_ascii("ns.test.").unwrap(),
                    Name::from_ascii("admin.test.").unwrap(),
                    1,
                    60,
                    60,
                    60,
                    60,
                );
                resp.add_authority(Record::from_rdata(
                    Name::from_ascii("test.").unwrap(),
                    60,
                    RData::SOA(soa),
                ));
            }
        }
        let _ = MessageType::Response;
        resp.to_vec().ok()
    }
}

/// Serves `zone` on 127.0.0.1 over UDP and TCP on the same port.
pub async fn start_dns(zone: Zone) -> SocketAddr {
    let zone = Arc::new(zone);
    for _ in 0..20 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        let Ok(tcp) = TcpListener::bind(addr).await else {
            continue;
        };
        let z = zone.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, from)) = udp.recv_from(&mut buf).await else {
                    return;
                };
                if let Some(out) = z.answer(&buf[..n], true) {
                    let _ = udp.send_to(&out, from).await;
                }
            }
        });
        let z = zone.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = tcp.accept().await else {
                    return;
                };
                let z = z.clone();
                tokio::spawn(async move {
                    loop {
                        let mut len = [0u8; 2];
                        if s.read_exact(&mut len).await.is_err() {
                            return;
                        }
                        let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
                        if s.read_exact(&mut q).await.is_err() {
                            return;
                        }
                        let Some(out) = z.answer(&q, false) else {
                            return;
                        };
                        let mut framed = (out.len() as u16).to_be_bytes().to_vec();
                        framed.extend_from_slice(&out);
                        if s.write_all(&framed).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        return addr;
    }
    panic!("no free port pair for DNS");
}

/// The DKIM results a receiver gets for `raw`, with the keys published on the test DNS server.
pub async fn dkim_results(dns: SocketAddr, raw: &[u8]) -> Vec<mail_auth::DkimResult> {
    use mail_auth::hickory_resolver::config::{
        ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts,
    };
    let mut udp = ConnectionConfig::udp();
    udp.port = dns.port();
    let auth = mail_auth::MessageAuthenticator::new(
        ResolverConfig::from_name_servers(vec![NameServerConfig::new(dns.ip(), true, vec![udp])]),
        ResolverOpts::default(),
    )
    .unwrap();
    let msg = mail_auth::AuthenticatedMessage::parse(raw).unwrap();
    auth.verify_dkim(&msg)
        .await
        .iter()
        .map(|r| r.result().clone())
        .collect()
}

// ---------------------------------------------------------------- TLS

pub struct TestCert {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    pub server: Arc<rustls::ServerConfig>,
}

pub fn test_cert(names: &[&str]) -> TestCert {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let ck = rcgen::generate_simple_self_signed(names).unwrap();
    let cert_pem = ck.cert.pem();
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key_der)
        .unwrap();
    TestCert {
        cert_pem,
        cert_der: ck.cert.der().to_vec(),
        server: Arc::new(server),
    }
}

/// A CA and a leaf for `names` it signed; the server presents [leaf, CA] as RFC 7672 §3.2.2
/// asks of DANE-TA servers. Returns the CA certificate (DER) and the leaf.
pub fn test_ca_and_leaf(names: &[&str]) -> (Vec<u8>, TestCert) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Test DANE-TA CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let leaf = rcgen::CertificateParams::new(names)
        .unwrap()
        .signed_by(&leaf_key, &*ca)
        .unwrap();
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key_der)
        .unwrap();
    (
        ca.der().to_vec(),
        TestCert {
            cert_pem: leaf.pem(),
            cert_der: leaf.der().to_vec(),
            server: Arc::new(server),
        },
    )
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
