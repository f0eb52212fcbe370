//! AUTHENTICATE (RFC 5804 section 2.1): SASL through the directory's `Authenticator`, with an
//! optional initial response, challenges sent as strings and answered with strings (quoted or
//! literal), `"*"` to cancel, and SASL additional data on success as `OK (SASL "...")`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::backend::{AuthFailure, Login, SaslOutcome, SaslSession};
use crate::session::{Next, Session, State};
use crate::syntax::{self, Code, Output};

impl Session {
    pub(crate) async fn authenticate(
        &mut self,
        mechanism: &[u8],
        initial: Option<Vec<u8>>,
        out: &mut Output,
    ) -> Next {
        if self.is_authenticated() {
            return self.protocol_error(out, "Already authenticated");
        }
        if !self.auth_allowed() {
            tracing::info!(peer = %self.info.peer, "managesieve: authentication without TLS refused");
            let msg = if self.info.starttls_available {
                "Authentication requires TLS: use STARTTLS first"
            } else {
                "Authentication requires TLS"
            };
            out.no(Some(&Code::EncryptNeeded), msg);
            return self.count_error(out);
        }
        let mech = String::from_utf8_lossy(mechanism).to_string();
        if self.mechanism_disabled(&mech) && self.auth.start_sasl(&mech, self.info.peer).is_some() {
            tracing::info!(peer = %self.info.peer, mechanism = %mech, "managesieve: disabled mechanism refused");
            out.no(
                Some(&Code::AuthTooWeak),
                "This mechanism is not allowed by site policy",
            );
            return self.count_error(out);
        }
        let Some(mut exchange) = self.auth.start_sasl(&mech, self.info.peer) else {
            return self.protocol_error(out, "Unsupported authentication mechanism");
        };
        let first = match initial {
            None => Vec::new(),
            Some(ir) => match B64.decode(&ir) {
                Ok(b) => b,
                Err(_) => return self.protocol_error(out, "Invalid base64 in initial response"),
            },
        };
        let outcome = exchange.step(&first).await;
        self.sasl_outcome(outcome, exchange, out)
    }

    /// The client's answer to a challenge (a complete string, literals already read).
    pub(crate) async fn sasl_response(&mut self, buf: &[u8], out: &mut Output) -> Next {
        let State::Sasl { mut exchange } =
            std::mem::replace(&mut self.state, State::NotAuthenticated)
        else {
            return Next::ReadLine;
        };
        let response = match syntax::parse_sasl_response(buf) {
            Ok(r) => r,
            Err(_) => {
                return self.protocol_error(
                    out,
                    "Expected a SASL response string, authentication cancelled",
                );
            }
        };
        if response == b"*" {
            self.auth_metric("aborted");
            out.no(None, "Authentication cancelled");
            return Next::ReadLine;
        }
        let Ok(decoded) = B64.decode(&response) else {
            return self.protocol_error(out, "Invalid base64 in SASL response");
        };
        let outcome = exchange.step(&decoded).await;
        self.sasl_outcome(outcome, exchange, out)
    }

    fn sasl_outcome(
        &mut self,
        outcome: SaslOutcome,
        exchange: Box<dyn SaslSession>,
        out: &mut Output,
    ) -> Next {
        match outcome {
            SaslOutcome::Challenge(c) => {
                out.string(B64.encode(c).as_bytes());
                out.crlf();
                self.state = State::Sasl { exchange };
                Next::ReadLine
            }
            SaslOutcome::Success {
                login,
                server_final,
            } => {
                let code = server_final.map(|f| Code::Sasl(B64.encode(f)));
                self.logged_in(login, code, out)
            }
            SaslOutcome::Failure(f) => self.auth_failed(f, out),
        }
    }

    fn auth_metric(&self, result: &'static str) {
        metrics::counter!("wharf_auth_total", "protocol" => "managesieve", "result" => result)
            .increment(1);
    }

    fn auth_failed(&mut self, failure: AuthFailure, out: &mut Output) -> Next {
        self.state = State::NotAuthenticated;
        tracing::info!(peer = %self.info.peer, ?failure, "managesieve: authentication failed");
        self.auth_metric(match failure {
            AuthFailure::Throttled { .. } => "throttled",
            AuthFailure::Temporary(_) => "temporary",
            AuthFailure::Aborted => "aborted",
            _ => "failure",
        });
        match failure {
            AuthFailure::InvalidCredentials => out.no(None, "Authentication failed"),
            AuthFailure::Malformed(why) => {
                out.no(None, &format!("Malformed authentication exchange: {why}"))
            }
            AuthFailure::Disabled => out.no(None, "Account disabled"),
            AuthFailure::Throttled { retry_after } => out.no(
                Some(&Code::TryLater),
                &format!(
                    "Too many failed logins, try again in {} seconds",
                    retry_after.as_secs().max(1)
                ),
            ),
            AuthFailure::Temporary(_) => out.no(
                Some(&Code::TryLater),
                "Authentication temporarily unavailable",
            ),
            AuthFailure::Aborted => {
                out.no(None, "Authentication cancelled");
                return Next::ReadLine;
            }
        }
        self.count_error(out)
    }

    /// Counts an error already answered; the one reaching `max_errors` adds BYE and closes.
    fn count_error(&mut self, out: &mut Output) -> Next {
        self.errors += 1;
        if self.errors >= self.cfg.max_errors {
            tracing::info!(peer = %self.info.peer, errors = self.errors, "managesieve: too many errors, closing");
            out.bye(None, "Too many errors, closing connection");
            self.state = State::Closed;
            return Next::Close;
        }
        Next::ReadLine
    }

    fn logged_in(&mut self, login: Login, code: Option<Code>, out: &mut Output) -> Next {
        self.auth_metric("success");
        tracing::info!(account = %login.address, "managesieve: logged in");
        out.ok(code.as_ref(), "Authentication successful");
        self.state = State::Authenticated(login);
        Next::ReadLine
    }
}
