//! A small, bounded HTML-to-text converter for scoring: the visible text, the text a reader
//! cannot see (hidden by `display:none`, `visibility:hidden`, zero/one-pixel fonts), and every
//! link with the text it displays. It is not a conforming HTML parser; it never panics, runs in
//! one pass over the input, and caps its nesting stack and output.

/// One `<a href>` and the text shown for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub href: String,
    pub text: String,
}

/// What [`convert`] found in one HTML body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HtmlText {
    /// Text a reader sees (tags stripped, entities decoded, runs of white space collapsed).
    pub visible: String,
    /// Count of non-space characters that are present but hidden from the reader.
    pub hidden_chars: usize,
    /// Count of non-space characters that are visible.
    pub visible_chars: usize,
    pub links: Vec<Link>,
}

const MAX_STACK: usize = 256;
const MAX_LINKS: usize = 256;
const MAX_LINK_TEXT: usize = 256;

/// Converts `html` to text; stops producing text after `max_text` bytes of output.
pub fn convert(html: &str, max_text: usize) -> HtmlText {
    let mut out = HtmlText::default();
    // Stack of open elements: (name, hidden).
    let mut stack: Vec<(String, bool)> = Vec::new();
    let mut hidden_depth = 0usize;
    let mut skip_until: Option<&'static str> = None; // inside <script>/<style>/<head>'s <title>…
    let mut open_link: Option<Link> = None;
    let bytes = html.as_bytes();
    let mut i = 0usize;
    let mut text_start = 0usize;
    while i < bytes.len() {
        if bytes[i] != b'<' {
            i += 1;
            continue;
        }
        // Flush text before the tag.
        if skip_until.is_none() {
            push_text(
                &html[text_start..i],
                hidden_depth > 0,
                &mut out,
                &mut open_link,
                max_text,
            );
        }
        let Some(end_rel) = html[i..].find('>') else {
            text_start = bytes.len();
            break;
        };
        let tag = &html[i + 1..i + end_rel];
        i += end_rel + 1;
        text_start = i;
        if tag.starts_with('!') || tag.starts_with('?') {
            continue; // comment / doctype / processing instruction (comments with '>' inside leak text; harmless)
        }
        let closing = tag.starts_with('/');
        let body = tag.trim_start_matches('/');
        let name_end = body
            .find(|c: char| c.is_ascii_whitespace() || c == '/')
            .unwrap_or(body.len());
        let name = body[..name_end].to_ascii_lowercase();
        if let Some(until) = skip_until {
            if closing && name == until {
                skip_until = None;
            }
            continue;
        }
        if !closing {
            match name.as_str() {
                "script" => {
                    skip_until = Some("script");
                    continue;
                }
                "style" => {
                    skip_until = Some("style");
                    continue;
                }
                "title" => {
                    skip_until = Some("title");
                    continue;
                }
                _ => {}
            }
        }
        if is_block(&name) {
            push_text(" ", false, &mut out, &mut open_link, max_text);
        }
        if closing {
            if name == "a"
                && let Some(link) = open_link.take()
                && out.links.len() < MAX_LINKS
            {
                out.links.push(link);
            }
            if let Some(pos) = stack.iter().rposition(|(n, _)| *n == name) {
                for (_, hidden) in stack.drain(pos..) {
                    if hidden {
                        hidden_depth = hidden_depth.saturating_sub(1);
                    }
                }
            }
            continue;
        }
        let attrs = &body[name_end..];
        if name == "a" {
            if let Some(link) = open_link.take()
                && out.links.len() < MAX_LINKS
            {
                out.links.push(link);
            }
            if let Some(href) = attribute(attrs, "href") {
                open_link = Some(Link {
                    href: decode_entities(href.trim()),
                    text: String::new(),
                });
            }
        }
        if is_void(&name) || tag.ends_with('/') {
            continue;
        }
        let hidden = attribute(attrs, "style").is_some_and(style_hides)
            || attribute(attrs, "hidden").is_some()
            || has_bare_attribute(attrs, "hidden");
        if stack.len() < MAX_STACK {
            if hidden {
                hidden_depth += 1;
            }
            stack.push((name, hidden));
        }
    }
    if skip_until.is_none() && text_start < bytes.len() {
        push_text(
            &html[text_start..],
            hidden_depth > 0,
            &mut out,
            &mut open_link,
            max_text,
        );
    }
    if let Some(link) = open_link
        && out.links.len() < MAX_LINKS
    {
        out.links.push(link);
    }
    out
}

fn push_text(
    raw: &str,
    hidden: bool,
    out: &mut HtmlText,
    link: &mut Option<Link>,
    max_text: usize,
) {
    if raw.is_empty() {
        return;
    }
    let text = if raw.contains('&') {
        decode_entities(raw)
    } else {
        raw.to_string()
    };
    let non_space = text.chars().filter(|c| !c.is_whitespace()).count();
    if hidden {
        out.hidden_chars += non_space;
        return;
    }
    out.visible_chars += non_space;
    if let Some(link) = link.as_mut()
        && link.text.len() < MAX_LINK_TEXT
    {
        append_collapsed(&mut link.text, &text, MAX_LINK_TEXT);
    }
    if out.visible.len() < max_text {
        append_collapsed(&mut out.visible, &text, max_text);
    }
}

fn append_collapsed(dst: &mut String, text: &str, max: usize) {
    for c in text.chars() {
        if dst.len() >= max {
            return;
        }
        if c.is_whitespace() {
            if !dst.is_empty() && !dst.ends_with(' ') {
                dst.push(' ');
            }
        } else {
            dst.push(c);
        }
    }
}

fn is_block(name: &str) -> bool {
    matches!(
        name,
        "br" | "p"
            | "div"
            | "td"
            | "th"
            | "tr"
            | "li"
            | "ul"
            | "ol"
            | "table"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "hr"
            | "blockquote"
            | "body"
            | "center"
    )
}

fn is_void(name: &str) -> bool {
    matches!(
        name,
        "br" | "hr"
            | "img"
            | "meta"
            | "link"
            | "input"
            | "area"
            | "base"
            | "col"
            | "embed"
            | "source"
            | "wbr"
            | "param"
            | "track"
    )
}

/// Whether an inline style hides its element's text from a reader.
fn style_hides(style: &str) -> bool {
    let style: String = style
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect();
    style.contains("display:none")
        || style.contains("visibility:hidden")
        || style.contains("font-size:0")
        || style.contains("font-size:1px")
        || style.contains("font-size:1pt")
        || style.contains("max-height:0")
        || style.contains("opacity:0;")
        || style.ends_with("opacity:0")
}

/// The value of attribute `name` in a tag's attribute text (quoted or bare), if present.
fn attribute<'a>(attrs: &'a str, name: &str) -> Option<&'a str> {
    let lower = attrs.to_ascii_lowercase();
    let mut from = 0usize;
    while let Some(rel) = lower[from..].find(name) {
        let start = from + rel;
        from = start + name.len();
        let before_ok = start == 0
            || lower.as_bytes()[start - 1].is_ascii_whitespace()
            || lower.as_bytes()[start - 1] == b'"'
            || lower.as_bytes()[start - 1] == b'\'';
        if !before_ok {
            continue;
        }
        let rest = lower[from..].trim_start();
        if !rest.starts_with('=') {
            continue;
        }
        let value_at = attrs.len() - rest.len() + 1;
        let value = attrs[value_at..].trim_start();
        return Some(match value.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let inner = &value[1..];
                &inner[..inner.find(q).unwrap_or(inner.len())]
            }
            _ => {
                &value[..value
                    .find(|c: char| c.is_ascii_whitespace())
                    .unwrap_or(value.len())]
            }
        });
    }
    None
}

fn has_bare_attribute(attrs: &str, name: &str) -> bool {
    attrs
        .split(|c: char| c.is_ascii_whitespace() || c == '/')
        .any(|word| word.eq_ignore_ascii_case(name))
}

/// Decodes the common named entities and numeric references; unknown entities become a space.
pub fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest
            .char_indices()
            .take(12)
            .find(|&(_, c)| c == ';')
            .map(|(i, _)| i);
        let Some(end) = end else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity.to_ascii_lowercase().as_str() {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some(' '),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse::<u32>().ok().and_then(char::from_u32),
            _ => Some(' '),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_tags_and_scripts() {
        let h = convert(
            "<html><head><style>p{}</style><title>T</title></head><body><p>Hello&nbsp;<b>world</b></p><script>x()</script>bye</body></html>",
            1000,
        );
        assert_eq!(h.visible.trim(), "Hello world bye");
        assert_eq!(h.hidden_chars, 0);
    }

    #[test]
    fn counts_hidden_text() {
        let h = convert(
            "<p>Buy now</p><div style=\"display: none\">lorem ipsum dolor <span>sit</span></div><p>ok</p>",
            1000,
        );
        assert_eq!(h.visible.trim(), "Buy now ok");
        assert_eq!(h.hidden_chars, "loremipsumdolorsit".len());
    }

    #[test]
    fn collects_links() {
        let h = convert(
            "<a href='https://evil.example/x'>https://bank.example.com</a> <a href=\"/rel\">here</a>",
            1000,
        );
        assert_eq!(h.links.len(), 2);
        assert_eq!(h.links[0].href, "https://evil.example/x");
        assert_eq!(h.links[0].text, "https://bank.example.com");
        assert_eq!(h.links[1].text, "here");
    }

    #[test]
    fn entities() {
        assert_eq!(decode_entities("a&amp;b&#65;&#x42;&zz;c&"), "a&bAB c&");
    }

    #[test]
    fn unterminated_tag_and_unicode() {
        let h = convert("héllo <b", 1000);
        assert_eq!(h.visible, "héllo ");
        // An unterminated tag is text-less, not a panic.
        let h = convert("<a href=\"é", 10);
        assert!(h.links.is_empty());
        let h = convert("<a href=\"http://é.example\">ééééééééé", 5);
        assert_eq!(h.links.len(), 1);
        assert!(h.visible.len() <= 5 + 4);
    }
}
