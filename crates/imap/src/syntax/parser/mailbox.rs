//! Arguments of the mailbox commands: STATUS items.

use super::{PResult, Parser};
use crate::syntax::command::*;

impl Parser<'_> {
    pub(super) fn status_items(&mut self) -> PResult<Vec<StatusItem>> {
        self.expect(b'(')?;
        let mut items = Vec::new();
        self.items_until_close(false, |p| {
            let a = p.atom()?.to_ascii_uppercase();
            items.push(match a.as_str() {
                "MESSAGES" => StatusItem::Messages,
                "RECENT" => StatusItem::Recent,
                "UIDNEXT" => StatusItem::UidNext,
                "UIDVALIDITY" => StatusItem::UidValidity,
                "UNSEEN" => StatusItem::Unseen,
                "DELETED" => StatusItem::Deleted,
                "SIZE" => StatusItem::Size,
                "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
                "DELETED-STORAGE" => StatusItem::DeletedStorage,
                "MAILBOXID" => StatusItem::MailboxId,
                _ => return Err(format!("unknown status item {a}")),
            });
            Ok(())
        })?;
        Ok(items)
    }
}
