//! Authentication-Results fields already in a message that claim our authserv-id (RFC 8601
//! §5: a receiver removes them, or a sender could forge our verdict), found in the header
//! section only, and the message without them.

use std::ops::Range;

/// Byte ranges (whole fields, continuation lines and CRLF included) of the header fields named
/// Authentication-Results whose authserv-id is `ours` (compared without case).
pub fn our_results(message: &[u8], ours: &str) -> Vec<Range<usize>> {
    let mut found = Vec::new();
    let mut pos = 0;
    while pos < message.len() {
        let end = field_end(message, pos);
        let field = &message[pos..end];
        if field == b"\r\n" || field == b"\n" {
            break; // the blank line: the body starts
        }
        if let Some(colon) = field.iter().position(|&b| b == b':') {
            let name = &field[..colon];
            if name
                .trim_ascii()
                .eq_ignore_ascii_case(b"Authentication-Results")
                && authserv_id(&field[colon + 1..]).is_some_and(|id| id.eq_ignore_ascii_case(ours))
            {
                found.push(pos..end);
            }
        } else if !field.first().is_some_and(|b| b.is_ascii_graphic()) {
            break; // not a header field: whatever follows is body
        }
        pos = end;
    }
    found
}

/// Byte ranges of the header fields named any of `names` (case-insensitive): fields a sender
/// may not set for us (our spam verdict), to be removed on arrival.
pub fn fields_named(message: &[u8], names: &[&str]) -> Vec<Range<usize>> {
    let mut found = Vec::new();
    let mut pos = 0;
    while pos < message.len() {
        let end = field_end(message, pos);
        let field = &message[pos..end];
        if field == b"\r\n" || field == b"\n" {
            break;
        }
        if let Some(colon) = field.iter().position(|&b| b == b':') {
            let name = field[..colon].trim_ascii();
            if names
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
            {
                found.push(pos..end);
            }
        } else if !field.first().is_some_and(|b| b.is_ascii_graphic()) {
            break;
        }
        pos = end;
    }
    found
}

/// The message with `ranges` (sorted, disjoint) left out.
pub fn without(message: &[u8], ranges: &[Range<usize>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len());
    let mut at = 0;
    for r in ranges {
        if r.start < at || r.end > message.len() {
            continue;
        }
        out.extend_from_slice(&message[at..r.start]);
        at = r.end;
    }
    out.extend_from_slice(&message[at..]);
    out
}

/// End of the header field starting at `start`: past its line and every continuation line.
fn field_end(message: &[u8], start: usize) -> usize {
    let mut pos = start;
    loop {
        match message[pos..].iter().position(|&b| b == b'\n') {
            None => return message.len(),
            Some(nl) => pos += nl + 1,
        }
        // A blank line ends the header, even right after a field.
        if pos - start <= 2 && message[start..pos].trim_ascii().is_empty() {
            return pos;
        }
        match message.get(pos) {
            Some(b' ') | Some(b'\t') => continue,
            _ => return pos,
        }
    }
}

/// The authserv-id at the start of an Authentication-Results value: a token after optional
/// whitespace and comments.
fn authserv_id(value: &[u8]) -> Option<&str> {
    let mut i = 0;
    let mut depth = 0u32;
    while i < value.len() {
        match value[i] {
            b'(' => depth += 1,
            b')' if depth > 0 => depth -= 1,
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ if depth > 0 => {}
            _ => break,
        }
        i += 1;
    }
    let rest = &value[i..];
    let len = rest
        .iter()
        .position(|&b| b == b';' || b == b'(' || b.is_ascii_whitespace())
        .unwrap_or(rest.len());
    let id = std::str::from_utf8(&rest[..len]).ok()?;
    (!id.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_named_finds_folded_fields_in_the_header_only() {
        let m = b"X-Spam-Score: 99\r\nSubject: a\r\nx-spam-status: Yes,\r\n\tscore=99\r\n\r\nX-Spam-Score: body\r\n";
        let r = fields_named(m, &["X-Spam-Status", "X-Spam-Score"]);
        assert_eq!(r.len(), 2);
        assert_eq!(&m[r[0].clone()], b"X-Spam-Score: 99\r\n");
        assert_eq!(&m[r[1].clone()], b"x-spam-status: Yes,\r\n\tscore=99\r\n");
        assert_eq!(without(m, &r), b"Subject: a\r\n\r\nX-Spam-Score: body\r\n");
    }

    const MSG: &[u8] = b"Authentication-Results: mx.example.org; spf=pass\r\n\
Received: from a by b\r\n\
authentication-results:  (forged) MX.EXAMPLE.ORG;\r\n\tdkim=pass header.d=paypal.com\r\n\
Authentication-Results: other.example; dmarc=pass\r\n\
Subject: hi\r\n\
\r\n\
Authentication-Results: mx.example.org; in the body stays\r\n";

    #[test]
    fn only_our_header_fields_are_found() {
        let r = our_results(MSG, "mx.example.org");
        assert_eq!(r.len(), 2);
        let out = without(MSG, &r);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("Received: from a by b\r\nAuthentication-Results: other.example"));
        assert!(!text.contains("paypal"));
        assert!(
            text.ends_with("\r\n\r\nAuthentication-Results: mx.example.org; in the body stays\r\n")
        );
    }

    #[test]
    fn odd_input_finds_nothing_and_does_not_panic() {
        for m in [
            &b""[..],
            b"\r\n",
            b"Authentication-Results:",
            b"Authentication-Results: ;",
            b"no colon here\r\nAuthentication-Results: mx.example.org\r\n",
            b"Authentication-Results: (unclosed comment mx.example.org",
        ] {
            let r = our_results(m, "mx.example.org");
            let _ = without(m, &r);
        }
        assert_eq!(
            our_results(b"Authentication-Results: mx.example.org", "mx.example.org"),
            vec![0..38]
        );
    }
}
