//! Everything the interpreter is told about the world, given up front so a run is a pure
//! function: envelope, the user's mailboxes and addresses, filter verdicts, the clock, limits.

use std::collections::HashSet;

use chrono::{DateTime, FixedOffset};

/// Bounds on one run (all scripts for one message); exceeding one is a runtime error, which
/// falls back to keeping the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLimits {
    /// Commands and tests evaluated.
    pub max_instructions: u64,
    /// Distinct redirect addresses.
    pub max_redirects: usize,
    /// Actions executed (before de-duplication).
    pub max_actions: usize,
    /// Bytes per variable value; longer values are cut at a character boundary.
    pub max_variable_bytes: usize,
    /// Upper bound for a vacation period, in days (applies to `:seconds` too).
    pub max_vacation_days: u32,
    /// Lower bound for a non-zero vacation period, in seconds.
    pub min_vacation_seconds: u64,
}

impl Default for RunLimits {
    fn default() -> Self {
        RunLimits {
            max_instructions: 10_000,
            max_redirects: 4,
            max_actions: 64,
            max_variable_bytes: 4096,
            max_vacation_days: 30,
            min_vacation_seconds: 3600,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// MAIL FROM; empty for the null reverse-path `<>`.
    pub from: String,
    /// The original recipient this run is for.
    pub to: String,
    /// The AUTH= parameter, if any.
    pub auth: Option<String>,
}

/// RFC 5235 spam verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpamScore {
    /// 0..=10; a tested message is reported as at least 1, since "0" means "not tested".
    pub value: u8,
    /// 0..=100, for `:percent`.
    pub percent: u8,
}

/// What the server knows beyond the message.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub envelope: &'a Envelope,
    /// The user's existing mailboxes, for `mailboxexists` and `fileinto`.
    pub mailboxes: &'a HashSet<String>,
    /// Duplicate-tracking ids already recorded and not expired.
    pub seen_duplicates: &'a HashSet<String>,
    pub spam_score: Option<SpamScore>,
    /// 1..=5 per RFC 5235; None when not tested.
    pub virus_score: Option<u8>,
    /// The only clock the interpreter reads (`currentdate`, and the local zone for `date`).
    pub now: DateTime<FixedOffset>,
    /// The user's own addresses, for vacation's implicit `:addresses`.
    pub user_addresses: &'a [String],
}
