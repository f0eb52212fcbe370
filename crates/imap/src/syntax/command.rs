//! The parsed form of every IMAP command this server understands (RFC 9051, RFC 3501 and the
//! extensions listed in CAPABILITY). Plain values; the parser builds them, the session consumes them.

use chrono::NaiveDate;
pub use wharf_mime::{Section, SectionSpec};

/// One command as sent by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub tag: String,
    pub kind: CommandKind,
}

/// One end of a sequence range: a number or `*` (the largest number in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqNum {
    Num(u32),
    Star,
}

/// A sequence set (`1:4,7,9:*`) or the saved search result `$` (RFC 5182).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeqSet {
    Ranges(Vec<(SeqNum, SeqNum)>),
    Saved,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadAlgorithm {
    OrderedSubject,
    References,
}

/// One SORT criterion: a key, possibly reversed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortCriterion {
    pub reverse: bool,
    pub key: SortKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
    DisplayFrom,
    DisplayTo,
    /// RFC 6203 §4: by relevancy score, the most relevant first.
    Relevancy,
}

/// What a QRESYNC client knew when it last synced (RFC 7162 §3.2.5). Its optional
/// message-sequence match data is parsed and not used: the answer is exact without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QresyncParams {
    pub uid_validity: u32,
    pub modseq: u64,
    pub known_uids: Option<SeqSet>,
}

/// A flag as written by the client: system flags keep their backslash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    Add,
    Remove,
    Replace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusItem {
    Messages,
    Recent,
    UidNext,
    UidValidity,
    Unseen,
    Deleted,
    Size,
    HighestModSeq,
    /// RFC 9208: octets of the messages flagged \\Deleted.
    DeletedStorage,
    /// RFC 8474.
    MailboxId,
}

/// LIST-EXTENDED return options (RFC 5258, 5819, 6154).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListReturn {
    pub subscribed: bool,
    pub children: bool,
    pub special_use: bool,
    pub status: Option<Vec<StatusItem>>,
}

/// LIST-EXTENDED selection options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListSelect {
    pub subscribed: bool,
    pub remote: bool,
    pub recursive_match: bool,
    pub special_use: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchReturn {
    Min,
    Max,
    All,
    Count,
    Save,
    /// `RELEVANCY` (RFC 6203 §3.2): a score 1–100 for each message returned.
    Relevancy,
    /// `UPDATE` (RFC 5267 §4.3): keep the result as a context and report its changes in
    /// unsolicited ESEARCH `ADDTO`/`REMOVEFROM` responses until CANCELUPDATE or deselection.
    Update,
    /// `CONTEXT` (RFC 5267 §4.2): a hint that the result will be asked again; nothing to do.
    Context,
    /// `PARTIAL first:last` (RFC 5267 §4.4, extended by RFC 9394 §3.1): the results at those
    /// 1-based positions, counted from the end when negative (`-1` is the last result). Both
    /// ends have the same sign and are never zero; they are kept as sent, to be echoed.
    Partial(i64, i64),
}

impl SearchReturn {
    /// The PARTIAL range among `opts`, if any.
    pub fn partial_of(opts: &[SearchReturn]) -> Option<(i64, i64)> {
        opts.iter().find_map(|o| match *o {
            SearchReturn::Partial(a, b) => Some((a, b)),
            _ => None,
        })
    }

    /// The zero-based positions `lo..hi` a PARTIAL range `a:b` selects among `len` results
    /// (empty when it names none of them).
    pub fn partial_window(a: i64, b: i64, len: usize) -> std::ops::Range<usize> {
        let len = len as u64;
        let (lo, hi) = (
            a.unsigned_abs().min(b.unsigned_abs()),
            a.unsigned_abs().max(b.unsigned_abs()),
        );
        let (start, end) = if a > 0 {
            // Positions lo..=hi, 1-based from the first result.
            (lo.saturating_sub(1).min(len), hi.min(len))
        } else {
            // -lo is the lo-th result from the end; -hi the hi-th.
            (len.saturating_sub(hi), len.saturating_sub(lo - 1).min(len))
        };
        let start = usize::try_from(start).unwrap_or(usize::MAX);
        let end = usize::try_from(end).unwrap_or(usize::MAX);
        start..end.max(start)
    }
}

/// A mailbox filter of ESEARCH's source options (RFC 7377 §2.2, which takes them from NOTIFY,
/// RFC 5465 §6, and adds `subtree-one`). Names are as the client sent them (modified UTF-7
/// unless UTF-8 is enabled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceFilter {
    /// `selected` (and RFC 5465's `selected-delayed`, the same thing for a search).
    Selected,
    /// Where mail is delivered: INBOX.
    Inboxes,
    /// Every mailbox of the personal namespace.
    Personal,
    /// Every subscribed mailbox that exists.
    Subscribed,
    /// The named mailboxes and all their descendants.
    Subtree(Vec<String>),
    /// The named mailboxes and their children (one level).
    SubtreeOne(Vec<String>),
    /// The named mailboxes.
    Mailboxes(Vec<String>),
}

/// The events of one NOTIFY event group (RFC 5465 §5), as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyEvents {
    pub message_new: bool,
    /// MessageNew's FETCH attributes for the new messages of the selected mailbox.
    pub fetch: Vec<FetchItem>,
    pub message_expunge: bool,
    pub flag_change: bool,
    pub mailbox_name: bool,
    pub subscription_change: bool,
    pub mailbox_metadata_change: bool,
    pub server_metadata_change: bool,
    /// Event names this server does not support (AnnotationChange, unknown ones): the command
    /// is refused with `NO [BADEVENT]`, not BAD (RFC 5465 §3.1).
    pub unsupported: Vec<String>,
}

impl NotifyEvents {
    /// Any message event (MessageNew, MessageExpunge, FlagChange) is asked for.
    pub fn message_events(&self) -> bool {
        self.message_new || self.message_expunge || self.flag_change
    }

    /// Any mailbox event (RFC 5465 §5.4–§5.7) is asked for.
    pub fn mailbox_events(&self) -> bool {
        self.mailbox_name
            || self.subscription_change
            || self.mailbox_metadata_change
            || self.server_metadata_change
    }
}

/// Which mailboxes a NOTIFY event group is about (RFC 5465 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyFilter {
    /// `selected` / `selected-delayed` (expunges held back until a command allows them).
    Selected { delayed: bool },
    /// Any other filter (never `SourceFilter::Selected` or `SubtreeOne`).
    Other(SourceFilter),
}

/// `NOTIFY SET [STATUS] groups`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySet {
    pub status: bool,
    pub groups: Vec<(NotifyFilter, NotifyEvents)>,
}

/// SEARCH keys of RFC 9051 §6.4.4 (RFC 3501 keys included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    And(Vec<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    Not(Box<SearchKey>),
    SeqSet(SeqSet),
    Uid(SeqSet),
    Answered,
    Deleted,
    Draft,
    Flagged,
    Seen,
    Recent,
    New,
    Old,
    Unanswered,
    Undeleted,
    Undraft,
    Unflagged,
    Unseen,
    Keyword(String),
    Unkeyword(String),
    Before(NaiveDate),
    On(NaiveDate),
    Since(NaiveDate),
    SentBefore(NaiveDate),
    SentOn(NaiveDate),
    SentSince(NaiveDate),
    Larger(u64),
    Smaller(u64),
    Bcc(String),
    Body(String),
    Cc(String),
    From(String),
    Subject(String),
    Text(String),
    To(String),
    Header(String, String),
    /// RFC 7162 §3.1.5: messages whose mod-sequence is at least this (the optional entry name
    /// and type are accepted; every entry shares the message's mod-sequence here).
    ModSeq(u64),
    /// RFC 8474 §5.
    EmailId(String),
    ThreadId(String),
    /// RFC 8514: by the date the message was saved into the mailbox.
    SavedBefore(NaiveDate),
    SavedOn(NaiveDate),
    SavedSince(NaiveDate),
    /// RFC 8514: whether the mailbox keeps save dates (here: always).
    SaveDateSupported,
    /// RFC 6203: the key matched fuzzily — text keys by stemmed words (`wharf_store::words`);
    /// other keys exactly, as without FUZZY.
    Fuzzy(Box<SearchKey>),
}

/// FETCH data items (macros already expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItem {
    Flags,
    InternalDate,
    Rfc822Size,
    Envelope,
    Body,
    BodyStructure,
    Uid,
    Rfc822,
    Rfc822Header,
    Rfc822Text,
    ModSeq,
    /// RFC 8970.
    Preview,
    /// RFC 8474.
    EmailId,
    ThreadId,
    /// RFC 8514.
    SaveDate,
    BodySection {
        peek: bool,
        section: Section,
        partial: Option<(u32, u32)>,
    },
    Binary {
        peek: bool,
        part: Vec<u32>,
        partial: Option<(u32, u32)>,
    },
    BinarySize {
        part: Vec<u32>,
    },
}

/// Octets of a literal in an APPEND command. A large one waits in a spool file instead: then
/// `data` is empty and the receiver keeps the file under `at`, the offset of the literal's `{`
/// in the command as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendLiteral {
    pub at: usize,
    pub data: Vec<u8>,
}

/// One message of an APPEND (RFC 3502 `append-message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    pub flags: Vec<Flag>,
    pub date: Option<i64>,
    pub data: AppendData,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendData {
    /// The message itself (a literal, a literal8, or RFC 6855 `UTF8 (literal8)`).
    Literal(AppendLiteral),
    /// RFC 4469: the message built from these parts, in order.
    Catenate(Vec<CatPart>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatPart {
    /// `TEXT literal`.
    Text(AppendLiteral),
    /// `URL astring`: an IMAP URL (RFC 5092) of a message or part on this server.
    Url(String),
}

/// An IMAP URL (RFC 5092) of a message, or part of one, on this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapUrl {
    /// The mailbox name, percent-decoded (UTF-8).
    pub mailbox: String,
    pub uid_validity: Option<u32>,
    pub uid: u32,
    /// `;SECTION=`: FETCH's section (`None`: the whole message).
    pub section: Option<Section>,
    /// `;PARTIAL=offset[.length]`.
    pub partial: Option<(u32, Option<u32>)>,
}

/// An URLAUTH-authorized URL (RFC 4467 §3, RFC 5092 §3.4): the absolute `imap://` URL of a
/// message on this server, the rump its verifier signs, and its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUrl {
    /// The URL up to and including the access identifier: what the verifier signs.
    pub rump: String,
    /// The URL's user, percent-decoded, without `;AUTH=`.
    pub user: String,
    /// The URL's host, without a port.
    pub host: String,
    /// What it names.
    pub target: ImapUrl,
    /// `;EXPIRE=`: Unix seconds.
    pub expire: Option<i64>,
    pub access: UrlAccess,
    /// `:mechanism:token` when the URL carries its verifier.
    pub verifier: Option<(String, String)>,
}

/// Who may fetch an URLAUTH URL (RFC 4467 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlAccess {
    Anonymous,
    /// Any user of the server.
    AuthUser,
    /// `user+<userid>`: that user only.
    User(String),
    /// `submit+<userid>`: a submission server acting for that user.
    Submit(String),
}

/// GETMETADATA's DEPTH (RFC 5464 §4.2.2): the entries named, their children too, or every
/// descendant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataDepth {
    Zero,
    One,
    Infinity,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandKind {
    Capability,
    Noop,
    Logout,
    StartTls,
    Login {
        user: String,
        pass: String,
    },
    Authenticate {
        mechanism: String,
        /// SASL-IR initial response, still base64 (`=` means empty).
        initial: Option<String>,
    },
    Enable(Vec<String>),
    Id(Option<Vec<(String, Option<String>)>>),
    Select {
        mailbox: String,
        read_only: bool,
        /// `(CONDSTORE)` select parameter (RFC 7162 §3.1.8).
        condstore: bool,
        /// `(QRESYNC (…))` select parameter (RFC 7162 §3.2.5).
        qresync: Option<QresyncParams>,
    },
    Create {
        mailbox: String,
        special_use: Vec<String>,
    },
    Delete(String),
    Rename {
        from: String,
        to: String,
    },
    Subscribe(String),
    Unsubscribe(String),
    List {
        reference: String,
        patterns: Vec<String>,
        select: ListSelect,
        ret: ListReturn,
        /// True when any LIST-EXTENDED syntax was used (changes some answers).
        extended: bool,
    },
    Lsub {
        reference: String,
        pattern: String,
    },
    Namespace,
    Status {
        mailbox: String,
        items: Vec<StatusItem>,
    },
    /// COMPRESS mechanism (RFC 4978).
    Compress(String),
    /// GETQUOTAROOT mailbox (RFC 9208).
    GetQuotaRoot(String),
    /// GETQUOTA root (RFC 9208).
    GetQuota(String),
    /// SETQUOTA root (resource limit …) (RFC 9208 §4.1.3); resource names upper-cased.
    SetQuota {
        root: String,
        limits: Vec<(String, u64)>,
    },
    /// APPEND of one message or, with MULTIAPPEND (RFC 3502), several, stored all or none.
    Append {
        mailbox: String,
        messages: Vec<AppendMessage>,
    },
    /// GETMETADATA (RFC 5464 §4.2): `""` is the server. Entry names are as sent (valid syntax).
    GetMetadata {
        mailbox: String,
        max_size: Option<u64>,
        depth: MetadataDepth,
        entries: Vec<String>,
    },
    /// SETMETADATA (RFC 5464 §4.3): a value of `None` (NIL) removes the entry.
    SetMetadata {
        mailbox: String,
        entries: Vec<(String, Option<Vec<u8>>)>,
    },
    Idle,
    /// CANCELUPDATE (RFC 5267 §4.3.5): the tags of the searches whose updates stop.
    CancelUpdate(Vec<String>),
    /// NOTIFY (RFC 5465): `None` is NOTIFY NONE.
    Notify(Option<NotifySet>),
    /// SETACL (RFC 4314 §3.1): `rights` as sent, a leading `+` or `-` kept.
    SetAcl {
        mailbox: String,
        identifier: String,
        rights: String,
    },
    /// DELETEACL (RFC 4314 §3.2).
    DeleteAcl {
        mailbox: String,
        identifier: String,
    },
    /// GETACL (RFC 4314 §3.3).
    GetAcl(String),
    /// LISTRIGHTS (RFC 4314 §3.4).
    ListRights {
        mailbox: String,
        identifier: String,
    },
    /// MYRIGHTS (RFC 4314 §3.5).
    MyRights(String),
    /// GENURLAUTH (RFC 4467 §7): (URL rump, mechanism) pairs.
    GenUrlAuth(Vec<(String, String)>),
    /// RESETKEY (RFC 4467 §7): one mailbox's keys (of the mechanisms named, every one by
    /// default), or every mailbox's.
    ResetKey {
        mailbox: Option<String>,
        mechanisms: Vec<String>,
    },
    /// URLFETCH (RFC 4467 §7).
    UrlFetch(Vec<String>),
    Check,
    Close,
    Unselect,
    Expunge,
    UidExpunge(SeqSet),
    Search {
        uid: bool,
        ret: Option<Vec<SearchReturn>>,
        charset: Option<String>,
        key: SearchKey,
    },
    /// ESEARCH (RFC 7377 MULTISEARCH): `IN (sources)`, absent for the selected mailbox alone;
    /// results are always UIDs in ESEARCH responses.
    Esearch {
        sources: Option<Vec<SourceFilter>>,
        ret: Option<Vec<SearchReturn>>,
        charset: Option<String>,
        key: SearchKey,
    },
    /// SORT / UID SORT (RFC 5256, with SORT=DISPLAY and ESORT's RETURN).
    Sort {
        uid: bool,
        ret: Option<Vec<SearchReturn>>,
        criteria: Vec<SortCriterion>,
        charset: String,
        key: SearchKey,
    },
    /// THREAD / UID THREAD (RFC 5256).
    Thread {
        uid: bool,
        algorithm: ThreadAlgorithm,
        charset: String,
        key: SearchKey,
    },
    Fetch {
        uid: bool,
        set: SeqSet,
        items: Vec<FetchItem>,
        /// `(CHANGEDSINCE n)` modifier (RFC 7162 §3.1.4).
        changed_since: Option<u64>,
        /// `VANISHED` modifier (RFC 7162 §3.2.6; UID FETCH with CHANGEDSINCE only).
        vanished: bool,
    },
    Store {
        uid: bool,
        set: SeqSet,
        op: StoreOp,
        silent: bool,
        flags: Vec<Flag>,
        /// `(UNCHANGEDSINCE n)` modifier (RFC 7162 §3.1.3).
        unchanged_since: Option<u64>,
    },
    Copy {
        uid: bool,
        set: SeqSet,
        mailbox: String,
    },
    Move {
        uid: bool,
        set: SeqSet,
        mailbox: String,
    },
}

impl CommandKind {
    /// The command name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            CommandKind::Capability => "CAPABILITY",
            CommandKind::Noop => "NOOP",
            CommandKind::Logout => "LOGOUT",
            CommandKind::StartTls => "STARTTLS",
            CommandKind::Login { .. } => "LOGIN",
            CommandKind::Authenticate { .. } => "AUTHENTICATE",
            CommandKind::Enable(_) => "ENABLE",
            CommandKind::Id(_) => "ID",
            CommandKind::Select {
                read_only: false, ..
            } => "SELECT",
            CommandKind::Select {
                read_only: true, ..
            } => "EXAMINE",
            CommandKind::Create { .. } => "CREATE",
            CommandKind::Delete(_) => "DELETE",
            CommandKind::Rename { .. } => "RENAME",
            CommandKind::Subscribe(_) => "SUBSCRIBE",
            CommandKind::Unsubscribe(_) => "UNSUBSCRIBE",
            CommandKind::List { .. } => "LIST",
            CommandKind::Lsub { .. } => "LSUB",
            CommandKind::Namespace => "NAMESPACE",
            CommandKind::Status { .. } => "STATUS",
            CommandKind::Append { .. } => "APPEND",
            CommandKind::GetMetadata { .. } => "GETMETADATA",
            CommandKind::SetMetadata { .. } => "SETMETADATA",
            CommandKind::Idle => "IDLE",
            CommandKind::CancelUpdate(_) => "CANCELUPDATE",
            CommandKind::Notify(_) => "NOTIFY",
            CommandKind::SetAcl { .. } => "SETACL",
            CommandKind::DeleteAcl { .. } => "DELETEACL",
            CommandKind::GetAcl(_) => "GETACL",
            CommandKind::ListRights { .. } => "LISTRIGHTS",
            CommandKind::MyRights(_) => "MYRIGHTS",
            CommandKind::GenUrlAuth(_) => "GENURLAUTH",
            CommandKind::ResetKey { .. } => "RESETKEY",
            CommandKind::UrlFetch(_) => "URLFETCH",
            CommandKind::Check => "CHECK",
            CommandKind::Close => "CLOSE",
            CommandKind::Unselect => "UNSELECT",
            CommandKind::Expunge => "EXPUNGE",
            CommandKind::UidExpunge(_) => "UID EXPUNGE",
            CommandKind::Search { .. } => "SEARCH",
            CommandKind::Esearch { .. } => "ESEARCH",
            CommandKind::Sort { .. } => "SORT",
            CommandKind::Thread { .. } => "THREAD",
            CommandKind::GetQuotaRoot(_) => "GETQUOTAROOT",
            CommandKind::Compress(_) => "COMPRESS",
            CommandKind::GetQuota(_) => "GETQUOTA",
            CommandKind::SetQuota { .. } => "SETQUOTA",
            CommandKind::Fetch { .. } => "FETCH",
            CommandKind::Store { .. } => "STORE",
            CommandKind::Copy { .. } => "COPY",
            CommandKind::Move { .. } => "MOVE",
        }
    }
}
