//! Wharf's HTTP face: client self-configuration (Thunderbird autoconfig,
//! Outlook Autodiscover v1 and v2, Apple profiles), the MTA-STS policy,
//! `/metrics`, ACME HTTP-01 answers, the DNS records a domain needs, and two
//! ways to serve them: [`HttpHandler`] on wharf-net listeners (the binary)
//! and the stand-alone accept loop [`serve`] (tests, embedding).

mod api;
mod apple;
mod config;
mod dns;
mod handler;
mod metrics;
mod routes;
mod serve;
mod web;
mod xml;

pub use api::{
    AdminApi, ApiCall, ApiError, ApiReply, DEFAULT_PAGE_LIMIT, ForwardInput, ImportFormat,
    ImportInput, MAX_PAGE_LIMIT, OPENAPI, Page, ROUTES as API_ROUTES, RequestBody, SharedAdminApi,
    TokenGrant, VacationInput, too_large,
};
pub use config::{
    AdvertisedPorts, ConfigError, HttpConfig, IpNet, MtaStsConfig, MtaStsMode,
    default_metrics_allow,
};
pub use dns::{DkimDnsRecord, dns_records, mta_sts_id, mta_sts_policy};
pub use handler::HttpHandler;
pub use metrics::install_metrics;
pub use routes::{AcmeChallengeLookup, HttpState, router};
pub use serve::serve;
