//! Pre-authentication memory is bounded (issue 15 item 2): many unauthenticated port-25 sessions
//! each send megabytes of message content that never ends, over real loopback sockets, and the
//! process's resident memory stays far below what holding the content would cost, because content
//! beyond the spool threshold goes to spool files. A normal large message still arrives
//! byte-exact. Its own test binary, so no other test shares the process whose RSS is measured
//! (and its tests take turns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use support::*;
use wharf_smtp::SmtpConfig;

/// The tests of this binary measure the process's RSS: they run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SESSIONS: usize = 40;
const CHUNK: usize = 1 << 20;
const CHUNKS: usize = 4;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Valid content (short CRLF lines), so nothing dooms the message and stops its buffering.
fn content(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    let mut i = 0u64;
    while v.len() < len {
        let line = format!("{i:010} {}\r\n", "m".repeat(66));
        v.extend_from_slice(line.as_bytes());
        i += 1;
    }
    v.truncate(len - 2);
    v.extend_from_slice(b"\r\n");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_messages_cost_disk_not_memory() {
    let _serial = SERIAL.lock().await;
    let spool_dir = tempfile::tempdir().unwrap();
    let s = start_with(SmtpConfig {
        spool_dir: Some(spool_dir.path().to_path_buf()),
        max_message_size: 50 << 20,
        ..test_config()
    })
    .await;
    let chunk = Arc::new(content(CHUNK));
    // Warm up the allocator and the server with one full message first.
    let big = content(5 << 20);
    let mut c = Raw::open(s.mx).await;
    c.expect("EHLO client.test", 250).await;
    c.expect("MAIL FROM:<x@remote.test>", 250).await;
    c.expect("RCPT TO:<alice@example.test>", 250).await;
    c.expect("DATA", 354).await;
    c.send(&big).await;
    c.send(b".\r\n").await;
    assert_eq!(c.reply().await.0, 250);
    let inbox = s.inbox(ALICE).await;
    assert_eq!(inbox.len(), 1);
    assert!(
        inbox[0].ends_with(&big),
        "the large message arrives byte-exact"
    );
    drop(inbox);

    let before = rss_kib();
    let mut held = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..SESSIONS {
        let chunk = chunk.clone();
        let addr = s.mx;
        tasks.push(tokio::spawn(async move {
            let mut c = Raw::open(addr).await;
            c.expect("EHLO client.test", 250).await;
            c.expect("MAIL FROM:<x@remote.test>", 250).await;
            c.expect("RCPT TO:<alice@example.test>", 250).await;
            for _ in 0..CHUNKS {
                c.send(format!("BDAT {}\r\n", chunk.len()).as_bytes()).await;
                c.send(&chunk).await;
                // The 250 comes once the server has read the whole chunk.
                assert_eq!(c.reply().await.0, 250);
            }
            c
        }));
    }
    for t in tasks {
        held.push(t.await.unwrap());
    }
    let after = rss_kib();
    let grown_mib = after.saturating_sub(before) / 1024;
    let sent_mib = (SESSIONS * CHUNKS * CHUNK) >> 20;
    eprintln!(
        "{SESSIONS} sessions holding {sent_mib} MiB of unfinished content: RSS {} -> {} MiB (+{grown_mib} MiB)",
        before / 1024,
        after / 1024
    );
    // Holding the content in memory (as before the spool) costs at least `sent_mib` (160 MiB).
    assert!(
        grown_mib < 48,
        "RSS grew by {grown_mib} MiB for {sent_mib} MiB of unfinished content"
    );
    // Ending the sessions frees their spool files.
    drop(held);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let open = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|p| p.starts_with(spool_dir.path()))
        .count();
    assert_eq!(open, 0, "spool files left open after disconnect");
}

/// The target: 1,000 unauthenticated port-25 sessions, each stopped in the middle of a
/// message larger than the spool threshold, cost less than 100 MiB of resident memory with the
/// default limits (in memory that would be 1,000 x 512 KiB = 500 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_unfinished_messages_cost_under_100_mib() {
    let _serial = SERIAL.lock().await;
    const MANY: usize = 1000;
    const EACH: usize = 512 * 1024;
    let spool_dir = tempfile::tempdir().unwrap();
    let s = start_with_limits(
        SmtpConfig {
            spool_dir: Some(spool_dir.path().to_path_buf()),
            ..test_config()
        },
        None,
        wharf_net::Limits {
            max_per_ip: 2000,
            idle_timeout: std::time::Duration::from_secs(120),
            ..wharf_net::Limits::default()
        },
    )
    .await;
    let body = Arc::new(content(EACH));
    // Warm up: one session through the whole path, so lazily built state is not counted.
    {
        let mut c = Raw::open(s.mx).await;
        c.expect("EHLO client.test", 250).await;
        c.expect("MAIL FROM:<x@remote.test>", 250).await;
        c.expect("RCPT TO:<alice@example.test>", 250).await;
        c.expect("DATA", 354).await;
        c.send(&body).await;
        c.send(b".\r\n").await;
        assert_eq!(c.reply().await.0, 250);
    }
    let before = rss_kib();
    let mut held = Vec::new();
    // In waves, so the loopback accept queue is never the limit.
    for wave in 0..(MANY / 100) {
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let body = body.clone();
            let addr = s.mx;
            tasks.push(tokio::spawn(async move {
                let mut c = Raw::open(addr).await;
                c.expect("EHLO client.test", 250).await;
                c.expect("MAIL FROM:<x@remote.test>", 250).await;
                c.expect("RCPT TO:<alice@example.test>", 250).await;
                c.send(format!("BDAT {}\r\n", body.len()).as_bytes()).await;
                c.send(&body).await;
                assert_eq!(c.reply().await.0, 250);
                c
            }));
        }
        for t in tasks {
            held.push(t.await.unwrap());
        }
        if wave == 0 {
            eprintln!(
                "first 100 sessions: +{} MiB",
                rss_kib().saturating_sub(before) / 1024
            );
        }
    }
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    eprintln!(
        "{MANY} sessions each holding {} KiB of an unfinished message: +{grown_mib} MiB RSS",
        EACH / 1024
    );
    assert!(
        grown_mib < 100,
        "RSS grew by {grown_mib} MiB for {MANY} unfinished messages"
    );
    drop(held);
}
