//! Aggregate reports about our domains, as the big senders mail them: a DMARC report zipped
//! (Google's form: `google.com!domain!begin!end.zip`), one gzipped (Microsoft's form:
//! `enterprise.protection.outlook.com!domain!begin!end.xml.gz`), a TLS-RPT report gzipped
//! (`application/tlsrpt+gzip`), ordinary mail that is none of these, and a compression bomb.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;

use base64::Engine as _;
use mail_auth::flate2::Compression;
use mail_auth::flate2::write::GzEncoder;
use wharf_inbound::reports::{MAX_REPORT_SIZE, ReportKind, parse};

fn dmarc_xml(org: &str, id: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <report_metadata>
    <org_name>{org}</org_name>
    <email>noreply-dmarc-support@{org}</email>
    <report_id>{id}</report_id>
    <date_range><begin>1764892800</begin><end>1764979199</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>example.test</domain>
    <adkim>r</adkim><aspf>r</aspf><p>quarantine</p><sp>quarantine</sp><pct>100</pct>
  </policy_published>
  <record>
    <row>
      <source_ip>192.0.2.10</source_ip>
      <count>12</count>
      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated>
    </row>
    <identifiers><header_from>example.test</header_from></identifiers>
    <auth_results>
      <dkim><domain>example.test</domain><selector>202612r</selector><result>pass</result></dkim>
      <spf><domain>example.test</domain><result>pass</result></spf>
    </auth_results>
  </record>
  <record>
    <row>
      <source_ip>203.0.113.66</source_ip>
      <count>3</count>
      <policy_evaluated><disposition>quarantine</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated>
    </row>
    <identifiers><header_from>example.test</header_from></identifiers>
    <auth_results>
      <spf><domain>spoofer.example</domain><result>fail</result></spf>
    </auth_results>
  </record>
</feedback>
"#
    )
}

fn b64(data: &[u8]) -> String {
    let s = base64::engine::general_purpose::STANDARD.encode(data);
    s.as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zip(name: &str, data: &[u8]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut z = mail_auth::zip::ZipWriter::new(&mut out);
    z.start_file(name, mail_auth::zip::write::SimpleFileOptions::default())
        .unwrap();
    z.write_all(data).unwrap();
    z.finish().unwrap();
    out.into_inner()
}

fn mail(subject: &str, content_type: &str, filename: &str, attachment: &[u8]) -> Vec<u8> {
    format!(
        "From: reporter@reports.test\r\nTo: postmaster@example.test\r\nSubject: {subject}\r\n\
         Date: Sat, 05 Dec 2026 10:00:00 +0000\r\nMessage-ID: <r@reports.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain\r\n\r\nThis is an aggregate report.\r\n\
         --b1\r\nContent-Type: {content_type}; name=\"{filename}\"\r\n\
         Content-Disposition: attachment; filename=\"{filename}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1--\r\n",
        b64(attachment)
    )
    .into_bytes()
}

#[test]
fn google_style_zipped_dmarc_report() {
    let name = "google.com!example.test!1764892800!1764979199.zip";
    let m = mail(
        "Report domain: example.test Submitter: google.com Report-ID: 1234567890",
        "application/zip",
        name,
        &zip(
            "google.com!example.test!1764892800!1764979199.xml",
            dmarc_xml("google.com", "1234567890").as_bytes(),
        ),
    );
    let r = parse(&m).expect("a DMARC report");
    assert_eq!(r.kind, ReportKind::Dmarc);
    assert_eq!(r.org, "google.com");
    assert_eq!(r.report_id, "1234567890");
    assert_eq!(r.domain, "example.test");
    assert_eq!((r.begin, r.end), (1_764_892_800, 1_764_979_199));
    assert_eq!((r.total, r.failed), (15, 3));
    assert_eq!(r.rows.len(), 2);
    assert_eq!(r.rows[1].source, "203.0.113.66");
    assert_eq!(r.rows[1].disposition, "quarantine");
    assert_eq!(
        (r.rows[1].dkim.as_str(), r.rows[1].spf.as_str()),
        ("fail", "fail")
    );
}

#[test]
fn microsoft_style_gzipped_dmarc_report() {
    let m = mail(
        "Report Domain: example.test Submitter: protection.outlook.com Report-ID: <a1b2c3>",
        "application/gzip",
        "enterprise.protection.outlook.com!example.test!1764892800!1764979199.xml.gz",
        &gzip(dmarc_xml("Enterprise Outlook", "a1b2c3d4e5").as_bytes()),
    );
    let r = parse(&m).expect("a DMARC report");
    assert_eq!(r.org, "Enterprise Outlook");
    assert_eq!(r.report_id, "a1b2c3d4e5");
    assert_eq!(r.total, 15);
}

#[test]
fn tls_rpt_gzipped_json_report() {
    let json = r#"{
  "organization-name": "Company-X",
  "date-range": {"start-datetime": "2026-12-04T00:00:00Z", "end-datetime": "2026-12-04T23:59:59Z"},
  "contact-info": "sts-reporting@company-x.example",
  "report-id": "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
  "policies": [{
    "policy": {"policy-type": "sts", "policy-string": ["version: STSv1", "mode: enforce", "mx: mail.example.test", "max_age: 86400"],
               "policy-domain": "example.test", "mx-host": ["mail.example.test"]},
    "summary": {"total-successful-session-count": 5326, "total-failure-session-count": 303},
    "failure-details": [{
      "result-type": "certificate-expired", "sending-mta-ip": "2001:db8:abcd:0012::1",
      "receiving-mx-hostname": "mail.example.test", "failed-session-count": 100
    }]
  }]
}"#;
    let m = mail(
        "Report Domain: example.test Submitter: company-x.example Report-ID: <5065427c>",
        "application/tlsrpt+gzip",
        "company-x.example!example.test!1764806400!1764892799.json.gz",
        &gzip(json.as_bytes()),
    );
    let r = parse(&m).expect("a TLS-RPT report");
    assert_eq!(r.kind, ReportKind::TlsRpt);
    assert_eq!(r.org, "Company-X");
    assert_eq!(r.domain, "example.test");
    assert_eq!((r.total, r.failed), (5629, 303));
    assert!(
        r.rows
            .iter()
            .any(|row| row.source == "2001:db8:abcd:12::1" && row.count == 100)
    );
}

#[test]
fn ordinary_mail_is_not_a_report() {
    let m = b"From: a@example.org\r\nTo: b@example.test\r\nSubject: lunch\r\n\r\nNoon?\r\n";
    assert!(parse(m).is_none());
    // Says "report" but carries none.
    let m = b"From: a@example.org\r\nSubject: Quarterly report\r\n\r\nSee attached (not).\r\n";
    assert!(parse(m).is_none());
}

#[test]
fn a_compression_bomb_is_refused_without_the_memory() {
    // 64 MiB of zeros, compressed to about 64 KiB.
    let mut e = GzEncoder::new(Vec::new(), Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        e.write_all(&zeros).unwrap();
    }
    let bomb = e.finish().unwrap();
    assert!(bomb.len() < 1 << 20);
    const { assert!(64 << 20 > MAX_REPORT_SIZE) };
    let m = mail(
        "Report Domain: example.test Submitter: bomb.example Report-ID: <x>",
        "application/gzip",
        "bomb.example!example.test!1!2.xml.gz",
        &bomb,
    );
    assert!(parse(&m).is_none());
}
