//! STORE and UID STORE (+FLAGS, -FLAGS, FLAGS, .SILENT): flags and keywords, persisted.

use wharf_store::{FlagMask, FlagOp, Flags, Rights};

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

/// What `rights` let a session set or clear (RFC 4314 §4): `s` \Seen, `t` \Deleted, `w` the
/// other flags and the keywords.
pub(crate) fn flag_mask(rights: Rights) -> FlagMask {
    let mut flags = Flags::empty();
    if rights.contains(Rights::SEEN) {
        flags = flags.union(Flags::SEEN);
    }
    if rights.contains(Rights::DELETE_MESSAGES) {
        flags = flags.union(Flags::DELETED);
    }
    let keywords = rights.contains(Rights::WRITE);
    if keywords {
        flags = flags.union(Flags::ANSWERED.union(Flags::FLAGGED).union(Flags::DRAFT));
    }
    FlagMask { flags, keywords }
}

/// The part of a flag change `rights` allow; the rest is left off silently, as Dovecot does.
pub(crate) fn permitted_flags(
    bits: Flags,
    keywords: Vec<String>,
    rights: Rights,
) -> (Flags, Vec<String>) {
    let mask = flag_mask(rights);
    let keywords = if mask.keywords { keywords } else { Vec::new() };
    (Flags(bits.0 & mask.flags.0), keywords)
}

/// A STORE as the flag changes `rights` allow (RFC 4314 §4): itself when they allow every flag;
/// else an addition or removal of the allowed flags only, or a FLAGS replacement within them
/// (the others kept as they are), one write either way.
fn permitted_change(
    op: FlagOp,
    bits: Flags,
    kws: Vec<String>,
    rights: Rights,
) -> (FlagOp, Flags, Vec<String>) {
    let all = Rights::SEEN
        .union(Rights::WRITE)
        .union(Rights::DELETE_MESSAGES);
    if rights.contains(all) {
        return (op, bits, kws);
    }
    let (bits, kws) = permitted_flags(bits, kws, rights);
    if op != FlagOp::Replace {
        return (op, bits, kws);
    }
    (FlagOp::ReplaceWithin(flag_mask(rights)), bits, kws)
}

impl Session {
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn store_cmd(
        &mut self,
        uid: bool,
        set: &SeqSet,
        op: StoreOp,
        silent: bool,
        flags: &[Flag],
        unchanged_since: Option<u64>,
        out: &mut Output,
    ) -> Done {
        if unchanged_since.is_some() {
            self.enable_condstore(out);
        }
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
        let rights = sel.flag_rights();
        let (fop, bits, kws) = permitted_change(fop, bits, kws, rights);
        let added_kws: Vec<String> = if fop == FlagOp::Remove {
            Vec::new()
        } else {
            kws.clone()
        };
        let (updates, modified) = match self
            .backend
            .messages
            .store_flags(mb, &uids, fop, bits, &kws, unchanged_since)
            .await
        {
            Ok(u) => u,
            Err(e) => return Done::store(e),
        };

        let (rev2, condstore) = (self.rev2, self.condstore);
        let Some(sel) = self.selected.as_mut() else {
            return Done::bad("No mailbox selected");
        };
        let mut changed = std::collections::HashSet::new();
        for u in updates {
            if let Some(i) = sel.index_of(u.uid) {
                let m = &mut sel.msgs[i];
                m.flags = u.flags;
                m.keywords = u.keywords;
                m.modseq = m.modseq.max(u.modseq);
                changed.insert(u.uid);
            }
        }
        // Announced even for .SILENT: the client's next FETCH FLAGS may show them.
        if !added_kws.is_empty() && !changed.is_empty() {
            sel.announce_new_keywords(&added_kws, out);
        }
        for u in uids.iter().filter(|u| !modified.contains(u)) {
            let Some(i) = sel.index_of(*u) else { continue };
            let m = &sel.msgs[i];
            let mut items = Vec::new();
            if uid || condstore {
                items.push(format!("UID {}", m.uid));
            }
            if !silent {
                let fl = response::flag_list(m.flags, &m.keywords, !rev2 && sel.recent.contains(u));
                items.push(format!("FLAGS {fl}"));
            }
            // Under CONDSTORE a .SILENT store still reports the new MODSEQ of what it changed
            // (RFC 7162 §3.1.3).
            if condstore && (!silent || changed.contains(u)) {
                items.push(format!("MODSEQ ({})", m.modseq));
            }
            if !silent || (condstore && changed.contains(u)) {
                out.extend_from_slice(
                    format!("* {} FETCH ({})\r\n", i + 1, items.join(" ")).as_bytes(),
                );
            }
        }
        let completed = if uid {
            "UID STORE completed"
        } else {
            "STORE completed"
        };
        if modified.is_empty() {
            return Done::ok(completed);
        }
        // The messages the UNCHANGEDSINCE test kept unchanged: UIDs for UID STORE, message
        // numbers otherwise (RFC 7162 §3.1.3).
        let mut nums: Vec<u32> = if uid {
            modified
        } else {
            modified
                .iter()
                .filter_map(|u| sel.index_of(*u))
                .filter_map(|i| u32::try_from(i + 1).ok())
                .collect()
        };
        nums.sort_unstable();
        Done::ok_code(
            format!("MODIFIED {}", response::sequence_set(&nums)),
            "Conditional STORE failed",
        )
    }
}
