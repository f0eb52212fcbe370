//! The SMTP session state machine (RFC 5321): fed command lines, AUTH responses and message bytes
//! by the connection loop, it answers with replies and tells the loop what to read next. It never
//! touches a socket; directory and store calls are its only I/O. Command families live in
//! `session/auth.rs` (AUTH) and `session/mail.rs` (MAIL, RCPT, DATA, BDAT, delivery).

mod auth;
mod mail;

use std::net::SocketAddr;
use std::sync::Arc;

use wharf_directory::Directory;
use wharf_store::Account;

use crate::SmtpRole;
use crate::body::BodyReceiver;
use crate::command::{self, Command, MailParams, ParseError};
use crate::config::SmtpConfig;
use crate::handoff::{OutboundRecipient, RemoteHandoff};
use crate::reply::Reply;

/// What the connection loop reads next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Command,
    /// Message content until `<CRLF>.<CRLF>`, fed to [`Session::body`]; then [`Session::end_of_data`].
    Data,
    /// Exactly `size` octets of a BDAT chunk. `discard`: throw them away (the replies are already
    /// decided and are written after the bytes); else feed them to [`Session::body`] and call
    /// [`Session::end_of_chunk`].
    Bdat {
        size: u64,
        discard: bool,
    },
    /// One SASL response line, for [`Session::auth_response`].
    AuthResponse,
    /// Upgrade the connection, then call [`Session::tls_started`].
    StartTls,
    Close,
}

#[derive(Debug)]
pub struct Response {
    pub replies: Vec<Reply>,
    pub next: Next,
}

impl Response {
    fn one(reply: Reply) -> Response {
        Response {
            replies: vec![reply],
            next: Next::Command,
        }
    }
    fn close(reply: Reply) -> Response {
        Response {
            replies: vec![reply],
            next: Next::Close,
        }
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
    from: Option<String>,
    params: MailParams,
    /// Addresses as given, accepted so far.
    rcpts: Vec<String>,
    /// Local accounts to deliver to (deduplicated across recipients).
    accounts: Vec<wharf_store::AccountId>,
    /// Recipients for the outbound queue (deduplicated by address).
    remote: Vec<OutboundRecipient>,
    body: Option<BodyReceiver>,
    /// A BDAT chunk was accepted; DATA is no longer allowed.
    bdat: bool,
    /// The chunk being read, if its bytes go to `body`: is it the LAST one.
    pending_last: Option<bool>,
}

pub struct Session {
    cfg: Arc<SmtpConfig>,
    hostname: Arc<str>,
    role: SmtpRole,
    dir: Directory,
    handoff: Option<Arc<dyn RemoteHandoff>>,
    id: String,
    conn: ConnInfo,
    helo: Option<String>,
    esmtp: bool,
    account: Option<Account>,
    tx: Option<Transaction>,
    sasl: Option<auth::SaslState>,
    errors: u32,
    messages: u32,
    closing: bool,
}

impl Session {
    pub fn new(
        cfg: Arc<SmtpConfig>,
        hostname: Arc<str>,
        role: SmtpRole,
        dir: Directory,
        id: String,
        conn: ConnInfo,
    ) -> Session {
        Session {
            cfg,
            hostname,
            role,
            dir,
            handoff: None,
            id,
            conn,
            helo: None,
            esmtp: false,
            account: None,
            tx: None,
            sasl: None,
            errors: 0,
            messages: 0,
            closing: false,
        }
    }

    /// Where remote recipients go; without it they are refused with `451 4.3.0`.
    pub fn set_handoff(&mut self, handoff: Arc<dyn RemoteHandoff>) {
        self.handoff = Some(handoff);
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn greeting(&self) -> Reply {
        Reply::plain(220, vec![format!("{} ESMTP Wharf", self.hostname)])
    }

    pub fn early_talker(&self) -> Reply {
        Reply::new(
            554,
            "5.5.1",
            format!(
                "{} Protocol error: client talked before the greeting",
                self.hostname
            ),
        )
    }

    pub fn idle_timeout(&self) -> Reply {
        Reply::new(
            421,
            "4.4.2",
            format!("{} Idle timeout, closing connection", self.hostname),
        )
    }

    pub fn shutting_down(&self) -> Reply {
        Reply::new(
            421,
            "4.3.2",
            format!("{} Service shutting down, try again later", self.hostname),
        )
    }

    /// A command line longer than `max_command_line` (its bytes were discarded by the reader).
    pub fn command_too_long(&mut self) -> Response {
        tracing::warn!(session = %self.id, limit = self.cfg.max_command_line, "command line too long");
        self.sasl = None;
        let r = Response::one(Reply::new(500, "5.5.2", "Line too long"));
        self.count_errors(r)
    }

    /// Message content sink while `Next::Data` or an accepted `Next::Bdat` is in progress.
    pub fn body(&mut self) -> Option<&mut BodyReceiver> {
        self.tx.as_mut().and_then(|t| t.body.as_mut())
    }

    /// Connection upgraded (RFC 3207 §4.2): forget everything learned from the client.
    pub fn tls_started(&mut self, version: String, cipher: String) {
        tracing::info!(session = %self.id, %version, %cipher, "TLS established");
        self.conn.tls = Some((version, cipher));
        self.conn.starttls_available = false;
        self.helo = None;
        self.esmtp = false;
        self.account = None;
        self.tx = None;
        self.sasl = None;
    }

    fn tls_or_loopback_ok(&self) -> bool {
        self.conn.tls.is_some()
            || (self.cfg.allow_plaintext_auth_on_loopback && self.conn.peer.ip().is_loopback())
    }

    fn count_errors(&mut self, mut r: Response) -> Response {
        if r.replies.iter().any(Reply::is_error) && r.next != Next::Close {
            self.errors += 1;
            if self.errors >= self.cfg.max_errors.max(1) {
                tracing::warn!(session = %self.id, errors = self.errors, "too many errors, closing");
                r.replies.push(Reply::new(
                    421,
                    "4.7.0",
                    format!("{} Too many errors, closing connection", self.hostname),
                ));
                r.next = match r.next {
                    // The chunk's bytes are still on the wire; the loop discards them before closing.
                    Next::Bdat { size, .. } => Next::Bdat {
                        size,
                        discard: true,
                    },
                    _ => Next::Close,
                };
                self.tx = None;
                self.closing = true;
            }
        }
        r
    }

    /// After a discarded chunk, whether the loop must close (error limit reached during BDAT).
    pub fn must_close(&self) -> bool {
        self.closing
    }

    pub async fn command(&mut self, line: &[u8]) -> Response {
        let cmd = match command::parse(line) {
            Ok(c) => c,
            Err(e) => {
                tracing::info!(session = %self.id, error = ?e, "bad command");
                let bdat = line.len() >= 5
                    && line[..4].eq_ignore_ascii_case(b"BDAT")
                    && matches!(line[4], b' ' | b'\r' | b'\n');
                let r = e.reply();
                if bdat {
                    // The chunk size is unknown, so the stream cannot be resynchronised.
                    return Response::close(Reply::new(
                        501,
                        "5.5.4",
                        "Syntax: BDAT size [LAST]; closing connection",
                    ));
                }
                return self.count_errors(Response::one(r));
            }
        };
        let r = self.dispatch(cmd).await;
        self.count_errors(r)
    }

    async fn dispatch(&mut self, cmd: Command) -> Response {
        match cmd {
            Command::Ehlo(domain) => self.hello(domain, true),
            Command::Helo(domain) => self.hello(domain, false),
            Command::Mail { from, params } => self.mail(from, params).await,
            Command::Rcpt { to, params } => self.rcpt(to, params).await,
            Command::Data => self.data(),
            Command::Bdat { size, last } => self.bdat(size, last),
            Command::Auth { mechanism, initial } => self.auth(&mechanism, initial).await,
            Command::Rset => {
                self.tx = None;
                Response::one(Reply::new(250, "2.0.0", "Ok"))
            }
            Command::Noop => Response::one(Reply::new(250, "2.0.0", "Ok")),
            Command::Quit => {
                Response::close(Reply::new(221, "2.0.0", format!("{} Bye", self.hostname)))
            }
            Command::Help => Response::one(Reply::new(
                214,
                "2.0.0",
                "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH",
            )),
            Command::Vrfy(addr) => self.vrfy(&addr).await,
            Command::Expn => Response::one(Reply::new(502, "5.5.1", "EXPN not available")),
            Command::StartTls => self.starttls(),
        }
    }

    fn hello(&mut self, domain: String, esmtp: bool) -> Response {
        self.tx = None;
        self.helo = Some(domain.clone());
        self.esmtp = esmtp;
        let first = format!(
            "{} Hello {} [{}]",
            self.hostname,
            domain,
            self.conn.peer.ip()
        );
        if !esmtp {
            return Response::one(Reply::plain(250, vec![first]));
        }
        let mut lines = vec![
            first,
            "PIPELINING".into(),
            format!("SIZE {}", self.cfg.max_message_size),
            "8BITMIME".into(),
            "SMTPUTF8".into(),
            "ENHANCEDSTATUSCODES".into(),
            "CHUNKING".into(),
            "DSN".into(),
        ];
        if self.conn.starttls_available && self.conn.tls.is_none() {
            lines.push("STARTTLS".into());
        }
        if self.role == SmtpRole::Submission && self.account.is_none() && self.tls_or_loopback_ok()
        {
            let mechs: Vec<&str> = wharf_directory::MECHANISMS
                .iter()
                .map(|m| m.name())
                .collect();
            lines.push(format!("AUTH {}", mechs.join(" ")));
        }
        if self.conn.tls.is_some() {
            lines.push("REQUIRETLS".into());
        }
        Response::one(Reply::plain(250, lines))
    }

    fn starttls(&mut self) -> Response {
        if self.conn.tls.is_some() {
            return Response::one(Reply::new(503, "5.5.1", "TLS already active"));
        }
        if !self.conn.starttls_available {
            return Response::one(Reply::new(502, "5.5.1", "STARTTLS not available"));
        }
        Response {
            replies: vec![Reply::new(220, "2.0.0", "Ready to start TLS")],
            next: Next::StartTls,
        }
    }

    async fn vrfy(&mut self, addr: &str) -> Response {
        if !self.cfg.enable_vrfy {
            return Response::one(Reply::new(
                252,
                "2.5.0",
                "Cannot VRFY user, but will accept message and attempt delivery",
            ));
        }
        if command::validate_mailbox(addr).is_err() {
            return Response::one(ParseError::BadAddress("bad address").reply());
        }
        match self.dir.resolve_recipient(addr).await {
            Ok(wharf_directory::Resolution::Local { .. }) => {
                Response::one(Reply::new(250, "2.1.5", format!("<{addr}>")))
            }
            Ok(_) => Response::one(Reply::new(550, "5.1.1", "User unknown")),
            Err(e) => {
                tracing::error!(session = %self.id, error = %e, "VRFY lookup failed");
                Response::one(Reply::new(451, "4.3.0", "Temporary lookup failure"))
            }
        }
    }
}

#[cfg(test)]
mod tests;
