//! An optional client for rspamd's HTTP `/checkv2` endpoint: a tiny HTTP/1.1 exchange over a
//! tokio `TcpStream` (one request per connection), bounded by a timeout and a response size
//! limit. The request carries the message as its body and the envelope as the headers rspamd
//! documents (`IP`, `Helo`, `From`, `Rcpt`, `Queue-Id`, `User`, `Hostname`, `Password`).

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where and how to ask rspamd. Off by default: messages would leave the process.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RspamdConfig {
    pub enabled: bool,
    /// `host:port` of rspamd's normal worker (controller-free `/checkv2`).
    pub address: String,
    /// Sent as the `Password` header when set.
    pub password: Option<String>,
    pub timeout_ms: u64,
    pub max_response_bytes: usize,
    /// rspamd's score is added to Wharf's, multiplied by this.
    pub weight: f64,
}

impl Default for RspamdConfig {
    fn default() -> Self {
        RspamdConfig {
            enabled: false,
            address: "127.0.0.1:11333".to_string(),
            password: None,
            timeout_ms: 5000,
            max_response_bytes: 1024 * 1024,
            weight: 1.0,
        }
    }
}

/// The envelope facts rspamd wants alongside the message.
#[derive(Debug, Clone, Default)]
pub struct RspamdRequest<'a> {
    pub ip: Option<IpAddr>,
    pub helo: Option<&'a str>,
    pub from: Option<&'a str>,
    pub rcpt: &'a [String],
    pub queue_id: Option<&'a str>,
    /// The authenticated user, for submissions.
    pub user: Option<&'a str>,
    /// The client's verified reverse DNS name.
    pub hostname: Option<&'a str>,
}

/// rspamd's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct RspamdResult {
    pub score: f64,
    pub required_score: f64,
    /// `no action`, `greylist`, `add header`, `rewrite subject`, `soft reject`, `reject`.
    pub action: String,
    /// Symbols with their scores, sorted by name.
    pub symbols: Vec<(String, f64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum RspamdError {
    #[error("rspamd: i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("rspamd: timed out")]
    Timeout,
    #[error("rspamd: response larger than {0} bytes")]
    TooLarge(usize),
    #[error("rspamd: bad HTTP response: {0}")]
    Http(String),
    #[error("rspamd: bad JSON: {0}")]
    Json(String),
}

/// Sends `message` to rspamd and parses its answer.
pub async fn check(
    cfg: &RspamdConfig,
    message: &[u8],
    req: &RspamdRequest<'_>,
) -> Result<RspamdResult, RspamdError> {
    let exchange = async {
        let mut stream = TcpStream::connect(cfg.address.as_str()).await?;
        let head = request_head(cfg, message.len(), req);
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(message).await?;
        stream.flush().await?;
        let mut response = Vec::with_capacity(4096);
        let mut buf = [0u8; 8192];
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            if response.len() + n > cfg.max_response_bytes {
                return Err(RspamdError::TooLarge(cfg.max_response_bytes));
            }
            response.extend_from_slice(&buf[..n]);
        }
        Ok(response)
    };
    let response = tokio::time::timeout(Duration::from_millis(cfg.timeout_ms), exchange)
        .await
        .map_err(|_| RspamdError::Timeout)??;
    let body = http_body(&response)?;
    parse_result(&body)
}

fn clean(value: &str) -> String {
    value.chars().filter(|c| !c.is_control()).collect()
}

/// The request line and headers of a `/checkv2` POST.
fn request_head(cfg: &RspamdConfig, len: usize, req: &RspamdRequest<'_>) -> String {
    let mut head = format!(
        "POST /checkv2 HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {len}\r\n",
        clean(&cfg.address)
    );
    let mut add = |name: &str, value: &str| {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(&clean(value));
        head.push_str("\r\n");
    };
    if let Some(ip) = req.ip {
        add("IP", &ip.to_string());
    }
    if let Some(v) = req.helo {
        add("Helo", v);
    }
    if let Some(v) = req.from {
        add("From", v);
    }
    for r in req.rcpt {
        add("Rcpt", r);
    }
    if let Some(v) = req.queue_id {
        add("Queue-Id", v);
    }
    if let Some(v) = req.user {
        add("User", v);
    }
    if let Some(v) = req.hostname {
        add("Hostname", v);
    }
    if let Some(v) = &cfg.password {
        add("Password", v);
    }
    head.push_str("\r\n");
    head
}

/// The body of an HTTP/1.1 200 response (Content-Length, chunked, or until close).
fn http_body(response: &[u8]) -> Result<Vec<u8>, RspamdError> {
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| RspamdError::Http("no end of headers".into()))?;
    let head = String::from_utf8_lossy(&response[..split]);
    let body = &response[split + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("");
    let code = status.split_whitespace().nth(1).unwrap_or("");
    if code != "200" {
        return Err(RspamdError::Http(status.chars().take(200).collect()));
    }
    let mut chunked = false;
    let mut length: Option<usize> = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            chunked = true;
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().ok();
        }
    }
    if chunked {
        return dechunk(body);
    }
    Ok(match length {
        Some(n) => body
            .get(..n)
            .ok_or_else(|| RspamdError::Http("short body".into()))?
            .to_vec(),
        None => body.to_vec(),
    })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, RspamdError> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| RspamdError::Http("bad chunk".into()))?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size_hex = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| RspamdError::Http("bad chunk size".into()))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = data
            .get(..size)
            .ok_or_else(|| RspamdError::Http("short chunk".into()))?;
        out.extend_from_slice(chunk);
        data = data.get(size + 2..).unwrap_or(&[]);
    }
}

/// Parses rspamd's `/checkv2` JSON.
pub fn parse_result(body: &[u8]) -> Result<RspamdResult, RspamdError> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| RspamdError::Json(e.to_string()))?;
    let num = |key: &str| v.get(key).and_then(serde_json::Value::as_f64);
    let score = num("score").ok_or_else(|| RspamdError::Json("no score".into()))?;
    let required_score = num("required_score").unwrap_or(0.0);
    let action = v
        .get("action")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut symbols: Vec<(String, f64)> = v
        .get("symbols")
        .and_then(serde_json::Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(name, s)| {
                    let score = s
                        .get("score")
                        .and_then(serde_json::Value::as_f64)
                        .unwrap_or(0.0);
                    (name.clone(), score)
                })
                .collect()
        })
        .unwrap_or_default();
    symbols.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(RspamdResult {
        score,
        required_score,
        action,
        symbols,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    const JSON: &str = r#"{"is_skipped":false,"score":7.5,"required_score":15.0,"action":"add header","symbols":{"MISSING_MID":{"name":"MISSING_MID","score":2.5},"R_SPF_FAIL":{"name":"R_SPF_FAIL","score":5.0}},"message-id":"x"}"#;

    #[test]
    fn parses_json() {
        let r = parse_result(JSON.as_bytes()).unwrap();
        assert_eq!(r.score, 7.5);
        assert_eq!(r.required_score, 15.0);
        assert_eq!(r.action, "add header");
        assert_eq!(
            r.symbols,
            vec![("MISSING_MID".into(), 2.5), ("R_SPF_FAIL".into(), 5.0)]
        );
        assert!(parse_result(b"{}").is_err());
        assert!(parse_result(b"not json").is_err());
    }

    #[test]
    fn http_bodies() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}xx";
        assert_eq!(http_body(r).unwrap(), b"{}");
        let r =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{\"\r\n1\r\n}\r\n0\r\n\r\n";
        assert_eq!(http_body(r).unwrap(), b"{\"}");
        assert!(http_body(b"HTTP/1.1 500 Oops\r\n\r\n").is_err());
        assert!(http_body(b"garbage").is_err());
    }

    #[test]
    fn header_injection_is_stripped() {
        let rcpt = vec!["a@b\r\nEvil: 1".to_string()];
        let req = RspamdRequest {
            rcpt: &rcpt,
            ..RspamdRequest::default()
        };
        let head = request_head(&RspamdConfig::default(), 3, &req);
        assert!(head.contains("Rcpt: a@bEvil: 1\r\n"));
    }

    /// A fake rspamd on loopback: checks the request, answers with JSON.
    #[tokio::test]
    async fn talks_http_to_a_server() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while !got.windows(5).any(|w| w == b"hello") {
                let n = s.read(&mut buf).await.unwrap();
                assert!(n > 0);
                got.extend_from_slice(&buf[..n]);
            }
            let text = String::from_utf8(got).unwrap();
            assert!(text.starts_with("POST /checkv2 HTTP/1.1\r\n"));
            assert!(text.contains("\r\nIP: 192.0.2.1\r\n"));
            assert!(text.contains("\r\nRcpt: b@example.org\r\n"));
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{JSON}",
                JSON.len()
            );
            s.write_all(resp.as_bytes()).await.unwrap();
        });
        let cfg = RspamdConfig {
            enabled: true,
            address: addr.to_string(),
            ..RspamdConfig::default()
        };
        let rcpt = vec!["b@example.org".to_string()];
        let req = RspamdRequest {
            ip: Some("192.0.2.1".parse().unwrap()),
            rcpt: &rcpt,
            ..RspamdRequest::default()
        };
        let r = check(&cfg, b"hello", &req).await.unwrap();
        assert_eq!(r.score, 7.5);
        server.await.unwrap();
    }

    #[tokio::test]
    async fn times_out_and_bounds_size() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let _ = s.write_all(&vec![b'x'; 100_000]).await;
            let (_s2, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
        });
        let cfg = RspamdConfig {
            enabled: true,
            address: addr.to_string(),
            timeout_ms: 300,
            max_response_bytes: 1000,
            ..RspamdConfig::default()
        };
        let req = RspamdRequest::default();
        assert!(matches!(
            check(&cfg, b"m", &req).await,
            Err(RspamdError::TooLarge(_))
        ));
        assert!(matches!(
            check(&cfg, b"m", &req).await,
            Err(RspamdError::Timeout)
        ));
    }
}
