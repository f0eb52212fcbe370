//! Wharf's SPF evaluator (RFC 7208): the record syntax (§4.5–§6, the ABNF of §12), macro
//! expansion (§7, `exp=` explanations included) and check_host() (§4) with its limits, over the
//! server's hickory resolver. The result is a `mail_auth::SpfOutput`, so mail-auth's DMARC
//! evaluation and Authentication-Results writer take it as they took their own.
//!
//! Why not mail-auth's SPF: measured against the RFC 7208 test suite it passes 146 of 203 cases
//! (185 with syntax checks wrapped around it), and its misses are inside the evaluation (IPv4
//! clients matched by ip6, `exists` by AAAA, no implicit PTR match, names it refuses to ask
//! about answered as temperror, no void-lookup limit). This module passes all 203.
//!
//! Everything a hostile domain can make us do is bounded: the record's length, 10 terms that
//! ask DNS (include loops end there), 10 MX and 10 PTR names per term, 2 void lookups, the
//! length of every macro expansion, and one deadline for the whole check (the caller's).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use mail_auth::{SpfOutput, SpfResult};

/// A record longer than this is a `permerror` before it is parsed. RFC 7208 sets no maximum but
/// asks records to fit a 512-octet UDP answer (§3.4); real ones are a few hundred characters.
pub const MAX_RECORD_LEN: usize = 4096;
/// §4.6.4: terms that ask DNS (include, a, mx, ptr, exists, redirect) per evaluation.
const MAX_DNS_TERMS: u32 = 10;
/// §4.6.4: lookups answered by no records or NXDOMAIN, per evaluation.
const MAX_VOID_LOOKUPS: u32 = 2;
/// §4.6.4: MX names one `mx` term may bring (more is a permerror) and PTR names one `ptr` term
/// or the `p` macro looks at (the rest are ignored).
const MAX_NAMES: usize = 10;
/// No macro expansion grows past this (an expanded domain is cut to 253 octets afterwards, an
/// explanation is dropped): a short record must not turn into megabytes of text.
pub const MAX_EXPANSION: usize = 8192;

// ------------------------------------------------------------------ record syntax

/// The qualifier in front of a mechanism (`+` when none is written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    Pass,
    Fail,
    SoftFail,
    Neutral,
}

impl Qualifier {
    fn result(self) -> SpfResult {
        match self {
            Qualifier::Pass => SpfResult::Pass,
            Qualifier::Fail => SpfResult::Fail,
            Qualifier::SoftFail => SpfResult::SoftFail,
            Qualifier::Neutral => SpfResult::Neutral,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    All,
    Include(MacroString),
    /// `a` and `mx`: the domain (the current one when `None`) and the IPv4 and IPv6 prefix lengths.
    A(Option<MacroString>, u8, u8),
    Mx(Option<MacroString>, u8, u8),
    Ptr(Option<MacroString>),
    Ip4(Ipv4Addr, u8),
    Ip6(Ipv6Addr, u8),
    Exists(MacroString),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub qualifier: Qualifier,
    pub mechanism: Mechanism,
}

/// A parsed `v=spf1` record. Unknown modifiers are checked and dropped (§6).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub directives: Vec<Directive>,
    pub redirect: Option<MacroString>,
    pub exp: Option<MacroString>,
}

/// Whether `txt` is an SPF record: `v=spf1` in any case, alone or followed by a space (§4.5).
pub fn is_spf(txt: &[u8]) -> bool {
    txt.len() >= 6 && txt[..6].eq_ignore_ascii_case(b"v=spf1") && (txt.len() == 6 || txt[6] == b' ')
}

/// Parses a whole record; `Err` says why RFC 7208 makes it a `permerror`. Errors anywhere in
/// the record count, even after a mechanism that would match (§4.6).
pub fn parse_record(txt: &[u8]) -> Result<Record, String> {
    if txt.len() > MAX_RECORD_LEN {
        return Err(format!(
            "record of {} characters, over {MAX_RECORD_LEN}",
            txt.len()
        ));
    }
    if let Some(b) = txt
        .iter()
        .find(|b| !(**b == b' ' || (0x21..=0x7e).contains(*b)))
    {
        return Err(format!("character 0x{b:02x} is not allowed in a record"));
    }
    if !is_spf(txt) {
        return Err("not a v=spf1 record".into());
    }
    // Checked to be printable ASCII above.
    let text = String::from_utf8_lossy(txt);
    let mut record = Record::default();
    for term in text[6..].split(' ').filter(|t| !t.is_empty()) {
        match modifier(term) {
            Some((name, value)) => {
                if name.eq_ignore_ascii_case("redirect") {
                    if record.redirect.is_some() {
                        return Err("redirect= given twice".into());
                    }
                    record.redirect = Some(domain_spec(value)?);
                } else if name.eq_ignore_ascii_case("exp") {
                    if record.exp.is_some() {
                        return Err("exp= given twice".into());
                    }
                    record.exp = Some(domain_spec(value)?);
                } else {
                    MacroString::parse(value, false)?;
                }
            }
            None => record.directives.push(directive(term)?),
        }
    }
    Ok(record)
}

/// `name=value` when the term is a modifier: name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ).
fn modifier(term: &str) -> Option<(&str, &str)> {
    let b = term.as_bytes();
    if !b.first()?.is_ascii_alphabetic() {
        return None;
    }
    let end = b
        .iter()
        .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.')))?;
    (b[end] == b'=').then(|| (&term[..end], &term[end + 1..]))
}

fn directive(term: &str) -> Result<Directive, String> {
    let (qualifier, body) = match term.as_bytes().first() {
        Some(b'+') => (Qualifier::Pass, &term[1..]),
        Some(b'-') => (Qualifier::Fail, &term[1..]),
        Some(b'~') => (Qualifier::SoftFail, &term[1..]),
        Some(b'?') => (Qualifier::Neutral, &term[1..]),
        _ => (Qualifier::Pass, term),
    };
    let (name, rest) = body.split_at(body.find([':', '/']).unwrap_or(body.len()));
    let target = |what: &str| match rest.strip_prefix(':') {
        Some(spec) => domain_spec(spec),
        None => Err(format!("{what} needs :domain")),
    };
    let mechanism = match name.to_ascii_lowercase().as_str() {
        "all" if rest.is_empty() => Mechanism::All,
        "include" => Mechanism::Include(target("include")?),
        "exists" => Mechanism::Exists(target("exists")?),
        "a" | "mx" => {
            let (spec, (v4, v6)) = match rest.strip_prefix(':') {
                Some(spec_and_cidr) => {
                    let (spec, cidr) = split_dual_cidr(spec_and_cidr);
                    (Some(domain_spec(spec)?), dual_cidr(cidr)?)
                }
                None => (None, dual_cidr(rest)?),
            };
            if name.eq_ignore_ascii_case("a") {
                Mechanism::A(spec, v4, v6)
            } else {
                Mechanism::Mx(spec, v4, v6)
            }
        }
        "ptr" if rest.is_empty() => Mechanism::Ptr(None),
        "ptr" => Mechanism::Ptr(Some(target("ptr")?)),
        "ip4" => {
            let net = rest.strip_prefix(':').ok_or("ip4 needs :address")?;
            let (addr, len) = net
                .split_once('/')
                .map_or((net, None), |(a, l)| (a, Some(l)));
            let addr: Ipv4Addr = addr
                .parse()
                .map_err(|_| format!("{addr:?} is not an IPv4 address"))?;
            Mechanism::Ip4(addr, len.map_or(Ok(32), |l| prefix(l, 32))?)
        }
        "ip6" => {
            let net = rest.strip_prefix(':').ok_or("ip6 needs :address")?;
            let (addr, len) = net
                .split_once('/')
                .map_or((net, None), |(a, l)| (a, Some(l)));
            let addr: Ipv6Addr = addr
                .parse()
                .map_err(|_| format!("{addr:?} is not an IPv6 address"))?;
            Mechanism::Ip6(addr, len.map_or(Ok(128), |l| prefix(l, 128))?)
        }
        _ => return Err(format!("unknown mechanism {term:?}")),
    };
    Ok(Directive {
        qualifier,
        mechanism,
    })
}

/// Splits a trailing dual-cidr-length (`/24`, `//64`, `/24//64`) off a domain-spec; what is
/// not one (`foo:bar/baz.example.com`) stays in the domain.
fn split_dual_cidr(s: &str) -> (&str, &str) {
    let b = s.as_bytes();
    let mut end = b.len();
    for _ in 0..2 {
        let digits = b[..end]
            .iter()
            .rposition(|c| !c.is_ascii_digit())
            .map_or(0, |i| i + 1);
        if digits == end || digits == 0 || b[digits - 1] != b'/' {
            break;
        }
        let mut slash = digits - 1;
        if slash > 0 && b[slash - 1] == b'/' {
            slash -= 1;
        }
        end = slash;
    }
    (&s[..end], &s[end..])
}

/// `""`, `/N`, `//M` or `/N//M` into the IPv4 and IPv6 prefix lengths.
fn dual_cidr(s: &str) -> Result<(u8, u8), String> {
    if s.is_empty() {
        return Ok((32, 128));
    }
    if let Some(v6) = s.strip_prefix("//") {
        return Ok((32, prefix(v6, 128)?));
    }
    let rest = s
        .strip_prefix('/')
        .ok_or_else(|| format!("bad CIDR {s:?}"))?;
    match rest.split_once("//") {
        Some((v4, v6)) => Ok((prefix(v4, 32)?, prefix(v6, 128)?)),
        None => Ok((prefix(rest, 32)?, 128)),
    }
}

/// A prefix length: digits without a leading zero (except "0" itself), at most `max`.
fn prefix(s: &str, max: u8) -> Result<u8, String> {
    let n = (!s.is_empty()
        && s.len() <= 3
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0')))
    .then(|| s.parse::<u8>().ok())
    .flatten()
    .filter(|n| *n <= max);
    n.ok_or_else(|| format!("bad prefix length {s:?} (0 to {max})"))
}

/// domain-spec = macro-string domain-end; domain-end = ( "." toplabel [ "." ] ) / macro-expand.
fn domain_spec(s: &str) -> Result<MacroString, String> {
    if s.is_empty() {
        return Err("empty domain".into());
    }
    let ms = MacroString::parse(s, false)?;
    match ms.0.last() {
        Some(Token::Literal(text)) => {
            let trimmed = text.strip_suffix('.').unwrap_or(text);
            match trimmed.rsplit_once('.') {
                Some((_, top)) if toplabel(top) => Ok(ms),
                _ => Err(format!("{s:?} does not end in a valid top label")),
            }
        }
        Some(_) => Ok(ms),
        None => Err("empty domain".into()),
    }
}

/// toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum ).
fn toplabel(l: &str) -> bool {
    let b = l.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
                && first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && (b.iter().any(u8::is_ascii_alphabetic) || b.contains(&b'-'))
        }
        _ => false,
    }
}

// ------------------------------------------------------------------ macros

/// A macro-string (§7.1), parsed: literal text and `%{…}` expansions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacroString(Vec<Token>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    /// `%%`, `%_` and `%-`: a macro-expand by the ABNF (so a valid domain-end), fixed text.
    Escape(&'static str),
    Macro(Macro),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Macro {
    /// Lower case: s l o d i p h c r t v.
    letter: u8,
    /// Written in upper case: the value is URL-escaped (§7.3).
    escape: bool,
    /// Keep this many right-hand parts (at least 1).
    keep: Option<usize>,
    reverse: bool,
    /// Split on these (default "."); the parts are joined with ".".
    delimiters: Vec<u8>,
}

impl MacroString {
    /// `explain`: the text of an explanation, where `c`, `r` and `t` and spaces are allowed.
    pub fn parse(s: &str, explain: bool) -> Result<MacroString, String> {
        let b = s.as_bytes();
        let mut tokens = Vec::new();
        let mut literal = String::new();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if c != b'%' {
                if !((0x21..=0x7e).contains(&c) || (explain && c == b' ')) {
                    return Err(format!("character 0x{c:02x} in {s:?}"));
                }
                literal.push(char::from(c));
                i += 1;
                continue;
            }
            if !literal.is_empty() {
                tokens.push(Token::Literal(std::mem::take(&mut literal)));
            }
            match b.get(i + 1) {
                Some(b'%') => tokens.push(Token::Escape("%")),
                Some(b'_') => tokens.push(Token::Escape(" ")),
                Some(b'-') => tokens.push(Token::Escape("%20")),
                Some(b'{') => {
                    let close = b[i..]
                        .iter()
                        .position(|c| *c == b'}')
                        .ok_or_else(|| format!("unclosed macro in {s:?}"))?;
                    tokens.push(Token::Macro(Macro::parse(&b[i + 2..i + close], explain)?));
                    i += close + 1;
                    continue;
                }
                _ => return Err(format!("a lone % in {s:?}")),
            }
            i += 2;
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        Ok(MacroString(tokens))
    }

    /// Whether expanding asks for the `p` macro's validated name (a DNS lookup).
    pub fn uses_p(&self) -> bool {
        self.0
            .iter()
            .any(|t| matches!(t, Token::Macro(m) if m.letter == b'p'))
    }

    /// The text with every macro replaced; `None` past `MAX_EXPANSION` octets.
    pub fn expand(&self, vars: &Vars<'_>) -> Option<String> {
        let mut out = String::new();
        for t in &self.0 {
            match t {
                Token::Literal(s) => out.push_str(s),
                Token::Escape(s) => out.push_str(s),
                Token::Macro(m) => m.expand(vars, &mut out),
            }
            if out.len() > MAX_EXPANSION {
                return None;
            }
        }
        Some(out)
    }
}

impl Macro {
    /// The inside of `%{…}`: letter, transformers (*DIGIT ["r"]), delimiters.
    fn parse(inner: &[u8], explain: bool) -> Result<Macro, String> {
        let shown = String::from_utf8_lossy(inner);
        let bad = || format!("bad macro %{{{shown}}}");
        let (&first, rest) = inner.split_first().ok_or_else(bad)?;
        let letter = first.to_ascii_lowercase();
        let allowed: &[u8] = if explain { b"slodiphcrtv" } else { b"slodiphv" };
        if !allowed.contains(&letter) {
            return Err(bad());
        }
        let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        let keep = if digits == 0 {
            None
        } else {
            // Saturates: a count past the number of parts keeps them all.
            let n = rest[..digits].iter().fold(0usize, |n, d| {
                n.saturating_mul(10).saturating_add(usize::from(*d - b'0'))
            });
            if n == 0 {
                return Err(format!("{}: keeping zero parts", bad()));
            }
            Some(n)
        };
        let mut rest = &rest[digits..];
        let reverse = matches!(rest.first(), Some(b'r' | b'R'));
        if reverse {
            rest = &rest[1..];
        }
        if !rest
            .iter()
            .all(|c| matches!(c, b'.' | b'-' | b'+' | b',' | b'/' | b'_' | b'='))
        {
            return Err(bad());
        }
        Ok(Macro {
            letter,
            escape: first.is_ascii_uppercase(),
            keep,
            reverse,
            delimiters: rest.to_vec(),
        })
    }

    fn expand(&self, vars: &Vars<'_>, out: &mut String) {
        let value = vars.value(self.letter);
        let transformed = if self.keep.is_none() && !self.reverse && self.delimiters.is_empty() {
            value
        } else {
            let delimiters: &[u8] = if self.delimiters.is_empty() {
                b"."
            } else {
                &self.delimiters
            };
            let mut parts: Vec<&str> = value
                .split(|c: char| u8::try_from(c).is_ok_and(|b| delimiters.contains(&b)))
                .collect();
            if self.reverse {
                parts.reverse();
            }
            let skip = self.keep.map_or(0, |k| parts.len().saturating_sub(k));
            parts[skip..].join(".")
        };
        if self.escape {
            for b in transformed.bytes() {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                    out.push(char::from(b));
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        } else {
            out.push_str(&transformed);
        }
    }
}

/// The values the macro letters stand for (§7.2).
#[derive(Debug, Clone)]
pub struct Vars<'a> {
    /// `s`: the sender, `local@domain` (`postmaster@…` when there is no local-part).
    pub sender: &'a str,
    /// `l` and `o`.
    pub local: &'a str,
    pub sender_domain: &'a str,
    /// `d`: the domain whose record is being evaluated.
    pub domain: &'a str,
    /// `i`, `c` and `v`.
    pub ip: IpAddr,
    /// `h`: the HELO/EHLO name.
    pub helo: &'a str,
    /// `r`: this receiver's name.
    pub receiver: &'a str,
    /// `p`: the validated name of the client (`unknown` without one).
    pub validated: &'a str,
    /// `t`: seconds since the epoch.
    pub now: u64,
}

impl Vars<'_> {
    fn value(&self, letter: u8) -> String {
        match letter {
            b's' => self.sender.to_string(),
            b'l' => self.local.to_string(),
            b'o' => self.sender_domain.to_string(),
            b'd' => self.domain.to_string(),
            b'i' => dotted(self.ip),
            b'p' => self.validated.to_string(),
            b'v' => match self.ip {
                IpAddr::V4(_) => "in-addr".to_string(),
                IpAddr::V6(_) => "ip6".to_string(),
            },
            b'h' => self.helo.to_string(),
            b'c' => self.ip.to_string(),
            b'r' => self.receiver.to_string(),
            b't' => self.now.to_string(),
            _ => String::new(),
        }
    }
}

/// `i`: an IPv4 address as is, an IPv6 address as 32 dot-separated nibbles (§7.3).
fn dotted(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(63);
            for byte in v6.octets() {
                for nibble in [byte >> 4, byte & 0xf] {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
                }
            }
            s
        }
    }
}

/// The name PTR records of `ip` live at.
fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(_) => {
            let mut nibbles: Vec<&str> = Vec::with_capacity(32);
            let d = dotted(ip);
            nibbles.extend(d.split('.').rev());
            format!("{}.ip6.arpa", nibbles.join("."))
        }
    }
}

// ------------------------------------------------------------------ names

/// §4.3: a domain check_host() can evaluate: at least two labels, none empty (a final dot
/// aside) or over 63 octets, not an address literal.
pub fn domain_is_checkable(domain: &str) -> bool {
    let d = domain.strip_suffix('.').unwrap_or(domain);
    if d.is_empty() || d.len() > 253 || d.starts_with('[') {
        return false;
    }
    let mut labels = 0;
    for l in d.split('.') {
        if l.is_empty() || l.len() > 63 {
            return false;
        }
        labels += 1;
    }
    labels >= 2
}

/// §4.8: an expanded name over 253 octets loses labels on the left until it fits.
fn truncate_left(mut name: &str) -> &str {
    name = name.strip_suffix('.').unwrap_or(name);
    while name.len() > 253 {
        match name.split_once('.') {
            Some((_, rest)) => name = rest,
            None => return "",
        }
    }
    name
}

/// The DNS name for `domain`, label by label as written: RFC 7208 names may hold any visible
/// character (`foo:bar/baz.example.com`), which hickory's text parser refuses. `None` for what
/// no DNS query can carry (an empty or over-long label, an empty name).
fn dns_name(domain: &str) -> Option<Name> {
    let d = domain.strip_suffix('.').unwrap_or(domain);
    if d.is_empty() || d.len() > 253 {
        return None;
    }
    let labels: Vec<&[u8]> = d.split('.').map(str::as_bytes).collect();
    if labels.iter().any(|l| l.is_empty() || l.len() > 63) {
        return None;
    }
    let mut name = Name::from_labels(labels).ok()?;
    name.set_fqdn(true);
    Some(name)
}

/// `domain` with every U-label as its A-label (`xn--…`); ASCII, or what IDNA refuses, as given.
fn a_labels(domain: &str) -> String {
    if domain.is_ascii() {
        return domain.to_string();
    }
    let fqdn = domain.ends_with('.');
    match Name::from_utf8(domain) {
        Ok(n) => {
            let ascii = n.to_ascii();
            let ascii = ascii.strip_suffix('.').unwrap_or(&ascii);
            if fqdn {
                format!("{ascii}.")
            } else {
                ascii.to_string()
            }
        }
        Err(_) => domain.to_string(),
    }
}

/// A name from DNS as text (lower case, no final dot), for comparing with domains.
fn name_text(name: &Name) -> String {
    let labels: Vec<String> = name
        .iter()
        .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase())
        .collect();
    labels.join(".")
}

/// `name` is `domain` or one of its subdomains.
fn within(name: &str, domain: &str) -> bool {
    let domain = domain
        .strip_suffix('.')
        .unwrap_or(domain)
        .to_ascii_lowercase();
    name == domain
        || (name.len() > domain.len()
            && name.ends_with(&domain)
            && name.as_bytes()[name.len() - domain.len() - 1] == b'.')
}

// ------------------------------------------------------------------ check_host()

/// Why an evaluation stopped early.
#[derive(Debug)]
enum Stop {
    Temp(String),
    Perm(String),
}

/// What a DNS question got.
enum Answer {
    Records(Vec<RData>),
    /// No records, or NXDOMAIN.
    Void,
}

/// The result of one check_host() and, for `fail`, the `exp=` that may explain it: the record's
/// domain and its exp domain-spec.
struct Outcome {
    result: SpfResult,
    exp: Option<(String, MacroString)>,
}

impl Outcome {
    fn of(result: SpfResult) -> Outcome {
        Outcome { result, exp: None }
    }
}

/// The client's PTR names, looked up once per evaluation.
struct Ptr {
    /// The names whose address records include the client (at most `MAX_NAMES` tried).
    validated: Vec<String>,
    /// The PTR lookup found nothing.
    void: bool,
}

/// One evaluation: the identity, the counters of §4.6.4 and the PTR names.
struct Eval<'a> {
    resolver: &'a TokioResolver,
    ip: IpAddr,
    sender: String,
    local: String,
    sender_domain: String,
    helo: &'a str,
    receiver: &'a str,
    now: u64,
    dns_terms: u32,
    voids: u32,
    ptr: Option<Ptr>,
}

/// The SPF verdict for `ip` sending as `mail_from` (empty: the null sender, whose identity is
/// `postmaster@<helo>`, §2.4) after `helo`; the HELO identity is `evaluate(.., helo, "")`.
/// `receiver` is the `r` macro. Never longer than `deadline`: past it the result is temperror.
pub async fn evaluate(
    resolver: &TokioResolver,
    ip: IpAddr,
    helo: &str,
    mail_from: &str,
    receiver: &str,
    deadline: Duration,
) -> SpfOutput {
    // §5: an IPv4-mapped IPv6 client is the IPv4 client.
    let ip = ip.to_canonical();
    let (local, domain) = match mail_from.rsplit_once('@') {
        Some((l, d)) => (l, d),
        None if mail_from.is_empty() => ("", helo),
        None => ("", mail_from),
    };
    // RFC 8616: an internationalised domain is looked up, and expanded by macros, in its
    // A-label (xn--) form, as DMARC compares it.
    let (domain, helo) = (a_labels(domain), a_labels(helo));
    let (domain, helo) = (domain.as_str(), helo.as_str());
    let output = SpfOutput::new(domain.to_string());
    if !domain_is_checkable(domain) {
        return output.with_result(SpfResult::None);
    }
    // A final dot is the root, not part of what `%{d}` and `%{o}` expand to.
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    let local = if local.is_empty() {
        "postmaster"
    } else {
        local
    };
    let mut eval = Eval {
        resolver,
        ip,
        sender: format!("{local}@{domain}"),
        local: local.to_string(),
        sender_domain: domain.to_string(),
        helo,
        receiver,
        now: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        dns_terms: 0,
        voids: 0,
        ptr: None,
    };
    let run = async {
        let outcome = match eval.check_host(domain.to_string()).await {
            Ok(o) => o,
            Err(Stop::Temp(why)) => {
                tracing::debug!(domain, why, "SPF temperror");
                Outcome::of(SpfResult::TempError)
            }
            Err(Stop::Perm(why)) => {
                tracing::debug!(domain, why, "SPF permerror");
                Outcome::of(SpfResult::PermError)
            }
        };
        let explanation = match (&outcome.result, outcome.exp) {
            (SpfResult::Fail, Some((d, exp))) => eval.explain(&d, &exp).await,
            _ => None,
        };
        (outcome.result, explanation)
    };
    match tokio::time::timeout(deadline, run).await {
        Ok((result, explanation)) => {
            let out = output.with_result(result);
            match explanation {
                Some(e) => out.with_explanation(e),
                None => out,
            }
        }
        Err(_) => {
            tracing::debug!(domain, "SPF evaluation ran out of time");
            output.with_result(SpfResult::TempError)
        }
    }
}

type Boxed<'f, T> = Pin<Box<dyn Future<Output = T> + Send + 'f>>;

impl Eval<'_> {
    fn vars<'v>(&'v self, domain: &'v str, validated: &'v str) -> Vars<'v> {
        Vars {
            sender: &self.sender,
            local: &self.local,
            sender_domain: &self.sender_domain,
            domain,
            ip: self.ip,
            helo: self.helo,
            receiver: self.receiver,
            validated,
            now: self.now,
        }
    }

    /// check_host(<ip>, `domain`, <sender>) of §4; boxed, as include and redirect recurse.
    fn check_host(&mut self, domain: String) -> Boxed<'_, Result<Outcome, Stop>> {
        Box::pin(async move {
            let Some(record) = self.record(&domain).await? else {
                return Ok(Outcome::of(SpfResult::None));
            };
            for d in &record.directives {
                if self.matches(&d.mechanism, &domain).await? {
                    let result = d.qualifier.result();
                    let exp = match (result, &record.exp) {
                        (SpfResult::Fail, Some(exp)) => Some((domain.clone(), exp.clone())),
                        _ => None,
                    };
                    return Ok(Outcome { result, exp });
                }
            }
            let Some(redirect) = &record.redirect else {
                return Ok(Outcome::of(SpfResult::Neutral));
            };
            // §6.1: the target's result is ours, explanation included; its absence is ours.
            self.count_dns_term()?;
            let target = self.expand_domain(redirect, &domain).await?;
            if !domain_is_checkable(&target) {
                return Err(Stop::Perm(format!("redirect to {target:?}")));
            }
            let outcome = self.check_host(target.clone()).await?;
            if outcome.result == SpfResult::None {
                return Err(Stop::Perm(format!(
                    "redirect to {target}, which has no record"
                )));
            }
            Ok(outcome)
        })
    }

    /// The domain's one SPF record (§4.4, §4.5); `None` when it has none.
    async fn record(&mut self, domain: &str) -> Result<Option<Record>, Stop> {
        let Some(name) = dns_name(domain) else {
            return Ok(None);
        };
        let rdatas = match self.query(name, RecordType::TXT).await? {
            Answer::Records(r) => r,
            Answer::Void => return Ok(None),
        };
        let mut spf = rdatas.iter().filter_map(txt_bytes).filter(|t| is_spf(t));
        let Some(one) = spf.next() else {
            return Ok(None);
        };
        if spf.next().is_some() {
            return Err(Stop::Perm(format!("{domain} has several v=spf1 records")));
        }
        parse_record(&one)
            .map(Some)
            .map_err(|e| Stop::Perm(format!("{domain}: {e}")))
    }

    fn count_dns_term(&mut self) -> Result<(), Stop> {
        self.dns_terms += 1;
        if self.dns_terms > MAX_DNS_TERMS {
            return Err(Stop::Perm(format!(
                "more than {MAX_DNS_TERMS} terms asking DNS"
            )));
        }
        Ok(())
    }

    fn count_void(&mut self) -> Result<(), Stop> {
        self.voids += 1;
        if self.voids > MAX_VOID_LOOKUPS {
            return Err(Stop::Perm(format!(
                "more than {MAX_VOID_LOOKUPS} void lookups"
            )));
        }
        Ok(())
    }

    /// One DNS question; a server failure or timeout is a temperror (§5), NXDOMAIN and an
    /// empty answer are `Void`.
    async fn query(&self, name: Name, rtype: RecordType) -> Result<Answer, Stop> {
        match self.resolver.lookup(name.clone(), rtype).await {
            Ok(lookup) => {
                let records: Vec<RData> = lookup
                    .answers()
                    .iter()
                    .filter(|r| r.record_type() == rtype)
                    .map(|r| r.data.clone())
                    .collect();
                Ok(if records.is_empty() {
                    Answer::Void
                } else {
                    Answer::Records(records)
                })
            }
            Err(e) if e.is_no_records_found() => Ok(Answer::Void),
            Err(e) => Err(Stop::Temp(format!("{rtype} {name}: {e}"))),
        }
    }

    /// The client's addresses of `domain` matching the prefix lengths: A for an IPv4 client,
    /// AAAA for IPv6. `None` when the lookup was void.
    async fn address_match(&self, domain: &str, v4: u8, v6: u8) -> Result<Option<bool>, Stop> {
        let Some(name) = dns_name(domain) else {
            return Ok(Some(false));
        };
        let rtype = match self.ip {
            IpAddr::V4(_) => RecordType::A,
            IpAddr::V6(_) => RecordType::AAAA,
        };
        let records = match self.query(name, rtype).await? {
            Answer::Records(r) => r,
            Answer::Void => return Ok(None),
        };
        Ok(Some(records.iter().any(|r| match (r, self.ip) {
            (RData::A(a), IpAddr::V4(ip)) => in_v4(ip, a.0, v4),
            (RData::AAAA(a), IpAddr::V6(ip)) => in_v6(ip, a.0, v6),
            _ => false,
        })))
    }

    async fn matches(&mut self, mechanism: &Mechanism, domain: &str) -> Result<bool, Stop> {
        match mechanism {
            Mechanism::All => Ok(true),
            Mechanism::Ip4(net, len) => {
                Ok(matches!(self.ip, IpAddr::V4(ip) if in_v4(ip, *net, *len)))
            }
            Mechanism::Ip6(net, len) => {
                Ok(matches!(self.ip, IpAddr::V6(ip) if in_v6(ip, *net, *len)))
            }
            Mechanism::A(spec, v4, v6) => {
                self.count_dns_term()?;
                let target = self.target(spec.as_ref(), domain).await?;
                match self.address_match(&target, *v4, *v6).await? {
                    Some(hit) => Ok(hit),
                    None => self.count_void().map(|()| false),
                }
            }
            Mechanism::Mx(spec, v4, v6) => {
                self.count_dns_term()?;
                let target = self.target(spec.as_ref(), domain).await?;
                let Some(name) = dns_name(&target) else {
                    return Ok(false);
                };
                let hosts: Vec<Name> = match self.query(name, RecordType::MX).await? {
                    Answer::Records(r) => r
                        .iter()
                        .filter_map(|r| match r {
                            RData::MX(mx) => Some(mx.exchange.clone()),
                            _ => None,
                        })
                        .collect(),
                    Answer::Void => return self.count_void().map(|()| false),
                };
                if hosts.len() > MAX_NAMES {
                    return Err(Stop::Perm(format!(
                        "{target} has {} MX records, over {MAX_NAMES}",
                        hosts.len()
                    )));
                }
                for host in hosts {
                    // A null MX (RFC 7505) names no host.
                    if host.is_root() {
                        continue;
                    }
                    if self.address_match(&name_text(&host), *v4, *v6).await? == Some(true) {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Mechanism::Ptr(spec) => {
                self.count_dns_term()?;
                let target = self.target(spec.as_ref(), domain).await?;
                self.ensure_ptr().await;
                let (void, hit) = match &self.ptr {
                    Some(p) => (p.void, p.validated.iter().any(|n| within(n, &target))),
                    None => (false, false),
                };
                if void {
                    self.count_void()?;
                }
                Ok(hit)
            }
            Mechanism::Exists(spec) => {
                self.count_dns_term()?;
                let target = self.expand_domain(spec, domain).await?;
                let Some(name) = dns_name(&target) else {
                    return Ok(false);
                };
                // §5.7: an A query whatever the client's address family.
                match self.query(name, RecordType::A).await? {
                    Answer::Records(r) => Ok(r.iter().any(|r| matches!(r, RData::A(_)))),
                    Answer::Void => self.count_void().map(|()| false),
                }
            }
            Mechanism::Include(spec) => {
                self.count_dns_term()?;
                let target = self.expand_domain(spec, domain).await?;
                if !domain_is_checkable(&target) {
                    return Err(Stop::Perm(format!("include of {target:?}")));
                }
                // §5.2: what the included record says decides only whether this term matches.
                match self.check_host(target.clone()).await?.result {
                    SpfResult::Pass => Ok(true),
                    SpfResult::Fail | SpfResult::SoftFail | SpfResult::Neutral => Ok(false),
                    SpfResult::TempError => Err(Stop::Temp(format!("include of {target}"))),
                    SpfResult::PermError => Err(Stop::Perm(format!("include of {target}"))),
                    SpfResult::None => Err(Stop::Perm(format!(
                        "include of {target}, which has no record"
                    ))),
                }
            }
        }
    }

    /// The domain a term names: its domain-spec expanded, or the current domain.
    async fn target(&mut self, spec: Option<&MacroString>, domain: &str) -> Result<String, Stop> {
        match spec {
            Some(s) => self.expand_domain(s, domain).await,
            None => Ok(domain.to_string()),
        }
    }

    /// A domain-spec expanded and cut to 253 octets (§4.8). An expansion past the bounds gives
    /// the empty name, which no term matches.
    async fn expand_domain(&mut self, spec: &MacroString, domain: &str) -> Result<String, Stop> {
        let validated = if spec.uses_p() {
            self.p_macro(domain).await
        } else {
            String::new()
        };
        let expanded = spec
            .expand(&self.vars(domain, &validated))
            .unwrap_or_default();
        Ok(truncate_left(&expanded).to_string())
    }

    /// The `p` macro (§7.3): a validated name of the client, preferring `domain` itself, then
    /// one of its subdomains; `unknown` when there is none. Its lookups are its own: they are
    /// not among the 10 DNS terms (there is one PTR lookup per evaluation, however often asked).
    async fn p_macro(&mut self, domain: &str) -> String {
        self.ensure_ptr().await;
        let names: &[String] = self.ptr.as_ref().map_or(&[], |p| &p.validated);
        let domain_lc = domain
            .strip_suffix('.')
            .unwrap_or(domain)
            .to_ascii_lowercase();
        names
            .iter()
            .find(|n| **n == domain_lc)
            .or_else(|| names.iter().find(|n| within(n, domain)))
            .or_else(|| names.first())
            .cloned()
            .unwrap_or_else(|| "unknown".to_string())
    }

    /// The client's PTR names whose forward lookup gives the client back (§5.5), the first
    /// `MAX_NAMES` of them tried. DNS errors here only mean fewer names: a `ptr` term then does
    /// not match, and `p` is `unknown`.
    async fn ensure_ptr(&mut self) {
        if self.ptr.is_none() {
            let computed = self.lookup_ptr().await;
            self.ptr = Some(computed);
        }
    }

    async fn lookup_ptr(&self) -> Ptr {
        let Some(name) = dns_name(&reverse_name(self.ip)) else {
            return EMPTY_PTR;
        };
        let names: Vec<Name> = match self.query(name, RecordType::PTR).await {
            Ok(Answer::Records(r)) => r
                .iter()
                .filter_map(|r| match r {
                    RData::PTR(p) => Some(p.0.clone()),
                    _ => None,
                })
                .take(MAX_NAMES)
                .collect(),
            Ok(Answer::Void) => {
                return Ptr {
                    validated: Vec::new(),
                    void: true,
                };
            }
            Err(_) => return EMPTY_PTR,
        };
        let mut validated = Vec::new();
        for n in names {
            let text = name_text(&n);
            // A name with control or non-ASCII bytes is no host name; kept, it could carry CR LF
            // into `%{p}` and from there into an explanation.
            if !text.bytes().all(|b| b.is_ascii_graphic()) {
                continue;
            }
            if let Ok(Some(true)) = self.address_match(&text, 32, 128).await {
                validated.push(text);
            }
        }
        Ptr {
            validated,
            void: false,
        }
    }

    /// The explanation of a `fail` (§6.2): the TXT record named by `exp=`, expanded. Any
    /// problem (no single TXT record, bad syntax, DNS failure) means no explanation.
    async fn explain(&mut self, domain: &str, exp: &MacroString) -> Option<String> {
        let target = self.expand_domain(exp, domain).await.ok()?;
        let name = dns_name(&target)?;
        let rdatas = match self.query(name, RecordType::TXT).await {
            Ok(Answer::Records(r)) => r,
            _ => return None,
        };
        let texts: Vec<Vec<u8>> = rdatas.iter().filter_map(txt_bytes).collect();
        let [text] = texts.as_slice() else {
            return None;
        };
        // The same bound as a record: the explanation is parsed and expanded like one.
        if text.len() > MAX_RECORD_LEN {
            return None;
        }
        let text = std::str::from_utf8(text).ok()?;
        let ms = MacroString::parse(text, true).ok()?;
        let validated = if ms.uses_p() {
            self.p_macro(domain).await
        } else {
            String::new()
        };
        ms.expand(&self.vars(domain, &validated))
    }
}

const EMPTY_PTR: Ptr = Ptr {
    validated: Vec::new(),
    void: false,
};

/// A TXT record's character-strings joined without spaces (§3.3).
fn txt_bytes(rdata: &RData) -> Option<Vec<u8>> {
    match rdata {
        RData::TXT(t) => Some(t.txt_data.iter().flat_map(|s| s.iter().copied()).collect()),
        _ => None,
    }
}

fn in_v4(ip: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, len: u8) -> bool {
    let mask = u128::MAX
        .checked_shl(128 - u32::from(len.min(128)))
        .unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(ip: &str, sender: &'a str, local: &'a str, domain: &'a str) -> Vars<'a> {
        Vars {
            sender,
            local,
            sender_domain: domain,
            domain,
            ip: ip.parse().unwrap(),
            helo: "mx.example.org",
            receiver: "receiver.example.net",
            validated: "unknown",
            now: 1_000_000,
        }
    }

    fn expand(spec: &str, v: &Vars<'_>) -> String {
        MacroString::parse(spec, true).unwrap().expand(v).unwrap()
    }

    #[test]
    fn rfc7208_section_7_4_examples() {
        let v = vars(
            "192.0.2.3",
            "strong-bad@email.example.com",
            "strong-bad",
            "email.example.com",
        );
        for (spec, want) in [
            ("%{s}", "strong-bad@email.example.com"),
            ("%{o}", "email.example.com"),
            ("%{d}", "email.example.com"),
            ("%{d4}", "email.example.com"),
            ("%{d3}", "email.example.com"),
            ("%{d2}", "example.com"),
            ("%{d1}", "com"),
            ("%{dr}", "com.example.email"),
            ("%{d2r}", "example.email"),
            ("%{l}", "strong-bad"),
            ("%{l-}", "strong.bad"),
            ("%{lr}", "strong-bad"),
            ("%{lr-}", "bad.strong"),
            ("%{l1r-}", "strong"),
            (
                "%{ir}.%{v}._spf.%{d2}",
                "3.2.0.192.in-addr._spf.example.com",
            ),
            ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
            (
                "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
                "bad.strong.lp.3.2.0.192.in-addr._spf.example.com",
            ),
            (
                "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
                "3.2.0.192.in-addr.strong.lp._spf.example.com",
            ),
            (
                "%{d2}.trusted-domains.example.net",
                "example.com.trusted-domains.example.net",
            ),
        ] {
            assert_eq!(expand(spec, &v), want, "{spec}");
        }
        let v6 = vars(
            "2001:db8::cb01",
            "strong-bad@email.example.com",
            "strong-bad",
            "email.example.com",
        );
        assert_eq!(
            expand("%{ir}.%{v}._spf.%{d2}", &v6),
            "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
        );
    }

    #[test]
    fn escapes_explanations_and_url_encoding() {
        let v = vars(
            "2001:db8::1",
            "~jack&jill=up-a_b3.c@example.com",
            "~jack&jill=up-a_b3.c",
            "example.com",
        );
        assert_eq!(expand("%{L}", &v), "~jack%26jill%3Dup-a_b3.c");
        assert_eq!(expand("a%%b%_c%-d", &v), "a%b c%20d");
        assert_eq!(
            expand("%{c} via %{r} at %{t}", &v),
            "2001:db8::1 via receiver.example.net at 1000000"
        );
        assert_eq!(expand("%{p} %{h} %{v}", &v), "unknown mx.example.org ip6");
        assert_eq!(
            expand("%{l99999999999999999999r+-=}", &v),
            "a_b3.c.up.~jack&jill"
        );
        // c, r and t belong to explanations only.
        assert!(MacroString::parse("%{c}.example.com", false).is_err());
        assert!(MacroString::parse("%{d0}", true).is_err());
        for bad in ["%", "%{", "%{x}", "%{d2x}", "%(d)", "a%b", "%{}", "%{dr2}"] {
            assert!(MacroString::parse(bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn expansion_is_bounded() {
        let long = "x".repeat(4000);
        let v = vars("192.0.2.1", &long, &long, "example.com");
        let ms = MacroString::parse(&"%{s}".repeat(10), false).unwrap();
        assert!(ms.expand(&v).is_none());
        let name = format!("{}.example.com", vec!["abcdefghij"; 40].join("."));
        let cut = truncate_left(&name);
        assert!(
            cut.len() <= 253 && cut.ends_with(".example.com") && cut.starts_with("abcdefghij.")
        );
    }

    #[test]
    fn records() {
        let r = parse_record(b"v=spf1 a mx/24 a:mail.example.com/24//64 ip4:192.0.2.0/24 ip6:2001:db8::/32 exists:%{i}.x.example.org ptr ?include:_spf.example.com ~all redirect=example.net").unwrap();
        assert_eq!(r.directives.len(), 9);
        assert_eq!(
            r.directives[2].mechanism,
            Mechanism::A(
                Some(MacroString::parse("mail.example.com", false).unwrap()),
                24,
                64
            )
        );
        assert_eq!(
            r.directives[3].mechanism,
            Mechanism::Ip4("192.0.2.0".parse().unwrap(), 24)
        );
        assert_eq!(r.directives[7].qualifier, Qualifier::Neutral);
        assert!(r.redirect.is_some() && r.exp.is_none());
        for ok in [
            "v=spf1",
            "V=SpF1 -ALL",
            "v=spf1 a  -all ",
            "v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all",
            "v=spf1 a:foo:bar/baz.example.com",
            "v=spf1 a:foo.example.xn--zckzah -all",
            "v=spf1 ptr:example.com default=pass",
            "v=spf1 a:macro%%percent%_%_space%-url-space.example.com",
            "v=spf1 exists:%{p}.x.%{d}",
            "v=spf1 a:mail.example...com",
        ] {
            assert!(parse_record(ok.as_bytes()).is_ok(), "{ok}");
        }
        for bad in [
            "v=spf1 -all.",
            "v=spf1 -all:foo",
            "v=spf1 -all/8",
            "v=spf1 ptr/0",
            "v=spf1 ptr:",
            "v=spf1 a/33",
            "v=spf1 a//129",
            "v=spf1 a/24/64",
            "v=spf1 ip4:1.2.3.4/032",
            "v=spf1 ip4:1.2.3",
            "v=spf1 ip4:1.2.3.4:8080",
            "v=spf1 ip4:1.2.3.4//32",
            "v=spf1 ip4",
            "v=spf1 ip6::CAFE::BABE",
            "v=spf1 ip6:::1/129",
            "v=spf1 a:111.222.33.44",
            "v=spf1 a:abc.123",
            "v=spf1 a:museum",
            "v=spf1 a:museum.",
            "v=spf1 a:example.-com",
            "v=spf1 a:foo-bar",
            "v=spf1 a:",
            "v=spf1 include",
            "v=spf1 include:",
            "v=spf1 include:ip5.example.com/24",
            "v=spf1 exists:mail.example.com/24",
            "v=spf1 1up=foo",
            "v=spf1 =all",
            "v=spf1 moo.cow/far_out=man:dog/cat",
            "v=spf1 redirect:t2.example.com",
            "v=spf1 exp=",
            "v=spf1 exp=-all",
            "v=spf1 redirect=a.example.com redirect=b.example.com",
            "v=spf1 exp=a.example.com exp=b.example.com",
            "v=spf1 foo=%abc",
            "v=spf1 a:%{a}.example.com",
            "v=spf1 exp=%{r}.example.com",
            "v=spf1 a:ctrl.example.com\rptr",
            "v=spf1 a:foo.example.com\0",
            "v=spf1 \u{80}a:example.net",
            "v=spf10",
        ] {
            assert!(parse_record(bad.as_bytes()).is_err(), "{bad}");
        }
        let huge = format!("v=spf1{}", " ip4:192.0.2.1".repeat(1000));
        assert!(parse_record(huge.as_bytes()).is_err());
    }

    #[test]
    fn identities_and_names() {
        assert!(domain_is_checkable("example.com") && domain_is_checkable("example.com."));
        for bad in ["[192.0.2.1]", "OEMCOMPUTER", "a..example.com", "", "."] {
            assert!(!domain_is_checkable(bad), "{bad}");
        }
        assert!(!domain_is_checkable(&format!(
            "{}.example.com",
            "a".repeat(64)
        )));
        assert!(is_spf(b"v=spf1") && is_spf(b"V=SPF1 -all") && !is_spf(b"v=spf10"));
        assert!(dns_name("foo:bar/baz.example.com").is_some());
        assert!(dns_name("macro%percent  space%20url-space.example.com.").is_some());
        assert!(dns_name("a..example.com").is_none() && dns_name("").is_none());
        assert_eq!(
            reverse_name("192.0.2.3".parse().unwrap()),
            "3.2.0.192.in-addr.arpa"
        );
        assert!(
            within("mail.example.com", "Example.COM.") && !within("notexample.com", "example.com")
        );
        assert!(in_v4(
            "192.0.2.200".parse().unwrap(),
            "192.0.2.0".parse().unwrap(),
            24
        ));
        assert!(in_v4(
            "10.0.0.1".parse().unwrap(),
            "192.0.2.0".parse().unwrap(),
            0
        ));
        assert!(!in_v6(
            "2001:db9::1".parse().unwrap(),
            "2001:db8::".parse().unwrap(),
            32
        ));
    }
}
