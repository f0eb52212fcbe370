//! `wharf doctor`: checks from this server's own point of view that every configured listener
//! answers with its TLS mode, that the certificate suits the names and is not about to expire,
//! and that DNS says what `wharf dns` says it should (MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT,
//! CNAMEs, SRV, reverse DNS). Prints one ✔/!/✘ row per check with the exact fix under each
//! problem; any ✘ makes the command fail (exit status 1).

pub(crate) mod cert;
mod cert_checks;
mod dns_checks;
mod lookup;
mod probe;
mod records;
mod report;

use std::net::SocketAddr;

use anyhow::{Result, anyhow, bail};
use wharf_outbound::TrustAnchors;

use crate::cli::DoctorArgs;
use crate::config::{Listener, ListenerTls, Loaded};
use crate::dns_records::DomainPlan;
use cert_checks::certificate;
use dns_checks::{domain_checks, host_checks};
use lookup::Dns;
use probe::{Outcome, TlsSeen};
use report::Mark;
pub(crate) use report::Report;

/// The longest one listener's check may take.
const PROBE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

pub async fn run(cfg: &Loaded, args: DoctorArgs) -> Result<()> {
    let domains = domains(cfg, args.domain.as_deref()).await?;
    let doctor = Doctor::new(cfg, args.resolver, args.port_offset)?;
    println!(
        "wharf doctor: host {}, config {}, DNS from {}",
        doctor.hostname,
        cfg.path.display(),
        doctor.dns.source
    );
    if let Some(r) = &doctor.running {
        println!(
            "listener ports from {} (wharf serve, pid {})",
            crate::config::running::path(&cfg.data_dir).display(),
            r.pid
        );
    }
    let dir = crate::storage::open_directory(cfg).await?;
    let keys = crate::dns_records::stored_keys(cfg, &**dir.store()).await?;
    drop(dir);
    let mut report = Report::default();
    doctor.check(cfg, &domains, &keys, &mut report).await?;
    finish(&report)
}

/// The table for the admin API (`GET /api/v1/doctor`), run from inside `wharf serve`: the
/// listeners at the ports the server recorded, DNS from `outbound.dns_server`. Past `deadline`
/// the checks stop and the table holds those done so far plus a ✘ row saying so, since a
/// partial table tells an operator more than a bare timeout.
pub async fn report(
    cfg: &Loaded,
    domains: &[String],
    keys: &[crate::dkim_keys::StoredKey],
    deadline: std::time::Duration,
) -> Result<Report> {
    let doctor = Doctor::new(cfg, None, None)?;
    let mut report = Report::default();
    let done = tokio::time::timeout(deadline, doctor.check(cfg, domains, keys, &mut report)).await;
    match done {
        Ok(checked) => checked?,
        Err(_) => {
            report.section("Doctor");
            report.fail(
                "deadline",
                format!(
                    "the checks were stopped after {} s; those not listed above did not run",
                    deadline.as_secs()
                ),
                "run `wharf doctor` on the server for the whole table",
            );
        }
    }
    Ok(report)
}

/// What every check needs, settled before any of them runs.
struct Doctor {
    hostname: String,
    anchors: TrustAnchors,
    dns: Dns,
    /// The running server's record of its ports, when there is one and it is used.
    running: Option<crate::config::running::Running>,
    listeners: Vec<Listener>,
}

impl Doctor {
    fn new(cfg: &Loaded, resolver: Option<SocketAddr>, port_offset: Option<u16>) -> Result<Doctor> {
        let hostname = cfg.config.server.hostname.to_ascii_lowercase();
        let anchors = trust_anchors(cfg)?;
        let servers = match resolver {
            Some(r) => vec![r],
            None => cfg.config.outbound.dns_server.0.clone(),
        };
        let dns = Dns::new(&servers)?;
        // A running server's own record of its ports wins, unless --port-offset says otherwise.
        let running = port_offset
            .is_none()
            .then(|| crate::config::running::read_live(&cfg.data_dir))
            .flatten();
        let listeners = match &running {
            Some(r) => as_bound(cfg.listeners(), r),
            None => shifted(cfg.listeners(), port_offset)?,
        };
        Ok(Doctor {
            hostname,
            anchors,
            dns,
            running,
            listeners,
        })
    }

    /// Runs every check into `report`, which keeps the rows done so far if this is cut short.
    async fn check(
        &self,
        cfg: &Loaded,
        domains: &[String],
        keys: &[crate::dkim_keys::StoredKey],
        report: &mut Report,
    ) -> Result<()> {
        let Doctor {
            hostname,
            anchors,
            dns,
            listeners,
            ..
        } = self;
        let hostname = hostname.as_str();
        report.section("Listeners");
        let mut tls_seen: Option<TlsSeen> = None;
        for l in listeners {
            let topic = l.name.clone();
            if l.port == 0 {
                report.warn(
                    topic,
                    format!(
                        "{}: port 0 is chosen at start-up, so clients cannot be told it",
                        l.address
                    ),
                    format!(
                        "set `port` of listener `{}` in {}",
                        l.name,
                        cfg.path.display()
                    ),
                );
                continue;
            }
            let addr = SocketAddr::new(probe::connect_ip(l.address), l.port);
            // Each step has its own timeout; this bounds a peer that answers slowly forever.
            let outcome =
                tokio::time::timeout(PROBE_DEADLINE, probe::probe(l, l.port, hostname, anchors))
                    .await
                    .unwrap_or_else(|_| {
                        Outcome::Fail(
                            format!(
                                "{addr}: no complete exchange within {} s",
                                PROBE_DEADLINE.as_secs()
                            ),
                            format!("check the `wharf serve` log for listener `{}`", l.name),
                        )
                    });
            match outcome {
                Outcome::Ok(detail, tls) => {
                    report.ok(topic, format!("{addr} {}: {detail}", l.tls.as_str()));
                    if tls_seen.is_none() {
                        tls_seen = tls;
                    }
                }
                Outcome::Fail(problem, fix) => report.fail(topic, problem, fix),
                Outcome::Skipped(why) => report.push(
                    Mark::Warn,
                    topic,
                    format!("{addr}: {why}; not checked"),
                    None,
                ),
            }
        }

        report.section("Certificate");
        certificate(report, cfg, hostname, domains, tls_seen.as_ref());

        report.section(format!("DNS of the host {hostname}"));
        let host_ips = host_checks(report, dns, hostname).await;
        let Some(host_ips) = host_ips else {
            // The resolver does not answer: every further lookup would only wait for its timeout.
            report.fail(
                "DNS",
                format!(
                    "the domain checks were skipped: {} does not answer for {hostname}",
                    dns.source
                ),
                "point doctor at a working resolver (--resolver ADDR:PORT, outbound.dns_server or /etc/resolv.conf)",
            );
            return Ok(());
        };

        let https = listeners
            .iter()
            .find(|l| {
                l.protocol.as_str() == "http" && l.tls == ListenerTls::Implicit && l.port != 0
            })
            .map(|l| SocketAddr::new(probe::connect_ip(l.address), l.port));
        for domain in domains {
            report.section(format!("DNS of the domain {domain}"));
            let plan = DomainPlan::load(cfg, domain, keys)?;
            domain_checks(report, dns, &plan, &host_ips, https, anchors).await;
        }

        Ok(())
    }
}

/// Prints the table; any ✘ makes the command fail.
fn finish(report: &Report) -> Result<()> {
    print!("{}", report.render());
    let failed = report.count(Mark::Fail);
    if failed > 0 {
        bail!(
            "{failed} check{} failed: apply the fixes above, then run `wharf doctor` again",
            if failed == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

/// The configured domains, or the one asked for (which must be configured).
async fn domains(cfg: &Loaded, only: Option<&str>) -> Result<Vec<String>> {
    if let Some(d) = only {
        return Ok(vec![crate::dns_records::known_domain(cfg, d).await?]);
    }
    let dir = crate::storage::open_directory(cfg).await?;
    let list = dir
        .store()
        .list_domains()
        .await
        .map_err(crate::storage::store_err)?;
    if list.is_empty() {
        bail!("no mail domain is configured yet (add one: wharf domain add example.org)");
    }
    Ok(list
        .into_iter()
        .map(|d| d.name.to_ascii_lowercase())
        .collect())
}

/// The system's CAs plus `outbound.ca_file`: what this host trusts when it connects out.
fn trust_anchors(cfg: &Loaded) -> Result<TrustAnchors> {
    let anchors = TrustAnchors::system();
    match &cfg.config.outbound.ca_file {
        Some(p) => anchors
            .with_pem_file(&cfg.resolve(p))
            .map_err(|e| anyhow!("outbound.ca_file: {e}")),
        None => Ok(anchors),
    }
}

/// The configured listeners at the addresses the running server recorded (by name); a listener
/// it did not record keeps its configured address.
fn as_bound(mut list: Vec<Listener>, running: &crate::config::running::Running) -> Vec<Listener> {
    for l in &mut list {
        if let Some(b) = running.listeners.iter().find(|b| b.name == l.name) {
            l.address = b.address.ip();
            l.port = b.address.port();
        }
    }
    list
}

/// Listeners with `--port-offset` applied the way `serve` applies it (port 0 stays 0).
fn shifted(mut list: Vec<Listener>, offset: Option<u16>) -> Result<Vec<Listener>> {
    if let Some(offset) = offset {
        for l in &mut list {
            if l.port != 0 {
                l.port = l.port.checked_add(offset).ok_or_else(|| {
                    anyhow!(
                        "listener `{}`: port {} + --port-offset {offset} exceeds 65535",
                        l.name,
                        l.port
                    )
                })?;
            }
        }
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener that accepts but never speaks holds the run past its deadline: the reply keeps
    /// the sections begun and ends in a ✘ row naming the deadline.
    #[tokio::test]
    async fn a_run_past_its_deadline_keeps_what_was_done_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        let text = format!(
            "[server]\nhostname = \"mail.example.test\"\ndata_dir = \"{}\"\n\
             [[listener]]\naddress = \"127.0.0.1\"\nprotocol = \"imap\"\nport = {port}\n",
            dir.path().display()
        );
        let cfg = crate::config::parse(&dir.path().join("wharf.toml"), &text).unwrap();
        let started = std::time::Instant::now();
        let report = report(&cfg, &[], &[], std::time::Duration::from_millis(300))
            .await
            .unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        let json = report.json();
        let sections = json["sections"].as_array().unwrap();
        assert_eq!(sections[0]["title"], "Listeners", "{json:#}");
        let last = sections.last().unwrap();
        assert_eq!(last["title"], "Doctor", "{json:#}");
        assert_eq!(last["rows"][0]["mark"], "fail", "{json:#}");
        assert_eq!(last["rows"][0]["topic"], "deadline", "{json:#}");
        assert_eq!(json["failures"], 1, "{json:#}");
        drop(silent);
    }
}
