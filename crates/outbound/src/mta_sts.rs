//! MTA-STS (RFC 8461): the `_mta-sts` TXT record, the policy fetched over verified HTTPS from
//! `mta-sts.<domain>`, its parsing and MX matching, and a cache keyed by the record's id so the
//! policy is refetched only when the domain announces a new one or the cached one expires.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

use crate::tls::{ClientTls, TrustAnchors};

/// Largest policy body read (RFC 8461 §3.3 lets senders bound it; 64 KiB is common practice).
pub const MAX_POLICY: usize = 64 * 1024;
/// RFC 8461 §3.2: max_age is at most 31557600 seconds.
pub const MAX_AGE_LIMIT: u64 = 31_557_600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    Testing,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    /// Patterns, lower-case: `mx.example.com` or `*.example.com`.
    pub mx: Vec<String>,
    pub max_age: u64,
}

impl Policy {
    /// The policy as RFC 8460 reports quote it (`policy-string`): one entry per line.
    pub fn report_lines(&self) -> Vec<String> {
        let mode = match self.mode {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        };
        let mut lines = vec!["version: STSv1".to_string(), format!("mode: {mode}")];
        lines.extend(self.mx.iter().map(|m| format!("mx: {m}")));
        lines.push(format!("max_age: {}", self.max_age));
        lines
    }

    /// RFC 8461 §3.2 policy text: `key: value` lines; version STSv1, mode, one or more mx, max_age.
    pub fn parse(text: &str) -> Result<Policy, String> {
        let mut version = None;
        let mut mode = None;
        let mut mx = Vec::new();
        let mut max_age = None;
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let Some((k, v)) = line.split_once(':') else {
                return Err(format!("malformed policy line {line:?}"));
            };
            let (k, v) = (k.trim(), v.trim());
            match k {
                "version" => version = Some(v.to_string()),
                "mode" => {
                    mode = Some(match v {
                        "enforce" => Mode::Enforce,
                        "testing" => Mode::Testing,
                        "none" => Mode::None,
                        other => return Err(format!("unknown mode {other:?}")),
                    })
                }
                "mx" => mx.push(v.trim_end_matches('.').to_ascii_lowercase()),
                "max_age" => {
                    max_age = Some(
                        v.parse::<u64>()
                            .map_err(|_| format!("bad max_age {v:?}"))?
                            .min(MAX_AGE_LIMIT),
                    )
                }
                _ => {} // Unknown keys are ignored (§3.2).
            }
        }
        if version.as_deref() != Some("STSv1") {
            return Err("missing or wrong version (want STSv1)".into());
        }
        let mode = mode.ok_or("missing mode")?;
        let max_age = max_age.ok_or("missing max_age")?;
        if mx.is_empty() && mode != Mode::None {
            return Err("no mx in policy".into());
        }
        Ok(Policy { mode, mx, max_age })
    }

    /// §4.1: exact match, or `*.` matching exactly one leftmost label.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx.iter().any(|p| match p.strip_prefix("*.") {
            Some(suffix) => host
                .split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
            None => *p == host,
        })
    }
}

/// The `id` of a `v=STSv1; id=…` TXT record (§3.1), when the TXT set holds exactly one such record.
pub fn record_id(txts: &[String]) -> Option<String> {
    let sts: Vec<&String> = txts.iter().filter(|t| t.starts_with("v=STSv1")).collect();
    if sts.len() != 1 {
        return None;
    }
    sts[0].split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k.trim() == "id" && !v.trim().is_empty()).then(|| v.trim().to_string())
    })
}

#[derive(Debug, Clone)]
pub struct MtaStsConfig {
    /// Port of the policy host (443; tests use an ephemeral one).
    pub https_port: u16,
    /// Anchors the policy host's certificate must chain to (the system bundle by default).
    pub anchors: TrustAnchors,
    pub fetch_timeout: Duration,
}

impl Default for MtaStsConfig {
    fn default() -> MtaStsConfig {
        MtaStsConfig {
            https_port: 443,
            anchors: TrustAnchors::system(),
            fetch_timeout: Duration::from_secs(30),
        }
    }
}

struct Cached {
    id: String,
    policy: Policy,
    expires: i64,
}

#[derive(Default)]
pub struct PolicyCache {
    entries: Mutex<HashMap<String, Cached>>,
}

impl PolicyCache {
    /// Cached policy for `domain` when still valid and (if given) announced under the same id.
    pub fn get(&self, domain: &str, id: Option<&str>, now: i64) -> Option<Policy> {
        let g = self.entries.lock().ok()?;
        let c = g.get(domain)?;
        (c.expires > now && id.is_none_or(|i| i == c.id)).then(|| c.policy.clone())
    }

    pub fn put(&self, domain: &str, id: &str, policy: Policy, now: i64) {
        if let Ok(mut g) = self.entries.lock() {
            let expires = now.saturating_add(i64::try_from(policy.max_age).unwrap_or(i64::MAX / 4));
            g.insert(
                domain.to_string(),
                Cached {
                    id: id.to_string(),
                    policy,
                    expires,
                },
            );
        }
    }
}

/// `GET https://mta-sts.<domain>/.well-known/mta-sts.txt` from one of `addrs`, certificate
/// verified for the policy host (§3.3); no redirects; 200 with a text/plain body only.
pub async fn fetch_policy(
    domain: &str,
    addrs: &[SocketAddr],
    cfg: &MtaStsConfig,
) -> Result<Policy, String> {
    let host = format!("mta-sts.{domain}");
    let mut last = format!("no address for {host}");
    for addr in addrs {
        match timeout(cfg.fetch_timeout, fetch_one(&host, *addr, &cfg.anchors)).await {
            Ok(Ok(p)) => return Ok(p),
            Ok(Err(e)) => last = format!("{host} ({addr}): {e}"),
            Err(_) => last = format!("{host} ({addr}): timed out"),
        }
    }
    Err(last)
}

async fn fetch_one(host: &str, addr: SocketAddr, anchors: &TrustAnchors) -> Result<Policy, String> {
    let tls = ClientTls::new(anchors, true)?;
    let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let mut s = TlsConnector::from(tls.config.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    // HTTP/1.0 keeps the response free of chunked encoding and closes after it.
    let req = format!(
        "GET /.well-known/mta-sts.txt HTTP/1.0\r\nHost: {host}\r\nUser-Agent: Wharf\r\n\r\n"
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = match s.read(&mut chunk).await {
            Ok(n) => n,
            // Servers that close without close_notify: the body is already complete or too short.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e.to_string()),
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_POLICY + 16 * 1024 {
            return Err("policy response too large".into());
        }
    }
    let Some(split) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Err("malformed HTTP response".into());
    };
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let body = &buf[split + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let code = status.split_whitespace().nth(1).unwrap_or_default();
    if code != "200" {
        return Err(format!(
            "HTTP status {status:?} (redirects are not followed)"
        ));
    }
    let ctype = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if !ctype.starts_with("text/plain") {
        return Err(format!("content type {ctype:?}, want text/plain"));
    }
    if body.len() > MAX_POLICY {
        return Err("policy too large".into());
    }
    Policy::parse(&String::from_utf8_lossy(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_match() {
        let p = Policy::parse("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 86400\r\n").unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert!(p.matches("MAIL.example.com."));
        assert!(p.matches("mx1.example.net"));
        assert!(
            !p.matches("a.b.example.net"),
            "wildcard covers one label only"
        );
        assert!(!p.matches("example.net"));
        assert!(!p.matches("evil.example.com"));
        assert!(Policy::parse("version: STSv1\nmode: enforce\nmax_age: 1\n").is_err());
        assert!(Policy::parse("version: STSv2\nmode: none\nmax_age: 1\n").is_err());
        assert!(Policy::parse("version: STSv1\nmode: strict\nmx: a\nmax_age: 1\n").is_err());
        let capped =
            Policy::parse("version: STSv1\nmode: testing\nmx: a\nmax_age: 99999999999\n").unwrap();
        assert_eq!(capped.max_age, MAX_AGE_LIMIT);
    }

    #[test]
    fn txt_record_id() {
        assert_eq!(
            record_id(&["v=STSv1; id=20240101T000000;".into()]).as_deref(),
            Some("20240101T000000")
        );
        assert_eq!(record_id(&["v=spf1 -all".into()]), None);
        assert_eq!(
            record_id(&["v=STSv1; id=a".into(), "v=STSv1; id=b".into()]),
            None,
            "two records: none"
        );
    }

    #[test]
    fn cache_follows_id_and_expiry() {
        let c = PolicyCache::default();
        let p = Policy::parse("version: STSv1\nmode: enforce\nmx: a\nmax_age: 100\n").unwrap();
        c.put("d", "1", p.clone(), 1000);
        assert_eq!(c.get("d", Some("1"), 1050), Some(p.clone()));
        assert_eq!(c.get("d", None, 1050), Some(p));
        assert_eq!(c.get("d", Some("2"), 1050), None, "new id: refetch");
        assert_eq!(c.get("d", Some("1"), 1100), None, "expired");
    }
}
