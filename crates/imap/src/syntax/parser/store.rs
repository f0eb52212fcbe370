//! STORE, COPY and MOVE arguments.

use super::{PResult, Parser};
use crate::syntax::command::*;

impl Parser<'_> {
    pub(super) fn store(&mut self, uid: bool) -> PResult<CommandKind> {
        self.sp()?;
        let set = self.seq_set()?;
        self.sp()?;
        let mut unchanged_since = None;
        if self.eat(b'(') {
            self.items_until_close(false, |p| {
                if p.keyword("UNCHANGEDSINCE") && unchanged_since.is_none() {
                    p.sp()?;
                    // mod-sequence-valzer: 0 is allowed (it fails for every message).
                    unchanged_since = Some(p.mod_sequence_valzer()?);
                    Ok(())
                } else {
                    Err("unknown or repeated STORE modifier".into())
                }
            })?;
            self.sp()?;
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
            unchanged_since,
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
