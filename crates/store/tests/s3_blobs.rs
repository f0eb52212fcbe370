//! The S3 blob store (issue 19 item 2) against a real S3 server: a private Garage
//! (`wharf_testkit::Garage`; `.ci/run` installs the binary, and without it these tests fail).
//!
//! - the `BlobStore` contract on S3: written once, read whole, from an offset, in batches,
//!   listed by age, removed (absent too);
//! - a body above the multipart threshold, through the blob store and through the store;
//! - the lifecycle rules with S3 bodies (PostgreSQL metadata): shared bodies, expunge, sweep,
//!   and the append/expunge race of two nodes on the same bytes;
//! - S3 down: a delivery fails promptly with an error, nothing names a missing body, and after
//!   S3 is back delivery works and everything stored before reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::AsyncReadExt;
use wharf_store::blob::{BlobStore, blob_hash};
use wharf_store::blob_s3::{MULTIPART_THRESHOLD, S3BlobStore};
use wharf_store::*;
use wharf_testkit::store::store_account;
use wharf_testkit::{Garage, TempDatabase};

/// A prefix of its own for each test's objects.
fn prefix(test: &str) -> String {
    format!("t-{test}-{:08x}", rand::random::<u32>())
}

fn message(tag: &str, body_len: usize) -> Bytes {
    let mut raw = format!(
        "From: a@example.com\r\nTo: b@example.com\r\nSubject: {tag}\r\n\
         Message-ID: <{tag}@example.com>\r\n\r\n"
    )
    .into_bytes();
    let line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n";
    while raw.len() < body_len {
        raw.extend_from_slice(line);
    }
    raw.extend_from_slice(b"end\r\n");
    Bytes::from(raw)
}

async fn read_all(mut r: BlobReader) -> Vec<u8> {
    let mut out = Vec::new();
    r.read_to_end(&mut out).await.unwrap();
    out
}

/// A blocking call of the blob store, off the runtime's threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// A store on a fresh PostgreSQL database with its bodies in the Garage bucket.
struct S3Store {
    store: Arc<dyn Store>,
    blobs: Arc<S3BlobStore>,
    _db: TempDatabase,
}

async fn open_store(garage: &Garage, prefix: &str, grace: Duration) -> S3Store {
    let db = TempDatabase::create("wharf_s3");
    let cfg = StoreConfig {
        url: db.url(),
        blob_dir: std::path::PathBuf::from("/nonexistent-unused"),
        blob_s3: Some(garage.s3_config(prefix)),
        blob_grace: grace,
    };
    let store = open(&cfg).await.unwrap();
    S3Store {
        store,
        blobs: Arc::new(S3BlobStore::open(&garage.s3_config(prefix)).unwrap()),
        _db: db,
    }
}

async fn inbox(store: &dyn Store, account: AccountId) -> MailboxId {
    store
        .get_mailbox(account, "INBOX")
        .await
        .unwrap()
        .unwrap()
        .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blob_store_contract_holds_on_s3() {
    let garage = Garage::start_new();
    let s3 = Arc::new(S3BlobStore::open(&garage.s3_config(&prefix("contract"))).unwrap());
    s3.probe().await.unwrap();
    let a = message("a", 100);
    let b = message("b", 600 * 1024);
    let (ha, hb) = (blob_hash(&a), blob_hash(&b));

    // Put twice (and twice in one batch): one object each.
    let (s, a2, b2, ha2, hb2) = (s3.clone(), a.clone(), b.clone(), ha.clone(), hb.clone());
    blocking(move || {
        s.put_durable(&[(&ha2, &a2), (&hb2, &b2), (&ha2, &a2)])
            .unwrap();
        s.put_durable(&[(&ha2, &a2)]).unwrap();
    })
    .await;
    let s = s3.clone();
    let mut listed = blocking(move || s.list(Duration::ZERO).unwrap()).await;
    listed.sort();
    let mut want = vec![ha.clone(), hb.clone()];
    want.sort();
    assert_eq!(listed, want);
    // Nothing is an hour old yet.
    let s = s3.clone();
    assert!(
        blocking(move || s.list(Duration::from_secs(3600)).unwrap())
            .await
            .is_empty()
    );
    let s = s3.clone();
    let h = hb.clone();
    assert_eq!(
        blocking(move || s.size_of(&h).unwrap()).await,
        Some(b.len() as u64)
    );

    // Whole, from offsets (small rest, streamed rest, at and past the end), in a batch.
    assert_eq!(s3.read(&ha).await.unwrap(), a);
    let (len, r) = s3.open_read(&hb, 0).await.unwrap();
    assert_eq!(len, b.len() as u64);
    assert_eq!(read_all(r).await, b);
    let (len, r) = s3.open_read(&hb, 1000).await.unwrap();
    assert_eq!(len, b.len() as u64);
    assert_eq!(read_all(r).await, &b[1000..]);
    let (_, r) = s3.open_read(&hb, b.len() as u64 - 10).await.unwrap();
    assert_eq!(read_all(r).await, &b[b.len() - 10..]);
    for past in [b.len() as u64, b.len() as u64 + 5] {
        let (len, r) = s3.open_read(&hb, past).await.unwrap();
        assert_eq!(len, b.len() as u64);
        assert!(read_all(r).await.is_empty());
    }
    let absent = blob_hash(b"never stored");
    let many = s3
        .read_many(&[hb.clone(), absent.clone(), "not-a-hash".into(), ha.clone()])
        .await
        .unwrap();
    assert_eq!(many.len(), 4);
    assert_eq!(many[0].as_ref().unwrap(), &b);
    assert_eq!(
        many[1].as_ref().unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
    assert!(many[2].is_err());
    assert_eq!(many[3].as_ref().unwrap(), &a);
    assert_eq!(
        s3.read(&absent).await.unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );

    // Remove, twice, and an absent one.
    let (s, h, x) = (s3.clone(), ha.clone(), absent.clone());
    blocking(move || {
        s.remove(&h).unwrap();
        s.remove(&h).unwrap();
        s.remove(&x).unwrap();
        s.remove("not-a-hash").unwrap();
    })
    .await;
    let s = s3.clone();
    assert_eq!(
        blocking(move || s.list(Duration::ZERO).unwrap()).await,
        vec![hb.clone()]
    );
    // Never alone in a bucket: no immediate sweep on open.
    assert!(!s3.try_lock_alone().unwrap());
    assert_eq!(s3.sweep_tmp(Duration::ZERO).unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_above_the_multipart_threshold_round_trips() {
    let garage = Garage::start_new();
    let p = prefix("large");
    let big = message("big", MULTIPART_THRESHOLD * 2 + 12345);
    let hash = blob_hash(&big);
    let s3 = Arc::new(S3BlobStore::open(&garage.s3_config(&p)).unwrap());
    let (s, data, h) = (s3.clone(), big.clone(), hash.clone());
    blocking(move || s.put_durable(&[(&h, &data)]).unwrap()).await;
    assert_eq!(s3.read(&hash).await.unwrap(), big);
    let from = MULTIPART_THRESHOLD as u64 + 7;
    let (len, r) = s3.open_read(&hash, from).await.unwrap();
    assert_eq!(len, big.len() as u64);
    assert!(read_all(r).await == big[from as usize..]);

    // Through the store: a delivery of a large message, read back whole and streamed.
    let t = open_store(&garage, &prefix("large-store"), Duration::ZERO).await;
    let alice = store_account(t.store.as_ref(), "alice@example.com", 0).await;
    let large = message("large-delivery", MULTIPART_THRESHOLD + 1024 * 1024);
    let results = t
        .store
        .deliver(Delivery {
            raw: large.clone(),
            internal_date: 1_700_000_000,
            recipients: vec![alice.id],
            junk: false,
        })
        .await
        .unwrap();
    let DeliveryResult::Stored(stored) = &results[0] else {
        panic!("not stored: {results:?}");
    };
    assert_eq!(t.store.message_raw(stored.message_id).await.unwrap(), large);
    let (len, r) = t.store.open_message(stored.message_id, 0).await.unwrap();
    assert_eq!(len, large.len() as u64);
    assert!(read_all(r).await == large);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_rules_hold_with_s3_bodies() {
    let garage = Garage::start_new();
    let t = open_store(&garage, &prefix("life"), Duration::ZERO).await;
    let alice = store_account(t.store.as_ref(), "alice@example.com", 0).await;
    let bob = store_account(t.store.as_ref(), "bob@example.com", 0).await;
    let (ai, bi) = (
        inbox(t.store.as_ref(), alice.id).await,
        inbox(t.store.as_ref(), bob.id).await,
    );
    let raw = message("shared", 2000);
    let hash = blob_hash(&raw);
    let size = |blobs: Arc<S3BlobStore>, h: String| async move {
        blocking(move || blobs.size_of(&h).unwrap()).await
    };
    // Two deliveries of the same bytes: one object.
    let one = t
        .store
        .append(ai, raw.clone(), Flags::empty(), &[], 1_700_000_000)
        .await
        .unwrap();
    let two = t
        .store
        .append(bi, raw.clone(), Flags::empty(), &[], 1_700_000_000)
        .await
        .unwrap();
    assert_eq!(
        size(t.blobs.clone(), hash.clone()).await,
        Some(raw.len() as u64)
    );
    let b = t.blobs.clone();
    assert_eq!(
        blocking(move || b.list(Duration::ZERO).unwrap()).await,
        vec![hash.clone()]
    );
    // One copy expunged: the body stays for the other.
    t.store.expunge_uids(ai, &[one.uid]).await.unwrap();
    assert_eq!(t.store.sweep_orphans().await.unwrap(), 0);
    assert!(size(t.blobs.clone(), hash.clone()).await.is_some());
    assert_eq!(t.store.message_raw(two.message_id).await.unwrap(), raw);
    // The last copy expunged (grace 0): the object goes with the commit.
    t.store.expunge_uids(bi, &[two.uid]).await.unwrap();
    assert_eq!(size(t.blobs.clone(), hash.clone()).await, None);
    // An orphan (an object no row names, younger than the sweep's hour) is left alone.
    let orphan = message("orphan", 10);
    let oh = blob_hash(&orphan);
    let (b, o, h) = (t.blobs.clone(), orphan.clone(), oh.clone());
    blocking(move || b.put_durable(&[(&h, &o)]).unwrap()).await;
    t.store.sweep_orphans().await.unwrap();
    assert!(size(t.blobs.clone(), oh).await.is_some());
}

/// `blob_race.rs` on S3: node A appends the bytes node B is expunging; A must never answer OK
/// for a body that is gone. Rounds: `WHARF_BLOB_RACE_ROUNDS` / 10 (default 100).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_races_expunge_of_the_same_bytes_on_s3() {
    let rounds = std::env::var("WHARF_BLOB_RACE_ROUNDS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(100, |n| (n / 10).max(1));
    let garage = Garage::start_new();
    let p = prefix("race");
    let db = TempDatabase::create("wharf_s3_race");
    let cfg = StoreConfig {
        url: db.url(),
        blob_dir: std::path::PathBuf::from("/nonexistent-unused"),
        blob_s3: Some(garage.s3_config(&p)),
        blob_grace: Duration::ZERO,
    };
    let node_a = open(&cfg).await.unwrap();
    let node_b = open(&cfg).await.unwrap();
    let alice = store_account(node_a.as_ref(), "alice@example.com", 0).await;
    let bob = store_account(node_a.as_ref(), "bob@example.com", 0).await;
    let alice_inbox = inbox(node_a.as_ref(), alice.id).await;
    let bob_inbox = inbox(node_b.as_ref(), bob.id).await;
    let mut lost = Vec::new();
    for round in 0..rounds {
        let raw = message(&format!("race-{round}"), 300);
        let held = node_b
            .append(bob_inbox, raw.clone(), Flags::DELETED, &[], 1_700_000_000)
            .await
            .unwrap();
        let held_uid = [held.uid];
        let (appended, expunged) = tokio::join!(
            node_a.append(alice_inbox, raw.clone(), Flags::empty(), &[], 1_700_000_000),
            node_b.expunge(bob_inbox, Some(&held_uid))
        );
        assert_eq!(expunged.unwrap(), vec![held.uid]);
        let Ok(appended) = appended else {
            continue;
        };
        match node_a.message_raw(appended.message_id).await {
            Ok(got) if got == raw => {}
            other => lost.push((round, format!("{other:?}"))),
        }
        node_a
            .expunge_uids(alice_inbox, &[appended.uid])
            .await
            .unwrap();
    }
    assert!(
        lost.is_empty(),
        "{} of {rounds} rounds lost the body; first: {:?}",
        lost.len(),
        lost.first()
    );
    node_a.sweep_orphans().await.unwrap();
    let s3 = S3BlobStore::open(&garage.s3_config(&p)).unwrap();
    assert!(
        blocking(move || s3.list(Duration::ZERO).unwrap())
            .await
            .is_empty(),
        "every body was expunged: no object is left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_s3_down_a_delivery_fails_promptly_and_nothing_is_half_stored() {
    let mut garage = Garage::start_new();
    let t = open_store(&garage, &prefix("down"), Duration::ZERO).await;
    let alice = store_account(t.store.as_ref(), "alice@example.com", 0).await;
    let ai = inbox(t.store.as_ref(), alice.id).await;
    let deliver = |raw: Bytes| Delivery {
        raw,
        internal_date: 1_700_000_000,
        recipients: vec![alice.id],
        junk: false,
    };
    let before = message("before", 500);
    t.store.deliver(deliver(before.clone())).await.unwrap();

    garage.stop();
    let during = message("during", 500);
    let started = Instant::now();
    let failed = t.store.deliver(deliver(during.clone())).await;
    let took = started.elapsed();
    assert!(failed.is_err(), "a delivery with S3 down: {failed:?}");
    // retry_secs = 2 in the test config; the default is 15.
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let appended = t
        .store
        .append(ai, during.clone(), Flags::empty(), &[], 1_700_000_000)
        .await;
    assert!(appended.is_err(), "an APPEND with S3 down: {appended:?}");
    // Only the message from before is there; nothing names the body that failed.
    let index = t.store.mailbox_index(ai).await.unwrap();
    assert_eq!(index.len(), 1);

    garage.start();
    let stored = t.store.deliver(deliver(during.clone())).await.unwrap();
    assert!(matches!(stored[0], DeliveryResult::Stored(_)), "{stored:?}");
    let index = t.store.mailbox_index(ai).await.unwrap();
    assert_eq!(index.len(), 2);
    let mut bodies = Vec::new();
    for e in &index {
        bodies.push(t.store.message_raw(e.message_id).await.unwrap());
    }
    assert_eq!(bodies, vec![before, during]);
}
