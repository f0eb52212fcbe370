//! DANE (RFC 7672) end to end: the queue worker against a loopback DNS server playing a
//! validating resolver (AD bit per zone and name, SERVFAIL, truncation) and scripted SMTP
//! servers on loopback with self-signed or CA-issued certificates.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hickory_resolver::proto::rr::RecordType;
use sha2::{Digest, Sha256};
use support::*;
use wharf_outbound::dane::{self, DanePolicy, Tlsa};
use wharf_outbound::dkim::DkimSigners;
use wharf_outbound::mta_sts::MtaStsConfig;
use wharf_outbound::queue::{NewQueueEntry, QueueStore, QueuedRecipient, RecipientState};
use wharf_outbound::route::RouterConfig;
use wharf_outbound::{ClientConfig, Outbound, SmtpClient, TrustAnchors};

// ---------------------------------------------------------------- fixtures

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Captures this thread's log lines (the tests run on a current-thread runtime, so the worker's
/// tasks log here too).
fn capture_logs() -> (Logs, tracing::subscriber::DefaultGuard) {
    let logs = Logs::default();
    let w = logs.clone();
    let sub = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || w.clone())
        .finish();
    (logs, tracing::subscriber::set_default(sub))
}

struct Setup {
    queue: Arc<MemoryQueue>,
    out: Arc<Outbound>,
    id: i64,
}

fn router(dns: SocketAddr, port: u16) -> RouterConfig {
    RouterConfig {
        nameservers: vec![dns],
        smtp_port: port,
        dns_timeout: Duration::from_secs(2),
        mta_sts: None,
        dane: true,
        ..RouterConfig::default()
    }
}

/// Queues one message alice@a.test → bob@b.test.
async fn queue_one(rc: RouterConfig, require_tls: bool) -> Setup {
    let queue = Arc::new(MemoryQueue::new());
    // No trust anchor knows the test certificates: only DANE can authenticate them.
    let out = test_outbound(
        &queue,
        "mail.a.test",
        rc,
        quick_worker,
        DkimSigners::new(),
        None,
    );
    let raw = "From: <alice@a.test>\r\nTo: <bob@b.test>\r\nSubject: dane\r\n\r\nhi\r\n";
    let id = out
        .submit(NewQueueEntry {
            require_tls,
            ..out.new_entry(
                "alice@a.test",
                vec![QueuedRecipient::new("bob@b.test")],
                Bytes::from(raw),
            )
        })
        .await
        .unwrap();
    Setup { queue, out, id }
}

fn spki_sha256(cert_der: &[u8]) -> Vec<u8> {
    Sha256::digest(dane::select(cert_der, 1).unwrap()).to_vec()
}

fn tlsa_name(port: u16) -> String {
    format!("_{port}._tcp.mx.b.test")
}

fn base_zone() -> Zone {
    Zone::default()
        .mx("b.test", 10, "mx.b.test")
        .a("mx.b.test", "127.0.0.1")
}

fn tls_server(cert: &TestCert) -> FakeConfig {
    FakeConfig {
        tls: Some(cert.server.clone()),
        ..FakeConfig::default()
    }
}

/// (state, status, diagnostic) of the one recipient, `None` once delivered (entry gone).
async fn rcpt(s: &Setup) -> Option<(RecipientState, String, String)> {
    let e = s.queue.get(s.id).await.unwrap()?;
    let r = &e.recipients[0];
    Some((
        r.state,
        r.status.clone().unwrap_or_default(),
        r.diagnostic.clone().unwrap_or_default(),
    ))
}

fn mailed(st: &FakeState) -> bool {
    st.commands().iter().any(|c| c.starts_with("MAIL"))
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn dane_ee_spki_sha256_authenticates_a_self_signed_certificate() {
    let (logs, _g) = capture_logs();
    let cert = TestCert::new("whatever.invalid", &[]);
    let (addr, st) = start_fake(tls_server(&cert)).await;
    let dns = start_dns(base_zone().secure().tlsa(
        &tlsa_name(addr.port()),
        3,
        1,
        1,
        &spki_sha256(&cert.cert_der),
    ))
    .await;
    let s = queue_one(router(dns, addr.port()), false).await;
    s.out.run_once().await.unwrap();
    assert_eq!(st.messages().len(), 1, "{}", logs.text());
    assert!(st.messages()[0].tls);
    assert!(rcpt(&s).await.is_none(), "delivered");
    let text = logs.text();
    assert!(
        text.contains("dane-verified (DANE-EE 3 1 1)"),
        "the delivery line says how the MX was authenticated: {text}"
    );

    // The client reports the match in its TLS summary as well.
    let mut cfg = ClientConfig::new("mail.a.test");
    cfg.anchors = TrustAnchors::empty();
    cfg.dane = Some(Arc::new(DanePolicy {
        host: "mx.b.test".into(),
        names: vec!["mx.b.test".into(), "b.test".into()],
        records: vec![Tlsa::new(3, 0, 1, Sha256::digest(&cert.cert_der).to_vec())],
    }));
    let c = SmtpClient::connect(addr, "mx.b.test", &cfg).await.unwrap();
    let tls = c.tls().unwrap();
    assert!(tls.verified);
    assert_eq!(tls.dane.as_deref(), Some("DANE-EE 3 0 1"));
    c.quit().await.unwrap();
}

#[tokio::test]
async fn mismatching_tlsa_defers_before_mail_from() {
    let (logs, _g) = capture_logs();
    let cert = TestCert::new("mx.b.test", &[]);
    let other = TestCert::new("mx.b.test", &[]);
    let (addr, st) = start_fake(tls_server(&cert)).await;
    let dns = start_dns(base_zone().secure().tlsa(
        &tlsa_name(addr.port()),
        3,
        1,
        1,
        &spki_sha256(&other.cert_der),
    ))
    .await;
    let s = queue_one(router(dns, addr.port()), false).await;
    s.out.run_once().await.unwrap();
    assert!(st.messages().is_empty());
    assert!(!mailed(&st), "no MAIL FROM after a failed DANE match");
    let (state, status, diag) = rcpt(&s).await.unwrap();
    assert_eq!(state, RecipientState::Pending);
    assert_eq!(status, "4.7.5");
    let want = format!(
        "DANE: mx.b.test: TLSA 3 1 1 did not match certificate (spki sha256 {}",
        dane::hex(&spki_sha256(&cert.cert_der))
    );
    assert!(diag.contains(&want), "{diag}");
    assert!(logs.text().contains(&want), "logged: {}", logs.text());
}

#[tokio::test]
async fn secure_tlsa_without_starttls_defers_and_never_sends_plaintext() {
    let cert = TestCert::new("mx.b.test", &[]);
    let (addr, st) = start_fake(FakeConfig::default()).await;
    let dns = start_dns(base_zone().secure().tlsa(
        &tlsa_name(addr.port()),
        3,
        1,
        1,
        &spki_sha256(&cert.cert_der),
    ))
    .await;
    let s = queue_one(router(dns, addr.port()), false).await;
    s.out.run_once().await.unwrap();
    assert_eq!(st.connections(), 1);
    assert!(!mailed(&st));
    let (_, status, diag) = rcpt(&s).await.unwrap();
    assert_eq!(status, "4.7.5");
    assert!(
        diag.contains("DANE: mx.b.test: TLSA 3 1 1 published but") && diag.contains("STARTTLS"),
        "{diag}"
    );

    // STARTTLS advertised but refused (even with a 5xx): a deferral too.
    let (addr, st) = start_fake(FakeConfig {
        refuse_starttls: true,
        ..FakeConfig::default()
    })
    .await;
    let dns = start_dns(base_zone().secure().tlsa(
        &tlsa_name(addr.port()),
        3,
        1,
        1,
        &spki_sha256(&cert.cert_der),
    ))
    .await;
    let s = queue_one(router(dns, addr.port()), false).await;
    s.out.run_once().await.unwrap();
    assert!(!mailed(&st));
    let (state, _, diag) = rcpt(&s).await.unwrap();
    assert_eq!(state, RecipientState::Pending);
    assert!(diag.contains("DANE: mx.b.test: STARTTLS refused"), "{diag}");
}

#[tokio::test]
async fn insecure_answers_leave_delivery_opportunistic() {
    let cert = TestCert::new("mx.b.test", &[]);
    let other = TestCert::new("mx.b.test", &[]);
    // The same mismatching TLSA, without the AD bit: DANE does not apply.
    let (addr, st) = start_fake(tls_server(&cert)).await;
    let dns = start_dns(base_zone().tlsa(
        &tlsa_name(addr.port()),
        3,
        1,
        1,
        &spki_sha256(&other.cert_der),
    ))
    .await;
    let s = queue_one(router(dns, addr.port()), false).await;
    s.out.run_once().await.unwrap();
    assert_eq!(st.messages().len(), 1);
    assert!(st.messages()[0].tls, "opportunistic STARTTLS still used");
    assert!(rcpt(&s).await.is_none());

    // Secure TLSA under an insecure MX RRset (RFC 7672 §2.2.1): DANE does not apply either.
    let (addr, st) = start_fake(tls_server(&cert)).await;
    let dns = start_dns(base_zone().secure().insecure("b.test").tlsa(
        &tlsa_name(addr.port()),
        3,
        1,
        1,
        &spki_sha256(&other.cert_der),
    ))
    .await;
    let s = queue_one(router(dns, addr.port()), false).await;
    s.out.run_once().await.unwrap();
    assert_eq!(st.messages().len(), 1);
    assert!(rcpt(&s).await.is_none());

    // Secure MX and TLSA, but the MX host's address RRset is insecure (RFC 7672 §2.2.2).
    let (addr, st) = start_fake(tls_server(&cert)).await;
    let dns = start_dns(base_zone().secure().insecure("mx.b.test").tlsa(
        &tlsa_name(addr.port()),
        3,
        1,
        1,
        &spki_sha256(&other.cert_der),
    ))
    .await;
    let s = queue_one(router(dns, addr.port()), false).await;
    s.out.run_once().await.unwrap();
    assert_eq!(st.messages().len(), 1);
    assert!(rcpt(&s).await.is_none());

    // DANE disabled in the configuration: TLSA records are not even looked at.
    let (addr, st) = start_fake(tls_server(&cert)).await;
    let dns = start_dns(base_zone().secure().tlsa(
        &tlsa_name(addr.port()),
        3,
        1,
        1,
        &spki_sha256(&other.cert_der),
    ))
    .await;
    let mut rc = router(dns, addr.port());
    rc.dane = false;
    let s = queue_one(rc, false).await;
    s.out.run_once().await.unwrap();
    assert_eq!(st.messages().len(), 1);
    assert!(rcpt(&s).await.is_none());
}

#[tokio::test]
async fn dane_ta_by_the_issuing_ca_with_matching_name_delivers() {
    let (logs, _g) = capture_logs();
    let (ca_der, leaf) = TestCert::signed_by_new_ca(&["mx.b.test"]);
    let (addr, st) = start_fake(tls_server(&leaf)).await;
    let dns = start_dns(base_zone().secure().tlsa(
        &tlsa_name(addr.port()),
        2,
        0,
        1,
        &Sha256::digest(&ca_der),
    ))
    .await;
    let s = queue_one(router(dns, addr.port()), false).await;
    s.out.run_once().await.unwrap();
    assert_eq!(st.messages().len(), 1, "{}", logs.text());
    assert!(rcpt(&s).await.is_none());
    assert!(
        logs.text()
            .contains("dane-verified (DANE-TA 2 0 1 (mx.b.test))")
    );

    // The next-hop domain is an acceptable name too (RFC 7672 §3.2.2).
    let (ca_der, leaf) = TestCert::signed_by_new_ca(&["b.test"]);
    let (addr, st) = start_fake(tls_server(&leaf)).await;
    let dns = start_dns(base_zone().secure().tlsa(
        &tlsa_name(addr.port()),
        2,
        1,
        1,
        &spki_sha256(&ca_der),
    ))
    .await;
    let s = queue_one(router(dns, addr.port()), false).await;
    s.out.run_once().await.unwrap();
    assert_eq!(st.messages().len(), 1);
    assert!(rcpt(&s).await.is_none());

    // Same CA, leaf for another name: deferred, nothing sent.
    let (ca_der, leaf) = TestCert::signed_by_new_ca(&["mx.elsewhere.test"]);
    let (addr, st) = start_fake(tls_server(&leaf)).await;
    let dns = start_dns(base_zone().secure().tlsa(
        &tlsa_name(addr.port()),
        2,
        0,
        1,
        &Sha256::digest(&ca_der),
    ))
    .await;
    let s = queue_one(router(dns, addr.port()), false).await;
    s.out.run_once().await.unwrap();
    assert!(!mailed(&st));
    let (_, status, diag) = rcpt(&s).await.unwrap();
    assert_eq!(status, "4.7.5");
    assert!(
        diag.contains("DANE: mx.b.test: TLSA 2 0 1 matched a certificate of the chain"),
        "{diag}"
    );
}

#[tokio::test]
async fn tlsa_servfail_under_a_secure_mx_defers_without_connecting() {
    let (logs, _g) = capture_logs();
    let cert = TestCert::new("mx.b.test", &[]);
    let (addr, st) = start_fake(tls_server(&cert)).await;
    let name = tlsa_name(addr.port());
    let dns = start_dns(
        base_zone()
            .secure()
            .tlsa(&name, 3, 1, 1, &spki_sha256(&cert.cert_der))
            .servfail(&name, RecordType::TLSA),
    )
    .await;
    let s = queue_one(router(dns, addr.port()), false).await;
    s.out.run_once().await.unwrap();
    assert_eq!(
        st.connections(),
        0,
        "the host is not used, not even in plaintext"
    );
    let (state, status, diag) = rcpt(&s).await.unwrap();
    assert_eq!(state, RecipientState::Pending);
    assert_eq!(status, "4.7.5");
    assert!(
        diag.contains("DANE: TLSA lookups for the mail exchangers of b.test failed")
            && diag.contains("mx.b.test: TLSA lookup answered Server Failure"),
        "{diag}"
    );
    assert!(logs.text().contains("host not used"));

    // A bogus (SERVFAIL) MX answer defers as well.
    let (addr, st) = start_fake(tls_server(&cert)).await;
    let dns = start_dns(base_zone().secure().servfail("b.test", RecordType::MX)).await;
    let s = queue_one(router(dns, addr.port()), false).await;
    s.out.run_once().await.unwrap();
    assert_eq!(st.connections(), 0);
    let (state, _, _) = rcpt(&s).await.unwrap();
    assert_eq!(state, RecipientState::Pending);
}

#[tokio::test]
async fn truncated_udp_answer_is_retried_over_tcp() {
    let cert = TestCert::new("mx.b.test", &[]);
    let other = TestCert::new("mx.b.test", &[]);
    let (addr, st) = start_fake(tls_server(&cert)).await;
    let name = tlsa_name(addr.port());
    // Over UDP the TLSA answer would be empty; only TCP shows the (mismatching) record.
    let dns = start_dns(
        base_zone()
            .secure()
            .tlsa(&name, 3, 1, 1, &spki_sha256(&other.cert_der))
            .truncate_udp(&name),
    )
    .await;
    let s = queue_one(router(dns, addr.port()), false).await;
    s.out.run_once().await.unwrap();
    assert!(!mailed(&st));
    let (_, _, diag) = rcpt(&s).await.unwrap();
    assert!(diag.contains("did not match certificate"), "{diag}");
}

#[tokio::test]
async fn only_unusable_tlsa_records_still_require_tls() {
    let cert = TestCert::new("mx.b.test", &[]);
    let digest = spki_sha256(&cert.cert_der);
    // PKIX-EE (usage 1) is unusable for SMTP: TLS mandatory, certificate not authenticated.
    let (addr, st) = start_fake(FakeConfig::default()).await;
    let dns = start_dns(
        base_zone()
            .secure()
            .tlsa(&tlsa_name(addr.port()), 1, 1, 1, &digest),
    )
    .await;
    let s = queue_one(router(dns, addr.port()), false).await;
    s.out.run_once().await.unwrap();
    assert!(!mailed(&st), "no plaintext delivery");
    assert_eq!(rcpt(&s).await.unwrap().1, "4.7.5");

    let other = TestCert::new("mx.b.test", &[]);
    let (addr, st) = start_fake(tls_server(&other)).await;
    let dns = start_dns(
        base_zone()
            .secure()
            .tlsa(&tlsa_name(addr.port()), 1, 1, 1, &digest),
    )
    .await;
    let s = queue_one(router(dns, addr.port()), false).await;
    s.out.run_once().await.unwrap();
    assert_eq!(st.messages().len(), 1);
    assert!(st.messages()[0].tls);
}

#[tokio::test]
async fn dane_takes_precedence_over_mta_sts_and_satisfies_requiretls() {
    let (logs, _g) = capture_logs();
    let cert = TestCert::new("mx.b.test", &[]);
    let sts_cert = TestCert::new("mta-sts.b.test", &[]);
    // An enforce policy naming another MX would defer this delivery if it were applied.
    let policy = "version: STSv1\r\nmode: enforce\r\nmx: other.b.test\r\nmax_age: 86400\r\n";
    let (https, hits) = start_https(sts_cert.server.clone(), policy.into()).await;
    let mut smtp = tls_server(&cert);
    smtp.extensions.push("REQUIRETLS".into());
    let (addr, st) = start_fake(smtp).await;
    let dns = start_dns(
        base_zone()
            .secure()
            .txt("_mta-sts.b.test", "v=STSv1; id=2026112901;")
            .a("mta-sts.b.test", "127.0.0.1")
            .tlsa(
                &tlsa_name(addr.port()),
                3,
                1,
                1,
                &spki_sha256(&cert.cert_der),
            ),
    )
    .await;
    let mut rc = router(dns, addr.port());
    rc.mta_sts = Some(MtaStsConfig {
        https_port: https.port(),
        anchors: TrustAnchors::empty()
            .with_pem(sts_cert.cert_pem.as_bytes())
            .unwrap(),
        fetch_timeout: Duration::from_secs(5),
    });
    // REQUIRETLS (RFC 8689): DANE-authenticated TLS counts as authenticated.
    let s = queue_one(rc.clone(), true).await;
    s.out.run_once().await.unwrap();
    assert_eq!(st.messages().len(), 1, "{}", logs.text());
    assert!(rcpt(&s).await.is_none());
    assert!(
        st.commands()
            .iter()
            .any(|c| c.starts_with("MAIL FROM:<alice@a.test>") && c.ends_with(" REQUIRETLS"))
    );
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "MTA-STS not consulted where DANE applies"
    );

    // Without the TLSA record the same policy is enforced: deferred.
    let dns = start_dns(
        base_zone()
            .secure()
            .txt("_mta-sts.b.test", "v=STSv1; id=2026112901;")
            .a("mta-sts.b.test", "127.0.0.1"),
    )
    .await;
    rc.nameservers = vec![dns];
    let s = queue_one(rc, false).await;
    s.out.run_once().await.unwrap();
    assert_eq!(st.messages().len(), 1, "no new delivery");
    let (_, status, diag) = rcpt(&s).await.unwrap();
    assert_eq!(status, "4.7.5");
    assert!(diag.contains("MTA-STS"), "{diag}");
}

#[tokio::test]
async fn implicit_mx_under_a_secure_denial_uses_the_domains_own_tlsa() {
    let cert = TestCert::new("b.test", &[]);
    let other = TestCert::new("b.test", &[]);
    for (published, delivered) in [(&cert, true), (&other, false)] {
        let (addr, st) = start_fake(tls_server(&cert)).await;
        // No MX: the secure NODATA answer makes the implicit MX (b.test itself) DANE-eligible.
        let dns = start_dns(Zone::default().a("b.test", "127.0.0.1").secure().tlsa(
            &format!("_{}._tcp.b.test", addr.port()),
            3,
            1,
            1,
            &spki_sha256(&published.cert_der),
        ))
        .await;
        let s = queue_one(router(dns, addr.port()), false).await;
        s.out.run_once().await.unwrap();
        assert_eq!(st.messages().len() == 1, delivered);
        match rcpt(&s).await {
            None => assert!(delivered),
            Some((_, status, diag)) => {
                assert!(!delivered);
                assert_eq!(status, "4.7.5");
                assert!(
                    diag.contains("DANE: b.test: TLSA 3 1 1 did not match"),
                    "{diag}"
                );
            }
        }
    }
}
