//! DSN delivery for a Wharf node: a DSN to a local sender goes straight into that account's
//! INBOX (`Store::deliver`, durable before it returns); one to a remote sender is queued with the
//! null reverse path like any outbound message.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use wharf_directory::{Directory, Resolution};
use wharf_store::Delivery;

use crate::queue::{NewQueueEntry, QueueStore, QueuedRecipient};
use crate::worker::BounceSink;

pub struct LocalBounceSink {
    directory: Directory,
    queue: Arc<dyn QueueStore>,
    /// How long a queued remote DSN is retried.
    max_age_secs: i64,
}

impl LocalBounceSink {
    pub fn new(
        directory: Directory,
        queue: Arc<dyn QueueStore>,
        max_age_secs: i64,
    ) -> LocalBounceSink {
        LocalBounceSink {
            directory,
            queue,
            max_age_secs,
        }
    }
}

#[async_trait]
impl BounceSink for LocalBounceSink {
    async fn send_dsn(&self, to: &str, raw: Vec<u8>) -> Result<(), String> {
        let now = chrono::Utc::now().timestamp();
        match self
            .directory
            .resolve_recipient(to)
            .await
            .map_err(|e| e.to_string())?
        {
            Resolution::Local { accounts, external } => {
                if !accounts.is_empty() {
                    let mut stored = b"Return-Path: <>\r\n".to_vec();
                    stored.extend_from_slice(&raw);
                    let results = self
                        .directory
                        .store()
                        .deliver(Delivery {
                            raw: Bytes::from(stored),
                            internal_date: now,
                            recipients: accounts,
                            junk: false,
                        })
                        .await
                        .map_err(|e| e.to_string())?;
                    tracing::info!(%to, results = ?results, "DSN delivered locally");
                }
                if !external.is_empty() {
                    self.enqueue(&external, raw, now).await?;
                }
                Ok(())
            }
            // A local domain without such a user: nobody to tell (and never a bounce of a bounce).
            Resolution::UnknownUser => {
                tracing::warn!(%to, "DSN for an unknown local sender dropped");
                Ok(())
            }
            Resolution::NotLocalDomain => self.enqueue(&[to.to_string()], raw, now).await,
        }
    }
}

impl LocalBounceSink {
    async fn enqueue(&self, to: &[String], raw: Vec<u8>, now: i64) -> Result<(), String> {
        self.queue
            .enqueue(NewQueueEntry {
                sender: String::new(),
                recipients: to.iter().map(|a| QueuedRecipient::new(a)).collect(),
                raw: Bytes::from(raw),
                envid: None,
                ret: None,
                require_tls: false,
                created: now,
                next_attempt: now,
                expires: now + self.max_age_secs,
            })
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
