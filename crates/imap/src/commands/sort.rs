//! SORT and UID SORT (RFC 5256) with SORT=DISPLAY (RFC 5957) and ESORT (RFC 5267 §3.2): the
//! messages SEARCH would match, ordered by keys taken from their stored summaries (never the
//! message bodies), ties broken by sequence number.

use std::cmp::Ordering;

use wharf_mime::{SortKeys, Summary};

use crate::output::Output;
use crate::session::{Done, Session};
use crate::syntax::{SearchKey, SearchReturn, SortCriterion, SortKey, response};

/// Summaries read per store call while collecting keys.
const SUMMARY_BATCH: usize = 512;

/// `a:b` runs for consecutive ascending numbers, commas otherwise: the order is the answer.
fn ordered_set(nums: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < nums.len() {
        let mut j = i;
        while j + 1 < nums.len() && nums[j + 1] == nums[j].wrapping_add(1) {
            j += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if j > i {
            out.push_str(&format!("{}:{}", nums[i], nums[j]));
        } else {
            out.push_str(&nums[i].to_string());
        }
        i = j + 1;
    }
    out
}

impl Session {
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
        let hits = match self.search_hits(Some(charset), &key, out).await {
            Ok(h) => h,
            Err(d) => return d,
        };
        let Some(sel) = self.selected.as_ref() else {
            return Done::bad("No mailbox selected");
        };
        let needs_summary = criteria
            .iter()
            .any(|c| !matches!(c.key, SortKey::Arrival | SortKey::Size));
        let mut keys: Vec<SortKeys> = Vec::with_capacity(hits.len());
        if needs_summary {
            for chunk in hits.chunks(SUMMARY_BATCH) {
                let ids: Vec<i64> = chunk.iter().map(|&i| sel.msgs[i].message_id).collect();
                let got = match self.backend.messages.contents(&ids, true, false).await {
                    Ok(g) => g,
                    Err(e) => return Done::store(e),
                };
                // A message gone meanwhile, or an unreadable summary, sorts with empty keys.
                keys.extend(got.into_iter().map(|c| {
                    c.ok()
                        .and_then(|c| c.summary)
                        .and_then(|s| Summary::decode(&s).ok())
                        .map(|s| s.sort_keys())
                        .unwrap_or_default()
                }));
            }
        }
        keys.resize(hits.len(), SortKeys::default());
        let date = |k: usize| keys[k].sent_date.unwrap_or(sel.msgs[hits[k]].internal_date);
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
                let opts = if opts.is_empty() {
                    vec![SearchReturn::All]
                } else {
                    opts
                };
                let has = |o| opts.contains(&o);
                if has(SearchReturn::Save) {
                    let mut saved: Vec<u32> = hits.iter().map(|&i| sel.msgs[i].uid).collect();
                    saved.sort_unstable();
                    self.saved = saved;
                }
                if opts.iter().any(|o| *o != SearchReturn::Save) {
                    let mut line = b"* ESEARCH (TAG ".to_vec();
                    response::string(&mut line, tag.as_bytes());
                    line.push(b')');
                    if uid {
                        line.extend_from_slice(b" UID");
                    }
                    // RFC 5267 §3.2: MIN and MAX are the first and last in sort order.
                    if has(SearchReturn::Min)
                        && let Some(n) = nums.first()
                    {
                        line.extend_from_slice(format!(" MIN {n}").as_bytes());
                    }
                    if has(SearchReturn::Max)
                        && let Some(n) = nums.last()
                    {
                        line.extend_from_slice(format!(" MAX {n}").as_bytes());
                    }
                    if has(SearchReturn::All) && !nums.is_empty() {
                        line.extend_from_slice(format!(" ALL {}", ordered_set(&nums)).as_bytes());
                    }
                    if has(SearchReturn::Count) {
                        line.extend_from_slice(format!(" COUNT {}", nums.len()).as_bytes());
                    }
                    line.extend_from_slice(b"\r\n");
                    out.extend_from_slice(&line);
                }
            }
        }
        Done::ok(if uid {
            "UID SORT completed"
        } else {
            "SORT completed"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::ordered_set;

    #[test]
    fn ordered_sets_keep_the_order() {
        assert_eq!(ordered_set(&[1, 2, 3, 7, 5, 6, 4]), "1:3,7,5:6,4");
        assert_eq!(ordered_set(&[9]), "9");
        assert_eq!(ordered_set(&[]), "");
    }
}
