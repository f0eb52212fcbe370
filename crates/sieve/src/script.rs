//! The checked form of a script: every name resolved, every argument typed, so the interpreter
//! never has to report a mistake the author could have been told about at upload time.

use crate::date::{DatePart, Zone};
use crate::matching::Matcher;
use crate::message::Index;
use crate::variables::{Modifier, Str};

/// A compiled script, ready to run any number of times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub(crate) commands: Vec<Cmd>,
    /// The capabilities the script's `require` named, sorted.
    pub(crate) requires: Vec<String>,
}

impl Script {
    /// Whether the script's `require` names `capability` (e.g. "duplicate"): a caller can skip
    /// work a script cannot ask for.
    pub fn requires(&self, capability: &str) -> bool {
        self.requires.iter().any(|c| c == capability)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cmd {
    If {
        branches: Vec<(Tst, Vec<Cmd>)>,
        otherwise: Option<Vec<Cmd>>,
    },
    Stop,
    Keep {
        flags: Option<Vec<Str>>,
    },
    Discard,
    Redirect {
        address: Str,
        copy: bool,
    },
    FileInto {
        mailbox: Str,
        flags: Option<Vec<Str>>,
        copy: bool,
        create: bool,
    },
    Reject {
        reason: Str,
        extended: bool,
    },
    Vacation(Box<VacationCmd>),
    Set {
        name: String,
        value: Str,
        modifiers: Vec<Modifier>,
    },
    Flags {
        op: FlagOp,
        variable: Option<String>,
        flags: Vec<Str>,
    },
    AddHeader {
        last: bool,
        name: Str,
        value: Str,
    },
    DeleteHeader {
        index: Option<Index>,
        matcher: Matcher,
        name: Str,
        patterns: Option<Vec<Str>>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagOp {
    Set,
    Add,
    Remove,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Period {
    Default,
    Days(u64),
    Seconds(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VacationCmd {
    pub period: Period,
    pub subject: Option<Str>,
    pub from: Option<Str>,
    pub addresses: Vec<Str>,
    pub mime: bool,
    pub handle: Option<Str>,
    pub reason: Str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddrPart {
    All,
    Local,
    Domain,
    User,
    Detail,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyTransform {
    Raw,
    Content(Vec<Str>),
    Text,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DupSource {
    MessageId,
    Header(Str),
    UniqueId(Str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tst {
    True,
    False,
    Not(Box<Tst>),
    AllOf(Vec<Tst>),
    AnyOf(Vec<Tst>),
    Exists(Vec<Str>),
    Size {
        over: bool,
        limit: u64,
    },
    Header {
        matcher: Matcher,
        names: Vec<Str>,
        keys: Vec<Str>,
        index: Option<Index>,
    },
    Address {
        matcher: Matcher,
        part: AddrPart,
        names: Vec<Str>,
        keys: Vec<Str>,
        index: Option<Index>,
    },
    Envelope {
        matcher: Matcher,
        part: AddrPart,
        names: Vec<Str>,
        keys: Vec<Str>,
    },
    Body {
        matcher: Matcher,
        transform: BodyTransform,
        keys: Vec<Str>,
    },
    String {
        matcher: Matcher,
        sources: Vec<Str>,
        keys: Vec<Str>,
    },
    HasFlag {
        matcher: Matcher,
        variables: Option<Vec<String>>,
        keys: Vec<Str>,
    },
    Date {
        matcher: Matcher,
        zone: Zone,
        header: Str,
        part: DatePart,
        keys: Vec<Str>,
        index: Option<Index>,
    },
    CurrentDate {
        matcher: Matcher,
        zone: Zone,
        part: DatePart,
        keys: Vec<Str>,
    },
    MailboxExists(Vec<Str>),
    Duplicate {
        handle: Str,
        source: DupSource,
        seconds: u64,
        last: bool,
    },
    SpamTest {
        matcher: Matcher,
        percent: bool,
        key: Str,
    },
    VirusTest {
        matcher: Matcher,
        key: Str,
    },
}
