//! The embedded store's SQLite write-ahead log stays bounded under sustained concurrent load
//! (issue 15 item 1): readers that keep the reader pool busy the way IMAP sessions do (SELECT,
//! FETCH, STATUS, SEARCH paths) while writers deliver mail and change flags without a pause. A
//! PASSIVE-only checkpointer never finds a moment without a reader or a writer, so the log grew
//! without bound (49.6 GB in 10 minutes under 50 IMAP clients).
//!
//! `WHARF_WAL_SOAK_SECS` sets the run length (default 30 s).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use wharf_store::*;

const WAL_BOUND: u64 = 64 * 1024 * 1024;
const ACCOUNTS: usize = 8;
const READERS: usize = 24;
const DELIVERERS: usize = 4;
const FLAGGERS: usize = 4;

/// A text message of about `size` bytes: its text goes into the full-text index, whose pages
/// are most of what a delivery writes to the WAL.
fn message(n: u64, size: usize) -> Bytes {
    let mut m = format!(
        "From: sender{n}@example.org\r\nTo: user@example.com\r\nSubject: load {n}\r\n\
         Message-ID: <{n}@example.org>\r\n\r\n"
    );
    let mut word = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while m.len() < size {
        word ^= word << 13;
        word ^= word >> 7;
        word ^= word << 17;
        m.push_str(&format!("w{:x} ", word % 50_000));
        if m.len() % 72 < 8 {
            m.push_str("\r\n");
        }
    }
    m.push_str("\r\n");
    Bytes::from(m)
}

fn wal_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_stays_bounded_under_concurrent_readers_and_writers() {
    let secs: u64 = std::env::var("WHARF_WAL_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let dir = tempfile::tempdir().unwrap();
    let store = open_embedded(dir.path()).await.unwrap();
    let wal = dir.path().canonicalize().unwrap().join("wharf.db-wal");
    store.create_domain("example.com").await.unwrap();
    let mut accounts = Vec::new();
    for i in 0..ACCOUNTS {
        let a = store
            .create_account(NewAccount {
                address: format!("user{i}@example.com"),
                secret_hash: String::new(),
                scram_sha256: String::new(),
                quota_bytes: 0,
            })
            .await
            .unwrap();
        let inbox = store.get_mailbox(a.id, "INBOX").await.unwrap().unwrap();
        accounts.push((a.id, inbox.id));
    }
    // A starting mailbox for the readers.
    for n in 0..40u64 {
        store
            .deliver(Delivery {
                raw: message(n, 8192),
                internal_date: 1_700_000_000,
                recipients: accounts.iter().map(|(a, _)| *a).collect(),
                junk: false,
            })
            .await
            .unwrap();
    }

    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let writes = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for r in 0..READERS {
        let (store, stop, reads) = (store.clone(), stop.clone(), reads.clone());
        let (_, mailbox) = accounts[r % ACCOUNTS];
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                // SELECT: status and the index; FETCH: a few bodies and summaries; IDLE's pull:
                // changes since an older modseq; now and then a SEARCH TEXT.
                let status = store.mailbox_status(mailbox).await.unwrap();
                let index = store.mailbox_index(mailbox).await.unwrap();
                let ids: Vec<MessageId> =
                    index.iter().rev().take(3).map(|e| e.message_id).collect();
                for c in store.message_contents(&ids, true, true).await.unwrap() {
                    c.unwrap();
                }
                store
                    .changes_since(mailbox, status.highest_modseq.saturating_sub(5))
                    .await
                    .unwrap();
                if i.is_multiple_of(8) {
                    store
                        .search_text(mailbox, TextField::Subject, "load")
                        .await
                        .unwrap();
                }
                reads.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        }));
    }
    for d in 0..DELIVERERS {
        let (store, stop, writes) = (store.clone(), stop.clone(), writes.clone());
        let recipients: Vec<AccountId> = accounts
            .iter()
            .skip(d % 2)
            .step_by(2)
            .map(|(a, _)| *a)
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut n = 1_000_000 * (d as u64 + 1);
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                store
                    .deliver(Delivery {
                        raw: message(n, 8192),
                        internal_date: 1_700_000_000,
                        recipients: recipients.clone(),
                        junk: false,
                    })
                    .await
                    .unwrap();
                writes.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for f in 0..FLAGGERS {
        let (store, stop, writes) = (store.clone(), stop.clone(), writes.clone());
        let (_, mailbox) = accounts[f % ACCOUNTS];
        tasks.push(tokio::spawn(async move {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let op = if i.is_multiple_of(2) {
                    FlagOp::Add
                } else {
                    FlagOp::Remove
                };
                let uids: Vec<Uid> = (1..=40).filter(|u| u % 3 == i % 3).collect();
                store
                    .store_flags(mailbox, &uids, op, Flags::SEEN, &[], None)
                    .await
                    .unwrap();
                writes.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    let started = Instant::now();
    let mut peak = 0u64;
    let mut samples = Vec::new();
    while started.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let size = wal_size(&wal);
        peak = peak.max(size);
        samples.push(size);
        if size > WAL_BOUND {
            break;
        }
        if tasks.iter().any(|t| t.is_finished()) {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("a load task failed");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (reads, writes) = (
        reads.load(Ordering::Relaxed),
        writes.load(Ordering::Relaxed),
    );
    println!(
        "{elapsed:.1}s: {reads} read rounds, {writes} writes, WAL peak {:.1} MiB, last {:.1} MiB",
        peak as f64 / 1048576.0,
        samples.last().copied().unwrap_or(0) as f64 / 1048576.0
    );
    assert!(
        peak <= WAL_BOUND,
        "the WAL reached {peak} bytes (bound {WAL_BOUND}) after {elapsed:.1}s \
         ({reads} read rounds, {writes} writes)"
    );
    // The load was real: both sides kept going through the whole run.
    assert!(
        reads > 100 && writes > 100,
        "{reads} reads, {writes} writes"
    );
}
