//! Under hostile load (issue 15): sessions that RETR a large message and never read the answer
//! must not hold the message in memory. The body streams from the blob file as the socket
//! drains, one chunk per session.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wharf_directory::{Directory, DirectoryConfig};
use wharf_net::Limits;
use wharf_pop3::Pop3Service;
use wharf_store::{Delivery, DeliveryResult};
use wharf_testkit::store::seed_accounts;
use wharf_testkit::{Loopback, TestCert};

const MIB: u64 = 1024 * 1024;

/// Resident set size of this process (the server runs in it), in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

async fn line(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while !out.ends_with(b"\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(30), s.read(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&out));
        out.push(b[0]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_retrs_stream_from_the_blob() {
    const SESSIONS: usize = 50;
    const SIZE: usize = 20 * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let store = wharf_store::open_embedded(dir.path()).await.unwrap();
    let directory = Directory::new(store.clone(), DirectoryConfig::default());
    // One maildrop per session: POP3 locks a maildrop to one session.
    let users: Vec<String> = (0..SESSIONS).map(|i| format!("u{i}@example.org")).collect();
    let names: Vec<&str> = users.iter().map(String::as_str).collect();
    let accounts = seed_accounts(&directory, &names, support::PASS).await;
    let mut msg = b"Subject: big\r\n\r\n".to_vec();
    while msg.len() < SIZE {
        msg.extend_from_slice(b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmn\r\n");
    }
    let r = store
        .deliver(Delivery {
            raw: Bytes::from(msg),
            internal_date: 1_790_000_000,
            recipients: accounts.iter().map(|a| a.id).collect(),
            junk: false,
        })
        .await
        .unwrap();
    assert!(r.iter().all(|r| matches!(r, DeliveryResult::Stored(_))));

    let cert = TestCert::localhost();
    let limits = Limits {
        max_per_ip: 1000,
        ..Limits::default()
    };
    let mut listeners = Loopback::new(Some(&cert), limits);
    let service = Arc::new(Pop3Service::new(
        support::loopback_cfg(),
        "pop.example.org".into(),
        directory.clone(),
    ));
    let (plain, _implicit) = listeners.listen_pair("pop3", "pop3s", service).await;
    let server = listeners.start();

    let mut conns = Vec::new();
    for u in &users {
        let mut c = TcpStream::connect(plain).await.unwrap();
        assert!(line(&mut c).await.starts_with("+OK"));
        c.write_all(format!("USER {u}\r\nPASS {}\r\n", support::PASS).as_bytes())
            .await
            .unwrap();
        assert!(line(&mut c).await.starts_with("+OK"));
        let r = line(&mut c).await;
        assert!(r.starts_with("+OK"), "{r}");
        conns.push(c);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss();
    for c in &mut conns {
        c.write_all(b"RETR 1\r\n").await.unwrap();
    }
    // Time for every session to fill its socket buffers and stall.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let growth = rss().saturating_sub(before);
    eprintln!(
        "{SESSIONS} sessions RETR-ing a {} MiB message without reading: RSS growth {:.1} MiB",
        SIZE as u64 / MIB,
        growth as f64 / MIB as f64
    );
    // Read whole per session this would be 1,000 MiB.
    assert!(growth < 100 * MIB, "RSS grew {} MiB", growth / MIB);
    // A session that reads gets all of it.
    let c = &mut conns[0];
    let mut got = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    while !got.ends_with(b"\r\n.\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(30), c.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.len() > SIZE);
    drop(conns);
    server.shutdown(Duration::from_secs(2)).await;
}
