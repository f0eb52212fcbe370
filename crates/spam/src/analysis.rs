//! Parse-once analysis of a message for scoring: everything the rules and the tokenizer look at,
//! extracted in one pass from the raw bytes (through `mail_parser`) into owned, bounded data.
//! Nothing here panics on hostile input; every collection and text buffer has a cap.

use std::net::IpAddr;

use mail_parser::{Host, MessageParser, MimeHeaders, PartType};

use crate::html;

/// Bytes of body text (plain + HTML converted) kept for tokens and heuristics.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Bytes of the raw message parsed; the rest of a larger message is not looked at (as
/// SpamAssassin skips large messages, this bounds the time one message can take).
pub const MAX_SCAN_BYTES: usize = 2 * 1024 * 1024;
/// Bytes of any single HTML body looked at.
const MAX_HTML_INPUT: usize = 256 * 1024;
/// URLs kept per message.
const MAX_URLS: usize = 64;
/// Attachments looked at per message.
const MAX_ATTACHMENTS: usize = 64;

/// A link found in the message, with the text it displays (HTML anchors) or the URL itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlRef {
    /// Lowercased host name of the link target (no port, no trailing dot).
    pub host: String,
    /// For HTML anchors: the text shown to the reader.
    pub display: Option<String>,
}

/// One Received header's hosts (relays' names lowercased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// The sending host: its verified reverse name if recorded, else the name it gave.
    pub from: Option<String>,
    pub from_ip: Option<IpAddr>,
    pub by: Option<String>,
}

/// Received headers looked at per message.
const MAX_HOPS: usize = 10;
/// Header names kept per message.
const MAX_HEADER_NAMES: usize = 64;

/// An attachment (any non-body part): its file name and MIME type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub file_name: Option<String>,
    /// `type/subtype`, lowercased.
    pub content_type: String,
}

/// Everything about one message that the rules and the tokenizer use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Analysis {
    /// False when the bytes could not be parsed as a message at all.
    pub parsed: bool,
    pub subject: Option<String>,
    /// The Subject header as it appears on the wire (encoded words not decoded).
    pub subject_raw: Option<String>,
    pub from_name: Option<String>,
    /// Lowercased address of the first From mailbox.
    pub from_address: Option<String>,
    /// Number of mailboxes in From.
    pub from_count: usize,
    pub reply_to_address: Option<String>,
    pub has_message_id: bool,
    pub message_id: Option<String>,
    pub has_date: bool,
    pub has_to: bool,
    pub mailer: Option<String>,
    pub list_id: Option<String>,
    pub received_count: usize,
    /// The first (most recent) Received headers, at most 10.
    pub hops: Vec<Hop>,
    /// Distinct header field names, lowercased, in order (at most 64).
    pub header_names: Vec<String>,
    /// The top-level `type/subtype`, lowercased.
    pub content_type: Option<String>,
    /// The top-level (or first text part's) charset, lowercased.
    pub charset: Option<String>,
    /// Plain text bodies followed by the visible text of HTML bodies, capped at [`MAX_TEXT_BYTES`].
    pub text: String,
    pub has_text_part: bool,
    pub has_html_part: bool,
    /// Non-space characters of HTML text hidden from the reader / visible to the reader.
    pub html_hidden_chars: usize,
    pub html_visible_chars: usize,
    pub urls: Vec<UrlRef>,
    pub attachments: Vec<Attachment>,
    /// A body part whose transfer encoding could not be decoded.
    pub encoding_problem: bool,
    /// Size of the raw message in bytes.
    pub size: usize,
}

impl Analysis {
    /// Parses `raw` (a full RFC 5322 message; only its first [`MAX_SCAN_BYTES`] are read) and
    /// extracts what scoring needs.
    pub fn parse(raw: &[u8]) -> Analysis {
        let mut a = Analysis {
            size: raw.len(),
            ..Analysis::default()
        };
        let raw = raw.get(..MAX_SCAN_BYTES).unwrap_or(raw);
        let Some(msg) = MessageParser::default().parse(raw) else {
            return a;
        };
        a.parsed = true;
        a.subject = msg.subject().map(str::to_string);
        a.subject_raw = msg.header_raw("Subject").map(|s| s.trim().to_string());
        if let Some(from) = msg.from() {
            a.from_count = from.iter().count();
            if let Some(first) = from.first() {
                a.from_name = first.name().map(str::to_string);
                a.from_address = first.address().map(str::to_ascii_lowercase);
            }
        }
        a.reply_to_address = msg
            .reply_to()
            .and_then(|r| r.first())
            .and_then(|r| r.address())
            .map(str::to_ascii_lowercase);
        a.message_id = msg.message_id().map(str::to_string);
        a.has_message_id = a.message_id.as_deref().is_some_and(|m| !m.is_empty());
        a.has_date = msg.date().is_some();
        a.has_to = msg.to().is_some() || msg.cc().is_some();
        a.mailer = msg
            .header_raw("X-Mailer")
            .or_else(|| msg.header_raw("User-Agent"))
            .map(|m| m.trim().to_string());
        a.list_id = msg.header_raw("List-Id").map(|m| m.trim().to_string());
        a.received_count = msg.received_all().count();
        let host = |h: &Host<'_>| match h {
            Host::Name(n) => n.trim_end_matches('.').to_ascii_lowercase(),
            Host::IpAddr(ip) => ip.to_string(),
        };
        for r in msg.received_all().take(MAX_HOPS) {
            a.hops.push(Hop {
                from: r
                    .from_iprev
                    .as_deref()
                    .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
                    .or_else(|| r.from.as_ref().map(host)),
                from_ip: r.from_ip,
                by: r.by.as_ref().map(host),
            });
        }
        for h in msg.headers() {
            if a.header_names.len() >= MAX_HEADER_NAMES {
                break;
            }
            let name = h.name().to_ascii_lowercase();
            if !a.header_names.contains(&name) {
                a.header_names.push(name);
            }
        }
        let root = msg.root_part();
        if let Some(ct) = root.content_type() {
            a.content_type = Some(
                match &ct.c_subtype {
                    Some(sub) => format!("{}/{}", ct.c_type, sub),
                    None => ct.c_type.to_string(),
                }
                .to_ascii_lowercase(),
            );
        }
        a.charset = root
            .content_type()
            .and_then(|ct| ct.attribute("charset"))
            .or_else(|| {
                msg.text_bodies()
                    .next()
                    .and_then(|p| p.content_type())
                    .and_then(|ct| ct.attribute("charset"))
            })
            .map(|c| c.trim().to_ascii_lowercase());

        let mut body_ids: Vec<u32> = msg
            .text_body
            .iter()
            .chain(&msg.html_body)
            .copied()
            .collect();
        body_ids.sort_unstable();
        body_ids.dedup();
        let mut html_text = String::new();
        for id in body_ids {
            let Some(part) = msg.parts.get(id as usize) else {
                continue;
            };
            a.encoding_problem |= part.is_encoding_problem;
            match &part.body {
                PartType::Text(text) => {
                    a.has_text_part = true;
                    if a.text.len() < MAX_TEXT_BYTES {
                        push_bounded(&mut a.text, text, MAX_TEXT_BYTES);
                        a.text.push('\n');
                        collect_text_urls(truncate_str(text, MAX_TEXT_BYTES), &mut a.urls);
                    }
                }
                PartType::Html(source) => {
                    a.has_html_part = true;
                    let source = truncate_str(source, MAX_HTML_INPUT);
                    let converted = html::convert(source, MAX_TEXT_BYTES);
                    a.html_hidden_chars += converted.hidden_chars;
                    a.html_visible_chars += converted.visible_chars;
                    push_bounded(&mut html_text, &converted.visible, MAX_TEXT_BYTES);
                    html_text.push('\n');
                    for link in converted.links {
                        if a.urls.len() >= MAX_URLS {
                            break;
                        }
                        if let Some(host) = url_host(&link.href) {
                            a.urls.push(UrlRef {
                                host,
                                display: Some(link.text),
                            });
                        }
                    }
                    collect_text_urls(&converted.visible, &mut a.urls);
                }
                _ => {}
            }
        }
        // With both alternatives present the text part already says it; add HTML text only when
        // it is all there is, or there is room.
        if !html_text.is_empty() && (!a.has_text_part || a.text.len() < MAX_TEXT_BYTES / 2) {
            push_bounded(&mut a.text, &html_text, MAX_TEXT_BYTES);
        }
        for part in msg.attachments().take(MAX_ATTACHMENTS) {
            let content_type = part
                .content_type()
                .map(|ct| match &ct.c_subtype {
                    Some(sub) => format!("{}/{}", ct.c_type, sub),
                    None => ct.c_type.to_string(),
                })
                .unwrap_or_else(|| "application/octet-stream".to_string())
                .to_ascii_lowercase();
            if matches!(part.body, PartType::Message(_)) {
                continue;
            }
            a.attachments.push(Attachment {
                file_name: part.attachment_name().map(str::to_string),
                content_type,
            });
        }
        a
    }

    /// Domain of the From address, lowercased.
    pub fn from_domain(&self) -> Option<&str> {
        self.from_address.as_deref().and_then(domain_of)
    }

    /// Distinct registered domains of the links in the body, in order of appearance.
    pub fn url_domains(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for url in &self.urls {
            let d = registered_domain(&url.host).to_string();
            if !d.is_empty() && !out.contains(&d) {
                out.push(d);
            }
        }
        out
    }
}

fn push_bounded(dst: &mut String, src: &str, max: usize) {
    let room = max.saturating_sub(dst.len());
    dst.push_str(truncate_str(src, room));
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
pub fn truncate_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The domain part of an address, if it has one.
pub fn domain_of(address: &str) -> Option<&str> {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('>').trim_end_matches('.'))
        .filter(|d| !d.is_empty())
}

/// Host of an absolute http(s) URL (or a bare `www.` reference), lowercased, without port.
pub fn url_host(url: &str) -> Option<String> {
    let url = url.trim();
    let lower_prefix: String = url.chars().take(8).collect::<String>().to_ascii_lowercase();
    let rest = if lower_prefix.starts_with("http://") {
        &url[7..]
    } else if lower_prefix.starts_with("https://") {
        &url[8..]
    } else if lower_prefix.starts_with("www.") {
        url
    } else {
        return None;
    };
    let end = rest
        .find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>') || c.is_whitespace())
        .unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host.starts_with('[') {
        host.split(']').next().map(|h| h.trim_start_matches('['))?
    } else {
        host.split(':').next()?
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let valid = !host.is_empty()
        && host.len() <= 253
        && host.contains('.')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
    valid.then_some(host)
}

fn collect_text_urls(text: &str, urls: &mut Vec<UrlRef>) {
    let bytes = text.as_bytes();
    let mut i = 0usize;
    while i + 4 <= bytes.len() && urls.len() < MAX_URLS {
        let c = bytes[i];
        let starts = (c == b'h' || c == b'H' || c == b'w' || c == b'W')
            && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())
            && text.is_char_boundary(i);
        if starts && let Some(host) = url_host(&text[i..]) {
            urls.push(UrlRef {
                host,
                display: None,
            });
            // Skip past the URL's host.
            i += 4;
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            continue;
        }
        i += 1;
    }
}

/// Second-level labels under which registrations happen at the third level (a short list of
/// the common ones; not the full Public Suffix List).
const MULTI_LABEL_SUFFIXES: &[&str] = &[
    "co.uk",
    "org.uk",
    "ac.uk",
    "gov.uk",
    "me.uk",
    "ltd.uk",
    "plc.uk",
    "net.uk",
    "com.au",
    "net.au",
    "org.au",
    "edu.au",
    "gov.au",
    "co.nz",
    "org.nz",
    "net.nz",
    "co.jp",
    "ne.jp",
    "or.jp",
    "ac.jp",
    "co.kr",
    "or.kr",
    "com.br",
    "net.br",
    "org.br",
    "com.cn",
    "net.cn",
    "org.cn",
    "com.tw",
    "com.hk",
    "com.sg",
    "com.my",
    "co.in",
    "net.in",
    "org.in",
    "co.za",
    "org.za",
    "com.mx",
    "com.ar",
    "com.tr",
    "com.ru",
    "co.il",
    "co.id",
    "com.ua",
    "com.pl",
    "com.es",
    "co.th",
    "com.vn",
    "com.ph",
    "com.pk",
    "com.ng",
    "com.eg",
    "com.sa",
    "blogspot.com",
    "github.io",
    "herokuapp.com",
    "appspot.com",
    "azurewebsites.net",
    "cloudfront.net",
    "amazonaws.com",
    "web.app",
    "firebaseapp.com",
    "netlify.app",
    "vercel.app",
    "pages.dev",
    "workers.dev",
];

/// The registrable domain of `host` (e.g. `mail.example.co.uk` → `example.co.uk`), using a short
/// built-in suffix list; IP literals are returned unchanged.
pub fn registered_domain(host: &str) -> &str {
    let host = host.trim_end_matches('.');
    if host.parse::<std::net::IpAddr>().is_ok() {
        return host;
    }
    // Start offsets of every label: host[start..] is a suffix.
    let mut starts: Vec<usize> = vec![0];
    starts.extend(host.match_indices('.').map(|(i, _)| i + 1));
    let n = starts.len();
    if n <= 2 {
        return host;
    }
    let last_two = &host[starts[n - 2]..];
    let keep = if MULTI_LABEL_SUFFIXES.contains(&last_two) {
        3
    } else {
        2
    };
    if n <= keep {
        host
    } else {
        &host[starts[n - keep]..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_domains() {
        assert_eq!(registered_domain("a.b.example.com"), "example.com");
        assert_eq!(registered_domain("example.com"), "example.com");
        assert_eq!(registered_domain("mail.example.co.uk"), "example.co.uk");
        assert_eq!(registered_domain("example.co.uk"), "example.co.uk");
        assert_eq!(registered_domain("192.0.2.1"), "192.0.2.1");
        assert_eq!(registered_domain("localhost"), "localhost");
    }

    #[test]
    fn url_hosts() {
        assert_eq!(
            url_host("https://User@Ex.COM:8080/x").as_deref(),
            Some("ex.com")
        );
        assert_eq!(
            url_host("www.example.org/path").as_deref(),
            Some("www.example.org")
        );
        assert_eq!(url_host("mailto:x@y.z"), None);
        assert_eq!(url_host("http://nodot/"), None);
    }

    #[test]
    fn parses_basic_message() {
        let raw = b"From: \"Alice\" <Alice@Example.COM>\r\nTo: bob@example.org\r\nSubject: Hi there\r\nMessage-ID: <1@x>\r\nDate: Mon, 7 Dec 2026 01:00:00 +0000\r\n\r\nSee https://www.example.net/page now\r\n";
        let a = Analysis::parse(raw);
        assert!(a.parsed);
        assert_eq!(a.from_address.as_deref(), Some("alice@example.com"));
        assert_eq!(a.from_domain(), Some("example.com"));
        assert!(a.has_message_id && a.has_date && a.has_to);
        assert_eq!(a.url_domains(), vec!["example.net".to_string()]);
        assert!(a.text.contains("See https"));
    }
}
