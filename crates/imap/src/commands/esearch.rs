//! ESEARCH (RFC 7377, MULTISEARCH): one search over several mailboxes, the account's own and
//! those other accounts share with it (RFC 4314 `r`), in the authenticated state too. The
//! source options (`IN (…)`) name the mailboxes with NOTIFY's filters (`selected`, `inboxes`,
//! `personal`, `subscribed`, `subtree`, `subtree-one`, `mailboxes`); each mailbox with matches
//! gets one `* ESEARCH (TAG "t" MAILBOX "m" UIDVALIDITY v) UID …` response, a mailbox without
//! matches none. The selected mailbox is searched in the session's own view (its sequence
//! numbers and `$`); any other is read from the store for the command, one at a time, so a
//! search over every mailbox holds one mailbox's index at a time. The answer is written out in
//! chunks (`Next::More`), as FETCH's is.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use wharf_store::{Mailbox, Rights, StoreError, Uid};

use crate::commands::search::{
    EsearchAsk, check_charset, esearch_answer, hits_scored_in, uses_modseq, uses_saved,
};
use crate::namespace::Found;
use crate::output::Output;
use crate::selected::{KeywordSet, Selected};
use crate::session::{Done, Next, Session};
use crate::syntax::{SearchKey, SearchReturn, SourceFilter};

/// Output size after which ESEARCH yields to the connection loop (written out before more
/// mailboxes are searched).
const ESEARCH_CHUNK: usize = 256 * 1024;
/// Mailboxes searched per step: between steps the loop writes what is ready.
const ESEARCH_BATCH: usize = 64;

/// An ESEARCH in progress (it resumes with `Session::resume`).
pub(crate) struct EsearchJob {
    pub tag: String,
    opts: Vec<SearchReturn>,
    key: SearchKey,
    modseq: bool,
    /// The mailboxes still to search, in the order the source options named them.
    mailboxes: VecDeque<Mailbox>,
}

/// Whether `name` is `root` or below it; only its children when `one_level`. The root `""` is
/// the personal namespace: every mailbox, or the top-level ones.
fn in_subtree(name: &str, root: &str, one_level: bool) -> bool {
    if root.is_empty() {
        return !one_level || !name.contains('/');
    }
    if name == root {
        return true;
    }
    match name
        .strip_prefix(root)
        .and_then(|rest| rest.strip_prefix('/'))
    {
        Some(rest) => !one_level || !rest.contains('/'),
        None => false,
    }
}

impl Session {
    pub(crate) async fn esearch(
        &mut self,
        tag: &str,
        sources: Option<Vec<SourceFilter>>,
        ret: Option<Vec<SearchReturn>>,
        charset: Option<String>,
        key: SearchKey,
        out: &mut Output,
    ) -> Done {
        if let Err(d) = check_charset(charset.as_deref()) {
            return d;
        }
        // No source options: the selected mailbox (RFC 7377 §2.2).
        let sources = sources.unwrap_or_else(|| vec![SourceFilter::Selected]);
        let only_selected = sources.iter().all(|f| *f == SourceFilter::Selected);
        if sources.contains(&SourceFilter::Selected) && self.selected.is_none() {
            return Done::bad("No mailbox selected to search");
        }
        // RFC 4731: `RETURN ()` is ALL; RFC 7377 §2.1: no result option is ALL too.
        let opts = match ret {
            Some(r) if !r.is_empty() => r,
            _ => vec![SearchReturn::All],
        };
        // RFC 7377 §2.2: SAVE only when the selected mailbox is the one source; `$` is a result
        // of the selected mailbox, meaningless in another.
        if !only_selected && opts.contains(&SearchReturn::Save) {
            return Done::bad("SAVE needs the selected mailbox as the only source");
        }
        if !only_selected && uses_saved(&key) {
            return Done::bad("$ may only be used when searching the selected mailbox alone");
        }
        // RFC 7377 §2: the result of a multi-mailbox search is not kept up to date.
        if opts.contains(&SearchReturn::Update) {
            return Done::bad("ESEARCH does not take UPDATE; use SEARCH RETURN (UPDATE)");
        }
        let modseq = uses_modseq(&key);
        if modseq {
            self.enable_condstore(out);
        }
        let mailboxes = match self.esearch_sources(&sources).await {
            Ok(m) => m,
            Err(d) => return d,
        };
        let job = EsearchJob {
            tag: tag.to_string(),
            opts,
            key,
            modseq,
            mailboxes: mailboxes.into(),
        };
        self.esearch_run(job, out).await
    }

    /// The mailboxes the source options name, each once, in the order first named: the
    /// account's own, and other accounts' it may read (`r`; RFC 4314), under the names the
    /// session sees them by ("Other Users/…", "Shared/…"). `personal` and `inboxes` are the
    /// account's own (RFC 7377 §2.2 borrows NOTIFY's filters, whose `personal` is the personal
    /// namespace); `subtree`, `subtree-one`, `subscribed` and `mailboxes` reach shared ones too.
    /// A mailbox named by `mailboxes`, or a `subtree`/`subtree-one` that names none, that does
    /// not exist or that the session may not look up is `NO [NONEXISTENT]`; one it may look up
    /// but not read is `NO [NOPERM]`.
    async fn esearch_sources(&self, sources: &[SourceFilter]) -> Result<Vec<Mailbox>, Done> {
        let account = self.account_id();
        let mut own = self
            .backend
            .mailboxes
            .list(account)
            .await
            .map_err(Done::store)?;
        own.sort_by(|a, b| a.name.cmp(&b.name));
        let mut foreign = self.foreign_mailboxes().await?;
        foreign.sort_by(|a, b| a.mailbox.name.cmp(&b.mailbox.name));
        // An own mailbox whose name lies under a namespace prefix hides a shared one of the
        // same name, as in LIST.
        let own_names: HashSet<&str> = own.iter().map(|m| m.name.as_str()).collect();
        let foreign: Vec<&Found> = foreign
            .iter()
            .filter(|f| !own_names.contains(f.mailbox.name.as_str()))
            .collect();
        let mut by_name: HashMap<&str, Result<&Mailbox, ()>> = HashMap::new();
        for f in &foreign {
            let entry = if f.rights.contains(Rights::READ) {
                Ok(&f.mailbox)
            } else {
                Err(())
            };
            by_name.insert(f.mailbox.name.as_str(), entry);
        }
        for m in &own {
            by_name.insert(m.name.as_str(), Ok(m));
        }
        let mut chosen = Vec::new();
        let mut seen = HashSet::new();
        let mut add = |m: &Mailbox| {
            if seen.insert(m.id) {
                chosen.push(m.clone());
            }
        };
        let nonexistent =
            |name: &str| Done::no(Some("NONEXISTENT"), format!("No such mailbox: {name}"));
        for filter in sources {
            match filter {
                SourceFilter::Selected => {
                    if let Some(sel) = &self.selected {
                        add(&sel.mailbox);
                    }
                }
                SourceFilter::Inboxes => {
                    if let Some(m) = own.iter().find(|m| m.name == "INBOX") {
                        add(m);
                    }
                }
                SourceFilter::Personal => own.iter().for_each(&mut add),
                SourceFilter::Subscribed => {
                    let subscribed = self
                        .backend
                        .mailboxes
                        .subscriptions(account)
                        .await
                        .map_err(Done::store)?;
                    for name in &subscribed {
                        if let Some(Ok(m)) = by_name.get(name.as_str()) {
                            add(m);
                        }
                    }
                }
                SourceFilter::Subtree(names) | SourceFilter::SubtreeOne(names) => {
                    let one_level = matches!(filter, SourceFilter::SubtreeOne(_));
                    for name in names {
                        let root = if name.is_empty() {
                            String::new()
                        } else {
                            self.mailbox_in(name)?
                        };
                        let mut any = false;
                        for m in own.iter().filter(|m| in_subtree(&m.name, &root, one_level)) {
                            any = true;
                            add(m);
                        }
                        // The root "" is the personal namespace only.
                        if !root.is_empty() {
                            for f in foreign.iter().filter(|f| f.rights.contains(Rights::READ)) {
                                if in_subtree(&f.mailbox.name, &root, one_level) {
                                    any = true;
                                    add(&f.mailbox);
                                }
                            }
                        }
                        if !any {
                            return Err(nonexistent(name));
                        }
                    }
                }
                SourceFilter::Mailboxes(names) => {
                    for name in names {
                        let stored = self.mailbox_in(name)?;
                        match by_name.get(stored.as_str()) {
                            Some(Ok(m)) => add(m),
                            Some(Err(())) => {
                                return Err(Done::no(
                                    Some("NOPERM"),
                                    format!("Right \"r\" needed to search {name}"),
                                ));
                            }
                            None => return Err(nonexistent(name)),
                        }
                    }
                }
            }
        }
        Ok(chosen)
    }

    /// Searches mailboxes and writes their ESEARCH responses until done or until the output
    /// chunk is full (then the job waits in `esearch_job` for `Input::Resume`).
    pub(crate) async fn esearch_run(&mut self, mut job: EsearchJob, out: &mut Output) -> Done {
        let start_len = out.buffered();
        let mut searched = 0;
        while let Some(mb) = job.mailboxes.pop_front() {
            if searched >= ESEARCH_BATCH || out.buffered() - start_len > ESEARCH_CHUNK {
                job.mailboxes.push_front(mb);
                self.esearch_job = Some(job);
                return Done::pending(Next::More);
            }
            searched += 1;
            let name = self.mailbox_out(&mb.name);
            // The selected mailbox in the session's view (its saved result too); any other as
            // the store has it now.
            let owned;
            let (view, saved): (&Selected, &[Uid]) =
                match self.selected.as_ref().filter(|s| s.mailbox.id == mb.id) {
                    Some(sel) => (sel, &self.saved),
                    None => {
                        let msgs = match self.backend.messages.index(mb.id).await {
                            Ok(m) => m,
                            // Deleted since the sources were read: nothing in it matches.
                            Err(StoreError::NotFound(_)) => continue,
                            Err(e) => return Done::store(e),
                        };
                        owned = Selected {
                            modseq: mb.highest_modseq,
                            mailbox: mb,
                            read_only: true,
                            msgs,
                            // \Recent belongs to the session that selected the mailbox.
                            recent: HashSet::new(),
                            pending_expunge: BTreeSet::new(),
                            dirty: false,
                            keywords: KeywordSet::default(),
                            contexts: Vec::new(),
                            rights: wharf_store::Rights::ALL,
                            owner_events: None,
                        };
                        (&owned, &[])
                    }
                };
            let (hits, scores) =
                match hits_scored_in(&self.backend, view, saved, self.rev2, &job.key).await {
                    Ok(h) => h,
                    Err(d) => return d,
                };
            let ask = EsearchAsk {
                tag: &job.tag,
                mailbox: Some((name.as_str(), view.mailbox.uid_validity)),
                uid: true,
                opts: &job.opts,
                modseq: job.modseq,
            };
            let answer = esearch_answer(&ask, view, &hits, &scores);
            let matched = !hits.is_empty();
            // SAVE comes only with the selected mailbox as the one source (checked above).
            if let Some(save) = answer.save {
                self.saved = save;
            }
            // RFC 7377 §2.1: no response for a mailbox without matches, whatever was asked.
            if let Some(mut line) = answer.line
                && matched
            {
                line.extend_from_slice(b"\r\n");
                out.extend_from_slice(&line);
            }
        }
        Done::ok("ESEARCH completed")
    }
}
