//! Turns script text into tokens (RFC 5228 §8.1), each stamped with the line and column where it
//! starts so every later error can point at the source. Owns string unescaping and `text:`
//! dot-unstuffing; knows nothing about commands.

use crate::error::CompileError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    /// Lower-cased: Sieve identifiers are case-insensitive.
    Identifier(String),
    /// Lower-cased, without the leading colon.
    Tag(String),
    Number(u64),
    String(String),
    LeftBracket,
    RightBracket,
    LeftParen,
    RightParen,
    LeftBrace,
    RightBrace,
    Comma,
    Semicolon,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    pub line: u32,
    pub column: u32,
}

struct Cursor<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: u32,
    column: u32,
}

impl Cursor<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.column = 1;
        } else {
            self.column = self.column.saturating_add(1);
        }
        Some(c)
    }
}

pub fn tokenize(source: &str) -> Result<Vec<Token>, CompileError> {
    let mut cur = Cursor {
        chars: source.chars().peekable(),
        line: 1,
        column: 1,
    };
    let mut tokens = Vec::new();
    while let Some(c) = cur.peek() {
        let (line, column) = (cur.line, cur.column);
        let err = |message: String| CompileError {
            line,
            column,
            message,
        };
        let single = match c {
            '[' => Some(TokenKind::LeftBracket),
            ']' => Some(TokenKind::RightBracket),
            '(' => Some(TokenKind::LeftParen),
            ')' => Some(TokenKind::RightParen),
            '{' => Some(TokenKind::LeftBrace),
            '}' => Some(TokenKind::RightBrace),
            ',' => Some(TokenKind::Comma),
            ';' => Some(TokenKind::Semicolon),
            _ => None,
        };
        if let Some(kind) = single {
            cur.bump();
            tokens.push(Token { kind, line, column });
            continue;
        }
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                cur.bump();
            }
            '#' => skip_line(&mut cur),
            '/' => {
                cur.bump();
                if cur.peek() != Some('*') {
                    return Err(err("unexpected character '/'".into()));
                }
                cur.bump();
                let mut prev = '\0';
                loop {
                    match cur.bump() {
                        None => return Err(err("unterminated comment".into())),
                        Some('/') if prev == '*' => break,
                        Some(ch) => prev = ch,
                    }
                }
            }
            '"' => {
                cur.bump();
                let s = quoted_string(&mut cur).ok_or_else(|| err("unterminated string".into()))?;
                tokens.push(Token {
                    kind: TokenKind::String(s),
                    line,
                    column,
                });
            }
            ':' => {
                cur.bump();
                let name = identifier(&mut cur);
                if name.is_empty() {
                    return Err(err("expected a tag name after ':'".into()));
                }
                tokens.push(Token {
                    kind: TokenKind::Tag(name),
                    line,
                    column,
                });
            }
            '0'..='9' => {
                let n = number(&mut cur).ok_or_else(|| err("number too large".into()))?;
                tokens.push(Token {
                    kind: TokenKind::Number(n),
                    line,
                    column,
                });
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let name = identifier(&mut cur);
                if name == "text" && cur.peek() == Some(':') {
                    cur.bump();
                    let s = multiline(&mut cur).map_err(err)?;
                    tokens.push(Token {
                        kind: TokenKind::String(s),
                        line,
                        column,
                    });
                } else {
                    tokens.push(Token {
                        kind: TokenKind::Identifier(name),
                        line,
                        column,
                    });
                }
            }
            other => return Err(err(format!("unexpected character {other:?}"))),
        }
    }
    Ok(tokens)
}

fn skip_line(cur: &mut Cursor<'_>) {
    while let Some(c) = cur.bump() {
        if c == '\n' {
            break;
        }
    }
}

fn identifier(cur: &mut Cursor<'_>) -> String {
    let mut s = String::new();
    while let Some(c) = cur.peek() {
        let ok = if s.is_empty() {
            c.is_ascii_alphabetic() || c == '_'
        } else {
            c.is_ascii_alphanumeric() || c == '_'
        };
        if !ok {
            break;
        }
        s.push(c.to_ascii_lowercase());
        cur.bump();
    }
    s
}

fn number(cur: &mut Cursor<'_>) -> Option<u64> {
    let mut n: u64 = 0;
    let mut overflow = false;
    while let Some(c) = cur.peek() {
        let Some(d) = c.to_digit(10) else { break };
        cur.bump();
        match n.checked_mul(10).and_then(|v| v.checked_add(u64::from(d))) {
            Some(v) => n = v,
            None => overflow = true,
        }
    }
    let shift = match cur.peek() {
        Some('k' | 'K') => 10,
        Some('m' | 'M') => 20,
        Some('g' | 'G') => 30,
        _ => 0,
    };
    if shift > 0 {
        cur.bump();
    }
    if overflow || n.leading_zeros() < shift {
        return None;
    }
    Some(n << shift)
}

/// RFC 5228 §2.4.2: `\\` and `\"` are escapes; any other backslash is dropped.
fn quoted_string(cur: &mut Cursor<'_>) -> Option<String> {
    let mut s = String::new();
    loop {
        match cur.bump()? {
            '"' => return Some(s),
            '\\' => s.push(cur.bump()?),
            c => s.push(c),
        }
    }
}

/// `text:` up to a line holding only "."; a leading ".." loses one dot. Lines are joined with
/// CRLF as the RFC's grammar prescribes, whatever line ends the script file used.
fn multiline(cur: &mut Cursor<'_>) -> Result<String, String> {
    // Only whitespace or a hash comment may follow `text:` on its line.
    loop {
        match cur.peek() {
            Some(' ' | '\t' | '\r') => {
                cur.bump();
            }
            Some('#') => {
                skip_line(cur);
                break;
            }
            Some('\n') => {
                cur.bump();
                break;
            }
            None => return Err("unterminated multi-line string".into()),
            Some(_) => return Err("text: must be followed by a line break".into()),
        }
    }
    let mut out = String::new();
    loop {
        let mut line = String::new();
        let mut ended = false;
        while let Some(c) = cur.bump() {
            if c == '\n' {
                ended = true;
                break;
            }
            line.push(c);
        }
        if line.ends_with('\r') {
            line.pop();
        }
        if line == "." {
            return Ok(out);
        }
        if !ended {
            return Err("unterminated multi-line string".into());
        }
        let content = line
            .strip_prefix('.')
            .filter(|_| line.starts_with(".."))
            .unwrap_or(&line);
        out.push_str(content);
        out.push_str("\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<TokenKind> {
        tokenize(s).unwrap().into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn numbers_with_quantifiers() {
        assert_eq!(
            kinds("1 2K 3m 4G"),
            vec![
                TokenKind::Number(1),
                TokenKind::Number(2048),
                TokenKind::Number(3 << 20),
                TokenKind::Number(4 << 30)
            ]
        );
        assert!(tokenize("99999999999999999999").is_err());
        assert!(tokenize("17179869184G").is_err());
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(
            kinds(r#""a\"b\\c\d""#),
            vec![TokenKind::String("a\"b\\cd".into())]
        );
        let e = tokenize("keep;\n  \"abc").unwrap_err();
        assert_eq!((e.line, e.column), (2, 3));
    }

    #[test]
    fn multiline_dot_stuffing() {
        let t = kinds("text: # c\r\nhello\n..dot\n.\n;");
        assert_eq!(
            t,
            vec![
                TokenKind::String("hello\r\n.dot\r\n".into()),
                TokenKind::Semicolon
            ]
        );
        assert!(tokenize("text:\nabc\n").is_err());
    }

    #[test]
    fn comments_tags_positions() {
        let toks = tokenize("/* x\n */ IF :Is # c\n[\"a\",\"b\"]").unwrap();
        assert_eq!(toks[0].kind, TokenKind::Identifier("if".into()));
        assert_eq!((toks[0].line, toks[0].column), (2, 5));
        assert_eq!(toks[1].kind, TokenKind::Tag("is".into()));
        assert_eq!(toks[2].line, 3);
        assert!(tokenize("/* never closed").is_err());
    }
}
