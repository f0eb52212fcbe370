//! The two narrow ports a POP3 session needs from the rest of the system: checking credentials
//! (`Authenticator`) and reading/committing the maildrop (`Maildrop`). The session core only talks
//! to these traits, so transcript tests can drive it without a database; `adapters` binds them to
//! `wharf_directory::Directory` and `wharf_store::Store`.

use async_trait::async_trait;
use tokio::io::AsyncRead;
use wharf_store::{AccountId, MailboxId, MessageId, ModSeq, StoreError, Uid};

/// Authentication is one port for every protocol, defined with the directory
/// (`wharf_directory::session_auth`); `AuthFailure` is the directory's `AuthError`.
pub use wharf_directory::AuthError as AuthFailure;
pub use wharf_directory::session_auth::{Authenticator, Login, SaslOutcome, SaslSession};

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
