//! TLS-RPT reports we send (RFC 8460): what one TLS session to a receiving MX adds to the day's
//! report of its domain (`SessionItem`, counted by the caller), and the report made from a day
//! of them, as RFC 8460's JSON and as the message carrying it gzipped (mail-auth writes both).

use std::collections::BTreeMap;
use std::net::IpAddr;

use mail_auth::report::tlsrpt::{
    DateRange, FailureDetails, Policy, PolicyDetails, PolicyType, ResultType, Summary, TlsReport,
};
use serde::{Deserialize, Serialize};

/// One session's outcome under the policy that applied.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionItem {
    /// `sts`, `tlsa` or `no-policy-found`.
    pub policy_type: String,
    pub policy_string: Vec<String>,
    /// MTA-STS `mx` patterns (empty otherwise).
    pub mx_patterns: Vec<String>,
    pub failure: Option<SessionFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionFailure {
    /// An RFC 8460 §4.3.2 result type (`certificate-expired`, …).
    pub result_type: String,
    pub receiving_mx_hostname: String,
    pub receiving_ip: IpAddr,
    pub additional_information: String,
}

/// Who reports, and for what period (Unix seconds, inclusive).
#[derive(Debug, Clone)]
pub struct ReportMeta {
    pub organization_name: String,
    pub contact_info: String,
    pub report_id: String,
    pub begin: i64,
    pub end: i64,
}

/// The report of `policy_domain` from its counted session items.
pub fn build(
    meta: &ReportMeta,
    policy_domain: &str,
    items: impl IntoIterator<Item = (SessionItem, u64)>,
) -> TlsReport {
    // One `policies` entry per distinct policy; failures merged by their details.
    type PolicyKey = (String, Vec<String>, Vec<String>);
    let mut policies: BTreeMap<PolicyKey, (u64, u64, BTreeMap<SessionFailureKey, u64>)> =
        BTreeMap::new();
    for (item, count) in items {
        let entry = policies
            .entry((item.policy_type, item.policy_string, item.mx_patterns))
            .or_default();
        match item.failure {
            None => entry.0 = entry.0.saturating_add(count),
            Some(f) => {
                entry.1 = entry.1.saturating_add(count);
                let n = entry
                    .2
                    .entry((
                        f.result_type,
                        f.receiving_mx_hostname,
                        f.receiving_ip,
                        f.additional_information,
                    ))
                    .or_default();
                *n = n.saturating_add(count);
            }
        }
    }
    let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    TlsReport {
        organization_name: Some(meta.organization_name.clone()),
        date_range: DateRange {
            start_datetime: mail_parser::DateTime::from_timestamp(meta.begin),
            end_datetime: mail_parser::DateTime::from_timestamp(meta.end),
        },
        contact_info: Some(meta.contact_info.clone()),
        report_id: meta.report_id.clone(),
        policies: policies
            .into_iter()
            .map(|((kind, string, mx), (ok, failed, failures))| Policy {
                policy: PolicyDetails {
                    policy_type: match kind.as_str() {
                        "sts" => PolicyType::Sts,
                        "tlsa" => PolicyType::Tlsa,
                        "no-policy-found" => PolicyType::NoPolicyFound,
                        _ => PolicyType::Other,
                    },
                    policy_string: string,
                    policy_domain: policy_domain.to_string(),
                    mx_host: mx,
                },
                summary: Summary {
                    total_success: clamp(ok),
                    total_failure: clamp(failed),
                },
                failure_details: failures
                    .into_iter()
                    .map(|((kind, host, ip, info), n)| FailureDetails {
                        result_type: result_type(&kind),
                        sending_mta_ip: None,
                        receiving_mx_hostname: Some(host),
                        receiving_mx_helo: None,
                        receiving_ip: Some(ip),
                        failed_session_count: clamp(n),
                        additional_information: (!info.is_empty()).then_some(info),
                        failure_reason_code: None,
                    })
                    .collect(),
            })
            .collect(),
    }
}

type SessionFailureKey = (String, String, IpAddr, String);

fn result_type(s: &str) -> ResultType {
    match s {
        "starttls-not-supported" => ResultType::StartTlsNotSupported,
        "certificate-host-mismatch" => ResultType::CertificateHostMismatch,
        "certificate-expired" => ResultType::CertificateExpired,
        "certificate-not-trusted" => ResultType::CertificateNotTrusted,
        "validation-failure" => ResultType::ValidationFailure,
        "tlsa-invalid" => ResultType::TlsaInvalid,
        "dnssec-invalid" => ResultType::DnssecInvalid,
        "dane-required" => ResultType::DaneRequired,
        "sts-policy-fetch-error" => ResultType::StsPolicyFetchError,
        "sts-policy-invalid" => ResultType::StsPolicyInvalid,
        "sts-webpki-invalid" => ResultType::StsWebpkiInvalid,
        _ => ResultType::Other,
    }
}

/// The report as RFC 8460 §5.3.2 posts it to an `https:` destination: the JSON, gzipped
/// (`application/tlsrpt+gzip`).
pub fn gzipped_json(report: &TlsReport) -> std::io::Result<Vec<u8>> {
    crate::aggregate::gzip(report.to_json().as_bytes())
}

/// The report as RFC 8460 §5.3 mails it (`multipart/report; report-type=tlsrpt`, the JSON
/// gzipped as `application/tlsrpt+gzip`).
pub fn report_message(
    report: &TlsReport,
    policy_domain: &str,
    submitter: &str,
    from_name: &str,
    from: &str,
    to: &[String],
) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    report.write_rfc5322(
        policy_domain,
        submitter,
        (from_name, from),
        to.iter().map(String::as_str),
        &mut out,
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(failure: Option<&str>) -> SessionItem {
        SessionItem {
            policy_type: "sts".into(),
            policy_string: vec!["version: STSv1".into(), "mode: enforce".into()],
            mx_patterns: vec!["*.example.org".into()],
            failure: failure.map(|kind| SessionFailure {
                result_type: kind.into(),
                receiving_mx_hostname: "mx1.example.org".into(),
                receiving_ip: "192.0.2.25".parse().unwrap(),
                additional_information: String::new(),
            }),
        }
    }

    #[test]
    fn sessions_sum_per_policy_and_failures_per_detail() {
        let meta = ReportMeta {
            organization_name: "Wharf".into(),
            contact_info: "postmaster@example.com".into(),
            report_id: "r1".into(),
            begin: 1_728_000_000,
            end: 1_728_086_399,
        };
        let report = build(
            &meta,
            "example.org",
            [
                (item(None), 7),
                (item(Some("certificate-expired")), 2),
                (item(None), 3),
                (item(Some("certificate-expired")), 1),
            ],
        );
        assert_eq!(report.policies.len(), 1);
        let p = &report.policies[0];
        assert_eq!((p.summary.total_success, p.summary.total_failure), (10, 3));
        assert_eq!(p.failure_details.len(), 1);
        assert_eq!(p.failure_details[0].failed_session_count, 3);
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(
            json["policies"][0]["policy"]["policy-domain"],
            "example.org"
        );
        assert_eq!(json["policies"][0]["policy"]["policy-type"], "sts");
        assert_eq!(
            json["policies"][0]["failure-details"][0]["result-type"],
            "certificate-expired"
        );
        assert_eq!(json["date-range"]["start-datetime"], "2024-10-04T00:00:00Z");

        let to = ["tlsrpt@example.org".to_string()];
        let msg = report_message(
            &report,
            "example.org",
            "mx.example.com",
            "Wharf",
            "postmaster@example.com",
            &to,
        )
        .unwrap();
        let text = String::from_utf8_lossy(&msg);
        assert!(
            text.contains("report-type=\"tlsrpt\"") || text.contains("report-type=tlsrpt"),
            "{text}"
        );
        assert!(text.contains("TLS-Report-Domain: example.org"));
        let parsed = TlsReport::parse_rfc5322(&msg, 1 << 20).expect("mail-auth reads it back");
        assert_eq!(parsed.policies[0].summary.total_success, 10);
    }
}
