//! Comparators (RFC 4790: `i;octet`, `i;ascii-casemap`, `i;ascii-numeric`) and match types
//! (`:is`, `:contains`, `:matches`, relational `:value` / `:count` from RFC 5231). Every test that
//! compares strings goes through `Matcher`, so the "any value against any key" rule and the
//! capture of match variables live in one place.

use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Comparator {
    Octet,
    AsciiCasemap,
    AsciiNumeric,
}

impl Comparator {
    pub(crate) fn from_name(name: &str) -> Option<Comparator> {
        match name.to_ascii_lowercase().as_str() {
            "i;octet" => Some(Comparator::Octet),
            "i;ascii-casemap" => Some(Comparator::AsciiCasemap),
            "i;ascii-numeric" => Some(Comparator::AsciiNumeric),
            _ => None,
        }
    }

    fn chars_equal(self, a: char, b: char) -> bool {
        match self {
            Comparator::AsciiCasemap => a.eq_ignore_ascii_case(&b),
            _ => a == b,
        }
    }

    pub(crate) fn compare(self, a: &str, b: &str) -> Ordering {
        match self {
            Comparator::Octet => a.as_bytes().cmp(b.as_bytes()),
            Comparator::AsciiCasemap => a
                .bytes()
                .map(|c| c.to_ascii_uppercase())
                .cmp(b.bytes().map(|c| c.to_ascii_uppercase())),
            Comparator::AsciiNumeric => numeric_compare(a, b),
        }
    }
}

/// RFC 4790 §9.1: the value is the leading run of digits; a string with no leading digit is
/// positive infinity, equal only to other such strings.
fn numeric_compare(a: &str, b: &str) -> Ordering {
    fn digits(s: &str) -> Option<&str> {
        let end = s.bytes().take_while(u8::is_ascii_digit).count();
        if end == 0 {
            return None;
        }
        let d = s[..end].trim_start_matches('0');
        Some(d)
    }
    match (digits(a), digits(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        // Arbitrary length without overflow: longer (sans leading zeros) is bigger.
        (Some(x), Some(y)) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RelOp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl RelOp {
    pub(crate) fn from_name(name: &str) -> Option<RelOp> {
        Some(match name.to_ascii_lowercase().as_str() {
            "gt" => RelOp::Gt,
            "ge" => RelOp::Ge,
            "lt" => RelOp::Lt,
            "le" => RelOp::Le,
            "eq" => RelOp::Eq,
            "ne" => RelOp::Ne,
            _ => return None,
        })
    }

    fn holds(self, o: Ordering) -> bool {
        match self {
            RelOp::Gt => o == Ordering::Greater,
            RelOp::Ge => o != Ordering::Less,
            RelOp::Lt => o == Ordering::Less,
            RelOp::Le => o != Ordering::Greater,
            RelOp::Eq => o == Ordering::Equal,
            RelOp::Ne => o != Ordering::Equal,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MatchKind {
    Is,
    Contains,
    Matches,
    Value(RelOp),
    Count(RelOp),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Matcher {
    pub comparator: Comparator,
    pub kind: MatchKind,
}

impl Default for Matcher {
    fn default() -> Self {
        Matcher {
            comparator: Comparator::AsciiCasemap,
            kind: MatchKind::Is,
        }
    }
}

/// What a test evaluation found: whether it matched, and the `:matches` captures to publish.
pub(crate) struct MatchResult {
    pub matched: bool,
    pub captures: Option<Vec<String>>,
}

impl Matcher {
    /// RFC 5228 §2.7.1: true when any value matches any key. `:count` instead compares the number
    /// of values with each key.
    pub(crate) fn test(&self, values: &[String], keys: &[String]) -> MatchResult {
        if let MatchKind::Count(op) = self.kind {
            let count = values.len().to_string();
            let matched = keys
                .iter()
                .any(|k| op.holds(self.comparator.compare(&count, k)));
            return MatchResult {
                matched,
                captures: None,
            };
        }
        for v in values {
            for k in keys {
                if let Some(captures) = self.one(v, k) {
                    return MatchResult {
                        matched: true,
                        captures,
                    };
                }
            }
        }
        MatchResult {
            matched: false,
            captures: None,
        }
    }

    /// Some(captures) on a match; captures is Some only for `:matches`.
    fn one(&self, value: &str, key: &str) -> Option<Option<Vec<String>>> {
        let c = self.comparator;
        let ok = match self.kind {
            MatchKind::Is => c.compare(value, key) == Ordering::Equal,
            MatchKind::Contains => contains(c, value, key),
            MatchKind::Matches => return wildcard(c, value, key).map(Some),
            MatchKind::Value(op) => op.holds(c.compare(value, key)),
            MatchKind::Count(_) => false,
        };
        ok.then_some(None)
    }
}

fn contains(c: Comparator, value: &str, key: &str) -> bool {
    match c {
        Comparator::AsciiCasemap => value
            .to_ascii_lowercase()
            .contains(&key.to_ascii_lowercase()),
        _ => value.contains(key),
    }
}

#[derive(Debug, Clone, Copy)]
enum Pat {
    Star,
    One,
    Lit(char),
}

/// `*` and `?` wildcards with `\` quoting. Runs in O(value × pattern): on a mismatch only the
/// most recent `*` grows, which finds a match whenever one exists and gives each earlier `*` its
/// shortest extent, the leftmost-shortest captures RFC 5229 §3.2 describes. Returns ${0}…${n}.
pub(crate) fn wildcard(c: Comparator, value: &str, pattern: &str) -> Option<Vec<String>> {
    let mut pat = Vec::new();
    let mut chars = pattern.chars();
    while let Some(ch) = chars.next() {
        pat.push(match ch {
            '*' => Pat::Star,
            '?' => Pat::One,
            '\\' => match chars.next() {
                Some(n) => Pat::Lit(n),
                None => Pat::Lit('\\'),
            },
            other => Pat::Lit(other),
        });
    }
    let text: Vec<char> = value.chars().collect();
    // Index of each wildcard's capture slot.
    let mut slot = vec![usize::MAX; pat.len()];
    let mut n_caps = 0;
    for (i, p) in pat.iter().enumerate() {
        if !matches!(p, Pat::Lit(_)) {
            slot[i] = n_caps;
            n_caps += 1;
        }
    }
    let mut caps = vec![(0usize, 0usize); n_caps];
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pat.get(p) {
            Some(Pat::Lit(l)) if c.chars_equal(*l, text[t]) => {
                p += 1;
                t += 1;
            }
            Some(Pat::One) => {
                caps[slot[p]] = (t, t + 1);
                p += 1;
                t += 1;
            }
            Some(Pat::Star) => {
                caps[slot[p]] = (t, t);
                star = Some((p, t));
                p += 1;
            }
            _ => {
                let (sp, st) = star?;
                let st = st + 1;
                star = Some((sp, st));
                caps[slot[sp]] = (caps[slot[sp]].0, st);
                p = sp + 1;
                t = st;
            }
        }
    }
    while let Some(Pat::Star) = pat.get(p) {
        caps[slot[p]] = (t, t);
        p += 1;
    }
    if p != pat.len() {
        return None;
    }
    let mut out = Vec::with_capacity(n_caps + 1);
    out.push(value.to_string());
    for (a, b) in caps {
        out.push(text[a..b].iter().collect());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kind: MatchKind, comparator: Comparator) -> Matcher {
        Matcher { comparator, kind }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn matches_captures_rfc5229_examples() {
        let c = Comparator::AsciiCasemap;
        let r = wildcard(c, "[acme-users] [fwd] version 1.0 is out", "[*] *").unwrap();
        assert_eq!(r[1], "acme-users");
        assert_eq!(r[2], "[fwd] version 1.0 is out");
        let r = wildcard(c, "coyote@desert.example.org", "*@*.*").unwrap();
        assert_eq!(&r[1..], &s(&["coyote", "desert", "example.org"])[..]);
        let r = wildcard(c, "Mailing list <list@example.com>", "*<*@*").unwrap();
        assert_eq!(r[2], "list");
        assert!(wildcard(c, "abc", "a?c").is_some());
        assert!(wildcard(c, "abbc", "a?c").is_none());
        assert!(wildcard(c, "a*c", "a\\*c").is_some());
        assert!(wildcard(c, "abc", "a\\*c").is_none());
        assert!(wildcard(c, "", "*").is_some());
        assert!(wildcard(Comparator::Octet, "ABC", "a*").is_none());
    }

    #[test]
    fn pathological_pattern_is_fast() {
        let text = "a".repeat(5000);
        let pat = "*a".repeat(200) + "b";
        assert!(wildcard(Comparator::Octet, &text, &pat).is_none());
    }

    #[test]
    fn numeric_and_relational() {
        let n = Comparator::AsciiNumeric;
        assert_eq!(n.compare("10", "9"), Ordering::Greater);
        assert_eq!(n.compare("007", "7"), Ordering::Equal);
        assert_eq!(
            n.compare("abc", "99999999999999999999999"),
            Ordering::Greater
        );
        assert_eq!(n.compare("x", "y"), Ordering::Equal);
        let r = m(MatchKind::Value(RelOp::Gt), n).test(&s(&["15"]), &s(&["10"]));
        assert!(r.matched);
        let r = m(MatchKind::Count(RelOp::Ge), n).test(&s(&["a", "b"]), &s(&["2"]));
        assert!(r.matched);
        let r = m(MatchKind::Count(RelOp::Eq), n).test(&[], &s(&["0"]));
        assert!(r.matched);
    }

    #[test]
    fn is_and_contains() {
        let c = Comparator::AsciiCasemap;
        assert!(
            m(MatchKind::Is, c)
                .test(&s(&["Hello"]), &s(&["hELLO"]))
                .matched
        );
        assert!(
            !m(MatchKind::Is, Comparator::Octet)
                .test(&s(&["Hello"]), &s(&["hello"]))
                .matched
        );
        assert!(
            m(MatchKind::Contains, c)
                .test(&s(&["Make MONEY fast"]), &s(&["money"]))
                .matched
        );
        assert!(
            m(MatchKind::Contains, c)
                .test(&s(&["x"]), &s(&[""]))
                .matched
        );
    }
}
