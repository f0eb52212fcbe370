//! STARTTLS, LOGIN and AUTHENTICATE (SASL with SASL-IR, RFC 4959): the way out of the
//! not-authenticated state, refused in plaintext unless the loopback opt-in applies.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use tracing::{info, warn};

use crate::backend::{AuthFailure, Login, SaslOutcome, SaslSession};
use crate::output::Output;
use crate::session::{Done, Next, SaslState, Session, State, Step};

impl Session {
    pub(crate) fn starttls(&mut self) -> Done {
        if self.state != State::NotAuthenticated {
            return Done::bad("STARTTLS only before authentication");
        }
        if self.conn.tls || !self.conn.starttls_available {
            return Done::bad("STARTTLS not available on this connection");
        }
        Done::ok("Begin TLS negotiation now").with_next(Next::StartTls)
    }

    pub(crate) async fn login(&mut self, user: &str, pass: &str) -> Done {
        if self.state != State::NotAuthenticated {
            return Done::bad("Already authenticated");
        }
        if !self.auth_allowed() {
            return Done::no(Some("PRIVACYREQUIRED"), "Use STARTTLS before LOGIN");
        }
        match self
            .backend
            .auth
            .authenticate(user, pass, self.conn.peer)
            .await
        {
            Ok(account) => self.logged_in(account),
            Err(e) => {
                warn!(session = self.id, user, error = ?e, "LOGIN failed");
                auth_failure(e)
            }
        }
    }

    fn logged_in(&mut self, account: Login) -> Done {
        metrics::counter!("wharf_auth_total", "protocol" => "imap", "result" => "success")
            .increment(1);
        info!(session = self.id, account = %account.address, "authenticated");
        self.events = Some(self.backend.messages.events(account.account_id));
        self.account = Some(account);
        self.state = State::Authenticated;
        Done::ok_code(format!("CAPABILITY {}", self.capabilities()), "Logged in")
    }

    pub(crate) async fn authenticate(
        &mut self,
        tag: String,
        mechanism: &str,
        initial: Option<String>,
        out: &mut Output,
    ) -> Done {
        if self.state != State::NotAuthenticated {
            return Done::bad("Already authenticated");
        }
        if !self.auth_allowed() {
            return Done::no(Some("PRIVACYREQUIRED"), "Use STARTTLS before AUTHENTICATE");
        }
        let first = match initial.as_deref() {
            None | Some("=") => Vec::new(),
            Some(b) => match B64.decode(b) {
                Ok(v) => v,
                Err(_) => return Done::bad("Invalid base64 in initial response"),
            },
        };
        let Some(mut exchange) = self.backend.auth.start_sasl(mechanism, self.conn.peer) else {
            return Done::no(Some("CANNOT"), "Unsupported authentication mechanism");
        };
        let step = exchange.step(&first).await;
        self.sasl_step(tag, exchange, step, out)
    }

    fn sasl_step(
        &mut self,
        tag: String,
        exchange: Box<dyn SaslSession>,
        step: SaslOutcome,
        out: &mut Output,
    ) -> Done {
        match step {
            SaslOutcome::Challenge(c) => {
                out.extend_from_slice(format!("+ {}\r\n", B64.encode(c)).as_bytes());
                self.sasl = Some(SaslState {
                    tag,
                    exchange,
                    success: None,
                });
                Done::pending(Next::Line)
            }
            SaslOutcome::Success {
                login: account,
                server_final: Some(f),
            } => {
                out.extend_from_slice(format!("+ {}\r\n", B64.encode(f)).as_bytes());
                self.sasl = Some(SaslState {
                    tag,
                    exchange,
                    success: Some(account),
                });
                Done::pending(Next::Line)
            }
            SaslOutcome::Success {
                login: account,
                server_final: None,
            } => self.logged_in(account),
            SaslOutcome::Failure(e) => {
                warn!(session = self.id, error = ?e, "AUTHENTICATE failed");
                auth_failure(e)
            }
        }
    }

    /// One client line during AUTHENTICATE.
    pub(crate) async fn sasl_line(&mut self, line: &[u8]) -> Step {
        let Some(state) = self.sasl.take() else {
            return Step::text("* BAD No authentication in progress\r\n", Next::Line);
        };
        let SaslState {
            tag,
            mut exchange,
            success,
        } = state;
        let trimmed = line.strip_suffix(b"\n").unwrap_or(line);
        let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
        let mut out = Output::new();
        let done = if trimmed == b"*" {
            Done::bad("Authentication aborted")
        } else if let Some(account) = success {
            if trimmed.is_empty() {
                self.logged_in(account)
            } else {
                Done::bad("Expected an empty response")
            }
        } else {
            match B64.decode(trimmed) {
                Ok(data) => {
                    let step = exchange.step(&data).await;
                    self.sasl_step(tag.clone(), exchange, step, &mut out)
                }
                Err(_) => Done::bad("Invalid base64"),
            }
        };
        if done.pending {
            return Step {
                output: out,
                next: Next::Line,
            };
        }
        if done.status == "BAD" {
            self.bad_in_row += 1;
        } else {
            self.bad_in_row = 0;
        }
        out.extend_from_slice(tag.as_bytes());
        out.push(b' ');
        out.extend_from_slice(done.status.as_bytes());
        out.push(b' ');
        if let Some(c) = &done.code {
            out.extend_from_slice(format!("[{c}] ").as_bytes());
        }
        out.extend_from_slice(done.text.as_bytes());
        out.extend_from_slice(b"\r\n");
        Step {
            output: out,
            next: Next::Line,
        }
    }
}

fn auth_failure(e: AuthFailure) -> Done {
    let result = match e {
        AuthFailure::Throttled { .. } => "throttled",
        AuthFailure::Temporary(_) => "temporary",
        _ => "failure",
    };
    metrics::counter!("wharf_auth_total", "protocol" => "imap", "result" => result).increment(1);
    match e {
        AuthFailure::InvalidCredentials => {
            Done::no(Some("AUTHENTICATIONFAILED"), "Invalid credentials")
        }
        AuthFailure::Throttled { retry_after } => Done::no(
            Some("UNAVAILABLE"),
            format!(
                "Too many failures, try again in {}s",
                retry_after.as_secs().max(1)
            ),
        ),
        AuthFailure::Disabled => Done::no(Some("CONTACTADMIN"), "Account disabled"),
        AuthFailure::Malformed(m) => Done::bad(format!("Malformed exchange: {m}")),
        AuthFailure::Aborted => Done::bad("Authentication aborted"),
        AuthFailure::Temporary(_) => Done::no(Some("UNAVAILABLE"), "Temporary failure, try again"),
    }
}
