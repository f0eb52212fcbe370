//! Local delivery through Sieve: for each local recipient with an active script (or when the
//! admin set `[sieve] before`/`after` scripts), the message is filtered by `wharf-sieve` and its
//! actions carried out — copies filed into mailboxes with flags, redirects and vacation replies
//! handed to the outbound queue (or, for local targets, delivered here), refusals answered or
//! notified. Recipients without a script go into the store with the others' copies.
//!
//! Order matters for "never lost, never twice" (see `deliver_at`): plans first, by reading only;
//! then every copy stored, durably, in one transaction when the message was not edited; the side
//! effects last, only once the copies are safe. A failed side effect keeps the message instead.

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
    Account, AccountId, CopyTarget, Delivery, DeliveryResult, FiledCopy, Flags, MailboxId,
    SpecialUse, Store, StoreError,
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
    /// and column), the limits; and the SRS key (`srs_key`).
    pub fn from_config(
        cfg: &crate::config::Loaded,
        hostname: &str,
        srs_key: &[u8],
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
        Ok(SieveSettings {
            before: admin("before", &s.before)?,
            after: admin("after", &s.after)?,
            compile,
            run,
            srs: Srs::new(srs_key),
            hostname: hostname.to_string(),
        })
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

/// What happens to one recipient's copy, decided before anything is written.
struct Plan {
    account: Account,
    /// The address that led to the account (Sieve's envelope "to").
    rcpt: String,
    /// The message as this recipient stores it: the delivered one, or editheader's result.
    raw: Bytes,
    edited: bool,
    copies: Vec<FiledCopy>,
    /// The INBOX, for keeping the message when something else fails.
    inbox: Option<MailboxId>,
    redirects: Vec<String>,
    vacation: Option<VacationReply>,
    /// (reason, ereject).
    refusal: Option<(String, bool)>,
    duplicates: Vec<(String, i64)>,
    /// Kept copies go to Junk (quarantined by policy, or judged spam for this recipient).
    junk: bool,
}

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

    /// Runs the scripts for one recipient and turns the actions into a plan. Only reads (and
    /// `fileinto :create`, which is idempotent): an error here leaves nothing half done.
    async fn plan(
        &self,
        delivery: &Delivery,
        account: Account,
        rcpt: &str,
        envelope: &DeliveryEnvelope,
        user: Option<Script>,
        junk: bool,
    ) -> Result<Plan, StoreError> {
        let id = account.id;
        let mailboxes = self.store.list_mailboxes(id).await?;
        let names: HashSet<String> = mailboxes.iter().map(|m| m.name.clone()).collect();
        let scripts: Vec<&Script> = [
            self.settings.before.as_ref(),
            user.as_ref(),
            self.settings.after.as_ref(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let now = chrono::Utc::now();
        // Only a script that can ask for duplicate ids pays for reading them.
        let seen: HashSet<String> = if scripts.iter().any(|s| s.requires("duplicate")) {
            self.store
                .sieve_tracked(id, now.timestamp())
                .await?
                .into_iter()
                .collect()
        } else {
            HashSet::new()
        };
        let env = Envelope {
            from: envelope.from.clone(),
            to: rcpt.to_string(),
            auth: envelope.submitter.clone(),
        };
        let user_addresses = [account.address.clone()];
        let ctx = Context {
            envelope: &env,
            mailboxes: &names,
            seen_duplicates: &seen,
            spam_score: crate::spam_filter::sieve_spam_score(&delivery.raw),
            virus_score: None,
            now: now.fixed_offset(),
            user_addresses: &user_addresses,
        };
        let outcome = wharf_sieve::run(&scripts, &delivery.raw, &ctx, &self.settings.run);
        if let Some(e) = &outcome.error {
            tracing::warn!(account = id, rcpt, error = %e, "Sieve runtime error; message kept");
        }
        let edited = outcome.edited_message.is_some();
        let raw = outcome
            .edited_message
            .map(Bytes::from)
            .unwrap_or_else(|| delivery.raw.clone());
        let inbox = mailboxes.iter().find(|m| m.name == "INBOX").map(|m| m.id);
        let junk_box = mailboxes
            .iter()
            .find(|m| m.special_use == Some(SpecialUse::Junk))
            .map(|m| m.id);
        let mut plan = Plan {
            account,
            rcpt: rcpt.to_string(),
            raw,
            edited,
            copies: Vec::new(),
            inbox,
            redirects: Vec::new(),
            vacation: None,
            refusal: None,
            duplicates: outcome
                .duplicates_to_record
                .iter()
                .map(|d| {
                    let secs = i64::try_from(d.expires_in_seconds).unwrap_or(i64::MAX);
                    (d.id.clone(), now.timestamp().saturating_add(secs))
                })
                .collect(),
            junk,
        };
        for action in outcome.actions {
            match action {
                Action::Keep { flags } => {
                    // Quarantined mail that the script merely keeps stays in Junk.
                    let target = if junk { junk_box.or(inbox) } else { inbox };
                    let target = match target {
                        Some(m) => m,
                        None => self.inbox_of(id).await?,
                    };
                    plan.copies.push(filed(target, &flags));
                }
                Action::FileInto {
                    mailbox,
                    flags,
                    create,
                } => {
                    let target = match mailboxes.iter().find(|m| m.name == mailbox) {
                        Some(m) => m.id,
                        None => self.mailbox_for_fileinto(id, &mailbox, create).await?,
                    };
                    plan.copies.push(filed(target, &flags));
                }
                Action::Redirect { address, .. } => plan.redirects.push(address),
                Action::Reject { reason, extended } => plan.refusal = Some((reason, extended)),
                Action::Vacation(v) => plan.vacation = Some(v),
                Action::Discard => {
                    tracing::info!(account = id, rcpt, "Sieve discarded the message");
                }
            }
        }
        // Two actions filing into the same mailbox are one copy (RFC 5228 §2.10.3).
        let mut seen_boxes = HashSet::new();
        plan.copies.retain(|c| seen_boxes.insert(c.target));
        Ok(plan)
    }

    async fn inbox_of(&self, account: AccountId) -> Result<MailboxId, StoreError> {
        match self.store.get_mailbox(account, "INBOX").await? {
            Some(m) => Ok(m.id),
            None => match self.store.create_mailbox(account, "INBOX", None).await {
                Ok(m) => Ok(m.id),
                Err(StoreError::AlreadyExists(_)) => self
                    .store
                    .get_mailbox(account, "INBOX")
                    .await?
                    .map(|m| m.id)
                    .ok_or_else(|| StoreError::NotFound("INBOX".into())),
                Err(e) => Err(e),
            },
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

    /// Delivery at redirect depth `depth` (0 for mail from SMTP), in three steps:
    ///
    /// 1. every recipient's plan, by reading only (a failure answers 451 with nothing written);
    /// 2. every copy stored, in one transaction when no script edited the message;
    /// 3. only then the side effects: redirects, vacation replies, rejection notices, duplicate
    ///    ids. A failed side effect keeps the message instead and is logged; it never turns the
    ///    reply into a 451 that would make the client send the stored copies again.
    ///
    /// Boxed, as a local redirect delivers again through here.
    fn deliver_at<'a>(
        &'a self,
        delivery: Delivery,
        envelope: &'a DeliveryEnvelope,
        depth: u32,
    ) -> Outcomes<'a> {
        Box::pin(async move {
            let admin = self.settings.before.is_some() || self.settings.after.is_some();
            let n = delivery.recipients.len();
            // None: the recipient has no script and goes straight in.
            let mut plans: Vec<Option<Plan>> = Vec::with_capacity(n);
            let mut gone: Vec<bool> = vec![false; n];
            for (i, &account) in delivery.recipients.iter().enumerate() {
                let user = self.user_script(account).await?;
                if user.is_none() && !admin {
                    plans.push(None);
                    continue;
                }
                let Some(acct) = self.store.get_account(account).await? else {
                    gone[i] = true;
                    plans.push(None);
                    continue;
                };
                let rcpt = envelope.recipients.get(i).cloned().unwrap_or_default();
                plans.push(Some(
                    self.plan(
                        &delivery,
                        acct,
                        &rcpt,
                        envelope,
                        user,
                        envelope.junk(&delivery, i),
                    )
                    .await?,
                ));
            }

            // A refusal is the SMTP reply only when every local recipient refuses and nothing
            // goes elsewhere; otherwise a `reject` is told to the sender by a notice.
            let refusals: Vec<Option<&String>> = plans
                .iter()
                .map(|p| p.as_ref().and_then(|p| p.refusal.as_ref().map(|(r, _)| r)))
                .collect();
            if !envelope.remote_pending && n > 0 && refusals.iter().all(Option::is_some) {
                return Ok(refusals
                    .into_iter()
                    .map(|r| LocalOutcome::Refused(r.cloned().unwrap_or_default()))
                    .collect());
            }

            // Step 2: the copies. Those of the delivered message in one job, edited ones apart.
            let mut results: Vec<Vec<DeliveryResult>> = vec![Vec::new(); n];
            let mut shared: Vec<FiledCopy> = Vec::new();
            let mut owners: Vec<usize> = Vec::new();
            for (i, p) in plans.iter().enumerate() {
                let copies = match p {
                    None if gone[i] => continue,
                    None => vec![FiledCopy {
                        target: if envelope.junk(&delivery, i) {
                            CopyTarget::Junk(delivery.recipients[i])
                        } else {
                            CopyTarget::Inbox(delivery.recipients[i])
                        },
                        flags: Flags::empty(),
                        keywords: Vec::new(),
                    }],
                    Some(p) if p.edited => continue,
                    Some(p) => p.copies.clone(),
                };
                for c in copies {
                    shared.push(c);
                    owners.push(i);
                }
            }
            if !shared.is_empty() {
                let stored = self
                    .store
                    .deliver_copies(delivery.raw.clone(), delivery.internal_date, shared)
                    .await?;
                for (owner, r) in owners.into_iter().zip(stored) {
                    results[owner].push(r);
                }
            }
            for (i, p) in plans.iter().enumerate() {
                if let Some(p) = p.as_ref().filter(|p| p.edited && !p.copies.is_empty()) {
                    match self
                        .store
                        .deliver_copies(p.raw.clone(), delivery.internal_date, p.copies.clone())
                        .await
                    {
                        Ok(r) => results[i] = r,
                        Err(e) => {
                            // Others may be stored already: keep this one's unedited instead
                            // of answering 451 (which would store theirs twice).
                            tracing::error!(account = p.account.id, error = %e, "storing the edited copy failed; keeping the message as delivered");
                            results[i] = self
                                .store
                                .deliver_copies(
                                    delivery.raw.clone(),
                                    delivery.internal_date,
                                    vec![inbox_copy(p)],
                                )
                                .await?;
                        }
                    }
                }
            }

            // Step 3: side effects, then each recipient's outcome.
            let mut outcomes = Vec::with_capacity(n);
            for (i, p) in plans.into_iter().enumerate() {
                let Some(mut p) = p else {
                    outcomes.push(LocalOutcome::Stored(if gone[i] {
                        DeliveryResult::NoSuchAccount
                    } else {
                        results[i]
                            .first()
                            .cloned()
                            .unwrap_or(DeliveryResult::NoSuchAccount)
                    }));
                    continue;
                };
                let outcome = self
                    .carry_out(&delivery, envelope, &mut p, &results[i], depth)
                    .await?;
                outcomes.push(outcome);
            }
            Ok(outcomes)
        })
    }

    /// Step 3 for one filtered recipient, once the copies are stored (`results`).
    async fn carry_out(
        &self,
        delivery: &Delivery,
        envelope: &DeliveryEnvelope,
        p: &mut Plan,
        results: &[DeliveryResult],
        depth: u32,
    ) -> Result<LocalOutcome, StoreError> {
        let id = p.account.id;
        let mut stored = results
            .iter()
            .find(|r| matches!(r, DeliveryResult::Stored(_)))
            .cloned();
        // A copy whose mailbox vanished between planning and storing goes to INBOX instead.
        if stored.is_none() && results.contains(&DeliveryResult::NoSuchAccount) {
            let r = self
                .store
                .deliver_copies(p.raw.clone(), delivery.internal_date, vec![inbox_copy(p)])
                .await?;
            stored = r
                .into_iter()
                .find(|r| matches!(r, DeliveryResult::Stored(_)));
        }
        let mut passed_on = false;
        let mut keep_instead = false;
        for address in &p.redirects {
            if self.redirect(p, delivery, envelope, address, depth).await {
                passed_on = true;
            } else {
                keep_instead = true;
            }
        }
        if keep_instead && stored.is_none() && results.is_empty() {
            let r = self
                .store
                .deliver_copies(p.raw.clone(), delivery.internal_date, vec![inbox_copy(p)])
                .await?;
            stored = r
                .into_iter()
                .find(|r| matches!(r, DeliveryResult::Stored(_)));
        }
        // No automatic answer to mail the inbound checks quarantined: it may be forged.
        if let Some(v) = p.vacation.take() {
            if p.junk {
                tracing::info!(account = id, "no vacation reply to quarantined mail");
            } else {
                self.vacation(&p.account, &v).await;
            }
        }
        if let Err(e) = self.store.track_sieve_ids(id, &p.duplicates).await {
            tracing::warn!(account = id, error = %e, "recording Sieve duplicate ids failed");
        }
        if let Some((reason, extended)) = &p.refusal {
            // RFC 5429: `ereject` refuses at the protocol level only; as the SMTP reply cannot
            // carry one recipient's refusal, no notice goes to a sender that may be forged.
            if !extended && !p.junk {
                self.rejection_notice(&delivery.raw, &envelope.from, &p.rcpt, reason)
                    .await;
            } else {
                tracing::info!(account = id, rcpt = %p.rcpt, "Sieve refusal not notified (ereject or quarantined)");
            }
            return Ok(LocalOutcome::Handled);
        }
        Ok(match stored {
            Some(r) => LocalOutcome::Stored(r),
            None if passed_on || results.is_empty() => LocalOutcome::Handled,
            // Over quota (or gone) and nothing passed on: as a plain delivery would say.
            None => LocalOutcome::Stored(
                results
                    .first()
                    .cloned()
                    .unwrap_or(DeliveryResult::NoSuchAccount),
            ),
        })
    }

    /// Carries out one `redirect`: to local accounts directly (through their own scripts), to
    /// other domains through the outbound queue with the envelope sender rewritten by SRS under
    /// the recipient's domain, so the next hop's SPF check passes. False when the message was
    /// not passed on (a loop, an unknown local address, a queue failure): the caller keeps it.
    async fn redirect(
        &self,
        p: &Plan,
        delivery: &Delivery,
        envelope: &DeliveryEnvelope,
        to: &str,
        depth: u32,
    ) -> bool {
        let (account, rcpt, raw) = (p.account.id, p.rcpt.as_str(), &p.raw);
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
        let passed_on = self
            .pass_on(account, rcpt, raw, delivery, envelope, to, depth)
            .await;
        if !passed_on {
            // Not sent: a later delivery of the message must not take it for a loop.
            if let Err(e) = self.store.track_sieve_ids(account, &[(key, now)]).await {
                tracing::warn!(account, error = %e, "clearing a Sieve redirect record failed");
            }
        }
        passed_on
    }

    #[allow(clippy::too_many_arguments)]
    async fn pass_on(
        &self,
        account: AccountId,
        rcpt: &str,
        raw: &Bytes,
        delivery: &Delivery,
        envelope: &DeliveryEnvelope,
        to: &str,
        depth: u32,
    ) -> bool {
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
                internal_date: delivery.internal_date,
                recipients: accounts.clone(),
                junk: false,
            };
            let inner_envelope = DeliveryEnvelope {
                from: envelope.from.clone(),
                recipients: vec![to.to_string(); accounts.len()],
                submitter: None,
                // A refusal down the chain is told by a notice: the first hop's reply is given.
                remote_pending: true,
                junk_for: Vec::new(),
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
    /// (RFC 5230 §4.2), remembered in the store across nodes. The reply is signed as the
    /// user's mail, so its From is one the user may send as (`:from` otherwise ignored), and
    /// the period is never below the configured minimum, `:seconds 0` included.
    async fn vacation(&self, account: &Account, v: &VacationReply) {
        let id = account.id;
        let now = chrono::Utc::now().timestamp();
        let key = tracking_id("vacation", &v.handle, &v.to.to_ascii_lowercase());
        let period = v.period_seconds.max(self.settings.run.min_vacation_seconds);
        let until = now.saturating_add(i64::try_from(period).unwrap_or(i64::MAX));
        match self.store.claim_sieve_reply(id, &key, until, now).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!(account = id, to = %v.to, "vacation reply already sent within the period");
                return;
            }
            Err(e) => {
                tracing::warn!(account = id, error = %e, "vacation tracking failed; no reply sent");
                return;
            }
        }
        let from = match &v.from {
            Some(f) => match self.directory.may_send_as(account, bare_address(f)).await {
                Ok(true) => f.clone(),
                Ok(false) => {
                    tracing::warn!(account = id, from = %f, "vacation :from is not an address of the user; the account address is used");
                    account.address.clone()
                }
                Err(e) => {
                    tracing::warn!(account = id, error = %e, "checking vacation :from failed; the account address is used");
                    account.address.clone()
                }
            },
            None => account.address.clone(),
        };
        let message = vacation_message(v, &from, &self.settings.hostname);
        // RFC 5230 §5.1: the reply's envelope sender is null, so it cannot loop.
        match self
            .queue(
                String::new(),
                &v.to,
                Bytes::from(message),
                Origin::Submission {
                    user: account.address.clone(),
                },
            )
            .await
        {
            Ok(()) => {
                metrics::counter!("wharf_sieve_vacation_replies_total").increment(1);
                tracing::info!(account = id, to = %v.to, "vacation reply queued");
            }
            Err(e) => {
                tracing::error!(account = id, to = %v.to, error = %e, "vacation reply could not be queued")
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

/// The copy that keeps a message in INBOX when a plan's other ways failed.
fn inbox_copy(p: &Plan) -> FiledCopy {
    match p.inbox {
        Some(id) => filed(id, &[]),
        None => FiledCopy {
            target: CopyTarget::Inbox(p.account.id),
            flags: Flags::empty(),
            keywords: Vec::new(),
        },
    }
}

/// `Name <addr>` or `<addr>` or `addr`: the address.
fn bare_address(s: &str) -> &str {
    match (s.rfind('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => s[a + 1..b].trim(),
        _ => s.trim(),
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
        target: CopyTarget::Mailbox(mailbox),
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

fn message_id(hostname: &str) -> String {
    format!("<{:032x}@{hostname}>", rand::random::<u128>())
}

/// The reply RFC 5230 §5 describes: From the user, To the sender, the subject, In-Reply-To and
/// References for threading, and `Auto-Submitted: auto-replied` so other responders stay quiet.
fn vacation_message(v: &VacationReply, from: &str, hostname: &str) -> Vec<u8> {
    let mut m = String::new();
    m.push_str(&format!("From: {}\r\n", one_line(from)));
    m.push_str(&format!("To: <{}>\r\n", one_line(&v.to)));
    m.push_str(&format!(
        "Subject: {}\r\n",
        wharf_sieve::encode_header_value(&v.subject)
    ));
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
        // The reason is a MIME entity of its own: of its header fields only the Content-* ones
        // are taken, so a script cannot add To, Bcc or From to a reply we sign.
        m.push_str(&mime_entity(&crlf(&v.body)));
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

/// A `:mime` vacation body: its `Content-*` header fields (with their continuation lines), a
/// blank line, its body. Without a header section it is plain text.
fn mime_entity(entity: &str) -> String {
    let Some((head, body)) = entity.split_once("\r\n\r\n") else {
        return format!(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{entity}"
        );
    };
    let mut out = String::new();
    let mut keep = false;
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if keep {
                out.push_str(line);
                out.push_str("\r\n");
            }
            continue;
        }
        keep = line
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("content-"));
        if keep {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("\r\n");
    out.push_str(body);
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
        assert_eq!(c.target, CopyTarget::Mailbox(7));
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
    fn a_mime_reason_keeps_only_content_fields() {
        let e = mime_entity(
            "Content-Type: text/plain;\r\n charset=utf-8\r\nBcc: victim@x.test\r\nFrom: ceo@x.test\r\n\r\nAway.\r\n",
        );
        assert_eq!(
            e,
            "Content-Type: text/plain;\r\n charset=utf-8\r\n\r\nAway.\r\n"
        );
        assert!(mime_entity("just text\r\n").starts_with("Content-Type: text/plain"));
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
