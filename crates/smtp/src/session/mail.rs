//! The mail transaction: MAIL, RCPT, DATA, BDAT (RFC 3030), and delivery of the finished message:
//! remote recipients through `RemoteHandoff::enqueue`, then the local ones into their INBOX through
//! `Store::deliver` (the final 250 only after both returned).

use bytes::Bytes;
use wharf_directory::Resolution;
use wharf_store::{AccountId, Delivery, DeliveryResult};

use super::{Next, Response, Session, Transaction};
use crate::SmtpRole;
use crate::body::{BodyError, BodyReceiver, Framing, Received};
use crate::command::{MailParams, RcptParams};
use crate::handoff::{OutboundMessage, OutboundRecipient};
use crate::message::{self, Trace};
use crate::reply::Reply;

impl Session {
    pub(super) async fn mail(&mut self, from: Option<String>, params: MailParams) -> Response {
        if self.helo.is_none() {
            return Response::one(Reply::new(503, "5.5.1", "Send EHLO/HELO first"));
        }
        if self.tx.is_some() {
            return Response::one(Reply::new(503, "5.5.1", "Nested MAIL command"));
        }
        if self.cfg.max_messages_per_session > 0
            && self.messages >= self.cfg.max_messages_per_session
        {
            return Response::close(Reply::new(
                421,
                "4.7.0",
                "Too many messages in one session, reconnect",
            ));
        }
        if self.role == SmtpRole::Submission && self.account.is_none() {
            return Response::one(Reply::new(530, "5.7.0", "Authentication required"));
        }
        if params
            .size
            .is_some_and(|s| s > self.cfg.max_message_size as u64)
        {
            tracing::info!(session = %self.id, size = ?params.size, "MAIL SIZE over the limit");
            return Response::one(Reply::new(
                552,
                "5.3.4",
                "Message size exceeds fixed maximum message size",
            ));
        }
        if params.requiretls && self.conn.tls.is_none() {
            return Response::one(Reply::new(
                530,
                "5.7.10",
                "REQUIRETLS needs a TLS connection",
            ));
        }
        if let Some(f) = &from
            && !f.is_ascii()
            && !params.smtputf8
        {
            return Response::one(Reply::new(
                553,
                "5.6.7",
                "Non-ASCII address requires SMTPUTF8",
            ));
        }
        if let Some(account) = &self.account {
            let allowed = match &from {
                None => Ok(false),
                Some(f) => self.dir.may_send_as(account, f).await,
            };
            match allowed {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(session = %self.id, user = %account.address, from = ?from, "MAIL FROM not owned by the account");
                    return Response::one(Reply::new(
                        553,
                        "5.7.1",
                        "Sender address not owned by the authenticated user",
                    ));
                }
                Err(e) => {
                    tracing::error!(session = %self.id, error = %e, "sender check failed");
                    return Response::one(Reply::new(451, "4.3.0", "Temporary lookup failure"));
                }
            }
        }
        tracing::debug!(session = %self.id, from = ?from, "MAIL");
        self.tx = Some(Transaction {
            from,
            params,
            rcpts: Vec::new(),
            accounts: Vec::new(),
            remote: Vec::new(),
            body: None,
            bdat: false,
            pending_last: None,
        });
        Response::one(Reply::new(250, "2.1.0", "Ok"))
    }

    pub(super) async fn rcpt(&mut self, to: String, params: RcptParams) -> Response {
        let max = self.cfg.max_recipients;
        let id = self.id.clone();
        let Some(tx) = self.tx.as_ref() else {
            return Response::one(Reply::new(503, "5.5.1", "Need MAIL command first"));
        };
        if tx.rcpts.len() >= max {
            tracing::warn!(session = %id, limit = max, "too many recipients");
            return Response::one(Reply::new(452, "4.5.3", "Too many recipients"));
        }
        if !to.is_ascii() && !tx.params.smtputf8 {
            return Response::one(Reply::new(
                553,
                "5.6.7",
                "Non-ASCII address requires SMTPUTF8",
            ));
        }
        let resolution = match self.dir.resolve_recipient(&to).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(session = %id, rcpt = %to, error = %e, "recipient lookup failed");
                return Response::one(Reply::new(451, "4.3.0", "Temporary lookup failure"));
            }
        };
        let has_handoff = self.handoff.is_some();
        let (accounts, remote) = match resolution {
            Resolution::NotLocalDomain if self.role == SmtpRole::Submission && has_handoff => {
                let r = OutboundRecipient {
                    address: to.clone(),
                    notify: params.notify.clone(),
                    orcpt: params.orcpt.clone(),
                };
                (Vec::new(), vec![r])
            }
            Resolution::NotLocalDomain => {
                return Response::one(if self.role == SmtpRole::Submission {
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
                return Response::one(Reply::new(
                    550,
                    "5.1.1",
                    "Recipient address rejected: user unknown",
                ));
            }
            Resolution::Local { accounts, external } => {
                if !external.is_empty() && !has_handoff {
                    tracing::warn!(session = %id, rcpt = %to, external = ?external,
                        "alias has external targets: refused, no outbound queue configured");
                    return Response::one(Reply::new(
                        451,
                        "4.3.0",
                        "Forwarding not available, try again later",
                    ));
                }
                if accounts.is_empty() && external.is_empty() {
                    return Response::one(Reply::new(
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
                    .map(|address| OutboundRecipient {
                        address,
                        notify: params.notify.clone(),
                        orcpt: Some(orcpt.clone()),
                    })
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
                return Response::one(reply);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(session = %id, rcpt = %to, error = %e, "quota lookup failed");
                return Response::one(Reply::new(451, "4.3.0", "Temporary lookup failure"));
            }
        }
        let Some(tx) = self.tx.as_mut() else {
            return Response::one(Reply::new(503, "5.5.1", "Need MAIL command first"));
        };
        for a in accounts {
            if !tx.accounts.contains(&a) {
                tx.accounts.push(a);
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
        Response::one(Reply::new(250, "2.1.5", "Ok"))
    }

    /// Whether no account behind the address can take the message: every one is already full, or
    /// (when MAIL declared a SIZE) the declared size alone is larger than every one's whole quota.
    async fn quota_refusal(
        &self,
        accounts: &[AccountId],
        declared: Option<u64>,
    ) -> Result<Option<Reply>, wharf_store::StoreError> {
        let store = self.dir.store();
        let mut size_fits_any = false;
        for &id in accounts {
            let Some(acct) = store.get_account(id).await? else {
                continue;
            };
            if acct.quota_bytes <= 0 {
                return Ok(None);
            }
            let quota = acct.quota_bytes as u64;
            let fits = declared.is_none_or(|size| size <= quota);
            size_fits_any |= fits;
            if fits && store.quota_used(id).await? < quota {
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

    /// Checks common to DATA and BDAT; on success the transaction has a body receiver.
    fn start_body(&mut self, framing: Framing) -> Result<(), Reply> {
        let Some(tx) = self.tx.as_ref() else {
            return Err(Reply::new(503, "5.5.1", "Need MAIL command first"));
        };
        if tx.rcpts.is_empty() {
            return Err(Reply::new(554, "5.5.1", "No valid recipients"));
        }
        if tx.body.is_some() {
            return if framing == Framing::Data {
                Err(Reply::new(503, "5.5.1", "DATA not allowed after BDAT"))
            } else {
                Ok(())
            };
        }
        let date = chrono::Utc::now().to_rfc2822();
        let queue_id = format!("{}.{}", self.id, self.messages + 1);
        let tls = self
            .conn
            .tls
            .as_ref()
            .map(|(v, c)| (v.as_str(), c.as_str()));
        let prefix = Trace {
            hostname: &self.hostname,
            helo: self.helo.as_deref().unwrap_or(""),
            peer: self.conn.peer.ip(),
            esmtp: self.esmtp,
            tls,
            authenticated: self.account.as_ref().map(|a| a.address.as_str()),
            smtputf8: tx.params.smtputf8,
            id: &queue_id,
            sender: tx.from.as_deref(),
            single_recipient: if tx.rcpts.len() == 1 {
                tx.rcpts.first().map(String::as_str)
            } else {
                None
            },
            date: &date,
        }
        .render();
        let body = BodyReceiver::new(
            framing,
            self.cfg.bare_lf_policy,
            self.cfg.max_message_size,
            self.cfg.max_text_line,
            prefix,
            tx.params.size,
        );
        if let Some(tx) = self.tx.as_mut() {
            tx.body = Some(body);
        }
        Ok(())
    }

    pub(super) fn data(&mut self) -> Response {
        if self.tx.as_ref().is_some_and(|t| t.bdat) {
            return Response::one(Reply::new(503, "5.5.1", "DATA not allowed after BDAT"));
        }
        match self.start_body(Framing::Data) {
            Ok(()) => Response {
                replies: vec![Reply::new(354, "2.0.0", "End data with <CR><LF>.<CR><LF>")],
                next: Next::Data,
            },
            Err(r) => Response::one(r),
        }
    }

    pub(super) fn bdat(&mut self, size: u64, last: bool) -> Response {
        let discard = |reply: Reply| Response {
            replies: vec![reply],
            next: Next::Bdat {
                size,
                discard: true,
            },
        };
        if let Err(r) = self.start_body(Framing::Bdat) {
            return discard(r);
        }
        let limit = self.cfg.max_message_size as u64;
        let id = self.id.clone();
        let Some(tx) = self.tx.as_mut() else {
            return discard(Reply::new(503, "5.5.1", "Need MAIL command first"));
        };
        tx.bdat = true;
        let received = tx.body.as_ref().map(BodyReceiver::received).unwrap_or(0);
        if received.saturating_add(size) > limit {
            // RFC 3030 §4.2: the transaction fails; the chunk is discarded without being buffered.
            tracing::warn!(session = %id, received, chunk = size, limit, "BDAT over the size limit");
            self.tx = None;
            return discard(Reply::new(
                552,
                "5.3.4",
                "Message size exceeds fixed maximum message size",
            ));
        }
        tx.pending_last = Some(last);
        Response {
            replies: Vec::new(),
            next: Next::Bdat {
                size,
                discard: false,
            },
        }
    }

    /// The accepted BDAT chunk has been fed to [`Session::body`].
    pub async fn end_of_chunk(&mut self) -> Response {
        let last = self.tx.as_mut().and_then(|t| t.pending_last.take());
        match last {
            Some(true) => self.end_of_message().await,
            Some(false) => {
                let received = self
                    .tx
                    .as_ref()
                    .and_then(|t| t.body.as_ref())
                    .map(BodyReceiver::received)
                    .unwrap_or(0);
                Response::one(Reply::new(
                    250,
                    "2.0.0",
                    format!("{received} octets received"),
                ))
            }
            None => Response::one(Reply::new(503, "5.5.1", "No BDAT in progress")),
        }
    }

    /// `<CRLF>.<CRLF>` has been consumed.
    pub async fn end_of_data(&mut self) -> Response {
        self.end_of_message().await
    }

    async fn end_of_message(&mut self) -> Response {
        let Some(mut tx) = self.tx.take() else {
            return Response::one(Reply::new(503, "5.5.1", "No mail transaction"));
        };
        let Some(body) = tx.body.take() else {
            return Response::one(Reply::new(503, "5.5.1", "No message data"));
        };
        let r = match body.finish() {
            Err(BodyError::TooBig) => {
                tracing::warn!(session = %self.id, limit = self.cfg.max_message_size, "message over the size limit, discarded");
                Reply::new(
                    552,
                    "5.3.4",
                    "Message size exceeds fixed maximum message size",
                )
            }
            Err(BodyError::BareLineBreak) => {
                tracing::warn!(session = %self.id, "message with bare LF/CR rejected (SMTP smuggling defence)");
                Reply::new(
                    550,
                    "5.6.0",
                    "Message contains bare LF or bare CR; only CRLF line endings are accepted",
                )
            }
            Err(BodyError::LineTooLong) => {
                tracing::warn!(session = %self.id, limit = self.cfg.max_text_line, "message with an overlong line rejected");
                Reply::new(
                    500,
                    "5.5.2",
                    "Message contains a line longer than the RFC 5322 limit",
                )
            }
            Ok(received) => self.deliver(tx, received).await,
        };
        self.count_errors(Response::one(r))
    }

    async fn deliver(&mut self, tx: Transaction, received: Received) -> Reply {
        let Received {
            mut raw,
            body_start,
            bare_line_breaks,
        } = received;
        if bare_line_breaks {
            tracing::info!(session = %self.id, "bare line breaks normalised to CRLF");
        }
        if self.role == SmtpRole::Submission
            && let Err(r) = self.check_submission(&mut raw, body_start).await
        {
            return r;
        }
        let queue_id = format!("{}.{}", self.id, self.messages + 1);
        let size = raw.len();
        let raw = Bytes::from(raw);
        // Remote first, held: if the queue refuses, nothing was stored locally and the client's
        // retry cannot produce a second local copy; if the local part fails after it, the held
        // entry is withdrawn before the 451, so the retry cannot produce a second remote copy.
        let outbound_id = if tx.remote.is_empty() {
            None
        } else {
            match self.enqueue(&tx, &raw, &queue_id).await {
                Ok(qid) => Some(qid),
                Err(reply) => return reply,
            }
        };
        if tx.accounts.is_empty() {
            self.messages += 1;
            self.count_received();
            tracing::info!(session = %self.id, queue_id, from = ?tx.from, rcpts = ?tx.rcpts, size, "message queued for remote delivery");
            self.release(outbound_id.as_deref()).await;
            return accepted(&queue_id, outbound_id.as_deref());
        }
        let delivery = Delivery {
            raw,
            internal_date: chrono::Utc::now().timestamp(),
            recipients: tx.accounts.clone(),
        };
        let results = match self.dir.store().deliver(delivery).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(session = %self.id, queue_id, outbound_id = ?outbound_id, error = %e, "delivery failed");
                // The client will send the whole message again: the queued remote part must not
                // leave as well.
                if let (Some(id), Some(h)) = (&outbound_id, &self.handoff) {
                    h.withdraw(id).await;
                    tracing::info!(session = %self.id, queue_id, outbound_id = %id, "queued remote part withdrawn");
                }
                return Reply::new(
                    451,
                    "4.3.0",
                    "Temporary failure storing the message, try again later",
                );
            }
        };
        let mut stored = 0usize;
        let mut over_temp = 0usize;
        let mut over_perm = 0usize;
        for (account, result) in tx.accounts.iter().zip(results.iter()) {
            match result {
                DeliveryResult::Stored(o) => {
                    stored += 1;
                    tracing::debug!(session = %self.id, queue_id, account, uid = o.uid, "stored");
                }
                DeliveryResult::OverQuota {
                    message_alone_exceeds,
                } => {
                    if *message_alone_exceeds {
                        over_perm += 1;
                    } else {
                        over_temp += 1;
                    }
                    tracing::warn!(session = %self.id, queue_id, account, message_alone_exceeds, "recipient over quota, copy not stored");
                }
                DeliveryResult::NoSuchAccount => {
                    tracing::warn!(session = %self.id, queue_id, account, "recipient account vanished, copy not stored");
                }
            }
        }
        metrics::counter!("wharf_messages_delivered_total", "kind" => "local")
            .increment(stored as u64);
        if stored > 0 || outbound_id.is_some() {
            self.messages += 1;
            self.count_received();
            let not_stored = tx.accounts.len() - stored;
            if not_stored > 0 {
                // One reply per message in SMTP: accepted for the recipients that got it. No DSN is
                // generated for the others until the outbound queue exists (docs/smtp.md).
                tracing::warn!(session = %self.id, queue_id, not_stored, "partial delivery: accepted, some recipients did not get a copy");
            }
            tracing::info!(session = %self.id, queue_id, outbound_id = ?outbound_id, from = ?tx.from, rcpts = ?tx.rcpts, size, "message delivered");
            self.release(outbound_id.as_deref()).await;
            return accepted(&queue_id, outbound_id.as_deref());
        }
        if over_temp > 0 {
            Reply::new(452, "4.2.2", "Mailbox full")
        } else if over_perm > 0 {
            Reply::new(552, "5.2.2", "Message exceeds the mailbox quota")
        } else {
            Reply::new(550, "5.1.1", "Recipient mailbox unavailable")
        }
    }

    /// One message accepted with a 250, by the listener's role.
    fn count_received(&self) {
        let role = match self.role {
            SmtpRole::Mx => "mx",
            SmtpRole::Submission => "submission",
        };
        metrics::counter!("wharf_messages_received_total", "role" => role).increment(1);
    }

    /// Lets a held queue entry go (the reply is 250).
    async fn release(&self, outbound_id: Option<&str>) {
        if let (Some(id), Some(h)) = (outbound_id, &self.handoff) {
            h.release(id).await;
        }
    }

    /// Hands the remote recipients to the outbound queue. The copy starts at the Received header:
    /// Return-Path belongs to final delivery only (RFC 5321 §4.4).
    async fn enqueue(
        &self,
        tx: &Transaction,
        raw: &Bytes,
        queue_id: &str,
    ) -> Result<String, Reply> {
        let Some(handoff) = &self.handoff else {
            tracing::error!(session = %self.id, queue_id, "remote recipients accepted without an outbound queue");
            return Err(Reply::new(
                451,
                "4.3.0",
                "Remote delivery not available, try again later",
            ));
        };
        let msg = OutboundMessage {
            sender: tx.from.clone().unwrap_or_default(),
            recipients: tx.remote.clone(),
            raw: raw.slice(message::return_path_len(raw)..),
            envid: tx.params.envid.clone(),
            ret: tx.params.ret.clone(),
            require_tls: tx.params.requiretls,
            authenticated_as: self.account.as_ref().map(|a| a.address.clone()),
        };
        match handoff.enqueue(msg).await {
            Ok(qid) => {
                tracing::info!(session = %self.id, queue_id, outbound_id = %qid, remote = tx.remote.len(), "handed to the outbound queue");
                Ok(qid)
            }
            Err(e) => {
                tracing::error!(session = %self.id, queue_id, error = %e, "outbound queue refused the message");
                Err(Reply::new(
                    451,
                    "4.3.0",
                    "Temporary failure queueing the message, try again later",
                ))
            }
        }
    }

    /// RFC 6409: the From: header must belong to the authenticated user; Message-ID and Date are
    /// added when missing.
    async fn check_submission(&self, raw: &mut Vec<u8>, body_start: usize) -> Result<(), Reply> {
        let Some(account) = &self.account else {
            return Err(Reply::new(530, "5.7.0", "Authentication required"));
        };
        let content = &raw[body_start..];
        let headers = &content[..message::header_end(content)];
        if message::count_header(headers, "from") != 1 {
            tracing::warn!(session = %self.id, user = %account.address, "submission without exactly one From: header");
            return Err(Reply::new(
                550,
                "5.6.0",
                "Message must have exactly one From: header",
            ));
        }
        let from = message::from_addresses(content);
        if from.is_empty() {
            return Err(Reply::new(550, "5.6.0", "From: header has no address"));
        }
        for addr in &from {
            match self.dir.may_send_as(account, addr).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(session = %self.id, user = %account.address, from = %addr, "From: header not owned by the account");
                    return Err(Reply::new(
                        553,
                        "5.7.1",
                        "From: header address not owned by the authenticated user",
                    ));
                }
                Err(e) => {
                    tracing::error!(session = %self.id, error = %e, "From: check failed");
                    return Err(Reply::new(451, "4.3.0", "Temporary lookup failure"));
                }
            }
        }
        let mut add = Vec::new();
        if message::count_header(headers, "message-id") == 0 {
            let token: u128 = rand::random();
            add.extend_from_slice(
                format!("Message-ID: <{token:032x}@{}>\r\n", self.hostname).as_bytes(),
            );
        }
        if message::count_header(headers, "date") == 0 {
            add.extend_from_slice(
                format!("Date: {}\r\n", chrono::Utc::now().to_rfc2822()).as_bytes(),
            );
        }
        message::insert_headers(raw, body_start, &add);
        Ok(())
    }
}

/// The final 250: the session's id for the message, and the outbound queue's when it took a copy.
fn accepted(queue_id: &str, outbound_id: Option<&str>) -> Reply {
    // The id comes from another component; keep the reply line clean whatever it contains.
    let outbound_id = outbound_id.map(|o| {
        o.chars()
            .filter(|c| c.is_ascii_graphic())
            .take(64)
            .collect::<String>()
    });
    match outbound_id {
        Some(o) => Reply::new(
            250,
            "2.0.0",
            format!("Ok: queued as {queue_id} (outbound {o})"),
        ),
        None => Reply::new(250, "2.0.0", format!("Ok: queued as {queue_id}")),
    }
}
