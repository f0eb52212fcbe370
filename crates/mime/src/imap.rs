//! IMAP rendering of a summary: ENVELOPE and BODY/BODYSTRUCTURE (RFC 9051 §7.5.2, RFC 3501 §7.4.2).

use std::fmt::Write;

use crate::Summary;
use crate::address::ImapAddr;
use crate::structure::{Envelope, Part};

/// Writes an IMAP string: quoted when it can be, a literal when it holds CR, LF, NUL or 8-bit
/// data (quoted strings are 7-bit text without line breaks in IMAP4rev1).
pub(crate) fn string(out: &mut String, s: &str) {
    if s.contains('\0') {
        // NUL is allowed in neither quoted strings nor literals (RFC 9051 CHAR8).
        return string(out, &s.replace('\0', "\u{FFFD}"));
    }
    let needs_literal = s
        .bytes()
        .any(|b| b == b'\r' || b == b'\n' || b == 0 || b >= 0x80);
    if needs_literal {
        let _ = write!(out, "{{{}}}\r\n", s.len());
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

fn nstring(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => string(out, s),
        None => out.push_str("NIL"),
    }
}

fn addresses(out: &mut String, list: &[ImapAddr]) {
    if list.is_empty() {
        out.push_str("NIL");
        return;
    }
    out.push('(');
    for (name, adl, mailbox, host) in list {
        out.push('(');
        nstring(out, name.as_deref());
        out.push(' ');
        nstring(out, adl.as_deref());
        out.push(' ');
        nstring(out, mailbox.as_deref());
        out.push(' ');
        nstring(out, host.as_deref());
        out.push(')');
    }
    out.push(')');
}

pub(crate) fn envelope(out: &mut String, env: &Envelope) {
    out.push('(');
    nstring(out, env.date.as_deref());
    out.push(' ');
    nstring(out, env.subject.as_deref());
    out.push(' ');
    addresses(out, &env.from);
    out.push(' ');
    // RFC 3501 §7.4.2: absent or empty Sender / Reply-To take the value of From.
    addresses(
        out,
        if env.sender.is_empty() {
            &env.from
        } else {
            &env.sender
        },
    );
    out.push(' ');
    addresses(
        out,
        if env.reply_to.is_empty() {
            &env.from
        } else {
            &env.reply_to
        },
    );
    out.push(' ');
    addresses(out, &env.to);
    out.push(' ');
    addresses(out, &env.cc);
    out.push(' ');
    addresses(out, &env.bcc);
    out.push(' ');
    nstring(out, env.in_reply_to.as_deref());
    out.push(' ');
    nstring(out, env.message_id.as_deref());
    out.push(')');
}

fn params(out: &mut String, params: &[(String, String)]) {
    if params.is_empty() {
        out.push_str("NIL");
        return;
    }
    out.push('(');
    for (i, (n, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        string(out, &n.to_ascii_uppercase());
        out.push(' ');
        string(out, v);
    }
    out.push(')');
}

/// Extension fields shared by single parts and multiparts: disposition, language, location.
fn dsp_lang_loc(out: &mut String, p: &Part) {
    out.push(' ');
    match &p.disposition {
        Some(d) => {
            out.push('(');
            string(out, &d.kind.to_ascii_uppercase());
            out.push(' ');
            params(out, &d.params);
            out.push(')');
        }
        None => out.push_str("NIL"),
    }
    out.push(' ');
    match p.language.as_slice() {
        [] => out.push_str("NIL"),
        [one] => string(out, one),
        many => {
            out.push('(');
            for (i, l) in many.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                string(out, l);
            }
            out.push(')');
        }
    }
    out.push(' ');
    nstring(out, p.location.as_deref());
}

pub(crate) fn body(out: &mut String, p: &Part, ext: bool) {
    out.push('(');
    if p.is_multipart() {
        for c in &p.children {
            body(out, c, ext);
        }
        out.push(' ');
        string(out, &p.subtype);
        if ext {
            out.push(' ');
            params(out, &p.params);
            dsp_lang_loc(out, p);
        }
        out.push(')');
        return;
    }
    string(out, &p.ctype);
    out.push(' ');
    string(out, &p.subtype);
    out.push(' ');
    params(out, &p.params);
    out.push(' ');
    nstring(out, p.id.as_deref());
    out.push(' ');
    nstring(out, p.description.as_deref());
    out.push(' ');
    string(
        out,
        &p.cte.as_deref().unwrap_or("7bit").to_ascii_uppercase(),
    );
    let _ = write!(out, " {}", p.end.saturating_sub(p.body));
    if p.ctype == "MESSAGE"
        && let Some(m) = &p.message
    {
        out.push(' ');
        match &m.envelope {
            Some(e) => envelope(out, e),
            None => envelope(out, &Envelope::default()),
        }
        out.push(' ');
        body(out, m, ext);
        let _ = write!(out, " {}", p.lines);
    } else if p.ctype == "TEXT" {
        let _ = write!(out, " {}", p.lines);
    }
    if ext {
        out.push(' ');
        nstring(out, p.md5.as_deref());
        dsp_lang_loc(out, p);
    }
    out.push(')');
}

impl Summary {
    /// The IMAP ENVELOPE of the message: the complete parenthesised list. Strings that hold
    /// 8-bit data or line breaks are literals (`{n}\r\n…`), so the caller writes the result
    /// to the wire as it is.
    pub fn envelope(&self) -> String {
        let mut out = String::with_capacity(256);
        match &self.root.envelope {
            Some(e) => envelope(&mut out, e),
            None => envelope(&mut out, &Envelope::default()),
        }
        out
    }

    /// BODYSTRUCTURE (`extensible = true`, with extension data) or BODY (`false`); like
    /// `envelope`, it may contain literals.
    pub fn body_structure(&self, extensible: bool) -> String {
        let mut out = String::with_capacity(256);
        body(&mut out, &self.root, extensible);
        out
    }
}
