//! COPY, MOVE (RFC 6851) and their UID forms with COPYUID (RFC 4315); EXPUNGE and UID EXPUNGE.

use crate::session::{Done, Session};
use crate::syntax::{SeqSet, response};

impl Session {
    pub(crate) async fn copy_move(
        &mut self,
        uid: bool,
        set: &SeqSet,
        mailbox: &str,
        is_move: bool,
        out: &mut Vec<u8>,
    ) -> Done {
        let Some(sel) = self.selected.as_ref() else {
            return Done::bad("No mailbox selected");
        };
        if is_move && sel.read_only {
            return Done::no(Some("READ-ONLY"), "Mailbox is read-only");
        }
        let idxs = match sel.resolve(set, uid, &self.saved) {
            Ok(i) => i,
            Err(m) => return Done::bad(m),
        };
        let uids: Vec<u32> = idxs.iter().map(|&i| sel.msgs[i].uid).collect();
        let src = sel.mailbox.id;
        let dst = match self.find_mailbox(mailbox).await {
            Ok(m) => m,
            Err(mut d) => {
                if d.code.as_deref() == Some("NONEXISTENT") {
                    d.code = Some("TRYCREATE".into());
                }
                return d;
            }
        };
        if uids.is_empty() {
            return Done::ok(if is_move {
                "MOVE completed"
            } else {
                "COPY completed"
            });
        }
        let res = if is_move {
            self.store.move_messages(src, &uids, dst.id).await
        } else {
            self.store.copy_messages(src, &uids, dst.id).await
        };
        let outcome = match res {
            Ok(o) => o,
            Err(e) => return Done::store(e),
        };
        let code = if outcome.mapping.is_empty() {
            None
        } else {
            let srcs: Vec<u32> = outcome.mapping.iter().map(|m| m.0).collect();
            let dsts: Vec<u32> = outcome.mapping.iter().map(|m| m.1).collect();
            Some(format!(
                "COPYUID {} {} {}",
                outcome.dst_uid_validity,
                uid_list(&srcs),
                uid_list(&dsts)
            ))
        };
        if is_move {
            if let Some(c) = &code {
                out.extend_from_slice(format!("* OK [{c}] Moved\r\n").as_bytes());
            }
            if let Some(sel) = self.selected.as_mut() {
                for (s, _) in &outcome.mapping {
                    if let Some(i) = sel.index_of(*s) {
                        sel.msgs.remove(i);
                        sel.recent.remove(s);
                        sel.pending_expunge.remove(s);
                        out.extend_from_slice(format!("* {} EXPUNGE\r\n", i + 1).as_bytes());
                    }
                }
                sel.dirty = true;
            }
            return Done::ok("MOVE completed");
        }
        match code {
            Some(c) => Done::ok_code(c, "COPY completed"),
            None => Done::ok("COPY completed"),
        }
    }

    pub(crate) async fn expunge(&mut self, set: Option<SeqSet>, out: &mut Vec<u8>) -> Done {
        let Some(sel) = self.selected.as_ref() else {
            return Done::bad("No mailbox selected");
        };
        if sel.read_only {
            return Done::no(Some("READ-ONLY"), "Mailbox is read-only");
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
        let gone = match self.store.expunge(mb, restrict.as_deref()).await {
            Ok(g) => g,
            Err(e) => return Done::store(e),
        };
        if let Some(sel) = self.selected.as_mut() {
            for u in gone {
                if let Some(i) = sel.index_of(u) {
                    sel.msgs.remove(i);
                    sel.recent.remove(&u);
                    sel.pending_expunge.remove(&u);
                    out.extend_from_slice(format!("* {} EXPUNGE\r\n", i + 1).as_bytes());
                }
            }
            sel.dirty = true;
        }
        Done::ok(if set.is_some() {
            "UID EXPUNGE completed"
        } else {
            "EXPUNGE completed"
        })
    }
}

/// UID list for COPYUID: ranges only where the numbers are consecutive, order kept.
fn uid_list(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    if sorted.windows(2).all(|w| w[0] < w[1]) {
        return response::sequence_set(&sorted);
    }
    sorted.dedup();
    uids.iter()
        .map(|u| u.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
