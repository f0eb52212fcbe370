//! The message as tests see it: an editable list of header fields (so `editheader` changes are
//! visible to later tests and can be written back out) over the original bytes, with RFC 2047
//! decoding, address and date extraction, and the MIME body parts `body` reads. mail-parser does
//! the decoding; the header list is ours because mail-parser's view cannot be edited.

use std::cell::OnceCell;

use chrono::{DateTime, FixedOffset};
use mail_parser::parsers::MessageStream;
use mail_parser::{Address, HeaderValue, MimeHeaders, PartType};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    pub name: String,
    /// Everything after the colon, folding included, without the final line end.
    pub raw: Vec<u8>,
}

/// A decoded MIME leaf, for the `body` test.
#[derive(Debug, Clone)]
pub(crate) struct BodyPart {
    pub main_type: String,
    pub sub_type: String,
    pub text: String,
    pub is_text: bool,
    pub is_html: bool,
}

#[derive(Debug)]
pub(crate) struct MessageView<'a> {
    raw: &'a [u8],
    fields: Vec<Field>,
    body_offset: usize,
    edited: bool,
    parts: OnceCell<Vec<BodyPart>>,
}

/// Which occurrence of a field a test looks at (RFC 5260 §6 `:index`, 1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Index {
    pub n: u64,
    pub last: bool,
}

impl<'a> MessageView<'a> {
    pub(crate) fn parse(raw: &'a [u8]) -> Self {
        let mut fields: Vec<Field> = Vec::new();
        let mut pos = 0;
        let mut body_offset = raw.len();
        while pos < raw.len() {
            let end = raw[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(raw.len(), |i| pos + i + 1);
            let line = &raw[pos..end];
            let content = trim_line_end(line);
            if content.is_empty() {
                body_offset = end;
                break;
            }
            if matches!(content[0], b' ' | b'\t') {
                if let Some(last) = fields.last_mut() {
                    last.raw.extend_from_slice(b"\r\n");
                    last.raw.extend_from_slice(content);
                }
            } else if let Some(colon) = content.iter().position(|&b| b == b':') {
                let name = String::from_utf8_lossy(&content[..colon])
                    .trim_end()
                    .to_string();
                if is_field_name(&name) {
                    fields.push(Field {
                        name,
                        raw: content[colon + 1..].to_vec(),
                    });
                }
            }
            pos = end;
        }
        MessageView {
            raw,
            fields,
            body_offset,
            edited: false,
            parts: OnceCell::new(),
        }
    }

    pub(crate) fn size(&self) -> usize {
        self.raw.len()
    }

    /// Fields with this name, narrowed to one occurrence when an index is given.
    pub(crate) fn named(&self, name: &str, index: Option<Index>) -> Vec<&Field> {
        let all: Vec<&Field> = self
            .fields
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case(name))
            .collect();
        select(all, index)
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.fields
            .iter()
            .any(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// Decoded value of the first field with this name.
    pub(crate) fn first_value(&self, name: &str) -> Option<String> {
        self.named(name, None).first().map(|f| decode(&f.raw))
    }

    pub(crate) fn body_raw(&self) -> &[u8] {
        self.raw.get(self.body_offset..).unwrap_or_default()
    }

    pub(crate) fn body_parts(&self) -> &[BodyPart] {
        self.parts.get_or_init(|| body_parts(self.raw))
    }

    pub(crate) fn add_field(&mut self, name: &str, value: &str, last: bool) {
        let field = Field {
            name: name.to_string(),
            raw: format!(" {}", encode_value(value)).into_bytes(),
        };
        if last {
            self.fields.push(field);
        } else {
            self.fields.insert(0, field);
        }
        self.edited = true;
    }

    /// Removes the fields `keep` rejects among those named `name` (after `index` narrowing).
    pub(crate) fn delete_fields(
        &mut self,
        name: &str,
        index: Option<Index>,
        mut doomed: impl FnMut(&Field) -> bool,
    ) {
        let positions: Vec<usize> = self
            .fields
            .iter()
            .enumerate()
            .filter(|(_, f)| f.name.eq_ignore_ascii_case(name))
            .map(|(i, _)| i)
            .collect();
        let positions = select(positions, index);
        let mut remove: Vec<usize> = positions
            .into_iter()
            .filter(|&i| doomed(&self.fields[i]))
            .collect();
        remove.sort_unstable();
        for i in remove.into_iter().rev() {
            self.fields.remove(i);
            self.edited = true;
        }
    }

    /// The whole message with the current header; None when nothing was edited.
    pub(crate) fn rebuilt(&self) -> Option<Vec<u8>> {
        if !self.edited {
            return None;
        }
        let mut out = Vec::with_capacity(self.raw.len() + 64);
        for f in &self.fields {
            out.extend_from_slice(f.name.as_bytes());
            out.push(b':');
            out.extend_from_slice(&f.raw);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.body_raw());
        Some(out)
    }
}

fn select<T>(mut all: Vec<T>, index: Option<Index>) -> Vec<T> {
    let Some(ix) = index else { return all };
    let n = usize::try_from(ix.n).unwrap_or(usize::MAX);
    if n == 0 || n > all.len() {
        return Vec::new();
    }
    let at = if ix.last { all.len() - n } else { n - 1 };
    vec![all.swap_remove(at)]
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// RFC 5322 §3.6.8 field-name: printable US-ASCII except colon.
pub(crate) fn is_field_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

/// Unfolded, RFC 2047-decoded, trimmed.
pub(crate) fn decode(raw: &[u8]) -> String {
    let mut buf = raw.to_vec();
    buf.extend_from_slice(b"\r\n");
    match MessageStream::new(&buf).parse_unstructured() {
        HeaderValue::Text(t) => t.trim().to_string(),
        _ => String::new(),
    }
}

/// The addr-specs in an address field; group members count, group names do not.
pub(crate) fn addresses(raw: &[u8]) -> Vec<String> {
    let mut buf = raw.to_vec();
    buf.extend_from_slice(b"\r\n");
    let addrs: Vec<String> = match MessageStream::new(&buf).parse_address() {
        HeaderValue::Address(Address::List(list)) => list
            .iter()
            .filter_map(|a| a.address.as_deref().map(str::to_string))
            .collect(),
        HeaderValue::Address(Address::Group(groups)) => groups
            .iter()
            .flat_map(|g| g.addresses.iter())
            .filter_map(|a| a.address.as_deref().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    addrs
        .into_iter()
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect()
}

/// Date of a date-bearing field; for Received it is what follows the last ';' (RFC 5260 §4).
pub(crate) fn date(name: &str, raw: &[u8]) -> Option<DateTime<FixedOffset>> {
    let raw = if name.eq_ignore_ascii_case("received") {
        let semi = raw.iter().rposition(|&b| b == b';')?;
        &raw[semi + 1..]
    } else {
        raw
    };
    let mut buf = raw.to_vec();
    buf.extend_from_slice(b"\r\n");
    let HeaderValue::DateTime(dt) = MessageStream::new(&buf).parse_date() else {
        return None;
    };
    if !dt.is_valid() {
        return None;
    }
    let offset = i32::from(dt.tz_hour) * 3600 + i32::from(dt.tz_minute) * 60;
    let offset = FixedOffset::east_opt(if dt.tz_before_gmt { -offset } else { offset })?;
    Some(DateTime::from_timestamp(dt.to_timestamp(), 0)?.with_timezone(&offset))
}

/// Header fields that contain addresses; the `address` test is restricted to these
/// (RFC 5228 §5.1) and is simply false for any other field.
pub(crate) fn is_address_field(name: &str) -> bool {
    const FIELDS: &[&str] = &[
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "bcc",
        "resent-from",
        "resent-sender",
        "resent-to",
        "resent-cc",
        "resent-bcc",
        "resent-reply-to",
        "return-path",
        "delivered-to",
        "envelope-to",
        "x-original-to",
        "errors-to",
        "disposition-notification-to",
        "mail-followup-to",
        "mail-reply-to",
    ];
    FIELDS.iter().any(|f| f.eq_ignore_ascii_case(name))
}

/// RFC 2047 `B` encoding for header field values that are not plain ASCII (encoded words of at
/// most 75 characters, folded); line breaks cannot survive inside a field value, so they become
/// spaces. Also used by the server for the header fields of the replies it writes.
pub fn encode_value(value: &str) -> String {
    let value: String = value
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect();
    if value.is_ascii() {
        return value;
    }
    // Encoded words are at most 75 characters: 45 input bytes become 60 base64 characters.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in value.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(format!("=?utf-8?B?{}?=", base64(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?utf-8?B?{}?=", base64(chunk.as_bytes())));
    }
    words.join("\r\n ")
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The text before the first boundary line and after the closing one.
fn prologue_epilogue(body: &[u8], boundary: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut prologue = Vec::new();
    let mut epilogue = Vec::new();
    let mut state = 0; // 0: prologue, 1: parts, 2: epilogue
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\r', '\n']).as_bytes();
        let delimiter = bare.len() >= boundary.len() + 2
            && bare.starts_with(b"--")
            && &bare[2..2 + boundary.len()] == boundary;
        match state {
            0 if delimiter => state = 1,
            0 => prologue.push(line),
            1 if delimiter && bare[2 + boundary.len()..].starts_with(b"--") => state = 2,
            1 => {}
            _ => epilogue.push(line),
        }
    }
    let mut out = prologue.concat();
    out.push_str(&epilogue.concat());
    out
}

fn body_parts(raw: &[u8]) -> Vec<BodyPart> {
    let Some(msg) = mail_parser::MessageParser::default().parse(raw) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for part in &msg.parts {
        let (main_type, sub_type) = match part.content_type() {
            Some(ct) => (
                ct.ctype().to_ascii_lowercase(),
                ct.subtype().unwrap_or_default().to_ascii_lowercase(),
            ),
            None => ("text".to_string(), "plain".to_string()),
        };
        let (text, is_text, is_html) = match &part.body {
            PartType::Text(t) => (t.to_string(), true, false),
            PartType::Html(h) => (h.to_string(), true, true),
            PartType::Binary(b) | PartType::InlineBinary(b) => {
                (String::from_utf8_lossy(b).into_owned(), false, false)
            }
            // RFC 5173 §5.2: a multipart entity's own text is its prologue and epilogue.
            PartType::Multipart(_) => {
                let boundary = part
                    .content_type()
                    .and_then(|ct| ct.attribute("boundary"))
                    .unwrap_or_default();
                let body = raw
                    .get(part.offset_body as usize..part.offset_end as usize)
                    .unwrap_or_default();
                (prologue_epilogue(body, boundary.as_bytes()), false, false)
            }
            // An attached message's parts are tested on their own.
            PartType::Message(_) => continue,
        };
        out.push(BodyPart {
            main_type,
            sub_type,
            text,
            is_text,
            is_html,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: \"Joe\" <joe@example.com>\r\nTo: team: a@x.org, b@y.org;, c@z.org\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n long\r\nDate: Tue, 1 Apr 1997 09:06:31 -0800\r\nX-A: 1\r\nX-A: 2\r\n\r\nbody\r\n";

    #[test]
    fn fields_decoding_addresses() {
        let m = MessageView::parse(MSG);
        assert_eq!(m.first_value("subject").unwrap(), "café long");
        let to = m.named("to", None);
        assert_eq!(addresses(&to[0].raw), vec!["a@x.org", "b@y.org", "c@z.org"]);
        assert_eq!(m.body_raw(), b"body\r\n");
        let d = date("Date", &m.named("date", None)[0].raw).unwrap();
        assert_eq!(d.to_rfc3339(), "1997-04-01T09:06:31-08:00");
        let last = m.named("x-a", Some(Index { n: 1, last: true }));
        assert_eq!(decode(&last[0].raw), "2");
        assert!(m.named("x-a", Some(Index { n: 3, last: false })).is_empty());
    }

    #[test]
    fn editing_and_rebuild() {
        let mut m = MessageView::parse(b"A: 1\nB: 2\n\nbody");
        assert!(m.rebuilt().is_none());
        m.add_field("X-New", "caf\u{e9}", false);
        m.delete_fields("b", None, |_| true);
        let out = String::from_utf8(m.rebuilt().unwrap()).unwrap();
        assert_eq!(out, "X-New: =?utf-8?B?Y2Fmw6k=?=\r\nA: 1\r\n\r\nbody");
        assert_eq!(m.first_value("x-new").unwrap(), "café");
    }

    #[test]
    fn body_parts_of_multipart() {
        let raw = b"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain text\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>html <b>text</b></p>\r\n--b--\r\n";
        let m = MessageView::parse(raw);
        let parts = m.body_parts();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].main_type, "multipart");
        assert!(!parts[0].is_text);
        assert_eq!(parts[2].sub_type, "html");
        assert!(parts[2].is_html);
    }

    #[test]
    fn multipart_prologue_and_epilogue() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\nbefore\r\n--b\r\n\r\ninside\r\n--b--\r\nafter\r\n";
        let m = MessageView::parse(raw);
        let container = &m.body_parts()[0];
        assert!(container.text.contains("before"));
        assert!(container.text.contains("after"));
        assert!(!container.text.contains("inside"));
    }
}
