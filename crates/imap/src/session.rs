//! The IMAP session state machine (not authenticated → authenticated → selected → logout), free
//! of sockets: it takes one complete command (as the framer collected it) and returns the bytes
//! to send plus what the connection loop must do next. It owns the selected mailbox's view
//! (sequence number ↔ UID map, flags) and turns store change events into the untagged
//! EXISTS/FETCH/EXPUNGE responses at the moments RFC 9051 §7.4.1 allows them.

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::broadcast;
use tracing::{debug, info, warn};
use wharf_directory::{Directory, SaslExchange};
use wharf_store::{Account, Mailbox, MailboxEvent, MessageEntry, ModSeq, Store, StoreError, Uid};

use crate::config::ImapConfig;
use crate::syntax::{self, Command, CommandKind, SeqNum, SeqSet, response};

/// Facts about the connection the session needs for its policy decisions.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: IpAddr,
    pub tls: bool,
    /// The listener offers STARTTLS and the connection has not upgraded yet.
    pub starttls_available: bool,
}

/// What the connection loop must do after sending a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Read the next command.
    Command,
    /// Run the TLS handshake (discarding buffered plaintext), then call `tls_started`.
    StartTls,
    /// Read one SASL response line and give it to `sasl_line`.
    Sasl,
    /// IDLE: wait for either a line (`idle_line`) or a store event (`idle_wake`).
    Idle,
    /// Close the connection.
    Close,
    /// Send this output, then call `resume` for the rest of the command's responses.
    More,
}

/// Bytes to send and what comes next.
#[derive(Debug)]
pub struct Reply {
    pub out: Vec<u8>,
    pub next: Next,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    NotAuthenticated,
    Authenticated,
    Selected,
    Logout,
}

/// The tagged completion of a command.
pub(crate) struct Done {
    pub status: &'static str,
    pub code: Option<String>,
    pub text: String,
    pub next: Next,
}

impl Done {
    pub fn ok(text: impl Into<String>) -> Done {
        Done {
            status: "OK",
            code: None,
            text: text.into(),
            next: Next::Command,
        }
    }
    pub fn ok_code(code: impl Into<String>, text: impl Into<String>) -> Done {
        Done {
            code: Some(code.into()),
            ..Done::ok(text)
        }
    }
    pub fn no(code: Option<&str>, text: impl Into<String>) -> Done {
        Done {
            status: "NO",
            code: code.map(str::to_string),
            text: text.into(),
            next: Next::Command,
        }
    }
    pub fn bad(text: impl Into<String>) -> Done {
        Done {
            status: "BAD",
            code: None,
            text: text.into(),
            next: Next::Command,
        }
    }
    pub fn with_next(mut self, next: Next) -> Done {
        self.next = next;
        self
    }
    /// A store failure as a reply the client can act on.
    pub fn store(e: StoreError) -> Done {
        match e {
            StoreError::NotFound(_) => Done::no(Some("NONEXISTENT"), "No such mailbox or message"),
            StoreError::AlreadyExists(_) => Done::no(Some("ALREADYEXISTS"), "Already exists"),
            StoreError::OverQuota => Done::no(Some("OVERQUOTA"), "Quota exceeded"),
            StoreError::Invalid(m) => Done::no(Some("CANNOT"), m),
            other => {
                warn!(error = %other, "store failure");
                Done::no(Some("SERVERBUG"), "Internal error, try again later")
            }
        }
    }
}

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

/// A SASL exchange in progress.
pub(crate) struct SaslState {
    pub tag: String,
    pub exchange: SaslExchange,
    /// SCRAM's server-final was sent as a challenge; the client's (empty) answer completes.
    pub success: Option<Account>,
}

/// One IMAP session.
pub struct Session {
    pub(crate) cfg: Arc<ImapConfig>,
    pub(crate) dir: Directory,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) conn: ConnInfo,
    pub(crate) state: State,
    pub(crate) account: Option<Account>,
    /// ENABLE IMAP4rev2 was given.
    pub(crate) rev2: bool,
    /// Mailbox names travel as UTF-8 (IMAP4rev2 or UTF8=ACCEPT).
    pub(crate) utf8: bool,
    pub(crate) selected: Option<Selected>,
    pub(crate) events: Option<broadcast::Receiver<MailboxEvent>>,
    pub(crate) bad_in_row: u32,
    pub(crate) sasl: Option<SaslState>,
    pub(crate) idle_tag: Option<String>,
    /// SEARCHRES `$` (RFC 5182): UIDs of the last SEARCH ... RETURN (SAVE).
    pub(crate) saved: Vec<Uid>,
    pub(crate) fetch_job: Option<crate::commands::fetch::FetchJob>,
    pub(crate) id: u64,
}

impl Session {
    pub fn new(cfg: Arc<ImapConfig>, dir: Directory, conn: ConnInfo, id: u64) -> Session {
        let store = dir.store().clone();
        Session {
            cfg,
            dir,
            store,
            conn,
            state: State::NotAuthenticated,
            account: None,
            rev2: false,
            utf8: false,
            selected: None,
            events: None,
            bad_in_row: 0,
            sasl: None,
            idle_tag: None,
            saved: Vec::new(),
            fetch_job: None,
            id,
        }
    }

    /// The server greeting.
    pub fn greeting(&self) -> Vec<u8> {
        format!(
            "* OK [CAPABILITY {}] Wharf IMAP ready\r\n",
            self.capabilities()
        )
        .into_bytes()
    }

    /// Whether LOGIN/AUTHENTICATE may be used on this connection now.
    pub(crate) fn auth_allowed(&self) -> bool {
        self.conn.tls || (self.cfg.allow_plaintext_auth_on_loopback && self.conn.peer.is_loopback())
    }

    pub(crate) fn capabilities(&self) -> String {
        let mut c = String::from("IMAP4rev1 IMAP4rev2 LITERAL- SASL-IR ENABLE ID IDLE NAMESPACE");
        c.push_str(" UIDPLUS MOVE UNSELECT CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE");
        c.push_str(" CREATE-SPECIAL-USE ESEARCH SEARCHRES BINARY STATUS=SIZE UTF8=ACCEPT");
        if self.state == State::NotAuthenticated {
            if self.conn.starttls_available && !self.conn.tls {
                c.push_str(" STARTTLS");
            }
            if self.auth_allowed() {
                for m in wharf_directory::MECHANISMS {
                    c.push_str(" AUTH=");
                    c.push_str(m.name());
                }
            } else {
                c.push_str(" LOGINDISABLED");
            }
        }
        c
    }

    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Authenticated | State::Selected)
    }

    /// The connection switched to TLS: the session starts over as not authenticated (RFC 9051 §6.2.1).
    pub fn tls_started(&mut self) {
        self.conn.tls = true;
        self.conn.starttls_available = false;
        self.state = State::NotAuthenticated;
    }

    /// A command line longer than the limit arrived (and was discarded).
    pub fn line_too_long(&mut self) -> Reply {
        warn!(session = self.id, "command line over the limit");
        self.bad_reply("* BAD [TOOBIG] Command line too long\r\n".into())
    }

    /// A literal over the limit was announced (and, if non-synchronising, discarded).
    pub fn literal_too_big(&mut self, tag: Option<&str>, non_sync: bool) -> Reply {
        warn!(session = self.id, non_sync, "literal over the limit");
        let t = tag.unwrap_or("*");
        let line = if non_sync {
            format!("{t} BAD [TOOBIG] Literal too large\r\n")
        } else {
            format!("{t} NO [TOOBIG] Literal too large\r\n")
        };
        if non_sync {
            self.bad_reply(line)
        } else {
            Reply {
                out: line.into_bytes(),
                next: Next::Command,
            }
        }
    }

    fn bad_reply(&mut self, line: String) -> Reply {
        self.bad_in_row += 1;
        let mut out = line.into_bytes();
        if self.bad_in_row >= self.cfg.max_bad_commands {
            out.extend_from_slice(b"* BYE Too many invalid commands\r\n");
            return Reply {
                out,
                next: Next::Close,
            };
        }
        Reply {
            out,
            next: Next::Command,
        }
    }

    /// Autologout after inactivity or server shutdown.
    pub fn bye(&mut self, why: &str) -> Vec<u8> {
        self.state = State::Logout;
        format!("* BYE {why}\r\n").into_bytes()
    }

    /// Handles one complete command.
    pub async fn handle(&mut self, raw: &[u8]) -> Reply {
        let cmd = match syntax::parse_command(raw) {
            Ok(c) => c,
            Err(e) => {
                metrics::counter!("wharf_imap_commands_total", "command" => "other").increment(1);
                info!(session = self.id, error = %e.message, "syntax error");
                let tag = e.tag.as_deref().unwrap_or("*");
                return self.bad_reply(format!("{tag} BAD {}\r\n", e.message));
            }
        };
        let mut out = Vec::new();
        let tag = cmd.tag.clone();
        let name = cmd.kind.name();
        metrics::counter!("wharf_imap_commands_total", "command" => name).increment(1);
        let (allow_expunge, sync_after) = sync_policy(&cmd.kind);
        let done = self.execute(cmd, &mut out).await;
        self.finish(&tag, name, allow_expunge, sync_after, done, out)
            .await
    }

    /// Continues a command that answered `Next::More`.
    pub async fn resume(&mut self) -> Reply {
        let mut out = Vec::new();
        let Some(job) = self.fetch_job.take() else {
            return Reply {
                out,
                next: Next::Command,
            };
        };
        let tag = job.tag.clone();
        let uid = job.is_uid();
        let done = self.fetch_run(job, &mut out).await;
        self.finish(&tag, "FETCH", uid, true, done, out).await
    }

    /// Announces pending changes (where allowed) and writes the tagged completion.
    async fn finish(
        &mut self,
        tag: &str,
        name: &'static str,
        allow_expunge: bool,
        sync_after: bool,
        done: Done,
        mut out: Vec<u8>,
    ) -> Reply {
        if done.next == Next::More {
            return Reply {
                out,
                next: Next::More,
            };
        }
        if done.status == "BAD" {
            self.bad_in_row += 1;
        } else {
            self.bad_in_row = 0;
        }
        if sync_after && self.state == State::Selected && done.next == Next::Command {
            self.sync(&mut out, allow_expunge).await;
        }
        if done.next != Next::Sasl && done.next != Next::Idle {
            out.extend_from_slice(tag.as_bytes());
            out.push(b' ');
            out.extend_from_slice(done.status.as_bytes());
            out.push(b' ');
            if let Some(code) = &done.code {
                out.extend_from_slice(format!("[{code}] ").as_bytes());
            }
            out.extend_from_slice(done.text.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        debug!(
            session = self.id,
            command = name,
            status = done.status,
            "command"
        );
        let mut next = done.next;
        if self.state == State::Logout {
            next = Next::Close;
        }
        if done.status == "BAD" && self.bad_in_row >= self.cfg.max_bad_commands {
            out.extend_from_slice(b"* BYE Too many invalid commands\r\n");
            next = Next::Close;
        }
        Reply { out, next }
    }

    async fn execute(&mut self, cmd: Command, out: &mut Vec<u8>) -> Done {
        use CommandKind as K;
        let tag = cmd.tag;
        let authed = self.is_authenticated();
        let selected = self.state == State::Selected;
        match cmd.kind {
            K::Capability => {
                out.extend_from_slice(
                    format!("* CAPABILITY {}\r\n", self.capabilities()).as_bytes(),
                );
                Done::ok("CAPABILITY completed")
            }
            K::Noop | K::Check => Done::ok("NOOP completed"),
            K::Logout => {
                out.extend_from_slice(b"* BYE Logging out\r\n");
                self.state = State::Logout;
                Done::ok("LOGOUT completed").with_next(Next::Close)
            }
            K::Id(params) => {
                if let Some(p) = params {
                    info!(session = self.id, client = ?p, "client ID");
                }
                out.extend_from_slice(
                    format!(
                        "* ID (\"name\" \"Wharf\" \"version\" \"{}\")\r\n",
                        env!("CARGO_PKG_VERSION")
                    )
                    .as_bytes(),
                );
                Done::ok("ID completed")
            }
            K::StartTls => self.starttls(),
            K::Login { user, pass } => self.login(&user, &pass).await,
            K::Authenticate { mechanism, initial } => {
                self.authenticate(tag, &mechanism, initial, out).await
            }
            _ if !authed => Done::bad("Command not valid before authentication"),
            K::Enable(caps) => self.enable(&caps, out),
            K::Select { mailbox, read_only } => self.select(&mailbox, read_only, out).await,
            K::Create {
                mailbox,
                special_use,
            } => self.create(&mailbox, &special_use).await,
            K::Delete(m) => self.delete(&m).await,
            K::Rename { from, to } => self.rename(&from, &to).await,
            K::Subscribe(m) => self.subscribe(&m, true).await,
            K::Unsubscribe(m) => self.subscribe(&m, false).await,
            K::List {
                reference,
                patterns,
                select,
                ret,
                extended,
            } => {
                self.list(&reference, &patterns, &select, &ret, extended, out)
                    .await
            }
            K::Lsub { reference, pattern } => self.lsub(&reference, &pattern, out).await,
            K::Namespace => {
                out.extend_from_slice(b"* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
                Done::ok("NAMESPACE completed")
            }
            K::Status { mailbox, items } => self.status(&mailbox, &items, out).await,
            K::Append {
                mailbox,
                flags,
                date,
                message,
            } => self.append(&mailbox, &flags, date, message).await,
            K::Idle => {
                self.idle_tag = Some(tag);
                out.extend_from_slice(b"+ idling\r\n");
                if self.state == State::Selected {
                    self.sync(out, true).await;
                }
                Done::ok("").with_next(Next::Idle)
            }
            _ if !selected => Done::bad("No mailbox selected"),
            K::Close => self.close(true).await,
            K::Unselect => self.close(false).await,
            K::Expunge => self.expunge(None, out).await,
            K::UidExpunge(set) => self.expunge(Some(set), out).await,
            K::Search {
                uid,
                ret,
                charset,
                key,
            } => self.search(&tag, uid, ret, charset, key, out).await,
            K::Fetch { uid, set, items } => self.fetch(&tag, uid, &set, &items, out).await,
            K::Store {
                uid,
                set,
                op,
                silent,
                flags,
            } => self.store_cmd(uid, &set, op, silent, &flags, out).await,
            K::Copy { uid, set, mailbox } => self.copy_move(uid, &set, &mailbox, false, out).await,
            K::Move { uid, set, mailbox } => self.copy_move(uid, &set, &mailbox, true, out).await,
        }
    }

    fn enable(&mut self, caps: &[String], out: &mut Vec<u8>) -> Done {
        let mut enabled = Vec::new();
        for c in caps {
            if c.eq_ignore_ascii_case("IMAP4rev2") && !self.rev2 {
                self.rev2 = true;
                self.utf8 = true;
                enabled.push("IMAP4rev2");
            } else if c.eq_ignore_ascii_case("UTF8=ACCEPT") && !enabled.contains(&"UTF8=ACCEPT") {
                self.utf8 = true;
                enabled.push("UTF8=ACCEPT");
            }
        }
        out.extend_from_slice(b"* ENABLED");
        for e in enabled {
            out.push(b' ');
            out.extend_from_slice(e.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        Done::ok("ENABLE completed")
    }

    /// Called by the loop when the client answered an IDLE with a line.
    pub async fn idle_line(&mut self, line: &[u8]) -> Reply {
        let tag = self.idle_tag.take().unwrap_or_else(|| "*".into());
        let trimmed = line.strip_suffix(b"\n").unwrap_or(line);
        let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
        let mut out = Vec::new();
        if self.state == State::Selected {
            self.sync(&mut out, true).await;
        }
        if trimmed.eq_ignore_ascii_case(b"DONE") {
            out.extend_from_slice(format!("{tag} OK IDLE terminated\r\n").as_bytes());
            self.bad_in_row = 0;
            Reply {
                out,
                next: Next::Command,
            }
        } else {
            let mut r = self.bad_reply(format!("{tag} BAD Expected DONE\r\n"));
            out.append(&mut r.out);
            r.out = out;
            r
        }
    }

    /// A store event arrived during IDLE: announce what changed, expunges included.
    pub async fn idle_wake(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.state == State::Selected {
            self.sync(&mut out, true).await;
        } else {
            self.drain_events();
        }
        out
    }

    /// The session has ended (LOGOUT, or a BYE it sent); the loop closes the connection.
    pub fn is_closed(&self) -> bool {
        self.state == State::Logout
    }

    /// The receiver of store events, for the loop to wait on during IDLE.
    pub fn events(&mut self) -> Option<&mut broadcast::Receiver<MailboxEvent>> {
        self.events.as_mut()
    }

    /// An event received by the loop (during IDLE) for this account.
    pub fn note_event(&mut self, ev: Result<MailboxEvent, broadcast::error::RecvError>) {
        let sel_id = self.selected.as_ref().map(|s| s.mailbox.id);
        let dirty = match ev {
            Ok(MailboxEvent::Changed { mailbox_id, .. }) => Some(mailbox_id) == sel_id,
            // The selected mailbox may be the one deleted: the pull finds out.
            Ok(MailboxEvent::MailboxesChanged) => true,
            Err(broadcast::error::RecvError::Lagged(_)) => true,
            Err(broadcast::error::RecvError::Closed) => {
                self.events = None;
                false
            }
        };
        if dirty && let Some(s) = self.selected.as_mut() {
            s.dirty = true;
        }
    }

    pub(crate) fn drain_events(&mut self) {
        let Some(rx) = self.events.as_mut() else {
            return;
        };
        let sel_id = self.selected.as_ref().map(|s| s.mailbox.id);
        let mut dirty = false;
        loop {
            match rx.try_recv() {
                Ok(MailboxEvent::Changed { mailbox_id, .. }) => {
                    if Some(mailbox_id) == sel_id {
                        dirty = true;
                    }
                }
                Ok(MailboxEvent::MailboxesChanged) => dirty = true,
                Err(broadcast::error::TryRecvError::Lagged(_)) => dirty = true,
                Err(_) => break,
            }
        }
        if dirty && let Some(s) = self.selected.as_mut() {
            s.dirty = true;
        }
    }

    /// Brings the announced view up to date with the store and writes the untagged responses;
    /// expunges are held back (their sequence numbers kept) unless `allow_expunge`.
    pub(crate) async fn sync(&mut self, out: &mut Vec<u8>, allow_expunge: bool) {
        self.drain_events();
        let Some(sel) = self.selected.as_mut() else {
            return;
        };
        if sel.dirty {
            match self.store.changes_since(sel.mailbox.id, sel.modseq).await {
                Ok(ch) => {
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
                            out.extend_from_slice(
                                format!("* {} FETCH (UID {} FLAGS {})\r\n", i + 1, m.uid, fl)
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
                                && let Ok(r) = self.store.claim_recent(sel.mailbox.id).await
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
                    return;
                }
                Err(e) => warn!(session = self.id, error = %e, "changes_since failed"),
            }
        }
        if allow_expunge && !sel.pending_expunge.is_empty() {
            let pending = std::mem::take(&mut sel.pending_expunge);
            for u in pending {
                if let Some(i) = sel.index_of(u) {
                    sel.msgs.remove(i);
                    sel.recent.remove(&u);
                    out.extend_from_slice(format!("* {} EXPUNGE\r\n", i + 1).as_bytes());
                }
            }
        }
    }

    /// Mailbox name as the client spelled it → stored UTF-8 name.
    pub(crate) fn mailbox_in(&self, name: &str) -> Result<String, Done> {
        let decoded = if self.utf8 {
            name.to_string()
        } else {
            syntax::utf7::decode(name)
                .ok_or_else(|| Done::no(Some("CANNOT"), "Invalid modified UTF-7 mailbox name"))?
        };
        let trimmed = decoded.trim_end_matches('/');
        if trimmed.is_empty() && !decoded.is_empty() {
            return Err(Done::no(Some("CANNOT"), "Invalid mailbox name"));
        }
        if trimmed.split('/').any(str::is_empty)
            || trimmed
                .chars()
                .any(|c| c.is_control() || c == '*' || c == '%')
        {
            return Err(Done::no(Some("CANNOT"), "Invalid mailbox name"));
        }
        Ok(normalize_inbox(trimmed))
    }

    /// Stored name → as this client reads it.
    pub(crate) fn mailbox_out(&self, name: &str) -> String {
        if self.utf8 {
            name.to_string()
        } else {
            syntax::utf7::encode(name)
        }
    }

    pub(crate) fn account_id(&self) -> i64 {
        self.account.as_ref().map(|a| a.id).unwrap_or(-1)
    }
}

/// `INBOX` is case-insensitive, also as the first level of a hierarchical name.
pub(crate) fn normalize_inbox(name: &str) -> String {
    let first = name.split('/').next().unwrap_or("");
    if first.eq_ignore_ascii_case("INBOX") {
        format!("INBOX{}", &name[first.len()..])
    } else {
        name.to_string()
    }
}

/// Whether to announce changes after a command, and whether expunges may be among them
/// (RFC 9051 §7.4.1: not while answering FETCH, STORE or SEARCH by sequence number).
fn sync_policy(k: &CommandKind) -> (bool, bool) {
    use CommandKind as K;
    match k {
        K::Fetch { uid, .. } | K::Store { uid, .. } | K::Search { uid, .. } => (*uid, true),
        K::Copy { uid, .. } | K::Move { uid, .. } => (*uid, true),
        K::Select { .. } | K::Close | K::Unselect | K::Logout | K::Idle => (false, false),
        _ => (true, true),
    }
}
