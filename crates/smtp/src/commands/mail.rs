//! The envelope of a mail transaction: MAIL FROM (sender ownership on submission, SIZE,
//! REQUIRETLS, SMTPUTF8) and RCPT TO (local accounts through aliases, quota, relay refusal, remote
//! recipients and forwarding targets for the outbound queue with their DSN parameters).

use wharf_store::AccountId;
use wharf_store::queue::{Notify, QueuedRecipient};

use crate::SmtpRole;
use crate::backend::Resolution;
use crate::session::{Session, Step, Transaction};
use crate::syntax::command::{MailParams, RcptParams};
use crate::syntax::reply::Reply;

/// A queue recipient with the client's RFC 3461 NOTIFY and ORCPT.
fn queued(address: String, notify: Option<&str>, orcpt: Option<String>) -> QueuedRecipient {
    let mut r = QueuedRecipient::new(&address);
    r.notify = Notify::from_param(notify);
    r.orcpt = orcpt;
    r
}

impl Session {
    pub(crate) async fn mail(&mut self, from: Option<String>, params: MailParams) -> Step {
        if self.helo.is_none() {
            return Step::one(Reply::new(503, "5.5.1", "Send EHLO/HELO first"));
        }
        if self.tx.is_some() {
            return Step::one(Reply::new(503, "5.5.1", "Nested MAIL command"));
        }
        if self.cfg.max_messages_per_session > 0
            && self.messages >= self.cfg.max_messages_per_session
        {
            return Step::close(Reply::new(
                421,
                "4.7.0",
                "Too many messages in one session, reconnect",
            ));
        }
        if self.role == SmtpRole::Submission && self.login.is_none() {
            return Step::one(Reply::new(530, "5.7.0", "Authentication required"));
        }
        if params
            .size
            .is_some_and(|s| s > self.cfg.max_message_size as u64)
        {
            tracing::info!(session = %self.id, size = ?params.size, "MAIL SIZE over the limit");
            return Step::one(Reply::new(
                552,
                "5.3.4",
                "Message size exceeds fixed maximum message size",
            ));
        }
        if params.requiretls && self.conn.tls.is_none() {
            return Step::one(Reply::new(
                530,
                "5.7.10",
                "REQUIRETLS needs a TLS connection",
            ));
        }
        if let Some(f) = &from
            && !f.is_ascii()
            && !params.smtputf8
        {
            return Step::one(Reply::new(
                553,
                "5.6.7",
                "Non-ASCII address requires SMTPUTF8",
            ));
        }
        if let Some(login) = &self.login {
            let allowed = match &from {
                None => Ok(false),
                Some(f) => self.backend.recipients.may_send_as(login, f).await,
            };
            match allowed {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(session = %self.id, user = %login.address, from = ?from, "MAIL FROM not owned by the account");
                    return Step::one(Reply::new(
                        553,
                        "5.7.1",
                        "Sender address not owned by the authenticated user",
                    ));
                }
                Err(e) => {
                    tracing::error!(session = %self.id, error = %e, "sender check failed");
                    return Step::one(Reply::new(451, "4.3.0", "Temporary lookup failure"));
                }
            }
        }
        tracing::debug!(session = %self.id, from = ?from, "MAIL");
        self.tx = Some(Transaction {
            from,
            params,
            rcpts: Vec::new(),
            accounts: Vec::new(),
            account_rcpts: Vec::new(),
            remote: Vec::new(),
            body: None,
            bdat: false,
        });
        Step::one(Reply::new(250, "2.1.0", "Ok"))
    }

    pub(crate) async fn rcpt(&mut self, to: String, params: RcptParams) -> Step {
        let max = self.cfg.max_recipients;
        let id = self.id.clone();
        let Some(tx) = self.tx.as_ref() else {
            return Step::one(Reply::new(503, "5.5.1", "Need MAIL command first"));
        };
        if tx.rcpts.len() >= max {
            tracing::warn!(session = %id, limit = max, "too many recipients");
            return Step::one(Reply::new(452, "4.5.3", "Too many recipients"));
        }
        if !to.is_ascii() && !tx.params.smtputf8 {
            return Step::one(Reply::new(
                553,
                "5.6.7",
                "Non-ASCII address requires SMTPUTF8",
            ));
        }
        let sender = tx.from.clone().unwrap_or_default();
        let resolution = match self.backend.recipients.resolve_from(&to, &sender).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(session = %id, rcpt = %to, error = %e, "recipient lookup failed");
                return Step::one(Reply::new(451, "4.3.0", "Temporary lookup failure"));
            }
        };
        let has_handoff = self.backend.handoff.is_some();
        let (accounts, remote) = match resolution {
            Resolution::NotLocalDomain if self.role == SmtpRole::Submission && has_handoff => {
                let r = queued(to.clone(), params.notify.as_deref(), params.orcpt.clone());
                (Vec::new(), vec![r])
            }
            Resolution::NotLocalDomain => {
                return Step::one(if self.role == SmtpRole::Submission {
                    tracing::warn!(session = %id, rcpt = %to, "remote recipient refused: no outbound queue configured");
                    Reply::new(
                        451,
                        "4.3.0",
                        "Remote delivery not available, try again later",
                    )
                } else {
                    tracing::warn!(session = %id, rcpt = %to, "relay denied");
                    Reply::new(550, "5.7.1", "Relay access denied")
                });
            }
            Resolution::UnknownUser => {
                tracing::info!(session = %id, rcpt = %to, "unknown local recipient");
                return Step::one(Reply::new(
                    550,
                    "5.1.1",
                    "Recipient address rejected: user unknown",
                ));
            }
            Resolution::Local { accounts, external } => {
                if !external.is_empty() && !has_handoff {
                    tracing::warn!(session = %id, rcpt = %to, external = ?external,
                        "alias has external targets: refused, no outbound queue configured");
                    return Step::one(Reply::new(
                        451,
                        "4.3.0",
                        "Forwarding not available, try again later",
                    ));
                }
                if accounts.is_empty() && external.is_empty() {
                    return Step::one(Reply::new(
                        550,
                        "5.1.1",
                        "Recipient address rejected: user unknown",
                    ));
                }
                // RFC 3461 §6.3: a forwarded copy keeps the address the client named as ORCPT.
                let orcpt = params
                    .orcpt
                    .clone()
                    .unwrap_or_else(|| format!("rfc822;{to}"));
                let remote = external
                    .into_iter()
                    .map(|address| queued(address, params.notify.as_deref(), Some(orcpt.clone())))
                    .collect::<Vec<_>>();
                if !remote.is_empty() {
                    tracing::info!(session = %id, rcpt = %to, external = ?remote.iter().map(|r| &r.address).collect::<Vec<_>>(),
                        "alias forwards outside: targets go to the outbound queue (no SRS)");
                }
                (accounts, remote)
            }
        };
        let declared = self.tx.as_ref().and_then(|t| t.params.size);
        match self.quota_refusal(&accounts, declared).await {
            Ok(Some(reply)) => {
                tracing::info!(session = %id, rcpt = %to, code = reply.code, "recipient over quota");
                return Step::one(reply);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(session = %id, rcpt = %to, error = %e, "quota lookup failed");
                return Step::one(Reply::new(451, "4.3.0", "Temporary lookup failure"));
            }
        }
        let Some(tx) = self.tx.as_mut() else {
            return Step::one(Reply::new(503, "5.5.1", "Need MAIL command first"));
        };
        for a in accounts {
            if !tx.accounts.contains(&a) {
                tx.accounts.push(a);
                tx.account_rcpts.push(to.clone());
            }
        }
        for r in remote {
            if !tx
                .remote
                .iter()
                .any(|q| q.address.eq_ignore_ascii_case(&r.address))
            {
                tx.remote.push(r);
            }
        }
        tx.rcpts.push(to);
        Step::one(Reply::new(250, "2.1.5", "Ok"))
    }

    /// Whether no account behind the address can take the message: every one is already full, or
    /// (when MAIL declared a SIZE) the declared size alone is larger than every one's whole quota.
    async fn quota_refusal(
        &self,
        accounts: &[AccountId],
        declared: Option<u64>,
    ) -> Result<Option<Reply>, wharf_store::StoreError> {
        let recipients = &self.backend.recipients;
        let mut size_fits_any = false;
        for &id in accounts {
            let Some(quota) = recipients.quota_limit(id).await? else {
                continue;
            };
            if quota == 0 {
                return Ok(None);
            }
            let fits = declared.is_none_or(|size| size <= quota);
            size_fits_any |= fits;
            if fits && recipients.quota_used(id).await? < quota {
                return Ok(None);
            }
        }
        if accounts.is_empty() {
            return Ok(None);
        }
        Ok(Some(if !size_fits_any {
            Reply::new(552, "5.2.2", "Message size exceeds the mailbox quota")
        } else {
            Reply::new(452, "4.2.2", "Mailbox full")
        }))
    }
}
