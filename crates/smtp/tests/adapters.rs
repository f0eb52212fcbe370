//! The session over the real ports (`adapters`: directory and store over a temporary SQLite
//! store), driven through `Session::handle` without sockets: the binding of every port is
//! exercised end to end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use wharf_directory::{Directory, DirectoryConfig};
use wharf_smtp::adapters::directory_backend;
use wharf_smtp::spool::Spool;
use wharf_smtp::{ConnInfo, Input, Next, Session, SmtpConfig, SmtpRole, Step};

async fn setup() -> (tempfile::TempDir, Directory) {
    let tmp = tempfile::tempdir().unwrap();
    let store = wharf_store::open_embedded(tmp.path()).await.unwrap();
    let dir = Directory::new(store, DirectoryConfig::default());
    dir.add_domain("example.test").await.unwrap();
    dir.add_account("alice@example.test", "correct horse battery staple", 0)
        .await
        .unwrap();
    (tmp, dir)
}

fn session(dir: &Directory, role: SmtpRole, tls: bool) -> Session {
    let conn = ConnInfo {
        peer: "192.0.2.7:40000".parse().unwrap(),
        tls: tls.then(|| {
            (
                "TLSv1.3".to_string(),
                "TLS13_AES_128_GCM_SHA256".to_string(),
            )
        }),
        starttls_available: !tls,
    };
    let spool = Arc::new(Spool::new(
        std::env::temp_dir().join("wharf-smtp-adapters-test"),
        256 * 1024,
        1 << 20,
        1,
    ));
    Session::new(
        Arc::new(SmtpConfig::default()),
        "mx.example.test".into(),
        role,
        directory_backend(dir.clone(), None),
        spool,
        "SID".into(),
        conn,
    )
}

async fn line(s: &mut Session, line: &[u8]) -> Step {
    s.handle(Input::Line(line)).await
}

async fn codes(s: &mut Session, l: &str) -> (Vec<u16>, Next) {
    let r = line(s, format!("{l}\r\n").as_bytes()).await;
    (r.output.codes(), r.next)
}

fn text(step: &Step) -> String {
    let mut out = Vec::new();
    step.output.write_to(&mut out);
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn mx_transaction_end_to_end_without_sockets() {
    let (_tmp, dir) = setup().await;
    let mut s = session(&dir, SmtpRole::Mx, false);
    assert_eq!(
        text(&s.handle(Input::Connected).await),
        "220 mx.example.test ESMTP Wharf\r\n"
    );
    let r = line(&mut s, b"EHLO c.test\r\n").await;
    let ehlo = text(&r);
    assert!(ehlo.starts_with("250-mx.example.test Hello c.test [192.0.2.7]\r\n"));
    assert!(
        ehlo.contains("250 STARTTLS\r\n") && !ehlo.contains("AUTH") && !ehlo.contains("REQUIRETLS")
    );
    assert_eq!(
        codes(&mut s, "MAIL FROM:<x@remote.test>").await,
        (vec![250], Next::Command)
    );
    assert_eq!(
        codes(&mut s, "RCPT TO:<elsewhere@remote.test>").await.0,
        vec![550]
    );
    assert_eq!(
        codes(&mut s, "RCPT TO:<alice@example.test>").await.0,
        vec![250]
    );
    assert_eq!(codes(&mut s, "DATA").await, (vec![354], Next::Data));
    let input = b"Subject: t\r\n\r\n..x\r\n.\r\nQUIT\r\n";
    let r = s.handle(Input::Data(input)).await;
    assert_eq!(&input[r.consumed..], b"QUIT\r\n");
    assert_eq!(r.output.codes(), vec![250], "{}", text(&r));
    let store = dir.store();
    let acct = store
        .get_account_by_address("alice@example.test")
        .await
        .unwrap()
        .unwrap();
    let inbox = store.get_mailbox(acct.id, "INBOX").await.unwrap().unwrap();
    let idx = store.mailbox_index(inbox.id).await.unwrap();
    let raw = store.message_raw(idx[0].message_id).await.unwrap();
    assert!(
        raw.starts_with(b"Return-Path: <x@remote.test>\r\nReceived: from c.test ([192.0.2.7])\r\n")
    );
    assert!(raw.ends_with(b"\r\nSubject: t\r\n\r\n.x\r\n"));
    assert!(String::from_utf8_lossy(&raw).contains("\tfor <alice@example.test>;\r\n"));
    assert_eq!(codes(&mut s, "QUIT").await, (vec![221], Next::Close));
}

#[tokio::test]
async fn starttls_resets_and_submission_needs_auth() {
    let (_tmp, dir) = setup().await;
    let mut s = session(&dir, SmtpRole::Submission, false);
    let r = line(&mut s, b"EHLO c.test\r\n").await;
    assert!(!text(&r).contains("AUTH"));
    assert_eq!(codes(&mut s, "AUTH PLAIN").await.0, vec![530]);
    assert_eq!(codes(&mut s, "STARTTLS").await, (vec![220], Next::StartTls));
    s.handle(Input::TlsStarted {
        version: "TLSv1.3".into(),
        cipher: "TLS13_AES_128_GCM_SHA256".into(),
    })
    .await;
    assert_eq!(
        codes(&mut s, "MAIL FROM:<alice@example.test>").await.0,
        vec![503]
    );
    let r = line(&mut s, b"EHLO c.test\r\n").await;
    let ehlo = text(&r);
    assert!(
        ehlo.contains("AUTH SCRAM-SHA-256 PLAIN LOGIN")
            && ehlo.contains("REQUIRETLS")
            && !ehlo.contains("STARTTLS")
    );
    assert_eq!(
        codes(&mut s, "MAIL FROM:<alice@example.test>").await.0,
        vec![530]
    );
    assert_eq!(
        codes(&mut s, "AUTH LOGIN").await,
        (vec![334], Next::AuthResponse)
    );
    let r = line(&mut s, b"YWxpY2VAZXhhbXBsZS50ZXN0\r\n").await;
    assert_eq!(r.next, Next::AuthResponse);
    let r = line(&mut s, b"Y29ycmVjdCBob3JzZSBiYXR0ZXJ5IHN0YXBsZQ==\r\n").await;
    assert_eq!(r.output.codes(), vec![235]);
    assert_eq!(
        codes(&mut s, "MAIL FROM:<bob@example.test>").await.0,
        vec![553]
    );
    assert_eq!(
        codes(&mut s, "MAIL FROM:<alice@example.test>").await.0,
        vec![250]
    );
}

#[tokio::test]
async fn bdat_flow_and_error_limit() {
    let (_tmp, dir) = setup().await;
    let mut s = session(&dir, SmtpRole::Mx, true);
    codes(&mut s, "EHLO c.test").await;
    assert_eq!(
        codes(&mut s, "BDAT 4").await,
        (vec![], Next::Chunk { remaining: 4 })
    );
    let r = s.handle(Input::Data(b"abcd")).await;
    assert_eq!(
        (r.output.codes(), r.next, r.consumed),
        (vec![503], Next::Command, 4)
    );
    codes(&mut s, "MAIL FROM:<x@remote.test>").await;
    codes(&mut s, "RCPT TO:<alice@example.test>").await;
    assert_eq!(
        codes(&mut s, "BDAT 3").await,
        (vec![], Next::Chunk { remaining: 3 })
    );
    assert_eq!(
        s.handle(Input::Data(b"A:b")).await.output.codes(),
        vec![250]
    );
    assert_eq!(codes(&mut s, "DATA").await.0, vec![503]);
    assert_eq!(
        codes(&mut s, "BDAT 2 LAST").await.1,
        Next::Chunk { remaining: 2 }
    );
    let r = s.handle(Input::Data(b"\r\n")).await;
    assert_eq!(r.output.codes(), vec![250], "{}", text(&r));
    // Errors so far: BDAT without MAIL, DATA after BDAT. Eight more reach the default limit of 10.
    for _ in 0..7 {
        assert_eq!(codes(&mut s, "BOGUS").await, (vec![500], Next::Command));
    }
    assert_eq!(codes(&mut s, "BOGUS").await, (vec![500, 421], Next::Close));
}
