//! Talking to each configured listener the way a client would: connect, implicit TLS or the
//! protocol's STARTTLS (SMTP `STARTTLS`, IMAP `STARTTLS`, POP3 `STLS`), check the greeting and
//! that the upgrade is advertised, then leave politely. The TLS handshake keeps the certificate
//! chain the server presented and whether it verified, for the certificate checks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use wharf_outbound::TrustAnchors;
use wharf_outbound::tls::ClientTls;

use crate::config::{Listener, ListenerTls};

/// One read, write, connect or handshake.
const STEP: Duration = Duration::from_secs(5);
/// Longest line accepted from a listener.
const MAX_LINE: u64 = 8192;
/// Most lines accepted in one reply (a banner, a capability list): a peer streaming lines
/// forever must not hold the doctor.
const MAX_LINES: usize = 200;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// What one TLS handshake showed.
#[derive(Debug, Clone)]
pub struct TlsSeen {
    /// The chain verified against the trust anchors for the host name.
    pub verified: bool,
    pub chain: Vec<CertificateDer<'static>>,
    pub version: String,
}

#[derive(Debug)]
pub enum Outcome {
    /// It answered as expected: what was seen, and the TLS handshake if there was one.
    Ok(String, Option<TlsSeen>),
    /// It did not: the problem and the fix.
    Fail(String, String),
    /// A protocol this doctor does not know how to greet.
    Skipped(String),
}

/// Where to connect for a listener bound to `address`: the wildcard addresses mean loopback.
pub fn connect_ip(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    }
}

struct Conn {
    r: BufReader<Box<dyn Io>>,
}

impl Conn {
    async fn line(&mut self) -> Result<String, String> {
        let mut buf = Vec::new();
        let mut limited = (&mut self.r).take(MAX_LINE);
        let read = limited.read_until(b'\n', &mut buf);
        match tokio::time::timeout(STEP, read).await {
            Err(_) => Err("no answer within 5 s".into()),
            Ok(Err(e)) => Err(format!("read failed: {e}")),
            Ok(Ok(0)) => Err("the connection was closed".into()),
            Ok(Ok(_)) => Ok(String::from_utf8_lossy(&buf)
                .trim_end_matches(['\r', '\n'])
                .to_string()),
        }
    }

    async fn send(&mut self, text: &str) -> Result<(), String> {
        let w = self.r.get_mut();
        let write = async {
            w.write_all(text.as_bytes()).await?;
            w.flush().await
        };
        match tokio::time::timeout(STEP, write).await {
            Err(_) => Err("write timed out".into()),
            Ok(Err(e)) => Err(format!("write failed: {e}")),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// An SMTP reply: its code and its lines' texts.
    async fn smtp_reply(&mut self) -> Result<(u16, Vec<String>), String> {
        let mut texts = Vec::new();
        for _ in 0..MAX_LINES {
            let line = self.line().await?;
            let code = line
                .get(..3)
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| format!("`{}` is not an SMTP reply", clip(&line)))?;
            texts.push(line.get(4..).unwrap_or("").to_string());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok((code, texts));
            }
        }
        Err(format!("a reply of more than {MAX_LINES} lines"))
    }

    async fn tls(self, hostname: &str, anchors: &TrustAnchors) -> Result<(Conn, TlsSeen), String> {
        handshake(self.r.into_inner(), hostname, anchors).await
    }
}

async fn handshake(
    io: Box<dyn Io>,
    hostname: &str,
    anchors: &TrustAnchors,
) -> Result<(Conn, TlsSeen), String> {
    // Never refuses a certificate: the point is to see it and say what is wrong with it.
    let client = ClientTls::new(anchors, false)?;
    let connector = tokio_rustls::TlsConnector::from(client.config.clone());
    let name = ServerName::try_from(hostname.to_string())
        .map_err(|e| format!("{hostname} is not a TLS server name: {e}"))?;
    let stream = match tokio::time::timeout(STEP, connector.connect(name, io)).await {
        Err(_) => return Err("the TLS handshake did not finish within 5 s".into()),
        Ok(Err(e)) => return Err(format!("TLS handshake failed: {e}")),
        Ok(Ok(s)) => s,
    };
    let (_, session) = stream.get_ref();
    let seen = TlsSeen {
        verified: client.verified(),
        chain: session
            .peer_certificates()
            .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default(),
        version: session
            .protocol_version()
            .map(|v| format!("{v:?}").replace("TLSv1_", "TLS 1."))
            .unwrap_or_default(),
    };
    Ok((
        Conn {
            r: BufReader::new(Box::new(stream)),
        },
        seen,
    ))
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

/// PROXY v2 `LOCAL` (RFC-less but documented by HAProxy): "this connection is the proxy's own,
/// use its real addresses", the polite header for a health check.
const PROXY_V2_LOCAL: [u8; 16] = [
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x20, 0x00, 0x00, 0x00,
];

/// Probes one listener on `port` (the configured port plus any `--port-offset`).
pub async fn probe(l: &Listener, port: u16, hostname: &str, anchors: &TrustAnchors) -> Outcome {
    let proto = l.protocol.as_str();
    if !["smtp", "submission", "imap", "pop3", "managesieve", "http"].contains(&proto) {
        return Outcome::Skipped(format!(
            "protocol `{proto}` is not one wharf doctor knows how to check"
        ));
    }
    let addr = SocketAddr::new(connect_ip(l.address), port);
    let stream = match tokio::time::timeout(STEP, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return not_listening(l, addr, &e.to_string()),
        Err(_) => return not_listening(l, addr, "connection timed out"),
    };
    let mut conn = Conn {
        r: BufReader::new(Box::new(stream)),
    };
    if l.proxy_protocol
        && let Err(e) = conn
            .r
            .get_mut()
            .write_all(&PROXY_V2_LOCAL)
            .await
            .map_err(|e| e.to_string())
    {
        return not_listening(l, addr, &e);
    }
    let mut tls = None;
    if l.tls == ListenerTls::Implicit {
        match conn.tls(hostname, anchors).await {
            Ok((c, seen)) => {
                conn = c;
                tls = Some(seen);
            }
            Err(e) => return tls_failed(l, addr, &e),
        }
    }
    let result = match proto {
        "smtp" | "submission" => smtp(conn, l, hostname, anchors, &mut tls).await,
        "imap" => imap(conn, l, hostname, anchors, &mut tls).await,
        "pop3" => pop3(conn, l, hostname, anchors, &mut tls).await,
        "managesieve" => managesieve(conn, l, hostname, anchors, &mut tls).await,
        _ => http(conn, hostname).await,
    };
    match result {
        Ok(detail) => {
            let detail = match &tls {
                Some(t) => format!("{detail}, {}", t.version),
                None => detail,
            };
            Outcome::Ok(detail, tls)
        }
        Err(Step::Wrong(e)) => Outcome::Fail(
            format!("{addr}: {e}"),
            format!(
                "something other than Wharf's {proto} service may hold {addr}: see `ss -ltnp 'sport = :{port}'`, stop it or move listener `{name}` (key `port` of its [[listener]] in the config); then restart `wharf serve`",
                port = addr.port(),
                name = l.name
            ),
        ),
        Err(Step::Tls(e)) => tls_failed(l, addr, &e),
    }
}

enum Step {
    /// The protocol exchange went wrong.
    Wrong(String),
    /// The TLS upgrade went wrong.
    Tls(String),
}

impl From<String> for Step {
    fn from(e: String) -> Step {
        Step::Wrong(e)
    }
}

fn not_listening(l: &Listener, addr: SocketAddr, why: &str) -> Outcome {
    Outcome::Fail(
        format!("nothing answers on {addr} ({why})"),
        format!(
            "start `wharf serve` with this config (its log names any port it could not bind); if it runs, listener `{}` must be free to bind {addr} and reachable (firewall)",
            l.name
        ),
    )
}

fn tls_failed(l: &Listener, addr: SocketAddr, why: &str) -> Outcome {
    Outcome::Fail(
        format!("{addr}: {why}"),
        format!(
            "check the certificate and key in [tls] (cert, key) and the `wharf serve` log; listener `{}` expects tls = \"{}\"",
            l.name,
            l.tls.as_str()
        ),
    )
}

async fn upgrade(
    conn: Conn,
    hostname: &str,
    anchors: &TrustAnchors,
    tls: &mut Option<TlsSeen>,
) -> Result<Conn, Step> {
    let (conn, seen) = conn.tls(hostname, anchors).await.map_err(Step::Tls)?;
    *tls = Some(seen);
    Ok(conn)
}

async fn smtp(
    mut conn: Conn,
    l: &Listener,
    hostname: &str,
    anchors: &TrustAnchors,
    tls: &mut Option<TlsSeen>,
) -> Result<String, Step> {
    let (code, text) = conn.smtp_reply().await?;
    if code != 220 {
        return Err(Step::Wrong(format!(
            "greeting `{code} {}` is not 220",
            clip(&text.join(" "))
        )));
    }
    let ehlo = format!("EHLO {hostname}\r\n");
    conn.send(&ehlo).await?;
    let (code, lines) = conn.smtp_reply().await?;
    if code != 250 {
        return Err(Step::Wrong(format!("EHLO answered {code}")));
    }
    let has = |lines: &[String], kw: &str| {
        lines.iter().any(|t| {
            t.split_whitespace()
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case(kw))
        })
    };
    let mut detail = "220 greeting, EHLO 250".to_string();
    if l.tls == ListenerTls::Starttls {
        if !has(&lines, "STARTTLS") {
            return Err(Step::Tls("STARTTLS is not advertised after EHLO".into()));
        }
        conn.send("STARTTLS\r\n").await?;
        let (code, _) = conn.smtp_reply().await?;
        if code != 220 {
            return Err(Step::Tls(format!("STARTTLS answered {code}")));
        }
        conn = upgrade(conn, hostname, anchors, tls).await?;
        conn.send(&ehlo).await?;
        let (code, _) = conn.smtp_reply().await?;
        if code != 250 {
            return Err(Step::Wrong(format!("EHLO after STARTTLS answered {code}")));
        }
        detail.push_str(", STARTTLS");
    }
    let _ = conn.send("QUIT\r\n").await;
    let _ = conn.smtp_reply().await;
    Ok(detail)
}

/// Reads until the tagged reply; returns its line and the untagged ones.
async fn imap_tagged(conn: &mut Conn, tag: &str) -> Result<(String, Vec<String>), String> {
    let mut untagged = Vec::new();
    for _ in 0..MAX_LINES {
        let line = conn.line().await?;
        if let Some(rest) = line.strip_prefix(tag).and_then(|r| r.strip_prefix(' ')) {
            return Ok((rest.to_string(), untagged));
        }
        untagged.push(line);
    }
    Err(format!("no tagged reply within {MAX_LINES} lines"))
}

async fn imap(
    mut conn: Conn,
    l: &Listener,
    hostname: &str,
    anchors: &TrustAnchors,
    tls: &mut Option<TlsSeen>,
) -> Result<String, Step> {
    let greeting = conn.line().await?;
    if !(greeting.starts_with("* OK") || greeting.starts_with("* PREAUTH")) {
        return Err(Step::Wrong(format!(
            "greeting `{}` is not `* OK`",
            clip(&greeting)
        )));
    }
    let mut detail = "* OK greeting".to_string();
    if l.tls == ListenerTls::Starttls {
        conn.send("d1 CAPABILITY\r\n").await?;
        let (status, untagged) = imap_tagged(&mut conn, "d1").await?;
        let advertised = untagged.iter().any(|u| {
            u.to_ascii_uppercase()
                .split_whitespace()
                .any(|w| w == "STARTTLS")
        });
        if !status.starts_with("OK") || !advertised {
            return Err(Step::Tls("STARTTLS is not in the CAPABILITY list".into()));
        }
        conn.send("d2 STARTTLS\r\n").await?;
        let (status, _) = imap_tagged(&mut conn, "d2").await?;
        if !status.starts_with("OK") {
            return Err(Step::Tls(format!("STARTTLS answered `{}`", clip(&status))));
        }
        conn = upgrade(conn, hostname, anchors, tls).await?;
        conn.send("d3 CAPABILITY\r\n").await?;
        let (status, _) = imap_tagged(&mut conn, "d3").await?;
        if !status.starts_with("OK") {
            return Err(Step::Wrong(format!(
                "CAPABILITY after STARTTLS answered `{}`",
                clip(&status)
            )));
        }
        detail.push_str(", STARTTLS");
    }
    let _ = conn.send("d9 LOGOUT\r\n").await;
    let _ = imap_tagged(&mut conn, "d9").await;
    Ok(detail)
}

/// CAPA's multi-line answer (RFC 2449), without the `+OK` and the final dot.
async fn pop3_capa(conn: &mut Conn) -> Result<Vec<String>, String> {
    conn.send("CAPA\r\n").await?;
    let first = conn.line().await?;
    if !first.starts_with("+OK") {
        return Err(format!("CAPA answered `{}`", clip(&first)));
    }
    let mut caps = Vec::new();
    for _ in 0..MAX_LINES {
        let line = conn.line().await?;
        if line == "." {
            return Ok(caps);
        }
        caps.push(line);
    }
    Err(format!("a CAPA list of more than {MAX_LINES} lines"))
}

async fn pop3(
    mut conn: Conn,
    l: &Listener,
    hostname: &str,
    anchors: &TrustAnchors,
    tls: &mut Option<TlsSeen>,
) -> Result<String, Step> {
    let greeting = conn.line().await?;
    if !greeting.starts_with("+OK") {
        return Err(Step::Wrong(format!(
            "greeting `{}` is not `+OK`",
            clip(&greeting)
        )));
    }
    let mut detail = "+OK greeting".to_string();
    if l.tls == ListenerTls::Starttls {
        let caps = pop3_capa(&mut conn).await?;
        if !caps.iter().any(|c| c.eq_ignore_ascii_case("STLS")) {
            return Err(Step::Tls("STLS is not in the CAPA list".into()));
        }
        conn.send("STLS\r\n").await?;
        let answer = conn.line().await?;
        if !answer.starts_with("+OK") {
            return Err(Step::Tls(format!("STLS answered `{}`", clip(&answer))));
        }
        conn = upgrade(conn, hostname, anchors, tls).await?;
        pop3_capa(&mut conn).await?;
        detail.push_str(", STLS");
    }
    let _ = conn.send("QUIT\r\n").await;
    let _ = conn.line().await;
    Ok(detail)
}

/// RFC 5804 §1.7: the capability lines end with an `OK` line.
async fn managesieve_capabilities(conn: &mut Conn) -> Result<Vec<String>, String> {
    let mut caps = Vec::new();
    for _ in 0..MAX_LINES {
        let line = conn.line().await?;
        if line.starts_with("OK") {
            return Ok(caps);
        }
        if !line.starts_with('"') {
            return Err(format!(
                "capability line `{}` is not a quoted name",
                clip(&line)
            ));
        }
        caps.push(line);
    }
    Err(format!("more than {MAX_LINES} capability lines"))
}

async fn managesieve(
    mut conn: Conn,
    l: &Listener,
    hostname: &str,
    anchors: &TrustAnchors,
    tls: &mut Option<TlsSeen>,
) -> Result<String, Step> {
    let caps = managesieve_capabilities(&mut conn)
        .await
        .map_err(Step::Wrong)?;
    if !caps.iter().any(|c| c.starts_with("\"IMPLEMENTATION\"")) {
        return Err(Step::Wrong(
            "the greeting has no IMPLEMENTATION capability".into(),
        ));
    }
    let mut detail = "ManageSieve greeting".to_string();
    if l.tls == ListenerTls::Starttls {
        if !caps.iter().any(|c| c.eq_ignore_ascii_case("\"STARTTLS\"")) {
            return Err(Step::Tls("STARTTLS is not among the capabilities".into()));
        }
        conn.send("STARTTLS\r\n").await?;
        let answer = conn.line().await?;
        if !answer.starts_with("OK") {
            return Err(Step::Tls(format!("STARTTLS answered `{}`", clip(&answer))));
        }
        conn = upgrade(conn, hostname, anchors, tls).await?;
        managesieve_capabilities(&mut conn)
            .await
            .map_err(Step::Wrong)?;
        detail.push_str(", STARTTLS");
    }
    let _ = conn.send("LOGOUT\r\n").await;
    let _ = conn.line().await;
    Ok(detail)
}

async fn http(mut conn: Conn, hostname: &str) -> Result<String, Step> {
    conn.send(&format!(
        "GET / HTTP/1.1\r\nHost: {hostname}\r\nUser-Agent: wharf-doctor\r\nConnection: close\r\n\r\n"
    ))
    .await?;
    let status = conn.line().await?;
    if !status.starts_with("HTTP/1.") {
        return Err(Step::Wrong(format!(
            "`{}` is not an HTTP status line",
            clip(&status)
        )));
    }
    Ok(format!(
        "HTTP answers ({})",
        status.split_whitespace().nth(1).unwrap_or("?")
    ))
}

/// `GET https://<name>/<path>` through the listener at `addr` (with SNI and Host `name`):
/// the status code and body. Used to compare the served MTA-STS policy with the configured one.
pub async fn https_get(
    addr: SocketAddr,
    name: &str,
    path: &str,
    anchors: &TrustAnchors,
) -> Result<(u16, String), String> {
    let stream = match tokio::time::timeout(STEP, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("cannot connect to {addr}: {e}")),
        Err(_) => return Err(format!("cannot connect to {addr}: timed out")),
    };
    let (mut conn, _) = handshake(Box::new(stream), name, anchors).await?;
    conn.send(&format!(
        "GET {path} HTTP/1.1\r\nHost: {name}\r\nUser-Agent: wharf-doctor\r\nConnection: close\r\n\r\n"
    ))
    .await?;
    let mut raw = Vec::new();
    let mut limited = (&mut conn.r).take(256 * 1024);
    let read = limited.read_to_end(&mut raw);
    match tokio::time::timeout(STEP, read).await {
        Err(_) => return Err("no complete answer within 5 s".into()),
        // A peer that closes without close_notify still gave us the body.
        Ok(Err(e)) if raw.is_empty() => return Err(format!("read failed: {e}")),
        _ => {}
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("the answer has no header end")?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or("the answer has no HTTP status")?;
    Ok((code, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The policy doctor fetches is the one wharf-http serves for the same configuration.
    #[tokio::test]
    async fn fetches_the_mta_sts_policy_wharf_http_serves() {
        let dir = tempfile::tempdir().unwrap();
        let store = wharf_store::open_embedded(dir.path()).await.unwrap();
        let directory =
            wharf_directory::Directory::new(store, wharf_directory::DirectoryConfig::default());
        directory.add_domain("example.org").await.unwrap();
        let cfg = wharf_http::HttpConfig {
            hostname: "mx.example.org".into(),
            ..Default::default()
        };
        let expected = wharf_http::mta_sts_policy(&cfg.mta_sts, "mx.example.org");
        let app = wharf_http::router(wharf_http::HttpState::new(directory, cfg).unwrap());
        let (cert, key) =
            wharf_net::generate_self_signed("mx.example.org", &["mta-sts.example.org".into()])
                .unwrap();
        let tls = wharf_net::TlsProvider::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(wharf_http::serve(listener, Some(tls), app, async move {
            let _ = stopped.await;
        }));
        let anchors = TrustAnchors::empty();
        let (code, body) = https_get(
            addr,
            "mta-sts.example.org",
            "/.well-known/mta-sts.txt",
            &anchors,
        )
        .await
        .unwrap();
        assert_eq!((code, body), (200, expected));
        let (code, _) = https_get(
            addr,
            "mta-sts.other.test",
            "/.well-known/mta-sts.txt",
            &anchors,
        )
        .await
        .unwrap();
        assert_eq!(code, 404);
        let _ = stop.send(());
    }
}
