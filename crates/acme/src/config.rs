//! What the ACME manager is told: CA directory, contact, challenge type,
//! the names to certify and the timing of renewals and retries.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// How the CA is to validate control of each name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChallengeKind {
    /// RFC 8555 section 8.3: `http://<name>/.well-known/acme-challenge/<token>` on port 80.
    #[default]
    Http01,
    /// RFC 8737: a TLS handshake on port 443 with ALPN `acme-tls/1`.
    TlsAlpn01,
}

impl ChallengeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeKind::Http01 => "http-01",
            ChallengeKind::TlsAlpn01 => "tls-alpn-01",
        }
    }

    pub(crate) fn acme_type(self) -> instant_acme::ChallengeType {
        match self {
            ChallengeKind::Http01 => instant_acme::ChallengeType::Http01,
            ChallengeKind::TlsAlpn01 => instant_acme::ChallengeType::TlsAlpn01,
        }
    }
}

impl FromStr for ChallengeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "http-01" => Ok(ChallengeKind::Http01),
            "tls-alpn-01" => Ok(ChallengeKind::TlsAlpn01),
            other => Err(format!(
                "unknown ACME challenge {other:?} (expected \"http-01\" or \"tls-alpn-01\")"
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AcmeSettings {
    /// The CA's directory URL (RFC 8555 section 7.1.1).
    pub directory_url: String,
    /// Contact URIs for the account, e.g. `mailto:postmaster@example.org`.
    pub contact: Vec<String>,
    pub challenge: ChallengeKind,
    /// Names on the certificate (DNS names, first one is the subject).
    pub names: Vec<String>,
    /// Renew when less than this remains; `None`: a third of the
    /// certificate's lifetime, at most 30 days.
    pub renew_margin: Option<Duration>,
    /// Where the account key, certificate and key are kept.
    pub state_dir: PathBuf,
    /// PEM root to trust for the CA's HTTPS directory instead of the
    /// system roots (a private CA such as step-ca).
    pub ca_root: Option<PathBuf>,
    /// How often the certificate's expiry is looked at.
    pub check_interval: Duration,
    /// First wait after a failed attempt; doubled per failure up to `retry_max`.
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// How long to wait for the CA to validate or to issue.
    pub order_timeout: Duration,
    /// Shared state only: how often a node looks for the challenges and the certificate of
    /// the node that orders. The ordering node waits a little over twice this after
    /// publishing a challenge, before the CA is told to validate.
    pub follow_interval: Duration,
}

impl AcmeSettings {
    pub fn new(directory_url: String, names: Vec<String>, state_dir: PathBuf) -> AcmeSettings {
        AcmeSettings {
            directory_url,
            contact: Vec::new(),
            challenge: ChallengeKind::Http01,
            names,
            renew_margin: None,
            state_dir,
            ca_root: None,
            check_interval: Duration::from_secs(12 * 3600),
            retry_min: Duration::from_secs(5 * 60),
            retry_max: Duration::from_secs(6 * 3600),
            order_timeout: Duration::from_secs(120),
            follow_interval: Duration::from_secs(2),
        }
    }
}

/// The names Wharf needs a certificate for: the host name, then
/// `autoconfig.<domain>` and `mta-sts.<domain>` for every domain, then the
/// extra names; lower-cased, without duplicates, in that order.
pub fn certificate_names(hostname: &str, domains: &[String], extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut add = |n: String| {
        let n = n.trim().trim_end_matches('.').to_ascii_lowercase();
        if !n.is_empty() && !names.contains(&n) {
            names.push(n);
        }
    };
    add(hostname.to_string());
    for d in domains {
        add(format!("autoconfig.{d}"));
        add(format!("mta-sts.{d}"));
    }
    for e in extra {
        add(e.clone());
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_order_without_duplicates() {
        let names = certificate_names(
            "Mail.Example.org.",
            &["example.org".into(), "example.net".into()],
            &["mail.example.org".into(), "webmail.example.org".into()],
        );
        assert_eq!(
            names,
            [
                "mail.example.org",
                "autoconfig.example.org",
                "mta-sts.example.org",
                "autoconfig.example.net",
                "mta-sts.example.net",
                "webmail.example.org"
            ]
        );
    }

    #[test]
    fn challenge_names() {
        assert_eq!(
            "http-01".parse::<ChallengeKind>(),
            Ok(ChallengeKind::Http01)
        );
        assert_eq!(
            "tls-alpn-01".parse::<ChallengeKind>(),
            Ok(ChallengeKind::TlsAlpn01)
        );
        assert!("dns-01".parse::<ChallengeKind>().is_err());
    }
}
