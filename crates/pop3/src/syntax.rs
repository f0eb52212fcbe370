//! POP3 wire syntax: parsing one command line (RFC 1939, 2449, 2595, 5034) and building replies,
//! including RFC 2449/3206 response codes. No session state lives here.

use crate::transfer::MessageStream;

/// A parsed command. Message numbers are kept as given (`u64::MAX` for absurdly large ones) and
/// range-checked by the session against its snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    User(String),
    Pass(String),
    Apop,
    Auth {
        mechanism: Option<String>,
        initial: Option<String>,
    },
    Stls,
    Capa,
    Quit,
    Stat,
    List(Option<u64>),
    Retr(u64),
    Dele(u64),
    Noop,
    Rset,
    Top(u64, u64),
    Uidl(Option<u64>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not a command we know.
    Unknown,
    /// A known command with bad arguments; the text is sent after `-ERR `.
    Syntax(&'static str),
}

/// Strips the line ending of a received line.
pub fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn number(arg: &str) -> Result<u64, ParseError> {
    if arg.is_empty() || !arg.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::Syntax("invalid message number"));
    }
    Ok(arg.parse::<u64>().unwrap_or(u64::MAX))
}

fn no_args(args: &[&str]) -> Result<(), ParseError> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(ParseError::Syntax("this command takes no arguments"))
    }
}

/// Parses one command line (line ending already removed).
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let text =
        std::str::from_utf8(line).map_err(|_| ParseError::Syntax("command is not valid UTF-8"))?;
    let (keyword, rest) = match text.find(' ') {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => (text, ""),
    };
    if keyword.is_empty() || keyword.len() > 4 || !keyword.bytes().all(|b| b.is_ascii_alphabetic())
    {
        return Err(ParseError::Unknown);
    }
    let keyword = keyword.to_ascii_uppercase();
    let args: Vec<&str> = rest.split(' ').filter(|a| !a.is_empty()).collect();
    match keyword.as_str() {
        "USER" => match args.as_slice() {
            [name] => Ok(Command::User((*name).to_string())),
            _ => Err(ParseError::Syntax("usage: USER name")),
        },
        // The password is the rest of the line: passwords may contain spaces.
        "PASS" => {
            if rest.is_empty() {
                Err(ParseError::Syntax("usage: PASS password"))
            } else {
                Ok(Command::Pass(rest.to_string()))
            }
        }
        "APOP" => Ok(Command::Apop),
        "AUTH" => match args.as_slice() {
            [] => Ok(Command::Auth {
                mechanism: None,
                initial: None,
            }),
            [m] => Ok(Command::Auth {
                mechanism: Some(m.to_ascii_uppercase()),
                initial: None,
            }),
            [m, ir] => Ok(Command::Auth {
                mechanism: Some(m.to_ascii_uppercase()),
                initial: Some((*ir).to_string()),
            }),
            _ => Err(ParseError::Syntax(
                "usage: AUTH mechanism [initial-response]",
            )),
        },
        "STLS" => no_args(&args).map(|_| Command::Stls),
        "CAPA" => no_args(&args).map(|_| Command::Capa),
        "QUIT" => no_args(&args).map(|_| Command::Quit),
        "STAT" => no_args(&args).map(|_| Command::Stat),
        "NOOP" => no_args(&args).map(|_| Command::Noop),
        "RSET" => no_args(&args).map(|_| Command::Rset),
        "LIST" => match args.as_slice() {
            [] => Ok(Command::List(None)),
            [n] => Ok(Command::List(Some(number(n)?))),
            _ => Err(ParseError::Syntax("usage: LIST [msg]")),
        },
        "UIDL" => match args.as_slice() {
            [] => Ok(Command::Uidl(None)),
            [n] => Ok(Command::Uidl(Some(number(n)?))),
            _ => Err(ParseError::Syntax("usage: UIDL [msg]")),
        },
        "RETR" => match args.as_slice() {
            [n] => Ok(Command::Retr(number(n)?)),
            _ => Err(ParseError::Syntax("usage: RETR msg")),
        },
        "DELE" => match args.as_slice() {
            [n] => Ok(Command::Dele(number(n)?)),
            _ => Err(ParseError::Syntax("usage: DELE msg")),
        },
        "TOP" => match args.as_slice() {
            [n, lines] => {
                let n = number(n)?;
                if lines.is_empty() || !lines.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ParseError::Syntax("invalid line count"));
                }
                Ok(Command::Top(n, lines.parse::<u64>().unwrap_or(u64::MAX)))
            }
            _ => Err(ParseError::Syntax("usage: TOP msg lines")),
        },
        _ => Err(ParseError::Unknown),
    }
}

/// RFC 2449 / RFC 3206 response codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RespCode {
    InUse,
    LoginDelay,
    SysTemp,
    SysPerm,
    Auth,
}

impl RespCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RespCode::InUse => "IN-USE",
            RespCode::LoginDelay => "LOGIN-DELAY",
            RespCode::SysTemp => "SYS/TEMP",
            RespCode::SysPerm => "SYS/PERM",
            RespCode::Auth => "AUTH",
        }
    }
}

/// One piece of what a command answers: plain text, or a stored message that the connection
/// loop streams from its reader as it writes (`transfer::MessageStream`).
#[derive(Debug)]
pub enum Piece {
    Text(Vec<u8>),
    /// RETR or TOP; the status line precedes it as `Text`.
    Message(MessageStream),
}

/// Replies accumulated for the client, written (and flushed) by the connection loop.
#[derive(Debug, Default)]
pub struct Output {
    pub pieces: Vec<Piece>,
}

impl Output {
    pub fn new() -> Self {
        Output::default()
    }

    fn push_text(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        if let Some(Piece::Text(t)) = self.pieces.last_mut() {
            f(t);
            return;
        }
        let mut t = Vec::new();
        f(&mut t);
        self.pieces.push(Piece::Text(t));
    }

    pub fn ok(&mut self, msg: &str) {
        self.push_text(|t| {
            t.extend_from_slice(b"+OK");
            if !msg.is_empty() {
                t.push(b' ');
                t.extend_from_slice(msg.as_bytes());
            }
            t.extend_from_slice(b"\r\n");
        });
    }

    pub fn err(&mut self, code: Option<RespCode>, msg: &str) {
        self.push_text(|t| {
            t.extend_from_slice(b"-ERR ");
            if let Some(code) = code {
                t.push(b'[');
                t.extend_from_slice(code.as_str().as_bytes());
                t.extend_from_slice(b"] ");
            }
            t.extend_from_slice(msg.as_bytes());
            t.extend_from_slice(b"\r\n");
        });
    }

    /// A raw line (multi-line bodies, SASL continuations); `line` excludes the CRLF.
    pub fn line(&mut self, line: &str) {
        self.push_text(|t| {
            t.extend_from_slice(line.as_bytes());
            t.extend_from_slice(b"\r\n");
        });
    }

    /// A multi-line listing: each line dot-stuffed, then the terminator.
    pub fn listing<I: IntoIterator<Item = String>>(&mut self, lines: I) {
        self.push_text(|t| {
            for l in lines {
                if l.starts_with('.') {
                    t.push(b'.');
                }
                t.extend_from_slice(l.as_bytes());
                t.extend_from_slice(b"\r\n");
            }
            t.extend_from_slice(b".\r\n");
        });
    }

    pub fn message(&mut self, message: MessageStream) {
        self.pieces.push(Piece::Message(message));
    }

    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Holds a message to stream (the loop writes it before reading on, so that a session never
    /// holds more than one message reader).
    pub fn has_message(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Message(_)))
    }

    /// Octets of text waiting to be written (messages not counted: they are streamed).
    pub fn text_len(&self) -> usize {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.len(),
                Piece::Message(_) => 0,
            })
            .sum()
    }

    /// Everything as one byte string, messages read to the end (transcript tests).
    pub async fn collect(self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        for p in self.pieces {
            match p {
                Piece::Text(t) => out.extend_from_slice(&t),
                Piece::Message(m) => m.collect(&mut out).await?,
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands_case_insensitively() {
        assert_eq!(parse(b"user Bob"), Ok(Command::User("Bob".into())));
        assert_eq!(parse(b"PASS a b  c"), Ok(Command::Pass("a b  c".into())));
        assert_eq!(parse(b"list"), Ok(Command::List(None)));
        assert_eq!(parse(b"LIST 3"), Ok(Command::List(Some(3))));
        assert_eq!(parse(b"top 1 10"), Ok(Command::Top(1, 10)));
        assert_eq!(
            parse(b"AUTH plain AGEAYg=="),
            Ok(Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial: Some("AGEAYg==".into())
            })
        );
        assert_eq!(
            parse(b"RETR 99999999999999999999999"),
            Ok(Command::Retr(u64::MAX))
        );
    }

    #[test]
    fn rejects_bad_syntax() {
        assert_eq!(parse(b"XYZZY"), Err(ParseError::Unknown));
        assert_eq!(parse(b""), Err(ParseError::Unknown));
        assert_eq!(parse(b"RETR"), Err(ParseError::Syntax("usage: RETR msg")));
        assert_eq!(
            parse(b"RETR -1"),
            Err(ParseError::Syntax("invalid message number"))
        );
        assert_eq!(
            parse(b"STAT 1"),
            Err(ParseError::Syntax("this command takes no arguments"))
        );
        assert_eq!(
            parse(b"TOP 1 x"),
            Err(ParseError::Syntax("invalid line count"))
        );
        assert_eq!(parse(b"USER"), Err(ParseError::Syntax("usage: USER name")));
        assert_eq!(
            parse(b"USER \xff"),
            Err(ParseError::Syntax("command is not valid UTF-8"))
        );
    }
}
