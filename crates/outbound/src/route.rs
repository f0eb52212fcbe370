//! Where mail for a domain goes: a smarthost (`relayhost`), a per-domain override, or the
//! domain's MX hosts by preference with random order among equals (RFC 5321 §5.1), falling back
//! to the domain's own A/AAAA when it has no MX, and failing at once on a null MX (RFC 7505).
//! It also answers the DNS questions of the transport security policies: the MTA-STS TXT record
//! and policy, and (DANE) whether the MX RRset is DNSSEC-secure and each host's TLSA RRset.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use rand::seq::SliceRandom;

use crate::client::{Credentials, TlsPolicy};
use crate::dane::{self, DanePolicy, HostDane};
use crate::mta_sts::{self, MtaStsConfig, Policy, PolicyCache};

/// A resolver asking `nameservers` over UDP with TCP fallback (tests and `wharf doctor` point it
/// at a server on loopback), or the system's (`/etc/resolv.conf`) when the list is empty.
pub fn resolver(nameservers: &[SocketAddr], opts: ResolverOpts) -> Result<TokioResolver, String> {
    let builder = if nameservers.is_empty() {
        TokioResolver::builder_tokio().map_err(|e| format!("system resolver: {e}"))?
    } else {
        let servers = nameservers
            .iter()
            .map(|sa| {
                let mut udp = ConnectionConfig::udp();
                udp.port = sa.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = sa.port();
                NameServerConfig::new(sa.ip(), true, vec![udp, tcp])
            })
            .collect();
        TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            TokioRuntimeProvider::default(),
        )
    };
    builder
        .with_options(opts)
        .build()
        .map_err(|e| format!("resolver: {e}"))
}

/// A fixed next hop: smarthost or override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    /// Host name, IP address, or `[IP]`.
    pub host: String,
    pub port: u16,
    pub credentials: Option<Credentials>,
    /// Overrides the global policy for this hop (a smarthost usually wants `Required`).
    pub tls: Option<TlsPolicy>,
}

#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// DNS servers to ask; empty means the system's (`/etc/resolv.conf`).
    pub nameservers: Vec<SocketAddr>,
    /// Port of MX hosts (25; tests use an ephemeral one).
    pub smtp_port: u16,
    /// Everything goes through this host when set.
    pub relayhost: Option<Relay>,
    /// Per recipient domain (lower-case), used before DNS.
    pub overrides: HashMap<String, Relay>,
    pub dns_timeout: Duration,
    /// MTA-STS (RFC 8461) for MX-routed domains; `None` disables it.
    pub mta_sts: Option<MtaStsConfig>,
    /// DANE (RFC 7672) for MX-routed domains. Needs `nameservers` to be a DNSSEC-validating
    /// resolver we trust (AD bit); off by default because with a non-validating resolver every
    /// answer is insecure and DANE would only cost lookups.
    pub dane: bool,
}

impl Default for RouterConfig {
    fn default() -> RouterConfig {
        RouterConfig {
            nameservers: Vec::new(),
            smtp_port: 25,
            relayhost: None,
            overrides: HashMap::new(),
            dns_timeout: Duration::from_secs(5),
            mta_sts: Some(MtaStsConfig::default()),
            dane: false,
        }
    }
}

/// One host to try, with its addresses in the order to try them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub host: String,
    pub addrs: Vec<SocketAddr>,
    pub credentials: Option<Credentials>,
    pub tls: Option<TlsPolicy>,
    /// TLSA records that must authenticate this host (set by the worker's DANE step).
    pub dane: Option<Arc<DanePolicy>>,
    /// The MTA-STS policy (enforce or testing) of the destination, for TLS reports.
    pub sts: Option<Arc<mta_sts::Policy>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// DNS trouble or no reachable address yet: retry later.
    #[error("{0}")]
    Temporary(String),
    /// The domain cannot receive mail (no such domain, null MX).
    #[error("{text}")]
    Permanent { status: &'static str, text: String },
}

pub struct Router {
    resolver: TokioResolver,
    cfg: RouterConfig,
    sts_cache: PolicyCache,
}

impl Router {
    pub fn new(cfg: RouterConfig) -> Result<Router, String> {
        let mut opts = ResolverOpts::default();
        opts.timeout = cfg.dns_timeout;
        opts.attempts = 2;
        let resolver = resolver(&cfg.nameservers, opts)?;
        Ok(Router {
            resolver,
            cfg,
            sts_cache: PolicyCache::default(),
        })
    }

    /// The hops for a recipient domain, most preferred first.
    pub async fn route(&self, domain: &str) -> Result<Vec<Hop>, RouteError> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        if let Some(relay) = self
            .cfg
            .overrides
            .get(&domain)
            .or(self.cfg.relayhost.as_ref())
        {
            return Ok(vec![self.relay_hop(relay).await?]);
        }
        if let Some(ip) = literal(&domain) {
            return Ok(vec![Hop {
                host: domain.clone(),
                addrs: vec![SocketAddr::new(ip, self.cfg.smtp_port)],
                credentials: None,
                tls: None,
                dane: None,
                sts: None,
            }]);
        }
        let fqdn = format!("{domain}.");
        let mut mx: Vec<(u16, String)> = match self.resolver.mx_lookup(fqdn.as_str()).await {
            Ok(lookup) => lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::MX(m) => Some((m.preference, m.exchange.to_ascii())),
                    _ => None,
                })
                .collect(),
            Err(e) if e.is_nx_domain() => {
                return Err(RouteError::Permanent {
                    status: "5.1.2",
                    text: format!("domain {domain} does not exist"),
                });
            }
            Err(e) if e.is_no_records_found() => Vec::new(),
            Err(e) => {
                return Err(RouteError::Temporary(format!(
                    "MX lookup for {domain}: {e}"
                )));
            }
        };
        if mx.len() == 1 && (mx[0].1 == "." || mx[0].1.is_empty()) {
            return Err(RouteError::Permanent {
                status: "5.1.10",
                text: format!("domain {domain} accepts no mail (null MX, RFC 7505)"),
            });
        }
        if mx.is_empty() {
            // RFC 5321 §5.1: no MX means the domain itself is the implicit MX.
            mx.push((0, fqdn.clone()));
        }
        mx.retain(|(_, h)| h != "." && !h.is_empty());
        let ordered = order_by_preference(mx);
        let mut hops = Vec::new();
        for host in ordered {
            let addrs = self.addresses(&host).await;
            if addrs.is_empty() {
                tracing::debug!(%domain, %host, "MX host has no address");
                continue;
            }
            hops.push(Hop {
                host: host.trim_end_matches('.').to_string(),
                addrs,
                credentials: None,
                tls: None,
                dane: None,
                sts: None,
            });
        }
        if hops.is_empty() {
            return Err(RouteError::Temporary(format!(
                "no address for any mail exchanger of {domain}"
            )));
        }
        Ok(hops)
    }

    /// True when mail for `domain` goes to a configured host rather than its MX.
    pub fn is_relayed(&self, domain: &str) -> bool {
        let d = domain.trim_end_matches('.').to_ascii_lowercase();
        self.cfg.relayhost.is_some() || self.cfg.overrides.contains_key(&d)
    }

    /// DANE applies to MX routing: enabled and a nameserver to ask for the AD bit.
    pub fn dane_enabled(&self) -> bool {
        self.cfg.dane && !self.cfg.nameservers.is_empty()
    }

    /// Whether the MX RRset of `domain` (or its secure denial, for an implicit MX) is
    /// DNSSEC-secure (RFC 7672 §2.2.1). A failed lookup is an error, not "insecure": with a
    /// validating resolver, SERVFAIL is how a bogus answer looks.
    pub async fn mx_secure(&self, domain: &str) -> Result<bool, String> {
        let name = format!("{}.", domain.trim_end_matches('.'));
        let a = dane::query(
            &self.cfg.nameservers,
            &name,
            RecordType::MX,
            self.cfg.dns_timeout,
        )
        .await?;
        match a.rcode {
            ResponseCode::NoError | ResponseCode::NXDomain => Ok(a.authentic),
            other => Err(format!("MX lookup answered {other}")),
        }
    }

    /// What DANE requires of MX host `host`. Its address RRset must be secure first (RFC 7672
    /// §2.2.2: TLSA records found via an insecure name do not count); the A answer stands for
    /// both families, as an IPv6-only host's secure NODATA is signed as well. Then the TLSA
    /// RRset of `_<port>._tcp.<host>`.
    pub async fn tlsa(&self, host: &str) -> HostDane {
        let fqdn = format!("{}.", host.trim_end_matches('.'));
        match dane::query(
            &self.cfg.nameservers,
            &fqdn,
            RecordType::A,
            self.cfg.dns_timeout,
        )
        .await
        {
            Ok(a) if matches!(a.rcode, ResponseCode::NoError | ResponseCode::NXDomain) => {
                if !a.authentic {
                    tracing::debug!(mx = %host, "DANE: address RRset not DNSSEC-secure; no TLSA lookup");
                    return HostDane::None;
                }
            }
            Ok(a) => {
                return HostDane::Indeterminate(format!("address lookup answered {}", a.rcode));
            }
            Err(e) => return HostDane::Indeterminate(format!("address lookup: {e}")),
        }
        let name = format!(
            "_{}._tcp.{}.",
            self.cfg.smtp_port,
            host.trim_end_matches('.')
        );
        match dane::query(
            &self.cfg.nameservers,
            &name,
            RecordType::TLSA,
            self.cfg.dns_timeout,
        )
        .await
        {
            Ok(a) => HostDane::from_answer(&a),
            Err(e) => HostDane::Indeterminate(format!("TLSA lookup of {name}: {e}")),
        }
    }

    /// The MTA-STS policy in force for `domain`, if any: the cached one while its id is still
    /// announced and it has not expired, else freshly fetched. A failed lookup or fetch keeps a
    /// still-valid cached policy (RFC 8461 §5.1), so an attacker blocking them gains nothing then.
    pub async fn mta_sts_policy(&self, domain: &str) -> Option<Policy> {
        let cfg = self.cfg.mta_sts.as_ref()?;
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let now = chrono::Utc::now().timestamp();
        let id = match self
            .resolver
            .txt_lookup(format!("_mta-sts.{domain}."))
            .await
        {
            Ok(l) => {
                let txts: Vec<String> = l
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::TXT(t) => Some(
                            t.txt_data
                                .iter()
                                .map(|p| String::from_utf8_lossy(p).into_owned())
                                .collect::<String>(),
                        ),
                        _ => None,
                    })
                    .collect();
                mta_sts::record_id(&txts)
            }
            Err(e) if e.is_no_records_found() => None,
            Err(e) => {
                tracing::warn!(%domain, error = %e, "MTA-STS TXT lookup failed; using cached policy if any");
                return self.sts_cache.get(&domain, None, now);
            }
        };
        let Some(id) = id else {
            return self.sts_cache.get(&domain, None, now);
        };
        if let Some(p) = self.sts_cache.get(&domain, Some(&id), now) {
            return Some(p);
        }
        let addrs: Vec<SocketAddr> = self
            .addresses(&format!("mta-sts.{domain}."))
            .await
            .into_iter()
            .map(|a| SocketAddr::new(a.ip(), cfg.https_port))
            .collect();
        match mta_sts::fetch_policy(&domain, &addrs, cfg).await {
            Ok(p) => {
                tracing::info!(%domain, %id, mode = ?p.mode, mx = ?p.mx, "MTA-STS policy fetched");
                self.sts_cache.put(&domain, &id, p.clone(), now);
                Some(p)
            }
            Err(e) => {
                tracing::warn!(%domain, error = %e, "MTA-STS policy fetch failed");
                self.sts_cache.get(&domain, None, now)
            }
        }
    }

    async fn relay_hop(&self, relay: &Relay) -> Result<Hop, RouteError> {
        let addrs = match literal(&relay.host) {
            Some(ip) => vec![SocketAddr::new(ip, relay.port)],
            None => {
                let host = format!("{}.", relay.host.trim_end_matches('.'));
                self.addresses(&host)
                    .await
                    .into_iter()
                    .map(|a| SocketAddr::new(a.ip(), relay.port))
                    .collect()
            }
        };
        if addrs.is_empty() {
            return Err(RouteError::Temporary(format!(
                "no address for relay host {}",
                relay.host
            )));
        }
        Ok(Hop {
            host: relay.host.clone(),
            addrs,
            credentials: relay.credentials.clone(),
            tls: relay.tls,
            dane: None,
            sts: None,
        })
    }

    /// IPv6 and IPv4 addresses of a host (both families tried; IPv6 first as RFC 6724 prefers).
    async fn addresses(&self, host: &str) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        if let Ok(l) = self.resolver.ipv6_lookup(host).await {
            for r in l.answers() {
                if let RData::AAAA(a) = &r.data {
                    out.push(SocketAddr::new(IpAddr::V6(a.0), self.cfg.smtp_port));
                }
            }
        }
        if let Ok(l) = self.resolver.ipv4_lookup(host).await {
            for r in l.answers() {
                if let RData::A(a) = &r.data {
                    out.push(SocketAddr::new(IpAddr::V4(a.0), self.cfg.smtp_port));
                }
            }
        }
        out
    }
}

/// `[192.0.2.1]`, `[IPv6:2001:db8::1]`, or a bare IP.
fn literal(s: &str) -> Option<IpAddr> {
    let inner = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    let inner = inner
        .strip_prefix("IPv6:")
        .or_else(|| inner.strip_prefix("ipv6:"))
        .unwrap_or(inner);
    inner.parse().ok()
}

/// Ascending preference; hosts of equal preference shuffled so load spreads (RFC 5321 §5.1).
fn order_by_preference(mut mx: Vec<(u16, String)>) -> Vec<String> {
    mx.sort_by_key(|(p, _)| *p);
    let mut rng = rand::thread_rng();
    let mut out: Vec<String> = Vec::with_capacity(mx.len());
    let mut i = 0;
    while i < mx.len() {
        let mut j = i;
        while j < mx.len() && mx[j].0 == mx[i].0 {
            j += 1;
        }
        let mut group: Vec<String> = mx[i..j].iter().map(|(_, h)| h.clone()).collect();
        group.shuffle(&mut rng);
        for h in group {
            if !out.contains(&h) {
                out.push(h);
            }
        }
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals() {
        assert_eq!(literal("[127.0.0.1]"), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(literal("[IPv6:::1]"), Some("::1".parse().unwrap()));
        assert_eq!(literal("example.org"), None);
    }

    #[test]
    fn preference_then_shuffle() {
        let mut seen_first = std::collections::HashSet::new();
        for _ in 0..200 {
            let o = order_by_preference(vec![
                (20, "c.".into()),
                (10, "a.".into()),
                (10, "b.".into()),
                (30, "d.".into()),
            ]);
            assert_eq!(&o[2..], &["c.".to_string(), "d.".to_string()]);
            seen_first.insert(o[0].clone());
        }
        assert_eq!(seen_first.len(), 2, "equal preferences are randomised");
    }
}
