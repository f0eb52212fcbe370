//! What a protocol session (SMTP, IMAP, POP3) needs from authentication, defined once: the
//! `Authenticator` and `SaslSession` ports the sessions call, the `Login` they get, and
//! `DirectoryAuth`, the port bound to this crate's `Directory` (credentials, SASL mechanisms,
//! throttling). Sessions depend on the traits only, so their tests run on in-memory doubles.

use std::net::IpAddr;

use async_trait::async_trait;
use wharf_store::{Account, AccountId};

use crate::{AuthError, Directory, MECHANISMS, Mechanism, SaslExchange, SaslStep};

/// Who logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub account_id: AccountId,
    pub address: String,
}

impl From<Account> for Login {
    fn from(a: Account) -> Login {
        Login {
            account_id: a.id,
            address: a.address,
        }
    }
}

/// What one SASL step produced.
#[derive(Debug)]
pub enum SaslOutcome {
    Challenge(Vec<u8>),
    Success {
        login: Login,
        /// SCRAM's server-final message, sent as a last challenge.
        server_final: Option<Vec<u8>>,
    },
    Failure(AuthError),
}

/// One SASL exchange in progress; the session does the base64.
#[async_trait]
pub trait SaslSession: Send + Sync {
    /// Feeds the next decoded client message (`b""` when the client sent no initial response).
    async fn step(&mut self, client: &[u8]) -> SaslOutcome;
}

/// Credentials and SASL, as a session sees them.
#[async_trait]
pub trait Authenticator: Send + Sync {
    /// A user name and password (IMAP LOGIN, POP3 USER/PASS). Implementations throttle repeated
    /// failures themselves.
    async fn authenticate(&self, user: &str, pass: &str, ip: IpAddr) -> Result<Login, AuthError>;
    /// SASL mechanism names in the order to advertise.
    fn mechanisms(&self) -> Vec<&'static str>;
    /// `None` when the mechanism is unknown (`name` is matched case-insensitively).
    fn start_sasl(&self, name: &str, ip: IpAddr) -> Option<Box<dyn SaslSession>>;
}

/// The `Authenticator` of the real system.
#[derive(Clone)]
pub struct DirectoryAuth {
    dir: Directory,
}

impl DirectoryAuth {
    pub fn new(dir: Directory) -> DirectoryAuth {
        DirectoryAuth { dir }
    }
}

struct Exchange(SaslExchange);

#[async_trait]
impl SaslSession for Exchange {
    async fn step(&mut self, client: &[u8]) -> SaslOutcome {
        match self.0.step(client).await {
            SaslStep::Challenge(c) => SaslOutcome::Challenge(c),
            SaslStep::Success {
                account,
                server_final,
            } => SaslOutcome::Success {
                login: account.into(),
                server_final,
            },
            SaslStep::Failure(e) => SaslOutcome::Failure(e),
        }
    }
}

#[async_trait]
impl Authenticator for DirectoryAuth {
    async fn authenticate(&self, user: &str, pass: &str, ip: IpAddr) -> Result<Login, AuthError> {
        self.dir.authenticate(user, pass, ip).await.map(Login::from)
    }

    fn mechanisms(&self) -> Vec<&'static str> {
        MECHANISMS.iter().map(|m| m.name()).collect()
    }

    fn start_sasl(&self, name: &str, ip: IpAddr) -> Option<Box<dyn SaslSession>> {
        let mech = Mechanism::from_name(name)?;
        Some(Box::new(Exchange(self.dir.start_sasl(mech, ip))))
    }
}
