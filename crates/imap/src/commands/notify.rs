//! NOTIFY (RFC 5465): which events the client is told about, and the untagged responses that
//! tell it. The selected mailbox keeps its usual announcements (EXISTS, FETCH, EXPUNGE) under the
//! `selected`/`selected-delayed` group, and gets none (its view frozen) when NOTIFY names no such
//! group; other mailboxes of the account get `* STATUS` when their messages change; mailbox
//! creation, deletion and renaming get `* LIST` (with `\NonExistent` or `OLDNAME`), subscription
//! changes `* LIST` with or without `\Subscribed`, and METADATA changes `* METADATA mailbox
//! entries`. With NOTIFY active the connection loop hands store events in between commands too
//! (`Session::wants_push`), so they arrive without NOOP or IDLE.
//!
//! Store events are absorbed as they are read (`notify_absorb`) and turned into responses by
//! `notify_flush`, where untagged responses may go: after a command, during IDLE, or between
//! commands. Changes the session made itself are not reported back (RFC 5465 §5: SHOULD): after
//! its own APPEND/COPY/MOVE, or mailbox or subscription change, the snapshot is taken again.

use std::collections::{BTreeSet, HashMap, HashSet};

use tracing::{debug, warn};
use wharf_store::{MailboxEvent, MailboxId, StoreError};

use crate::output::Output;
use crate::session::{Done, Session};
use crate::syntax::{NotifyEvents, NotifyFilter, NotifySet, SourceFilter, response};

/// Mailboxes one session may watch for message events; more is `NO [NOTIFICATIONOVERFLOW]`.
/// Each costs one small snapshot (the counts last sent).
pub(crate) const MAX_WATCHED: usize = 10_000;

/// METADATA changes held for one flush; past it the session gets `OK [NOTIFICATIONOVERFLOW]`
/// and NOTIFY is turned off (RFC 5465 §5.8), rather than holding them without bound.
const MAX_HELD_METADATA: usize = 1024;

/// New messages of the selected mailbox whose MessageNew FETCH attributes are sent per flush;
/// beyond it the client has EXISTS and fetches the rest itself.
pub(crate) const MAX_NEW_FETCHED: usize = 100;

/// The events `BADEVENT` lists (RFC 5465 §3.1): every one supported.
const SUPPORTED_EVENTS: &str = "MessageNew MessageExpunge FlagChange MailboxName \
                                SubscriptionChange MailboxMetadataChange ServerMetadataChange";

/// A mailbox filter with names resolved to stored (UTF-8) names.
#[derive(Debug, Clone)]
enum Scope {
    Inboxes,
    Personal,
    Subscribed,
    Subtree(Vec<String>),
    Mailboxes(Vec<String>),
}

impl Scope {
    fn covers(&self, name: &str, subscribed: &HashSet<String>) -> bool {
        match self {
            Scope::Inboxes => name == "INBOX",
            Scope::Personal => true,
            Scope::Subscribed => subscribed.contains(name),
            Scope::Subtree(roots) => roots.iter().any(|r| {
                r.is_empty()
                    || name == r
                    || name
                        .strip_prefix(r.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            }),
            Scope::Mailboxes(names) => names.iter().any(|n| n == name),
        }
    }
}

/// The counts a watched mailbox's last STATUS reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    messages: u32,
    uid_next: u32,
    uid_validity: u32,
    highest_modseq: u64,
}

/// A session's NOTIFY settings and what it last told the client.
#[derive(Debug)]
pub(crate) struct NotifyState {
    /// The selected mailbox's group: whether expunges wait for a command that allows them,
    /// and its events. `None`: no message events for the selected mailbox (its view is frozen).
    pub selected: Option<(bool, NotifyEvents)>,
    /// The other groups, in the order given: a mailbox belongs to the first that covers it.
    groups: Vec<(Scope, NotifyEvents)>,
    /// The account's mailboxes and subscriptions as last reported (MailboxName,
    /// SubscriptionChange).
    known: HashMap<MailboxId, String>,
    subscribed: HashSet<String>,
    /// Mailboxes watched for message events (the selected one never is), with the counts last
    /// reported (`None`: nothing reported yet).
    watched: HashMap<MailboxId, Option<Counts>>,
    /// Mailboxes with changes not reported yet (filtered by `watched` when flushed).
    pending: BTreeSet<MailboxId>,
    /// The mailbox selected when `watched` was decided: it is left out of `watched`.
    watched_beside: Option<MailboxId>,
    /// More was held than `MAX_HELD_METADATA`: NOTIFY ends at the next flush.
    overflow: bool,
    /// The mailbox list or the subscriptions may have changed.
    list_dirty: bool,
    /// METADATA entries changed: the mailbox (`None` for the server) and the entry names.
    metadata: Vec<(Option<MailboxId>, Vec<String>)>,
}

impl NotifyState {
    /// The events of the group covering `name` (not the selected mailbox's group).
    fn events_for(&self, name: &str) -> Option<&NotifyEvents> {
        self.events_for_in(name, &self.subscribed)
    }

    /// `events_for` with another set of subscriptions (before a change).
    fn events_for_in(&self, name: &str, subscribed: &HashSet<String>) -> Option<&NotifyEvents> {
        self.groups
            .iter()
            .find(|(s, _)| s.covers(name, subscribed))
            .map(|(_, e)| e)
    }

    /// Decides again which mailboxes are watched for message events (every one a group with
    /// message events covers, except the selected one), keeping the counts of those still in.
    fn rewatch(&mut self, selected: Option<MailboxId>) {
        let mut watched = HashMap::new();
        for (id, name) in &self.known {
            if Some(*id) == selected {
                continue;
            }
            if self.events_for(name).is_some_and(|e| e.message_events()) {
                watched.insert(*id, self.watched.get(id).copied().flatten());
            }
        }
        self.watched = watched;
        self.watched_beside = selected;
    }

    /// Whether some group asks for `want` (a mailbox event) about `name`.
    fn wants(&self, name: &str, want: impl Fn(&NotifyEvents) -> bool) -> bool {
        self.events_for(name).is_some_and(want)
    }
}

impl Session {
    /// Whether the connection loop should hand store events in between commands: NOTIFY is
    /// active and no command is half received.
    pub fn wants_push(&self) -> bool {
        self.notify.is_some()
            && self.sasl.is_none()
            && self.idle_tag.is_none()
            && self.fetch_job.is_none()
            && self.esearch_job.is_none()
            && self.rx.is_empty()
    }

    /// Whether NOTIFY left the selected mailbox without message events (its view stays as it
    /// is until NOTIFY changes or the mailbox is selected again).
    pub(crate) fn selected_frozen(&self) -> bool {
        self.notify.as_ref().is_some_and(|n| n.selected.is_none())
    }

    /// Whether flag changes in the selected mailbox are announced (FETCH FLAGS).
    pub(crate) fn selected_flag_changes(&self) -> bool {
        match &self.notify {
            None => true,
            Some(n) => n.selected.as_ref().is_some_and(|(_, e)| e.flag_change),
        }
    }

    /// Expunges of the selected mailbox may be announced between commands.
    pub(crate) fn push_expunges(&self) -> bool {
        self.notify
            .as_ref()
            .and_then(|n| n.selected.as_ref())
            .is_some_and(|(delayed, _)| !delayed)
    }

    /// MessageNew's FETCH attributes for the selected mailbox, if any.
    pub(crate) fn new_message_items(&self) -> Vec<crate::syntax::FetchItem> {
        self.notify
            .as_ref()
            .and_then(|n| n.selected.as_ref())
            .map(|(_, e)| e.fetch.clone())
            .unwrap_or_default()
    }

    /// Records a store event for NOTIFY (the selected mailbox's own are `sync`'s business).
    pub(crate) fn notify_absorb(&mut self, ev: Option<&MailboxEvent>) {
        let sel = self.selected.as_ref().map(|s| s.mailbox.id);
        let Some(n) = self.notify.as_mut() else {
            return;
        };
        match ev {
            // Kept even when not watched (yet): a mailbox created in the same batch of events is
            // watched once the list is read again.
            Some(MailboxEvent::Changed { mailbox_id, .. }) => {
                if Some(*mailbox_id) != sel {
                    n.pending.insert(*mailbox_id);
                }
            }
            Some(MailboxEvent::MailboxesChanged) => n.list_dirty = true,
            Some(MailboxEvent::MetadataChanged {
                mailbox_id,
                entries,
            }) => {
                if n.metadata.len() >= MAX_HELD_METADATA {
                    n.overflow = true;
                } else {
                    n.metadata.push((*mailbox_id, entries.clone()));
                }
            }
            // Lagged: anything may have changed.
            None => {
                n.list_dirty = true;
                let ids: Vec<MailboxId> = n.watched.keys().copied().collect();
                n.pending.extend(ids);
            }
        }
    }

    /// NOTIFY NONE / NOTIFY SET (RFC 5465 §3.1).
    pub(crate) async fn notify_cmd(&mut self, set: Option<NotifySet>, out: &mut Output) -> Done {
        let Some(set) = set else {
            self.notify = None;
            // Back to the usual announcements: whatever the frozen view missed comes next.
            if let Some(sel) = self.selected.as_mut() {
                sel.dirty = true;
            }
            return Done::ok("NOTIFY completed");
        };
        if set.groups.iter().any(|(_, e)| !e.unsupported.is_empty()) {
            return Done::no(
                Some(&format!("BADEVENT ({SUPPORTED_EVENTS})")),
                "Unsupported event",
            );
        }
        let mut selected = None;
        let mut groups = Vec::new();
        for (filter, events) in set.groups {
            match filter {
                NotifyFilter::Selected { delayed } => selected = Some((delayed, events)),
                NotifyFilter::Other(f) => {
                    let scope = match f {
                        SourceFilter::Inboxes => Scope::Inboxes,
                        SourceFilter::Personal => Scope::Personal,
                        SourceFilter::Subscribed => Scope::Subscribed,
                        SourceFilter::Subtree(names) => match self.stored_names(&names, true) {
                            Ok(n) => Scope::Subtree(n),
                            Err(d) => return d,
                        },
                        SourceFilter::Mailboxes(names) => match self.stored_names(&names, false) {
                            Ok(n) => Scope::Mailboxes(n),
                            Err(d) => return d,
                        },
                        SourceFilter::Selected | SourceFilter::SubtreeOne(_) => {
                            return Done::bad("Not a NOTIFY mailbox filter");
                        }
                    };
                    groups.push((scope, events));
                }
            }
        }
        let mut state = NotifyState {
            selected,
            groups,
            known: HashMap::new(),
            subscribed: HashSet::new(),
            watched: HashMap::new(),
            pending: BTreeSet::new(),
            watched_beside: None,
            overflow: false,
            list_dirty: false,
            metadata: Vec::new(),
        };
        if let Err(e) = self.notify_snapshot(&mut state).await {
            return Done::store(e);
        }
        if state.watched.len() > MAX_WATCHED {
            return Done::no(
                Some("NOTIFICATIONOVERFLOW"),
                format!("At most {MAX_WATCHED} mailboxes can be watched"),
            );
        }
        if set.status {
            // RFC 5465 §3.1: a STATUS for every watched mailbox before the tagged OK.
            let mut ids: Vec<MailboxId> = state.watched.keys().copied().collect();
            ids.sort_unstable();
            for id in ids {
                match self.notify_status(&state, id).await {
                    Ok(Some((line, counts))) => {
                        out.extend_from_slice(&line);
                        state.watched.insert(id, Some(counts));
                    }
                    Ok(None) => {}
                    Err(e) => return Done::store(e),
                }
            }
        }
        self.notify = Some(state);
        // A successful NOTIFY SET is an implicit NOOP (§3.1): the command's end announces what
        // the selected mailbox accumulated.
        if let Some(sel) = self.selected.as_mut() {
            sel.dirty = true;
        }
        Done::ok("NOTIFY completed")
    }

    /// Client mailbox names to stored ones; in `subtree`, `""` is the whole namespace.
    fn stored_names(&self, names: &[String], subtree: bool) -> Result<Vec<String>, Done> {
        names
            .iter()
            .map(|n| {
                if subtree && n.is_empty() {
                    Ok(String::new())
                } else {
                    self.mailbox_in(n)
                }
            })
            .collect()
    }

    /// Reads the account's mailboxes and subscriptions into `state` and decides what it
    /// watches; the counts of mailboxes still watched are kept.
    async fn notify_snapshot(&self, state: &mut NotifyState) -> Result<(), StoreError> {
        let account = self.account_id();
        let list = self.backend.mailboxes.list(account).await?;
        let subscribed: HashSet<String> = self
            .backend
            .mailboxes
            .subscriptions(account)
            .await?
            .into_iter()
            .collect();
        state.subscribed = subscribed;
        state.known = list.iter().map(|m| (m.id, m.name.clone())).collect();
        state.rewatch(self.selected.as_ref().map(|s| s.mailbox.id));
        Ok(())
    }

    /// `* STATUS` for a watched mailbox: MESSAGES, UIDNEXT, UIDVALIDITY, and HIGHESTMODSEQ with
    /// FlagChange or once CONDSTORE is enabled (§5.1–§5.3). `None` when the mailbox is gone.
    async fn notify_status(
        &self,
        state: &NotifyState,
        id: MailboxId,
    ) -> Result<Option<(Vec<u8>, Counts)>, StoreError> {
        let Some(name) = state.known.get(&id) else {
            return Ok(None);
        };
        let st = match self.backend.mailboxes.status(id).await {
            Ok(s) => s,
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let counts = Counts {
            messages: st.messages,
            uid_next: st.uid_next,
            uid_validity: st.uid_validity,
            highest_modseq: st.highest_modseq,
        };
        let flags = state.events_for(name).is_some_and(|e| e.flag_change);
        let mut line = b"* STATUS ".to_vec();
        response::astring(&mut line, &self.mailbox_out(name));
        line.extend_from_slice(
            format!(
                " (MESSAGES {} UIDNEXT {} UIDVALIDITY {}",
                st.messages, st.uid_next, st.uid_validity
            )
            .as_bytes(),
        );
        // RFC 5465 §5.1: a flag change elsewhere is told by HIGHESTMODSEQ (with UIDVALIDITY),
        // whether or not CONDSTORE is enabled; §5.2 and §5.3 add it once CONDSTORE is.
        if flags || self.condstore {
            line.extend_from_slice(format!(" HIGHESTMODSEQ {}", st.highest_modseq).as_bytes());
        }
        line.extend_from_slice(b")\r\n");
        Ok(Some((line, counts)))
    }

    /// Writes what NOTIFY owes the client since the last flush.
    pub(crate) async fn notify_flush(&mut self, out: &mut Output) {
        let Some(mut state) = self.notify.take() else {
            return;
        };
        if state.overflow {
            // RFC 5465 §5.8: as if NOTIFY NONE had been given; the selected mailbox goes back to
            // the usual announcements.
            out.extend_from_slice(
                b"* OK [NOTIFICATIONOVERFLOW] Too many notifications; NOTIFY is off\r\n",
            );
            if let Some(sel) = self.selected.as_mut() {
                sel.dirty = true;
            }
            return;
        }
        let sel = self.selected.as_ref().map(|s| s.mailbox.id);
        if !state.list_dirty && state.watched_beside != sel {
            state.rewatch(sel);
        }
        if state.list_dirty {
            state.list_dirty = false;
            let before_known = state.known.clone();
            let before_subscribed = state.subscribed.clone();
            match self.notify_snapshot(&mut state).await {
                Ok(()) => {
                    self.list_changes(&state, &before_known, &before_subscribed, out);
                }
                Err(e) => {
                    warn!(session = self.id, error = %e, "NOTIFY: mailbox list read failed");
                    state.list_dirty = true;
                }
            }
        }
        let pending = std::mem::take(&mut state.pending);
        for id in pending {
            // Not watched (another filter, no message events) or the selected mailbox: nothing
            // to report; a mailbox created since is watched from the list read above.
            if !state.watched.contains_key(&id) {
                continue;
            }
            let last = state.watched.get(&id).copied().flatten();
            match self.notify_status(&state, id).await {
                Ok(Some((line, counts))) => {
                    // Only what the client would see change: a flag change with FlagChange
                    // not asked for, or another session's \Recent claim, says nothing.
                    let flags = state
                        .known
                        .get(&id)
                        .is_some_and(|n| state.wants(n, |e| e.flag_change));
                    let changed = match last {
                        None => true,
                        Some(l) => {
                            l.messages != counts.messages
                                || l.uid_next != counts.uid_next
                                || l.uid_validity != counts.uid_validity
                                || (flags && l.highest_modseq != counts.highest_modseq)
                        }
                    };
                    if changed {
                        out.extend_from_slice(&line);
                    }
                    state.watched.insert(id, Some(counts));
                }
                Ok(None) => {}
                Err(e) => {
                    warn!(session = self.id, error = %e, "NOTIFY: status read failed");
                    state.pending.insert(id);
                }
            }
        }
        for (mailbox, entries) in std::mem::take(&mut state.metadata) {
            self.metadata_change(&state, mailbox, &entries, out);
        }
        self.notify = Some(state);
    }

    /// LIST responses for mailboxes created, deleted or renamed (MailboxName) and for
    /// subscriptions added or removed (SubscriptionChange) between two snapshots.
    fn list_changes(
        &self,
        now: &NotifyState,
        before_known: &HashMap<MailboxId, String>,
        before_subscribed: &HashSet<String>,
        out: &mut Output,
    ) {
        let names: HashSet<&str> = now.known.values().map(String::as_str).collect();
        let attrs = |name: &str, extra: &[&str]| -> String {
            let prefix = format!("{name}/");
            let children = names.iter().any(|n| n.starts_with(&prefix));
            let mut a: Vec<&str> = extra.to_vec();
            a.push(if children {
                "\\HasChildren"
            } else {
                "\\HasNoChildren"
            });
            if now.subscribed.contains(name) {
                a.push("\\Subscribed");
            }
            a.join(" ")
        };
        let mut lines: Vec<(String, Vec<u8>)> = Vec::new();
        let list_line = |attrs: &str, name: &str, oldname: Option<&str>| -> Vec<u8> {
            let mut line = format!("* LIST ({attrs}) \"/\" ").into_bytes();
            response::astring(&mut line, &self.mailbox_out(name));
            if let Some(old) = oldname {
                line.extend_from_slice(b" (\"OLDNAME\" (");
                response::astring(&mut line, &self.mailbox_out(old));
                line.extend_from_slice(b"))");
            }
            line.extend_from_slice(b"\r\n");
            line
        };
        let named = |name: &str| now.wants(name, |e| e.mailbox_name);
        for (id, name) in &now.known {
            match before_known.get(id) {
                None if named(name) => {
                    lines.push((name.clone(), list_line(&attrs(name, &[]), name, None)));
                }
                Some(old) if old != name && (named(name) || named(old)) => {
                    lines.push((name.clone(), list_line(&attrs(name, &[]), name, Some(old))));
                }
                _ => {}
            }
        }
        for (id, old) in before_known {
            if !now.known.contains_key(id) && !names.contains(old.as_str()) && named(old) {
                lines.push((old.clone(), list_line("\\NonExistent", old, None)));
            }
        }
        // Covered before or after the change: an unsubscribed name leaves `subscribed`.
        let sub = |name: &str| {
            now.wants(name, |e| e.subscription_change)
                || now
                    .events_for_in(name, before_subscribed)
                    .is_some_and(|e| e.subscription_change)
        };
        for name in now.subscribed.difference(before_subscribed) {
            if sub(name) {
                lines.push((name.clone(), list_line(&attrs(name, &[]), name, None)));
            }
        }
        for name in before_subscribed.difference(&now.subscribed) {
            if sub(name) {
                let a = if names.contains(name.as_str()) {
                    attrs(name, &[])
                } else {
                    "\\NonExistent".to_string()
                };
                lines.push((name.clone(), list_line(&a, name, None)));
            }
        }
        lines.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, l) in lines {
            out.extend_from_slice(&l);
        }
    }

    /// `* METADATA mailbox entry …` (RFC 5464 §4.4 unsolicited form, RFC 5465 §5.6/§5.7) when a
    /// group asks for that mailbox's (or the server's) metadata changes.
    fn metadata_change(
        &self,
        state: &NotifyState,
        mailbox: Option<MailboxId>,
        entries: &[String],
        out: &mut Output,
    ) {
        if entries.is_empty() {
            return;
        }
        let name = match mailbox {
            None => {
                if !state.groups.iter().any(|(_, e)| e.server_metadata_change) {
                    return;
                }
                String::new()
            }
            Some(id) => {
                let Some(name) = state.known.get(&id) else {
                    return;
                };
                if !state.wants(name, |e| e.mailbox_metadata_change) {
                    return;
                }
                self.mailbox_out(name)
            }
        };
        let mut line = b"* METADATA ".to_vec();
        response::astring(&mut line, &name);
        for e in entries {
            line.push(b' ');
            response::astring(&mut line, e);
        }
        line.extend_from_slice(b"\r\n");
        out.extend_from_slice(&line);
    }

    /// After this session changed a mailbox's messages itself (APPEND, COPY, MOVE): its counts
    /// are taken again without reporting them (RFC 5465 §5).
    pub(crate) async fn notify_own_change(&mut self, id: MailboxId) {
        let Some(mut state) = self.notify.take() else {
            return;
        };
        if state.watched.contains_key(&id) {
            match self.notify_status(&state, id).await {
                Ok(Some((_, counts))) => {
                    state.watched.insert(id, Some(counts));
                    state.pending.remove(&id);
                }
                Ok(None) => {}
                Err(e) => debug!(session = self.id, error = %e, "NOTIFY: status read failed"),
            }
        }
        self.notify = Some(state);
    }

    /// After this session created, deleted or renamed a mailbox or changed a subscription: the
    /// list is taken again without reporting it.
    pub(crate) async fn notify_own_list_change(&mut self) {
        let Some(mut state) = self.notify.take() else {
            return;
        };
        if let Err(e) = self.notify_snapshot(&mut state).await {
            debug!(session = self.id, error = %e, "NOTIFY: mailbox list read failed");
            state.list_dirty = true;
        } else {
            state.list_dirty = false;
        }
        self.notify = Some(state);
    }
}
