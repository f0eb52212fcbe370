//! IMAP URLs (RFC 5092) as CATENATE takes them (RFC 4469): the path of a message, or a part of
//! one, on this server — `/mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s][/;PARTIAL=o[.l]]`, a
//! relative URL of the same server. Absolute `imap://` URLs, URLAUTH and EXPIRE are not taken.

use super::Parser;
use crate::syntax::command::{ImapUrl, Section};

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            // Two hex digits: from_str_radix alone would take a sign (`%+F`).
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let h = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// `;NAME=` at the start of `s`, case-insensitively: what follows it.
fn after_param<'a>(s: &'a str, name: &str) -> Option<&'a str> {
    let head = s.get(..name.len())?;
    head.eq_ignore_ascii_case(name)
        .then(|| s.get(name.len()..))
        .flatten()
}

fn nz_number(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if n > 0 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(format!("invalid number {s:?} in the URL")),
    }
}

/// Parses a CATENATE URL.
pub fn parse_imap_url(url: &str) -> Result<ImapUrl, String> {
    let path = url
        .strip_prefix('/')
        .filter(|p| !p.starts_with('/'))
        .ok_or("only URLs of this server's messages (starting with one /) are taken")?;
    // The mailbox reference ends where `/;UID=` begins (mailbox names may hold `/`).
    let lower = path.to_ascii_lowercase();
    let uid_at = lower
        .find("/;uid=")
        .ok_or("the URL names no message (;UID=)")?;
    let (mailbox_ref, rest) = path.split_at(uid_at);
    let rest = &rest[1..];
    let (enc_mailbox, uid_validity) = match mailbox_ref.to_ascii_lowercase().find(";uidvalidity=") {
        Some(i) => (
            &mailbox_ref[..i],
            Some(nz_number(&mailbox_ref[i + ";uidvalidity=".len()..])?),
        ),
        None => (mailbox_ref, None),
    };
    if enc_mailbox.is_empty() || enc_mailbox.contains(';') || enc_mailbox.contains('?') {
        return Err("invalid mailbox in the URL".into());
    }
    let mailbox = percent_decode(enc_mailbox)
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or("the URL's mailbox is not percent-encoded UTF-8")?;
    let mut parts = rest.split('/');
    let uid = nz_number(
        parts
            .next()
            .and_then(|p| after_param(p, ";UID="))
            .ok_or("the URL names no message")?,
    )?;
    let mut section = None;
    let mut partial = None;
    for p in parts {
        if let Some(s) = after_param(p, ";SECTION=") {
            if section.is_some() || partial.is_some() {
                return Err("SECTION out of place in the URL".into());
            }
            section = Some(parse_section(s)?);
        } else if let Some(s) = after_param(p, ";PARTIAL=") {
            if partial.is_some() {
                return Err("PARTIAL given twice in the URL".into());
            }
            let (offset, len) = match s.split_once('.') {
                Some((o, l)) => (o, Some(nz_number(l)?)),
                None => (s, None),
            };
            let offset = offset
                .parse::<u32>()
                .ok()
                .filter(|_| !offset.is_empty() && offset.bytes().all(|b| b.is_ascii_digit()))
                .ok_or("invalid PARTIAL in the URL")?;
            partial = Some((offset, len));
        } else {
            return Err("unsupported URL component (URLAUTH and EXPIRE are not taken)".into());
        }
    }
    Ok(ImapUrl {
        mailbox,
        uid_validity,
        uid,
        section,
        partial,
    })
}

/// `enc-section`: FETCH's section text (`1.2`, `HEADER.FIELDS (SUBJECT)`, `1.MIME`…),
/// percent-encoded.
fn parse_section(enc: &str) -> Result<Section, String> {
    let mut text = percent_decode(enc).ok_or("invalid percent-encoding in SECTION")?;
    if text.is_empty() || text.contains(&b']') {
        return Err("invalid SECTION in the URL".into());
    }
    text.push(b']');
    let mut p = Parser { s: &text, pos: 0 };
    match p.body_section(true)? {
        crate::syntax::command::FetchItem::BodySection {
            section,
            partial: None,
            ..
        } if p.pos == text.len() => Ok(section),
        _ => Err("invalid SECTION in the URL".into()),
    }
}
