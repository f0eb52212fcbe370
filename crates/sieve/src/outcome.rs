//! What a run hands back to the delivery code: the final actions, an edited message if the
//! header changed, duplicate-tracking ids to store, and the runtime error if there was one.

/// The result of running the scripts for one message and one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Final and de-duplicated (RFC 5228 §2.10.3); contains `Keep` when the implicit keep was not
    /// cancelled. On a runtime error it is exactly `[Keep { flags: vec![] }]`.
    pub actions: Vec<Action>,
    /// Set when `editheader` changed the header: the whole new message, CRLF line ends.
    pub edited_message: Option<Vec<u8>>,
    /// Ids the `duplicate` test asked to track; store them only once the message is delivered.
    pub duplicates_to_record: Vec<DuplicateRecord>,
    /// Runtime error text, for one log line.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateRecord {
    pub id: String,
    pub expires_in_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Deliver to INBOX, with these IMAP flags.
    Keep {
        flags: Vec<String>,
    },
    /// Deliver to `mailbox`; `create` asks for it to be created first when missing (RFC 5490).
    FileInto {
        mailbox: String,
        flags: Vec<String>,
        create: bool,
    },
    Redirect {
        address: String,
        copy: bool,
    },
    /// `extended` is ereject: refuse at the SMTP level when still possible.
    Reject {
        reason: String,
        extended: bool,
    },
    Vacation(VacationReply),
    /// Only reported when `discard` ran and nothing files the message anywhere; informational.
    Discard,
}

/// An auto-reply the caller should send unless it already replied to (`handle`, `to`) within
/// `period_seconds`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VacationReply {
    /// The envelope sender of the original message.
    pub to: String,
    pub from: Option<String>,
    pub subject: String,
    pub body: String,
    /// The body is a complete MIME entity (`:mime`).
    pub mime: bool,
    pub handle: String,
    pub period_seconds: u64,
    /// The original Message-ID.
    pub in_reply_to: Option<String>,
    pub references: Option<String>,
}
