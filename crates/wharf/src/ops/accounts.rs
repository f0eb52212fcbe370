//! Accounts: create, delete, password, quota, disable/enable, admin role.

use serde::Serialize;
use wharf_directory::Directory;
use wharf_store::{Account, ROLE_ADMIN, ROLE_USER};

use super::{OpError, OpResult, Size};

#[derive(Debug, Clone, Serialize)]
pub struct AccountInfo {
    pub address: String,
    pub disabled: bool,
    pub admin: bool,
    pub quota: Size,
    pub used: Size,
    /// How many app passwords the account has.
    pub app_passwords: usize,
}

pub async fn find(dir: &Directory, address: &str) -> OpResult<Account> {
    let address = address.trim();
    dir.account(address)
        .await?
        .ok_or_else(|| OpError::not_found(format!("no such account: {address}")))
}

async fn info(dir: &Directory, a: Account) -> OpResult<AccountInfo> {
    let store = dir.store();
    let used = store.quota_used(a.id).await?;
    let admin = store.account_role(a.id).await? == ROLE_ADMIN;
    let app_passwords = store.list_app_passwords(a.id).await?.len();
    Ok(AccountInfo {
        address: a.address,
        disabled: a.disabled,
        admin,
        quota: Size::quota(a.quota_bytes),
        used: Size::of(used),
        app_passwords,
    })
}

pub async fn list(dir: &Directory, domain: Option<&str>) -> OpResult<Vec<AccountInfo>> {
    let store = dir.store();
    let domain = match domain {
        Some(d) => Some(super::domains::known(dir, d).await?),
        None => None,
    };
    let mut out = Vec::new();
    for a in store.list_accounts(domain.as_deref()).await? {
        out.push(info(dir, a).await?);
    }
    Ok(out)
}

/// Up to `limit` accounts after the key (domain, lower-cased local part); see [`page_key`].
pub async fn list_page(
    dir: &Directory,
    domain: Option<&str>,
    after: Option<(&str, &str)>,
    limit: usize,
) -> OpResult<Vec<AccountInfo>> {
    let domain = match domain {
        Some(d) => Some(super::domains::known(dir, d).await?),
        None => None,
    };
    let mut out = Vec::new();
    for a in dir
        .store()
        .list_accounts_page(domain.as_deref(), after, limit)
        .await?
    {
        out.push(info(dir, a).await?);
    }
    Ok(out)
}

/// The key `list_page` orders accounts by: (domain, lower-cased local part).
pub fn page_key(a: &AccountInfo) -> Vec<String> {
    let (local, domain) = a.address.rsplit_once('@').unwrap_or((&a.address, ""));
    vec![domain.to_string(), local.to_lowercase()]
}

pub async fn get(dir: &Directory, address: &str) -> OpResult<AccountInfo> {
    let a = find(dir, address).await?;
    info(dir, a).await
}

pub async fn add(
    dir: &Directory,
    address: &str,
    password: &str,
    quota_bytes: i64,
) -> OpResult<AccountInfo> {
    if password.is_empty() {
        return Err(OpError::invalid("a password is required"));
    }
    let a = dir
        .add_account(address.trim(), password, quota_bytes)
        .await?;
    info(dir, a).await
}

pub async fn delete(dir: &Directory, address: &str) -> OpResult<String> {
    let a = find(dir, address).await?;
    // Through the directory, so that its credential cache forgets the account too.
    dir.delete_account(&a.address).await?;
    Ok(a.address)
}

pub async fn set_password(dir: &Directory, address: &str, password: &str) -> OpResult<String> {
    let a = find(dir, address).await?;
    if password.is_empty() {
        return Err(OpError::invalid("a password is required"));
    }
    dir.set_password(&a.address, password).await?;
    // An admin's reset is for a lost or compromised password: the devices' app passwords,
    // which may be what leaked, go too.
    let revoked = dir.store().delete_app_passwords(a.id).await?;
    if revoked > 0 {
        tracing::info!(
            account = a.address,
            revoked,
            "password reset: app passwords revoked"
        );
    }
    Ok(a.address)
}

/// A user's change of their own password (the caller checked the current one): unlike an
/// admin's reset, the account's app passwords stay.
pub async fn change_own_password(
    dir: &Directory,
    address: &str,
    password: &str,
) -> OpResult<String> {
    let a = find(dir, address).await?;
    if password.is_empty() {
        return Err(OpError::invalid("a password is required"));
    }
    dir.set_password(&a.address, password).await?;
    Ok(a.address)
}

pub async fn set_disabled(dir: &Directory, address: &str, disabled: bool) -> OpResult<AccountInfo> {
    let a = find(dir, address).await?;
    dir.set_disabled(&a.address, disabled).await?;
    get(dir, &a.address).await
}

pub async fn set_quota(dir: &Directory, address: &str, bytes: i64) -> OpResult<AccountInfo> {
    let a = find(dir, address).await?;
    if bytes < 0 {
        return Err(OpError::invalid("quota must not be negative"));
    }
    dir.store().set_account_quota(a.id, bytes).await?;
    get(dir, &a.address).await
}

pub async fn set_admin(dir: &Directory, address: &str, admin: bool) -> OpResult<AccountInfo> {
    let a = find(dir, address).await?;
    let role = if admin { ROLE_ADMIN } else { ROLE_USER };
    dir.store().set_account_role(a.id, role).await?;
    tracing::info!(account = a.address, role, "account role changed");
    get(dir, &a.address).await
}

pub async fn is_admin(dir: &Directory, account: &Account) -> OpResult<bool> {
    Ok(dir.store().account_role(account.id).await? == ROLE_ADMIN)
}
