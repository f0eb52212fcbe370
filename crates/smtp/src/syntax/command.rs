//! Command-line syntax (RFC 5321 §4.1): verbs, paths, mailbox addresses (with RFC 6531 UTF-8) and
//! ESMTP parameters. Pure parsing: no state, no I/O. Every error maps to one precise reply.

use crate::syntax::reply::Reply;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
    /// `from == None` is the null reverse-path `<>`.
    Mail {
        from: Option<String>,
        params: MailParams,
    },
    Rcpt {
        to: String,
        params: RcptParams,
    },
    Data,
    Bdat {
        size: u64,
        last: bool,
    },
    Rset,
    Noop,
    Quit,
    Vrfy(String),
    Expn,
    Help,
    StartTls,
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyType {
    #[default]
    SevenBit,
    EightBitMime,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MailParams {
    pub size: Option<u64>,
    pub body: BodyType,
    pub smtputf8: bool,
    pub requiretls: bool,
    /// RFC 3461 `RET=`, upper-cased (`FULL` or `HDRS`).
    pub ret: Option<String>,
    /// RFC 3461 `ENVID=`, xtext-decoded.
    pub envid: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RcptParams {
    /// RFC 3461 `NOTIFY=`, upper-cased: `NEVER` or a comma list of SUCCESS, FAILURE, DELAY.
    pub notify: Option<String>,
    /// RFC 3461 `ORCPT=`: `addr-type;address` with the address xtext-decoded (the outbound queue
    /// re-encodes it when passing it on).
    pub orcpt: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Unknown verb.
    Unknown(String),
    /// Command syntax (arguments) wrong.
    Syntax(&'static str),
    /// The mailbox inside the path is malformed.
    BadAddress(&'static str),
    /// An ESMTP parameter we do not know (or a known one in a form we do not offer).
    BadParam(String),
    /// A known parameter with a malformed value, or given twice.
    BadValue(String),
    /// Bytes that are not UTF-8 in a command.
    NotText,
}

impl ParseError {
    pub fn reply(&self) -> Reply {
        match self {
            ParseError::Unknown(_) => Reply::new(500, "5.5.1", "Command unrecognized"),
            ParseError::Syntax(usage) => Reply::new(501, "5.5.4", format!("Syntax: {usage}")),
            ParseError::BadAddress(why) => {
                Reply::new(501, "5.1.3", format!("Bad address syntax: {why}"))
            }
            ParseError::BadParam(p) => {
                Reply::new(555, "5.5.4", format!("Unsupported parameter {p}"))
            }
            ParseError::BadValue(why) => Reply::new(501, "5.5.4", why.clone()),
            ParseError::NotText => Reply::new(500, "5.5.2", "Command contains invalid characters"),
        }
    }
}

/// Removes the line terminator (CRLF; a lone LF is tolerated on command lines).
pub fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let line = std::str::from_utf8(trim_eol(line)).map_err(|_| ParseError::NotText)?;
    if line.chars().any(|c| c.is_control() && c != '\t') {
        return Err(ParseError::NotText);
    }
    let (verb, rest) = match line.find(' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, ""),
    };
    let verb_uc = verb.to_ascii_uppercase();
    let arg = rest.trim();
    match verb_uc.as_str() {
        "EHLO" | "HELO" => {
            let domain = arg.split(' ').next().unwrap_or("");
            if domain.is_empty() {
                return Err(ParseError::Syntax(if verb_uc == "EHLO" {
                    "EHLO domain"
                } else {
                    "HELO domain"
                }));
            }
            if verb_uc == "EHLO" {
                Ok(Command::Ehlo(domain.to_string()))
            } else {
                Ok(Command::Helo(domain.to_string()))
            }
        }
        "MAIL" => {
            let after = strip_keyword(rest, "FROM:")
                .ok_or(ParseError::Syntax("MAIL FROM:<address> [parameters]"))?;
            let (from, params) = parse_path(after, true)?;
            Ok(Command::Mail {
                from,
                params: parse_mail_params(params)?,
            })
        }
        "RCPT" => {
            let after = strip_keyword(rest, "TO:")
                .ok_or(ParseError::Syntax("RCPT TO:<address> [parameters]"))?;
            let (to, params) = parse_path(after, false)?;
            let to = match to {
                Some(t) => t,
                None => return Err(ParseError::BadAddress("empty recipient")),
            };
            Ok(Command::Rcpt {
                to,
                params: parse_rcpt_params(params)?,
            })
        }
        "DATA" => no_arg(arg, Command::Data, "DATA"),
        "RSET" => no_arg(arg, Command::Rset, "RSET"),
        "QUIT" => no_arg(arg, Command::Quit, "QUIT"),
        "STARTTLS" => no_arg(arg, Command::StartTls, "STARTTLS"),
        "NOOP" => Ok(Command::Noop),
        "HELP" => Ok(Command::Help),
        "EXPN" => Ok(Command::Expn),
        "VRFY" => {
            if arg.is_empty() {
                return Err(ParseError::Syntax("VRFY address"));
            }
            Ok(Command::Vrfy(
                arg.trim_matches(|c| c == '<' || c == '>').to_string(),
            ))
        }
        "BDAT" => {
            const USAGE: &str = "BDAT size [LAST]";
            let mut it = arg.split(' ').filter(|s| !s.is_empty());
            let size = it.next().ok_or(ParseError::Syntax(USAGE))?;
            if size.is_empty() || size.len() > 19 || !size.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseError::Syntax(USAGE));
            }
            let size: u64 = size.parse().map_err(|_| ParseError::Syntax(USAGE))?;
            let last = match it.next() {
                None => false,
                Some(s) if s.eq_ignore_ascii_case("LAST") => true,
                Some(_) => return Err(ParseError::Syntax(USAGE)),
            };
            if it.next().is_some() {
                return Err(ParseError::Syntax(USAGE));
            }
            Ok(Command::Bdat { size, last })
        }
        "AUTH" => {
            let mut it = arg.split(' ').filter(|s| !s.is_empty());
            let mechanism = it
                .next()
                .ok_or(ParseError::Syntax("AUTH mechanism [initial-response]"))?;
            let initial = it.next().map(str::to_string);
            if it.next().is_some() {
                return Err(ParseError::Syntax("AUTH mechanism [initial-response]"));
            }
            Ok(Command::Auth {
                mechanism: mechanism.to_ascii_uppercase(),
                initial,
            })
        }
        _ => Err(ParseError::Unknown(verb.chars().take(16).collect())),
    }
}

fn no_arg(arg: &str, cmd: Command, usage: &'static str) -> Result<Command, ParseError> {
    if arg.is_empty() {
        Ok(cmd)
    } else {
        Err(ParseError::Syntax(usage))
    }
}

/// Case-insensitive `FROM:` / `TO:`, tolerating spaces around the colon as many clients send them.
fn strip_keyword<'a>(rest: &'a str, kw: &str) -> Option<&'a str> {
    let rest = rest.trim_start();
    let word = &kw[..kw.len() - 1];
    if rest.len() < word.len()
        || !rest.is_char_boundary(word.len())
        || !rest[..word.len()].eq_ignore_ascii_case(word)
    {
        return None;
    }
    let after = rest[word.len()..].trim_start().strip_prefix(':')?;
    Some(after.trim_start())
}

/// Parses `<path>` at the start of `s` and returns (mailbox or None for `<>`, remaining text).
fn parse_path(s: &str, allow_null: bool) -> Result<(Option<String>, &str), ParseError> {
    let inner_start = s
        .strip_prefix('<')
        .ok_or(ParseError::BadAddress("address must be enclosed in <>"))?;
    // Find the closing '>' outside a quoted local part.
    let mut in_quotes = false;
    let mut escaped = false;
    let mut end = None;
    for (i, c) in inner_start.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '>' if !in_quotes => {
                end = Some(i);
                break;
            }
            _ => {}
        }
    }
    let end = end.ok_or(ParseError::BadAddress("missing closing >"))?;
    let inner = &inner_start[..end];
    let rest = &inner_start[end + 1..];
    if !rest.is_empty() && !rest.starts_with(' ') {
        return Err(ParseError::BadAddress("text after >"));
    }
    if inner.is_empty() {
        return if allow_null {
            Ok((None, rest))
        } else {
            Err(ParseError::BadAddress("empty address"))
        };
    }
    // Source routes (RFC 5321 §4.1.2 A-d-l) must be accepted and ignored.
    let mailbox = if inner.starts_with('@') {
        match inner.find(':') {
            Some(i) => &inner[i + 1..],
            None => return Err(ParseError::BadAddress("bad source route")),
        }
    } else {
        inner
    };
    validate_mailbox(mailbox)?;
    Ok((Some(mailbox.to_string()), rest))
}

/// RFC 5321 §4.1.2 Mailbox, extended by RFC 6531 (UTF-8 in local part and domain).
pub fn validate_mailbox(m: &str) -> Result<(), ParseError> {
    if m.len() > 254 {
        return Err(ParseError::BadAddress("address longer than 254 octets"));
    }
    let (local, domain) = if let Some(q) = m.strip_prefix('"') {
        let mut escaped = false;
        let mut close = None;
        for (i, c) in q.char_indices() {
            if escaped {
                if !(' '..='~').contains(&c) {
                    return Err(ParseError::BadAddress("bad quoted-pair"));
                }
                escaped = false;
                continue;
            }
            match c {
                '\\' => escaped = true,
                '"' => {
                    close = Some(i);
                    break;
                }
                c if (c as u32) < 32 || c as u32 == 127 => {
                    return Err(ParseError::BadAddress("control character"));
                }
                _ => {}
            }
        }
        let close = close.ok_or(ParseError::BadAddress("unterminated quoted local part"))?;
        let local = &m[..close + 2];
        let after = &q[close + 1..];
        let domain = after
            .strip_prefix('@')
            .ok_or(ParseError::BadAddress("missing @domain"))?;
        (local, domain)
    } else {
        let at = m
            .rfind('@')
            .ok_or(ParseError::BadAddress("missing @domain"))?;
        let local = &m[..at];
        if local.is_empty() {
            return Err(ParseError::BadAddress("empty local part"));
        }
        for atom in local.split('.') {
            if atom.is_empty() {
                return Err(ParseError::BadAddress("misplaced dot in local part"));
            }
            if !atom.chars().all(is_atext) {
                return Err(ParseError::BadAddress("invalid character in local part"));
            }
        }
        (local, &m[at + 1..])
    };
    if local.len() > 64 {
        return Err(ParseError::BadAddress("local part longer than 64 octets"));
    }
    validate_domain(domain)
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "!#$%&'*+-/=?^_`{|}~".contains(c)
        || (c as u32) >= 0x80 && !c.is_control()
}

fn validate_domain(d: &str) -> Result<(), ParseError> {
    if d.is_empty() {
        return Err(ParseError::BadAddress("empty domain"));
    }
    if d.len() > 255 {
        return Err(ParseError::BadAddress("domain longer than 255 octets"));
    }
    if let Some(lit) = d.strip_prefix('[') {
        let lit = lit
            .strip_suffix(']')
            .ok_or(ParseError::BadAddress("unterminated address literal"))?;
        let ok = if let Some(v6) = lit.strip_prefix("IPv6:") {
            v6.parse::<std::net::Ipv6Addr>().is_ok()
        } else {
            lit.parse::<std::net::Ipv4Addr>().is_ok()
        };
        return if ok {
            Ok(())
        } else {
            Err(ParseError::BadAddress("bad address literal"))
        };
    }
    for label in d.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(ParseError::BadAddress("bad domain label"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(ParseError::BadAddress("domain label starts or ends with -"));
        }
        if !label.chars().all(|c| {
            c.is_ascii_alphanumeric() || c == '-' || ((c as u32) >= 0x80 && c.is_alphanumeric())
        }) {
            return Err(ParseError::BadAddress("invalid character in domain"));
        }
    }
    Ok(())
}

fn params(s: &str) -> impl Iterator<Item = (String, Option<&str>)> {
    s.split(' ')
        .filter(|p| !p.is_empty())
        .map(|p| match p.find('=') {
            Some(i) => (p[..i].to_ascii_uppercase(), Some(&p[i + 1..])),
            None => (p.to_ascii_uppercase(), None),
        })
}

/// RFC 3461 §4 xtext: `xchar` is `!`..`~` except `+` and `=`; `+XX` (upper-case hex) is one octet.
/// Decoded octets must form UTF-8 text without control characters.
pub fn decode_xtext(v: &str) -> Option<String> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                let hex = |c: u8| match c {
                    b'0'..=b'9' => Some(c - b'0'),
                    b'A'..=b'F' => Some(c - b'A' + 10),
                    _ => None,
                };
                let hi = hex(*b.get(i + 1)?)?;
                let lo = hex(*b.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            c @ 33..=126 if c != b'=' => {
                out.push(c);
                i += 1;
            }
            _ => return None,
        }
    }
    let s = String::from_utf8(out).ok()?;
    (!s.chars().any(char::is_control)).then_some(s)
}

/// Longest ENVID (RFC 3461 §4.4: 100 characters) and ORCPT (§4.2: 500) values.
const MAX_ENVID: usize = 100;
const MAX_ORCPT: usize = 500;

/// Records the first occurrence of a parameter; a second one is a syntax error (RFC 3461 §4: each
/// parameter at most once).
fn once(seen: &mut Vec<String>, key: &str) -> Result<(), ParseError> {
    if seen.iter().any(|k| k == key) {
        return Err(ParseError::BadValue(format!("Duplicate {key} parameter")));
    }
    seen.push(key.to_string());
    Ok(())
}

fn bad(key: &str, what: &str) -> ParseError {
    ParseError::BadValue(format!("Malformed {key} parameter: {what}"))
}

fn parse_mail_params(s: &str) -> Result<MailParams, ParseError> {
    let mut p = MailParams::default();
    let mut seen = Vec::new();
    for (key, value) in params(s) {
        once(&mut seen, &key)?;
        match (key.as_str(), value) {
            ("SIZE", Some(v))
                if !v.is_empty() && v.len() <= 19 && v.bytes().all(|b| b.is_ascii_digit()) =>
            {
                p.size = v.parse().ok();
            }
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("7BIT") => p.body = BodyType::SevenBit,
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("8BITMIME") => {
                p.body = BodyType::EightBitMime
            }
            ("SMTPUTF8", None) => p.smtputf8 = true,
            ("REQUIRETLS", None) => p.requiretls = true,
            ("RET", Some(v))
                if v.eq_ignore_ascii_case("FULL") || v.eq_ignore_ascii_case("HDRS") =>
            {
                p.ret = Some(v.to_ascii_uppercase());
            }
            ("RET", _) => return Err(bad("RET", "expected FULL or HDRS")),
            ("ENVID", Some(v)) => {
                let id = decode_xtext(v).ok_or_else(|| bad("ENVID", "not xtext"))?;
                if id.is_empty() || id.len() > MAX_ENVID {
                    return Err(bad("ENVID", "empty or longer than 100 characters"));
                }
                p.envid = Some(id);
            }
            ("ENVID", None) => return Err(bad("ENVID", "value missing")),
            ("AUTH", Some(v)) if v == "<>" || decode_xtext(v).is_some_and(|d| !d.is_empty()) => {}
            _ => return Err(ParseError::BadParam(key)),
        }
    }
    Ok(p)
}

fn parse_rcpt_params(s: &str) -> Result<RcptParams, ParseError> {
    let mut p = RcptParams::default();
    let mut seen = Vec::new();
    for (key, value) in params(s) {
        once(&mut seen, &key)?;
        match (key.as_str(), value) {
            ("NOTIFY", Some(v)) => {
                p.notify = Some(parse_notify(v).ok_or_else(|| {
                    bad(
                        "NOTIFY",
                        "expected NEVER or a list of SUCCESS, FAILURE, DELAY",
                    )
                })?)
            }
            ("NOTIFY", None) => return Err(bad("NOTIFY", "value missing")),
            ("ORCPT", Some(v)) => p.orcpt = Some(parse_orcpt(v)?),
            ("ORCPT", None) => return Err(bad("ORCPT", "value missing")),
            _ => return Err(ParseError::BadParam(key)),
        }
    }
    Ok(p)
}

/// `NEVER` alone, or SUCCESS/FAILURE/DELAY each at most once; returned upper-cased.
fn parse_notify(v: &str) -> Option<String> {
    let parts: Vec<String> = v.split(',').map(|s| s.to_ascii_uppercase()).collect();
    if parts.len() == 1 && parts[0] == "NEVER" {
        return Some("NEVER".into());
    }
    for (i, part) in parts.iter().enumerate() {
        if !matches!(part.as_str(), "SUCCESS" | "FAILURE" | "DELAY") || parts[..i].contains(part) {
            return None;
        }
    }
    Some(parts.join(","))
}

/// `addr-type ";" xtext` (RFC 3461 §4.2). The address part is decoded for `rfc822` and other
/// xtext types; `utf-8` (RFC 6533) carries its own escaping and is kept as given.
fn parse_orcpt(v: &str) -> Result<String, ParseError> {
    if v.len() > MAX_ORCPT {
        return Err(bad("ORCPT", "longer than 500 characters"));
    }
    let (kind, addr) = v
        .split_once(';')
        .ok_or_else(|| bad("ORCPT", "expected addr-type;address"))?;
    if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(bad("ORCPT", "bad addr-type"));
    }
    let decoded = if kind.eq_ignore_ascii_case("utf-8") {
        (!addr.chars().any(|c| c.is_control() || c == ' ' || c == '=')).then(|| addr.to_string())
    } else {
        decode_xtext(addr)
    };
    match decoded {
        Some(a) if !a.is_empty() => Ok(format!("{kind};{a}")),
        _ => Err(bad("ORCPT", "address is not xtext")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_from_with_params() {
        let c =
            parse(b"MAIL FROM:<a.b@example.test> SIZE=1000 BODY=8BITMIME SMTPUTF8\r\n").unwrap();
        assert_eq!(
            c,
            Command::Mail {
                from: Some("a.b@example.test".into()),
                params: MailParams {
                    size: Some(1000),
                    body: BodyType::EightBitMime,
                    smtputf8: true,
                    requiretls: false,
                    ret: None,
                    envid: None,
                }
            }
        );
    }

    #[test]
    fn null_sender_and_lenient_spacing() {
        assert!(matches!(
            parse(b"mail from: <>\r\n").unwrap(),
            Command::Mail { from: None, .. }
        ));
    }

    #[test]
    fn rcpt_rejects_null_and_bad_addresses() {
        assert!(matches!(
            parse(b"RCPT TO:<>\r\n"),
            Err(ParseError::BadAddress(_))
        ));
        assert!(matches!(
            parse(b"RCPT TO:<no-at-sign>\r\n"),
            Err(ParseError::BadAddress(_))
        ));
        assert!(matches!(
            parse(b"RCPT TO:<a..b@x.test>\r\n"),
            Err(ParseError::BadAddress(_))
        ));
        assert!(matches!(
            parse(b"RCPT TO:<a@-x.test>\r\n"),
            Err(ParseError::BadAddress(_))
        ));
        assert!(matches!(
            parse(b"RCPT TO:a@x.test\r\n"),
            Err(ParseError::BadAddress(_))
        ));
        assert!(matches!(
            parse(b"RCPT TO:<a@x.test\r\n"),
            Err(ParseError::BadAddress(_))
        ));
        assert!(matches!(
            parse(b"RCPT TO:<a b@x.test>\r\n"),
            Err(ParseError::BadAddress(_))
        ));
    }

    #[test]
    fn utf8_quoted_and_literal_addresses() {
        let c = parse("RCPT TO:<δοκιμή@παράδειγμα.test>\r\n".as_bytes()).unwrap();
        assert_eq!(
            c,
            Command::Rcpt {
                to: "δοκιμή@παράδειγμα.test".into(),
                params: RcptParams::default()
            }
        );
        assert!(parse(b"RCPT TO:<\"john doe>\"@x.test>\r\n").is_ok());
        assert!(parse(b"RCPT TO:<postmaster@[127.0.0.1]>\r\n").is_ok());
        assert!(
            parse(
                b"RCPT TO:<@relay.test:u@x.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;u@x.test\r\n"
            )
            .is_ok()
        );
    }

    #[test]
    fn unknown_parameters_are_refused() {
        assert_eq!(
            parse(b"MAIL FROM:<a@x.test> FOO=1\r\n"),
            Err(ParseError::BadParam("FOO".into()))
        );
        assert!(matches!(
            parse(b"MAIL FROM:<a@x.test> BODY=BINARYMIME\r\n"),
            Err(ParseError::BadParam(_))
        ));
        assert!(matches!(
            parse(b"RCPT TO:<a@x.test> NOTIFY=NEVER,SUCCESS\r\n"),
            Err(ParseError::BadValue(_))
        ));
    }

    #[test]
    fn dsn_parameters_are_decoded_and_validated() {
        let Command::Mail { params, .. } =
            parse(b"MAIL FROM:<a@x.test> RET=hdrs ENVID=QQ+2Bid+3D1\r\n").unwrap()
        else {
            panic!("not MAIL");
        };
        assert_eq!(params.ret.as_deref(), Some("HDRS"));
        assert_eq!(params.envid.as_deref(), Some("QQ+id=1"));
        let Command::Rcpt { params, .. } =
            parse(b"RCPT TO:<a@x.test> NOTIFY=failure,Delay ORCPT=rfc822;b+2Bt@y.test\r\n")
                .unwrap()
        else {
            panic!("not RCPT");
        };
        assert_eq!(params.notify.as_deref(), Some("FAILURE,DELAY"));
        assert_eq!(params.orcpt.as_deref(), Some("rfc822;b+t@y.test"));
        for bad in [
            "MAIL FROM:<a@x.test> RET=BODY",
            "MAIL FROM:<a@x.test> RET",
            "MAIL FROM:<a@x.test> RET=FULL RET=HDRS",
            "MAIL FROM:<a@x.test> ENVID=a+2b",
            "MAIL FROM:<a@x.test> ENVID=a+2",
            "MAIL FROM:<a@x.test> ENVID=+0A",
            "MAIL FROM:<a@x.test> SIZE=1 SIZE=2",
            "RCPT TO:<a@x.test> NOTIFY=",
            "RCPT TO:<a@x.test> NOTIFY=SUCCESS,SUCCESS",
            "RCPT TO:<a@x.test> NOTIFY=SOMETIMES",
            "RCPT TO:<a@x.test> ORCPT=b@y.test",
            "RCPT TO:<a@x.test> ORCPT=rfc822;",
            "RCPT TO:<a@x.test> ORCPT=rfc/822;b@y.test",
            "RCPT TO:<a@x.test> NOTIFY=NEVER NOTIFY=NEVER",
        ] {
            let e = parse(format!("{bad}\r\n").as_bytes()).unwrap_err();
            assert!(matches!(e, ParseError::BadValue(_)), "{bad}: {e:?}");
            assert_eq!(e.reply().code, 501, "{bad}");
        }
    }

    #[test]
    fn bdat_forms() {
        assert_eq!(
            parse(b"BDAT 100\r\n").unwrap(),
            Command::Bdat {
                size: 100,
                last: false
            }
        );
        assert_eq!(
            parse(b"bdat 0 last\r\n").unwrap(),
            Command::Bdat {
                size: 0,
                last: true
            }
        );
        assert!(parse(b"BDAT -1\r\n").is_err());
        assert!(parse(b"BDAT 10 NOW\r\n").is_err());
        assert!(parse(b"BDAT\r\n").is_err());
    }

    #[test]
    fn verbs_and_errors() {
        assert_eq!(
            parse(b"EHLO client.test\r\n").unwrap(),
            Command::Ehlo("client.test".into())
        );
        assert!(matches!(parse(b"EHLO\r\n"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"FOO bar\r\n"), Err(ParseError::Unknown(_))));
        assert_eq!(parse(b"DATA x\r\n"), Err(ParseError::Syntax("DATA")));
        assert_eq!(parse(b"EHLO a\x00b\r\n"), Err(ParseError::NotText));
        assert_eq!(parse(b"NOOP\xff\r\n"), Err(ParseError::NotText));
        assert_eq!(
            parse(b"AUTH plain AGFAYg==\r\n").unwrap(),
            Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("AGFAYg==".into())
            }
        );
    }

    #[test]
    fn long_local_part_refused() {
        let line = format!("RCPT TO:<{}@x.test>\r\n", "a".repeat(65));
        assert!(matches!(
            parse(line.as_bytes()),
            Err(ParseError::BadAddress(_))
        ));
    }

    /// Arbitrary bytes never panic the parser, and every error has a 5xx reply.
    #[test]
    fn random_lines_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let pieces: [&[u8]; 12] = [
            b"MAIL FROM:",
            b"RCPT TO:",
            b"<",
            b">",
            b"@",
            b"\"",
            b"\\",
            b" ",
            b"SIZE=",
            b"a.b",
            "\u{3b4}".as_bytes(),
            b"\xff",
        ];
        for _ in 0..20_000 {
            let mut line = Vec::new();
            for _ in 0..rng.gen_range(0..8) {
                line.extend_from_slice(pieces[rng.gen_range(0..pieces.len())]);
            }
            line.extend_from_slice(b"\r\n");
            if let Err(e) = parse(&line) {
                assert!(e.reply().code >= 500);
            }
        }
    }
}
