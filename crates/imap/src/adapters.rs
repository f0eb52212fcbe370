//! Binds the session's ports to the real system: `DirectoryAuth` (credentials, SASL and
//! throttling through `wharf_directory`) and `StoreMailboxes`/`StoreMessages` (an account's
//! mailboxes and messages in `wharf_store::Store`). The only file of the crate that names
//! `Directory` or `Store`.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::broadcast;
use wharf_directory::{AuthError, Directory, MECHANISMS, Mechanism, SaslExchange, SaslStep};
use wharf_store::{
    Account, AccountId, AppendOutcome, CopyOutcome, FlagOp, FlagUpdate, Flags, Mailbox,
    MailboxChanges, MailboxEvent, MailboxId, MailboxStatus, MessageContent, MessageEntry,
    MessageId, ModSeq, SpecialUse, Store, TextField, Uid,
};

use crate::backend::{
    AuthFailure, Authenticator, Backend, BodyReader, Login, Mailboxes, Messages, Result,
    SaslOutcome, SaslSession,
};

/// The backend of a running server: the directory for logins, its store for everything else.
pub fn backend(directory: Directory) -> Backend {
    let store = directory.store().clone();
    Backend {
        auth: Arc::new(DirectoryAuth { dir: directory }),
        mailboxes: Arc::new(StoreMailboxes {
            store: store.clone(),
        }),
        messages: Arc::new(StoreMessages { store }),
    }
}

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
    async fn authenticate(
        &self,
        user: &str,
        pass: &str,
        ip: IpAddr,
    ) -> std::result::Result<Login, AuthFailure> {
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

pub struct StoreMailboxes {
    store: Arc<dyn Store>,
}

#[async_trait]
impl Mailboxes for StoreMailboxes {
    async fn list(&self, account: AccountId) -> Result<Vec<Mailbox>> {
        self.store.list_mailboxes(account).await
    }
    async fn get(&self, account: AccountId, name: &str) -> Result<Option<Mailbox>> {
        self.store.get_mailbox(account, name).await
    }
    async fn get_by_id(&self, id: MailboxId) -> Result<Option<Mailbox>> {
        self.store.get_mailbox_by_id(id).await
    }
    async fn create(
        &self,
        account: AccountId,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<Mailbox> {
        self.store.create_mailbox(account, name, special_use).await
    }
    async fn delete(&self, account: AccountId, id: MailboxId) -> Result<()> {
        self.store.delete_mailbox(account, id).await
    }
    async fn rename(&self, account: AccountId, id: MailboxId, new_name: &str) -> Result<()> {
        self.store.rename_mailbox(account, id, new_name).await
    }
    async fn set_subscribed(&self, account: AccountId, id: MailboxId, on: bool) -> Result<()> {
        self.store.set_subscribed(account, id, on).await
    }
    async fn status(&self, id: MailboxId) -> Result<MailboxStatus> {
        self.store.mailbox_status(id).await
    }
}

pub struct StoreMessages {
    store: Arc<dyn Store>,
}

#[async_trait]
impl Messages for StoreMessages {
    async fn index(&self, mailbox: MailboxId) -> Result<Vec<MessageEntry>> {
        self.store.mailbox_index(mailbox).await
    }
    async fn changes_since(&self, mailbox: MailboxId, since: ModSeq) -> Result<MailboxChanges> {
        self.store.changes_since(mailbox, since).await
    }
    async fn claim_recent(&self, mailbox: MailboxId) -> Result<Vec<Uid>> {
        self.store.claim_recent(mailbox).await
    }
    async fn contents(
        &self,
        messages: &[MessageId],
        summary: bool,
        raw: bool,
    ) -> Result<Vec<Result<MessageContent>>> {
        self.store.message_contents(messages, summary, raw).await
    }
    async fn raw(&self, message: MessageId) -> Result<Bytes> {
        self.store.message_raw(message).await
    }
    async fn open_body(&self, message: MessageId) -> Result<BodyReader> {
        // TODO(lead): switch to the store's streaming read; until then the blob is read whole
        // and the reader walks it, so only the socket copy is chunked.
        let raw = self.store.message_raw(message).await?;
        Ok(BodyReader {
            len: raw.len() as u64,
            reader: Box::new(std::io::Cursor::new(raw)),
        })
    }
    async fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        flags: Flags,
        keywords: &[String],
    ) -> Result<Vec<FlagUpdate>> {
        self.store
            .store_flags(mailbox, uids, op, flags, keywords, None)
            .await
            .map(|(updated, _)| updated)
    }
    async fn copy(&self, src: MailboxId, uids: &[Uid], dst: MailboxId) -> Result<CopyOutcome> {
        self.store.copy_messages(src, uids, dst).await
    }
    async fn move_to(&self, src: MailboxId, uids: &[Uid], dst: MailboxId) -> Result<CopyOutcome> {
        self.store.move_messages(src, uids, dst).await
    }
    async fn expunge(&self, mailbox: MailboxId, uids: Option<&[Uid]>) -> Result<Vec<Uid>> {
        self.store.expunge(mailbox, uids).await
    }
    async fn append(
        &self,
        mailbox: MailboxId,
        raw: Bytes,
        flags: Flags,
        keywords: &[String],
        internal_date: i64,
    ) -> Result<AppendOutcome> {
        self.store
            .append(mailbox, raw, flags, keywords, internal_date)
            .await
    }
    async fn search_text(
        &self,
        mailbox: MailboxId,
        field: TextField,
        needle: &str,
    ) -> Result<Vec<Uid>> {
        self.store.search_text(mailbox, field, needle).await
    }
    fn events(&self, account: AccountId) -> broadcast::Receiver<MailboxEvent> {
        self.store.subscribe(account)
    }
}
