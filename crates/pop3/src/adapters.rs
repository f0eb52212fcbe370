//! Binds the session's ports to the real system: `DirectoryAuth` (credentials, SASL, throttling
//! through `wharf_directory`) and `StoreMaildrop` (INBOX of `wharf_store::Store`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::stream::{self, StreamExt};
use wharf_directory::{AuthError, Directory, MECHANISMS, Mechanism, SaslExchange, SaslStep};
use wharf_store::{
    Account, AccountId, FlagOp, Flags, MailboxId, MessageId, ModSeq, Store, StoreError, Uid,
};

use crate::backend::{
    AuthFailure, Authenticator, DropEntry, Login, Maildrop, MessageBody, SaslOutcome, SaslSession,
    Snapshot, Vanished,
};
use crate::transfer::transfer_size;

fn failure(e: AuthError) -> AuthFailure {
    match e {
        AuthError::InvalidCredentials => AuthFailure::InvalidCredentials,
        AuthError::Throttled { retry_after } => AuthFailure::Throttled { retry_after },
        AuthError::Disabled => AuthFailure::Disabled,
        AuthError::Malformed(s) => AuthFailure::Malformed(s),
        AuthError::Aborted => AuthFailure::Aborted,
        AuthError::Temporary(s) => AuthFailure::Temporary(s),
    }
}

fn login(a: Account) -> Login {
    Login {
        account_id: a.id,
        address: a.address,
    }
}

pub struct DirectoryAuth {
    dir: Directory,
}

impl DirectoryAuth {
    pub fn new(dir: Directory) -> Self {
        DirectoryAuth { dir }
    }
}

struct Exchange(SaslExchange);

#[async_trait]
impl SaslSession for Exchange {
    async fn step(&mut self, client: &[u8]) -> SaslOutcome {
        match self.0.step(client).await {
            SaslStep::Challenge(c) => SaslOutcome::Challenge(c),
            SaslStep::Success {
                account,
                server_final,
            } => SaslOutcome::Success {
                login: login(account),
                server_final,
            },
            SaslStep::Failure(e) => SaslOutcome::Failure(failure(e)),
        }
    }
}

#[async_trait]
impl Authenticator for DirectoryAuth {
    async fn authenticate(&self, user: &str, pass: &str, ip: IpAddr) -> Result<Login, AuthFailure> {
        self.dir
            .authenticate(user, pass, ip)
            .await
            .map(login)
            .map_err(failure)
    }

    fn mechanisms(&self) -> Vec<&'static str> {
        MECHANISMS.iter().map(|m| m.name()).collect()
    }

    fn start_sasl(&self, name: &str, ip: IpAddr) -> Option<Box<dyn SaslSession>> {
        let mech = Mechanism::from_name(name)?;
        Some(Box::new(Exchange(self.dir.start_sasl(mech, ip))))
    }
}

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
        // TODO(lead): switch to the store's streaming read; until then the message is read whole
        // and the session streams it from memory.
        match self.store.message_raw(message).await {
            Ok(raw) => Ok(Some(MessageBody {
                size: raw.len() as u64,
                reader: Box::new(std::io::Cursor::new(raw)),
            })),
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
