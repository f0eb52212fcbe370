//! XML text escaping and the bounded extraction of one element's text from
//! an Autodiscover request (quick-xml: no DTD, no entity expansion beyond
//! the five predefined ones).

use quick_xml::Reader;
use quick_xml::events::Event;

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

/// Text of the first element whose local name is `name`.
pub fn element_text(doc: &[u8], name: &str) -> Option<String> {
    let mut reader = Reader::from_reader(doc);
    let mut inside = false;
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => inside = e.local_name().as_ref() == name.as_bytes(),
            Ok(Event::Text(t)) if inside => {
                let raw = std::str::from_utf8(t.as_ref()).ok()?;
                let text = quick_xml::escape::unescape(raw).ok()?;
                return Some(text.trim().to_string());
            }
            Ok(Event::End(_)) if inside => return Some(String::new()),
            Ok(Event::DocType(_)) => return None,
            Ok(Event::Eof) | Err(_) => return None,
            _ => {}
        }
        buf.clear();
    }
}
