//! Binds the session's ports (`backend`) to the real system: `DirectoryAuth` (SASL and throttling
//! through `wharf_directory`), `DirectoryRecipients` (alias resolution, send-as, quota) and
//! `StoreDelivery` (`wharf_store::Store::deliver`). The one place the SMTP crate names
//! `Directory` and `Store`.

use std::sync::Arc;

use async_trait::async_trait;
use wharf_directory::{Directory, DirectoryAuth};
use wharf_store::{AccountId, Delivery, DeliveryResult, Store, StoreError};

use crate::backend::{Backend, LocalDelivery, Login, Recipients, RemoteHandoff, Resolution};

/// The ports of a session bound to one directory (and its store).
pub fn directory_backend(dir: Directory, handoff: Option<Arc<dyn RemoteHandoff>>) -> Backend {
    Backend {
        auth: Arc::new(DirectoryAuth::new(dir.clone())),
        recipients: Arc::new(DirectoryRecipients { dir: dir.clone() }),
        delivery: Arc::new(StoreDelivery {
            store: dir.store().clone(),
        }),
        handoff,
        arrival: None,
    }
}

pub struct DirectoryRecipients {
    dir: Directory,
}

#[async_trait]
impl Recipients for DirectoryRecipients {
    async fn resolve(&self, address: &str) -> Result<Resolution, StoreError> {
        Ok(match self.dir.resolve_recipient(address).await? {
            wharf_directory::Resolution::Local { accounts, external } => {
                Resolution::Local { accounts, external }
            }
            wharf_directory::Resolution::UnknownUser => Resolution::UnknownUser,
            wharf_directory::Resolution::NotLocalDomain => Resolution::NotLocalDomain,
        })
    }

    async fn may_send_as(&self, login: &Login, address: &str) -> Result<bool, StoreError> {
        // The directory decides on the account record; one that vanished owns nothing.
        let Some(account) = self.dir.store().get_account(login.account_id).await? else {
            return Ok(false);
        };
        self.dir.may_send_as(&account, address).await
    }

    async fn quota_limit(&self, account: AccountId) -> Result<Option<u64>, StoreError> {
        Ok(self
            .dir
            .store()
            .get_account(account)
            .await?
            .map(|a| u64::try_from(a.quota_bytes).unwrap_or(0)))
    }

    async fn quota_used(&self, account: AccountId) -> Result<u64, StoreError> {
        self.dir.store().quota_used(account).await
    }
}

/// Recipients as `inner` resolves them, except valid SRS addresses of ours (bounces of mail we
/// redirected), which lead back to the original sender through the outbound queue.
pub struct SrsRecipients {
    pub inner: Arc<dyn Recipients>,
    pub srs: crate::srs::Srs,
}

#[async_trait]
impl Recipients for SrsRecipients {
    async fn resolve(&self, address: &str) -> Result<Resolution, StoreError> {
        self.inner.resolve(address).await
    }

    /// Bounces only: an SRS address is reversed for the null sender. Anything else sent to it
    /// would use it as a relay to the original sender.
    async fn resolve_from(&self, address: &str, sender: &str) -> Result<Resolution, StoreError> {
        let local = address.rsplit_once('@').map_or(address, |(l, _)| l);
        let is_srs = local
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("SRS0="));
        if !is_srs {
            return self.inner.resolve_from(address, sender).await;
        }
        // Only for our own domains: elsewhere the address is not ours to reverse.
        if self.inner.resolve(address).await? == Resolution::NotLocalDomain {
            return Ok(Resolution::NotLocalDomain);
        }
        if !sender.is_empty() {
            return Ok(Resolution::UnknownUser);
        }
        let today = (chrono::Utc::now().timestamp().max(0) / 86_400) as u64;
        let Some(original) = self.srs.reverse(address, today) else {
            return Ok(Resolution::UnknownUser);
        };
        // The original sender may be one of ours: then it is delivered here.
        match self.inner.resolve(&original).await? {
            Resolution::NotLocalDomain => Ok(Resolution::Local {
                accounts: Vec::new(),
                external: vec![original],
            }),
            local => Ok(local),
        }
    }
    async fn may_send_as(&self, login: &Login, address: &str) -> Result<bool, StoreError> {
        self.inner.may_send_as(login, address).await
    }
    async fn quota_limit(&self, account: AccountId) -> Result<Option<u64>, StoreError> {
        self.inner.quota_limit(account).await
    }
    async fn quota_used(&self, account: AccountId) -> Result<u64, StoreError> {
        self.inner.quota_used(account).await
    }
}

pub struct StoreDelivery {
    store: Arc<dyn Store>,
}

#[async_trait]
impl LocalDelivery for StoreDelivery {
    async fn deliver(&self, delivery: Delivery) -> Result<Vec<DeliveryResult>, StoreError> {
        self.store.deliver(delivery).await
    }
}
