//! Writing response syntax: strings (atom, quoted or literal as the content requires), nstrings,
//! INTERNALDATE and flag lists.

use std::fmt::Write;

use wharf_store::Flags;

/// Appends `s` as a quoted string when it can be one, else as a literal.
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    let quotable = s.len() < 1024 && s.iter().all(|&b| b != b'\r' && b != b'\n' && b != 0);
    if quotable {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        literal(out, s, false);
    }
}

/// Appends a literal; `binary` makes it a literal8 (`~{n}`, RFC 3516) for content with NUL.
/// A plain literal may not carry NUL (RFC 9051 §4.3): stored messages can (an APPEND of binary
/// content), so each NUL is sent as 0x80, as Dovecot does.
pub fn literal(out: &mut Vec<u8>, s: &[u8], binary: bool) {
    if binary {
        out.push(b'~');
    }
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    let start = out.len();
    out.extend_from_slice(s);
    if !binary {
        replace_nul(&mut out[start..]);
    }
}

/// NUL → 0x80 in the octets of a plain literal (see `literal`).
pub fn replace_nul(octets: &mut [u8]) {
    for b in octets.iter_mut().filter(|b| **b == 0) {
        *b = 0x80;
    }
}

/// Appends an astring: a bare atom when possible (mailbox names read better so), else a string.
pub fn astring(out: &mut Vec<u8>, s: &str) {
    let atom_ok = !s.is_empty()
        && s.bytes().all(|b| {
            b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\')
        })
        && !s.eq_ignore_ascii_case("NIL");
    if atom_ok {
        out.extend_from_slice(s.as_bytes());
    } else {
        string(out, s.as_bytes());
    }
}

/// INTERNALDATE text for unix seconds, in UTC.
pub fn internal_date(ts: i64) -> String {
    match chrono::DateTime::from_timestamp(ts, 0) {
        Some(d) => d.format("%d-%b-%Y %H:%M:%S +0000").to_string(),
        None => "01-Jan-1970 00:00:00 +0000".to_string(),
    }
}

/// The flag list of a message, `\Recent` included when this session reports it.
pub fn flag_list(flags: Flags, keywords: &[String], recent: bool) -> String {
    let mut s = String::from("(");
    let mut first = true;
    let mut push = |s: &mut String, f: &str| {
        if !first {
            s.push(' ');
        }
        first = false;
        s.push_str(f);
    };
    for (bit, name) in [
        (Flags::SEEN, "\\Seen"),
        (Flags::ANSWERED, "\\Answered"),
        (Flags::FLAGGED, "\\Flagged"),
        (Flags::DELETED, "\\Deleted"),
        (Flags::DRAFT, "\\Draft"),
    ] {
        if flags.contains(bit) {
            push(&mut s, name);
        }
    }
    if recent {
        push(&mut s, "\\Recent");
    }
    for k in keywords {
        push(&mut s, k);
    }
    s.push(')');
    s
}

/// Renders a sorted UID/number list as a compact sequence set (`1:3,7`).
pub fn sequence_set(nums: &[u32]) -> String {
    let mut s = String::new();
    let mut i = 0;
    while i < nums.len() {
        let start = nums[i];
        let mut end = start;
        while i + 1 < nums.len() && nums[i + 1] == end.wrapping_add(1) {
            i += 1;
            end = nums[i];
        }
        if !s.is_empty() {
            s.push(',');
        }
        if start == end {
            let _ = write!(s, "{start}");
        } else {
            let _ = write!(s, "{start}:{end}");
        }
        i += 1;
    }
    s
}
