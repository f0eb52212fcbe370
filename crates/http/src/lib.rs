//! Wharf's HTTP face: client self-configuration (Thunderbird autoconfig,
//! Outlook Autodiscover v1), the MTA-STS policy, the DNS records a domain
//! needs, and the HTTP/HTTPS accept loop that serves them.

mod apple;
mod config;
mod dns;
mod metrics;
mod routes;
mod serve;
mod xml;

pub use config::{AdvertisedPorts, ConfigError, HttpConfig, MtaStsConfig, MtaStsMode};
pub use dns::{DkimDnsRecord, dns_records, mta_sts_id, mta_sts_policy};
pub use metrics::install_metrics;
pub use routes::{AcmeChallengeLookup, HttpState, router};
pub use serve::serve;
