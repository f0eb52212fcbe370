//! The mail transaction on the wire: PIPELINING, BDAT/CHUNKING, multiple recipients and aliases,
//! relay refusals on port 25, quota replies, RSET and sequencing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::time::Duration;

use support::*;
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn pipelined_group_gets_every_reply_in_order_in_one_flush() {
    let s = start().await;
    let mut c = Raw::open(s.mx).await;
    c.expect("EHLO client.test", 250).await;
    c.send(
        b"MAIL FROM:<p@remote.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\n",
    )
    .await;
    // All five replies come back together: nothing is flushed while the group is being read.
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), c.stream.read(&mut chunk))
        .await
        .unwrap()
        .unwrap();
    got.extend_from_slice(&chunk[..n]);
    let text = String::from_utf8_lossy(&got).to_string();
    let codes: Vec<&str> = text.lines().map(|l| &l[..3]).collect();
    assert_eq!(codes, ["250", "250", "250", "250", "354"], "{text}");
    let body = message("p@remote.test", ALICE, "pipe1", "pipelined\r\n");
    c.send(&body).await;
    c.send(b".\r\n").await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 250, "{text}");
    for who in [ALICE, BOB, CAROL] {
        let inbox = s.inbox(who).await;
        assert_eq!(inbox.len(), 1, "{who}");
        assert_eq!(strip_trace(&inbox[0]), &body[..]);
        // Several recipients: none is named in the Received header.
        assert!(!trace_headers(&inbox[0]).contains("for <"));
    }
}

#[tokio::test]
async fn pipelined_group_with_a_refused_recipient() {
    let s = start().await;
    let mut c = Raw::open(s.mx).await;
    c.send(b"EHLO client.test\r\nMAIL FROM:<p@remote.test>\r\nRCPT TO:<nobody@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
        .await;
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(c.reply().await.0);
    }
    assert_eq!(codes, [250, 250, 550, 250, 354]);
    c.send(b"Subject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n").await;
    assert_eq!(c.reply().await.0, 250);
    assert_eq!(c.reply().await.0, 221);
    assert_eq!(s.inbox(BOB).await.len(), 1);
}

#[tokio::test]
async fn bdat_chunks_and_bdat_0_last() {
    let s = start().await;
    let mut c = Raw::open(s.mx).await;
    let ehlo = c.expect("EHLO client.test", 250).await;
    assert!(ehlo.contains("CHUNKING") && ehlo.contains("PIPELINING") && ehlo.contains("8BITMIME"));
    c.expect("MAIL FROM:<b@remote.test> BODY=8BITMIME", 250)
        .await;
    c.expect("RCPT TO:<alice@example.test>", 250).await;
    let parts: [&[u8]; 3] = [
        b"Subject: chunks\r\n\r\nfirst ",
        b"part\r\n.\r\nnot the end, no stuffing in BDAT\r\n",
        b"..two dots stay\r\n",
    ];
    for p in parts {
        c.send(format!("BDAT {}\r\n", p.len()).as_bytes()).await;
        c.send(p).await;
        let (code, text) = c.reply().await;
        assert_eq!(code, 250, "{text}");
    }
    let (code, text) = c.cmd("BDAT 0 LAST").await;
    assert_eq!(code, 250, "{text}");
    let inbox = s.inbox(ALICE).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(strip_trace(&inbox[0]), parts.concat().as_slice());
    // A second transaction on the same session, BDAT LAST in one pipelined write.
    let msg = b"Subject: one shot\r\n\r\nbody\r\n";
    let mut w = b"MAIL FROM:<b@remote.test>\r\nRCPT TO:<alice@example.test>\r\n".to_vec();
    w.extend_from_slice(format!("BDAT {} LAST\r\n", msg.len()).as_bytes());
    w.extend_from_slice(msg);
    c.send(&w).await;
    assert_eq!(c.reply().await.0, 250);
    assert_eq!(c.reply().await.0, 250);
    assert_eq!(c.reply().await.0, 250);
    let inbox = s.inbox(ALICE).await;
    assert_eq!(inbox.len(), 2);
    assert_eq!(strip_trace(&inbox[1]), msg);
}

#[tokio::test]
async fn bdat_without_transaction_is_refused_and_its_bytes_discarded() {
    let s = start().await;
    let mut c = Raw::open(s.mx).await;
    c.expect("EHLO client.test", 250).await;
    // The chunk contains something that looks like a command; it must not be executed.
    c.send(b"BDAT 6\r\nQUIT\r\n").await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 503, "{text}");
    c.expect("NOOP", 250).await;
    c.expect("MAIL FROM:<b@remote.test>", 250).await;
    c.expect("DATA", 554).await;
}

#[tokio::test]
async fn relay_attempts_on_port_25_are_refused() {
    let s = start().await;
    let mut c = Raw::open(s.mx).await;
    c.expect("EHLO client.test", 250).await;
    c.expect("MAIL FROM:<spammer@remote.test>", 250).await;
    for rcpt in [
        "victim@remote.test",
        "@example.test:victim@remote.test",
        "postmaster@[127.0.0.1]",
        "x@example.test.remote.test",
    ] {
        let (code, text) = c.cmd(&format!("RCPT TO:<{rcpt}>")).await;
        assert_eq!(code, 550, "{rcpt}: {text}");
        assert!(text.contains("5.7.1"), "{text}");
    }
    let (code, text) = c.cmd("RCPT TO:<victim%remote.test@example.test>").await;
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("5.1.1"), "{text}");
    c.expect("DATA", 554).await;
    // AUTH is not offered and not accepted on port 25.
    let mut c = Raw::open(s.mx).await;
    let ehlo = c.expect("EHLO client.test", 250).await;
    assert!(!ehlo.contains("AUTH"), "{ehlo}");
    c.expect(
        "AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABjb3JyZWN0IGhvcnNlIGJhdHRlcnkgc3RhcGxl",
        502,
    )
    .await;
}

#[tokio::test]
async fn unauthenticated_submission_cannot_send() {
    let s = start().await;
    let mut c = Raw::open(s.submission).await;
    c.expect("EHLO client.test", 250).await;
    let text = c.expect("MAIL FROM:<alice@example.test>", 530).await;
    assert!(text.contains("5.7.0"));
}

#[tokio::test]
async fn aliases_lists_and_plus_addressing_resolve_locally() {
    let s = start().await;
    let mut c = Raw::open(s.mx).await;
    c.expect("EHLO client.test", 250).await;
    c.expect("MAIL FROM:<a@remote.test>", 250).await;
    c.expect("RCPT TO:<sales@example.test>", 250).await;
    c.expect("RCPT TO:<team@example.test>", 250).await;
    c.expect("RCPT TO:<alice+tag@example.test>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"Subject: alias\r\n\r\nx\r\n.\r\n").await;
    assert_eq!(c.reply().await.0, 250);
    // One copy per account even though alice was named three times.
    assert_eq!(s.inbox(ALICE).await.len(), 1);
    assert_eq!(s.inbox(BOB).await.len(), 1);
}

#[tokio::test]
async fn external_alias_target_is_refused_temporarily() {
    let s = start().await;
    let mut c = Raw::open(s.mx).await;
    c.expect("EHLO client.test", 250).await;
    c.expect("MAIL FROM:<a@remote.test>", 250).await;
    let text = c.expect("RCPT TO:<fwd@example.test>", 451).await;
    assert!(text.contains("4.3.0"), "{text}");
}

#[tokio::test]
async fn quota_replies() {
    let s = start().await;
    let mut c = Raw::open(s.mx).await;
    c.expect("EHLO client.test", 250).await;
    c.expect("MAIL FROM:<a@remote.test>", 250).await;
    // Already over quota at RCPT time.
    let text = c.expect("RCPT TO:<full@example.test>", 452).await;
    assert!(text.contains("4.2.2"), "{text}");
    // Message alone larger than tiny's whole quota: 552 5.2.2 after the data.
    c.expect("RCPT TO:<tiny@example.test>", 250).await;
    c.expect("DATA", 354).await;
    let big = format!(
        "Subject: big\r\n\r\n{l}\r\n{l}\r\n{l}\r\n{l}\r\n.\r\n",
        l = "y".repeat(900)
    );
    c.send(big.as_bytes()).await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 552, "{text}");
    assert!(text.contains("5.2.2"), "{text}");
    assert!(s.inbox(TINY).await.is_empty());
    // With another recipient that can take it, the message is accepted and stored for that one.
    c.expect("MAIL FROM:<a@remote.test>", 250).await;
    c.expect("RCPT TO:<tiny@example.test>", 250).await;
    c.expect("RCPT TO:<bob@example.test>", 250).await;
    c.expect("DATA", 354).await;
    c.send(big.as_bytes()).await;
    assert_eq!(c.reply().await.0, 250);
    assert!(s.inbox(TINY).await.is_empty());
    assert_eq!(s.inbox(BOB).await.len(), 1);
    // A declared SIZE larger than the whole quota is refused at RCPT time already.
    c.expect("MAIL FROM:<a@remote.test> SIZE=5000", 250).await;
    let text = c.expect("RCPT TO:<tiny@example.test>", 552).await;
    assert!(text.contains("5.2.2"), "{text}");
    c.expect("RCPT TO:<bob@example.test>", 250).await;
}

#[tokio::test]
async fn sequencing_errors_get_503() {
    let s = start().await;
    let mut c = Raw::open(s.mx).await;
    c.expect("MAIL FROM:<a@remote.test>", 503).await;
    c.expect("EHLO client.test", 250).await;
    c.expect("RCPT TO:<alice@example.test>", 503).await;
    c.expect("DATA", 503).await;
    c.expect("MAIL FROM:<a@remote.test>", 250).await;
    c.expect("MAIL FROM:<a@remote.test>", 503).await;
    c.expect("DATA", 554).await;
    c.expect("RSET", 250).await;
    c.expect("RCPT TO:<alice@example.test>", 503).await;
    c.expect("VRFY alice@example.test", 252).await;
    c.expect("HELP", 214).await;
    c.expect("NOOP", 250).await;
    c.expect("QUIT", 221).await;
    assert!(c.closed().await);
}

#[tokio::test]
async fn null_sender_bounce_is_accepted_on_mx() {
    let s = start().await;
    let mut c = Raw::open(s.mx).await;
    c.expect("HELO client.test", 250).await;
    c.expect("MAIL FROM:<>", 250).await;
    c.expect("RCPT TO:<alice@example.test>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"Subject: bounce\r\n\r\nx\r\n.\r\n").await;
    assert_eq!(c.reply().await.0, 250);
    let inbox = s.inbox(ALICE).await;
    assert!(inbox[0].starts_with(b"Return-Path: <>\r\nReceived: from client.test ([127.0.0.1])\r\n\tby mx.example.test (Wharf) with SMTP id"));
}

#[tokio::test]
async fn graceful_shutdown_says_goodbye_to_idle_sessions() {
    let s = start().await;
    let mut c = Raw::open(s.mx).await;
    c.expect("EHLO client.test", 250).await;
    let stop = tokio::spawn(s.shutdown());
    let (code, text) = c.reply().await;
    assert_eq!(code, 421, "{text}");
    assert!(text.contains("4.3.2"));
    assert!(c.closed().await);
    stop.await.unwrap();
}
