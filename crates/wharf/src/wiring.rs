//! Turns the loaded configuration into the library objects: store and directory settings, and
//! one protocol handler per listener.

use std::sync::Arc;
use std::time::Duration;

use wharf_directory::Directory;
use wharf_net::Handler;

use crate::config::{Listener, Loaded, Protocol};

pub fn net_limits(cfg: &Loaded) -> wharf_net::Limits {
    let l = &cfg.config.limits;
    wharf_net::Limits {
        max_connections: l.max_connections,
        max_per_ip: l.max_per_ip,
        idle_timeout: Duration::from_secs(l.idle_timeout),
        tls_handshake_timeout: Duration::from_secs(l.tls_handshake_timeout),
    }
}

/// The defences against clients that hold connections without using them (`[limits]`).
pub fn session_guards(cfg: &Loaded) -> wharf_net::SessionGuards {
    let l = &cfg.config.limits;
    wharf_net::SessionGuards {
        pre_auth_timeout: Duration::from_secs(l.pre_auth_timeout),
        min_bulk_rate: l.min_data_rate,
        bulk_rate_window: Duration::from_secs(l.min_data_rate_window),
        shed_unauthenticated: l.shed_unauthenticated,
    }
}

/// What every protocol service is built from.
pub struct Ctx {
    pub hostname: String,
    pub directory: Directory,
    /// Where SMTP sessions hand mail for remote recipients (the outbound queue).
    pub handoff: Arc<dyn wharf_smtp::RemoteHandoff>,
    /// The trust checks and spam filter of port-25 mail (`[inbound]`, `[spam]`), swapped by a
    /// reload; with both off its verdict adds nothing.
    pub arrival: Option<Arc<dyn wharf_smtp::ArrivalCheck>>,
    /// Local delivery through users' Sieve scripts (`[sieve] enabled`); `None`: straight into
    /// the store.
    pub local_delivery: Option<Arc<dyn wharf_smtp::LocalDelivery>>,
    /// Reverses the SRS addresses of redirected mail (bounces on port 25).
    pub srs: Option<wharf_smtp::srs::Srs>,
    /// Every SMTP service `handler` built, for a reload to hand them new `[smtp]` settings.
    pub smtp: std::sync::Mutex<Vec<Arc<wharf_smtp::SmtpService>>>,
}

/// `[smtp]` as the services get it (message content waiting for its end goes under the data
/// folder: same disk as the store, not a tmpfs that would turn it back into memory).
pub fn smtp_config(cfg: &Loaded) -> wharf_smtp::SmtpConfig {
    let mut smtp = cfg.config.smtp.clone();
    smtp.spool_dir
        .get_or_insert_with(|| cfg.data_dir.join("spool"));
    smtp
}

/// The protocol service answering on `listener`; `None` for HTTP, whose one service
/// `http_wiring` builds once the mail listeners are bound (it advertises their ports).
pub fn handler(listener: &Listener, ctx: &Ctx, cfg: &Loaded) -> Option<Arc<dyn Handler>> {
    let c = &cfg.config;
    let smtp = smtp_config(cfg);
    let keep = |svc: wharf_smtp::SmtpService| -> Arc<dyn Handler> {
        let svc = Arc::new(svc);
        ctx.smtp
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(svc.clone());
        svc
    };
    // As for SMTP: under the data folder.
    let mut imap = c.imap.clone();
    imap.spool_dir
        .get_or_insert_with(|| cfg.data_dir.join("spool"));
    Some(match listener.protocol {
        Protocol::Http => return None,
        Protocol::Smtp => {
            let mut svc = wharf_smtp::SmtpService::new(
                smtp,
                ctx.hostname.clone(),
                ctx.directory.clone(),
                wharf_smtp::SmtpRole::Mx,
            )
            .with_handoff(ctx.handoff.clone());
            if let Some(check) = &ctx.arrival {
                svc = svc.with_arrival_check(check.clone());
            }
            if let Some(d) = &ctx.local_delivery {
                svc = svc.with_local_delivery(d.clone());
            }
            if let Some(srs) = &ctx.srs {
                svc = svc.with_srs(srs.clone());
            }
            keep(svc)
        }
        Protocol::Submission => {
            let mut svc = wharf_smtp::SmtpService::new(
                smtp,
                ctx.hostname.clone(),
                ctx.directory.clone(),
                wharf_smtp::SmtpRole::Submission,
            )
            .with_handoff(ctx.handoff.clone());
            if let Some(d) = &ctx.local_delivery {
                svc = svc.with_local_delivery(d.clone());
            }
            keep(svc)
        }
        Protocol::Imap => Arc::new(wharf_imap::ImapService::new(
            imap,
            ctx.hostname.clone(),
            ctx.directory.clone(),
        )),
        Protocol::Pop3 => Arc::new(wharf_pop3::Pop3Service::new(
            c.pop3.clone(),
            ctx.hostname.clone(),
            ctx.directory.clone(),
        )),
        Protocol::Managesieve => {
            let mut ms = c.managesieve.clone();
            // One bound for both ways in: the CLI and delivery read `[sieve]`.
            ms.max_script_size = ms
                .max_script_size
                .min(u64::try_from(c.sieve.max_script_bytes).unwrap_or(u64::MAX));
            ms.max_scripts = ms
                .max_scripts
                .min(u32::try_from(c.sieve.max_scripts).unwrap_or(u32::MAX));
            ms.max_redirects = u32::try_from(c.sieve.max_redirects).unwrap_or(u32::MAX);
            Arc::new(wharf_managesieve::ManageSieveService::new(
                ms,
                ctx.hostname.clone(),
                ctx.directory.clone(),
                Arc::new(SieveChecker {
                    limits: wharf_sieve::CompileLimits {
                        max_script_bytes: c.sieve.max_script_bytes,
                        ..Default::default()
                    },
                }),
            ))
        }
    })
}

/// ManageSieve's CHECKSCRIPT/PUTSCRIPT go through the same compiler as delivery.
struct SieveChecker {
    limits: wharf_sieve::CompileLimits,
}

impl wharf_managesieve::ScriptChecker for SieveChecker {
    fn extensions(&self) -> String {
        wharf_sieve::CAPABILITIES.join(" ")
    }
    fn check(&self, source: &str) -> Result<(), String> {
        wharf_sieve::compile(source, &self.limits)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// The outbound library's settings from `[outbound]`: queue, SMTP client, router.
pub struct OutboundSettings {
    pub queue: wharf_outbound::QueueConfig,
    pub client: wharf_outbound::ClientConfig,
    pub router: wharf_outbound::route::RouterConfig,
}

/// What certificates of other servers must chain to: the system bundle plus `[outbound] ca_file`
/// (receiving MXs, MTA-STS policy hosts, TLS-RPT report endpoints).
pub fn outbound_anchors(cfg: &Loaded) -> anyhow::Result<wharf_outbound::TrustAnchors> {
    let anchors = wharf_outbound::TrustAnchors::system();
    match &cfg.config.outbound.ca_file {
        Some(file) => anchors
            .with_pem_file(&cfg.resolve(file))
            .map_err(|e| anyhow::anyhow!("outbound.ca_file: {e}")),
        None => Ok(anchors),
    }
}

pub fn outbound_settings(cfg: &Loaded, hostname: &str) -> anyhow::Result<OutboundSettings> {
    use anyhow::Context as _;
    use wharf_outbound::route::{Relay, RouterConfig};
    use wharf_outbound::{ClientConfig, QueueConfig};

    let o = &cfg.config.outbound;
    let mut queue = QueueConfig::new(hostname);
    queue.retry_schedule = o
        .retry_schedule
        .iter()
        .map(|s| Duration::from_secs(*s))
        .collect();
    queue.max_age = Duration::from_secs(o.max_age);
    queue.delay_warning = (o.delay_warning > 0).then(|| Duration::from_secs(o.delay_warning));
    queue.max_connections = o.max_connections;
    queue.max_connections_per_domain = o.max_connections_per_domain;
    queue.max_messages_per_connection = o.max_messages_per_connection;
    queue.poll_interval = Duration::from_secs(o.poll_interval);
    queue.lease = Duration::from_secs(o.lease);
    queue.batch = o.batch;

    let anchors = outbound_anchors(cfg)?;
    let mut client = ClientConfig::new(hostname);
    client.tls = o.tls;
    client.anchors = anchors.clone();
    client.connect_timeout = Duration::from_secs(o.connect_timeout);
    client.command_timeout = Duration::from_secs(o.command_timeout);
    client.data_timeout = Duration::from_secs(o.data_timeout);

    let relay = |key: &str, r: &crate::config::RelaySection| -> anyhow::Result<Relay> {
        let password = match (&r.password, &r.password_file) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(file)) => {
                let path = cfg.resolve(file);
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("{key}.password_file {}", path.display()))?;
                let line = text.lines().next().unwrap_or_default().to_string();
                if line.is_empty() {
                    anyhow::bail!("{key}.password_file {}: empty", path.display());
                }
                Some(line)
            }
            (None, None) => None,
        };
        let credentials = match (&r.username, password) {
            (Some(username), Some(password)) => Some(wharf_outbound::Credentials {
                username: username.clone(),
                password,
            }),
            _ => None,
        };
        Ok(Relay {
            host: r.host.clone(),
            port: r.port,
            credentials,
            tls: r.tls,
        })
    };
    let mut router = RouterConfig {
        nameservers: o.dns_server.0.clone(),
        smtp_port: o.mx_port,
        dns_timeout: Duration::from_secs(o.dns_timeout),
        dane: o.dane,
        ..RouterConfig::default()
    };
    router.relayhost = match &o.relayhost {
        Some(r) => Some(relay("outbound.relayhost", r)?),
        None => None,
    };
    for (domain, r) in &o.routes {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let key = format!("outbound.routes.\"{domain}\"");
        router.overrides.insert(domain, relay(&key, r)?);
    }
    router.mta_sts = if o.mta_sts {
        Some(wharf_outbound::mta_sts::MtaStsConfig {
            anchors,
            ..Default::default()
        })
    } else {
        None
    };
    Ok(OutboundSettings {
        queue,
        client,
        router,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn outbound_section_maps_onto_the_library() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("relay.pw"), "s3cret\n").unwrap();
        let text = "[outbound]\nretry_schedule = [1, 2]\nmax_age = 30\ndelay_warning = 0\n\
            dns_server = \"127.0.0.1:5353\"\nmx_port = 2525\nmta_sts = false\ndane = true\ntls = \"required\"\n\
            [outbound.relayhost]\nhost = \"smtp.example.net\"\nport = 587\nusername = \"u\"\npassword_file = \"relay.pw\"\n\
            [outbound.routes.\"Example.ORG\"]\nhost = \"[127.0.0.1]\"\nport = 2526\ntls = \"disabled\"\n";
        let cfg = crate::config::parse(&dir.path().join("wharf.toml"), text).unwrap();
        let s = super::outbound_settings(&cfg, "mail.a.test").unwrap();
        let secs: Vec<u64> = s.queue.retry_schedule.iter().map(|d| d.as_secs()).collect();
        assert_eq!(secs, [1, 2]);
        assert_eq!(s.queue.max_age.as_secs(), 30);
        assert_eq!(s.queue.delay_warning, None);
        assert_eq!(s.queue.hostname, "mail.a.test");
        assert_eq!(s.client.tls, wharf_outbound::TlsPolicy::Required);
        assert_eq!(s.router.nameservers, ["127.0.0.1:5353".parse().unwrap()]);
        assert_eq!(s.router.smtp_port, 2525);
        assert!(s.router.mta_sts.is_none());
        assert!(s.router.dane);
        let relay = s.router.relayhost.unwrap();
        assert_eq!((relay.host.as_str(), relay.port), ("smtp.example.net", 587));
        let cred = relay.credentials.unwrap();
        assert_eq!(
            (cred.username.as_str(), cred.password.as_str()),
            ("u", "s3cret")
        );
        let route = &s.router.overrides["example.org"];
        assert_eq!(route.port, 2526);
        assert_eq!(route.tls, Some(wharf_outbound::TlsPolicy::Disabled));

        let defaults = crate::config::parse(Path::new("/x/wharf.toml"), "").unwrap();
        let d = super::outbound_settings(&defaults, "h.test").unwrap();
        assert_eq!(d.queue.max_age.as_secs(), 5 * 24 * 3600);
        assert_eq!(d.queue.delay_warning.map(|d| d.as_secs()), Some(4 * 3600));
        assert_eq!(d.router.smtp_port, 25);
        assert!(d.router.nameservers.is_empty() && d.router.relayhost.is_none());
        assert!(d.router.mta_sts.is_some());
        assert!(!d.router.dane, "DANE is off unless asked for");
        assert_eq!(d.client.tls, wharf_outbound::TlsPolicy::Opportunistic);
    }
}
