//! SORT and UID SORT (RFC 5256) with SORT=DISPLAY (RFC 5957) and ESORT (RFC 5267 §3.2): the
//! messages SEARCH would match, ordered by keys taken from their stored summaries (never the
//! message bodies), or by FUZZY relevancy (RFC 6203 §4), ties broken by sequence number.

use std::cmp::Ordering;

use wharf_mime::{SortKeys, Summary};
use wharf_store::StoreError;

use crate::commands::search::esearch_line;
use crate::output::Output;
use crate::session::{Done, Session};
use crate::syntax::{SearchKey, SearchReturn, SortCriterion, SortKey, response};

/// Summaries read per store call while collecting keys.
const SUMMARY_BATCH: usize = 512;

impl Session {
    /// The SORT/THREAD keys of the selected mailbox's messages at `idxs`, in that order, read
    /// from their summaries a batch at a time; a message gone meanwhile, or with an unreadable
    /// summary, gets empty keys.
    pub(crate) async fn sort_keys_of(&self, idxs: &[usize]) -> Result<Vec<SortKeys>, StoreError> {
        let Some(sel) = self.selected.as_ref() else {
            return Ok(Vec::new());
        };
        let mut keys = Vec::with_capacity(idxs.len());
        for chunk in idxs.chunks(SUMMARY_BATCH) {
            let ids: Vec<i64> = chunk.iter().map(|&i| sel.msgs[i].message_id).collect();
            let got = self.backend.messages.contents(&ids, true, false).await?;
            keys.extend(got.into_iter().map(|c| {
                c.ok()
                    .and_then(|c| c.summary)
                    .and_then(|s| Summary::decode(&s).ok())
                    .map(|s| s.sort_keys())
                    .unwrap_or_default()
            }));
        }
        keys.resize(idxs.len(), SortKeys::default());
        Ok(keys)
    }

    /// The positions in `hits` (indexes of the selected mailbox's messages, with their FUZZY
    /// `scores`) in the order `criteria` give, ties by message number.
    pub(crate) async fn sort_order(
        &self,
        hits: &[usize],
        scores: &[u8],
        criteria: &[SortCriterion],
    ) -> Result<Vec<usize>, StoreError> {
        let needs_summary = criteria
            .iter()
            .any(|c| !matches!(c.key, SortKey::Arrival | SortKey::Size | SortKey::Relevancy));
        let keys = if needs_summary {
            self.sort_keys_of(hits).await?
        } else {
            vec![SortKeys::default(); hits.len()]
        };
        let Some(sel) = self.selected.as_ref() else {
            return Ok(Vec::new());
        };
        let date = |k: usize| keys[k].sent_date.unwrap_or(sel.msgs[hits[k]].internal_date);
        let score = |k: usize| scores.get(k).copied().unwrap_or(100);
        let compare = |key: SortKey, a: usize, b: usize| -> Ordering {
            let (ma, mb) = (&sel.msgs[hits[a]], &sel.msgs[hits[b]]);
            let (ka, kb) = (&keys[a], &keys[b]);
            match key {
                SortKey::Arrival => ma.internal_date.cmp(&mb.internal_date),
                SortKey::Size => ma.size.cmp(&mb.size),
                SortKey::Date => date(a).cmp(&date(b)),
                SortKey::Subject => ka.subject.cmp(&kb.subject),
                SortKey::From => ka.from.cmp(&kb.from),
                SortKey::To => ka.to.cmp(&kb.to),
                SortKey::Cc => ka.cc.cmp(&kb.cc),
                SortKey::DisplayFrom => ka.display_from.cmp(&kb.display_from),
                SortKey::DisplayTo => ka.display_to.cmp(&kb.display_to),
                // RFC 6203 §4: the most relevant first.
                SortKey::Relevancy => score(b).cmp(&score(a)),
            }
        };
        let mut order: Vec<usize> = (0..hits.len()).collect();
        order.sort_by(|&a, &b| {
            for c in criteria {
                let o = compare(c.key, a, b);
                let o = if c.reverse { o.reverse() } else { o };
                if o != Ordering::Equal {
                    return o;
                }
            }
            hits[a].cmp(&hits[b])
        });
        Ok(order)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn sort(
        &mut self,
        tag: &str,
        uid: bool,
        ret: Option<Vec<SearchReturn>>,
        criteria: &[SortCriterion],
        charset: &str,
        key: SearchKey,
        out: &mut Output,
    ) -> Done {
        let keep = match self.context_check(tag, ret.as_deref(), &key, Some(criteria), out) {
            Ok(k) => k,
            Err(d) => return d,
        };
        let (hits, scores) = match self.search_hits_scored(Some(charset), &key, out).await {
            Ok(h) => h,
            Err(d) => return d,
        };
        let order = match self.sort_order(&hits, &scores, criteria).await {
            Ok(o) => o,
            Err(e) => return Done::store(e),
        };
        let Some(sel) = self.selected.as_ref() else {
            return Done::bad("No mailbox selected");
        };
        let nums: Vec<u32> = order
            .iter()
            .map(|&k| {
                let i = hits[k];
                if uid {
                    sel.msgs[i].uid
                } else {
                    u32::try_from(i + 1).unwrap_or(u32::MAX)
                }
            })
            .collect();
        match ret {
            None => {
                out.extend_from_slice(b"* SORT");
                for n in &nums {
                    out.extend_from_slice(format!(" {n}").as_bytes());
                }
                out.extend_from_slice(b"\r\n");
            }
            Some(opts) => {
                let opts = crate::commands::context::with_implied_all(opts);
                let has = |o| opts.contains(&o);
                if has(SearchReturn::Save) {
                    let mut saved: Vec<u32> = hits.iter().map(|&i| sel.msgs[i].uid).collect();
                    saved.sort_unstable();
                    self.saved = saved;
                }
                if opts.iter().any(|o| {
                    !matches!(
                        o,
                        SearchReturn::Save | SearchReturn::Update | SearchReturn::Context
                    )
                }) {
                    // RFC 5267 §3.2: MIN and MAX are the first and last in sort order, and ALL
                    // keeps the order.
                    let sorted_scores: Vec<u8> = order.iter().map(|&k| scores[k]).collect();
                    let mut line = esearch_line(
                        tag,
                        None,
                        uid,
                        &opts,
                        &nums,
                        &sorted_scores,
                        response::sequence_set,
                    );
                    line.extend_from_slice(b"\r\n");
                    out.extend_from_slice(&line);
                }
            }
        }
        if keep && hits.len() > crate::commands::context::MAX_SORT_CONTEXT_RESULTS {
            crate::commands::context::noupdate(
                tag,
                "Too many results to keep in sort order; narrow the search or use PARTIAL without UPDATE",
                out,
            );
        } else if keep {
            let results = order.iter().map(|&k| sel.msgs[hits[k]].uid).collect();
            self.keep_context(tag, uid, key, Some(criteria.to_vec()), results);
        }
        Done::ok(if uid {
            "UID SORT completed"
        } else {
            "SORT completed"
        })
    }
}
