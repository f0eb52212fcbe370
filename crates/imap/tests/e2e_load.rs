//! End to end over loopback sockets, under hostile load (issue 15): many sessions that send large
//! APPEND literals and never finish them, and many sessions that FETCH a large message and never
//! read the answer, must not grow the process's memory with the data they hold up; a normal large
//! APPEND and FETCH still round-trip byte-exact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wharf_imap::ImapConfig;

/// Resident set size of this process (the server runs in it), in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

const MIB: u64 = 1024 * 1024;

/// The tests of this binary measure the process's RSS: they run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Reads until `needle` has arrived; returns everything read.
async fn read_until(s: &mut TcpStream, needle: &[u8]) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut checked: usize = 0;
    loop {
        // Only the new bytes (and a needle's length before them) can complete the match.
        let from = checked.saturating_sub(needle.len());
        if buf[from..].windows(needle.len()).any(|w| w == needle) {
            break;
        }
        checked = buf.len();
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {needle:?}"
        );
        let n = tokio::time::timeout(Duration::from_secs(30), s.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(
            n > 0,
            "connection closed; got {}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
    buf
}

/// A plaintext loopback session (the opt-in allows LOGIN), logged in as alice.
async fn logged_in(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    read_until(&mut s, b"\r\n").await;
    s.write_all(format!("l LOGIN {USER} \"{PASS}\"\r\n").as_bytes())
        .await
        .unwrap();
    read_until(&mut s, b"l OK").await;
    s
}

fn load_cfg(spool: &std::path::Path) -> ImapConfig {
    ImapConfig {
        allow_plaintext_auth_on_loopback: true,
        spool_dir: Some(spool.to_path_buf()),
        ..ImapConfig::default()
    }
}

fn spooled_bytes(dir: &std::path::Path) -> u64 {
    spool_files(dir).iter().sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_large_appends_do_not_hold_memory() {
    let _serial = SERIAL.lock().await;
    const SESSIONS: usize = 100;
    const SENT: usize = 2 * 1024 * 1024;
    let env = sql_env().await;
    let spool = tempfile::tempdir().unwrap();
    let (server, plain, _tls, _cert) = server(&env, load_cfg(spool.path())).await;
    let mut conns = Vec::new();
    for _ in 0..SESSIONS {
        conns.push(logged_in(plain).await);
    }
    let chunk = std::sync::Arc::new(vec![b'x'; SENT]);
    let before = rss();
    let mut writers = Vec::new();
    for (i, mut c) in conns.into_iter().enumerate() {
        let chunk = chunk.clone();
        writers.push(tokio::spawn(async move {
            // Announced 40 MB, non-synchronising not allowed that large: wait for the `+`.
            c.write_all(format!("a{i} APPEND INBOX {{40000000}}\r\n").as_bytes())
                .await
                .unwrap();
            read_until(&mut c, b"+ ").await;
            c.write_all(&chunk[..]).await.unwrap();
            c
        }));
    }
    drop(chunk);
    let mut conns = Vec::new();
    for w in writers {
        conns.push(w.await.unwrap());
    }
    // Everything sent has been taken in by the server (into the spool files).
    let expected = (SESSIONS * SENT) as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while spooled_bytes(spool.path()) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(spooled_bytes(spool.path()), expected);
    let growth = rss().saturating_sub(before);
    eprintln!(
        "{SESSIONS} sessions x {} MiB of unfinished APPEND: RSS growth {:.1} MiB",
        SENT as u64 / MIB,
        growth as f64 / MIB as f64
    );
    // Held in memory this would be 200 MiB.
    assert!(growth < 40 * MIB, "RSS grew {} MiB", growth / MIB);
    drop(conns);
    assert_eq!(
        std::fs::read_dir(spool.path()).unwrap().count(),
        0,
        "spool files have no name"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !spool_files(spool.path()).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        spool_files(spool.path()).is_empty(),
        "spool files closed on disconnect"
    );
    server.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_append_and_fetch_round_trip_byte_exact() {
    let _serial = SERIAL.lock().await;
    let env = sql_env().await;
    let spool = tempfile::tempdir().unwrap();
    let (server, plain, _tls, _cert) = server(&env, load_cfg(spool.path())).await;
    let mut c = logged_in(plain).await;
    let msg: Vec<u8> = {
        let mut m = b"From: a@example.org\r\nSubject: big\r\n\r\n".to_vec();
        let mut i = 0u32;
        while m.len() < 5 * 1024 * 1024 {
            m.extend_from_slice(format!("{i:08} abcdefghijklmnopqrstuvwxyz\r\n").as_bytes());
            i += 1;
        }
        m
    };
    c.write_all(format!("a APPEND INBOX {{{}}}\r\n", msg.len()).as_bytes())
        .await
        .unwrap();
    read_until(&mut c, b"+ ").await;
    c.write_all(&msg).await.unwrap();
    c.write_all(b"\r\n").await.unwrap();
    let r = read_until(&mut c, b"a OK").await;
    assert!(String::from_utf8_lossy(&r).contains("APPENDUID"));
    assert!(spool_files(spool.path()).is_empty());
    c.write_all(b"s SELECT INBOX\r\nf FETCH 1 BODY.PEEK[]\r\n")
        .await
        .unwrap();
    let r = read_until(&mut c, b"f OK FETCH completed\r\n").await;
    let head = format!("* 1 FETCH (BODY[] {{{}}}\r\n", msg.len());
    let at = r
        .windows(head.len())
        .position(|w| w == head.as_bytes())
        .unwrap()
        + head.len();
    assert_eq!(&r[at..at + msg.len()], &msg[..]);
    assert_eq!(&r[at + msg.len()..at + msg.len() + 3], b")\r\n");
    server.shutdown(Duration::from_secs(2)).await;
}

const FETCHERS: usize = 50;
const FETCHED: usize = 20 * 1024 * 1024;

/// `FETCHERS` logged-in sessions FETCH message 1 (`FETCHED` octets) and do not read the answer;
/// the process's RSS must grow far less than the message times the sessions. Then one session
/// reads, and gets it all.
async fn stalled_fetchers(plain: std::net::SocketAddr, what: &str) {
    let mut conns = Vec::new();
    for _ in 0..FETCHERS {
        let mut c = logged_in(plain).await;
        c.write_all(b"s SELECT INBOX\r\n").await.unwrap();
        read_until(&mut c, b"s OK").await;
        conns.push(c);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss();
    for c in &mut conns {
        c.write_all(b"f FETCH 1 BODY.PEEK[]\r\n").await.unwrap();
    }
    // Give the sessions time to fill the socket buffers and stall.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let growth = rss().saturating_sub(before);
    eprintln!(
        "{FETCHERS} sessions fetching a {} MiB {what} without reading: RSS growth {:.1} MiB",
        FETCHED as u64 / MIB,
        growth as f64 / MIB as f64
    );
    // Read whole per session this would be 1,000 MiB.
    assert!(growth < 100 * MIB, "RSS grew {} MiB", growth / MIB);
    let r = read_until(&mut conns[0], b"f OK FETCH completed\r\n").await;
    assert!(r.len() > FETCHED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_nobody_reads_do_not_hold_the_message() {
    let _serial = SERIAL.lock().await;
    // The in-memory backend hands out readers over the one stored copy, so any growth is the
    // service's own buffering of the answer.
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    let (server, plain, _tls, _cert) = server_with(&env, load_cfg(dir.path()), dir.path()).await;
    let mut msg = b"Subject: big\r\n\r\n".to_vec();
    msg.resize(FETCHED, b'y');
    env.mem.deliver(env.alice, &msg);
    drop(msg);
    stalled_fetchers(plain, "message").await;
    server.shutdown(Duration::from_secs(2)).await;
}

/// The same against the embedded store: FETCH reads the blob file as the socket drains, so the
/// stalled readers hold a chunk each, not the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_fetches_from_the_store_stream_from_the_blob() {
    let _serial = SERIAL.lock().await;
    let env = sql_env().await;
    let spool = tempfile::tempdir().unwrap();
    let (server, plain, _tls, _cert) = server(&env, load_cfg(spool.path())).await;
    {
        let mut c = logged_in(plain).await;
        let mut msg = b"Subject: big\r\n\r\n".to_vec();
        msg.resize(FETCHED, b'y');
        c.write_all(format!("a APPEND INBOX {{{FETCHED}}}\r\n").as_bytes())
            .await
            .unwrap();
        read_until(&mut c, b"+ ").await;
        c.write_all(&msg).await.unwrap();
        c.write_all(b"\r\n").await.unwrap();
        read_until(&mut c, b"a OK").await;
    }
    stalled_fetchers(plain, "stored message").await;
    server.shutdown(Duration::from_secs(2)).await;
}
