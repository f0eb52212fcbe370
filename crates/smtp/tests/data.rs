//! DATA and BDAT: the body receiver owned by the session (un-stuffing, the smuggling defence, the
//! limits), the spool for large content and the memory budget, delivery to local accounts and the
//! outbound queue with its failure paths, submission's header checks; driven through
//! `Session::handle` with in-memory doubles, message bytes handed in as the loop reads them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::transcript;

use std::sync::atomic::Ordering;

use transcript::{Client, FixedVerdict, codes, mx, submission};
use wharf_smtp::ArrivalAction;
use wharf_smtp::{BareLfPolicy, Next};

async fn ready(c: &mut Client) {
    c.envelope("x@remote.test", &["alice@example.test"]).await;
}

#[tokio::test]
async fn data_is_unstuffed_traced_and_delivered() {
    let (mut c, _) = mx().connect().await;
    ready(&mut c).await;
    assert_eq!(
        c.cmd("DATA").await,
        "354 2.0.0 End data with <CR><LF>.<CR><LF>\r\n"
    );
    assert_eq!(c.next, Next::Data);
    let r = c.send(b"Subject: t\r\n\r\n..x\r\n.\r\nQUIT\r\n").await;
    assert_eq!(
        r, "250 2.0.0 Ok: queued as SID.1\r\n221 2.0.0 mx.example.test Bye\r\n",
        "the bytes after the end are the next command"
    );
    let inbox = c.world.inbox("alice@example.test");
    let raw = &inbox[0];
    assert!(raw.starts_with(
        b"Return-Path: <x@remote.test>\r\nReceived: from client.test ([192.0.2.7])\r\n"
    ));
    assert!(String::from_utf8_lossy(raw).contains("\tfor <alice@example.test>;\r\n"));
    assert!(raw.ends_with(b"\r\nSubject: t\r\n\r\n.x\r\n"));
}

#[tokio::test]
async fn byte_by_byte_reads_give_the_same_message() {
    let (mut c, _) = mx().connect().await;
    c.piece = 1;
    ready(&mut c).await;
    c.cmd("DATA").await;
    let r = c
        .send(b"Subject: t\r\n\r\nline\r\n..\r\n.\r\nNOOP\r\n")
        .await;
    assert_eq!(codes(&r), vec![250, 250]);
    assert!(c.world.inbox("alice@example.test")[0].ends_with(b"\r\n\r\nline\r\n.\r\n"));
}

#[tokio::test]
async fn smuggling_sequences_neither_end_data_nor_get_stored() {
    for seq in [
        &b"a\r\nb\n.\nMAIL FROM:<x@y>\r\n"[..],
        b"a\r\nb\n.\r\nMAIL FROM:<x@y>\r\n",
        b"a\r\nb\r.\rMAIL FROM:<x@y>\r\n",
    ] {
        let (mut c, _) = mx().connect().await;
        ready(&mut c).await;
        c.cmd("DATA").await;
        assert_eq!(c.send(seq).await, "", "still in DATA: {seq:?}");
        assert_eq!(c.next, Next::Data);
        assert_eq!(
            c.send(b".\r\n").await,
            "550 5.6.0 Message contains bare LF or bare CR; only CRLF line endings are accepted\r\n"
        );
        assert!(c.world.inbox("alice@example.test").is_empty());
    }
    let (mut c, _) = mx()
        .cfg(|c| c.bare_lf_policy = BareLfPolicy::Normalize)
        .connect()
        .await;
    ready(&mut c).await;
    c.cmd("DATA").await;
    assert_eq!(codes(&c.send(b"a\nb\r\n.\r\n").await), vec![250]);
    assert!(c.world.inbox("alice@example.test")[0].ends_with(b"\r\na\r\nb\r\n"));
}

#[tokio::test]
async fn size_and_line_limits() {
    let (mut c, _) = mx().cfg(|c| c.max_message_size = 100).connect().await;
    ready(&mut c).await;
    c.cmd("DATA").await;
    let big = format!("{}\r\n.\r\n", "x".repeat(150));
    assert_eq!(
        c.send(big.as_bytes()).await,
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
    let (mut c, _) = mx().connect().await;
    ready(&mut c).await;
    c.cmd("DATA").await;
    let long = format!("{}\r\n.\r\n", "x".repeat(999));
    assert_eq!(
        c.send(long.as_bytes()).await,
        "500 5.5.2 Message contains a line longer than the RFC 5322 limit\r\n"
    );
    assert!(c.world.inbox("alice@example.test").is_empty());
}

#[tokio::test]
async fn a_message_with_too_many_received_fields_is_refused_as_a_loop() {
    // Ours makes 3 with the two the message brings: the limit is 3, so it passes.
    let (mut c, _) = mx().cfg(|c| c.max_received_headers = 3).connect().await;
    ready(&mut c).await;
    c.cmd("DATA").await;
    let two = "Received: from a\r\nreceived: from b\r\n\tby c\r\nSubject: t\r\n\r\nReceived: in the body\r\n.\r\n";
    assert!(c.send(two.as_bytes()).await.starts_with("250 "));
    assert_eq!(c.world.inbox("alice@example.test").len(), 1);
    let (mut c, _) = mx().cfg(|c| c.max_received_headers = 3).connect().await;
    ready(&mut c).await;
    c.cmd("DATA").await;
    let three = format!("Received: from z\r\n{two}");
    assert_eq!(
        c.send(three.as_bytes()).await,
        "554 5.4.6 Too many hops: the message is looping\r\n"
    );
    assert!(c.world.inbox("alice@example.test").is_empty());
}

#[tokio::test]
async fn data_needs_a_transaction_with_recipients() {
    let (mut c, _) = mx().connect().await;
    c.cmd("EHLO c.test").await;
    assert_eq!(c.cmd("DATA").await, "503 5.5.1 Need MAIL command first\r\n");
    c.cmd("MAIL FROM:<x@remote.test>").await;
    c.cmd("RCPT TO:<nobody@example.test>").await;
    assert_eq!(c.cmd("DATA").await, "554 5.5.1 No valid recipients\r\n");
    assert_eq!(c.codes("DATA extra").await, vec![501]);
}

#[tokio::test]
async fn bdat_chunks_and_the_refused_chunk_is_read_then_answered() {
    let (mut c, _) = mx().connect().await;
    c.cmd("EHLO c.test").await;
    // Refused (no transaction): the 4 octets are still read, then the 503 comes.
    let r = c.send(b"BDAT 4\r\nA:b\n").await;
    assert_eq!(r, "503 5.5.1 Need MAIL command first\r\n");
    assert_eq!(c.next, Next::Command);
    c.cmd("MAIL FROM:<x@remote.test>").await;
    c.cmd("RCPT TO:<alice@example.test>").await;
    assert_eq!(c.cmd("BDAT 3").await, "", "the reply waits for the chunk");
    assert_eq!(c.next, Next::Chunk { remaining: 3 });
    assert_eq!(c.send(b"A:b").await, "250 2.0.0 3 octets received\r\n");
    assert_eq!(
        c.codes("DATA").await,
        vec![503],
        "DATA not allowed after BDAT"
    );
    let r = c.send(b"BDAT 2 LAST\r\n\r\nNOOP\r\n").await;
    assert_eq!(codes(&r), vec![250, 250]);
    assert!(r.starts_with("250 2.0.0 Ok: queued as SID.1\r\n"), "{r}");
    assert!(c.world.inbox("alice@example.test")[0].ends_with(b"A:b\r\n"));
    // An empty LAST chunk ends the message at once.
    c.cmd("MAIL FROM:<x@remote.test>").await;
    c.cmd("RCPT TO:<alice@example.test>").await;
    c.send(b"BDAT 5\r\nX:y\r").await;
    assert_eq!(c.next, Next::Chunk { remaining: 1 });
    assert_eq!(codes(&c.send(b"\nBDAT 0 LAST\r\n").await), vec![250, 250]);
    assert_eq!(c.world.inbox("alice@example.test").len(), 2);
}

#[tokio::test]
async fn bdat_over_the_size_limit_is_discarded_unread() {
    let (mut c, _) = mx().cfg(|c| c.max_message_size = 10).connect().await;
    ready(&mut c).await;
    let r = c.send(b"BDAT 20 LAST\r\n01234567890123456789").await;
    assert_eq!(
        r,
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
    assert_eq!(c.codes("BDAT 1 LAST").await, Vec::<u16>::new());
    assert_eq!(c.send(b"x").await, "503 5.5.1 Need MAIL command first\r\n");
}

#[tokio::test]
async fn bad_bdat_syntax_closes_and_the_error_limit_closes_after_the_chunk() {
    let (mut c, _) = mx().connect().await;
    c.cmd("EHLO c.test").await;
    assert_eq!(
        c.cmd("BDAT x").await,
        "501 5.5.4 Syntax: BDAT size [LAST]; closing connection\r\n"
    );
    assert_eq!(c.next, Next::Close);
    let (mut c, _) = mx().cfg(|c| c.max_errors = 2).connect().await;
    c.cmd("EHLO c.test").await;
    c.cmd("BOGUS").await;
    assert_eq!(c.cmd("BDAT 5").await, "");
    assert_eq!(c.next, Next::Chunk { remaining: 5 });
    assert_eq!(
        c.send(b"12345").await,
        "503 5.5.1 Need MAIL command first\r\n421 4.7.0 mx.example.test Too many errors, closing connection\r\n"
    );
    assert_eq!(c.next, Next::Close);
}

#[tokio::test]
async fn delivery_failure_withdraws_the_queued_part() {
    let (mut c, _) = mx().connect().await;
    c.envelope("x@remote.test", &["fwd@example.test"]).await;
    c.world.fail_delivery.store(true, Ordering::Relaxed);
    let r = c.send(b"DATA\r\nSubject: t\r\n\r\nhi\r\n.\r\n").await;
    assert!(
        r.ends_with("451 4.3.0 Temporary failure storing the message, try again later\r\n"),
        "{r}"
    );
    assert_eq!(*c.queue.withdrawn.lock().unwrap(), vec![100]);
    assert!(c.queue.released.lock().unwrap().is_empty());
}

#[tokio::test]
async fn queue_refusal_stores_nothing_locally() {
    let (mut c, _) = mx().connect().await;
    c.envelope("x@remote.test", &["fwd@example.test"]).await;
    c.queue.refuse.store(true, Ordering::Relaxed);
    let r = c.send(b"DATA\r\nSubject: t\r\n\r\nhi\r\n.\r\n").await;
    assert!(
        r.ends_with("451 4.3.0 Temporary failure queueing the message, try again later\r\n"),
        "{r}"
    );
    assert!(c.world.inbox("alice@example.test").is_empty());
}

#[tokio::test]
async fn over_quota_at_delivery() {
    let (mut c, _) = mx().connect().await;
    c.envelope("x@remote.test", &["tiny@example.test"]).await;
    // Three lines of 900 octets: over tiny's 2000-octet quota, each line within the limit.
    let line = "x".repeat(900);
    let big = format!("DATA\r\n{line}\r\n{line}\r\n{line}\r\n.\r\n");
    let r = c.send(big.as_bytes()).await;
    assert!(
        r.ends_with("552 5.2.2 Message exceeds the mailbox quota\r\n"),
        "{r}"
    );
}

#[tokio::test]
async fn submission_checks_from_and_adds_missing_headers() {
    let (mut c, _) = submission(true).connect().await;
    c.cmd("EHLO c.test").await;
    c.login("alice@example.test").await;
    c.cmd("MAIL FROM:<alice@example.test>").await;
    c.cmd("RCPT TO:<bob@example.test>").await;
    let r = c
        .send(b"DATA\r\nFrom: <bob@example.test>\r\n\r\nx\r\n.\r\n")
        .await;
    assert!(
        r.ends_with("553 5.7.1 From: header address not owned by the authenticated user\r\n"),
        "{r}"
    );
    c.cmd("MAIL FROM:<alice@example.test>").await;
    c.cmd("RCPT TO:<bob@example.test>").await;
    let r = c.send(b"DATA\r\nSubject: no from\r\n\r\nx\r\n.\r\n").await;
    assert!(r.ends_with("550 5.6.0 Message must have exactly one From: header\r\n"));
    c.cmd("MAIL FROM:<alice@example.test>").await;
    c.cmd("RCPT TO:<bob@example.test>").await;
    let r = c
        .send(b"DATA\r\nFrom: Alice <alice@example.test>\r\nSubject: s\r\n\r\nbody\r\n.\r\n")
        .await;
    assert!(r.ends_with("250 2.0.0 Ok: queued as SID.1\r\n"), "{r}");
    let msg = String::from_utf8(c.world.inbox("bob@example.test")[0].clone()).unwrap();
    assert!(msg.contains("(authenticated user alice@example.test)"));
    assert!(msg.contains("\r\nMessage-ID: <") && msg.contains("\r\nDate: "));
    let headers_end = msg.find("\r\n\r\nbody").unwrap();
    assert!(
        msg[..headers_end].contains("\r\nSubject: s\r\nMessage-ID: <"),
        "added at the end of the header"
    );
    assert!(msg.ends_with("\r\n\r\nbody\r\n"));
}

#[tokio::test]
async fn messages_per_session_limit() {
    let (mut c, _) = mx().cfg(|c| c.max_messages_per_session = 1).connect().await;
    ready(&mut c).await;
    c.send(b"DATA\r\nSubject: t\r\n\r\nhi\r\n.\r\n").await;
    assert_eq!(
        c.cmd("MAIL FROM:<x@remote.test>").await,
        "421 4.7.0 Too many messages in one session, reconnect\r\n"
    );
    assert_eq!(c.next, Next::Close);
}

/// Open descriptors of this process that point into `dir` (spool files are unnamed, so this is
/// the only way to see them).
fn open_files_in(dir: &std::path::Path) -> usize {
    let dir = dir.to_string_lossy().to_string();
    std::fs::read_dir("/proc/self/fd")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter(|p| p.to_string_lossy().starts_with(&dir))
                .count()
        })
        .unwrap_or(0)
}

fn message(lines: usize) -> Vec<u8> {
    let mut m = b"Subject: big\r\n\r\n".to_vec();
    for i in 0..lines {
        m.extend_from_slice(format!("line {i:06} {}\r\n", "x".repeat(60)).as_bytes());
    }
    m
}

#[tokio::test]
async fn large_content_spools_and_arrives_byte_exact() {
    let (mut c, _) = mx()
        .cfg(|c| {
            c.spool_threshold = 4096;
            c.memory_budget = 1 << 20;
        })
        .connect()
        .await;
    c.piece = 1000;
    ready(&mut c).await;
    c.cmd("DATA").await;
    let m = message(3000);
    assert_eq!(c.send(&m).await, "");
    assert_eq!(
        c.spool.reserved(),
        0,
        "spooling gave the in-memory allowance back"
    );
    assert_eq!(
        open_files_in(c.spool.dir()),
        1,
        "one spool file while receiving"
    );
    assert_eq!(codes(&c.send(b".\r\n").await), vec![250]);
    assert_eq!(open_files_in(c.spool.dir()), 0, "freed with the reply");
    let stored = &c.world.inbox("alice@example.test")[0];
    assert!(stored.ends_with(&m));
    // The same over BDAT, in chunks.
    c.cmd("MAIL FROM:<x@remote.test>").await;
    c.cmd("RCPT TO:<bob@example.test>").await;
    let (a, b) = m.split_at(100_000);
    c.send(format!("BDAT {}\r\n", a.len()).as_bytes()).await;
    assert_eq!(codes(&c.send(a).await), vec![250]);
    c.send(format!("BDAT {} LAST\r\n", b.len()).as_bytes())
        .await;
    assert_eq!(codes(&c.send(b).await), vec![250]);
    assert!(c.world.inbox("bob@example.test")[0].ends_with(&m));
}

#[tokio::test]
async fn spool_is_freed_on_rset_error_and_disconnect() {
    let opts = || {
        mx().cfg(|c| {
            c.spool_threshold = 1024;
            c.max_message_size = 100_000;
        })
    };
    // RSET after a chunk.
    let (mut c, _) = opts().connect().await;
    ready(&mut c).await;
    let m = message(1000);
    c.send(format!("BDAT {}\r\n", m.len()).as_bytes()).await;
    c.send(&m).await;
    assert_eq!(open_files_in(c.spool.dir()), 1);
    c.cmd("RSET").await;
    assert_eq!(open_files_in(c.spool.dir()), 0);
    // Too big: the file goes as soon as the message is doomed, before its end.
    ready(&mut c).await;
    c.cmd("DATA").await;
    c.send(&m).await;
    assert_eq!(open_files_in(c.spool.dir()), 1);
    c.send(&m).await;
    assert_eq!(open_files_in(c.spool.dir()), 0);
    assert_eq!(codes(&c.send(b".\r\n").await), vec![552]);
    // Disconnect in the middle of DATA.
    ready(&mut c).await;
    c.cmd("DATA").await;
    c.send(&m).await;
    assert_eq!(open_files_in(c.spool.dir()), 1);
    c.input(wharf_smtp::Input::Closed).await;
    assert_eq!(open_files_in(c.spool.dir()), 0);
    assert_eq!(c.next, Next::Close);
}

#[tokio::test]
async fn exhausted_budget_spools_from_the_first_octet() {
    let (mut a, _) = mx()
        .cfg(|c| {
            c.spool_threshold = 10_000;
            c.memory_budget = 10_000;
        })
        .connect()
        .await;
    ready(&mut a).await;
    a.cmd("DATA").await;
    a.send(b"Subject: small\r\n").await;
    assert_eq!(
        a.spool.reserved(),
        10_000,
        "the first message holds the whole budget"
    );
    // A second session on the same spool gets no allowance: its first octets go to disk.
    let spool = a.spool.clone();
    let mut b = mx().connect().await.0;
    b.session = wharf_smtp::Session::new(
        std::sync::Arc::new(wharf_smtp::SmtpConfig::default()),
        "mx.example.test".into(),
        wharf_smtp::SmtpRole::Mx,
        wharf_smtp::Backend {
            auth: b.world.clone(),
            recipients: b.world.clone(),
            delivery: b.world.clone(),
            handoff: None,
            arrival: None,
        },
        spool.clone(),
        "SID2".into(),
        wharf_smtp::ConnInfo {
            peer: "192.0.2.8:1".parse().unwrap(),
            tls: None,
            starttls_available: false,
        },
    );
    b.next = Next::Command;
    b.envelope("y@remote.test", &["bob@example.test"]).await;
    b.cmd("DATA").await;
    let before = open_files_in(spool.dir());
    b.send(b"Subject: also small\r\n").await;
    assert_eq!(open_files_in(spool.dir()), before + 1);
    assert_eq!(codes(&b.send(b"\r\nhello\r\n.\r\n").await), vec![250]);
    assert!(
        b.world.inbox("bob@example.test")[0].ends_with(b"Subject: also small\r\n\r\nhello\r\n")
    );
    assert_eq!(codes(&a.send(b"\r\nhi\r\n.\r\n").await), vec![250]);
    assert_eq!(spool.reserved(), 0);
}

/// Port 25 asks the trust checks once the content is complete: it shows them the content as
/// sent (without our trace header) and the envelope, stores their header on top (after
/// Return-Path), leaves out what they call forged, and follows their action.
#[tokio::test]
async fn inbound_checks_see_the_content_and_their_verdict_is_stored() {
    let mut check = FixedVerdict::new(ArrivalAction::Deliver);
    std::sync::Arc::get_mut(&mut check)
        .unwrap()
        .remove_first_field = true;
    let (mut c, _) = mx().arrival(check.clone()).connect().await;
    ready(&mut c).await;
    c.cmd("DATA").await;
    let r = c
        .send(b"Authentication-Results: mx.example.test; dmarc=pass\r\nSubject: t\r\n\r\nbody\r\n.\r\n")
        .await;
    assert_eq!(codes(&r), vec![250]);
    let seen = check.seen.lock().unwrap();
    let (ip, helo, from, rcpts, content) = &seen[0];
    assert_eq!(ip.to_string(), "192.0.2.7");
    assert_eq!(helo, "client.test");
    assert_eq!(from, "x@remote.test");
    assert_eq!(rcpts, &vec!["alice@example.test".to_string()]);
    assert!(content.starts_with(b"Authentication-Results: mx.example.test; dmarc=pass\r\n"));
    let stored = &c.world.inbox("alice@example.test")[0];
    let text = String::from_utf8_lossy(stored);
    assert!(
        text.starts_with("Return-Path: <x@remote.test>\r\nAuthentication-Results: mx.example.test; spf=pass\r\nReceived: from client.test"),
        "{text}"
    );
    assert!(
        !text.contains("dmarc=pass"),
        "the forged verdict is gone: {text}"
    );
    assert!(text.ends_with("\r\nSubject: t\r\n\r\nbody\r\n"), "{text}");
    assert!(c.world.junked.lock().unwrap().is_empty());
}

#[tokio::test]
async fn inbound_verdicts_reject_defer_or_file_as_junk() {
    for (action, code) in [
        (
            ArrivalAction::Reject("DMARC policy of paypal.test refuses this message".into()),
            550,
        ),
        (ArrivalAction::TempFail("DNS lookups failed".into()), 451),
        (ArrivalAction::Junk, 250),
    ] {
        let check = FixedVerdict::new(action.clone());
        let (mut c, _) = mx().arrival(check).connect().await;
        ready(&mut c).await;
        c.cmd("DATA").await;
        let r = c.send(b"Subject: t\r\n\r\nbody\r\n.\r\n").await;
        assert_eq!(codes(&r), vec![code], "{action:?}: {r}");
        let stored = c.world.inbox("alice@example.test");
        match action {
            ArrivalAction::Reject(why) => {
                assert!(r.starts_with("550 5.7.1 ") && r.contains(&why), "{r}");
                assert!(stored.is_empty());
            }
            ArrivalAction::TempFail(_) => {
                assert!(r.starts_with("451 4.7.0 "), "{r}");
                assert!(stored.is_empty());
            }
            _ => {
                assert_eq!(stored.len(), 1);
                assert_eq!(*c.world.junked.lock().unwrap(), vec![1]);
            }
        }
        // The session goes on.
        assert_eq!(c.codes("NOOP").await, vec![250]);
    }
}

#[tokio::test]
async fn submission_is_not_put_through_the_inbound_checks() {
    let check = FixedVerdict::new(ArrivalAction::Reject("no".into()));
    let (mut c, _) = submission(true).arrival(check.clone()).connect().await;
    c.cmd("EHLO c.test").await;
    c.login("alice@example.test").await;
    c.cmd("MAIL FROM:<alice@example.test>").await;
    c.cmd("RCPT TO:<bob@example.test>").await;
    c.cmd("DATA").await;
    let r = c
        .send(b"From: alice@example.test\r\nDate: Sat, 05 Dec 2026 10:00:00 +0000\r\nMessage-ID: <a@example.test>\r\nSubject: t\r\n\r\nbody\r\n.\r\n")
        .await;
    assert_eq!(codes(&r), vec![250], "{r}");
    assert!(check.seen.lock().unwrap().is_empty());
}

/// A port-25 message to an alias that forwards outside: the checks are told, and the queued
/// copy (only) starts with what they return for it (our ARC set).
#[tokio::test]
async fn forwarded_copies_carry_the_checks_seal() {
    let check = FixedVerdict::new(ArrivalAction::Deliver);
    let (mut c, _) = mx().arrival(check.clone()).connect().await;
    c.envelope("x@remote.test", &["fwd@example.test"]).await;
    c.cmd("DATA").await;
    let r = c.send(b"Subject: t\r\n\r\nbody\r\n.\r\n").await;
    assert_eq!(codes(&r), vec![250], "{r}");
    assert!(check.seen.lock().unwrap().len() == 1);
    let entries = c.queue.entries.lock().unwrap();
    let queued = String::from_utf8_lossy(&entries[0].1.raw).to_string();
    assert!(
        queued.starts_with(
            "ARC-Seal: i=1; test\r\nAuthentication-Results: mx.example.test; spf=pass\r\nReceived: "
        ),
        "{queued}"
    );
    let stored = &c.world.inbox("alice@example.test")[0];
    assert!(!String::from_utf8_lossy(stored).contains("ARC-Seal"));
}
