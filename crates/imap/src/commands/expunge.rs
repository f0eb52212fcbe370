//! EXPUNGE and UID EXPUNGE (RFC 4315): removes \Deleted messages and announces each removal.

use wharf_store::Rights;

use crate::output::Output;
use crate::session::{Done, Session};
use crate::syntax::SeqSet;

impl Session {
    pub(crate) async fn expunge(&mut self, set: Option<SeqSet>, out: &mut Output) -> Done {
        let Some(sel) = self.selected.as_ref() else {
            return Done::bad("No mailbox selected");
        };
        if sel.read_only {
            return Done::no(Some("READ-ONLY"), "Mailbox is read-only");
        }
        if !sel.rights.contains(Rights::EXPUNGE) {
            return Done::no(Some("NOPERM"), "Right \"e\" needed to expunge");
        }
        let restrict: Option<Vec<u32>> = match &set {
            Some(s) => match sel.resolve(s, true, &self.saved) {
                Ok(idxs) => Some(idxs.iter().map(|&i| sel.msgs[i].uid).collect()),
                Err(m) => return Done::bad(m),
            },
            None => None,
        };
        if restrict.as_ref().is_some_and(Vec::is_empty) {
            return Done::ok("UID EXPUNGE completed");
        }
        let mb = sel.mailbox.id;
        let gone = match self.backend.messages.expunge(mb, restrict.as_deref()).await {
            Ok(g) => g,
            Err(e) => return Done::store(e),
        };
        let vanished = self.qresync;
        if let Some(sel) = self.selected.as_mut() {
            sel.remove_announced(gone, vanished, out);
            sel.dirty = true;
        }
        Done::ok(if set.is_some() {
            "UID EXPUNGE completed"
        } else {
            "EXPUNGE completed"
        })
    }
}
