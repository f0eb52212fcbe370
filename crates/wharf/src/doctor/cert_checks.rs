//! The certificate checks: whether clients trust what the listeners present (or the configured
//! file when none answered), how long it has left, and whether it covers the MTA-STS and
//! autoconfig names of every domain.

use super::cert;
use super::probe::TlsSeen;
use super::report::Report;
use crate::config::Loaded;

/// Certificates closer than this to expiry get a warning (ACME renews at 30 days).
const EXPIRY_WARNING_DAYS: i64 = 14;

const CERT_FIX: &str = "use a certificate from a public CA: enable [acme] (enabled = true), or point [tls] cert/key at your CA's files (cert holding the full chain); then `kill -HUP` wharf serve";

pub(super) fn certificate(
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

#[cfg(test)]
mod tests {
    use super::super::report::Mark;
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
}
