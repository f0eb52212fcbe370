//! The DMARC aggregate reports we send validate against RFC 7489's XML schema (appendix C,
//! tests/data/rfc7489-dmarc.xsd), checked by libxml2 through Python's lxml, an implementation
//! that shares nothing with ours. A document the schema must refuse is refused, so the check
//! can fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use wharf_inbound::aggregate::*;

const XSD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rfc7489-dmarc.xsd");

/// `None` when the document is valid, the validator's complaint otherwise.
fn validate(xml: &str) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("report.xml");
    std::fs::write(&doc, xml).unwrap();
    let script = "import sys\nfrom lxml import etree\n\
        schema = etree.XMLSchema(etree.parse(sys.argv[1]))\n\
        doc = etree.parse(sys.argv[2])\n\
        if not schema.validate(doc):\n    print(schema.error_log)\n    sys.exit(1)\n";
    let out = Command::new("python3")
        .args(["-c", script, XSD, doc.to_str().unwrap()])
        .output()
        .expect("python3 with lxml (.ci/run installs it)");
    assert!(Path::new(XSD).exists());
    if out.status.success() {
        None
    } else {
        Some(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn policy() -> PublishedPolicy {
    PublishedPolicy {
        domain: "example.org".into(),
        adkim: "r".into(),
        aspf: "r".into(),
        p: "quarantine".into(),
        sp: "reject".into(),
        pct: 100,
        fo: "1".into(),
        rua: vec![("dmarc@example.org".into(), 0)],
    }
}

fn row(ip: &str, disposition: &str, reasons: Vec<(String, String)>, dkim: usize) -> ObservedRow {
    ObservedRow {
        source_ip: ip.parse().unwrap(),
        disposition: disposition.into(),
        dkim_aligned: dkim > 0,
        spf_aligned: false,
        reasons,
        envelope_from: "bounces.example.net".into(),
        header_from: "example.org".into(),
        dkim: (0..dkim)
            .map(|i| DkimAuth {
                domain: "example.org".into(),
                selector: if i == 0 {
                    format!("s{i}")
                } else {
                    String::new()
                },
                result: ["pass", "fail", "temperror"][i % 3].into(),
            })
            .collect(),
        spf: vec![SpfAuth {
            domain: "bounces.example.net".into(),
            scope: "mfrom".into(),
            result: "softfail".into(),
        }],
    }
}

fn meta() -> ReportMeta {
    ReportMeta {
        org_name: "Example & Co <mail>".into(),
        email: "postmaster@example.com".into(),
        report_id: "example.org.20368@mx.example.com".into(),
        begin: 1_759_795_200,
        end: 1_759_881_599,
    }
}

#[test]
fn a_day_s_report_validates_against_the_rfc_7489_schema() {
    let rows = vec![
        (row("192.0.2.10", "none", vec![], 1), 41),
        (row("2001:db8::25", "quarantine", vec![], 0), 3),
        (
            row(
                "198.51.100.7",
                "none",
                vec![("local_policy".into(), String::new())],
                3,
            ),
            1,
        ),
        (
            row(
                "203.0.113.9",
                "none",
                vec![(
                    "mailing_list".into(),
                    "arc=pass as sealed by lists.example".into(),
                )],
                0,
            ),
            2,
        ),
    ];
    let xml = render_xml(&meta(), &policy(), &rows);
    if let Some(why) = validate(&xml) {
        panic!("the report does not validate:\n{why}\n{xml}");
    }
}

#[test]
fn the_schema_check_refuses_a_broken_report() {
    let xml = render_xml(
        &meta(),
        &policy(),
        &[(row("192.0.2.10", "none", vec![], 1), 1)],
    );
    // Without its SPF result a record breaks the schema ("at least one SPF result").
    let broken = xml.replacen("<spf>\n        <domain>", "<spfx>\n        <domain>", 1);
    assert_ne!(broken, xml);
    assert!(
        validate(&broken).is_some(),
        "a broken report passed: {broken}"
    );
    // A compressed IPv6 address is outside the schema's pattern; ours are written in full.
    let compressed = xml.replace("192.0.2.10", "2001:db8::1");
    assert!(validate(&compressed).is_some());
}
