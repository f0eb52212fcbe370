//! SEARCH arguments: RETURN options, CHARSET and the key tree (depth-bounded).

use super::{MAX_DEPTH, PResult, Parser};

/// Most mailbox filters in one ESEARCH's source options.
const MAX_SOURCE_FILTERS: usize = 64;
/// Most mailbox names in one ESEARCH's source options, all filters together.
const MAX_SOURCE_NAMES: usize = 1000;
use crate::syntax::command::*;

/// Most FUZZY keys one SEARCH, SORT or ESEARCH may hold (`search_keys`).
pub const MAX_FUZZY_KEYS: usize = 8;

/// How many FUZZY keys `key` holds, nested ones included.
fn fuzzy_keys(key: &SearchKey) -> usize {
    match key {
        SearchKey::Fuzzy(inner) => 1 + fuzzy_keys(inner),
        SearchKey::Not(inner) => fuzzy_keys(inner),
        SearchKey::Or(l, r) => fuzzy_keys(l) + fuzzy_keys(r),
        SearchKey::And(keys) => keys.iter().map(fuzzy_keys).sum(),
        _ => 0,
    }
}

impl Parser<'_> {
    /// `SORT [RETURN (…)] (criteria) charset search-key…` (RFC 5256, RFC 5267 §3.2).
    pub(super) fn sort(&mut self, uid: bool) -> PResult<CommandKind> {
        self.sp()?;
        let ret = self.search_return()?;
        self.expect(b'(')?;
        let mut criteria = Vec::new();
        self.items_until_close(false, |p| {
            if criteria.len() >= 16 {
                return Err("too many SORT criteria".into());
            }
            let reverse = p.keyword("REVERSE");
            if reverse {
                p.sp()?;
            }
            let k = p.atom()?.to_ascii_uppercase();
            let key = match k.as_str() {
                "ARRIVAL" => SortKey::Arrival,
                "CC" => SortKey::Cc,
                "DATE" => SortKey::Date,
                "FROM" => SortKey::From,
                "SIZE" => SortKey::Size,
                "SUBJECT" => SortKey::Subject,
                "TO" => SortKey::To,
                "DISPLAYFROM" => SortKey::DisplayFrom,
                "DISPLAYTO" => SortKey::DisplayTo,
                "RELEVANCY" => SortKey::Relevancy,
                _ => return Err(format!("unknown SORT key {k}")),
            };
            criteria.push(SortCriterion { reverse, key });
            Ok(())
        })?;
        self.sp()?;
        let charset = self.astring()?;
        self.sp()?;
        let key = self.search_keys()?;
        Ok(CommandKind::Sort {
            uid,
            ret,
            criteria,
            charset,
            key,
        })
    }

    /// `THREAD algorithm charset search-key…` (RFC 5256).
    pub(super) fn thread(&mut self, uid: bool) -> PResult<CommandKind> {
        self.sp()?;
        let a = self.atom()?.to_ascii_uppercase();
        let algorithm = match a.as_str() {
            "ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
            "REFERENCES" => ThreadAlgorithm::References,
            _ => return Err(format!("unknown THREAD algorithm {a}")),
        };
        self.sp()?;
        let charset = self.astring()?;
        self.sp()?;
        let key = self.search_keys()?;
        Ok(CommandKind::Thread {
            uid,
            algorithm,
            charset,
            key,
        })
    }

    /// `RETURN (…) SP`, when present (ESEARCH, RFC 4731; ESORT, RFC 5267).
    fn search_return(&mut self) -> PResult<Option<Vec<SearchReturn>>> {
        if !self.keyword("RETURN") {
            return Ok(None);
        }
        self.sp()?;
        self.expect(b'(')?;
        let mut opts = Vec::new();
        self.items_until_close(true, |p| {
            let o = p.atom()?.to_ascii_uppercase();
            opts.push(match o.as_str() {
                "MIN" => SearchReturn::Min,
                "MAX" => SearchReturn::Max,
                "ALL" => SearchReturn::All,
                "COUNT" => SearchReturn::Count,
                "SAVE" => SearchReturn::Save,
                "RELEVANCY" => SearchReturn::Relevancy,
                "UPDATE" => SearchReturn::Update,
                "CONTEXT" => SearchReturn::Context,
                "PARTIAL" => {
                    p.sp()?;
                    p.partial_range()?
                }
                _ => return Err(format!("unknown SEARCH return option {o}")),
            });
            Ok(())
        })?;
        // RFC 9394 §3.1: at most one PARTIAL or ALL; a repeated option is refused too.
        let ranged = opts
            .iter()
            .filter(|o| matches!(o, SearchReturn::All | SearchReturn::Partial(..)))
            .count();
        if ranged > 1 {
            return Err("at most one of PARTIAL and ALL may be given".into());
        }
        if opts.iter().filter(|o| **o == SearchReturn::Update).count() > 1 {
            return Err("UPDATE given twice".into());
        }
        self.sp()?;
        Ok(Some(opts))
    }

    /// `partial-range` (RFC 9394): `nz-number ":" nz-number` or `"-" nz-number ":" "-"
    /// nz-number`, either end first.
    fn partial_range(&mut self) -> PResult<SearchReturn> {
        let neg = self.eat(b'-');
        let a = i64::from(self.nz_number()?);
        self.expect(b':')?;
        if self.eat(b'-') != neg {
            return Err("PARTIAL range ends of different signs".into());
        }
        let b = i64::from(self.nz_number()?);
        Ok(if neg {
            SearchReturn::Partial(-a, -b)
        } else {
            SearchReturn::Partial(a, b)
        })
    }

    /// One or more search keys, ANDed. At most `MAX_FUZZY_KEYS` FUZZY keys: each one reads and
    /// stems the text of every message searched (of every mailbox, under ESEARCH), so a line
    /// of them would cost without bound.
    fn search_keys(&mut self) -> PResult<SearchKey> {
        let mut keys = vec![self.search_key(0)?];
        while self.eat(b' ') {
            keys.push(self.search_key(0)?);
        }
        let key = if keys.len() == 1 {
            keys.pop().unwrap_or(SearchKey::All)
        } else {
            SearchKey::And(keys)
        };
        if fuzzy_keys(&key) > MAX_FUZZY_KEYS {
            return Err(format!("at most {MAX_FUZZY_KEYS} FUZZY keys per command"));
        }
        Ok(key)
    }

    /// `[CHARSET c SP]` before the search keys of SEARCH and ESEARCH.
    fn search_charset(&mut self) -> PResult<Option<String>> {
        if !self.keyword("CHARSET") {
            return Ok(None);
        }
        self.sp()?;
        let charset = self.astring()?;
        self.sp()?;
        Ok(Some(charset))
    }

    pub(super) fn search(&mut self, uid: bool) -> PResult<CommandKind> {
        self.sp()?;
        let ret = self.search_return()?;
        let charset = self.search_charset()?;
        let key = self.search_keys()?;
        Ok(CommandKind::Search {
            uid,
            ret,
            charset,
            key,
        })
    }

    /// `ESEARCH [IN (source-mbox)] [RETURN (…)] [CHARSET c] search-key…` (RFC 7377 §4).
    pub(super) fn esearch(&mut self) -> PResult<CommandKind> {
        self.sp()?;
        let mut sources = None;
        if self.keyword("IN") {
            self.sp()?;
            self.expect(b'(')?;
            sources = Some(self.source_filters()?);
            self.sp()?;
        }
        let ret = self.search_return()?;
        let charset = self.search_charset()?;
        let key = self.search_keys()?;
        Ok(CommandKind::Esearch {
            sources,
            ret,
            charset,
            key,
        })
    }

    /// `source-mbox [SP "(" scope-options ")"] ")"` after `IN (`: NOTIFY's mailbox filters
    /// (RFC 5465 §6) with RFC 7377's `subtree-one`. No scope option is defined, so any is
    /// refused.
    fn source_filters(&mut self) -> PResult<Vec<SourceFilter>> {
        let mut filters = Vec::new();
        let mut names = 0usize;
        loop {
            if self.peek() == Some(b'(') {
                return Err("unknown ESEARCH scope option".into());
            }
            let f = self.atom()?.to_ascii_lowercase();
            let filter = match f.as_str() {
                "selected" | "selected-delayed" => SourceFilter::Selected,
                "inboxes" => SourceFilter::Inboxes,
                "personal" => SourceFilter::Personal,
                "subscribed" => SourceFilter::Subscribed,
                "subtree" | "subtree-one" | "mailboxes" => {
                    self.sp()?;
                    let list = self.one_or_more_mailbox(&mut names)?;
                    match f.as_str() {
                        "subtree" => SourceFilter::Subtree(list),
                        "subtree-one" => SourceFilter::SubtreeOne(list),
                        _ => SourceFilter::Mailboxes(list),
                    }
                }
                _ => return Err(format!("unknown mailbox filter {f}")),
            };
            if filters.len() >= MAX_SOURCE_FILTERS {
                return Err("too many mailbox filters".into());
            }
            filters.push(filter);
            if self.eat(b')') {
                return Ok(filters);
            }
            self.sp()?;
        }
    }

    /// `mailbox / "(" mailbox *(SP mailbox) ")"` (RFC 5465 §8), counting names into `names`.
    pub(super) fn one_or_more_mailbox(&mut self, names: &mut usize) -> PResult<Vec<String>> {
        let mut list = Vec::new();
        let mut one = |p: &mut Self| {
            *names += 1;
            if *names > MAX_SOURCE_NAMES {
                return Err("too many mailbox names in the source options".to_string());
            }
            list.push(p.mailbox()?);
            Ok(())
        };
        if self.eat(b'(') {
            self.items_until_close(false, &mut one)?;
        } else {
            one(self)?;
        }
        Ok(list)
    }

    pub(super) fn search_key(&mut self, depth: usize) -> PResult<SearchKey> {
        if depth > MAX_DEPTH {
            return Err("search keys nested too deeply".into());
        }
        if self.eat(b'(') {
            let mut keys = vec![self.search_key(depth + 1)?];
            while self.eat(b' ') {
                keys.push(self.search_key(depth + 1)?);
            }
            self.expect(b')')?;
            return Ok(if keys.len() == 1 {
                keys.pop().unwrap_or(SearchKey::All)
            } else {
                SearchKey::And(keys)
            });
        }
        if matches!(self.peek(), Some(b'0'..=b'9' | b'*' | b'$')) {
            return Ok(SearchKey::SeqSet(self.seq_set()?));
        }
        let a = self.atom()?.to_ascii_uppercase();
        let key = match a.as_str() {
            "ALL" => SearchKey::All,
            "ANSWERED" => SearchKey::Answered,
            "DELETED" => SearchKey::Deleted,
            "DRAFT" => SearchKey::Draft,
            "FLAGGED" => SearchKey::Flagged,
            "SEEN" => SearchKey::Seen,
            "RECENT" => SearchKey::Recent,
            "NEW" => SearchKey::New,
            "OLD" => SearchKey::Old,
            "UNANSWERED" => SearchKey::Unanswered,
            "UNDELETED" => SearchKey::Undeleted,
            "UNDRAFT" => SearchKey::Undraft,
            "UNFLAGGED" => SearchKey::Unflagged,
            "UNSEEN" => SearchKey::Unseen,
            "KEYWORD" => {
                self.sp()?;
                SearchKey::Keyword(self.atom()?)
            }
            "UNKEYWORD" => {
                self.sp()?;
                SearchKey::Unkeyword(self.atom()?)
            }
            "BEFORE" | "ON" | "SINCE" | "SENTBEFORE" | "SENTON" | "SENTSINCE" | "SAVEDBEFORE"
            | "SAVEDON" | "SAVEDSINCE" => {
                self.sp()?;
                let d = self.date()?;
                match a.as_str() {
                    "BEFORE" => SearchKey::Before(d),
                    "ON" => SearchKey::On(d),
                    "SINCE" => SearchKey::Since(d),
                    "SENTBEFORE" => SearchKey::SentBefore(d),
                    "SENTON" => SearchKey::SentOn(d),
                    "SAVEDBEFORE" => SearchKey::SavedBefore(d),
                    "SAVEDON" => SearchKey::SavedOn(d),
                    "SAVEDSINCE" => SearchKey::SavedSince(d),
                    _ => SearchKey::SentSince(d),
                }
            }
            "SAVEDATESUPPORTED" => SearchKey::SaveDateSupported,
            "LARGER" => {
                self.sp()?;
                SearchKey::Larger(self.number64()?)
            }
            "EMAILID" => {
                self.sp()?;
                SearchKey::EmailId(self.objectid()?)
            }
            "THREADID" => {
                self.sp()?;
                SearchKey::ThreadId(self.objectid()?)
            }
            "MODSEQ" => {
                self.sp()?;
                // search-modsequence: [entry-name SP entry-type-req SP] mod-sequence-valzer.
                if matches!(self.peek(), Some(b'"') | Some(b'{')) {
                    let entry = self.string()?;
                    if !entry.starts_with(b"/flags/") {
                        return Err("MODSEQ entry name must be /flags/<flag>".into());
                    }
                    self.sp()?;
                    let kind = self.atom()?.to_ascii_lowercase();
                    if !matches!(kind.as_str(), "priv" | "shared" | "all") {
                        return Err("MODSEQ entry type must be priv, shared or all".into());
                    }
                    self.sp()?;
                }
                SearchKey::ModSeq(self.mod_sequence_valzer()?)
            }
            "SMALLER" => {
                self.sp()?;
                SearchKey::Smaller(self.number64()?)
            }
            "BCC" | "BODY" | "CC" | "FROM" | "SUBJECT" | "TEXT" | "TO" => {
                self.sp()?;
                let s = self.astring()?;
                match a.as_str() {
                    "BCC" => SearchKey::Bcc(s),
                    "BODY" => SearchKey::Body(s),
                    "CC" => SearchKey::Cc(s),
                    "FROM" => SearchKey::From(s),
                    "SUBJECT" => SearchKey::Subject(s),
                    "TEXT" => SearchKey::Text(s),
                    _ => SearchKey::To(s),
                }
            }
            "HEADER" => {
                self.sp()?;
                let name = self.astring()?;
                self.sp()?;
                let value = self.astring()?;
                SearchKey::Header(name, value)
            }
            "UID" => {
                self.sp()?;
                SearchKey::Uid(self.seq_set()?)
            }
            "NOT" => {
                self.sp()?;
                SearchKey::Not(Box::new(self.search_key(depth + 1)?))
            }
            "FUZZY" => {
                self.sp()?;
                SearchKey::Fuzzy(Box::new(self.search_key(depth + 1)?))
            }
            "OR" => {
                self.sp()?;
                let l = self.search_key(depth + 1)?;
                self.sp()?;
                let r = self.search_key(depth + 1)?;
                SearchKey::Or(Box::new(l), Box::new(r))
            }
            _ => return Err(format!("unknown search key {a}")),
        };
        Ok(key)
    }

    /// objectid (RFC 8474 §7): 1 to 255 of A-Z a-z 0-9 `_` `-`.
    fn objectid(&mut self) -> PResult<String> {
        let id = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if id.is_empty() || id.len() > 255 {
            return Err("expected an object id".into());
        }
        Ok(String::from_utf8_lossy(id).into_owned())
    }
}
