//! BODY[section] and BINARY[section] (RFC 9051 §6.4.5, RFC 3516): part-number resolution over
//! the stored tree, slicing the raw message by stored offsets, and content-transfer decoding.

use std::borrow::Cow;

use crate::header;
use crate::structure::Part;
use crate::{MimeError, Summary};

/// A BODY[...] section: part numbers (empty = the whole message) and what to take from there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub part: Vec<u32>,
    pub spec: SectionSpec,
}

/// The section text after the part numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionSpec {
    /// Nothing after the part numbers: the whole message, or the part's body.
    Full,
    Header,
    HeaderFields {
        names: Vec<String>,
        not: bool,
    },
    Text,
    Mime,
}

/// What a part path designates: the part, and the message it sits in when the path is empty or
/// designates a message/rfc822 part (for HEADER/TEXT).
struct Target<'p> {
    part: &'p Part,
    /// `true` for the empty path (the top-level message itself).
    top: bool,
}

/// Follows part numbers. A non-multipart message has one part, "1", which is its body; a
/// message/rfc822 part's numbers continue inside the encapsulated message (RFC 9051 §6.4.5).
fn resolve<'p>(root: &'p Part, path: &[u32]) -> Option<Target<'p>> {
    if path.is_empty() {
        return Some(Target {
            part: root,
            top: true,
        });
    }
    let mut msg_root = root;
    let mut idx = 0;
    loop {
        let k = usize::try_from(path[idx]).ok()?;
        let mut node = if msg_root.is_multipart() {
            msg_root.children.get(k.checked_sub(1)?)?
        } else if k == 1 {
            msg_root
        } else {
            return None;
        };
        idx += 1;
        loop {
            if idx == path.len() {
                return Some(Target {
                    part: node,
                    top: false,
                });
            }
            let k = usize::try_from(path[idx]).ok()?;
            if node.is_multipart() {
                node = node.children.get(k.checked_sub(1)?)?;
                idx += 1;
            } else if let Some(m) = &node.message {
                msg_root = m;
                break;
            } else {
                return None;
            }
        }
    }
}

fn slice(raw: &[u8], r: std::ops::Range<usize>) -> Option<&[u8]> {
    raw.get(r)
}

impl Summary {
    /// BODY[section] contents sliced from `raw` (no re-parse); `None` when the part does not exist
    /// or the specifier does not apply to it (HEADER/TEXT of a part that is not message/rfc822,
    /// MIME of the whole message).
    pub fn section<'a>(&self, raw: &'a [u8], section: &Section) -> Option<Cow<'a, [u8]>> {
        let t = resolve(&self.root, &section.part)?;
        // The message whose header/text a HEADER/TEXT specifier designates.
        let message = if t.top {
            Some(t.part)
        } else {
            t.part.message.as_deref()
        };
        match &section.spec {
            SectionSpec::Full if t.top => Some(Cow::Borrowed(raw)),
            SectionSpec::Full => slice(raw, t.part.body_range()).map(Cow::Borrowed),
            SectionSpec::Mime if t.top => None,
            SectionSpec::Mime => slice(raw, t.part.header_range()).map(Cow::Borrowed),
            SectionSpec::Header => slice(raw, message?.header_range()).map(Cow::Borrowed),
            SectionSpec::Text => slice(raw, message?.body_range()).map(Cow::Borrowed),
            SectionSpec::HeaderFields { names, not } => {
                let r = message?.header_range();
                let (fields, _) = header::scan(raw, r.start, r.end.min(raw.len()));
                let mut out = Vec::new();
                for f in &fields {
                    let name = &raw[f.name.clone()];
                    let listed = names
                        .iter()
                        .any(|n| name.eq_ignore_ascii_case(n.as_bytes()));
                    if listed != *not {
                        out.extend_from_slice(&raw[f.line.clone()]);
                        if !out.ends_with(b"\n") {
                            out.extend_from_slice(b"\r\n");
                        }
                    }
                }
                out.extend_from_slice(b"\r\n");
                Some(Cow::Owned(out))
            }
        }
    }

    /// BINARY[part] (RFC 3516): the part's body with its Content-Transfer-Encoding undone.
    /// `Ok(None)` when the part does not exist; `Err(UnknownCte)` when the encoding is unknown.
    /// An empty `part` is the whole message, which has no transfer encoding of its own.
    pub fn binary(&self, raw: &[u8], part: &[u32]) -> Result<Option<Vec<u8>>, MimeError> {
        let Some(t) = resolve(&self.root, part) else {
            return Ok(None);
        };
        if t.top {
            return Ok(Some(raw.to_vec()));
        }
        let Some(body) = slice(raw, t.part.body_range()) else {
            return Ok(None);
        };
        let cte = t.part.cte.as_deref().unwrap_or("7bit").to_ascii_lowercase();
        match cte.as_str() {
            "7bit" | "8bit" | "binary" => Ok(Some(body.to_vec())),
            "base64" => Ok(Some(decode_base64(body))),
            "quoted-printable" => Ok(Some(decode_qp(body))),
            _ => Err(MimeError::UnknownCte(cte)),
        }
    }

    /// Size of BINARY[part] (RFC 3516 BINARY.SIZE), or `None` when the part does not exist.
    pub fn binary_size(&self, raw: &[u8], part: &[u32]) -> Result<Option<u64>, MimeError> {
        Ok(self.binary(raw, part)?.map(|b| b.len() as u64))
    }
}

/// Base64 body decoding (RFC 2045 §6.8): characters outside the alphabet are ignored, decoding
/// stops at padding.
pub(crate) fn decode_base64(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &c in input {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Quoted-printable decoding (RFC 2045 §6.7): `=XX` octets, soft line breaks removed, trailing
/// blanks before a line break dropped; malformed `=` sequences are kept as they are.
pub(crate) fn decode_qp(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        if c == b'=' {
            // Soft line break: "=" then optional blanks then CRLF or LF.
            let mut j = i + 1;
            while j < input.len() && matches!(input[j], b' ' | b'\t') {
                j += 1;
            }
            if j < input.len() && input[j] == b'\n' {
                i = j + 1;
                continue;
            }
            if j + 1 < input.len() && input[j] == b'\r' && input[j + 1] == b'\n' {
                i = j + 2;
                continue;
            }
            if j == input.len() {
                i = j;
                continue;
            }
            if let (Some(h), Some(l)) = (
                input.get(i + 1).and_then(|&b| crate::params::hex(b)),
                input.get(i + 2).and_then(|&b| crate::params::hex(b)),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
            out.push(c);
            i += 1;
            continue;
        }
        if c == b' ' || c == b'\t' {
            // Transport may add trailing blanks; they are not part of the data.
            let mut j = i;
            while j < input.len() && matches!(input[j], b' ' | b'\t') {
                j += 1;
            }
            let at_eol = j == input.len()
                || input[j] == b'\n'
                || (input[j] == b'\r' && input.get(j + 1) == Some(&b'\n'));
            if at_eol {
                i = j;
                continue;
            }
            out.extend_from_slice(&input[i..j]);
            i = j;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qp_and_base64() {
        assert_eq!(decode_qp(b"a=3Db=\r\nc  \r\nd=4"), b"a=bc\r\nd=4");
        assert_eq!(decode_base64(b"aGVs\r\nbG8=\r\n"), b"hello");
    }
}
