//! Delivery of a TLS-RPT report to an `https:` destination of a domain's `rua` (RFC 8460 §3,
//! §5.3.2): one HTTP POST of the gzipped JSON as `application/tlsrpt+gzip`, over TLS whose
//! certificate must verify for the URL's host, with no redirect followed. Any 2xx answer is
//! success. The caller resolves the host (the reports' resolver) and retries.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

use crate::tls::{ClientTls, TrustAnchors};

/// Most response header bytes read; the body is not needed.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// Where a report is posted: an `https:` URL taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsTarget {
    /// A DNS name (lower case) or an IP address literal (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl HttpsTarget {
    /// Accepts `https://host[:port][/path][?query][#fragment]` (the fragment is dropped).
    /// Refuses user information, an empty or invalid host, a zero port, and any whitespace or
    /// control character (a URL from DNS must not add lines to the request).
    pub fn parse(url: &str) -> Result<HttpsTarget, String> {
        if url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || !c.is_ascii())
        {
            return Err("URL has spaces, controls or non-ASCII characters".into());
        }
        let rest = url
            .get(..8)
            .filter(|scheme| scheme.eq_ignore_ascii_case("https://"))
            .map(|_| &url[8..])
            .ok_or("not an https: URL")?;
        let rest = rest.split('#').next().unwrap_or_default();
        let cut = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(cut);
        if authority.contains('@') {
            return Err("URL carries user information".into());
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (addr, after) = v6.split_once(']').ok_or("unclosed IPv6 literal")?;
            let addr: std::net::Ipv6Addr = addr.parse().map_err(|_| "bad IPv6 literal")?;
            (addr.to_string(), after.strip_prefix(':'))
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h.to_ascii_lowercase(), Some(p)),
                None => (authority.to_ascii_lowercase(), None),
            }
        };
        let port = match port {
            None => 443,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or("bad port")?,
        };
        let name_ok = !host.is_empty()
            && host.len() <= 253
            && (host.parse::<IpAddr>().is_ok()
                || host.split('.').all(|l| {
                    !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                }));
        if !name_ok {
            return Err("bad host".into());
        }
        let path = match path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        Ok(HttpsTarget { host, port, path })
    }

    /// The host as an address when the URL names one literally.
    pub fn literal_ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    fn host_header(&self) -> String {
        let host = match self.literal_ip() {
            Some(IpAddr::V6(a)) => format!("[{a}]"),
            _ => self.host.clone(),
        };
        if self.port == 443 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Why a report was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostError {
    /// The server answered with a status other than 2xx.
    Status { addr: SocketAddr, status: u16 },
    /// No address answered (connection, TLS or protocol failure, or time out); the last reason.
    Unreached(String),
}

impl PostError {
    /// Worth trying again later: nothing answered, or the server failed (5xx) or asked to wait
    /// (429). Any other status is a refusal.
    pub fn is_temporary(&self) -> bool {
        match self {
            PostError::Unreached(_) => true,
            PostError::Status { status, .. } => *status >= 500 || *status == 429,
        }
    }
}

impl std::fmt::Display for PostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PostError::Status { addr, status } => write!(f, "{addr}: HTTP {status}"),
            PostError::Unreached(why) => f.write_str(why),
        }
    }
}

/// Posts `gzipped` (the report's JSON, gzipped) to `target`, trying `addrs` in order until one
/// answers; each try gets `limit`. Returns the 2xx status; a non-2xx answer is an error without
/// trying further addresses (the server has spoken).
pub async fn post_report(
    target: &HttpsTarget,
    addrs: &[IpAddr],
    anchors: &TrustAnchors,
    gzipped: &[u8],
    limit: Duration,
) -> Result<u16, PostError> {
    let mut last = format!("no address for {}", target.host);
    for ip in addrs {
        let addr = SocketAddr::new(*ip, target.port);
        match timeout(limit, post_one(target, addr, anchors, gzipped)).await {
            Ok(Ok(status)) if (200..300).contains(&status) => return Ok(status),
            Ok(Ok(status)) => return Err(PostError::Status { addr, status }),
            Ok(Err(e)) => last = format!("{addr}: {e}"),
            Err(_) => last = format!("{addr}: timed out"),
        }
    }
    Err(PostError::Unreached(last))
}

async fn post_one(
    target: &HttpsTarget,
    addr: SocketAddr,
    anchors: &TrustAnchors,
    body: &[u8],
) -> Result<u16, String> {
    let tls = ClientTls::new(anchors, true)?;
    let name = ServerName::try_from(target.host.clone()).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let mut s = TlsConnector::from(tls.config.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: Wharf\r\n\
         Content-Type: application/tlsrpt+gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        target.path,
        target.host_header(),
        body.len()
    );
    s.write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    s.write_all(body).await.map_err(|e| e.to_string())?;
    s.flush().await.map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(2).any(|w| w == b"\r\n") {
        let n = match s.read(&mut chunk).await {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e.to_string()),
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_RESPONSE_HEAD {
            return Err("response status line too long".into());
        }
    }
    let line = String::from_utf8_lossy(&buf);
    let status_line = line.split("\r\n").next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    match (
        parts.next(),
        parts.next().and_then(|c| c.parse::<u16>().ok()),
    ) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") && (100..600).contains(&code) => Ok(code),
        _ => Err(format!("malformed HTTP response {status_line:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = HttpsTarget::parse("https://Reports.Example.org/v1/tlsrpt?x=1#frag").unwrap();
        assert_eq!(t.host, "reports.example.org");
        assert_eq!(t.port, 443);
        assert_eq!(t.path, "/v1/tlsrpt?x=1");
        assert_eq!(t.host_header(), "reports.example.org");
        let t = HttpsTarget::parse("HTTPS://r.example.org:8443").unwrap();
        assert_eq!((t.port, t.path.as_str()), (8443, "/"));
        assert_eq!(t.host_header(), "r.example.org:8443");
        let t = HttpsTarget::parse("https://[::1]:9/r").unwrap();
        assert_eq!(t.literal_ip(), Some("::1".parse().unwrap()));
        assert_eq!(t.host_header(), "[::1]:9");
        let t = HttpsTarget::parse("https://r.example.org?q").unwrap();
        assert_eq!(t.path, "/?q");
        for bad in [
            "http://r.example.org/",
            "mailto:a@b",
            "https://",
            "https://user@r.example.org/",
            "https://r.example.org:0/",
            "https://r.example.org:99999/",
            "https://r..example.org/",
            "https://r.example.org/a\r\nX-Injected: 1",
            "https://r.example.org/a b",
            "https://[::1/",
            "https://r_x.example.org/",
            "https://exämple.org/",
        ] {
            assert!(HttpsTarget::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
