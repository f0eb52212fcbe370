//! Local mail domains.

use serde::Serialize;
use wharf_directory::Directory;
use wharf_store::StoreError;

use super::{OpError, OpResult};

#[derive(Debug, Clone, Serialize)]
pub struct DomainInfo {
    pub name: String,
}

pub async fn list(dir: &Directory) -> OpResult<Vec<DomainInfo>> {
    Ok(dir
        .store()
        .list_domains()
        .await?
        .into_iter()
        .map(|d| DomainInfo { name: d.name })
        .collect())
}

/// Up to `limit` domains named after `after`, by name.
pub async fn list_page(
    dir: &Directory,
    after: Option<&str>,
    limit: usize,
) -> OpResult<Vec<DomainInfo>> {
    Ok(dir
        .store()
        .list_domains_page(after, limit)
        .await?
        .into_iter()
        .map(|d| DomainInfo { name: d.name })
        .collect())
}

pub async fn add(dir: &Directory, name: &str) -> OpResult<DomainInfo> {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    if !crate::config::valid_hostname(&name) {
        return Err(OpError::invalid(format!("invalid domain name {name:?}")));
    }
    match dir.add_domain(&name).await {
        Ok(d) => Ok(DomainInfo { name: d.name }),
        Err(wharf_directory::DirectoryError::Store(StoreError::AlreadyExists(_))) => {
            Err(OpError::conflict(format!("domain {name} already exists")))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn delete(dir: &Directory, name: &str) -> OpResult<()> {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    match dir.store().delete_domain(&name).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound(_)) => Err(OpError::not_found(format!("unknown domain {name}"))),
        Err(StoreError::Invalid(why)) => Err(OpError::conflict(format!(
            "domain {name} still has accounts or aliases ({why}); delete them first"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// The domain, lower-cased, when the store knows it.
pub async fn known(dir: &Directory, domain: &str) -> OpResult<String> {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if dir.store().get_domain(&domain).await?.is_none() {
        return Err(OpError::not_found(format!(
            "unknown domain {domain} (add it first: wharf domain add {domain})"
        )));
    }
    Ok(domain)
}
