//! wharf-store: the `Store` contract every protocol crate depends on, the data model, and its backends
//! (SQLite embedded, PostgreSQL scale-out) plus the content-addressed blob stores.
//!
//! Protocol crates use `Arc<dyn Store>` and never name a backend. The outbound queue's contract
//! (`queue::QueueStore`) lives here too, implemented by the same SQL store.
//! Message bodies go through the `BlobStore` trait: a folder (`blob`) or an S3 bucket (`blob_s3`).

pub mod blob;
pub mod blob_s3;
mod events;
pub mod migrate;
pub mod model;
pub mod names;
pub mod queue;
mod sql;
pub mod tally;
mod text;
pub mod words;

pub use blob::{BlobReader, BlobStore};
pub use model::*;
pub use sql::SqlStore;
/// Online backup and restore of the embedded store (`wharf backup` / `wharf restore`).
pub use sql::backup;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::broadcast;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("over quota")]
    OverQuota,
    /// A per-account bound other than the quota was reached (IMAP `NO [LIMIT]`).
    #[error("limit reached: {0}")]
    Limit(String),
    /// A CONDSTORE-style precondition failed or a concurrent change won; retrying may succeed.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("storage backend: {0}")]
    Backend(String),
    /// The database is unreachable or did not answer in time (see `PgTimeouts`); the command
    /// may succeed later. Protocols answer it as a temporary failure (IMAP `NO [UNAVAILABLE]`).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Where a store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// `sqlite:///abs/path/wharf.db` (created when missing) or `postgres://user@host/db`.
    pub url: String,
    /// Root of the filesystem blob store (created when missing); unused when `blob_s3` is set.
    pub blob_dir: PathBuf,
    /// Message bodies in an S3 bucket instead of `blob_dir` (`[store.s3]`).
    pub blob_s3: Option<blob_s3::S3Config>,
    /// How long a blob file stays after its last reference went, before the periodic sweep
    /// (`Store::sweep_orphans`) may remove it: a session that has not yet seen an expunge can
    /// still read the body. Zero removes it as soon as the removing transaction commits.
    pub blob_grace: std::time::Duration,
}

/// `StoreConfig::blob_grace` unless configured (`[store] blob_grace_secs`).
/// Subscribed names one account may hold: subscriptions need no mailbox, so without a bound a
/// client could store names without end.
pub const MAX_SUBSCRIPTIONS: usize = 10_000;

/// Mailboxes one account may hold: each costs a row, a LIST line and a UIDVALIDITY, so a client
/// must not be able to create them without end (IMAP answers `NO [LIMIT]` past it).
pub const MAX_MAILBOXES: usize = 10_000;

/// Grantees one mailbox's ACL may name (IMAP RFC 4314): every session of a grantee reads the
/// entries of the mailboxes shared with it.
pub const MAX_ACL_ENTRIES: usize = 256;

/// Sieve scripts one account may keep, and the size of one: ManageSieve and the CLI apply
/// their own smaller configured bounds; these are the store's last line.
pub const MAX_SIEVE_SCRIPTS: usize = 256;
pub const MAX_SIEVE_SCRIPT_BYTES: usize = 1 << 20;

/// Tracking entries (duplicate ids, vacation replies) one account keeps; past it the entries
/// that expire first are forgotten.
pub const MAX_SIEVE_TRACKING: usize = 10_000;

/// Spam filter: addresses remembered per account as correspondents (the least recently used go
/// first).
pub const MAX_CORRESPONDENTS: i64 = 10_000;

/// Spam filter: training requests one account may have waiting (moving the same messages in and
/// out of Junk again and again must not grow the queue faster than it drains).
pub const MAX_PENDING_TRAINING: i64 = 20_000;

/// Spam filter: messages one move may queue for training; a larger move trains on its first ones.
pub const MAX_TRAINING_PER_CHANGE: usize = 5_000;

pub const DEFAULT_BLOB_GRACE: std::time::Duration = std::time::Duration::from_secs(900);

/// How long the PostgreSQL backend waits before answering `StoreError::Unavailable`, so that a
/// database that is gone or stopped answering fails a command at once instead of after sqlx's
/// 30 s pool timeout or TCP's minutes (issue 15). Unused by SQLite.
///
/// Configured under `[store]` (`pg_acquire_timeout_ms`, `pg_statement_timeout_ms`,
/// `pg_heavy_statement_timeout_ms`); kept apart from `StoreConfig`, which says where a store
/// lives, not how patient it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgTimeouts {
    /// Waiting for a pooled connection, including making a new one. Default 5 s.
    pub acquire: std::time::Duration,
    /// One statement (or BEGIN, or COMMIT) of an interactive command, measured at the client.
    /// Default 5 s.
    pub statement: std::time::Duration,
    /// Statements whose work grows with a mailbox or an account (a text scan of a whole
    /// mailbox, deleting an account). Default 60 s.
    pub heavy_statement: std::time::Duration,
}

impl Default for PgTimeouts {
    fn default() -> PgTimeouts {
        PgTimeouts {
            acquire: std::time::Duration::from_secs(5),
            statement: std::time::Duration::from_secs(5),
            heavy_statement: std::time::Duration::from_secs(60),
        }
    }
}

/// Connects, runs migrations, sweeps orphaned blobs left by a crash, and starts the
/// group-commit writer. Must be called inside a Tokio runtime.
pub async fn open(cfg: &StoreConfig) -> Result<Arc<dyn Store>> {
    open_with_timeouts(cfg, PgTimeouts::default()).await
}

/// `open` with PostgreSQL time limits other than the defaults.
pub async fn open_with_timeouts(cfg: &StoreConfig, limits: PgTimeouts) -> Result<Arc<dyn Store>> {
    Ok(Arc::new(SqlStore::connect(cfg, limits).await?))
}

/// `open`, also handing out the same store as the durable outbound queue: one `SqlStore` (one
/// pool, one blob store) behind both, so queued bodies share blobs with mailbox copies.
pub async fn open_with_queue(
    cfg: &StoreConfig,
) -> Result<(Arc<dyn Store>, Arc<dyn queue::QueueStore>)> {
    open_with_queue_and_timeouts(cfg, PgTimeouts::default()).await
}

/// `open_with_queue` with PostgreSQL time limits other than the defaults.
pub async fn open_with_queue_and_timeouts(
    cfg: &StoreConfig,
    limits: PgTimeouts,
) -> Result<(Arc<dyn Store>, Arc<dyn queue::QueueStore>)> {
    let store = Arc::new(SqlStore::connect(cfg, limits).await?);
    Ok((store.clone(), store))
}

/// Every face of one opened store: mail (`Store`), the outbound queue and the report tallies,
/// all over one `SqlStore` (one pool, one blob store).
pub struct Opened {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn queue::QueueStore>,
    pub tallies: Arc<dyn tally::TallyStore>,
}

/// Opens the store for a server (or a verb) that needs the queue and the report tallies too.
pub async fn open_all(cfg: &StoreConfig, limits: PgTimeouts) -> Result<Opened> {
    let store = Arc::new(SqlStore::connect(cfg, limits).await?);
    Ok(Opened {
        store: store.clone(),
        queue: store.clone(),
        tallies: store,
    })
}

/// Embedded store under `dir`: SQLite database `dir/wharf.db`, blobs under `dir/blobs/`.
pub async fn open_embedded(dir: &Path) -> Result<Arc<dyn Store>> {
    open(&embedded_config(dir)?).await
}

/// The `StoreConfig` `open_embedded` uses for `dir` (created when missing).
pub fn embedded_config(dir: &Path) -> Result<StoreConfig> {
    std::fs::create_dir_all(dir)?;
    let dir = dir.canonicalize()?;
    let db = dir.join("wharf.db");
    let db = db.to_str().ok_or_else(|| {
        StoreError::Invalid(format!("store path is not UTF-8: {}", dir.display()))
    })?;
    Ok(StoreConfig {
        url: format!("sqlite://{db}"),
        blob_dir: dir.join("blobs"),
        blob_s3: None,
        blob_grace: DEFAULT_BLOB_GRACE,
    })
}

/// Everything Wharf persists: the directory's rows, mailboxes, messages, blobs, and change events.
///
/// Every mutation of a mailbox bumps its `highest_modseq`, stamps the rows it touched with the new
/// modseq, and publishes `MailboxEvent::Changed` to the account's subscribers after commit.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ---- domains, accounts, aliases (the directory crate owns the logic; this is the data) ----
    async fn create_domain(&self, name: &str) -> Result<Domain>;
    /// Fails with `Invalid` while accounts or aliases of the domain exist.
    async fn delete_domain(&self, name: &str) -> Result<()>;
    async fn get_domain(&self, name: &str) -> Result<Option<Domain>>;
    async fn list_domains(&self) -> Result<Vec<Domain>>;
    /// Up to `limit` domains named after `after`, by name (keyset pages of the admin API).
    async fn list_domains_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<Domain>>;

    /// Creates the account and its DEFAULT_MAILBOXES in one transaction. The domain must exist.
    async fn create_account(&self, new: NewAccount) -> Result<Account>;
    async fn get_account(&self, id: AccountId) -> Result<Option<Account>>;
    /// Case-insensitive on the domain; local part compared case-insensitively too.
    async fn get_account_by_address(&self, address: &str) -> Result<Option<Account>>;
    async fn list_accounts(&self, domain: Option<&str>) -> Result<Vec<Account>>;
    /// Up to `limit` accounts (of one domain, or all) after the key (domain, lower-cased local
    /// part), in `list_accounts`' order.
    async fn list_accounts_page(
        &self,
        domain: Option<&str>,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<Account>>;
    async fn set_account_secret(
        &self,
        id: AccountId,
        secret_hash: &str,
        scram_sha256: &str,
    ) -> Result<()>;
    async fn set_account_quota(&self, id: AccountId, quota_bytes: i64) -> Result<()>;
    async fn set_account_disabled(&self, id: AccountId, disabled: bool) -> Result<()>;
    async fn set_account_pop3_expire(&self, id: AccountId, days: Option<i64>) -> Result<()>;
    /// Removes the account, its mailboxes and messages; blob references are released.
    async fn delete_account(&self, id: AccountId) -> Result<()>;

    // ---- admin API: account roles and API tokens ----
    /// The account's role (`ROLE_USER` or `ROLE_ADMIN`); `NotFound` for an unknown id.
    async fn account_role(&self, id: AccountId) -> Result<String>;
    async fn set_account_role(&self, id: AccountId, role: &str) -> Result<()>;
    async fn create_api_token(&self, new: NewApiToken) -> Result<ApiToken>;
    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>>;
    /// The token whose secret hashes to `hash` (expired ones too: the caller decides).
    async fn api_token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>>;
    /// Records a use of the token.
    async fn touch_api_token(&self, id: i64, now: i64) -> Result<()>;
    /// false when there was no such token.
    async fn delete_api_token(&self, id: i64) -> Result<bool>;

    // ---- app passwords (per-device secrets accepted in place of the account password) ----
    /// `hash` is the lower-case hex SHA-256 of the secret. None when the account has `limit`
    /// app passwords already: the count and the insert are one atomic step.
    async fn create_app_password(
        &self,
        account: AccountId,
        label: &str,
        hash: &str,
        limit: usize,
    ) -> Result<Option<AppPassword>>;
    /// Revokes all of the account's app passwords (an admin's password reset); how many.
    async fn delete_app_passwords(&self, account: AccountId) -> Result<u64>;
    async fn list_app_passwords(&self, account: AccountId) -> Result<Vec<AppPassword>>;
    /// The account's app password whose secret hashes to `hash`, if any.
    async fn app_password_by_hash(
        &self,
        account: AccountId,
        hash: &str,
    ) -> Result<Option<AppPassword>>;
    /// Records a use.
    async fn touch_app_password(&self, id: i64, now: i64) -> Result<()>;
    /// false when the account has no such app password.
    async fn delete_app_password(&self, account: AccountId, id: i64) -> Result<bool>;

    // ---- nodes serving this store ----
    async fn register_node(&self, node: &NodeInfo) -> Result<()>;
    /// The node's heartbeat; also forgets nodes silent for a week.
    async fn node_seen(&self, id: &str, now: i64) -> Result<()>;
    async fn remove_node(&self, id: &str) -> Result<()>;
    async fn list_nodes(&self) -> Result<Vec<NodeInfo>>;

    // ---- state the nodes share (DKIM keys, ACME, leases, auth failure counts) ----
    async fn node_state_get(&self, scope: &str, name: &str) -> Result<Option<NodeStateEntry>>;
    async fn node_state_list(&self, scope: &str) -> Result<Vec<NodeStateEntry>>;
    /// Stores a value; with `only_if_absent`, an existing row stays and the answer is false.
    async fn node_state_put(
        &self,
        scope: &str,
        name: &str,
        value: &[u8],
        expires_at: Option<i64>,
        now: i64,
        only_if_absent: bool,
    ) -> Result<bool>;
    async fn node_state_delete(&self, scope: &str, name: &str) -> Result<bool>;
    /// Removes the rows of `scope` whose `expires_at` is before `now`.
    async fn node_state_prune(&self, scope: &str, now: i64) -> Result<u64>;
    /// Takes or renews a lease for `ttl_secs`; false while another holder's lease runs.
    async fn try_lease(&self, name: &str, holder: &str, now: i64, ttl_secs: i64) -> Result<bool>;
    async fn release_lease(&self, name: &str, holder: &str) -> Result<()>;
    /// Replaces this node's reported authentication failure counts.
    async fn report_auth_failures(
        &self,
        node: &str,
        counts: &[AuthFailureCount],
        now: i64,
    ) -> Result<()>;
    /// The other nodes' counts in windows that started at or after `since`, summed per key.
    async fn auth_failures_elsewhere(
        &self,
        node: &str,
        since: i64,
    ) -> Result<Vec<AuthFailureCount>>;
    /// Sum of the sizes of the account's messages (each mailbox copy counts).
    async fn quota_used(&self, id: AccountId) -> Result<u64>;

    async fn add_alias(&self, address: &str, target: &str) -> Result<()>;
    /// `target = None` removes every target of the address.
    async fn delete_alias(&self, address: &str, target: Option<&str>) -> Result<()>;
    async fn list_aliases(&self) -> Result<Vec<Alias>>;
    /// Up to `limit` alias rows after the key (address, target), in `list_aliases`' order.
    async fn list_aliases_page(
        &self,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<Alias>>;
    /// Targets of one exact alias address (`local@domain` or `@domain`), case-insensitive.
    async fn alias_targets(&self, address: &str) -> Result<Vec<String>>;

    // ---- mailboxes ----
    async fn list_mailboxes(&self, account: AccountId) -> Result<Vec<Mailbox>>;
    /// `INBOX` matches case-insensitively; other names exactly.
    async fn get_mailbox(&self, account: AccountId, name: &str) -> Result<Option<Mailbox>>;
    async fn get_mailbox_by_id(&self, id: MailboxId) -> Result<Option<Mailbox>>;
    /// New UIDVALIDITY (never equal to one used before for the same name), uid_next 1. At most
    /// [`MAX_MAILBOXES`] per account (`StoreError::Limit`).
    async fn create_mailbox(
        &self,
        account: AccountId,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<Mailbox>;
    /// Deletes the mailbox and its messages (not its children).
    async fn delete_mailbox(&self, account: AccountId, id: MailboxId) -> Result<()>;
    /// Renames the mailbox and every child (`old/...` → `new/...`), keeping ids and UIDVALIDITY.
    /// Renaming INBOX is the IMAP crate's job (create + move), not this.
    async fn rename_mailbox(&self, account: AccountId, id: MailboxId, new_name: &str)
    -> Result<()>;
    /// Subscribes or unsubscribes a name. Subscriptions are names, independent of mailboxes: a
    /// name may be subscribed before its mailbox exists and stays subscribed after it is deleted
    /// (RFC 9051 §6.3.7); RENAME carries them along. At most [`MAX_SUBSCRIPTIONS`] per account.
    async fn set_subscribed(&self, account: AccountId, name: &str, subscribed: bool) -> Result<()>;
    /// The account's subscribed names, sorted.
    async fn subscriptions(&self, account: AccountId) -> Result<Vec<String>>;
    async fn set_special_use(
        &self,
        account: AccountId,
        id: MailboxId,
        role: Option<SpecialUse>,
    ) -> Result<()>;
    async fn mailbox_status(&self, id: MailboxId) -> Result<MailboxStatus>;
    /// IMAP METADATA (RFC 5464) entries of a mailbox, or of the server (`None`), of one account:
    /// (lower-cased name, value), by name.
    async fn get_metadata(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
    ) -> Result<Vec<(String, Vec<u8>)>>;
    /// Sets (`Some`) or removes (`None`) entries, all or none; `limits` are checked in the same
    /// transaction (`StoreError::Limit`). `NotFound` when the mailbox is not the account's.
    async fn set_metadata(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
        entries: &[(String, Option<Vec<u8>>)],
        limits: &MetadataLimits,
    ) -> Result<()>;
    /// The ACL of a mailbox (IMAP RFC 4314): grantee (`None` is "anyone") and rights, "anyone"
    /// first. The owner, who holds every right, is not in it.
    async fn mailbox_acl(&self, mailbox: MailboxId) -> Result<Vec<(Option<AccountId>, Rights)>>;
    /// Changes what `grantee` (`None`: anyone) holds on `owner`'s mailbox, in one write; rights
    /// that end empty remove the entry. `NotFound` when the mailbox is not `owner`'s or the
    /// grantee does not exist, `Invalid` for the owner itself, `Limit` past `MAX_ACL_ENTRIES`.
    async fn change_mailbox_acl(
        &self,
        owner: AccountId,
        mailbox: MailboxId,
        grantee: Option<AccountId>,
        change: AclChange,
    ) -> Result<()>;
    /// `change_mailbox_acl` replacing the rights.
    async fn set_mailbox_acl(
        &self,
        owner: AccountId,
        mailbox: MailboxId,
        grantee: Option<AccountId>,
        rights: Rights,
    ) -> Result<()> {
        self.change_mailbox_acl(owner, mailbox, grantee, AclChange::Replace(rights))
            .await
    }
    /// What `account` holds on `mailbox`: every right as its owner, else its entry and
    /// "anyone"'s together; none when the mailbox does not exist.
    async fn rights_on(&self, account: AccountId, mailbox: MailboxId) -> Result<Rights>;
    /// Other accounts' mailboxes `account` holds any right on, by owner and name.
    async fn shared_with(&self, account: AccountId) -> Result<Vec<SharedMailbox>>;
    /// The URLAUTH access key of a mailbox (RFC 4467; 64 hex digits); with `create`, made when
    /// it has none (`None` then only when the mailbox is gone).
    async fn urlauth_key(&self, mailbox: MailboxId, create: bool) -> Result<Option<String>>;
    /// Drops the URLAUTH access keys of one of `account`'s mailboxes, or of all (RESETKEY).
    async fn reset_urlauth_keys(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
    ) -> Result<()>;

    // ---- messages ----
    /// Stores one message into one mailbox: blob durable, row committed, UID and modseq allocated in
    /// the same transaction. `RECENT` is added to `flags`. Quota is enforced (`OverQuota`).
    async fn append(
        &self,
        mailbox: MailboxId,
        raw: Bytes,
        flags: Flags,
        keywords: &[String],
        internal_date: i64,
    ) -> Result<AppendOutcome>;
    /// Stores several messages into one mailbox in one transaction, all or none (IMAP
    /// MULTIAPPEND, RFC 3502): consecutive UIDs in the order given, quota checked on their sum
    /// (`OverQuota` stores nothing). Outcomes in the order given.
    async fn append_many(
        &self,
        mailbox: MailboxId,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<AppendOutcome>>;
    /// SMTP delivery into each recipient's INBOX, group-committed with concurrent deliveries:
    /// returns only when everything it stored is durable.
    async fn deliver(&self, delivery: Delivery) -> Result<Vec<DeliveryResult>>;
    /// Stores one message as several copies in one transaction (recipients' INBOXes, Sieve keeps
    /// and fileinto copies), group-committed like `deliver`; one result per copy,
    /// `NoSuchAccount` for a mailbox or account that is gone. Quota is enforced per copy.
    async fn deliver_copies(
        &self,
        raw: Bytes,
        internal_date: i64,
        copies: Vec<FiledCopy>,
    ) -> Result<Vec<DeliveryResult>>;
    /// Every message in the mailbox, ascending by UID.
    async fn mailbox_index(&self, mailbox: MailboxId) -> Result<Vec<MessageEntry>>;
    /// Entries with modseq > `since` and UIDs expunged with modseq > `since`.
    async fn changes_since(&self, mailbox: MailboxId, since: ModSeq) -> Result<MailboxChanges>;
    /// The parsed summary stored at append time (opaque bytes written by `wharf_mime`).
    async fn message_summary(&self, message: MessageId) -> Result<Bytes>;
    /// The raw message.
    async fn message_raw(&self, message: MessageId) -> Result<Bytes>;
    /// The raw message as a stream, for bodies sent as they are read (IMAP FETCH BODY[], POP3
    /// RETR): the message's whole size in bytes and a reader of its bytes from offset `start`
    /// on (a `start` past the end gives an empty reader). The reader holds at most
    /// `blob::STREAM_BUFFER` bytes at a time. Take a prefix with `AsyncReadExt::take` for a
    /// partial fetch (`BODY[]<start.length>`). The default reads the whole message (for stores
    /// without a streaming path).
    async fn open_message(&self, message: MessageId, start: u64) -> Result<(u64, BlobReader)> {
        let all = self.message_raw(message).await?;
        let len = all.len() as u64;
        let from = usize::try_from(start.min(len)).unwrap_or(all.len());
        Ok((len, Box::new(std::io::Cursor::new(all.slice(from..)))))
    }
    /// Summaries and/or raw bodies of several messages, in the order asked, with one metadata
    /// query and one batch of blob reads for all of them (FETCH of a sequence set would otherwise
    /// pay two round trips and a file open per message). A message that is gone is a `NotFound`
    /// in its own slot; the outer error is for the batch as a whole.
    async fn message_contents(
        &self,
        messages: &[MessageId],
        summary: bool,
        raw: bool,
    ) -> Result<Vec<Result<MessageContent>>>;
    /// Applies a flag change to the given UIDs (missing UIDs are skipped). Rows whose modseq is
    /// greater than `unchanged_since` are not modified and are returned in the second vector
    /// (RFC 7162 MODIFIED). Only rows that actually change get a new modseq.
    async fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        flags: Flags,
        keywords: &[String],
        unchanged_since: Option<ModSeq>,
    ) -> Result<(Vec<FlagUpdate>, Vec<Uid>)>;
    /// Copies the given UIDs (missing skipped) into `dst`, sharing blobs. Quota is enforced.
    async fn copy_messages(
        &self,
        src: MailboxId,
        uids: &[Uid],
        dst: MailboxId,
    ) -> Result<CopyOutcome>;
    /// Copy then expunge from `src` in one transaction (RFC 6851).
    async fn move_messages(
        &self,
        src: MailboxId,
        uids: &[Uid],
        dst: MailboxId,
    ) -> Result<CopyOutcome>;
    /// Expunges messages flagged \Deleted (restricted to `uids` when given); leaves tombstones.
    /// Returns the expunged UIDs ascending.
    async fn expunge(&self, mailbox: MailboxId, uids: Option<&[Uid]>) -> Result<Vec<Uid>>;
    /// COPY (or, with `is_move`, MOVE) keeping only the flags `keep` allows on the copies, in
    /// the same transaction (a shared mailbox's grantee without `s`, `t` or `w`).
    async fn transfer_messages(
        &self,
        src: MailboxId,
        uids: &[Uid],
        dst: MailboxId,
        is_move: bool,
        keep: FlagMask,
    ) -> Result<CopyOutcome>;
    /// Expunges the given UIDs whatever their flags (POP3 UPDATE state). Returns the expunged UIDs.
    async fn expunge_uids(&self, mailbox: MailboxId, uids: &[Uid]) -> Result<Vec<Uid>>;
    /// Atomically clears RECENT on every message of the mailbox that has it and returns their UIDs
    /// (the one session that claims them reports them as \Recent).
    async fn claim_recent(&self, mailbox: MailboxId) -> Result<Vec<Uid>>;
    /// Full-text search in one mailbox (SQLite FTS5 / PostgreSQL tsvector, plus a substring check
    /// for correctness): UIDs ascending.
    async fn search_text(
        &self,
        mailbox: MailboxId,
        field: TextField,
        needle: &str,
    ) -> Result<Vec<Uid>>;
    /// Word search in one mailbox (IMAP FUZZY, RFC 6203; `words`): the messages where every
    /// word of the needle occurs, stemmed, with their relevancy 1–100; UIDs ascending.
    async fn search_words(
        &self,
        mailbox: MailboxId,
        field: TextField,
        needle: &str,
    ) -> Result<Vec<(Uid, u8)>>;
    /// Forgets the UIDs expunged longer than `horizon` ago (QRESYNC tombstones); a later
    /// `changes_since` from before them says `expunged_complete: false`. Returns how many.
    async fn prune_tombstones(&self, horizon: std::time::Duration) -> Result<usize>;
    /// Fills in the header search text of up to `batch` messages stored before it was kept
    /// (migration 0007); how many were done, 0 once none is left.
    async fn backfill_header_text(&self, batch: usize) -> Result<usize>;
    /// Extracts the text of document attachments (PDF, DOCX, XLSX, PPTX, ODT/ODS/ODP) of up to
    /// `batch` messages not done yet into their searchable body text, within `limits` per
    /// message; how many were looked at, 0 once none is left (issue 22; run in the background).
    async fn extract_attachment_text(
        &self,
        batch: usize,
        limits: wharf_mime::attachments::Limits,
    ) -> Result<usize> {
        let _ = (batch, limits);
        Ok(0)
    }
    /// PostgreSQL: adds up to `batch` messages not yet in the stem index (FUZZY, migration 0026)
    /// to it; how many, 0 once none is left (`wharf reindex`; a serving store's writer does this
    /// itself in its idle time, on both backends). SQLite: 0 (its one writer connection belongs
    /// to the store's writer).
    async fn index_stems(&self, batch: usize) -> Result<usize> {
        let _ = batch;
        Ok(0)
    }
    /// PostgreSQL: messages waiting for the stem index, those another transaction is indexing
    /// included (`index_stems` skips them). SQLite: 0, as for `index_stems`.
    async fn stems_pending(&self) -> Result<u64> {
        Ok(0)
    }
    /// Marks the messages of `account` (every account: `None`) for re-extraction: their search
    /// text is rewritten from the message by `backfill_header_text`, which also puts their
    /// attachments back in line for `extract_attachment_text` and (SQLite) their rows back in
    /// line for the trigram index (`wharf reindex`). How many rows were marked.
    async fn mark_for_reindex(&self, account: Option<AccountId>) -> Result<u64> {
        let _ = account;
        Ok(0)
    }

    // ---- POP3 maildrop lock (RFC 1939), shared by every node ----
    /// Takes the account's maildrop lock for `owner` until `ttl_secs` from now; false if another
    /// live owner holds it. Calling again as the same owner refreshes it.
    async fn lock_maildrop(&self, account: AccountId, owner: &str, ttl_secs: i64) -> Result<bool>;
    async fn unlock_maildrop(&self, account: AccountId, owner: &str) -> Result<()>;

    // ---- events and housekeeping ----
    /// Change events of one account (every mailbox). Lagging receivers must resync via `changes_since`.
    fn subscribe(&self, account: AccountId) -> broadcast::Receiver<MailboxEvent>;
    /// Removes blobs no message refers to and temp files left by a crash. Returns how many were removed.
    async fn sweep_orphans(&self) -> Result<u64>;

    // Sieve (RFC 5228) state of an account.
    async fn list_sieve_scripts(&self, account: AccountId) -> Result<Vec<SieveScriptInfo>>;
    async fn get_sieve_script(&self, account: AccountId, name: &str) -> Result<Option<String>>;
    /// Creates or replaces; `StoreError::Limit` past `MAX_SIEVE_SCRIPTS` or
    /// `MAX_SIEVE_SCRIPT_BYTES`. Replacing keeps the script's active state.
    async fn put_sieve_script(&self, account: AccountId, name: &str, content: &str) -> Result<()>;
    /// `StoreError::NotFound` when there is no such script.
    async fn delete_sieve_script(&self, account: AccountId, name: &str) -> Result<()>;
    /// `NotFound` / `AlreadyExists`.
    async fn rename_sieve_script(&self, account: AccountId, from: &str, to: &str) -> Result<()>;
    /// Makes `name` the one active script; `None` deactivates them all.
    async fn set_active_sieve_script(&self, account: AccountId, name: Option<&str>) -> Result<()>;
    /// The active script's (name, content).
    async fn active_sieve_script(&self, account: AccountId) -> Result<Option<(String, String)>>;
    /// Tracking ids not expired at `now` (the duplicate test's memory).
    async fn sieve_tracked(&self, account: AccountId, now: i64) -> Result<Vec<String>>;
    /// Records (id, expires_at) pairs.
    async fn track_sieve_ids(&self, account: AccountId, ids: &[(String, i64)]) -> Result<()>;
    /// Records `id` until `expires_at` unless it is already recorded and unexpired at `now`;
    /// true when this call recorded it (a vacation reply may go out), atomically across nodes.
    async fn claim_sieve_reply(
        &self,
        account: AccountId,
        id: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool>;

    // Spam filter state (`wharf-spam` decides; the store keeps the numbers for every node).
    /// Each model's totals and its (ham, spam) counts of `tokens`; model 0 is the global one,
    /// any other an account id.
    async fn spam_counts(&self, models: &[i64], tokens: &[i64]) -> Result<Vec<SpamModelCounts>>;
    /// Trains a message of the account (None: one from outside the store, always counted) as
    /// spam or ham in its model and the global one; false when it was already trained so.
    async fn spam_train(
        &self,
        account: AccountId,
        message: Option<MessageId>,
        spam: bool,
        tokens: &[i64],
    ) -> Result<bool>;
    /// Queues training of an account's messages (`$Junk`/`$NotJunk`, `wharf spam train`).
    async fn queue_spam_training(
        &self,
        account: AccountId,
        messages: &[MessageId],
        spam: bool,
    ) -> Result<()>;
    /// Takes (and removes) up to `limit` queued training requests, oldest first. Moves into and
    /// out of Junk queue them by themselves.
    async fn take_spam_training(&self, limit: usize) -> Result<Vec<SpamTrainingRequest>>;
    async fn greylist_entry(&self, triplet: &str) -> Result<Option<GreylistEntry>>;
    async fn put_greylist_entry(&self, triplet: &str, entry: &GreylistEntry) -> Result<()>;
    /// Forgets triplets unseen since `before` whose pass has run out.
    async fn prune_greylist(&self, before: i64) -> Result<u64>;
    /// Allow/block entries of these scopes (domains, account addresses), or of all.
    async fn spam_list_entries(&self, scopes: Option<&[String]>) -> Result<Vec<SpamListEntry>>;
    /// Up to `limit` entries of one scope (or all) after the key (scope, entry), in
    /// `spam_list_entries`' order.
    async fn spam_list_entries_page(
        &self,
        scope: Option<&str>,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<SpamListEntry>>;
    async fn put_spam_list_entry(&self, entry: &SpamListEntry) -> Result<()>;
    async fn delete_spam_list_entry(&self, scope: &str, entry: &str) -> Result<bool>;
    /// The account wrote to these addresses (their replies are trusted).
    async fn note_correspondents(&self, account: AccountId, addresses: &[String]) -> Result<()>;
    async fn is_correspondent(&self, account: AccountId, address: &str) -> Result<bool>;
    /// Whether the account wrote to any of `addresses` (one query for all; empty is false).
    async fn any_correspondent(&self, account: AccountId, addresses: &[String]) -> Result<bool>;
    /// Past (ham, spam) verdicts of mail authenticated as from `domain`.
    async fn spam_reputation(&self, domain: &str) -> Result<(u64, u64)>;
    async fn add_spam_reputation(&self, domain: &str, spam: bool) -> Result<()>;
    /// Removes tokens trained at most once and not since `before`, tokens unlearned to zero,
    /// and reputations unused since `before`; the rows removed.
    async fn prune_spam_state(&self, before: i64) -> Result<u64>;
}
