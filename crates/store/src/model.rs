//! The data model shared by every backend and every protocol crate: plain values, no I/O.

use serde::{Deserialize, Serialize};

pub type DomainId = i64;
pub type AccountId = i64;
pub type MailboxId = i64;
/// Row id of a stored message (one per delivered copy of a blob per account).
pub type MessageId = i64;
pub type Uid = u32;
pub type ModSeq = u64;

/// A Sieve script as listed (ManageSieve LISTSCRIPTS, `wharf sieve list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SieveScriptInfo {
    pub name: String,
    pub active: bool,
    /// Octets of the script text.
    pub size: u64,
}

/// An account's role: `admin` may use the admin REST API with its password.
pub const ROLE_ADMIN: &str = "admin";
/// The role every account starts with.
pub const ROLE_USER: &str = "user";

/// An API token of the admin REST API; only a SHA-256 of its secret is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    /// Lower-case hex SHA-256 of the secret.
    pub hash: String,
    /// Scope names (`read`, `write`), as given at creation.
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

/// An app password of an account (the secret itself is never stored, only its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppPassword {
    pub id: i64,
    pub account_id: AccountId,
    /// The device or client it is for, as its owner named it.
    pub label: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// What `Store::create_api_token` stores.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    pub name: String,
    pub hash: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<i64>,
}

/// One node serving the store (`wharf serve`), as `wharf node list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Generated at start (`n` and 32 hex digits); the node's lease owner name.
    pub id: String,
    pub hostname: String,
    pub pid: u32,
    pub version: String,
    /// Unix seconds.
    pub started_at: i64,
    pub last_seen: i64,
}

/// One named value the nodes of a store share (`Store::node_state_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStateEntry {
    pub name: String,
    pub value: Vec<u8>,
    /// Lease rows: the node holding it.
    pub holder: Option<String>,
    /// Unix seconds.
    pub updated_at: i64,
    pub expires_at: Option<i64>,
}

/// Authentication failures counted for one key (a client source or an account name) in the
/// window that started at `window_start` (unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailureCount {
    /// `ip` or `account`.
    pub kind: String,
    pub key: String,
    pub failures: u32,
    pub window_start: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    pub id: DomainId,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub domain_id: DomainId,
    pub local_part: String,
    /// `local_part@domain`, lower-cased domain.
    pub address: String,
    /// PHC string (argon2id).
    pub secret_hash: String,
    /// SCRAM-SHA-256 verifier (RFC 5802 / 7677), serialised by the directory crate; empty when unset.
    pub scram_sha256: String,
    /// 0 = unlimited.
    pub quota_bytes: i64,
    pub disabled: bool,
    /// Per-account POP3 policy: delete messages older than this many days after download (None = keep).
    pub pop3_expire_days: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    pub address: String,
    pub secret_hash: String,
    pub scram_sha256: String,
    pub quota_bytes: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alias {
    /// `local@domain`, or `@domain` for a catch-all.
    pub address: String,
    /// An account address, another alias, or an external address.
    pub target: String,
}

/// RFC 6154 special-use roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SpecialUse {
    All,
    Archive,
    Drafts,
    Flagged,
    Junk,
    Sent,
    Trash,
}

impl SpecialUse {
    /// The IMAP attribute, e.g. `\Sent`.
    pub fn attribute(self) -> &'static str {
        match self {
            SpecialUse::All => "\\All",
            SpecialUse::Archive => "\\Archive",
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Flagged => "\\Flagged",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Trash => "\\Trash",
        }
    }

    pub fn from_attribute(s: &str) -> Option<SpecialUse> {
        let s = s.strip_prefix('\\').unwrap_or(s);
        Some(match s.to_ascii_lowercase().as_str() {
            "all" => SpecialUse::All,
            "archive" => SpecialUse::Archive,
            "drafts" => SpecialUse::Drafts,
            "flagged" => SpecialUse::Flagged,
            "junk" => SpecialUse::Junk,
            "sent" => SpecialUse::Sent,
            "trash" => SpecialUse::Trash,
            _ => return None,
        })
    }

    /// Stable text used in the database column.
    pub fn as_db(self) -> &'static str {
        &self.attribute()[1..]
    }
}

/// Mailboxes every new account gets, with their roles.
pub const DEFAULT_MAILBOXES: &[(&str, Option<SpecialUse>)] = &[
    ("INBOX", None),
    ("Drafts", Some(SpecialUse::Drafts)),
    ("Sent", Some(SpecialUse::Sent)),
    ("Junk", Some(SpecialUse::Junk)),
    ("Trash", Some(SpecialUse::Trash)),
    ("Archive", Some(SpecialUse::Archive)),
];

/// Hierarchy delimiter of mailbox names as stored (UTF-8, full path).
pub const HIERARCHY_DELIMITER: char = '/';

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    pub id: MailboxId,
    pub account_id: AccountId,
    /// Full UTF-8 path with `/` as delimiter; `INBOX` is always spelled so.
    pub name: String,
    pub special_use: Option<SpecialUse>,
    pub uid_validity: u32,
    pub uid_next: Uid,
    pub highest_modseq: ModSeq,
}

/// System flags as a bitset. Keywords travel separately.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Flags(pub u32);

impl Flags {
    pub const SEEN: Flags = Flags(1);
    pub const ANSWERED: Flags = Flags(2);
    pub const FLAGGED: Flags = Flags(4);
    pub const DELETED: Flags = Flags(8);
    pub const DRAFT: Flags = Flags(16);
    /// Set at delivery/append; cleared when a session claims it (IMAP4rev1 \Recent).
    pub const RECENT: Flags = Flags(32);

    pub const fn empty() -> Flags {
        Flags(0)
    }
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
    pub const fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }
    pub const fn difference(self, other: Flags) -> Flags {
        Flags(self.0 & !other.0)
    }
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        self.union(rhs)
    }
}

/// One message as seen in one mailbox (the IMAP view).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageEntry {
    pub uid: Uid,
    pub message_id: MessageId,
    pub flags: Flags,
    /// Keywords as given by the client (case preserved), sorted, no duplicates (case-insensitive).
    pub keywords: Vec<String>,
    pub modseq: ModSeq,
    pub size: u64,
    /// Unix seconds.
    pub internal_date: i64,
    /// When it was saved into this mailbox (RFC 8514), unix seconds; the internal date for
    /// messages stored before it was kept.
    pub saved_at: i64,
}

/// What [`crate::Store::message_contents`] read for one message: each part only when asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageContent {
    /// The parsed summary stored at append time.
    pub summary: Option<bytes::Bytes>,
    /// The raw message.
    pub raw: Option<bytes::Bytes>,
    /// With the summary: the RFC 8970 preview (empty when the message has no text).
    pub preview: Option<String>,
    /// With the summary: an RFC 8474 EMAILID, the same for every copy of the message and never
    /// given to another (the row id, which SQLite may reuse, with the content hash).
    pub email_id: Option<String>,
}

/// What changed in a mailbox after a given modseq.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailboxChanges {
    /// Entries added or whose flags changed, ascending by UID.
    pub changed: Vec<MessageEntry>,
    /// UIDs expunged, ascending.
    pub expunged: Vec<Uid>,
    /// False when tombstones newer than `since` were pruned (see `Store::prune_tombstones`):
    /// `expunged` is then incomplete, and a client must compare UIDs to find what is gone.
    pub expunged_complete: bool,
    pub highest_modseq: ModSeq,
    pub uid_next: Uid,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailboxStatus {
    pub messages: u32,
    pub unseen: u32,
    pub recent: u32,
    pub deleted: u32,
    /// Sum of message sizes in octets.
    pub size: u64,
    /// Sum of the sizes of the messages flagged \Deleted (RFC 9208 DELETED-STORAGE).
    pub deleted_size: u64,
    pub uid_next: Uid,
    pub uid_validity: u32,
    pub highest_modseq: ModSeq,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Add,
    Remove,
    Replace,
    /// Replace only the flags (and, with `keywords`, the keywords) the mask names, keeping the
    /// others as they are: a FLAGS store by an IMAP grantee without every flag right (RFC 4314).
    ReplaceWithin(FlagMask),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagUpdate {
    pub uid: Uid,
    pub flags: Flags,
    pub keywords: Vec<String>,
    pub modseq: ModSeq,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendOutcome {
    pub mailbox_id: MailboxId,
    pub uid_validity: u32,
    pub uid: Uid,
    pub modseq: ModSeq,
    pub message_id: MessageId,
}

/// One message of an all-or-nothing APPEND of several (IMAP MULTIAPPEND, RFC 3502).
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub raw: bytes::Bytes,
    /// The client's flags; `RECENT` is added.
    pub flags: Flags,
    pub keywords: Vec<String>,
    pub internal_date: i64,
}

/// UID mapping of a COPY/MOVE (RFC 4315 COPYUID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOutcome {
    pub dst_uid_validity: u32,
    /// (source UID, destination UID), ascending by source UID.
    pub mapping: Vec<(Uid, Uid)>,
}

/// A message arriving by SMTP for one or more local accounts (their INBOX).
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The complete message as it will be stored (trace headers already prepended).
    pub raw: bytes::Bytes,
    /// Unix seconds.
    pub internal_date: i64,
    pub recipients: Vec<AccountId>,
    /// File into each recipient's Junk mailbox (special use `\Junk`; INBOX when it has none),
    /// as the inbound trust checks decide for quarantined mail.
    pub junk: bool,
}

/// Where one copy of a delivered message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CopyTarget {
    /// The account's INBOX, as a plain SMTP delivery (flags of the copy ignored).
    Inbox(AccountId),
    /// The account's Junk mailbox (INBOX when it has none), flags ignored.
    Junk(AccountId),
    /// A given mailbox, with the copy's flags and keywords (a Sieve keep or fileinto).
    Mailbox(MailboxId),
}

/// One copy of a delivered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiledCopy {
    pub target: CopyTarget,
    pub flags: Flags,
    pub keywords: Vec<String>,
}

/// Per-recipient result of a delivery, in the order of `Delivery::recipients`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryResult {
    Stored(AppendOutcome),
    /// The account is over quota with this message; `message_alone_exceeds` when the message is larger than the whole quota.
    OverQuota {
        message_alone_exceeds: bool,
    },
    /// Account missing or disabled.
    NoSuchAccount,
}

/// Full-text search fields (RFC 9051 SEARCH keys answered from the index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextField {
    /// Headers and body.
    Text,
    Body,
    Subject,
    From,
    To,
    Cc,
    Bcc,
}

/// Access rights on a mailbox (IMAP ACL, RFC 4314 §2.1), as a bitset. The owner of a mailbox
/// holds `Rights::ALL`; other accounts hold what its ACL grants them or "anyone".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Rights(pub u16);

impl Rights {
    /// `l`: the mailbox is visible to LIST, LSUB and the like.
    pub const LOOKUP: Rights = Rights(1);
    /// `r`: SELECT, EXAMINE, STATUS, FETCH, SEARCH, COPY from.
    pub const READ: Rights = Rights(1 << 1);
    /// `s`: keep \Seen across sessions (set and clear it).
    pub const SEEN: Rights = Rights(1 << 2);
    /// `w`: set and clear flags other than \Seen and \Deleted.
    pub const WRITE: Rights = Rights(1 << 3);
    /// `i`: APPEND, COPY/MOVE into.
    pub const INSERT: Rights = Rights(1 << 4);
    /// `p`: send mail to the submission address of the mailbox (not used by Wharf's delivery).
    pub const POST: Rights = Rights(1 << 5);
    /// `k`: create mailboxes below it (and rename into it).
    pub const CREATE: Rights = Rights(1 << 6);
    /// `x`: delete or rename the mailbox.
    pub const DELETE_MAILBOX: Rights = Rights(1 << 7);
    /// `t`: set and clear \Deleted.
    pub const DELETE_MESSAGES: Rights = Rights(1 << 8);
    /// `e`: EXPUNGE (and expunge on CLOSE, MOVE out).
    pub const EXPUNGE: Rights = Rights(1 << 9);
    /// `a`: administer: SETACL, DELETEACL, GETACL, LISTRIGHTS.
    pub const ADMIN: Rights = Rights(1 << 10);

    pub const NONE: Rights = Rights(0);
    pub const ALL: Rights = Rights((1 << 11) - 1);

    /// The standard rights, in RFC 4314's order, with their letters.
    const LETTERS: [(char, Rights); 11] = [
        ('l', Rights::LOOKUP),
        ('r', Rights::READ),
        ('s', Rights::SEEN),
        ('w', Rights::WRITE),
        ('i', Rights::INSERT),
        ('p', Rights::POST),
        ('k', Rights::CREATE),
        ('x', Rights::DELETE_MAILBOX),
        ('t', Rights::DELETE_MESSAGES),
        ('e', Rights::EXPUNGE),
        ('a', Rights::ADMIN),
    ];

    pub const fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn intersects(self, other: Rights) -> bool {
        self.0 & other.0 != 0
    }

    pub const fn union(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }

    pub const fn difference(self, other: Rights) -> Rights {
        Rights(self.0 & !other.0)
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Parses rights letters. The obsolete `c` stands for `k` and `x`, `d` for `t` and `e`
    /// (RFC 4314 §2.1.1, the first of its two readings); digits and other letters are unknown
    /// and answered with the letter at fault.
    pub fn parse(letters: &str) -> std::result::Result<Rights, char> {
        let mut r = Rights::NONE;
        for ch in letters.chars() {
            r = r.union(match ch {
                'c' => Rights::CREATE.union(Rights::DELETE_MAILBOX),
                'd' => Rights::DELETE_MESSAGES.union(Rights::EXPUNGE),
                _ => match Rights::LETTERS.iter().find(|(l, _)| *l == ch) {
                    Some((_, bit)) => *bit,
                    None => return Err(ch),
                },
            });
        }
        Ok(r)
    }

    /// The standard letters only (`lrswipkxtea` order), as stored.
    pub fn letters(self) -> String {
        Rights::LETTERS
            .iter()
            .filter(|(_, bit)| self.contains(*bit))
            .map(|(l, _)| *l)
            .collect()
    }

    /// The letters an IMAP client is shown: the standard ones plus the obsolete `c` when any of
    /// `k`/`x` is held and `d` when any of `t`/`e` is (RFC 4314 §2.1.1).
    pub fn imap_letters(self) -> String {
        let mut s = self.letters();
        if self.intersects(Rights::CREATE.union(Rights::DELETE_MAILBOX)) {
            s.push('c');
        }
        if self.intersects(Rights::DELETE_MESSAGES.union(Rights::EXPUNGE)) {
            s.push('d');
        }
        s
    }
}

/// How SETACL changes one grantee's rights: replaced, or some added or removed (applied to
/// the stored entry inside the write, so two changes at once both count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclChange {
    Replace(Rights),
    Add(Rights),
    Remove(Rights),
}

impl AclChange {
    pub fn apply(self, now: Rights) -> Rights {
        match self {
            AclChange::Replace(r) => r,
            AclChange::Add(r) => now.union(r),
            AclChange::Remove(r) => now.difference(r),
        }
    }
}

/// What a copy keeps of its source's flags (IMAP ACL, RFC 4314 §4: only the flags the copier
/// may set in the target): system flags in `flags`, keywords when `keywords`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagMask {
    pub flags: Flags,
    pub keywords: bool,
}

impl FlagMask {
    /// Everything kept.
    pub const ALL: FlagMask = FlagMask {
        flags: Flags(u32::MAX),
        keywords: true,
    };
}

/// A mailbox of another account that an account may see (its ACL grants it rights).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedMailbox {
    pub mailbox: Mailbox,
    /// The owner's address (`Other Users/<address>/<name>` in IMAP).
    pub owner: String,
    /// What the account holds: its own entry and "anyone"'s, together.
    pub rights: Rights,
}

/// A change published to sessions of one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailboxEvent {
    /// Something in this mailbox changed (append, flags, expunge): sessions call `changes_since`.
    Changed {
        mailbox_id: MailboxId,
        highest_modseq: ModSeq,
    },
    /// Mailbox list changed (create, delete, rename, subscribe).
    MailboxesChanged,
    /// METADATA entries (RFC 5464) of a mailbox, or of the server when `mailbox_id` is `None`,
    /// were set or removed: their lower-cased names (IMAP NOTIFY reports them, RFC 5465 §5.6).
    MetadataChanged {
        mailbox_id: Option<MailboxId>,
        entries: Vec<String>,
    },
}

/// One model's numbers for a set of tokens (`wharf-spam`'s classifier input): the messages it
/// was trained on and, per token it has seen, (ham, spam) message counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpamModelCounts {
    /// 0 = the global model, else the account id.
    pub model: i64,
    pub ham_messages: u64,
    pub spam_messages: u64,
    pub tokens: std::collections::HashMap<i64, (u64, u64)>,
}

/// A user's move into or out of Junk, waiting to be trained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpamTrainingRequest {
    pub id: i64,
    pub account: AccountId,
    pub message: MessageId,
    pub spam: bool,
}

/// A greylisting triplet's history (Unix seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GreylistEntry {
    pub first_seen: i64,
    pub last_seen: i64,
    /// The triplet passes without delay until then (0: it has not passed yet).
    pub passed_until: i64,
}

/// One allow/block list entry: `scope` is a domain name (all its users) or an account
/// address; `entry` an address or `@domain`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SpamListEntry {
    pub scope: String,
    pub entry: String,
    pub allow: bool,
}

/// Bounds on an account's IMAP METADATA entries (RFC 5464), checked by `Store::set_metadata`
/// inside its transaction, under the account lock, so sessions writing at once cannot pass them
/// together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataLimits {
    /// Octets of one value.
    pub max_value: u64,
    /// Entries of one mailbox (or of the server).
    pub max_entries_per_mailbox: u64,
    /// Entries of the account, every mailbox and the server together.
    pub max_entries: u64,
    /// Octets of the account's entries (names and values) together.
    pub max_bytes: u64,
}

impl Default for MetadataLimits {
    fn default() -> Self {
        MetadataLimits {
            max_value: 64 * 1024,
            max_entries_per_mailbox: 100,
            max_entries: 1000,
            max_bytes: 1024 * 1024,
        }
    }
}
