//! `[http]` configuration: what the server advertises to clients and DNS.

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("http.trusted_proxies: {0:?} is not an IP address")]
    BadProxy(String),
}

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
    /// Peers whose X-Forwarded-For / X-Forwarded-Host are believed.
    pub trusted_proxies: Vec<String>,
    pub mta_sts: MtaStsConfig,
    pub metrics: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            hostname: "localhost".to_string(),
            ports: AdvertisedPorts::default(),
            trusted_proxies: Vec::new(),
            mta_sts: MtaStsConfig::default(),
            metrics: true,
        }
    }
}

impl HttpConfig {
    pub fn parsed_proxies(&self) -> Result<Vec<std::net::IpAddr>, ConfigError> {
        self.trusted_proxies
            .iter()
            .map(|p| p.parse().map_err(|_| ConfigError::BadProxy(p.clone())))
            .collect()
    }
}
