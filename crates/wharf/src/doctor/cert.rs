//! What a certificate says about itself: the names it covers, when it expires, whether it signed
//! itself. The trust decision is rustls' (made during the listener probes); these facts explain it.

use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

#[derive(Debug, Clone)]
pub struct CertFacts {
    /// DNS names of the subjectAltName extension, lower-cased.
    pub names: Vec<String>,
    pub not_after: i64,
    pub self_signed: bool,
    pub issuer: String,
}

pub fn facts(der: &[u8]) -> Result<CertFacts, String> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| format!("unreadable certificate: {e}"))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let GeneralName::DNSName(d) = n {
                names.push(d.to_ascii_lowercase());
            }
        }
    }
    Ok(CertFacts {
        names,
        not_after: cert.validity().not_after.timestamp(),
        // Same issuer and subject: nobody else vouches for it (a root or a self-made certificate).
        self_signed: cert.issuer().as_raw() == cert.subject().as_raw(),
        issuer: cert.issuer().to_string(),
    })
}

/// RFC 6125 matching: exact, or a `*.` wildcard standing for exactly one left-most label.
pub fn covers(names: &[String], host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    names.iter().any(|n| {
        if *n == host {
            return true;
        }
        match (n.strip_prefix("*."), host.split_once('.')) {
            (Some(suffix), Some((first, rest))) => !first.is_empty() && rest == suffix,
            _ => false,
        }
    })
}

/// Whole days from `now` to `not_after` (negative once expired).
pub fn days_left(not_after: i64, now: i64) -> i64 {
    (not_after - now).div_euclid(86_400)
}

pub fn date(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| ts.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_wildcards() {
        let names = vec!["mail.example.test".to_string(), "*.example.org".to_string()];
        assert!(covers(&names, "MAIL.example.test."));
        assert!(covers(&names, "mta-sts.example.org"));
        assert!(!covers(&names, "example.org"));
        assert!(!covers(&names, "a.b.example.org"));
        assert!(!covers(&names, "autoconfig.example.test"));
    }

    #[test]
    fn facts_of_a_generated_certificate() {
        let ck = rcgen::generate_simple_self_signed(vec![
            "mail.example.test".to_string(),
            "mta-sts.example.test".to_string(),
        ])
        .unwrap();
        let f = facts(ck.cert.der()).unwrap();
        assert!(f.self_signed);
        assert_eq!(f.names, ["mail.example.test", "mta-sts.example.test"]);
        assert!(f.not_after > 1_700_000_000);
        assert!(facts(b"junk").is_err());
        assert_eq!(days_left(86_400 * 10 + 5, 0), 10);
        assert_eq!(days_left(-5, 0), -1);
    }
}
