//! SMTP replies: a basic code (RFC 5321), an optional enhanced status code (RFC 3463 / RFC 2034),
//! and one or more text lines, rendered with `-` continuation.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// `None` only for the greeting and the EHLO/HELO reply (RFC 2034 §3).
    pub enhanced: Option<&'static str>,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn new(code: u16, enhanced: &'static str, text: impl Into<String>) -> Reply {
        Reply {
            code,
            enhanced: Some(enhanced),
            lines: vec![text.into()],
        }
    }

    /// A reply without an enhanced code (greeting, EHLO/HELO).
    pub fn plain(code: u16, lines: Vec<String>) -> Reply {
        Reply {
            code,
            enhanced: None,
            lines,
        }
    }

    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// 4xx/5xx.
    pub fn is_error(&self) -> bool {
        self.code >= 400
    }

    /// Wire form, every line ending in CRLF.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.write_to(&mut out);
        out
    }

    pub fn write_to(&self, out: &mut Vec<u8>) {
        let n = self.lines.len().max(1);
        for i in 0..n {
            let text = self.lines.get(i).map(String::as_str).unwrap_or("");
            let sep = if i + 1 == n { ' ' } else { '-' };
            out.extend_from_slice(self.code.to_string().as_bytes());
            out.push(sep as u8);
            if let Some(e) = self.enhanced {
                out.extend_from_slice(e.as_bytes());
                out.push(b' ');
            }
            // A reply line must never carry a line break of its own.
            out.extend(text.bytes().filter(|b| *b != b'\r' && *b != b'\n'));
            out.extend_from_slice(b"\r\n");
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.to_bytes();
        let s = String::from_utf8_lossy(&bytes);
        f.write_str(s.trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_with_enhanced_code() {
        assert_eq!(
            Reply::new(250, "2.1.0", "Ok").to_bytes(),
            b"250 2.1.0 Ok\r\n"
        );
    }

    #[test]
    fn multi_line_uses_dash_continuation() {
        let r = Reply::plain(
            250,
            vec!["host".into(), "PIPELINING".into(), "SIZE 10".into()],
        );
        assert_eq!(
            r.to_bytes(),
            b"250-host\r\n250-PIPELINING\r\n250 SIZE 10\r\n"
        );
    }

    #[test]
    fn line_breaks_in_text_are_dropped() {
        assert_eq!(
            Reply::new(501, "5.5.4", "a\r\nb").to_bytes(),
            b"501 5.5.4 ab\r\n"
        );
    }
}
