//! What TLS-RPT reports (RFC 8460) are made of: the outcome of each TLS negotiation with a
//! receiving MX, under the policy that applied to its domain (DANE, MTA-STS or none), handed to
//! a sink the binary provides (which counts them for the daily report). Connection failures
//! below TLS (refused, timed out) are not TLS results and are not reported.

use std::net::IpAddr;
use std::sync::Arc;

use crate::client::ClientError;

/// The policy a session ran under (RFC 8460 §4.3 `policy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportPolicy {
    /// DANE: the TLSA records of the host, as presentation strings.
    Tlsa {
        records: Vec<String>,
    },
    /// MTA-STS: the policy's lines and its `mx` patterns.
    Sts {
        lines: Vec<String>,
        mx: Vec<String>,
    },
    NoPolicyFound,
}

/// RFC 8460 §4.3.2 result types we can tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    StartTlsNotSupported,
    CertificateHostMismatch,
    CertificateExpired,
    CertificateNotTrusted,
    ValidationFailure,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::StartTlsNotSupported => "starttls-not-supported",
            FailureKind::CertificateHostMismatch => "certificate-host-mismatch",
            FailureKind::CertificateExpired => "certificate-expired",
            FailureKind::CertificateNotTrusted => "certificate-not-trusted",
            FailureKind::ValidationFailure => "validation-failure",
        }
    }
}

/// One TLS negotiation with one address of one MX host of `policy_domain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSession {
    pub policy_domain: String,
    pub policy: ReportPolicy,
    pub mx_host: String,
    pub receiving_ip: IpAddr,
    /// `None`: TLS was negotiated (and authenticated as the policy requires).
    pub failure: Option<(FailureKind, String)>,
}

/// Where the delivery code reports TLS outcomes. Must not block: it runs on the delivery path.
pub trait TlsResultSink: Send + Sync {
    fn record(&self, session: TlsSession);
}

/// A sink as the client configuration carries it (cheap to clone).
#[derive(Clone)]
pub struct SinkHandle(pub Arc<dyn TlsResultSink>);

impl std::fmt::Debug for SinkHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsResultSink")
    }
}

/// The RFC 8460 result type of a failed connection attempt, or `None` when the failure was not
/// about TLS (TCP, SMTP replies before STARTTLS, timeouts before it).
pub fn classify(err: &ClientError) -> Option<(FailureKind, String)> {
    match err {
        ClientError::Tls(text) => {
            let lower = text.to_ascii_lowercase();
            let kind = if lower.contains("does not offer starttls")
                || lower.contains("starttls refused")
            {
                FailureKind::StartTlsNotSupported
            } else if lower.contains("expired") || lower.contains("notvalidyet") {
                FailureKind::CertificateExpired
            } else if lower.contains("notvalidforname") || lower.contains("not valid for name") {
                FailureKind::CertificateHostMismatch
            } else if lower.contains("unknownissuer") || lower.contains("unknown issuer") {
                FailureKind::CertificateNotTrusted
            } else {
                FailureKind::ValidationFailure
            };
            Some((kind, text.clone()))
        }
        ClientError::Refused { stage, reply } if *stage == "STARTTLS" => Some((
            FailureKind::StartTlsNotSupported,
            format!("STARTTLS refused: {}", reply.one_line()),
        )),
        ClientError::Timeout(what) if *what == "TLS handshake" => Some((
            FailureKind::ValidationFailure,
            "TLS handshake timed out".to_string(),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustls_errors_map_to_rfc8460_result_types() {
        let tls = |s: &str| classify(&ClientError::Tls(s.into())).map(|(k, _)| k);
        assert_eq!(
            tls("invalid peer certificate: Expired"),
            Some(FailureKind::CertificateExpired)
        );
        assert_eq!(
            tls("invalid peer certificate: NotValidForName"),
            Some(FailureKind::CertificateHostMismatch)
        );
        assert_eq!(
            tls("invalid peer certificate: UnknownIssuer"),
            Some(FailureKind::CertificateNotTrusted)
        );
        assert_eq!(
            tls("127.0.0.1:25 does not offer STARTTLS and policy requires TLS"),
            Some(FailureKind::StartTlsNotSupported)
        );
        assert_eq!(
            tls("received fatal alert: HandshakeFailure"),
            Some(FailureKind::ValidationFailure)
        );
        assert_eq!(classify(&ClientError::Timeout("greeting")), None);
        assert_eq!(classify(&ClientError::Io("reset".into())), None);
    }
}
