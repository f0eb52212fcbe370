//! The view of the selected mailbox this session has announced to its client: the sequence
//! number ↔ UID map with flags, and how store change events become the untagged
//! EXISTS/FETCH/EXPUNGE responses at the moments RFC 9051 §7.4.1 allows them.

use std::collections::{BTreeSet, HashSet};

use tokio::sync::broadcast;
use tracing::{info, warn};
use wharf_store::{Mailbox, MailboxEvent, MessageEntry, ModSeq, Rights, StoreError, Uid};

use crate::commands::notify::MAX_NEW_FETCHED;
use crate::output::Output;
use crate::session::{Session, State};
use crate::syntax::{SeqNum, SeqSet, response};

/// The view of the selected mailbox this session has announced to its client.
pub(crate) struct Selected {
    pub mailbox: Mailbox,
    pub read_only: bool,
    /// Messages by ascending UID; sequence number = index + 1.
    pub msgs: Vec<MessageEntry>,
    pub modseq: ModSeq,
    /// UIDs this session reports as \Recent (IMAP4rev1).
    pub recent: HashSet<Uid>,
    /// Expunged in the store, not yet announced (their sequence numbers still stand).
    pub pending_expunge: BTreeSet<Uid>,
    /// An event arrived (or this session changed something): pull `changes_since` before replying.
    pub dirty: bool,
    /// The keywords the last untagged FLAGS announced.
    pub keywords: KeywordSet,
    /// Searches kept up to date for the client (RFC 5267 `RETURN (UPDATE)`); they end with the
    /// selection.
    pub contexts: Vec<crate::commands::context::SearchContext>,
    /// What the session holds on the mailbox (every right on its own; RFC 4314), read at
    /// selection.
    pub rights: Rights,
    /// The owner's change events, while another account's mailbox is selected (the session's
    /// own receiver only carries its account's).
    pub owner_events: Option<broadcast::Receiver<MailboxEvent>>,
}

/// The keywords a session has announced in FLAGS and PERMANENTFLAGS. A client may only see a
/// keyword in a FETCH after it was announced (RFC 9051 §7.3.5: FLAGS is sent again when the set
/// of defined flags grows), and it is compared without regard to case, as keywords are.
#[derive(Debug, Default, Clone)]
pub(crate) struct KeywordSet {
    /// By upper-cased keyword, as first seen.
    known: std::collections::BTreeMap<String, String>,
}

impl KeywordSet {
    /// Whether `keyword` is new.
    pub fn insert(&mut self, keyword: &str) -> bool {
        let key = keyword.to_ascii_uppercase();
        if self.known.contains_key(&key) {
            return false;
        }
        self.known.insert(key, keyword.to_string());
        true
    }

    /// `* FLAGS (…)` and `* OK [PERMANENTFLAGS (…)]` for the set; the permanent flags are those
    /// `rights` let the session change (RFC 4314 §4: `s` \Seen, `t` \Deleted, `w` the rest;
    /// none when the mailbox is read-only).
    pub fn write_flags(&self, rights: Rights, out: &mut Output) {
        let mut kw = String::new();
        for k in self.known.values() {
            kw.push(' ');
            kw.push_str(k);
        }
        out.extend_from_slice(
            format!("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft{kw})\r\n").as_bytes(),
        );
        let mut permanent: Vec<&str> = Vec::new();
        if rights.contains(Rights::WRITE) {
            permanent.extend(["\\Answered", "\\Flagged"]);
        }
        if rights.contains(Rights::DELETE_MESSAGES) {
            permanent.push("\\Deleted");
        }
        if rights.contains(Rights::SEEN) {
            permanent.push("\\Seen");
        }
        if rights.contains(Rights::WRITE) {
            permanent.push("\\Draft");
            permanent.extend(self.known.values().map(String::as_str));
            permanent.push("\\*");
        }
        let text = if rights.is_empty() {
            "Read-only mailbox"
        } else if permanent.is_empty() {
            "No flags may be changed"
        } else {
            "Flags permitted"
        };
        out.extend_from_slice(
            format!("* OK [PERMANENTFLAGS ({})] {text}\r\n", permanent.join(" ")).as_bytes(),
        );
    }
}

impl Selected {
    /// The rights the session may use on the messages: none when the mailbox is read-only.
    pub fn flag_rights(&self) -> Rights {
        if self.read_only {
            Rights::NONE
        } else {
            self.rights
        }
    }

    /// Removes messages from the view and announces it: one `* n EXPUNGE` per message, or,
    /// once QRESYNC is enabled, one `* VANISHED uids` for all (RFC 7162 §3.2.10).
    pub fn remove_announced(
        &mut self,
        uids: impl IntoIterator<Item = Uid>,
        vanished: bool,
        out: &mut Output,
    ) {
        let uids: Vec<Uid> = uids
            .into_iter()
            .filter(|&u| self.index_of(u).is_some())
            .collect();
        // RFC 5267 §4.3.4: the REMOVEFROM comes before the expunge it follows from.
        self.contexts_lose(&uids, out);
        let mut gone = Vec::new();
        for u in uids {
            if let Some(i) = self.index_of(u) {
                self.msgs.remove(i);
                self.recent.remove(&u);
                self.pending_expunge.remove(&u);
                if vanished {
                    gone.push(u);
                } else {
                    out.extend_from_slice(format!("* {} EXPUNGE\r\n", i + 1).as_bytes());
                }
            }
        }
        if !gone.is_empty() {
            gone.sort_unstable();
            out.extend_from_slice(
                format!(
                    "* VANISHED {}\r\n",
                    crate::syntax::response::sequence_set(&gone)
                )
                .as_bytes(),
            );
        }
    }

    /// Announces the keywords of the messages `uids` not announced yet, before a FETCH shows
    /// them.
    pub fn announce_keywords(&mut self, uids: impl IntoIterator<Item = Uid>, out: &mut Output) {
        let mut grew = false;
        for u in uids {
            if let Some(i) = self.index_of(u) {
                for k in &self.msgs[i].keywords {
                    grew |= self.keywords.insert(k);
                }
            }
        }
        if grew {
            self.keywords.write_flags(self.flag_rights(), out);
        }
    }

    /// Announces those of `keywords` not announced yet (a STORE's own: only they can be new
    /// after it, so the messages need not be walked).
    pub fn announce_new_keywords(&mut self, keywords: &[String], out: &mut Output) {
        let mut grew = false;
        for k in keywords {
            grew |= self.keywords.insert(k);
        }
        if grew {
            self.keywords.write_flags(self.flag_rights(), out);
        }
    }
}

impl Selected {
    pub fn index_of(&self, uid: Uid) -> Option<usize> {
        self.msgs.binary_search_by_key(&uid, |m| m.uid).ok()
    }

    /// Resolves a sequence set (of sequence numbers or UIDs) to message indexes, ascending.
    /// Sequence numbers beyond the mailbox are an error (RFC 9051 §6.4.5 wants BAD).
    pub fn resolve(&self, set: &SeqSet, uid: bool, saved: &[Uid]) -> Result<Vec<usize>, String> {
        let mut out = BTreeSet::new();
        match set {
            SeqSet::Saved => {
                for &u in saved {
                    if let Some(i) = self.index_of(u) {
                        out.insert(i);
                    }
                }
            }
            SeqSet::Ranges(ranges) => {
                let n = self.msgs.len() as u32;
                let max = if uid {
                    self.msgs.last().map(|m| m.uid).unwrap_or(0)
                } else {
                    n
                };
                let value = |s: SeqNum| match s {
                    SeqNum::Num(v) => v,
                    SeqNum::Star => max,
                };
                // Sorted, merged ranges: a set repeating `1:*` many times costs no more than one.
                let mut spans: Vec<(u32, u32)> = ranges
                    .iter()
                    // `*` in an empty mailbox names no message (clients send `1:*` blindly).
                    .filter(|&&(a, b)| max > 0 || (a != SeqNum::Star && b != SeqNum::Star))
                    .map(|&(a, b)| {
                        let (a, b) = (value(a), value(b));
                        (a.min(b), a.max(b))
                    })
                    .collect();
                spans.sort_unstable();
                let mut merged: Vec<(u32, u32)> = Vec::with_capacity(spans.len());
                for (lo, hi) in spans {
                    match merged.last_mut() {
                        Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                        _ => merged.push((lo, hi)),
                    }
                }
                for (lo, hi) in merged {
                    if uid {
                        let start = self.msgs.partition_point(|m| m.uid < lo);
                        for (i, m) in self.msgs.iter().enumerate().skip(start) {
                            if m.uid > hi {
                                break;
                            }
                            out.insert(i);
                        }
                    } else {
                        if hi > n {
                            return Err("Invalid message sequence number".into());
                        }
                        if lo == 0 {
                            continue;
                        }
                        out.extend((lo - 1) as usize..hi as usize);
                    }
                }
            }
        }
        Ok(out.into_iter().collect())
    }
}

/// An event of the owner of the selected mailbox (another account's), as the session takes it
/// in: `Changed` for the selected mailbox when it may concern it (its own change, the owner's
/// mailbox list, lost events), `None` when it does not. The owner's other mailboxes, metadata
/// and list are not this session's to be told about.
pub(crate) fn owner_event(
    selected: wharf_store::MailboxId,
    ev: Result<MailboxEvent, broadcast::error::RecvError>,
    rx: &mut Option<broadcast::Receiver<MailboxEvent>>,
) -> Option<MailboxEvent> {
    let concerned = match ev {
        Ok(MailboxEvent::Changed { mailbox_id, .. }) => mailbox_id == selected,
        Ok(MailboxEvent::MetadataChanged { .. }) => false,
        Ok(MailboxEvent::MailboxesChanged) | Err(broadcast::error::RecvError::Lagged(_)) => true,
        Err(broadcast::error::RecvError::Closed) => {
            *rx = None;
            false
        }
    };
    concerned.then_some(MailboxEvent::Changed {
        mailbox_id: selected,
        highest_modseq: 0,
    })
}

impl Session {
    /// An event received by the loop (during IDLE, or between commands under NOTIFY).
    pub(crate) fn note_event(&mut self, ev: Result<MailboxEvent, broadcast::error::RecvError>) {
        match ev {
            Ok(e) => self.absorb_event(Some(&e)),
            Err(broadcast::error::RecvError::Lagged(_)) => self.absorb_event(None),
            Err(broadcast::error::RecvError::Closed) => self.events = None,
        }
    }

    /// Takes in the events waiting in the receivers.
    pub(crate) fn drain_events(&mut self) {
        if let Some(sel) = self.selected.as_mut()
            && let Some(rx) = sel.owner_events.as_mut()
        {
            loop {
                match rx.try_recv() {
                    Ok(MailboxEvent::Changed { mailbox_id, .. })
                        if mailbox_id != sel.mailbox.id => {}
                    Ok(MailboxEvent::MetadataChanged { .. }) => {}
                    Err(broadcast::error::TryRecvError::Empty) => break,
                    Err(broadcast::error::TryRecvError::Closed) => {
                        sel.owner_events = None;
                        break;
                    }
                    // A change of the mailbox, of the owner's mailbox list (it may be gone), or
                    // events lost: pull.
                    _ => sel.dirty = true,
                }
            }
        }
        loop {
            let Some(rx) = self.events.as_mut() else {
                return;
            };
            match rx.try_recv() {
                Ok(e) => self.absorb_event(Some(&e)),
                Err(broadcast::error::TryRecvError::Lagged(_)) => self.absorb_event(None),
                Err(_) => return,
            }
        }
    }

    /// One store event (`None`: some were lost): the selected view is marked for a pull when it
    /// may be concerned, and NOTIFY records it.
    fn absorb_event(&mut self, ev: Option<&MailboxEvent>) {
        let sel_id = self.selected.as_ref().map(|s| s.mailbox.id);
        let dirty = match ev {
            Some(MailboxEvent::Changed { mailbox_id, .. }) => Some(*mailbox_id) == sel_id,
            // The selected mailbox may be the one deleted: the pull finds out.
            Some(MailboxEvent::MailboxesChanged) | None => true,
            Some(MailboxEvent::MetadataChanged { .. }) => false,
        };
        if dirty && let Some(s) = self.selected.as_mut() {
            s.dirty = true;
        }
        self.notify_absorb(ev);
    }

    /// Brings the announced view up to date with the store and writes the untagged responses;
    /// expunges are held back (their sequence numbers kept) unless `allow_expunge`.
    pub(crate) async fn sync(&mut self, out: &mut Output, allow_expunge: bool) {
        self.drain_events();
        // NOTIFY without a group for the selected mailbox: no message events, the view stays.
        if !self.selected_frozen() {
            let arrived = self.sync_selected(out, allow_expunge).await;
            let items = if arrived.is_empty() {
                Vec::new()
            } else {
                self.new_message_items()
            };
            if !items.is_empty() && self.selected.is_some() {
                // Bounded: the FETCH below is one output; the rest is the client's to fetch.
                let first = &arrived[..arrived.len().min(MAX_NEW_FETCHED)];
                self.fetch_new(first, &items, out).await;
            }
            // After EXISTS, so the message numbers of an ADDTO are valid (RFC 5267 §4.3.3).
            self.update_contexts(out).await;
        }
        self.notify_flush(out).await;
    }

    /// NOTIFY's MessageNew FETCH attributes (RFC 5465 §5.2) for messages just announced.
    async fn fetch_new(
        &mut self,
        uids: &[Uid],
        items: &[crate::syntax::FetchItem],
        out: &mut Output,
    ) {
        let set = SeqSet::Ranges(
            uids.iter()
                .map(|&u| (SeqNum::Num(u), SeqNum::Num(u)))
                .collect(),
        );
        let mut done = self.fetch("*", true, &set, items, None, out).await;
        while done.next == crate::session::Next::More {
            let Some(job) = self.fetch_job.take() else {
                break;
            };
            done = self.fetch_run(job, out).await;
        }
        if done.status != "OK" {
            warn!(session = self.id, reply = %done.text, "NOTIFY: FETCH of new messages failed");
        }
    }

    /// `sync` for the selected mailbox: pulls its changes and announces them; answers the UIDs
    /// of the messages that arrived.
    async fn sync_selected(&mut self, out: &mut Output, allow_expunge: bool) -> Vec<Uid> {
        let announce_flags = self.selected_flag_changes();
        let mut arrived_all = Vec::new();
        let Some(sel) = self.selected.as_mut() else {
            return arrived_all;
        };
        if sel.dirty {
            match self
                .backend
                .messages
                .changes_since(sel.mailbox.id, sel.modseq)
                .await
            {
                Ok(mut ch) => {
                    if !ch.expunged_complete {
                        // The store no longer remembers every expunge since our modseq (a
                        // session idle past the tombstone horizon): compare UIDs instead.
                        match self.backend.messages.index(sel.mailbox.id).await {
                            Ok(now) => {
                                let present: HashSet<Uid> = now.iter().map(|m| m.uid).collect();
                                ch.expunged.extend(
                                    sel.msgs
                                        .iter()
                                        .map(|m| m.uid)
                                        .filter(|u| !present.contains(u)),
                                );
                                ch.expunged.sort_unstable();
                                ch.expunged.dedup();
                            }
                            Err(e) => {
                                warn!(session = self.id, error = %e, "index for a full resync failed");
                                return arrived_all;
                            }
                        }
                    }
                    sel.dirty = false;
                    let before = sel.msgs.len();
                    let max_uid = sel.msgs.last().map(|m| m.uid).unwrap_or(0);
                    let mut flag_changes = Vec::new();
                    for e in ch.changed {
                        if e.uid > max_uid.max(sel.msgs.last().map(|m| m.uid).unwrap_or(0)) {
                            if !ch.expunged.contains(&e.uid) {
                                sel.msgs.push(e);
                            }
                        } else if let Some(i) = sel.index_of(e.uid) {
                            let m = &mut sel.msgs[i];
                            let changed = m.flags.difference(wharf_store::Flags::RECENT)
                                != e.flags.difference(wharf_store::Flags::RECENT)
                                || m.keywords != e.keywords;
                            *m = e;
                            if changed {
                                flag_changes.push(m.uid);
                            }
                        }
                    }
                    for u in ch.expunged {
                        if sel.index_of(u).is_some() {
                            sel.pending_expunge.insert(u);
                        }
                    }
                    sel.modseq = sel.modseq.max(ch.highest_modseq);
                    let arrived: Vec<Uid> = sel.msgs[before.min(sel.msgs.len())..]
                        .iter()
                        .map(|m| m.uid)
                        .collect();
                    sel.announce_keywords(
                        flag_changes.iter().copied().chain(arrived.iter().copied()),
                        out,
                    );
                    arrived_all = arrived;
                    if !announce_flags {
                        flag_changes.clear();
                    }
                    for u in flag_changes {
                        if sel.pending_expunge.contains(&u) {
                            continue;
                        }
                        if let Some(i) = sel.index_of(u) {
                            let m = &sel.msgs[i];
                            let fl = response::flag_list(
                                m.flags,
                                &m.keywords,
                                !self.rev2 && sel.recent.contains(&m.uid),
                            );
                            let modseq = if self.condstore {
                                format!(" MODSEQ ({})", m.modseq)
                            } else {
                                String::new()
                            };
                            out.extend_from_slice(
                                format!(
                                    "* {} FETCH (UID {} FLAGS {}{modseq})\r\n",
                                    i + 1,
                                    m.uid,
                                    fl
                                )
                                .as_bytes(),
                            );
                        }
                    }
                    if sel.msgs.len() != before {
                        out.extend_from_slice(
                            format!("* {} EXISTS\r\n", sel.msgs.len()).as_bytes(),
                        );
                        if !self.rev2 {
                            if !sel.read_only
                                && let Ok(r) =
                                    self.backend.messages.claim_recent(sel.mailbox.id).await
                            {
                                sel.recent.extend(r);
                            }
                            out.extend_from_slice(
                                format!("* {} RECENT\r\n", sel.recent.len()).as_bytes(),
                            );
                        }
                    }
                }
                Err(StoreError::NotFound(_)) => {
                    // Another session deleted the selected mailbox: its sequence numbers can no
                    // longer be kept, so the connection ends (as RFC 9051 §7.1.5 allows).
                    info!(session = self.id, "selected mailbox deleted elsewhere");
                    self.selected = None;
                    self.state = State::Logout;
                    out.extend_from_slice(b"* BYE Selected mailbox was deleted\r\n");
                    return Vec::new();
                }
                Err(e) => warn!(session = self.id, error = %e, "changes_since failed"),
            }
        }
        if allow_expunge && !sel.pending_expunge.is_empty() {
            let pending = std::mem::take(&mut sel.pending_expunge);
            sel.remove_announced(pending, self.qresync, out);
        }
        arrived_all
    }
}
