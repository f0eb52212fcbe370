//! The IMAP session state machine (not authenticated → authenticated → selected → logout), free
//! of sockets: one entry point, `handle(Input) -> Step`, takes what the connection loop read
//! (a line, literal octets, an IDLE wake, a timeout...) and answers the output to write and what
//! to read next. The session owns its receivers: command literals (`receive`), SASL exchanges
//! (`commands/auth`) and IDLE (`commands/idle`); `selected` keeps the selected mailbox's view.
//! It reaches the rest of the system only through the traits of `backend`.

use std::sync::Arc;

use tokio::sync::broadcast;
use tracing::{debug, info, warn};
use wharf_store::{MailboxEvent, Rights, StoreError, Uid};

use crate::backend::{Backend, Login, SaslSession};
use crate::commands::append::Spools;
use crate::config::ImapConfig;
use crate::output::Output;
use crate::receive::{Received, Receiver};
use crate::selected::Selected;
use crate::spool::LiteralBudget;
use crate::syntax::{self, Command, CommandKind};

pub use crate::output::{BodyPiece, Piece};

/// Facts about the connection the session needs for its policy decisions.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: std::net::IpAddr,
    pub tls: bool,
    /// The listener offers STARTTLS and the connection has not upgraded yet.
    pub starttls_available: bool,
}

/// What the connection loop hands to the session.
#[derive(Debug)]
pub enum Input<'a> {
    /// One line as received, line ending included (a command line, the rest of a command after
    /// a literal, a SASL response, or what ends IDLE).
    Line(&'a [u8]),
    /// A line over `max_line` arrived and was discarded.
    LineTooLong,
    /// Octets of the literal `Next::Literal` asked for (any non-empty part of them).
    Data(&'a [u8]),
    /// The output of a `Next::More` step was written: continue the command.
    Resume,
    /// A store event arrived while idling.
    Event(Result<MailboxEvent, broadcast::error::RecvError>),
    /// The STARTTLS handshake completed.
    TlsStarted,
    /// Nothing arrived for the idle timeout.
    Timeout,
    /// The server is shutting down.
    Shutdown,
}

/// What the loop does after writing the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Read a line.
    Line,
    /// Read literal octets (up to `len`) and hand them in as `Input::Data`.
    Literal { len: u64 },
    /// Read `len` octets and drop them, then read a line.
    Discard { len: u64 },
    /// Run the TLS handshake (discarding buffered plaintext), then hand in `Input::TlsStarted`.
    StartTls,
    /// Switch the connection to COMPRESS=DEFLATE (RFC 4978), then read a line.
    Compress,
    /// IDLE: wait for a line or a store event (`Session::next_event`).
    Idle,
    /// Write the output, then hand in `Input::Resume` for the rest of the command's responses.
    More,
    /// Close the connection.
    Close,
}

/// The session's answer to one input.
#[derive(Debug)]
pub struct Step {
    pub output: Output,
    pub next: Next,
}

impl Step {
    pub(crate) fn text(bytes: impl AsRef<[u8]>, next: Next) -> Step {
        let mut output = Output::new();
        output.extend_from_slice(bytes.as_ref());
        Step { output, next }
    }
}

/// State shared by every session of one service.
#[derive(Debug)]
pub struct Shared {
    pub(crate) budget: Arc<LiteralBudget>,
    /// Permits for COMPRESS=DEFLATE sessions (`max_compressed_sessions`).
    pub(crate) compressed: Arc<tokio::sync::Semaphore>,
    /// KiB of `store_memory_budget` free: APPENDs hold some while they read their spooled
    /// literals back and gather CATENATE URLs, until the store has taken the messages.
    store_memory: Arc<tokio::sync::Semaphore>,
    /// The budget in KiB (the most one APPEND is charged).
    store_memory_kib: u32,
}

/// Room held in the shared store-time memory budget (`Shared::reserve_store_memory`),
/// given back when dropped.
pub struct StoreMemoryLease {
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Shared {
    pub fn new(cfg: &ImapConfig) -> Arc<Shared> {
        let budget = cfg.store_memory_budget.max(cfg.max_append);
        // Permits count KiB; tokio's semaphore holds at most `usize::MAX >> 3` of them.
        let store_memory_kib = u32::try_from(budget.div_ceil(1024).min(u64::from(u32::MAX >> 4)))
            .unwrap_or(u32::MAX >> 4);
        Arc::new(Shared {
            budget: LiteralBudget::new(cfg.literal_memory_budget),
            compressed: Arc::new(tokio::sync::Semaphore::new(cfg.max_compressed_sessions)),
            store_memory: Arc::new(tokio::sync::Semaphore::new(store_memory_kib as usize)),
            store_memory_kib,
        })
    }

    /// Holds `bytes` (at most the whole budget) of the store-time memory budget, waiting up to
    /// `wait` for room; None when there was none.
    pub async fn reserve_store_memory(
        &self,
        bytes: u64,
        wait: std::time::Duration,
    ) -> Option<StoreMemoryLease> {
        let kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .min(self.store_memory_kib);
        if kib == 0 {
            return Some(StoreMemoryLease { _permit: None });
        }
        let permit = tokio::time::timeout(wait, self.store_memory.clone().acquire_many_owned(kib))
            .await
            .ok()?
            .ok()?;
        Some(StoreMemoryLease {
            _permit: Some(permit),
        })
    }

    /// Octets of APPEND literals held in memory by all sessions right now.
    pub fn literal_bytes_in_memory(&self) -> u64 {
        self.budget.in_use()
    }
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
    /// The command goes on (SASL challenge, IDLE): no tagged completion yet.
    pub pending: bool,
}

impl Done {
    pub fn ok(text: impl Into<String>) -> Done {
        Done {
            status: "OK",
            code: None,
            text: text.into(),
            next: Next::Line,
            pending: false,
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
            next: Next::Line,
            pending: false,
        }
    }
    pub fn bad(text: impl Into<String>) -> Done {
        Done {
            status: "BAD",
            code: None,
            text: text.into(),
            next: Next::Line,
            pending: false,
        }
    }
    /// The command continues after this output (`next` says how).
    pub fn pending(next: Next) -> Done {
        Done {
            pending: true,
            next,
            ..Done::ok("")
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
            StoreError::Limit(m) => Done::no(Some("LIMIT"), m),
            StoreError::Invalid(m) => Done::no(Some("CANNOT"), m),
            StoreError::Unavailable(why) => {
                warn!(error = %why, "store unavailable");
                Done::no(
                    Some("UNAVAILABLE"),
                    "Storage temporarily unavailable, try again later",
                )
            }
            other => {
                warn!(error = %other, "store failure");
                Done::no(Some("SERVERBUG"), "Internal error, try again later")
            }
        }
    }
}

/// A SASL exchange in progress.
pub(crate) struct SaslState {
    pub tag: String,
    pub exchange: Box<dyn SaslSession>,
    /// SCRAM's server-final was sent as a challenge; the client's (empty) answer completes.
    pub success: Option<Login>,
}

/// One IMAP session.
pub struct Session {
    pub(crate) cfg: Arc<ImapConfig>,
    pub(crate) backend: Backend,
    pub(crate) shared: Arc<Shared>,
    pub(crate) conn: ConnInfo,
    pub(crate) state: State,
    pub(crate) account: Option<Login>,
    /// ENABLE IMAP4rev2 was given.
    pub(crate) rev2: bool,
    /// Mailbox names travel as UTF-8 (IMAP4rev2 or UTF8=ACCEPT).
    pub(crate) utf8: bool,
    /// A CONDSTORE-enabling command was seen (RFC 7162 §3.1): untagged FETCHes carry UID and
    /// MODSEQ from now on.
    pub(crate) condstore: bool,
    /// ENABLE QRESYNC was given (RFC 7162 §3.2): expunges are announced as VANISHED.
    pub(crate) qresync: bool,
    /// Held while the connection is compressed (RFC 4978).
    pub(crate) compress_permit: Option<tokio::sync::OwnedSemaphorePermit>,
    pub(crate) selected: Option<Selected>,
    pub(crate) events: Option<broadcast::Receiver<MailboxEvent>>,
    pub(crate) bad_in_row: u32,
    pub(crate) sasl: Option<SaslState>,
    pub(crate) idle_tag: Option<String>,
    /// SEARCHRES `$` (RFC 5182): UIDs of the last SEARCH ... RETURN (SAVE).
    pub(crate) saved: Vec<Uid>,
    pub(crate) fetch_job: Option<crate::commands::fetch::FetchJob>,
    /// An ESEARCH over several mailboxes waiting to write more (`Next::More`).
    pub(crate) esearch_job: Option<crate::commands::esearch::EsearchJob>,
    /// NOTIFY's settings (RFC 5465); `None` before any NOTIFY SET and after NOTIFY NONE.
    pub(crate) notify: Option<crate::commands::notify::NotifyState>,
    pub(crate) rx: Receiver,
    pub(crate) id: u64,
}

impl Session {
    pub fn new(
        cfg: Arc<ImapConfig>,
        backend: Backend,
        shared: Arc<Shared>,
        conn: ConnInfo,
        id: u64,
    ) -> Session {
        Session {
            cfg,
            backend,
            shared,
            conn,
            state: State::NotAuthenticated,
            account: None,
            rev2: false,
            utf8: false,
            condstore: false,
            qresync: false,
            compress_permit: None,
            selected: None,
            events: None,
            bad_in_row: 0,
            sasl: None,
            idle_tag: None,
            saved: Vec::new(),
            fetch_job: None,
            esearch_job: None,
            notify: None,
            rx: Receiver::default(),
            id,
        }
    }

    /// The server greeting.
    pub fn greeting(&self) -> Output {
        let mut out = Output::new();
        out.extend_from_slice(
            format!(
                "* OK [CAPABILITY {}] Wharf IMAP ready\r\n",
                self.capabilities()
            )
            .as_bytes(),
        );
        out
    }

    /// The one entry point: what the loop read (or what happened) in, what to do out.
    pub async fn handle(&mut self, input: Input<'_>) -> Step {
        match input {
            Input::Line(line) => {
                if self.sasl.is_some() {
                    self.sasl_line(line).await
                } else if self.idle_tag.is_some() {
                    self.idle_line(line).await
                } else {
                    self.command_line(line).await
                }
            }
            Input::LineTooLong => {
                if self.sasl.is_some() {
                    self.sasl_line(b"*\r\n").await
                } else if self.idle_tag.is_some() {
                    self.idle_line(b"").await
                } else {
                    self.rx = Receiver::default();
                    self.line_too_long()
                }
            }
            Input::Data(data) => self.literal_data(data).await,
            Input::Resume => self.resume().await,
            Input::Event(ev) => {
                self.note_event(ev);
                let output = self.idle_wake().await;
                let next = if self.is_closed() {
                    Next::Close
                } else if self.idle_tag.is_some() {
                    Next::Idle
                } else {
                    Next::Line
                };
                Step { output, next }
            }
            Input::TlsStarted => {
                self.tls_started();
                Step {
                    output: Output::new(),
                    next: Next::Line,
                }
            }
            Input::Timeout => self.bye("Autologout; idle for too long"),
            Input::Shutdown => self.bye("Server shutting down"),
        }
    }

    /// Waits for the next store event of the account (never resolves when there is no
    /// subscription); the loop races it against the client's line during IDLE.
    pub async fn next_event(&mut self) -> Result<MailboxEvent, broadcast::error::RecvError> {
        let own = &mut self.events;
        let Some(sel) = self.selected.as_mut().filter(|s| s.owner_events.is_some()) else {
            return recv(own).await;
        };
        let sel_id = sel.mailbox.id;
        loop {
            tokio::select! {
                e = recv(own) => return e,
                e = recv(&mut sel.owner_events) => {
                    if let Some(e) = crate::selected::owner_event(sel_id, e, &mut sel.owner_events) {
                        return Ok(e);
                    }
                }
            }
        }
    }

    /// Whether LOGIN/AUTHENTICATE may be used on this connection now.
    pub(crate) fn auth_allowed(&self) -> bool {
        self.conn.tls || (self.cfg.allow_plaintext_auth_on_loopback && self.conn.peer.is_loopback())
    }

    pub(crate) fn capabilities(&self) -> String {
        let mut c = String::from("IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ENABLE ID IDLE NAMESPACE");
        c.push_str(" UIDPLUS MOVE UNSELECT CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE");
        c.push_str(" CREATE-SPECIAL-USE ESEARCH SEARCHRES BINARY STATUS=SIZE UTF8=ACCEPT");
        c.push_str(" CONDSTORE QRESYNC SORT SORT=DISPLAY ESORT CONTEXT=SEARCH CONTEXT=SORT");
        c.push_str(" THREAD=ORDEREDSUBJECT THREAD=REFERENCES QUOTA QUOTA=RES-STORAGE QUOTASET");
        c.push_str(" OBJECTID PREVIEW SAVEDATE COMPRESS=DEFLATE MULTIAPPEND CATENATE");
        c.push_str(
            " METADATA METADATA-SERVER MULTISEARCH SEARCH=FUZZY NOTIFY ACL RIGHTS=texk URLAUTH",
        );
        if self.state == State::NotAuthenticated {
            if self.conn.starttls_available && !self.conn.tls {
                c.push_str(" STARTTLS");
            }
            if self.auth_allowed() {
                for m in self.backend.auth.mechanisms() {
                    c.push_str(" AUTH=");
                    c.push_str(m);
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
    fn line_too_long(&mut self) -> Step {
        warn!(session = self.id, "command line over the limit");
        self.bad_reply("* BAD [TOOBIG] Command line too long\r\n".into())
    }

    /// A literal over the limit was announced (and, if non-synchronising, discarded).
    pub(crate) fn literal_too_big(&mut self, tag: Option<&str>, non_sync: bool) -> Step {
        warn!(session = self.id, non_sync, "literal over the limit");
        let t = tag.unwrap_or("*");
        if non_sync {
            self.bad_reply(format!("{t} BAD [TOOBIG] Literal too large\r\n"))
        } else {
            Step::text(format!("{t} NO [TOOBIG] Literal too large\r\n"), Next::Line)
        }
    }

    pub(crate) fn bad_reply(&mut self, line: String) -> Step {
        self.bad_in_row += 1;
        let mut output = Output::new();
        output.extend_from_slice(line.as_bytes());
        if self.bad_in_row >= self.cfg.max_bad_commands {
            output.extend_from_slice(b"* BYE Too many invalid commands\r\n");
            return Step {
                output,
                next: Next::Close,
            };
        }
        Step {
            output,
            next: Next::Line,
        }
    }

    /// Autologout after inactivity or server shutdown; a command that cannot be framed.
    pub(crate) fn bye(&mut self, why: &str) -> Step {
        self.state = State::Logout;
        self.rx = Receiver::default();
        Step::text(format!("* BYE {why}\r\n"), Next::Close)
    }

    /// Runs one complete command.
    pub(crate) async fn command(&mut self, received: Received) -> Step {
        let Received {
            raw,
            spooled,
            _lease,
        } = received;
        let cmd = match syntax::parse_command(&raw) {
            Ok(c) => c,
            Err(e) => {
                metrics::counter!("wharf_imap_commands_total", "command" => "other").increment(1);
                info!(session = self.id, error = %e.message, "syntax error");
                let tag = e.tag.as_deref().unwrap_or("*");
                return self.bad_reply(format!("{tag} BAD {}\r\n", e.message));
            }
        };
        drop(raw);
        let mut out = Output::new();
        let tag = cmd.tag.clone();
        let name = cmd.kind.name();
        metrics::counter!("wharf_imap_commands_total", "command" => name).increment(1);
        let (allow_expunge, sync_after) = sync_policy(&cmd.kind);
        let own = OwnChange::of(&cmd.kind);
        if own.is_some() && self.notify.is_some() {
            // What others changed so far is reported first: the snapshot taken after this
            // command's own change must not swallow it.
            self.drain_events();
            self.notify_flush(&mut out).await;
        }
        let done = self.execute(cmd, spooled, &mut out).await;
        if self.notify.is_some() && done.status == "OK" {
            match own {
                Some(OwnChange::Messages(name)) => {
                    if let Ok(mb) = self.find_mailbox(&name, Rights::NONE).await {
                        self.notify_own_change(mb.id).await;
                    }
                }
                Some(OwnChange::List) => self.notify_own_list_change().await,
                None => {}
            }
        }
        self.finish(&tag, name, allow_expunge, sync_after, done, out)
            .await
    }

    /// Continues a command that answered `Next::More`.
    async fn resume(&mut self) -> Step {
        let mut out = Output::new();
        if let Some(job) = self.esearch_job.take() {
            let tag = job.tag.clone();
            let done = self.esearch_run(job, &mut out).await;
            return self.finish(&tag, "ESEARCH", false, true, done, out).await;
        }
        let Some(job) = self.fetch_job.take() else {
            return Step {
                output: out,
                next: Next::Line,
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
        mut out: Output,
    ) -> Step {
        if done.next == Next::More {
            return Step {
                output: out,
                next: Next::More,
            };
        }
        if done.status == "BAD" {
            self.bad_in_row += 1;
        } else {
            self.bad_in_row = 0;
        }
        let synced = sync_after && !done.pending && done.next == Next::Line;
        if synced && self.state == State::Selected {
            self.sync(&mut out, allow_expunge).await;
        } else if self.notify.is_some()
            && !done.pending
            // A new selection changes what NOTIFY watches (the selected mailbox never gets
            // STATUS); what was held meanwhile goes out now.
            && (synced || matches!(name, "SELECT" | "EXAMINE" | "CLOSE" | "UNSELECT"))
        {
            self.drain_events();
            self.notify_flush(&mut out).await;
        }
        if !done.pending {
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
        Step { output: out, next }
    }

    async fn execute(&mut self, cmd: Command, spooled: Spools, out: &mut Output) -> Done {
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
            K::Compress(mechanism) => self.compress(&mechanism),
            K::Select {
                mailbox,
                read_only,
                condstore,
                qresync,
            } => {
                if qresync.is_some() && !self.qresync {
                    return Done::bad("QRESYNC parameter without ENABLE QRESYNC");
                }
                if condstore {
                    // Enabled before the SELECT, which then reports HIGHESTMODSEQ itself.
                    self.condstore = true;
                }
                self.select(&mailbox, read_only, qresync, out).await
            }
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
                out.extend_from_slice(self.namespace_line().as_bytes());
                Done::ok("NAMESPACE completed")
            }
            K::Status { mailbox, items } => self.status(&mailbox, &items, out).await,
            K::GetQuotaRoot(mailbox) => self.get_quota_root(&mailbox, out).await,
            K::GetQuota(root) => self.get_quota(&root, out).await,
            K::SetQuota { root, limits } => self.set_quota(&root, &limits, out).await,
            K::Append { mailbox, messages } => self.append(&mailbox, messages, spooled).await,
            K::GetMetadata {
                mailbox,
                max_size,
                depth,
                entries,
            } => {
                self.get_metadata(&mailbox, max_size, depth, &entries, out)
                    .await
            }
            K::SetMetadata { mailbox, entries } => self.set_metadata(&mailbox, entries).await,
            K::Idle => self.idle(tag, out).await,
            K::Notify(set) => self.notify_cmd(set, out).await,
            K::SetAcl {
                mailbox,
                identifier,
                rights,
            } => self.set_acl(&mailbox, &identifier, &rights).await,
            K::DeleteAcl {
                mailbox,
                identifier,
            } => self.delete_acl(&mailbox, &identifier).await,
            K::GetAcl(mailbox) => self.get_acl(&mailbox, out).await,
            K::ListRights {
                mailbox,
                identifier,
            } => self.list_rights(&mailbox, &identifier, out).await,
            K::MyRights(mailbox) => self.my_rights(&mailbox, out).await,
            K::GenUrlAuth(urls) => self.gen_url_auth(&urls, out).await,
            K::ResetKey {
                mailbox,
                mechanisms,
            } => self.reset_key(mailbox.as_deref(), &mechanisms).await,
            K::UrlFetch(urls) => self.url_fetch(&urls, out).await,
            K::Esearch {
                sources,
                ret,
                charset,
                key,
            } => self.esearch(&tag, sources, ret, charset, key, out).await,
            _ if !selected => Done::bad("No mailbox selected"),
            K::CancelUpdate(tags) => self.cancel_update(&tags),
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
            K::Thread {
                uid,
                algorithm,
                charset,
                key,
            } => self.thread(uid, algorithm, &charset, key, out).await,
            K::Sort {
                uid,
                ret,
                criteria,
                charset,
                key,
            } => {
                self.sort(&tag, uid, ret, &criteria, &charset, key, out)
                    .await
            }
            K::Fetch {
                uid,
                set,
                items,
                changed_since,
                vanished,
            } => {
                if vanished {
                    // RFC 7162 §3.2.6: UID FETCH, with CHANGEDSINCE, after ENABLE QRESYNC.
                    if !uid || changed_since.is_none() || !self.qresync {
                        return Done::bad("VANISHED needs UID FETCH, CHANGEDSINCE and QRESYNC");
                    }
                    let star = Uid::MAX;
                    let spans = crate::commands::qresync::uid_spans(&set, star, &self.saved);
                    if let Err(e) = self
                        .vanished_earlier(changed_since.unwrap_or(0), &spans, out)
                        .await
                    {
                        return Done::store(e);
                    }
                }
                self.fetch(&tag, uid, &set, &items, changed_since, out)
                    .await
            }
            K::Store {
                uid,
                set,
                op,
                silent,
                flags,
                unchanged_since,
            } => {
                self.store_cmd(uid, &set, op, silent, &flags, unchanged_since, out)
                    .await
            }
            K::Copy { uid, set, mailbox } => self.copy_move(uid, &set, &mailbox, false, out).await,
            K::Move { uid, set, mailbox } => self.copy_move(uid, &set, &mailbox, true, out).await,
        }
    }

    fn enable(&mut self, caps: &[String], out: &mut Output) -> Done {
        let mut enabled = Vec::new();
        for c in caps {
            if c.eq_ignore_ascii_case("IMAP4rev2") && !self.rev2 {
                self.rev2 = true;
                self.utf8 = true;
                enabled.push("IMAP4rev2");
            } else if c.eq_ignore_ascii_case("UTF8=ACCEPT") && !enabled.contains(&"UTF8=ACCEPT") {
                self.utf8 = true;
                enabled.push("UTF8=ACCEPT");
            } else if c.eq_ignore_ascii_case("CONDSTORE") && !self.condstore {
                self.enable_condstore(out);
                enabled.push("CONDSTORE");
            } else if c.eq_ignore_ascii_case("QRESYNC") && !self.qresync {
                // QRESYNC implies CONDSTORE (RFC 7162 §3.2.3).
                self.enable_condstore(out);
                self.qresync = true;
                enabled.push("QRESYNC");
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

    /// COMPRESS (RFC 4978), after login only: a stranger gets no compressor state.
    fn compress(&mut self, mechanism: &str) -> Done {
        if !mechanism.eq_ignore_ascii_case("DEFLATE") {
            return Done::no(Some("CANNOT"), "Only DEFLATE is supported");
        }
        if self.compress_permit.is_some() {
            return Done::no(Some("COMPRESSIONACTIVE"), "DEFLATE is already active");
        }
        match Arc::clone(&self.shared.compressed).try_acquire_owned() {
            Ok(permit) => {
                self.compress_permit = Some(permit);
                Done::ok("DEFLATE active").with_next(Next::Compress)
            }
            Err(_) => Done::no(Some("LIMIT"), "Too many compressed sessions, go on without"),
        }
    }

    /// A CONDSTORE-enabling command (RFC 7162 §3.1): from now on untagged FETCHes carry MODSEQ,
    /// and a mailbox already selected has its HIGHESTMODSEQ reported now (§3.1.2.1).
    pub(crate) fn enable_condstore(&mut self, out: &mut Output) {
        if self.condstore {
            return;
        }
        self.condstore = true;
        if let Some(sel) = &self.selected {
            out.extend_from_slice(
                format!("* OK [HIGHESTMODSEQ {}] Highest\r\n", sel.modseq.max(1)).as_bytes(),
            );
        }
    }

    /// The session has ended (LOGOUT, or a BYE it sent); the loop closes the connection.
    pub fn is_closed(&self) -> bool {
        self.state == State::Logout
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
        self.account.as_ref().map(|a| a.account_id).unwrap_or(-1)
    }
}

/// The next event of a receiver; never resolves without one.
async fn recv(
    rx: &mut Option<broadcast::Receiver<MailboxEvent>>,
) -> Result<MailboxEvent, broadcast::error::RecvError> {
    match rx.as_mut() {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// `INBOX` is case-insensitive, also as the first level of a hierarchical name.
pub(crate) fn normalize_inbox(name: &str) -> String {
    wharf_store::names::normalize_inbox(name)
}

/// What a command of this session changes that NOTIFY should not report back to it.
enum OwnChange {
    /// The messages of the named mailbox (APPEND, COPY, MOVE target).
    Messages(String),
    /// The mailbox list or the subscriptions.
    List,
}

impl OwnChange {
    fn of(k: &CommandKind) -> Option<OwnChange> {
        use CommandKind as K;
        match k {
            K::Append { mailbox, .. } | K::Copy { mailbox, .. } | K::Move { mailbox, .. } => {
                Some(OwnChange::Messages(mailbox.clone()))
            }
            K::Create { .. }
            | K::Delete(_)
            | K::Rename { .. }
            | K::Subscribe(_)
            | K::Unsubscribe(_) => Some(OwnChange::List),
            _ => None,
        }
    }
}

/// Whether to announce changes after a command, and whether expunges may be among them
/// (RFC 9051 §7.4.1: not while answering FETCH, STORE or SEARCH by sequence number).
fn sync_policy(k: &CommandKind) -> (bool, bool) {
    use CommandKind as K;
    match k {
        K::Fetch { uid, .. }
        | K::Store { uid, .. }
        | K::Search { uid, .. }
        | K::Sort { uid, .. }
        | K::Thread { uid, .. } => (*uid, true),
        K::Copy { uid, .. } | K::Move { uid, .. } => (*uid, true),
        // Its criteria may use the selected mailbox's sequence numbers.
        K::Esearch { .. } => (false, true),
        K::Select { .. } | K::Close | K::Unselect | K::Logout | K::Idle => (false, false),
        _ => (true, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unavailable_store_is_a_temporary_no_not_a_server_bug() {
        let done = Done::store(StoreError::Unavailable("pool timed out".into()));
        assert_eq!(done.status, "NO");
        assert_eq!(done.code.as_deref(), Some("UNAVAILABLE"));
        let done = Done::store(StoreError::Invalid("bad name".into()));
        assert_eq!(done.code.as_deref(), Some("CANNOT"));
    }
}
