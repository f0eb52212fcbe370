//! The DMARC aggregate reports `wharf serve` sends (issue 17): mail checked on port 25 is
//! counted for the author domains whose record asks for reports, the counts survive the stop,
//! and `wharf report send` makes the day's reports, queues them to the authorised `rua=`
//! addresses only (RFC 7489 §7.1), writes documents that validate against RFC 7489's schema,
//! and never sends a day's report twice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::{Env, smtp_reply};
use wharf_testkit::{Zone, start_dns};

const XSD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../inbound/tests/data/rfc7489-dmarc.xsd"
);

/// One message over port 25; returns the reply to the final dot.
fn send(port: u16, from: &str) -> String {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    assert!(smtp_reply(&mut r).starts_with("220"));
    for (cmd, code) in [
        ("EHLO client.example.org\r\n".to_string(), "250"),
        (format!("MAIL FROM:<{from}>\r\n"), "250"),
        ("RCPT TO:<alice@example.test>\r\n".to_string(), "250"),
        ("DATA\r\n".to_string(), "354"),
    ] {
        w.write_all(cmd.as_bytes()).unwrap();
        let got = smtp_reply(&mut r);
        assert!(got.starts_with(code), "{cmd:?}: {got}");
    }
    w.write_all(
        format!("From: <{from}>\r\nTo: <alice@example.test>\r\nSubject: r\r\n\r\nhi\r\n.\r\n")
            .as_bytes(),
    )
    .unwrap();
    let got = smtp_reply(&mut r);
    w.write_all(b"QUIT\r\n").unwrap();
    got
}

fn schema_errors(path: &std::path::Path) -> Option<String> {
    let script = "import sys\nfrom lxml import etree\n\
        schema = etree.XMLSchema(etree.parse(sys.argv[1]))\n\
        if not schema.validate(etree.parse(sys.argv[2])):\n    print(schema.error_log)\n    sys.exit(1)\n";
    let out = Command::new("python3")
        .args(["-c", script, XSD, path.to_str().unwrap()])
        .output()
        .expect("python3 with lxml");
    (!out.status.success()).then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn dmarc_aggregate_reports_are_counted_made_and_queued_once() {
    let dns = start_dns(
        Zone::default()
            .txt("good.test", "v=spf1 ip4:127.0.0.1 -all")
            .txt(
                "_dmarc.good.test",
                "v=DMARC1; p=none; rua=mailto:dmarc@good.test",
            )
            .txt("forged.test", "v=spf1 ip4:192.0.2.1 -all")
            .txt(
                "_dmarc.forged.test",
                "v=DMARC1; p=reject; rua=mailto:agg@reports.test,mailto:nope@other.test",
            )
            // reports.test agrees to receive forged.test's reports; other.test does not.
            .txt("forged.test._report._dmarc.reports.test", "v=DMARC1")
            .txt("quiet.test", "v=spf1 ip4:127.0.0.1 -all")
            .txt("_dmarc.quiet.test", "v=DMARC1; p=none"),
    )
    .await;
    let env = Env::new();
    env.write_config(&format!(
        "[server]\nhostname = \"mail.example.test\"\nprimary_domain = \"example.test\"\ndata_dir = \"data\"\n\
         [limits]\nshutdown_timeout = 2\n\
         [outbound]\ndns_server = \"{dns}\"\n\
         [reports]\ndmarc_aggregate = true\n\
         [directory]\npostmaster = \"alice@example.test\"\n\
         [[listener]]\nname = \"mx\"\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"smtp\"\n"
    ));
    env.add_user("alice@example.test");
    let (mut server, ready) = env.serve();
    let port = ready.port("mx");
    let replies = tokio::task::spawn_blocking(move || {
        [
            send(port, "a@good.test"),
            send(port, "b@good.test"),
            send(port, "ceo@forged.test"),
            send(port, "x@quiet.test"),
        ]
    })
    .await
    .unwrap();
    assert!(replies[0].starts_with("250"), "{replies:?}");
    assert!(replies[1].starts_with("250"), "{replies:?}");
    assert!(replies[2].starts_with("550 5.7.1"), "{replies:?}");
    assert!(replies[3].starts_with("250"), "{replies:?}");
    // The counts are in memory until the minute's flush or the stop.
    server.sigterm();
    assert!(server.wait_exit(Duration::from_secs(30)).is_some());

    let saved = env.path().join("saved");
    let out = env.ok(&[
        "report",
        "send",
        "--day",
        "today",
        "--save",
        saved.to_str().unwrap(),
    ]);
    let good = out
        .lines()
        .find(|l| l.starts_with("dmarc good.test: "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        good.contains("1 rows queued as ") && good.ends_with("to dmarc@good.test"),
        "{good}"
    );
    let forged = out
        .lines()
        .find(|l| l.starts_with("dmarc forged.test: "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(forged.contains("to agg@reports.test"), "{forged}");
    assert!(forged.contains("not to [\"nope@other.test\"]"), "{forged}");
    assert!(!out.contains("quiet.test"), "no rua=, no report: {out}");

    // The documents: valid RFC 7489 reports saying what happened.
    let mut files: Vec<_> = std::fs::read_dir(&saved)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    for f in &files {
        if let Some(why) = schema_errors(f) {
            panic!("{} does not validate: {why}", f.display());
        }
    }
    let forged_xml = files
        .iter()
        .find(|f| f.to_string_lossy().contains("!forged.test!"))
        .map(|f| std::fs::read_to_string(f).unwrap())
        .unwrap();
    for needle in [
        "<domain>forged.test</domain>",
        "<p>reject</p>",
        "<source_ip>127.0.0.1</source_ip>",
        "<count>1</count>",
        "<disposition>reject</disposition>",
        "<result>fail</result>",
        "<email>postmaster@example.test</email>",
    ] {
        assert!(
            forged_xml.contains(needle),
            "{needle} missing:\n{forged_xml}"
        );
    }
    let good_xml = files
        .iter()
        .find(|f| f.to_string_lossy().contains("!good.test!"))
        .map(|f| std::fs::read_to_string(f).unwrap())
        .unwrap();
    assert!(good_xml.contains("<count>2</count>"), "{good_xml}");
    assert!(
        good_xml.contains("<disposition>none</disposition>"),
        "{good_xml}"
    );

    // Queued for delivery, DKIM-signing and retries as any outbound mail.
    let queue = env.ok(&["queue", "list"]);
    assert!(queue.contains("dmarc@good.test"), "{queue}");
    assert!(queue.contains("agg@reports.test"), "{queue}");
    assert!(!queue.contains("nope@other.test"), "{queue}");

    // Never twice.
    let again = env.ok(&["report", "send", "--day", "today"]);
    assert!(again.contains("dmarc good.test: already sent"), "{again}");
    assert!(again.contains("dmarc forged.test: already sent"), "{again}");
    // The same entries (the age column moves on with the clock).
    let without_age = |list: &str| -> Vec<Vec<String>> {
        list.lines()
            .map(|l| {
                let mut cols: Vec<String> = l.split_whitespace().map(str::to_string).collect();
                if cols.len() > 3 {
                    cols.remove(2);
                }
                cols
            })
            .collect()
    };
    assert_eq!(
        without_age(&env.ok(&["queue", "list"])),
        without_age(&queue)
    );
}
