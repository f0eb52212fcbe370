//! What a local domain must publish in DNS, computed from the configuration and the DKIM keys on
//! disk: `wharf dns <domain>` prints it as zone-file lines and `wharf doctor` checks the live DNS
//! against the same values, so the two can never disagree. The lines themselves come from
//! `wharf_http::dns_records`, and the MTA-STS id from the policy the HTTP server serves.

use anyhow::{Result, anyhow, bail};
use wharf_http::{AdvertisedPorts, DkimDnsRecord, MtaStsConfig};

use crate::config::{AdvertiseSection, Listener, ListenerTls, Loaded, Protocol};
use crate::dkim_keys::StoredKey;

/// A stored DKIM key and the record it needs.
#[derive(Debug, Clone)]
pub struct DkimPlan {
    pub selector: String,
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
    /// `keys`: the store's DKIM keys (`dkim_keys::load`); those of `domain` are used.
    pub fn load(cfg: &Loaded, domain: &str, keys: &[StoredKey]) -> Result<DomainPlan> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        Ok(DomainPlan {
            hostname: cfg.config.server.hostname.to_ascii_lowercase(),
            ports: advertised_ports(&cfg.listeners(), &cfg.config.http.advertise),
            mta_sts: cfg.config.http.mta_sts.clone(),
            dkim: dkim_records(keys, &domain)?,
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

/// The records of the domain's keys, sorted by selector.
pub fn dkim_records(keys: &[StoredKey], domain: &str) -> Result<Vec<DkimPlan>> {
    let mut out = Vec::new();
    for key in crate::dkim_keys::of_domain(keys, domain) {
        let (_, txt_value) = wharf_outbound::dkim::txt_value_from_pem(&key.pem)
            .map_err(|e| anyhow!("DKIM key {domain}/{}: {e}", key.selector))?;
        out.push(DkimPlan {
            record: DkimDnsRecord {
                dns_name: format!("{}._domainkey.{domain}", key.selector),
                txt_value,
            },
            selector: key.selector.clone(),
        });
    }
    out.sort_by(|a, b| a.selector.cmp(&b.selector));
    Ok(out)
}

/// The store's DKIM keys, for a command run beside the server (`wharf dns`, `wharf doctor`):
/// none when nothing was ever sealed (no key file is made for a read).
pub async fn stored_keys(cfg: &Loaded, store: &dyn wharf_store::Store) -> Result<Vec<StoredKey>> {
    match crate::state_key::StateKey::open_existing(cfg, store).await? {
        Some(state) => crate::dkim_keys::load(store, &state).await,
        None => Ok(Vec::new()),
    }
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
    let dir = crate::storage::open_directory(cfg).await?;
    let keys = stored_keys(cfg, &**dir.store()).await?;
    let plan = DomainPlan::load(cfg, &domain, &keys)?;
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
