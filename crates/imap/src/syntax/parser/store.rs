//! STORE, COPY and MOVE arguments.

use super::{PResult, Parser};
use crate::syntax::command::*;

impl Parser<'_> {
    pub(super) fn store(&mut self, uid: bool) -> PResult<CommandKind> {
        self.sp()?;
        let set = self.seq_set()?;
        self.sp()?;
        if self.peek() == Some(b'(') {
            // store-modifiers (UNCHANGEDSINCE) belong to CONDSTORE, not advertised here.
            return Err("STORE modifiers are not supported".into());
        }
        let op = if self.eat(b'+') {
            StoreOp::Add
        } else if self.eat(b'-') {
            StoreOp::Remove
        } else {
            StoreOp::Replace
        };
        let silent = if self.keyword("FLAGS.SILENT") {
            true
        } else if self.keyword("FLAGS") {
            false
        } else {
            return Err("expected FLAGS or FLAGS.SILENT".into());
        };
        self.sp()?;
        let flags = if self.peek() == Some(b'(') {
            self.flag_list()?
        } else {
            let mut f = vec![self.flag()?];
            while self.eat(b' ') {
                f.push(self.flag()?);
            }
            f
        };
        Ok(CommandKind::Store {
            uid,
            set,
            op,
            silent,
            flags,
        })
    }

    pub(super) fn copy_move(&mut self, uid: bool, is_move: bool) -> PResult<CommandKind> {
        self.sp()?;
        let set = self.seq_set()?;
        self.sp()?;
        let mailbox = self.mailbox()?;
        Ok(if is_move {
            CommandKind::Move { uid, set, mailbox }
        } else {
            CommandKind::Copy { uid, set, mailbox }
        })
    }
}
