//! Aggregate reports other servers send about our domains: DMARC (RFC 7489 §7.2, XML, usually
//! zipped or gzipped) and TLS-RPT (RFC 8460, JSON, usually gzipped), found in a message and
//! reduced to a summary `wharf report` prints. Decompression is capped (`MAX_REPORT_SIZE`), so a
//! compression bomb is an error, not memory.

use std::net::IpAddr;

use mail_auth::report::tlsrpt::TlsReport;
use mail_auth::report::{ActionDisposition, DmarcResult, Report};

/// Largest decompressed report accepted.
pub const MAX_REPORT_SIZE: usize = 25 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    Dmarc,
    TlsRpt,
}

impl ReportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Dmarc => "dmarc",
            ReportKind::TlsRpt => "tls-rpt",
        }
    }
}

/// One report, as `wharf report list/show` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSummary {
    pub kind: ReportKind,
    /// The reporting organisation (`google.com`, `Microsoft Corporation`, …).
    pub org: String,
    pub report_id: String,
    /// Our domain the report is about.
    pub domain: String,
    /// Unix seconds.
    pub begin: i64,
    pub end: i64,
    /// DMARC: messages counted; TLS-RPT: sessions.
    pub total: u64,
    /// DMARC: messages neither DKIM- nor SPF-aligned; TLS-RPT: failed sessions.
    pub failed: u64,
    pub rows: Vec<ReportRow>,
}

/// One line of a report: a sending source (DMARC) or a policy and its failures (TLS-RPT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    pub source: String,
    pub count: u64,
    /// DMARC: none/quarantine/reject; TLS-RPT: the policy type or the failure type.
    pub disposition: String,
    pub dkim: String,
    pub spf: String,
    pub header_from: String,
}

/// The report `message` carries, if any.
pub fn parse(message: &[u8]) -> Option<ReportSummary> {
    if !may_be_report(message) {
        return None;
    }
    match Report::parse_rfc5322(message, MAX_REPORT_SIZE) {
        Ok(r) => return Some(dmarc(r)),
        Err(e) => tracing::debug!(error = ?e, "not a DMARC aggregate report"),
    }
    match TlsReport::parse_rfc5322(message, MAX_REPORT_SIZE) {
        Ok(r) => Some(tls(r)),
        Err(e) => {
            tracing::debug!(error = ?e, "not a TLS-RPT report");
            None
        }
    }
}

/// A cheap look at the start of a message (its header section is enough): a report names itself
/// in its subject or content type, and most mail is neither, so it need not be read whole,
/// decompressed or parsed.
pub fn may_be_report(start: &[u8]) -> bool {
    let head_end = find(start, b"\r\n\r\n").unwrap_or(start.len().min(HEAD_LOOK));
    let head = String::from_utf8_lossy(&start[..head_end]).to_ascii_lowercase();
    head.contains("report") || head.contains("tlsrpt") || head.contains("zip")
}

/// How much of a message `may_be_report` needs.
pub const HEAD_LOOK: usize = 64 * 1024;

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn ts(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX)
}

fn dmarc(r: Report) -> ReportSummary {
    let mut total = 0u64;
    let mut failed = 0u64;
    let rows = r
        .record
        .iter()
        .map(|rec| {
            let count = u64::from(rec.row.count);
            let pe = &rec.row.policy_evaluated;
            total += count;
            if pe.dkim != DmarcResult::Pass && pe.spf != DmarcResult::Pass {
                failed += count;
            }
            ReportRow {
                source: rec
                    .row
                    .source_ip
                    .map(|ip: IpAddr| ip.to_string())
                    .unwrap_or_else(|| "?".into()),
                count,
                disposition: match pe.disposition {
                    ActionDisposition::None | ActionDisposition::Pass => "none",
                    ActionDisposition::Quarantine => "quarantine",
                    ActionDisposition::Reject => "reject",
                    ActionDisposition::Unspecified => "-",
                }
                .into(),
                dkim: result(&pe.dkim).into(),
                spf: result(&pe.spf).into(),
                header_from: rec.identifiers.header_from.clone(),
            }
        })
        .collect();
    let m = &r.report_metadata;
    ReportSummary {
        kind: ReportKind::Dmarc,
        org: m.org_name.clone(),
        report_id: m.report_id.clone(),
        domain: r.policy_published.domain.clone(),
        begin: ts(m.date_range.begin),
        end: ts(m.date_range.end),
        total,
        failed,
        rows,
    }
}

fn result(r: &DmarcResult) -> &'static str {
    match r {
        DmarcResult::Pass => "pass",
        DmarcResult::Fail => "fail",
        DmarcResult::Unspecified => "-",
    }
}

fn tls(r: TlsReport) -> ReportSummary {
    let mut total = 0u64;
    let mut failed = 0u64;
    let mut rows = Vec::new();
    let mut domain = String::new();
    for p in &r.policies {
        let ok = u64::from(p.summary.total_success);
        let bad = u64::from(p.summary.total_failure);
        total += ok + bad;
        failed += bad;
        if domain.is_empty() {
            domain = p.policy.policy_domain.clone();
        }
        rows.push(ReportRow {
            source: p.policy.policy_domain.clone(),
            count: ok + bad,
            disposition: format!("{:?}", p.policy.policy_type).to_ascii_lowercase(),
            dkim: format!("{ok} ok"),
            spf: format!("{bad} failed"),
            header_from: p.policy.mx_host.join(" "),
        });
        for f in &p.failure_details {
            rows.push(ReportRow {
                source: f
                    .sending_mta_ip
                    .map(|ip| ip.to_string())
                    .unwrap_or_else(|| "?".into()),
                count: u64::from(f.failed_session_count),
                disposition: format!("{:?}", f.result_type).to_ascii_lowercase(),
                dkim: String::new(),
                spf: String::new(),
                header_from: f.receiving_mx_hostname.clone().unwrap_or_default(),
            });
        }
    }
    ReportSummary {
        kind: ReportKind::TlsRpt,
        org: r.organization_name.clone().unwrap_or_default(),
        report_id: r.report_id.clone(),
        domain,
        begin: r.date_range.start_datetime.to_timestamp(),
        end: r.date_range.end_datetime.to_timestamp(),
        total,
        failed,
        rows,
    }
}
