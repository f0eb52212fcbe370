//! The ManageSieve session state machine (RFC 5804: non-authenticated, SASL exchange,
//! authenticated), free of sockets: the connection loop hands it one `Input` at a time (a line,
//! a literal's octets, a line too long, TLS started, idle timeout, shutdown) and gets a `Step`:
//! the `Output` to write and the `Next` thing to read or do. This module owns the state, the
//! framing of commands that carry literals, and the dispatch; command behaviour lives in
//! `commands/*`.

use std::net::IpAddr;
use std::sync::Arc;

use crate::backend::{Authenticator, Login, SaslSession, ScriptChecker, ScriptStore};
use crate::config::ManageSieveConfig;
use crate::syntax::{self, Code, Command, Output, ParseError};

/// Literals announced by one command (or SASL response) at most; no command has more than two.
const MAX_LITERALS: u32 = 4;

/// Largest literal of any command but AUTHENTICATE before login (script names, tags).
const PRE_AUTH_LITERAL: u64 = 1024;

/// An oversized literal is read and dropped when at most this many times the limit; past that
/// the connection is closed instead of reading on.
const DISCARD_FACTOR: u64 = 16;

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
    /// The octets of the literal `Next::ReadLiteral` asked for.
    Literal(&'a [u8]),
    /// The STARTTLS handshake finished: capabilities are sent again (RFC 5804 section 2.2).
    TlsStarted,
    /// No input for the idle timeout.
    Timeout,
    /// The server is shutting down.
    Shutdown,
}

/// What the connection loop does after writing the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Read the next line (at most `Session::max_line` octets).
    ReadLine,
    /// Read exactly this many octets and hand them in as `Input::Literal`.
    ReadLiteral(usize),
    /// Read and drop exactly this many octets (an oversized literal), then read a line.
    DiscardLiteral(u64),
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

pub(crate) enum State {
    NotAuthenticated,
    /// AUTHENTICATE in progress: the next complete "command" is the client's SASL response.
    Sasl {
        exchange: Box<dyn SaslSession>,
    },
    Authenticated(Login),
    Closed,
}

/// Why a command being collected is being thrown away (answered once its last line is in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// A literal past `max_script_size` for PUTSCRIPT/CHECKSCRIPT.
    ScriptTooLarge,
    /// A literal past the bound of what it is for (SASL message, name, tag).
    LiteralTooLarge,
    TooManyLiterals,
}

/// The command being collected across lines and literals.
#[derive(Default)]
struct Framer {
    buf: Vec<u8>,
    literals: u32,
    refusal: Option<Refusal>,
}

impl Framer {
    fn reset(&mut self) {
        self.buf = Vec::new();
        self.literals = 0;
        self.refusal = None;
    }

    fn in_progress(&self) -> bool {
        !self.buf.is_empty() || self.literals > 0 || self.refusal.is_some()
    }
}

pub struct Session {
    pub(crate) cfg: Arc<ManageSieveConfig>,
    pub(crate) hostname: String,
    pub(crate) info: ConnInfo,
    pub(crate) auth: Arc<dyn Authenticator>,
    pub(crate) scripts: Arc<dyn ScriptStore>,
    pub(crate) checker: Arc<dyn ScriptChecker>,
    pub(crate) state: State,
    pub(crate) errors: u32,
    framer: Framer,
}

impl Session {
    pub fn new(
        cfg: Arc<ManageSieveConfig>,
        hostname: String,
        info: ConnInfo,
        auth: Arc<dyn Authenticator>,
        scripts: Arc<dyn ScriptStore>,
        checker: Arc<dyn ScriptChecker>,
    ) -> Session {
        Session {
            cfg,
            hostname,
            info,
            auth,
            scripts,
            checker,
            state: State::NotAuthenticated,
            errors: 0,
            framer: Framer::default(),
        }
    }

    /// What the server sends first: the capabilities and OK (RFC 5804 section 1.7).
    pub fn greeting(&self) -> Step {
        let mut output = Output::new();
        self.capabilities(&mut output);
        output.ok(None, &format!("{} ManageSieve ready", self.hostname));
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
            Input::Literal(data) => {
                if self.framer.refusal.is_none() {
                    self.framer.buf.extend_from_slice(data);
                }
                Next::ReadLine
            }
            Input::LineTooLong => self.line_too_long(&mut output),
            Input::TlsStarted => {
                self.info.tls = true;
                self.info.starttls_available = false;
                self.framer.reset();
                self.capabilities(&mut output);
                output.ok(None, "TLS negotiation successful");
                Next::ReadLine
            }
            Input::Timeout => {
                tracing::info!(peer = %self.info.peer, "managesieve: idle timeout");
                output.bye(None, "Disconnected for inactivity");
                self.state = State::Closed;
                Next::Close
            }
            Input::Shutdown => {
                output.bye(Some(&Code::TryLater), "Server shutting down");
                self.state = State::Closed;
                Next::Close
            }
        };
        Step { output, next }
    }

    /// Longest line the session accepts next.
    pub fn max_line(&self) -> usize {
        self.cfg.max_line.max(64)
    }

    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Authenticated(_))
    }

    /// The account logged in, if any.
    pub fn login(&self) -> Option<&Login> {
        match &self.state {
            State::Authenticated(l) => Some(l),
            _ => None,
        }
    }

    /// Protocol errors counted so far.
    pub fn errors(&self) -> u32 {
        self.errors
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Bound of one literal of the command being collected.
    fn literal_limit(&self) -> (u64, Refusal) {
        if matches!(self.state, State::Sasl { .. })
            || syntax::keyword(&self.framer.buf) == "AUTHENTICATE"
        {
            return (
                u64::try_from(self.cfg.max_sasl_size).unwrap_or(u64::MAX),
                Refusal::LiteralTooLarge,
            );
        }
        // Before login only AUTHENTICATE (above) may carry real data: anything else is a name
        // or a tag at most, and must not let unauthenticated connections hold script-sized
        // buffers each.
        if !matches!(self.state, State::Authenticated(_)) {
            return (PRE_AUTH_LITERAL, Refusal::LiteralTooLarge);
        }
        match syntax::keyword(&self.framer.buf).as_str() {
            "PUTSCRIPT" | "CHECKSCRIPT" => (self.cfg.max_script_size, Refusal::ScriptTooLarge),
            // Names and tags: a script's worth is more than enough.
            _ => (self.cfg.max_script_size, Refusal::LiteralTooLarge),
        }
    }

    async fn line(&mut self, line: &[u8], out: &mut Output) -> Next {
        if matches!(self.state, State::Closed) {
            return Next::Close;
        }
        let line = syntax::trim_line(line);
        let literal = syntax::literal_at_end(line);
        if self.framer.refusal.is_none() {
            self.framer.buf.extend_from_slice(line);
        }
        if let Some(len) = literal {
            let (limit, why) = self.literal_limit();
            self.framer.literals += 1;
            if self.framer.refusal.is_none() {
                if self.framer.literals > MAX_LITERALS {
                    self.refuse(Refusal::TooManyLiterals);
                } else if len > limit {
                    self.refuse(why);
                }
            }
            if self.framer.refusal.is_some() {
                if len > limit.saturating_mul(DISCARD_FACTOR) || self.framer.literals > 64 {
                    tracing::info!(peer = %self.info.peer, len, "managesieve: absurd literal, closing");
                    out.bye(
                        Some(&Code::QuotaMaxSize),
                        &format!("Literal of {len} octets refused, closing connection"),
                    );
                    self.state = State::Closed;
                    return Next::Close;
                }
                return Next::DiscardLiteral(len);
            }
            self.framer.buf.extend_from_slice(b"\r\n");
            return match usize::try_from(len) {
                Ok(n) => Next::ReadLiteral(n),
                Err(_) => Next::DiscardLiteral(len),
            };
        }
        // The command is complete.
        let refusal = self.framer.refusal;
        let buf = std::mem::take(&mut self.framer.buf);
        self.framer.reset();
        if let Some(refusal) = refusal {
            return self.refused(refusal, out);
        }
        if matches!(self.state, State::Sasl { .. }) {
            return self.sasl_response(&buf, out).await;
        }
        match syntax::parse(&buf) {
            Ok(cmd) => {
                metrics::counter!("wharf_managesieve_commands_total", "command" => cmd.name())
                    .increment(1);
                self.command(cmd, out).await
            }
            Err(ParseError::Unknown) => {
                metrics::counter!("wharf_managesieve_commands_total", "command" => "other")
                    .increment(1);
                tracing::debug!(peer = %self.info.peer, "managesieve: unknown command");
                self.protocol_error(out, "Unknown command")
            }
            Err(ParseError::Syntax(msg)) => {
                tracing::debug!(peer = %self.info.peer, msg, "managesieve: syntax error");
                self.protocol_error(out, msg)
            }
        }
    }

    fn refuse(&mut self, why: Refusal) {
        self.framer.refusal = Some(why);
        self.framer.buf = Vec::new();
    }

    /// The last line of a command that was being thrown away arrived: answer it.
    fn refused(&mut self, refusal: Refusal, out: &mut Output) -> Next {
        let in_sasl = matches!(self.state, State::Sasl { .. });
        if in_sasl {
            self.state = State::NotAuthenticated;
        }
        tracing::info!(peer = %self.info.peer, ?refusal, "managesieve: oversized command refused");
        match refusal {
            Refusal::ScriptTooLarge => {
                out.no(
                    Some(&Code::QuotaMaxSize),
                    &format!(
                        "Script larger than the maximum of {} octets",
                        self.cfg.max_script_size
                    ),
                );
                Next::ReadLine
            }
            Refusal::LiteralTooLarge if in_sasl => {
                self.protocol_error(out, "SASL response too long, authentication cancelled")
            }
            Refusal::LiteralTooLarge => self.protocol_error(out, "Literal too large"),
            Refusal::TooManyLiterals => self.protocol_error(out, "Too many literals"),
        }
    }

    /// A line longer than `max_line()` arrived (and was discarded by the reader).
    fn line_too_long(&mut self, out: &mut Output) -> Next {
        let in_sasl = matches!(self.state, State::Sasl { .. });
        if in_sasl {
            self.state = State::NotAuthenticated;
        }
        let partial = self.framer.in_progress();
        self.framer.reset();
        tracing::info!(peer = %self.info.peer, partial, "managesieve: line too long");
        if in_sasl {
            return self.protocol_error(out, "Line too long, authentication cancelled");
        }
        self.protocol_error(out, "Line too long")
    }

    /// Counts a protocol error and answers it with NO; the error that reaches `max_errors`
    /// is answered with BYE instead and closes the connection.
    pub(crate) fn protocol_error(&mut self, out: &mut Output, msg: &str) -> Next {
        self.errors += 1;
        if self.errors >= self.cfg.max_errors {
            tracing::info!(peer = %self.info.peer, errors = self.errors, "managesieve: too many errors, closing");
            out.bye(None, &format!("{msg}; too many errors, closing connection"));
            self.state = State::Closed;
            return Next::Close;
        }
        out.no(None, msg);
        Next::ReadLine
    }

    async fn command(&mut self, cmd: Command, out: &mut Output) -> Next {
        match cmd {
            Command::Capability => {
                self.capabilities(out);
                out.ok(None, "Capability completed");
                Next::ReadLine
            }
            Command::Logout => {
                out.ok(None, "Logout completed");
                self.state = State::Closed;
                Next::Close
            }
            Command::Noop(tag) => {
                match tag {
                    Some(t) => out.ok(Some(&Code::Tag(t)), "Done"),
                    None => out.ok(None, "Done"),
                }
                Next::ReadLine
            }
            Command::StartTls => self.starttls(out),
            Command::Authenticate { mechanism, initial } => {
                self.authenticate(&mechanism, initial, out).await
            }
            Command::Unauthenticate => {
                if let State::Authenticated(login) = &self.state {
                    tracing::info!(account = %login.address, "managesieve: unauthenticated");
                    self.state = State::NotAuthenticated;
                    out.ok(None, "Unauthenticate completed");
                    Next::ReadLine
                } else {
                    self.protocol_error(out, "Not authenticated")
                }
            }
            other => {
                let State::Authenticated(login) = &self.state else {
                    return self.protocol_error(out, "Authenticate first");
                };
                let login = login.clone();
                self.script_command(&login, other, out).await
            }
        }
    }

    fn starttls(&mut self, out: &mut Output) -> Next {
        if self.is_authenticated() {
            self.protocol_error(out, "STARTTLS is not allowed after authentication")
        } else if self.info.tls {
            self.protocol_error(out, "TLS is already active")
        } else if !self.info.starttls_available {
            self.protocol_error(out, "STARTTLS is not available on this port")
        } else {
            out.ok(None, "Begin TLS negotiation now");
            Next::StartTls
        }
    }

    /// Credentials may travel: over TLS, or from loopback when the admin opted in.
    pub(crate) fn auth_allowed(&self) -> bool {
        self.info.tls || (self.cfg.allow_plaintext_auth_on_loopback && self.info.peer.is_loopback())
    }

    /// SASL mechanisms offered here (the directory's, less those disabled by configuration).
    pub(crate) fn mechanisms(&self) -> Vec<&'static str> {
        self.auth
            .mechanisms()
            .into_iter()
            .filter(|m| !self.mechanism_disabled(m))
            .collect()
    }

    pub(crate) fn mechanism_disabled(&self, name: &str) -> bool {
        self.cfg
            .disabled_mechanisms
            .iter()
            .any(|d| d.eq_ignore_ascii_case(name))
    }

    /// The capability lines (RFC 5804 section 1.7), without the final OK.
    pub(crate) fn capabilities(&self, out: &mut Output) {
        out.strings_line(&[b"IMPLEMENTATION", b"Wharf"]);
        let extensions = self.checker.extensions();
        out.strings_line(&[b"SIEVE", extensions.as_bytes()]);
        if !self.is_authenticated() {
            let sasl = if self.auth_allowed() {
                self.mechanisms().join(" ")
            } else {
                String::new()
            };
            out.strings_line(&[b"SASL", sasl.as_bytes()]);
        }
        if self.info.starttls_available && !self.info.tls && !self.is_authenticated() {
            out.strings_line(&[b"STARTTLS"]);
        }
        if extensions
            .split_ascii_whitespace()
            .any(|e| e.eq_ignore_ascii_case("enotify"))
        {
            out.strings_line(&[b"NOTIFY", b"mailto"]);
        }
        out.strings_line(&[
            b"MAXREDIRECTS",
            self.cfg.max_redirects.to_string().as_bytes(),
        ]);
        if let Some(login) = self.login() {
            out.strings_line(&[b"OWNER", login.address.as_bytes()]);
        }
        out.strings_line(&[b"VERSION", b"1.0"]);
    }
}
