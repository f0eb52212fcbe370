//! The async SMTP client: one connection to one receiving server, over which several messages
//! may travel. It owns the socket (plain, then TLS after STARTTLS), reads replies with bounded
//! buffers and timeouts, and leaves every protocol decision to `transaction`.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::dane::DanePolicy;
use crate::reply::{MAX_LINE, MAX_LINES, Reply, parse_reply};
use crate::tls::{ClientTls, TrustAnchors};
use crate::transaction::{Capabilities, Envelope, MessageNeeds, Outcome, dot_stuff, plan};

/// How hard the client insists on TLS with one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsPolicy {
    /// Never STARTTLS (tests, or a broken peer an admin opted out of).
    Disabled,
    /// STARTTLS when offered, any certificate accepted (its validity is recorded).
    #[default]
    Opportunistic,
    /// STARTTLS must succeed; any certificate.
    Required,
    /// STARTTLS must succeed with a certificate valid for the host name.
    RequiredVerified,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Name sent in EHLO/HELO: this server's host name.
    pub helo_name: String,
    pub tls: TlsPolicy,
    pub anchors: TrustAnchors,
    /// DANE (RFC 7672) for this connection, set per hop by the worker from a secure TLSA
    /// RRset: STARTTLS becomes mandatory and the certificate must match the records, whatever
    /// `tls` says.
    pub dane: Option<Arc<DanePolicy>>,
    /// AUTH to a smarthost; sent only over TLS.
    pub auth: Option<Credentials>,
    pub connect_timeout: Duration,
    /// Per reply (RFC 5321 §4.5.3.2 suggests minutes; the defaults stay within that).
    pub command_timeout: Duration,
    /// For the final reply after the message body.
    pub data_timeout: Duration,
    /// Where TLS outcomes go for TLS-RPT (none: not reported).
    pub tls_results: Option<crate::tls_report::SinkHandle>,
}

impl ClientConfig {
    pub fn new(helo_name: &str) -> ClientConfig {
        ClientConfig {
            helo_name: helo_name.to_string(),
            tls: TlsPolicy::Opportunistic,
            anchors: TrustAnchors::system(),
            dane: None,
            auth: None,
            connect_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
            tls_results: None,
        }
    }
}

/// What TLS the session ended up with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSummary {
    pub version: String,
    pub cipher: String,
    pub verified: bool,
    /// The TLSA record that authenticated the server (`DANE-EE 3 1 1`), when DANE applied.
    pub dane: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("connection to {addr}: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    #[error("i/o: {0}")]
    Io(String),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("protocol violation by server: {0}")]
    Protocol(String),
    /// A reply that ends the session (greeting, EHLO, STARTTLS, AUTH).
    #[error("{stage} refused: {reply}")]
    Refused { stage: &'static str, reply: Reply },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("authentication: {0}")]
    Auth(String),
}

impl ClientError {
    /// What the recipients of a message get when the session fails under them. Everything is a
    /// deferral except a 5xx from the server itself: our own configuration or the network may heal.
    pub fn outcome(&self) -> Outcome {
        match self {
            ClientError::Refused { stage, reply } if reply.is_permanent() && *stage != "AUTH" => {
                Outcome::from_reply(reply)
            }
            ClientError::Refused { reply, .. } => Outcome::Deferred {
                status: if reply.is_permanent() {
                    "4.7.0".into()
                } else {
                    reply.status()
                },
                diagnostic: format!("smtp; {}", reply.one_line()),
            },
            ClientError::Tls(_) => Outcome::deferred("4.7.5", self.to_string()),
            ClientError::Auth(_) => Outcome::deferred("4.7.8", self.to_string()),
            ClientError::Protocol(_) => Outcome::deferred("4.5.0", self.to_string()),
            _ => Outcome::deferred("4.4.2", self.to_string()),
        }
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

pub struct SmtpClient {
    /// `None` only while STARTTLS moves the TCP stream into the TLS layer.
    stream: Option<Stream>,
    buf: Vec<u8>,
    caps: Capabilities,
    tls: Option<TlsSummary>,
    peer: SocketAddr,
    /// The server's greeting-line host, for logs.
    banner: String,
    command_timeout: Duration,
    data_timeout: Duration,
    /// False once a transaction left the session in an unknown state.
    reusable: bool,
}

impl SmtpClient {
    /// Connects, reads the greeting, EHLO (HELO if EHLO is refused), STARTTLS as the policy asks,
    /// then AUTH when credentials are configured.
    pub async fn connect(
        addr: SocketAddr,
        server_name: &str,
        cfg: &ClientConfig,
    ) -> Result<SmtpClient, ClientError> {
        let tcp = match timeout(cfg.connect_timeout, TcpStream::connect(addr)).await {
            Err(_) => {
                return Err(ClientError::Connect {
                    addr,
                    reason: "timed out".into(),
                });
            }
            Ok(Err(e)) => {
                return Err(ClientError::Connect {
                    addr,
                    reason: e.to_string(),
                });
            }
            Ok(Ok(s)) => s,
        };
        let _ = tcp.set_nodelay(true);
        let mut c = SmtpClient {
            stream: Some(Stream::Plain(tcp)),
            buf: Vec::new(),
            caps: Capabilities::default(),
            tls: None,
            peer: addr,
            banner: String::new(),
            command_timeout: cfg.command_timeout,
            data_timeout: cfg.data_timeout,
            reusable: true,
        };
        let greeting = c.read_reply("greeting").await?;
        if greeting.code != 220 {
            return Err(ClientError::Refused {
                stage: "greeting",
                reply: greeting,
            });
        }
        c.banner = greeting
            .lines
            .first()
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_default()
            .to_string();
        c.hello(&cfg.helo_name).await?;

        let want_tls = cfg.tls != TlsPolicy::Disabled || cfg.dane.is_some();
        if want_tls && c.caps.starttls {
            c.starttls(server_name, cfg).await?;
            c.hello(&cfg.helo_name).await?;
        } else if let Some(dane) = &cfg.dane {
            let _ = c.quit().await;
            let text = format!(
                "DANE: {}: TLSA {} published but {addr} does not offer STARTTLS",
                dane.host,
                dane.summary()
            );
            tracing::warn!(mx = %dane.host, %addr, "{text}");
            return Err(ClientError::Tls(text));
        } else if matches!(cfg.tls, TlsPolicy::Required | TlsPolicy::RequiredVerified) {
            let _ = c.quit().await;
            return Err(ClientError::Tls(format!(
                "{addr} does not offer STARTTLS and policy requires TLS"
            )));
        }
        if let Some(cred) = &cfg.auth {
            if c.tls.is_none() {
                let _ = c.quit().await;
                return Err(ClientError::Auth(
                    "refusing to send credentials without TLS".into(),
                ));
            }
            c.authenticate(cred).await?;
        }
        Ok(c)
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }
    pub fn tls(&self) -> Option<&TlsSummary> {
        self.tls.as_ref()
    }
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }
    pub fn banner(&self) -> &str {
        &self.banner
    }
    /// Whether another message may be sent over this connection.
    pub fn reusable(&self) -> bool {
        self.reusable
    }

    async fn hello(&mut self, name: &str) -> Result<(), ClientError> {
        self.write(format!("EHLO {name}\r\n").as_bytes()).await?;
        let reply = self.read_reply("EHLO reply").await?;
        if reply.code == 250 {
            self.caps = Capabilities::from_ehlo(&reply);
            return Ok(());
        }
        if !reply.is_permanent() {
            return Err(ClientError::Refused {
                stage: "EHLO",
                reply,
            });
        }
        self.write(format!("HELO {name}\r\n").as_bytes()).await?;
        let reply = self.read_reply("HELO reply").await?;
        if reply.code != 250 {
            return Err(ClientError::Refused {
                stage: "HELO",
                reply,
            });
        }
        self.caps = Capabilities::default();
        Ok(())
    }

    async fn starttls(&mut self, server_name: &str, cfg: &ClientConfig) -> Result<(), ClientError> {
        self.write(b"STARTTLS\r\n").await?;
        let reply = self.read_reply("STARTTLS reply").await?;
        if reply.code != 220 {
            // RFC 3207 §4: the client may go on without TLS; opportunistic policy does.
            if cfg.tls == TlsPolicy::Opportunistic && cfg.dane.is_none() {
                tracing::info!(peer = %self.peer, reply = %reply, "STARTTLS refused; continuing in plaintext (opportunistic)");
                return Ok(());
            }
            if let Some(dane) = &cfg.dane {
                // Even a 5xx is a deferral under DANE: the fault is on the path, not the message.
                let text = format!(
                    "DANE: {}: STARTTLS refused: {}",
                    dane.host,
                    reply.one_line()
                );
                tracing::warn!(mx = %dane.host, peer = %self.peer, "{text}");
                return Err(ClientError::Tls(text));
            }
            return Err(ClientError::Refused {
                stage: "STARTTLS",
                reply,
            });
        }
        if !self.buf.is_empty() {
            // Bytes after the 220 were sent before the handshake: a response-injection attempt.
            return Err(ClientError::Protocol(
                "data pipelined after the STARTTLS reply".into(),
            ));
        }
        let tls = match &cfg.dane {
            Some(policy) => ClientTls::dane(policy.clone()),
            None => ClientTls::new(&cfg.anchors, cfg.tls == TlsPolicy::RequiredVerified),
        }
        .map_err(ClientError::Tls)?;
        let name = match ServerName::try_from(server_name.trim_end_matches('.').to_string()) {
            Ok(n) => n,
            Err(_) => ServerName::IpAddress(self.peer.ip().into()),
        };
        let tcp = match self.stream.take() {
            Some(Stream::Plain(t)) => t,
            _ => return Err(ClientError::Protocol("TLS already active".into())),
        };
        let connector = TlsConnector::from(tls.config.clone());
        let stream = match timeout(self.command_timeout, connector.connect(name, tcp)).await {
            Err(_) => return Err(ClientError::Timeout("TLS handshake")),
            Ok(Err(e)) => return Err(ClientError::Tls(e.to_string())),
            Ok(Ok(s)) => s,
        };
        let (_, conn) = stream.get_ref();
        let version = conn
            .protocol_version()
            .map(|v| match v {
                rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_string(),
                rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_string(),
                other => format!("{other:?}"),
            })
            .unwrap_or_default();
        let cipher = conn
            .negotiated_cipher_suite()
            .map(|c| format!("{:?}", c.suite()))
            .unwrap_or_default();
        self.tls = Some(TlsSummary {
            version,
            cipher,
            verified: tls.verified(),
            dane: tls.dane_match(),
        });
        self.stream = Some(Stream::Tls(Box::new(stream)));
        Ok(())
    }

    async fn authenticate(&mut self, cred: &Credentials) -> Result<(), ClientError> {
        let mechs = &self.caps.auth;
        if mechs.iter().any(|m| m == "PLAIN") {
            let token = B64.encode(format!("\0{}\0{}", cred.username, cred.password));
            self.write(format!("AUTH PLAIN {token}\r\n").as_bytes())
                .await?;
            let reply = self.read_reply("AUTH reply").await?;
            if reply.code != 235 {
                return Err(ClientError::Refused {
                    stage: "AUTH",
                    reply,
                });
            }
            return Ok(());
        }
        if mechs.iter().any(|m| m == "LOGIN") {
            self.write(b"AUTH LOGIN\r\n").await?;
            for secret in [&cred.username, &cred.password] {
                let reply = self.read_reply("AUTH challenge").await?;
                if reply.code != 334 {
                    return Err(ClientError::Refused {
                        stage: "AUTH",
                        reply,
                    });
                }
                self.write(format!("{}\r\n", B64.encode(secret)).as_bytes())
                    .await?;
            }
            let reply = self.read_reply("AUTH reply").await?;
            if reply.code != 235 {
                return Err(ClientError::Refused {
                    stage: "AUTH",
                    reply,
                });
            }
            return Ok(());
        }
        Err(ClientError::Auth(format!(
            "server offers no usable mechanism (offered: {:?})",
            mechs
        )))
    }

    /// Sends one message; returns one outcome per envelope recipient, in order. An `Err` means the
    /// connection failed mid-way: every recipient of this message is then undecided.
    pub async fn send(
        &mut self,
        env: &Envelope,
        message: &[u8],
    ) -> Result<Vec<Outcome>, ClientError> {
        let needs = MessageNeeds::of(env, message);
        let plan = match plan(&self.caps, env, needs) {
            Ok(p) => p,
            Err(outcome) => return Ok(vec![outcome; env.recipients.len()]),
        };
        self.reusable = false;
        let n = plan.rcpts.len();
        let (mail, rcpts, data) = if plan.pipeline {
            let mut batch = format!("{}\r\n", plan.mail);
            for r in &plan.rcpts {
                batch.push_str(r);
                batch.push_str("\r\n");
            }
            if !plan.use_bdat {
                batch.push_str("DATA\r\n");
            }
            self.write(batch.as_bytes()).await?;
            let mail = self.read_reply("MAIL reply").await?;
            let mut rcpts = Vec::with_capacity(n);
            for _ in 0..n {
                rcpts.push(self.read_reply("RCPT reply").await?);
            }
            let data = if plan.use_bdat {
                None
            } else {
                Some(self.read_reply("DATA reply").await?)
            };
            (mail, rcpts, data)
        } else {
            self.write(format!("{}\r\n", plan.mail).as_bytes()).await?;
            let mail = self.read_reply("MAIL reply").await?;
            let mut rcpts = Vec::with_capacity(n);
            if mail.is_positive() {
                for r in &plan.rcpts {
                    self.write(format!("{r}\r\n").as_bytes()).await?;
                    rcpts.push(self.read_reply("RCPT reply").await?);
                }
            }
            let data =
                if mail.is_positive() && rcpts.iter().any(Reply::is_positive) && !plan.use_bdat {
                    self.write(b"DATA\r\n").await?;
                    Some(self.read_reply("DATA reply").await?)
                } else {
                    None
                };
            (mail, rcpts, data)
        };

        if !mail.is_positive() {
            if data.as_ref().is_some_and(|d| d.code == 354) {
                self.write(b".\r\n").await?;
                self.read_reply("end of empty DATA").await?;
            }
            self.rset().await?;
            return Ok(vec![Outcome::from_reply(&mail); n]);
        }
        let mut outcomes: Vec<Outcome> = rcpts.iter().map(Outcome::from_reply).collect();
        let accepted: Vec<usize> = (0..n).filter(|&i| rcpts[i].is_positive()).collect();
        if accepted.is_empty() {
            if data.as_ref().is_some_and(|d| d.code == 354) {
                self.write(b".\r\n").await?;
                self.read_reply("end of empty DATA").await?;
            }
            self.rset().await?;
            return Ok(outcomes);
        }
        let final_reply = if plan.use_bdat {
            let mut chunk = format!("BDAT {} LAST\r\n", message.len()).into_bytes();
            chunk.extend_from_slice(message);
            self.write(&chunk).await?;
            self.read_reply_within("BDAT reply", self.data_timeout)
                .await?
        } else {
            let data = match data {
                Some(d) => d,
                None => return Err(ClientError::Protocol("no DATA reply".into())),
            };
            if data.code != 354 {
                for &i in &accepted {
                    outcomes[i] = Outcome::from_reply(&data);
                }
                self.rset().await?;
                return Ok(outcomes);
            }
            self.write(&dot_stuff(message)).await?;
            self.read_reply_within("end-of-data reply", self.data_timeout)
                .await?
        };
        for &i in &accepted {
            outcomes[i] = Outcome::from_reply(&final_reply);
        }
        if !final_reply.is_positive() {
            self.rset().await?;
        }
        self.reusable = true;
        Ok(outcomes)
    }

    async fn rset(&mut self) -> Result<(), ClientError> {
        self.write(b"RSET\r\n").await?;
        let r = self.read_reply("RSET reply").await?;
        self.reusable = r.code == 250;
        Ok(())
    }

    /// Polite goodbye; errors are of no consequence once the messages are settled.
    pub async fn quit(mut self) -> Result<(), ClientError> {
        self.write(b"QUIT\r\n").await?;
        let _ = self.read_reply("QUIT reply").await;
        if let Some(s) = self.stream.as_mut() {
            let _ = s.shutdown().await;
        }
        Ok(())
    }

    async fn write(&mut self, data: &[u8]) -> Result<(), ClientError> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(ClientError::Io("connection lost during TLS setup".into()));
        };
        let fut = async {
            stream.write_all(data).await?;
            stream.flush().await
        };
        match timeout(self.data_timeout, fut).await {
            Err(_) => Err(ClientError::Timeout("write")),
            Ok(Err(e)) => Err(ClientError::Io(e.to_string())),
            Ok(Ok(())) => Ok(()),
        }
    }

    async fn read_reply(&mut self, what: &'static str) -> Result<Reply, ClientError> {
        self.read_reply_within(what, self.command_timeout).await
    }

    async fn read_reply_within(
        &mut self,
        what: &'static str,
        limit: Duration,
    ) -> Result<Reply, ClientError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match parse_reply(&self.buf) {
                Ok(Some((reply, used))) => {
                    self.buf.drain(..used);
                    tracing::trace!(peer = %self.peer, reply = %reply, "S:");
                    return Ok(reply);
                }
                Ok(None) => {}
                Err(e) => return Err(ClientError::Protocol(e.to_string())),
            }
            if self.buf.len() > MAX_LINE * MAX_LINES {
                return Err(ClientError::Protocol("reply too large".into()));
            }
            let Some(stream) = self.stream.as_mut() else {
                return Err(ClientError::Io("connection lost during TLS setup".into()));
            };
            let mut chunk = [0u8; 4096];
            let n = match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
                Err(_) => return Err(ClientError::Timeout(what)),
                Ok(Err(e)) => return Err(ClientError::Io(e.to_string())),
                Ok(Ok(n)) => n,
            };
            if n == 0 {
                return Err(ClientError::Io(format!(
                    "connection closed while waiting for {what}"
                )));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}
