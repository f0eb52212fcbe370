//! The `wharf.toml` schema: one serde struct per table, with the defaults a missing key takes,
//! and the listener model (the ten standard listeners, names and ports derived from protocol and TLS).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use serde::Deserialize;

use super::hostname::{FALLBACK_HOSTNAME, system_hostname};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerSection,
    pub store: StoreSection,
    pub tls: TlsSection,
    pub limits: LimitsSection,
    /// `[[listener]]` entries; absent means the ten standard listeners.
    #[serde(rename = "listener")]
    pub listeners: Option<Vec<ListenerConfig>>,
    pub directory: DirectorySection,
    pub log: LogSection,
    /// The protocol crates' own tables: their keys are documented in docs/<protocol>.md.
    pub smtp: wharf_smtp::SmtpConfig,
    pub imap: wharf_imap::ImapConfig,
    pub pop3: wharf_pop3::Pop3Config,
    pub managesieve: wharf_managesieve::ManageSieveConfig,
    /// Mail leaving Wharf: queue, retries, routing, TLS policy (docs/configuration.md).
    pub outbound: OutboundSection,
    /// Trust of mail arriving on port 25: SPF, DKIM, DMARC, ARC, iprev (docs/inbound.md).
    pub inbound: wharf_inbound::InboundConfig,
    /// The HTTP listeners' content: proxies, `/metrics`, the MTA-STS policy (docs/http.md).
    pub http: HttpSection,
    /// Certificates from an ACME CA (docs/ports-and-tls.md).
    pub acme: AcmeSection,
    /// Daily DMARC aggregate and TLS-RPT reports Wharf sends (docs/inbound.md).
    pub reports: ReportsSection,
    /// Server-side filtering at local delivery: Sieve scripts, vacation, redirects
    /// (docs/sieve.md).
    pub sieve: SieveSection,
    /// Spam scoring of mail arriving on port 25: rules, classifier, lists, greylisting, DNS
    /// block lists, rspamd (docs/spam.md).
    pub spam: wharf_spam::Config,
}

/// `[sieve]`: users' Sieve scripts (RFC 5228) run at local delivery, plus optional admin
/// scripts before and after them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SieveSection {
    /// Run users' active scripts at delivery.
    pub enabled: bool,
    /// An admin script run before every user's script (path; relative to the config file).
    pub before: Option<PathBuf>,
    /// An admin script run after every user's script.
    pub after: Option<PathBuf>,
    /// Largest script a user may store, in octets.
    pub max_script_bytes: usize,
    /// Scripts one account may keep.
    pub max_scripts: usize,
    /// Commands and tests evaluated per message before the run gives up (and keeps).
    pub max_instructions: u64,
    /// Redirects one message may cause.
    pub max_redirects: usize,
    /// Shortest interval between two vacation replies to one sender, in seconds.
    pub vacation_min_seconds: u64,
    /// Longest `:days` a script may ask for.
    pub vacation_max_days: u32,
    /// The key of the Sender Rewriting Scheme for redirected mail; every node must share it.
    /// Default: a key generated once in the data directory (`srs.key`).
    pub srs_secret: Option<String>,
}

impl Default for SieveSection {
    fn default() -> Self {
        SieveSection {
            enabled: true,
            before: None,
            after: None,
            max_script_bytes: 64 * 1024,
            max_scripts: 32,
            max_instructions: 10_000,
            max_redirects: 4,
            vacation_min_seconds: 3600,
            vacation_max_days: 30,
            srs_secret: None,
        }
    }
}

/// `[reports]`: the reports Wharf sends to other domains. Off by default: they tell those
/// domains which hosts sent mail to us and how our TLS sessions to them went.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportsSection {
    /// Daily DMARC aggregate reports (RFC 7489 §7.2) to the author domains whose DMARC record
    /// asks for them (`rua=`); needs `[inbound] enabled`.
    pub dmarc_aggregate: bool,
    /// Daily TLS-RPT reports (RFC 8460) to the domains we sent mail to that publish a
    /// `_smtp._tls` record.
    pub tls_rpt: bool,
    /// The organisation named in the reports; default the primary domain.
    pub org_name: Option<String>,
    /// The reports' sender (and contact); default `postmaster@<primary domain>`.
    pub from: Option<String>,
    /// Days of counts kept; a report not sent within them (every node down) is not sent.
    pub keep_days: u32,
}

impl Default for ReportsSection {
    fn default() -> Self {
        ReportsSection {
            dmarc_aggregate: false,
            tls_rpt: false,
            org_name: None,
            from: None,
            keep_days: 7,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    pub hostname: String,
    /// Defaults to the host name without its first label.
    pub primary_domain: Option<String>,
    pub data_dir: PathBuf,
    /// The key that seals the secrets nodes share through the store (DKIM keys); default
    /// `<data_dir>/state.key`. Every node of one store needs the same file.
    pub state_key_file: Option<PathBuf>,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            hostname: system_hostname(),
            primary_domain: None,
            data_dir: PathBuf::from("data"),
            state_key_file: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSection {
    /// `sqlite:///abs/path.db` or `postgres://…`; default `sqlite://<data_dir>/wharf.db`.
    pub url: Option<String>,
    /// Default `<data_dir>/blobs`.
    pub blob_dir: Option<PathBuf>,
    /// PostgreSQL only: milliseconds to wait for a pooled connection.
    pub pg_acquire_timeout_ms: u64,
    /// PostgreSQL only: milliseconds one statement of an interactive command may take.
    pub pg_statement_timeout_ms: u64,
    /// PostgreSQL only: milliseconds a statement whose work grows with a mailbox may take.
    pub pg_heavy_statement_timeout_ms: u64,
    /// Seconds a message body stays after its last copy was expunged, before the periodic sweep
    /// removes the file (0: at once).
    pub blob_grace_secs: u64,
    /// Days the UIDs of expunged messages are remembered for QRESYNC; a client that last synced
    /// earlier gets a full comparison instead (0: never forgotten).
    pub expunge_history_days: u64,
    /// `[store.s3]`: message bodies in an S3 bucket instead of `blob_dir`.
    pub s3: Option<S3Section>,
}

/// `[store.s3]`: the bucket the message bodies go to. Keys left out fall back to the standard
/// AWS environment variables (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Section {
    pub bucket: String,
    /// Folder of the bucket the objects go under ("" for its root).
    pub prefix: String,
    /// `https://s3.example.net`; default AWS (or `AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    /// Default `AWS_REGION`, else `us-east-1`.
    pub region: Option<String>,
    /// `endpoint/bucket/key` rather than `bucket.endpoint/key`.
    pub path_style: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Seconds one request may take.
    pub timeout_secs: u64,
    /// Seconds failed requests are retried (with backoff) before the operation fails.
    pub retry_secs: u64,
}

impl Default for S3Section {
    fn default() -> Self {
        S3Section {
            bucket: String::new(),
            prefix: String::new(),
            endpoint: None,
            region: None,
            path_style: true,
            access_key_id: None,
            secret_access_key: None,
            timeout_secs: wharf_store::blob_s3::S3Config::DEFAULT_TIMEOUT.as_secs(),
            retry_secs: wharf_store::blob_s3::S3Config::DEFAULT_RETRY.as_secs(),
        }
    }
}

impl std::fmt::Debug for S3Section {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.to_config())
    }
}

impl S3Section {
    /// The store's settings (a secret stays out of `Debug`).
    pub fn to_config(&self) -> wharf_store::blob_s3::S3Config {
        wharf_store::blob_s3::S3Config {
            bucket: self.bucket.clone(),
            prefix: self.prefix.trim_matches('/').to_string(),
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            path_style: self.path_style,
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            timeout: std::time::Duration::from_secs(self.timeout_secs),
            retry: std::time::Duration::from_secs(self.retry_secs),
        }
    }
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            url: None,
            blob_dir: None,
            pg_acquire_timeout_ms: 5_000,
            pg_statement_timeout_ms: 5_000,
            pg_heavy_statement_timeout_ms: 60_000,
            blob_grace_secs: wharf_store::DEFAULT_BLOB_GRACE.as_secs(),
            expunge_history_days: 90,
            s3: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSection {
    /// Default `<data_dir>/tls/cert.pem` (self-signed, generated when both defaults are missing).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSection {
    pub max_connections: usize,
    pub max_per_ip: usize,
    /// Seconds without input before a session is closed.
    pub idle_timeout: u64,
    /// Seconds a TLS handshake may take.
    pub tls_handshake_timeout: u64,
    /// Seconds SIGTERM waits for sessions to end before closing them.
    pub shutdown_timeout: u64,
    /// Largest message accepted, in bytes.
    pub max_message_size: u64,
    /// Seconds a connection may stay without logging in (port 25: without a message accepted);
    /// 0 = no deadline. Time spent sending a message body does not count.
    pub pre_auth_timeout: u64,
    /// Least bytes per second a client must send during a message body or APPEND literal,
    /// averaged over `min_data_rate_window`; 0 = no minimum.
    pub min_data_rate: u32,
    /// Seconds over which `min_data_rate` is averaged.
    pub min_data_rate_window: u64,
    /// Above 90 % of `max_connections`, close the oldest connections that have not logged in.
    pub shed_unauthenticated: bool,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_connections: 10_000,
            max_per_ip: 50,
            idle_timeout: 1800,
            tls_handshake_timeout: 30,
            shutdown_timeout: 30,
            max_message_size: 50 * 1024 * 1024,
            pre_auth_timeout: 60,
            min_data_rate: 1024,
            min_data_rate_window: 30,
            shed_unauthenticated: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Smtp,
    Submission,
    Imap,
    Pop3,
    /// ManageSieve (RFC 5804): users upload their Sieve scripts.
    Managesieve,
    /// Autoconfig, Autodiscover, MTA-STS, ACME HTTP-01, `/metrics`.
    Http,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Smtp => "smtp",
            Protocol::Submission => "submission",
            Protocol::Imap => "imap",
            Protocol::Pop3 => "pop3",
            Protocol::Managesieve => "managesieve",
            Protocol::Http => "http",
        }
    }

    /// TLS mode of a listener that does not say: STARTTLS for mail, none
    /// for HTTP (which has no STARTTLS).
    pub fn default_tls(self) -> ListenerTls {
        match self {
            Protocol::Http => ListenerTls::None,
            _ => ListenerTls::Starttls,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerTls {
    None,
    Starttls,
    Implicit,
}

impl ListenerTls {
    pub fn as_str(self) -> &'static str {
        match self {
            ListenerTls::None => "none",
            ListenerTls::Starttls => "starttls",
            ListenerTls::Implicit => "implicit",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Default: the protocol name, with `s` appended for implicit TLS (`imaps`, `submissions`).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "default_address")]
    pub address: IpAddr,
    /// Default: the protocol's standard port for the TLS mode. 0 picks a free port.
    #[serde(default)]
    pub port: Option<u16>,
    pub protocol: Protocol,
    /// Default `starttls` (`none` for `http`).
    #[serde(default)]
    pub tls: Option<ListenerTls>,
    #[serde(default)]
    pub proxy_protocol: bool,
}

pub(super) fn default_address() -> IpAddr {
    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
}

/// A listener with every default filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
    pub protocol: Protocol,
    pub tls: ListenerTls,
    pub proxy_protocol: bool,
}

impl ListenerConfig {
    pub fn resolve(&self) -> Listener {
        let tls = self.tls.unwrap_or(self.protocol.default_tls());
        Listener {
            name: self
                .name
                .clone()
                .unwrap_or_else(|| default_name(self.protocol, tls)),
            address: self.address,
            port: self
                .port
                .unwrap_or_else(|| standard_port(self.protocol, tls)),
            protocol: self.protocol,
            tls,
            proxy_protocol: self.proxy_protocol,
        }
    }
}

pub fn default_name(protocol: Protocol, tls: ListenerTls) -> String {
    match tls {
        ListenerTls::Implicit => format!("{}s", protocol.as_str()),
        _ => protocol.as_str().to_string(),
    }
}

pub fn standard_port(protocol: Protocol, tls: ListenerTls) -> u16 {
    let implicit = tls == ListenerTls::Implicit;
    match (protocol, implicit) {
        (Protocol::Smtp, false) => 25,
        (Protocol::Smtp, true) => 465,
        (Protocol::Submission, false) => 587,
        (Protocol::Submission, true) => 465,
        (Protocol::Imap, false) => 143,
        (Protocol::Imap, true) => 993,
        (Protocol::Pop3, false) => 110,
        (Protocol::Pop3, true) => 995,
        // RFC 5804 defines no implicit-TLS port; an implicit listener without a port uses 4190 too.
        (Protocol::Managesieve, _) => 4190,
        (Protocol::Http, false) => 80,
        (Protocol::Http, true) => 443,
    }
}

/// The ten standard listeners, in the order they are printed.
pub fn standard_listeners(address: IpAddr) -> Vec<Listener> {
    [
        (Protocol::Smtp, ListenerTls::Starttls, "smtp"),
        (Protocol::Submission, ListenerTls::Starttls, "submission"),
        (Protocol::Submission, ListenerTls::Implicit, "submissions"),
        (Protocol::Imap, ListenerTls::Starttls, "imap"),
        (Protocol::Imap, ListenerTls::Implicit, "imaps"),
        (Protocol::Pop3, ListenerTls::Starttls, "pop3"),
        (Protocol::Pop3, ListenerTls::Implicit, "pop3s"),
        (Protocol::Http, ListenerTls::None, "http"),
        (Protocol::Http, ListenerTls::Implicit, "https"),
        (Protocol::Managesieve, ListenerTls::Starttls, "managesieve"),
    ]
    .into_iter()
    .map(|(protocol, tls, name)| Listener {
        name: name.to_string(),
        address,
        port: standard_port(protocol, tls),
        protocol,
        tls,
        proxy_protocol: false,
    })
    .collect()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DirectorySection {
    /// Seconds of delay after the first failed authentication; doubles with each further failure.
    pub auth_fail_delay_base: u64,
    pub auth_fail_max_delay: u64,
    pub auth_ip_lockout_after: u32,
    pub auth_account_lockout_after: u32,
    /// Seconds a locked-out IP or account is refused.
    pub auth_lockout: u64,
    /// Days a source that logged in to an account stays exempt from the account's slowing.
    pub auth_known_source_days: u64,
    /// Seconds a verified credential is cached.
    pub credential_cache_ttl: u64,
    pub min_password_len: usize,
    /// Where postmaster@ and abuse@ of every domain go when no account or alias has them;
    /// default `admin@<primary_domain>`.
    pub postmaster: Option<String>,
}

impl Default for DirectorySection {
    /// The directory crate's own defaults, so that the two can never disagree.
    fn default() -> Self {
        let d = wharf_directory::DirectoryConfig::default();
        DirectorySection {
            auth_fail_delay_base: d.auth_fail_delay_base.as_secs(),
            auth_fail_max_delay: d.auth_fail_max_delay.as_secs(),
            auth_ip_lockout_after: d.auth_ip_lockout_after,
            auth_account_lockout_after: d.auth_account_lockout_after,
            auth_lockout: d.auth_lockout.as_secs(),
            auth_known_source_days: d.auth_known_source_ttl.as_secs() / 86_400,
            credential_cache_ttl: d.credential_cache_ttl.as_secs(),
            min_password_len: d.min_password_len,
            postmaster: d.postmaster,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    /// A tracing filter (`info`, `wharf_smtp=debug,info`); `RUST_LOG` overrides it.
    pub level: String,
    /// `"text"` (one human-readable line per event) or `"json"` (one JSON object per line, for
    /// log collectors).
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: "info".to_string(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundSection {
    /// Seconds before attempt n+1 after attempt n; the last value repeats.
    pub retry_schedule: Vec<u64>,
    /// Seconds after which undelivered recipients fail with a DSN.
    pub max_age: u64,
    /// Seconds undelivered before a delay DSN; 0 sends none.
    pub delay_warning: u64,
    pub max_connections: usize,
    pub max_connections_per_domain: usize,
    pub max_messages_per_connection: usize,
    /// Seconds between queue scans when nothing wakes the worker.
    pub poll_interval: u64,
    /// Seconds a node owns the entries it leased (a crashed node's entries wait this long).
    pub lease: u64,
    /// Entries leased per round.
    pub batch: usize,
    /// TLS with MX hosts: `disabled`, `opportunistic`, `required`, `required-verified`.
    pub tls: wharf_outbound::TlsPolicy,
    /// Extra PEM trust anchors (private CA) added to the system bundle.
    pub ca_file: Option<PathBuf>,
    /// DNS servers for MX/A/TXT lookups (`"127.0.0.1:5353"` or a list); default `/etc/resolv.conf`.
    pub dns_server: DnsServers,
    /// Seconds per DNS query.
    pub dns_timeout: u64,
    /// TCP port of MX hosts (25; tests point it elsewhere).
    pub mx_port: u16,
    /// RFC 8461 MTA-STS for MX-routed domains.
    pub mta_sts: bool,
    /// RFC 7672 DANE for MX-routed domains; `dns_server` must be a validating resolver.
    pub dane: bool,
    pub connect_timeout: u64,
    pub command_timeout: u64,
    pub data_timeout: u64,
    /// Every message goes through this host (Postfix `relayhost`).
    pub relayhost: Option<RelaySection>,
    /// Per recipient domain, before DNS and before `relayhost`.
    pub routes: std::collections::BTreeMap<String, RelaySection>,
}

impl Default for OutboundSection {
    /// The outbound crate's own defaults, so that the two can never disagree.
    fn default() -> Self {
        let q = wharf_outbound::QueueConfig::new(FALLBACK_HOSTNAME);
        let c = wharf_outbound::ClientConfig::new(FALLBACK_HOSTNAME);
        let r = wharf_outbound::route::RouterConfig::default();
        OutboundSection {
            retry_schedule: q.retry_schedule.iter().map(|d| d.as_secs()).collect(),
            max_age: q.max_age.as_secs(),
            delay_warning: q.delay_warning.map(|d| d.as_secs()).unwrap_or(0),
            max_connections: q.max_connections,
            max_connections_per_domain: q.max_connections_per_domain,
            max_messages_per_connection: q.max_messages_per_connection,
            poll_interval: q.poll_interval.as_secs(),
            lease: q.lease.as_secs(),
            batch: q.batch,
            tls: c.tls,
            ca_file: None,
            dns_server: DnsServers::default(),
            dns_timeout: r.dns_timeout.as_secs(),
            mx_port: r.smtp_port,
            mta_sts: r.mta_sts.is_some(),
            dane: r.dane,
            connect_timeout: c.connect_timeout.as_secs(),
            command_timeout: c.command_timeout.as_secs(),
            data_timeout: c.data_timeout.as_secs(),
            relayhost: None,
            routes: std::collections::BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSection {
    /// Reverse proxies (addresses or CIDR blocks) whose X-Forwarded-For and
    /// X-Forwarded-Host are believed.
    pub trusted_proxies: Vec<String>,
    /// Serve `/metrics` (and install the Prometheus recorder).
    pub metrics: bool,
    /// Clients (addresses or CIDR blocks) allowed to read `/metrics`.
    pub metrics_allow: Vec<String>,
    /// The policy at `https://mta-sts.<domain>/.well-known/mta-sts.txt`.
    pub mta_sts: wharf_http::MtaStsConfig,
    /// Ports told to clients when they differ from the bound ones (NAT, port forwarding).
    pub advertise: AdvertiseSection,
    /// Largest request body of the admin API's import (`POST /api/v1/accounts/{address}/import`),
    /// in octets. The body is streamed, never held whole; each message in it is also bounded by
    /// `[limits] max_message_size`.
    pub api_import_max_bytes: u64,
}

/// Each key replaces the port derived from the listeners; 0 = not offered.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdvertiseSection {
    pub imaps: Option<u16>,
    pub imap: Option<u16>,
    pub pop3s: Option<u16>,
    pub pop3: Option<u16>,
    pub submissions: Option<u16>,
    pub submission: Option<u16>,
}

impl Default for HttpSection {
    /// The http crate's own defaults, so that the two can never disagree.
    fn default() -> Self {
        let h = wharf_http::HttpConfig::default();
        HttpSection {
            trusted_proxies: h.trusted_proxies,
            metrics: h.metrics,
            metrics_allow: h.metrics_allow,
            mta_sts: h.mta_sts,
            advertise: AdvertiseSection::default(),
            api_import_max_bytes: 1 << 30,
        }
    }
}

/// How the ACME CA checks that this server answers for a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum AcmeChallenge {
    /// `http://<name>/.well-known/acme-challenge/…` on the `http` listener.
    #[serde(rename = "http-01")]
    Http01,
    /// An `acme-tls/1` handshake on port 443, answered by every TLS listener.
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AcmeSection {
    pub enabled: bool,
    /// The CA's RFC 8555 directory.
    pub directory_url: String,
    /// Account contact e-mail (`postmaster@example.org`, `mailto:` optional).
    pub contact: Option<String>,
    pub challenge: AcmeChallenge,
    /// More names on the certificate besides the host name and
    /// `autoconfig.`/`mta-sts.` of every local domain.
    pub extra_names: Vec<String>,
    /// PEM trust anchor for the CA's HTTPS directory (a private CA); default the system roots.
    pub ca_file: Option<PathBuf>,
    /// Seconds before expiry to renew; default a third of the lifetime, at most 30 days.
    pub renew_before: Option<u64>,
    /// Seconds between looks at the certificate's expiry.
    pub check_interval: u64,
    /// Seconds to wait after a failed order, doubled per failure up to `retry_max`.
    pub retry_min: u64,
    pub retry_max: u64,
    /// Seconds the CA may take to validate and to issue.
    pub order_timeout: u64,
}

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

impl Default for AcmeSection {
    /// The acme crate's own timing defaults.
    fn default() -> Self {
        let a = wharf_acme::AcmeSettings::new(String::new(), Vec::new(), PathBuf::new());
        AcmeSection {
            enabled: false,
            directory_url: LETS_ENCRYPT.to_string(),
            contact: None,
            challenge: AcmeChallenge::Http01,
            extra_names: Vec::new(),
            ca_file: None,
            renew_before: a.renew_margin.map(|d| d.as_secs()),
            check_interval: a.check_interval.as_secs(),
            retry_min: a.retry_min.as_secs(),
            retry_max: a.retry_max.as_secs(),
            order_timeout: a.order_timeout.as_secs(),
        }
    }
}

/// `dns_server = "127.0.0.1:53"` or `dns_server = ["10.0.0.1:53", "[::1]:53"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "OneOrMany")]
pub struct DnsServers(pub Vec<std::net::SocketAddr>);

#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "an address with port such as \"127.0.0.1:53\", or a list of them"
)]
enum OneOrMany {
    One(std::net::SocketAddr),
    Many(Vec<std::net::SocketAddr>),
}

impl From<OneOrMany> for DnsServers {
    fn from(v: OneOrMany) -> Self {
        match v {
            OneOrMany::One(a) => DnsServers(vec![a]),
            OneOrMany::Many(list) => DnsServers(list),
        }
    }
}

/// A fixed next hop: `[outbound.relayhost]` or `[outbound.routes."example.org"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelaySection {
    /// Host name, IP address or `[IP]`.
    pub host: String,
    #[serde(default = "default_relay_port")]
    pub port: u16,
    /// AUTH user name; sent only over TLS.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// A file whose first line is the password (keeps the secret out of wharf.toml).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// TLS policy for this hop; default the global `outbound.tls`.
    #[serde(default)]
    pub tls: Option<wharf_outbound::TlsPolicy>,
}

fn default_relay_port() -> u16 {
    25
}
