//! What a local domain must publish in DNS, computed from the configuration and the DKIM keys on
//! disk: `wharf dns <domain>` prints it as zone-file lines and `wharf doctor` checks the live DNS
//! against the same values, so the two can never disagree. The lines themselves come from
//! `wharf_http::dns_records`, and the MTA-STS id from the policy the HTTP server serves.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use wharf_http::{AdvertisedPorts, DkimDnsRecord, MtaStsConfig};

use crate::config::{Listener, ListenerTls, Loaded};

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
            ports: advertised_ports(&cfg.listeners()),
            mta_sts: mta_sts_config(cfg)?,
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

/// Ports clients are told about: the first listener of each kind. Plain-text IMAP/POP3/submission
/// count only with STARTTLS (RFC 8314 advertises no clear-text service); a listener with port 0
/// gets its port at start-up, so it cannot be published and counts as "not offered".
pub fn advertised_ports(listeners: &[Listener]) -> AdvertisedPorts {
    // Protocols are compared by name so that kinds added later (http) simply do not match.
    let first = |proto: &str, tls: ListenerTls| {
        listeners
            .iter()
            .find(|l| l.protocol.as_str() == proto && l.tls == tls)
            .map(|l| l.port)
            .unwrap_or(0)
    };
    AdvertisedPorts {
        imaps: first("imap", ListenerTls::Implicit),
        imap: first("imap", ListenerTls::Starttls),
        pop3s: first("pop3", ListenerTls::Implicit),
        pop3: first("pop3", ListenerTls::Starttls),
        submissions: first("submission", ListenerTls::Implicit),
        submission: first("submission", ListenerTls::Starttls),
    }
}

/// `[http.mta_sts]` from the configuration file, defaults when absent. Read from the file itself
/// because the policy is the HTTP server's: this keeps `wharf dns` in step with what it serves.
pub fn mta_sts_config(cfg: &Loaded) -> Result<MtaStsConfig> {
    let text = match fs::read_to_string(&cfg.path) {
        Ok(t) => t,
        // Only a configuration loaded from memory (tests) has no file: defaults then.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(MtaStsConfig::default()),
        Err(e) => return Err(anyhow!("cannot read {}: {e}", cfg.path.display())),
    };
    mta_sts_from_toml(&text).with_context(|| format!("{}: key `http.mta_sts`", cfg.path.display()))
}

fn mta_sts_from_toml(text: &str) -> Result<MtaStsConfig> {
    let table: toml::Table = toml::from_str(text).map_err(|e| anyhow!("{}", e.message()))?;
    match table.get("http").and_then(|h| h.get("mta_sts")) {
        Some(v) => v
            .clone()
            .try_into::<MtaStsConfig>()
            .map_err(|e| anyhow!("{}", e.message())),
        None => Ok(MtaStsConfig::default()),
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
    let dir = crate::admin::open_directory(cfg).await?;
    if dir
        .store()
        .get_domain(&domain)
        .await
        .map_err(crate::admin::store_err)?
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
    fn ports_follow_the_listeners() {
        let mut list = standard_listeners("127.0.0.1".parse().unwrap());
        assert_eq!(advertised_ports(&list), AdvertisedPorts::default());
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
        let p = advertised_ports(&list);
        assert_eq!((p.imaps, p.pop3, p.pop3s), (10993, 0, 995));
    }

    #[test]
    fn mta_sts_section_is_read() {
        let c = mta_sts_from_toml("[server]\nhostname = \"x.test\"\n").unwrap();
        assert_eq!(c, MtaStsConfig::default());
        let c = mta_sts_from_toml(
            "[http.mta_sts]\nmode = \"enforce\"\nmax_age = 86400\nmx = [\"mx1.example.test\"]\n",
        )
        .unwrap();
        assert_eq!(c.mode, wharf_http::MtaStsMode::Enforce);
        assert_eq!(c.mx, vec!["mx1.example.test".to_string()]);
        assert!(mta_sts_from_toml("[http.mta_sts]\nmode = \"sometimes\"\n").is_err());
    }
}
