//! DNS as `wharf doctor` sees it: hickory's resolver pointed at `--resolver`, else at
//! `outbound.dns_server`, else at /etc/resolv.conf — the same servers the outbound queue asks,
//! so the doctor sees what this host's own mail flow sees. Every name is queried fully
//! qualified so that no search domain is ever appended.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Result, anyhow};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ResolveHosts, ResolverOpts};
use hickory_resolver::proto::rr::{RData, RecordType};

use super::records::Lookup;

pub struct Dns {
    resolver: TokioResolver,
    /// Where the answers come from, for the report header.
    pub source: String,
}

/// One SRV record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// Lower-cased, without the trailing dot; "." (the root) stays ".".
    pub target: String,
}

fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

fn host_of(name: &hickory_resolver::proto::rr::Name) -> String {
    let s = name.to_ascii().to_ascii_lowercase();
    if s == "." {
        s
    } else {
        s.trim_end_matches('.').to_string()
    }
}

impl Dns {
    /// The resolver itself (shared: clones use one cache).
    pub fn resolver(&self) -> TokioResolver {
        self.resolver.clone()
    }

    pub fn new(servers: &[SocketAddr]) -> Result<Dns> {
        let mut opts = ResolverOpts::default();
        opts.timeout = Duration::from_secs(5);
        opts.attempts = 2;
        // What the world sees matters, not this machine's /etc/hosts.
        opts.use_hosts_file = ResolveHosts::Never;
        let source = if servers.is_empty() {
            "the system resolver (/etc/resolv.conf)".to_string()
        } else {
            let names: Vec<String> = servers.iter().map(ToString::to_string).collect();
            names.join(", ")
        };
        let resolver = wharf_outbound::route::resolver(servers, opts)
            .map_err(|e| anyhow!("cannot build the DNS resolver: {e}"))?;
        Ok(Dns { resolver, source })
    }

    /// The records of one type; no such name or no such type is an empty list.
    async fn records(&self, name: &str, rtype: RecordType) -> Result<Vec<RData>, String> {
        match self.resolver.lookup(fqdn(name), rtype).await {
            Ok(l) => Ok(l
                .answers()
                .iter()
                .filter(|r| r.data.record_type() == rtype)
                .map(|r| r.data.clone())
                .collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
            Err(e) => Err(e.to_string()),
        }
    }

    pub async fn srv(&self, name: &str) -> Result<Vec<Srv>, String> {
        Ok(self
            .records(name, RecordType::SRV)
            .await?
            .into_iter()
            .filter_map(|d| match d {
                RData::SRV(s) => Some(Srv {
                    priority: s.priority,
                    weight: s.weight,
                    port: s.port,
                    target: host_of(&s.target),
                }),
                _ => None,
            })
            .collect())
    }

    /// PTR names of an address (lower-cased, no trailing dot).
    pub async fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, String> {
        Ok(self
            .records(&reverse_name(ip), RecordType::PTR)
            .await?
            .into_iter()
            .filter_map(|d| match d {
                RData::PTR(p) => Some(host_of(&p.0)),
                _ => None,
            })
            .collect())
    }
}

impl Lookup for Dns {
    async fn txt(&self, name: &str) -> Result<Vec<String>, String> {
        Ok(self
            .records(name, RecordType::TXT)
            .await?
            .into_iter()
            .filter_map(|d| match d {
                RData::TXT(t) => Some(
                    t.txt_data
                        .iter()
                        .map(|p| String::from_utf8_lossy(p).into_owned())
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect())
    }

    async fn addrs(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        let mut out = Vec::new();
        for rtype in [RecordType::A, RecordType::AAAA] {
            for d in self.records(name, rtype).await? {
                match d {
                    RData::A(a) => out.push(IpAddr::V4(a.0)),
                    RData::AAAA(a) => out.push(IpAddr::V6(a.0)),
                    _ => {}
                }
            }
        }
        Ok(out)
    }

    async fn mx(&self, name: &str) -> Result<Vec<(u16, String)>, String> {
        let mut list: Vec<(u16, String)> = self
            .records(name, RecordType::MX)
            .await?
            .into_iter()
            .filter_map(|d| match d {
                RData::MX(m) => Some((m.preference, host_of(&m.exchange))),
                _ => None,
            })
            .collect();
        list.sort();
        Ok(list)
    }
}

/// `4.3.2.1.in-addr.arpa` / nibble-reversed `ip6.arpa` (RFC 1035 §3.5, RFC 3596 §2.5).
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::new();
            for b in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            s.push_str("ip6.arpa");
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("192.0.2.10".parse().unwrap()),
            "10.2.0.192.in-addr.arpa"
        );
        let v6 = reverse_name("2001:db8::1".parse().unwrap());
        assert!(v6.starts_with("1.0.0.0.0.0.0.0."), "{v6}");
        assert!(v6.ends_with("8.b.d.0.1.0.0.2.ip6.arpa"), "{v6}");
    }
}
