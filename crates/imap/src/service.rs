//! The connection loop: reads what the session's `Next` asks for off a `wharf_net::Conn` (a
//! line, literal octets in bounded chunks, octets to discard, a line or a store event while
//! idling), hands it to `Session::handle`, and writes the `Output` — response bytes, and message
//! bodies copied from their readers chunk by chunk, so a client that does not read holds back
//! the copy (backpressure) instead of growing memory. Also runs STARTTLS and the timeouts.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tracing::{debug, info};
use wharf_directory::Directory;
use wharf_net::{Conn, Handler, Line, async_trait};

use crate::backend::Backend;
use crate::config::ImapConfig;
use crate::output::{BodyPiece, Output, Piece};
use crate::session::{ConnInfo, Input, Next, Session, Shared, Step};

/// Largest piece of a literal read at once, and of a message body written at once.
const CHUNK: usize = 64 * 1024;

/// The IMAP service plugged into the listeners on 143 (STARTTLS) and 993 (implicit TLS).
pub struct ImapService {
    cfg: Arc<ImapConfig>,
    backend: Backend,
    shared: Arc<Shared>,
    hostname: String,
    next_id: AtomicU64,
}

impl ImapService {
    pub fn new(cfg: ImapConfig, hostname: String, directory: Directory) -> Self {
        Self::with_backend(cfg, hostname, crate::adapters::backend(directory))
    }

    pub fn with_backend(cfg: ImapConfig, hostname: String, backend: Backend) -> Self {
        let shared = Shared::new(&cfg);
        ImapService {
            cfg: Arc::new(cfg),
            backend,
            shared,
            hostname,
            next_id: AtomicU64::new(1),
        }
    }

    /// State shared by this service's sessions (the APPEND memory budget).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
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
        let session = Session::new(
            self.cfg.clone(),
            self.backend.clone(),
            self.shared.clone(),
            info,
            id,
        );
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

fn timed_out(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::TimedOut
}

async fn run(mut conn: Conn, mut session: Session, cfg: &ImapConfig) -> io::Result<()> {
    let mut shutdown = conn.shutdown_signal();
    // The idle timeout counts from the client's last input: a store event written meanwhile
    // (IDLE, NOTIFY) starts a new read, which must not start the timeout again.
    let mut full_idle = Duration::from_secs(cfg.idle_timeout_unauth_secs);
    let mut last_input = tokio::time::Instant::now();
    conn.set_idle_timeout(full_idle);
    write_output(&mut conn, session.greeting()).await?;
    let mut next = Next::Line;
    let mut was_authed = false;
    loop {
        if !was_authed && session.is_authenticated() {
            was_authed = true;
            conn.set_authenticated();
            full_idle = Duration::from_secs(cfg.idle_timeout_secs);
            conn.set_idle_timeout(full_idle);
        }
        let idle_left = full_idle
            .saturating_sub(last_input.elapsed())
            .max(Duration::from_millis(1));
        let step: Step = match next {
            Next::Close => {
                conn.flush().await?;
                return Ok(());
            }
            Next::StartTls => {
                conn.flush().await?;
                conn.start_tls().await?;
                session.handle(Input::TlsStarted).await
            }
            Next::Compress => {
                conn.start_deflate().await?;
                Step {
                    output: Output::new(),
                    next: Next::Line,
                }
            }
            Next::More => session.handle(Input::Resume).await,
            Next::Line => {
                // Under NOTIFY, store events are announced between commands too (RFC 5465).
                let push = session.wants_push();
                conn.set_idle_timeout(if push { idle_left } else { full_idle });
                let line = tokio::select! {
                    // A command already received goes first: an event must not be announced
                    // (an expunge renumbering messages) ahead of a command sent before it.
                    biased;
                    l = conn.read_line(cfg.max_line) => Some(Ok(l)),
                    e = session.next_event(), if push => Some(Err(e)),
                    _ = shutdown.changed() => None,
                };
                let line = match line {
                    Some(Ok(l)) => {
                        last_input = tokio::time::Instant::now();
                        conn.set_idle_timeout(full_idle);
                        Some(l)
                    }
                    Some(Err(e)) => {
                        let step = session.handle(Input::Event(e)).await;
                        write_output(&mut conn, step.output).await?;
                        next = step.next;
                        continue;
                    }
                    None => None,
                };
                match line {
                    None => session.handle(Input::Shutdown).await,
                    Some(Ok(Line::Complete(l))) => session.handle(Input::Line(&l)).await,
                    Some(Ok(Line::TooLong)) => session.handle(Input::LineTooLong).await,
                    Some(Ok(Line::Eof)) => {
                        debug!("client closed the connection");
                        return Ok(());
                    }
                    Some(Err(e)) if timed_out(&e) => session.handle(Input::Timeout).await,
                    Some(Err(e)) => return Err(e),
                }
            }
            Next::Literal { len } => {
                // Not raced against shutdown: `read_exact_bytes` is not cancel-safe.
                let n = usize::try_from(len.min(CHUNK as u64)).unwrap_or(CHUNK);
                match conn.read_exact_bytes(n).await {
                    Ok(Some(data)) => session.handle(Input::Data(&data)).await,
                    Ok(None) => return Ok(()),
                    Err(e) if timed_out(&e) => session.handle(Input::Timeout).await,
                    Err(e) => return Err(e),
                }
            }
            Next::Discard { len } => {
                let Ok(n) = usize::try_from(len) else {
                    return Ok(());
                };
                match conn.discard_exact(n).await {
                    Ok(true) => {
                        next = Next::Line;
                        continue;
                    }
                    Ok(false) => return Ok(()),
                    Err(e) if timed_out(&e) => session.handle(Input::Timeout).await,
                    Err(e) => return Err(e),
                }
            }
            Next::Idle => {
                enum Woke {
                    Line(io::Result<Line>),
                    Event(
                        Result<wharf_store::MailboxEvent, tokio::sync::broadcast::error::RecvError>,
                    ),
                    Shutdown,
                }
                conn.set_idle_timeout(idle_left);
                let woke = tokio::select! {
                    l = conn.read_line(cfg.max_line) => Woke::Line(l),
                    e = session.next_event() => Woke::Event(e),
                    _ = shutdown.changed() => Woke::Shutdown,
                };
                if matches!(woke, Woke::Line(_)) {
                    last_input = tokio::time::Instant::now();
                    conn.set_idle_timeout(full_idle);
                }
                match woke {
                    Woke::Shutdown => session.handle(Input::Shutdown).await,
                    Woke::Event(e) => session.handle(Input::Event(e)).await,
                    Woke::Line(Ok(Line::Complete(l))) => session.handle(Input::Line(&l)).await,
                    Woke::Line(Ok(Line::TooLong)) => session.handle(Input::LineTooLong).await,
                    Woke::Line(Ok(Line::Eof)) => return Ok(()),
                    Woke::Line(Err(e)) if timed_out(&e) => session.handle(Input::Timeout).await,
                    Woke::Line(Err(e)) => return Err(e),
                }
            }
        };
        if matches!(
            next,
            Next::Literal { .. } | Next::Discard { .. } | Next::More
        ) {
            last_input = tokio::time::Instant::now();
        }
        write_output(&mut conn, step.output).await?;
        next = step.next;
        // Literals of a logged-in user (APPEND) are held to the minimum rate instead of the
        // pre-authentication deadline; before login a literal counts against that deadline.
        match next {
            Next::Literal { .. } | Next::Discard { .. } if session.is_authenticated() => {
                conn.begin_bulk_input()
            }
            Next::Literal { .. } | Next::Discard { .. } => {}
            _ => conn.end_bulk_input(),
        }
    }
}

/// Writes one step's output: bytes as they are, bodies copied from their readers in chunks of
/// at most `CHUNK` (each write waits for the socket, so memory stays at one chunk).
async fn write_output(conn: &mut Conn, output: Output) -> io::Result<()> {
    for piece in output.pieces {
        match piece {
            Piece::Bytes(b) => conn.write_all(&b).await?,
            Piece::Body(body) => copy_body(conn, body).await?,
        }
    }
    conn.flush().await
}

async fn copy_body(conn: &mut Conn, mut body: BodyPiece) -> io::Result<()> {
    if body.skip > 0 {
        let skipped = tokio::io::copy(
            &mut (&mut body.reader).take(body.skip),
            &mut tokio::io::sink(),
        )
        .await?;
        if skipped != body.skip {
            return Err(short_body());
        }
    }
    let mut chunk = vec![0u8; usize::try_from(body.len).unwrap_or(CHUNK).min(CHUNK)];
    let mut left = body.len;
    while left > 0 {
        let want = usize::try_from(left).unwrap_or(CHUNK).min(chunk.len());
        let n = body.reader.read(&mut chunk[..want]).await?;
        if n == 0 {
            // The literal length is on the wire already: the connection cannot recover.
            return Err(short_body());
        }
        // Streamed bodies go out as plain literals: no NUL (see `response::literal`).
        crate::syntax::response::replace_nul(&mut chunk[..n]);
        conn.write_all(&chunk[..n]).await?;
        left -= n as u64;
    }
    Ok(())
}

fn short_body() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "message body shorter than announced",
    )
}
