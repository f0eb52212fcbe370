//! `[inbound]`: what the checks of arriving mail do with their verdicts, globally and per
//! recipient domain, and which senders are trusted forwarders.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;

use serde::Deserialize;

/// What happens to a message a check condemns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Disposition {
    /// Delivered to the INBOX (the Authentication-Results header still tells the verdict).
    Accept,
    /// Delivered to the Junk mailbox.
    Junk,
    /// Refused with `550 5.7.1` at the end of DATA.
    Reject,
}

/// `[inbound]` in wharf.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InboundConfig {
    /// Verify SPF, DKIM, ARC, DMARC and iprev on port 25 and add Authentication-Results.
    pub enabled: bool,
    /// The authserv-id of our Authentication-Results headers; default the server's host name.
    pub authserv_id: Option<String>,
    /// Honour `p=reject` with `550 5.7.1` (otherwise such mail goes to Junk).
    pub dmarc_reject: bool,
    /// Honour `p=quarantine` by filing into Junk (otherwise INBOX).
    pub dmarc_quarantine: bool,
    /// What an SPF `fail` does when the author domain publishes no DMARC policy (with a policy,
    /// DMARC decides).
    pub spf_fail: Disposition,
    /// Reverse DNS (iprev, FCrDNS) is checked and reported.
    pub iprev: bool,
    /// A DNS failure that leaves DMARC undecided answers `451 4.7.x` instead of accepting.
    pub tempfail_on_dns_error: bool,
    /// Seconds one DNS query may take (the whole check is bounded by a few of them).
    pub dns_timeout_secs: u64,
    /// Addresses or networks (`192.0.2.0/24`, `2001:db8::/32`) of forwarders and mailing lists
    /// whose mail is never refused or filed as junk by these checks.
    pub trusted_forwarders: Vec<String>,
    /// ARC sealers (`d=` of the newest ARC-Seal) whose passing chain overrides a DMARC failure,
    /// as for mailing lists that rewrite messages (RFC 8617 §7.2).
    pub trusted_arc_sealers: Vec<String>,
    /// Per recipient domain: overrides of the policy keys above.
    pub domain: BTreeMap<String, DomainPolicy>,
}

impl Default for InboundConfig {
    fn default() -> Self {
        InboundConfig {
            enabled: true,
            authserv_id: None,
            dmarc_reject: true,
            dmarc_quarantine: true,
            spf_fail: Disposition::Junk,
            iprev: true,
            tempfail_on_dns_error: false,
            dns_timeout_secs: 5,
            trusted_forwarders: Vec::new(),
            trusted_arc_sealers: Vec::new(),
            domain: BTreeMap::new(),
        }
    }
}

/// `[inbound.domain."example.org"]`: a recipient domain's own policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DomainPolicy {
    pub dmarc_reject: Option<bool>,
    pub dmarc_quarantine: Option<bool>,
    pub spf_fail: Option<Disposition>,
}

/// The effective policy for one recipient domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub dmarc_reject: bool,
    pub dmarc_quarantine: bool,
    pub spf_fail: Disposition,
}

impl InboundConfig {
    pub fn policy_for(&self, domain: &str) -> Policy {
        let o = self
            .domain
            .iter()
            .find(|(d, _)| d.eq_ignore_ascii_case(domain))
            .map(|(_, p)| p.clone())
            .unwrap_or_default();
        Policy {
            dmarc_reject: o.dmarc_reject.unwrap_or(self.dmarc_reject),
            dmarc_quarantine: o.dmarc_quarantine.unwrap_or(self.dmarc_quarantine),
            spf_fail: o.spf_fail.unwrap_or(self.spf_fail),
        }
    }

    /// Checks the keys that can be wrong: each forwarder must be an address or a network.
    pub fn validate(&self) -> Result<(), String> {
        for f in &self.trusted_forwarders {
            Network::from_str(f).map_err(|e| format!("trusted_forwarders: {e}"))?;
        }
        if self.dns_timeout_secs == 0 {
            return Err("dns_timeout_secs: must be greater than 0".into());
        }
        Ok(())
    }
}

/// An address with a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Network, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Network { addr, prefix })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_match_by_prefix() {
        let n: Network = "192.0.2.0/24".parse().unwrap();
        assert!(n.contains("192.0.2.77".parse().unwrap()));
        assert!(n.contains("::ffff:192.0.2.1".parse().unwrap()));
        assert!(!n.contains("192.0.3.1".parse().unwrap()));
        let n: Network = "2001:db8::/32".parse().unwrap();
        assert!(n.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!n.contains("2001:db9::1".parse().unwrap()));
        let n: Network = "0.0.0.0/0".parse().unwrap();
        assert!(n.contains("203.0.113.9".parse().unwrap()));
        assert!(
            "10.0.0.1"
                .parse::<Network>()
                .unwrap()
                .contains("10.0.0.1".parse().unwrap())
        );
        assert!("10.0.0.0/33".parse::<Network>().is_err());
        assert!("mail.example.org".parse::<Network>().is_err());
    }

    #[test]
    fn domain_overrides_fall_back_to_the_global_keys() {
        let cfg: InboundConfig = toml::from_str(
            "dmarc_reject = true\nspf_fail = \"reject\"\n[domain.\"lists.example.org\"]\ndmarc_reject = false\n",
        )
        .unwrap();
        let p = cfg.policy_for("LISTS.example.org");
        assert!(!p.dmarc_reject && p.dmarc_quarantine);
        assert_eq!(p.spf_fail, Disposition::Reject);
        assert!(cfg.policy_for("example.org").dmarc_reject);
    }
}
