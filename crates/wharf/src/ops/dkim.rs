//! DKIM signing keys of a domain (kept in the store, see `dkim_keys`), and the DNS records a
//! domain needs.

use serde::Serialize;
use wharf_directory::Directory;

use super::{OpError, OpResult};
use crate::cli::DkimAlgo;
use crate::config::Loaded;

#[derive(Debug, Clone, Serialize)]
pub struct DkimKeyInfo {
    pub domain: String,
    pub selector: String,
    /// `ed25519` or `rsa`.
    pub algorithm: String,
    /// Where the TXT record goes: `<selector>._domainkey.<domain>`.
    pub dns_name: String,
    pub txt_value: String,
    /// The record as a zone-file line.
    pub zone_line: String,
}

fn algorithm_of(txt: &str) -> &'static str {
    if txt.contains("k=ed25519") {
        "ed25519"
    } else {
        "rsa"
    }
}

/// The store's DKIM keys, opened with this configuration's node-state key.
async fn stored_keys(cfg: &Loaded, dir: &Directory) -> OpResult<Vec<crate::dkim_keys::StoredKey>> {
    Ok(crate::dns_records::stored_keys(cfg, &**dir.store()).await?)
}

pub async fn list(cfg: &Loaded, dir: &Directory, domain: &str) -> OpResult<Vec<DkimKeyInfo>> {
    let domain = super::domains::known(dir, domain).await?;
    let keys = stored_keys(cfg, dir).await?;
    let plans = crate::dns_records::dkim_records(&keys, &domain)?;
    Ok(plans
        .into_iter()
        .map(|p| DkimKeyInfo {
            domain: domain.clone(),
            selector: p.selector,
            algorithm: algorithm_of(&p.record.txt_value).to_string(),
            zone_line: zone_line(&p.record.dns_name, &p.record.txt_value),
            dns_name: p.record.dns_name,
            txt_value: p.record.txt_value,
        })
        .collect())
}

fn zone_line(dns_name: &str, txt_value: &str) -> String {
    let chunks: Vec<String> = txt_value
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    format!("{dns_name}. IN TXT ( {} )", chunks.join(" "))
}

/// Creates a key in the store (never over an existing selector: its record may be published).
/// The running servers sign with it after their next reload (SIGHUP, `POST /api/v1/reload`) or
/// restart, so the record can be published first.
pub async fn generate(
    cfg: &Loaded,
    dir: &Directory,
    domain: &str,
    selector: Option<&str>,
    algo: DkimAlgo,
) -> OpResult<DkimKeyInfo> {
    let domain = super::domains::known(dir, domain).await?;
    let selector = match selector {
        Some(s) => s.trim().to_ascii_lowercase(),
        None => crate::dkim_keys::default_selector(algo, chrono::Utc::now()),
    };
    if !crate::dkim_keys::valid_selector(&selector) {
        return Err(OpError::invalid(format!(
            "invalid selector {selector}: use letters, digits and inner hyphens (one DNS label)"
        )));
    }
    let store = dir.store();
    if crate::dkim_keys::exists(&**store, &domain, &selector).await? {
        return Err(OpError::conflict(format!(
            "a key with selector {selector} already exists for {domain}; choose another selector"
        )));
    }
    let state = crate::state_key::StateKey::open(cfg, &**store).await?;
    let key = crate::dkim_keys::generate(&**store, &state, &domain, Some(&selector), algo)
        .await
        .map_err(|e| {
            // Two generations of one selector at once: the second finds the first's row.
            if e.downcast_ref::<crate::dkim_keys::SelectorTaken>()
                .is_some()
            {
                OpError::conflict(format!("{e:#}"))
            } else {
                OpError::from(e)
            }
        })?;
    Ok(DkimKeyInfo {
        domain,
        selector,
        algorithm: algorithm_of(&key.txt_value).to_string(),
        zone_line: key.zone_line(),
        dns_name: key.dns_name,
        txt_value: key.txt_value,
    })
}

/// Removes a key from the store; the running servers stop signing with it at their next reload.
/// Not found when the domain has no key under this selector.
pub async fn delete(dir: &Directory, domain: &str, selector: &str) -> OpResult<()> {
    let domain = super::domains::known(dir, domain).await?;
    let selector = selector.trim().to_ascii_lowercase();
    if !crate::dkim_keys::delete(&**dir.store(), &domain, &selector).await? {
        return Err(OpError::not_found(format!(
            "{domain} has no DKIM key with selector {selector}"
        )));
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct DnsRecords {
    pub domain: String,
    pub hostname: String,
    /// Zone-file lines, in the order `wharf dns` prints them.
    pub records: Vec<String>,
    /// What the records cannot say (A/AAAA/PTR of the host, a missing DKIM key).
    pub notes: Vec<String>,
}

pub async fn dns_records(cfg: &Loaded, dir: &Directory, domain: &str) -> OpResult<DnsRecords> {
    let domain = super::domains::known(dir, domain).await?;
    let keys = stored_keys(cfg, dir).await?;
    let plan = crate::dns_records::DomainPlan::load(cfg, &domain, &keys)?;
    let mut notes = vec![format!(
        "{host} also needs A/AAAA records with this server's public addresses, and each address a PTR record naming {host}.",
        host = plan.hostname
    )];
    if plan.dkim.is_empty() {
        notes.push(format!(
            "no DKIM key for {domain}: create one with `wharf dkim generate {domain}` (or POST /api/v1/domains/{domain}/dkim)"
        ));
    }
    Ok(DnsRecords {
        records: plan.zone_lines(),
        hostname: plan.hostname,
        domain,
        notes,
    })
}
