//! The thin async loop that owns one `wharf_net::Conn`: greeting (with early-talker check), reading
//! command lines / DATA / BDAT chunks into the session, writing replies (batched while pipelined
//! input is pending), STARTTLS upgrade, idle timeout and graceful shutdown.

use std::sync::Arc;

use async_trait::async_trait;
use wharf_directory::Directory;
use wharf_net::{Conn, Handler, Line};

use crate::SmtpRole;
use crate::adapters::directory_backend;
use crate::backend::{ArrivalCheck, Backend, LocalDelivery, RemoteHandoff};
use crate::config::SmtpConfig;
use crate::limiter::{IpLimiter, Refusal};
use crate::session::{ConnInfo, Input, Next, Output, Session, Step};
use crate::spool::Spool;

pub struct SmtpService {
    /// Replaced by `set_config` (a configuration reload); each session keeps the one it
    /// started with.
    cfg: wharf_net::Swappable<SmtpConfig>,
    hostname: Arc<str>,
    role: SmtpRole,
    limiter: Arc<IpLimiter>,
    backend: Backend,
    spool: Arc<Spool>,
}

impl SmtpService {
    /// The service over the real directory and store.
    pub fn new(
        cfg: SmtpConfig,
        hostname: String,
        directory: Directory,
        role: SmtpRole,
    ) -> SmtpService {
        SmtpService::with_backend(cfg, hostname, role, directory_backend(directory, None))
    }

    /// The service over any implementation of the session's ports.
    pub fn with_backend(
        cfg: SmtpConfig,
        hostname: String,
        role: SmtpRole,
        backend: Backend,
    ) -> SmtpService {
        let limiter = IpLimiter::new(cfg.max_connections_per_ip, cfg.max_connection_rate_per_ip);
        let spool = Spool::shared(
            cfg.spool_dir(),
            cfg.spool_threshold,
            cfg.memory_budget,
            cfg.max_large_deliveries,
        );
        SmtpService {
            cfg: wharf_net::Swappable::new(Arc::new(cfg)),
            hostname: hostname.into(),
            role,
            limiter,
            backend,
            spool,
        }
    }

    /// Remote recipients (submission) and external alias targets (both roles) are accepted and
    /// handed to `handoff`; without one they get `451 4.3.0`.
    pub fn with_handoff(mut self, handoff: Arc<dyn RemoteHandoff>) -> SmtpService {
        self.backend.handoff = Some(handoff);
        self
    }

    /// Local recipients' copies go through `delivery` (the binary's Sieve filtering over the
    /// store) instead of straight into the store.
    pub fn with_local_delivery(mut self, delivery: Arc<dyn LocalDelivery>) -> SmtpService {
        self.backend.delivery = delivery;
        self
    }

    /// Bounces to SRS addresses made with `srs` (mail a Sieve `redirect` forwarded) go back to
    /// the original sender.
    pub fn with_srs(mut self, srs: crate::srs::Srs) -> SmtpService {
        let inner = self.backend.recipients.clone();
        self.backend.recipients = Arc::new(crate::adapters::SrsRecipients { inner, srs });
        self
    }

    /// Port-25 mail goes through `check` (SPF, DKIM, DMARC, ARC) before delivery.
    pub fn with_arrival_check(mut self, check: Arc<dyn ArrivalCheck>) -> SmtpService {
        self.backend.arrival = Some(check);
        self
    }

    /// The settings of sessions starting from now on (a configuration reload): message size,
    /// recipients, timeouts, line lengths and the other per-session limits. The per-IP
    /// connection limiter and the spool (`max_connections_per_ip`, `max_connection_rate_per_ip`,
    /// `spool_dir`, `spool_threshold`, `memory_budget`, `max_large_deliveries`) are shared by
    /// every session and keep the values the service was built with.
    pub fn set_config(&self, cfg: SmtpConfig) {
        self.cfg.set(Arc::new(cfg));
    }

    /// The settings a session starting now gets.
    pub fn config(&self) -> Arc<SmtpConfig> {
        self.cfg.get()
    }

    pub fn role(&self) -> SmtpRole {
        self.role
    }

    /// The service's memory budget and spool directory (tests, metrics).
    pub fn spool(&self) -> &Arc<Spool> {
        &self.spool
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
        let cfg = self.config();
        conn.set_idle_timeout(cfg.idle_timeout());
        let info = ConnInfo {
            peer,
            tls: conn
                .tls_info()
                .map(|t| (t.version.clone(), t.cipher.clone())),
            starttls_available: conn.starttls_available(),
        };
        let mut session = Session::new(
            Arc::clone(&cfg),
            Arc::clone(&self.hostname),
            self.role,
            self.backend.clone(),
            Arc::clone(&self.spool),
            id,
            info,
        );
        let result = {
            use tracing::Instrument;
            run(&cfg, self.role, &mut session, &mut conn)
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
struct Pending(Vec<u8>);

impl Pending {
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
        output: &Output,
        force: bool,
    ) -> std::io::Result<()> {
        output.write_to(&mut self.0);
        if force || !conn.buffer().contains(&b'\n') {
            self.send(conn).await?;
        }
        Ok(())
    }

    /// A last step, then the session ends.
    async fn last(&mut self, conn: &mut Conn, step: Step) -> std::io::Result<()> {
        step.output.write_to(&mut self.0);
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
                let step = session.handle(Input::EarlyTalker).await;
                Pending::default().last(conn, step).await?;
                return Ok(());
            }
        }
    }
    let mut out = Pending::default();
    let greeting = session.handle(Input::Connected).await;
    out.last(conn, greeting).await?;
    let mut shutdown = conn.shutdown_signal();
    let mut next = Next::Command;
    loop {
        let step = match next {
            Next::Close => {
                out.send(conn).await?;
                return Ok(());
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
                session.handle(Input::TlsStarted { version, cipher }).await
            }
            Next::Command | Next::AuthResponse => {
                let max = session.max_line();
                let line = if *shutdown.borrow() && !conn.buffer().contains(&b'\n') {
                    let step = session.handle(Input::Shutdown).await;
                    out.last(conn, step).await?;
                    return Ok(());
                } else if conn.buffer().contains(&b'\n') {
                    conn.read_line(max).await
                } else {
                    tokio::select! {
                        l = conn.read_line(max) => l,
                        _ = shutdown.changed() => {
                            tracing::info!("server shutting down, closing idle session");
                            let step = session.handle(Input::Shutdown).await;
                            out.last(conn, step).await?;
                            return Ok(());
                        }
                    }
                };
                match line {
                    Ok(Line::Complete(l)) => session.handle(Input::Line(&l)).await,
                    Ok(Line::TooLong) => session.handle(Input::LineTooLong).await,
                    Ok(Line::Eof) => {
                        tracing::info!("client closed the connection");
                        session.handle(Input::Closed).await;
                        return Ok(());
                    }
                    Err(e) if is_timeout(&e) => {
                        tracing::info!("idle timeout");
                        let step = session.handle(Input::Timeout).await;
                        out.last(conn, step).await?;
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                }
            }
            Next::Data | Next::Chunk { .. } => {
                // Message bytes go straight from the connection buffer into the session.
                if conn.buffer().is_empty() {
                    out.send(conn).await?;
                    match conn.fill().await {
                        Ok(0) => {
                            tracing::info!("client closed the connection during message data");
                            session.handle(Input::Closed).await;
                            return Ok(());
                        }
                        Ok(_) => {}
                        Err(e) if is_timeout(&e) => {
                            tracing::info!("idle timeout during message data");
                            let step = session.handle(Input::Timeout).await;
                            out.last(conn, step).await?;
                            return Ok(());
                        }
                        Err(e) => return Err(e),
                    }
                }
                let n = match next {
                    Next::Chunk { remaining } => {
                        (conn.buffer().len() as u64).min(remaining) as usize
                    }
                    _ => conn.buffer().len(),
                };
                let step = session.handle(Input::Data(&conn.buffer()[..n])).await;
                conn.consume(step.consumed);
                step
            }
        };
        next = step.next;
        if !conn.is_authenticated() && session.has_standing() {
            conn.set_authenticated();
        }
        // Message bytes are held to the minimum rate instead of the pre-authentication
        // deadline (whose clock stops meanwhile).
        if matches!(next, Next::Data | Next::Chunk { .. }) {
            conn.begin_bulk_input();
        } else {
            conn.end_bulk_input();
        }
        let force = matches!(next, Next::Close | Next::StartTls | Next::AuthResponse);
        out.reply(conn, &step.output, force).await?;
    }
}
