//! `wharf serve` checking mail that arrives on port 25 against a DNS server on loopback
//! (issue 17): a forgery of a domain with `p=reject` is refused with 550 5.7.1, an aligned
//! sender is delivered with our Authentication-Results header on top (and a forged one of ours
//! removed), a `p=quarantine` failure lands in Junk, and submission is not checked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Env, smtp_reply};
use wharf_testkit::{Zone, start_dns};

/// One message over port 25; returns the reply to the final dot.
fn send(port: u16, mail_from: &str, from: &str, extra_headers: &str) -> String {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    assert!(smtp_reply(&mut r).starts_with("220"));
    for (cmd, code) in [
        ("EHLO client.example.org\r\n".to_string(), "250"),
        (format!("MAIL FROM:<{mail_from}>\r\n"), "250"),
        ("RCPT TO:<alice@example.test>\r\n".to_string(), "250"),
        ("DATA\r\n".to_string(), "354"),
    ] {
        w.write_all(cmd.as_bytes()).unwrap();
        let got = smtp_reply(&mut r);
        assert!(got.starts_with(code), "{cmd:?}: {got}");
    }
    w.write_all(
        format!("{extra_headers}From: <{from}>\r\nTo: <alice@example.test>\r\nSubject: check\r\n\r\nhello\r\n.\r\n")
            .as_bytes(),
    )
    .unwrap();
    let got = smtp_reply(&mut r);
    w.write_all(b"QUIT\r\n").unwrap();
    got
}

fn count(env: &Env, mailbox: &str) -> usize {
    let list = env.ok(&["mailbox", "list", "alice@example.test"]);
    let line = list
        .lines()
        .find(|l| l.starts_with(&format!("{mailbox} ")))
        .unwrap_or_else(|| panic!("no {mailbox} in {list}"));
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn port_25_mail_is_verified_refused_or_filed() {
    let dns = start_dns(
        Zone::default()
            .txt("paypal.test", "v=spf1 ip4:192.0.2.1 -all")
            .txt("_dmarc.paypal.test", "v=DMARC1; p=reject")
            .txt("good.test", "v=spf1 ip4:127.0.0.1 -all")
            .txt("_dmarc.good.test", "v=DMARC1; p=reject")
            .txt("quar.test", "v=spf1 ip4:192.0.2.1 -all")
            .txt("_dmarc.quar.test", "v=DMARC1; p=quarantine")
            .txt("google.test", "v=spf1 ip4:127.0.0.1 -all"),
    )
    .await;
    let env = Env::new();
    env.write_config(&format!(
        "[server]\nhostname = \"mail.example.test\"\nprimary_domain = \"example.test\"\ndata_dir = \"data\"\n\
         [limits]\nshutdown_timeout = 2\n\
         [outbound]\ndns_server = \"{dns}\"\n\
         [directory]\npostmaster = \"alice@example.test\"\n\
         [[listener]]\nname = \"mx\"\naddress = \"127.0.0.1\"\nport = 0\nprotocol = \"smtp\"\n"
    ));
    env.add_user("alice@example.test");
    let (mut server, ready) = env.serve();
    let port = ready.port("mx");

    let forged = tokio::task::spawn_blocking(move || {
        send(port, "service@paypal.test", "service@paypal.test", "")
    })
    .await
    .unwrap();
    assert!(forged.starts_with("550 5.7.1 "), "{forged}");
    assert!(forged.contains("paypal.test"), "{forged}");

    let good = tokio::task::spawn_blocking(move || {
        send(
            port,
            "alice@good.test",
            "alice@good.test",
            "Authentication-Results: mail.example.test; dmarc=pass header.from=paypal.test\r\n",
        )
    })
    .await
    .unwrap();
    assert!(good.starts_with("250"), "{good}");

    let quarantined =
        tokio::task::spawn_blocking(move || send(port, "news@quar.test", "news@quar.test", ""))
            .await
            .unwrap();
    assert!(quarantined.starts_with("250"), "{quarantined}");

    // A DMARC aggregate report for postmaster@ (no such account: it reaches the postmaster).
    let report = tokio::task::spawn_blocking(move || send_report(port))
        .await
        .unwrap();
    assert!(report.starts_with("250"), "{report}");

    assert_eq!(count(&env, "INBOX"), 2);
    assert_eq!(count(&env, "Junk"), 1);

    server.sigterm();
    assert!(server.wait_exit(Duration::from_secs(30)).is_some());

    // The stored copy: Return-Path, our verdict, our Received; the forged verdict is gone.
    let store = env.store().await;
    let account = store
        .get_account_by_address("alice@example.test")
        .await
        .unwrap()
        .unwrap();
    let inbox = store
        .get_mailbox(account.id, "INBOX")
        .await
        .unwrap()
        .unwrap();
    let index = store.mailbox_index(inbox.id).await.unwrap();
    let raw = store.message_raw(index[0].message_id).await.unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.starts_with(
            "Return-Path: <alice@good.test>\r\nAuthentication-Results: mail.example.test;"
        ),
        "{text}"
    );
    assert!(text.contains("spf=pass"), "{text}");
    assert!(text.contains("dmarc=pass header.from=good.test"), "{text}");
    assert!(!text.contains("header.from=paypal.test"), "{text}");
    assert_eq!(text.matches("Authentication-Results:").count(), 1, "{text}");

    // `wharf report` finds and reads it.
    let list = env.ok(&["report", "list"]);
    assert!(list.contains("dmarc"), "{list}");
    assert!(
        list.contains("google.test") && list.contains("r-42"),
        "{list}"
    );
    assert!(list.contains("example.test"), "{list}");
    let show = env.ok(&["report", "show", "r-42"]);
    assert!(
        show.contains("203.0.113.66") && show.contains("quarantine"),
        "{show}"
    );
    let err = env.fails(&["report", "show", "nope"]);
    assert!(err.contains("no report nope"), "{err}");
}

/// A gzipped DMARC aggregate report from google.test (whose SPF lists 127.0.0.1) to
/// postmaster@example.test; returns the reply to the final dot.
fn send_report(port: u16) -> String {
    use base64::Engine as _;
    use mail_auth::flate2::{Compression, write::GzEncoder};
    let xml = "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>google.test</org_name>\
        <email>noreply@google.test</email><report_id>r-42</report_id><date_range><begin>1764892800</begin>\
        <end>1764979199</end></date_range></report_metadata><policy_published><domain>example.test</domain>\
        <p>quarantine</p></policy_published><record><row><source_ip>203.0.113.66</source_ip><count>3</count>\
        <policy_evaluated><disposition>quarantine</disposition><dkim>fail</dkim><spf>fail</spf>\
        </policy_evaluated></row><identifiers><header_from>example.test</header_from></identifiers>\
        <auth_results><spf><domain>spoofer.example</domain><result>fail</result></spf></auth_results>\
        </record></feedback>";
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(xml.as_bytes()).unwrap();
    let attachment = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    assert!(smtp_reply(&mut r).starts_with("220"));
    for cmd in [
        "EHLO mx.google.test\r\n",
        "MAIL FROM:<noreply@google.test>\r\n",
        "RCPT TO:<postmaster@example.test>\r\n",
        "DATA\r\n",
    ] {
        w.write_all(cmd.as_bytes()).unwrap();
        let got = smtp_reply(&mut r);
        assert!(
            got.starts_with('2') || got.starts_with('3'),
            "{cmd:?}: {got}"
        );
    }
    let body = format!(
        "From: <noreply@google.test>\r\nTo: <postmaster@example.test>\r\n\
         Subject: Report domain: example.test Submitter: google.test Report-ID: r-42\r\n\
         MIME-Version: 1.0\r\nContent-Type: application/gzip; name=\"google.test!example.test!1764892800!1764979199.xml.gz\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{attachment}\r\n.\r\n"
    );
    w.write_all(body.as_bytes()).unwrap();
    let got = smtp_reply(&mut r);
    w.write_all(b"QUIT\r\n").unwrap();
    got
}
