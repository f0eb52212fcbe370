//! DNS block lists: the query names for IP lists (DNSBL: reversed IPv4 octets or IPv6 nibbles
//! under a zone) and domain lists (URIBL: the registered domain of each body link under a zone),
//! the meaning of answers (127.0.0.0/8 listed; 127.255.255.0/24 "query refused / rate limited"
//! ignored), and running the lookups concurrently, bounded in number and time, through the
//! [`DnsLookup`] trait the server implements over its resolver.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde::Deserialize;

use crate::rules::Hit;

/// One list zone and the rule it fires.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    /// e.g. `zen.spamhaus.org`.
    pub zone: String,
    /// Rule name, e.g. `RCVD_IN_ZEN`.
    pub rule: String,
    pub weight: f64,
    /// Answers that count; empty means any 127.0.0.0/8 answer outside 127.255.255.0/24.
    #[serde(default)]
    pub codes: Vec<Ipv4Addr>,
}

/// Which lists to ask, and how long to wait.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsblConfig {
    /// IP lists, asked for the connecting client's address.
    pub ip_zones: Vec<Zone>,
    /// Domain lists, asked for the registered domains of links in the body.
    pub domain_zones: Vec<Zone>,
    /// At most this many link domains are asked per message.
    pub max_domains: usize,
    /// All lookups of one message share this deadline.
    pub timeout_ms: u64,
}

impl Default for DnsblConfig {
    fn default() -> Self {
        DnsblConfig {
            ip_zones: Vec::new(),
            domain_zones: Vec::new(),
            max_domains: 10,
            timeout_ms: 2000,
        }
    }
}

/// Resolves A records; the server implements it over hickory-resolver (with its cache).
pub trait DnsLookup {
    type Error: std::fmt::Debug;
    /// The A records of `name`; an empty list (or an NXDOMAIN error) means "not listed".
    fn a_records(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Vec<Ipv4Addr>, Self::Error>> + Send;
}

/// The DNSBL query name for an IP: `4.3.2.1.zone` for 1.2.3.4, 32 reversed nibbles for IPv6.
pub fn ip_query_name(ip: IpAddr, zone: &str) -> String {
    let zone = zone.trim_matches('.');
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.{zone}")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(64 + zone.len() + 1);
            for byte in v6.octets().iter().rev() {
                for nibble in [byte & 0x0f, byte >> 4] {
                    name.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
                    name.push('.');
                }
            }
            name.push_str(zone);
            name
        }
    }
}

/// The URIBL query name for a registered domain: `domain.zone`. `None` for names that cannot
/// be a DNS label sequence (too long, empty labels, odd bytes) or IP literals.
pub fn domain_query_name(domain: &str, zone: &str) -> Option<String> {
    let domain = domain.trim_matches('.').to_ascii_lowercase();
    let zone = zone.trim_matches('.');
    let valid = !domain.is_empty()
        && domain.parse::<IpAddr>().is_err()
        && domain.len() + zone.len() < 250
        && domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    valid.then(|| format!("{domain}.{zone}"))
}

/// Whether answer `ip` means "listed" for `zone`.
pub fn answer_lists(zone: &Zone, ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    if a != 127 || (b == 255 && c == 255) {
        return false; // not a list answer, or "query refused / over quota"
    }
    zone.codes.is_empty() || zone.codes.contains(&ip)
}

/// Asks every configured list about the client IP and the message's link domains, concurrently,
/// within the configured deadline; lookups not answered in time count as "not listed". Each
/// zone fires its rule at most once.
pub async fn check<D: DnsLookup + Sync>(
    dns: &D,
    cfg: &DnsblConfig,
    client_ip: Option<IpAddr>,
    url_domains: &[String],
) -> Vec<Hit> {
    let mut queries: Vec<(usize, String)> = Vec::new(); // (zone index over ip_zones ++ domain_zones, name)
    if let Some(ip) = client_ip {
        for (i, zone) in cfg.ip_zones.iter().enumerate() {
            queries.push((i, ip_query_name(ip, &zone.zone)));
        }
    }
    for (j, zone) in cfg.domain_zones.iter().enumerate() {
        for domain in url_domains.iter().take(cfg.max_domains) {
            if let Some(name) = domain_query_name(domain, &zone.zone) {
                queries.push((cfg.ip_zones.len() + j, name));
            }
        }
    }
    if queries.is_empty() {
        return Vec::new();
    }
    let zone_of = |i: usize| {
        cfg.ip_zones.get(i).or_else(|| {
            i.checked_sub(cfg.ip_zones.len())
                .and_then(|j| cfg.domain_zones.get(j))
        })
    };
    let mut pending: Vec<_> = queries
        .iter()
        .map(|(i, name)| {
            Box::pin(async move {
                let answers = dns.a_records(name).await.unwrap_or_default();
                (*i, answers)
            })
        })
        .collect();
    let mut listed = vec![false; cfg.ip_zones.len() + cfg.domain_zones.len()];
    let deadline = tokio::time::sleep(Duration::from_millis(cfg.timeout_ms));
    tokio::pin!(deadline);
    // Record answers as they arrive; when the deadline passes, the rest are dropped.
    while !pending.is_empty() {
        tokio::select! {
            ((i, answers), _, rest) = select_first(std::mem::take(&mut pending)) => {
                pending = rest;
                if let Some(zone) = zone_of(i)
                    && answers.iter().any(|ip| answer_lists(zone, *ip))
                    && let Some(flag) = listed.get_mut(i)
                {
                    *flag = true;
                }
            }
            _ = &mut deadline => break,
        }
    }
    listed
        .iter()
        .enumerate()
        .filter(|(_, l)| **l)
        .filter_map(|(i, _)| zone_of(i))
        .map(|z| Hit {
            name: z.rule.clone(),
            weight: z.weight,
        })
        .collect()
}

/// Waits for the first of several futures; returns its output, its index and the others.
async fn select_first<F: Future + Unpin>(mut futures: Vec<F>) -> (F::Output, usize, Vec<F>) {
    std::future::poll_fn(move |cx| {
        for i in 0..futures.len() {
            if let std::task::Poll::Ready(out) = std::pin::Pin::new(&mut futures[i]).poll(cx) {
                let mut rest = std::mem::take(&mut futures);
                rest.swap_remove(i);
                return std::task::Poll::Ready((out, i, rest));
            }
        }
        std::task::Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct FakeDns {
        answers: HashMap<String, Vec<Ipv4Addr>>,
        slow: Vec<String>,
    }

    impl DnsLookup for FakeDns {
        type Error = String;
        fn a_records(
            &self,
            name: &str,
        ) -> impl Future<Output = Result<Vec<Ipv4Addr>, String>> + Send {
            let answer = self
                .answers
                .get(name)
                .cloned()
                .ok_or_else(|| "NXDOMAIN".to_string());
            let slow = self.slow.iter().any(|s| s == name);
            async move {
                if slow {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
                answer
            }
        }
    }

    fn zone(zone: &str, rule: &str) -> Zone {
        Zone {
            zone: zone.into(),
            rule: rule.into(),
            weight: 3.0,
            codes: Vec::new(),
        }
    }

    #[test]
    fn query_names() {
        assert_eq!(
            ip_query_name("192.0.2.99".parse().unwrap(), "zen.example."),
            "99.2.0.192.zen.example"
        );
        assert_eq!(
            ip_query_name("2001:db8::1".parse().unwrap(), "bl.example"),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.example"
        );
        assert_eq!(
            domain_query_name("Example.COM", "uribl.example").as_deref(),
            Some("example.com.uribl.example")
        );
        assert_eq!(domain_query_name("192.0.2.1", "uribl.example"), None);
        assert_eq!(domain_query_name("bad..name", "uribl.example"), None);
    }

    #[test]
    fn answers() {
        let mut z = zone("bl.example", "X");
        assert!(answer_lists(&z, Ipv4Addr::new(127, 0, 0, 2)));
        assert!(!answer_lists(&z, Ipv4Addr::new(127, 255, 255, 254)));
        assert!(!answer_lists(&z, Ipv4Addr::new(10, 0, 0, 2)));
        z.codes = vec![Ipv4Addr::new(127, 0, 0, 4)];
        assert!(!answer_lists(&z, Ipv4Addr::new(127, 0, 0, 2)));
        assert!(answer_lists(&z, Ipv4Addr::new(127, 0, 0, 4)));
    }

    #[tokio::test]
    async fn check_fires_rules_and_respects_deadline() {
        let mut answers = HashMap::new();
        answers.insert(
            "2.0.0.127.ip.example".to_string(),
            vec![Ipv4Addr::new(127, 0, 0, 2)],
        );
        answers.insert(
            "2.0.0.127.refused.example".to_string(),
            vec![Ipv4Addr::new(127, 255, 255, 254)],
        );
        answers.insert(
            "bad.example.uri.example".to_string(),
            vec![Ipv4Addr::new(127, 0, 0, 2)],
        );
        let dns = FakeDns {
            answers,
            slow: vec!["2.0.0.127.slow.example".to_string()],
        };
        let cfg = DnsblConfig {
            ip_zones: vec![
                zone("ip.example", "RCVD_IN_IP"),
                zone("refused.example", "RCVD_IN_REFUSED"),
                zone("slow.example", "RCVD_IN_SLOW"),
            ],
            domain_zones: vec![zone("uri.example", "URIBL_URI")],
            max_domains: 10,
            timeout_ms: 200,
        };
        let started = std::time::Instant::now();
        let domains = vec!["good.example".to_string(), "bad.example".to_string()];
        let hits = check(&dns, &cfg, Some("127.0.0.2".parse().unwrap()), &domains).await;
        // The slow lookup is cut off at the deadline; the answers that came in count.
        assert!(started.elapsed() < Duration::from_secs(5));
        let names: Vec<&str> = hits.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, vec!["RCVD_IN_IP", "URIBL_URI"]);
        let cfg = DnsblConfig {
            ip_zones: cfg.ip_zones[..2].to_vec(),
            ..cfg
        };
        let hits = check(&dns, &cfg, Some("127.0.0.2".parse().unwrap()), &domains).await;
        let names: Vec<&str> = hits.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, vec!["RCVD_IN_IP", "URIBL_URI"]);
        assert!(
            check(
                &dns,
                &DnsblConfig::default(),
                Some("127.0.0.2".parse().unwrap()),
                &domains
            )
            .await
            .is_empty()
        );
    }
}
