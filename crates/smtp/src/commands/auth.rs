//! AUTH (RFC 4954) on submission: SASL through the `Authenticator` port, base64 on the wire,
//! refused before TLS.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::SmtpRole;
use crate::backend::{AuthFailure, Login, SaslOutcome, SaslSession};
use crate::session::{Next, Session, Step};
use crate::syntax::command::trim_eol;
use crate::syntax::reply::Reply;

pub(crate) enum SaslState {
    Exchange(Box<dyn SaslSession>),
    /// SCRAM's server-final message was sent as a challenge; the client's empty answer completes it.
    AwaitFinalAck(Login),
}

impl Session {
    pub(crate) async fn auth(&mut self, mechanism: &str, initial: Option<String>) -> Step {
        if self.role != SmtpRole::Submission {
            return Step::one(Reply::new(502, "5.5.1", "AUTH not available on this port"));
        }
        if !self.esmtp {
            return Step::one(Reply::new(503, "5.5.1", "Send EHLO first"));
        }
        if self.login.is_some() {
            return Step::one(Reply::new(503, "5.5.1", "Already authenticated"));
        }
        if self.tx.is_some() {
            return Step::one(Reply::new(
                503,
                "5.5.1",
                "AUTH not allowed during a mail transaction",
            ));
        }
        if !self.tls_or_loopback_ok() {
            tracing::warn!(session = %self.id, "AUTH refused before STARTTLS");
            return Step::one(Reply::new(
                530,
                "5.7.0",
                "Must issue a STARTTLS command first",
            ));
        }
        let Some(mut exchange) = self.backend.auth.start_sasl(mechanism, self.conn.peer.ip())
        else {
            return Step::one(Reply::new(
                504,
                "5.5.4",
                "Unrecognized authentication mechanism",
            ));
        };
        let initial = match initial.as_deref() {
            None | Some("=") => Vec::new(),
            Some(s) => match B64.decode(s) {
                Ok(v) => v,
                Err(_) => {
                    return Step::one(Reply::new(
                        501,
                        "5.5.2",
                        "Invalid base64 in initial response",
                    ));
                }
            },
        };
        let step = exchange.step(&initial).await;
        self.sasl_step(exchange, step, mechanism)
    }

    /// One client line during an AUTH exchange (`Next::AuthResponse`).
    pub(crate) async fn auth_response(&mut self, line: &[u8]) -> Step {
        let line = trim_eol(line);
        let Some(state) = self.sasl.take() else {
            return Step::one(Reply::new(503, "5.5.1", "No authentication in progress"));
        };
        if line == b"*" {
            tracing::info!(session = %self.id, "AUTH aborted by client");
            return self.count_errors(Step::one(Reply::new(
                501,
                "5.0.0",
                "Authentication aborted",
            )));
        }
        let decoded = match B64.decode(line) {
            Ok(v) => v,
            Err(_) => {
                return self.count_errors(Step::one(Reply::new(
                    501,
                    "5.5.2",
                    "Invalid base64 in response",
                )));
            }
        };
        match state {
            SaslState::AwaitFinalAck(login) => self.auth_success(login),
            SaslState::Exchange(mut exchange) => {
                let step = exchange.step(&decoded).await;
                let r = self.sasl_step(exchange, step, "");
                self.count_errors(r)
            }
        }
    }

    fn sasl_step(&mut self, exchange: Box<dyn SaslSession>, step: SaslOutcome, mech: &str) -> Step {
        match step {
            SaslOutcome::Challenge(c) => {
                self.sasl = Some(SaslState::Exchange(exchange));
                Step::new(
                    vec![Reply::plain(334, vec![B64.encode(c)])],
                    Next::AuthResponse,
                )
            }
            SaslOutcome::Success {
                login,
                server_final: Some(f),
            } => {
                self.sasl = Some(SaslState::AwaitFinalAck(login));
                Step::new(
                    vec![Reply::plain(334, vec![B64.encode(f)])],
                    Next::AuthResponse,
                )
            }
            SaslOutcome::Success {
                login,
                server_final: None,
            } => self.auth_success(login),
            SaslOutcome::Failure(e) => {
                tracing::warn!(session = %self.id, mech, error = ?e, "authentication failed");
                let result = match e {
                    AuthFailure::Throttled { .. } => "throttled",
                    AuthFailure::Temporary(_) => "temporary",
                    _ => "failure",
                };
                metrics::counter!("wharf_auth_total", "protocol" => "smtp", "result" => result)
                    .increment(1);
                Step::one(match e {
                    AuthFailure::InvalidCredentials | AuthFailure::Disabled => {
                        Reply::new(535, "5.7.8", "Authentication credentials invalid")
                    }
                    AuthFailure::Throttled { retry_after } => Reply::new(
                        454,
                        "4.7.0",
                        format!(
                            "Too many authentication failures, retry in {}s",
                            retry_after.as_secs().max(1)
                        ),
                    ),
                    AuthFailure::Malformed(_) => {
                        Reply::new(501, "5.5.2", "Malformed authentication exchange")
                    }
                    AuthFailure::Aborted => Reply::new(501, "5.0.0", "Authentication aborted"),
                    AuthFailure::Temporary(_) => {
                        Reply::new(454, "4.7.0", "Temporary authentication failure")
                    }
                })
            }
        }
    }

    fn auth_success(&mut self, login: Login) -> Step {
        tracing::info!(session = %self.id, user = %login.address, "authenticated");
        metrics::counter!("wharf_auth_total", "protocol" => "smtp", "result" => "success")
            .increment(1);
        self.login = Some(login);
        Step::one(Reply::new(235, "2.7.0", "Authentication successful"))
    }
}
