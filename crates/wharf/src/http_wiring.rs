//! The binary's HTTP side: the Prometheus recorder behind `/metrics`, the `[http]` section
//! turned into the wharf-http service (advertised ports taken from the bound mail listeners,
//! host name from `[server]`), and the ACME manager from `[acme]`, whose HTTP-01 answers that
//! service serves and whose TLS-ALPN-01 answers every implicit-TLS listener gives through the
//! shared `TlsProvider`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};
use wharf_acme::{AcmeManager, AcmeSettings, AcmeState, ChallengeKind, Http01Challenges};
use wharf_directory::Directory;
use wharf_net::{Handler, TlsProvider};

use crate::config::{AcmeChallenge, AdvertiseSection, Listener, Loaded};

/// What `serve` keeps for the HTTP listeners and the certificate manager.
pub struct Web {
    metrics: Option<PrometheusHandle>,
    acme: Option<AcmeManager>,
    http01: Option<Http01Challenges>,
    acme_task: Option<(watch::Sender<bool>, JoinHandle<()>)>,
}

impl Web {
    /// Runs before any listener is bound: the recorder must be global before the first
    /// connection is counted, and a stored ACME certificate must be in service before the
    /// first handshake.
    ///
    /// `acme_state`: where the ACME account and certificate are (the store, shared by nodes).
    pub async fn prepare(
        cfg: &Loaded,
        tls: &TlsProvider,
        directory: &Directory,
        acme_state: Option<Arc<crate::acme_state::StoreAcmeState>>,
    ) -> Result<Web> {
        let metrics = cfg.config.http.metrics.then(wharf_http::install_metrics);
        let acme = if cfg.config.acme.enabled {
            let domains: Vec<String> = directory
                .store()
                .list_domains()
                .await
                .context("ACME: cannot list the local domains")?
                .into_iter()
                .map(|d| d.name)
                .collect();
            let settings = acme_settings(cfg, &domains);
            info!(
                names = ?settings.names,
                directory = %settings.directory_url,
                challenge = settings.challenge.as_str(),
                "ACME: managing the certificate"
            );
            let Some(state) = acme_state else {
                bail!("ACME: no state to keep the account and certificate in");
            };
            // State files of an earlier version become the store's.
            state.import_files(&acme_dir(cfg)).await?;
            let manager = AcmeManager::with_state(settings, tls.clone(), state);
            manager.install_stored().await;
            Some(manager)
        } else {
            None
        };
        let http01 = acme.as_ref().map(AcmeManager::http01);
        Ok(Web {
            metrics,
            acme,
            http01,
            acme_task: None,
        })
    }

    /// The one service every `protocol = "http"` listener runs. `bound` holds the mail
    /// listeners already bound, so port 0 and `--port-offset` advertise the real ports.
    pub fn handler(
        &self,
        cfg: &Loaded,
        bound: &[(Listener, SocketAddr)],
        directory: &Directory,
        queue: Arc<dyn wharf_store::queue::QueueStore>,
        reloader: &Arc<crate::reload::Reloader>,
    ) -> Result<Arc<dyn Handler>> {
        let h = &cfg.config.http;
        let config = wharf_http::HttpConfig {
            hostname: cfg.config.server.hostname.clone(),
            ports: advertised_ports(bound, &h.advertise),
            trusted_proxies: h.trusted_proxies.clone(),
            mta_sts: h.mta_sts.clone(),
            metrics: h.metrics,
            metrics_allow: h.metrics_allow.clone(),
        };
        let mut state = wharf_http::HttpState::new(directory.clone(), config)
            .map_err(|e| anyhow!("{}: {e}", cfg.path.display()))?;
        if let Some(handle) = &self.metrics {
            state = state.with_metrics(handle.clone());
        }
        // The admin REST API (`/api/v1`, docs/api.md): the same operations as the CLI verbs.
        state = state.with_admin_api(Arc::new(
            crate::api_backend::ApiBackend::new(Arc::new(cfg.clone()), directory.clone(), queue)
                .with_reloader(reloader.clone()),
        ));
        if let Some(http01) = &self.http01 {
            let http01 = http01.clone();
            state = state.with_acme_challenges(Arc::new(move |token: &str| http01.get(token)));
        }
        Ok(Arc::new(wharf_http::HttpHandler::new(wharf_http::router(
            state,
        ))))
    }

    /// Starts ordering/renewing once the listeners accept (the CA's validation connects to them).
    pub fn start_acme(&mut self) {
        if let Some(manager) = self.acme.take() {
            let (tx, mut rx) = watch::channel(false);
            let task = tokio::spawn(manager.run(async move {
                let _ = rx.wait_for(|v| *v).await;
            }));
            self.acme_task = Some((tx, task));
        }
    }

    /// Stops the certificate manager (an order in progress is abandoned; the CA lets it expire).
    pub async fn stop(&mut self) {
        if let Some((tx, task)) = self.acme_task.take() {
            tx.send_replace(true);
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                warn!("ACME: manager did not stop in 5s");
            }
        }
    }
}

/// `[acme]` as the acme crate's settings; state in `<data_dir>/acme`.
pub fn acme_settings(cfg: &Loaded, domains: &[String]) -> AcmeSettings {
    let a = &cfg.config.acme;
    let names = wharf_acme::certificate_names(&cfg.config.server.hostname, domains, &a.extra_names);
    let mut s = AcmeSettings::new(a.directory_url.clone(), names, acme_dir(cfg));
    s.contact = a
        .contact
        .iter()
        .map(|c| {
            if c.starts_with("mailto:") {
                c.clone()
            } else {
                format!("mailto:{c}")
            }
        })
        .collect();
    s.challenge = match a.challenge {
        AcmeChallenge::Http01 => ChallengeKind::Http01,
        AcmeChallenge::TlsAlpn01 => ChallengeKind::TlsAlpn01,
    };
    s.ca_root = a.ca_file.as_ref().map(|p| cfg.resolve(p));
    s.renew_margin = a.renew_before.map(Duration::from_secs);
    s.check_interval = Duration::from_secs(a.check_interval);
    s.retry_min = Duration::from_secs(a.retry_min);
    s.retry_max = Duration::from_secs(a.retry_max);
    s.order_timeout = Duration::from_secs(a.order_timeout);
    s
}

fn acme_dir(cfg: &Loaded) -> PathBuf {
    cfg.data_dir.join("acme")
}

/// The first bound listener of each kind, unless `[http.advertise]` says otherwise;
/// plaintext-only (`tls = "none"`) mail listeners are never advertised, since clients would
/// send passwords in the clear.
fn advertised_ports(
    bound: &[(Listener, SocketAddr)],
    over: &AdvertiseSection,
) -> wharf_http::AdvertisedPorts {
    crate::dns_records::ports_by_kind(
        bound
            .iter()
            .map(|(l, addr)| (l.protocol, l.tls, addr.port())),
        over,
    )
}

/// A reload (`trigger`: SIGHUP, API): the configured (or generated) certificate files, or with
/// ACME the stored ACME certificate, so a reload never replaces an ACME certificate by the
/// self-signed one. Logged here; an error keeps the old certificate and is returned for the
/// reload's report.
///
/// `acme_state`: the store's ACME state when `[acme]` is on. Runs on a blocking thread of the
/// runtime (the reload's), so the store can be awaited.
pub fn reload_tls(
    tls: &TlsProvider,
    cfg: &Loaded,
    trigger: &str,
    acme_state: Option<&crate::acme_state::StoreAcmeState>,
) -> Result<(), String> {
    if cfg.config.acme.enabled {
        let Some(state) = acme_state else {
            return Err("ACME certificate: no ACME state".to_string());
        };
        let stored = tokio::runtime::Handle::current().block_on(state.load_certificate());
        return match stored {
            Ok(Some((chain, key))) => match tls.reload_from_pem(chain.as_bytes(), key.as_bytes()) {
                Ok(()) => {
                    info!("{trigger}: ACME certificate reloaded");
                    Ok(())
                }
                Err(e) => {
                    error!("{trigger}: ACME certificate reload failed, keeping the old one: {e}");
                    Err(format!("ACME certificate: {e}"))
                }
            },
            Ok(None) => {
                info!("{trigger}: no ACME certificate yet; keeping the current one");
                Ok(())
            }
            Err(e) => {
                error!("{trigger}: ACME certificate unreadable, keeping the old one: {e}");
                Err(format!("ACME certificate: {e}"))
            }
        };
    }
    let (cert, key, _) = cfg.tls_paths();
    match tls.reload_from_pem_files(&cert, &key) {
        Ok(()) => {
            info!(cert = %cert.display(), "{trigger}: certificate reloaded");
            Ok(())
        }
        // A bad new certificate must not take the server down: keep the old one.
        Err(e) => {
            error!(cert = %cert.display(), "{trigger}: certificate reload failed, keeping the old one: {e}");
            Err(format!("{}: {e}", cert.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::config::{ListenerTls, Protocol};

    #[test]
    fn advertised_ports_come_from_the_first_bound_listener_of_each_kind() {
        let l = |protocol, tls, port| {
            (
                Listener {
                    name: format!("{protocol}-{port}"),
                    address: IpAddr::V4(Ipv4Addr::LOCALHOST),
                    port: 0,
                    protocol,
                    tls,
                    proxy_protocol: false,
                },
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            )
        };
        let bound = [
            l(Protocol::Smtp, ListenerTls::Starttls, 2525),
            l(Protocol::Imap, ListenerTls::Implicit, 10993),
            l(Protocol::Imap, ListenerTls::Implicit, 20993),
            l(Protocol::Pop3, ListenerTls::None, 10110),
            l(Protocol::Submission, ListenerTls::Starttls, 10587),
        ];
        let p = advertised_ports(&bound, &AdvertiseSection::default());
        assert_eq!(
            (
                p.imaps,
                p.imap,
                p.pop3s,
                p.pop3,
                p.submissions,
                p.submission
            ),
            (10993, 0, 0, 0, 0, 10587)
        );
        // Behind NAT: the public ports, and a port withdrawn with 0.
        let over = AdvertiseSection {
            imaps: Some(993),
            submission: Some(0),
            pop3s: Some(995),
            ..AdvertiseSection::default()
        };
        let p = advertised_ports(&bound, &over);
        assert_eq!(
            (
                p.imaps,
                p.imap,
                p.pop3s,
                p.pop3,
                p.submissions,
                p.submission
            ),
            (993, 0, 995, 0, 0, 0)
        );
    }

    #[test]
    fn acme_settings_from_the_section() {
        let cfg = crate::config::parse(
            std::path::Path::new("/srv/w/wharf.toml"),
            "[server]\nhostname = \"mail.example.org\"\n[acme]\nenabled = true\ncontact = \"ops@example.org\"\n\
             challenge = \"tls-alpn-01\"\nextra_names = [\"webmail.example.org\"]\nca_file = \"ca.pem\"\n\
             renew_before = 600\nretry_min = 1\nretry_max = 2\n",
        )
        .unwrap();
        let s = acme_settings(&cfg, &["example.org".to_string()]);
        assert_eq!(
            s.names,
            [
                "mail.example.org",
                "autoconfig.example.org",
                "mta-sts.example.org",
                "webmail.example.org"
            ]
        );
        assert_eq!(s.contact, ["mailto:ops@example.org"]);
        assert_eq!(s.challenge, ChallengeKind::TlsAlpn01);
        assert_eq!(s.ca_root, Some(PathBuf::from("/srv/w/ca.pem")));
        assert_eq!(s.renew_margin, Some(Duration::from_secs(600)));
        assert_eq!(s.state_dir, PathBuf::from("/srv/w/data/acme"));
        assert_eq!((s.retry_min.as_secs(), s.retry_max.as_secs()), (1, 2));
    }
}
