//! The narrow ports an SMTP session needs from the rest of the system: SASL authentication
//! (`Authenticator`), recipient and sender checks (`Recipients`: aliases, quota), local delivery
//! into the store (`LocalDelivery`) and the outbound queue for remote recipients
//! (`RemoteHandoff`). The session core only talks to these traits, so transcript tests drive it
//! with in-memory doubles; `adapters` binds the first three to `wharf_directory::Directory` and
//! `wharf_store::Store`, the binary implements `RemoteHandoff` on the outbound queue.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use wharf_store::queue::{NewQueueEntry, QueueError, QueueId};
use wharf_store::{AccountId, Delivery, DeliveryResult, StoreError};

/// An authenticated submitter, as far as SMTP cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub account_id: AccountId,
    pub address: String,
}

/// Why a SASL exchange failed; mapped to RFC 4954 replies by the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    InvalidCredentials,
    Throttled { retry_after: Duration },
    Disabled,
    Malformed(String),
    Aborted,
    Temporary(String),
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
    Failure(AuthFailure),
}

/// One SASL exchange in progress; the session does the base64.
#[async_trait]
pub trait SaslSession: Send + Sync {
    /// Feeds the next decoded client message (`b""` when the client sent no initial response).
    async fn step(&mut self, client: &[u8]) -> SaslOutcome;
}

pub trait Authenticator: Send + Sync {
    /// SASL mechanism names in the order to advertise.
    fn mechanisms(&self) -> Vec<&'static str>;
    /// `None` when the mechanism is unknown (`name` is upper-case).
    fn start_sasl(&self, name: &str, ip: IpAddr) -> Option<Box<dyn SaslSession>>;
}

/// Where an address leads (aliases already expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Local {
        /// Accounts to deliver to, without duplicates.
        accounts: Vec<AccountId>,
        /// Alias targets outside the local domains (forwarding).
        external: Vec<String>,
    },
    UnknownUser,
    NotLocalDomain,
}

#[async_trait]
pub trait Recipients: Send + Sync {
    async fn resolve(&self, address: &str) -> Result<Resolution, StoreError>;
    /// Whether `login` may use `address` as envelope sender or in From:.
    async fn may_send_as(&self, login: &Login, address: &str) -> Result<bool, StoreError>;
    /// The account's quota limit (0 = unlimited), `None` when the account no longer exists.
    async fn quota_limit(&self, account: AccountId) -> Result<Option<u64>, StoreError>;
    /// Octets the account stores now.
    async fn quota_used(&self, account: AccountId) -> Result<u64, StoreError>;
}

#[async_trait]
pub trait LocalDelivery: Send + Sync {
    /// Stores one copy per recipient, durably, before returning (the client's 250 depends on it).
    async fn deliver(&self, delivery: Delivery) -> Result<Vec<DeliveryResult>, StoreError>;
}

/// Who vouches for a message handed to the outbound queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Submitted by an authenticated user (the queue may DKIM-sign it).
    Submission { user: String },
    /// Arrived on port 25 for an alias that forwards outside: queued as is.
    Forward,
}

/// Takes messages for remote recipients. Implemented by the binary on top of the outbound queue.
///
/// The session awaits `enqueue` before its final reply, then either `release`s the entry (the
/// reply is 250) or `withdraw`s it (the local part failed and the reply is 4xx: the client will
/// send the whole message again, so the queued copy must not leave, or the remote recipients
/// would get it twice).
#[async_trait]
pub trait RemoteHandoff: Send + Sync + 'static {
    /// Durably queues `entry`, held back until `release`; Ok only once committed. The session
    /// fills `created` (now); `next_attempt` and `expires` are the queue's policy and set by the
    /// implementation. A held entry that is neither released nor withdrawn (the process died in
    /// between) is sent after a short hold anyway.
    async fn enqueue(&self, entry: NewQueueEntry, origin: Origin) -> Result<QueueId, QueueError>;
    /// The session answers 250: deliver the entry now.
    async fn release(&self, id: QueueId);
    /// The session answers with an error after all: forget the entry without any DSN.
    async fn withdraw(&self, id: QueueId);
}

/// Everything a session talks to. `handoff: None`: remote recipients get `451 4.3.0`.
#[derive(Clone)]
pub struct Backend {
    pub auth: Arc<dyn Authenticator>,
    pub recipients: Arc<dyn Recipients>,
    pub delivery: Arc<dyn LocalDelivery>,
    pub handoff: Option<Arc<dyn RemoteHandoff>>,
}
