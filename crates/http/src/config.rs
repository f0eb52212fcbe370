//! `[http]` configuration: what the server advertises to clients and DNS.

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("http.trusted_proxies: {0:?} is not an IP address or CIDR block (10.0.0.0/8, ::1)")]
    BadProxy(String),
    #[error("http.metrics_allow: {0:?} is not an IP address or CIDR block (127.0.0.0/8, ::1)")]
    BadMetricsAllow(String),
}

pub use wharf_net::{IpNet, in_any};

/// Public ports advertised to clients; 0 means "not offered".
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AdvertisedPorts {
    pub imaps: u16,
    pub imap: u16,
    pub pop3s: u16,
    pub pop3: u16,
    pub submissions: u16,
    pub submission: u16,
}

impl Default for AdvertisedPorts {
    fn default() -> Self {
        AdvertisedPorts {
            imaps: 993,
            imap: 143,
            pop3s: 995,
            pop3: 110,
            submissions: 465,
            submission: 587,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum MtaStsMode {
    Enforce,
    #[default]
    Testing,
    None,
}

impl MtaStsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MtaStsMode::Enforce => "enforce",
            MtaStsMode::Testing => "testing",
            MtaStsMode::None => "none",
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct MtaStsConfig {
    pub mode: MtaStsMode,
    /// Seconds; RFC 8461 caps it at 31557600.
    pub max_age: u64,
    /// MX patterns; empty means the server's hostname.
    pub mx: Vec<String>,
}

impl Default for MtaStsConfig {
    fn default() -> Self {
        MtaStsConfig {
            mode: MtaStsMode::Testing,
            max_age: 604800,
            mx: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Host name clients connect to for IMAP/POP3/SMTP.
    pub hostname: String,
    pub ports: AdvertisedPorts,
    /// Peers (addresses or CIDR blocks) whose X-Forwarded-For /
    /// X-Forwarded-Host are believed.
    pub trusted_proxies: Vec<String>,
    pub mta_sts: MtaStsConfig,
    pub metrics: bool,
    /// Clients (addresses or CIDR blocks, after X-Forwarded-For from a
    /// trusted proxy) that may read `/metrics`; others get 403.
    pub metrics_allow: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            hostname: "localhost".to_string(),
            ports: AdvertisedPorts::default(),
            trusted_proxies: Vec::new(),
            mta_sts: MtaStsConfig::default(),
            metrics: true,
            metrics_allow: default_metrics_allow(),
        }
    }
}

/// Loopback only: counters reveal traffic volumes and account activity.
pub fn default_metrics_allow() -> Vec<String> {
    vec!["127.0.0.0/8".to_string(), "::1".to_string()]
}

impl HttpConfig {
    pub fn parsed_proxies(&self) -> Result<Vec<IpNet>, ConfigError> {
        self.trusted_proxies
            .iter()
            .map(|p| p.parse().map_err(|()| ConfigError::BadProxy(p.clone())))
            .collect()
    }

    pub fn parsed_metrics_allow(&self) -> Result<Vec<IpNet>, ConfigError> {
        self.metrics_allow
            .iter()
            .map(|p| {
                p.parse()
                    .map_err(|()| ConfigError::BadMetricsAllow(p.clone()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_blocks_and_single_addresses() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(net("10.0.0.0/8").contains(&ip("10.200.3.4")));
        assert!(!net("10.0.0.0/8").contains(&ip("11.0.0.1")));
        assert!(net("192.0.2.7").contains(&ip("192.0.2.7")));
        assert!(!net("192.0.2.7").contains(&ip("192.0.2.8")));
        assert!(net("0.0.0.0/0").contains(&ip("203.0.113.9")));
        assert!(net("2001:db8::/32").contains(&ip("2001:db8:ffff::1")));
        assert!(!net("2001:db8::/32").contains(&ip("2001:db9::1")));
        assert!(net("::/0").contains(&ip("::1")));
        // IPv4-mapped clients of a dual-stack socket match IPv4 blocks.
        assert!(net("127.0.0.0/8").contains(&ip("::ffff:127.0.0.1")));
        assert!(!net("::1").contains(&ip("127.0.0.1")));
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "example.org",
            "10.0.0/8",
            "",
        ] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn config_lists_are_checked() {
        let cfg = HttpConfig {
            trusted_proxies: vec!["10.1.0.0/16".into(), "bogus".into()],
            ..HttpConfig::default()
        };
        assert!(matches!(cfg.parsed_proxies(), Err(ConfigError::BadProxy(p)) if p == "bogus"));
        let cfg = HttpConfig {
            metrics_allow: vec!["300.0.0.1".into()],
            ..HttpConfig::default()
        };
        assert!(cfg.parsed_metrics_allow().is_err());
        assert_eq!(
            HttpConfig::default().parsed_metrics_allow().unwrap().len(),
            2
        );
    }
}
