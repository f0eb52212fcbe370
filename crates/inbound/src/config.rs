//! `[inbound]`: what the checks of arriving mail do with their verdicts, globally and per
//! recipient domain, and which senders are trusted forwarders.

use std::collections::BTreeMap;

use serde::Deserialize;
use wharf_net::IpNet;

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
    /// Seconds one SPF evaluation (one identity, all its DNS lookups) may take; past it the
    /// result is `temperror`.
    pub spf_deadline_secs: u64,
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
            // RFC 7208 §4.6.4: the limit SHOULD allow at least 20 seconds.
            spf_deadline_secs: 20,
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
            f.parse::<IpNet>().map_err(|()| {
                format!("trusted_forwarders: {f:?} is not an IP address or network (192.0.2.0/24)")
            })?;
        }
        if self.dns_timeout_secs == 0 {
            return Err("dns_timeout_secs: must be greater than 0".into());
        }
        if self.spf_deadline_secs == 0 {
            return Err("spf_deadline_secs: must be greater than 0".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
