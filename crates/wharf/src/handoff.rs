//! The SMTP services' `RemoteHandoff` on top of the outbound queue: what a session accepted for
//! recipients outside the local domains becomes a durable queue entry before the client's 250.
//!
//! Entries are queued held (`HOLD`) and made due by `release` when the session answers 250, or
//! dropped by `withdraw` when it answers 451 after all (its local part failed and the client
//! will resend everything).
//!
//! Submitted mail (an authenticated user) goes through `Outbound::submit`, which DKIM-signs it
//! when the From: domain has keys. Mail arriving on port 25 for an alias that forwards outside is
//! queued unsigned: signing it would vouch, with our key, for whatever a stranger put in From:.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use wharf_outbound::Outbound;
use wharf_outbound::queue::{NewQueueEntry, QueueError, QueueId};
use wharf_smtp::{Origin, RemoteHandoff};

/// How long a queued entry waits for its session's verdict. Only reached when the process died
/// between enqueue and reply; then the entry goes out (the client may also resend: a duplicate
/// is better than a loss).
const HOLD: Duration = Duration::from_secs(120);

pub struct QueueHandoff {
    outbound: Arc<Outbound>,
    /// How long an entry is retried (the `[outbound] max_age`).
    max_age_secs: i64,
    /// Where the addresses users write to are remembered: the spam filter trusts replies from
    /// them (`None`: not remembered).
    correspondents: Option<Arc<dyn wharf_store::Store>>,
}

impl QueueHandoff {
    pub fn new(outbound: Arc<Outbound>, max_age_secs: i64) -> QueueHandoff {
        QueueHandoff {
            outbound,
            max_age_secs,
            correspondents: None,
        }
    }

    pub fn with_correspondents(mut self, store: Arc<dyn wharf_store::Store>) -> QueueHandoff {
        self.correspondents = Some(store);
        self
    }

    /// Remembers, off the reply's path, that `user` wrote to `recipients`.
    fn note_correspondents(&self, user: &str, recipients: Vec<String>) {
        let Some(store) = self.correspondents.clone() else {
            return;
        };
        let user = user.to_string();
        tokio::spawn(async move {
            let account = match store.get_account_by_address(&user).await {
                Ok(Some(a)) => a,
                _ => return,
            };
            if let Err(e) = store.note_correspondents(account.id, &recipients).await {
                tracing::warn!(user, error = %e, "correspondents not recorded");
            }
        });
    }
}

#[async_trait]
impl RemoteHandoff for QueueHandoff {
    async fn enqueue(
        &self,
        mut entry: NewQueueEntry,
        origin: Origin,
    ) -> Result<QueueId, QueueError> {
        match origin {
            Origin::Submission { user } => {
                let now = chrono::Utc::now().timestamp();
                entry.created = now;
                entry.next_attempt = now.saturating_add(HOLD.as_secs() as i64);
                entry.expires = now.saturating_add(self.max_age_secs);
                let recipients = entry.recipients.iter().map(|r| r.address.clone()).collect();
                let id = self.outbound.submit(entry).await?;
                self.note_correspondents(&user, recipients);
                Ok(id)
            }
            Origin::Forward => {
                let now = chrono::Utc::now().timestamp();
                entry.created = now;
                entry.next_attempt = now.saturating_add(HOLD.as_secs() as i64);
                entry.expires = now.saturating_add(self.max_age_secs);
                let id = self.outbound.queue().enqueue(entry).await?;
                tracing::info!(queue_id = id, "forwarded message queued (unsigned)");
                metrics::counter!("wharf_messages_queued_total").increment(1);
                Ok(id)
            }
        }
    }

    async fn release(&self, id: QueueId) {
        if let Err(e) = self.outbound.retry(Some(id)).await {
            // Still queued: it leaves when the hold ends.
            tracing::warn!(queue_id = id, error = %e, "releasing a held queue entry failed");
        }
    }

    async fn withdraw(&self, id: QueueId) {
        match self.outbound.queue().drop_entry(id).await {
            Ok(_) => tracing::info!(queue_id = id, "held queue entry withdrawn"),
            Err(e) => {
                tracing::error!(queue_id = id, error = %e, "withdrawing a held queue entry failed; it will be sent")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wharf_outbound::queue::{MemoryQueue, Notify, QueueStore, QueuedRecipient, Ret};

    fn entry() -> NewQueueEntry {
        let mut r = QueuedRecipient::new("b@y.test");
        r.notify = Notify::from_param(Some("SUCCESS,DELAY"));
        r.orcpt = Some("rfc822;B@y.test".into());
        NewQueueEntry {
            sender: "a@x.test".into(),
            recipients: vec![r],
            raw: bytes::Bytes::from_static(b"From: <a@x.test>\r\nSubject: s\r\n\r\nbody\r\n"),
            envid: None,
            ret: Some(Ret::Hdrs),
            require_tls: false,
            created: 0,
            next_attempt: 0,
            expires: 0,
        }
    }

    fn origin(authenticated: bool) -> Origin {
        if authenticated {
            Origin::Submission {
                user: "a@x.test".into(),
            }
        } else {
            Origin::Forward
        }
    }

    /// A hand-off over an in-memory queue whose router can reach nothing (nothing is sent).
    fn handoff_over_memory(max_age: i64) -> (Arc<MemoryQueue>, QueueHandoff) {
        let queue = Arc::new(MemoryQueue::new());
        let router = wharf_outbound::route::Router::new(wharf_outbound::route::RouterConfig {
            nameservers: vec!["127.0.0.1:9".parse().unwrap()],
            mta_sts: None,
            ..Default::default()
        })
        .unwrap();
        let outbound = Outbound::new(
            queue.clone(),
            router,
            wharf_outbound::ClientConfig::new("h.test"),
            wharf_outbound::QueueConfig::new("h.test"),
            wharf_outbound::dkim::DkimSigners::new(),
            None,
        );
        (queue, QueueHandoff::new(outbound, max_age))
    }

    #[tokio::test]
    async fn entries_wait_for_release_and_withdrawn_ones_never_leave() {
        let (queue, handoff) = handoff_over_memory(3600);
        let now = chrono::Utc::now().timestamp();
        for authenticated in [true, false] {
            let id = handoff
                .enqueue(entry(), origin(authenticated))
                .await
                .unwrap();
            let held = queue.lease_due("w", now, 60, 10).await.unwrap();
            assert!(held.is_empty(), "held until the session's 250");
            handoff.release(id).await;
            let due = queue.lease_due("w", now + 1, 60, 10).await.unwrap();
            assert_eq!(due.len(), 1);
            assert_eq!(due[0].id, id);
            assert_eq!(due[0].ret, Some(Ret::Hdrs));
            // The DSN parameters the session put on the recipient reach the queue as they are.
            let r = &due[0].recipients[0];
            assert!(r.notify.success && r.notify.delay && !r.notify.failure && r.notify.explicit);
            assert_eq!(r.orcpt.as_deref(), Some("rfc822;B@y.test"));
            assert!(
                due[0].expires >= now + 3600 - 5,
                "expiry from max_age, not the session"
            );
            queue.drop_entry(due[0].id).await.unwrap();

            let id = handoff
                .enqueue(entry(), origin(authenticated))
                .await
                .unwrap();
            handoff.withdraw(id).await;
            assert!(queue.list().await.unwrap().is_empty());
            let later = now + 10 * HOLD.as_secs() as i64;
            assert!(
                queue
                    .lease_due("w", later, 60, 10)
                    .await
                    .unwrap()
                    .is_empty()
            );
        }
    }

    #[tokio::test]
    async fn forwarded_entries_get_the_queue_schedule_not_the_sessions() {
        let (queue, handoff) = handoff_over_memory(7200);
        let now = chrono::Utc::now().timestamp();
        let id = handoff.enqueue(entry(), Origin::Forward).await.unwrap();
        let e = queue.get(id).await.unwrap().unwrap();
        assert!(e.created >= now && e.created <= now + 5);
        assert!(e.next_attempt >= now + HOLD.as_secs() as i64);
        assert!(e.expires >= now + 7200 && e.expires <= now + 7205);
        assert_eq!(e.sender, "a@x.test");
    }
}
