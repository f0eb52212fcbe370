//! The SMTP services' `RemoteHandoff` on top of the outbound queue: what a session accepted for
//! recipients outside the local domains becomes a durable queue entry before the client's 250.
//!
//! Submitted mail (an authenticated user) goes through `Outbound::submit`, which DKIM-signs it
//! when the From: domain has keys. Mail arriving on port 25 for an alias that forwards outside is
//! queued unsigned: signing it would vouch, with our key, for whatever a stranger put in From:.

use std::sync::Arc;

use async_trait::async_trait;
use wharf_outbound::Outbound;
use wharf_outbound::queue::{NewQueueEntry, Notify, QueuedRecipient, Ret};
use wharf_smtp::{OutboundMessage, RemoteHandoff};

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
        let id = if msg.authenticated_as.is_some() {
            self.outbound
                .submit(wharf_outbound::Submission {
                    sender: msg.sender,
                    recipients,
                    raw: msg.raw,
                    envid: msg.envid,
                    ret,
                    require_tls: msg.require_tls,
                })
                .await
                .map_err(|e| e.to_string())?
        } else {
            let now = chrono::Utc::now().timestamp();
            let id = self
                .outbound
                .queue()
                .enqueue(NewQueueEntry {
                    sender: msg.sender,
                    recipients,
                    raw: msg.raw,
                    envid: msg.envid,
                    ret,
                    require_tls: msg.require_tls,
                    created: now,
                    next_attempt: now,
                    expires: now.saturating_add(self.max_age_secs),
                })
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!(queue_id = id, "forwarded message queued (unsigned)");
            metrics::counter!("wharf_messages_queued_total").increment(1);
            self.outbound.wake();
            id
        };
        Ok(id.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wharf_smtp::OutboundRecipient;

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
