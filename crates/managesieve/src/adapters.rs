//! Binds the session's ports to the real system: `DirectoryAuth` (credentials, SASL, throttling
//! through `wharf_directory`) and `StoreScripts` (the Sieve scripts of `wharf_store::Store`).

use std::sync::Arc;

use async_trait::async_trait;
use wharf_store::{AccountId, MAX_SIEVE_SCRIPT_BYTES, MAX_SIEVE_SCRIPTS, Store, StoreError};

use crate::backend::{ScriptInfo, ScriptQuota, ScriptStore};

/// The account's scripts in the store, within the configured bounds (and the store's own, which
/// are larger: `MAX_SIEVE_SCRIPTS`, `MAX_SIEVE_SCRIPT_BYTES`).
pub struct StoreScripts {
    store: Arc<dyn Store>,
    quota: ScriptQuota,
}

impl StoreScripts {
    pub fn new(store: Arc<dyn Store>, max_scripts: u32, max_script_size: u64) -> Self {
        StoreScripts {
            store,
            quota: ScriptQuota {
                max_scripts: max_scripts.min(u32::try_from(MAX_SIEVE_SCRIPTS).unwrap_or(u32::MAX)),
                max_script_size: max_script_size
                    .min(u64::try_from(MAX_SIEVE_SCRIPT_BYTES).unwrap_or(u64::MAX)),
            },
        }
    }
}

#[async_trait]
impl ScriptStore for StoreScripts {
    async fn list(&self, account: AccountId) -> Result<Vec<ScriptInfo>, StoreError> {
        Ok(self
            .store
            .list_sieve_scripts(account)
            .await?
            .into_iter()
            .map(|s| ScriptInfo {
                name: s.name,
                active: s.active,
                size: s.size,
            })
            .collect())
    }

    async fn get(&self, account: AccountId, name: &str) -> Result<Option<String>, StoreError> {
        self.store.get_sieve_script(account, name).await
    }

    async fn put(&self, account: AccountId, name: &str, content: &str) -> Result<(), StoreError> {
        self.store.put_sieve_script(account, name, content).await
    }

    async fn delete(&self, account: AccountId, name: &str) -> Result<(), StoreError> {
        self.store.delete_sieve_script(account, name).await
    }

    async fn rename(&self, account: AccountId, from: &str, to: &str) -> Result<(), StoreError> {
        self.store.rename_sieve_script(account, from, to).await
    }

    async fn set_active(&self, account: AccountId, name: Option<&str>) -> Result<(), StoreError> {
        self.store.set_active_sieve_script(account, name).await
    }

    async fn quota(&self, _account: AccountId) -> Result<ScriptQuota, StoreError> {
        Ok(self.quota)
    }
}
