//! The DNS checks: the host name's addresses and reverse DNS, then per domain the records
//! `wharf dns` prints (MX, SPF, DKIM, DMARC, MTA-STS with its policy over HTTPS, TLS-RPT,
//! CNAMEs, SRV), each compared with what it should be.

use std::net::{IpAddr, SocketAddr};

use wharf_outbound::TrustAnchors;

use super::lookup::{self, Dns};
use super::probe;
use super::records::{self, Lookup};
use super::report::{Mark, Report};
use crate::dns_records::DomainPlan;

/// A and AAAA of the host name, and the reverse DNS of each address (it must name the host:
/// receivers compare it with the HELO name, which is the host name). `None` when the resolver
/// does not answer at all.
pub(super) async fn host_checks(
    report: &mut Report,
    dns: &Dns,
    hostname: &str,
) -> Option<Vec<IpAddr>> {
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

pub(super) async fn domain_checks(
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
    // The evaluation receivers make, through the same code as our own inbound checks.
    let verifier = match wharf_inbound::Verifier::new(
        dns.resolver(),
        wharf_inbound::InboundConfig::default(),
        host,
    ) {
        Ok(v) => v,
        Err(e) => return report.warn("SPF", format!("not evaluated: {e}"), String::new()),
    };
    let mut bad = Vec::new();
    for ip in host_ips {
        let out = verifier
            .spf_mail_from(*ip, host, &format!("postmaster@{d}"))
            .await;
        if out.result() != wharf_inbound::SpfResult::Pass {
            bad.push(format!("{} for {ip}", spf_name(out.result())));
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
            format!("wharf dkim generate {d}, publish the record it prints, reload `wharf serve` (SIGHUP)"),
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
                    "{name} is not published: receivers cannot verify signatures by the key {}",
                    key.selector
                ),
                fix,
            );
        } else if published
            .iter()
            .any(|p| matches!((p, &expected), (Ok((_, got)), Ok(want)) if got == want))
        {
            report.ok("DKIM", format!("{name} matches the key {}", key.selector));
        } else {
            let why = published
                .iter()
                .find_map(|p| p.as_ref().err().cloned())
                .unwrap_or_else(|| {
                    format!("holds a different key than the stored {}", key.selector)
                });
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

fn spf_name(r: wharf_inbound::SpfResult) -> &'static str {
    use wharf_inbound::SpfResult as R;
    match r {
        R::Pass => "pass",
        R::Fail => "fail",
        R::SoftFail => "softfail",
        R::Neutral => "neutral",
        R::TempError => "temperror",
        R::PermError => "permerror",
        R::None => "none",
    }
}
