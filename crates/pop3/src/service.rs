//! `Pop3Service`: the thin async loop that owns a `wharf_net::Conn` and drives a `Session`:
//! frames input lines (255-octet limit), hands each `Input` to `Session::handle`, writes the
//! `Output` (answers to pipelined commands in one write; RETR/TOP bodies streamed from their
//! reader chunk by chunk, each chunk written before the next is read), runs STLS, ticks the
//! maildrop lock, and ends sessions on idle timeout or server shutdown without entering UPDATE.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;
use wharf_directory::Directory;
use wharf_net::{Conn, Handler, Line, async_trait};

use crate::adapters::StoreMaildrop;
use crate::backend::{Authenticator, Maildrop};
use crate::config::Pop3Config;
use crate::session::{ConnInfo, Input, Next, Session, Shared, Step};
use crate::syntax::{Output, Piece};
use wharf_directory::DirectoryAuth;

/// Octets gathered before a write while streaming a message (a chunk read from the message may
/// add up to `2 * transfer::READ_CHUNK` more).
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
        write_out(conn, session.greeting().output).await?;
        let mut shutdown = conn.shutdown_signal();
        let idle = Duration::from_secs(self.cfg.idle_timeout_secs.max(1));
        let refresh = Duration::from_secs((self.cfg.lock_ttl_secs / 3).max(1));
        let mut ticker = tokio::time::interval(refresh);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_input = Instant::now();
        // Answers to pipelined commands wait here until the client's input is drained.
        let mut pending = Output::new();
        loop {
            let input_line;
            let input = if *shutdown.borrow() {
                Input::Shutdown
            } else {
                let max = session.max_line();
                tokio::select! {
                    line = conn.read_line(max) => match line {
                        Ok(Line::Complete(l)) => {
                            last_input = Instant::now();
                            input_line = l;
                            Input::Line(&input_line)
                        }
                        Ok(Line::TooLong) => {
                            last_input = Instant::now();
                            Input::LineTooLong
                        }
                        Ok(Line::Eof) => return Ok(()),
                        Err(e) if e.kind() == io::ErrorKind::TimedOut => Input::Timeout,
                        Err(e) => return Err(e),
                    },
                    _ = shutdown.changed() => continue,
                    // Only while the lock is held: keep it alive, and apply the idle timeout
                    // here because re-entering read_line restarts the connection's own timer.
                    _ = ticker.tick(), if session.locked_account().is_some() => {
                        if last_input.elapsed() >= idle { Input::Timeout } else { Input::Tick }
                    }
                }
            };
            let step = session.handle(input).await;
            if session.locked_account().is_some() && !conn.is_authenticated() {
                conn.set_authenticated();
            }
            if !self.act(conn, session, step, &mut pending).await? {
                return Ok(());
            }
        }
    }

    /// Writes (or holds back) a step's output and does what it says next; `false` to close.
    async fn act(
        &self,
        conn: &mut Conn,
        session: &mut Session,
        step: Step,
        pending: &mut Output,
    ) -> io::Result<bool> {
        pending.pieces.extend(step.output.pieces);
        match step.next {
            Next::ReadLine => {
                // PIPELINING: answer everything already received, then write once. A message
                // goes out at once, so that a session never holds more than one message reader.
                if !conn.buffer().contains(&b'\n')
                    || pending.has_message()
                    || pending.text_len() > MAX_PENDING
                {
                    write_out(conn, std::mem::take(pending)).await?;
                }
                Ok(true)
            }
            Next::StartTls => {
                write_out(conn, std::mem::take(pending)).await?;
                conn.start_tls().await?;
                let step = session.handle(Input::TlsStarted).await;
                pending.pieces.extend(step.output.pieces);
                Ok(step.next != Next::Close)
            }
            Next::Close => {
                write_out(conn, std::mem::take(pending)).await?;
                Ok(false)
            }
        }
    }
}

/// Writes the output, streaming message bodies chunk by chunk: a chunk is written (waiting for
/// the client to take it) before the next is read, so memory stays bounded however large the
/// message and however slow the client.
async fn write_out(conn: &mut Conn, out: Output) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::new();
    for piece in out.pieces {
        match piece {
            Piece::Text(t) => {
                buf.extend_from_slice(&t);
                if buf.len() >= CHUNK {
                    conn.write_all(&buf).await?;
                    buf.clear();
                }
            }
            Piece::Message(mut message) => loop {
                let done = message.next_chunk(&mut buf).await?;
                if buf.len() >= CHUNK || done {
                    conn.write_all(&buf).await?;
                    buf.clear();
                }
                if done {
                    break;
                }
            },
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
