//! APPEND arguments: one message or several (MULTIAPPEND, RFC 3502), each a literal, a literal8
//! (BINARY, RFC 3516), `UTF8 (literal8)` (RFC 6855) or `CATENATE (…)` parts (RFC 4469).

use super::{PResult, Parser};
use crate::syntax::command::*;

/// Most messages one APPEND carries.
pub const MAX_APPEND_MESSAGES: usize = 1000;
/// Most parts one CATENATE builds a message from.
pub const MAX_CATENATE_PARTS: usize = 100;
/// Most CATENATE URLs in one APPEND, across all its messages: each makes the server look up a
/// mailbox and read a message.
pub const MAX_CATENATE_URLS: usize = 100;

impl Parser<'_> {
    /// `APPEND SP mailbox 1*(SP append-message)`, after the command name.
    pub(super) fn append(&mut self) -> PResult<CommandKind> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        let mut messages = Vec::new();
        let mut urls = 0;
        loop {
            self.sp()?;
            let m = self.append_message()?;
            if let AppendData::Catenate(parts) = &m.data {
                urls += parts
                    .iter()
                    .filter(|p| matches!(p, CatPart::Url(_)))
                    .count();
                if urls > MAX_CATENATE_URLS {
                    return Err("too many CATENATE URLs in one APPEND".into());
                }
            }
            messages.push(m);
            if messages.len() > MAX_APPEND_MESSAGES {
                return Err("too many messages in one APPEND".into());
            }
            if self.at_end() {
                break;
            }
        }
        Ok(CommandKind::Append { mailbox, messages })
    }

    /// `[flag-list SP] [date-time SP] append-data`.
    fn append_message(&mut self) -> PResult<AppendMessage> {
        let mut flags = Vec::new();
        let mut date = None;
        if self.peek() == Some(b'(') {
            flags = self.flag_list()?;
            self.sp()?;
        }
        if self.peek() == Some(b'"') {
            date = Some(self.date_time()?);
            self.sp()?;
        }
        let data = if self.keyword("CATENATE") {
            self.sp()?;
            self.expect(b'(')?;
            let mut parts = Vec::new();
            self.items_until_close(false, |p| {
                if parts.len() >= MAX_CATENATE_PARTS {
                    return Err("too many CATENATE parts".into());
                }
                parts.push(p.cat_part()?);
                Ok(())
            })?;
            AppendData::Catenate(parts)
        } else if self.keyword("UTF8") {
            AppendData::Literal(self.utf8_literal()?)
        } else {
            AppendData::Literal(self.append_literal()?)
        };
        Ok(AppendMessage { flags, date, data })
    }

    /// `TEXT SP literal` / `URL SP astring` (RFC 4469 §5), or `UTF8 (literal8)` (RFC 6855 §4).
    fn cat_part(&mut self) -> PResult<CatPart> {
        if self.keyword("TEXT") {
            self.sp()?;
            Ok(CatPart::Text(self.append_literal()?))
        } else if self.keyword("URL") {
            self.sp()?;
            Ok(CatPart::Url(self.astring()?))
        } else if self.keyword("UTF8") {
            Ok(CatPart::Text(self.utf8_literal()?))
        } else {
            Err("expected TEXT or URL".into())
        }
    }

    /// `SP "(" literal8 ")"` after `UTF8`.
    fn utf8_literal(&mut self) -> PResult<AppendLiteral> {
        self.sp()?;
        self.expect(b'(')?;
        let m = self.append_literal()?;
        self.expect(b')')?;
        Ok(m)
    }

    /// A literal or literal8, with where it starts.
    fn append_literal(&mut self) -> PResult<AppendLiteral> {
        let at = if self.peek() == Some(b'~') {
            self.pos + 1
        } else {
            self.pos
        };
        if !matches!(self.peek(), Some(b'{' | b'~')) {
            return Err("expected a literal".into());
        }
        let data = self.literal()?;
        Ok(AppendLiteral { at, data })
    }
}
