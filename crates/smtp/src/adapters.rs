//! Binds the session's ports (`backend`) to the real system: `DirectoryAuth` (SASL and throttling
//! through `wharf_directory`), `DirectoryRecipients` (alias resolution, send-as, quota) and
//! `StoreDelivery` (`wharf_store::Store::deliver`). The one place the SMTP crate names
//! `Directory` and `Store`.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use wharf_directory::{AuthError, Directory, MECHANISMS, Mechanism, SaslExchange, SaslStep};
use wharf_store::{Account, AccountId, Delivery, DeliveryResult, Store, StoreError};

use crate::backend::{
    AuthFailure, Authenticator, Backend, LocalDelivery, Login, Recipients, RemoteHandoff,
    Resolution, SaslOutcome, SaslSession,
};

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

/// The ports of a session bound to one directory (and its store).
pub fn directory_backend(dir: Directory, handoff: Option<Arc<dyn RemoteHandoff>>) -> Backend {
    Backend {
        auth: Arc::new(DirectoryAuth { dir: dir.clone() }),
        recipients: Arc::new(DirectoryRecipients { dir: dir.clone() }),
        delivery: Arc::new(StoreDelivery {
            store: dir.store().clone(),
        }),
        handoff,
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

impl Authenticator for DirectoryAuth {
    fn mechanisms(&self) -> Vec<&'static str> {
        MECHANISMS.iter().map(|m| m.name()).collect()
    }

    fn start_sasl(&self, name: &str, ip: IpAddr) -> Option<Box<dyn SaslSession>> {
        let mech = Mechanism::from_name(name)?;
        Some(Box::new(Exchange(self.dir.start_sasl(mech, ip))))
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

pub struct StoreDelivery {
    store: Arc<dyn Store>,
}

#[async_trait]
impl LocalDelivery for StoreDelivery {
    async fn deliver(&self, delivery: Delivery) -> Result<Vec<DeliveryResult>, StoreError> {
        self.store.deliver(delivery).await
    }
}
