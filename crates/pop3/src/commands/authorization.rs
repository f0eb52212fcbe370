//! AUTHORIZATION state: USER/PASS (RFC 1939), AUTH (RFC 5034), STLS (RFC 2595), CAPA (RFC 2449),
//! and the step into TRANSACTION: login delay, maildrop lock, snapshot.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::backend::{AuthFailure, Login, SaslOutcome};
use crate::session::{Next, Session, State, Transaction};
use crate::syntax::{Command, Output, RespCode};

impl Session {
    pub(crate) async fn authorization_command(&mut self, cmd: Command, out: &mut Output) -> Next {
        match cmd {
            Command::Capa => {
                out.ok("Capability list follows");
                out.listing(self.capabilities());
                Next::ReadLine
            }
            Command::Quit => {
                out.ok(&format!("{} POP3 server signing off", self.hostname));
                self.state = State::Closed;
                Next::Close
            }
            Command::Stls => {
                if self.info.tls {
                    out.err(None, "already using TLS");
                    Next::ReadLine
                } else if !self.info.starttls_available {
                    out.err(None, "STLS not available on this port");
                    Next::ReadLine
                } else {
                    out.ok("Begin TLS negotiation");
                    Next::StartTls
                }
            }
            Command::Apop => {
                out.err(None, "APOP not supported");
                Next::ReadLine
            }
            Command::User(name) => {
                if let Some(c) = self.refuse_plaintext(out) {
                    return c;
                }
                out.ok("send PASS");
                self.state = State::Authorization { user: Some(name) };
                Next::ReadLine
            }
            Command::Pass(pass) => {
                if let Some(c) = self.refuse_plaintext(out) {
                    return c;
                }
                let user =
                    match std::mem::replace(&mut self.state, State::Authorization { user: None }) {
                        State::Authorization { user: Some(u) } => u,
                        _ => return self.protocol_error(out, "USER first"),
                    };
                match self.auth.authenticate(&user, &pass, self.info.peer).await {
                    Ok(login) => self.enter_transaction(login, out).await,
                    Err(f) => self.auth_failed(f, out),
                }
            }
            Command::Auth { mechanism, initial } => {
                if let Some(c) = self.refuse_plaintext(out) {
                    return c;
                }
                let Some(mech) = mechanism else {
                    // Pre-RFC 5034 clients (Outlook) list mechanisms with a bare AUTH.
                    out.ok("SASL mechanisms follow");
                    out.listing(self.auth.mechanisms().into_iter().map(str::to_string));
                    return Next::ReadLine;
                };
                let Some(mut exchange) = self.auth.start_sasl(&mech, self.info.peer) else {
                    out.err(None, "unsupported authentication mechanism");
                    return Next::ReadLine;
                };
                let first = match initial.as_deref() {
                    None | Some("=") => Vec::new(),
                    Some(ir) => match B64.decode(ir) {
                        Ok(b) => b,
                        Err(_) => {
                            out.err(Some(RespCode::Auth), "invalid base64 in initial response");
                            return Next::ReadLine;
                        }
                    },
                };
                let outcome = exchange.step(&first).await;
                self.sasl_outcome(outcome, Some(exchange), out).await
            }
            Command::Stat
            | Command::List(_)
            | Command::Retr(_)
            | Command::Dele(_)
            | Command::Noop
            | Command::Rset
            | Command::Top(..)
            | Command::Uidl(_) => self.protocol_error(out, "not valid before authentication"),
        }
    }

    fn refuse_plaintext(&mut self, out: &mut Output) -> Option<Next> {
        if self.auth_allowed() {
            return None;
        }
        tracing::info!(peer = %self.info.peer, "pop3: plaintext authentication refused");
        let msg = if self.info.starttls_available {
            "authentication requires TLS: use STLS first"
        } else {
            "authentication requires TLS"
        };
        out.err(Some(RespCode::Auth), msg);
        Some(Next::ReadLine)
    }

    pub(crate) async fn sasl_continue(&mut self, line: &[u8], out: &mut Output) -> Next {
        let State::Sasl { exchange } =
            std::mem::replace(&mut self.state, State::Authorization { user: None })
        else {
            return Next::ReadLine;
        };
        if line == b"*" {
            out.err(None, "authentication cancelled");
            return Next::ReadLine;
        }
        let Ok(decoded) = B64.decode(line) else {
            out.err(Some(RespCode::Auth), "invalid base64 in SASL response");
            return Next::ReadLine;
        };
        let mut exchange = exchange;
        let outcome = exchange.step(&decoded).await;
        self.sasl_outcome(outcome, Some(exchange), out).await
    }

    pub(crate) async fn sasl_final(&mut self, line: &[u8], out: &mut Output) -> Next {
        let State::SaslFinal { login } =
            std::mem::replace(&mut self.state, State::Authorization { user: None })
        else {
            return Next::ReadLine;
        };
        if line == b"*" {
            out.err(None, "authentication cancelled");
            return Next::ReadLine;
        }
        self.enter_transaction(login, out).await
    }

    async fn sasl_outcome(
        &mut self,
        outcome: SaslOutcome,
        exchange: Option<Box<dyn crate::backend::SaslSession>>,
        out: &mut Output,
    ) -> Next {
        match outcome {
            SaslOutcome::Challenge(c) => {
                out.line(&format!("+ {}", B64.encode(c)));
                if let Some(exchange) = exchange {
                    self.state = State::Sasl { exchange };
                }
                Next::ReadLine
            }
            SaslOutcome::Success {
                login,
                server_final: Some(f),
            } => {
                // RFC 5034 has no additional data on +OK: the server-final goes as a challenge.
                out.line(&format!("+ {}", B64.encode(f)));
                self.state = State::SaslFinal { login };
                Next::ReadLine
            }
            SaslOutcome::Success {
                login,
                server_final: None,
            } => self.enter_transaction(login, out).await,
            SaslOutcome::Failure(f) => self.auth_failed(f, out),
        }
    }

    fn auth_failed(&mut self, failure: AuthFailure, out: &mut Output) -> Next {
        self.state = State::Authorization { user: None };
        tracing::info!(peer = %self.info.peer, ?failure, "pop3: authentication failed");
        let result = match failure {
            AuthFailure::Throttled { .. } => "throttled",
            AuthFailure::Temporary(_) => "temporary",
            _ => "failure",
        };
        metrics::counter!("wharf_auth_total", "protocol" => "pop3", "result" => result)
            .increment(1);
        match failure {
            AuthFailure::InvalidCredentials => {
                out.err(Some(RespCode::Auth), "authentication failed")
            }
            AuthFailure::Malformed(why) => out.err(
                Some(RespCode::Auth),
                &format!("malformed credentials: {why}"),
            ),
            AuthFailure::Disabled => out.err(Some(RespCode::SysPerm), "account disabled"),
            AuthFailure::Throttled { retry_after } => out.err(
                Some(RespCode::SysTemp),
                &format!(
                    "too many failed logins, try again in {} seconds",
                    retry_after.as_secs().max(1)
                ),
            ),
            AuthFailure::Temporary(_) => out.err(
                Some(RespCode::SysTemp),
                "authentication temporarily unavailable",
            ),
            AuthFailure::Aborted => {
                out.err(None, "authentication cancelled");
                return Next::ReadLine;
            }
        }
        self.errors += 1;
        if self.errors >= self.cfg.max_errors {
            out.err(None, "too many errors, closing connection");
            return Next::Close;
        }
        Next::ReadLine
    }

    /// Authenticated: enforce LOGIN-DELAY, take the maildrop lock, snapshot INBOX.
    async fn enter_transaction(&mut self, login: Login, out: &mut Output) -> Next {
        metrics::counter!("wharf_auth_total", "protocol" => "pop3", "result" => "success")
            .increment(1);
        self.state = State::Authorization { user: None };
        let delay = Duration::from_secs(self.cfg.login_delay_secs);
        if !delay.is_zero() {
            let last = self
                .shared
                .last_login
                .lock()
                .ok()
                .and_then(|m| m.get(&login.account_id).copied());
            if let Some(last) = last
                && last.elapsed() < delay
            {
                out.err(
                    Some(RespCode::LoginDelay),
                    &format!("minimum time between logins is {} seconds", delay.as_secs()),
                );
                return Next::ReadLine;
            }
        }
        let ttl = i64::try_from(self.cfg.lock_ttl_secs).unwrap_or(i64::MAX);
        match self.maildrop.lock(login.account_id, &self.owner, ttl).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(account = %login.address, "pop3: maildrop in use");
                out.err(
                    Some(RespCode::InUse),
                    "maildrop already locked by another POP3 session",
                );
                return Next::ReadLine;
            }
            Err(e) => {
                tracing::warn!(account = %login.address, error = %e, "pop3: maildrop lock failed");
                out.err(Some(RespCode::SysTemp), "maildrop temporarily unavailable");
                return Next::ReadLine;
            }
        }
        let snapshot = match self.maildrop.snapshot(login.account_id).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(account = %login.address, error = %e, "pop3: reading maildrop failed");
                if let Err(e) = self.maildrop.unlock(login.account_id, &self.owner).await {
                    tracing::warn!(error = %e, "pop3: releasing maildrop lock failed");
                }
                out.err(Some(RespCode::SysTemp), "maildrop temporarily unavailable");
                return Next::ReadLine;
            }
        };
        if !delay.is_zero()
            && let Ok(mut m) = self.shared.last_login.lock()
        {
            // Bounded: forget entries that no longer restrict anything.
            if m.len() > 100_000 {
                m.retain(|_, t| t.elapsed() < delay);
            }
            m.insert(login.account_id, Instant::now());
        }
        let n = snapshot.entries.len();
        let size: u64 = snapshot.entries.iter().map(|e| e.size).sum();
        tracing::info!(account = %login.address, messages = n, octets = size, "pop3: logged in");
        out.ok(&format!(
            "{} has {n} messages ({size} octets)",
            login.address
        ));
        let checked_modseq = snapshot.modseq;
        self.state = State::Transaction(Box::new(Transaction {
            login,
            snapshot,
            deleted: vec![false; n],
            retrieved: vec![false; n],
            gone: Default::default(),
            checked_modseq,
        }));
        Next::ReadLine
    }
}
