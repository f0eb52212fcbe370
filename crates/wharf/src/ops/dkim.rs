//! DKIM signing keys of a domain (files under `<data_dir>/dkim/<domain>/`), and the DNS records a
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

pub async fn list(cfg: &Loaded, dir: &Directory, domain: &str) -> OpResult<Vec<DkimKeyInfo>> {
    let domain = super::domains::known(dir, domain).await?;
    let plans = crate::dns_records::dkim_records(&cfg.data_dir, &domain)?;
    Ok(plans
        .into_iter()
        .map(|p| {
            let selector = p
                .record
                .dns_name
                .split_once("._domainkey.")
                .map_or("", |(s, _)| s)
                .to_string();
            DkimKeyInfo {
                domain: domain.clone(),
                selector,
                algorithm: algorithm_of(&p.record.txt_value).to_string(),
                zone_line: zone_line(&p.record.dns_name, &p.record.txt_value),
                dns_name: p.record.dns_name,
                txt_value: p.record.txt_value,
            }
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

fn valid_selector(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Creates a key (never over an existing selector: its record may be published). The running
/// server signs with it after its next reload (SIGHUP, `POST /api/v1/reload`) or restart, so
/// the record can be published first.
pub async fn generate(
    cfg: &Loaded,
    dir: &Directory,
    domain: &str,
    selector: Option<&str>,
    algo: DkimAlgo,
) -> OpResult<(DkimKeyInfo, std::path::PathBuf)> {
    let domain = super::domains::known(dir, domain).await?;
    let selector = match selector {
        Some(s) => s.trim().to_ascii_lowercase(),
        None => crate::dkim_keys::default_selector(algo, chrono::Utc::now()),
    };
    if !valid_selector(&selector) {
        return Err(OpError::invalid(format!(
            "invalid selector {selector}: use letters, digits and inner hyphens (one DNS label)"
        )));
    }
    let path = crate::dkim_keys::key_dir(&cfg.data_dir)
        .join(&domain)
        .join(format!("{selector}.pem"));
    if path.exists() {
        return Err(OpError::conflict(format!(
            "a key with selector {selector} already exists for {domain}; choose another selector"
        )));
    }
    let data_dir = cfg.data_dir.clone();
    let (d, s) = (domain.clone(), selector.clone());
    // RSA generation takes a while: off the async threads.
    let (key, file) = tokio::task::spawn_blocking(move || {
        crate::dkim_keys::generate(&data_dir, &d, Some(&s), algo)
    })
    .await
    .map_err(|e| OpError::internal(format!("key generation: {e}")))??;
    let info = DkimKeyInfo {
        domain,
        selector,
        algorithm: algorithm_of(&key.txt_value).to_string(),
        zone_line: key.zone_line(),
        dns_name: key.dns_name,
        txt_value: key.txt_value,
    };
    Ok((info, file))
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
    let plan = crate::dns_records::DomainPlan::load(cfg, &domain)?;
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
