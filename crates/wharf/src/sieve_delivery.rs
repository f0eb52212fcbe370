//! Local delivery through Sieve: for each local recipient with an active script (or when the
//! admin set `[sieve] before`/`after` scripts), the message is filtered by `wharf-sieve` and its
//! actions carried out — copies filed into mailboxes with flags, redirects and vacation replies
//! handed to the outbound queue, refusals answered or notified. Recipients without a script go
//! straight into the store in one group-committed delivery, as before.
//!
//! Order matters for "never lost, never twice": the copies are stored (durably) first; the
//! queued side effects (redirects, replies, notices) follow, and the duplicate ids are recorded
//! last. A failed store write fails the whole delivery (the client retries, nothing was sent); a
//! failed redirect after that is logged and the message kept in INBOX instead, so it is not lost.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use wharf_sieve::{Action, CompileLimits, Context, Envelope, RunLimits, Script, VacationReply};
use wharf_smtp::srs::Srs;
use wharf_smtp::{DeliveryEnvelope, LocalDelivery, LocalOutcome, Origin, RemoteHandoff};
use wharf_store::queue::{NewQueueEntry, QueuedRecipient};
use wharf_store::{
    AccountId, Delivery, DeliveryResult, FiledCopy, Flags, MailboxId, SpecialUse, Store, StoreError,
};

/// The compiled admin scripts and limits, from `[sieve]`.
#[derive(Clone)]
pub struct SieveSettings {
    pub before: Option<Script>,
    pub after: Option<Script>,
    pub compile: CompileLimits,
    pub run: RunLimits,
    pub srs: Srs,
    /// Our host name, for the Message-IDs of replies and notices.
    pub hostname: String,
}

impl SieveSettings {
    /// From `[sieve]`: the admin scripts compiled (a broken one stops the start, with its line
    /// and column), the limits, and the SRS key (configured, or generated once in the data
    /// directory).
    pub fn from_config(
        cfg: &crate::config::Loaded,
        hostname: &str,
    ) -> anyhow::Result<SieveSettings> {
        use anyhow::Context as _;
        let s = &cfg.config.sieve;
        let compile = CompileLimits {
            max_script_bytes: s.max_script_bytes,
            ..CompileLimits::default()
        };
        let admin =
            |key: &str, path: &Option<std::path::PathBuf>| -> anyhow::Result<Option<Script>> {
                let Some(p) = path else { return Ok(None) };
                let p = cfg.resolve(p);
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("sieve.{key}: cannot read {}", p.display()))?;
                // Admin scripts are trusted to be larger than users' ones.
                let limits = CompileLimits {
                    max_script_bytes: compile.max_script_bytes.max(1 << 20),
                    ..compile.clone()
                };
                wharf_sieve::compile(&text, &limits)
                    .map(Some)
                    .map_err(|e| anyhow::anyhow!("sieve.{key}: {}: {e}", p.display()))
            };
        let run = RunLimits {
            max_instructions: s.max_instructions,
            max_redirects: s.max_redirects,
            max_vacation_days: s.vacation_max_days,
            min_vacation_seconds: s.vacation_min_seconds,
            ..RunLimits::default()
        };
        let key = match &s.srs_secret {
            Some(k) if !k.is_empty() => k.as_bytes().to_vec(),
            _ => srs_key_file(&cfg.data_dir.join("srs.key"))?,
        };
        Ok(SieveSettings {
            before: admin("before", &s.before)?,
            after: admin("after", &s.after)?,
            compile,
            run,
            srs: Srs::new(&key),
            hostname: hostname.to_string(),
        })
    }
}

/// The SRS key kept in the data directory, made on first use (readable by the owner only).
fn srs_key_file(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context as _;
    match std::fs::read_to_string(path) {
        Ok(k) if !k.trim().is_empty() => return Ok(k.trim().as_bytes().to_vec()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let key = format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    );
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(mut f) => {
            use std::io::Write as _;
            f.write_all(key.as_bytes())
                .and_then(|()| f.sync_all())
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(key.into_bytes())
        }
        // Another process made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(path)?.trim().as_bytes().to_vec())
        }
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

/// How many local redirect hops one message may take within one delivery (alice → carol →
/// dave …); past it the message is kept where it is.
const MAX_REDIRECT_DEPTH: u32 = 8;

/// How long a redirect of one message to one target is remembered: the same message coming
/// back within it is a loop, kept instead of sent round again.
const REDIRECT_MEMORY_SECS: i64 = 12 * 3600;

pub struct SieveDelivery {
    directory: wharf_directory::Directory,
    store: Arc<dyn Store>,
    handoff: Arc<dyn RemoteHandoff>,
    settings: SieveSettings,
}

type Outcomes<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Vec<LocalOutcome>, StoreError>> + Send + 'a>,
>;

impl SieveDelivery {
    pub fn new(
        directory: wharf_directory::Directory,
        handoff: Arc<dyn RemoteHandoff>,
        settings: SieveSettings,
    ) -> SieveDelivery {
        SieveDelivery {
            store: directory.store().clone(),
            directory,
            handoff,
            settings,
        }
    }

    /// The account's active script, compiled; a script that no longer compiles (stored before a
    /// limit changed) is logged and ignored, so mail is kept rather than lost.
    async fn user_script(&self, account: AccountId) -> Result<Option<Script>, StoreError> {
        let Some((name, text)) = self.store.active_sieve_script(account).await? else {
            return Ok(None);
        };
        match wharf_sieve::compile(&text, &self.settings.compile) {
            Ok(s) => Ok(Some(s)),
            Err(e) => {
                tracing::warn!(account, script = %name, error = %e, "active Sieve script does not compile; message kept");
                Ok(None)
            }
        }
    }

    /// Filters and delivers one recipient's copy.
    async fn filter_one(
        &self,
        delivery: &Delivery,
        account: AccountId,
        rcpt: &str,
        envelope: &DeliveryEnvelope,
        user: Option<Script>,
        depth: u32,
    ) -> Result<LocalOutcome, StoreError> {
        let Some(acct) = self.store.get_account(account).await? else {
            return Ok(LocalOutcome::Stored(DeliveryResult::NoSuchAccount));
        };
        let mailboxes = self.store.list_mailboxes(account).await?;
        let names: HashSet<String> = mailboxes.iter().map(|m| m.name.clone()).collect();
        let now = chrono::Utc::now();
        let seen: HashSet<String> = self
            .store
            .sieve_tracked(account, now.timestamp())
            .await?
            .into_iter()
            .collect();
        let env = Envelope {
            from: envelope.from.clone(),
            to: rcpt.to_string(),
            auth: envelope.submitter.clone(),
        };
        let user_addresses = [acct.address.clone()];
        let ctx = Context {
            envelope: &env,
            mailboxes: &names,
            seen_duplicates: &seen,
            spam_score: None,
            virus_score: None,
            now: now.fixed_offset(),
            user_addresses: &user_addresses,
        };
        let scripts: Vec<&Script> = [
            self.settings.before.as_ref(),
            user.as_ref(),
            self.settings.after.as_ref(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let outcome = wharf_sieve::run(&scripts, &delivery.raw, &ctx, &self.settings.run);
        if let Some(e) = &outcome.error {
            tracing::warn!(account, rcpt, error = %e, "Sieve runtime error; message kept");
        }
        let raw = outcome
            .edited_message
            .map(Bytes::from)
            .unwrap_or_else(|| delivery.raw.clone());

        let inbox = mailboxes.iter().find(|m| m.name == "INBOX").map(|m| m.id);
        let junk_box = mailboxes
            .iter()
            .find(|m| m.special_use == Some(SpecialUse::Junk))
            .map(|m| m.id);
        let mut copies: Vec<FiledCopy> = Vec::new();
        let mut redirects: Vec<String> = Vec::new();
        let mut vacation: Option<VacationReply> = None;
        let mut refusal: Option<String> = None;
        for action in outcome.actions {
            match action {
                Action::Keep { flags } => {
                    // Quarantined mail that the script merely keeps stays in Junk.
                    let target = if delivery.junk {
                        junk_box.or(inbox)
                    } else {
                        inbox
                    };
                    if let Some(id) = target {
                        copies.push(filed(id, &flags));
                    } else {
                        copies.push(filed(self.inbox_of(account).await?, &flags));
                    }
                }
                Action::FileInto {
                    mailbox,
                    flags,
                    create,
                } => {
                    let id = match mailboxes.iter().find(|m| m.name == mailbox) {
                        Some(m) => m.id,
                        None => self.mailbox_for_fileinto(account, &mailbox, create).await?,
                    };
                    copies.push(filed(id, &flags));
                }
                Action::Redirect { address, .. } => redirects.push(address),
                Action::Reject { reason, .. } => refusal = Some(reason),
                Action::Vacation(v) => vacation = Some(v),
                Action::Discard => {
                    tracing::info!(account, rcpt, "Sieve discarded the message");
                }
            }
        }
        // Two actions filing into the same mailbox are one copy (RFC 5228 §2.10.3).
        let mut seen_boxes = HashSet::new();
        copies.retain(|c| seen_boxes.insert(c.mailbox));

        let mut result = None;
        if !copies.is_empty() {
            let results = self
                .store
                .deliver_copies(raw.clone(), delivery.internal_date, copies)
                .await?;
            result = Some(
                results
                    .iter()
                    .find(|r| matches!(r, DeliveryResult::Stored(_)))
                    .or(results.first())
                    .cloned()
                    .unwrap_or(DeliveryResult::NoSuchAccount),
            );
        }
        let stored = matches!(result, Some(DeliveryResult::Stored(_)));
        if result.is_some() && !stored {
            // Over quota or gone: nothing else happens, as with a plain delivery.
            return Ok(LocalOutcome::Stored(
                result.unwrap_or(DeliveryResult::NoSuchAccount),
            ));
        }

        let mut keep_instead = false;
        for address in &redirects {
            if !self
                .redirect(
                    &raw,
                    delivery.internal_date,
                    account,
                    rcpt,
                    envelope,
                    address,
                    depth,
                )
                .await
            {
                keep_instead = true;
            }
        }
        if keep_instead && !stored {
            // The message must not vanish: keep it after all.
            let id = match inbox {
                Some(id) => id,
                None => self.inbox_of(account).await?,
            };
            let r = self
                .store
                .deliver_copies(raw.clone(), delivery.internal_date, vec![filed(id, &[])])
                .await?;
            let r = r
                .into_iter()
                .next()
                .unwrap_or(DeliveryResult::NoSuchAccount);
            if !matches!(r, DeliveryResult::Stored(_)) {
                return Ok(LocalOutcome::Stored(r));
            }
            result = Some(r);
        }
        if let Some(v) = vacation {
            self.vacation(account, &acct.address, &v).await;
        }
        let dup_ids: Vec<(String, i64)> = outcome
            .duplicates_to_record
            .iter()
            .map(|d| {
                let secs = i64::try_from(d.expires_in_seconds).unwrap_or(i64::MAX);
                (d.id.clone(), now.timestamp().saturating_add(secs))
            })
            .collect();
        if let Err(e) = self.store.track_sieve_ids(account, &dup_ids).await {
            tracing::warn!(account, error = %e, "recording Sieve duplicate ids failed");
        }

        if let Some(reason) = refusal {
            if envelope.refusal_is_reply {
                return Ok(LocalOutcome::Refused(reason));
            }
            self.rejection_notice(&delivery.raw, &envelope.from, rcpt, &reason)
                .await;
            return Ok(LocalOutcome::Handled);
        }
        Ok(match result {
            Some(r) => LocalOutcome::Stored(r),
            None => LocalOutcome::Handled,
        })
    }

    async fn inbox_of(&self, account: AccountId) -> Result<MailboxId, StoreError> {
        match self.store.get_mailbox(account, "INBOX").await? {
            Some(m) => Ok(m.id),
            None => Ok(self.store.create_mailbox(account, "INBOX", None).await?.id),
        }
    }

    /// The mailbox a `fileinto` names, created when the script said `:create`; INBOX when it
    /// does not exist (or cannot be created): the message is kept, not lost.
    async fn mailbox_for_fileinto(
        &self,
        account: AccountId,
        name: &str,
        create: bool,
    ) -> Result<MailboxId, StoreError> {
        if let Some(m) = self.store.get_mailbox(account, name).await? {
            return Ok(m.id);
        }
        if create {
            match self.store.create_mailbox(account, name, None).await {
                Ok(m) => return Ok(m.id),
                Err(StoreError::AlreadyExists(_)) => {
                    if let Some(m) = self.store.get_mailbox(account, name).await? {
                        return Ok(m.id);
                    }
                }
                Err(e) => {
                    tracing::warn!(account, mailbox = name, error = %e, "Sieve fileinto :create failed; filed into INBOX");
                }
            }
        } else {
            tracing::info!(
                account,
                mailbox = name,
                "Sieve fileinto names no mailbox; filed into INBOX"
            );
        }
        self.inbox_of(account).await
    }

    /// Carries out one `redirect`: to local accounts directly (through their own scripts), to
    /// other domains through the outbound queue with the envelope sender rewritten by SRS under
    /// the recipient's domain, so the next hop's SPF check passes. False when the message was
    /// not passed on (a loop, an unknown local address, a queue failure): the caller keeps it.
    #[allow(clippy::too_many_arguments)]
    async fn redirect(
        &self,
        raw: &Bytes,
        internal_date: i64,
        account: AccountId,
        rcpt: &str,
        envelope: &DeliveryEnvelope,
        to: &str,
        depth: u32,
    ) -> bool {
        // A message redirected to the same target before is going round in a loop (two users
        // forwarding to each other, here or across servers).
        let now = chrono::Utc::now().timestamp();
        let key = tracking_id("redirect", &message_identity(raw), &to.to_ascii_lowercase());
        match self
            .store
            .claim_sieve_reply(account, &key, now.saturating_add(REDIRECT_MEMORY_SECS), now)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(
                    account,
                    rcpt,
                    to,
                    "Sieve redirect loop: this message was already redirected there; kept instead"
                );
                metrics::counter!("wharf_sieve_redirect_loops_total").increment(1);
                return false;
            }
            Err(e) => {
                tracing::error!(account, rcpt, to, error = %e, "Sieve redirect tracking failed; kept instead");
                return false;
            }
        }
        let resolution = match self.directory.resolve_recipient(to).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(account, rcpt, to, error = %e, "Sieve redirect target lookup failed; kept instead");
                return false;
            }
        };
        let (accounts, external) = match resolution {
            wharf_directory::Resolution::NotLocalDomain => (Vec::new(), vec![to.to_string()]),
            wharf_directory::Resolution::UnknownUser => {
                tracing::warn!(
                    account,
                    rcpt,
                    to,
                    "Sieve redirect to an unknown local address; kept instead"
                );
                return false;
            }
            wharf_directory::Resolution::Local { accounts, external } => (accounts, external),
        };
        let mut passed_on = false;
        if !accounts.is_empty() {
            if depth >= MAX_REDIRECT_DEPTH {
                tracing::warn!(
                    account,
                    rcpt,
                    to,
                    depth,
                    "Sieve redirect chain too long; kept instead"
                );
                return false;
            }
            let inner = Delivery {
                raw: raw.clone(),
                internal_date,
                recipients: accounts.clone(),
                junk: false,
            };
            let inner_envelope = DeliveryEnvelope {
                from: envelope.from.clone(),
                recipients: vec![to.to_string(); accounts.len()],
                submitter: None,
                refusal_is_reply: false,
            };
            match self.deliver_at(inner, &inner_envelope, depth + 1).await {
                Ok(outcomes) => {
                    passed_on |= outcomes.iter().any(|o| {
                        matches!(
                            o,
                            LocalOutcome::Handled | LocalOutcome::Stored(DeliveryResult::Stored(_))
                        )
                    });
                    tracing::info!(account, rcpt, to, "Sieve redirect delivered locally");
                }
                Err(e) => {
                    tracing::error!(account, rcpt, to, error = %e, "Sieve redirect local delivery failed");
                }
            }
        }
        for target in &external {
            let our_domain = rcpt.rsplit_once('@').map_or("", |(_, d)| d);
            let sender = if envelope.from.is_empty() {
                String::new()
            } else {
                self.settings
                    .srs
                    .forward(&envelope.from, our_domain, today())
            };
            let body = raw.slice(wharf_smtp::message::return_path_len(raw)..);
            match self.queue(sender, target, body, Origin::Forward).await {
                Ok(()) => {
                    passed_on = true;
                    tracing::info!(account, rcpt, to = %target, "Sieve redirect queued");
                }
                Err(e) => {
                    tracing::error!(account, rcpt, to = %target, error = %e, "Sieve redirect could not be queued");
                }
            }
        }
        passed_on
    }

    async fn queue(
        &self,
        sender: String,
        to: &str,
        raw: Bytes,
        origin: Origin,
    ) -> Result<(), wharf_store::queue::QueueError> {
        let now = chrono::Utc::now().timestamp();
        let entry = NewQueueEntry {
            sender,
            recipients: vec![QueuedRecipient::new(to)],
            raw,
            envid: None,
            ret: None,
            require_tls: false,
            created: now,
            next_attempt: now,
            expires: now,
        };
        let id = self.handoff.enqueue(entry, origin).await?;
        self.handoff.release(id).await;
        Ok(())
    }

    /// Sends the vacation reply unless this sender already got one within the period
    /// (RFC 5230 §4.2), remembered in the store across nodes.
    async fn vacation(&self, account: AccountId, user: &str, v: &VacationReply) {
        let now = chrono::Utc::now().timestamp();
        let key = tracking_id("vacation", &v.handle, &v.to.to_ascii_lowercase());
        let until = now.saturating_add(i64::try_from(v.period_seconds).unwrap_or(i64::MAX));
        match self
            .store
            .claim_sieve_reply(account, &key, until, now)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!(account, to = %v.to, "vacation reply already sent within the period");
                return;
            }
            Err(e) => {
                tracing::warn!(account, error = %e, "vacation tracking failed; no reply sent");
                return;
            }
        }
        let from = v.from.clone().unwrap_or_else(|| user.to_string());
        let message = vacation_message(v, &from, &self.settings.hostname);
        // RFC 5230 §5.1: the reply's envelope sender is null, so it cannot loop.
        match self
            .queue(
                String::new(),
                &v.to,
                Bytes::from(message),
                Origin::Submission {
                    user: user.to_string(),
                },
            )
            .await
        {
            Ok(()) => {
                metrics::counter!("wharf_sieve_vacation_replies_total").increment(1);
                tracing::info!(account, to = %v.to, "vacation reply queued");
            }
            Err(e) => {
                tracing::error!(account, to = %v.to, error = %e, "vacation reply could not be queued")
            }
        }
    }

    /// RFC 5429 §2.1: the sender learns of the refusal by a message (an MDN), when the SMTP reply
    /// could not carry it.
    async fn rejection_notice(&self, original: &Bytes, from: &str, rcpt: &str, reason: &str) {
        if from.is_empty() {
            return;
        }
        let message = rejection_mdn(original, from, rcpt, reason, &self.settings.hostname);
        if let Err(e) = self
            .queue(String::new(), from, Bytes::from(message), Origin::Forward)
            .await
        {
            tracing::error!(to = %from, error = %e, "Sieve rejection notice could not be queued");
        }
    }
}

#[async_trait]
impl LocalDelivery for SieveDelivery {
    async fn deliver(&self, delivery: Delivery) -> Result<Vec<DeliveryResult>, StoreError> {
        self.store.deliver(delivery).await
    }

    async fn deliver_with_envelope(
        &self,
        delivery: Delivery,
        envelope: &DeliveryEnvelope,
    ) -> Result<Vec<LocalOutcome>, StoreError> {
        self.deliver_at(delivery, envelope, 0).await
    }
}

impl SieveDelivery {
    /// Delivery at redirect depth `depth` (0 for mail from SMTP): boxed, as a local redirect
    /// delivers again through here.
    fn deliver_at<'a>(
        &'a self,
        delivery: Delivery,
        envelope: &'a DeliveryEnvelope,
        depth: u32,
    ) -> Outcomes<'a> {
        Box::pin(async move {
            let admin = self.settings.before.is_some() || self.settings.after.is_some();
            let mut outcomes: Vec<Option<LocalOutcome>> = vec![None; delivery.recipients.len()];
            let mut plain: Vec<(usize, AccountId)> = Vec::new();
            let mut filtered: Vec<(usize, AccountId, Option<Script>)> = Vec::new();
            for (i, account) in delivery.recipients.iter().enumerate() {
                let user = self.user_script(*account).await?;
                if user.is_some() || admin {
                    filtered.push((i, *account, user));
                } else {
                    plain.push((i, *account));
                }
            }
            if !plain.is_empty() {
                let batch = Delivery {
                    raw: delivery.raw.clone(),
                    internal_date: delivery.internal_date,
                    recipients: plain.iter().map(|(_, a)| *a).collect(),
                    junk: delivery.junk,
                };
                let results = self.store.deliver(batch).await?;
                for ((i, _), r) in plain.iter().zip(results) {
                    outcomes[*i] = Some(LocalOutcome::Stored(r));
                }
            }
            for (i, account, user) in filtered {
                let rcpt = envelope.recipients.get(i).cloned().unwrap_or_default();
                let outcome = self
                    .filter_one(&delivery, account, &rcpt, envelope, user, depth)
                    .await?;
                outcomes[i] = Some(outcome);
            }
            Ok(outcomes
                .into_iter()
                .map(|o| o.unwrap_or(LocalOutcome::Stored(DeliveryResult::NoSuchAccount)))
                .collect())
        })
    }
}

/// Sieve flag names (imap4flags) as the store's system flags and keywords.
fn filed(mailbox: MailboxId, names: &[String]) -> FiledCopy {
    let mut flags = Flags::empty();
    let mut keywords = Vec::new();
    for n in names {
        match n.to_ascii_lowercase().as_str() {
            "\\seen" => flags = flags.union(Flags::SEEN),
            "\\answered" => flags = flags.union(Flags::ANSWERED),
            "\\flagged" => flags = flags.union(Flags::FLAGGED),
            "\\deleted" => flags = flags.union(Flags::DELETED),
            "\\draft" => flags = flags.union(Flags::DRAFT),
            _ if n.starts_with('\\') => {}
            // A keyword is an IMAP atom: anything else could not be shown to clients.
            _ if !n.is_empty()
                && n.len() <= 100
                && n.bytes()
                    .all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b)) =>
            {
                keywords.push(n.clone())
            }
            _ => {}
        }
    }
    FiledCopy {
        mailbox,
        flags,
        keywords,
    }
}

/// What identifies a message across redirects: its Message-ID, else a digest of its content.
fn message_identity(raw: &[u8]) -> String {
    let body = &raw[wharf_smtp::message::return_path_len(raw)..];
    match mail_parser::MessageParser::new()
        .parse_headers(body)
        .and_then(|m| m.message_id().map(str::to_string))
    {
        Some(id) => format!("id:{id}"),
        None => format!("sha256:{}", hex::encode(Sha256::digest(body))),
    }
}

fn today() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp().max(0) / 86_400).unwrap_or(0)
}

fn tracking_id(kind: &str, handle: &str, who: &str) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update([0]);
    h.update(handle.as_bytes());
    h.update([0]);
    h.update(who.as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// A header value on one line: line breaks in script-supplied text must not start new fields.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect()
}

/// RFC 2047 encoded-word when the text is not plain ASCII.
fn header_text(s: &str) -> String {
    let s = one_line(s);
    if s.is_ascii() {
        s
    } else {
        use base64::Engine as _;
        format!(
            "=?utf-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
        )
    }
}

fn message_id(hostname: &str) -> String {
    format!("<{:032x}@{hostname}>", rand::random::<u128>())
}

/// The reply RFC 5230 §5 describes: From the user, To the sender, the subject, In-Reply-To and
/// References for threading, and `Auto-Submitted: auto-replied` so other responders stay quiet.
fn vacation_message(v: &VacationReply, from: &str, hostname: &str) -> Vec<u8> {
    let mut m = String::new();
    m.push_str(&format!("From: {}\r\n", one_line(from)));
    m.push_str(&format!("To: <{}>\r\n", one_line(&v.to)));
    m.push_str(&format!("Subject: {}\r\n", header_text(&v.subject)));
    m.push_str(&format!("Date: {}\r\n", chrono::Utc::now().to_rfc2822()));
    m.push_str(&format!("Message-ID: {}\r\n", message_id(hostname)));
    if let Some(irt) = &v.in_reply_to {
        m.push_str(&format!("In-Reply-To: {}\r\n", one_line(irt)));
    }
    if let Some(r) = &v.references {
        m.push_str(&format!("References: {}\r\n", one_line(r)));
    }
    m.push_str("Auto-Submitted: auto-replied (vacation)\r\n");
    m.push_str("MIME-Version: 1.0\r\n");
    if v.mime {
        // The reason is a MIME entity of its own: its header fields come first.
        m.push_str(&crlf(&v.body));
    } else {
        m.push_str("Content-Type: text/plain; charset=utf-8\r\n");
        if v.body.is_ascii() {
            m.push_str("Content-Transfer-Encoding: 7bit\r\n\r\n");
            m.push_str(&crlf(&v.body));
        } else {
            use base64::Engine as _;
            m.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
            let b = base64::engine::general_purpose::STANDARD.encode(crlf(&v.body).as_bytes());
            for chunk in b.as_bytes().chunks(76) {
                m.push_str(&String::from_utf8_lossy(chunk));
                m.push_str("\r\n");
            }
        }
    }
    if !m.ends_with("\r\n") {
        m.push_str("\r\n");
    }
    m.into_bytes()
}

/// An MDN (RFC 8098) saying the message was deleted by the recipient's filter, with the reason
/// and the original header section.
fn rejection_mdn(original: &[u8], to: &str, rcpt: &str, reason: &str, hostname: &str) -> Vec<u8> {
    let boundary = format!("=_wharf_{:016x}", rand::random::<u64>());
    let headers_end = original
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(original.len(), |p| p + 2);
    let head = &original[..headers_end.min(64 * 1024)];
    let original_id = mail_parser::MessageParser::new()
        .parse_headers(original)
        .and_then(|m| m.message_id().map(|s| format!("<{s}>")));
    let mut m = String::new();
    m.push_str(&format!(
        "From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\n"
    ));
    m.push_str(&format!("To: <{}>\r\n", one_line(to)));
    m.push_str(&format!(
        "Subject: Message refused by {}\r\n",
        one_line(rcpt)
    ));
    m.push_str(&format!("Date: {}\r\n", chrono::Utc::now().to_rfc2822()));
    m.push_str(&format!("Message-ID: {}\r\n", message_id(hostname)));
    m.push_str("Auto-Submitted: auto-replied (rejected)\r\n");
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str(&format!(
        "Content-Type: multipart/report; report-type=disposition-notification;\r\n\tboundary=\"{boundary}\"\r\n\r\n"
    ));
    m.push_str(&format!("--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"));
    m.push_str(&format!(
        "Your message to {} was refused by the recipient's filter:\r\n\r\n{}\r\n",
        one_line(rcpt),
        crlf(reason)
    ));
    m.push_str(&format!(
        "--{boundary}\r\nContent-Type: message/disposition-notification\r\n\r\n"
    ));
    m.push_str(&format!("Reporting-UA: {hostname}; Wharf\r\n"));
    m.push_str(&format!("Final-Recipient: rfc822; {}\r\n", one_line(rcpt)));
    if let Some(id) = original_id {
        m.push_str(&format!("Original-Message-ID: {}\r\n", one_line(&id)));
    }
    m.push_str("Disposition: automatic-action/MDN-sent-automatically; deleted\r\n\r\n");
    m.push_str(&format!(
        "--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
    ));
    let mut out = m.into_bytes();
    out.extend_from_slice(head);
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

/// Text with every line break as CRLF.
fn crlf(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for line in s.split('\n') {
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
        out.push_str("\r\n");
    }
    if s.ends_with('\n') {
        out.truncate(out.len() - 2);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_map_to_system_flags_and_atoms() {
        let c = filed(
            7,
            &[
                "\\Seen".into(),
                "\\flagged".into(),
                "$Label1".into(),
                "bad word".into(),
                "\\Recent".into(),
            ],
        );
        assert_eq!(c.flags, Flags::SEEN.union(Flags::FLAGGED));
        assert_eq!(c.keywords, vec!["$Label1".to_string()]);
    }

    #[test]
    fn vacation_reply_has_the_rfc_5230_fields() {
        let v = VacationReply {
            to: "bob@example.org".into(),
            from: None,
            subject: "Auto: héllo".into(),
            body: "Away\nback monday".into(),
            mime: false,
            handle: "h".into(),
            period_seconds: 3600,
            in_reply_to: Some("<m1@example.org>".into()),
            references: Some("<m0@example.org> <m1@example.org>".into()),
        };
        let m =
            String::from_utf8(vacation_message(&v, "alice@example.com", "mx.example.com")).unwrap();
        assert!(m.contains("From: alice@example.com\r\n"), "{m}");
        assert!(m.contains("To: <bob@example.org>\r\n"), "{m}");
        assert!(m.contains("Subject: =?utf-8?B?"), "{m}");
        assert!(m.contains("In-Reply-To: <m1@example.org>\r\n"), "{m}");
        assert!(m.contains("Auto-Submitted: auto-replied"), "{m}");
        assert!(m.contains("\r\n\r\nAway\r\nback monday"), "{m}");
        let parsed = mail_parser::MessageParser::new()
            .parse(m.as_bytes())
            .unwrap();
        assert_eq!(parsed.subject(), Some("Auto: héllo"));
    }

    #[test]
    fn header_injection_is_flattened() {
        assert_eq!(one_line("a\r\nBcc: x"), "a  Bcc: x");
    }

    #[test]
    fn rejection_mdn_carries_reason_and_original_header() {
        let orig = b"From: a@x.test\r\nMessage-ID: <o1@x.test>\r\nSubject: s\r\n\r\nbody\r\n";
        let m = String::from_utf8(rejection_mdn(
            orig,
            "a@x.test",
            "alice@example.com",
            "not wanted",
            "mx.test",
        ))
        .unwrap();
        assert!(m.contains("not wanted"), "{m}");
        assert!(m.contains("Original-Message-ID: <o1@x.test>"), "{m}");
        assert!(m.contains("Subject: s\r\n"), "{m}");
        assert!(!m.contains("body\r\n"), "{m}");
    }
}
