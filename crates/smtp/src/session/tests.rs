//! The state machine driven with byte strings, no sockets: a real directory over a temporary store.

use std::sync::Arc;

use wharf_directory::{Directory, DirectoryConfig};

use super::{ConnInfo, Next, Session};
use crate::SmtpRole;
use crate::config::SmtpConfig;

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
    Session::new(
        Arc::new(SmtpConfig::default()),
        "mx.example.test".into(),
        role,
        dir.clone(),
        "SID".into(),
        conn,
    )
}

async fn codes(s: &mut Session, line: &str) -> (Vec<u16>, Next) {
    let r = s.command(format!("{line}\r\n").as_bytes()).await;
    (r.replies.iter().map(|r| r.code).collect(), r.next)
}

#[tokio::test]
async fn mx_transaction_end_to_end_without_sockets() {
    let (_tmp, dir) = setup().await;
    let mut s = session(&dir, SmtpRole::Mx, false);
    assert_eq!(
        s.greeting().to_bytes(),
        b"220 mx.example.test ESMTP Wharf\r\n"
    );
    let r = s.command(b"EHLO c.test\r\n").await;
    let ehlo = String::from_utf8(r.replies[0].to_bytes()).unwrap();
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
    let (n, done) = s.body().unwrap().feed_data(input);
    assert!(done);
    assert_eq!(&input[n..], b"QUIT\r\n");
    let r = s.end_of_data().await;
    assert_eq!(r.replies[0].code, 250, "{}", r.replies[0]);
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
    let r = s.command(b"EHLO c.test\r\n").await;
    assert!(
        !String::from_utf8(r.replies[0].to_bytes())
            .unwrap()
            .contains("AUTH")
    );
    assert_eq!(codes(&mut s, "AUTH PLAIN").await.0, vec![530]);
    assert_eq!(codes(&mut s, "STARTTLS").await, (vec![220], Next::StartTls));
    s.tls_started("TLSv1.3".into(), "TLS13_AES_128_GCM_SHA256".into());
    assert_eq!(
        codes(&mut s, "MAIL FROM:<alice@example.test>").await.0,
        vec![503]
    );
    let r = s.command(b"EHLO c.test\r\n").await;
    let ehlo = String::from_utf8(r.replies[0].to_bytes()).unwrap();
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
    let r = s.auth_response(b"YWxpY2VAZXhhbXBsZS50ZXN0\r\n").await;
    assert_eq!(r.next, Next::AuthResponse);
    let r = s
        .auth_response(b"Y29ycmVjdCBob3JzZSBiYXR0ZXJ5IHN0YXBsZQ==\r\n")
        .await;
    assert_eq!(r.replies[0].code, 235);
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
        (
            vec![503],
            Next::Bdat {
                size: 4,
                discard: true
            }
        )
    );
    codes(&mut s, "MAIL FROM:<x@remote.test>").await;
    codes(&mut s, "RCPT TO:<alice@example.test>").await;
    assert_eq!(
        codes(&mut s, "BDAT 3").await,
        (
            vec![],
            Next::Bdat {
                size: 3,
                discard: false
            }
        )
    );
    s.body().unwrap().feed_chunk(b"A:b");
    assert_eq!(s.end_of_chunk().await.replies[0].code, 250);
    assert_eq!(codes(&mut s, "DATA").await.0, vec![503]);
    assert_eq!(
        codes(&mut s, "BDAT 2 LAST").await.1,
        Next::Bdat {
            size: 2,
            discard: false
        }
    );
    s.body().unwrap().feed_chunk(b"\r\n");
    let r = s.end_of_chunk().await;
    assert_eq!(r.replies[0].code, 250, "{}", r.replies[0]);
    // Errors so far: BDAT without MAIL, DATA after BDAT. Eight more reach the default limit of 10.
    for _ in 0..7 {
        assert_eq!(codes(&mut s, "BOGUS").await, (vec![500], Next::Command));
    }
    assert_eq!(codes(&mut s, "BOGUS").await, (vec![500, 421], Next::Close));
}
