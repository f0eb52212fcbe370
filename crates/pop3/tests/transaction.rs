//! Transcripts of the TRANSACTION state: STAT, LIST, UIDL, RETR, TOP, DELE, RSET, NOOP, with
//! every -ERR path, sizes that match what RETR sends, and messages expunged behind our back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use wharf_pop3::transfer::Transfer;

async fn alice(mem: &Mem) -> Transcript {
    let mut t = Transcript::new(mem);
    t.login("alice@example.org").await;
    t
}

/// Body of a RETR answer: between the status line and the terminator, un-dot-stuffed.
fn retr_body(answer: &[u8]) -> (String, Vec<u8>) {
    let nl = answer.windows(2).position(|w| w == b"\r\n").unwrap();
    let status = String::from_utf8(answer[..nl].to_vec()).unwrap();
    let body = &answer[nl + 2..answer.len() - 3];
    assert!(answer.ends_with(b"\r\n.\r\n") || answer.ends_with(b"\n.\r\n"));
    let mut out = Vec::new();
    for line in body.split_inclusive(|&b| b == b'\n') {
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    (status, out)
}

#[tokio::test]
async fn stat_list_uidl() {
    let (mem, _) = sample();
    let mut t = alice(&mem).await;
    assert_eq!(t.send("STAT").await, "+OK 3 105\r\n");
    assert_eq!(
        t.send("LIST").await,
        "+OK 3 messages (105 octets)\r\n1 26\r\n2 43\r\n3 36\r\n.\r\n"
    );
    assert_eq!(t.send("LIST 2").await, "+OK 2 43\r\n");
    assert_eq!(t.send("LIST 0").await, "-ERR no such message\r\n");
    assert_eq!(t.send("LIST 4").await, "-ERR no such message\r\n");
    assert_eq!(t.send("LIST x").await, "-ERR invalid message number\r\n");
    assert_eq!(
        t.send("LIST 99999999999999999999999999").await,
        "-ERR no such message\r\n"
    );
    assert_eq!(
        t.send("UIDL").await,
        "+OK unique-id listing follows\r\n1 1700000000.1\r\n2 1700000000.2\r\n3 1700000000.3\r\n.\r\n"
    );
    assert_eq!(t.send("UIDL 3").await, "+OK 3 1700000000.3\r\n");
    assert_eq!(t.send("UIDL 9").await, "-ERR no such message\r\n");
    assert_eq!(t.send("NOOP").await, "+OK\r\n");
    assert_eq!(
        t.send("NOOP x").await,
        "-ERR this command takes no arguments\r\n"
    );
}

#[tokio::test]
async fn retr_sends_exactly_the_listed_size() {
    let (mem, msgs) = sample();
    let mut t = alice(&mem).await;
    let sizes = [26usize, 43, 36];
    for (i, raw) in msgs.iter().enumerate() {
        let answer = t.send_bytes(format!("RETR {}\r\n", i + 1).as_bytes()).await;
        let (status, body) = retr_body(&answer);
        assert_eq!(status, format!("+OK {} octets", sizes[i]));
        assert_eq!(body.len(), sizes[i], "size matches the octets sent");
        let expected: Vec<u8> = String::from_utf8_lossy(raw)
            .replace("\r\n", "\n")
            .replace('\n', "\r\n")
            .into();
        let mut expected = expected;
        if !expected.ends_with(b"\r\n") {
            expected.extend_from_slice(b"\r\n");
        }
        assert_eq!(body, expected);
    }
    // Dot-stuffing on the wire.
    let answer = t.send("RETR 2").await;
    assert!(answer.contains("\r\n..dot line\r\n"), "{answer}");
    assert_eq!(t.send("RETR 0").await, "-ERR no such message\r\n");
    assert_eq!(t.send("RETR").await, "-ERR usage: RETR msg\r\n");
}

#[tokio::test]
async fn top_headers_and_lines() {
    let (mem, msgs) = sample();
    let mut t = alice(&mem).await;
    assert_eq!(
        t.send("TOP 3 0").await,
        "+OK top of message follows\r\nSubject: three\r\nX: y\r\n\r\n.\r\n"
    );
    assert_eq!(
        t.send("TOP 3 2").await,
        "+OK top of message follows\r\nSubject: three\r\nX: y\r\n\r\na\r\nb\r\n.\r\n"
    );
    let whole = t.send_bytes(b"TOP 2 1000\r\n").await;
    let mut expected = b"+OK top of message follows\r\n".to_vec();
    expected.extend_from_slice(&Transfer::retr(&msgs[1]).to_vec());
    assert_eq!(whole, expected);
    assert_eq!(t.send("TOP 4 1").await, "-ERR no such message\r\n");
    assert_eq!(t.send("TOP 1").await, "-ERR usage: TOP msg lines\r\n");
    assert_eq!(t.send("TOP 1 -3").await, "-ERR invalid line count\r\n");
}

#[tokio::test]
async fn dele_marks_and_rset_unmarks() {
    let (mem, _) = sample();
    let mut t = alice(&mem).await;
    assert_eq!(t.send("DELE 2").await, "+OK message 2 deleted\r\n");
    assert_eq!(t.send("DELE 2").await, "-ERR message 2 already deleted\r\n");
    assert_eq!(t.send("DELE 7").await, "-ERR no such message\r\n");
    assert_eq!(t.send("STAT").await, "+OK 2 62\r\n");
    assert_eq!(
        t.send("LIST").await,
        "+OK 2 messages (62 octets)\r\n1 26\r\n3 36\r\n.\r\n"
    );
    assert_eq!(t.send("LIST 2").await, "-ERR message 2 already deleted\r\n");
    assert_eq!(t.send("UIDL 2").await, "-ERR message 2 already deleted\r\n");
    assert_eq!(t.send("RETR 2").await, "-ERR message 2 already deleted\r\n");
    assert_eq!(
        t.send("TOP 2 0").await,
        "-ERR message 2 already deleted\r\n"
    );
    // Message numbers do not shift.
    assert_eq!(t.send("UIDL 3").await, "+OK 3 1700000000.3\r\n");
    assert_eq!(mem.uids(1), vec![1, 2, 3], "DELE only marks");
    assert_eq!(
        t.send("RSET").await,
        "+OK maildrop has 3 messages (105 octets)\r\n"
    );
    assert_eq!(t.send("STAT").await, "+OK 3 105\r\n");
    assert!(t.send("RETR 2").await.starts_with("+OK 43 octets\r\n"));
}

#[tokio::test]
async fn expunged_elsewhere_is_no_such_message_never_another() {
    let (mem, _) = sample();
    let mut t = alice(&mem).await;
    mem.expunge_elsewhere(1, 2);
    let new_uid = mem.add(1, b"Subject: late arrival\r\n\r\nx\r\n", 1);
    assert_eq!(new_uid, 4);
    assert_eq!(t.send("RETR 2").await, "-ERR no such message\r\n");
    assert_eq!(t.send("TOP 2 0").await, "-ERR no such message\r\n");
    // Numbering stays the snapshot's: 3 is still "Subject: three", the new mail is not there.
    assert!(t.send("TOP 3 0").await.contains("Subject: three"));
    assert_eq!(t.send("RETR 4").await, "-ERR no such message\r\n");
    assert_eq!(t.send("STAT").await, "+OK 3 105\r\n");
}

#[tokio::test]
async fn store_failure_on_retr_is_sys_temp_and_nothing_half_sent() {
    let (mem, _) = sample();
    let mut t = alice(&mem).await;
    mem.with(|s| s.fail_load = true);
    assert_eq!(
        t.send("RETR 1").await,
        "-ERR [SYS/TEMP] message temporarily unavailable\r\n"
    );
    assert_eq!(
        t.send("TOP 1 1").await,
        "-ERR [SYS/TEMP] message temporarily unavailable\r\n"
    );
    mem.with(|s| s.fail_load = false);
    assert!(t.send("RETR 1").await.starts_with("+OK 26 octets\r\n"));
}

#[tokio::test]
async fn oversized_message_is_sys_perm() {
    let (mem, _) = sample();
    let cfg = wharf_pop3::Pop3Config {
        max_message_size: 30,
        ..config()
    };
    let mut t = Transcript::with(
        &mem,
        cfg,
        loopback(),
        std::sync::Arc::new(wharf_pop3::Shared::new()),
    );
    t.login("alice@example.org").await;
    assert!(t.send("RETR 1").await.starts_with("+OK 26 octets"));
    assert_eq!(
        t.send("RETR 2").await,
        "-ERR [SYS/PERM] message too large to retrieve\r\n"
    );
}

#[tokio::test]
async fn empty_maildrop() {
    let (mem, _) = sample();
    let mut t = Transcript::new(&mem);
    t.login("bob@example.org").await;
    assert_eq!(t.send("STAT").await, "+OK 0 0\r\n");
    assert_eq!(t.send("LIST").await, "+OK 0 messages (0 octets)\r\n.\r\n");
    assert_eq!(
        t.send("UIDL").await,
        "+OK unique-id listing follows\r\n.\r\n"
    );
    assert_eq!(t.send("RETR 1").await, "-ERR no such message\r\n");
    assert_eq!(t.send("STLS").await, "-ERR already authenticated\r\n");
}
