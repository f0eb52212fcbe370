//! The POP3 session state machine (RFC 1939 AUTHORIZATION → TRANSACTION → UPDATE), free of
//! sockets: the connection loop hands it one `Input` at a time (a received line, a line too long,
//! TLS started, a timer tick, idle timeout, shutdown) and gets a `Step`: the `Output` to write and
//! the `Next` thing to do. Command behaviour lives in `commands/*`; this module owns the state,
//! the vocabulary of the loop and the dispatch.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use wharf_store::{AccountId, ModSeq, Uid};

use crate::backend::{Authenticator, Login, Maildrop, SaslSession, Snapshot};
use crate::config::Pop3Config;
use crate::syntax::{self, Output, ParseError, RespCode};

/// What the connection knows about itself, as the session needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    pub peer: IpAddr,
    pub tls: bool,
    pub starttls_available: bool,
}

/// What the connection loop hands the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<'a> {
    /// One received line (with or without its line ending), at most `Session::max_line` long.
    Line(&'a [u8]),
    /// A line longer than `Session::max_line` arrived and was discarded.
    LineTooLong,
    /// The STLS handshake finished: the session starts over on TLS (RFC 2595).
    TlsStarted,
    /// Periodic, while the maildrop lock is held: keep the lock alive.
    Tick,
    /// No input for the idle timeout.
    Timeout,
    /// The server is shutting down.
    Shutdown,
}

/// What the connection loop does after writing the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Read the next command line (at most `Session::max_line` octets).
    ReadLine,
    /// Flush, run the TLS handshake, then hand in `Input::TlsStarted`.
    StartTls,
    /// Flush, then close the connection.
    Close,
}

/// The session's answer to one input.
#[derive(Debug)]
pub struct Step {
    pub output: Output,
    pub next: Next,
}

/// State shared by every session of one service.
#[derive(Debug, Default)]
pub struct Shared {
    /// Last successful login per account (RFC 2449 LOGIN-DELAY enforcement on this node).
    pub(crate) last_login: Mutex<HashMap<AccountId, Instant>>,
    pub(crate) sessions: AtomicU64,
}

impl Shared {
    pub fn new() -> Self {
        Shared::default()
    }
}

pub(crate) enum State {
    Authorization {
        user: Option<String>,
    },
    Sasl {
        exchange: Box<dyn SaslSession>,
    },
    /// SCRAM server-final sent as a challenge; the client's (empty) answer completes the login.
    SaslFinal {
        login: Login,
    },
    Transaction(Box<Transaction>),
    Closed,
}

/// TRANSACTION state: the maildrop snapshot and what the client did to it.
pub(crate) struct Transaction {
    pub(crate) login: Login,
    pub(crate) snapshot: Snapshot,
    pub(crate) deleted: Vec<bool>,
    pub(crate) retrieved: Vec<bool>,
    /// UIDs of the snapshot expunged by someone else since login.
    pub(crate) gone: HashSet<Uid>,
    pub(crate) checked_modseq: ModSeq,
}

pub struct Session {
    pub(crate) cfg: Arc<Pop3Config>,
    pub(crate) hostname: String,
    pub(crate) info: ConnInfo,
    pub(crate) auth: Arc<dyn Authenticator>,
    pub(crate) maildrop: Arc<dyn Maildrop>,
    pub(crate) shared: Arc<Shared>,
    /// Identifies this session as the maildrop lock owner.
    pub(crate) owner: String,
    pub(crate) state: State,
    pub(crate) errors: u32,
}

impl Session {
    pub fn new(
        cfg: Arc<Pop3Config>,
        hostname: String,
        info: ConnInfo,
        auth: Arc<dyn Authenticator>,
        maildrop: Arc<dyn Maildrop>,
        shared: Arc<Shared>,
    ) -> Session {
        let n = shared.sessions.fetch_add(1, Ordering::Relaxed);
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let owner = format!("pop3:{hostname}:{}:{started:x}:{n}", std::process::id());
        Session {
            cfg,
            hostname,
            info,
            auth,
            maildrop,
            shared,
            owner,
            state: State::Authorization { user: None },
            errors: 0,
        }
    }

    /// What the server sends first.
    pub fn greeting(&self) -> Step {
        let mut output = Output::new();
        output.ok(&format!("{} POP3 server ready", self.hostname));
        Step {
            output,
            next: Next::ReadLine,
        }
    }

    /// The one entry point of the connection loop.
    pub async fn handle(&mut self, input: Input<'_>) -> Step {
        let mut output = Output::new();
        let next = match input {
            Input::Line(line) => self.line(line, &mut output).await,
            Input::LineTooLong => self.line_too_long(&mut output),
            Input::TlsStarted => {
                self.tls_started();
                Next::ReadLine
            }
            Input::Tick => {
                self.refresh_lock().await;
                Next::ReadLine
            }
            Input::Timeout => {
                output.err(None, "autologout: idle for too long");
                Next::Close
            }
            Input::Shutdown => {
                output.err(Some(RespCode::SysTemp), "server shutting down");
                Next::Close
            }
        };
        Step { output, next }
    }

    /// Longest line the session accepts next (SASL responses may exceed the command limit).
    pub fn max_line(&self) -> usize {
        match self.state {
            State::Sasl { .. } | State::SaslFinal { .. } => self.cfg.max_sasl_line,
            _ => self.cfg.max_command_line,
        }
    }

    /// The account whose maildrop lock this session holds, if any.
    pub fn locked_account(&self) -> Option<AccountId> {
        match &self.state {
            State::Transaction(t) => Some(t.login.account_id),
            _ => None,
        }
    }

    pub fn lock_owner(&self) -> &str {
        &self.owner
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Keeps the maildrop lock alive while the session lives (called periodically).
    async fn refresh_lock(&mut self) {
        if let State::Transaction(t) = &self.state {
            let ttl = i64::try_from(self.cfg.lock_ttl_secs).unwrap_or(i64::MAX);
            match self
                .maildrop
                .lock(t.login.account_id, &self.owner, ttl)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::error!(account = %t.login.address, "pop3: maildrop lock lost to another session")
                }
                Err(e) => {
                    tracing::warn!(account = %t.login.address, error = %e, "pop3: refreshing maildrop lock failed")
                }
            }
        }
    }

    /// A line longer than `max_line()` arrived (and was discarded by the reader).
    fn line_too_long(&mut self, out: &mut Output) -> Next {
        if matches!(self.state, State::Sasl { .. } | State::SaslFinal { .. }) {
            self.state = State::Authorization { user: None };
        }
        tracing::info!(peer = %self.info.peer, "pop3: line too long");
        self.protocol_error(out, "line too long")
    }

    /// STLS finished: the new TLS session starts from scratch (RFC 2595).
    fn tls_started(&mut self) {
        self.info.tls = true;
        self.info.starttls_available = false;
        self.state = State::Authorization { user: None };
    }

    /// The connection ended without QUIT (EOF, timeout, error, shutdown): nothing is deleted,
    /// the lock is released.
    pub async fn end(&mut self) {
        if let State::Transaction(t) = std::mem::replace(&mut self.state, State::Closed) {
            tracing::info!(account = %t.login.address, "pop3: connection ended without QUIT, nothing deleted");
            if let Err(e) = self.maildrop.unlock(t.login.account_id, &self.owner).await {
                tracing::warn!(error = %e, "pop3: releasing maildrop lock failed (it will expire)");
            }
        }
    }

    /// Handles one received line (with or without its line ending).
    async fn line(&mut self, line: &[u8], out: &mut Output) -> Next {
        let line = syntax::trim_line(line);
        match &self.state {
            State::Sasl { .. } => return self.sasl_continue(line, out).await,
            State::SaslFinal { .. } => return self.sasl_final(line, out).await,
            State::Closed => return Next::Close,
            _ => {}
        }
        let cmd = match syntax::parse(line) {
            Ok(cmd) => cmd,
            Err(ParseError::Unknown) => {
                tracing::debug!(peer = %self.info.peer, "pop3: unknown command");
                return self.protocol_error(out, "unknown command");
            }
            Err(ParseError::Syntax(msg)) => return self.protocol_error(out, msg),
        };
        if matches!(self.state, State::Transaction(_)) {
            self.transaction_command(cmd, out).await
        } else {
            self.authorization_command(cmd, out).await
        }
    }

    /// Counts a protocol error; too many close the connection.
    pub(crate) fn protocol_error(&mut self, out: &mut Output, msg: &str) -> Next {
        self.errors += 1;
        out.err(None, msg);
        if self.errors >= self.cfg.max_errors {
            tracing::info!(peer = %self.info.peer, errors = self.errors, "pop3: too many errors, closing");
            out.err(None, "too many errors, closing connection");
            return Next::Close;
        }
        Next::ReadLine
    }

    /// Capabilities for the current state (RFC 2449).
    pub(crate) fn capabilities(&self) -> Vec<String> {
        let mut caps = vec![
            "TOP".to_string(),
            "UIDL".to_string(),
            "RESP-CODES".to_string(),
            "AUTH-RESP-CODE".to_string(),
            "PIPELINING".to_string(),
        ];
        match &self.state {
            State::Transaction(t) => caps.push(match t.snapshot.expire_days {
                None => "EXPIRE NEVER".to_string(),
                Some(d) => format!("EXPIRE {}", d.max(0)),
            }),
            // The policy is per account: before login announce the lowest possible value,
            // tagged USER (RFC 2449 section 6.7).
            _ => caps.push("EXPIRE 0 USER".to_string()),
        }
        if self.cfg.login_delay_secs > 0 {
            caps.push(format!("LOGIN-DELAY {}", self.cfg.login_delay_secs));
        }
        caps.push(format!(
            "IMPLEMENTATION Wharf-{}",
            env!("CARGO_PKG_VERSION")
        ));
        if !matches!(self.state, State::Transaction(_)) {
            if self.auth_allowed() {
                caps.push("USER".to_string());
                caps.push(format!("SASL {}", self.auth.mechanisms().join(" ")));
            }
            if self.info.starttls_available && !self.info.tls {
                caps.push("STLS".to_string());
            }
        }
        caps
    }

    /// Credentials may travel: over TLS, or from loopback when the admin opted in.
    pub(crate) fn auth_allowed(&self) -> bool {
        self.info.tls || (self.cfg.allow_plaintext_auth_on_loopback && self.info.peer.is_loopback())
    }
}
