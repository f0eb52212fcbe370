//! What a first run creates: the commented `wharf.toml` when there is none, and in an empty store
//! the primary domain and its `admin@` account, whose generated password is printed once with the
//! listener table. "Empty" is judged by the store, not by the config file: a config written by
//! hand (or kept from another machine) over a fresh data folder gets its admin account too.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use anyhow::{Context, Result, bail};
use tracing::warn;
use wharf_directory::{Directory, DirectoryError};

use crate::admin::generate_password;
use crate::cli::ServeArgs;
use crate::config::{self, Listener, Loaded, standard_listeners, valid_hostname};
use crate::storage::{directory_error, store_err};

/// Length of the first admin's generated password.
const ADMIN_PASSWORD_LEN: usize = 20;

/// What the first run created, printed once.
pub struct FirstRun {
    admin: String,
    password: String,
}

/// The domain and admin account of a first run, when `wharf serve` has just written the config
/// or the store has no domain yet; `None` when there was nothing to create.
pub async fn ensure_admin(
    directory: &Directory,
    domain: &str,
    config_created: bool,
) -> Result<Option<FirstRun>> {
    let empty = directory
        .store()
        .list_domains()
        .await
        .map_err(store_err)?
        .is_empty();
    if !config_created && !empty {
        return Ok(None);
    }
    create_admin(directory, domain).await
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
    let first = match directory.add_account(&admin, &password, 0).await {
        Ok(_) => Some(FirstRun {
            admin: admin.clone(),
            password,
        }),
        Err(DirectoryError::DuplicateAccount(_)) => {
            warn!(
                account = %admin,
                "the data folder already has this account; its password is unchanged (wharf user passwd sets a new one)"
            );
            None
        }
        Err(e) => return Err(directory_error(e)),
    };
    add_role_aliases(directory, domain, &admin).await?;
    if first.is_some() {
        // The first account administers the server, also over the admin REST API.
        crate::ops::accounts::set_admin(directory, &admin, true).await?;
    }
    Ok(first)
}

/// `postmaster@` (RFC 5321 §4.5.1: every mail domain must accept it) and `abuse@` (RFC 2142)
/// reach the admin; the `rua=` of `wharf dns`'s DMARC and TLS-RPT records is postmaster@.
/// An address that is already an alias or an account is left alone.
async fn add_role_aliases(directory: &Directory, domain: &str, admin: &str) -> Result<()> {
    for local in ROLE_ADDRESSES {
        let address = format!("{local}@{domain}");
        let store = directory.store();
        let taken = !store
            .alias_targets(&address)
            .await
            .map_err(store_err)?
            .is_empty()
            || store
                .get_account_by_address(&address)
                .await
                .map_err(store_err)?
                .is_some();
        if !taken {
            directory
                .add_alias(&address, admin)
                .await
                .map_err(directory_error)?;
        }
    }
    Ok(())
}

/// Role addresses a first run points at the admin account.
pub const ROLE_ADDRESSES: [&str; 2] = ["postmaster", "abuse"];

pub fn print_first_run(listeners: &[Listener], first: &FirstRun, config_path: &Path, cfg: &Loaded) {
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
    let domain = cfg.primary_domain();
    let roles: Vec<String> = ROLE_ADDRESSES
        .iter()
        .map(|l| format!("{l}@{domain}"))
        .collect();
    let _ = writeln!(
        out,
        "  aliases:   {} (deliver to {})",
        roles.join(", "),
        first.admin
    );
    // A closed stdout (daemonised) must not stop the server: the log has the listeners too.
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush());
}

/// Writes a complete, commented wharf.toml for a first run.
pub fn write_initial_config(path: &Path, args: &ServeArgs) -> Result<()> {
    let hostname = args
        .hostname
        .clone()
        .unwrap_or_else(config::system_hostname)
        .to_ascii_lowercase();
    if !valid_hostname(&hostname) {
        bail!("--hostname {hostname}: not a valid host name");
    }
    if !hostname.contains('.') && args.domain.is_none() {
        bail!(
            "host name `{hostname}` has no domain to take the mail domain from; pass the full name, e.g. --hostname mail.example.com, or the mail domain, e.g. --domain example.com"
        );
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
         max_message_size = 52428800\n\
         pre_auth_timeout = 60          # seconds to log in (port 25: to get a message accepted)\n\
         min_data_rate = 1024           # bytes/s a message body must keep up\n\n\
         # SPF, DKIM, DMARC, ARC and iprev of mail arriving on port 25 (docs/inbound.md).\n\
         [inbound]\n\
         enabled = true\n\
         dmarc_reject = true            # p=reject failures get 550 5.7.1\n\
         spf_fail = \"junk\"              # SPF -all failures of domains without DMARC\n\
         # trusted_forwarders = [\"192.0.2.0/24\"]   # your mailing lists and forwarders\n"
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
