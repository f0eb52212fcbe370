//! What a local domain must publish in DNS, computed from the configuration and the DKIM keys on
//! disk: `wharf dns <domain>` prints it as zone-file lines and `wharf doctor` checks the live DNS
//! against the same values, so the two can never disagree. The lines themselves come from
//! `wharf_http::dns_records`, and the MTA-STS id from the policy the HTTP server serves.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use wharf_http::{AdvertisedPorts, DkimDnsRecord, MtaStsConfig};

use crate::config::{AdvertiseSection, Listener, ListenerTls, Loaded, Protocol};

/// A stored DKIM key and the record it needs.
#[derive(Debug, Clone)]
pub struct DkimPlan {
    pub file: PathBuf,
    pub record: DkimDnsRecord,
}

/// Everything one domain's DNS depends on.
#[derive(Debug, Clone)]
pub struct DomainPlan {
    pub domain: String,
    pub hostname: String,
    pub ports: AdvertisedPorts,
    pub mta_sts: MtaStsConfig,
    pub dkim: Vec<DkimPlan>,
}

impl DomainPlan {
    pub fn load(cfg: &Loaded, domain: &str) -> Result<DomainPlan> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        Ok(DomainPlan {
            hostname: cfg.config.server.hostname.to_ascii_lowercase(),
            ports: advertised_ports(&cfg.listeners(), &cfg.config.http.advertise),
            mta_sts: cfg.config.http.mta_sts.clone(),
            dkim: dkim_records(&cfg.data_dir, &domain)?,
            domain,
        })
    }

    /// The zone-file lines, in the order `wharf dns` prints them.
    pub fn zone_lines(&self) -> Vec<String> {
        let dkim: Vec<DkimDnsRecord> = self.dkim.iter().map(|k| k.record.clone()).collect();
        wharf_http::dns_records(
            &self.domain,
            &self.hostname,
            &self.ports,
            &self.mta_sts,
            &dkim,
        )
    }

    /// The line for one owner name and type (the fix `wharf doctor` prints).
    pub fn line_for(&self, owner: &str, rtype: &str) -> Option<String> {
        let owner = format!("{}.", owner.trim_end_matches('.').to_ascii_lowercase());
        let kind = format!(" IN {rtype} ");
        self.zone_lines()
            .into_iter()
            .find(|l| l.starts_with(&format!("{owner} ")) && l.contains(&kind))
    }

    /// The `_mta-sts` id of the policy this configuration serves.
    pub fn mta_sts_id(&self) -> String {
        wharf_http::mta_sts_id(&self.mta_sts_policy())
    }

    pub fn mta_sts_policy(&self) -> String {
        wharf_http::mta_sts_policy(&self.mta_sts, &self.hostname)
    }
}

/// Ports clients are told about: `[http.advertise]` where set (NAT, port forwarding), else the
/// first configured listener of each kind — the rule the HTTP server's autoconfig answers follow.
/// Plain-text IMAP/POP3/submission count only with STARTTLS (RFC 8314 advertises no clear-text
/// service); a listener with port 0 gets its port at start-up, so it cannot be published and
/// counts as "not offered". `--port-offset` plays no part: DNS carries the public ports.
pub fn advertised_ports(listeners: &[Listener], over: &AdvertiseSection) -> AdvertisedPorts {
    ports_by_kind(listeners.iter().map(|l| (l.protocol, l.tls, l.port)), over)
}

/// The advertising rule over (protocol, TLS mode, port) in listener order: shared by `wharf dns`
/// (configured ports) and the HTTP server (bound ports), so the two can never disagree.
pub fn ports_by_kind(
    ports: impl Iterator<Item = (Protocol, ListenerTls, u16)> + Clone,
    over: &AdvertiseSection,
) -> AdvertisedPorts {
    let first = |proto: Protocol, tls: ListenerTls, over: Option<u16>| {
        over.unwrap_or_else(|| {
            ports
                .clone()
                .find(|(p, t, _)| *p == proto && *t == tls)
                .map_or(0, |(_, _, port)| port)
        })
    };
    AdvertisedPorts {
        imaps: first(Protocol::Imap, ListenerTls::Implicit, over.imaps),
        imap: first(Protocol::Imap, ListenerTls::Starttls, over.imap),
        pop3s: first(Protocol::Pop3, ListenerTls::Implicit, over.pop3s),
        pop3: first(Protocol::Pop3, ListenerTls::Starttls, over.pop3),
        submissions: first(
            Protocol::Submission,
            ListenerTls::Implicit,
            over.submissions,
        ),
        submission: first(Protocol::Submission, ListenerTls::Starttls, over.submission),
    }
}

/// Every key under `<data_dir>/dkim/<domain>/`, sorted by selector.
pub fn dkim_records(data_dir: &Path, domain: &str) -> Result<Vec<DkimPlan>> {
    let dir = crate::dkim_keys::key_dir(data_dir).join(domain);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(anyhow!("cannot read {}: {e}", dir.display())),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot read {}", dir.display()))?
            .path();
        if let Some(selector) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".pem"))
        {
            files.push((selector.to_string(), path.clone()));
        }
    }
    files.sort();
    let mut out = Vec::new();
    for (selector, file) in files {
        let pem = fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let (_, txt_value) = wharf_outbound::dkim::txt_value_from_pem(&pem)
            .map_err(|e| anyhow!("DKIM key {}: {e}", file.display()))?;
        out.push(DkimPlan {
            record: DkimDnsRecord {
                dns_name: format!("{selector}._domainkey.{domain}"),
                txt_value,
            },
            file,
        });
    }
    Ok(out)
}

/// A domain the store knows, lower-cased; the error says how to add it.
pub async fn known_domain(cfg: &Loaded, domain: &str) -> Result<String> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let dir = crate::storage::open_directory(cfg).await?;
    if dir
        .store()
        .get_domain(&domain)
        .await
        .map_err(crate::storage::store_err)?
        .is_none()
    {
        bail!("unknown domain {domain} (add it first: wharf domain add {domain})");
    }
    Ok(domain)
}

/// `wharf dns <domain>`: a zone-file fragment; notes are `;` comments so it can be pasted as is.
pub async fn print(cfg: &Loaded, domain: &str) -> Result<()> {
    let domain = known_domain(cfg, domain).await?;
    let plan = DomainPlan::load(cfg, &domain)?;
    println!(
        "; DNS records for {domain}, served by {} (TTL 3600)",
        plan.hostname
    );
    println!(
        "; {host} also needs A/AAAA records with this server's public addresses, and each address a PTR record naming {host}.",
        host = plan.hostname
    );
    if plan.dkim.is_empty() {
        println!(
            "; no DKIM key for {domain}: create one with `wharf dkim generate {domain}`, then run `wharf dns {domain}` again"
        );
    }
    for line in plan.zone_lines() {
        println!("{line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Protocol, standard_listeners};

    #[test]
    fn ports_follow_the_listeners_and_advertise() {
        let mut list = standard_listeners("127.0.0.1".parse().unwrap());
        let none = AdvertiseSection::default();
        assert_eq!(advertised_ports(&list, &none), AdvertisedPorts::default());
        list.retain(|l| l.name != "pop3");
        for l in &mut list {
            if l.name == "imaps" {
                l.port = 10993;
            }
        }
        list.push(Listener {
            name: "pop3-plain".into(),
            address: "127.0.0.1".parse().unwrap(),
            port: 1110,
            protocol: Protocol::Pop3,
            tls: ListenerTls::None,
            proxy_protocol: false,
        });
        let p = advertised_ports(&list, &none);
        assert_eq!((p.imaps, p.pop3, p.pop3s), (10993, 0, 995));
        let over = AdvertiseSection {
            imaps: Some(993),
            pop3s: Some(0),
            ..Default::default()
        };
        let p = advertised_ports(&list, &over);
        assert_eq!((p.imaps, p.pop3s, p.submissions), (993, 0, 465));
    }
}
