//! Measurements behind docs/store.md (ignored by default; they take time and disk):
//! `cargo test -p wharf-store --test durability_bench -- --ignored --nocapture --test-threads 1`
//! Set WHARF_BENCH_DIR to measure on a particular filesystem (default: the system temp dir).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use wharf_store::blob::{FsBlobStore, SyncMode, blob_hash};
use wharf_store::*;

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("WHARF_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d).unwrap(),
        None => tempfile::tempdir().unwrap(),
    }
}

fn bodies(n: usize, tag: &str) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let mut b = format!("{tag} message {i} ").into_bytes();
            b.resize(4096, b'x');
            (blob_hash(&b), b)
        })
        .collect()
}

#[test]
#[ignore]
fn blob_sync_strategies() {
    const N: usize = 400;
    for (mode, batch) in [
        (SyncMode::PerFile, 1),
        (SyncMode::Batch, 1),
        (SyncMode::Batch, 16),
        (SyncMode::Batch, 64),
    ] {
        let dir = bench_dir();
        let store = FsBlobStore::open(dir.path(), mode).unwrap();
        let items = bodies(N, &format!("{mode:?}{batch}"));
        let t = Instant::now();
        for chunk in items.chunks(batch) {
            let refs: Vec<(&str, &[u8])> = chunk
                .iter()
                .map(|(h, b)| (h.as_str(), b.as_slice()))
                .collect();
            store.put_durable(&refs).unwrap();
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "blobs mode={mode:?} batch={batch}: {N} x 4 KiB in {secs:.2}s = {:.0} blobs/s",
            N as f64 / secs
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn deliver_throughput() {
    for tasks in [1usize, 8, 32] {
        let dir = bench_dir();
        let store = open_embedded(dir.path()).await.unwrap();
        store.create_domain("example.com").await.unwrap();
        let mut ids = Vec::new();
        for i in 0..4 {
            let a = store
                .create_account(NewAccount {
                    address: format!("u{i}@example.com"),
                    secret_hash: "x".into(),
                    scram_sha256: String::new(),
                    quota_bytes: 0,
                })
                .await
                .unwrap();
            ids.push(a.id);
        }
        let ids = Arc::new(ids);
        const N: usize = 400;
        let t = Instant::now();
        let mut handles = Vec::new();
        for k in 0..tasks {
            let store = store.clone();
            let ids = ids.clone();
            handles.push(tokio::spawn(async move {
                for j in (k..N).step_by(tasks) {
                    let mut raw = format!(
                        "From: a@example.org\r\nTo: u@example.com\r\nSubject: bench {j}\r\n\r\n"
                    )
                    .into_bytes();
                    raw.resize(4096, b'x');
                    let r = store
                        .deliver(Delivery {
                            raw: Bytes::from(raw),
                            internal_date: 0,
                            recipients: vec![ids[j % 4]],
                            junk: false,
                        })
                        .await
                        .unwrap();
                    assert!(matches!(r[0], DeliveryResult::Stored(_)));
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "deliver sqlite: {N} x 4 KiB from {tasks} task(s) in {secs:.2}s = {:.0} msg/s",
            N as f64 / secs
        );
    }
}
