//! The two narrow ports a POP3 session needs from the rest of the system: checking credentials
//! (`Authenticator`) and reading/committing the maildrop (`Maildrop`). The session core only talks
//! to these traits, so transcript tests can drive it without a database; `adapters` binds them to
//! `wharf_directory::Directory` and `wharf_store::Store`.

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::AsyncRead;
use wharf_store::{AccountId, MailboxId, MessageId, ModSeq, StoreError, Uid};

/// An authenticated user, as far as POP3 cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub account_id: AccountId,
    pub address: String,
}

/// Why a login failed; mapped to RFC 2449/3206 response codes by the session.
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
        server_final: Option<Vec<u8>>,
    },
    Failure(AuthFailure),
}

/// One SASL exchange in progress; the session does the base64.
#[async_trait]
pub trait SaslSession: Send {
    /// Feeds the next decoded client message (`b""` when the client sent no initial response).
    async fn step(&mut self, client: &[u8]) -> SaslOutcome;
}

#[async_trait]
pub trait Authenticator: Send + Sync {
    /// USER/PASS. Implementations throttle repeated failures themselves.
    async fn authenticate(&self, user: &str, pass: &str, ip: IpAddr) -> Result<Login, AuthFailure>;
    /// SASL mechanism names in the order to advertise.
    fn mechanisms(&self) -> Vec<&'static str>;
    /// `None` when the mechanism is unknown (`name` is matched case-insensitively).
    fn start_sasl(&self, name: &str, ip: IpAddr) -> Option<Box<dyn SaslSession>>;
}

/// One message of the maildrop as captured at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropEntry {
    pub uid: Uid,
    pub message_id: MessageId,
    /// Exact octets RETR sends for this message before dot-stuffing (see `transfer`).
    pub size: u64,
    /// Octets of the message as stored (what `Maildrop::open` reports).
    pub stored_size: u64,
    /// Unix seconds.
    pub internal_date: i64,
    /// Had `\Seen` when the snapshot was taken.
    pub seen: bool,
}

/// The maildrop (INBOX) as it was at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub mailbox_id: MailboxId,
    pub uid_validity: u32,
    /// Highest modseq at the time the entries were read; expunges after it are found incrementally.
    pub modseq: ModSeq,
    /// Ascending by UID: entry `i` is message number `i + 1`.
    pub entries: Vec<DropEntry>,
    /// Per-account POP3 expire policy in days (`None` = never).
    pub expire_days: Option<i64>,
}

/// A stored message opened for reading: RETR and TOP stream it from `reader` in bounded chunks.
pub struct MessageBody {
    /// Octets as stored.
    pub size: u64,
    pub reader: Box<dyn AsyncRead + Send + Unpin>,
}

impl std::fmt::Debug for MessageBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageBody")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// Expunges observed since a given modseq.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vanished {
    pub uids: Vec<Uid>,
    pub modseq: ModSeq,
}

#[async_trait]
pub trait Maildrop: Send + Sync {
    /// Takes (or refreshes) the account's maildrop lock; `false` when another live owner holds it.
    async fn lock(
        &self,
        account: AccountId,
        owner: &str,
        ttl_secs: i64,
    ) -> Result<bool, StoreError>;
    async fn unlock(&self, account: AccountId, owner: &str) -> Result<(), StoreError>;
    /// Reads the INBOX index and the account's policy; sizes are exact transfer sizes.
    async fn snapshot(&self, account: AccountId) -> Result<Snapshot, StoreError>;
    /// Opens the raw message for reading, or `None` when it no longer exists.
    async fn open(&self, message: MessageId) -> Result<Option<MessageBody>, StoreError>;
    /// UIDs expunged from the mailbox after `since`.
    async fn vanished_since(
        &self,
        mailbox: MailboxId,
        since: ModSeq,
    ) -> Result<Vanished, StoreError>;
    /// Adds `\Seen` to the given UIDs (missing ones skipped).
    async fn mark_seen(&self, mailbox: MailboxId, uids: &[Uid]) -> Result<(), StoreError>;
    /// Removes the given UIDs in one transaction, publishing the change; returns those removed.
    async fn expunge(&self, mailbox: MailboxId, uids: &[Uid]) -> Result<Vec<Uid>, StoreError>;
}
