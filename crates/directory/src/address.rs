//! Mail address syntax as the directory sees it: splitting `local@domain`, normalising for lookups
//! (lower-cased domain, case-folded local part), plus-tags, and the stricter rule for names an
//! administrator creates. UTF-8 local parts and domains (SMTPUTF8, RFC 6531) are accepted.

/// Longest local part in octets (RFC 5321 §4.5.3.1.1).
const MAX_LOCAL: usize = 64;
/// Longest domain in octets (RFC 5321 §4.5.3.1.2).
const MAX_DOMAIN: usize = 255;
/// Longest label of a domain in octets.
const MAX_LABEL: usize = 63;

/// A parsed address: the local part as given, the domain lower-cased without a trailing dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub local: String,
    pub domain: String,
}

impl Address {
    /// Parses any address a peer may send: the local part only has to be non-empty, of bounded
    /// length and free of control characters and spaces (so that quoted or unusual forms reach
    /// the lookup and simply match nothing).
    pub fn parse(address: &str) -> Result<Address, String> {
        let (local, domain) = address
            .rsplit_once('@')
            .ok_or_else(|| format!("{address:?} has no @domain"))?;
        if local.is_empty() {
            return Err(format!("{address:?} has an empty local part"));
        }
        if local.len() > MAX_LOCAL {
            return Err(format!("local part longer than {MAX_LOCAL} octets"));
        }
        if local.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(format!(
                "{address:?} has a control character or space in its local part"
            ));
        }
        Ok(Address {
            local: local.to_string(),
            domain: normalize_domain(domain)?,
        })
    }

    /// Parses an address an administrator creates (account or alias): the local part must be a
    /// dot-atom whose characters are RFC 5322 `atext` or non-ASCII UTF-8 (RFC 6531).
    pub fn parse_strict(address: &str) -> Result<Address, String> {
        let a = Address::parse(address)?;
        check_dot_atom(&a.local)?;
        Ok(a)
    }

    /// The lookup form: local part case-folded, domain lower-cased.
    pub fn key(&self) -> String {
        format!("{}@{}", self.local.to_lowercase(), self.domain)
    }

    /// The address without its `+tag` (`user+tag` → `user`), when it has one.
    pub fn without_tag(&self) -> Option<Address> {
        let (base, _) = self.local.split_once('+')?;
        if base.is_empty() {
            return None;
        }
        Some(Address {
            local: base.to_string(),
            domain: self.domain.clone(),
        })
    }
}

/// Lower-cases a domain, drops one trailing dot and checks its labels (letters, digits, hyphens,
/// or non-ASCII for internationalised names; no empty label; no hyphen at either end).
pub fn normalize_domain(domain: &str) -> Result<String, String> {
    let d = domain.strip_suffix('.').unwrap_or(domain).to_lowercase();
    if d.is_empty() {
        return Err("empty domain".to_string());
    }
    if d.len() > MAX_DOMAIN {
        return Err(format!("domain longer than {MAX_DOMAIN} octets"));
    }
    for label in d.split('.') {
        if label.is_empty() {
            return Err(format!("domain {domain:?} has an empty label"));
        }
        if label.len() > MAX_LABEL {
            return Err(format!("domain label longer than {MAX_LABEL} octets"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "domain label {label:?} starts or ends with a hyphen"
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!("domain {domain:?} contains {c:?}"));
        }
    }
    Ok(d)
}

fn check_dot_atom(local: &str) -> Result<(), String> {
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(format!("local part {local:?} has a misplaced dot"));
    }
    const ATEXT_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~.";
    match local
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ATEXT_SPECIALS.contains(*c) || !c.is_ascii()))
    {
        Some(c) => Err(format!("local part {local:?} contains {c:?}")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_is_lowered_and_trailing_dot_dropped() {
        let a = Address::parse("Bob@Example.COM.").unwrap();
        assert_eq!(a.local, "Bob");
        assert_eq!(a.domain, "example.com");
        assert_eq!(a.key(), "bob@example.com");
    }

    #[test]
    fn utf8_addresses_are_accepted() {
        let a = Address::parse_strict("Jörg@Bücher.example").unwrap();
        assert_eq!(a.key(), "jörg@bücher.example");
        let a = Address::parse_strict("用户@例子.广告").unwrap();
        assert_eq!(a.local, "用户");
    }

    #[test]
    fn plus_tag_is_stripped() {
        let a = Address::parse("user+tag+more@d.example").unwrap();
        assert_eq!(a.without_tag().unwrap().local, "user");
        assert!(
            Address::parse("+tag@d.example")
                .unwrap()
                .without_tag()
                .is_none()
        );
        assert!(
            Address::parse("user@d.example")
                .unwrap()
                .without_tag()
                .is_none()
        );
    }

    #[test]
    fn bad_addresses_are_refused() {
        for bad in [
            "nodomain",
            "@d.example",
            "a@",
            "a@-x.example",
            "a@x..example",
            "a b@d.example",
            "a@d ex",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad}");
        }
        for bad in [
            "a..b@d.example",
            ".a@d.example",
            "a\"b@d.example",
            "a(b@d.example",
        ] {
            assert!(Address::parse_strict(bad).is_err(), "{bad}");
        }
        assert!(Address::parse(&format!("{}@d.example", "a".repeat(65))).is_err());
    }
}
