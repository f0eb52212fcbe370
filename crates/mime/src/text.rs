//! Decoded text for search and preview (RFC 8970), and the sent date, taken from the part tree
//! that `structure` already built: only text parts are decoded (attachments are never touched),
//! and the amount of text is bounded. Header decoding (RFC 2047, address syntax, dates), charset
//! conversion and HTML reduction are mail-parser's; this module decides what goes where.

use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::decoders::html::html_to_text;
use mail_parser::parsers::MessageStream;
use mail_parser::{Address, HeaderValue, Message, MessageParser};

use crate::SearchText;
use crate::section::{decode_base64, decode_qp};
use crate::structure::Part;

/// Bound on the body text kept for the full-text index.
const MAX_BODY_TEXT: usize = 2 * 1024 * 1024;
/// Bound on the header text kept for TEXT searches.
const MAX_HEADER_TEXT: usize = 256 * 1024;
/// Bound on the encoded bytes of one part that are decoded for text.
const MAX_PART_INPUT: usize = 4 * 1024 * 1024;
/// RFC 8970: a preview is at most 256 characters.
const PREVIEW_CHARS: usize = 256;

pub(crate) struct Extracted {
    pub search: SearchText,
    pub sent_date: Option<i64>,
    pub preview: String,
}

pub(crate) fn extract(raw: &[u8], root: &Part) -> Extracted {
    let parser = MessageParser::default();
    let header = raw.get(root.header_range()).unwrap_or_default();
    let mut search = SearchText::default();
    let mut sent_date = None;
    if let Some(h) = parser.parse_headers(header) {
        search.subject = h.subject().unwrap_or("").to_string();
        search.from = addresses(h.from());
        search.to = addresses(h.to());
        search.cc = addresses(h.cc());
        search.bcc = addresses(h.bcc());
        search.headers = header_text(header, &h);
        sent_date = h.date().filter(|d| d.is_valid()).map(|d| d.to_timestamp());
    }
    let mut body = String::new();
    let mut preview_source: Option<String> = None;
    let mut html_preview: Option<String> = None;
    collect(
        raw,
        root,
        &parser,
        &mut body,
        &mut preview_source,
        &mut html_preview,
    );
    let preview = make_preview(preview_source.or(html_preview).as_deref().unwrap_or(""));
    search.body = body;
    Extracted {
        search,
        sent_date,
        preview,
    }
}

fn addresses(a: Option<&Address<'_>>) -> String {
    let mut out = String::new();
    let Some(a) = a else { return out };
    let mut push = |s: &str| {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(s);
    };
    if let Address::Group(groups) = a {
        for g in groups {
            if let Some(n) = &g.name {
                push(n);
            }
        }
    }
    for addr in a.iter() {
        if let Some(n) = &addr.name {
            push(n);
        }
        if let Some(e) = &addr.address {
            push(e);
        }
    }
    out
}

/// Each header field as `Name: value` on its own line, unfolded; a value with RFC 2047 encoded
/// words is followed by its decoded text, so both spellings can be searched.
fn header_text(header: &[u8], h: &Message<'_>) -> String {
    let mut out = String::new();
    for field in h.headers() {
        let start = usize::try_from(field.offset_start).unwrap_or(usize::MAX);
        let end = usize::try_from(field.offset_end).unwrap_or(usize::MAX);
        let raw = String::from_utf8_lossy(header.get(start..end).unwrap_or_default());
        let mut line = format!("{}:", field.name.as_str());
        // Unfolding removes the line breaks and keeps the whitespace (RFC 5322 §2.2.3).
        line.extend(raw.chars().filter(|c| *c != '\r' && *c != '\n'));
        let line_end = line.trim_end().len();
        line.truncate(line_end);
        if raw.contains("=?") {
            // Decoded as unstructured text whatever the field: the words are what is searched.
            let mut value = raw.as_bytes().to_vec();
            if !value.ends_with(b"\n") {
                value.push(b'\n');
            }
            if let HeaderValue::Text(decoded) = MessageStream::new(&value).parse_unstructured() {
                line.push(' ');
                line.push_str(decoded.trim());
            }
        }
        push_bounded_to(&mut out, &line, MAX_HEADER_TEXT);
    }
    out
}

fn push_bounded(out: &mut String, s: &str) {
    push_bounded_to(out, s, MAX_BODY_TEXT);
}

/// Appends `s` on a new line, cut (on a character boundary) so `out` stays within `max` bytes.
fn push_bounded_to(out: &mut String, s: &str, max: usize) {
    if out.len() >= max || s.is_empty() {
        return;
    }
    if !out.is_empty() {
        out.push('\n');
    }
    let room = max.saturating_sub(out.len());
    let mut cut = s.len().min(room);
    while cut > 0 && !s.is_char_boundary(cut) {
        cut -= 1;
    }
    out.push_str(&s[..cut]);
}

/// The part's body as text: transfer encoding undone, charset converted to UTF-8.
fn part_text(raw: &[u8], p: &Part) -> String {
    let r = p.body_range();
    let end = r.end.min(r.start.saturating_add(MAX_PART_INPUT));
    let body = raw.get(r.start..end).unwrap_or_default();
    let cte = p.cte.as_deref().unwrap_or("").to_ascii_lowercase();
    let decoded = match cte.as_str() {
        "base64" => decode_base64(body),
        "quoted-printable" => decode_qp(body),
        _ => body.to_vec(),
    };
    let charset = p
        .params
        .iter()
        .find(|(n, _)| n == "charset")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    // Undeclared or "us-ascii" text that is in fact valid UTF-8 is common; read it as UTF-8.
    let asciiish = charset.is_empty()
        || charset.eq_ignore_ascii_case("us-ascii")
        || charset.eq_ignore_ascii_case("ascii")
        || charset.eq_ignore_ascii_case("utf-8")
        || charset.eq_ignore_ascii_case("utf8");
    let decoded = if asciiish {
        match String::from_utf8(decoded) {
            Ok(s) => return s,
            Err(e) => e.into_bytes(),
        }
    } else {
        decoded
    };
    match charset_decoder(charset.as_bytes()) {
        Some(decode) => decode(&decoded),
        None => String::from_utf8_lossy(&decoded).into_owned(),
    }
}

fn collect(
    raw: &[u8],
    p: &Part,
    parser: &MessageParser,
    out: &mut String,
    preview: &mut Option<String>,
    html_preview: &mut Option<String>,
) {
    if out.len() >= MAX_BODY_TEXT {
        return;
    }
    if p.is_multipart() {
        for c in &p.children {
            collect(raw, c, parser, out, preview, html_preview);
        }
        return;
    }
    if let Some(m) = &p.message {
        // The encapsulated message's header is part of this message's body text.
        if let Some(h) = raw
            .get(m.header_range())
            .and_then(|h| parser.parse_headers(h))
        {
            if let Some(s) = h.subject() {
                push_bounded(out, s);
            }
            push_bounded(out, &addresses(h.from()));
        }
        // A forwarded message's text is not the preview of the message carrying it.
        let (mut no_preview, mut no_html) = (Some(String::new()), Some(String::new()));
        collect(raw, m, parser, out, &mut no_preview, &mut no_html);
        return;
    }
    if p.ctype != "TEXT" {
        return;
    }
    let attachment = p
        .disposition
        .as_ref()
        .is_some_and(|d| d.kind == "attachment");
    let text = part_text(raw, p);
    if p.subtype == "HTML" {
        let t = html_to_text(&text);
        if html_preview.is_none() && !attachment {
            *html_preview = Some(t.clone());
        }
        push_bounded(out, &t);
    } else {
        if preview.is_none() && !attachment && p.subtype == "PLAIN" {
            *preview = Some(text.clone());
        }
        push_bounded(out, &text);
    }
}

fn make_preview(text: &str) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut last_space = true;
    for c in text.chars() {
        if count >= PREVIEW_CHARS {
            break;
        }
        if c.is_whitespace() || c.is_control() {
            if !last_space {
                out.push(' ');
                count += 1;
                last_space = true;
            }
            continue;
        }
        out.push(c);
        count += 1;
        last_space = false;
    }
    out.trim_end().to_string()
}
