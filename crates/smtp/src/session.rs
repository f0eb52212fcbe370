//! The SMTP session state machine (RFC 5321), free of sockets: the connection loop hands in what it
//! read (`Input`: a command line, message bytes, a timeout...) through the one entry point
//! `Session::handle`, and writes what the returned `Step` says, then reads what its `Next` asks
//! for. The session owns every receiver: SASL exchanges and the DATA/BDAT body (with its spool).
//! Its only I/O goes through the ports of `backend`. This module owns the state and the dispatch;
//! command behaviour lives in `commands/*`.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::SmtpRole;
use crate::backend::{Backend, Login};
use crate::commands::auth::SaslState;
use crate::commands::data::Body;
use crate::config::SmtpConfig;
use crate::spool::Spool;
use crate::syntax::command::{self, Command, MailParams};
use crate::syntax::reply::Reply;
use wharf_store::AccountId;
use wharf_store::queue::QueuedRecipient;

/// Longest SASL response line (RFC 4954 §4: at least 12288 octets).
pub const MAX_AUTH_LINE: usize = 12288 + 2;

/// What the connection loop hands to the session.
#[derive(Debug)]
pub enum Input<'a> {
    /// The connection is ready for the greeting.
    Connected,
    /// Port 25 with a greeting delay: the client talked before the greeting.
    EarlyTalker,
    /// One line (command or SASL response) with its line ending.
    Line(&'a [u8]),
    /// A line longer than `Session::max_line` arrived; the reader discarded it.
    LineTooLong,
    /// Message bytes while `Next::Data` or `Next::Chunk` is in progress (for a chunk, at most
    /// `remaining` of them). `Step::consumed` says how many the session took.
    Data(&'a [u8]),
    /// The STARTTLS handshake finished.
    TlsStarted { version: String, cipher: String },
    /// Nothing arrived within the idle timeout.
    Timeout,
    /// The server is shutting down.
    Shutdown,
    /// The client closed the connection (or it broke).
    Closed,
}

/// What to write: replies, each exactly one RFC 5321 reply.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Output {
    pub replies: Vec<Reply>,
}

impl Output {
    pub fn is_empty(&self) -> bool {
        self.replies.is_empty()
    }

    pub fn write_to(&self, out: &mut Vec<u8>) {
        for r in &self.replies {
            r.write_to(out);
        }
    }

    /// The reply codes, in order (tests, logs).
    pub fn codes(&self) -> Vec<u16> {
        self.replies.iter().map(|r| r.code).collect()
    }
}

/// What the connection loop does after writing `Step::output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Read a command line (at most `Session::max_line` octets).
    Command,
    /// Read one SASL response line (at most `Session::max_line` octets).
    AuthResponse,
    /// DATA content: hand every received byte in as `Input::Data`; the session finds the end.
    Data,
    /// A BDAT chunk: hand in the next `remaining` octets as `Input::Data`.
    Chunk { remaining: u64 },
    /// Flush, run the TLS handshake, then hand in `Input::TlsStarted`.
    StartTls,
    /// Flush, then close the connection.
    Close,
}

/// The session's answer to one `Input`.
#[derive(Debug)]
pub struct Step {
    pub output: Output,
    pub next: Next,
    /// Octets of `Input::Data` taken; the rest stays in the loop's buffer for the next read.
    pub consumed: usize,
}

impl Step {
    pub(crate) fn new(replies: Vec<Reply>, next: Next) -> Step {
        Step {
            output: Output { replies },
            next,
            consumed: 0,
        }
    }
    pub(crate) fn one(reply: Reply) -> Step {
        Step::new(vec![reply], Next::Command)
    }
    pub(crate) fn close(reply: Reply) -> Step {
        Step::new(vec![reply], Next::Close)
    }
}

/// Facts about the connection the session needs.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// (protocol version, cipher) once TLS is up.
    pub tls: Option<(String, String)>,
    pub starttls_available: bool,
}

pub(crate) struct Transaction {
    pub(crate) from: Option<String>,
    pub(crate) params: MailParams,
    /// Addresses as given, accepted so far.
    pub(crate) rcpts: Vec<String>,
    /// Local accounts to deliver to (deduplicated across recipients).
    pub(crate) accounts: Vec<AccountId>,
    /// Per entry of `accounts`, the first accepted address that led to it (Sieve's envelope
    /// "to").
    pub(crate) account_rcpts: Vec<String>,
    /// Recipients for the outbound queue (deduplicated by address).
    pub(crate) remote: Vec<QueuedRecipient>,
    pub(crate) body: Option<Body>,
    /// A BDAT chunk was accepted; DATA is no longer allowed.
    pub(crate) bdat: bool,
}

/// What incoming octets are, when they are not command lines.
pub(crate) enum Receiving {
    Nothing,
    Data,
    Chunk(Chunk),
}

pub(crate) struct Chunk {
    pub(crate) remaining: u64,
    pub(crate) last: bool,
    /// Some: the chunk is refused; its octets are thrown away and these replies (decided with the
    /// BDAT command) are written after them.
    pub(crate) held: Option<Vec<Reply>>,
}

pub struct Session {
    pub(crate) cfg: Arc<SmtpConfig>,
    pub(crate) hostname: Arc<str>,
    pub(crate) role: SmtpRole,
    pub(crate) backend: Backend,
    pub(crate) spool: Arc<Spool>,
    pub(crate) id: String,
    pub(crate) conn: ConnInfo,
    pub(crate) helo: Option<String>,
    pub(crate) esmtp: bool,
    pub(crate) login: Option<Login>,
    pub(crate) tx: Option<Transaction>,
    pub(crate) sasl: Option<SaslState>,
    pub(crate) receiving: Receiving,
    pub(crate) errors: u32,
    pub(crate) messages: u32,
    pub(crate) closing: bool,
}

impl Session {
    pub fn new(
        cfg: Arc<SmtpConfig>,
        hostname: Arc<str>,
        role: SmtpRole,
        backend: Backend,
        spool: Arc<Spool>,
        id: String,
        conn: ConnInfo,
    ) -> Session {
        Session {
            cfg,
            hostname,
            role,
            backend,
            spool,
            id,
            conn,
            helo: None,
            esmtp: false,
            login: None,
            tx: None,
            sasl: None,
            receiving: Receiving::Nothing,
            errors: 0,
            messages: 0,
            closing: false,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether the client has shown it is a real sender: logged in (submission), or had a
    /// message accepted (port 25, where nobody logs in). The connection guards stop treating
    /// such a session as a stranger (no pre-authentication deadline, never shed first).
    pub fn has_standing(&self) -> bool {
        self.login.is_some() || self.messages > 0
    }

    /// Longest line the session accepts next (SASL responses may exceed the command limit).
    pub fn max_line(&self) -> usize {
        if self.sasl.is_some() {
            MAX_AUTH_LINE
        } else {
            self.cfg.max_command_line
        }
    }

    /// The one entry point: what the loop read, in; what to write and read next, out.
    pub async fn handle(&mut self, input: Input<'_>) -> Step {
        match input {
            Input::Connected => Step::one(Reply::plain(
                220,
                vec![format!("{} ESMTP Wharf", self.hostname)],
            )),
            Input::EarlyTalker => Step::close(Reply::new(
                554,
                "5.5.1",
                format!(
                    "{} Protocol error: client talked before the greeting",
                    self.hostname
                ),
            )),
            Input::Line(line) if self.sasl.is_some() => self.auth_response(line).await,
            Input::Line(line) => self.command(line).await,
            Input::LineTooLong => self.line_too_long(),
            Input::Data(bytes) => match self.receiving {
                Receiving::Data => self.data_bytes(bytes).await,
                Receiving::Chunk(_) => self.chunk_bytes(bytes).await,
                // The loop only sends data when asked; nothing to take.
                Receiving::Nothing => Step::new(Vec::new(), Next::Command),
            },
            Input::TlsStarted { version, cipher } => {
                self.tls_started(version, cipher);
                Step::new(Vec::new(), Next::Command)
            }
            Input::Timeout => {
                self.end();
                Step::close(Reply::new(
                    421,
                    "4.4.2",
                    format!("{} Idle timeout, closing connection", self.hostname),
                ))
            }
            Input::Shutdown => {
                self.end();
                Step::close(Reply::new(
                    421,
                    "4.3.2",
                    format!("{} Service shutting down, try again later", self.hostname),
                ))
            }
            Input::Closed => {
                self.end();
                Step::new(Vec::new(), Next::Close)
            }
        }
    }

    /// The connection is over: the transaction (and its spool file) goes.
    fn end(&mut self) {
        self.tx = None;
        self.sasl = None;
        self.receiving = Receiving::Nothing;
    }

    /// A line longer than allowed (its bytes were discarded by the reader).
    fn line_too_long(&mut self) -> Step {
        tracing::warn!(session = %self.id, limit = self.max_line(), "command line too long");
        self.sasl = None;
        let r = Step::one(Reply::new(500, "5.5.2", "Line too long"));
        self.count_errors(r)
    }

    /// Connection upgraded (RFC 3207 §4.2): forget everything learned from the client.
    fn tls_started(&mut self, version: String, cipher: String) {
        tracing::info!(session = %self.id, %version, %cipher, "TLS established");
        self.conn.tls = Some((version, cipher));
        self.conn.starttls_available = false;
        self.helo = None;
        self.esmtp = false;
        self.login = None;
        self.tx = None;
        self.sasl = None;
    }

    pub(crate) fn tls_or_loopback_ok(&self) -> bool {
        self.conn.tls.is_some()
            || (self.cfg.allow_plaintext_auth_on_loopback && self.conn.peer.ip().is_loopback())
    }

    /// Counts an error reply; too many end the session with `421 4.7.0`.
    pub(crate) fn count_errors(&mut self, mut r: Step) -> Step {
        if r.output.replies.iter().any(Reply::is_error) && r.next != Next::Close {
            self.errors += 1;
            if self.errors >= self.cfg.max_errors.max(1) {
                tracing::warn!(session = %self.id, errors = self.errors, "too many errors, closing");
                r.output.replies.push(Reply::new(
                    421,
                    "4.7.0",
                    format!("{} Too many errors, closing connection", self.hostname),
                ));
                // A refused chunk's octets are still on the wire: they are read and dropped
                // first, then the connection closes (`closing`).
                if !matches!(r.next, Next::Chunk { .. }) {
                    r.next = Next::Close;
                }
                self.tx = None;
                self.closing = true;
            }
        }
        r
    }

    async fn command(&mut self, line: &[u8]) -> Step {
        let cmd = match command::parse(line) {
            Ok(c) => c,
            Err(e) => {
                tracing::info!(session = %self.id, error = ?e, "bad command");
                let bdat = line.len() >= 5
                    && line[..4].eq_ignore_ascii_case(b"BDAT")
                    && matches!(line[4], b' ' | b'\r' | b'\n');
                if bdat {
                    // The chunk size is unknown, so the stream cannot be resynchronised.
                    return Step::close(Reply::new(
                        501,
                        "5.5.4",
                        "Syntax: BDAT size [LAST]; closing connection",
                    ));
                }
                let r = Step::one(e.reply());
                return self.count_errors(r);
            }
        };
        let r = self.dispatch(cmd).await;
        let mut r = self.count_errors(r);
        if let Receiving::Chunk(c) = &mut self.receiving {
            if let Some(held) = &mut c.held {
                // Written once the refused chunk has been read.
                *held = std::mem::take(&mut r.output.replies);
            }
            if c.remaining == 0 {
                return self.chunk_done().await;
            }
        }
        r
    }

    async fn dispatch(&mut self, cmd: Command) -> Step {
        match cmd {
            Command::Ehlo(domain) => self.hello(domain, true),
            Command::Helo(domain) => self.hello(domain, false),
            Command::Mail { from, params } => self.mail(from, params).await,
            Command::Rcpt { to, params } => self.rcpt(to, params).await,
            Command::Data => self.data(),
            Command::Bdat { size, last } => self.bdat(size, last),
            Command::Auth { mechanism, initial } => self.auth(&mechanism, initial).await,
            Command::Rset => self.rset(),
            Command::Noop => self.noop(),
            Command::Quit => self.quit(),
            Command::Help => self.help(),
            Command::Vrfy(addr) => self.vrfy(&addr).await,
            Command::Expn => self.expn(),
            Command::StartTls => self.starttls(),
        }
    }
}
