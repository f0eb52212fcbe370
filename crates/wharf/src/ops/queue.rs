//! The outbound queue as the operator sees it, read and changed directly in the store (a running
//! server picks changes up at its next queue scan, within `[outbound] poll_interval`).

use std::sync::Arc;

use serde::Serialize;
use wharf_store::queue::{QueueEntry, QueueError, QueueId, QueueStore, RecipientState};

use super::{OpError, OpResult};

impl From<QueueError> for OpError {
    fn from(e: QueueError) -> OpError {
        OpError::internal(format!("queue: {e}"))
    }
}

pub fn parse_id(text: &str) -> OpResult<QueueId> {
    text.trim()
        .parse::<QueueId>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            OpError::invalid(format!("{text:?} is not a queue id (see wharf queue list)"))
        })
}

pub fn state_word(s: RecipientState) -> &'static str {
    match s {
        RecipientState::Pending => "pending",
        RecipientState::Delivered => "delivered",
        RecipientState::Failed => "failed",
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RecipientView {
    pub address: String,
    pub state: &'static str,
    pub status: Option<String>,
    pub diagnostic: Option<String>,
    pub remote_mta: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EntryView {
    pub id: QueueId,
    /// Empty for the null sender `<>`.
    pub sender: String,
    pub size: u64,
    pub created: String,
    pub attempts: u32,
    pub next_attempt: String,
    pub expires: String,
    pub require_tls: bool,
    pub envid: Option<String>,
    pub recipients: Vec<RecipientView>,
}

impl From<&QueueEntry> for EntryView {
    fn from(e: &QueueEntry) -> EntryView {
        EntryView {
            id: e.id,
            sender: e.sender.clone(),
            size: e.size,
            created: super::rfc3339(e.created),
            attempts: e.attempts,
            next_attempt: super::rfc3339(e.next_attempt),
            expires: super::rfc3339(e.expires),
            require_tls: e.require_tls,
            envid: e.envid.clone(),
            recipients: e
                .recipients
                .iter()
                .map(|r| RecipientView {
                    address: r.address.clone(),
                    state: state_word(r.state),
                    status: r.status.clone(),
                    diagnostic: r.diagnostic.clone(),
                    remote_mta: r.remote_mta.clone(),
                })
                .collect(),
        }
    }
}

pub async fn list(queue: &Arc<dyn QueueStore>) -> OpResult<Vec<QueueEntry>> {
    Ok(queue.list().await?)
}

/// Up to `limit` entries with ids above `after`, by id.
pub async fn list_page(
    queue: &Arc<dyn QueueStore>,
    after: Option<QueueId>,
    limit: usize,
) -> OpResult<Vec<QueueEntry>> {
    Ok(queue.list_page(after, limit).await?)
}

pub async fn get(queue: &Arc<dyn QueueStore>, id: QueueId) -> OpResult<QueueEntry> {
    queue
        .get(id)
        .await?
        .ok_or_else(|| OpError::not_found(format!("no queue entry {id}")))
}

/// Makes one entry (or every entry with `None`) due now; how many.
pub async fn retry(queue: &Arc<dyn QueueStore>, id: Option<QueueId>) -> OpResult<u64> {
    let n = queue.retry_now(id, chrono::Utc::now().timestamp()).await?;
    match id {
        Some(id) if n == 0 => Err(OpError::not_found(format!("no queue entry {id}"))),
        _ => Ok(n),
    }
}

/// Deletes an entry without sending any DSN.
pub async fn drop_entry(queue: &Arc<dyn QueueStore>, id: QueueId) -> OpResult<()> {
    if !queue.drop_entry(id).await? {
        return Err(OpError::not_found(format!("no queue entry {id}")));
    }
    Ok(())
}
