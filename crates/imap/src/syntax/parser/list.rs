//! LIST and LSUB arguments (RFC 5258 selection and return options, LIST-STATUS).

use super::{PResult, Parser};
use crate::syntax::command::*;

impl Parser<'_> {
    pub(super) fn list(&mut self) -> PResult<CommandKind> {
        self.sp()?;
        let mut select = ListSelect::default();
        let mut extended = false;
        if self.eat(b'(') {
            extended = true;
            self.items_until_close(true, |p| {
                let o = p.atom()?.to_ascii_uppercase();
                match o.as_str() {
                    "SUBSCRIBED" => select.subscribed = true,
                    "REMOTE" => select.remote = true,
                    "RECURSIVEMATCH" => select.recursive_match = true,
                    "SPECIAL-USE" => select.special_use = true,
                    _ => return Err(format!("unknown LIST selection option {o}")),
                }
                Ok(())
            })?;
            if select.recursive_match && !(select.subscribed || select.special_use) {
                return Err("RECURSIVEMATCH needs another selection option".into());
            }
            self.sp()?;
        }
        let reference = self.mailbox()?;
        self.sp()?;
        let mut patterns = Vec::new();
        if self.eat(b'(') {
            extended = true;
            loop {
                patterns.push(self.list_mailbox()?);
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        } else {
            patterns.push(self.list_mailbox()?);
        }
        let mut ret = ListReturn::default();
        if self.eat(b' ') {
            extended = true;
            if !self.keyword("RETURN") {
                return Err("expected RETURN".into());
            }
            self.sp()?;
            self.expect(b'(')?;
            self.items_until_close(true, |p| {
                let o = p.atom()?.to_ascii_uppercase();
                match o.as_str() {
                    "SUBSCRIBED" => ret.subscribed = true,
                    "CHILDREN" => ret.children = true,
                    "SPECIAL-USE" => ret.special_use = true,
                    "STATUS" => {
                        p.sp()?;
                        ret.status = Some(p.status_items()?);
                    }
                    _ => return Err(format!("unknown LIST return option {o}")),
                }
                Ok(())
            })?;
        }
        Ok(CommandKind::List {
            reference,
            patterns,
            select,
            ret,
            extended,
        })
    }
}
