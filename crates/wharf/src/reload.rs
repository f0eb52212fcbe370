//! Configuration reload of a running `wharf serve`, by SIGHUP or `POST /api/v1/reload`: one
//! entry point, [`Reloader::reload`], reads `wharf.toml` again and applies what can change
//! under running sessions, then reports (and logs) what was applied, what changed but needs a
//! restart, and what failed. A file that does not load changes nothing.
//!
//! Applied without dropping a session:
//! - the certificate (files of `[tls]`, or the stored ACME one), re-read on every reload;
//! - the DKIM signing keys, read again from the store on every reload, after any legacy
//!   `<data_dir>/dkim/*.pem` file is imported (the next message submitted signs with them; on a
//!   shared store a key another node generated counts too);
//! - `[log] level`;
//! - `[limits]`: connections accepted after the reload are admitted and guarded under the new
//!   values, running sessions keep theirs (`wharf_net::LiveLimits`); `shutdown_timeout` is read
//!   when the server stops;
//! - `[smtp]` (and `[limits] max_message_size`, its default) for SMTP and submission sessions
//!   starting after the reload, except the keys shared by all sessions (the per-IP limiter and
//!   the spool: `max_connections_per_ip`, `max_connection_rate_per_ip`, `spool_dir`,
//!   `spool_threshold`, `memory_budget`, `max_large_deliveries`);
//! - `[inbound]` (with its per-domain `[inbound.domain."…"]` policies): the checks of port-25
//!   mail are rebuilt and each message is judged by the set current when its data ends; they
//!   are rebuilt too when the DKIM keys changed, since the newest RSA key of the primary domain
//!   ARC-seals forwarded mail.
//!
//! Everything else (listeners, store, `[server]`, `[directory]`, `[imap]`, `[pop3]`,
//! `[managesieve]`, `[outbound]`, `[http]`, `[acme]`, `[reports]`, `[sieve]`, `[spam]`,
//! `[log] format`, the shared `[smtp]` keys) is built once at start: a change is named as needing
//! a restart, on every reload until the server restarts. Mail domains, accounts and aliases live in the
//! store, not in the file, and are read per message and per login: they need no reload.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use tracing::{error, info, warn};
use wharf_net::{LiveLimits, TlsProvider};
use wharf_outbound::Outbound;
use wharf_smtp::{Arrival, ArrivalAction, ArrivalCheck, ArrivalVerdict, SmtpService};

use crate::cli::ServeArgs;
use crate::config::{ConfigError, Loaded};
use crate::dkim_keys::StoredKey;
use crate::reporting::Counter;
use crate::spam_filter::SpamFilter;
use crate::state_key::StateKey;

/// What a reload did; logged, and the body of the API's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReloadReport {
    /// Settings now in effect for what comes next: `tls`, `dkim`, and when they changed
    /// `log.level`, `limits`, `smtp`, `inbound`.
    pub applied: Vec<String>,
    /// Settings whose file value differs from what the server started with and that take
    /// effect only at the next start (table names, `log.format`, the shared `smtp.*` keys).
    pub restart_needed: Vec<String>,
    /// Settings that could not be applied; the previous value stays in use.
    pub failed: Vec<Failure>,
    /// The signing keys in use after the reload (`domain/selector (algorithm)`).
    pub dkim_keys: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub setting: String,
    pub error: String,
}

/// The command-line overrides of `wharf serve`, applied again to every reloaded file so they
/// are not mistaken for changes.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    hostname: Option<String>,
    domain: Option<String>,
    listen: Option<std::net::IpAddr>,
}

impl Overrides {
    pub fn of(args: &ServeArgs) -> Overrides {
        Overrides {
            hostname: args.hostname.clone(),
            domain: args.domain.clone(),
            listen: args.listen,
        }
    }

    fn args(&self) -> ServeArgs {
        ServeArgs {
            hostname: self.hostname.clone(),
            domain: self.domain.clone(),
            port_offset: None,
            listen: self.listen,
        }
    }
}

/// What the port-25 checks are rebuilt from.
pub struct ArrivalInputs {
    pub hostname: String,
    pub reports: Option<Arc<Counter>>,
    pub spam: Option<Arc<SpamFilter>>,
}

/// What a reload swaps values in.
pub struct Parts {
    pub tls: TlsProvider,
    pub limits: LiveLimits,
    pub outbound: Arc<Outbound>,
    /// The signing keys loaded at start, the store they are in, and the key they are sealed with.
    pub dkim_keys: Vec<StoredKey>,
    pub store: Arc<dyn wharf_store::Store>,
    pub state_key: Arc<StateKey>,
    pub smtp: Vec<Arc<SmtpService>>,
    pub arrival: Arc<LiveArrival>,
    pub arrival_inputs: ArrivalInputs,
}

/// The running server's reloadable parts.
pub struct Reloader {
    /// The file as the server started (after overrides): what listeners, stores and services
    /// were built from.
    started: Loaded,
    overrides: Overrides,
    tls: TlsProvider,
    limits: LiveLimits,
    outbound: Arc<Outbound>,
    smtp: Vec<Arc<SmtpService>>,
    arrival: Arc<LiveArrival>,
    arrival_inputs: ArrivalInputs,
    store: Arc<dyn wharf_store::Store>,
    state_key: Arc<StateKey>,
    /// Held for a whole reload, so two at once (a SIGHUP during an API call) apply in turn.
    state: Mutex<State>,
}

struct State {
    current: Loaded,
    dkim_keys: Vec<StoredKey>,
}

impl Reloader {
    pub fn new(started: &Loaded, overrides: Overrides, parts: Parts) -> Reloader {
        Reloader {
            started: started.clone(),
            overrides,
            tls: parts.tls,
            limits: parts.limits,
            outbound: parts.outbound,
            smtp: parts.smtp,
            arrival: parts.arrival,
            arrival_inputs: parts.arrival_inputs,
            store: parts.store,
            state_key: parts.state_key,
            state: Mutex::new(State {
                current: started.clone(),
                dkim_keys: parts.dkim_keys,
            }),
        }
    }

    /// The configuration in effect for the reloadable settings (e.g. `shutdown_timeout`).
    pub fn current(&self) -> Loaded {
        self.lock().current.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the file again and applies it (see the module doc); `trigger` (`SIGHUP`, `API`)
    /// prefixes the log lines. The report is logged here; a file that does not load is logged
    /// and returned, and nothing changes.
    pub fn reload(&self, trigger: &str) -> Result<ReloadReport, ConfigError> {
        let mut state = self.lock();
        let new = match self.load() {
            Ok(c) => c,
            Err(e) => {
                error!(trigger, error = %e, "configuration not reloaded: the file has an error; the running settings stay");
                return Err(e);
            }
        };
        let mut new = new;
        let mut report = ReloadReport::default();
        // What the reloadable parts are built from: the new file, but with the tables that need
        // a restart ([server]: the data folder, the primary domain; [acme]) as the server
        // started, so that they take no partial effect before it.
        let mut effective = new.clone();
        effective.config.server = self.started.config.server.clone();
        effective.config.acme = self.started.config.acme.clone();
        effective.data_dir = self.started.data_dir.clone();

        // The ACME manager runs as the server started: while it does, its stored certificate
        // is the one to reload, never the files of [tls].
        let tls_source = if self.started.config.acme.enabled {
            &self.started
        } else {
            &effective
        };
        let acme_state = crate::acme_state::StoreAcmeState::new(
            self.store.clone(),
            self.state_key.clone(),
            "reload",
        );
        match crate::http_wiring::reload_tls(&self.tls, tls_source, trigger, Some(&acme_state)) {
            Ok(()) => report.applied.push("tls".into()),
            Err(e) => report.failed.push(failure("tls", e)),
        }

        let (old, now) = (&state.current.config, &new.config);
        let limits_changed = reloadable_limits(old) != reloadable_limits(now);
        let smtp_changed = format!("{:?}", old.smtp) != format!("{:?}", now.smtp);
        // Debug, not PartialEq: the inbound crate's config has no PartialEq (its maps are
        // BTreeMaps, printed in a fixed order).
        let inbound_changed = format!("{:?}", old.inbound) != format!("{:?}", now.inbound)
            || old.outbound.dns_server != now.outbound.dns_server;
        let mut log_failed = false;
        if old.log.level != now.log.level {
            match crate::logging::reload_level(&now.log.level) {
                Ok(true) => {
                    info!(trigger, level = %now.log.level, "log level changed");
                    report.applied.push("log.level".into());
                }
                Ok(false) => info!(trigger, "RUST_LOG is set: it keeps deciding the log level"),
                Err(e) => {
                    log_failed = true;
                    report.failed.push(failure("log.level", e));
                }
            }
        }

        self.limits.set(
            crate::wiring::net_limits(&new),
            crate::wiring::session_guards(&new),
        );
        if limits_changed {
            report.applied.push("limits".into());
        }

        let smtp = crate::wiring::smtp_config(&new);
        for service in &self.smtp {
            service.set_config(smtp.clone());
        }
        if smtp_changed {
            report.applied.push("smtp".into());
        }

        let mut keys_changed = false;
        // Key files of an earlier version dropped into the data folder the server started
        // with are moved into the store first; then the store's keys replace the running set.
        // Reloads run on a blocking thread of the runtime (SIGHUP handler, API), so the store
        // can be awaited here.
        let keys = tokio::runtime::Handle::current().block_on(crate::dkim_keys::import_and_load(
            &self.started.data_dir,
            &*self.store,
            &self.state_key,
        ));
        match keys.and_then(|keys| crate::dkim_keys::signers(&keys).map(|s| (keys, s))) {
            Ok((keys, (signers, names))) => {
                self.outbound.set_dkim_signers(signers);
                report.dkim_keys = names;
                // The whole keys, not their names: a key replaced under its selector (deleted
                // and generated again) must rebuild the ARC sealer too.
                keys_changed = keys != state.dkim_keys;
                state.dkim_keys = keys;
                report.applied.push("dkim".into());
            }
            // One unreadable key must not unsign the others: the previous set stays.
            Err(e) => {
                report.failed.push(failure("dkim", format!("{e:#}")));
                report.dkim_keys = key_names(&state.dkim_keys);
            }
        }

        let mut inbound_failed = false;
        if inbound_changed || keys_changed {
            let a = &self.arrival_inputs;
            match crate::arrival::checks(
                &effective,
                &a.hostname,
                a.reports.clone(),
                a.spam.clone(),
                &state.dkim_keys,
            ) {
                Ok(check) => {
                    self.arrival.set(check);
                    if inbound_changed {
                        report.applied.push("inbound".into());
                    }
                }
                Err(e) => {
                    inbound_failed = true;
                    report.failed.push(failure("inbound", format!("{e:#}")));
                }
            }
        }

        report.restart_needed = restart_needed(&self.started, &new);
        // What failed to apply is still what runs: the next reload compares against it, so
        // it tries again even if the file has not changed (the cause was outside it).
        if log_failed {
            new.config.log.level = state.current.config.log.level.clone();
        }
        if inbound_failed {
            new.config.inbound = state.current.config.inbound.clone();
            new.config.outbound.dns_server = state.current.config.outbound.dns_server.clone();
        }
        state.current = new;
        drop(state);
        log_report(trigger, &report);
        Ok(report)
    }

    fn load(&self) -> Result<Loaded, ConfigError> {
        let mut new = crate::config::load(&self.started.path)?;
        // The overrides were checked when the server started; they cannot fail now.
        if let Err(e) = crate::serve::apply_overrides(&mut new, &self.overrides.args()) {
            return Err(ConfigError {
                file: self.started.path.clone(),
                line: None,
                column: None,
                key: None,
                message: format!("{e:#}"),
            });
        }
        Ok(new)
    }
}

/// `domain/selector (Algorithm)` per key, as the reload report lists them.
fn key_names(keys: &[StoredKey]) -> Vec<String> {
    crate::dkim_keys::signers(keys)
        .map(|(_, names)| names)
        .unwrap_or_else(|_| {
            keys.iter()
                .map(|k| format!("{}/{}", k.domain, k.selector))
                .collect()
        })
}

fn failure(setting: &str, error: impl Into<String>) -> Failure {
    Failure {
        setting: setting.into(),
        error: error.into(),
    }
}

/// The `[smtp]` keys every session of a service shares, fixed when it is built, as
/// (name, value) pairs.
fn shared_smtp(c: &crate::config::Config) -> [(&'static str, String); 6] {
    let s = &c.smtp;
    [
        (
            "smtp.max_connections_per_ip",
            s.max_connections_per_ip.to_string(),
        ),
        (
            "smtp.max_connection_rate_per_ip",
            s.max_connection_rate_per_ip.to_string(),
        ),
        ("smtp.spool_dir", format!("{:?}", s.spool_dir)),
        ("smtp.spool_threshold", s.spool_threshold.to_string()),
        ("smtp.memory_budget", s.memory_budget.to_string()),
        (
            "smtp.max_large_deliveries",
            s.max_large_deliveries.to_string(),
        ),
    ]
}

type LimitKeys = (usize, usize, u64, u64, u64, u64, u32, u64, bool);

/// The `[limits]` keys a reload applies.
fn reloadable_limits(c: &crate::config::Config) -> LimitKeys {
    let l = &c.limits;
    (
        l.max_connections,
        l.max_per_ip,
        l.idle_timeout,
        l.tls_handshake_timeout,
        l.shutdown_timeout,
        l.pre_auth_timeout,
        l.min_data_rate,
        l.min_data_rate_window,
        l.shed_unauthenticated,
    )
}

/// What differs from the started configuration and is only read at start.
fn restart_needed(started: &Loaded, new: &Loaded) -> Vec<String> {
    let (old, now) = (&started.config, &new.config);
    let same =
        |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") == format!("{b:?}");
    let tables: [(&str, bool); 15] = [
        ("server", same(&old.server, &now.server)),
        ("store", same(&old.store, &now.store)),
        ("listener", same(&old.listeners, &now.listeners)),
        ("directory", same(&old.directory, &now.directory)),
        ("log.format", old.log.format == now.log.format),
        ("imap", same(&old.imap, &now.imap)),
        ("pop3", same(&old.pop3, &now.pop3)),
        ("managesieve", same(&old.managesieve, &now.managesieve)),
        ("outbound", same(&old.outbound, &now.outbound)),
        ("http", same(&old.http, &now.http)),
        ("acme", same(&old.acme, &now.acme)),
        ("reports", same(&old.reports, &now.reports)),
        ("sieve", same(&old.sieve, &now.sieve)),
        // PartialEq, not Debug: its weights are a HashMap, printed in no fixed order.
        ("spam", old.spam == now.spam),
        // The certificate paths apply, unless an ACME manager runs (it keeps its own).
        ("tls", !old.acme.enabled || same(&old.tls, &now.tls)),
    ];
    let smtp = shared_smtp(old)
        .into_iter()
        .zip(shared_smtp(now))
        .map(|((name, a), (_, b))| (name, a == b));
    tables
        .into_iter()
        .chain(smtp)
        .filter(|(_, same)| !same)
        .map(|(name, _)| name.to_string())
        .collect()
}

fn log_report(trigger: &str, r: &ReloadReport) {
    for f in &r.failed {
        warn!(trigger, setting = %f.setting, error = %f.error, "reload: not applied; the previous value stays");
    }
    let applied = r.applied.join(", ");
    let keys = r.dkim_keys.len();
    if r.restart_needed.is_empty() {
        info!(trigger, applied = %applied, dkim_keys = keys, "configuration reloaded");
    } else {
        warn!(
            trigger,
            applied = %applied,
            dkim_keys = keys,
            tables = %r.restart_needed.join(", "),
            "configuration reloaded; these changed settings need a restart to take effect"
        );
    }
}

/// The port-25 checks as the SMTP services see them: one object for the server's life, whose
/// inner checks a reload replaces. A message is judged by the checks current when its data
/// ends; none (`[inbound]` and `[spam]` off) delivers unchecked, as without a check at all.
#[derive(Default)]
pub struct LiveArrival {
    inner: wharf_net::Swappable<Option<Arc<dyn ArrivalCheck>>>,
}

impl LiveArrival {
    pub fn new(check: Option<Arc<dyn ArrivalCheck>>) -> LiveArrival {
        LiveArrival {
            inner: wharf_net::Swappable::new(Arc::new(check)),
        }
    }

    fn set(&self, check: Option<Arc<dyn ArrivalCheck>>) {
        self.inner.set(Arc::new(check));
    }

    /// Taken out: the lock is never held across the check's DNS lookups.
    fn get(&self) -> Option<Arc<dyn ArrivalCheck>> {
        self.inner.get().as_ref().clone()
    }
}

#[async_trait]
impl ArrivalCheck for LiveArrival {
    async fn check(&self, arrival: &Arrival<'_>, content: &[u8]) -> ArrivalVerdict {
        match self.get() {
            Some(check) => check.check(arrival, content).await,
            None => ArrivalVerdict {
                prepend: String::new(),
                remove: Vec::new(),
                forward_prepend: String::new(),
                action: ArrivalAction::Deliver,
                junk_for: Vec::new(),
            },
        }
    }
}

/// How long `serve` waits for sessions at shutdown: the reloaded value.
pub fn shutdown_deadline(reloader: &Reloader) -> Duration {
    Duration::from_secs(reloader.current().config.limits.shutdown_timeout)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn parse(text: &str) -> Loaded {
        crate::config::parse(Path::new("/srv/w/wharf.toml"), text).unwrap()
    }

    #[test]
    fn only_start_time_settings_are_named_for_a_restart() {
        let started = parse("[limits]\nmax_per_ip = 5\n");
        let limits_and_inbound = parse(
            "[limits]\nmax_per_ip = 1\nmax_connections = 3\nidle_timeout = 9\n\
             max_message_size = 1000\n[smtp]\nmax_recipients = 5\n\
             [inbound]\ndmarc_reject = false\n[log]\nlevel = \"debug\"\n",
        );
        assert!(restart_needed(&started, &limits_and_inbound).is_empty());
        assert!(
            reloadable_limits(&started.config) != reloadable_limits(&limits_and_inbound.config)
        );
        let fixed = parse(
            "[smtp]\nmemory_budget = 1000\n[log]\nformat = \"json\"\n\
             [imap]\nmax_append = 5000\n\
             [[listener]]\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"imap\"\n",
        );
        let named = restart_needed(&started, &fixed);
        for t in ["smtp.memory_budget", "log.format", "imap", "listener"] {
            assert!(named.iter().any(|n| n == t), "{t} missing in {named:?}");
        }
    }

    #[tokio::test]
    async fn an_empty_live_arrival_delivers_unchecked() {
        let live = LiveArrival::new(None);
        let arrival = Arrival {
            ip: "192.0.2.1".parse().unwrap(),
            helo: "client.test",
            mail_from: "a@client.test",
            recipients: &[],
            accounts: &[],
            forwarding: false,
        };
        let v = live.check(&arrival, b"Subject: x\r\n\r\nbody\r\n").await;
        assert!(matches!(v.action, ArrivalAction::Deliver));
        assert!(v.prepend.is_empty() && v.remove.is_empty() && v.forward_prepend.is_empty());
    }
}
