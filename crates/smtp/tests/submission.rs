//! Submission (587 STARTTLS, 465 implicit TLS): AUTH only after TLS, sender ownership of MAIL FROM
//! and From:, Message-ID/Date completion, remote recipients refused (451) without an outbound queue,
//! STARTTLS state reset and injection defence, SCRAM-SHA-256.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use support::*;
use wharf_smtp::SmtpConfig;

fn plain_auth(user: &str, pass: &str) -> String {
    b64(&format!("\0{user}\0{pass}"))
}

#[tokio::test]
async fn auth_before_starttls_is_refused() {
    let s = start().await;
    let mut c = Raw::open(s.submission).await;
    let ehlo = c.expect("EHLO client.test", 250).await;
    assert!(ehlo.contains("STARTTLS"), "{ehlo}");
    assert!(!ehlo.contains("AUTH"), "{ehlo}");
    let text = c
        .expect(&format!("AUTH PLAIN {}", plain_auth(ALICE, PASSWORD)), 530)
        .await;
    assert!(text.contains("5.7.0"), "{text}");
    let text = c.expect("AUTH LOGIN", 530).await;
    assert!(text.contains("5.7.0"), "{text}");
    c.expect("MAIL FROM:<alice@example.test>", 530).await;
}

#[tokio::test]
async fn loopback_opt_in_allows_plaintext_auth() {
    let s = start_with(SmtpConfig {
        allow_plaintext_auth_on_loopback: true,
        ..test_config()
    })
    .await;
    let mut c = Raw::open(s.submission).await;
    let ehlo = c.expect("EHLO client.test", 250).await;
    assert!(ehlo.contains("AUTH SCRAM-SHA-256 PLAIN LOGIN"), "{ehlo}");
    let text = c
        .expect(
            &format!("AUTH PLAIN {}", plain_auth(ALICE, "wrong password here")),
            535,
        )
        .await;
    assert!(text.contains("5.7.8"), "{text}");
    c.expect(&format!("AUTH PLAIN {}", plain_auth(ALICE, PASSWORD)), 235)
        .await;
    c.expect("AUTH PLAIN", 503).await;
    c.expect("MAIL FROM:<alice@example.test>", 250).await;
    c.expect("RCPT TO:<bob@example.test>", 250).await;
    c.expect("DATA", 354).await;
    let msg = message(ALICE, BOB, "optin", "hello\r\n");
    c.send(&msg).await;
    c.send(b".\r\n").await;
    assert_eq!(c.reply().await.0, 250);
    let inbox = s.inbox(BOB).await;
    assert_eq!(strip_trace(&inbox[0]), &msg[..]);
    assert!(trace_headers(&inbox[0]).contains("with ESMTPA id"));
}

#[tokio::test]
async fn auth_login_challenge_sequence_and_abort() {
    let s = start_with(SmtpConfig {
        allow_plaintext_auth_on_loopback: true,
        ..test_config()
    })
    .await;
    let mut c = Raw::open(s.submission).await;
    c.expect("EHLO client.test", 250).await;
    let text = c.expect("AUTH LOGIN", 334).await;
    assert!(text.starts_with("334 "), "{text}");
    c.expect("*", 501).await;
    c.expect("AUTH LOGIN", 334).await;
    c.expect(&b64(ALICE), 334).await;
    c.expect(&b64(PASSWORD), 235).await;
    c.expect("AUTH CRAM-MD5", 503).await;
    let mut c = Raw::open(s.submission).await;
    c.expect("EHLO client.test", 250).await;
    c.expect("AUTH CRAM-MD5", 504).await;
    c.expect("AUTH PLAIN !!notbase64!!", 501).await;
}

#[tokio::test]
async fn auth_over_starttls_and_state_reset() {
    let s = start().await;
    let login = format!("AUTH PLAIN {}\r\n", plain_auth(ALICE, PASSWORD));
    transcript(
        s.submission.port(),
        false,
        &[
            Step::Send("EHLO client.test\r\n"),
            Step::Expect(250),
            Step::Send("STARTTLS\r\n"),
            Step::Expect(220),
            Step::StartTls,
            // RFC 3207: EHLO is required again after the upgrade.
            Step::Send("MAIL FROM:<alice@example.test>\r\n"),
            Step::Expect(503),
            Step::Send("EHLO client.test\r\n"),
            Step::Expect(250),
            Step::Contains("AUTH SCRAM-SHA-256 PLAIN LOGIN"),
            Step::Contains("REQUIRETLS"),
            Step::Lacks("STARTTLS"),
            Step::Send("STARTTLS\r\n"),
            Step::Expect(503),
            Step::Send(&login),
            Step::Expect(235),
            Step::Send("MAIL FROM:<alice@example.test>\r\n"),
            Step::Expect(250),
            Step::Send("QUIT\r\n"),
            Step::Expect(221),
        ],
    )
    .await;
}

#[tokio::test]
async fn plaintext_pipelined_after_starttls_is_discarded() {
    let s = start_with(SmtpConfig {
        allow_plaintext_auth_on_loopback: false,
        ..test_config()
    })
    .await;
    transcript(
        s.mx.port(),
        false,
        &[
            Step::Send("EHLO client.test\r\n"),
            Step::Expect(250),
            // Injected after STARTTLS in the same packet: must never be read as TLS-protected input.
            Step::Send("STARTTLS\r\nMAIL FROM:<evil@remote.test>\r\n"),
            Step::Expect(220),
            Step::StartTls,
            Step::Send("EHLO client.test\r\n"),
            Step::Expect(250),
            Step::Send("RCPT TO:<alice@example.test>\r\n"),
            Step::Expect(503),
        ],
    )
    .await;
}

#[tokio::test]
async fn sender_spoofing_is_refused() {
    let s = start().await;
    let login = format!("AUTH PLAIN {}\r\n", plain_auth(ALICE, PASSWORD));
    let spoofed =
        String::from_utf8(message(BOB, CAROL, "spoof", "I am bob, honest.\r\n")).unwrap() + ".\r\n";
    let own = String::from_utf8(message(
        "alice-alias@example.test",
        CAROL,
        "alias-ok",
        "From my alias.\r\n",
    ))
    .unwrap()
        + ".\r\n";
    let out = transcript(
        s.smtps.port(),
        true,
        &[
            Step::Send("EHLO client.test\r\n"),
            Step::Expect(250),
            Step::Send(&login),
            Step::Expect(235),
            // Envelope sender of someone else.
            Step::Send("MAIL FROM:<bob@example.test>\r\n"),
            Step::Expect(553),
            Step::Contains("5.7.1"),
            Step::Send("MAIL FROM:<>\r\n"),
            Step::Expect(553),
            // Own envelope, someone else's From: header.
            Step::Send("MAIL FROM:<alice@example.test>\r\n"),
            Step::Expect(250),
            Step::Send("RCPT TO:<carol@example.test>\r\n"),
            Step::Expect(250),
            Step::Send("DATA\r\n"),
            Step::Expect(354),
            Step::Send(&spoofed),
            Step::Expect(553),
            Step::Contains("5.7.1"),
            // An alias alice owns is fine, in both places; plus-addressing too.
            Step::Send("MAIL FROM:<alice+lists@example.test>\r\n"),
            Step::Expect(250),
            Step::Send("RCPT TO:<carol@example.test>\r\n"),
            Step::Expect(250),
            Step::Send("DATA\r\n"),
            Step::Expect(354),
            Step::Send(&own),
            Step::Expect(250),
        ],
    )
    .await;
    assert!(out.contains("PASS"));
    let inbox = s.inbox(CAROL).await;
    assert_eq!(inbox.len(), 1);
    assert!(String::from_utf8_lossy(&inbox[0]).contains("Subject: alias-ok"));
}

#[tokio::test]
async fn message_id_and_date_are_added_when_missing() {
    let s = start().await;
    let login = format!("AUTH PLAIN {}\r\n", plain_auth(ALICE, PASSWORD));
    transcript(
        s.smtps.port(),
        true,
        &[
            Step::Send("EHLO client.test\r\n"),
            Step::Expect(250),
            Step::Send(&login),
            Step::Expect(235),
            Step::Send("MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"),
            Step::Expect(250),
            Step::Expect(250),
            Step::Expect(354),
            Step::Send(
                "From: Alice <alice@example.test>\r\nSubject: bare\r\n\r\nno id, no date\r\n.\r\n",
            ),
            Step::Expect(250),
        ],
    )
    .await;
    let inbox = s.inbox(BOB).await;
    let msg = String::from_utf8(strip_trace(&inbox[0]).to_vec()).unwrap();
    let (headers, body) = msg.split_once("\r\n\r\n").unwrap();
    assert_eq!(body, "no id, no date\r\n");
    let lines: Vec<&str> = headers.split("\r\n").collect();
    assert_eq!(lines[0], "From: Alice <alice@example.test>");
    assert_eq!(lines[1], "Subject: bare");
    assert!(
        lines[2].starts_with("Message-ID: <") && lines[2].ends_with("@mx.example.test>"),
        "{headers}"
    );
    assert!(lines[3].starts_with("Date: "), "{headers}");
    assert_eq!(lines.len(), 4);
}

#[tokio::test]
async fn remote_recipients_wait_for_the_outbound_queue() {
    let s = start().await;
    let login = format!("AUTH PLAIN {}\r\n", plain_auth(ALICE, PASSWORD));
    transcript(
        s.smtps.port(),
        true,
        &[
            Step::Send("EHLO client.test\r\n"),
            Step::Expect(250),
            Step::Send(&login),
            Step::Expect(235),
            Step::Send("MAIL FROM:<alice@example.test>\r\n"),
            Step::Expect(250),
            Step::Send("RCPT TO:<friend@remote.test>\r\n"),
            Step::Expect(451),
            Step::Contains("4.3.0"),
            Step::Send("RCPT TO:<nobody@example.test>\r\n"),
            Step::Expect(550),
            Step::Contains("5.1.1"),
        ],
    )
    .await;
}

#[tokio::test]
async fn scram_sha_256_authentication() {
    let s = start().await;
    let file = tempfile::NamedTempFile::new().unwrap();
    let msg = message(ALICE, BOB, "scram", "Authenticated with SCRAM.\r\n");
    std::fs::write(file.path(), &msg).unwrap();
    let port = s.smtps.port().to_string();
    let (ok, out, err) = run(
        "python3",
        &[
            &script("scram.py"),
            "127.0.0.1",
            &port,
            ALICE,
            PASSWORD,
            BOB,
            file.path().to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert!(ok && out.trim() == "OK", "{out}\n{err}");
    let inbox = s.inbox(BOB).await;
    assert_eq!(strip_trace(&inbox[0]), &msg[..]);
    let (ok, out, _) = run(
        "python3",
        &[
            &script("scram.py"),
            "127.0.0.1",
            &port,
            ALICE,
            "not the password!",
            BOB,
            file.path().to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert!(!ok && out.contains("AUTHFAIL 535"), "{out}");
}
