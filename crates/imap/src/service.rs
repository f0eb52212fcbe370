//! The connection loop: frames commands and literals off a `wharf_net::Conn` (continuation
//! requests, LITERAL- limits, over-long lines discarded unbuffered), feeds them to the `Session`,
//! and runs STARTTLS, SASL exchanges and IDLE (woken by store events).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tracing::{debug, info};
use wharf_directory::Directory;
use wharf_net::{Conn, Handler, Line, async_trait};

use crate::config::ImapConfig;
use crate::session::{ConnInfo, Next, Session};
use crate::syntax::literal_at_end;

/// Largest non-synchronising literal (RFC 7888 LITERAL-).
pub const MAX_NON_SYNC_LITERAL: u64 = 4096;

/// The IMAP service plugged into the listeners on 143 (STARTTLS) and 993 (implicit TLS).
pub struct ImapService {
    cfg: Arc<ImapConfig>,
    dir: Directory,
    hostname: String,
    next_id: AtomicU64,
}

impl ImapService {
    pub fn new(cfg: ImapConfig, hostname: String, directory: Directory) -> Self {
        ImapService {
            cfg: Arc::new(cfg),
            dir: directory,
            hostname,
            next_id: AtomicU64::new(1),
        }
    }
}

#[async_trait]
impl Handler for ImapService {
    async fn handle(&self, conn: Conn) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let info = ConnInfo {
            peer: conn.peer().ip(),
            tls: conn.is_tls(),
            starttls_available: conn.starttls_available(),
        };
        info!(session = id, peer = %conn.peer(), listener = conn.listener_name(), host = %self.hostname, "imap session start");
        let session = Session::new(self.cfg.clone(), self.dir.clone(), info, id);
        match run(conn, session, &self.cfg).await {
            Ok(()) => info!(session = id, "imap session end"),
            Err(e) => info!(session = id, error = %e, "imap session ended by i/o error"),
        }
    }

    fn protocol(&self) -> &'static str {
        "imap"
    }

    fn too_busy(&self) -> &'static [u8] {
        b"* BYE [UNAVAILABLE] Too many connections, try again later\r\n"
    }
}

/// One framed client input.
enum Frame {
    Command(Vec<u8>),
    TooLong,
    LiteralTooBig { tag: Option<String>, non_sync: bool },
    Eof,
}

fn tag_of(buf: &[u8]) -> Option<String> {
    let end = buf.iter().position(|&b| b == b' ')?;
    let t = &buf[..end];
    (!t.is_empty() && t.iter().all(|&b| b.is_ascii_graphic() && b != b'+'))
        .then(|| String::from_utf8_lossy(t).into_owned())
}

fn is_append(buf: &[u8]) -> bool {
    let mut words = buf.split(|&b| b == b' ');
    words.next();
    words
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case(b"APPEND"))
}

/// Reads one command with its literals.
async fn read_command(conn: &mut Conn, cfg: &ImapConfig) -> io::Result<Frame> {
    let mut buf = Vec::new();
    loop {
        let line = match conn.read_line(cfg.max_line).await? {
            Line::Complete(l) => l,
            Line::TooLong => return Ok(Frame::TooLong),
            Line::Eof => return Ok(Frame::Eof),
        };
        buf.extend_from_slice(&line);
        let Some(lit) = literal_at_end(&line) else {
            return Ok(Frame::Command(buf));
        };
        let limit = if is_append(&buf) {
            cfg.max_append
        } else {
            cfg.max_literal
        };
        let too_big = lit.len > limit || (lit.non_sync && lit.len > MAX_NON_SYNC_LITERAL);
        if too_big {
            let tag = tag_of(&buf);
            if lit.non_sync {
                // The client sends it anyway: read it away without keeping it, then the rest
                // of the command (which may announce further literals).
                let mut pending = Some(lit.len);
                let mut rounds = 0;
                while let Some(n) = pending.take() {
                    rounds += 1;
                    let Ok(n) = usize::try_from(n) else {
                        return Ok(Frame::Eof);
                    };
                    if !conn.discard_exact(n).await? {
                        return Ok(Frame::Eof);
                    }
                    match conn.read_line(cfg.max_line).await? {
                        Line::Complete(l) => {
                            if let Some(next) = literal_at_end(&l)
                                && next.non_sync
                                && rounds < 64
                            {
                                pending = Some(next.len);
                            }
                        }
                        Line::TooLong => {}
                        Line::Eof => return Ok(Frame::Eof),
                    }
                }
            }
            return Ok(Frame::LiteralTooBig {
                tag,
                non_sync: lit.non_sync,
            });
        }
        if buf.len() as u64 + lit.len > limit.saturating_add(cfg.max_line as u64 * 4) {
            return Ok(Frame::LiteralTooBig {
                tag: tag_of(&buf),
                non_sync: lit.non_sync,
            });
        }
        if !lit.non_sync {
            conn.write_all(b"+ Ready for literal data\r\n").await?;
            conn.flush().await?;
        }
        let n = usize::try_from(lit.len).map_err(|_| io::Error::other("literal size"))?;
        match conn.read_exact_bytes(n).await? {
            Some(data) => buf.extend_from_slice(&data),
            None => return Ok(Frame::Eof),
        }
    }
}

enum IdleInput {
    Line(io::Result<Line>),
    Event(Result<wharf_store::MailboxEvent, RecvError>),
    Shutdown,
}

async fn run(mut conn: Conn, mut session: Session, cfg: &ImapConfig) -> io::Result<()> {
    let mut shutdown = conn.shutdown_signal();
    conn.set_idle_timeout(Duration::from_secs(cfg.idle_timeout_unauth_secs));
    conn.write_all(&session.greeting()).await?;
    conn.flush().await?;
    let mut next = Next::Command;
    let mut was_authed = false;
    loop {
        if !was_authed && session.is_authenticated() {
            was_authed = true;
            conn.set_idle_timeout(Duration::from_secs(cfg.idle_timeout_secs));
        }
        match next {
            Next::Close => {
                conn.flush().await?;
                return Ok(());
            }
            Next::StartTls => {
                conn.flush().await?;
                conn.start_tls().await?;
                session.tls_started();
                next = Next::Command;
            }
            Next::Command => {
                let frame = tokio::select! {
                    f = read_command(&mut conn, cfg) => f,
                    _ = shutdown.changed() => {
                        conn.write_all(&session.bye("Server shutting down")).await?;
                        conn.flush().await?;
                        return Ok(());
                    }
                };
                let frame = match frame {
                    Ok(f) => f,
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                        conn.write_all(&session.bye("Autologout; idle for too long"))
                            .await?;
                        conn.flush().await?;
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                };
                let reply = match frame {
                    Frame::Command(raw) => session.handle(&raw).await,
                    Frame::TooLong => session.line_too_long(),
                    Frame::LiteralTooBig { tag, non_sync } => {
                        session.literal_too_big(tag.as_deref(), non_sync)
                    }
                    Frame::Eof => {
                        debug!("client closed the connection");
                        return Ok(());
                    }
                };
                conn.write_all(&reply.out).await?;
                conn.flush().await?;
                next = reply.next;
            }
            Next::More => {
                let reply = session.resume().await;
                conn.write_all(&reply.out).await?;
                conn.flush().await?;
                next = reply.next;
            }
            Next::Sasl => {
                let line = match conn.read_line(cfg.max_line).await? {
                    Line::Complete(l) => l,
                    Line::TooLong => b"*\r\n".to_vec(),
                    Line::Eof => return Ok(()),
                };
                let reply = session.sasl_line(&line).await;
                conn.write_all(&reply.out).await?;
                conn.flush().await?;
                next = reply.next;
            }
            Next::Idle => {
                let input = {
                    let events = session.events();
                    tokio::select! {
                        l = conn.read_line(cfg.max_line) => IdleInput::Line(l),
                        e = async {
                            match events {
                                Some(rx) => rx.recv().await,
                                None => std::future::pending().await,
                            }
                        } => IdleInput::Event(e),
                        _ = shutdown.changed() => IdleInput::Shutdown,
                    }
                };
                match input {
                    IdleInput::Shutdown => {
                        conn.write_all(&session.bye("Server shutting down")).await?;
                        conn.flush().await?;
                        return Ok(());
                    }
                    IdleInput::Event(e) => {
                        session.note_event(e);
                        let out = session.idle_wake().await;
                        if !out.is_empty() {
                            conn.write_all(&out).await?;
                            conn.flush().await?;
                        }
                        if session.is_closed() {
                            return Ok(());
                        }
                    }
                    IdleInput::Line(Err(e)) if e.kind() == io::ErrorKind::TimedOut => {
                        conn.write_all(&session.bye("Autologout; idle for too long"))
                            .await?;
                        conn.flush().await?;
                        return Ok(());
                    }
                    IdleInput::Line(Err(e)) => return Err(e),
                    IdleInput::Line(Ok(Line::Eof)) => return Ok(()),
                    IdleInput::Line(Ok(Line::TooLong)) => {
                        let reply = session.idle_line(b"").await;
                        conn.write_all(&reply.out).await?;
                        conn.flush().await?;
                        next = reply.next;
                    }
                    IdleInput::Line(Ok(Line::Complete(l))) => {
                        let reply = session.idle_line(&l).await;
                        conn.write_all(&reply.out).await?;
                        conn.flush().await?;
                        next = reply.next;
                    }
                }
            }
        }
    }
}
