//! Binds the session's ports to the real system: `DirectoryAuth` (credentials, SASL and
//! throttling through `wharf_directory`) and `StoreMailboxes`/`StoreMessages` (an account's
//! mailboxes and messages in `wharf_store::Store`). The only file of the crate that names
//! `Directory` or `Store`.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::broadcast;
use wharf_directory::{Directory, DirectoryAuth};
use wharf_store::{
    AccountId, AclChange, AppendOutcome, CopyOutcome, FlagMask, FlagOp, FlagUpdate, Flags, Mailbox,
    MailboxChanges, MailboxEvent, MailboxId, MailboxStatus, MessageContent, MessageEntry,
    MessageId, MetadataLimits, ModSeq, NewMessage, ROLE_ADMIN, Rights, SharedMailbox, SpecialUse,
    Store, StoreError, TextField, Uid,
};

use crate::backend::{Backend, BodyReader, Mailboxes, Messages, Result};

/// The backend of a running server: the directory for logins, its store for everything else.
pub fn backend(directory: Directory) -> Backend {
    let store = directory.store().clone();
    Backend {
        auth: Arc::new(DirectoryAuth::new(directory)),
        mailboxes: Arc::new(StoreMailboxes {
            store: store.clone(),
        }),
        messages: Arc::new(StoreMessages { store }),
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
    async fn set_subscribed(&self, account: AccountId, name: &str, on: bool) -> Result<()> {
        self.store.set_subscribed(account, name, on).await
    }
    async fn subscriptions(&self, account: AccountId) -> Result<Vec<String>> {
        self.store.subscriptions(account).await
    }
    async fn quota(&self, account: AccountId) -> Result<(u64, u64)> {
        let limit = self
            .store
            .get_account(account)
            .await?
            .map(|a| u64::try_from(a.quota_bytes).unwrap_or(0))
            .unwrap_or(0);
        Ok((self.store.quota_used(account).await?, limit))
    }
    async fn set_quota(&self, account: AccountId, limit: u64) -> Result<()> {
        let limit = i64::try_from(limit)
            .map_err(|_| StoreError::Invalid("quota limit out of range".into()))?;
        self.store.set_account_quota(account, limit).await
    }
    async fn is_admin(&self, account: AccountId) -> Result<bool> {
        Ok(self.store.account_role(account).await? == ROLE_ADMIN)
    }
    async fn account_by_address(&self, address: &str) -> Result<Option<AccountId>> {
        Ok(self
            .store
            .get_account_by_address(address)
            .await?
            .map(|a| a.id))
    }
    async fn account_address(&self, account: AccountId) -> Result<Option<String>> {
        Ok(self.store.get_account(account).await?.map(|a| a.address))
    }
    async fn acl(&self, mailbox: MailboxId) -> Result<Vec<(Option<AccountId>, Rights)>> {
        self.store.mailbox_acl(mailbox).await
    }
    async fn set_acl(
        &self,
        owner: AccountId,
        mailbox: MailboxId,
        grantee: Option<AccountId>,
        change: AclChange,
    ) -> Result<()> {
        self.store
            .change_mailbox_acl(owner, mailbox, grantee, change)
            .await
    }
    async fn rights_on(&self, account: AccountId, mailbox: MailboxId) -> Result<Rights> {
        self.store.rights_on(account, mailbox).await
    }
    async fn shared_with(&self, account: AccountId) -> Result<Vec<SharedMailbox>> {
        self.store.shared_with(account).await
    }
    async fn urlauth_key(&self, mailbox: MailboxId, create: bool) -> Result<Option<String>> {
        self.store.urlauth_key(mailbox, create).await
    }
    async fn reset_urlauth_keys(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
    ) -> Result<()> {
        self.store.reset_urlauth_keys(account, mailbox).await
    }
    async fn status(&self, id: MailboxId) -> Result<MailboxStatus> {
        self.store.mailbox_status(id).await
    }
    async fn get_metadata(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        self.store.get_metadata(account, mailbox).await
    }
    async fn set_metadata(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
        entries: &[(String, Option<Vec<u8>>)],
        limits: &MetadataLimits,
    ) -> Result<()> {
        self.store
            .set_metadata(account, mailbox, entries, limits)
            .await
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
        let (len, reader) = self.store.open_message(message, 0).await?;
        Ok(BodyReader { len, reader })
    }
    async fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        flags: Flags,
        keywords: &[String],
        unchanged_since: Option<ModSeq>,
    ) -> Result<(Vec<FlagUpdate>, Vec<Uid>)> {
        self.store
            .store_flags(mailbox, uids, op, flags, keywords, unchanged_since)
            .await
    }
    async fn copy(&self, src: MailboxId, uids: &[Uid], dst: MailboxId) -> Result<CopyOutcome> {
        self.store.copy_messages(src, uids, dst).await
    }
    async fn move_to(&self, src: MailboxId, uids: &[Uid], dst: MailboxId) -> Result<CopyOutcome> {
        self.store.move_messages(src, uids, dst).await
    }
    async fn transfer(
        &self,
        src: MailboxId,
        uids: &[Uid],
        dst: MailboxId,
        is_move: bool,
        keep: FlagMask,
    ) -> Result<CopyOutcome> {
        self.store
            .transfer_messages(src, uids, dst, is_move, keep)
            .await
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
    async fn append_many(
        &self,
        mailbox: MailboxId,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<AppendOutcome>> {
        self.store.append_many(mailbox, messages).await
    }
    async fn search_text(
        &self,
        mailbox: MailboxId,
        field: TextField,
        needle: &str,
    ) -> Result<Vec<Uid>> {
        self.store.search_text(mailbox, field, needle).await
    }
    async fn search_words(
        &self,
        mailbox: MailboxId,
        field: TextField,
        needle: &str,
    ) -> Result<Vec<(Uid, u8)>> {
        self.store.search_words(mailbox, field, needle).await
    }
    fn events(&self, account: AccountId) -> broadcast::Receiver<MailboxEvent> {
        self.store.subscribe(account)
    }
}
