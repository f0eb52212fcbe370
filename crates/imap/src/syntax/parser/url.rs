//! IMAP URLs (RFC 5092) as CATENATE takes them (RFC 4469): the path of a message, or a part of
//! one, on this server — `/mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s][/;PARTIAL=o[.l]]`, a
//! relative URL of the same server. Absolute `imap://` URLs, URLAUTH and EXPIRE are not taken.

use super::Parser;
use crate::syntax::command::{AuthUrl, ImapUrl, Section, UrlAccess};

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

/// `name` (ASCII, lower-case) in `s` without regard to case: the offset of its last occurrence.
fn rfind_ci(s: &str, name: &str) -> Option<usize> {
    s.to_ascii_lowercase().rfind(name)
}

/// Parses an URLAUTH URL: `imap://user[;AUTH=…]@host[:port]/path[;EXPIRE=datetime];URLAUTH=access
/// [:mechanism:token]`, the path being a message URL as `parse_imap_url` takes it.
pub fn parse_auth_url(url: &str) -> Result<AuthUrl, String> {
    let scheme = "imap://";
    if !url
        .get(..scheme.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
    {
        return Err("not an absolute imap:// URL".into());
    }
    let rest = &url[scheme.len()..];
    let slash = rest.find('/').ok_or("the URL names no mailbox")?;
    let (authority, path) = rest.split_at(slash);
    let (userinfo, hostport) = authority
        .rsplit_once('@')
        .ok_or("an URLAUTH URL names its user")?;
    let enc_user = match rfind_ci(userinfo, ";auth=") {
        Some(i) => &userinfo[..i],
        None => userinfo,
    };
    let user = percent_decode(enc_user)
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|u| !u.is_empty())
        .ok_or("invalid user in the URL")?;
    let host = match hostport.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => hostport,
    };
    if host.is_empty() {
        return Err("the URL names no host".into());
    }
    let at = rfind_ci(path, ";urlauth=").ok_or("the URL has no ;URLAUTH=")?;
    let after = &path[at + ";urlauth=".len()..];
    let (access_text, verifier) = match after.split_once(':') {
        None => (after, None),
        Some((a, v)) => {
            let (mech, token) = v.split_once(':').ok_or("invalid URLAUTH verifier")?;
            if mech.is_empty() || token.is_empty() {
                return Err("invalid URLAUTH verifier".into());
            }
            (a, Some((mech.to_string(), token.to_string())))
        }
    };
    let rump_len = url.len() - (after.len() - access_text.len());
    let access = parse_access(access_text)?;
    let before = &path[..at];
    let (message_path, expire) = match rfind_ci(before, ";expire=") {
        Some(i) => {
            let when = chrono::DateTime::parse_from_rfc3339(&before[i + ";expire=".len()..])
                .map_err(|_| "invalid ;EXPIRE= date-time")?;
            (&before[..i], Some(when.timestamp()))
        }
        None => (before, None),
    };
    Ok(AuthUrl {
        rump: url[..rump_len].to_string(),
        user,
        host: host.to_string(),
        target: parse_imap_url(message_path)?,
        expire,
        access,
        verifier,
    })
}

fn parse_access(text: &str) -> Result<UrlAccess, String> {
    let lower = text.to_ascii_lowercase();
    let user = |prefix: &str| -> Result<String, String> {
        percent_decode(&text[prefix.len()..])
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|u| !u.is_empty())
            .ok_or_else(|| "invalid user in the URLAUTH access".to_string())
    };
    if lower == "anonymous" {
        Ok(UrlAccess::Anonymous)
    } else if lower == "authuser" {
        Ok(UrlAccess::AuthUser)
    } else if lower.starts_with("user+") {
        Ok(UrlAccess::User(user("user+")?))
    } else if lower.starts_with("submit+") {
        Ok(UrlAccess::Submit(user("submit+")?))
    } else {
        Err("unknown URLAUTH access identifier".into())
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
