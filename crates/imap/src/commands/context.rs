//! Search contexts (RFC 5267 §4, CONTEXT=SEARCH and CONTEXT=SORT): the result a SEARCH or SORT
//! given `RETURN (UPDATE)` keeps for the selected mailbox, kept up to date as flags change,
//! messages arrive and messages are expunged, and reported to the client as unsolicited
//! `* ESEARCH (TAG "t") [UID] REMOVEFROM (…)` / `ADDTO (…)` responses until CANCELUPDATE or the
//! mailbox is deselected (the contexts live in `Selected`, so they end with it).
//!
//! A context is re-evaluated only for the messages whose mod-sequence passed what it last saw:
//! a message's match can change only when its flags do (every flag change raises it) or when it
//! arrives, because everything else a key tests — text, headers, dates, size — never changes.
//! So the criteria must not depend on the rest of the mailbox: message sequence numbers (they
//! shift with every expunge) and `$` (a later SEARCH replaces it) are refused with
//! `NO [NOUPDATE]`, and a UID set with `*` (the newest UID moves) makes every update a full
//! re-evaluation. SORT keys never change either, so a SORT context re-sorts only when its
//! membership changed, and its existing members keep their relative order.

use std::collections::HashSet;

use tracing::warn;
use wharf_store::{ModSeq, Uid};

use crate::commands::search::{hits_in, uses_message_numbers, uses_saved, uses_uid_star};
use crate::output::Output;
use crate::selected::{KeywordSet, Selected};
use crate::session::{Done, Session};
use crate::syntax::{SearchKey, SearchReturn, SortCriterion, SortKey, response};

/// Updating contexts one session may hold; one more is refused with `NO [NOUPDATE]` (RFC 5267
/// §4.3.1 asks for at least one). Each holds its criteria (bounded by the command line) and one
/// UID per result, so a session holds at most this many copies of its mailbox's UID list.
pub(crate) const MAX_CONTEXTS: usize = 10;

/// One updating search or sort.
pub(crate) struct SearchContext {
    /// The searching command's tag: the correlator of every update.
    pub tag: String,
    /// UID SEARCH / UID SORT: updates carry UIDs, else message numbers.
    pub uid: bool,
    pub key: SearchKey,
    /// SORT's criteria; `None` for SEARCH (results in mailbox order, positions 0).
    pub sort: Option<Vec<SortCriterion>>,
    /// The result as the client holds it: UIDs in the context's order.
    pub results: Vec<Uid>,
    /// Every change to a message up to this mod-sequence is reflected in `results`.
    pub seen_modseq: ModSeq,
    /// Re-evaluate the whole mailbox on every change (the key has a UID set with `*`).
    pub full: bool,
}

/// Results a SORT context may hold: each change of its membership reads the sort keys of all
/// of them again, so a larger one is refused (`NO [NOUPDATE]`) rather than kept.
pub(crate) const MAX_SORT_CONTEXT_RESULTS: usize = 10_000;

/// `* NO [NOUPDATE "tag"] why` (RFC 5267 §4.3.1): the search is answered, not kept.
pub(crate) fn noupdate(tag: &str, why: &str, out: &mut Output) {
    let mut line = b"* NO [NOUPDATE ".to_vec();
    response::string(&mut line, tag.as_bytes());
    line.extend_from_slice(format!("] {why}\r\n").as_bytes());
    out.extend_from_slice(&line);
}

/// The return options an ESEARCH answer lists: with nothing but UPDATE and CONTEXT (or nothing
/// at all, RFC 4731's `RETURN ()`), ALL, so the client has the result its updates apply to.
pub(crate) fn with_implied_all(mut opts: Vec<SearchReturn>) -> Vec<SearchReturn> {
    if opts
        .iter()
        .all(|o| matches!(o, SearchReturn::Update | SearchReturn::Context))
    {
        opts.push(SearchReturn::All);
    }
    opts
}

/// The mod-sequence up to which the view has pulled every change. A message this session's own
/// STORE raised past it is looked at again next time (harmless); taking that higher value
/// instead would skip other sessions' changes below it that were not pulled yet.
fn view_modseq(sel: &Selected) -> ModSeq {
    sel.modseq
}

/// `* ESEARCH (TAG "t") [UID] ITEM (pos set pos set …)`.
fn update_line(out: &mut Output, tag: &str, uid: bool, item: &str, pairs: &[(usize, Vec<u32>)]) {
    if pairs.is_empty() {
        return;
    }
    let mut line = b"* ESEARCH (TAG ".to_vec();
    response::string(&mut line, tag.as_bytes());
    line.push(b')');
    if uid {
        line.extend_from_slice(b" UID");
    }
    line.push(b' ');
    line.extend_from_slice(item.as_bytes());
    line.extend_from_slice(b" (");
    for (k, (pos, nums)) in pairs.iter().enumerate() {
        if k > 0 {
            line.push(b' ');
        }
        line.extend_from_slice(format!("{pos} {}", response::sequence_set(nums)).as_bytes());
    }
    line.extend_from_slice(b")\r\n");
    out.extend_from_slice(&line);
}

impl SearchContext {
    /// The client's number for `uid` in `sel`: the UID, or its message number.
    fn number(&self, sel: &Selected, uid: Uid) -> Option<u32> {
        if self.uid {
            Some(uid)
        } else {
            sel.index_of(uid).and_then(|i| u32::try_from(i + 1).ok())
        }
    }

    /// Removes `gone` from the result and writes the REMOVEFROM that says so, numbered in
    /// `sel` as it stands (before any expunge of them is announced). A SEARCH context removes at
    /// position 0 (wherever they are); a SORT context names each run of consecutive results by
    /// its position, counted after the runs before it were removed.
    fn remove(&mut self, sel: &Selected, gone: &HashSet<Uid>, out: &mut Output) {
        if !self.results.iter().any(|u| gone.contains(u)) {
            return;
        }
        let mut pairs: Vec<(usize, Vec<u32>)> = Vec::new();
        if self.sort.is_none() {
            let nums: Vec<u32> = self
                .results
                .iter()
                .filter(|u| gone.contains(u))
                .filter_map(|&u| self.number(sel, u))
                .collect();
            pairs.push((0, nums));
        } else {
            let mut kept = 0usize;
            let mut in_run = false;
            for &u in &self.results {
                if gone.contains(&u) {
                    let n = self.number(sel, u).unwrap_or(0);
                    match pairs.last_mut() {
                        Some((_, run)) if in_run => run.push(n),
                        _ => pairs.push((kept + 1, vec![n])),
                    }
                    in_run = true;
                } else {
                    kept += 1;
                    in_run = false;
                }
            }
        }
        update_line(out, &self.tag, self.uid, "REMOVEFROM", &pairs);
        self.results.retain(|u| !gone.contains(u));
    }

    /// Replaces the result by `now` (UIDs in the context's order, holding every member of the
    /// old result not removed, in the same relative order) and writes the ADDTO for the
    /// members that are new.
    fn add(&mut self, sel: &Selected, now: Vec<Uid>, out: &mut Output) {
        let old: HashSet<Uid> = self.results.iter().copied().collect();
        let mut pairs: Vec<(usize, Vec<u32>)> = Vec::new();
        if self.sort.is_none() {
            let nums: Vec<u32> = now
                .iter()
                .filter(|u| !old.contains(u))
                .filter_map(|&u| self.number(sel, u))
                .collect();
            if !nums.is_empty() {
                pairs.push((0, nums));
            }
        } else {
            let mut in_run = false;
            for (i, &u) in now.iter().enumerate() {
                if old.contains(&u) {
                    in_run = false;
                    continue;
                }
                let n = self.number(sel, u).unwrap_or(0);
                match pairs.last_mut() {
                    Some((_, run)) if in_run => run.push(n),
                    _ => pairs.push((i + 1, vec![n])),
                }
                in_run = true;
            }
        }
        update_line(out, &self.tag, self.uid, "ADDTO", &pairs);
        self.results = now;
    }
}

impl Selected {
    /// The view reduced to the messages at `idxs`, for evaluating criteria on them alone.
    fn subview(&self, idxs: &[usize]) -> Selected {
        let msgs: Vec<_> = idxs.iter().map(|&i| self.msgs[i].clone()).collect();
        let recent = msgs
            .iter()
            .map(|m| m.uid)
            .filter(|u| self.recent.contains(u))
            .collect();
        Selected {
            mailbox: self.mailbox.clone(),
            read_only: true,
            msgs,
            modseq: self.modseq,
            recent,
            pending_expunge: Default::default(),
            dirty: false,
            keywords: KeywordSet::default(),
            contexts: Vec::new(),
            rights: self.rights,
            owner_events: None,
        }
    }

    /// Before `uids` leave the view (their expunge is about to be announced): each context
    /// holding any of them reports their removal while their message numbers still stand
    /// (RFC 5267 §4.3.4).
    pub(crate) fn contexts_lose(&mut self, uids: &[Uid], out: &mut Output) {
        if self.contexts.is_empty() || uids.is_empty() {
            return;
        }
        let gone: HashSet<Uid> = uids.iter().copied().collect();
        let mut contexts = std::mem::take(&mut self.contexts);
        for c in &mut contexts {
            c.remove(self, &gone, out);
        }
        self.contexts = contexts;
    }
}

impl Session {
    /// Whether a SEARCH or SORT keeps a context, decided before it runs: not without UPDATE
    /// among `ret`; `BAD` when the tag already names a live context (RFC 5267 §4.3); when the
    /// search may run but its result cannot be kept, writes `* NO [NOUPDATE "tag"] why`
    /// (§4.3.1) and answers `Ok(false)`.
    pub(crate) fn context_check(
        &self,
        tag: &str,
        ret: Option<&[SearchReturn]>,
        key: &SearchKey,
        sort: Option<&[SortCriterion]>,
        out: &mut Output,
    ) -> Result<bool, Done> {
        if !ret.is_some_and(|r| r.contains(&SearchReturn::Update)) {
            return Ok(false);
        }
        let Some(sel) = self.selected.as_ref() else {
            return Err(Done::bad("No mailbox selected"));
        };
        if sel.contexts.iter().any(|c| c.tag == tag) {
            return Err(Done::bad(
                "Tag reuse: that tag already names an updating search",
            ));
        }
        let refused = if sel.contexts.len() >= MAX_CONTEXTS {
            Some("Too many updating searches; CANCELUPDATE one first")
        } else if uses_message_numbers(key) {
            Some("Message numbers in the criteria shift with expunges; use UIDs to get updates")
        } else if uses_saved(key) {
            Some("The saved result $ changes with later searches; no updates for it")
        } else if sort.is_some_and(|c| c.iter().any(|c| c.key == SortKey::Relevancy)) {
            Some("Relevancy order is not kept up to date")
        } else {
            None
        };
        let Some(why) = refused else {
            return Ok(true);
        };
        noupdate(tag, why, out);
        Ok(false)
    }

    /// Keeps the result of a searching command that asked for UPDATE and passed
    /// `context_check` (`results`: UIDs in its order).
    pub(crate) fn keep_context(
        &mut self,
        tag: &str,
        uid: bool,
        key: SearchKey,
        sort: Option<Vec<SortCriterion>>,
        results: Vec<Uid>,
    ) {
        let Some(sel) = self.selected.as_mut() else {
            return;
        };
        let seen_modseq = view_modseq(sel);
        let full = uses_uid_star(&key);
        sel.contexts.push(SearchContext {
            tag: tag.to_string(),
            uid,
            key,
            sort,
            results,
            seen_modseq,
            full,
        });
    }

    /// CANCELUPDATE (RFC 5267 §4.3.5): the named contexts stop (and are freed); a tag that
    /// names none is reported, after the others are cancelled.
    pub(crate) fn cancel_update(&mut self, tags: &[String]) -> Done {
        let Some(sel) = self.selected.as_mut() else {
            return Done::bad("No mailbox selected");
        };
        let mut unknown = Vec::new();
        for t in tags {
            match sel.contexts.iter().position(|c| &c.tag == t) {
                Some(i) => {
                    sel.contexts.remove(i);
                }
                None => unknown.push(t.as_str()),
            }
        }
        if unknown.is_empty() {
            Done::ok("CANCELUPDATE completed")
        } else {
            Done::no(
                None,
                format!("No updating search has the tag {}", unknown.join(", ")),
            )
        }
    }

    /// Brings every context up to date with the view (after `sync` announced what changed) and
    /// writes the REMOVEFROM and ADDTO responses; a context whose evaluation fails is retried
    /// at the next change.
    pub(crate) async fn update_contexts(&mut self, out: &mut Output) {
        let Some(sel) = self.selected.as_mut() else {
            return;
        };
        if sel.contexts.is_empty() {
            return;
        }
        let top = view_modseq(sel);
        let mut contexts = std::mem::take(&mut sel.contexts);
        for c in &mut contexts {
            if c.seen_modseq >= top {
                continue;
            }
            if let Err(e) = self.refresh_context(c, top, out).await {
                warn!(session = self.id, tag = %c.tag, error = %e.text, "search context update failed");
            }
        }
        if let Some(sel) = self.selected.as_mut() {
            // A context started meanwhile cannot exist (no command ran), but keep any.
            contexts.append(&mut sel.contexts);
            sel.contexts = contexts;
        }
    }

    /// One context's update: re-evaluates the messages changed since it last looked.
    async fn refresh_context(
        &self,
        c: &mut SearchContext,
        top: ModSeq,
        out: &mut Output,
    ) -> Result<(), Done> {
        let Some(sel) = self.selected.as_ref() else {
            return Ok(());
        };
        // Messages whose expunge is pending stay as they are until it is announced.
        let candidates: Vec<usize> = (0..sel.msgs.len())
            .filter(|&i| {
                let m = &sel.msgs[i];
                (c.full || m.modseq > c.seen_modseq) && !sel.pending_expunge.contains(&m.uid)
            })
            .collect();
        let view = sel.subview(&candidates);
        let hits = hits_in(&self.backend, &view, &[], self.rev2, &c.key).await?;
        let matched: HashSet<Uid> = hits.iter().map(|&i| view.msgs[i].uid).collect();
        let looked: HashSet<Uid> = view.msgs.iter().map(|m| m.uid).collect();
        drop(view);
        let gone: HashSet<Uid> = c
            .results
            .iter()
            .copied()
            .filter(|u| looked.contains(u) && !matched.contains(u))
            .collect();
        let members: HashSet<Uid> = c.results.iter().copied().collect();
        let mut added: Vec<Uid> = matched
            .iter()
            .copied()
            .filter(|u| !members.contains(u))
            .collect();
        if gone.is_empty() && added.is_empty() {
            c.seen_modseq = top;
            return Ok(());
        }
        c.remove(sel, &gone, out);
        added.sort_unstable();
        let now = match &c.sort {
            None => {
                let mut now = c.results.clone();
                now.extend_from_slice(&added);
                now.sort_unstable();
                now
            }
            Some(criteria) => {
                let mut idxs: Vec<usize> = c
                    .results
                    .iter()
                    .chain(added.iter())
                    .filter_map(|&u| sel.index_of(u))
                    .collect();
                idxs.sort_unstable();
                let order = self
                    .sort_order(&idxs, &[], criteria)
                    .await
                    .map_err(Done::store)?;
                order.iter().map(|&k| sel.msgs[idxs[k]].uid).collect()
            }
        };
        c.add(sel, now, out);
        c.seen_modseq = top;
        Ok(())
    }
}
