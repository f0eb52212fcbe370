//! The narrow ports an SMTP session needs from the rest of the system: SASL authentication
//! (`Authenticator`), recipient and sender checks (`Recipients`: aliases, quota), local delivery
//! into the store (`LocalDelivery`) and the outbound queue for remote recipients
//! (`RemoteHandoff`), and the trust checks of port-25 mail (`ArrivalCheck`). The session core only talks to these traits, so transcript tests drive it
//! with in-memory doubles; `adapters` binds the first three to `wharf_directory::Directory` and
//! `wharf_store::Store`, the binary implements `RemoteHandoff` on the outbound queue.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use wharf_store::queue::{NewQueueEntry, QueueError, QueueId};
use wharf_store::{AccountId, Delivery, DeliveryResult, StoreError};

/// Authentication is one port for every protocol, defined with the directory
/// (`wharf_directory::session_auth`); `AuthFailure` is the directory's `AuthError`.
pub use wharf_directory::AuthError as AuthFailure;
pub use wharf_directory::session_auth::{Authenticator, Login, SaslOutcome, SaslSession};

/// Where an address leads (aliases already expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Local {
        /// Accounts to deliver to, without duplicates.
        accounts: Vec<AccountId>,
        /// Alias targets outside the local domains (forwarding).
        external: Vec<String>,
    },
    UnknownUser,
    NotLocalDomain,
}

#[async_trait]
pub trait Recipients: Send + Sync {
    async fn resolve(&self, address: &str) -> Result<Resolution, StoreError>;
    /// `resolve` for a transaction from `sender` (empty for the null sender); by default the
    /// sender does not matter.
    async fn resolve_from(&self, address: &str, _sender: &str) -> Result<Resolution, StoreError> {
        self.resolve(address).await
    }
    /// Whether `login` may use `address` as envelope sender or in From:.
    async fn may_send_as(&self, login: &Login, address: &str) -> Result<bool, StoreError>;
    /// The account's quota limit (0 = unlimited), `None` when the account no longer exists.
    async fn quota_limit(&self, account: AccountId) -> Result<Option<u64>, StoreError>;
    /// Octets the account stores now.
    async fn quota_used(&self, account: AccountId) -> Result<u64, StoreError>;
}

/// The SMTP envelope of a local delivery, for the recipients' filters (Sieve).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryEnvelope {
    /// The reverse-path; empty for the null sender.
    pub from: String,
    /// Per entry of `Delivery::recipients`, the address that led to that account.
    pub recipients: Vec<String>,
    /// The authenticated submitter, when the message came by submission.
    pub submitter: Option<String>,
    /// The message also goes to remote recipients (queued): a refusal cannot be the reply, so
    /// a filter's `reject` must be told to the sender another way (a rejection notice).
    pub remote_pending: bool,
    /// Per entry of `Delivery::recipients`, whether its copy goes to Junk, when the spam filter
    /// judged the recipients apart and they disagree; empty: `Delivery::junk` holds for all.
    pub junk_for: Vec<bool>,
}

impl DeliveryEnvelope {
    /// Whether recipient `i`'s copy goes to Junk.
    pub fn junk(&self, delivery: &Delivery, i: usize) -> bool {
        delivery.junk || self.junk_for.get(i).copied().unwrap_or(false)
    }
}

/// What became of one recipient's copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalOutcome {
    /// Stored, or not, as the store says.
    Stored(DeliveryResult),
    /// The recipient's filter dealt with the message without storing it (discarded, redirected,
    /// or refused with a notice already queued for the sender): delivered as far as SMTP goes.
    Handled,
    /// The recipient's filter refuses the message with this reason. Returned only when every
    /// local recipient refuses and nothing is `remote_pending`: the reply is then `550 5.7.1`.
    Refused(String),
}

#[async_trait]
pub trait LocalDelivery: Send + Sync {
    /// Stores one copy per recipient, durably, before returning (the client's 250 depends on it).
    async fn deliver(&self, delivery: Delivery) -> Result<Vec<DeliveryResult>, StoreError>;

    /// `deliver` with the envelope, for implementations that filter per recipient; one outcome
    /// per entry of `delivery.recipients`. Durable before returning, like `deliver`.
    async fn deliver_with_envelope(
        &self,
        delivery: Delivery,
        envelope: &DeliveryEnvelope,
    ) -> Result<Vec<LocalOutcome>, StoreError> {
        let n = delivery.recipients.len();
        let junk: Vec<bool> = (0..n).map(|i| envelope.junk(&delivery, i)).collect();
        if junk.iter().all(|j| *j == delivery.junk) {
            return Ok(self
                .deliver(delivery)
                .await?
                .into_iter()
                .map(LocalOutcome::Stored)
                .collect());
        }
        // The recipients disagree: one delivery for the Junk copies, one for the others.
        let mut outcomes: Vec<Option<LocalOutcome>> = vec![None; n];
        for to_junk in [false, true] {
            let picked: Vec<usize> = (0..n).filter(|&i| junk[i] == to_junk).collect();
            if picked.is_empty() {
                continue;
            }
            let part = Delivery {
                raw: delivery.raw.clone(),
                internal_date: delivery.internal_date,
                recipients: picked.iter().map(|&i| delivery.recipients[i]).collect(),
                junk: to_junk,
            };
            for (&i, r) in picked.iter().zip(self.deliver(part).await?) {
                outcomes[i] = Some(LocalOutcome::Stored(r));
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.ok_or_else(|| StoreError::Invalid("a recipient got no result".into())))
            .collect()
    }
}

/// Who vouches for a message handed to the outbound queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Submitted by an authenticated user (the queue may DKIM-sign it).
    Submission { user: String },
    /// Arrived on port 25 for an alias that forwards outside: queued as is.
    Forward,
}

/// Takes messages for remote recipients. Implemented by the binary on top of the outbound queue.
///
/// The session awaits `enqueue` before its final reply, then either `release`s the entry (the
/// reply is 250) or `withdraw`s it (the local part failed and the reply is 4xx: the client will
/// send the whole message again, so the queued copy must not leave, or the remote recipients
/// would get it twice).
#[async_trait]
pub trait RemoteHandoff: Send + Sync + 'static {
    /// Durably queues `entry`, held back until `release`; Ok only once committed. The session
    /// fills `created` (now); `next_attempt` and `expires` are the queue's policy and set by the
    /// implementation. A held entry that is neither released nor withdrawn (the process died in
    /// between) is sent after a short hold anyway.
    async fn enqueue(&self, entry: NewQueueEntry, origin: Origin) -> Result<QueueId, QueueError>;
    /// The session answers 250: deliver the entry now.
    async fn release(&self, id: QueueId);
    /// The session answers with an error after all: forget the entry without any DSN.
    async fn withdraw(&self, id: QueueId);
}

/// The SMTP facts of a message arriving on port 25, for the trust checks.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    pub ip: IpAddr,
    /// The EHLO/HELO argument.
    pub helo: &'a str,
    /// The reverse-path; empty for the null sender.
    pub mail_from: &'a str,
    /// The accepted recipients' addresses.
    pub recipients: &'a [String],
    /// The local accounts the message goes to (after aliases), one per account.
    pub accounts: &'a [AccountId],
    /// Some of them are forwarded outside (alias targets on other domains).
    pub forwarding: bool,
}

/// What the trust checks decided about an arriving message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArrivalAction {
    Deliver,
    /// File into the recipients' Junk mailbox.
    Junk,
    /// `550 5.7.1` with this text.
    Reject(String),
    /// `451 4.7.0` with this text.
    TempFail(String),
}

#[derive(Debug, Clone)]
pub struct ArrivalVerdict {
    /// Header fields to put on top of the stored message (Authentication-Results), CRLF-ended.
    pub prepend: String,
    /// Byte ranges of the content's header section to leave out (forged verdicts of ours).
    pub remove: Vec<std::ops::Range<usize>>,
    /// Header fields for the forwarded copy only (our ARC set), CRLF-ended; may be empty.
    pub forward_prepend: String,
    pub action: ArrivalAction,
    /// Per entry of `Arrival::accounts`, whether that copy goes to Junk when the recipients
    /// were judged apart and disagree (`action` is then `Deliver`); empty otherwise.
    pub junk_for: Vec<bool>,
}

/// Trust of mail arriving on port 25 (SPF, DKIM, ARC, DMARC, iprev), asked once the content is
/// complete. Implemented by the binary over `wharf-inbound`.
#[async_trait]
pub trait ArrivalCheck: Send + Sync {
    /// `content`: the message as the client sent it (without our trace header).
    async fn check(&self, arrival: &Arrival<'_>, content: &[u8]) -> ArrivalVerdict;
}

/// Everything a session talks to. `handoff: None`: remote recipients get `451 4.3.0`.
/// `arrival: None`: port-25 mail is delivered unchecked.
#[derive(Clone)]
pub struct Backend {
    pub auth: Arc<dyn Authenticator>,
    pub recipients: Arc<dyn Recipients>,
    pub delivery: Arc<dyn LocalDelivery>,
    pub handoff: Option<Arc<dyn RemoteHandoff>>,
    pub arrival: Option<Arc<dyn ArrivalCheck>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records each `deliver` call: (recipients, junk); answers OverQuota for account 2 so that
    /// results can be told apart.
    #[derive(Default)]
    struct Recording(Mutex<Vec<(Vec<AccountId>, bool)>>);

    #[async_trait]
    impl LocalDelivery for Recording {
        async fn deliver(&self, d: Delivery) -> Result<Vec<DeliveryResult>, StoreError> {
            self.0.lock().unwrap().push((d.recipients.clone(), d.junk));
            Ok(d.recipients
                .iter()
                .map(|&a| {
                    if a == 2 {
                        DeliveryResult::OverQuota {
                            message_alone_exceeds: false,
                        }
                    } else {
                        DeliveryResult::NoSuchAccount
                    }
                })
                .collect())
        }
    }

    fn delivery(junk: bool) -> Delivery {
        Delivery {
            raw: bytes::Bytes::from_static(b"Subject: x\r\n\r\nx\r\n"),
            internal_date: 0,
            recipients: vec![1, 2, 3],
            junk,
        }
    }

    fn envelope(junk_for: Vec<bool>) -> DeliveryEnvelope {
        DeliveryEnvelope {
            from: "a@b.test".into(),
            recipients: vec!["x@y".into(); 3],
            submitter: None,
            remote_pending: false,
            junk_for,
        }
    }

    #[tokio::test]
    async fn recipients_judged_apart_are_delivered_in_two_groups_with_results_in_order() {
        let r = Recording::default();
        let out = r
            .deliver_with_envelope(delivery(false), &envelope(vec![false, true, false]))
            .await
            .unwrap();
        assert_eq!(
            *r.0.lock().unwrap(),
            vec![(vec![1, 3], false), (vec![2], true)]
        );
        assert_eq!(out.len(), 3);
        assert!(matches!(
            out[1],
            LocalOutcome::Stored(DeliveryResult::OverQuota { .. })
        ));
        assert!(matches!(
            out[0],
            LocalOutcome::Stored(DeliveryResult::NoSuchAccount)
        ));
    }

    #[tokio::test]
    async fn agreeing_or_quarantined_recipients_are_one_delivery() {
        for (junk, junk_for, want) in [
            (false, vec![], false),
            (false, vec![false, false, false], false),
            (true, vec![false, true, false], true),
        ] {
            let r = Recording::default();
            r.deliver_with_envelope(delivery(junk), &envelope(junk_for))
                .await
                .unwrap();
            assert_eq!(*r.0.lock().unwrap(), vec![(vec![1, 2, 3], want)]);
        }
    }
}
