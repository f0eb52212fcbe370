//! `Pop3Service`: the thin async loop that owns a `wharf_net::Conn` and drives a `Session`:
//! reads lines (255-octet limit), answers pipelined commands with one write, streams RETR
//! bodies in chunks, runs STLS, refreshes the maildrop lock, and ends sessions on idle timeout
//! or server shutdown without entering UPDATE.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;
use wharf_directory::Directory;
use wharf_net::{Conn, Handler, Line, async_trait};

use crate::adapters::{DirectoryAuth, StoreMaildrop};
use crate::backend::{Authenticator, Maildrop};
use crate::config::Pop3Config;
use crate::session::{ConnInfo, Control, Session, Shared};
use crate::syntax::{Output, Piece};
use crate::transfer::Transfer;

/// Octets handed to the socket per write while streaming a message.
const CHUNK: usize = 64 * 1024;
/// Pipelined answers are held back at most this much before being written.
const MAX_PENDING: usize = 1024 * 1024;

pub struct Pop3Service {
    cfg: Arc<Pop3Config>,
    hostname: String,
    auth: Arc<dyn Authenticator>,
    maildrop: Arc<dyn Maildrop>,
    shared: Arc<Shared>,
}

impl Pop3Service {
    pub fn new(cfg: Pop3Config, hostname: String, directory: Directory) -> Self {
        let maildrop = Arc::new(StoreMaildrop::new(directory.store().clone()));
        Pop3Service {
            cfg: Arc::new(cfg),
            hostname,
            auth: Arc::new(DirectoryAuth::new(directory)),
            maildrop,
            shared: Arc::new(Shared::new()),
        }
    }

    async fn run(&self, conn: &mut Conn) -> io::Result<()> {
        conn.set_idle_timeout(Duration::from_secs(self.cfg.idle_timeout_secs.max(1)));
        let info = ConnInfo {
            peer: conn.peer().ip(),
            tls: conn.is_tls(),
            starttls_available: conn.starttls_available(),
        };
        let mut session = Session::new(
            self.cfg.clone(),
            self.hostname.clone(),
            info,
            self.auth.clone(),
            self.maildrop.clone(),
            self.shared.clone(),
        );
        let result = self.drive(conn, &mut session).await;
        // Whatever happened, a session that did not QUIT deletes nothing and frees the lock.
        session.end().await;
        result
    }

    async fn drive(&self, conn: &mut Conn, session: &mut Session) -> io::Result<()> {
        let mut out = Output::new();
        session.greeting(&mut out);
        write_out(conn, &mut out).await?;
        let mut shutdown = conn.shutdown_signal();
        let idle = Duration::from_secs(self.cfg.idle_timeout_secs.max(1));
        let refresh = Duration::from_secs((self.cfg.lock_ttl_secs / 3).max(1));
        let mut ticker = tokio::time::interval(refresh);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_input = Instant::now();
        loop {
            if *shutdown.borrow() {
                out.err(
                    Some(crate::syntax::RespCode::SysTemp),
                    "server shutting down",
                );
                write_out(conn, &mut out).await?;
                return Ok(());
            }
            let max = session.max_line();
            let line = tokio::select! {
                line = conn.read_line(max) => line,
                _ = shutdown.changed() => continue,
                // Only while the lock is held: keep it alive, and apply the idle timeout here
                // because re-entering read_line restarts the connection's own timer.
                _ = ticker.tick(), if session.locked_account().is_some() => {
                    if last_input.elapsed() >= idle {
                        out.err(None, "autologout: idle for too long");
                        write_out(conn, &mut out).await?;
                        return Ok(());
                    }
                    session.refresh_lock().await;
                    continue;
                }
            };
            let ctrl = match line {
                Ok(Line::Complete(l)) => {
                    last_input = Instant::now();
                    session.handle_line(&l, &mut out).await
                }
                Ok(Line::TooLong) => {
                    last_input = Instant::now();
                    session.line_too_long(&mut out)
                }
                Ok(Line::Eof) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    out.err(None, "autologout: idle for too long");
                    let _ = write_out(conn, &mut out).await;
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            match ctrl {
                Control::Continue => {
                    // PIPELINING: answer everything already received, then write once.
                    if !conn.buffer().contains(&b'\n') || pending(&out) > MAX_PENDING {
                        write_out(conn, &mut out).await?;
                    }
                }
                Control::StartTls => {
                    write_out(conn, &mut out).await?;
                    conn.start_tls().await?;
                    session.tls_started();
                }
                Control::Close => {
                    write_out(conn, &mut out).await?;
                    return Ok(());
                }
            }
        }
    }
}

fn pending(out: &Output) -> usize {
    out.pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) => t.len(),
            Piece::Message { raw, .. } => raw.len(),
        })
        .sum()
}

/// Writes the accumulated answers, streaming message bodies chunk by chunk.
async fn write_out(conn: &mut Conn, out: &mut Output) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::new();
    for piece in out.pieces.drain(..) {
        match piece {
            Piece::Text(t) => {
                buf.extend_from_slice(&t);
                if buf.len() >= CHUNK {
                    conn.write_all(&buf).await?;
                    buf.clear();
                }
            }
            Piece::Message { raw, top } => {
                let mut transfer = match top {
                    Some(n) => Transfer::top(&raw, n),
                    None => Transfer::retr(&raw),
                };
                loop {
                    let done = transfer.fill(&mut buf, CHUNK);
                    if buf.len() >= CHUNK || done {
                        conn.write_all(&buf).await?;
                        buf.clear();
                    }
                    if done {
                        break;
                    }
                }
            }
        }
    }
    if !buf.is_empty() {
        conn.write_all(&buf).await?;
    }
    conn.flush().await
}

#[async_trait]
impl Handler for Pop3Service {
    async fn handle(&self, mut conn: Conn) {
        let peer = conn.peer();
        // Every log line of the session carries its id and the client address.
        let span = tracing::info_span!("pop3", session = conn.session_id(), %peer, listener = conn.listener_name());
        async {
            if let Err(e) = self.run(&mut conn).await {
                tracing::debug!(error = %e, "pop3: connection ended with an error");
            }
            let _ = conn.close().await;
        }
        .instrument(span)
        .await;
    }

    fn protocol(&self) -> &'static str {
        "pop3"
    }

    fn too_busy(&self) -> &'static [u8] {
        b"-ERR [SYS/TEMP] too many connections, try again later\r\n"
    }
}
