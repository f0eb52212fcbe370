//! ManageSieve wire syntax (RFC 5804 section 4): framing a command that carries literals,
//! parsing a complete command or SASL response, script name rules (section 1.6), and building
//! responses (`OK`/`NO`/`BYE` with response codes, strings quoted or as literals). No session
//! state lives here.
//!
//! A command arrives as lines; a line ending in `{n}` or `{n+}` (outside a quoted string) is
//! followed by `n` octets of literal, after which the command goes on with the next line. The
//! session collects all of it into one buffer, lines without their line endings and each literal
//! preceded by the CRLF that ended its announcing line, and hands that buffer to `parse`. Both
//! literal forms are accepted from the client and neither is answered with a continuation: a
//! client that sent `{n}` simply goes on sending.

/// Longest quoted string (RFC 5804: `quoted = DQUOTE *1024QUOTED-CHAR DQUOTE`).
pub const MAX_QUOTED: usize = 1024;
/// Longest script name in characters (RFC 5804 section 1.6 requires at least 128).
pub const MAX_NAME_CHARS: usize = 128;
/// Largest number (RFC 5804: `number = 1*DIGIT ;; 0 - 4,294,967,295`).
pub const MAX_NUMBER: u64 = u32::MAX as u64;

/// A parsed command. Strings are kept as octets; the session checks names and scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Authenticate {
        mechanism: Vec<u8>,
        initial: Option<Vec<u8>>,
    },
    StartTls,
    Logout,
    Capability,
    HaveSpace {
        name: Vec<u8>,
        size: u64,
    },
    PutScript {
        name: Vec<u8>,
        content: Vec<u8>,
    },
    ListScripts,
    SetActive(Vec<u8>),
    GetScript(Vec<u8>),
    DeleteScript(Vec<u8>),
    RenameScript {
        from: Vec<u8>,
        to: Vec<u8>,
    },
    CheckScript(Vec<u8>),
    Noop(Option<Vec<u8>>),
    Unauthenticate,
}

impl Command {
    /// The command's name, upper-case (metrics label).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Authenticate { .. } => "AUTHENTICATE",
            Command::StartTls => "STARTTLS",
            Command::Logout => "LOGOUT",
            Command::Capability => "CAPABILITY",
            Command::HaveSpace { .. } => "HAVESPACE",
            Command::PutScript { .. } => "PUTSCRIPT",
            Command::ListScripts => "LISTSCRIPTS",
            Command::SetActive(_) => "SETACTIVE",
            Command::GetScript(_) => "GETSCRIPT",
            Command::DeleteScript(_) => "DELETESCRIPT",
            Command::RenameScript { .. } => "RENAMESCRIPT",
            Command::CheckScript(_) => "CHECKSCRIPT",
            Command::Noop(_) => "NOOP",
            Command::Unauthenticate => "UNAUTHENTICATE",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not a command we know.
    Unknown,
    /// A known command with bad arguments; the text is the `NO` message.
    Syntax(&'static str),
}

/// Strips the line ending of a received line.
pub fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// When `line` (without its line ending) ends with a literal announcement `{n}` or `{n+}`
/// outside a quoted string: the announced length (`u64::MAX` when absurdly long).
pub fn literal_at_end(line: &[u8]) -> Option<u64> {
    let mut in_quote = false;
    let mut escaped = false;
    for &b in line {
        if in_quote {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_quote = false;
            }
        } else if b == b'"' {
            in_quote = true;
        }
    }
    if in_quote {
        return None;
    }
    let body = line.strip_suffix(b"}")?;
    let body = body.strip_suffix(b"+").unwrap_or(body);
    let start = body
        .iter()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |i| i + 1);
    let digits = &body[start..];
    if digits.is_empty() || start == 0 || body[start - 1] != b'{' {
        return None;
    }
    Some(digits.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// The first word of a command being collected, upper-case (to know what a literal is for).
pub fn keyword(buf: &[u8]) -> String {
    let end = buf
        .iter()
        .position(|b| !b.is_ascii_alphabetic())
        .unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end.min(32)]).to_ascii_uppercase()
}

struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn atom(&mut self) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
            self.pos += 1;
        }
        &self.buf[start..self.pos]
    }

    /// One space, then something more.
    fn sp(&mut self, usage: &'static str) -> Result<(), ParseError> {
        if self.peek() == Some(b' ') && self.pos + 1 < self.buf.len() {
            self.pos += 1;
            Ok(())
        } else {
            Err(ParseError::Syntax(usage))
        }
    }

    fn end(&self, usage: &'static str) -> Result<(), ParseError> {
        if self.at_end() {
            Ok(())
        } else {
            Err(ParseError::Syntax(usage))
        }
    }

    /// A quoted string or a literal.
    fn string(&mut self, usage: &'static str) -> Result<Vec<u8>, ParseError> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(),
            _ => Err(ParseError::Syntax(usage)),
        }
    }

    fn quoted(&mut self) -> Result<Vec<u8>, ParseError> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(ParseError::Syntax("unterminated quoted string"));
            };
            self.pos += 1;
            match b {
                b'"' => return Ok(out),
                b'\\' => match self.peek() {
                    Some(c @ (b'"' | b'\\')) => {
                        self.pos += 1;
                        out.push(c);
                    }
                    _ => {
                        return Err(ParseError::Syntax(
                            "invalid escape in quoted string (only \\\" and \\\\)",
                        ));
                    }
                },
                b'\r' | b'\n' | 0 => {
                    return Err(ParseError::Syntax(
                        "quoted strings cannot hold CR, LF or NUL: use a literal",
                    ));
                }
                _ => out.push(b),
            }
            if out.len() > MAX_QUOTED {
                return Err(ParseError::Syntax(
                    "quoted string longer than 1024 octets: use a literal",
                ));
            }
        }
    }

    fn literal(&mut self) -> Result<Vec<u8>, ParseError> {
        self.pos += 1;
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits = &self.buf[start..self.pos];
        if digits.is_empty() {
            return Err(ParseError::Syntax("invalid literal"));
        }
        if self.peek() == Some(b'+') {
            self.pos += 1;
        }
        if self.peek() != Some(b'}') {
            return Err(ParseError::Syntax("invalid literal"));
        }
        self.pos += 1;
        if self.buf.get(self.pos..self.pos + 2) != Some(b"\r\n".as_slice()) {
            return Err(ParseError::Syntax(
                "a literal announcement must end the line",
            ));
        }
        self.pos += 2;
        let len = digits.iter().fold(0usize, |n, &d| {
            n.saturating_mul(10).saturating_add(usize::from(d - b'0'))
        });
        let left = self.buf.len() - self.pos;
        if len > left {
            return Err(ParseError::Syntax("literal shorter than announced"));
        }
        let out = self.buf[self.pos..self.pos + len].to_vec();
        self.pos += len;
        Ok(out)
    }

    fn number(&mut self, usage: &'static str) -> Result<u64, ParseError> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits = &self.buf[start..self.pos];
        if digits.is_empty() {
            return Err(ParseError::Syntax(usage));
        }
        let n = digits.iter().fold(0u64, |n, &d| {
            n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        });
        if n > MAX_NUMBER {
            return Err(ParseError::Syntax("number larger than 4294967295"));
        }
        Ok(n)
    }
}

/// Parses one complete command (see the module doc for the buffer's form).
pub fn parse(buf: &[u8]) -> Result<Command, ParseError> {
    let mut p = Parser { buf, pos: 0 };
    let word = p.atom();
    if word.is_empty() || word.len() > 16 {
        return Err(ParseError::Unknown);
    }
    let word = String::from_utf8_lossy(word).to_ascii_uppercase();
    if !p.at_end() && p.peek() != Some(b' ') {
        return Err(ParseError::Unknown);
    }
    let cmd = match word.as_str() {
        "AUTHENTICATE" => {
            const U: &str = "usage: AUTHENTICATE mechanism [initial-response]";
            p.sp(U)?;
            let mechanism = p.string(U)?;
            let initial = if p.at_end() {
                None
            } else {
                p.sp(U)?;
                Some(p.string(U)?)
            };
            p.end(U)?;
            Command::Authenticate { mechanism, initial }
        }
        "STARTTLS" => no_args(&p, Command::StartTls)?,
        "LOGOUT" => no_args(&p, Command::Logout)?,
        "CAPABILITY" => no_args(&p, Command::Capability)?,
        "LISTSCRIPTS" => no_args(&p, Command::ListScripts)?,
        "UNAUTHENTICATE" => no_args(&p, Command::Unauthenticate)?,
        "HAVESPACE" => {
            const U: &str = "usage: HAVESPACE name size";
            p.sp(U)?;
            let name = p.string(U)?;
            p.sp(U)?;
            let size = p.number(U)?;
            p.end(U)?;
            Command::HaveSpace { name, size }
        }
        "PUTSCRIPT" => {
            const U: &str = "usage: PUTSCRIPT name script";
            p.sp(U)?;
            let name = p.string(U)?;
            p.sp(U)?;
            let content = p.string(U)?;
            p.end(U)?;
            Command::PutScript { name, content }
        }
        "RENAMESCRIPT" => {
            const U: &str = "usage: RENAMESCRIPT old-name new-name";
            p.sp(U)?;
            let from = p.string(U)?;
            p.sp(U)?;
            let to = p.string(U)?;
            p.end(U)?;
            Command::RenameScript { from, to }
        }
        "SETACTIVE" => Command::SetActive(one_string(&mut p, "usage: SETACTIVE name")?),
        "GETSCRIPT" => Command::GetScript(one_string(&mut p, "usage: GETSCRIPT name")?),
        "DELETESCRIPT" => Command::DeleteScript(one_string(&mut p, "usage: DELETESCRIPT name")?),
        "CHECKSCRIPT" => Command::CheckScript(one_string(&mut p, "usage: CHECKSCRIPT script")?),
        "NOOP" => {
            const U: &str = "usage: NOOP [tag]";
            if p.at_end() {
                Command::Noop(None)
            } else {
                Command::Noop(Some(one_string(&mut p, U)?))
            }
        }
        _ => return Err(ParseError::Unknown),
    };
    Ok(cmd)
}

fn no_args(p: &Parser<'_>, cmd: Command) -> Result<Command, ParseError> {
    p.end("this command takes no arguments")?;
    Ok(cmd)
}

fn one_string(p: &mut Parser<'_>, usage: &'static str) -> Result<Vec<u8>, ParseError> {
    p.sp(usage)?;
    let s = p.string(usage)?;
    p.end(usage)?;
    Ok(s)
}

/// Parses a client's answer to a SASL challenge: one string (`"*"` cancels).
pub fn parse_sasl_response(buf: &[u8]) -> Result<Vec<u8>, ParseError> {
    const U: &str = "a SASL response is one string";
    let mut p = Parser { buf, pos: 0 };
    let s = p.string(U)?;
    p.end(U)?;
    Ok(s)
}

/// Checks a script name against RFC 5804 section 1.6: UTF-8, 1 to 128 characters, no control
/// characters (C0, DEL, C1) and no line or paragraph separator.
pub fn script_name(name: &[u8]) -> Result<&str, &'static str> {
    let name = std::str::from_utf8(name).map_err(|_| "script name is not valid UTF-8")?;
    if name.is_empty() {
        return Err("script name is empty");
    }
    let mut chars = 0;
    for c in name.chars() {
        chars += 1;
        if chars > MAX_NAME_CHARS {
            return Err("script name longer than 128 characters");
        }
        if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
            return Err("script name contains a control character");
        }
    }
    Ok(name)
}

/// RFC 5804 response codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    AuthTooWeak,
    EncryptNeeded,
    Quota,
    QuotaMaxScripts,
    QuotaMaxSize,
    /// SASL additional data on success (base64 text).
    Sasl(String),
    TryLater,
    Active,
    Nonexistent,
    AlreadyExists,
    Warnings,
    /// NOOP's tag, echoed.
    Tag(Vec<u8>),
}

/// Replies accumulated for the client, written (and flushed) by the connection loop.
#[derive(Debug, Default)]
pub struct Output {
    pub bytes: Vec<u8>,
}

impl Output {
    pub fn new() -> Self {
        Output::default()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn append(&mut self, other: Output) {
        self.bytes.extend_from_slice(&other.bytes);
    }

    /// A string: quoted when it can be, else a literal `{n}CRLF...` (server-to-client form).
    pub fn string(&mut self, s: &[u8]) {
        let quotable = s.len() <= MAX_QUOTED
            && !s.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0))
            && std::str::from_utf8(s).is_ok();
        if quotable {
            self.bytes.push(b'"');
            for &b in s {
                if b == b'"' || b == b'\\' {
                    self.bytes.push(b'\\');
                }
                self.bytes.push(b);
            }
            self.bytes.push(b'"');
        } else {
            self.literal(s);
        }
    }

    /// A literal `{n}CRLF` followed by the octets (no line ending after them).
    pub fn literal(&mut self, s: &[u8]) {
        self.bytes
            .extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
        self.bytes.extend_from_slice(s);
    }

    pub fn crlf(&mut self) {
        self.bytes.extend_from_slice(b"\r\n");
    }

    /// One line made of strings separated by spaces (capabilities, listings).
    pub fn strings_line(&mut self, items: &[&[u8]]) {
        for (i, s) in items.iter().enumerate() {
            if i > 0 {
                self.bytes.push(b' ');
            }
            self.string(s);
        }
        self.crlf();
    }

    fn code(&mut self, code: &Code) {
        self.bytes.extend_from_slice(b" (");
        let (name, arg): (&str, Option<&[u8]>) = match code {
            Code::AuthTooWeak => ("AUTH-TOO-WEAK", None),
            Code::EncryptNeeded => ("ENCRYPT-NEEDED", None),
            Code::Quota => ("QUOTA", None),
            Code::QuotaMaxScripts => ("QUOTA/MAXSCRIPTS", None),
            Code::QuotaMaxSize => ("QUOTA/MAXSIZE", None),
            Code::Sasl(s) => ("SASL", Some(s.as_bytes())),
            Code::TryLater => ("TRYLATER", None),
            Code::Active => ("ACTIVE", None),
            Code::Nonexistent => ("NONEXISTENT", None),
            Code::AlreadyExists => ("ALREADYEXISTS", None),
            Code::Warnings => ("WARNINGS", None),
            Code::Tag(t) => ("TAG", Some(t.as_slice())),
        };
        self.bytes.extend_from_slice(name.as_bytes());
        if let Some(arg) = arg {
            self.bytes.push(b' ');
            self.string(arg);
        }
        self.bytes.push(b')');
    }

    fn response(&mut self, word: &str, code: Option<&Code>, text: &str) {
        self.bytes.extend_from_slice(word.as_bytes());
        if let Some(code) = code {
            self.code(code);
        }
        if !text.is_empty() {
            self.bytes.push(b' ');
            self.string(text.as_bytes());
        }
        self.crlf();
    }

    pub fn ok(&mut self, code: Option<&Code>, text: &str) {
        self.response("OK", code, text);
    }

    pub fn no(&mut self, code: Option<&Code>, text: &str) {
        self.response("NO", code, text);
    }

    pub fn bye(&mut self, code: Option<&Code>, text: &str) {
        self.response("BYE", code, text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands_case_insensitively() {
        assert_eq!(parse(b"capability"), Ok(Command::Capability));
        assert_eq!(
            parse(b"PutScript \"a b\" {3+}\r\nabc"),
            Ok(Command::PutScript {
                name: b"a b".to_vec(),
                content: b"abc".to_vec()
            })
        );
        assert_eq!(
            parse(b"PUTSCRIPT {1}\r\nx {0+}\r\n"),
            Ok(Command::PutScript {
                name: b"x".to_vec(),
                content: Vec::new()
            })
        );
        assert_eq!(
            parse(b"HAVESPACE \"x\" 4294967295"),
            Ok(Command::HaveSpace {
                name: b"x".to_vec(),
                size: u64::from(u32::MAX)
            })
        );
        assert_eq!(
            parse(br#"NOOP "a\"b\\c""#),
            Ok(Command::Noop(Some(br#"a"b\c"#.to_vec())))
        );
        assert_eq!(
            parse(b"AUTHENTICATE \"PLAIN\" \"AGEAYg==\""),
            Ok(Command::Authenticate {
                mechanism: b"PLAIN".to_vec(),
                initial: Some(b"AGEAYg==".to_vec())
            })
        );
        assert_eq!(parse(b"SETACTIVE \"\""), Ok(Command::SetActive(Vec::new())));
    }

    #[test]
    fn rejects_bad_syntax() {
        assert_eq!(parse(b"XYZZY"), Err(ParseError::Unknown));
        assert_eq!(parse(b""), Err(ParseError::Unknown));
        assert_eq!(parse(b"LOGOUT2"), Err(ParseError::Unknown));
        assert!(matches!(parse(b"LOGOUT x"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"GETSCRIPT"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"GETSCRIPT "), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"GETSCRIPT x"), Err(ParseError::Syntax(_))));
        assert!(matches!(
            parse(b"GETSCRIPT \"x"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse(b"GETSCRIPT \"a\\nb\""),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse(b"GETSCRIPT {5+}\r\nab"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse(b"HAVESPACE \"x\" 4294967296"),
            Err(ParseError::Syntax(_))
        ));
        let long = format!("GETSCRIPT \"{}\"", "a".repeat(1025));
        assert!(matches!(parse(long.as_bytes()), Err(ParseError::Syntax(_))));
    }

    #[test]
    fn finds_literal_announcements() {
        assert_eq!(literal_at_end(b"PUTSCRIPT \"x\" {12+}"), Some(12));
        assert_eq!(literal_at_end(b"PUTSCRIPT \"x\" {12}"), Some(12));
        assert_eq!(literal_at_end(b"NOOP \"{12}\""), None);
        assert_eq!(literal_at_end(b"NOOP \"a\\\" {12}"), None);
        assert_eq!(literal_at_end(b"NOOP {}"), None);
        assert_eq!(literal_at_end(b"{5}"), Some(5));
        assert_eq!(
            literal_at_end(b"x {99999999999999999999999}"),
            Some(u64::MAX)
        );
    }

    #[test]
    fn script_names() {
        assert_eq!(script_name(b"vacation"), Ok("vacation"));
        assert!(script_name("\u{e9}t\u{e9} 2026".as_bytes()).is_ok());
        assert!(script_name(b"").is_err());
        assert!(script_name(b"a\tb").is_err());
        assert!(script_name(b"a\x7fb").is_err());
        assert!(script_name("a\u{85}b".as_bytes()).is_err());
        assert!(script_name("a\u{2028}b".as_bytes()).is_err());
        assert!(script_name(b"\xff").is_err());
        assert!(script_name("\u{e9}".repeat(128).as_bytes()).is_ok());
        assert!(script_name("\u{e9}".repeat(129).as_bytes()).is_err());
    }

    #[test]
    fn writes_strings_and_codes() {
        let mut o = Output::new();
        o.no(Some(&Code::QuotaMaxSize), "too \"big\"");
        o.ok(Some(&Code::Tag(b"a\r\nb".to_vec())), "");
        o.no(None, "line 1\nline 2");
        assert_eq!(
            String::from_utf8(o.bytes).unwrap(),
            "NO (QUOTA/MAXSIZE) \"too \\\"big\\\"\"\r\nOK (TAG {4}\r\na\r\nb)\r\nNO {13}\r\nline 1\nline 2\r\n"
        );
    }
}
