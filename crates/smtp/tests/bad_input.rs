//! Every bad input of issue 3 item 5, one test each: the precise reply, and afterwards the session
//! either keeps working or is closed cleanly; the mailbox holds exactly what it should.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::time::Duration;

use support::*;
use wharf_smtp::{BareLfPolicy, SmtpConfig};

async fn ready(s: &TestServer) -> Raw {
    let mut c = Raw::open(s.mx).await;
    c.expect("EHLO client.test", 250).await;
    c
}

#[tokio::test]
async fn command_line_over_512_octets() {
    let s = start().await;
    let mut c = ready(&s).await;
    let long = format!("MAIL FROM:<{}@remote.test>", "a".repeat(600));
    let text = c.expect(&long, 500).await;
    assert!(text.contains("5.5.2"), "{text}");
    c.expect("NOOP", 250).await;
    // A line of exactly 512 octets (CRLF included) is still a command.
    let exact = format!("NOOP {}", "x".repeat(512 - 7));
    assert_eq!(exact.len() + 2, 512);
    c.expect(&exact, 250).await;
}

#[tokio::test]
async fn text_line_over_1000_octets() {
    let s = start().await;
    let mut c = ready(&s).await;
    c.expect("MAIL FROM:<a@remote.test>", 250).await;
    c.expect("RCPT TO:<alice@example.test>", 250).await;
    c.expect("DATA", 354).await;
    c.send(format!("Subject: long\r\n\r\n{}\r\n.\r\n", "z".repeat(1200)).as_bytes())
        .await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 500, "{text}");
    assert!(text.contains("5.5.2"));
    assert!(s.inbox(ALICE).await.is_empty());
    c.expect("NOOP", 250).await;
}

#[tokio::test]
async fn message_over_size_is_discarded_without_buffering() {
    let s = start_with(SmtpConfig {
        max_message_size: 10_000,
        ..test_config()
    })
    .await;
    let mut c = ready(&s).await;
    assert!(
        c.expect("EHLO client.test", 250)
            .await
            .contains("SIZE 10000")
    );
    let text = c.expect("MAIL FROM:<a@remote.test> SIZE=20000", 552).await;
    assert!(text.contains("5.3.4"));
    c.expect("MAIL FROM:<a@remote.test>", 250).await;
    c.expect("RCPT TO:<alice@example.test>", 250).await;
    c.expect("DATA", 354).await;
    // 4 MiB for a 10 kB limit: read and dropped as it arrives.
    let line = format!("{}\r\n", "q".repeat(78));
    c.send(b"Subject: huge\r\n\r\n").await;
    for _ in 0..(4 << 20) / line.len() {
        c.send(line.as_bytes()).await;
    }
    c.send(b".\r\n").await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 552, "{text}");
    assert!(text.contains("5.3.4"));
    // The same for BDAT: the chunk is refused and its bytes skipped.
    c.expect("MAIL FROM:<a@remote.test>", 250).await;
    c.expect("RCPT TO:<alice@example.test>", 250).await;
    c.send(b"BDAT 20000 LAST\r\n").await;
    c.send(&vec![b'x'; 20000]).await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 552, "{text}");
    c.expect("NOOP", 250).await;
    assert!(s.inbox(ALICE).await.is_empty());
    // A message under the limit still goes through on the same session.
    c.expect("MAIL FROM:<a@remote.test>", 250).await;
    c.expect("RCPT TO:<alice@example.test>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"Subject: small\r\n\r\nok\r\n.\r\n").await;
    assert_eq!(c.reply().await.0, 250);
    assert_eq!(s.inbox(ALICE).await.len(), 1);
}

#[tokio::test]
async fn over_100_recipients() {
    let s = start().await;
    let mut c = ready(&s).await;
    c.expect("MAIL FROM:<a@remote.test>", 250).await;
    let mut group = String::new();
    for i in 0..101 {
        group.push_str(&format!("RCPT TO:<alice+{i}@example.test>\r\n"));
    }
    c.send(group.as_bytes()).await;
    for _ in 0..100 {
        assert_eq!(c.reply().await.0, 250);
    }
    let (code, text) = c.reply().await;
    assert_eq!(code, 452, "{text}");
    assert!(text.contains("4.5.3"));
    c.expect("DATA", 354).await;
    c.send(b"Subject: many\r\n\r\nx\r\n.\r\n").await;
    assert_eq!(c.reply().await.0, 250);
    assert_eq!(s.inbox(ALICE).await.len(), 1);
}

#[tokio::test]
async fn bad_address_syntax() {
    let s = start().await;
    let mut c = ready(&s).await;
    for bad in [
        "MAIL FROM:<a@@remote.test>",
        "MAIL FROM:<a@remote..test>",
        "MAIL FROM:a@remote.test",
        "MAIL FROM:<.a@remote.test>",
    ] {
        let text = c.expect(bad, 501).await;
        assert!(text.contains("5.1.3"), "{bad}: {text}");
    }
    c.expect("MAIL FROM:<a@remote.test>", 250).await;
    let text = c.expect("RCPT TO:<alice@exa mple.test>", 501).await;
    assert!(text.contains("5.1.3"), "{text}");
    c.expect("RCPT TO:<alice@example.test>", 250).await;
}

#[tokio::test]
async fn commands_out_of_sequence() {
    let s = start().await;
    let mut c = Raw::open(s.mx).await;
    for cmd in [
        "MAIL FROM:<a@remote.test>",
        "RCPT TO:<alice@example.test>",
        "DATA",
    ] {
        let text = c.expect(cmd, 503).await;
        assert!(text.contains("5.5.1"), "{text}");
    }
    c.expect("EHLO client.test", 250).await;
    c.expect("MAIL FROM:<a@remote.test>", 250).await;
}

#[tokio::test]
async fn too_many_errors_closes_with_421() {
    let s = start().await;
    let mut c = ready(&s).await;
    for _ in 0..9 {
        c.expect("XYZZY", 500).await;
    }
    c.send(b"XYZZY\r\n").await;
    assert_eq!(c.reply().await.0, 500);
    let (code, text) = c.reply().await;
    assert_eq!(code, 421, "{text}");
    assert!(text.contains("4.7.0"));
    assert!(c.closed().await);
}

#[tokio::test]
async fn early_talker_gets_554_and_is_dropped() {
    let s = start_with(SmtpConfig {
        greeting_delay_ms: 700,
        ..test_config()
    })
    .await;
    let mut c = Raw::connect(s.mx).await;
    c.send(b"EHLO impatient.test\r\n").await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 554, "{text}");
    assert!(c.closed().await);
    // A client that waits is served normally.
    let mut c = Raw::connect(s.mx).await;
    assert_eq!(c.reply().await.0, 220);
    c.expect("EHLO patient.test", 250).await;
    // The delay applies to port 25 only.
    let started = std::time::Instant::now();
    let mut c = Raw::connect(s.submission).await;
    assert_eq!(c.reply().await.0, 220);
    assert!(started.elapsed() < Duration::from_millis(600));
}

#[tokio::test]
async fn idle_timeout_gets_421() {
    let s = start_with(SmtpConfig {
        idle_timeout_secs: 1,
        ..test_config()
    })
    .await;
    let mut c = ready(&s).await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 421, "{text}");
    assert!(text.contains("4.4.2"));
    assert!(c.closed().await);
    // Also in the middle of DATA.
    let mut c = ready(&s).await;
    c.expect("MAIL FROM:<a@remote.test>", 250).await;
    c.expect("RCPT TO:<alice@example.test>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"Subject: stalled\r\n").await;
    assert_eq!(c.reply().await.0, 421);
    assert!(c.closed().await);
    assert!(s.inbox(ALICE).await.is_empty());
}

#[tokio::test]
async fn non_text_commands() {
    let s = start().await;
    let mut c = ready(&s).await;
    c.send(b"NOOP\x00\r\n").await;
    assert_eq!(c.reply().await.0, 500);
    c.send(b"EHLO \xff\xfe\r\n").await;
    assert_eq!(c.reply().await.0, 500);
    c.expect("NOOP", 250).await;
}

#[tokio::test]
async fn bdat_with_unparseable_size_closes() {
    let s = start().await;
    let mut c = ready(&s).await;
    c.expect("MAIL FROM:<a@remote.test>", 250).await;
    c.expect("RCPT TO:<alice@example.test>", 250).await;
    c.expect("BDAT lots", 501).await;
    assert!(c.closed().await);
}

/// The three smuggling sequences: each tries to end the first message early and start a second one
/// (to bob) inside the same DATA.
const SMUGGLING: [(&str, &[u8]); 3] = [
    ("LF.LF", b"\n.\n"),
    ("LF.CRLF", b"\n.\r\n"),
    ("CR.CR", b"\r.\r"),
];

fn smuggling_payload(seq: &[u8]) -> Vec<u8> {
    let mut p = b"Subject: first\r\n\r\nfirst message".to_vec();
    p.extend_from_slice(seq);
    p.extend_from_slice(b"MAIL FROM:<evil@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled message\r\n.\r\n");
    p
}

async fn smuggle(s: &TestServer, seq: &[u8]) -> Vec<(u16, String)> {
    let mut c = Raw::open(s.mx).await;
    let mut w = b"EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n".to_vec();
    w.extend_from_slice(&smuggling_payload(seq));
    w.extend_from_slice(b"QUIT\r\n");
    c.send(&w).await;
    let mut replies = Vec::new();
    while let Some(r) = c.try_reply().await {
        replies.push(r);
    }
    replies
}

#[tokio::test]
async fn smuggling_sequences_are_rejected_as_one_message() {
    let s = start().await;
    for (name, seq) in SMUGGLING {
        let replies = smuggle(&s, seq).await;
        let codes: Vec<u16> = replies.iter().map(|r| r.0).collect();
        // EHLO, MAIL, RCPT, DATA, the one end-of-data reply, QUIT: nothing for the smuggled commands.
        assert_eq!(codes, [250, 250, 250, 354, 550, 221], "{name}: {replies:?}");
        assert!(replies[4].1.contains("5.6.0"), "{name}");
    }
    assert!(s.inbox(ALICE).await.is_empty());
    assert!(s.inbox(BOB).await.is_empty());
}

#[tokio::test]
async fn smuggling_sequences_under_normalize_stay_inside_one_message() {
    let s = start_with(SmtpConfig {
        bare_lf_policy: BareLfPolicy::Normalize,
        ..test_config()
    })
    .await;
    for (name, seq) in SMUGGLING {
        let replies = smuggle(&s, seq).await;
        let codes: Vec<u16> = replies.iter().map(|r| r.0).collect();
        assert_eq!(codes, [250, 250, 250, 354, 250, 221], "{name}: {replies:?}");
    }
    let inbox = s.inbox(ALICE).await;
    assert_eq!(inbox.len(), 3);
    for raw in &inbox {
        let body = strip_trace(raw);
        // One message, with the would-be second message as its content and CRLF everywhere.
        assert!(
            body.starts_with(b"Subject: first\r\n\r\nfirst message\r\n"),
            "{}",
            String::from_utf8_lossy(body)
        );
        assert!(body.ends_with(b"smuggled message\r\n"));
        assert!(!body.windows(2).any(|w| (w[1] == b'\n') != (w[0] == b'\r')));
    }
    assert!(s.inbox(BOB).await.is_empty());
}

#[tokio::test]
async fn bare_lf_and_bare_cr_in_ordinary_text() {
    let s = start().await;
    let mut c = ready(&s).await;
    for body in [
        &b"Subject: lf\r\n\r\nline one\nline two\r\n.\r\n"[..],
        b"Subject: cr\r\n\r\nline one\rline two\r\n.\r\n",
    ] {
        c.expect("MAIL FROM:<a@remote.test>", 250).await;
        c.expect("RCPT TO:<alice@example.test>", 250).await;
        c.expect("DATA", 354).await;
        c.send(body).await;
        let (code, text) = c.reply().await;
        assert_eq!(code, 550, "{text}");
        assert!(text.contains("5.6.0"));
    }
    assert!(s.inbox(ALICE).await.is_empty());
}

#[tokio::test]
async fn per_ip_concurrency_and_rate_limits() {
    let s = start_with(SmtpConfig {
        max_connections_per_ip: 2,
        max_connection_rate_per_ip: 0,
        ..test_config()
    })
    .await;
    let a = Raw::open(s.mx).await;
    let _b = Raw::open(s.mx).await;
    let mut c = Raw::connect(s.mx).await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 421, "{text}");
    assert!(text.contains("4.7.0"));
    assert!(c.closed().await);
    drop(a);
    // The slot comes back once the server has seen the first client go.
    let mut admitted = None;
    for _ in 0..100 {
        let mut d = Raw::connect(s.mx).await;
        if d.reply().await.0 == 220 {
            admitted = Some(d);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    admitted
        .expect("slot never released")
        .expect("NOOP", 250)
        .await;

    let s = start_with(SmtpConfig {
        max_connections_per_ip: 0,
        max_connection_rate_per_ip: 3,
        ..test_config()
    })
    .await;
    for _ in 0..3 {
        let mut c = Raw::open(s.mx).await;
        c.expect("QUIT", 221).await;
    }
    let mut c = Raw::connect(s.mx).await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 421, "{text}");
}

#[tokio::test]
async fn message_count_per_session_is_capped() {
    let s = start_with(SmtpConfig {
        max_messages_per_session: 2,
        ..test_config()
    })
    .await;
    let mut c = ready(&s).await;
    for _ in 0..2 {
        c.expect("MAIL FROM:<a@remote.test>", 250).await;
        c.expect("RCPT TO:<alice@example.test>", 250).await;
        c.expect("DATA", 354).await;
        c.send(b"Subject: n\r\n\r\nx\r\n.\r\n").await;
        assert_eq!(c.reply().await.0, 250);
    }
    let text = c.expect("MAIL FROM:<a@remote.test>", 421).await;
    assert!(text.contains("4.7.0"));
    assert!(c.closed().await);
    assert_eq!(s.inbox(ALICE).await.len(), 2);
}
