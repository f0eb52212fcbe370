//! AUTH (RFC 4954) on submission: SASL through the directory, base64 on the wire, refused before TLS.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use wharf_directory::{AuthError, Mechanism, SaslExchange, SaslStep};
use wharf_store::Account;

use super::{Next, Response, Session};
use crate::SmtpRole;
use crate::command::trim_eol;
use crate::reply::Reply;

pub(crate) enum SaslState {
    Exchange(SaslExchange),
    /// SCRAM's server-final message was sent as a challenge; the client's empty answer completes it.
    AwaitFinalAck(Account),
}

impl Session {
    pub(super) async fn auth(&mut self, mechanism: &str, initial: Option<String>) -> Response {
        if self.role != SmtpRole::Submission {
            return Response::one(Reply::new(502, "5.5.1", "AUTH not available on this port"));
        }
        if !self.esmtp {
            return Response::one(Reply::new(503, "5.5.1", "Send EHLO first"));
        }
        if self.account.is_some() {
            return Response::one(Reply::new(503, "5.5.1", "Already authenticated"));
        }
        if self.tx.is_some() {
            return Response::one(Reply::new(
                503,
                "5.5.1",
                "AUTH not allowed during a mail transaction",
            ));
        }
        if !self.tls_or_loopback_ok() {
            tracing::warn!(session = %self.id, "AUTH refused before STARTTLS");
            return Response::one(Reply::new(
                530,
                "5.7.0",
                "Must issue a STARTTLS command first",
            ));
        }
        let Some(mech) = Mechanism::from_name(mechanism) else {
            return Response::one(Reply::new(
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
                    return Response::one(Reply::new(
                        501,
                        "5.5.2",
                        "Invalid base64 in initial response",
                    ));
                }
            },
        };
        let mut exchange = self.dir.start_sasl(mech, self.conn.peer.ip());
        let step = exchange.step(&initial).await;
        self.sasl_step(exchange, step, mech.name())
    }

    /// One client line during an AUTH exchange (`Next::AuthResponse`).
    pub async fn auth_response(&mut self, line: &[u8]) -> Response {
        let line = trim_eol(line);
        let Some(state) = self.sasl.take() else {
            return Response::one(Reply::new(503, "5.5.1", "No authentication in progress"));
        };
        if line == b"*" {
            tracing::info!(session = %self.id, "AUTH aborted by client");
            return self.count_errors(Response::one(Reply::new(
                501,
                "5.0.0",
                "Authentication aborted",
            )));
        }
        let decoded = match B64.decode(line) {
            Ok(v) => v,
            Err(_) => {
                return self.count_errors(Response::one(Reply::new(
                    501,
                    "5.5.2",
                    "Invalid base64 in response",
                )));
            }
        };
        match state {
            SaslState::AwaitFinalAck(account) => self.auth_success(account),
            SaslState::Exchange(mut exchange) => {
                let step = exchange.step(&decoded).await;
                let r = self.sasl_step(exchange, step, "");
                self.count_errors(r)
            }
        }
    }

    fn sasl_step(&mut self, exchange: SaslExchange, step: SaslStep, mech: &str) -> Response {
        match step {
            SaslStep::Challenge(c) => {
                self.sasl = Some(SaslState::Exchange(exchange));
                Response {
                    replies: vec![Reply::plain(334, vec![B64.encode(c)])],
                    next: Next::AuthResponse,
                }
            }
            SaslStep::Success {
                account,
                server_final: Some(f),
            } => {
                self.sasl = Some(SaslState::AwaitFinalAck(account));
                Response {
                    replies: vec![Reply::plain(334, vec![B64.encode(f)])],
                    next: Next::AuthResponse,
                }
            }
            SaslStep::Success {
                account,
                server_final: None,
            } => self.auth_success(account),
            SaslStep::Failure(e) => {
                tracing::warn!(session = %self.id, mech, error = ?e, "authentication failed");
                let result = match e {
                    AuthError::Throttled { .. } => "throttled",
                    AuthError::Temporary(_) => "temporary",
                    _ => "failure",
                };
                metrics::counter!("wharf_auth_total", "protocol" => "smtp", "result" => result)
                    .increment(1);
                Response::one(match e {
                    AuthError::InvalidCredentials | AuthError::Disabled => {
                        Reply::new(535, "5.7.8", "Authentication credentials invalid")
                    }
                    AuthError::Throttled { retry_after } => Reply::new(
                        454,
                        "4.7.0",
                        format!(
                            "Too many authentication failures, retry in {}s",
                            retry_after.as_secs().max(1)
                        ),
                    ),
                    AuthError::Malformed(_) => {
                        Reply::new(501, "5.5.2", "Malformed authentication exchange")
                    }
                    AuthError::Aborted => Reply::new(501, "5.0.0", "Authentication aborted"),
                    AuthError::Temporary(_) => {
                        Reply::new(454, "4.7.0", "Temporary authentication failure")
                    }
                })
            }
        }
    }

    fn auth_success(&mut self, account: Account) -> Response {
        tracing::info!(session = %self.id, user = %account.address, "authenticated");
        metrics::counter!("wharf_auth_total", "protocol" => "smtp", "result" => "success")
            .increment(1);
        self.account = Some(account);
        Response::one(Reply::new(235, "2.7.0", "Authentication successful"))
    }
}
