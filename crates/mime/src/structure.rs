//! The stored part tree (`Part`, `Envelope`) and how it is built from a raw message in one pass:
//! header scan, MIME defaults (RFC 2045 §5.2, RFC 2046 §5.1.5), multipart splitting on boundary
//! delimiter lines (RFC 2046 §5.1.1) with exact byte offsets, nested message/rfc822.

use serde::{Deserialize, Serialize};

use crate::address::{ImapAddr, parse_list};
use crate::header::{self, Field};
use crate::params;

/// Nesting bound: deeper multiparts/messages are kept as opaque leaves.
pub(crate) const MAX_DEPTH: usize = 50;
/// Bound on parts per message: beyond it, multiparts stop being split.
pub(crate) const MAX_PARTS: usize = 5000;

/// ENVELOPE fields as the IMAP rendering needs them; strings are unfolded raw header text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Envelope {
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(rename = "f", default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<ImapAddr>,
    #[serde(rename = "se", default, skip_serializing_if = "Vec::is_empty")]
    pub sender: Vec<ImapAddr>,
    #[serde(rename = "r", default, skip_serializing_if = "Vec::is_empty")]
    pub reply_to: Vec<ImapAddr>,
    #[serde(rename = "t", default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<ImapAddr>,
    #[serde(rename = "c", default, skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<ImapAddr>,
    #[serde(rename = "b", default, skip_serializing_if = "Vec::is_empty")]
    pub bcc: Vec<ImapAddr>,
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The References: field for THREAD=REFERENCES, `Some("")` when there is none; `None` only in
    /// summaries stored before it was kept (the reader then looks at the header itself).
    #[serde(rename = "rf", default, skip_serializing_if = "Option::is_none")]
    pub references: Option<String>,
}

/// Content-Disposition: type and parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Disposition {
    #[serde(rename = "t")]
    pub kind: String,
    #[serde(rename = "p", default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<(String, String)>,
}

/// One MIME entity with its byte ranges in the raw message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Part {
    /// Start of this entity's header section.
    #[serde(rename = "h")]
    pub header: u64,
    /// Start of its body (just after the blank line, or the end when there is none).
    #[serde(rename = "b")]
    pub body: u64,
    /// End of its body.
    #[serde(rename = "e")]
    pub end: u64,
    /// Media type and subtype, uppercase.
    #[serde(rename = "t")]
    pub ctype: String,
    #[serde(rename = "u")]
    pub subtype: String,
    #[serde(rename = "p", default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<(String, String)>,
    #[serde(rename = "id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "ds", default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Content-Transfer-Encoding as written (rendered uppercase); `None` means 7BIT.
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub cte: Option<String>,
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<Disposition>,
    #[serde(rename = "l", default, skip_serializing_if = "Vec::is_empty")]
    pub language: Vec<String>,
    #[serde(rename = "lo", default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Body line count (text/* and message/rfc822).
    #[serde(rename = "n", default, skip_serializing_if = "is_zero")]
    pub lines: u64,
    /// Set on the root part of a message (top level or encapsulated).
    #[serde(rename = "env", default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<Box<Envelope>>,
    /// Children of a multipart.
    #[serde(rename = "k", default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Part>,
    /// Root part of the message encapsulated by a message/rfc822 part.
    #[serde(rename = "msg", default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Box<Part>>,
}

impl Part {
    pub fn is_multipart(&self) -> bool {
        self.ctype == "MULTIPART" && !self.children.is_empty()
    }

    pub fn header_range(&self) -> std::ops::Range<usize> {
        to_usize(self.header)..to_usize(self.body).max(to_usize(self.header))
    }

    pub fn body_range(&self) -> std::ops::Range<usize> {
        to_usize(self.body)..to_usize(self.end).max(to_usize(self.body))
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

pub(crate) fn to_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

struct Builder<'r> {
    raw: &'r [u8],
    parts: usize,
}

/// Parses the whole raw message into its root part.
pub(crate) fn build(raw: &[u8]) -> Part {
    let mut b = Builder { raw, parts: 0 };
    b.message(0, raw.len(), 0)
}

fn count_lines(body: &[u8]) -> u64 {
    let n = body.iter().filter(|&&b| b == b'\n').count() as u64;
    if body.last().is_some_and(|&b| b != b'\n') {
        n + 1
    } else {
        n
    }
}

impl Builder<'_> {
    /// A message (header + body) occupying `raw[start..end]`.
    fn message(&mut self, start: usize, end: usize, depth: usize) -> Part {
        let (fields, body) = header::scan(self.raw, start, end);
        let envelope = envelope(self.raw, &fields);
        let mut part = self.entity(start, body, end, &fields, false, depth);
        part.envelope = Some(Box::new(envelope));
        part
    }

    /// One MIME entity: header fields already scanned, body at `body..end`.
    fn entity(
        &mut self,
        start: usize,
        body: usize,
        end: usize,
        fields: &[Field],
        in_digest: bool,
        depth: usize,
    ) -> Part {
        self.parts += 1;
        let raw = self.raw;
        let value = |name: &str| header::find(raw, fields, name).map(|f| &raw[f.value.clone()]);
        let text = |name: &str| value(name).map(header::unfold_str);

        let ct = value("content-type").and_then(params::content_type);
        let (mut ctype, mut subtype, mut params) = match ct {
            Some(p) => (
                p.main.to_ascii_uppercase(),
                p.sub.to_ascii_uppercase(),
                p.params,
            ),
            None if in_digest => ("MESSAGE".into(), "RFC822".into(), Vec::new()),
            None => (
                "TEXT".into(),
                "PLAIN".into(),
                vec![("charset".into(), "us-ascii".into())],
            ),
        };
        // RFC 2046 §4.1.2: text/plain without charset is US-ASCII; saying so spares clients
        // from knowing the default.
        if ctype == "TEXT" && subtype == "PLAIN" && !params.iter().any(|(n, _)| n == "charset") {
            params.push(("charset".into(), "us-ascii".into()));
        }
        let cte = text("content-transfer-encoding")
            .map(|v| {
                v.split([' ', '\t', '(', ';'])
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .filter(|v| !v.is_empty());
        let disposition = value("content-disposition")
            .and_then(params::disposition)
            .map(|d| Disposition {
                kind: d.main,
                params: d.params,
            });
        let language: Vec<String> = text("content-language")
            .map(|v| {
                v.split(',')
                    .map(|s| strip_comments(s).trim().to_string())
                    .filter(|s| !s.is_empty())
                    .take(32)
                    .collect()
            })
            .unwrap_or_default();

        let mut part = Part {
            header: start as u64,
            body: body as u64,
            end: end as u64,
            id: text("content-id"),
            description: text("content-description"),
            cte,
            md5: text("content-md5"),
            disposition,
            language,
            location: text("content-location"),
            ..Part::default()
        };

        let too_deep = depth >= MAX_DEPTH || self.parts >= MAX_PARTS;
        if too_deep && (ctype == "MULTIPART" || ctype == "MESSAGE") {
            tracing::debug!(
                depth,
                parts = self.parts,
                "mime nesting bound reached; part kept opaque"
            );
        }
        if ctype == "MULTIPART" {
            let boundary = params
                .iter()
                .find(|(n, _)| n == "boundary")
                .map(|(_, v)| v.clone())
                .filter(|b| !b.is_empty());
            match boundary {
                Some(b) if !too_deep => {
                    let digest = subtype == "DIGEST";
                    part.children = self.split(body, end, b.as_bytes(), digest, depth + 1);
                }
                _ => {
                    // Without a usable boundary the body cannot be split: RFC 2045 §5.2 says a
                    // Content-Type that cannot be honoured is treated as the default.
                    if too_deep {
                        ctype = "APPLICATION".into();
                        subtype = "OCTET-STREAM".into();
                        params.clear();
                    } else {
                        ctype = "TEXT".into();
                        subtype = "PLAIN".into();
                        params = vec![("charset".into(), "us-ascii".into())];
                    }
                }
            }
        } else if ctype == "MESSAGE" && (subtype == "RFC822" || subtype == "GLOBAL") {
            if too_deep {
                ctype = "APPLICATION".into();
                subtype = "OCTET-STREAM".into();
            } else {
                part.message = Some(Box::new(self.message(body, end, depth + 1)));
                part.lines = count_lines(&raw[body..end]);
            }
        }
        if ctype == "TEXT" {
            part.lines = count_lines(&raw[body..end]);
        }
        part.ctype = ctype;
        part.subtype = subtype;
        part.params = params;
        part
    }

    /// Splits a multipart body into its parts. Each part runs from just after a delimiter line to
    /// just before the line break that precedes the next delimiter (that break belongs to the
    /// delimiter, RFC 2046 §5.1.1). Preamble and epilogue belong to no part.
    fn split(
        &mut self,
        start: usize,
        end: usize,
        boundary: &[u8],
        digest: bool,
        depth: usize,
    ) -> Vec<Part> {
        let raw = self.raw;
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        let mut open: Option<usize> = None;
        let mut pos = start;
        while pos < end {
            let line_end = match raw[pos..end].iter().position(|&b| b == b'\n') {
                Some(i) => pos + i + 1,
                None => end,
            };
            let line = &raw[pos..line_end];
            if let Some(kind) = delimiter(line, boundary) {
                if let Some(s) = open.take() {
                    let mut e = pos;
                    if e > start && raw[e - 1] == b'\n' {
                        e -= 1;
                        if e > start && raw[e - 1] == b'\r' {
                            e -= 1;
                        }
                    }
                    ranges.push((s, e.max(s)));
                }
                if kind == Delim::Close {
                    break;
                }
                open = Some(line_end);
                if self.parts + ranges.len() >= MAX_PARTS {
                    break;
                }
            }
            pos = line_end;
        }
        if let Some(s) = open {
            ranges.push((s, end));
        }
        if ranges.is_empty() {
            // No delimiter at all: the body is kept as one part without headers.
            return vec![self.entity(start, start, end, &[], digest, depth)];
        }
        ranges
            .into_iter()
            .map(|(s, e)| {
                let (fields, body) = header::scan(raw, s, e);
                self.entity(s, body, e, &fields, digest, depth)
            })
            .collect()
    }
}

#[derive(PartialEq)]
enum Delim {
    Open,
    Close,
}

fn delimiter(line: &[u8], boundary: &[u8]) -> Option<Delim> {
    let rest = line.strip_prefix(b"--")?.strip_prefix(boundary)?;
    // Whatever follows a close delimiter is transport padding or epilogue: tolerated.
    if rest.starts_with(b"--") {
        return Some(Delim::Close);
    }
    // A longer boundary that merely starts with this one (`--b` vs `--b-inner`) is not ours.
    if rest
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    {
        Some(Delim::Open)
    } else {
        None
    }
}

fn strip_comments(s: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

fn envelope(raw: &[u8], fields: &[Field]) -> Envelope {
    let text = |name: &str| {
        header::find(raw, fields, name).map(|f| header::unfold_str(&raw[f.value.clone()]))
    };
    let addrs = |name: &str| text(name).map(|v| parse_list(&v)).unwrap_or_default();
    Envelope {
        date: text("date"),
        subject: text("subject"),
        from: addrs("from"),
        sender: addrs("sender"),
        reply_to: addrs("reply-to"),
        to: addrs("to"),
        cc: addrs("cc"),
        bcc: addrs("bcc"),
        in_reply_to: text("in-reply-to"),
        message_id: text("message-id"),
        references: Some(text("references").unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every range lies inside the raw message, children inside their parent's body, in order;
    /// an encapsulated message spans exactly its part's body.
    fn check(p: &Part, lo: u64, hi: u64) -> Result<(), String> {
        if !(lo <= p.header && p.header <= p.body && p.body <= p.end && p.end <= hi) {
            return Err(format!(
                "bad ranges {}..{}..{} in {lo}..{hi}",
                p.header, p.body, p.end
            ));
        }
        let mut prev = p.body;
        for c in &p.children {
            if c.header < prev {
                return Err("children overlap".into());
            }
            check(c, p.body, p.end)?;
            prev = c.end;
        }
        if let Some(m) = &p.message {
            if m.header != p.body || m.end != p.end {
                return Err("message does not span its part body".into());
            }
            check(m, p.body, p.end)?;
        }
        Ok(())
    }

    fn piece() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"\r\n".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"--b\r\n".to_vec()),
            Just(b"--b--".to_vec()),
            Just(b"--bb\n".to_vec()),
            Just(b"Content-Type: multipart/mixed; boundary=b\r\n".to_vec()),
            Just(b"Content-Type: multipart/alternative; boundary=bb\n".to_vec()),
            Just(b"Content-Type: message/rfc822\r\n".to_vec()),
            Just(b"Content-Type: multipart/digest; boundary=b\r\n".to_vec()),
            Just(b"X: y\r\n".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..8),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, .. ProptestConfig::default() })]
        #[test]
        fn offsets_stay_inside(pieces in proptest::collection::vec(piece(), 0..60)) {
            let raw = pieces.concat();
            let root = build(&raw);
            prop_assert_eq!(root.header, 0);
            prop_assert_eq!(root.end, raw.len() as u64);
            if let Err(e) = check(&root, 0, raw.len() as u64) {
                return Err(TestCaseError::fail(e));
            }
        }
    }
}
