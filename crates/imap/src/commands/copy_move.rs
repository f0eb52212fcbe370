//! COPY, MOVE (RFC 6851) and their UID forms with COPYUID (RFC 4315).

use crate::output::Output;
use crate::session::{Done, Session};
use crate::syntax::{SeqSet, response};

impl Session {
    pub(crate) async fn copy_move(
        &mut self,
        uid: bool,
        set: &SeqSet,
        mailbox: &str,
        is_move: bool,
        out: &mut Output,
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
            self.backend.messages.move_to(src, &uids, dst.id).await
        } else {
            self.backend.messages.copy(src, &uids, dst.id).await
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
            let vanished = self.qresync;
            if let Some(sel) = self.selected.as_mut() {
                sel.remove_announced(outcome.mapping.iter().map(|(s, _)| *s), vanished, out);
                sel.dirty = true;
            }
            return Done::ok("MOVE completed");
        }
        match code {
            Some(c) => Done::ok_code(c, "COPY completed"),
            None => Done::ok("COPY completed"),
        }
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
