//! Decoded text for search and preview (RFC 8970), and the sent date. Decoding (RFC 2047 words,
//! transfer encodings, charsets, HTML to text) is mail-parser's job; this module only decides
//! what goes where and bounds it.

use mail_parser::{Address, Message, MessageParser, PartType};

use crate::SearchText;

/// Bound on the body text kept for the full-text index.
const MAX_BODY_TEXT: usize = 2 * 1024 * 1024;
/// Bound on nested messages walked for text.
const MAX_TEXT_DEPTH: usize = 20;
/// RFC 8970: a preview is at most 256 characters.
const PREVIEW_CHARS: usize = 256;

pub(crate) struct Extracted {
    pub search: SearchText,
    pub sent_date: Option<i64>,
    pub preview: String,
}

pub(crate) fn extract(raw: &[u8]) -> Extracted {
    let Some(msg) = MessageParser::default().parse(raw) else {
        return Extracted {
            search: SearchText::default(),
            sent_date: None,
            preview: String::new(),
        };
    };
    let mut body = String::new();
    collect_body(&msg, &mut body, 0);
    let preview = make_preview(&msg, &body);
    Extracted {
        search: SearchText {
            subject: msg.subject().unwrap_or("").to_string(),
            from: addresses(msg.from()),
            to: addresses(msg.to()),
            cc: addresses(msg.cc()),
            bcc: addresses(msg.bcc()),
            body,
        },
        sent_date: msg
            .date()
            .filter(|d| d.is_valid())
            .map(|d| d.to_timestamp()),
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

fn push_bounded(out: &mut String, s: &str) {
    if out.len() >= MAX_BODY_TEXT {
        return;
    }
    if !out.is_empty() {
        out.push('\n');
    }
    let room = MAX_BODY_TEXT.saturating_sub(out.len());
    if s.len() <= room {
        out.push_str(s);
    } else {
        let mut cut = room;
        while cut > 0 && !s.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push_str(&s[..cut]);
    }
}

fn collect_body(msg: &Message<'_>, out: &mut String, depth: usize) {
    for part in &msg.parts {
        if out.len() >= MAX_BODY_TEXT {
            return;
        }
        match &part.body {
            PartType::Text(t) => push_bounded(out, t),
            PartType::Html(h) => push_bounded(out, &mail_parser::decoders::html::html_to_text(h)),
            PartType::Message(m) if depth < MAX_TEXT_DEPTH => {
                if let Some(s) = m.subject() {
                    push_bounded(out, s);
                }
                collect_body(m, out, depth + 1);
            }
            _ => {}
        }
    }
}

fn make_preview(msg: &Message<'_>, all: &str) -> String {
    // Prefer the first text body the message shows; fall back to whatever text was found.
    let first = msg
        .body_text(0)
        .map(|c| c.into_owned())
        .unwrap_or_else(|| all.to_string());
    let mut out = String::new();
    let mut count = 0;
    let mut last_space = true;
    for c in first.chars() {
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
