//! Server-side SASL exchanges (PLAIN RFC 4616, LOGIN, SCRAM-SHA-256 RFC 7677) as sans-io state
//! machines every protocol reuses: the protocol crate does the framing and base64, feeds decoded
//! client messages to `SaslExchange::step`, and relays the challenges. Credentials are checked
//! through the `Directory`, so throttling and the credential cache apply to every protocol.

use std::net::IpAddr;
use std::time::Instant;

use wharf_store::Account;

use crate::scram::{ClientFirst, ScramError, ScramServer, ScramVerifier};
use crate::{AuthError, Directory};

/// Longest authentication identity accepted (bytes).
const MAX_USERNAME: usize = 320;

/// A SASL mechanism the server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    Plain,
    Login,
    ScramSha256,
}

/// Mechanisms in the order to advertise them (strongest first).
pub const MECHANISMS: &[Mechanism] = &[Mechanism::ScramSha256, Mechanism::Plain, Mechanism::Login];

impl Mechanism {
    /// Case-insensitive (SASL mechanism names are upper-case, clients vary).
    pub fn from_name(name: &str) -> Option<Mechanism> {
        MECHANISMS
            .iter()
            .copied()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
        }
    }
}

impl std::fmt::Display for Mechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// True for the client's cancellation of an exchange (`*` on its own line, RFC 4954 / RFC 9051);
/// the protocol crate answers it with `AuthError::Aborted`'s reply.
pub fn is_cancel(line: &[u8]) -> bool {
    line.strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))
        .unwrap_or(line)
        == b"*"
}

/// What the server says next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslStep {
    /// Send this challenge (the protocol crate base64-encodes it) and feed the answer to `step`.
    Challenge(Vec<u8>),
    /// Authenticated. For SCRAM, `server_final` must reach the client: as a last challenge (whose
    /// empty answer ends the exchange) or as the success reply's additional data.
    Success {
        account: Account,
        server_final: Option<Vec<u8>>,
    },
    Failure(AuthError),
}

enum State {
    PlainStart,
    PlainAwait,
    LoginStart,
    LoginUser,
    LoginPassword {
        username: String,
    },
    ScramStart,
    ScramAwaitFirst,
    ScramAwaitFinal {
        server: Box<ScramServer>,
        account: Option<Account>,
    },
    Done,
}

/// One SASL exchange. Not `Clone`: it is the state of one conversation.
pub struct SaslExchange {
    dir: Directory,
    ip: IpAddr,
    mechanism: Mechanism,
    state: State,
}

fn malformed(why: &str) -> SaslStep {
    SaslStep::Failure(AuthError::Malformed(why.to_string()))
}

fn text(b: &[u8], what: &str) -> Result<String, AuthError> {
    String::from_utf8(b.to_vec()).map_err(|_| AuthError::Malformed(format!("{what} is not UTF-8")))
}

impl SaslExchange {
    pub(crate) fn new(dir: Directory, mechanism: Mechanism, ip: IpAddr) -> SaslExchange {
        let state = match mechanism {
            Mechanism::Plain => State::PlainStart,
            Mechanism::Login => State::LoginStart,
            Mechanism::ScramSha256 => State::ScramStart,
        };
        SaslExchange {
            dir,
            ip,
            mechanism,
            state,
        }
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// True once the exchange has succeeded or failed.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Feed the next client message (decoded bytes; the initial response for SASL-IR, or b"" when none was sent).
    pub async fn step(&mut self, client: &[u8]) -> SaslStep {
        let state = std::mem::replace(&mut self.state, State::Done);
        let (next, out) = self.advance(state, client).await;
        self.state = next;
        if let SaslStep::Failure(e) = &out {
            tracing::debug!(mechanism = self.mechanism.name(), ip = %self.ip, error = %e, "SASL exchange failed");
        }
        out
    }

    async fn advance(&self, state: State, client: &[u8]) -> (State, SaslStep) {
        match state {
            State::PlainStart if client.is_empty() => {
                (State::PlainAwait, SaslStep::Challenge(Vec::new()))
            }
            State::PlainStart | State::PlainAwait => (State::Done, self.plain(client).await),
            State::LoginStart if client.is_empty() => {
                (State::LoginUser, SaslStep::Challenge(b"Username:".to_vec()))
            }
            // An initial response to LOGIN carries the user name (as Outlook and others send it).
            State::LoginStart | State::LoginUser => match login_username(client) {
                Ok(username) => (
                    State::LoginPassword { username },
                    SaslStep::Challenge(b"Password:".to_vec()),
                ),
                Err(e) => (State::Done, SaslStep::Failure(e)),
            },
            State::LoginPassword { username } => {
                let step = match text(client, "password") {
                    Ok(password) => self.check(&username, &password).await,
                    Err(e) => SaslStep::Failure(e),
                };
                (State::Done, step)
            }
            State::ScramStart if client.is_empty() => {
                (State::ScramAwaitFirst, SaslStep::Challenge(Vec::new()))
            }
            State::ScramStart | State::ScramAwaitFirst => self.scram_first(client).await,
            State::ScramAwaitFinal { server, account } => (
                State::Done,
                self.scram_final(&server, account, client).await,
            ),
            State::Done => (State::Done, malformed("the exchange is already finished")),
        }
    }

    async fn check(&self, username: &str, password: &str) -> SaslStep {
        match self.dir.authenticate(username, password, self.ip).await {
            Ok(account) => SaslStep::Success {
                account,
                server_final: None,
            },
            Err(e) => SaslStep::Failure(e),
        }
    }

    async fn plain(&self, msg: &[u8]) -> SaslStep {
        let mut parts = msg.split(|b| *b == 0);
        let (Some(authzid), Some(authcid), Some(password), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return malformed("PLAIN needs authzid NUL authcid NUL password");
        };
        let (authzid, authcid, password) = match (
            text(authzid, "authzid"),
            text(authcid, "authcid"),
            text(password, "password"),
        ) {
            (Ok(z), Ok(c), Ok(p)) => (z, c, p),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return SaslStep::Failure(e),
        };
        if authcid.is_empty() || authcid.len() > MAX_USERNAME {
            return malformed("PLAIN authcid is empty or too long");
        }
        if password.is_empty() {
            return malformed("PLAIN password is empty");
        }
        if !authzid.is_empty() && authzid.to_lowercase() != authcid.to_lowercase() {
            // We have no proxy authorization: acting as someone else is never allowed.
            tracing::info!(ip = %self.ip, authcid, authzid, "PLAIN authorization identity refused");
            return SaslStep::Failure(AuthError::InvalidCredentials);
        }
        self.check(&authcid, &password).await
    }

    async fn scram_first(&self, msg: &[u8]) -> (State, SaslStep) {
        let first = match ClientFirst::parse(msg) {
            Ok(f) => f,
            Err(e) => return (State::Done, scram_failure(e)),
        };
        if let Some(z) = &first.authzid
            && z.to_lowercase() != first.username.to_lowercase()
        {
            tracing::info!(ip = %self.ip, username = first.username, authzid = z, "SCRAM authorization identity refused");
            return (
                State::Done,
                SaslStep::Failure(AuthError::InvalidCredentials),
            );
        }
        let user_key = crate::user_key(&first.username);
        if let Err(e) = self.dir.admit(self.ip, &user_key).await {
            return (State::Done, SaslStep::Failure(e));
        }
        let account = match self.dir.inner.store.get_account_by_address(&user_key).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "account lookup failed during SCRAM");
                return (
                    State::Done,
                    SaslStep::Failure(AuthError::Temporary(e.to_string())),
                );
            }
        };
        // Unknown users (and accounts without a verifier) get a decoy with a stable salt, so the
        // exchange looks the same whether the account exists; it fails at the proof.
        let verifier = account
            .as_ref()
            .and_then(|a| ScramVerifier::decode(&a.scram_sha256))
            .unwrap_or_else(|| ScramVerifier::decoy(&self.dir.inner.decoy_key, &first.username));
        let server = ScramServer::new(first, verifier, &crate::scram::server_nonce());
        let challenge = server.server_first().as_bytes().to_vec();
        (
            State::ScramAwaitFinal {
                server: Box::new(server),
                account,
            },
            SaslStep::Challenge(challenge),
        )
    }

    async fn scram_final(
        &self,
        server: &ScramServer,
        account: Option<Account>,
        msg: &[u8],
    ) -> SaslStep {
        let user_key = crate::user_key(&server.client_first().username);
        match (server.finish(msg), account) {
            (Ok(server_final), Some(account)) => {
                if account.disabled {
                    SaslStep::Failure(self.dir.fail(self.ip, &user_key, AuthError::Disabled).await)
                } else {
                    self.dir
                        .inner
                        .throttle
                        .success(self.ip, &user_key, Instant::now());
                    tracing::info!(ip = %self.ip, user = account.address, mechanism = "SCRAM-SHA-256", "authenticated");
                    SaslStep::Success {
                        account,
                        server_final: Some(server_final.into_bytes()),
                    }
                }
            }
            (Err(ScramError::Malformed(why)), _) => SaslStep::Failure(AuthError::Malformed(why)),
            // A decoy cannot verify; treat anything else as a wrong password.
            (Ok(_), None) | (Err(ScramError::InvalidProof), _) => SaslStep::Failure(
                self.dir
                    .fail(self.ip, &user_key, AuthError::InvalidCredentials)
                    .await,
            ),
        }
    }
}

fn scram_failure(e: ScramError) -> SaslStep {
    match e {
        ScramError::Malformed(why) => SaslStep::Failure(AuthError::Malformed(why)),
        ScramError::InvalidProof => SaslStep::Failure(AuthError::InvalidCredentials),
    }
}

fn login_username(client: &[u8]) -> Result<String, AuthError> {
    let username = text(client, "user name")?;
    if username.is_empty() || username.len() > MAX_USERNAME {
        return Err(AuthError::Malformed(
            "LOGIN user name is empty or too long".to_string(),
        ));
    }
    Ok(username)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanism_names() {
        assert_eq!(
            Mechanism::from_name("scram-sha-256"),
            Some(Mechanism::ScramSha256)
        );
        assert_eq!(Mechanism::from_name("PLAIN"), Some(Mechanism::Plain));
        assert_eq!(Mechanism::from_name("login"), Some(Mechanism::Login));
        assert_eq!(Mechanism::from_name("CRAM-MD5"), None);
        assert_eq!(MECHANISMS[0].name(), "SCRAM-SHA-256");
    }

    #[test]
    fn cancel() {
        assert!(is_cancel(b"*"));
        assert!(is_cancel(b"*\r\n"));
        assert!(!is_cancel(b"**"));
        assert!(!is_cancel(b""));
    }
}
