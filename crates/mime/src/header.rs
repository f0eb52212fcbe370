//! Raw header-block scanning: where a header section ends, and its fields with their byte ranges.
//! Everything above this module works on these ranges, so folding and line-ending quirks are
//! decided here once.

use std::ops::Range;

/// One header field as found in the raw message.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    /// Field name as written (without the colon or trailing blanks).
    pub name: Range<usize>,
    /// The value after the colon, folded lines included, up to (not including) the final line break.
    pub value: Range<usize>,
    /// The whole field including its final line break.
    pub line: Range<usize>,
}

/// Splits `raw[start..end]` into header fields and finds where the body starts.
/// Returns the fields and the body offset (just after the blank line, or `end` if there is none).
pub(crate) fn scan(raw: &[u8], start: usize, end: usize) -> (Vec<Field>, usize) {
    let mut fields = Vec::new();
    let mut pos = start;
    let mut current: Option<Field> = None;
    while pos < end {
        let line_end = match raw[pos..end].iter().position(|&b| b == b'\n') {
            Some(i) => pos + i + 1,
            None => end,
        };
        let content_end = trim_eol(raw, pos, line_end);
        if content_end == pos && line_end > pos && raw[line_end - 1] == b'\n' {
            // The blank line that ends the header section.
            if let Some(f) = current.take() {
                fields.push(f);
            }
            return (fields, line_end);
        }
        let first = raw[pos];
        if (first == b' ' || first == b'\t') && current.is_some() {
            if let Some(f) = current.as_mut() {
                f.value.end = content_end;
                f.line.end = line_end;
            }
        } else {
            if let Some(f) = current.take() {
                fields.push(f);
            }
            current = parse_field_start(raw, pos, content_end, line_end);
        }
        pos = line_end;
    }
    if let Some(f) = current.take() {
        fields.push(f);
    }
    (fields, end)
}

fn parse_field_start(raw: &[u8], pos: usize, content_end: usize, line_end: usize) -> Option<Field> {
    let colon = raw[pos..content_end].iter().position(|&b| b == b':')? + pos;
    let mut name_end = colon;
    while name_end > pos && matches!(raw[name_end - 1], b' ' | b'\t') {
        name_end -= 1;
    }
    let name = &raw[pos..name_end];
    // RFC 5322 field names are printable ASCII without colon or space; anything else is not a field.
    if name.is_empty() || !name.iter().all(|&b| (33..=126).contains(&b)) {
        return None;
    }
    Some(Field {
        name: pos..name_end,
        value: colon + 1..content_end,
        line: pos..line_end,
    })
}

/// End of the line content, without its CRLF or LF.
fn trim_eol(raw: &[u8], start: usize, line_end: usize) -> usize {
    let mut e = line_end;
    if e > start && raw[e - 1] == b'\n' {
        e -= 1;
        if e > start && raw[e - 1] == b'\r' {
            e -= 1;
        }
    }
    e
}

/// Unfolds a field value (RFC 5322 §2.2.3: drop the line breaks of folded lines) and trims blanks.
pub(crate) fn unfold(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        let b = value[i];
        if b == b'\r' && value.get(i + 1) == Some(&b'\n') {
            i += 2;
            continue;
        }
        if b == b'\n' {
            i += 1;
            continue;
        }
        out.push(b);
        i += 1;
    }
    let s = out
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(out.len());
    let e = out
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(s, |p| p + 1);
    out[s..e.max(s)].to_vec()
}

/// Unfolded value as text; bytes that are not UTF-8 become U+FFFD (IMAP strings here are text).
pub(crate) fn unfold_str(value: &[u8]) -> String {
    match String::from_utf8(unfold(value)) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// First field called `name` (case-insensitive).
pub(crate) fn find<'f>(raw: &[u8], fields: &'f [Field], name: &str) -> Option<&'f Field> {
    fields
        .iter()
        .find(|f| raw[f.name.clone()].eq_ignore_ascii_case(name.as_bytes()))
}
