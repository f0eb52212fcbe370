//! In-process change notification: one `broadcast` channel per account, created on first
//! subscription and dropped when its last receiver is gone.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::broadcast;

use crate::model::{AccountId, MailboxEvent};

/// Events a slow receiver may fall behind by before it sees `Lagged` and must resync.
const CHANNEL_CAPACITY: usize = 1024;

#[derive(Default)]
pub(crate) struct EventHub {
    channels: Mutex<HashMap<AccountId, broadcast::Sender<MailboxEvent>>>,
}

impl EventHub {
    pub fn subscribe(&self, account: AccountId) -> broadcast::Receiver<MailboxEvent> {
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(account)
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .subscribe()
    }

    /// Sends `event` to every account that has a subscriber (and forgets channels nobody reads).
    pub fn publish_all(&self, event: MailboxEvent) {
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, tx| tx.receiver_count() > 0);
        for tx in map.values() {
            let _ = tx.send(event.clone());
        }
    }

    pub fn publish(&self, account: AccountId, event: MailboxEvent) {
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = map.get(&account) {
            if tx.receiver_count() == 0 {
                map.remove(&account);
            } else {
                let _ = tx.send(event);
            }
        }
    }
}
