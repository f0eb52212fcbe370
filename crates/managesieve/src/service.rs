//! `ManageSieveService`: the thin async loop that owns a `wharf_net::Conn` and drives a
//! `Session`: reads what the session's `Next` asks for (a line within the line limit, a literal's
//! octets, octets of an oversized literal to drop), hands each `Input` to `Session::handle`,
//! writes the `Output` (answers to pipelined commands in one write), runs STARTTLS, and ends
//! sessions on idle timeout or server shutdown with BYE.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;
use wharf_directory::{Directory, DirectoryAuth};
use wharf_net::{Conn, Handler, Line, async_trait};

use crate::adapters::StoreScripts;
use crate::backend::{Authenticator, ScriptChecker, ScriptStore};
use crate::config::ManageSieveConfig;
use crate::session::{ConnInfo, Input, Next, Session, Step};
use crate::syntax::Output;

/// Pipelined answers are held back at most this much before being written.
const MAX_PENDING: usize = 256 * 1024;

pub struct ManageSieveService {
    cfg: Arc<ManageSieveConfig>,
    hostname: String,
    auth: Arc<dyn Authenticator>,
    scripts: Arc<dyn ScriptStore>,
    checker: Arc<dyn ScriptChecker>,
}

impl ManageSieveService {
    /// The service of the real system: logins through the directory, scripts in its store,
    /// compiled by `checker`.
    pub fn new(
        cfg: ManageSieveConfig,
        hostname: String,
        directory: Directory,
        checker: Arc<dyn ScriptChecker>,
    ) -> Self {
        let scripts = Arc::new(StoreScripts::new(
            directory.store().clone(),
            cfg.max_scripts,
            cfg.max_script_size,
        ));
        Self::with_ports(
            cfg,
            hostname,
            Arc::new(DirectoryAuth::new(directory)),
            scripts,
            checker,
        )
    }

    /// The service over any implementation of its ports (tests).
    pub fn with_ports(
        cfg: ManageSieveConfig,
        hostname: String,
        auth: Arc<dyn Authenticator>,
        scripts: Arc<dyn ScriptStore>,
        checker: Arc<dyn ScriptChecker>,
    ) -> Self {
        ManageSieveService {
            cfg: Arc::new(cfg),
            hostname,
            auth,
            scripts,
            checker,
        }
    }

    async fn run(&self, conn: &mut Conn) -> io::Result<()> {
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
            self.scripts.clone(),
            self.checker.clone(),
        );
        self.drive(conn, &mut session).await
    }

    fn idle_timeout(&self, session: &Session) -> Duration {
        Duration::from_secs(if session.is_authenticated() {
            self.cfg.idle_timeout_secs.max(1)
        } else {
            self.cfg.idle_timeout_unauth_secs.max(1)
        })
    }

    async fn drive(&self, conn: &mut Conn, session: &mut Session) -> io::Result<()> {
        conn.set_idle_timeout(self.idle_timeout(session));
        write_out(conn, session.greeting().output).await?;
        let mut shutdown = conn.shutdown_signal();
        let mut authenticated = false;
        // Answers to pipelined commands wait here until the client's input is drained.
        let mut pending = Output::new();
        let mut next = Next::ReadLine;
        loop {
            let step = match next {
                Next::ReadLine => {
                    if *shutdown.borrow() {
                        session.handle(Input::Shutdown).await
                    } else {
                        let max = session.max_line();
                        tokio::select! {
                            line = conn.read_line(max) => match line {
                                Ok(Line::Complete(l)) => session.handle(Input::Line(&l)).await,
                                Ok(Line::TooLong) => session.handle(Input::LineTooLong).await,
                                Ok(Line::Eof) => {
                                    tracing::debug!("managesieve: client closed the connection");
                                    write_out(conn, std::mem::take(&mut pending)).await?;
                                    return Ok(());
                                }
                                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                                    session.handle(Input::Timeout).await
                                }
                                Err(e) => return Err(e),
                            },
                            _ = shutdown.changed() => continue,
                        }
                    }
                }
                // Not raced against shutdown: `read_exact_bytes` is not cancel-safe. The length
                // was bounded by the session (script or SASL size).
                Next::ReadLiteral(n) => {
                    self.bulk(conn, session, true);
                    let r = conn.read_exact_bytes(n).await;
                    self.bulk(conn, session, false);
                    match r {
                        Ok(Some(data)) => session.handle(Input::Literal(&data)).await,
                        Ok(None) => return Ok(()),
                        Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                            session.handle(Input::Timeout).await
                        }
                        Err(e) => return Err(e),
                    }
                }
                Next::DiscardLiteral(n) => {
                    let Ok(n) = usize::try_from(n) else {
                        return Ok(());
                    };
                    self.bulk(conn, session, true);
                    let r = conn.discard_exact(n).await;
                    self.bulk(conn, session, false);
                    match r {
                        Ok(true) => {
                            next = Next::ReadLine;
                            continue;
                        }
                        Ok(false) => return Ok(()),
                        Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                            session.handle(Input::Timeout).await
                        }
                        Err(e) => return Err(e),
                    }
                }
                Next::StartTls => {
                    write_out(conn, std::mem::take(&mut pending)).await?;
                    conn.start_tls().await?;
                    session.handle(Input::TlsStarted).await
                }
                Next::Close => {
                    write_out(conn, std::mem::take(&mut pending)).await?;
                    return Ok(());
                }
            };
            if session.is_authenticated() != authenticated {
                authenticated = session.is_authenticated();
                if authenticated && !conn.is_authenticated() {
                    conn.set_authenticated();
                }
                conn.set_idle_timeout(self.idle_timeout(session));
            }
            let Step { output, next: n } = step;
            pending.append(output);
            next = n;
            // Pipelining: answer everything already received, then write once.
            let more_input = matches!(next, Next::ReadLine) && conn.buffer().contains(&b'\n');
            if !more_input || pending.bytes.len() > MAX_PENDING {
                write_out(conn, std::mem::take(&mut pending)).await?;
            }
        }
    }

    /// Around a literal: once authenticated it is bulk input (held to the listener's minimum
    /// rate instead of the pre-authentication deadline); before login it counts against that
    /// deadline.
    fn bulk(&self, conn: &mut Conn, session: &Session, begin: bool) {
        if !begin {
            conn.end_bulk_input();
        } else if session.is_authenticated() {
            conn.begin_bulk_input();
        }
    }
}

async fn write_out(conn: &mut Conn, out: Output) -> io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    conn.write_all(&out.bytes).await?;
    conn.flush().await
}

#[async_trait]
impl Handler for ManageSieveService {
    async fn handle(&self, mut conn: Conn) {
        let peer = conn.peer();
        // Every log line of the session carries its id and the client address.
        let span = tracing::info_span!("managesieve", session = conn.session_id(), %peer, listener = conn.listener_name());
        async {
            tracing::debug!("managesieve: session start");
            if let Err(e) = self.run(&mut conn).await {
                tracing::debug!(error = %e, "managesieve: connection ended with an error");
            }
            let _ = conn.close().await;
        }
        .instrument(span)
        .await;
    }

    fn protocol(&self) -> &'static str {
        "managesieve"
    }

    fn too_busy(&self) -> &'static [u8] {
        b"BYE (TRYLATER) \"Too many connections, try again later\"\r\n"
    }
}
