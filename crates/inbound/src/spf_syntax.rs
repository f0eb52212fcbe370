//! The RFC 7208 syntax mail-auth lets pass: a record it would still evaluate although the RFC
//! makes it a `permerror` (bad CIDR lengths, invalid domain-specs, modifiers with bad names,
//! control or non-ASCII characters, more than one `v=spf1` record), and an identity whose
//! domain is malformed, for which check_host() returns `none` before any lookup (§4.3).

use std::net::{Ipv4Addr, Ipv6Addr};

/// Whether `txt` is an SPF record (`v=spf1`, alone or followed by a space; any case).
pub fn is_spf(txt: &str) -> bool {
    let t = txt.as_bytes();
    t.len() >= 6 && t[..6].eq_ignore_ascii_case(b"v=spf1") && (t.len() == 6 || t[6] == b' ')
}

/// §4.3: a domain with a label over 63 octets, an empty label other than a final one, a
/// single label, or an address literal is not one check_host() can look up.
pub fn domain_is_checkable(domain: &str) -> bool {
    let d = domain.strip_suffix('.').unwrap_or(domain);
    if d.is_empty() || d.starts_with('[') {
        return false;
    }
    let labels: Vec<&str> = d.split('.').collect();
    labels.len() >= 2 && labels.iter().all(|l| !l.is_empty() && l.len() <= 63)
}

/// `Err` with the reason when the record breaks the RFC 7208 ABNF (§12).
pub fn check_record(record: &str) -> Result<(), String> {
    if let Some(b) = record
        .bytes()
        .find(|b| !(*b == b' ' || (0x21..=0x7e).contains(b)))
    {
        return Err(format!("character 0x{b:02x} is not allowed in a record"));
    }
    let mut redirect = 0;
    let mut exp = 0;
    for term in record.split(' ').skip(1).filter(|t| !t.is_empty()) {
        if let Some((name, value)) = modifier(term) {
            check_modifier_name(name)?;
            match name.to_ascii_lowercase().as_str() {
                "redirect" => {
                    redirect += 1;
                    domain_spec(value)?;
                }
                "exp" => {
                    exp += 1;
                    domain_spec(value)?;
                }
                _ => macro_string(value)?,
            }
            continue;
        }
        mechanism(term)?;
    }
    if redirect > 1 || exp > 1 {
        return Err("redirect= or exp= given more than once".into());
    }
    Ok(())
}

/// `name=value` when the term is a modifier: an `=` before any `:` or `/`.
fn modifier(term: &str) -> Option<(&str, &str)> {
    let eq = term.find('=')?;
    match term.find([':', '/']) {
        Some(i) if i < eq => None,
        _ => Some((&term[..eq], &term[eq + 1..])),
    }
}

fn check_modifier_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => {}
        _ => return Err(format!("modifier name {name:?} must start with a letter")),
    }
    if chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        Ok(())
    } else {
        Err(format!(
            "modifier name {name:?} has characters outside ALPHA DIGIT - _ ."
        ))
    }
}

fn mechanism(term: &str) -> Result<(), String> {
    let body = term.strip_prefix(['+', '-', '~', '?']).unwrap_or(term);
    let name_end = body.find([':', '/']).unwrap_or(body.len());
    let (name, rest) = body.split_at(name_end);
    match name.to_ascii_lowercase().as_str() {
        "all" if rest.is_empty() => Ok(()),
        "include" | "exists" => match rest.strip_prefix(':') {
            Some(spec) => domain_spec(spec).and_then(|()| queryable(spec)),
            None => Err(format!("{name} needs :domain")),
        },
        "a" | "mx" => match rest.strip_prefix(':') {
            Some(spec_and_cidr) => {
                let (spec, cidr) = split_dual_cidr(spec_and_cidr);
                dual_cidr(cidr)?;
                domain_spec(spec)?;
                queryable(spec)
            }
            None => dual_cidr(rest),
        },
        "ptr" => match rest.strip_prefix(':') {
            Some(spec) => domain_spec(spec),
            None if rest.is_empty() => Ok(()),
            None => Err(format!("bad ptr term {term:?}")),
        },
        "ip4" => {
            let net = rest
                .strip_prefix(':')
                .ok_or_else(|| "ip4 needs :address".to_string())?;
            let (addr, len) = match net.split_once('/') {
                Some((a, l)) => (a, Some(l)),
                None => (net, None),
            };
            strict_ipv4(addr)?;
            match len {
                Some(l) => cidr_length(l, 32),
                None => Ok(()),
            }
        }
        "ip6" => {
            let net = rest
                .strip_prefix(':')
                .ok_or_else(|| "ip6 needs :address".to_string())?;
            let (addr, len) = match net.rsplit_once('/') {
                Some((a, l)) => (a, Some(l)),
                None => (net, None),
            };
            addr.parse::<Ipv6Addr>()
                .map_err(|_| format!("{addr:?} is not an IPv6 address"))?;
            match len {
                Some(l) => cidr_length(l, 128),
                None => Ok(()),
            }
        }
        _ => Err(format!("unknown mechanism {term:?}")),
    }
}

/// A target without macros must be a name DNS can be asked about: RFC 7208 leaves an empty or
/// over-long label undefined (test suite: fail or permerror); querying it anyway made a
/// resolver error, and so a wrong `temperror` that invites retries forever.
fn queryable(spec: &str) -> Result<(), String> {
    if spec.contains('%') {
        return Ok(());
    }
    let name = spec.strip_suffix('.').unwrap_or(spec);
    if name.len() > 253 {
        return Err(format!("target {spec:?} is longer than a DNS name may be"));
    }
    if name
        .split('.')
        .any(|label| label.is_empty() || label.len() > 63)
    {
        return Err(format!(
            "target {spec:?} has an empty label or one longer than 63 characters"
        ));
    }
    Ok(())
}

/// Splits a trailing dual-cidr-length (`/24`, `//64`, `/24//64`) off a domain-spec.
fn split_dual_cidr(s: &str) -> (&str, &str) {
    let bytes = s.as_bytes();
    let mut end = bytes.len();
    // At most two numeric components, each preceded by "/" or "//".
    for _ in 0..2 {
        let digits_start = bytes[..end]
            .iter()
            .rposition(|b| !b.is_ascii_digit())
            .map_or(0, |i| i + 1);
        if digits_start == end || digits_start == 0 || bytes[digits_start - 1] != b'/' {
            break;
        }
        let mut slash = digits_start - 1;
        if slash > 0 && bytes[slash - 1] == b'/' {
            slash -= 1;
        }
        end = slash;
    }
    (&s[..end], &s[end..])
}

/// `""`, `/N`, `//M` or `/N//M`.
fn dual_cidr(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Ok(());
    }
    if let Some(v6) = s.strip_prefix("//") {
        return cidr_length(v6, 128);
    }
    let Some(rest) = s.strip_prefix('/') else {
        return Err(format!("bad CIDR {s:?}"));
    };
    match rest.split_once("//") {
        Some((v4, v6)) => {
            cidr_length(v4, 32)?;
            cidr_length(v6, 128)
        }
        None => cidr_length(rest, 32),
    }
}

/// A prefix length: digits without a leading zero (except "0"), at most `max`.
fn cidr_length(s: &str, max: u32) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'))
        && s.parse::<u32>().is_ok_and(|n| n <= max);
    if ok {
        Ok(())
    } else {
        Err(format!("bad CIDR length {s:?} (0 to {max})"))
    }
}

fn strict_ipv4(s: &str) -> Result<(), String> {
    s.parse::<Ipv4Addr>()
        .map(|_| ())
        .map_err(|_| format!("{s:?} is not an IPv4 address"))
}

/// macro-string (§7.1): literals, and `%{…}`, `%%`, `%_`, `%-` expansions.
fn macro_string(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'%') | Some(b'_') | Some(b'-') => i += 2,
            Some(b'{') => {
                let close = s[i..]
                    .find('}')
                    .ok_or_else(|| format!("unclosed macro in {s:?}"))?;
                let inner = &s[i + 2..i + close];
                let mut c = inner.chars();
                match c.next().map(|c| c.to_ascii_lowercase()) {
                    Some('s' | 'l' | 'o' | 'd' | 'i' | 'p' | 'h' | 'c' | 'r' | 't' | 'v') => {}
                    _ => return Err(format!("bad macro %{{{inner}}}")),
                }
                let rest: String = c.collect();
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                let after = &rest[digits.len()..];
                let after = after.strip_prefix(['r', 'R']).unwrap_or(after);
                if !after
                    .chars()
                    .all(|c| matches!(c, '.' | '-' | '+' | ',' | '/' | '_' | '='))
                {
                    return Err(format!("bad macro %{{{inner}}}"));
                }
                i += close + 1;
            }
            _ => return Err(format!("a lone % in {s:?}")),
        }
    }
    Ok(())
}

/// domain-spec = macro-string domain-end; domain-end = "." toplabel ["."] / macro-expand.
fn domain_spec(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("empty domain".into());
    }
    macro_string(s)?;
    if s.ends_with('}') {
        return Ok(()); // ends with a macro expansion
    }
    let trimmed = s.strip_suffix('.').unwrap_or(s);
    let Some((_, top)) = trimmed.rsplit_once('.') else {
        return Err(format!("{s:?} is not a domain with a top label"));
    };
    let valid_top = !top.is_empty()
        && top.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && top.bytes().any(|b| b.is_ascii_alphabetic())
        && !top.starts_with('-')
        && !top.ends_with('-');
    if valid_top {
        Ok(())
    } else {
        Err(format!("{s:?} ends in an invalid top label"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records() {
        for ok in [
            "v=spf1 -all",
            "v=spf1",
            "v=spf1 a mx/24 a:mail.example.com/24//64 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all",
            "v=spf1 include:_spf.example.com exists:%{i}.%{d}._spf.example.com ?all",
            "v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all",
            "v=spf1 a:foo:bar/baz.example.com",
            "v=spf1 redirect=_spf.example.com",
            "v=spf1 ptr ptr:example.com -all",
        ] {
            assert_eq!(check_record(ok), Ok(()), "{ok}");
        }
        for bad in [
            "v=spf1 a/33 -all",
            "v=spf1 a/24/64 -all",
            "v=spf1 ip4:1.2.3.4/032 -all",
            "v=spf1 ip6:::1/129",
            "v=spf1 a:111.222.33.44",
            "v=spf1 a:museum",
            "v=spf1 a:foo-bar -all",
            "v=spf1 1up=foo",
            "v=spf1 =all",
            "v=spf1 exp=-all",
            "v=spf1 redirect=-all ?all",
            "v=spf1 redirect=a.example.com redirect=b.example.com",
            "v=spf1 ip4:192.0.2.5\n include:x.example.com",
            "v=spf1 a:ctrl.example.com\rptr -all",
            "v=spf1 \u{80}a:example.net -all",
            "v=spf1 foo:bar",
            "v=spf1 include",
            "v=spf1 exists:%{x}.example.com",
        ] {
            assert!(check_record(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn identities() {
        assert!(domain_is_checkable("example.com"));
        assert!(domain_is_checkable("example.com."));
        assert!(!domain_is_checkable("[192.0.2.1]"));
        assert!(!domain_is_checkable("OEMCOMPUTER"));
        assert!(!domain_is_checkable("a..example.com"));
        assert!(!domain_is_checkable(&format!(
            "{}.example.com",
            "a".repeat(64)
        )));
        assert!(
            is_spf("v=spf1 -all")
                && is_spf("V=SPF1")
                && !is_spf("v=spf10")
                && !is_spf("v=spf3 -all")
        );
    }

    #[test]
    fn targets_dns_cannot_be_asked_about_are_refused() {
        let long = format!("a:{}.example.com", "a".repeat(64));
        for bad in [
            "a:mail.example...com",
            &long,
            "mx:.example.com",
            "exists:a..b",
        ] {
            assert!(
                check_record(&format!("v=spf1 {bad} -all")).is_err(),
                "{bad}"
            );
        }
        let name253 = format!("include:{}.com", vec!["a".repeat(62); 4].join("."));
        assert!(check_record(&format!("v=spf1 {name253} -all")).is_err());
        // Macros expand later; a trailing dot is the root.
        for good in [
            "a:%{d}..x.example.com",
            "a:mail.example.com.",
            "exists:%{i}.bl.example.org",
        ] {
            assert!(
                check_record(&format!("v=spf1 {good} -all")).is_ok(),
                "{good}"
            );
        }
    }
}
