//! STORE and UID STORE (+FLAGS, -FLAGS, FLAGS, .SILENT): flags and keywords, persisted.

use wharf_store::{FlagOp, Flags};

use crate::output::Output;
use crate::session::{Done, Session};
use crate::syntax::{Flag, SeqSet, StoreOp, response};

/// Splits client flags into system bits and keywords; `\Recent` and `\*` cannot be stored.
pub(crate) fn split_flags(flags: &[Flag]) -> Result<(Flags, Vec<String>), String> {
    let mut bits = Flags::empty();
    let mut kws: Vec<String> = Vec::new();
    for Flag(f) in flags {
        if let Some(sys) = f.strip_prefix('\\') {
            bits = bits.union(match sys.to_ascii_lowercase().as_str() {
                "seen" => Flags::SEEN,
                "answered" => Flags::ANSWERED,
                "flagged" => Flags::FLAGGED,
                "deleted" => Flags::DELETED,
                "draft" => Flags::DRAFT,
                "recent" => Flags::empty(),
                _ => return Err(format!("Unknown system flag {f}")),
            });
        } else if !kws.iter().any(|k| k.eq_ignore_ascii_case(f)) {
            kws.push(f.clone());
        }
    }
    Ok((bits, kws))
}

impl Session {
    pub(crate) async fn store_cmd(
        &mut self,
        uid: bool,
        set: &SeqSet,
        op: StoreOp,
        silent: bool,
        flags: &[Flag],
        out: &mut Output,
    ) -> Done {
        let Some(sel) = self.selected.as_ref() else {
            return Done::bad("No mailbox selected");
        };
        if sel.read_only {
            return Done::no(Some("READ-ONLY"), "Mailbox is read-only");
        }
        let idxs = match sel.resolve(set, uid, &self.saved) {
            Ok(i) => i,
            Err(m) => return Done::bad(m),
        };
        let (bits, kws) = match split_flags(flags) {
            Ok(x) => x,
            Err(m) => return Done::bad(m),
        };
        let uids: Vec<u32> = idxs
            .iter()
            .map(|&i| sel.msgs[i].uid)
            .filter(|u| !sel.pending_expunge.contains(u))
            .collect();
        let fop = match op {
            StoreOp::Add => FlagOp::Add,
            StoreOp::Remove => FlagOp::Remove,
            StoreOp::Replace => FlagOp::Replace,
        };
        let mb = sel.mailbox.id;
        let updates = match self
            .backend
            .messages
            .store_flags(mb, &uids, fop, bits, &kws)
            .await
        {
            Ok(u) => u,
            Err(e) => return Done::store(e),
        };
        let rev2 = self.rev2;
        let Some(sel) = self.selected.as_mut() else {
            return Done::bad("No mailbox selected");
        };
        for u in updates {
            if let Some(i) = sel.index_of(u.uid) {
                let m = &mut sel.msgs[i];
                m.flags = u.flags;
                m.keywords = u.keywords;
                m.modseq = m.modseq.max(u.modseq);
            }
        }
        // Announced even for .SILENT: the client's next FETCH FLAGS may show them.
        sel.announce_keywords(uids.iter().copied(), out);
        if !silent {
            for u in &uids {
                if let Some(i) = sel.index_of(*u) {
                    let m = &sel.msgs[i];
                    let fl =
                        response::flag_list(m.flags, &m.keywords, !rev2 && sel.recent.contains(u));
                    let line = if uid {
                        format!("* {} FETCH (UID {} FLAGS {})\r\n", i + 1, m.uid, fl)
                    } else {
                        format!("* {} FETCH (FLAGS {})\r\n", i + 1, fl)
                    };
                    out.extend_from_slice(line.as_bytes());
                }
            }
        }
        Done::ok(if uid {
            "UID STORE completed"
        } else {
            "STORE completed"
        })
    }
}
