//! The rule for the name a mailbox may be given (at create and rename): one function, so every
//! path that makes a name refuses the same names for the same reason.
//!
//! Names are stored whole (`Work/2024`), levels joined by `HIERARCHY_DELIMITER`. A name is
//! refused when a client that mirrors folders as files (mbsync, offlineimap, a Maildir++ or
//! maildir-tree layout) would map it outside the account's tree or onto something else:
//! `.`/`..` levels, a leading `~` (a home directory to shells and to those clients' path
//! expansion), a leading delimiter (an absolute path), empty levels (`a//b`, `a/`), and control
//! characters (RFC 9051 §5.1: names are meant to be displayed; NUL truncates C strings). The
//! LIST wildcards `*` and `%` are refused too: a LIST pattern cannot name such a mailbox alone.

use crate::model::HIERARCHY_DELIMITER;
use crate::{Result, StoreError};

/// Longest name accepted, in bytes.
pub const MAX_MAILBOX_NAME: usize = 1024;

/// Why `name` may not be given to a mailbox, or None when it may.
pub fn mailbox_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("the mailbox name is empty");
    }
    if name.len() > MAX_MAILBOX_NAME {
        return Some("the mailbox name is longer than 1024 bytes");
    }
    if name.chars().any(char::is_control) {
        return Some("the mailbox name contains a control character");
    }
    if name.starts_with(HIERARCHY_DELIMITER) {
        return Some("the mailbox name starts with the hierarchy delimiter /");
    }
    if name.starts_with('~') {
        return Some("the mailbox name starts with ~");
    }
    if name.contains(['*', '%']) {
        return Some("the mailbox name contains a LIST wildcard (* or %)");
    }
    for level in name.split(HIERARCHY_DELIMITER) {
        match level {
            "" => return Some("the mailbox name has an empty hierarchy level"),
            "." | ".." => return Some("a level of the mailbox name is . or .."),
            _ => {}
        }
    }
    None
}

/// `mailbox_name_problem` as the store's error: `Invalid` with the reason.
pub fn check_mailbox_name(name: &str) -> Result<()> {
    match mailbox_name_problem(name) {
        None => Ok(()),
        Some(reason) => Err(StoreError::Invalid(reason.to_string())),
    }
}

/// `INBOX` is case-insensitive, also as the first level of a hierarchical name (RFC 9051
/// §5.1): `inbox/a` is `INBOX/a`.
pub fn normalize_inbox(name: &str) -> String {
    let first = name.split('/').next().unwrap_or("");
    if first.eq_ignore_ascii_case("INBOX") {
        format!("INBOX{}", &name[first.len()..])
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DEFAULT_MAILBOXES;

    #[test]
    fn default_and_ordinary_names_are_valid() {
        for (name, _) in DEFAULT_MAILBOXES {
            assert_eq!(mailbox_name_problem(name), None, "{name}");
        }
        for name in [
            "INBOX/Sub",
            "Work/2024/Q1",
            "a.b",
            "..a",
            "a..",
            ".hidden",
            "x~",
            "a/~b",
            "Entwürfe",
            "&AOQ-",
            "with space",
            "[Gmail]/All Mail",
        ] {
            assert_eq!(mailbox_name_problem(name), None, "{name}");
            assert!(check_mailbox_name(name).is_ok());
        }
        let longest = "a".repeat(MAX_MAILBOX_NAME);
        assert_eq!(mailbox_name_problem(&longest), None);
    }

    #[test]
    fn each_refused_shape_has_its_reason() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            (".", ". or .."),
            ("..", ". or .."),
            ("a/..", ". or .."),
            ("../etc", ". or .."),
            ("a/./b", ". or .."),
            ("a/.", ". or .."),
            ("a//b", "empty hierarchy level"),
            ("a/", "empty hierarchy level"),
            ("/", "starts with the hierarchy delimiter"),
            ("/etc/passwd", "starts with the hierarchy delimiter"),
            ("~", "starts with ~"),
            ("~root/x", "starts with ~"),
            ("a\0b", "control character"),
            ("a\nb", "control character"),
            ("a\rb", "control character"),
            ("tab\there", "control character"),
            ("del\u{7f}", "control character"),
            ("c1\u{85}", "control character"),
            ("star*", "wildcard"),
            ("per%cent", "wildcard"),
        ];
        for (name, reason) in cases {
            let got = mailbox_name_problem(name);
            assert!(
                got.is_some_and(|g| g.contains(reason)),
                "{name:?}: {got:?}, want {reason:?}"
            );
            match check_mailbox_name(name) {
                Err(StoreError::Invalid(r)) => assert!(r.contains(reason), "{name:?}: {r}"),
                other => panic!("{name:?}: {other:?}"),
            }
        }
        let too_long = "a".repeat(MAX_MAILBOX_NAME + 1);
        assert!(mailbox_name_problem(&too_long).is_some_and(|r| r.contains("longer")));
    }
}
