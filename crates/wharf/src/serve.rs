//! `wharf serve`: first-run setup (config, data folder, certificate, admin account), binding every
//! listener, the `ready` line, and the signal loop (SIGTERM/SIGINT drain, SIGHUP reloads TLS).

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};
use wharf_directory::{Directory, DirectoryError};
use wharf_net::{ListenerSpec, NetError, Server, TlsMode, TlsProvider};

use crate::admin::{directory_error, generate_password};
use crate::cli::ServeArgs;
use crate::config::{
    self, Listener, ListenerTls, Loaded, Protocol, standard_listeners, valid_hostname,
};
use crate::outbound_node::OutboundNode;
use crate::wiring::{self, Ctx};

/// Length of the first admin's generated password.
const ADMIN_PASSWORD_LEN: usize = 20;

/// What the first run created, printed once.
struct FirstRun {
    admin: String,
    password: String,
}

pub async fn serve(config_path: &Path, args: ServeArgs) -> Result<()> {
    // Installed first, so a SIGTERM during start-up still ends in an orderly drain.
    let signals = Signals::install()?;
    let created = if config_path.exists() {
        false
    } else {
        write_initial_config(config_path, &args)?;
        true
    };
    let mut cfg = config::load(config_path)?;
    apply_overrides(&mut cfg, &args)?;
    crate::logging::init_server(&cfg.config.log.level);
    if created {
        info!(path = %config_path.display(), "wrote a new configuration");
    }

    let listeners = shifted_listeners(&cfg, args.port_offset)?;

    create_private_dir(&cfg.data_dir)?;
    let hostname = cfg.config.server.hostname.clone();
    let domain = cfg.primary_domain();
    let tls = load_tls(&cfg, &hostname, &domain)?;

    let (store, queue) = wharf_store::open_with_queue(&wiring::store_config(&cfg))
        .await
        .with_context(|| format!("cannot open the store {}", cfg.store_url()))?;
    let directory = Directory::new(store, wiring::directory_config(&cfg));
    let mut outbound = OutboundNode::build(&cfg, &hostname, &directory, queue)?;

    let first = if created {
        create_admin(&directory, &domain).await?
    } else {
        None
    };
    if let Some(first) = &first {
        print_first_run(&listeners, first, config_path, &cfg);
    }

    let ctx = Ctx {
        hostname: hostname.clone(),
        directory,
        handoff: outbound.handoff.clone(),
    };
    let mut web = crate::http_wiring::Web::prepare(&cfg, &tls, &ctx.directory).await?;

    let mut server = Server::new(Some(tls.clone()), wiring::net_limits(&cfg));
    let mut bound = Vec::new();
    // Mail listeners first: the HTTP service advertises the ports they got.
    for l in &listeners {
        if let Some(handler) = wiring::handler(l, &ctx, &cfg) {
            bound.push((l.clone(), bind_listener(&mut server, l, handler).await?));
        }
    }
    let http = web.handler(&cfg, &bound, &ctx.directory)?;
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
    info!(hostname = %hostname, listeners = %line, "ready");

    signals.run_until_stop(&tls, &cfg).await;
    web.stop().await;

    let deadline = Duration::from_secs(cfg.config.limits.shutdown_timeout);
    info!(
        deadline_secs = deadline.as_secs(),
        "draining: no new connections, waiting for sessions"
    );
    server.shutdown(deadline).await;
    // After the listeners: a session finishing its DATA may still hand mail to the queue.
    outbound.stop().await;
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

    /// Returns on SIGTERM/SIGINT; reloads the certificate on every SIGHUP meanwhile.
    async fn run_until_stop(mut self, tls: &TlsProvider, cfg: &Loaded) {
        loop {
            tokio::select! {
                _ = self.term.recv() => { info!("SIGTERM received"); return; }
                _ = self.int.recv() => { info!("SIGINT received"); return; }
                _ = self.hup.recv() => crate::http_wiring::reload_tls(tls, cfg),
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

/// `--hostname`, `--domain`, `--listen` win over the file for this run.
fn apply_overrides(cfg: &mut Loaded, args: &ServeArgs) -> Result<()> {
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

/// Creates a folder (and parents) that only its owner can enter: it holds password hashes,
/// mail and private keys. An existing folder keeps the permissions its operator gave it.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the folder {}", dir.display()))
}

/// Creates a file readable by its owner only (private keys).
fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `None` when the data folder outlived its config file and already has the admin account.
async fn create_admin(directory: &Directory, domain: &str) -> Result<Option<FirstRun>> {
    match directory.add_domain(domain).await {
        Ok(_) => {}
        Err(DirectoryError::Store(wharf_store::StoreError::AlreadyExists(_))) => {}
        Err(e) => return Err(directory_error(e)),
    }
    let admin = format!("admin@{domain}");
    let password = generate_password(ADMIN_PASSWORD_LEN);
    match directory.add_account(&admin, &password, 0).await {
        Ok(_) => Ok(Some(FirstRun { admin, password })),
        Err(DirectoryError::DuplicateAccount(_)) => {
            warn!(
                account = %admin,
                "the data folder already has this account; its password is unchanged (wharf user passwd sets a new one)"
            );
            Ok(None)
        }
        Err(e) => Err(directory_error(e)),
    }
}

fn print_first_run(listeners: &[Listener], first: &FirstRun, config_path: &Path, cfg: &Loaded) {
    let mut out = String::new();
    let _ = writeln!(out, "Wharf is set up.");
    let config_abs = std::path::absolute(config_path).unwrap_or_else(|_| config_path.to_path_buf());
    let _ = writeln!(out, "  config:    {}", config_abs.display());
    let _ = writeln!(out, "  data:      {}", cfg.data_dir.display());
    let _ = writeln!(out, "  hostname:  {}", cfg.config.server.hostname);
    let _ = writeln!(out, "  domain:    {}", cfg.primary_domain());
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  {:<12} {:<10} {:<9} address",
        "listener", "protocol", "tls"
    );
    for l in listeners {
        let _ = writeln!(
            out,
            "  {:<12} {:<10} {:<9} {}",
            l.name,
            l.protocol,
            l.tls.as_str(),
            SocketAddr::new(l.address, l.port)
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "First account (shown only this once):");
    let _ = writeln!(out, "  user:      {}", first.admin);
    let _ = writeln!(out, "  password:  {}", first.password);
    // A closed stdout (daemonised) must not stop the server: the log has the listeners too.
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush());
}

/// Writes a complete, commented wharf.toml for a first run.
fn write_initial_config(path: &Path, args: &ServeArgs) -> Result<()> {
    let hostname = args
        .hostname
        .clone()
        .unwrap_or_else(config::system_hostname)
        .to_ascii_lowercase();
    if !valid_hostname(&hostname) {
        bail!("--hostname {hostname}: not a valid host name");
    }
    let domain = args
        .domain
        .clone()
        .unwrap_or_else(|| config::domain_of_host(&hostname))
        .to_ascii_lowercase();
    if !valid_hostname(&domain) {
        bail!("--domain {domain}: not a valid domain name");
    }
    let address = args.listen.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let text = initial_config_text(&hostname, &domain, address);
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

pub fn initial_config_text(hostname: &str, domain: &str, address: IpAddr) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# Wharf configuration, written by `wharf serve` on its first run.\n\
         # Every key has a default; docs/configuration.md lists them all.\n\
         # Relative paths are relative to this file's folder.\n\n\
         [server]\n\
         hostname = \"{hostname}\"\n\
         primary_domain = \"{domain}\"\n\
         data_dir = \"data\"\n\n\
         # Embedded SQLite store and blobs in data_dir. For several nodes use\n\
         # url = \"postgres://user@db-host/wharf\" and a shared blob_dir.\n\
         [store]\n\
         # url = \"sqlite://<data_dir>/wharf.db\"\n\
         # blob_dir = \"data/blobs\"\n\n\
         # Without cert/key a self-signed certificate is generated in data/tls/.\n\
         [tls]\n\
         # cert = \"/etc/ssl/wharf/fullchain.pem\"\n\
         # key = \"/etc/ssl/wharf/privkey.pem\"\n\n\
         [limits]\n\
         max_connections = 10000\n\
         max_per_ip = 50\n\
         idle_timeout = 1800\n\
         max_message_size = 52428800\n"
    );
    for l in standard_listeners(address) {
        let _ = writeln!(
            t,
            "[[listener]]\nname = \"{}\"\naddress = \"{}\"\nport = {}\nprotocol = \"{}\"\ntls = \"{}\"\n",
            l.name,
            l.address,
            l.port,
            l.protocol,
            l.tls.as_str()
        );
    }
    let _ = writeln!(
        t,
        "# Autoconfig, Autodiscover, MTA-STS and /metrics on the http listeners (docs/http.md).\n\
         [http]\n\
         # trusted_proxies = [\"127.0.0.1\"]      # a reverse proxy in front of Wharf\n\
         # metrics_allow = [\"127.0.0.0/8\", \"::1\"]\n\n\
         # Certificates from Let's Encrypt for {hostname}, autoconfig.{domain} and\n\
         # mta-sts.{domain}; port 80 must be reachable from the internet.\n\
         [acme]\n\
         enabled = false\n\
         # contact = \"postmaster@{domain}\"\n"
    );
    let _ = writeln!(t, "[log]\nlevel = \"info\"");
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_config_parses_back() {
        let text = initial_config_text(
            "mail.example.com",
            "example.com",
            "127.0.0.1".parse().unwrap(),
        );
        let l = config::parse(Path::new("/srv/wharf/wharf.toml"), &text).expect("valid");
        assert_eq!(l.primary_domain(), "example.com");
        let listeners = l.listeners();
        assert_eq!(listeners, standard_listeners("127.0.0.1".parse().unwrap()));
        assert!(!l.config.acme.enabled);
        assert!(text.contains("# contact = \"postmaster@example.com\""));
    }
}
