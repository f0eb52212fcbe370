//! Content-Type / Content-Disposition syntax (RFC 2045 §5.1, RFC 2183) including RFC 2231
//! parameter continuations and charset/language tags.

/// A parsed `type/subtype; params` or `disposition; params` value.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Parsed {
    /// `type` (or the whole disposition type), lowercase.
    pub main: String,
    /// `subtype` for Content-Type, lowercase; empty for dispositions.
    pub sub: String,
    /// Parameters in order, names lowercase, RFC 2231 segments merged.
    pub params: Vec<(String, String)>,
}

/// Bound on parameters kept per header: a hostile header cannot make the summary large.
const MAX_PARAMS: usize = 64;

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Lexer<'a> {
    fn skip_cfws(&mut self) {
        loop {
            while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\r' | b'\n') {
                self.i += 1;
            }
            if self.i < self.s.len() && self.s[self.i] == b'(' {
                let mut depth = 0usize;
                while self.i < self.s.len() {
                    match self.s[self.i] {
                        b'\\' => self.i += 1,
                        b'(' => depth += 1,
                        b')' => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                self.i += 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
                continue;
            }
            break;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// RFC 2045 token: anything but CTLs, space and tspecials. Lenient: also stops only at the
    /// separators that matter, so `text/plain;charset=utf-8` and sloppy values still parse.
    fn token(&mut self, stop: &[u8]) -> String {
        let start = self.i;
        while self.i < self.s.len() {
            let b = self.s[self.i];
            if b <= b' ' || b == 0x7f || b == b'(' || stop.contains(&b) {
                break;
            }
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    fn quoted(&mut self) -> String {
        // Caller saw the opening quote.
        self.i += 1;
        let mut out = Vec::new();
        while self.i < self.s.len() {
            let b = self.s[self.i];
            match b {
                b'"' => {
                    self.i += 1;
                    break;
                }
                b'\\' if self.i + 1 < self.s.len() => {
                    out.push(self.s[self.i + 1]);
                    self.i += 2;
                    continue;
                }
                b'\r' | b'\n' => {}
                _ => out.push(b),
            }
            self.i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Parses a Content-Type value. `None` when there is no valid `type/subtype` (the caller then
/// applies the RFC 2045 §5.2 default).
pub(crate) fn content_type(value: &[u8]) -> Option<Parsed> {
    let mut lx = Lexer { s: value, i: 0 };
    lx.skip_cfws();
    let main = lx.token(b"/;=\"");
    lx.skip_cfws();
    if lx.peek() != Some(b'/') {
        return None;
    }
    lx.i += 1;
    lx.skip_cfws();
    let sub = lx.token(b"/;=\"");
    if main.is_empty() || sub.is_empty() {
        return None;
    }
    let params = parameters(&mut lx);
    Some(Parsed {
        main: main.to_ascii_lowercase(),
        sub: sub.to_ascii_lowercase(),
        params,
    })
}

/// Parses a Content-Disposition value; `None` when it has no disposition type.
pub(crate) fn disposition(value: &[u8]) -> Option<Parsed> {
    let mut lx = Lexer { s: value, i: 0 };
    lx.skip_cfws();
    let main = lx.token(b";=\"/");
    if main.is_empty() {
        return None;
    }
    let params = parameters(&mut lx);
    Some(Parsed {
        main: main.to_ascii_lowercase(),
        sub: String::new(),
        params,
    })
}

struct RawParam {
    name: String,
    section: Option<u32>,
    extended: bool,
    value: String,
}

fn parameters(lx: &mut Lexer<'_>) -> Vec<(String, String)> {
    let mut raw: Vec<RawParam> = Vec::new();
    loop {
        lx.skip_cfws();
        match lx.peek() {
            None => break,
            Some(b';') => {
                lx.i += 1;
                continue;
            }
            _ => {}
        }
        let start = lx.i;
        let name = lx.token(b";=\"");
        lx.skip_cfws();
        if name.is_empty() || lx.peek() != Some(b'=') {
            // Not a parameter: skip to the next ';' so one bad item does not lose the rest.
            if lx.i == start {
                lx.i += 1;
            }
            while let Some(b) = lx.peek() {
                if b == b';' {
                    break;
                }
                lx.i += 1;
            }
            continue;
        }
        lx.i += 1;
        lx.skip_cfws();
        let value = if lx.peek() == Some(b'"') {
            lx.quoted()
        } else {
            // Values may legally be tokens only, but real mail has spaces and tspecials in
            // unquoted values; take everything up to the next ';' and trim it.
            let s = lx.i;
            while let Some(b) = lx.peek() {
                if b == b';' {
                    break;
                }
                lx.i += 1;
            }
            String::from_utf8_lossy(&lx.s[s..lx.i]).trim().to_string()
        };
        if raw.len() < MAX_PARAMS * 4 {
            raw.push(split_2231(&name, value));
        }
    }
    merge_2231(raw)
}

fn split_2231(name: &str, value: String) -> RawParam {
    let lower = name.to_ascii_lowercase();
    let (base, extended) = match lower.strip_suffix('*') {
        Some(b) => (b.to_string(), true),
        None => (lower.clone(), false),
    };
    if let Some((b, n)) = base.rsplit_once('*')
        && let Ok(section) = n.parse::<u32>()
        && (n == "0" || !n.starts_with('0'))
    {
        return RawParam {
            name: b.to_string(),
            section: Some(section),
            extended,
            value,
        };
    }
    RawParam {
        name: base,
        section: None,
        extended,
        value,
    }
}

/// RFC 2231: joins `name*0`, `name*1`… in section order. When any piece carries a charset
/// (`name*` or `name*N*`), the result is one extended parameter `name*` whose value is
/// `charset'lang'percent-encoded`, which is how IMAP clients expect to receive it; otherwise a
/// plain `name` with the joined value.
fn merge_2231(raw: Vec<RawParam>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut done: Vec<String> = Vec::new();
    for (idx, p) in raw.iter().enumerate() {
        if out.len() >= MAX_PARAMS {
            break;
        }
        if p.section.is_none() {
            if p.extended {
                out.push((format!("{}*", p.name), p.value.clone()));
            } else if !out.iter().any(|(n, _)| *n == p.name) {
                out.push((p.name.clone(), p.value.clone()));
            }
            continue;
        }
        if done.contains(&p.name) {
            continue;
        }
        done.push(p.name.clone());
        let mut pieces: Vec<&RawParam> = raw[idx..]
            .iter()
            .filter(|q| q.name == p.name && q.section.is_some())
            .collect();
        pieces.sort_by_key(|q| q.section);
        pieces.dedup_by_key(|q| q.section);
        let any_ext = pieces.iter().any(|q| q.extended);
        if any_ext {
            let mut value = String::new();
            for (i, q) in pieces.iter().enumerate() {
                if q.extended {
                    value.push_str(&q.value);
                } else {
                    if i == 0 {
                        // A first piece without charset still needs the charset'lang' prefix.
                        value.push_str("''");
                    }
                    percent_encode_into(&q.value, &mut value);
                }
            }
            out.push((format!("{}*", p.name), value));
        } else {
            let value: String = pieces.iter().map(|q| q.value.as_str()).collect();
            out.push((p.name.clone(), value));
        }
    }
    // A plain parameter and a merged continuation of the same name: keep the first seen.
    let mut seen: Vec<String> = Vec::new();
    out.retain(|(n, _)| {
        if seen.contains(n) {
            false
        } else {
            seen.push(n.clone());
            true
        }
    });
    out
}

fn percent_encode_into(s: &str, out: &mut String) {
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

pub(crate) fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
