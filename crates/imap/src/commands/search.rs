//! SEARCH and UID SEARCH with every RFC 9051 key, ESEARCH results (MIN MAX COUNT ALL, and PARTIAL
//! of RFC 5267 §4.4 / RFC 9394), SEARCHRES (SAVE, `$`) and RETURN (UPDATE), whose contexts
//! `commands::context` keeps. Flags, dates and sizes come from the index; TEXT/BODY/address and
//! subject keys from the store's full-text index; HEADER and SENT* from the message header.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;

use chrono::NaiveDate;
use wharf_store::{Flags, MessageEntry, TextField, Uid};

use crate::backend::Backend;
use crate::output::Output;
use crate::selected::Selected;
use crate::session::{Done, Session};
use crate::syntax::{SearchKey, SearchReturn, response};

/// Data fetched before evaluating the key tree.
#[derive(Default)]
struct Prefetched {
    /// Substring text keys: whether each message (by index) matches.
    text: HashMap<(u8, String), Vec<bool>>,
    /// FUZZY text keys: the matching UIDs with their relevancy.
    fuzzy: HashMap<(u8, String), HashMap<Uid, u8>>,
    /// Unfolded header block per UID, when a HEADER or SENT* key needs it.
    headers: HashMap<Uid, String>,
    /// UIDs carrying each EMAILID asked about.
    email_ids: HashMap<String, HashSet<Uid>>,
    /// Message indexes matched by each sequence-set key, by the key's address in the tree.
    sets: HashMap<usize, Vec<usize>>,
}

fn field_code(f: TextField) -> u8 {
    match f {
        TextField::Text => 0,
        TextField::Body => 1,
        TextField::Subject => 2,
        TextField::From => 3,
        TextField::To => 4,
        TextField::Cc => 5,
        TextField::Bcc => 6,
    }
}

fn text_key(k: &SearchKey) -> Option<(TextField, &str)> {
    Some(match k {
        SearchKey::Text(s) => (TextField::Text, s),
        SearchKey::Body(s) => (TextField::Body, s),
        SearchKey::Subject(s) => (TextField::Subject, s),
        SearchKey::From(s) => (TextField::From, s),
        SearchKey::To(s) => (TextField::To, s),
        SearchKey::Cc(s) => (TextField::Cc, s),
        SearchKey::Bcc(s) => (TextField::Bcc, s),
        _ => return None,
    })
}

fn walk<'a>(k: &'a SearchKey, f: &mut impl FnMut(&'a SearchKey)) {
    f(k);
    match k {
        SearchKey::And(v) => v.iter().for_each(|x| walk(x, f)),
        SearchKey::Or(a, b) => {
            walk(a, f);
            walk(b, f);
        }
        SearchKey::Not(a) | SearchKey::Fuzzy(a) => walk(a, f),
        _ => {}
    }
}

/// The header block of a raw message, folded lines joined.
fn header_block(raw: &[u8]) -> String {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(raw.len());
    let text = String::from_utf8_lossy(&raw[..end]);
    let mut out = String::with_capacity(text.len());
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            out.push(' ');
            out.push_str(line.trim_start());
        } else {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(line);
        }
    }
    out
}

fn header_values<'a>(block: &'a str, name: &str) -> impl Iterator<Item = &'a str> {
    let name = name.to_string();
    block.split('\n').filter_map(move |l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(&name).then_some(v.trim())
    })
}

fn sent_date(block: Option<&String>, m: &MessageEntry) -> NaiveDate {
    block
        .and_then(|b| header_values(b, "Date").next().map(str::to_string))
        .and_then(|d| chrono::DateTime::parse_from_rfc2822(d.trim()).ok())
        .map(|d| d.date_naive())
        .unwrap_or_else(|| internal_naive(m))
}

fn internal_naive(m: &MessageEntry) -> NaiveDate {
    naive_date(m.internal_date)
}

/// The UTC day of a unix time.
fn naive_date(ts: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|d| d.date_naive())
        .unwrap_or_default()
}

fn has_keyword(m: &MessageEntry, k: &str) -> bool {
    m.keywords.iter().any(|x| x.eq_ignore_ascii_case(k))
}

struct Ctx<'a> {
    sel: &'a Selected,
    pre: &'a Prefetched,
    rev2: bool,
}

/// Which of the mailbox's messages `k` matches, by index. The tree is evaluated a node at a
/// time over the whole mailbox: a text key is one pass over its prefetched answer, not a lookup
/// per message, and And/Or/Not combine whole answers (a 100,000-message mailbox is 100,000
/// steps per node, not 100,000 walks of the tree).
fn eval(k: &SearchKey, ctx: &Ctx<'_>) -> Vec<bool> {
    let n = ctx.sel.msgs.len();
    match k {
        SearchKey::And(v) => {
            let mut acc = vec![true; n];
            for x in v {
                if !acc.contains(&true) {
                    break;
                }
                acc.iter_mut().zip(eval(x, ctx)).for_each(|(a, b)| *a &= b);
            }
            acc
        }
        SearchKey::Or(a, b) => {
            let mut acc = eval(a, ctx);
            if acc.contains(&false) {
                acc.iter_mut().zip(eval(b, ctx)).for_each(|(a, b)| *a |= b);
            }
            acc
        }
        SearchKey::Not(a) => {
            let mut acc = eval(a, ctx);
            acc.iter_mut().for_each(|a| *a = !*a);
            acc
        }
        SearchKey::Fuzzy(a) => match text_key(a) {
            Some((f, s)) => match ctx.pre.fuzzy.get(&(field_code(f), s.to_string())) {
                Some(scored) => ctx
                    .sel
                    .msgs
                    .iter()
                    .map(|m| scored.contains_key(&m.uid))
                    .collect(),
                None => vec![false; n],
            },
            // FUZZY on a key that is not text: the key itself (RFC 6203 §3 leaves it to us).
            None => eval(a, ctx),
        },
        SearchKey::SeqSet(_) | SearchKey::Uid(_) => {
            let mut acc = vec![false; n];
            if let Some(set) = ctx.pre.sets.get(&(k as *const SearchKey as usize)) {
                for &i in set {
                    if let Some(a) = acc.get_mut(i) {
                        *a = true;
                    }
                }
            }
            acc
        }
        leaf => match text_key(leaf) {
            Some((f, s)) => ctx
                .pre
                .text
                .get(&(field_code(f), s.to_string()))
                .cloned()
                .unwrap_or_else(|| vec![false; n]),
            None => (0..n).map(|i| leaf_matches(leaf, i, ctx)).collect(),
        },
    }
}

/// Whether message `idx` matches `k`, a key read from the message's index entry (flags, dates,
/// sizes) or from data prefetched per message (headers, EMAILID). The keys `eval` answers for
/// the whole mailbox at once (And, Or, Not, FUZZY, sets, text) are not asked here.
fn leaf_matches(k: &SearchKey, idx: usize, ctx: &Ctx<'_>) -> bool {
    let m = &ctx.sel.msgs[idx];
    let recent = || ctx.sel.recent.contains(&m.uid) && !ctx.rev2;
    match k {
        SearchKey::All => true,
        SearchKey::Answered => m.flags.contains(Flags::ANSWERED),
        SearchKey::Deleted => m.flags.contains(Flags::DELETED),
        SearchKey::Draft => m.flags.contains(Flags::DRAFT),
        SearchKey::Flagged => m.flags.contains(Flags::FLAGGED),
        SearchKey::Seen => m.flags.contains(Flags::SEEN),
        SearchKey::Recent => recent(),
        SearchKey::New => recent() && !m.flags.contains(Flags::SEEN),
        SearchKey::Old => !recent(),
        SearchKey::Unanswered => !m.flags.contains(Flags::ANSWERED),
        SearchKey::Undeleted => !m.flags.contains(Flags::DELETED),
        SearchKey::Undraft => !m.flags.contains(Flags::DRAFT),
        SearchKey::Unflagged => !m.flags.contains(Flags::FLAGGED),
        SearchKey::Unseen => !m.flags.contains(Flags::SEEN),
        SearchKey::Keyword(k) => has_keyword(m, k),
        SearchKey::Unkeyword(k) => !has_keyword(m, k),
        SearchKey::Before(d) => internal_naive(m) < *d,
        SearchKey::On(d) => internal_naive(m) == *d,
        SearchKey::Since(d) => internal_naive(m) >= *d,
        SearchKey::SavedBefore(d) => naive_date(m.saved_at) < *d,
        SearchKey::SavedOn(d) => naive_date(m.saved_at) == *d,
        SearchKey::SavedSince(d) => naive_date(m.saved_at) >= *d,
        SearchKey::SaveDateSupported => true,
        SearchKey::SentBefore(d) => sent_date(ctx.pre.headers.get(&m.uid), m) < *d,
        SearchKey::SentOn(d) => sent_date(ctx.pre.headers.get(&m.uid), m) == *d,
        SearchKey::SentSince(d) => sent_date(ctx.pre.headers.get(&m.uid), m) >= *d,
        SearchKey::Larger(n) => m.size > *n,
        SearchKey::ModSeq(n) => m.modseq >= *n,
        SearchKey::Smaller(n) => m.size < *n,
        SearchKey::EmailId(id) => ctx
            .pre
            .email_ids
            .get(id)
            .is_some_and(|set| set.contains(&m.uid)),
        // Threads have no ids here (FETCH THREADID is NIL): nothing matches one.
        SearchKey::ThreadId(_) => false,
        SearchKey::Header(name, value) => ctx.pre.headers.get(&m.uid).is_some_and(|b| {
            let needle = value.to_lowercase();
            header_values(b, name).any(|v| v.to_lowercase().contains(&needle))
        }),
        // Answered by `eval` for the whole mailbox.
        _ => false,
    }
}

/// `uids` (any order) as a match per message of a mailbox whose UIDs, in sequence order (so
/// ascending), are `mailbox`: one merge of the two sorted lists, or, for an answer much smaller
/// than the mailbox (a rare word in 100,000 messages), a binary search per UID.
fn uid_bits(mailbox: &[Uid], mut uids: Vec<Uid>) -> Vec<bool> {
    uids.sort_unstable();
    let mut bits = vec![false; mailbox.len()];
    if uids.len().saturating_mul(16) < mailbox.len() {
        for u in &uids {
            if let Ok(i) = mailbox.binary_search(u) {
                bits[i] = true;
            }
        }
        return bits;
    }
    let mut next = uids.iter().peekable();
    for (bit, &uid) in bits.iter_mut().zip(mailbox) {
        while next.next_if(|&&u| u < uid).is_some() {}
        match next.peek() {
            Some(&&u) => *bit = u == uid,
            None => break,
        }
    }
    bits
}

impl Selected {
    /// Like `resolve`, but numbers beyond the mailbox simply match nothing (search semantics).
    fn resolve_lenient(&self, set: &crate::syntax::SeqSet, uid: bool, saved: &[Uid]) -> Vec<usize> {
        use crate::syntax::{SeqNum, SeqSet};
        if uid {
            return self.resolve(set, true, saved).unwrap_or_default();
        }
        match set {
            SeqSet::Saved => self.resolve(set, false, saved).unwrap_or_default(),
            SeqSet::Ranges(r) => {
                let n = self.msgs.len() as u32;
                let clipped: Vec<(SeqNum, SeqNum)> = r
                    .iter()
                    .filter_map(|&(a, b)| {
                        let c = |s| match s {
                            SeqNum::Num(v) => v,
                            SeqNum::Star => n,
                        };
                        let (lo, hi) = (c(a).min(c(b)), c(a).max(c(b)).min(n));
                        (lo >= 1 && lo <= hi).then_some((SeqNum::Num(lo), SeqNum::Num(hi)))
                    })
                    .collect();
                self.resolve(&SeqSet::Ranges(clipped), false, saved)
                    .unwrap_or_default()
            }
        }
    }
}

/// `* ESEARCH (TAG "t" [MAILBOX "m" UIDVALIDITY v]) [UID] [MIN n] [MAX n] [ALL set]
/// [PARTIAL (range set)] [COUNT n]` (RFC 4731, RFC 5267 §4.4, RFC 9394, RFC 7377 §2.1's
/// correlator: the mailbox as the client reads its name, and its UIDVALIDITY) for `nums` in the
/// answer's order (MIN and MAX are its first and last, PARTIAL counts positions in it), without
/// the line end; `all` writes the ALL and PARTIAL sets.
pub(crate) fn esearch_line(
    tag: &str,
    mailbox: Option<(&str, u32)>,
    uid: bool,
    opts: &[SearchReturn],
    nums: &[u32],
    scores: &[u8],
    all: fn(&[u32]) -> String,
) -> Vec<u8> {
    let has = |o| opts.contains(&o);
    let mut line = b"* ESEARCH (TAG ".to_vec();
    response::string(&mut line, tag.as_bytes());
    if let Some((name, uid_validity)) = mailbox {
        line.extend_from_slice(b" MAILBOX ");
        response::string(&mut line, name.as_bytes());
        line.extend_from_slice(format!(" UIDVALIDITY {uid_validity}").as_bytes());
    }
    line.push(b')');
    if uid {
        line.extend_from_slice(b" UID");
    }
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
        line.extend_from_slice(format!(" ALL {}", all(nums)).as_bytes());
    }
    if let Some((a, b)) = SearchReturn::partial_of(opts) {
        let part = &nums[SearchReturn::partial_window(a, b, nums.len())];
        let set = if part.is_empty() {
            "NIL".to_string()
        } else {
            all(part)
        };
        // RFC 5267 §4.4: `500:400` is `400:500`; answered in that order (for a range counted
        // from the end, the end nearest the last result first: `-1:-100`).
        let (lo, hi) = if a.unsigned_abs() <= b.unsigned_abs() {
            (a, b)
        } else {
            (b, a)
        };
        line.extend_from_slice(format!(" PARTIAL ({lo}:{hi} {set})").as_bytes());
    }
    if has(SearchReturn::Count) {
        line.extend_from_slice(format!(" COUNT {}", nums.len()).as_bytes());
    }
    // RFC 6203 §3.2: a score per message returned, in the order ALL (or PARTIAL) lists them;
    // without either, one per match in the answer's order.
    if has(SearchReturn::Relevancy) && !nums.is_empty() {
        let window = match SearchReturn::partial_of(opts) {
            Some((a, b)) => SearchReturn::partial_window(a, b, nums.len()),
            None => 0..nums.len(),
        };
        let listed: Vec<String> = (window)
            .map(|i| scores.get(i).copied().unwrap_or(100).to_string())
            .collect();
        if !listed.is_empty() {
            line.extend_from_slice(format!(" RELEVANCY ({})", listed.join(" ")).as_bytes());
        }
    }
    line
}

/// SEARCH's CHARSET (also SORT's, THREAD's, ESEARCH's): UTF-8 and US-ASCII, else NO
/// [BADCHARSET].
pub(crate) fn check_charset(charset: Option<&str>) -> Result<(), Done> {
    if let Some(cs) = charset
        && !cs.eq_ignore_ascii_case("UTF-8")
        && !cs.eq_ignore_ascii_case("US-ASCII")
    {
        return Err(Done::no(
            Some("BADCHARSET (UTF-8 US-ASCII)"),
            "Unsupported charset",
        ));
    }
    Ok(())
}

/// Whether the key tree has a MODSEQ key (RFC 7162 §3.1.5: it enables CONDSTORE, and the answer
/// carries the highest mod-sequence).
pub(crate) fn uses_modseq(key: &SearchKey) -> bool {
    let mut found = false;
    walk(key, &mut |k| found |= matches!(k, SearchKey::ModSeq(_)));
    found
}

/// Whether the key tree names messages by sequence number (not `$`, which `uses_saved` finds).
pub(crate) fn uses_message_numbers(key: &SearchKey) -> bool {
    use crate::syntax::SeqSet;
    let mut found = false;
    walk(key, &mut |k| {
        found |= matches!(k, SearchKey::SeqSet(SeqSet::Ranges(_)))
    });
    found
}

/// Whether the key tree has a UID set with `*` (the mailbox's newest UID, which moves).
pub(crate) fn uses_uid_star(key: &SearchKey) -> bool {
    use crate::syntax::{SeqNum, SeqSet};
    let mut found = false;
    walk(key, &mut |k| {
        if let SearchKey::Uid(SeqSet::Ranges(r)) = k {
            found |= r
                .iter()
                .any(|&(a, b)| a == SeqNum::Star || b == SeqNum::Star);
        }
    });
    found
}

/// Whether the key tree refers to the saved result `$` (RFC 5182).
pub(crate) fn uses_saved(key: &SearchKey) -> bool {
    use crate::syntax::SeqSet;
    let mut found = false;
    walk(key, &mut |k| {
        found |= matches!(
            k,
            SearchKey::SeqSet(SeqSet::Saved) | SearchKey::Uid(SeqSet::Saved)
        )
    });
    found
}

/// The indexes of `sel`'s messages that `key` matches, ascending. `sel` is the selected
/// mailbox's view, or (ESEARCH over other mailboxes) a view read from the store for the command;
/// `saved` is `$`; `rev2` decides \Recent. A store failure is the reply.
pub(crate) async fn hits_in(
    backend: &Backend,
    sel: &Selected,
    saved: &[Uid],
    rev2: bool,
    key: &SearchKey,
) -> Result<Vec<usize>, Done> {
    hits_scored_in(backend, sel, saved, rev2, key)
        .await
        .map(|(hits, _)| hits)
}

/// `hits_in` with each hit's relevancy (RFC 6203): the best score of the FUZZY text keys that
/// match the message; 100 for every hit of a search without FUZZY text keys, 1 for a hit that
/// none of them matched (it matched through other keys).
pub(crate) async fn hits_scored_in(
    backend: &Backend,
    sel: &Selected,
    saved: &[Uid],
    rev2: bool,
    key: &SearchKey,
) -> Result<(Vec<usize>, Vec<u8>), Done> {
    let mb = sel.mailbox.id;
    let mut pre = Prefetched::default();
    let mut text_queries = Vec::new();
    let mut fuzzy_queries = Vec::new();
    // Text keys under FUZZY are word searches, not substring ones.
    let mut fuzzy_inner = HashSet::new();
    walk(key, &mut |k| {
        if let SearchKey::Fuzzy(inner) = k
            && let Some((f, s)) = text_key(inner)
        {
            fuzzy_inner.insert(&**inner as *const SearchKey as usize);
            fuzzy_queries.push((f, s.to_string()));
        }
    });
    let mut need_headers = false;
    walk(key, &mut |k| {
        if let Some((f, s)) = text_key(k)
            && !fuzzy_inner.contains(&(k as *const SearchKey as usize))
        {
            text_queries.push((f, s.to_string()));
        }
        if matches!(
            k,
            SearchKey::Header(..)
                | SearchKey::SentBefore(_)
                | SearchKey::SentOn(_)
                | SearchKey::SentSince(_)
        ) {
            need_headers = true;
        }
    });
    // The mailbox's UIDs in one contiguous list, for matching text answers against.
    let mailbox_uids: Vec<Uid> = if text_queries.is_empty() {
        Vec::new()
    } else {
        sel.msgs.iter().map(|m| m.uid).collect()
    };
    for (f, s) in text_queries {
        let code = field_code(f);
        if pre.text.contains_key(&(code, s.clone())) {
            continue;
        }
        match backend.messages.search_text(mb, f, &s).await {
            Ok(uids) => {
                pre.text.insert((code, s), uid_bits(&mailbox_uids, uids));
            }
            Err(e) => return Err(Done::store(e)),
        }
    }
    for (f, s) in fuzzy_queries {
        let code = field_code(f);
        if pre.fuzzy.contains_key(&(code, s.clone())) {
            continue;
        }
        match backend.messages.search_words(mb, f, &s).await {
            Ok(scored) => {
                pre.fuzzy.insert((code, s), scored.into_iter().collect());
            }
            Err(e) => return Err(Done::store(e)),
        }
    }
    if need_headers {
        for m in &sel.msgs {
            if sel.pending_expunge.contains(&m.uid) {
                continue;
            }
            match backend.messages.raw(m.message_id).await {
                Ok(raw) => {
                    pre.headers.insert(m.uid, header_block(&raw));
                }
                // Expunged meanwhile (a mailbox read for ESEARCH is not kept in step).
                Err(wharf_store::StoreError::NotFound(_)) => {}
                Err(e) => return Err(Done::store(e)),
            }
        }
    }
    let mut email_ids = Vec::new();
    walk(key, &mut |k| {
        if let SearchKey::EmailId(id) = k {
            email_ids.push(id.clone());
        }
    });
    for id in email_ids {
        // An EMAILID names its message row (`E<row>-<hash>`); the row's own id confirms it.
        let row = id
            .strip_prefix('E')
            .and_then(|r| r.split('-').next())
            .and_then(|n| n.parse::<i64>().ok());
        let holders: Vec<&wharf_store::MessageEntry> = sel
            .msgs
            .iter()
            .filter(|m| Some(m.message_id) == row && !sel.pending_expunge.contains(&m.uid))
            .collect();
        let mut uids = HashSet::new();
        if let Some(first) = holders.first() {
            match backend
                .messages
                .contents(&[first.message_id], true, false)
                .await
            {
                Ok(mut got) => {
                    if let Some(Ok(c)) = got.pop()
                        && c.email_id.as_deref() == Some(id.as_str())
                    {
                        uids.extend(holders.iter().map(|m| m.uid));
                    }
                }
                Err(e) => return Err(Done::store(e)),
            }
        }
        pre.email_ids.insert(id, uids);
    }
    walk(key, &mut |k| {
        let resolved = match k {
            SearchKey::SeqSet(set) => Some(sel.resolve_lenient(set, false, saved)),
            SearchKey::Uid(set) => Some(sel.resolve_lenient(set, true, saved)),
            _ => None,
        };
        if let Some(r) = resolved {
            pre.sets.insert(k as *const SearchKey as usize, r);
        }
    });
    let ctx = Ctx {
        sel,
        pre: &pre,
        rev2,
    };
    let hits: Vec<usize> = eval(key, &ctx)
        .into_iter()
        .enumerate()
        .filter_map(|(i, hit)| hit.then_some(i))
        .collect();
    let scores = hits
        .iter()
        .map(|&i| {
            if pre.fuzzy.is_empty() {
                return 100;
            }
            let uid = sel.msgs[i].uid;
            pre.fuzzy
                .values()
                .filter_map(|m| m.get(&uid).copied())
                .max()
                .unwrap_or(1)
        })
        .collect();
    Ok((hits, scores))
}

/// An ESEARCH answer (RETURN options given, or implied): the response line, without its end,
/// when anything but SAVE was asked, and the UIDs to save when SAVE was.
pub(crate) struct EsearchAnswer {
    pub line: Option<Vec<u8>>,
    pub save: Option<Vec<Uid>>,
}

/// What an ESEARCH answer is asked for: the command's tag and RETURN options; UIDs when `uid`
/// (else sequence numbers); `mailbox` adds RFC 7377's correlator (name, UIDVALIDITY); `modseq`
/// adds the highest mod-sequence of what is returned (a MODSEQ key was used).
pub(crate) struct EsearchAsk<'a> {
    pub tag: &'a str,
    pub mailbox: Option<(&'a str, u32)>,
    pub uid: bool,
    pub opts: &'a [SearchReturn],
    pub modseq: bool,
}

/// The ESEARCH answer for `hits` (indexes into `sel`, ascending, with their FUZZY `scores`).
pub(crate) fn esearch_answer(
    ask: &EsearchAsk<'_>,
    sel: &Selected,
    hits: &[usize],
    scores: &[u8],
) -> EsearchAnswer {
    let EsearchAsk {
        tag,
        mailbox,
        uid,
        opts,
        modseq,
    } = *ask;
    let has = |o| opts.contains(&o);
    let nums: Vec<u32> = hits
        .iter()
        .map(|&i| if uid { sel.msgs[i].uid } else { i as u32 + 1 })
        .collect();
    let hit_uids = || hits.iter().map(|&i| sel.msgs[i].uid);
    // With a MODSEQ key the answer carries the highest mod-sequence of the messages it
    // returns (RFC 7162 §3.1.5); MIN and MAX alone return only those two.
    let highest_of = |idxs: &mut dyn Iterator<Item = usize>| {
        idxs.map(|i| sel.msgs[i].modseq).max().filter(|_| modseq)
    };
    let partial =
        SearchReturn::partial_of(opts).map(|(a, b)| SearchReturn::partial_window(a, b, hits.len()));
    let save = has(SearchReturn::Save).then(|| {
        // RFC 5182 §2.4: with MIN/MAX only, just those are saved; Wharf treats PARTIAL alike
        // (the messages it returns, plus MIN/MAX if asked). ALL or COUNT save every match.
        let only_minmax = (has(SearchReturn::Min) || has(SearchReturn::Max) || partial.is_some())
            && !has(SearchReturn::All)
            && !has(SearchReturn::Count);
        if only_minmax {
            let all: Vec<Uid> = hit_uids().collect();
            let mut v = Vec::new();
            if has(SearchReturn::Min) {
                v.extend(all.first());
            }
            if let Some(w) = partial.clone() {
                v.extend_from_slice(&all[w]);
            }
            if has(SearchReturn::Max) {
                v.extend(all.last());
            }
            v.sort_unstable();
            v.dedup();
            v
        } else {
            hit_uids().collect()
        }
    });
    let others = opts.iter().any(|o| {
        !matches!(
            o,
            SearchReturn::Save | SearchReturn::Update | SearchReturn::Context
        )
    });
    let line = others.then(|| {
        let mut line = esearch_line(
            tag,
            mailbox,
            uid,
            opts,
            &nums,
            scores,
            response::sequence_set,
        );
        let highest = if has(SearchReturn::All) || has(SearchReturn::Count) {
            highest_of(&mut hits.iter().copied())
        } else {
            let ends = [hits.first(), hits.last()];
            let (min, max) = (has(SearchReturn::Min), has(SearchReturn::Max));
            let window = partial.clone().unwrap_or(0..0);
            highest_of(
                &mut ends
                    .into_iter()
                    .zip([min, max])
                    .filter_map(|(i, wanted)| i.copied().filter(|_| wanted))
                    .chain(hits[window].iter().copied()),
            )
        };
        if let Some(h) = highest {
            line.extend_from_slice(format!(" MODSEQ {h}").as_bytes());
        }
        line
    });
    EsearchAnswer { line, save }
}

impl Session {
    /// The message indexes `key` matches in the selected mailbox, ascending; a store failure or
    /// an unsupported charset as the reply.
    pub(crate) async fn search_hits(
        &mut self,
        charset: Option<&str>,
        key: &SearchKey,
        out: &mut Output,
    ) -> Result<Vec<usize>, Done> {
        check_charset(charset)?;
        if uses_modseq(key) {
            self.enable_condstore(out);
        }
        let Some(sel) = self.selected.as_ref() else {
            return Err(Done::bad("No mailbox selected"));
        };
        hits_in(&self.backend, sel, &self.saved, self.rev2, key).await
    }

    /// `search_hits` with each hit's relevancy (see `hits_scored_in`).
    pub(crate) async fn search_hits_scored(
        &mut self,
        charset: Option<&str>,
        key: &SearchKey,
        out: &mut Output,
    ) -> Result<(Vec<usize>, Vec<u8>), Done> {
        check_charset(charset)?;
        if uses_modseq(key) {
            self.enable_condstore(out);
        }
        let Some(sel) = self.selected.as_ref() else {
            return Err(Done::bad("No mailbox selected"));
        };
        hits_scored_in(&self.backend, sel, &self.saved, self.rev2, key).await
    }

    pub(crate) async fn search(
        &mut self,
        tag: &str,
        uid: bool,
        ret: Option<Vec<SearchReturn>>,
        charset: Option<String>,
        key: SearchKey,
        out: &mut Output,
    ) -> Done {
        let keep = match self.context_check(tag, ret.as_deref(), &key, None, out) {
            Ok(k) => k,
            Err(d) => return d,
        };
        let (hits, scores) = match self.search_hits_scored(charset.as_deref(), &key, out).await {
            Ok(h) => h,
            Err(d) => return d,
        };
        let modseq = uses_modseq(&key);
        let Some(sel) = self.selected.as_ref() else {
            return Done::bad("No mailbox selected");
        };
        let ret = match ret {
            Some(r) => Some(crate::commands::context::with_implied_all(r)),
            None if self.rev2 => Some(vec![SearchReturn::All]),
            None => None,
        };
        let context_results: Vec<Uid> = if keep {
            hits.iter().map(|&i| sel.msgs[i].uid).collect()
        } else {
            Vec::new()
        };
        match ret {
            None => {
                // One buffer for the whole line: 100,000 hits were 100,000 small allocations.
                let mut line = Vec::with_capacity(10 + hits.len() * 7);
                line.extend_from_slice(b"* SEARCH");
                for &i in &hits {
                    let n = if uid { sel.msgs[i].uid } else { i as u32 + 1 };
                    let _ = write!(line, " {n}");
                }
                out.extend_from_slice(&line);
                if modseq && let Some(h) = hits.iter().map(|&i| sel.msgs[i].modseq).max() {
                    out.extend_from_slice(format!(" (MODSEQ {h})").as_bytes());
                }
                out.extend_from_slice(b"\r\n");
            }
            Some(opts) => {
                let ask = EsearchAsk {
                    tag,
                    mailbox: None,
                    uid,
                    opts: &opts,
                    modseq,
                };
                let answer = esearch_answer(&ask, sel, &hits, &scores);
                if let Some(mut line) = answer.line {
                    line.extend_from_slice(b"\r\n");
                    out.extend_from_slice(&line);
                }
                if let Some(save) = answer.save {
                    self.saved = save;
                }
            }
        }
        if keep {
            self.keep_context(tag, uid, key, None, context_results);
        }
        Done::ok(if uid {
            "UID SEARCH completed"
        } else {
            "SEARCH completed"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_bits_marks_the_messages_whose_uids_are_listed() {
        let mailbox = [2u32, 3, 5, 8, 13];
        // Unsorted, with UIDs the mailbox does not hold (expunged, or below and above it).
        let bits = uid_bits(&mailbox, vec![13, 1, 4, 3, 3, 99, 8]);
        assert_eq!(bits, [false, true, false, true, true]);
        assert_eq!(uid_bits(&mailbox, Vec::new()), [false; 5]);
        assert!(uid_bits(&[], vec![1, 2]).is_empty());
        // A few UIDs in a large mailbox take the binary-search path.
        let large: Vec<Uid> = (1..=1000).map(|u| u * 2).collect();
        let bits = uid_bits(&large, vec![999, 4, 2000, 3, 2002]);
        let hits: Vec<usize> = (0..large.len()).filter(|&i| bits[i]).collect();
        assert_eq!(hits, [1, 999]);
    }
}
