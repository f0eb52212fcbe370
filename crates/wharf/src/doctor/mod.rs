//! `wharf doctor`: checks from this server's own point of view that every configured listener
//! answers with its TLS mode, that the certificate suits the names and is not about to expire,
//! and that DNS says what `wharf dns` says it should (MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT,
//! CNAMEs, SRV, reverse DNS). Prints one ✔/!/✘ row per check with the exact fix under each
//! problem; any ✘ makes the command fail (exit status 1).

mod cert;
mod lookup;
mod probe;
mod records;

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use anyhow::{Result, anyhow, bail};
use wharf_outbound::TrustAnchors;

use crate::cli::DoctorArgs;
use crate::config::{Listener, ListenerTls, Loaded};
use crate::dns_records::DomainPlan;
use lookup::Dns;
use probe::{Outcome, TlsSeen};
use records::{Lookup, Spf};

/// Certificates closer than this to expiry get a warning (ACME renews at 30 days).
const EXPIRY_WARNING_DAYS: i64 = 14;
/// The longest one listener's check may take.
const PROBE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Ok,
    Warn,
    Fail,
}

impl Mark {
    fn symbol(self) -> &'static str {
        match self {
            Mark::Ok => "✔",
            Mark::Warn => "!",
            Mark::Fail => "✘",
        }
    }
}

#[derive(Debug)]
struct Row {
    mark: Mark,
    topic: String,
    text: String,
    fix: Option<String>,
}

#[derive(Debug, Default)]
struct Report {
    sections: Vec<(String, Vec<Row>)>,
}

impl Report {
    fn section(&mut self, title: impl Into<String>) {
        self.sections.push((title.into(), Vec::new()));
    }

    fn push(
        &mut self,
        mark: Mark,
        topic: impl Into<String>,
        text: impl Into<String>,
        fix: Option<String>,
    ) {
        if self.sections.is_empty() {
            self.section("");
        }
        if let Some((_, rows)) = self.sections.last_mut() {
            rows.push(Row {
                mark,
                topic: topic.into(),
                text: text.into(),
                fix,
            });
        }
    }

    fn ok(&mut self, topic: impl Into<String>, text: impl Into<String>) {
        self.push(Mark::Ok, topic, text, None);
    }

    fn warn(&mut self, topic: impl Into<String>, text: impl Into<String>, fix: impl Into<String>) {
        self.push(Mark::Warn, topic, text, Some(fix.into()));
    }

    fn fail(&mut self, topic: impl Into<String>, text: impl Into<String>, fix: impl Into<String>) {
        self.push(Mark::Fail, topic, text, Some(fix.into()));
    }

    fn count(&self, mark: Mark) -> usize {
        self.sections
            .iter()
            .flat_map(|(_, rows)| rows)
            .filter(|r| r.mark == mark)
            .count()
    }

    fn render(&self) -> String {
        let width = self
            .sections
            .iter()
            .flat_map(|(_, rows)| rows)
            .map(|r| r.topic.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for (title, rows) in &self.sections {
            let _ = writeln!(out, "\n{title}");
            for r in rows {
                let _ = writeln!(out, "  {} {:<width$}  {}", r.mark.symbol(), r.topic, r.text);
                if let Some(fix) = &r.fix {
                    let _ = writeln!(out, "    {:<width$}  fix: {fix}", "");
                }
            }
        }
        let _ = writeln!(
            out,
            "\n{} ✔  {} !  {} ✘",
            self.count(Mark::Ok),
            self.count(Mark::Warn),
            self.count(Mark::Fail)
        );
        out
    }
}

pub async fn run(cfg: &Loaded, args: DoctorArgs) -> Result<()> {
    let hostname = cfg.config.server.hostname.to_ascii_lowercase();
    let domains = domains(cfg, args.domain.as_deref()).await?;
    let anchors = trust_anchors(cfg)?;
    let servers = match args.resolver {
        Some(r) => vec![r],
        None => cfg.config.outbound.dns_server.0.clone(),
    };
    let dns = Dns::new(&servers)?;
    let listeners = shifted(cfg.listeners(), args.port_offset)?;

    let mut report = Report::default();
    println!(
        "wharf doctor: host {hostname}, config {}, DNS from {}",
        cfg.path.display(),
        dns.source
    );

    report.section("Listeners");
    let mut tls_seen: Option<TlsSeen> = None;
    for l in &listeners {
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
            tokio::time::timeout(PROBE_DEADLINE, probe::probe(l, l.port, &hostname, &anchors))
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
    certificate(&mut report, cfg, &hostname, &domains, tls_seen.as_ref());

    report.section(format!("DNS of the host {hostname}"));
    let host_ips = host_checks(&mut report, &dns, &hostname).await;
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
        return finish(&report);
    };

    let https = listeners
        .iter()
        .find(|l| l.protocol.as_str() == "http" && l.tls == ListenerTls::Implicit && l.port != 0)
        .map(|l| SocketAddr::new(probe::connect_ip(l.address), l.port));
    for domain in &domains {
        report.section(format!("DNS of the domain {domain}"));
        let plan = DomainPlan::load(cfg, domain)?;
        domain_checks(&mut report, &dns, &plan, &host_ips, https, &anchors).await;
    }

    finish(&report)
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
    let dir = crate::admin::open_directory(cfg).await?;
    let list = dir
        .store()
        .list_domains()
        .await
        .map_err(crate::admin::store_err)?;
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

const CERT_FIX: &str = "use a certificate from a public CA: enable [acme] (enabled = true), or point [tls] cert/key at your CA's files (cert holding the full chain); then `kill -HUP` wharf serve";

fn certificate(
    report: &mut Report,
    cfg: &Loaded,
    hostname: &str,
    domains: &[String],
    seen: Option<&TlsSeen>,
) {
    // What the listeners present is what clients get; the file only when no TLS listener answered.
    let (der, verified, source) = match seen.and_then(|s| s.chain.first().map(|c| (c, s.verified)))
    {
        Some((c, v)) => (
            c.as_ref().to_vec(),
            Some(v),
            "served by the listeners".to_string(),
        ),
        None => {
            let (path, _, _) = cfg.tls_paths();
            let pem = match std::fs::read(&path) {
                Ok(p) => p,
                Err(e) => {
                    report.fail(
                        "certificate",
                        format!("no TLS listener answered and {} cannot be read: {e}", path.display()),
                        "start `wharf serve` (it creates a self-signed certificate) or set [tls] cert/key",
                    );
                    return;
                }
            };
            use rustls_pki_types::pem::PemObject;
            match rustls_pki_types::CertificateDer::pem_slice_iter(&pem).next() {
                Some(Ok(c)) => (c.as_ref().to_vec(), None, format!("in {}", path.display())),
                _ => {
                    report.fail(
                        "certificate",
                        format!("{} holds no PEM certificate", path.display()),
                        "point [tls] cert at a PEM certificate chain",
                    );
                    return;
                }
            }
        }
    };
    let f = match cert::facts(&der) {
        Ok(f) => f,
        Err(e) => {
            report.fail("certificate", e, CERT_FIX);
            return;
        }
    };
    let now = chrono::Utc::now().timestamp();
    let days = cert::days_left(f.not_after, now);
    let names = f.names.join(", ");
    let covers_host = cert::covers(&f.names, hostname);
    match verified {
        Some(true) => report.ok(
            "trust",
            format!(
                "certificate {source} is valid for {hostname} (issuer {})",
                f.issuer
            ),
        ),
        _ => {
            let why = if !covers_host {
                format!("is not valid for {hostname} (it names {names})")
            } else if f.self_signed {
                "is self-signed: mail clients warn or refuse, MTA-STS senders refuse".to_string()
            } else if days < 0 {
                "has expired".to_string()
            } else if verified.is_none() {
                "was not presented by any listener, so its chain was not checked".to_string()
            } else {
                format!(
                    "does not chain to a trusted CA (issuer {}; is the intermediate certificate missing from the cert file?)",
                    f.issuer
                )
            };
            report.fail("trust", format!("certificate {source} {why}"), CERT_FIX);
        }
    }
    let when = cert::date(f.not_after);
    if days < 0 {
        report.fail("expiry", format!("expired on {when}"), CERT_FIX);
    } else if days < EXPIRY_WARNING_DAYS {
        report.warn(
            "expiry",
            format!("expires on {when}: {days} days left"),
            "renew it now (with [acme] it renews by itself: check the `wharf serve` log for ACME errors)",
        );
    } else {
        report.ok("expiry", format!("expires on {when} ({days} days left)"));
    }
    for domain in domains {
        let sts = format!("mta-sts.{domain}");
        if cert::covers(&f.names, &sts) {
            report.ok("names", format!("covers {sts}"));
        } else {
            report.fail(
                "names",
                format!("does not cover {sts}: senders cannot fetch the MTA-STS policy over HTTPS"),
                format!(
                    "add {sts} to the certificate ([acme] requests it; or add it to your CA order)"
                ),
            );
        }
        let auto = format!("autoconfig.{domain}");
        if cert::covers(&f.names, &auto) {
            report.ok("names", format!("covers {auto}"));
        } else {
            report.warn(
                "names",
                format!("does not cover {auto}: Thunderbird falls back to plain HTTP or guessing"),
                format!("add {auto} to the certificate ([acme] requests it)"),
            );
        }
    }
}

/// A and AAAA of the host name, and the reverse DNS of each address (it must name the host:
/// receivers compare it with the HELO name, which is the host name). `None` when the resolver
/// does not answer at all.
async fn host_checks(report: &mut Report, dns: &Dns, hostname: &str) -> Option<Vec<IpAddr>> {
    let ips = match dns.addrs(hostname).await {
        Ok(ips) => ips,
        Err(e) => {
            report.fail(
                "A/AAAA",
                format!("lookup of {hostname} failed: {e}"),
                "check the resolver (--resolver, outbound.dns_server, /etc/resolv.conf)",
            );
            return None;
        }
    };
    if ips.is_empty() {
        report.fail(
            "A/AAAA",
            format!("{hostname} has no address"),
            format!(
                "{hostname}. 3600 IN A <this server's public IPv4 address> (and AAAA for IPv6)"
            ),
        );
        return Some(ips);
    }
    let list: Vec<String> = ips.iter().map(ToString::to_string).collect();
    report.ok("A/AAAA", format!("{hostname} → {}", list.join(", ")));
    for ip in &ips {
        let rev = lookup::reverse_name(*ip);
        match dns.ptr(*ip).await {
            Ok(names) if names.iter().any(|n| n == hostname) => {
                report.ok("PTR", format!("{ip} → {hostname} (matches the HELO name)"));
            }
            Ok(names) => {
                let now = if names.is_empty() {
                    "has no reverse DNS".to_string()
                } else {
                    format!("points back to {}", names.join(", "))
                };
                report.fail(
                    "PTR",
                    format!("{ip} {now}, but mail from it says HELO {hostname}: receivers will distrust it"),
                    format!(
                        "ask the owner of {ip} (your hosting provider) to set its reverse DNS: {rev}. 3600 IN PTR {hostname}."
                    ),
                );
            }
            Err(e) => report.fail(
                "PTR",
                format!("reverse lookup of {ip} failed: {e}"),
                format!("the reverse zone must answer: {rev}. 3600 IN PTR {hostname}."),
            ),
        }
    }
    Some(ips)
}

fn lookup_failed(report: &mut Report, topic: &str, name: &str, e: &str) {
    report.fail(
        topic,
        format!("lookup of {name} failed: {e}"),
        "check the resolver (--resolver, outbound.dns_server, /etc/resolv.conf) and the zone's name servers",
    );
}

/// The zone line `wharf dns` prints for an owner and type, as a fix.
fn line(plan: &DomainPlan, owner: &str, rtype: &str) -> String {
    plan.line_for(owner, rtype)
        .unwrap_or_else(|| format!("see `wharf dns {}`", plan.domain))
}

async fn points_here(dns: &Dns, name: &str, host_ips: &[IpAddr]) -> Result<bool, String> {
    let ips = dns.addrs(name).await?;
    Ok(ips.iter().any(|ip| host_ips.contains(ip)))
}

async fn domain_checks(
    report: &mut Report,
    dns: &Dns,
    plan: &DomainPlan,
    host_ips: &[IpAddr],
    https: Option<SocketAddr>,
    anchors: &TrustAnchors,
) {
    let d = plan.domain.as_str();
    let host = plan.hostname.as_str();
    mx(report, dns, plan, host_ips).await;
    spf(report, dns, plan, host_ips).await;
    dkim(report, dns, plan).await;
    dmarc(report, dns, plan).await;
    mta_sts(report, dns, plan, host_ips, https, anchors).await;

    let name = format!("_smtp._tls.{d}");
    match dns.txt(&name).await {
        Ok(txts) => match records::tls_rpt_ok(&txts) {
            Ok(()) => report.ok("TLS-RPT", format!("{name} asks for TLS reports")),
            Err(e) => report.warn(
                "TLS-RPT",
                format!("{name}: {e}: failures of senders' TLS to this host go unreported"),
                line(plan, &name, "TXT"),
            ),
        },
        Err(e) => lookup_failed(report, "TLS-RPT", &name, &e),
    }

    for label in ["autoconfig", "autodiscover"] {
        let name = format!("{label}.{d}");
        match points_here(dns, &name, host_ips).await {
            Ok(true) => report.ok("CNAME", format!("{name} → {host}")),
            Ok(false) => report.warn(
                "CNAME",
                format!("{name} does not lead to {host}: mail clients cannot configure themselves from it"),
                line(plan, &name, "CNAME"),
            ),
            Err(e) => lookup_failed(report, "CNAME", &name, &e),
        }
    }

    srv(report, dns, plan).await;
}

async fn mx(report: &mut Report, dns: &Dns, plan: &DomainPlan, host_ips: &[IpAddr]) {
    let d = plan.domain.as_str();
    let host = plan.hostname.as_str();
    let fix = line(plan, d, "MX");
    let list = match dns.mx(d).await {
        Ok(l) => l,
        Err(e) => return lookup_failed(report, "MX", d, &e),
    };
    if list.is_empty() {
        return report.fail(
            "MX",
            format!("{d} has no MX record: nobody can send mail to it"),
            fix,
        );
    }
    let best = list.iter().map(|(p, _)| *p).min().unwrap_or(0);
    let mut here = None;
    for (pref, exch) in &list {
        let ours = exch == host
            || (!host_ips.is_empty() && matches!(points_here(dns, exch, host_ips).await, Ok(true)));
        if ours && here.as_ref().is_none_or(|(p, _)| pref < p) {
            here = Some((*pref, exch.clone()));
        }
    }
    let shown: Vec<String> = list.iter().map(|(p, h)| format!("{p} {h}")).collect();
    match here {
        Some((pref, _)) if pref == best => {
            report.ok("MX", format!("{d} → {}", shown.join(", ")));
        }
        Some((pref, _)) => report.warn(
            "MX",
            format!(
                "{d} → {}: this host is only a backup (preference {pref})",
                shown.join(", ")
            ),
            format!("if this host should receive the mail: {fix}"),
        ),
        None => report.fail(
            "MX",
            format!("{d} → {}, not this host {host}", shown.join(", ")),
            format!("replace the MX records with: {fix}"),
        ),
    }
}

async fn spf(report: &mut Report, dns: &Dns, plan: &DomainPlan, host_ips: &[IpAddr]) {
    let d = plan.domain.as_str();
    let host = plan.hostname.as_str();
    let txts = match dns.txt(d).await {
        Ok(t) => t,
        Err(e) => return lookup_failed(report, "SPF", d, &e),
    };
    let record = match records::spf_record(&txts) {
        Ok(Some(r)) => r.clone(),
        Ok(None) => {
            return report.fail(
                "SPF",
                format!("{d} has no SPF record: receivers cannot tell this host may send its mail"),
                line(plan, d, "TXT"),
            );
        }
        Err(e) => {
            return report.fail("SPF", format!("{d}: {e}"), line(plan, d, "TXT"));
        }
    };
    if host_ips.is_empty() {
        return report.warn(
            "SPF",
            format!("\"{record}\" not evaluated: {host} has no address"),
            format!("{host}. 3600 IN A <this server's public IPv4 address>"),
        );
    }
    let mut bad = Vec::new();
    for ip in host_ips {
        let r = records::check_spf(dns, *ip, d).await;
        if r != Spf::Pass {
            bad.push(format!("{} for {ip}", r.name()));
        }
    }
    if bad.is_empty() {
        let ips: Vec<String> = host_ips.iter().map(ToString::to_string).collect();
        report.ok("SPF", format!("\"{record}\" passes {}", ips.join(", ")));
    } else {
        // Authorising the host by name works whatever the MX records say.
        let mut terms: Vec<&str> = record.split_whitespace().collect();
        let add = format!("a:{host}");
        terms.insert(1.min(terms.len()), &add);
        let fixed = terms.join(" ");
        report.fail(
            "SPF",
            format!(
                "\"{record}\" gives {}: mail from this host fails SPF",
                bad.join(", ")
            ),
            format!("{d}. 3600 IN TXT \"{fixed}\""),
        );
    }
}

async fn dkim(report: &mut Report, dns: &Dns, plan: &DomainPlan) {
    let d = plan.domain.as_str();
    if plan.dkim.is_empty() {
        return report.warn(
            "DKIM",
            format!("no DKIM key for {d}: its mail is not signed, so DMARC rests on SPF alone"),
            format!("wharf dkim generate {d}, publish the record it prints, restart `wharf serve`"),
        );
    }
    for key in &plan.dkim {
        let name = &key.record.dns_name;
        let fix = line(plan, name, "TXT");
        let expected = records::dkim_public_key(&key.record.txt_value).map(|(_, p)| p);
        let txts = match dns.txt(name).await {
            Ok(t) => t,
            Err(e) => {
                lookup_failed(report, "DKIM", name, &e);
                continue;
            }
        };
        let published: Vec<Result<(String, String), String>> =
            txts.iter().map(|t| records::dkim_public_key(t)).collect();
        if txts.is_empty() {
            report.fail(
                "DKIM",
                format!(
                    "{name} is not published: receivers cannot verify signatures by {}",
                    key.file.display()
                ),
                fix,
            );
        } else if published
            .iter()
            .any(|p| matches!((p, &expected), (Ok((_, got)), Ok(want)) if got == want))
        {
            report.ok("DKIM", format!("{name} matches {}", key.file.display()));
        } else {
            let why = published
                .iter()
                .find_map(|p| p.as_ref().err().cloned())
                .unwrap_or_else(|| format!("holds a different key than {}", key.file.display()));
            report.fail(
                "DKIM",
                format!("{name} {why}: signatures by this key fail"),
                fix,
            );
        }
    }
}

async fn dmarc(report: &mut Report, dns: &Dns, plan: &DomainPlan) {
    let name = format!("_dmarc.{}", plan.domain);
    let fix = line(plan, &name, "TXT");
    let txts = match dns.txt(&name).await {
        Ok(t) => t,
        Err(e) => return lookup_failed(report, "DMARC", &name, &e),
    };
    let recs = records::versioned(&txts, "DMARC1");
    match recs.as_slice() {
        [] => report.fail(
            "DMARC",
            format!(
                "{name} has no DMARC record: receivers apply their own guess and send no reports"
            ),
            fix,
        ),
        [one] => match records::parse_dmarc(one) {
            Ok(dm) if dm.policy == "none" => report.warn(
                "DMARC",
                format!("{name}: p=none only monitors; forged mail is still delivered"),
                fix,
            ),
            Ok(dm) => report.ok("DMARC", format!("{name}: p={}", dm.policy)),
            Err(e) => report.fail("DMARC", format!("{name}: \"{one}\" {e}"), fix),
        },
        _ => report.fail(
            "DMARC",
            format!(
                "{name} has {} DMARC records: receivers ignore them all",
                recs.len()
            ),
            format!("keep only: {fix}"),
        ),
    }
}

async fn mta_sts(
    report: &mut Report,
    dns: &Dns,
    plan: &DomainPlan,
    host_ips: &[IpAddr],
    https: Option<SocketAddr>,
    anchors: &TrustAnchors,
) {
    let d = plan.domain.as_str();
    let name = format!("_mta-sts.{d}");
    let want = plan.mta_sts_id();
    match dns.txt(&name).await {
        Ok(txts) => match records::mta_sts_id(&txts) {
            Ok(id) if id == want => report.ok("MTA-STS", format!("{name}: id={id} matches the configured policy")),
            Ok(id) => report.fail(
                "MTA-STS",
                format!("{name}: id={id}, but the configured policy's id is {want}: senders keep using their cached old policy"),
                line(plan, &name, "TXT"),
            ),
            Err(e) => report.fail(
                "MTA-STS",
                format!("{name}: {e}: senders will not require TLS to this host"),
                line(plan, &name, "TXT"),
            ),
        },
        Err(e) => lookup_failed(report, "MTA-STS", &name, &e),
    }
    let policy_host = format!("mta-sts.{d}");
    match points_here(dns, &policy_host, host_ips).await {
        Ok(true) => report.ok("MTA-STS", format!("{policy_host} → {}", plan.hostname)),
        Ok(false) => report.fail(
            "MTA-STS",
            format!(
                "{policy_host} does not lead to {}: senders cannot fetch the policy",
                plan.hostname
            ),
            line(plan, &policy_host, "CNAME"),
        ),
        Err(e) => lookup_failed(report, "MTA-STS", &policy_host, &e),
    }
    let url = format!("https://{policy_host}/.well-known/mta-sts.txt");
    let Some(addr) = https else {
        return report.warn(
            "MTA-STS",
            format!("no HTTPS listener is configured, so this server does not serve {url}"),
            "add a [[listener]] with protocol = \"http\" and tls = \"implicit\" (port 443)",
        );
    };
    match probe::https_get(addr, &policy_host, "/.well-known/mta-sts.txt", anchors).await {
        Ok((200, body)) if body.trim_end() == plan.mta_sts_policy().trim_end() => {
            report.ok(
                "MTA-STS",
                format!("{url} (via {addr}) serves the configured policy"),
            );
        }
        Ok((200, body)) => report.fail(
            "MTA-STS",
            format!(
                "{url} (via {addr}) serves a policy other than the configured one: {:?}",
                body.chars().take(120).collect::<String>()
            ),
            "restart `wharf serve` so that it serves the policy of [http.mta_sts]",
        ),
        Ok((code, _)) => report.fail(
            "MTA-STS",
            format!("{url} (via {addr}) answers HTTP {code}"),
            format!("{d} must be a local domain (wharf domain add {d}) and `wharf serve` current"),
        ),
        Err(e) => report.fail(
            "MTA-STS",
            format!("{url} (via {addr}): {e}"),
            "check the HTTPS listener and the `wharf serve` log",
        ),
    }
}

async fn srv(report: &mut Report, dns: &Dns, plan: &DomainPlan) {
    let d = plan.domain.as_str();
    let host = plan.hostname.as_str();
    let p = &plan.ports;
    let services = [
        ("_submissions", p.submissions, Mark::Fail),
        ("_submission", p.submission, Mark::Fail),
        ("_imaps", p.imaps, Mark::Fail),
        ("_imap", p.imap, Mark::Fail),
        ("_pop3s", p.pop3s, Mark::Fail),
        ("_pop3", p.pop3, Mark::Fail),
        // Only Outlook asks, and only after its other Autodiscover URLs fail.
        ("_autodiscover", 443, Mark::Warn),
    ];
    for (svc, port, severity) in services {
        let name = format!("{svc}._tcp.{d}");
        let fix = line(plan, &name, "SRV");
        let recs = match dns.srv(&name).await {
            Ok(r) => r,
            Err(e) => {
                lookup_failed(report, "SRV", &name, &e);
                continue;
            }
        };
        let shown: Vec<String> = recs
            .iter()
            .map(|r| format!("{} {} {} {}", r.priority, r.weight, r.port, r.target))
            .collect();
        if port == 0 {
            if recs.iter().all(|r| r.target == ".") {
                report.ok("SRV", format!("{name}: not offered, and not advertised"));
            } else {
                report.push(
                    severity,
                    "SRV",
                    format!(
                        "{name} → {}, but this server offers no such listener",
                        shown.join(", ")
                    ),
                    Some(fix),
                );
            }
            continue;
        }
        if recs.iter().any(|r| r.target == host && r.port == port) {
            report.ok("SRV", format!("{name} → {host}:{port}"));
        } else if recs.is_empty() {
            report.push(
                severity,
                "SRV",
                format!("{name} is missing: clients cannot discover port {port}"),
                Some(fix),
            );
        } else {
            report.push(
                severity,
                "SRV",
                format!(
                    "{name} → {}, but the listener is {host}:{port}",
                    shown.join(", ")
                ),
                Some(fix),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_pem(names: &[&str], days: i64) -> (String, Vec<u8>) {
        let mut p =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let now = chrono::Utc::now().timestamp();
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        let end = chrono::DateTime::from_timestamp(now + days * 86_400, 0).unwrap();
        use chrono::Datelike;
        p.not_after = rcgen::date_time_ymd(end.year(), end.month() as u8, end.day() as u8);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        (cert.pem(), cert.der().to_vec())
    }

    fn rows(report: &Report) -> Vec<(Mark, String, String)> {
        report
            .sections
            .iter()
            .flat_map(|(_, r)| r)
            .map(|r| (r.mark, r.topic.clone(), r.text.clone()))
            .collect()
    }

    #[test]
    fn certificate_problems_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let (pem, der) = cert_pem(&["mail.example.test"], 400);
        std::fs::write(dir.path().join("cert.pem"), &pem).unwrap();
        let cfg = crate::config::parse(
            &dir.path().join("wharf.toml"),
            "[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n",
        )
        .unwrap();
        let domains = vec!["example.test".to_string()];

        // Read from the file when no listener answered: self-signed is named as such.
        let mut r = Report::default();
        certificate(&mut r, &cfg, "mail.example.test", &domains, None);
        let got = rows(&r);
        assert!(
            got.iter().any(|(m, t, x)| *m == Mark::Fail
                && t == "trust"
                && x.contains("in ")
                && x.contains("self-signed")),
            "{got:?}"
        );
        assert!(
            got.iter().any(|(m, t, _)| *m == Mark::Ok && t == "expiry"),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|(m, _, x)| *m == Mark::Fail && x.contains("mta-sts.example.test")),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|(m, _, x)| *m == Mark::Warn && x.contains("autoconfig.example.test")),
            "{got:?}"
        );

        // Served, for another name, and about to expire.
        let (_, der2) = cert_pem(
            &[
                "other.example.test",
                "mta-sts.example.test",
                "*.example.org",
                "autoconfig.example.test",
            ],
            5,
        );
        let seen = TlsSeen {
            verified: false,
            chain: vec![der2.into()],
            version: "TLS 1.3".into(),
        };
        let mut r = Report::default();
        certificate(&mut r, &cfg, "mail.example.test", &domains, Some(&seen));
        let got = rows(&r);
        assert!(
            got.iter().any(|(m, _, x)| *m == Mark::Fail
                && x.contains("served by the listeners is not valid for mail.example.test")),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|(m, t, x)| *m == Mark::Warn && t == "expiry" && x.contains("days left")),
            "{got:?}"
        );
        // Both service names are covered.
        assert!(
            got.iter()
                .filter(|(m, t, _)| *m == Mark::Ok && t == "names")
                .count()
                == 2,
            "{got:?}"
        );

        // Verified by rustls: trusted.
        let seen = TlsSeen {
            verified: true,
            chain: vec![der.into()],
            version: "TLS 1.3".into(),
        };
        let mut r = Report::default();
        certificate(&mut r, &cfg, "mail.example.test", &domains, Some(&seen));
        assert!(
            rows(&r)
                .iter()
                .any(|(m, t, _)| *m == Mark::Ok && t == "trust")
        );
    }

    #[test]
    fn report_marks_and_fixes() {
        let mut r = Report::default();
        r.section("S");
        r.ok("a", "fine");
        r.warn("bb", "meh", "do x");
        r.fail("c", "broken", "zone line");
        let text = r.render();
        assert!(
            text.contains("\nS\n  ✔ a   fine\n  ! bb  meh\n      "),
            "{text}"
        );
        assert!(text.contains("fix: do x"), "{text}");
        assert!(text.contains("  ✘ c   broken\n      "), "{text}");
        assert!(text.ends_with("1 ✔  1 !  1 ✘\n"), "{text}");
    }
}
