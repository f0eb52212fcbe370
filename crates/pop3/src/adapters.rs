//! Binds the session's ports to the real system: `DirectoryAuth` (credentials, SASL, throttling
//! through `wharf_directory`) and `StoreMaildrop` (INBOX of `wharf_store::Store`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::stream::{self, StreamExt};
use wharf_store::{AccountId, FlagOp, Flags, MailboxId, MessageId, ModSeq, Store, StoreError, Uid};

use crate::backend::{DropEntry, Maildrop, MessageBody, Snapshot, Vanished};
use crate::transfer::transfer_size;

/// Transfer sizes are a function of the immutable message content, so they are remembered per
/// message id: a maildrop's blobs are read once per process, not at every login.
const SIZE_CACHE_MAX: usize = 1_000_000;
const SIZE_READS_IN_FLIGHT: usize = 8;

pub struct StoreMaildrop {
    store: Arc<dyn Store>,
    sizes: Mutex<HashMap<MessageId, u64>>,
}

impl StoreMaildrop {
    pub fn new(store: Arc<dyn Store>) -> Self {
        StoreMaildrop {
            store,
            sizes: Mutex::new(HashMap::new()),
        }
    }

    async fn size_of(&self, message: MessageId) -> Result<Option<u64>, StoreError> {
        if let Some(s) = self
            .sizes
            .lock()
            .ok()
            .and_then(|m| m.get(&message).copied())
        {
            return Ok(Some(s));
        }
        let raw = match self.store.message_raw(message).await {
            Ok(raw) => raw,
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let size = transfer_size(&raw);
        if let Ok(mut m) = self.sizes.lock() {
            if m.len() >= SIZE_CACHE_MAX {
                m.clear();
            }
            m.insert(message, size);
        }
        Ok(Some(size))
    }
}

#[async_trait]
impl Maildrop for StoreMaildrop {
    async fn lock(
        &self,
        account: AccountId,
        owner: &str,
        ttl_secs: i64,
    ) -> Result<bool, StoreError> {
        self.store.lock_maildrop(account, owner, ttl_secs).await
    }

    async fn unlock(&self, account: AccountId, owner: &str) -> Result<(), StoreError> {
        self.store.unlock_maildrop(account, owner).await
    }

    async fn snapshot(&self, account: AccountId) -> Result<Snapshot, StoreError> {
        let acct = self
            .store
            .get_account(account)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("account {account}")))?;
        let inbox = self
            .store
            .get_mailbox(account, "INBOX")
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("INBOX of account {account}")))?;
        // The modseq is read before the index: an expunge racing with the index read is then
        // reported by `vanished_since`, never missed.
        let status = self.store.mailbox_status(inbox.id).await?;
        let index = self.store.mailbox_index(inbox.id).await?;
        let ids: Vec<MessageId> = index.iter().map(|e| e.message_id).collect();
        // Sizes not yet known need the message bytes; read a few at a time.
        let sizes: Vec<Result<Option<u64>, StoreError>> =
            stream::iter(ids.into_iter().map(|id| self.size_of(id)))
                .buffered(SIZE_READS_IN_FLIGHT)
                .collect()
                .await;
        let mut entries = Vec::with_capacity(index.len());
        for (e, size) in index.into_iter().zip(sizes) {
            // Expunged between the index read and now: leave it out of the snapshot.
            let Some(size) = size? else {
                continue;
            };
            entries.push(DropEntry {
                uid: e.uid,
                message_id: e.message_id,
                size,
                stored_size: e.size,
                internal_date: e.internal_date,
                seen: e.flags.contains(Flags::SEEN),
            });
        }
        Ok(Snapshot {
            mailbox_id: inbox.id,
            uid_validity: status.uid_validity,
            modseq: status.highest_modseq,
            entries,
            expire_days: acct.pop3_expire_days,
        })
    }

    async fn open(&self, message: MessageId) -> Result<Option<MessageBody>, StoreError> {
        match self.store.open_message(message, 0).await {
            Ok((size, reader)) => Ok(Some(MessageBody { size, reader })),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn vanished_since(
        &self,
        mailbox: MailboxId,
        since: ModSeq,
    ) -> Result<Vanished, StoreError> {
        let c = self.store.changes_since(mailbox, since).await?;
        Ok(Vanished {
            uids: c.expunged,
            modseq: c.highest_modseq,
        })
    }

    async fn mark_seen(&self, mailbox: MailboxId, uids: &[Uid]) -> Result<(), StoreError> {
        self.store
            .store_flags(mailbox, uids, FlagOp::Add, Flags::SEEN, &[], None)
            .await
            .map(|_| ())
    }

    async fn expunge(&self, mailbox: MailboxId, uids: &[Uid]) -> Result<Vec<Uid>, StoreError> {
        self.store.expunge_uids(mailbox, uids).await
    }
}
