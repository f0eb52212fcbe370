//! Routing against a DNS server on loopback, and the queue worker end to end: DKIM-signed
//! delivery over STARTTLS verified with mail-auth, retries on schedule, bounces (and no bounce
//! loops), delay warnings, expiry, smarthost with AUTH, lease takeover, connection reuse.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use mail_auth::DkimResult;
use mail_parser::{MessageParser, MimeHeaders};
use support::*;
use wharf_outbound::dkim::{Algorithm, DkimSigners};
use wharf_outbound::mta_sts::MtaStsConfig;
use wharf_outbound::queue::{NewQueueEntry, QueueStore, QueuedRecipient, RecipientState};
use wharf_outbound::route::{Relay, RouteError, Router, RouterConfig};
use wharf_outbound::{
    BounceSink, ClientConfig, Credentials, Outbound, QueueConfig, Ret, TlsPolicy, TrustAnchors,
};

fn router(dns: SocketAddr, port: u16) -> RouterConfig {
    RouterConfig {
        nameservers: vec![dns],
        smtp_port: port,
        dns_timeout: Duration::from_secs(2),
        ..RouterConfig::default()
    }
}

#[derive(Default)]
struct Capture(Mutex<Vec<(String, Vec<u8>)>>);

#[async_trait]
impl BounceSink for Capture {
    async fn send_dsn(&self, to: &str, raw: Vec<u8>) -> Result<(), String> {
        self.0.lock().unwrap().push((to.to_string(), raw));
        Ok(())
    }
}

struct Setup {
    queue: Arc<MemoryQueue>,
    out: Arc<Outbound>,
}

fn setup(
    rc: RouterConfig,
    tweak: impl FnOnce(&mut QueueConfig, &mut ClientConfig),
    dkim: DkimSigners,
    sink: Option<Arc<dyn BounceSink>>,
) -> Setup {
    let queue = Arc::new(MemoryQueue::new());
    let out = test_outbound(
        &queue,
        "mail.a.test",
        rc,
        |q, c| {
            quick_worker(q, c);
            tweak(q, c);
        },
        dkim,
        sink,
    );
    Setup { queue, out }
}

fn submission(out: &Outbound, from: &str, to: &[&str], body: &str) -> NewQueueEntry {
    let raw = format!(
        "From: Alice <{from}>\r\nTo: {}\r\nSubject: outbound test\r\nDate: Sat, 28 Nov 2026 12:00:00 +0000\r\nMessage-ID: <t1@a.test>\r\n\r\n{body}\r\n",
        to.join(", ")
    );
    NewQueueEntry {
        envid: Some("ENV-42".into()),
        ret: Some(Ret::Hdrs),
        ..out.new_entry(
            from,
            to.iter().map(|a| QueuedRecipient::new(a)).collect(),
            Bytes::from(raw),
        )
    }
}

fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn routing_by_mx_preference_implicit_mx_null_mx_and_nxdomain() {
    let dns = start_dns(
        Zone::default()
            .mx("a.test", 10, "mx1.a.test")
            .mx("a.test", 20, "mx2.a.test")
            .a("mx2.a.test", "127.0.0.1")
            .mx("null.test", 0, ".")
            .a("plain.test", "127.0.0.1")
            .mx("six.test", 5, "mx.six.test")
            .a("mx.six.test", "::1")
            .a("mx.six.test", "127.0.0.2"),
    )
    .await;
    let mut rc = router(dns, 2525);
    rc.overrides.insert(
        "over.test".into(),
        Relay {
            host: "[127.0.0.3]".into(),
            port: 2626,
            credentials: None,
            tls: None,
        },
    );
    let r = Router::new(rc).unwrap();
    // mx1 has no address: skipped; mx2 used.
    let hops = r.route("A.test.").await.unwrap();
    assert_eq!(hops.len(), 1);
    assert_eq!(hops[0].host, "mx2.a.test");
    assert_eq!(hops[0].addrs, vec!["127.0.0.1:2525".parse().unwrap()]);
    // RFC 7505 null MX.
    assert!(matches!(
        r.route("null.test").await,
        Err(RouteError::Permanent {
            status: "5.1.10",
            ..
        })
    ));
    // No MX: the domain's own address (RFC 5321 §5.1).
    let hops = r.route("plain.test").await.unwrap();
    assert_eq!(hops[0].host, "plain.test");
    assert_eq!(hops[0].addrs, vec!["127.0.0.1:2525".parse().unwrap()]);
    // No such domain.
    assert!(matches!(
        r.route("nowhere.test").await,
        Err(RouteError::Permanent {
            status: "5.1.2",
            ..
        })
    ));
    // IPv6 and IPv4 addresses of one exchanger.
    let hops = r.route("six.test").await.unwrap();
    assert_eq!(
        hops[0].addrs,
        vec![
            "[::1]:2525".parse().unwrap(),
            "127.0.0.2:2525".parse().unwrap()
        ]
    );
    // Per-domain override skips DNS.
    let hops = r.route("over.test").await.unwrap();
    assert_eq!(hops[0].addrs, vec!["127.0.0.3:2626".parse().unwrap()]);
}

#[tokio::test]
async fn dkim_signed_delivery_over_starttls_verifies_with_mail_auth() {
    let (signers, keys) = dkim_keys(
        "a.test",
        &[("ed", Algorithm::Ed25519), ("rsa", Algorithm::Rsa)],
    );
    let (ed, rsa) = (&keys[0], &keys[1]);
    let cert = TestCert::new("mx.b.test", &[]);
    let (addr, st) = start_fake(FakeConfig {
        tls: Some(cert.server.clone()),
        ..FakeConfig::default()
    })
    .await;
    let dns = start_dns(
        Zone::default()
            .mx("b.test", 10, "mx.b.test")
            .a("mx.b.test", "127.0.0.1")
            .txt(&ed.dns_name, &ed.txt_value)
            .txt(&rsa.dns_name, &rsa.txt_value),
    )
    .await;
    let s = setup(router(dns, addr.port()), |_, _| {}, signers, None);
    let id = s
        .out
        .submit(submission(
            &s.out,
            "alice@a.test",
            &["bob@b.test", "carol@b.test"],
            "Hello Bob.\r\n.dot line",
        ))
        .await
        .unwrap();
    assert!(id > 0);
    assert_eq!(s.out.run_once().await.unwrap(), 1);
    let m = st.messages();
    assert_eq!(
        m.len(),
        1,
        "one transaction for both recipients of the domain"
    );
    assert_eq!(m[0].rcpts, vec!["bob@b.test", "carol@b.test"]);
    assert!(m[0].tls);
    assert!(
        s.queue.list().await.unwrap().is_empty(),
        "delivered entries leave the queue"
    );

    // The receiving side checks both signatures against the keys published in DNS.
    let results = dkim_results(dns, &m[0].data).await;
    assert_eq!(
        results,
        vec![DkimResult::Pass, DkimResult::Pass],
        "RSA and Ed25519 signatures"
    );
    // A tampered body fails.
    let mut bad = m[0].data.clone();
    let n = bad.len();
    bad[n - 3] = b'X';
    assert!(
        dkim_results(dns, &bad)
            .await
            .iter()
            .all(|r| r != &DkimResult::Pass)
    );
}

#[tokio::test]
async fn destination_down_is_retried_on_schedule_then_delivered() {
    let port = dead_port();
    let dns = start_dns(
        Zone::default()
            .mx("b.test", 10, "mx.b.test")
            .a("mx.b.test", "127.0.0.1"),
    )
    .await;
    let s = setup(router(dns, port), |_, _| {}, DkimSigners::new(), None);
    let id = s
        .out
        .submit(submission(
            &s.out,
            "alice@a.test",
            &["bob@b.test"],
            "retry me",
        ))
        .await
        .unwrap();
    assert_eq!(s.out.run_once().await.unwrap(), 1);
    let e = s.queue.get(id).await.unwrap().unwrap();
    assert_eq!(e.attempts, 1);
    assert_eq!(e.recipients[0].state, RecipientState::Pending);
    assert_eq!(e.recipients[0].status.as_deref(), Some("4.4.2"));
    assert!(e.lease_owner.is_none(), "lease released after the attempt");
    // Not due yet.
    assert_eq!(s.out.run_once().await.unwrap(), 0);
    // The destination comes up; the next scheduled attempt delivers.
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let st = serve_fake(l, FakeConfig::default());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(s.out.run_once().await.unwrap(), 1);
    assert_eq!(st.messages().len(), 1);
    assert!(s.queue.get(id).await.unwrap().is_none());
}

#[tokio::test]
async fn permanent_failure_bounces_to_sender_and_bounces_never_loop() {
    let (addr, st) = start_fake(FakeConfig {
        rcpt: Arc::new(|a| {
            if a == "ok@b.test" {
                "250 ok".into()
            } else {
                "550 5.1.1 <x>: no such user".into()
            }
        }),
        ..FakeConfig::default()
    })
    .await;
    // The sender's own domain routes to the same refusing server, so the bounce fails too.
    let dns = start_dns(
        Zone::default()
            .mx("b.test", 10, "mx.b.test")
            .mx("a.test", 10, "mx.b.test")
            .a("mx.b.test", "127.0.0.1"),
    )
    .await;
    let s = setup(
        router(dns, addr.port()),
        |_, _| {},
        DkimSigners::new(),
        None,
    );
    let id = s
        .out
        .submit(submission(
            &s.out,
            "alice@a.test",
            &["ok@b.test", "bob@b.test"],
            "bounce me",
        ))
        .await
        .unwrap();
    s.out.run_once().await.unwrap();
    assert!(
        s.queue.get(id).await.unwrap().is_none(),
        "every recipient settled"
    );
    let entries = s.queue.list().await.unwrap();
    assert_eq!(entries.len(), 1, "exactly one DSN queued");
    let dsn = &entries[0];
    assert_eq!(dsn.sender, "", "DSNs use the null reverse path");
    assert_eq!(dsn.recipients[0].address, "alice@a.test");
    let raw = s.queue.message(dsn.id).await.unwrap();
    let parsed = MessageParser::default().parse(&raw).unwrap();
    let ct = parsed.content_type().unwrap();
    assert_eq!((ct.ctype(), ct.subtype()), ("multipart", Some("report")));
    let status = parsed
        .parts
        .iter()
        .find(|p| {
            p.content_type()
                .is_some_and(|c| c.subtype() == Some("delivery-status"))
        })
        .expect("message/delivery-status part");
    let text = String::from_utf8_lossy(status.contents()).to_string();
    assert!(text.contains("Reporting-MTA: dns; mail.a.test"), "{text}");
    assert!(text.contains("Original-Envelope-Id: ENV-42"));
    assert!(text.contains("Final-Recipient: rfc822; bob@b.test"));
    assert!(
        !text.contains("ok@b.test"),
        "delivered recipients are not reported as failed"
    );
    assert!(text.contains("Action: failed\r\nStatus: 5.1.1"));
    assert!(text.contains("Remote-MTA: dns; mx.b.test"));
    assert!(text.contains("Diagnostic-Code: smtp; 550 5.1.1 <x>: no such user"));
    assert!(
        String::from_utf8_lossy(&raw).contains("Subject: outbound test"),
        "RET=HDRS headers returned"
    );
    assert!(!String::from_utf8_lossy(&raw).contains("bounce me"));
    // The DSN itself is refused: it is dropped, never bounced.
    s.out.run_once().await.unwrap();
    assert!(s.queue.list().await.unwrap().is_empty());
    assert_eq!(st.messages().len(), 1);
}

#[tokio::test]
async fn delay_warning_once_and_expiry_fails_with_dsn() {
    let port = dead_port();
    let dns = start_dns(
        Zone::default()
            .mx("b.test", 10, "mx.b.test")
            .a("mx.b.test", "127.0.0.1"),
    )
    .await;
    let cap = Arc::new(Capture::default());
    let s = setup(
        router(dns, port),
        |q, _| {
            q.delay_warning = Some(Duration::ZERO);
            q.retry_schedule = vec![Duration::ZERO];
            q.max_age = Duration::from_secs(3);
        },
        DkimSigners::new(),
        Some(cap.clone()),
    );
    let id = s
        .out
        .submit(submission(&s.out, "alice@a.test", &["bob@b.test"], "slow"))
        .await
        .unwrap();
    s.out.run_once().await.unwrap();
    s.out.run_once().await.unwrap();
    {
        let got = cap.0.lock().unwrap();
        assert_eq!(got.len(), 1, "one delay warning, not one per attempt");
        let text = String::from_utf8_lossy(&got[0].1);
        assert_eq!(got[0].0, "alice@a.test");
        assert!(
            text.contains("Action: delayed") && text.contains("Will-Retry-Until:"),
            "{text}"
        );
    }
    assert_eq!(s.queue.get(id).await.unwrap().unwrap().attempts, 2);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    s.out.run_once().await.unwrap();
    assert!(s.queue.get(id).await.unwrap().is_none());
    let got = cap.0.lock().unwrap();
    assert_eq!(got.len(), 2);
    let text = String::from_utf8_lossy(&got[1].1);
    assert!(text.contains("Action: failed\r\nStatus: 4.4.7"), "{text}");
}

#[tokio::test]
async fn notify_never_suppresses_the_dsn() {
    let (addr, _st) = start_fake(FakeConfig {
        rcpt: Arc::new(|_| "550 5.1.1 no".into()),
        ..FakeConfig::default()
    })
    .await;
    let dns = start_dns(
        Zone::default()
            .mx("b.test", 10, "mx.b.test")
            .a("mx.b.test", "127.0.0.1"),
    )
    .await;
    let cap = Arc::new(Capture::default());
    let s = setup(
        router(dns, addr.port()),
        |_, _| {},
        DkimSigners::new(),
        Some(cap.clone()),
    );
    let mut sub = submission(&s.out, "alice@a.test", &["bob@b.test"], "x");
    sub.recipients[0].notify.never = true;
    sub.recipients[0].notify.failure = false;
    s.out.submit(sub).await.unwrap();
    s.out.run_once().await.unwrap();
    assert!(cap.0.lock().unwrap().is_empty());
    assert!(s.queue.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn smarthost_with_auth_over_required_tls() {
    let cert = TestCert::new("relay.test", &[]);
    let (addr, st) = start_fake(FakeConfig {
        tls: Some(cert.server.clone()),
        auth: Some(("relay-user".into(), "relay pass 123".into())),
        ..FakeConfig::default()
    })
    .await;
    // No DNS data at all: the relay host is an address literal, recipients' domains are never looked up.
    let dns = start_dns(Zone::default()).await;
    let mut rc = router(dns, 1);
    rc.relayhost = Some(Relay {
        host: "127.0.0.1".into(),
        port: addr.port(),
        credentials: Some(Credentials {
            username: "relay-user".into(),
            password: "relay pass 123".into(),
        }),
        tls: Some(TlsPolicy::Required),
    });
    let s = setup(rc, |_, _| {}, DkimSigners::new(), None);
    s.out
        .submit(submission(
            &s.out,
            "alice@a.test",
            &["x@anywhere.test", "y@elsewhere.test"],
            "via relay",
        ))
        .await
        .unwrap();
    s.out.run_once().await.unwrap();
    let m = st.messages();
    assert_eq!(m.len(), 2, "one transaction per destination domain");
    assert!(
        m.iter()
            .all(|m| m.tls && m.authed.as_deref() == Some("relay-user"))
    );
    assert!(s.queue.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn crashed_workers_lease_is_taken_over_and_delivered_once() {
    let (addr, st) = start_fake(FakeConfig::default()).await;
    let dns = start_dns(
        Zone::default()
            .mx("b.test", 10, "mx.b.test")
            .a("mx.b.test", "127.0.0.1"),
    )
    .await;
    let s = setup(
        router(dns, addr.port()),
        |_, _| {},
        DkimSigners::new(),
        None,
    );
    let id = s
        .out
        .submit(submission(&s.out, "alice@a.test", &["bob@b.test"], "once"))
        .await
        .unwrap();
    // Another node leased it and died.
    let now = chrono::Utc::now().timestamp();
    assert_eq!(
        s.queue
            .lease_due("dead-node", now, 1, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.out.run_once().await.unwrap(),
        0,
        "a live lease is respected"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(s.out.run_once().await.unwrap(), 1);
    assert_eq!(st.messages().len(), 1);
    assert!(s.queue.get(id).await.unwrap().is_none());
    assert_eq!(s.out.run_once().await.unwrap(), 0);
    assert_eq!(st.messages().len(), 1, "exactly once");
}

#[tokio::test]
async fn messages_to_one_domain_share_a_connection_within_the_limit() {
    let (addr, st) = start_fake(FakeConfig::default()).await;
    let dns = start_dns(
        Zone::default()
            .mx("b.test", 10, "mx.b.test")
            .a("mx.b.test", "127.0.0.1"),
    )
    .await;
    let s = setup(
        router(dns, addr.port()),
        |q, _| q.max_connections_per_domain = 2,
        DkimSigners::new(),
        None,
    );
    for i in 0..6 {
        s.out
            .submit(submission(
                &s.out,
                "alice@a.test",
                &[&format!("u{i}@b.test")],
                "bulk",
            ))
            .await
            .unwrap();
    }
    assert_eq!(s.out.run_once().await.unwrap(), 6);
    assert_eq!(st.messages().len(), 6);
    assert_eq!(
        st.connections(),
        2,
        "two lanes, each reusing its connection"
    );
    let m = s.out.metrics();
    assert_eq!((m.queued, m.delivered, m.failed, m.deferred), (6, 6, 0, 0));
}

#[tokio::test]
async fn worker_loop_delivers_on_wake_and_stops_on_shutdown() {
    let (addr, st) = start_fake(FakeConfig::default()).await;
    let dns = start_dns(
        Zone::default()
            .mx("b.test", 10, "mx.b.test")
            .a("mx.b.test", "127.0.0.1"),
    )
    .await;
    let s = setup(
        router(dns, addr.port()),
        |q, _| q.poll_interval = Duration::from_secs(60),
        DkimSigners::new(),
        None,
    );
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(s.out.clone().run(rx));
    s.out
        .submit(submission(&s.out, "alice@a.test", &["bob@b.test"], "loop"))
        .await
        .unwrap();
    for _ in 0..100 {
        if !st.messages().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        st.messages().len(),
        1,
        "submit wakes the worker without waiting for the poll"
    );
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}

async fn sts_setup(
    policy_mx: &str,
    smtp: FakeConfig,
    mx_anchor: Option<&str>,
    require_tls: bool,
) -> (Setup, FakeState, Arc<std::sync::atomic::AtomicUsize>, u64) {
    let sts_cert = TestCert::new("mta-sts.b.test", &[]);
    let policy =
        format!("version: STSv1\r\nmode: enforce\r\nmx: {policy_mx}\r\nmax_age: 86400\r\n");
    let (https, hits) = start_https(sts_cert.server.clone(), policy).await;
    let (addr, st) = start_fake(smtp).await;
    let dns = start_dns(
        Zone::default()
            .mx("b.test", 10, "mx.b.test")
            .a("mx.b.test", "127.0.0.1")
            .txt("_mta-sts.b.test", "v=STSv1; id=2026112801;")
            .a("mta-sts.b.test", "127.0.0.1"),
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
    let anchor = mx_anchor.map(str::to_string);
    let s = setup(
        rc,
        move |_, c| {
            if let Some(pem) = anchor {
                c.anchors = TrustAnchors::empty().with_pem(pem.as_bytes()).unwrap();
            }
        },
        DkimSigners::new(),
        None,
    );
    let mut sub = submission(&s.out, "alice@a.test", &["bob@b.test"], "sts");
    sub.require_tls = require_tls;
    let id = s.out.submit(sub).await.unwrap();
    (s, st, hits, id as u64)
}

#[tokio::test]
async fn mta_sts_enforce_with_non_matching_mx_defers_without_connecting() {
    let (s, st, hits, id) = sts_setup("other.b.test", FakeConfig::default(), None, false).await;
    s.out.run_once().await.unwrap();
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "policy fetched over HTTPS"
    );
    assert_eq!(st.connections(), 0, "nothing sent, not even in plaintext");
    let e = s.queue.get(id as i64).await.unwrap().unwrap();
    assert_eq!(e.recipients[0].state, RecipientState::Pending);
    assert_eq!(e.recipients[0].status.as_deref(), Some("4.7.5"));
    assert!(
        e.recipients[0]
            .diagnostic
            .as_deref()
            .unwrap()
            .contains("MTA-STS policy of b.test (enforce)")
    );
    // The next attempt uses the cached policy (same id): no refetch.
    s.queue
        .retry_now(None, chrono::Utc::now().timestamp())
        .await
        .unwrap();
    s.out.run_once().await.unwrap();
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(st.connections(), 0);
}

#[tokio::test]
async fn mta_sts_enforce_requires_verified_tls_on_matching_mx() {
    // Plaintext-only MX named by the policy: deferred, no MAIL in plaintext.
    let (s, st, _hits, id) = sts_setup("mx.b.test", FakeConfig::default(), None, false).await;
    s.out.run_once().await.unwrap();
    assert!(!st.commands().iter().any(|c| c.starts_with("MAIL")));
    let e = s.queue.get(id as i64).await.unwrap().unwrap();
    assert_eq!(e.recipients[0].status.as_deref(), Some("4.7.5"), "{e:?}");
    // STARTTLS with a certificate the sender can verify: delivered.
    let mx_cert = TestCert::new("mx.b.test", &[]);
    let (s, st, _hits, id) = sts_setup(
        "*.b.test",
        FakeConfig {
            tls: Some(mx_cert.server.clone()),
            ..FakeConfig::default()
        },
        Some(&mx_cert.cert_pem),
        false,
    )
    .await;
    s.out.run_once().await.unwrap();
    assert_eq!(st.messages().len(), 1);
    assert!(st.messages()[0].tls);
    assert!(s.queue.get(id as i64).await.unwrap().is_none());
    // STARTTLS offered but the certificate does not verify: deferred.
    let other = TestCert::new("mx.b.test", &[]);
    let (s, st, _hits, id) = sts_setup(
        "mx.b.test",
        FakeConfig {
            tls: Some(other.server.clone()),
            ..FakeConfig::default()
        },
        Some(&mx_cert.cert_pem),
        false,
    )
    .await;
    s.out.run_once().await.unwrap();
    assert!(st.messages().is_empty());
    assert!(s.queue.get(id as i64).await.unwrap().is_some());
}

#[tokio::test]
async fn requiretls_needs_an_authenticated_mx_offering_it() {
    // No MTA-STS policy: the MX cannot be authenticated, the message fails with 5.7.30 and a DSN.
    let cap = Arc::new(Capture::default());
    let (addr, st) = start_fake(FakeConfig::default()).await;
    let dns = start_dns(
        Zone::default()
            .mx("b.test", 10, "mx.b.test")
            .a("mx.b.test", "127.0.0.1"),
    )
    .await;
    let s = setup(
        router(dns, addr.port()),
        |_, _| {},
        DkimSigners::new(),
        Some(cap.clone()),
    );
    let mut sub = submission(&s.out, "alice@a.test", &["bob@b.test"], "secret");
    sub.require_tls = true;
    s.out.submit(sub).await.unwrap();
    s.out.run_once().await.unwrap();
    assert_eq!(st.connections(), 0);
    assert!(s.queue.list().await.unwrap().is_empty());
    let got = cap.0.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert!(String::from_utf8_lossy(&got[0].1).contains("Status: 5.7.30"));

    // Enforced MTA-STS and verified TLS, but the server lacks REQUIRETLS: 5.7.30, nothing sent.
    let mx_cert = TestCert::new("mx.b.test", &[]);
    let (s, st, _h, id) = sts_setup(
        "mx.b.test",
        FakeConfig {
            tls: Some(mx_cert.server.clone()),
            ..FakeConfig::default()
        },
        Some(&mx_cert.cert_pem),
        true,
    )
    .await;
    s.out.run_once().await.unwrap();
    assert!(st.messages().is_empty() && !st.commands().iter().any(|c| c.starts_with("MAIL")));
    assert!(
        s.queue.get(id as i64).await.unwrap().is_none(),
        "failed, not retried"
    );

    // Everything in place: delivered with REQUIRETLS on MAIL FROM.
    let mut with = FakeConfig {
        tls: Some(mx_cert.server.clone()),
        ..FakeConfig::default()
    };
    with.extensions.push("REQUIRETLS".into());
    let (s, st, _h, id) = sts_setup("mx.b.test", with, Some(&mx_cert.cert_pem), true).await;
    s.out.run_once().await.unwrap();
    assert_eq!(st.messages().len(), 1);
    assert!(
        st.commands()
            .iter()
            .any(|c| c.starts_with("MAIL FROM:<alice@a.test>") && c.ends_with(" REQUIRETLS"))
    );
    assert!(s.queue.get(id as i64).await.unwrap().is_none());
}

#[tokio::test]
async fn notify_success_reported_as_relayed_unless_next_hop_speaks_dsn() {
    for dsn_server in [false, true] {
        let mut fc = FakeConfig::default();
        if dsn_server {
            fc.extensions.push("DSN".into());
        }
        let (addr, st) = start_fake(fc).await;
        let dns = start_dns(
            Zone::default()
                .mx("b.test", 10, "mx.b.test")
                .a("mx.b.test", "127.0.0.1"),
        )
        .await;
        let cap = Arc::new(Capture::default());
        let s = setup(
            router(dns, addr.port()),
            |_, _| {},
            DkimSigners::new(),
            Some(cap.clone()),
        );
        let mut sub = submission(&s.out, "alice@a.test", &["bob@b.test"], "x");
        sub.recipients[0].notify.success = true;
        sub.recipients[0].notify.explicit = true;
        s.out.submit(sub).await.unwrap();
        s.out.run_once().await.unwrap();
        assert_eq!(st.messages().len(), 1);
        let got = cap.0.lock().unwrap().clone();
        if dsn_server {
            assert!(
                got.is_empty(),
                "the DSN-aware server reports success itself"
            );
            assert!(
                st.commands()
                    .iter()
                    .any(|c| c.contains("NOTIFY=SUCCESS,FAILURE,DELAY")),
                "{:?}",
                st.commands()
            );
        } else {
            assert_eq!(got.len(), 1);
            let text = String::from_utf8_lossy(&got[0].1);
            assert!(text.contains("Action: relayed\r\nStatus: 2.0.0"), "{text}");
            assert!(text.contains("Subject: Successful Mail Delivery Report"));
        }
    }
}

#[tokio::test]
async fn a_slow_destination_does_not_hold_back_the_queue() {
    let (slow, slow_st) = start_fake(FakeConfig {
        greeting_delay: Duration::from_secs(4),
        ..FakeConfig::default()
    })
    .await;
    // Same port on another loopback address, since the MX port is global.
    let (_fast, fast_st) =
        start_fake_on(&format!("127.0.0.2:{}", slow.port()), FakeConfig::default()).await;
    let dns = start_dns(
        Zone::default()
            .mx("slow.test", 10, "mx.slow.test")
            .a("mx.slow.test", "127.0.0.1")
            .mx("fast.test", 10, "mx.fast.test")
            .a("mx.fast.test", "127.0.0.2"),
    )
    .await;
    let s = setup(
        router(dns, slow.port()),
        |q, _| q.poll_interval = Duration::from_secs(60),
        DkimSigners::new(),
        None,
    );
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(s.out.clone().run(rx));
    s.out
        .submit(submission(&s.out, "alice@a.test", &["x@slow.test"], "slow"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.out
        .submit(submission(&s.out, "alice@a.test", &["y@fast.test"], "fast"))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    while fast_st.messages().is_empty() && started.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        fast_st.messages().len(),
        1,
        "fast domain delivered while the slow one is still greeting"
    );
    assert!(slow_st.messages().is_empty());
    let started = std::time::Instant::now();
    while slow_st.messages().is_empty() && started.elapsed() < Duration::from_secs(8) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(slow_st.messages().len(), 1);
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
}
