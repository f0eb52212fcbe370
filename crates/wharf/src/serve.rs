//! `wharf serve`: start-up (config, data folder, certificate, first-run account via `first_run`),
//! binding every listener, the `ready` line, and the signal loop (SIGTERM/SIGINT drain, SIGHUP
//! reloads the configuration through `reload`).

use std::fmt::Write as _;
use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio::signal::unix::{SignalKind, signal};
use tracing::info;
use wharf_directory::Directory;
use wharf_net::{ListenerSpec, NetError, Server, TlsMode, TlsProvider};

use crate::cli::ServeArgs;
use crate::config::{self, Listener, ListenerTls, Loaded, Protocol, valid_hostname};
use crate::first_run;
use crate::outbound_node::OutboundNode;
use crate::storage::{self, create_private_dir, write_private};
use crate::wiring::{self, Ctx};

pub async fn serve(config_path: &Path, args: ServeArgs) -> Result<()> {
    // Installed first, so a SIGTERM during start-up still ends in an orderly drain.
    let signals = Signals::install()?;
    let created = if config_path.exists() {
        false
    } else {
        first_run::write_initial_config(config_path, &args)?;
        true
    };
    let mut cfg = config::load(config_path)?;
    apply_overrides(&mut cfg, &args)?;
    crate::logging::init_server(&cfg.config.log.level, cfg.config.log.format);
    if created {
        info!(path = %config_path.display(), "wrote a new configuration");
    }

    let listeners = shifted_listeners(&cfg, args.port_offset)?;

    create_private_dir(&cfg.data_dir)?;
    let hostname = cfg.config.server.hostname.clone();
    let domain = cfg.primary_domain();
    let tls = load_tls(&cfg, &hostname, &domain)?;

    let opened = wharf_store::open_all(&storage::store_config(&cfg), storage::pg_timeouts(&cfg))
        .await
        .with_context(|| format!("cannot open the store {}", cfg.store_url()))?;
    let blob_sweep = storage::spawn_blob_sweep(
        opened.store.clone(),
        Duration::from_secs(cfg.config.store.blob_grace_secs),
    );
    let node = crate::node::register(opened.store.clone(), &hostname).await?;
    // Secrets shared by the nodes (DKIM keys) are sealed with this key; a node with another
    // key, or none where the store already has sealed secrets, stops here with the fix.
    let state_key = Arc::new(crate::state_key::StateKey::open(&cfg, &*opened.store).await?);
    let dkim_keys =
        crate::dkim_keys::import_and_load(&cfg.data_dir, &*opened.store, &state_key).await?;
    let header_backfill = storage::spawn_header_text_backfill(opened.store.clone());
    let attachment_text = storage::spawn_attachment_text(opened.store.clone());
    let tombstone_prune = (cfg.config.store.expunge_history_days > 0).then(|| {
        storage::spawn_tombstone_prune(
            opened.store.clone(),
            Duration::from_secs(cfg.config.store.expunge_history_days.saturating_mul(86_400)),
        )
    });
    let directory = Directory::new(opened.store, storage::directory_config(&cfg));
    // Several nodes of one PostgreSQL store throttle password guessing as one.
    let throttle_sync = crate::throttle_sync::shared_store(&cfg.store_url())
        .then(|| crate::throttle_sync::spawn(directory.clone(), node.id.clone()));
    let reports = &cfg.config.reports;
    if reports.dmarc_aggregate && !cfg.config.inbound.enabled {
        tracing::warn!(
            "[reports] dmarc_aggregate needs [inbound] enabled: no DMARC reports will be made"
        );
    }
    let counter = (reports.dmarc_aggregate || reports.tls_rpt)
        .then(|| Arc::new(crate::reporting::Counter::default()));
    let tls_sink = counter.as_ref().filter(|_| reports.tls_rpt).map(|c| {
        wharf_outbound::tls_report::SinkHandle(Arc::new(crate::reporting::TlsCounter(c.clone())))
    });
    let queue_for_api = opened.queue.clone();
    let mut outbound = OutboundNode::build(
        &cfg,
        &hostname,
        &node.id,
        &directory,
        opened.queue,
        tls_sink,
        &dkim_keys,
    )?;
    let mut report_kinds = Vec::new();
    if reports.dmarc_aggregate {
        report_kinds.push(crate::reporting::DMARC);
    }
    if reports.tls_rpt {
        report_kinds.push(crate::reporting::TLSRPT);
    }
    let (stop_reports, stop_reports_rx) = tokio::sync::watch::channel(false);
    let report_task = match &counter {
        Some(counter) => {
            let reporter = crate::reporting::Reporter::new(
                &cfg,
                &hostname,
                opened.tallies.clone(),
                outbound.outbound.clone(),
                report_kinds,
            )?;
            Some(crate::reporting::spawn(
                counter.clone(),
                opened.tallies.clone(),
                Some(reporter),
                stop_reports_rx,
            ))
        }
        None => None,
    };

    if let Some(first) = first_run::ensure_admin(&directory, &domain, created).await? {
        first_run::print_first_run(&listeners, &first, config_path, &cfg);
    }

    let spam_filter = crate::spam_filter::SpamFilter::new(
        &cfg.config.spam,
        directory.store().clone(),
        &cfg.config.outbound.dns_server.0,
    )?
    .map(Arc::new);
    let spam_trainer = spam_filter.is_some().then(|| {
        crate::spam_filter::spawn_trainer(
            directory.store().clone(),
            Duration::from_secs(
                (cfg.config.spam.greylist.allow_days.saturating_add(1)).saturating_mul(86_400),
            ),
        )
    });
    let (local_delivery, srs) = if cfg.config.sieve.enabled {
        let srs_key = crate::srs_key::srs_key(&cfg, &**directory.store(), &state_key).await?;
        let settings =
            crate::sieve_delivery::SieveSettings::from_config(&cfg, &hostname, &srs_key)?;
        let srs = settings.srs.clone();
        let d: Arc<dyn wharf_smtp::LocalDelivery> =
            Arc::new(crate::sieve_delivery::SieveDelivery::new(
                directory.clone(),
                outbound.handoff.clone(),
                settings,
            ));
        (Some(d), Some(srs))
    } else {
        (None, None)
    };
    let dmarc_counter = counter.clone().filter(|_| reports.dmarc_aggregate);
    // Always in place, even with every check off, so a reload can turn `[inbound]` on.
    let arrival = Arc::new(crate::reload::LiveArrival::new(crate::arrival::checks(
        &cfg,
        &hostname,
        dmarc_counter.clone(),
        spam_filter.clone(),
        &dkim_keys,
    )?));
    let ctx = Ctx {
        hostname: hostname.clone(),
        directory,
        handoff: outbound.handoff.clone(),
        local_delivery,
        srs,
        arrival: Some(arrival.clone() as Arc<dyn wharf_smtp::ArrivalCheck>),
        smtp: Default::default(),
    };
    let acme_state = Arc::new(crate::acme_state::StoreAcmeState::new(
        ctx.directory.store().clone(),
        state_key.clone(),
        &node.id,
    ));
    let mut web =
        crate::http_wiring::Web::prepare(&cfg, &tls, &ctx.directory, Some(acme_state)).await?;

    let mut server = Server::new(Some(tls.clone()), wiring::net_limits(&cfg));
    server.set_session_guards(wiring::session_guards(&cfg));
    let mut bound = Vec::new();
    // Mail listeners first: the HTTP service advertises the ports they got.
    for l in &listeners {
        if let Some(handler) = wiring::handler(l, &ctx, &cfg) {
            bound.push((l.clone(), bind_listener(&mut server, l, handler).await?));
        }
    }
    let reloader = Arc::new(crate::reload::Reloader::new(
        &cfg,
        crate::reload::Overrides::of(&args),
        crate::reload::Parts {
            tls: tls.clone(),
            limits: server.live_limits(),
            outbound: outbound.outbound.clone(),
            dkim_keys,
            store: ctx.directory.store().clone(),
            state_key,
            smtp: std::mem::take(&mut *ctx.smtp.lock().unwrap_or_else(|e| e.into_inner())),
            arrival,
            arrival_inputs: crate::reload::ArrivalInputs {
                hostname: hostname.clone(),
                reports: dmarc_counter,
                spam: spam_filter,
            },
        },
    ));
    let http = web.handler(&cfg, &bound, &ctx.directory, queue_for_api, &reloader)?;
    for l in listeners.iter().filter(|l| l.protocol == Protocol::Http) {
        bound.push((
            l.clone(),
            bind_listener(&mut server, l, http.clone()).await?,
        ));
    }
    bound.sort_by_key(|(l, _)| listeners.iter().position(|x| x.name == l.name));
    server.start();
    outbound.start();
    web.start_acme();

    let mut line = String::new();
    for (l, addr) in &bound {
        if !line.is_empty() {
            line.push(' ');
        }
        let _ = write!(line, "{}={}/{}", l.name, addr, l.tls.as_str());
    }
    let running = config::running::Running {
        pid: std::process::id(),
        listeners: bound
            .iter()
            .map(|(l, addr)| config::running::BoundListener {
                name: l.name.clone(),
                protocol: l.protocol.to_string(),
                tls: l.tls.as_str().to_string(),
                address: *addr,
            })
            .collect(),
    };
    if let Err(e) = config::running::write(&cfg.data_dir, &running) {
        tracing::warn!(error = %e, "cannot record the bound ports in the data folder; `wharf doctor` will probe the configured ones");
    }
    // `listeners` stays the last field: tests and scripts read the ports from it to the end.
    info!(hostname = %hostname, blobs = %cfg.blob_location(), listeners = %line, "ready");

    signals.run_until_stop(reloader.clone()).await;
    web.stop().await;

    let deadline = crate::reload::shutdown_deadline(&reloader);
    info!(
        deadline_secs = deadline.as_secs(),
        "draining: no new connections, waiting for sessions"
    );
    server.shutdown(deadline).await;
    // After the listeners: a session finishing its DATA may still hand mail to the queue.
    outbound.stop().await;
    // Last: the checks and the worker have stopped adding counts.
    let _ = stop_reports.send(true);
    if let Some(task) = report_task {
        let _ = task.await;
    }
    blob_sweep.abort();
    header_backfill.abort();
    attachment_text.abort();
    if let Some(t) = spam_trainer {
        t.abort();
    }
    if let Some(t) = tombstone_prune {
        t.abort();
    }
    if let Some(t) = throttle_sync {
        t.abort();
    }
    node.remove().await;
    config::running::remove(&cfg.data_dir, running.pid);
    info!("stopped");
    Ok(())
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("cannot watch SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot watch SIGINT")?,
            hup: signal(SignalKind::hangup()).context("cannot watch SIGHUP")?,
        })
    }

    /// Returns on SIGTERM/SIGINT; reloads the configuration on every SIGHUP meanwhile.
    async fn run_until_stop(mut self, reloader: Arc<crate::reload::Reloader>) {
        loop {
            tokio::select! {
                _ = self.term.recv() => { info!("SIGTERM received"); return; }
                _ = self.int.recv() => { info!("SIGINT received"); return; }
                // Off the runtime's workers (files, key parsing, waiting for a running API
                // reload), as the API's reload is; the outcome is logged by the reload itself.
                _ = self.hup.recv() => {
                    let r = reloader.clone();
                    if let Err(e) = tokio::task::spawn_blocking(move || r.reload("SIGHUP")).await {
                        tracing::error!(error = %e, "configuration reload failed to run");
                    }
                }
            }
        }
    }
}

async fn bind_listener(
    server: &mut Server,
    l: &Listener,
    handler: std::sync::Arc<dyn wharf_net::Handler>,
) -> Result<SocketAddr> {
    let spec = ListenerSpec {
        name: l.name.clone(),
        addr: SocketAddr::new(l.address, l.port),
        tls: match l.tls {
            ListenerTls::None => TlsMode::None,
            ListenerTls::Starttls => TlsMode::StartTls,
            ListenerTls::Implicit => TlsMode::Implicit,
        },
        proxy_protocol: l.proxy_protocol,
    };
    server
        .bind(spec, handler)
        .await
        .map_err(|e| bind_error(l, e))
}

fn bind_error(l: &Listener, e: NetError) -> anyhow::Error {
    let fix = match &e {
        NetError::Bind { source, .. } => match source.kind() {
            std::io::ErrorKind::AddrInUse => {
                "; fix: stop the program using it, change the port in the config, or move every listener with --port-offset N"
            }
            std::io::ErrorKind::AddrNotAvailable => {
                "; fix: use an address of this machine (or 0.0.0.0) as the listener's address"
            }
            _ => "",
        },
        _ => "",
    };
    anyhow!("listener `{}` cannot use port {}: {e}{fix}", l.name, l.port)
}

/// `--hostname`, `--domain`, `--listen` win over the file for this run (and its reloads).
pub(crate) fn apply_overrides(cfg: &mut Loaded, args: &ServeArgs) -> Result<()> {
    if let Some(h) = &args.hostname {
        let h = h.to_ascii_lowercase();
        if !valid_hostname(&h) {
            bail!("--hostname {h}: not a valid host name");
        }
        cfg.config.server.hostname = h;
    }
    if let Some(d) = &args.domain {
        let d = d.to_ascii_lowercase();
        if !valid_hostname(&d) {
            bail!("--domain {d}: not a valid domain name");
        }
        cfg.config.server.primary_domain = Some(d);
    }
    if let Some(addr) = args.listen {
        let mut list = cfg.listeners();
        for l in &mut list {
            l.address = addr;
        }
        cfg.config.listeners = Some(
            list.into_iter()
                .map(|l| config::ListenerConfig {
                    name: Some(l.name),
                    address: l.address,
                    port: Some(l.port),
                    protocol: l.protocol,
                    tls: Some(l.tls),
                    proxy_protocol: l.proxy_protocol,
                })
                .collect(),
        );
    }
    Ok(())
}

fn shifted_listeners(cfg: &Loaded, offset: Option<u16>) -> Result<Vec<Listener>> {
    let mut list = cfg.listeners();
    if list.is_empty() {
        bail!("{}: no [[listener]] configured", cfg.path.display());
    }
    if let Some(offset) = offset {
        for l in &mut list {
            if l.port == 0 {
                continue;
            }
            l.port = l.port.checked_add(offset).ok_or_else(|| {
                anyhow!(
                    "listener `{}`: port {} + --port-offset {offset} exceeds 65535",
                    l.name,
                    l.port
                )
            })?;
        }
    }
    Ok(list)
}

/// The default certificate is generated once into `<data_dir>/tls/`; configured paths must exist.
fn load_tls(cfg: &Loaded, hostname: &str, domain: &str) -> Result<TlsProvider> {
    let (cert, key, is_default) = cfg.tls_paths();
    if is_default && !(cert.exists() && key.exists()) {
        let extra: Vec<String> = if domain != hostname {
            vec![domain.to_string()]
        } else {
            Vec::new()
        };
        let (cert_pem, key_pem) = wharf_net::generate_self_signed(hostname, &extra)
            .context("cannot generate the self-signed certificate")?;
        if let Some(dir) = cert.parent() {
            create_private_dir(dir)?;
        }
        write_private(&key, key_pem.as_bytes())?;
        fs::write(&cert, cert_pem.as_bytes())
            .with_context(|| format!("cannot write {}", cert.display()))?;
        info!(cert = %cert.display(), hostname, "generated a self-signed certificate");
    }
    TlsProvider::from_pem_files(&cert, &key).map_err(|e| {
        anyhow!(
            "TLS certificate {} / key {}: {e}",
            cert.display(),
            key.display()
        )
    })
}
