//! RFC 5322 address lists (with obsolete forms tolerated) turned into IMAP ENVELOPE address
//! structures: (name adl mailbox host), groups as start/end markers (RFC 9051 §7.5.2).

/// One IMAP address structure: name, at-domain-list (source route), mailbox, host.
/// A group start is `(None, None, Some(group name), None)`, a group end is all `None`.
pub(crate) type ImapAddr = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Upper bound of addresses kept per field (bounded work and summary size).
const MAX_ADDRS: usize = 1000;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Atom(String),
    Quoted(String),
    Comment(String),
    Literal(String),
    Special(char),
}

#[derive(Debug, Clone)]
struct T {
    tok: Tok,
    space_before: bool,
}

fn lex(s: &str) -> Vec<T> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut space = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                space = true;
                i += 1;
                continue;
            }
            '(' => {
                let mut depth = 0usize;
                let mut text = String::new();
                while i < chars.len() {
                    let c = chars[i];
                    match c {
                        '\\' if i + 1 < chars.len() => {
                            text.push(chars[i + 1]);
                            i += 2;
                            continue;
                        }
                        '(' => {
                            if depth > 0 {
                                text.push(c);
                            }
                            depth += 1;
                        }
                        ')' => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                i += 1;
                                break;
                            }
                            text.push(c);
                        }
                        _ => text.push(c),
                    }
                    i += 1;
                }
                out.push(T {
                    tok: Tok::Comment(text),
                    space_before: space,
                });
                // A comment separates words like whitespace does.
                space = true;
                continue;
            }
            '"' => {
                i += 1;
                let mut text = String::new();
                while i < chars.len() {
                    match chars[i] {
                        '"' => {
                            i += 1;
                            break;
                        }
                        '\\' if i + 1 < chars.len() => {
                            text.push(chars[i + 1]);
                            i += 2;
                            continue;
                        }
                        '\r' | '\n' => {}
                        c => text.push(c),
                    }
                    i += 1;
                }
                out.push(T {
                    tok: Tok::Quoted(text),
                    space_before: space,
                });
            }
            '[' => {
                let mut text = String::from("[");
                i += 1;
                while i < chars.len() {
                    let c = chars[i];
                    i += 1;
                    if c == '\\' && i < chars.len() {
                        text.push(chars[i]);
                        i += 1;
                        continue;
                    }
                    text.push(c);
                    if c == ']' {
                        break;
                    }
                }
                out.push(T {
                    tok: Tok::Literal(text),
                    space_before: space,
                });
            }
            '<' | '>' | ':' | ';' | '@' | ',' | '.' | ']' | ')' | '\\' => {
                out.push(T {
                    tok: Tok::Special(c),
                    space_before: space,
                });
                i += 1;
            }
            _ => {
                let mut text = String::new();
                while i < chars.len() {
                    let c = chars[i];
                    if matches!(
                        c,
                        ' ' | '\t'
                            | '\r'
                            | '\n'
                            | '('
                            | '"'
                            | '['
                            | '<'
                            | '>'
                            | ':'
                            | ';'
                            | '@'
                            | ','
                            | '.'
                            | ']'
                            | ')'
                            | '\\'
                    ) {
                        break;
                    }
                    text.push(c);
                    i += 1;
                }
                out.push(T {
                    tok: Tok::Atom(text),
                    space_before: space,
                });
            }
        }
        space = false;
    }
    out
}

fn is_special(t: &T, c: char) -> bool {
    t.tok == Tok::Special(c)
}

/// Display name: the words joined as written (one space where the header had blanks), quoted
/// strings unquoted, comments dropped. RFC 2047 encoded words are left encoded (IMAP sends them
/// that way).
fn phrase(toks: &[T]) -> Option<String> {
    let mut out = String::new();
    for t in toks {
        let text = match &t.tok {
            Tok::Atom(s) | Tok::Quoted(s) | Tok::Literal(s) => s.as_str(),
            Tok::Special(c) => {
                if *c == '<' || *c == '>' {
                    continue;
                }
                let mut b = [0u8; 4];
                let s: &str = c.encode_utf8(&mut b);
                if t.space_before && !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(s);
                continue;
            }
            Tok::Comment(_) => continue,
        };
        if t.space_before && !out.is_empty() {
            out.push(' ');
        }
        out.push_str(text);
    }
    if out.is_empty() { None } else { Some(out) }
}

/// Text of an addr-spec piece (local part or domain): words concatenated without blanks;
/// a quoted local part keeps its quotes so that mailbox@host stays a valid address.
fn spec_text(toks: &[T]) -> String {
    let mut out = String::new();
    for t in toks {
        match &t.tok {
            Tok::Atom(s) | Tok::Literal(s) => out.push_str(s),
            Tok::Quoted(s) => {
                out.push('"');
                for c in s.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
            Tok::Special(c) => out.push(*c),
            Tok::Comment(_) => {}
        }
    }
    out
}

fn last_comment(toks: &[T]) -> Option<String> {
    toks.iter().rev().find_map(|t| match &t.tok {
        Tok::Comment(c) if !c.trim().is_empty() => Some(c.trim().to_string()),
        _ => None,
    })
}

fn addr_spec(toks: &[T]) -> (Option<String>, Option<String>) {
    let toks: Vec<T> = toks
        .iter()
        .filter(|t| !matches!(t.tok, Tok::Comment(_)))
        .cloned()
        .collect();
    match toks.iter().rposition(|t| is_special(t, '@')) {
        Some(at) => {
            let local = spec_text(&toks[..at]);
            let host = spec_text(&toks[at + 1..]);
            (Some(local), Some(host))
        }
        // No domain: keep the host a string so it is not mistaken for a group marker.
        None => (Some(spec_text(&toks)), Some(String::new())),
    }
}

fn mailbox(toks: &[T]) -> Option<ImapAddr> {
    if toks.iter().all(|t| matches!(t.tok, Tok::Comment(_))) {
        return None;
    }
    if let Some(lt) = toks.iter().position(|t| is_special(t, '<')) {
        let name = phrase(&toks[..lt]);
        let gt = toks[lt + 1..]
            .iter()
            .position(|t| is_special(t, '>'))
            .map_or(toks.len(), |p| p + lt + 1);
        let inner = &toks[lt + 1..gt];
        // Obsolete source route: "@a,@b:" before the addr-spec.
        let (adl, spec) = match inner.iter().position(|t| is_special(t, ':')) {
            Some(colon) if inner.first().is_some_and(|t| is_special(t, '@')) => {
                (Some(spec_text(&inner[..colon])), &inner[colon + 1..])
            }
            _ => (None, inner),
        };
        if spec.is_empty() {
            // "<>" (null reverse path) or a bare display name in angle brackets.
            return Some((name, adl, Some(String::new()), Some(String::new())));
        }
        let (local, host) = addr_spec(spec);
        let name = name.or_else(|| last_comment(&toks[gt.min(toks.len())..]));
        return Some((name, adl, local, host));
    }
    let (local, host) = addr_spec(toks);
    Some((last_comment(toks), None, local, host))
}

/// Parses an unfolded address-list header value into IMAP address structures.
pub(crate) fn parse_list(value: &str) -> Vec<ImapAddr> {
    let toks = lex(value);
    let mut out = Vec::new();
    let mut i = 0;
    let mut in_group = false;
    while i < toks.len() && out.len() < MAX_ADDRS {
        // Collect one item: up to ',' outside angle brackets, ';' ending a group, or ':' starting one.
        let start = i;
        let mut in_angle = false;
        let mut end_kind = None;
        while i < toks.len() {
            let t = &toks[i];
            match t.tok {
                Tok::Special('<') => in_angle = true,
                Tok::Special('>') => in_angle = false,
                Tok::Special(',') if !in_angle => {
                    end_kind = Some(',');
                    break;
                }
                Tok::Special(';') if !in_angle => {
                    end_kind = Some(';');
                    break;
                }
                Tok::Special(':') if !in_angle && !in_group => {
                    end_kind = Some(':');
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let item = &toks[start..i];
        i += 1;
        match end_kind {
            Some(':') => {
                in_group = true;
                out.push((None, None, Some(phrase(item).unwrap_or_default()), None));
            }
            Some(';') => {
                if let Some(a) = mailbox(item) {
                    out.push(a);
                }
                if in_group {
                    out.push((None, None, None, None));
                    in_group = false;
                }
            }
            _ => {
                if let Some(a) = mailbox(item) {
                    out.push(a);
                }
            }
        }
    }
    if in_group {
        out.push((None, None, None, None));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn plain_and_named() {
        assert_eq!(
            parse_list("John Q. Public <john@example.com>, \"Doe, Jane\" <jane@x.org>"),
            vec![
                (s("John Q. Public"), None, s("john"), s("example.com")),
                (s("Doe, Jane"), None, s("jane"), s("x.org")),
            ]
        );
    }

    #[test]
    fn comment_name_route_and_group() {
        assert_eq!(
            parse_list("a.b@c.d (Alpha Beta)"),
            vec![(s("Alpha Beta"), None, s("a.b"), s("c.d"))]
        );
        assert_eq!(
            parse_list("<@r1.example,@r2.example:u@h.example>"),
            vec![(None, s("@r1.example,@r2.example"), s("u"), s("h.example"))]
        );
        assert_eq!(
            parse_list("Team: a@b.c, d@e.f;, z@y.x"),
            vec![
                (None, None, s("Team"), None),
                (None, None, s("a"), s("b.c")),
                (None, None, s("d"), s("e.f")),
                (None, None, None, None),
                (None, None, s("z"), s("y.x")),
            ]
        );
        assert_eq!(
            parse_list("undisclosed-recipients:;"),
            vec![
                (None, None, s("undisclosed-recipients"), None),
                (None, None, None, None)
            ]
        );
    }
}
