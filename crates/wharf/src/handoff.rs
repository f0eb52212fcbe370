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
use wharf_outbound::queue::{NewQueueEntry, Notify, QueuedRecipient, Ret};
use wharf_smtp::{OutboundMessage, RemoteHandoff};

/// How long a queued entry waits for its session's verdict. Only reached when the process died
/// between enqueue and reply; then the entry goes out (the client may also resend: a duplicate
/// is better than a loss).
const HOLD: Duration = Duration::from_secs(120);

pub struct QueueHandoff {
    outbound: Arc<Outbound>,
    /// How long an entry is retried (the `[outbound] max_age`).
    max_age_secs: i64,
}

impl QueueHandoff {
    pub fn new(outbound: Arc<Outbound>, max_age_secs: i64) -> QueueHandoff {
        QueueHandoff {
            outbound,
            max_age_secs,
        }
    }
}

fn recipients(msg: &OutboundMessage) -> Vec<QueuedRecipient> {
    msg.recipients
        .iter()
        .map(|r| {
            let mut q = QueuedRecipient::new(&r.address);
            q.notify = Notify::from_param(r.notify.as_deref());
            q.orcpt = r.orcpt.clone();
            q
        })
        .collect()
}

#[async_trait]
impl RemoteHandoff for QueueHandoff {
    async fn enqueue(&self, msg: OutboundMessage) -> Result<String, String> {
        let ret = msg.ret.as_deref().and_then(Ret::from_param);
        let recipients = recipients(&msg);
        let now = chrono::Utc::now().timestamp();
        let entry = NewQueueEntry {
            sender: msg.sender,
            recipients,
            raw: msg.raw,
            envid: msg.envid,
            ret,
            require_tls: msg.require_tls,
            created: now,
            next_attempt: now.saturating_add(HOLD.as_secs() as i64),
            expires: now.saturating_add(self.max_age_secs),
        };
        let id = if msg.authenticated_as.is_some() {
            self.outbound
                .submit(entry)
                .await
                .map_err(|e| e.to_string())?
        } else {
            let id = self
                .outbound
                .queue()
                .enqueue(entry)
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!(queue_id = id, "forwarded message queued (unsigned)");
            metrics::counter!("wharf_messages_queued_total").increment(1);
            id
        };
        Ok(id.to_string())
    }

    async fn release(&self, id: &str) {
        let Ok(id) = id.parse() else { return };
        if let Err(e) = self.outbound.retry(Some(id)).await {
            // Still queued: it leaves when the hold ends.
            tracing::warn!(queue_id = id, error = %e, "releasing a held queue entry failed");
        }
    }

    async fn withdraw(&self, id: &str) {
        let Ok(id) = id.parse() else { return };
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
    use wharf_outbound::queue::{MemoryQueue, QueueStore};
    use wharf_smtp::OutboundRecipient;

    fn message(authenticated: bool) -> OutboundMessage {
        OutboundMessage {
            sender: "a@x.test".into(),
            recipients: vec![OutboundRecipient {
                address: "b@y.test".into(),
                notify: None,
                orcpt: None,
            }],
            raw: bytes::Bytes::from_static(b"From: <a@x.test>\r\nSubject: s\r\n\r\nbody\r\n"),
            envid: None,
            ret: Some("HDRS".into()),
            require_tls: false,
            authenticated_as: authenticated.then(|| "a@x.test".to_string()),
        }
    }

    #[tokio::test]
    async fn entries_wait_for_release_and_withdrawn_ones_never_leave() {
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
        let handoff = QueueHandoff::new(outbound, 3600);
        let now = chrono::Utc::now().timestamp();
        for authenticated in [true, false] {
            let id = handoff.enqueue(message(authenticated)).await.unwrap();
            let held = queue.lease_due("w", now, 60, 10).await.unwrap();
            assert!(held.is_empty(), "held until the session's 250");
            handoff.release(&id).await;
            let due = queue.lease_due("w", now + 1, 60, 10).await.unwrap();
            assert_eq!(due.len(), 1);
            assert_eq!(due[0].id.to_string(), id);
            assert_eq!(due[0].ret, Some(Ret::Hdrs));
            queue.drop_entry(due[0].id).await.unwrap();

            let id = handoff.enqueue(message(authenticated)).await.unwrap();
            handoff.withdraw(&id).await;
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

    #[test]
    fn dsn_parameters_reach_the_queue_recipients() {
        let msg = OutboundMessage {
            sender: "a@x.test".into(),
            recipients: vec![
                OutboundRecipient {
                    address: "b@y.test".into(),
                    notify: Some("SUCCESS,DELAY".into()),
                    orcpt: Some("rfc822;B@y.test".into()),
                },
                OutboundRecipient {
                    address: "c@y.test".into(),
                    notify: None,
                    orcpt: None,
                },
            ],
            raw: bytes::Bytes::from_static(b"x"),
            envid: None,
            ret: None,
            require_tls: false,
            authenticated_as: None,
        };
        let r = recipients(&msg);
        assert!(r[0].notify.success && r[0].notify.delay && !r[0].notify.failure);
        assert!(r[0].notify.explicit);
        assert_eq!(r[0].orcpt.as_deref(), Some("rfc822;B@y.test"));
        assert_eq!(r[1].notify, Notify::default_policy());
        assert_eq!(r[1].orcpt, None);
    }
}
