//! The keys SORT (RFC 5256) and SORT=DISPLAY (RFC 5957) order messages by, taken from a stored
//! summary's envelope: the base subject (RFC 5256 §2.1), the first address's mailbox for
//! FROM/TO/CC, its display name for DISPLAYFROM/DISPLAYTO, and the sent date.

use mail_parser::DateTime;
use mail_parser::HeaderValue;
use mail_parser::parsers::MessageStream;

use crate::Summary;
use crate::address::ImapAddr;

/// One message's sort keys; strings are already in the form they are compared in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SortKeys {
    /// Base subject, ASCII upper-cased (i;ascii-casemap).
    pub subject: String,
    /// Mailbox (local part) of the first address, ASCII upper-cased.
    pub from: String,
    pub to: String,
    pub cc: String,
    /// Display name of the first address, else its `mailbox@host`; lower-cased (Unicode).
    pub display_from: String,
    pub display_to: String,
    /// The Date: header as unix seconds, when it parses.
    pub sent_date: Option<i64>,
    /// Whether the base subject extraction removed a reply or forward marker (RFC 5256 §2.1),
    /// which THREAD=REFERENCES's subject merging asks.
    pub is_reply: bool,
    /// The Message-ID, as `<…>`.
    pub message_id: Option<String>,
    /// The parent ids THREAD=REFERENCES links by: the References: ids, else the first
    /// In-Reply-To: id. `None` when the stored summary predates keeping References: (read the
    /// header and use [`thread_parents`]).
    pub parents: Option<Vec<String>>,
}

/// The message ids (`<…>`) in a header value, in order; bounded.
pub fn message_ids(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find('<') {
        let Some(len) = rest[start..].find('>') else {
            break;
        };
        let id = &rest[start..start + len + 1];
        if id.len() > 2 && !id[1..].contains(['<', ' ']) {
            out.push(id.to_string());
        }
        rest = &rest[start + len + 1..];
        if out.len() >= 1000 {
            break;
        }
    }
    out
}

/// RFC 5256 §3 step 1: the References: ids, or if there are none the first In-Reply-To: id.
pub fn thread_parents(references: &str, in_reply_to: &str) -> Vec<String> {
    let refs = message_ids(references);
    if !refs.is_empty() {
        return refs;
    }
    message_ids(in_reply_to).into_iter().take(1).collect()
}

impl Summary {
    /// The SORT keys of the message.
    pub fn sort_keys(&self) -> SortKeys {
        let Some(env) = self.root.envelope.as_deref() else {
            return SortKeys::default();
        };
        let subject = decode_words(env.subject.as_deref().unwrap_or(""));
        let (base, is_reply) = base_subject_marked(&subject);
        SortKeys {
            subject: base.to_ascii_uppercase(),
            is_reply,
            message_id: env
                .message_id
                .as_deref()
                .and_then(|m| message_ids(m).into_iter().next()),
            parents: env
                .references
                .as_deref()
                .map(|r| thread_parents(r, env.in_reply_to.as_deref().unwrap_or(""))),
            from: first_mailbox(&env.from),
            to: first_mailbox(&env.to),
            cc: first_mailbox(&env.cc),
            display_from: display(&env.from),
            display_to: display(&env.to),
            sent_date: env
                .date
                .as_deref()
                .and_then(DateTime::parse_rfc822)
                .filter(DateTime::is_valid)
                .map(|d| d.to_timestamp()),
        }
    }
}

/// RFC 2047 encoded words decoded (unstructured text rules).
fn decode_words(s: &str) -> String {
    if !s.contains("=?") {
        return s.to_string();
    }
    let mut value = s.as_bytes().to_vec();
    value.push(b'\n');
    match MessageStream::new(&value).parse_unstructured() {
        HeaderValue::Text(t) => t.into_owned(),
        _ => s.to_string(),
    }
}

/// The first address structure of a list. A group's start marker counts: its mailbox field is
/// the group name (RFC 9051 §7.5.2), which is what SORT then compares, as Dovecot does.
fn first(list: &[ImapAddr]) -> Option<&ImapAddr> {
    list.first()
}

fn first_mailbox(list: &[ImapAddr]) -> String {
    first(list)
        .and_then(|a| a.2.as_deref())
        .map(|m| decode_words(m).to_ascii_uppercase())
        .unwrap_or_default()
}

/// RFC 5957: the display name, else the address (`mailbox@host`, or the bare mailbox or group
/// name when there is no host).
fn display(list: &[ImapAddr]) -> String {
    let Some(a) = first(list) else {
        return String::new();
    };
    let name = a.0.as_deref().map(decode_words).unwrap_or_default();
    let name = name.trim();
    if !name.is_empty() {
        return name.to_lowercase();
    }
    let mailbox = a.2.as_deref().map(decode_words).unwrap_or_default();
    match a.3.as_deref() {
        Some(host) => format!("{mailbox}@{host}").to_lowercase(),
        None => mailbox.to_lowercase(),
    }
}

/// RFC 5256 §2.1: the subject without reply/forward markers, blobs and trailers.
pub fn base_subject(subject: &str) -> String {
    base_subject_marked(subject).0
}

/// The base subject, and whether a reply/forward marker ("Re:", "Fwd:", "(fwd)", "[fwd: …]")
/// was among what was removed.
fn base_subject_marked(subject: &str) -> (String, bool) {
    let mut marked = false;
    // (1) whitespace runs become one space.
    let mut s = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    loop {
        // (2) trailers: "(fwd)" and whitespace at the end.
        loop {
            let t = s.trim_end();
            let lower = t.to_ascii_lowercase();
            if lower.ends_with("(fwd)") {
                s = t[..t.len() - 5].to_string();
                marked = true;
            } else {
                s = t.to_string();
                break;
            }
        }
        // (3)-(5) leaders and blobs, until neither is found.
        loop {
            let before = s.len();
            let (rest, reply) = strip_leader(&s);
            marked |= reply;
            s = rest;
            if let Some(rest) = strip_blob(&s)
                && !rest.is_empty()
            {
                s = rest;
            }
            if s.len() == before {
                break;
            }
        }
        // (6) "[fwd: …]" wrapping.
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("[fwd:") && s.ends_with(']') {
            s = s[5..s.len() - 1].to_string();
            marked = true;
            continue;
        }
        return (s, marked);
    }
}

/// A blob `[…]` (no brackets inside) and the whitespace after it, when `s` starts with one.
fn strip_blob(s: &str) -> Option<String> {
    let rest = s.strip_prefix('[')?;
    let end = rest.find([']', '['])?;
    if !rest[end..].starts_with(']') {
        return None;
    }
    Some(rest[end + 1..].trim_start().to_string())
}

/// subj-leader: whitespace, or blobs followed by `re`, `fw` or `fwd`, optional whitespace and
/// blob, and `:`.
/// The subject without one leader; whether that leader was a reply/forward marker.
fn strip_leader(s: &str) -> (String, bool) {
    let trimmed = s.trim_start();
    if trimmed.len() != s.len() {
        return (trimmed.to_string(), false);
    }
    // Blobs before re/fw belong to the leader only when one follows: work on a copy.
    let mut rest = s.to_string();
    while let Some(r) = strip_blob(&rest) {
        rest = r;
    }
    let lower = rest.to_ascii_lowercase();
    let marker = if lower.starts_with("fwd") {
        3
    } else if lower.starts_with("fw") || lower.starts_with("re") {
        2
    } else {
        return (s.to_string(), false);
    };
    let after = rest[marker..].trim_start();
    let after = strip_blob(after).unwrap_or_else(|| after.to_string());
    match after.strip_prefix(':') {
        Some(base) => (base.to_string(), true),
        None => (s.to_string(), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_subjects() {
        for (subject, base) in [
            ("Hello", "Hello"),
            ("Re: Hello", "Hello"),
            ("RE: re: Fwd: FW: Hello", "Hello"),
            ("Re: [list] Re: Hello", "Hello"),
            ("[list] Hello", "Hello"),
            ("[list]", "[list]"),
            ("Hello (fwd)", "Hello"),
            ("Hello (FWD) (fwd)  ", "Hello"),
            ("[Fwd: Re: Hello]", "Hello"),
            ("Re:Hello", "Hello"),
            ("Re [x]: Hello", "Hello"),
            ("  spaced\t  out  ", "spaced out"),
            ("Reply later", "Reply later"),
            ("", ""),
            ("Re: ", ""),
        ] {
            assert_eq!(base_subject(subject), base, "{subject:?}");
            let replyish = subject.to_ascii_lowercase().contains("re")
                || subject.to_ascii_lowercase().contains("fw");
            if !replyish {
                assert!(!base_subject_marked(subject).1, "{subject:?}");
            }
        }
    }

    #[test]
    fn keys_from_a_summary() {
        let raw = b"From: =?UTF-8?Q?J=C3=B6rg?= <joerg@example.org>\r\nTo: undisclosed:;, bob@example.com\r\nSubject: =?UTF-8?Q?Re:_=C3=9Cber?= (fwd)\r\nDate: Tue, 1 Jun 2021 10:00:00 +0200\r\n\r\nx\r\n";
        let k = Summary::parse(raw).sort_keys();
        assert_eq!(k.subject, "ÜBER");
        assert_eq!(k.from, "JOERG");
        // A group's name is the first "address" (as Dovecot sorts it).
        assert_eq!(k.to, "UNDISCLOSED");
        assert_eq!(k.cc, "");
        assert_eq!(k.display_from, "jörg");
        assert_eq!(k.display_to, "undisclosed");
        assert_eq!(k.sent_date, Some(1_622_534_400));
        assert!(k.is_reply);
        assert_eq!(k.parents, Some(vec![]));
        let raw = b"Message-ID: <c@x>\r\nIn-Reply-To: <b@x> <zz@x>\r\nSubject: Hello\r\n\r\n";
        let k = Summary::parse(raw).sort_keys();
        assert_eq!(k.message_id.as_deref(), Some("<c@x>"));
        assert_eq!(k.parents, Some(vec!["<b@x>".to_string()]));
        assert!(!k.is_reply);
        let raw = b"References: <a@x>\r\n <b@x>\r\nIn-Reply-To: <q@x>\r\n\r\n";
        let k = Summary::parse(raw).sort_keys();
        assert_eq!(
            k.parents,
            Some(vec!["<a@x>".to_string(), "<b@x>".to_string()])
        );
        assert_eq!(
            message_ids("junk <a@x> <bad <c d> <e@f>"),
            vec!["<a@x>", "<e@f>"]
        );
    }
}
