//! Server replies as the SMTP client reads them (RFC 5321 §4.2): multi-line assembly, the
//! enhanced status code (RFC 3463), and the bounded incremental parser the client feeds.

use std::fmt;

/// Longest reply line accepted (RFC 5321 §4.5.3.1.5 says 512; real servers go beyond it a bit).
pub const MAX_LINE: usize = 4096;
/// Most lines in one reply (an EHLO reply with every extension fits easily).
pub const MAX_LINES: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// Text of every line without the code and separator, in order.
    pub lines: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("reply line longer than {MAX_LINE} bytes")]
    LineTooLong,
    #[error("reply has more than {MAX_LINES} lines")]
    TooManyLines,
    #[error("malformed reply line: {0:?}")]
    Malformed(String),
}

impl Reply {
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The enhanced status code of the first line (`5.1.1`), when the server sent one whose class
    /// agrees with the basic code.
    pub fn enhanced(&self) -> Option<String> {
        let first = self.lines.first()?;
        let token = first.split_whitespace().next()?;
        let mut parts = token.split('.');
        let (a, b, c) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let class: u16 = a.parse().ok()?;
        let ok = (2..=5).contains(&class)
            && class == self.code / 100
            && b.len() <= 3
            && c.len() <= 3
            && b.parse::<u16>().is_ok()
            && c.parse::<u16>().is_ok();
        ok.then(|| token.to_string())
    }

    /// Enhanced status for a DSN: the server's own, else one derived from the basic code.
    pub fn status(&self) -> String {
        self.enhanced().unwrap_or_else(|| match self.code / 100 {
            2 => "2.0.0".into(),
            4 => "4.0.0".into(),
            _ => "5.0.0".into(),
        })
    }

    /// One-line rendering for logs and `Diagnostic-Code: smtp; …`.
    pub fn one_line(&self) -> String {
        let text = self.lines.join(" ");
        let clean: String = text.chars().filter(|c| !c.is_control()).collect();
        format!("{} {}", self.code, clean)
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.one_line())
    }
}

/// Takes one complete reply off the front of `buf`. `Ok(None)` means more input is needed;
/// on success returns the reply and how many bytes it used.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
    let mut pos = 0;
    let mut code: Option<u16> = None;
    let mut lines = Vec::new();
    loop {
        let rest = &buf[pos..];
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            if rest.len() > MAX_LINE {
                return Err(ReplyError::LineTooLong);
            }
            return Ok(None);
        };
        if nl > MAX_LINE {
            return Err(ReplyError::LineTooLong);
        }
        let raw = &rest[..nl];
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        pos += nl + 1;
        let text = String::from_utf8_lossy(raw).into_owned();
        let bytes = raw;
        if bytes.len() < 3 || !bytes[..3].iter().all(u8::is_ascii_digit) {
            return Err(ReplyError::Malformed(text));
        }
        let this: u16 = text[..3]
            .parse()
            .map_err(|_| ReplyError::Malformed(text.clone()))?;
        if !(200..600).contains(&this) || code.is_some_and(|c| c != this) {
            return Err(ReplyError::Malformed(text));
        }
        code = Some(this);
        let sep = bytes.get(3).copied();
        let body = if bytes.len() > 4 {
            text[4..].to_string()
        } else {
            String::new()
        };
        match sep {
            None | Some(b' ') => {
                lines.push(body);
                return Ok(Some((Reply { code: this, lines }, pos)));
            }
            Some(b'-') => {
                lines.push(body);
                if lines.len() >= MAX_LINES {
                    return Err(ReplyError::TooManyLines);
                }
            }
            Some(_) => return Err(ReplyError::Malformed(text)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_multi_line() {
        let (r, n) = parse_reply(b"250 2.1.0 Ok\r\nrest").unwrap().unwrap();
        assert_eq!((r.code, n), (250, 14));
        assert_eq!(r.enhanced().as_deref(), Some("2.1.0"));
        let input = b"250-mx.example\r\n250-PIPELINING\r\n250 SIZE 100\r\n";
        let (r, n) = parse_reply(input).unwrap().unwrap();
        assert_eq!(n, input.len());
        assert_eq!(r.lines, vec!["mx.example", "PIPELINING", "SIZE 100"]);
        assert_eq!(r.enhanced(), None);
        assert_eq!(r.status(), "2.0.0");
    }

    #[test]
    fn incomplete_needs_more() {
        assert_eq!(parse_reply(b"250-a\r\n250 b").unwrap(), None);
        assert_eq!(parse_reply(b"").unwrap(), None);
    }

    #[test]
    fn rejects_garbage_and_mixed_codes() {
        assert!(matches!(
            parse_reply(b"hello\r\n"),
            Err(ReplyError::Malformed(_))
        ));
        assert!(matches!(
            parse_reply(b"250-a\r\n251 b\r\n"),
            Err(ReplyError::Malformed(_))
        ));
        assert!(matches!(
            parse_reply(b"099 x\r\n"),
            Err(ReplyError::Malformed(_))
        ));
        let long = vec![b'2'; MAX_LINE + 10];
        assert_eq!(parse_reply(&long), Err(ReplyError::LineTooLong));
    }

    #[test]
    fn enhanced_class_must_match() {
        let (r, _) = parse_reply(b"550 4.1.1 odd\r\n").unwrap().unwrap();
        assert_eq!(r.enhanced(), None);
        assert_eq!(r.status(), "5.0.0");
    }
}
