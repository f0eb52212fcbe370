//! DMARC aggregate reports we send (RFC 7489 §7.2 and appendix C): what one checked message adds
//! to the report of its author's domain (`Observation`, recorded only when that domain's record
//! asks for reports with `rua=`), and the report made from a day of them: the XML document in
//! RFC 7489's format (mail-auth writes the newer DMARCbis format, which RFC 7489 receivers do
//! not all read) and the message carrying it gzipped.

use std::fmt::Write as _;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The DMARC record as it applied (RFC 7489 `policy_published`), with its report addresses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublishedPolicy {
    /// The domain whose record applied (the organisational domain when found there).
    pub domain: String,
    pub adkim: String,
    pub aspf: String,
    pub p: String,
    pub sp: String,
    pub pct: u8,
    pub fo: String,
    /// `rua=` addresses (without `mailto:`) with their size limit in bytes (0: none).
    pub rua: Vec<(String, u64)>,
}

/// A DKIM signature's verdict (`auth_results/dkim`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DkimAuth {
    pub domain: String,
    pub selector: String,
    pub result: String,
}

/// An SPF verdict (`auth_results/spf`); `scope` is `mfrom` or `helo`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SpfAuth {
    pub domain: String,
    pub scope: String,
    pub result: String,
}

/// What one message contributes to a report row (`record` less its count).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObservedRow {
    pub source_ip: IpAddr,
    /// What we did: `none`, `quarantine` or `reject`.
    pub disposition: String,
    pub dkim_aligned: bool,
    pub spf_aligned: bool,
    /// Why our disposition differs from the policy (`type`, `comment`).
    pub reasons: Vec<(String, String)>,
    pub envelope_from: String,
    pub header_from: String,
    pub dkim: Vec<DkimAuth>,
    pub spf: Vec<SpfAuth>,
}

/// One message's line in the day's report of `policy.domain`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Observation {
    pub policy: PublishedPolicy,
    pub row: ObservedRow,
}

/// Who reports, and for what period.
#[derive(Debug, Clone)]
pub struct ReportMeta {
    pub org_name: String,
    /// The address report receivers may write back to.
    pub email: String,
    pub report_id: String,
    /// Unix seconds, inclusive begin and end of the period.
    pub begin: i64,
    pub end: i64,
}

/// An RFC 7489 aggregate report document.
pub fn render_xml(
    meta: &ReportMeta,
    policy: &PublishedPolicy,
    rows: &[(ObservedRow, u64)],
) -> String {
    let mut x = String::with_capacity(512 + rows.len() * 600);
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n");
    x.push_str("  <version>1.0</version>\n  <report_metadata>\n");
    element(&mut x, 4, "org_name", &meta.org_name);
    element(&mut x, 4, "email", &meta.email);
    element(&mut x, 4, "report_id", &meta.report_id);
    let _ = write!(
        x,
        "    <date_range>\n      <begin>{}</begin>\n      <end>{}</end>\n    </date_range>\n",
        meta.begin, meta.end
    );
    x.push_str("  </report_metadata>\n  <policy_published>\n");
    element(&mut x, 4, "domain", &policy.domain);
    element(&mut x, 4, "adkim", &policy.adkim);
    element(&mut x, 4, "aspf", &policy.aspf);
    element(&mut x, 4, "p", &policy.p);
    element(&mut x, 4, "sp", &policy.sp);
    let _ = writeln!(x, "    <pct>{}</pct>", policy.pct);
    element(&mut x, 4, "fo", &policy.fo);
    x.push_str("  </policy_published>\n");
    for (row, count) in rows {
        x.push_str("  <record>\n    <row>\n");
        element(&mut x, 6, "source_ip", &schema_ip(row.source_ip));
        let _ = writeln!(x, "      <count>{count}</count>");
        x.push_str("      <policy_evaluated>\n");
        element(&mut x, 8, "disposition", &row.disposition);
        element(&mut x, 8, "dkim", pass_fail(row.dkim_aligned));
        element(&mut x, 8, "spf", pass_fail(row.spf_aligned));
        for (kind, comment) in &row.reasons {
            x.push_str("        <reason>\n");
            element(&mut x, 10, "type", kind);
            if !comment.is_empty() {
                element(&mut x, 10, "comment", comment);
            }
            x.push_str("        </reason>\n");
        }
        x.push_str("      </policy_evaluated>\n    </row>\n    <identifiers>\n");
        element(&mut x, 6, "envelope_from", &row.envelope_from);
        element(&mut x, 6, "header_from", &row.header_from);
        x.push_str("    </identifiers>\n    <auth_results>\n");
        for d in &row.dkim {
            x.push_str("      <dkim>\n");
            element(&mut x, 8, "domain", &d.domain);
            if !d.selector.is_empty() {
                element(&mut x, 8, "selector", &d.selector);
            }
            element(&mut x, 8, "result", &d.result);
            x.push_str("      </dkim>\n");
        }
        for s in &row.spf {
            x.push_str("      <spf>\n");
            element(&mut x, 8, "domain", &s.domain);
            element(&mut x, 8, "scope", &s.scope);
            element(&mut x, 8, "result", &s.result);
            x.push_str("      </spf>\n");
        }
        x.push_str("    </auth_results>\n  </record>\n");
    }
    x.push_str("</feedback>\n");
    x
}

fn pass_fail(pass: bool) -> &'static str {
    if pass { "pass" } else { "fail" }
}

/// RFC 7489's schema accepts dotted IPv4 and IPv6 only in its eight-group form (no `::`).
fn schema_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6
                .segments()
                .iter()
                .map(|s| format!("{s:x}"))
                .collect::<Vec<_>>()
                .join(":"),
        },
    }
}

fn element(x: &mut String, indent: usize, name: &str, value: &str) {
    let _ = writeln!(x, "{:indent$}<{name}>{}</{name}>", "", escape(value));
}

/// Text content for XML 1.0: markup characters escaped, characters XML cannot carry dropped
/// (the values come from DNS records and message headers).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

/// The rows of one domain's day from its counted observations: the policy last seen (a record
/// changed during the day reports as it stood at the end), rows merged by content.
pub fn assemble(
    observations: impl IntoIterator<Item = (Observation, u64)>,
) -> Option<(PublishedPolicy, Vec<(ObservedRow, u64)>)> {
    let mut policy: Option<PublishedPolicy> = None;
    let mut rows: Vec<(ObservedRow, u64)> = Vec::new();
    for (obs, count) in observations {
        match rows.iter_mut().find(|(r, _)| *r == obs.row) {
            Some((_, n)) => *n = n.saturating_add(count),
            None => rows.push((obs.row, count)),
        }
        policy = Some(obs.policy);
    }
    rows.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then_with(|| a.0.source_ip.cmp(&b.0.source_ip))
    });
    policy.map(|p| (p, rows))
}

/// The report's file name (RFC 7489 §7.2.1.1): `receiver!policy-domain!begin!end[!id].xml.gz`.
pub fn file_name(submitter: &str, meta: &ReportMeta, policy_domain: &str) -> String {
    format!(
        "{submitter}!{policy_domain}!{}!{}.xml.gz",
        meta.begin, meta.end
    )
}

/// Who sends a report message, to whom, when.
#[derive(Debug, Clone, Copy)]
pub struct Sending<'a> {
    /// Our host name (the `Submitter:` of the subject and the file name).
    pub submitter: &'a str,
    pub from: &'a str,
    pub to: &'a [String],
    pub message_id: &'a str,
    /// Unix seconds.
    pub date: i64,
}

/// The report message (RFC 7489 §7.2.1.1): a short text part and the gzipped document, with
/// the subject receivers file reports by.
pub fn report_message(
    sending: &Sending<'_>,
    meta: &ReportMeta,
    policy_domain: &str,
    xml: &str,
) -> std::io::Result<Vec<u8>> {
    use mail_builder::MessageBuilder;
    use mail_builder::headers::address::Address;
    use mail_builder::headers::raw::Raw;
    let submitter = sending.submitter;
    let gz = gzip(xml.as_bytes())?;
    let recipients: Vec<Address<'_>> = sending
        .to
        .iter()
        .map(|a| Address::new_address(None::<&str>, a.as_str()))
        .collect();
    let mut out = Vec::new();
    MessageBuilder::new()
        .from(Address::new_address(Some(submitter), sending.from))
        .to(Address::new_list(recipients))
        .subject(format!(
            "Report Domain: {policy_domain} Submitter: {submitter} Report-ID: <{}>",
            meta.report_id
        ))
        .message_id(sending.message_id)
        .date(sending.date)
        .header("Auto-Submitted", Raw::new("auto-generated"))
        .text_body(format!(
            "This is a DMARC aggregate report (RFC 7489) from {submitter} about mail that \
             claimed to come from {policy_domain}.\r\n\r\nReport-ID: {}\r\nPeriod: {} to {} \
             (Unix time, UTC)\r\n",
            meta.report_id, meta.begin, meta.end
        ))
        .attachment(
            "application/gzip",
            file_name(submitter, meta, policy_domain),
            gz,
        )
        .write_to(&mut out)?;
    Ok(out)
}

pub(crate) fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    let mut e = mail_auth::flate2::write::GzEncoder::new(
        Vec::new(),
        mail_auth::flate2::Compression::default(),
    );
    e.write_all(data)?;
    e.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (PublishedPolicy, ObservedRow) {
        (
            PublishedPolicy {
                domain: "example.org".into(),
                adkim: "r".into(),
                aspf: "s".into(),
                p: "reject".into(),
                sp: "quarantine".into(),
                pct: 100,
                fo: "0".into(),
                rua: vec![("dmarc@example.org".into(), 0)],
            },
            ObservedRow {
                source_ip: "2001:db8::1".parse().unwrap(),
                disposition: "reject".into(),
                dkim_aligned: false,
                spf_aligned: false,
                reasons: vec![],
                envelope_from: "bounce.example.net".into(),
                header_from: "example.org".into(),
                dkim: vec![DkimAuth {
                    domain: "example.net".into(),
                    selector: "s1".into(),
                    result: "pass".into(),
                }],
                spf: vec![SpfAuth {
                    domain: "bounce.example.net".into(),
                    scope: "mfrom".into(),
                    result: "softfail".into(),
                }],
            },
        )
    }

    #[test]
    fn rows_merge_by_content_and_sort_by_count() {
        let (p, r) = sample();
        let mut other = r.clone();
        other.source_ip = "192.0.2.1".parse().unwrap();
        let obs = |row: &ObservedRow, n| {
            (
                Observation {
                    policy: p.clone(),
                    row: row.clone(),
                },
                n,
            )
        };
        let (policy, rows) = assemble([obs(&r, 2), obs(&other, 5), obs(&r, 4)]).unwrap();
        assert_eq!(policy, p);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].1, 6);
        assert_eq!(rows[1].1, 5);
        assert!(assemble(Vec::new()).is_none());
    }

    #[test]
    fn ipv6_sources_are_written_in_the_schema_s_form() {
        assert_eq!(
            schema_ip("2001:db8::1".parse().unwrap()),
            "2001:db8:0:0:0:0:0:1"
        );
        assert_eq!(schema_ip("::ffff:192.0.2.7".parse().unwrap()), "192.0.2.7");
    }

    #[test]
    fn text_from_dns_and_headers_is_escaped() {
        let (mut p, r) = sample();
        p.domain = "a<b>&\"c'\u{1}".into();
        let meta = ReportMeta {
            org_name: "Wharf".into(),
            email: "postmaster@example.com".into(),
            report_id: "1".into(),
            begin: 0,
            end: 86_399,
        };
        let xml = render_xml(&meta, &p, &[(r, 3)]);
        assert!(
            xml.contains("<domain>a&lt;b&gt;&amp;&quot;c&apos;</domain>"),
            "{xml}"
        );
        assert!(xml.contains("<count>3</count>"));
        assert!(xml.contains("<scope>mfrom</scope>"));
    }

    #[test]
    fn the_message_carries_the_gzipped_document() {
        let (p, r) = sample();
        let meta = ReportMeta {
            org_name: "Wharf".into(),
            email: "postmaster@example.com".into(),
            report_id: "20001.example.org".into(),
            begin: 1_728_000_000,
            end: 1_728_086_399,
        };
        let xml = render_xml(&meta, &p, &[(r, 1)]);
        let to = ["dmarc@example.org".to_string()];
        let sending = Sending {
            submitter: "mx.example.com",
            from: "postmaster@example.com",
            to: &to,
            message_id: "r1@mx.example.com",
            date: 1_728_090_000,
        };
        let msg = report_message(&sending, &meta, "example.org", &xml).unwrap();
        let parsed = mail_auth::report::Report::parse_rfc5322(&msg, 1 << 20);
        // mail-auth reads the RFC 7489 document back (it accepts both formats).
        let parsed = parsed.expect("the report parses");
        assert_eq!(parsed.domain(), "example.org");
        assert_eq!(parsed.records().len(), 1);
        let parsed = mail_parser::MessageParser::default().parse(&msg).unwrap();
        assert_eq!(
            parsed.subject(),
            Some(
                "Report Domain: example.org Submitter: mx.example.com Report-ID: <20001.example.org>"
            )
        );
        let text = String::from_utf8_lossy(&msg);
        assert!(text.contains("mx.example.com!example.org!1728000000!1728086399.xml.gz"));
    }
}
