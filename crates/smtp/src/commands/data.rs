//! The message content of a transaction: DATA (RFC 5321 §4.1.1.4) and BDAT (RFC 3030), received
//! through `BodyReceiver` (size cap, line limit, smuggling defence) into memory up to the spool
//! threshold and into a spool file beyond it (`spool`), then delivered: remote recipients through
//! `RemoteHandoff::enqueue`, then the local ones through `LocalDelivery::deliver` (the final 250
//! only after both returned).

use bytes::Bytes;
use wharf_store::queue::{NewQueueEntry, QueueId, Ret};
use wharf_store::{Delivery, DeliveryResult};

use crate::SmtpRole;
use crate::backend::{
    Arrival, ArrivalAction, ArrivalVerdict, DeliveryEnvelope, LocalOutcome, Origin,
};
use crate::body::{BodyError, BodyReceiver, Framing, Received};
use crate::message::{self, Trace};
use crate::session::{Chunk, Next, Receiving, Session, Step, Transaction};
use crate::spool::{self, Reservation, Spool, WRITE_CHUNK};
use crate::syntax::reply::Reply;

/// Room kept after a spooled message read back, for the headers submission may add.
const HEADER_SLACK: usize = 512;

/// The body of a transaction in progress: the receiver, and where its octets wait.
pub(crate) struct Body {
    rx: BodyReceiver,
    /// The in-memory allowance from the service's budget; given back once the body spools.
    reservation: Option<Reservation>,
    /// The spool file once the content outgrew memory; dropping it frees the disk space.
    file: Option<std::fs::File>,
    spooled: u64,
    /// The write buffer handed back by the last spool write, reused.
    spare: Vec<u8>,
    /// Writing the spool failed: the rest is only scanned for its end, and the reply is 451.
    failed: bool,
}

impl Body {
    fn new(rx: BodyReceiver, reservation: Option<Reservation>) -> Body {
        Body {
            rx,
            reservation,
            file: None,
            spooled: 0,
            spare: Vec::new(),
            failed: false,
        }
    }

    pub(crate) fn received(&self) -> u64 {
        self.rx.received()
    }

    /// Moves what the receiver holds to the spool when it no longer fits the allowance.
    async fn settle(&mut self, spool: &Spool) {
        if self.rx.doomed() || self.failed {
            // Nothing more will be stored: free the disk and memory now.
            self.file = None;
            self.spooled = 0;
            self.reservation = None;
            drop(self.rx.take_buffered(Vec::new()));
            return;
        }
        let allowance = self.reservation.as_ref().map_or(0, Reservation::bytes);
        let buffered = self.rx.buffered();
        let write = match self.file {
            None => buffered > allowance,
            Some(_) => buffered >= WRITE_CHUNK,
        };
        if write {
            self.flush(spool).await;
        }
    }

    async fn flush(&mut self, spool: &Spool) {
        let file = match self.file.take() {
            Some(f) => f,
            None => match spool.create_file() {
                Ok(f) => {
                    tracing::debug!(dir = %spool.dir().display(), "message content spooled to disk");
                    f
                }
                Err(e) => {
                    tracing::error!(error = %e, dir = %spool.dir().display(), "creating a spool file failed");
                    self.failed = true;
                    return;
                }
            },
        };
        let spare = std::mem::take(&mut self.spare);
        let data = self.rx.take_buffered(spare);
        let len = data.len() as u64;
        match spool::append(file, data).await {
            Ok((file, buf)) => {
                self.file = Some(file);
                self.spooled += len;
                // Spooling now: the in-memory allowance goes back to the budget, and an
                // allocation grown in memory is not kept as the write buffer.
                self.reservation = None;
                self.spare = if buf.capacity() > 4 * WRITE_CHUNK {
                    Vec::new()
                } else {
                    buf
                };
            }
            Err(e) => {
                tracing::error!(error = %e, "writing the spool failed");
                self.failed = true;
            }
        }
    }
}

/// How the end of message content went, before delivery.
enum Content {
    Ready(Received, Option<tokio::sync::OwnedSemaphorePermit>),
    Refused(Reply),
}

impl Session {
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
        let smtp_id = format!("{}.{}", self.id, self.messages + 1);
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
            authenticated: self.login.as_ref().map(|a| a.address.as_str()),
            smtputf8: tx.params.smtputf8,
            id: &smtp_id,
            sender: tx.from.as_deref(),
            single_recipient: if tx.rcpts.len() == 1 {
                tx.rcpts.first().map(String::as_str)
            } else {
                None
            },
            date: &date,
        }
        .render();
        let reservation = self.spool.reserve();
        let reserve_cap = reservation.as_ref().map_or(WRITE_CHUNK, Reservation::bytes);
        let rx = BodyReceiver::with_reserve_cap(
            framing,
            self.cfg.bare_lf_policy,
            self.cfg.max_message_size,
            self.cfg.max_text_line,
            prefix,
            tx.params.size,
            reserve_cap,
        );
        if let Some(tx) = self.tx.as_mut() {
            tx.body = Some(Body::new(rx, reservation));
        }
        Ok(())
    }

    pub(crate) fn data(&mut self) -> Step {
        if self.tx.as_ref().is_some_and(|t| t.bdat) {
            return Step::one(Reply::new(503, "5.5.1", "DATA not allowed after BDAT"));
        }
        match self.start_body(Framing::Data) {
            Ok(()) => {
                self.receiving = Receiving::Data;
                Step::new(
                    vec![Reply::new(354, "2.0.0", "End data with <CR><LF>.<CR><LF>")],
                    Next::Data,
                )
            }
            Err(r) => Step::one(r),
        }
    }

    pub(crate) fn bdat(&mut self, size: u64, last: bool) -> Step {
        let refuse = |s: &mut Session, reply: Reply| {
            s.receiving = Receiving::Chunk(Chunk {
                remaining: size,
                last,
                held: Some(Vec::new()),
            });
            Step::new(vec![reply], Next::Chunk { remaining: size })
        };
        if let Err(r) = self.start_body(Framing::Bdat) {
            return refuse(self, r);
        }
        let limit = self.cfg.max_message_size as u64;
        let id = self.id.clone();
        let Some(tx) = self.tx.as_mut() else {
            return refuse(self, Reply::new(503, "5.5.1", "Need MAIL command first"));
        };
        tx.bdat = true;
        let received = tx.body.as_ref().map(Body::received).unwrap_or(0);
        if received.saturating_add(size) > limit {
            // RFC 3030 §4.2: the transaction fails; the chunk is discarded without being buffered.
            tracing::warn!(session = %id, received, chunk = size, limit, "BDAT over the size limit");
            self.tx = None;
            return refuse(
                self,
                Reply::new(
                    552,
                    "5.3.4",
                    "Message size exceeds fixed maximum message size",
                ),
            );
        }
        self.receiving = Receiving::Chunk(Chunk {
            remaining: size,
            last,
            held: None,
        });
        Step::new(Vec::new(), Next::Chunk { remaining: size })
    }

    /// DATA content as it arrives; the end is `<CRLF>.<CRLF>`.
    pub(crate) async fn data_bytes(&mut self, input: &[u8]) -> Step {
        let Some(body) = self.tx.as_mut().and_then(|t| t.body.as_mut()) else {
            self.receiving = Receiving::Nothing;
            return self.end_of_message().await;
        };
        let (n, done) = body.rx.feed_data(input);
        body.settle(&self.spool).await;
        let mut step = if done {
            self.receiving = Receiving::Nothing;
            self.end_of_message().await
        } else {
            Step::new(Vec::new(), Next::Data)
        };
        step.consumed = n;
        step
    }

    /// Octets of the current BDAT chunk (at most what remains of it is taken).
    pub(crate) async fn chunk_bytes(&mut self, input: &[u8]) -> Step {
        let Receiving::Chunk(chunk) = &mut self.receiving else {
            return Step::new(Vec::new(), Next::Command);
        };
        let take = (input.len() as u64).min(chunk.remaining) as usize;
        chunk.remaining -= take as u64;
        let (remaining, refused) = (chunk.remaining, chunk.held.is_some());
        if !refused && let Some(body) = self.tx.as_mut().and_then(|t| t.body.as_mut()) {
            body.rx.feed_chunk(&input[..take]);
            body.settle(&self.spool).await;
        }
        let mut step = if remaining == 0 {
            self.chunk_done().await
        } else {
            Step::new(Vec::new(), Next::Chunk { remaining })
        };
        step.consumed = take;
        step
    }

    /// The whole chunk has been read: the replies held for a refused one, else the chunk's own.
    pub(crate) async fn chunk_done(&mut self) -> Step {
        let Receiving::Chunk(chunk) = std::mem::replace(&mut self.receiving, Receiving::Nothing)
        else {
            return Step::one(Reply::new(503, "5.5.1", "No BDAT in progress"));
        };
        if let Some(held) = chunk.held {
            let next = if self.closing {
                Next::Close
            } else {
                Next::Command
            };
            return Step::new(held, next);
        }
        if chunk.last {
            return self.end_of_message().await;
        }
        let received = self
            .tx
            .as_ref()
            .and_then(|t| t.body.as_ref())
            .map(Body::received)
            .unwrap_or(0);
        Step::one(Reply::new(
            250,
            "2.0.0",
            format!("{received} octets received"),
        ))
    }

    async fn end_of_message(&mut self) -> Step {
        let Some(mut tx) = self.tx.take() else {
            return Step::one(Reply::new(503, "5.5.1", "No mail transaction"));
        };
        let Some(body) = tx.body.take() else {
            return Step::one(Reply::new(503, "5.5.1", "No message data"));
        };
        let r = match self.content(body).await {
            Content::Refused(r) => r,
            Content::Ready(received, _slot) => self.deliver(tx, received).await,
        };
        self.count_errors(Step::one(r))
    }

    /// The finished content, read back from the spool when it went there.
    async fn content(&self, body: Body) -> Content {
        let Body {
            rx,
            file,
            spooled,
            failed,
            ..
        } = body;
        let r = match rx.finish() {
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
            Ok(_) if failed => Reply::new(
                451,
                "4.3.0",
                "Temporary failure storing the message, try again later",
            ),
            Ok(received) => {
                let Some(file) = file else {
                    return Content::Ready(received, None);
                };
                // Large messages are held in memory for delivery a few at a time.
                let slot = self.spool.large_message_slot().await;
                match spool::read_back(file, spooled, received.raw, HEADER_SLACK).await {
                    Ok(raw) => {
                        return Content::Ready(
                            Received {
                                raw,
                                body_start: received.body_start,
                                bare_line_breaks: received.bare_line_breaks,
                            },
                            slot,
                        );
                    }
                    Err(e) => {
                        tracing::error!(session = %self.id, error = %e, "reading the spool back failed");
                        Reply::new(
                            451,
                            "4.3.0",
                            "Temporary failure storing the message, try again later",
                        )
                    }
                }
            }
        };
        Content::Refused(r)
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
        let max_hops = self.cfg.max_received_headers;
        if max_hops > 0 {
            let hops = received_fields(&raw[..body_end_of_header(&raw)]);
            if hops > max_hops {
                tracing::warn!(session = %self.id, from = ?tx.from, rcpts = ?tx.rcpts, hops, "message refused: too many Received fields (mail loop)");
                metrics::counter!("wharf_messages_refused_total", "reason" => "loop").increment(1);
                return Reply::new(554, "5.4.6", "Too many hops: the message is looping");
            }
        }
        if self.role == SmtpRole::Submission
            && let Err(r) = self.check_submission(&mut raw, body_start).await
        {
            return r;
        }
        let mut junk = false;
        let mut junk_for = Vec::new();
        let mut forward_prepend = String::new();
        if self.role == SmtpRole::Mx
            && let Some(check) = self.backend.arrival.clone()
        {
            let arrival = Arrival {
                ip: self.conn.peer.ip(),
                helo: self.helo.as_deref().unwrap_or(""),
                mail_from: tx.from.as_deref().unwrap_or(""),
                recipients: &tx.rcpts,
                accounts: &tx.accounts,
                forwarding: !tx.remote.is_empty(),
            };
            let verdict = check.check(&arrival, &raw[body_start..]).await;
            match &verdict.action {
                ArrivalAction::Deliver => {}
                ArrivalAction::Junk => junk = true,
                ArrivalAction::Reject(why) => {
                    tracing::warn!(session = %self.id, from = ?tx.from, rcpts = ?tx.rcpts, reason = %why, "message refused by the inbound checks");
                    metrics::counter!("wharf_messages_refused_total", "reason" => "inbound_policy")
                        .increment(1);
                    return Reply::new(550, "5.7.1", why);
                }
                ArrivalAction::TempFail(why) => {
                    tracing::info!(session = %self.id, reason = %why, "message deferred by the inbound checks");
                    return Reply::new(451, "4.7.0", why);
                }
            }
            // Nothing to add or take out (checks and filter off): no copy of the message.
            if !verdict.prepend.is_empty() || !verdict.remove.is_empty() {
                raw = with_verdict(raw, body_start, &verdict);
            }
            forward_prepend = verdict.forward_prepend;
            if verdict.junk_for.len() == tx.accounts.len() {
                junk_for = verdict.junk_for;
            }
        }
        let smtp_id = format!("{}.{}", self.id, self.messages + 1);
        let size = raw.len();
        let raw = Bytes::from(raw);
        // Remote first, held: if the queue refuses, nothing was stored locally and the client's
        // retry cannot produce a second local copy; if the local part fails after it, the held
        // entry is withdrawn before the 451, so the retry cannot produce a second remote copy.
        let outbound_id = if tx.remote.is_empty() {
            None
        } else {
            match self
                .enqueue(&tx, forward_prepend.as_bytes(), &raw, &smtp_id)
                .await
            {
                Ok(qid) => Some(qid),
                Err(reply) => return reply,
            }
        };
        if tx.accounts.is_empty() {
            self.messages += 1;
            self.count_received();
            tracing::info!(session = %self.id, smtp_id, from = ?tx.from, rcpts = ?tx.rcpts, size, "message queued for remote delivery");
            self.release(outbound_id).await;
            return accepted(&smtp_id, outbound_id);
        }
        let delivery = Delivery {
            raw,
            internal_date: chrono::Utc::now().timestamp(),
            recipients: tx.accounts.clone(),
            junk,
        };
        let envelope = DeliveryEnvelope {
            from: tx.from.clone().unwrap_or_default(),
            recipients: tx.account_rcpts.clone(),
            submitter: self.login.as_ref().map(|l| l.address.clone()),
            remote_pending: outbound_id.is_some(),
            junk_for,
        };
        let results = match self
            .backend
            .delivery
            .deliver_with_envelope(delivery, &envelope)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(session = %self.id, smtp_id, queue_id = outbound_id, error = %e, "delivery failed");
                // The client will send the whole message again: the queued remote part must not
                // leave as well.
                if let (Some(id), Some(h)) = (outbound_id, &self.backend.handoff) {
                    h.withdraw(id).await;
                    tracing::info!(session = %self.id, smtp_id, queue_id = %id, "queued remote part withdrawn");
                }
                return Reply::new(
                    451,
                    "4.3.0",
                    "Temporary failure storing the message, try again later",
                );
            }
        };
        let mut stored = 0usize;
        let mut handled = 0usize;
        let mut over_temp = 0usize;
        let mut over_perm = 0usize;
        let mut refusal: Option<String> = None;
        for (account, outcome) in tx.accounts.iter().zip(results.iter()) {
            let result = match outcome {
                LocalOutcome::Stored(r) => r,
                LocalOutcome::Handled => {
                    handled += 1;
                    tracing::debug!(session = %self.id, smtp_id, account, "handled by the recipient's filter");
                    continue;
                }
                LocalOutcome::Refused(why) => {
                    tracing::info!(session = %self.id, smtp_id, account, reason = %why, "refused by the recipient's filter");
                    refusal.get_or_insert_with(|| why.clone());
                    continue;
                }
            };
            match result {
                DeliveryResult::Stored(o) => {
                    stored += 1;
                    tracing::debug!(session = %self.id, smtp_id, account, uid = o.uid, "stored");
                }
                DeliveryResult::OverQuota {
                    message_alone_exceeds,
                } => {
                    if *message_alone_exceeds {
                        over_perm += 1;
                    } else {
                        over_temp += 1;
                    }
                    tracing::warn!(session = %self.id, smtp_id, account, message_alone_exceeds, "recipient over quota, copy not stored");
                }
                DeliveryResult::NoSuchAccount => {
                    tracing::warn!(session = %self.id, smtp_id, account, "recipient account vanished, copy not stored");
                }
            }
        }
        metrics::counter!("wharf_messages_delivered_total", "kind" => "local")
            .increment(stored as u64);
        if stored > 0 || handled > 0 || outbound_id.is_some() {
            self.messages += 1;
            self.count_received();
            let not_stored = tx.accounts.len() - stored - handled;
            if not_stored > 0 {
                // One reply per message in SMTP: accepted for the recipients that got it (their
                // quota was checked at RCPT; this is a race with other deliveries). The others get
                // no DSN yet: a known gap (docs/smtp.md), to be closed through the outbound queue.
                tracing::warn!(session = %self.id, smtp_id, not_stored, "partial delivery: accepted, some recipients did not get a copy");
            }
            tracing::info!(session = %self.id, smtp_id, queue_id = outbound_id, from = ?tx.from, rcpts = ?tx.rcpts, size, "message delivered");
            self.release(outbound_id).await;
            return accepted(&smtp_id, outbound_id);
        }
        if let Some(why) = refusal {
            metrics::counter!("wharf_messages_refused_total", "reason" => "sieve").increment(1);
            Reply::new(550, "5.7.1", reply_text(&why))
        } else if over_temp > 0 {
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
    async fn release(&self, outbound_id: Option<QueueId>) {
        if let (Some(id), Some(h)) = (outbound_id, &self.backend.handoff) {
            h.release(id).await;
        }
    }

    /// Hands the remote recipients to the outbound queue. The copy starts with `prepend` (our ARC
    /// set for forwarded mail), then what follows Return-Path, which belongs to final delivery
    /// only (RFC 5321 §4.4).
    async fn enqueue(
        &self,
        tx: &Transaction,
        prepend: &[u8],
        raw: &Bytes,
        smtp_id: &str,
    ) -> Result<QueueId, Reply> {
        let Some(handoff) = &self.backend.handoff else {
            tracing::error!(session = %self.id, smtp_id, "remote recipients accepted without an outbound queue");
            return Err(Reply::new(
                451,
                "4.3.0",
                "Remote delivery not available, try again later",
            ));
        };
        let now = chrono::Utc::now().timestamp();
        let entry = NewQueueEntry {
            sender: tx.from.clone().unwrap_or_default(),
            recipients: tx.remote.clone(),
            raw: if prepend.is_empty() {
                raw.slice(message::return_path_len(raw)..)
            } else {
                let rest = &raw[message::return_path_len(raw)..];
                let mut copy = Vec::with_capacity(prepend.len() + rest.len());
                copy.extend_from_slice(prepend);
                copy.extend_from_slice(rest);
                Bytes::from(copy)
            },
            envid: tx.params.envid.clone(),
            ret: tx.params.ret.as_deref().and_then(Ret::from_param),
            require_tls: tx.params.requiretls,
            created: now,
            // The queue's policy; `RemoteHandoff::enqueue` sets both.
            next_attempt: now,
            expires: now,
        };
        let origin = match &self.login {
            Some(l) => Origin::Submission {
                user: l.address.clone(),
            },
            None => Origin::Forward,
        };
        match handoff.enqueue(entry, origin).await {
            Ok(qid) => {
                tracing::info!(session = %self.id, smtp_id, queue_id = qid, remote = tx.remote.len(), "handed to the outbound queue");
                Ok(qid)
            }
            Err(e) => {
                tracing::error!(session = %self.id, smtp_id, error = %e, "outbound queue refused the message");
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
        let Some(login) = &self.login else {
            return Err(Reply::new(530, "5.7.0", "Authentication required"));
        };
        let content = &raw[body_start..];
        let headers = &content[..message::header_end(content)];
        if message::count_header(headers, "from") != 1 {
            tracing::warn!(session = %self.id, user = %login.address, "submission without exactly one From: header");
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
            match self.backend.recipients.may_send_as(login, addr).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(session = %self.id, user = %login.address, from = %addr, "From: header not owned by the account");
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
/// The message as stored after the trust checks: Return-Path, their header (on top of the
/// rest, RFC 8601 §5), our trace header, then the content without the forged verdicts that
/// claimed our authserv-id.
fn with_verdict(raw: Vec<u8>, body_start: usize, verdict: &ArrivalVerdict) -> Vec<u8> {
    let (trace, content) = raw.split_at(body_start.min(raw.len()));
    let (return_path, received) = trace.split_at(message::return_path_len(trace).min(trace.len()));
    let mut out = Vec::with_capacity(raw.len() + verdict.prepend.len());
    out.extend_from_slice(return_path);
    out.extend_from_slice(verdict.prepend.as_bytes());
    out.extend_from_slice(received);
    let mut at = 0;
    for r in &verdict.remove {
        if r.start < at || r.end > content.len() {
            continue;
        }
        out.extend_from_slice(&content[at..r.start]);
        at = r.end;
    }
    out.extend_from_slice(&content[at..]);
    out
}

/// Where the header section of `raw` ends (the whole message when it has no body).
fn body_end_of_header(raw: &[u8]) -> usize {
    raw.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |p| p + 2)
}

/// `Received:` fields in a header section (each counted once, continuation lines aside).
fn received_fields(header: &[u8]) -> usize {
    header
        .split(|b| *b == b'\n')
        .filter(|line| line.len() >= 9 && line[..9].eq_ignore_ascii_case(b"received:"))
        .count()
}

/// A filter's refusal reason as one reply line: printable ASCII only, bounded.
fn reply_text(why: &str) -> String {
    let text: String = why
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
        .take(200)
        .collect();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        "Message refused by the recipient".into()
    } else {
        text
    }
}

fn accepted(smtp_id: &str, outbound_id: Option<QueueId>) -> Reply {
    match outbound_id {
        Some(o) => Reply::new(
            250,
            "2.0.0",
            format!("Ok: queued as {smtp_id} (outbound {o})"),
        ),
        None => Reply::new(250, "2.0.0", format!("Ok: queued as {smtp_id}")),
    }
}
