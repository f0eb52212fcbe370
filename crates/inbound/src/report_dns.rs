//! The DNS questions of the reports we send: which `rua=` addresses of a DMARC record may get
//! its aggregate reports (RFC 7489 §7.1: a destination outside the policy domain must publish
//! `<policy-domain>._report._dmarc.<destination>`), and where a domain wants TLS-RPT reports
//! (RFC 8460 §3, `_smtp._tls.<domain>`). Both through mail-auth's parsers.

use mail_auth::MessageAuthenticator;
use mail_auth::common::cache::NoCache;
use mail_auth::common::parse::TxtRecordParser as _;
use mail_auth::mta_sts::{ReportUri, TlsRpt};

/// Where a TLS-RPT report goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsRptDestination {
    Mail(String),
    Https(String),
}

pub struct ReportDns {
    auth: MessageAuthenticator,
}

impl ReportDns {
    pub fn new(resolver: hickory_resolver::TokioResolver) -> ReportDns {
        ReportDns {
            auth: MessageAuthenticator(resolver),
        }
    }

    /// The addresses of `rua` that may receive `policy_domain`'s reports (a DNS failure
    /// authorises none of the external ones).
    pub async fn authorized(&self, policy_domain: &str, rua: &[String]) -> Vec<String> {
        self.auth
            .verify_dmarc_report_address(
                policy_domain,
                rua,
                None::<&NoCache<Box<str>, mail_auth::Txt>>,
            )
            .await
            .unwrap_or_default()
            .into_iter()
            .cloned()
            .collect()
    }

    /// The addresses of `host` (an `https:` report destination), in the resolver's order.
    pub async fn addresses(&self, host: &str) -> Result<Vec<std::net::IpAddr>, String> {
        let name = format!("{}.", host.trim_end_matches('.'));
        match self.auth.resolver().lookup_ip(name).await {
            Ok(found) => Ok(found.iter().collect()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The `rua` of `domain`'s TLS-RPT record; `Ok(empty)` when it publishes none.
    pub async fn tls_rpt(&self, domain: &str) -> Result<Vec<TlsRptDestination>, String> {
        let name = format!("_smtp._tls.{}.", domain.trim_end_matches('.'));
        let answer = match self.auth.resolver().txt_lookup(name).await {
            Ok(a) => a,
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => return Ok(Vec::new()),
            Err(e) => return Err(e.to_string()),
        };
        for record in answer.answers() {
            let hickory_resolver::proto::rr::RData::TXT(t) = &record.data else {
                continue;
            };
            let text: Vec<u8> = t.txt_data.iter().flat_map(|p| p.iter().copied()).collect();
            if !text.starts_with(b"v=TLSRPTv1") {
                continue;
            }
            // RFC 8460 §3: a record that does not parse is as if none were published.
            let Ok(parsed) = TlsRpt::parse(&text) else {
                return Ok(Vec::new());
            };
            return Ok(parsed
                .rua
                .into_iter()
                .map(|u| match u {
                    ReportUri::Mail(m) => TlsRptDestination::Mail(m),
                    ReportUri::Http(h) => TlsRptDestination::Https(h),
                })
                .collect());
        }
        Ok(Vec::new())
    }
}
