//! The thin async loop that owns one `wharf_net::Conn`: greeting (with early-talker check), reading
//! command lines / DATA / BDAT chunks into the session, writing replies (batched while pipelined
//! input is pending), STARTTLS upgrade, idle timeout and graceful shutdown.

use std::sync::Arc;

use async_trait::async_trait;
use wharf_directory::Directory;
use wharf_net::{Conn, Handler, Line};

use crate::SmtpRole;
use crate::config::SmtpConfig;
use crate::handoff::RemoteHandoff;
use crate::limiter::{IpLimiter, Refusal};
use crate::reply::Reply;
use crate::session::{ConnInfo, Next, Response, Session};

/// Longest SASL response line (RFC 4954 §4: at least 12288 octets).
const MAX_AUTH_LINE: usize = 12288 + 2;

pub struct SmtpService {
    cfg: Arc<SmtpConfig>,
    hostname: Arc<str>,
    directory: Directory,
    role: SmtpRole,
    limiter: Arc<IpLimiter>,
    handoff: Option<Arc<dyn RemoteHandoff>>,
}

impl SmtpService {
    pub fn new(
        cfg: SmtpConfig,
        hostname: String,
        directory: Directory,
        role: SmtpRole,
    ) -> SmtpService {
        let limiter = IpLimiter::new(cfg.max_connections_per_ip, cfg.max_connection_rate_per_ip);
        SmtpService {
            cfg: Arc::new(cfg),
            hostname: hostname.into(),
            directory,
            role,
            limiter,
            handoff: None,
        }
    }

    /// Remote recipients (submission) and external alias targets (both roles) are accepted and
    /// handed to `handoff`; without one they get `451 4.3.0`.
    pub fn with_handoff(mut self, handoff: Arc<dyn RemoteHandoff>) -> SmtpService {
        self.handoff = Some(handoff);
        self
    }

    pub fn role(&self) -> SmtpRole {
        self.role
    }
}

fn session_id() -> String {
    const ALPHABET: &[u8] = b"0123456789BCDFGHJKLMNPQRSTVWXYZ";
    let mut n: u64 = rand::random();
    let mut s = String::with_capacity(12);
    for _ in 0..12 {
        s.push(ALPHABET[(n % ALPHABET.len() as u64) as usize] as char);
        n /= ALPHABET.len() as u64;
    }
    s
}

#[async_trait]
impl Handler for SmtpService {
    async fn handle(&self, mut conn: Conn) {
        let id = session_id();
        let peer = conn.peer();
        let span = tracing::info_span!("smtp", session = %id, peer = %peer, role = ?self.role);
        let _permit = match self.limiter.admit(peer.ip()) {
            Ok(p) => p,
            Err(why) => {
                let _g = span.enter();
                tracing::warn!(?why, "session refused by per-IP limit");
                let text = match why {
                    Refusal::TooManyConnections => {
                        "421 4.7.0 Too many connections from your address\r\n"
                    }
                    Refusal::RateExceeded => {
                        "421 4.7.0 Connection rate limit exceeded, try again later\r\n"
                    }
                };
                let _ = conn.write_all(text.as_bytes()).await;
                let _ = conn.flush().await;
                return;
            }
        };
        tracing::info!(parent: &span, listener = conn.listener_name(), tls = conn.is_tls(), "session start");
        conn.set_idle_timeout(self.cfg.idle_timeout());
        let info = ConnInfo {
            peer,
            tls: conn
                .tls_info()
                .map(|t| (t.version.clone(), t.cipher.clone())),
            starttls_available: conn.starttls_available(),
        };
        let mut session = Session::new(
            Arc::clone(&self.cfg),
            Arc::clone(&self.hostname),
            self.role,
            self.directory.clone(),
            id,
            info,
        );
        if let Some(h) = &self.handoff {
            session.set_handoff(Arc::clone(h));
        }
        let result = {
            use tracing::Instrument;
            run(&self.cfg, self.role, &mut session, &mut conn)
                .instrument(span.clone())
                .await
        };
        match result {
            Ok(()) => tracing::info!(parent: &span, "session end"),
            Err(e) => tracing::info!(parent: &span, error = %e, "session ended with I/O error"),
        }
    }

    fn protocol(&self) -> &'static str {
        "smtp"
    }

    fn too_busy(&self) -> &'static [u8] {
        b"421 4.7.0 Too many connections, try again later\r\n"
    }
}

/// Replies not yet written. `Conn::write_all` goes straight to the socket, so replies are collected
/// here and written in one call when the loop is about to wait for the client.
#[derive(Default)]
struct Output(Vec<u8>);

impl Output {
    fn queue(&mut self, replies: &[Reply]) {
        for r in replies {
            r.write_to(&mut self.0);
        }
    }

    async fn send(&mut self, conn: &mut Conn) -> std::io::Result<()> {
        if !self.0.is_empty() {
            conn.write_all(&self.0).await?;
            conn.flush().await?;
            self.0.clear();
        }
        Ok(())
    }

    /// RFC 2920: while a pipelined group is still being read (a complete command is already
    /// buffered), replies are held and sent together; otherwise they go out now.
    async fn reply(
        &mut self,
        conn: &mut Conn,
        replies: &[Reply],
        force: bool,
    ) -> std::io::Result<()> {
        self.queue(replies);
        if force || !conn.buffer().contains(&b'\n') {
            self.send(conn).await?;
        }
        Ok(())
    }

    /// A last reply, then the session ends.
    async fn last(&mut self, conn: &mut Conn, reply: Reply) -> std::io::Result<()> {
        self.queue(&[reply]);
        self.send(conn).await
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::TimedOut
}

async fn run(
    cfg: &SmtpConfig,
    role: SmtpRole,
    session: &mut Session,
    conn: &mut Conn,
) -> std::io::Result<()> {
    let delay = cfg.greeting_delay();
    if role == SmtpRole::Mx && !delay.is_zero() {
        let talked = tokio::select! {
            _ = tokio::time::sleep(delay) => None,
            r = conn.fill() => Some(r),
        };
        match talked {
            None => {}
            Some(Ok(0)) | Some(Err(_)) => return Ok(()),
            Some(Ok(_)) => {
                tracing::warn!("early talker: client sent data before the greeting");
                Output::default().last(conn, session.early_talker()).await?;
                return Ok(());
            }
        }
    }
    let mut out = Output::default();
    out.last(conn, session.greeting()).await?;
    let mut shutdown = conn.shutdown_signal();
    let mut next = Next::Command;
    // Replies to a rejected BDAT, written once its chunk has been discarded.
    let mut held: Vec<Reply> = Vec::new();
    loop {
        let response: Response = match next {
            Next::Close => {
                out.send(conn).await?;
                return Ok(());
            }
            Next::Command | Next::AuthResponse => {
                let max = if next == Next::Command {
                    cfg.max_command_line
                } else {
                    MAX_AUTH_LINE
                };
                let line = if *shutdown.borrow() && !conn.buffer().contains(&b'\n') {
                    out.last(conn, session.shutting_down()).await?;
                    return Ok(());
                } else if conn.buffer().contains(&b'\n') {
                    conn.read_line(max).await
                } else {
                    tokio::select! {
                        l = conn.read_line(max) => l,
                        _ = shutdown.changed() => {
                            tracing::info!("server shutting down, closing idle session");
                            out.last(conn, session.shutting_down()).await?;
                            return Ok(());
                        }
                    }
                };
                match line {
                    Ok(Line::Complete(l)) if next == Next::Command => session.command(&l).await,
                    Ok(Line::Complete(l)) => session.auth_response(&l).await,
                    Ok(Line::TooLong) => session.command_too_long(),
                    Ok(Line::Eof) => {
                        tracing::info!("client closed the connection");
                        return Ok(());
                    }
                    Err(e) if is_timeout(&e) => {
                        tracing::info!("idle timeout");
                        out.last(conn, session.idle_timeout()).await?;
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                }
            }
            Next::Data => {
                // Message bytes go straight from the connection buffer into the receiver.
                loop {
                    if conn.buffer().is_empty() {
                        out.send(conn).await?;
                        match conn.fill().await {
                            Ok(0) => {
                                tracing::info!("client closed the connection during DATA");
                                return Ok(());
                            }
                            Ok(_) => {}
                            Err(e) if is_timeout(&e) => {
                                tracing::info!("idle timeout during DATA");
                                out.last(conn, session.idle_timeout()).await?;
                                return Ok(());
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    let Some(body) = session.body() else { break };
                    let (n, done) = body.feed_data(conn.buffer());
                    conn.consume(n);
                    if done {
                        break;
                    }
                }
                session.end_of_data().await
            }
            Next::Bdat { size, discard } => {
                if discard {
                    out.send(conn).await?;
                    match conn.discard_exact(size as usize).await {
                        Ok(true) => {}
                        Ok(false) => return Ok(()),
                        Err(e) if is_timeout(&e) => {
                            out.last(conn, session.idle_timeout()).await?;
                            return Ok(());
                        }
                        Err(e) => return Err(e),
                    }
                    // The replies were decided with the command and written after its chunk.
                    next = if session.must_close() {
                        Next::Close
                    } else {
                        Next::Command
                    };
                    out.reply(conn, &std::mem::take(&mut held), false).await?;
                    continue;
                }
                let mut remaining = size;
                while remaining > 0 {
                    if conn.buffer().is_empty() {
                        out.send(conn).await?;
                        match conn.fill().await {
                            Ok(0) => return Ok(()),
                            Ok(_) => {}
                            Err(e) if is_timeout(&e) => {
                                out.last(conn, session.idle_timeout()).await?;
                                return Ok(());
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    let take = (conn.buffer().len() as u64).min(remaining) as usize;
                    if let Some(body) = session.body() {
                        body.feed_chunk(&conn.buffer()[..take]);
                    }
                    conn.consume(take);
                    remaining -= take as u64;
                }
                session.end_of_chunk().await
            }
            Next::StartTls => {
                out.send(conn).await?;
                if let Err(e) = conn.start_tls().await {
                    tracing::warn!(error = %e, "TLS handshake failed");
                    return Ok(());
                }
                let (version, cipher) = conn
                    .tls_info()
                    .map(|t| (t.version.clone(), t.cipher.clone()))
                    .unwrap_or_default();
                session.tls_started(version, cipher);
                next = Next::Command;
                continue;
            }
        };
        if let Next::Bdat { discard: true, .. } = response.next {
            held = response.replies;
            next = response.next;
            continue;
        }
        next = response.next;
        let force = matches!(next, Next::Close | Next::StartTls | Next::AuthResponse);
        out.reply(conn, &response.replies, force).await?;
    }
}
