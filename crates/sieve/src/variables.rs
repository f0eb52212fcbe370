//! Strings that can change at run time: `${name}` and `${N}` references (RFC 5229), the `set`
//! modifiers, and `${hex:…}` / `${unicode:…}` encoded characters (RFC 5228 §2.4.2.4), which are
//! resolved once at compile time. Also owns the per-script variable store and its size cap.

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    Lit(String),
    /// Lower-cased: variable names are case-insensitive.
    Var(String),
    Match(usize),
}

/// A string argument, already split into literal text and variable references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Str {
    parts: Vec<Part>,
}

impl Str {
    pub(crate) fn literal(s: impl Into<String>) -> Str {
        Str {
            parts: vec![Part::Lit(s.into())],
        }
    }

    /// The text when no variable is referenced, so compile-time checks can validate it.
    pub(crate) fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Lit(s)] => Some(s),
            _ => None,
        }
    }

    /// Splits out `${…}` references. An unsupported namespace (`${a.b}`) is an error, as RFC 5229
    /// §3 requires; anything else that is not a valid reference stays literal text.
    pub(crate) fn parse(s: &str) -> Result<Str, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            lit.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                lit.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let inner = &after[..end];
            let part = if !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit()) {
                Some(Part::Match(inner.parse().unwrap_or(usize::MAX)))
            } else if is_identifier(inner) {
                Some(Part::Var(inner.to_ascii_lowercase()))
            } else if inner.contains('.') && inner.split('.').all(is_identifier) {
                return Err(format!(
                    "unsupported variable namespace in \"${{{inner}}}\""
                ));
            } else {
                None
            };
            match part {
                Some(p) => {
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(p);
                    rest = &after[end + 1..];
                }
                None => {
                    // Not a reference: keep "${" and rescan from just after it, since a valid
                    // reference may start inside, e.g. "${${a}".
                    lit.push_str("${");
                    rest = after;
                }
            }
        }
        lit.push_str(rest);
        if !lit.is_empty() || parts.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Str { parts })
    }

    /// Substituted text altogether gets at most one variable's worth of bytes, so a string
    /// repeating `${big}` cannot multiply memory use.
    pub(crate) fn expand(&self, vars: &Variables) -> String {
        let mut out = String::new();
        let mut budget = vars.max_bytes;
        for p in &self.parts {
            let value = match p {
                Part::Lit(s) => {
                    out.push_str(s);
                    continue;
                }
                Part::Var(name) => vars.get(name),
                Part::Match(n) => vars.match_var(*n),
            };
            let mut cut = value.len().min(budget);
            while !value.is_char_boundary(cut) {
                cut -= 1;
            }
            out.push_str(&value[..cut]);
            budget -= cut;
        }
        out
    }
}

pub(crate) fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// One script's variables plus the match variables of the last successful `:matches`.
#[derive(Debug, Default)]
pub(crate) struct Variables {
    values: HashMap<String, String>,
    matches: Vec<String>,
    max_bytes: usize,
}

/// Variables beyond this many per script are refused so a loop-free script still cannot grow
/// memory without bound through distinct names (names are compile-time text, so this is generous).
const MAX_VARIABLES: usize = 1024;

impl Variables {
    pub(crate) fn new(max_bytes: usize) -> Self {
        Variables {
            values: HashMap::new(),
            matches: Vec::new(),
            max_bytes,
        }
    }

    pub(crate) fn get(&self, name: &str) -> &str {
        self.values.get(name).map_or("", String::as_str)
    }

    pub(crate) fn match_var(&self, n: usize) -> &str {
        self.matches.get(n).map_or("", String::as_str)
    }

    pub(crate) fn set(&mut self, name: &str, mut value: String) {
        truncate(&mut value, self.max_bytes);
        if self.values.len() >= MAX_VARIABLES && !self.values.contains_key(name) {
            return;
        }
        self.values.insert(name.to_string(), value);
    }

    pub(crate) fn set_matches(&mut self, mut captures: Vec<String>) {
        for c in &mut captures {
            truncate(c, self.max_bytes);
        }
        self.matches = captures;
    }
}

/// RFC 5229 §3 lets an implementation shorten values; cutting at a char boundary keeps UTF-8 valid.
pub(crate) fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while cut > 0 && !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Modifier {
    Lower,
    Upper,
    LowerFirst,
    UpperFirst,
    QuoteWildcard,
    Length,
}

impl Modifier {
    pub(crate) fn from_tag(tag: &str) -> Option<Modifier> {
        Some(match tag {
            "lower" => Modifier::Lower,
            "upper" => Modifier::Upper,
            "lowerfirst" => Modifier::LowerFirst,
            "upperfirst" => Modifier::UpperFirst,
            "quotewildcard" => Modifier::QuoteWildcard,
            "length" => Modifier::Length,
            _ => return None,
        })
    }

    /// RFC 5229 §4.1: higher precedence is applied first; two of equal precedence is an error.
    pub(crate) fn precedence(self) -> u8 {
        match self {
            Modifier::Lower | Modifier::Upper => 40,
            Modifier::LowerFirst | Modifier::UpperFirst => 30,
            Modifier::QuoteWildcard => 20,
            Modifier::Length => 10,
        }
    }

    pub(crate) fn apply(self, s: String) -> String {
        match self {
            Modifier::Lower => s.to_lowercase(),
            Modifier::Upper => s.to_uppercase(),
            Modifier::LowerFirst | Modifier::UpperFirst => {
                let mut chars = s.chars();
                match chars.next() {
                    Some(c) => {
                        let first: String = if self == Modifier::LowerFirst {
                            c.to_lowercase().collect()
                        } else {
                            c.to_uppercase().collect()
                        };
                        first + chars.as_str()
                    }
                    None => s,
                }
            }
            Modifier::QuoteWildcard => {
                let mut out = String::with_capacity(s.len());
                for c in s.chars() {
                    if matches!(c, '*' | '?' | '\\') {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out
            }
            // Characters, not octets: RFC 5229 counts characters.
            Modifier::Length => s.chars().count().to_string(),
        }
    }
}

/// Resolves `${hex:…}` and `${unicode:…}`. Malformed sequences stay as they are (§2.4.2.4);
/// hex that is not UTF-8 and code points that are not Unicode scalars are errors.
pub(crate) fn decode_encoded_characters(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let decoded = match after.find('}') {
            Some(end) => {
                let inner = &after[..end];
                match inner.split_once(':') {
                    Some((kind, seq)) if kind.eq_ignore_ascii_case("hex") => {
                        decode_hex(seq)?.map(|d| (d, end))
                    }
                    Some((kind, seq)) if kind.eq_ignore_ascii_case("unicode") => {
                        decode_unicode(seq)?.map(|d| (d, end))
                    }
                    _ => None,
                }
            }
            None => None,
        };
        match decoded {
            Some((d, end)) => {
                out.push_str(&d);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn hex_groups(seq: &str, max_digits: usize) -> Option<Vec<u32>> {
    let groups: Vec<&str> = seq.split([' ', '\t']).filter(|g| !g.is_empty()).collect();
    if groups.is_empty() {
        return None;
    }
    groups
        .into_iter()
        .map(|g| {
            if g.len() > max_digits || !g.bytes().all(|b| b.is_ascii_hexdigit()) {
                None
            } else {
                u32::from_str_radix(g, 16).ok()
            }
        })
        .collect()
}

fn decode_hex(seq: &str) -> Result<Option<String>, String> {
    let Some(groups) = hex_groups(seq, 2) else {
        return Ok(None);
    };
    let bytes: Vec<u8> = groups
        .into_iter()
        .filter_map(|v| u8::try_from(v).ok())
        .collect();
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| "encoded characters are not valid UTF-8".to_string())
}

fn decode_unicode(seq: &str) -> Result<Option<String>, String> {
    let Some(groups) = hex_groups(seq, 8) else {
        return Ok(None);
    };
    groups
        .into_iter()
        .map(|v| char::from_u32(v).ok_or_else(|| format!("invalid Unicode code point {v:X}")))
        .collect::<Result<String, String>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let s = Str::parse("a${Foo}b${1}c${bad-name}${x").unwrap();
        let mut v = Variables::new(100);
        v.set("foo", "F".into());
        v.set_matches(vec!["all".into(), "one".into()]);
        assert_eq!(s.expand(&v), "aFbonec${bad-name}${x");
        assert!(Str::parse("${env.home}").is_err());
        assert_eq!(Str::parse("${${a}").unwrap().expand(&v), "${");
        assert_eq!(Str::parse("plain").unwrap().as_literal(), Some("plain"));
    }

    #[test]
    fn modifiers() {
        assert_eq!(Modifier::Upper.apply("abc".into()), "ABC");
        assert_eq!(Modifier::UpperFirst.apply("abc".into()), "Abc");
        assert_eq!(
            Modifier::QuoteWildcard.apply("a*b?\\".into()),
            "a\\*b\\?\\\\"
        );
        assert_eq!(Modifier::Length.apply("héllo".into()), "5");
    }

    #[test]
    fn expansion_is_bounded() {
        let mut v = Variables::new(10);
        v.set("a", "x".repeat(100));
        assert_eq!(v.get("a").len(), 10);
        let s = Str::parse(&"${a}".repeat(50)).unwrap();
        assert_eq!(s.expand(&v).len(), 10);
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let mut s = "aé".to_string();
        truncate(&mut s, 2);
        assert_eq!(s, "a");
    }

    #[test]
    fn encoded_characters() {
        // RFC 5228 §2.4.2.4 examples.
        assert_eq!(decode_encoded_characters("${hex:40}").unwrap(), "@");
        assert_eq!(decode_encoded_characters("${HEX: 40}").unwrap(), "@");
        assert_eq!(decode_encoded_characters("${hex:40").unwrap(), "${hex:40");
        assert_eq!(
            decode_encoded_characters("${hex:400}").unwrap(),
            "${hex:400}"
        );
        assert_eq!(
            decode_encoded_characters("${hex:4${hex:30}}").unwrap(),
            "${hex:40}"
        );
        assert_eq!(decode_encoded_characters("${unicode:40}").unwrap(), "@");
        assert_eq!(
            decode_encoded_characters("${ unicode:40}").unwrap(),
            "${ unicode:40}"
        );
        assert_eq!(decode_encoded_characters("${UNICODE:0040}").unwrap(), "@");
        assert_eq!(
            decode_encoded_characters("${Unicode:Cool}").unwrap(),
            "${Unicode:Cool}"
        );
        assert!(decode_encoded_characters("${unicode:D800}").is_err());
        assert!(decode_encoded_characters("${hex:ff}").is_err());
    }
}
