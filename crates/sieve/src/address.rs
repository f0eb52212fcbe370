//! Pieces of an email address for `address` / `envelope` (RFC 5228 §2.7.4, subaddress RFC 5233)
//! and the checks on addresses the script hands us (redirect targets, vacation recipients).

use crate::script::AddrPart;

/// RFC 5233 separator between user and detail.
const SEPARATOR: char = '+';

/// The requested part, or None when it does not exist (`:detail` without a separator).
pub(crate) fn part(addr: &str, part: AddrPart) -> Option<String> {
    // RFC 5228 §5.4: the null reverse-path is "" whatever part is asked for.
    if addr.is_empty() {
        return Some(String::new());
    }
    let (local, domain) = match addr.rfind('@') {
        Some(at) => (&addr[..at], &addr[at + 1..]),
        None => (addr, ""),
    };
    Some(match part {
        AddrPart::All => addr.to_string(),
        AddrPart::Local => local.to_string(),
        AddrPart::Domain => domain.to_string(),
        AddrPart::User => local
            .split_once(SEPARATOR)
            .map_or(local, |(u, _)| u)
            .to_string(),
        AddrPart::Detail => local.split_once(SEPARATOR)?.1.to_string(),
    })
}

pub(crate) fn local_part(addr: &str) -> &str {
    addr.rfind('@').map_or(addr, |at| &addr[..at])
}

/// A redirect target as a bare addr-spec: optional angle brackets, one '@', non-empty local and
/// domain parts, nothing that could smuggle extra SMTP syntax.
pub(crate) fn redirect_target(s: &str) -> Option<String> {
    let s = s.trim();
    let s = s
        .strip_prefix('<')
        .and_then(|x| x.strip_suffix('>'))
        .unwrap_or(s);
    let at = s.rfind('@')?;
    let (local, domain) = (&s[..at], &s[at + 1..]);
    let bad = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';');
    if local.is_empty()
        || domain.is_empty()
        || s.chars().any(bad)
        || domain.contains('@')
        || domain.starts_with('.')
        || domain.ends_with('.')
    {
        return None;
    }
    Some(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts() {
        let a = "ken+sieve@example.org";
        assert_eq!(part(a, AddrPart::All).unwrap(), a);
        assert_eq!(part(a, AddrPart::Local).unwrap(), "ken+sieve");
        assert_eq!(part(a, AddrPart::Domain).unwrap(), "example.org");
        assert_eq!(part(a, AddrPart::User).unwrap(), "ken");
        assert_eq!(part(a, AddrPart::Detail).unwrap(), "sieve");
        assert_eq!(part("ken@x", AddrPart::Detail), None);
        assert_eq!(part("ken+@x", AddrPart::Detail).unwrap(), "");
        assert_eq!(part("", AddrPart::Domain).unwrap(), "");
    }

    #[test]
    fn redirect_targets() {
        assert_eq!(redirect_target("<a@b.c>").unwrap(), "a@b.c");
        assert!(redirect_target("a b@c").is_none());
        assert!(redirect_target("abc").is_none());
        assert!(redirect_target("a@b.c, d@e.f").is_none());
        assert!(redirect_target("a@").is_none());
    }
}
