//! COPY, MOVE (RFC 6851) and their UID forms with COPYUID (RFC 4315).

use wharf_store::Rights;

use crate::commands::store::flag_mask;

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
        // MOVE is COPY, STORE \Deleted and EXPUNGE (RFC 6851 §3.3): `t` and `e` on the source.
        let move_out = Rights::DELETE_MESSAGES.union(Rights::EXPUNGE);
        if is_move && !sel.rights.contains(move_out) {
            return Done::no(Some("NOPERM"), "Rights \"te\" needed to move out");
        }
        let idxs = match sel.resolve(set, uid, &self.saved) {
            Ok(i) => i,
            Err(m) => return Done::bad(m),
        };
        let uids: Vec<u32> = idxs.iter().map(|&i| sel.msgs[i].uid).collect();
        let src = sel.mailbox.id;
        let (dst, dst_rights) = match self.open_mailbox(mailbox, Rights::INSERT).await {
            Ok(f) => (f.mailbox, f.rights),
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
        // The copies keep only the flags the session may set in the target (RFC 4314 §4: `s`,
        // `t`, `w`), decided in the store's write.
        let keep = flag_mask(dst_rights);
        let outcome = match self
            .backend
            .messages
            .transfer(src, &uids, dst.id, is_move, keep)
            .await
        {
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
