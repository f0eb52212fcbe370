//! Aliases: one-to-one, lists (several rows per address) and catch-all `@domain`.

use wharf_directory::{Directory, DirectoryError, Resolution};
use wharf_store::{Alias, StoreError};

use super::{OpError, OpResult};

pub async fn list(dir: &Directory) -> OpResult<Vec<Alias>> {
    Ok(dir.store().list_aliases().await?)
}

/// Up to `limit` alias rows after the key (address, target).
pub async fn list_page(
    dir: &Directory,
    after: Option<(&str, &str)>,
    limit: usize,
) -> OpResult<Vec<Alias>> {
    Ok(dir.store().list_aliases_page(after, limit).await?)
}

/// Adds `address → target`. The target must be deliverable: in a local domain it must reach an
/// account (directly or through other aliases); elsewhere it must look like an address.
pub async fn add(dir: &Directory, address: &str, target: &str) -> OpResult<Alias> {
    let store = dir.store();
    let address = normalize_alias_address(address)?;
    let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    if store.get_domain(domain).await?.is_none() {
        return Err(OpError::invalid(format!(
            "unknown domain {domain} (add it first: wharf domain add {domain})"
        )));
    }
    if !address.starts_with('@') && store.get_account_by_address(&address).await?.is_some() {
        return Err(OpError::conflict(format!(
            "{address} is an account; an alias cannot shadow it"
        )));
    }
    let target = target.trim().to_string();
    match target.strip_prefix('@') {
        Some(d) => {
            if !crate::config::valid_hostname(&d.to_ascii_lowercase()) {
                return Err(OpError::invalid(format!(
                    "invalid target address: {target}"
                )));
            }
        }
        None => {
            if !valid_mailbox_address(&target) {
                return Err(OpError::invalid(format!(
                    "invalid target address: {target}"
                )));
            }
            let target_domain = target.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
            if dir.is_local_domain(target_domain).await?
                && !target.eq_ignore_ascii_case(&address)
                && matches!(
                    dir.resolve_recipient(&target).await?,
                    Resolution::UnknownUser | Resolution::NotLocalDomain
                )
            {
                return Err(OpError::invalid(format!(
                    "target {target} is in a local domain but reaches no account (add the account first)"
                )));
            }
        }
    }
    match dir.add_alias(&address, &target).await {
        Ok(()) => Ok(Alias { address, target }),
        Err(DirectoryError::Store(StoreError::AlreadyExists(_))) => Err(OpError::conflict(
            format!("alias {address} -> {target} already exists"),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Removes one target of an alias, or every target when none is given.
pub async fn delete(dir: &Directory, address: &str, target: Option<&str>) -> OpResult<String> {
    let address = normalize_alias_address(address)?;
    let existing = dir.store().alias_targets(&address).await?;
    let missing = match target {
        Some(t) => !existing.iter().any(|e| e.eq_ignore_ascii_case(t)),
        None => existing.is_empty(),
    };
    if missing {
        return Err(OpError::not_found(match target {
            Some(t) => format!("no alias {address} -> {t}"),
            None => format!("no alias {address}"),
        }));
    }
    dir.delete_alias(&address, target).await?;
    Ok(address)
}

/// `local@domain` or `@domain`, domain lower-cased.
pub fn normalize_alias_address(address: &str) -> OpResult<String> {
    let address = address.trim();
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err(OpError::invalid(format!(
            "invalid alias address {address}: expected local@domain or @domain"
        )));
    };
    if domain.is_empty() || !crate::config::valid_hostname(&domain.to_ascii_lowercase()) {
        return Err(OpError::invalid(format!(
            "invalid alias address {address}: bad domain"
        )));
    }
    if !local.is_empty() && !valid_local_part(local) {
        return Err(OpError::invalid(format!(
            "invalid alias address {address}: bad local part"
        )));
    }
    Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
}

fn valid_local_part(local: &str) -> bool {
    !local.is_empty()
        && local.len() <= 64
        && local
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'@' | b'<' | b'>' | b'"' | b',' | b'\\'))
}

pub fn valid_mailbox_address(address: &str) -> bool {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            valid_local_part(local) && crate::config::valid_hostname(&domain.to_ascii_lowercase())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_addresses() {
        assert_eq!(
            normalize_alias_address("@Example.COM").unwrap(),
            "@example.com"
        );
        assert_eq!(
            normalize_alias_address("Sales@Example.com").unwrap(),
            "Sales@example.com"
        );
        assert!(normalize_alias_address("nodomain").is_err());
        assert!(normalize_alias_address("a@bad domain").is_err());
        assert!(valid_mailbox_address("x@y.org"));
        assert!(!valid_mailbox_address("x y@y.org"));
    }
}
