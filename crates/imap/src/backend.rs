//! The narrow ports an IMAP session needs from the rest of the system: checking credentials
//! (`Authenticator`, `SaslSession`), the account's mailbox tree (`Mailboxes`), and the messages
//! of a mailbox with their change events (`Messages`). The session core only talks to these
//! traits, so transcript tests drive it with in-memory doubles and no database; `adapters` binds
//! them to `wharf_directory::Directory` and `wharf_store::Store`. Plain data types of
//! `wharf_store` (ids, `Mailbox`, `MessageEntry`, outcomes) travel through them as they are.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncRead;
use tokio::sync::broadcast;
use wharf_store::{
    AccountId, AclChange, AppendOutcome, CopyOutcome, FlagMask, FlagOp, FlagUpdate, Flags, Mailbox,
    MailboxChanges, MailboxEvent, MailboxId, MailboxStatus, MessageContent, MessageEntry,
    MessageId, MetadataLimits, ModSeq, NewMessage, Rights, SharedMailbox, SpecialUse, StoreError,
    TextField, Uid,
};

pub type Result<T> = std::result::Result<T, StoreError>;

/// Authentication is one port for every protocol, defined with the directory
/// (`wharf_directory::session_auth`); `AuthFailure` is the directory's `AuthError`.
pub use wharf_directory::AuthError as AuthFailure;
pub use wharf_directory::session_auth::{Authenticator, Login, SaslOutcome, SaslSession};

/// The mailbox tree of an account.
#[async_trait]
pub trait Mailboxes: Send + Sync {
    async fn list(&self, account: AccountId) -> Result<Vec<Mailbox>>;
    /// `INBOX` matches case-insensitively; other names exactly.
    async fn get(&self, account: AccountId, name: &str) -> Result<Option<Mailbox>>;
    async fn get_by_id(&self, id: MailboxId) -> Result<Option<Mailbox>>;
    /// A new mailbox (fresh UIDVALIDITY); `AlreadyExists` when the name is taken.
    async fn create(
        &self,
        account: AccountId,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<Mailbox>;
    /// Deletes the mailbox and its messages (not its children).
    async fn delete(&self, account: AccountId, id: MailboxId) -> Result<()>;
    /// Renames the mailbox and its children, keeping ids and UIDVALIDITY.
    async fn rename(&self, account: AccountId, id: MailboxId, new_name: &str) -> Result<()>;
    /// Subscriptions are names: one may outlive its mailbox or precede it (RFC 9051 §6.3.7).
    async fn set_subscribed(&self, account: AccountId, name: &str, on: bool) -> Result<()>;
    /// The subscribed names, sorted.
    async fn subscriptions(&self, account: AccountId) -> Result<Vec<String>>;
    /// The account's storage quota: octets used and the limit (0: none).
    async fn quota(&self, account: AccountId) -> Result<(u64, u64)>;
    /// Sets the account's storage limit in octets (0: none), the one every writer enforces.
    async fn set_quota(&self, account: AccountId, limit: u64) -> Result<()>;
    /// Whether the account has the administrator role (`accounts.role`).
    async fn is_admin(&self, account: AccountId) -> Result<bool>;
    /// The account of an address (`user@domain`), if there is one.
    async fn account_by_address(&self, address: &str) -> Result<Option<AccountId>>;
    /// The address of an account, if it exists.
    async fn account_address(&self, account: AccountId) -> Result<Option<String>>;
    /// The ACL of a mailbox (RFC 4314): grantee (`None`: anyone) and rights; the owner, who
    /// holds every right, is not in it.
    async fn acl(&self, mailbox: MailboxId) -> Result<Vec<(Option<AccountId>, Rights)>>;
    /// Changes what `grantee` holds on `owner`'s mailbox in one write (rights that end empty
    /// remove the entry).
    async fn set_acl(
        &self,
        owner: AccountId,
        mailbox: MailboxId,
        grantee: Option<AccountId>,
        change: AclChange,
    ) -> Result<()>;
    /// What `account` holds on `mailbox` (every right on its own).
    async fn rights_on(&self, account: AccountId, mailbox: MailboxId) -> Result<Rights>;
    /// Other accounts' mailboxes `account` holds any right on (its own entry and anyone's),
    /// with their owner's address.
    async fn shared_with(&self, account: AccountId) -> Result<Vec<SharedMailbox>>;
    /// The mailbox's URLAUTH access key (RFC 4467; hex); with `create`, made when it has none.
    async fn urlauth_key(&self, mailbox: MailboxId, create: bool) -> Result<Option<String>>;
    /// Drops the URLAUTH access keys of one of `account`'s mailboxes, or of all.
    async fn reset_urlauth_keys(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
    ) -> Result<()>;
    async fn status(&self, id: MailboxId) -> Result<MailboxStatus>;
    /// METADATA entries (RFC 5464) of a mailbox or of the server (`None`): (lower-cased name,
    /// value), by name.
    async fn get_metadata(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
    ) -> Result<Vec<(String, Vec<u8>)>>;
    /// Sets or (`None`) removes entries, all or none, `limits` enforced with the write
    /// (`StoreError::Limit`); `NotFound` when the mailbox is gone.
    async fn set_metadata(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
        entries: &[(String, Option<Vec<u8>>)],
        limits: &MetadataLimits,
    ) -> Result<()>;
}

/// A message body to be copied to the client as it is read.
pub struct BodyReader {
    pub reader: Box<dyn AsyncRead + Send + Unpin>,
    /// Octets the reader yields in total.
    pub len: u64,
}

impl std::fmt::Debug for BodyReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyReader")
            .field("len", &self.len)
            .finish()
    }
}

/// The messages of the account's mailboxes: index, content, flags, and the changes others make.
#[async_trait]
pub trait Messages: Send + Sync {
    /// Every message in the mailbox, ascending by UID.
    async fn index(&self, mailbox: MailboxId) -> Result<Vec<MessageEntry>>;
    /// Entries with modseq > `since` and UIDs expunged after it.
    async fn changes_since(&self, mailbox: MailboxId, since: ModSeq) -> Result<MailboxChanges>;
    /// Clears \Recent on every message that has it and returns their UIDs (IMAP4rev1).
    async fn claim_recent(&self, mailbox: MailboxId) -> Result<Vec<Uid>>;
    /// Summaries and/or raw messages of several messages, in the order asked; a message that
    /// is gone is a `NotFound` in its own slot.
    async fn contents(
        &self,
        messages: &[MessageId],
        summary: bool,
        raw: bool,
    ) -> Result<Vec<Result<MessageContent>>>;
    /// The raw message in memory (SEARCH HEADER reads the header block from it).
    async fn raw(&self, message: MessageId) -> Result<Bytes>;
    /// The raw message as a reader, for FETCH to stream without holding it in memory.
    async fn open_body(&self, message: MessageId) -> Result<BodyReader>;
    /// Applies a flag change to the given UIDs (missing ones skipped), one modseq for all.
    /// With `unchanged_since`, messages whose modseq is above it are left alone and returned
    /// second (RFC 7162 §3.1.3); the updates are those whose flags changed.
    async fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        flags: Flags,
        keywords: &[String],
        unchanged_since: Option<ModSeq>,
    ) -> Result<(Vec<FlagUpdate>, Vec<Uid>)>;
    async fn copy(&self, src: MailboxId, uids: &[Uid], dst: MailboxId) -> Result<CopyOutcome>;
    /// Copy then expunge from `src`, atomically (RFC 6851).
    async fn move_to(&self, src: MailboxId, uids: &[Uid], dst: MailboxId) -> Result<CopyOutcome>;
    /// COPY or (`is_move`) MOVE whose copies keep only the flags `keep` allows, in one write.
    async fn transfer(
        &self,
        src: MailboxId,
        uids: &[Uid],
        dst: MailboxId,
        is_move: bool,
        keep: FlagMask,
    ) -> Result<CopyOutcome>;
    /// Expunges messages flagged \Deleted (restricted to `uids` when given); UIDs ascending.
    async fn expunge(&self, mailbox: MailboxId, uids: Option<&[Uid]>) -> Result<Vec<Uid>>;
    /// Stores one message (quota enforced); \Recent is added.
    async fn append(
        &self,
        mailbox: MailboxId,
        raw: Bytes,
        flags: Flags,
        keywords: &[String],
        internal_date: i64,
    ) -> Result<AppendOutcome>;
    /// Stores several messages in one transaction, all or none (MULTIAPPEND): consecutive UIDs
    /// in the order given, quota checked on their sum; \Recent is added.
    async fn append_many(
        &self,
        mailbox: MailboxId,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<AppendOutcome>>;
    /// Full-text search in one mailbox: UIDs ascending.
    async fn search_text(
        &self,
        mailbox: MailboxId,
        field: TextField,
        needle: &str,
    ) -> Result<Vec<Uid>>;
    /// Word search in one mailbox (FUZZY, RFC 6203): the UIDs where every word of the needle
    /// occurs, stemmed, with a relevancy 1–100; ascending.
    async fn search_words(
        &self,
        mailbox: MailboxId,
        field: TextField,
        needle: &str,
    ) -> Result<Vec<(Uid, u8)>>;
    /// Change events of one account (every mailbox); lagging receivers resync by `changes_since`.
    fn events(&self, account: AccountId) -> broadcast::Receiver<MailboxEvent>;
}

/// Everything a session talks to, bundled so the service hands one value to each session.
#[derive(Clone)]
pub struct Backend {
    pub auth: Arc<dyn Authenticator>,
    pub mailboxes: Arc<dyn Mailboxes>,
    pub messages: Arc<dyn Messages>,
}
