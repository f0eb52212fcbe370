//! Command-line syntax (RFC 5321 §4.1): verbs, paths, mailbox addresses (with RFC 6531 UTF-8) and
//! ESMTP parameters. Pure parsing: no state, no I/O. Every error maps to one precise reply.

use crate::reply::Reply;

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
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RcptParams {
    pub notify: Option<String>,
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
    /// An ESMTP parameter we do not know or whose value is wrong.
    BadParam(String),
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

fn is_xtext(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(|b| (33..=126).contains(&b) && b != b'=')
}

fn parse_mail_params(s: &str) -> Result<MailParams, ParseError> {
    let mut p = MailParams::default();
    for (key, value) in params(s) {
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
                if v.eq_ignore_ascii_case("FULL") || v.eq_ignore_ascii_case("HDRS") => {}
            ("ENVID", Some(v)) | ("AUTH", Some(v)) if is_xtext(v) || v == "<>" => {}
            _ => return Err(ParseError::BadParam(key)),
        }
    }
    Ok(p)
}

fn parse_rcpt_params(s: &str) -> Result<RcptParams, ParseError> {
    let mut p = RcptParams::default();
    for (key, value) in params(s) {
        match (key.as_str(), value) {
            ("NOTIFY", Some(v)) if valid_notify(v) => p.notify = Some(v.to_ascii_uppercase()),
            ("ORCPT", Some(v)) if v.contains(';') && v.len() <= 500 => {
                p.orcpt = Some(v.to_string())
            }
            _ => return Err(ParseError::BadParam(key)),
        }
    }
    Ok(p)
}

fn valid_notify(v: &str) -> bool {
    let parts: Vec<String> = v.split(',').map(|s| s.to_ascii_uppercase()).collect();
    if parts.iter().any(|p| p == "NEVER") {
        return parts.len() == 1;
    }
    !parts.is_empty()
        && parts
            .iter()
            .all(|p| p == "SUCCESS" || p == "FAILURE" || p == "DELAY")
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
                    requiretls: false
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
            Err(ParseError::BadParam(_))
        ));
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
