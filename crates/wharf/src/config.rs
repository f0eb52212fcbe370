//! `wharf.toml`: the configuration schema, its defaults, and loading with errors that name the
//! file, line, column and key. Relative paths in the file are resolved against the file's folder.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Fallback host name when the system's cannot be read.
const FALLBACK_HOSTNAME: &str = "localhost";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerSection,
    pub store: StoreSection,
    pub tls: TlsSection,
    pub limits: LimitsSection,
    /// `[[listener]]` entries; absent means the nine standard listeners.
    #[serde(rename = "listener")]
    pub listeners: Option<Vec<ListenerConfig>>,
    pub directory: DirectorySection,
    pub log: LogSection,
    /// The protocol crates' own tables: their keys are documented in docs/<protocol>.md.
    pub smtp: wharf_smtp::SmtpConfig,
    pub imap: wharf_imap::ImapConfig,
    pub pop3: wharf_pop3::Pop3Config,
    /// Mail leaving Wharf: queue, retries, routing, TLS policy (docs/configuration.md).
    pub outbound: OutboundSection,
    /// The HTTP listeners' content: proxies, `/metrics`, the MTA-STS policy (docs/http.md).
    pub http: HttpSection,
    /// Certificates from an ACME CA (docs/ports-and-tls.md).
    pub acme: AcmeSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    pub hostname: String,
    /// Defaults to the host name without its first label.
    pub primary_domain: Option<String>,
    pub data_dir: PathBuf,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            hostname: system_hostname(),
            primary_domain: None,
            data_dir: PathBuf::from("data"),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSection {
    /// `sqlite:///abs/path.db` or `postgres://…`; default `sqlite://<data_dir>/wharf.db`.
    pub url: Option<String>,
    /// Default `<data_dir>/blobs`.
    pub blob_dir: Option<PathBuf>,
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

fn default_address() -> IpAddr {
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
        (Protocol::Http, false) => 80,
        (Protocol::Http, true) => 443,
    }
}

/// The nine standard listeners, in the order they are printed.
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
    /// Seconds in which failures are counted, and for which a locked-out IP is refused.
    pub auth_lockout: u64,
    /// Days a source that logged in to an account stays exempt from the account's slowing.
    pub auth_known_source_days: u64,
    /// Seconds a verified credential is cached.
    pub credential_cache_ttl: u64,
    pub min_password_len: usize,
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
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    /// A tracing filter (`info`, `wharf_smtp=debug,info`); `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: "info".to_string(),
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

/// A configuration refused at load time. Its text is one line: `file:line:column: key `k`: problem`.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let (Some(line), Some(col)) = (self.line, self.column) {
            write!(f, ":{line}:{col}")?;
        }
        write!(f, ": ")?;
        if let Some(key) = &self.key {
            write!(f, "key `{key}`: ")?;
        }
        // serde messages may span lines; the CLI contract is one line.
        write!(f, "{}", self.message.replace('\n', " ").trim())
    }
}

impl std::error::Error for ConfigError {}

/// A loaded configuration plus where it came from, with paths resolved.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub config: Config,
    pub data_dir: PathBuf,
}

impl Loaded {
    pub fn primary_domain(&self) -> String {
        self.config
            .server
            .primary_domain
            .clone()
            .unwrap_or_else(|| domain_of_host(&self.config.server.hostname))
    }

    pub fn store_url(&self) -> String {
        match &self.config.store.url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("wharf.db").display()),
        }
    }

    pub fn blob_dir(&self) -> PathBuf {
        match &self.config.store.blob_dir {
            Some(p) => self.resolve(p),
            None => self.data_dir.join("blobs"),
        }
    }

    /// Certificate and key paths, and whether they are the generated defaults.
    pub fn tls_paths(&self) -> (PathBuf, PathBuf, bool) {
        let tls = &self.config.tls;
        match (&tls.cert, &tls.key) {
            (None, None) => (
                self.data_dir.join("tls").join("cert.pem"),
                self.data_dir.join("tls").join("key.pem"),
                true,
            ),
            (cert, key) => (
                cert.as_ref()
                    .map(|p| self.resolve(p))
                    .unwrap_or_else(|| self.data_dir.join("tls").join("cert.pem")),
                key.as_ref()
                    .map(|p| self.resolve(p))
                    .unwrap_or_else(|| self.data_dir.join("tls").join("key.pem")),
                false,
            ),
        }
    }

    pub fn listeners(&self) -> Vec<Listener> {
        match &self.config.listeners {
            Some(list) => list.iter().map(ListenerConfig::resolve).collect(),
            None => standard_listeners(default_address()),
        }
    }

    /// A path from the file, resolved against the file's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        resolve_against(&self.path, p)
    }
}

fn resolve_against(config_path: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        config_dir(config_path).join(p)
    }
}

/// The folder holding the config file, absolute when it can be made so.
pub fn config_dir(config_path: &Path) -> PathBuf {
    let parent = config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::path::absolute(&parent).unwrap_or(parent)
}

/// mail.example.com → example.com; a single-label name stays as it is.
pub fn domain_of_host(host: &str) -> String {
    match host.split_once('.') {
        Some((_, rest)) if !rest.is_empty() => rest.to_string(),
        _ => host.to_string(),
    }
}

pub fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty() && valid_hostname(s))
        .unwrap_or_else(|| FALLBACK_HOSTNAME.to_string())
}

/// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
pub fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Reads and checks `path`.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: None,
        column: None,
        key: None,
        message: format!("cannot read: {e}"),
    })?;
    parse(path, &text)
}

pub fn parse(path: &Path, text: &str) -> Result<Loaded, ConfigError> {
    let config: Config = toml::from_str(text).map_err(|e| {
        let span = e.span();
        let key = span.as_ref().and_then(|s| key_at(text, s.start));
        located(path, text, span, key, e.message().to_string())
    })?;
    let mut config = config;
    // `[limits] max_message_size` is the one knob operators look for; `[smtp]` may still override it.
    if !has_key(text, &["smtp", "max_message_size"]) {
        config.smtp.max_message_size =
            usize::try_from(config.limits.max_message_size).unwrap_or(usize::MAX);
    }
    let data_dir = resolve_against(path, &config.server.data_dir);
    let loaded = Loaded {
        path: path.to_path_buf(),
        config,
        data_dir,
    };
    validate(&loaded, text)?;
    Ok(loaded)
}

fn located(
    path: &Path,
    text: &str,
    span: Option<Range<usize>>,
    key: Option<String>,
    message: String,
) -> ConfigError {
    let (line, column) = match span {
        Some(s) => {
            let (l, c) = line_col(text, s.start);
            (Some(l), Some(c))
        }
        None => (None, None),
    };
    ConfigError {
        file: path.to_path_buf(),
        line,
        column,
        key,
        message,
    }
}

/// Semantic checks that serde cannot express; each names the offending key.
fn validate(loaded: &Loaded, text: &str) -> Result<(), ConfigError> {
    let fail = |key: &str, message: String| {
        let span = span_of(text, key);
        located(&loaded.path, text, span, Some(key.to_string()), message)
    };
    let c = &loaded.config;
    if !valid_hostname(&c.server.hostname) {
        return Err(fail(
            "server.hostname",
            format!("`{}` is not a valid host name", c.server.hostname),
        ));
    }
    if let Some(d) = &c.server.primary_domain
        && !valid_hostname(d)
    {
        return Err(fail(
            "server.primary_domain",
            format!("`{d}` is not a valid domain name"),
        ));
    }
    if let Some(url) = &c.store.url
        && !(url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
    {
        return Err(fail(
            "store.url",
            format!("`{url}` is neither a sqlite:// nor a postgres:// URL"),
        ));
    }
    if c.tls.cert.is_some() != c.tls.key.is_some() {
        let key = if c.tls.cert.is_some() {
            "tls.key"
        } else {
            "tls.cert"
        };
        return Err(fail(
            key,
            "tls.cert and tls.key must be given together".to_string(),
        ));
    }
    let limits = &c.limits;
    for (key, v) in [
        ("limits.max_connections", limits.max_connections as u64),
        ("limits.max_per_ip", limits.max_per_ip as u64),
        ("limits.idle_timeout", limits.idle_timeout),
        ("limits.tls_handshake_timeout", limits.tls_handshake_timeout),
        ("limits.max_message_size", limits.max_message_size),
    ] {
        if v == 0 {
            return Err(fail(key, "must be greater than 0".to_string()));
        }
    }
    if limits.max_per_ip > limits.max_connections {
        return Err(fail(
            "limits.max_per_ip",
            format!(
                "{} exceeds limits.max_connections ({})",
                limits.max_per_ip, limits.max_connections
            ),
        ));
    }
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&c.log.level) {
        return Err(fail("log.level", format!("not a valid log filter: {e}")));
    }
    if let Some(list) = &c.listeners {
        let mut seen: Vec<(String, IpAddr, u16)> = Vec::new();
        for (i, l) in list.iter().enumerate() {
            let r = l.resolve();
            if r.name.is_empty() {
                return Err(fail(
                    &format!("listener[{i}].name"),
                    "must not be empty".to_string(),
                ));
            }
            if r.protocol == Protocol::Http && r.tls == ListenerTls::Starttls {
                return Err(fail(
                    &format!("listener[{i}].tls"),
                    "HTTP has no STARTTLS; use tls = \"none\" (http, port 80) or tls = \"implicit\" (https, port 443)".to_string(),
                ));
            }
            if r.protocol == Protocol::Smtp && r.tls == ListenerTls::Implicit {
                return Err(fail(
                    &format!("listener[{i}].tls"),
                    "port 25 SMTP (protocol = \"smtp\") cannot use implicit TLS; use protocol = \"submission\" for port 465".to_string(),
                ));
            }
            for (name, addr, port) in &seen {
                if *name == r.name {
                    return Err(fail(
                        &format!("listener[{i}].name"),
                        format!("listener name `{name}` is used twice"),
                    ));
                }
                if r.port != 0 && *port == r.port && *addr == r.address {
                    return Err(fail(
                        &format!("listener[{i}].port"),
                        format!("{addr}:{port} is used by listener `{name}` too"),
                    ));
                }
            }
            seen.push((r.name, r.address, r.port));
        }
    }
    validate_outbound(&c.outbound, &fail)?;
    validate_http(&c.http, &fail)?;
    validate_acme(loaded, &fail)
}

fn validate_http(
    h: &HttpSection,
    fail: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    for (key, list) in [
        ("http.trusted_proxies", &h.trusted_proxies),
        ("http.metrics_allow", &h.metrics_allow),
    ] {
        for entry in list {
            if entry.parse::<wharf_http::IpNet>().is_err() {
                return Err(fail(
                    key,
                    format!(
                        "`{entry}` is not an IP address or CIDR block (such as 10.0.0.0/8 or ::1)"
                    ),
                ));
            }
        }
    }
    if h.mta_sts.max_age == 0 || h.mta_sts.max_age > 31_557_600 {
        return Err(fail(
            "http.mta_sts.max_age",
            "must be between 1 and 31557600 seconds (RFC 8461)".to_string(),
        ));
    }
    for mx in &h.mta_sts.mx {
        let name = mx.strip_prefix("*.").unwrap_or(mx).to_ascii_lowercase();
        if !valid_hostname(&name) {
            return Err(fail(
                "http.mta_sts.mx",
                format!("`{mx}` is not a host name or *.domain pattern"),
            ));
        }
    }
    Ok(())
}

fn validate_acme(
    loaded: &Loaded,
    fail: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    let a = &loaded.config.acme;
    if !a.enabled {
        return Ok(());
    }
    if !a.directory_url.starts_with("https://") {
        return Err(fail(
            "acme.directory_url",
            format!("`{}` is not an https:// URL", a.directory_url),
        ));
    }
    if let Some(c) = &a.contact {
        let addr = c.strip_prefix("mailto:").unwrap_or(c);
        let ok = addr.rsplit_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && valid_hostname(&domain.to_ascii_lowercase())
        });
        if !ok {
            return Err(fail(
                "acme.contact",
                format!("`{c}` is not an e-mail address"),
            ));
        }
    }
    for n in &a.extra_names {
        if !valid_hostname(&n.trim_end_matches('.').to_ascii_lowercase()) {
            return Err(fail(
                "acme.extra_names",
                format!(
                    "`{n}` is not a host name (wildcards need DNS-01, which Wharf does not do)"
                ),
            ));
        }
    }
    for (key, v) in [
        ("acme.check_interval", a.check_interval),
        ("acme.retry_min", a.retry_min),
        ("acme.retry_max", a.retry_max),
        ("acme.order_timeout", a.order_timeout),
    ] {
        if v == 0 {
            return Err(fail(key, "must be greater than 0".to_string()));
        }
    }
    if a.retry_min > a.retry_max {
        return Err(fail(
            "acme.retry_min",
            format!("{} exceeds acme.retry_max ({})", a.retry_min, a.retry_max),
        ));
    }
    let tls = &loaded.config.tls;
    if tls.cert.is_some() || tls.key.is_some() {
        return Err(fail(
            "acme.enabled",
            "ACME manages the certificate itself; remove tls.cert and tls.key (or set acme.enabled = false)".to_string(),
        ));
    }
    let listeners = loaded.listeners();
    let needed = match a.challenge {
        AcmeChallenge::Http01 => listeners
            .iter()
            .any(|l| l.protocol == Protocol::Http && l.tls == ListenerTls::None),
        AcmeChallenge::TlsAlpn01 => listeners.iter().any(|l| l.tls == ListenerTls::Implicit),
    };
    if !needed {
        let what = match a.challenge {
            AcmeChallenge::Http01 => {
                "challenge \"http-01\" needs a [[listener]] with protocol = \"http\" and tls = \"none\" (port 80)"
            }
            AcmeChallenge::TlsAlpn01 => {
                "challenge \"tls-alpn-01\" needs a [[listener]] with tls = \"implicit\" (port 443)"
            }
        };
        return Err(fail("acme.challenge", what.to_string()));
    }
    Ok(())
}

fn validate_outbound(
    o: &OutboundSection,
    fail: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    if o.retry_schedule.is_empty() {
        return Err(fail(
            "outbound.retry_schedule",
            "needs at least one delay (seconds)".to_string(),
        ));
    }
    if o.retry_schedule.contains(&0) {
        return Err(fail(
            "outbound.retry_schedule",
            "delays must be greater than 0 seconds".to_string(),
        ));
    }
    for (key, v) in [
        ("outbound.max_age", o.max_age),
        ("outbound.max_connections", o.max_connections as u64),
        (
            "outbound.max_connections_per_domain",
            o.max_connections_per_domain as u64,
        ),
        (
            "outbound.max_messages_per_connection",
            o.max_messages_per_connection as u64,
        ),
        ("outbound.poll_interval", o.poll_interval),
        ("outbound.lease", o.lease),
        ("outbound.batch", o.batch as u64),
        ("outbound.dns_timeout", o.dns_timeout),
        ("outbound.mx_port", u64::from(o.mx_port)),
        ("outbound.connect_timeout", o.connect_timeout),
        ("outbound.command_timeout", o.command_timeout),
        ("outbound.data_timeout", o.data_timeout),
    ] {
        if v == 0 {
            return Err(fail(key, "must be greater than 0".to_string()));
        }
    }
    if o.max_connections_per_domain > o.max_connections {
        return Err(fail(
            "outbound.max_connections_per_domain",
            format!(
                "{} exceeds outbound.max_connections ({})",
                o.max_connections_per_domain, o.max_connections
            ),
        ));
    }
    if o.dane && o.dns_server.0.is_empty() {
        // The AD bit of /etc/resolv.conf's server means nothing unless the admin chose it.
        return Err(fail(
            "outbound.dane",
            "needs outbound.dns_server: a DNSSEC-validating resolver you trust (e.g. unbound on 127.0.0.1:53)".to_string(),
        ));
    }
    if let Some(r) = &o.relayhost {
        validate_relay(r, "outbound.relayhost", fail)?;
    }
    for (domain, r) in &o.routes {
        let key = format!("outbound.routes.\"{domain}\"");
        if !valid_hostname(&domain.to_ascii_lowercase()) {
            return Err(fail(&key, format!("`{domain}` is not a valid domain name")));
        }
        validate_relay(r, &key, fail)?;
    }
    Ok(())
}

fn validate_relay(
    r: &RelaySection,
    key: &str,
    fail: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    let host = r.host.trim_start_matches('[').trim_end_matches(']');
    if host.parse::<IpAddr>().is_err() && !valid_hostname(&host.to_ascii_lowercase()) {
        return Err(fail(
            &format!("{key}.host"),
            format!("`{}` is neither a host name nor an IP address", r.host),
        ));
    }
    if r.port == 0 {
        return Err(fail(&format!("{key}.port"), "must not be 0".to_string()));
    }
    if r.password.is_some() && r.password_file.is_some() {
        return Err(fail(
            &format!("{key}.password_file"),
            "give password or password_file, not both".to_string(),
        ));
    }
    let has_secret = r.password.is_some() || r.password_file.is_some();
    if r.username.is_some() != has_secret {
        let k = if r.username.is_some() {
            "password"
        } else {
            "username"
        };
        return Err(fail(
            &format!("{key}.{k}"),
            "username and password (or password_file) must be given together".to_string(),
        ));
    }
    Ok(())
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before
        .get(line_start..)
        .map(|s| s.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

/// Path segments of a key, e.g. `listener[1].port`.
enum Seg {
    Key(String),
    Index(usize),
}

fn join(segs: &[Seg]) -> String {
    let mut out = String::new();
    for s in segs {
        match s {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn contains(span: &Option<Range<usize>>, offset: usize) -> bool {
    span.as_ref()
        .is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
}

/// The dotted key whose name or value covers `offset` in the document.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut segs = Vec::new();
    if find_in_table(doc.as_table(), offset, &mut segs) {
        Some(join(&segs))
    } else {
        None
    }
}

fn find_in_table(table: &toml_edit::Table, offset: usize, segs: &mut Vec<Seg>) -> bool {
    for (k, item) in table.iter() {
        segs.push(Seg::Key(k.to_string()));
        let key_span = table.key(k).and_then(toml_edit::Key::span);
        if contains(&key_span, offset) || find_in_item(item, offset, segs) {
            return true;
        }
        segs.pop();
    }
    false
}

fn find_in_item(item: &toml_edit::Item, offset: usize, segs: &mut Vec<Seg>) -> bool {
    match item {
        toml_edit::Item::Table(t) => find_in_table(t, offset, segs) || contains(&t.span(), offset),
        toml_edit::Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                segs.push(Seg::Index(i));
                if find_in_table(t, offset, segs) || contains(&t.span(), offset) {
                    return true;
                }
                segs.pop();
            }
            false
        }
        toml_edit::Item::Value(v) => find_in_value(v, offset, segs),
        toml_edit::Item::None => false,
    }
}

fn find_in_value(v: &toml_edit::Value, offset: usize, segs: &mut Vec<Seg>) -> bool {
    match v {
        toml_edit::Value::InlineTable(t) => {
            for (k, val) in t.iter() {
                segs.push(Seg::Key(k.to_string()));
                let key_span = t.key(k).and_then(toml_edit::Key::span);
                if contains(&key_span, offset) || find_in_value(val, offset, segs) {
                    return true;
                }
                segs.pop();
            }
            contains(&t.span(), offset)
        }
        toml_edit::Value::Array(a) => {
            for (i, val) in a.iter().enumerate() {
                segs.push(Seg::Index(i));
                if find_in_value(val, offset, segs) {
                    return true;
                }
                segs.pop();
            }
            contains(&a.span(), offset)
        }
        other => contains(&other.span(), offset),
    }
}

fn has_key(text: &str, path: &[&str]) -> bool {
    let Ok(doc) = toml_edit::ImDocument::parse(text) else {
        return false;
    };
    let mut item = doc.as_item();
    for part in path {
        match item.get(part) {
            Some(next) => item = next,
            None => return false,
        }
    }
    true
}

/// Where a dotted key (as produced by `join`) is written, for errors found after deserialising.
/// A key left to its default points at the table that would hold it.
fn span_of(text: &str, path: &str) -> Option<Range<usize>> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut table: &dyn toml_edit::TableLike = doc.as_table();
    let mut span = None;
    for part in path.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let Some((key, item)) = table.get_key_value(name) else {
            break;
        };
        span = key.span().or(span);
        match index {
            Some(i) => {
                let Some(t) = item.as_array_of_tables().and_then(|a| a.get(i)) else {
                    break;
                };
                span = t.span().or(span);
                table = t;
            }
            None => match item.as_table_like() {
                Some(t) => table = t,
                None => break,
            },
        }
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match parse(Path::new("/etc/wharf.toml"), text) {
            Ok(_) => panic!("expected an error for {text:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_give_nine_standard_listeners() {
        let l = parse(Path::new("/x/wharf.toml"), "").expect("empty config is valid");
        let ports: Vec<u16> = l.listeners().iter().map(|l| l.port).collect();
        assert_eq!(ports, vec![25, 587, 465, 143, 993, 110, 995, 80, 443]);
        let names: Vec<String> = l.listeners().into_iter().map(|l| l.name).collect();
        assert_eq!(names[7..], ["http", "https"]);
        assert_eq!(l.data_dir, PathBuf::from("/x/data"));
        assert_eq!(l.store_url(), "sqlite:///x/data/wharf.db");
        assert_eq!(l.blob_dir(), PathBuf::from("/x/data/blobs"));
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let e = err("[server]\nhostname = \"mail.example.com\"\n\n[limits]\nmax_conections = 5\n");
        assert!(
            e.starts_with("/etc/wharf.toml:5:1: key `limits.max_conections`"),
            "{e}"
        );
        assert!(e.contains("unknown field"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn bad_value_names_line_and_key() {
        let e = err("[limits]\nmax_per_ip = \"many\"\n");
        assert!(
            e.starts_with("/etc/wharf.toml:2:14: key `limits.max_per_ip`"),
            "{e}"
        );
    }

    #[test]
    fn bad_listener_value_names_index() {
        let e = err(
            "[[listener]]\nprotocol = \"imap\"\n[[listener]]\nprotocol = \"gopher\"\nport = 70\n",
        );
        assert!(
            e.starts_with("/etc/wharf.toml:4:12: key `listener[1].protocol`"),
            "{e}"
        );
        let e = err("[[listener]]\nprotocol = \"imap\"\nport = 70000\n");
        assert!(e.contains(":3:8: key `listener[0].port`"), "{e}");
    }

    #[test]
    fn semantic_errors_name_the_key() {
        let e = err("[limits]\nmax_connections = 0\n");
        assert!(
            e.starts_with("/etc/wharf.toml:2:1: key `limits.max_connections`"),
            "{e}"
        );
        let e = err(
            "[[listener]]\nprotocol = \"imap\"\n[[listener]]\nname = \"imap\"\nprotocol = \"pop3\"\n",
        );
        assert!(e.contains(":4:1: key `listener[1].name`"), "{e}");
        let e = err("[server]\nhostname = \"bad host\"\n");
        assert!(e.contains(":2:1: key `server.hostname`"), "{e}");
    }

    #[test]
    fn message_size_limit_reaches_smtp_unless_smtp_sets_it() {
        let l = parse(Path::new("/w.toml"), "[limits]\nmax_message_size = 1000\n").unwrap();
        assert_eq!(l.config.smtp.max_message_size, 1000);
        let l = parse(
            Path::new("/w.toml"),
            "[limits]\nmax_message_size = 1000\n[smtp]\nmax_message_size = 2000\n",
        )
        .unwrap();
        assert_eq!(l.config.smtp.max_message_size, 2000);
        let e = err("[smtp]\nmax_recipeints = 5\n");
        assert!(e.contains(":2:1: key `smtp.max_recipeints`"), "{e}");
        let e = err("[imap]\nbogus = 1\n");
        assert!(e.contains(":2:1: key `imap.bogus`"), "{e}");
        let e = err("[pop3]\nmax_errors = -1\n");
        assert!(e.contains(":2:14: key `pop3.max_errors`"), "{e}");
    }

    #[test]
    fn directory_defaults_match_the_documented_ones() {
        let d = DirectorySection::default();
        assert_eq!(
            (
                d.auth_fail_delay_base,
                d.auth_fail_max_delay,
                d.auth_lockout,
                d.credential_cache_ttl
            ),
            (1, 30, 900, 300)
        );
        assert_eq!(
            (
                d.auth_ip_lockout_after,
                d.auth_account_lockout_after,
                d.min_password_len
            ),
            (10, 20, 10)
        );
    }

    #[test]
    fn outbound_errors_name_the_key() {
        let e = err("[outbound]\nretry_schedule = []\n");
        assert!(e.contains(":2:1: key `outbound.retry_schedule`"), "{e}");
        let e = err("[outbound]\nretry_shedule = [1]\n");
        assert!(e.contains(":2:1: key `outbound.retry_shedule`"), "{e}");
        let e = err("[outbound]\ntls = \"sometimes\"\n");
        assert!(e.contains(":2:7: key `outbound.tls`"), "{e}");
        let e = err("[outbound]\ndane = true\n");
        assert!(e.contains("key `outbound.dane`"), "{e}");
        let e = err("[outbound]\ndns_server = \"localhost\"\n");
        assert!(e.contains("key `outbound.dns_server`"), "{e}");
        let e = err("[outbound.relayhost]\nhost = \"relay.test\"\nusername = \"u\"\n");
        assert!(e.contains("key `outbound.relayhost.password`"), "{e}");
        let e = err("[outbound.relayhost]\nhots = \"relay.test\"\n");
        assert!(e.contains(":2:1: key `outbound.relayhost.hots`"), "{e}");
        let e = err("[outbound]\nmax_connections = 2\nmax_connections_per_domain = 3\n");
        assert!(
            e.contains(":3:1: key `outbound.max_connections_per_domain`"),
            "{e}"
        );
        let l = parse(
            Path::new("/w.toml"),
            "[outbound]\ndns_server = [\"127.0.0.1:53\", \"[::1]:5353\"]\n",
        )
        .unwrap();
        assert_eq!(l.config.outbound.dns_server.0.len(), 2);
    }

    #[test]
    fn http_listeners_and_sections() {
        let l = parse(
            Path::new("/w.toml"),
            "[[listener]]\nprotocol = \"http\"\n[[listener]]\nprotocol = \"http\"\ntls = \"implicit\"\n\
             [http]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\nmetrics = false\n\
             [http.mta_sts]\nmode = \"enforce\"\nmax_age = 86400\nmx = [\"*.example.org\"]\n",
        )
        .unwrap();
        let ls = l.listeners();
        assert_eq!(
            (ls[0].name.as_str(), ls[0].port, ls[0].tls),
            ("http", 80, ListenerTls::None)
        );
        assert_eq!((ls[1].name.as_str(), ls[1].port), ("https", 443));
        assert!(!l.config.http.metrics);
        assert_eq!(l.config.http.mta_sts.mode, wharf_http::MtaStsMode::Enforce);
        assert!(!l.config.acme.enabled);

        let e = err("[[listener]]\nprotocol = \"http\"\ntls = \"starttls\"\n");
        assert!(
            e.contains("key `listener[0].tls`") && e.contains("no STARTTLS"),
            "{e}"
        );
        let e = err("[http]\ntrusted_proxies = [\"10.0.0.0/40\"]\n");
        assert!(e.contains(":2:1: key `http.trusted_proxies`"), "{e}");
        let e = err("[http]\nmetrics_allow = [\"localhost\"]\n");
        assert!(e.contains("key `http.metrics_allow`"), "{e}");
        let e = err("[http]\nmetrcs = true\n");
        assert!(e.contains(":2:1: key `http.metrcs`"), "{e}");
        let e = err("[http.mta_sts]\nmode = \"strict\"\n");
        assert!(e.contains("key `http.mta_sts.mode`"), "{e}");
        let e = err("[http.advertise]\nimapz = 993\n");
        assert!(e.contains(":2:1: key `http.advertise.imapz`"), "{e}");
        let l = parse(
            Path::new("/w.toml"),
            "[http.advertise]\nimaps = 993\npop3 = 0\n",
        )
        .unwrap();
        assert_eq!(l.config.http.advertise.imaps, Some(993));
        assert_eq!(l.config.http.advertise.pop3, Some(0));
        assert_eq!(l.config.http.advertise.imap, None);
        let e = err("[http.mta_sts]\nmax_age = 40000000\n");
        assert!(e.contains("key `http.mta_sts.max_age`"), "{e}");
    }

    #[test]
    fn acme_section() {
        let l = parse(
            Path::new("/w.toml"),
            "[acme]\nenabled = true\ndirectory_url = \"https://127.0.0.1:14000/dir\"\ncontact = \"postmaster@example.org\"\n\
             challenge = \"tls-alpn-01\"\nextra_names = [\"webmail.example.org\"]\nca_file = \"ca.pem\"\nrenew_before = 86400\n",
        )
        .unwrap();
        let a = &l.config.acme;
        assert_eq!(a.challenge, AcmeChallenge::TlsAlpn01);
        assert_eq!(a.renew_before, Some(86400));
        assert_eq!(a.directory_url, "https://127.0.0.1:14000/dir");
        // Off by default, and then nothing about it is checked.
        let l = parse(Path::new("/w.toml"), "[acme]\ndirectory_url = \"x\"\n").unwrap();
        assert!(!l.config.acme.enabled);
        assert_eq!(AcmeSection::default().directory_url, LETS_ENCRYPT);

        let e = err("[acme]\nenabled = true\nchallenge = \"dns-01\"\n");
        assert!(e.contains(":3:13: key `acme.challenge`"), "{e}");
        let e = err("[acme]\nenabled = true\ndirectory_url = \"http://ca.test/dir\"\n");
        assert!(e.contains(":3:1: key `acme.directory_url`"), "{e}");
        let e = err("[acme]\nenabled = true\ncontact = \"nobody\"\n");
        assert!(e.contains("key `acme.contact`"), "{e}");
        let e = err("[acme]\nenabled = true\nrenw_before = 3\n");
        assert!(e.contains(":3:1: key `acme.renw_before`"), "{e}");
        let e = err("[acme]\nenabled = true\n[[listener]]\nprotocol = \"imap\"\n");
        assert!(
            e.contains("key `acme.challenge`") && e.contains("protocol = \"http\""),
            "{e}"
        );
        let e = err("[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n[acme]\nenabled = true\n");
        assert!(e.contains("key `acme.enabled`"), "{e}");
    }

    #[test]
    fn domain_defaults_from_hostname() {
        assert_eq!(domain_of_host("mail.example.com"), "example.com");
        assert_eq!(domain_of_host("localhost"), "localhost");
        assert_eq!(domain_of_host("host.lan"), "lan");
    }
}
