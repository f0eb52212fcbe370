//! The extensions this implementation offers, by their `require` names.

/// Capability strings for the ManageSieve SIEVE capability and for `require`.
pub const CAPABILITIES: &[&str] = &[
    "fileinto",
    "reject",
    "ereject",
    "envelope",
    "encoded-character",
    "body",
    "variables",
    "vacation",
    "vacation-seconds",
    "relational",
    "subaddress",
    "imap4flags",
    "date",
    "index",
    "editheader",
    "mailbox",
    "comparator-i;ascii-numeric",
    "comparator-i;octet",
    "comparator-i;ascii-casemap",
    "duplicate",
    "spamtest",
    "spamtestplus",
    "virustest",
    "copy",
];

pub(crate) fn is_known(name: &str) -> bool {
    CAPABILITIES.iter().any(|c| c.eq_ignore_ascii_case(name))
}
