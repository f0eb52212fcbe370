//! Turns the loaded configuration into the library objects: store and directory settings, and
//! one protocol handler per listener.

use std::sync::Arc;
use std::time::Duration;

use wharf_directory::Directory;
use wharf_net::Handler;

use crate::config::{Listener, Loaded, Protocol};

pub fn store_config(cfg: &Loaded) -> wharf_store::StoreConfig {
    wharf_store::StoreConfig {
        url: cfg.store_url(),
        blob_dir: cfg.blob_dir(),
    }
}

pub fn directory_config(cfg: &Loaded) -> wharf_directory::DirectoryConfig {
    let d = &cfg.config.directory;
    wharf_directory::DirectoryConfig {
        auth_fail_delay_base: Duration::from_secs(d.auth_fail_delay_base),
        auth_fail_max_delay: Duration::from_secs(d.auth_fail_max_delay),
        auth_ip_lockout_after: d.auth_ip_lockout_after,
        auth_account_lockout_after: d.auth_account_lockout_after,
        auth_lockout: Duration::from_secs(d.auth_lockout),
        credential_cache_ttl: Duration::from_secs(d.credential_cache_ttl),
        min_password_len: d.min_password_len,
    }
}

pub fn net_limits(cfg: &Loaded) -> wharf_net::Limits {
    let l = &cfg.config.limits;
    wharf_net::Limits {
        max_connections: l.max_connections,
        max_per_ip: l.max_per_ip,
        idle_timeout: Duration::from_secs(l.idle_timeout),
        tls_handshake_timeout: Duration::from_secs(l.tls_handshake_timeout),
    }
}

/// What every protocol service is built from.
pub struct Ctx {
    pub hostname: String,
    pub directory: Directory,
}

/// The protocol service answering on `listener`.
pub fn handler(listener: &Listener, ctx: &Ctx, cfg: &Loaded) -> Arc<dyn Handler> {
    let c = &cfg.config;
    match listener.protocol {
        Protocol::Smtp => Arc::new(wharf_smtp::SmtpService::new(
            c.smtp.clone(),
            ctx.hostname.clone(),
            ctx.directory.clone(),
            wharf_smtp::SmtpRole::Mx,
        )),
        Protocol::Submission => Arc::new(wharf_smtp::SmtpService::new(
            c.smtp.clone(),
            ctx.hostname.clone(),
            ctx.directory.clone(),
            wharf_smtp::SmtpRole::Submission,
        )),
        Protocol::Imap => Arc::new(wharf_imap::ImapService::new(
            c.imap.clone(),
            ctx.hostname.clone(),
            ctx.directory.clone(),
        )),
        Protocol::Pop3 => Arc::new(wharf_pop3::Pop3Service::new(
            c.pop3.clone(),
            ctx.hostname.clone(),
            ctx.directory.clone(),
        )),
    }
}
