//! Outbound delivery into a real Wharf SMTP server on loopback (wharf_smtp over a temporary
//! embedded store): found by MX through the test DNS server, reached over STARTTLS, DKIM-signed
//! and verified on arrival; and the smarthost path with AUTH against Wharf's submission port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mail_auth::DkimResult;
use support::*;
use wharf_directory::Directory;
use wharf_net::{Limits, Server, TlsMode};
use wharf_outbound::dkim::{Algorithm, DkimSigners};
use wharf_outbound::queue::{NewQueueEntry, QueueStore, QueuedRecipient};
use wharf_outbound::route::{Relay, RouterConfig};
use wharf_outbound::{ClientConfig, Credentials, Outbound, QueueConfig, TlsPolicy};
use wharf_smtp::{SmtpConfig, SmtpRole, SmtpService};
use wharf_store::Store;
use wharf_testkit::{Loopback, TestDirectory};

const PASSWORD: &str = "correct horse battery staple";

struct Wharf {
    mx: SocketAddr,
    submission: SocketAddr,
    store: Arc<dyn Store>,
    dir: Directory,
    _server: Server,
    _files: TestDirectory,
}

/// A Wharf SMTP node for `b.test` with accounts bob@ and relay@.
async fn start_wharf() -> Wharf {
    let files = TestDirectory::with_accounts(&["bob@b.test", "relay@b.test"], PASSWORD).await;
    let dir = files.directory.clone();
    let cert = TestCert::new("mx.b.test", &[]);
    let mut listeners = Loopback::new(
        Some(&cert),
        Limits {
            idle_timeout: Duration::from_secs(30),
            ..Limits::default()
        },
    );
    let cfg = SmtpConfig {
        max_connection_rate_per_ip: 0,
        max_connections_per_ip: 0,
        ..SmtpConfig::default()
    };
    let service = |role| {
        Arc::new(SmtpService::new(
            cfg.clone(),
            "mx.b.test".into(),
            dir.clone(),
            role,
        ))
    };
    let mx = listeners
        .listen("smtp", TlsMode::StartTls, service(SmtpRole::Mx))
        .await;
    let submission = listeners
        .listen(
            "submission",
            TlsMode::StartTls,
            service(SmtpRole::Submission),
        )
        .await;
    Wharf {
        mx,
        submission,
        store: files.store.clone(),
        dir,
        _server: listeners.start(),
        _files: files,
    }
}

async fn inbox(store: &Arc<dyn Store>, address: &str) -> Vec<Bytes> {
    let acct = store
        .get_account_by_address(address)
        .await
        .unwrap()
        .unwrap();
    let mbox = store.get_mailbox(acct.id, "INBOX").await.unwrap().unwrap();
    let mut out = Vec::new();
    for e in store.mailbox_index(mbox.id).await.unwrap() {
        out.push(store.message_raw(e.message_id).await.unwrap());
    }
    out
}

fn outbound(rc: RouterConfig, signers: DkimSigners) -> (Arc<MemoryQueue>, Arc<Outbound>) {
    let queue = Arc::new(MemoryQueue::new());
    let retry_every_second = |q: &mut QueueConfig, _: &mut ClientConfig| {
        q.retry_schedule = vec![Duration::from_secs(1)];
    };
    let out = test_outbound(&queue, "mail.a.test", rc, retry_every_second, signers, None);
    (queue, out)
}

fn message(from: &str, to: &str, body: &str) -> Bytes {
    Bytes::from(format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: between two servers\r\nDate: Sat, 28 Nov 2026 12:00:00 +0000\r\nMessage-ID: <w1@a.test>\r\n\r\n{body}\r\n"
    ))
}

#[tokio::test]
async fn delivered_by_mx_over_starttls_into_inbox_with_valid_dkim() {
    let b = start_wharf().await;
    let (signers, keys) = dkim_keys("a.test", &[("wharf", Algorithm::Ed25519)]);
    let ed = &keys[0];
    let dns = start_dns(
        Zone::default()
            .mx("b.test", 10, "mx.b.test")
            .a("mx.b.test", "127.0.0.1")
            .txt(&ed.dns_name, &ed.txt_value),
    )
    .await;
    let rc = RouterConfig {
        nameservers: vec![dns],
        smtp_port: b.mx.port(),
        ..RouterConfig::default()
    };
    let (queue, out) = outbound(rc, signers);
    out.submit(out.new_entry(
        "alice@a.test",
        vec![
            QueuedRecipient::new("bob@b.test"),
            QueuedRecipient::new("nobody@b.test"),
        ],
        message(
            "alice@a.test",
            "bob@b.test",
            "Hello from A.\r\n.a dotted line",
        ),
    ))
    .await
    .unwrap();
    out.run_once().await.unwrap();
    let got = inbox(&b.store, "bob@b.test").await;
    assert_eq!(got.len(), 1);
    let raw = String::from_utf8_lossy(&got[0]).to_string();
    assert!(raw.contains("with ESMTPS"), "arrived over TLS: {raw}");
    assert!(raw.contains("version=TLSv1.3"));
    assert!(
        raw.contains("\r\n.a dotted line\r\n"),
        "dot-stuffing round trip"
    );
    // The unknown recipient was refused by B (5xx) and bounced to alice (queued with <>).
    let entries = queue.list().await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].sender, "");
    assert_eq!(entries[0].recipients[0].address, "alice@a.test");
    let dsn = String::from_utf8_lossy(&queue.message(entries[0].id).await.unwrap()).to_string();
    assert!(
        dsn.contains("Final-Recipient: rfc822; nobody@b.test"),
        "{dsn}"
    );
    assert!(dsn.contains("Action: failed\r\nStatus: 5."));

    // B verifies A's signature with the key published in DNS.
    assert_eq!(dkim_results(dns, &got[0]).await, vec![DkimResult::Pass]);
}

#[tokio::test]
async fn smarthost_with_auth_against_wharf_submission() {
    let b = start_wharf().await;
    let dns = start_dns(Zone::default()).await;
    let rc = RouterConfig {
        nameservers: vec![dns],
        relayhost: Some(Relay {
            host: "127.0.0.1".into(),
            port: b.submission.port(),
            credentials: Some(Credentials {
                username: "relay@b.test".into(),
                password: PASSWORD.into(),
            }),
            tls: Some(TlsPolicy::Required),
        }),
        ..RouterConfig::default()
    };
    let (queue, out) = outbound(rc, DkimSigners::new());
    out.submit(out.new_entry(
        "relay@b.test",
        vec![QueuedRecipient::new("bob@b.test")],
        message("relay@b.test", "bob@b.test", "via the smarthost"),
    ))
    .await
    .unwrap();
    out.run_once().await.unwrap();
    let got = inbox(&b.store, "bob@b.test").await;
    assert_eq!(got.len(), 1, "queue: {:?}", queue.list().await.unwrap());
    let raw = String::from_utf8_lossy(&got[0]).to_string();
    assert!(
        raw.contains("with ESMTPSA") && raw.contains("authenticated user relay@b.test"),
        "{raw}"
    );
    assert!(queue.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn dsn_for_a_local_sender_lands_in_its_inbox() {
    // Node B sends for its own user relay@b.test to c.test, whose MX refuses the recipient.
    let b = start_wharf().await;
    let (refuser, _st) = start_fake(FakeConfig {
        rcpt: Arc::new(|_| "550 5.1.1 <carol@c.test>: unknown user".into()),
        ..FakeConfig::default()
    })
    .await;
    let dns = start_dns(
        Zone::default()
            .mx("c.test", 10, "mx.c.test")
            .a("mx.c.test", "127.0.0.1"),
    )
    .await;
    let queue = Arc::new(MemoryQueue::new());
    let sink = Arc::new(wharf_outbound::local::LocalBounceSink::new(
        b.dir.clone(),
        queue.clone(),
        3600,
    ));
    let rc = RouterConfig {
        nameservers: vec![dns],
        smtp_port: refuser.port(),
        ..RouterConfig::default()
    };
    let out = test_outbound(
        &queue,
        "mx.b.test",
        rc,
        |_, _| {},
        DkimSigners::new(),
        Some(sink),
    );
    out.submit(NewQueueEntry {
        envid: Some("E-77".into()),
        ..out.new_entry(
            "relay@b.test",
            vec![QueuedRecipient::new("carol@c.test")],
            message("relay@b.test", "carol@c.test", "will bounce"),
        )
    })
    .await
    .unwrap();
    out.run_once().await.unwrap();
    assert!(
        queue.list().await.unwrap().is_empty(),
        "nothing left queued, no DSN queued either"
    );
    let got = inbox(&b.store, "relay@b.test").await;
    assert_eq!(got.len(), 1, "the DSN is in the sender's INBOX");
    let parsed = mail_parser::MessageParser::default()
        .parse(&got[0])
        .unwrap();
    use mail_parser::MimeHeaders;
    let status = parsed
        .parts
        .iter()
        .find(|p| {
            p.content_type()
                .is_some_and(|c| c.subtype() == Some("delivery-status"))
        })
        .expect("delivery-status part");
    let text = String::from_utf8_lossy(status.contents()).to_string();
    assert!(
        text.contains("Final-Recipient: rfc822; carol@c.test"),
        "{text}"
    );
    assert!(text.contains("Status: 5.1.1"));
    assert!(text.contains("Original-Envelope-Id: E-77"));
    assert!(String::from_utf8_lossy(&got[0]).starts_with("Return-Path: <>\r\n"));
}
