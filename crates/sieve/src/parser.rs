//! Tokens → syntax tree (RFC 5228 §8.2). Purely grammatical: which commands and tests exist and
//! what their arguments mean is `compile`'s job. Bounds nesting so hostile input cannot exhaust
//! the stack of this recursive-descent parser or of the interpreter later.

use crate::error::CompileError;
use crate::lexer::{Token, TokenKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub name: String,
    pub args: Vec<Argument>,
    pub tests: Vec<Test>,
    pub block: Option<Vec<Command>>,
    pub line: u32,
    pub column: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Test {
    pub name: String,
    pub args: Vec<Argument>,
    pub tests: Vec<Test>,
    /// Whether the nested tests came in a parenthesised test-list.
    pub test_list: bool,
    pub line: u32,
    pub column: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgValue {
    Tag(String),
    Number(u64),
    /// A lone string, as opposed to a bracketed list of one.
    String(String),
    List(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Argument {
    pub value: ArgValue,
    pub line: u32,
    pub column: u32,
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
    max_nesting: usize,
    end: (u32, u32),
}

pub fn parse(tokens: &[Token], max_nesting: usize) -> Result<Vec<Command>, CompileError> {
    let end = tokens.last().map_or((1, 1), |t| (t.line, t.column));
    let mut p = Parser {
        tokens,
        pos: 0,
        max_nesting,
        end,
    };
    let commands = p.commands(0)?;
    if let Some(t) = p.peek() {
        return Err(CompileError::at(t.line, t.column, "unexpected '}'"));
    }
    Ok(commands)
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<&Token> {
        let t = self.tokens.get(self.pos);
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    fn eof(&self, what: &str) -> CompileError {
        CompileError::at(
            self.end.0,
            self.end.1,
            format!("unexpected end of script, expected {what}"),
        )
    }

    fn deeper(&self, depth: usize, t: &Token) -> Result<usize, CompileError> {
        if depth >= self.max_nesting {
            return Err(CompileError::at(t.line, t.column, "nesting too deep"));
        }
        Ok(depth + 1)
    }

    fn commands(&mut self, depth: usize) -> Result<Vec<Command>, CompileError> {
        let mut out = Vec::new();
        while let Some(t) = self.peek() {
            if t.kind == TokenKind::RightBrace {
                break;
            }
            out.push(self.command(depth)?);
        }
        Ok(out)
    }

    fn command(&mut self, depth: usize) -> Result<Command, CompileError> {
        let Some(t) = self.next().cloned() else {
            return Err(self.eof("a command"));
        };
        let TokenKind::Identifier(name) = t.kind.clone() else {
            return Err(CompileError::at(
                t.line,
                t.column,
                "expected a command name",
            ));
        };
        let (args, tests, _) = self.arguments(depth, &t)?;
        let Some(end) = self.next().cloned() else {
            return Err(self.eof("';' or '{'"));
        };
        let block = match end.kind {
            TokenKind::Semicolon => None,
            TokenKind::LeftBrace => {
                let inner = self.deeper(depth, &end)?;
                let body = self.commands(inner)?;
                match self.next() {
                    Some(Token {
                        kind: TokenKind::RightBrace,
                        ..
                    }) => Some(body),
                    Some(t) => return Err(CompileError::at(t.line, t.column, "expected '}'")),
                    None => return Err(self.eof("'}'")),
                }
            }
            _ => {
                return Err(CompileError::at(
                    end.line,
                    end.column,
                    "expected ';' or '{'",
                ));
            }
        };
        Ok(Command {
            name,
            args,
            tests,
            block,
            line: t.line,
            column: t.column,
        })
    }

    /// `*argument [test / test-list]`
    fn arguments(
        &mut self,
        depth: usize,
        owner: &Token,
    ) -> Result<(Vec<Argument>, Vec<Test>, bool), CompileError> {
        let mut args = Vec::new();
        while let Some(t) = self.peek().cloned() {
            let value = match t.kind {
                TokenKind::Tag(tag) => ArgValue::Tag(tag),
                TokenKind::Number(n) => ArgValue::Number(n),
                TokenKind::String(s) => ArgValue::String(s),
                TokenKind::LeftBracket => {
                    self.pos += 1;
                    ArgValue::List(self.string_list()?)
                }
                _ => break,
            };
            if !matches!(value, ArgValue::List(_)) {
                self.pos += 1;
            }
            args.push(Argument {
                value,
                line: t.line,
                column: t.column,
            });
        }
        let mut tests = Vec::new();
        let mut list = false;
        match self.peek().cloned() {
            Some(t) if matches!(t.kind, TokenKind::Identifier(_)) => {
                let inner = self.deeper(depth, owner)?;
                tests.push(self.test(inner)?);
            }
            Some(t) if t.kind == TokenKind::LeftParen => {
                self.pos += 1;
                list = true;
                let inner = self.deeper(depth, &t)?;
                loop {
                    tests.push(self.test(inner)?);
                    match self.next() {
                        Some(Token {
                            kind: TokenKind::Comma,
                            ..
                        }) => {}
                        Some(Token {
                            kind: TokenKind::RightParen,
                            ..
                        }) => break,
                        Some(t) => {
                            return Err(CompileError::at(t.line, t.column, "expected ',' or ')'"));
                        }
                        None => return Err(self.eof("')'")),
                    }
                }
            }
            _ => {}
        }
        Ok((args, tests, list))
    }

    fn test(&mut self, depth: usize) -> Result<Test, CompileError> {
        let Some(t) = self.next().cloned() else {
            return Err(self.eof("a test"));
        };
        let TokenKind::Identifier(name) = t.kind.clone() else {
            return Err(CompileError::at(t.line, t.column, "expected a test name"));
        };
        let (args, tests, test_list) = self.arguments(depth, &t)?;
        Ok(Test {
            name,
            args,
            tests,
            test_list,
            line: t.line,
            column: t.column,
        })
    }

    fn string_list(&mut self) -> Result<Vec<String>, CompileError> {
        let mut out = Vec::new();
        loop {
            match self.next().cloned() {
                Some(Token {
                    kind: TokenKind::String(s),
                    ..
                }) => out.push(s),
                Some(t) => return Err(CompileError::at(t.line, t.column, "expected a string")),
                None => return Err(self.eof("a string")),
            }
            match self.next().cloned() {
                Some(Token {
                    kind: TokenKind::Comma,
                    ..
                }) => {}
                Some(Token {
                    kind: TokenKind::RightBracket,
                    ..
                }) => return Ok(out),
                Some(t) => return Err(CompileError::at(t.line, t.column, "expected ',' or ']'")),
                None => return Err(self.eof("']'")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::tokenize;

    fn p(s: &str) -> Result<Vec<Command>, CompileError> {
        parse(&tokenize(s)?, 32)
    }

    #[test]
    fn nested_structure() {
        let c = p(r#"if anyof (true, header :is ["a","b"] "c") { keep; } else { stop; }"#).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].tests[0].name, "anyof");
        assert!(c[0].tests[0].test_list);
        assert_eq!(c[0].tests[0].tests[1].args.len(), 3);
        assert_eq!(c[1].name, "else");
    }

    #[test]
    fn errors_have_positions() {
        let e = p("keep").unwrap_err();
        assert!(e.message.contains("end of script"));
        let e = p("keep }").unwrap_err();
        assert_eq!((e.line, e.column), (1, 6));
        let e = p("if true {\n keep;\n").unwrap_err();
        assert!(e.message.contains("'}'"));
    }

    #[test]
    fn depth_is_bounded() {
        let deep = "if true {".repeat(100) + &"}".repeat(100);
        assert!(p(&deep).unwrap_err().message.contains("nesting"));
        let deep = format!("if {} true {{}}", "not ".repeat(10_000));
        assert!(p(&deep).unwrap_err().message.contains("nesting"));
    }
}
