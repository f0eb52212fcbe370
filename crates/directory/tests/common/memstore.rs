//! A stand-in `Store` holding only the directory's rows in memory, used until the embedded
//! SQLite backend is available. Every mailbox and message operation returns an error.

use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::broadcast;
use wharf_store::*;

#[derive(Default)]
pub struct MemStore {
    rows: Mutex<Rows>,
}

#[derive(Default)]
struct Rows {
    domains: Vec<Domain>,
    accounts: Vec<Account>,
    aliases: Vec<Alias>,
    next_id: i64,
}

fn unsupported<T>() -> Result<T> {
    Err(StoreError::Backend(
        "not supported by the in-memory test store".into(),
    ))
}

#[async_trait]
impl Store for MemStore {
    async fn create_domain(&self, name: &str) -> Result<Domain> {
        let mut r = self.rows.lock().unwrap();
        if r.domains.iter().any(|d| d.name.eq_ignore_ascii_case(name)) {
            return Err(StoreError::AlreadyExists(name.into()));
        }
        r.next_id += 1;
        let d = Domain {
            id: r.next_id,
            name: name.to_lowercase(),
        };
        r.domains.push(d.clone());
        Ok(d)
    }
    async fn delete_domain(&self, name: &str) -> Result<()> {
        self.rows
            .lock()
            .unwrap()
            .domains
            .retain(|d| !d.name.eq_ignore_ascii_case(name));
        Ok(())
    }
    async fn get_domain(&self, name: &str) -> Result<Option<Domain>> {
        Ok(self
            .rows
            .lock()
            .unwrap()
            .domains
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
            .cloned())
    }
    async fn list_domains(&self) -> Result<Vec<Domain>> {
        Ok(self.rows.lock().unwrap().domains.clone())
    }
    async fn create_account(&self, new: NewAccount) -> Result<Account> {
        let mut r = self.rows.lock().unwrap();
        let (local, domain) = new
            .address
            .rsplit_once('@')
            .ok_or_else(|| StoreError::Invalid("address".into()))?;
        let Some(d) = r
            .domains
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(domain))
            .cloned()
        else {
            return Err(StoreError::NotFound(domain.into()));
        };
        if r.accounts
            .iter()
            .any(|a| a.address.eq_ignore_ascii_case(&new.address))
        {
            return Err(StoreError::AlreadyExists(new.address));
        }
        r.next_id += 1;
        let a = Account {
            id: r.next_id,
            domain_id: d.id,
            local_part: local.into(),
            address: format!("{local}@{}", d.name),
            secret_hash: new.secret_hash,
            scram_sha256: new.scram_sha256,
            quota_bytes: new.quota_bytes,
            disabled: false,
            pop3_expire_days: None,
        };
        r.accounts.push(a.clone());
        Ok(a)
    }
    async fn get_account(&self, id: AccountId) -> Result<Option<Account>> {
        Ok(self
            .rows
            .lock()
            .unwrap()
            .accounts
            .iter()
            .find(|a| a.id == id)
            .cloned())
    }
    async fn get_account_by_address(&self, address: &str) -> Result<Option<Account>> {
        Ok(self
            .rows
            .lock()
            .unwrap()
            .accounts
            .iter()
            .find(|a| a.address.eq_ignore_ascii_case(address))
            .cloned())
    }
    async fn list_accounts(&self, _domain: Option<&str>) -> Result<Vec<Account>> {
        Ok(self.rows.lock().unwrap().accounts.clone())
    }
    async fn set_account_secret(
        &self,
        id: AccountId,
        secret_hash: &str,
        scram_sha256: &str,
    ) -> Result<()> {
        let mut r = self.rows.lock().unwrap();
        let a = r
            .accounts
            .iter_mut()
            .find(|a| a.id == id)
            .ok_or_else(|| StoreError::NotFound("account".into()))?;
        a.secret_hash = secret_hash.into();
        a.scram_sha256 = scram_sha256.into();
        Ok(())
    }
    async fn set_account_quota(&self, id: AccountId, quota_bytes: i64) -> Result<()> {
        let mut r = self.rows.lock().unwrap();
        if let Some(a) = r.accounts.iter_mut().find(|a| a.id == id) {
            a.quota_bytes = quota_bytes;
        }
        Ok(())
    }
    async fn set_account_disabled(&self, id: AccountId, disabled: bool) -> Result<()> {
        let mut r = self.rows.lock().unwrap();
        if let Some(a) = r.accounts.iter_mut().find(|a| a.id == id) {
            a.disabled = disabled;
        }
        Ok(())
    }
    async fn set_account_pop3_expire(&self, _id: AccountId, _days: Option<i64>) -> Result<()> {
        unsupported()
    }
    async fn delete_account(&self, id: AccountId) -> Result<()> {
        self.rows.lock().unwrap().accounts.retain(|a| a.id != id);
        Ok(())
    }
    async fn quota_used(&self, _id: AccountId) -> Result<u64> {
        unsupported()
    }
    async fn add_alias(&self, address: &str, target: &str) -> Result<()> {
        let mut r = self.rows.lock().unwrap();
        if r.aliases.iter().any(|a| {
            a.address.eq_ignore_ascii_case(address) && a.target.eq_ignore_ascii_case(target)
        }) {
            return Err(StoreError::AlreadyExists(format!("{address} -> {target}")));
        }
        r.aliases.push(Alias {
            address: address.into(),
            target: target.into(),
        });
        Ok(())
    }
    async fn delete_alias(&self, address: &str, target: Option<&str>) -> Result<()> {
        self.rows.lock().unwrap().aliases.retain(|a| {
            !(a.address.eq_ignore_ascii_case(address)
                && target.is_none_or(|t| a.target.eq_ignore_ascii_case(t)))
        });
        Ok(())
    }
    async fn list_aliases(&self) -> Result<Vec<Alias>> {
        Ok(self.rows.lock().unwrap().aliases.clone())
    }
    async fn alias_targets(&self, address: &str) -> Result<Vec<String>> {
        Ok(self
            .rows
            .lock()
            .unwrap()
            .aliases
            .iter()
            .filter(|a| a.address.eq_ignore_ascii_case(address))
            .map(|a| a.target.clone())
            .collect())
    }
    async fn list_mailboxes(&self, _: AccountId) -> Result<Vec<Mailbox>> {
        unsupported()
    }
    async fn get_mailbox(&self, _: AccountId, _: &str) -> Result<Option<Mailbox>> {
        unsupported()
    }
    async fn get_mailbox_by_id(&self, _: MailboxId) -> Result<Option<Mailbox>> {
        unsupported()
    }
    async fn create_mailbox(
        &self,
        _: AccountId,
        _: &str,
        _: Option<SpecialUse>,
    ) -> Result<Mailbox> {
        unsupported()
    }
    async fn delete_mailbox(&self, _: AccountId, _: MailboxId) -> Result<()> {
        unsupported()
    }
    async fn rename_mailbox(&self, _: AccountId, _: MailboxId, _: &str) -> Result<()> {
        unsupported()
    }
    async fn set_subscribed(&self, _: AccountId, _: MailboxId, _: bool) -> Result<()> {
        unsupported()
    }
    async fn set_special_use(
        &self,
        _: AccountId,
        _: MailboxId,
        _: Option<SpecialUse>,
    ) -> Result<()> {
        unsupported()
    }
    async fn mailbox_status(&self, _: MailboxId) -> Result<MailboxStatus> {
        unsupported()
    }
    async fn append(
        &self,
        _: MailboxId,
        _: Bytes,
        _: Flags,
        _: &[String],
        _: i64,
    ) -> Result<AppendOutcome> {
        unsupported()
    }
    async fn deliver(&self, _: Delivery) -> Result<Vec<DeliveryResult>> {
        unsupported()
    }
    async fn mailbox_index(&self, _: MailboxId) -> Result<Vec<MessageEntry>> {
        unsupported()
    }
    async fn changes_since(&self, _: MailboxId, _: ModSeq) -> Result<MailboxChanges> {
        unsupported()
    }
    async fn message_summary(&self, _: MessageId) -> Result<Bytes> {
        unsupported()
    }
    async fn message_raw(&self, _: MessageId) -> Result<Bytes> {
        unsupported()
    }
    async fn store_flags(
        &self,
        _: MailboxId,
        _: &[Uid],
        _: FlagOp,
        _: Flags,
        _: &[String],
        _: Option<ModSeq>,
    ) -> Result<(Vec<FlagUpdate>, Vec<Uid>)> {
        unsupported()
    }
    async fn copy_messages(&self, _: MailboxId, _: &[Uid], _: MailboxId) -> Result<CopyOutcome> {
        unsupported()
    }
    async fn move_messages(&self, _: MailboxId, _: &[Uid], _: MailboxId) -> Result<CopyOutcome> {
        unsupported()
    }
    async fn expunge(&self, _: MailboxId, _: Option<&[Uid]>) -> Result<Vec<Uid>> {
        unsupported()
    }
    async fn expunge_uids(&self, _: MailboxId, _: &[Uid]) -> Result<Vec<Uid>> {
        unsupported()
    }
    async fn claim_recent(&self, _: MailboxId) -> Result<Vec<Uid>> {
        unsupported()
    }
    async fn search_text(&self, _: MailboxId, _: TextField, _: &str) -> Result<Vec<Uid>> {
        unsupported()
    }
    async fn lock_maildrop(&self, _: AccountId, _: &str, _: i64) -> Result<bool> {
        unsupported()
    }
    async fn unlock_maildrop(&self, _: AccountId, _: &str) -> Result<()> {
        unsupported()
    }
    fn subscribe(&self, _: AccountId) -> broadcast::Receiver<MailboxEvent> {
        broadcast::channel(1).1
    }
    async fn sweep_orphans(&self) -> Result<u64> {
        unsupported()
    }
}
