//! QRESYNC (RFC 7162 §3.2): telling a reconnecting client what it missed. SELECT (QRESYNC …)
//! and UID FETCH … (CHANGEDSINCE n VANISHED) answer `* VANISHED (EARLIER)` from the store's
//! tombstones, or, where those were pruned past `[store] expunge_history_days`, by comparing
//! the UIDs the client may know with those that exist: more octets, never a wrong answer.

use std::collections::HashSet;

use wharf_store::{StoreError, Uid};

use crate::output::Output;
use crate::session::Session;
use crate::syntax::{QresyncParams, SeqNum, SeqSet, response};

/// The UIDs of a client's set as sorted, merged spans; `*` is `star`.
pub(crate) fn uid_spans(set: &SeqSet, star: Uid, saved: &[Uid]) -> Vec<(Uid, Uid)> {
    let mut spans: Vec<(Uid, Uid)> = match set {
        SeqSet::Saved => saved.iter().map(|&u| (u, u)).collect(),
        SeqSet::Ranges(ranges) => ranges
            .iter()
            .map(|&(a, b)| {
                let v = |s: SeqNum| match s {
                    SeqNum::Num(n) => n,
                    SeqNum::Star => star,
                };
                (v(a).min(v(b)), v(a).max(v(b)))
            })
            .collect(),
    };
    spans.sort_unstable();
    let mut merged: Vec<(Uid, Uid)> = Vec::with_capacity(spans.len());
    for (a, b) in spans {
        match merged.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
}

fn in_spans(spans: &[(Uid, Uid)], u: Uid) -> bool {
    let i = spans.partition_point(|&(_, b)| b < u);
    spans.get(i).is_some_and(|&(a, _)| a <= u)
}

/// `1:3,7` from sorted, disjoint spans.
fn spans_text(spans: &[(Uid, Uid)]) -> String {
    let parts: Vec<String> = spans
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}:{b}")
            }
        })
        .collect();
    parts.join(",")
}

/// The parts of `spans` (capped at `cap`) holding none of the sorted UIDs `present`.
fn complement(spans: &[(Uid, Uid)], present: &[Uid], cap: Uid) -> Vec<(Uid, Uid)> {
    let mut out = Vec::new();
    for &(a, b) in spans {
        let b = b.min(cap);
        if a > b {
            continue;
        }
        // u64: the next free UID after u32::MAX is past the span, not u32::MAX again.
        let mut from = u64::from(a);
        let start = present.partition_point(|&u| u < a);
        for &u in present[start..].iter().take_while(|&&u| u <= b) {
            if u64::from(u) > from {
                out.push((Uid::try_from(from).unwrap_or(Uid::MAX), u - 1));
            }
            from = u64::from(u) + 1;
        }
        if from <= u64::from(b) {
            out.push((Uid::try_from(from).unwrap_or(Uid::MAX), b));
        }
    }
    out
}

impl Session {
    /// Writes `* VANISHED (EARLIER) …` for the UIDs in `spans` expunged after `since` that this
    /// session no longer shows (nothing when there are none).
    pub(crate) async fn vanished_earlier(
        &self,
        since: u64,
        spans: &[(Uid, Uid)],
        out: &mut Output,
    ) -> Result<(), StoreError> {
        let Some(sel) = self.selected.as_ref() else {
            return Ok(());
        };
        let ch = self
            .backend
            .messages
            .changes_since(sel.mailbox.id, since)
            .await?;
        // What this session still shows (held-back expunges included: they are announced as
        // plain VANISHED when their turn comes).
        let shown: Vec<Uid> = sel.msgs.iter().map(|m| m.uid).collect();
        let cap = ch.uid_next.saturating_sub(1);
        let gone = if ch.expunged_complete {
            let shown: HashSet<Uid> = shown.into_iter().collect();
            let mut uids: Vec<Uid> = ch
                .expunged
                .into_iter()
                .filter(|u| *u <= cap && in_spans(spans, *u) && !shown.contains(u))
                .collect();
            uids.sort_unstable();
            uids.dedup();
            response::sequence_set(&uids)
        } else {
            spans_text(&complement(spans, &shown, cap))
        };
        if !gone.is_empty() {
            out.extend_from_slice(format!("* VANISHED (EARLIER) {gone}\r\n").as_bytes());
        }
        Ok(())
    }
}

impl Session {
    /// After the usual SELECT responses of a QRESYNC SELECT whose UIDVALIDITY matched: what
    /// vanished since the client's mod-sequence, then a FETCH of UID, FLAGS and MODSEQ for each
    /// message changed since (both within its known UIDs, when it gave them).
    pub(crate) async fn qresync_select(
        &mut self,
        q: &QresyncParams,
        uid_next: Uid,
        out: &mut Output,
    ) -> Result<(), StoreError> {
        let star = uid_next.saturating_sub(1);
        let spans = match &q.known_uids {
            Some(set) => uid_spans(set, star, &self.saved),
            None => vec![(1, star.max(1))],
        };
        self.vanished_earlier(q.modseq, &spans, out).await?;
        let Some(sel) = self.selected.as_ref() else {
            return Ok(());
        };
        for (i, m) in sel.msgs.iter().enumerate() {
            if m.modseq > q.modseq && (q.known_uids.is_none() || in_spans(&spans, m.uid)) {
                let recent = !self.rev2 && sel.recent.contains(&m.uid);
                out.extend_from_slice(
                    format!(
                        "* {} FETCH (UID {} FLAGS {} MODSEQ ({}))\r\n",
                        i + 1,
                        m.uid,
                        response::flag_list(m.flags, &m.keywords, recent),
                        m.modseq
                    )
                    .as_bytes(),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_merge_and_complement() {
        let set = SeqSet::Ranges(vec![
            (SeqNum::Num(5), SeqNum::Num(3)),
            (SeqNum::Num(4), SeqNum::Num(9)),
            (SeqNum::Num(20), SeqNum::Star),
        ]);
        let spans = uid_spans(&set, 25, &[]);
        assert_eq!(spans, vec![(3, 9), (20, 25)]);
        assert!(in_spans(&spans, 3) && in_spans(&spans, 9) && in_spans(&spans, 22));
        assert!(!in_spans(&spans, 2) && !in_spans(&spans, 10) && !in_spans(&spans, 26));
        assert_eq!(
            complement(&spans, &[1, 3, 4, 8, 21, 30], 24),
            vec![(5, 7), (9, 9), (20, 20), (22, 24)]
        );
        assert_eq!(complement(&[(1, u32::MAX)], &[], 0), vec![]);
        assert_eq!(
            complement(&[(1, u32::MAX)], &[u32::MAX], u32::MAX),
            vec![(1, u32::MAX - 1)]
        );
        assert_eq!(spans_text(&[(1, 3), (7, 7)]), "1:3,7");
    }
}
