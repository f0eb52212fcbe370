//! The SQL outbound queue (`QueueStore` for `SqlStore`), run once against SQLite and once against
//! PostgreSQL (127.0.0.1:5432, user postgres; each test creates and drops its own database).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use wharf_store::queue::*;
use wharf_store::*;
use wharf_testkit::store::{blob_files, store_account};
use wharf_testkit::{Backend, TestStore, on_both_backends};

struct Harness {
    store: Arc<dyn Store>,
    queue: Arc<dyn QueueStore>,
    // Dropped after the handles (field order): the database and directory outlive them.
    files: TestStore,
}

impl Harness {
    async fn new(backend: Backend) -> Harness {
        let files = TestStore::new(backend);
        let (store, queue) = files.open_with_queue().await;
        Harness {
            store,
            queue,
            files,
        }
    }

    /// Closes the store and opens it again, as after a restart.
    async fn reopen(self) -> Harness {
        let Harness {
            store,
            queue,
            files,
        } = self;
        drop(store);
        drop(queue);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (store, queue) = files.open_with_queue().await;
        Harness {
            store,
            queue,
            files,
        }
    }

    fn blob_dir(&self) -> &Path {
        self.files.blob_dir()
    }

    async fn account(&self, address: &str) -> Account {
        store_account(self.store.as_ref(), address, 0).await
    }
}

fn message(subject: &str) -> Bytes {
    Bytes::from(format!(
        "From: Alice <alice@example.org>\r\nTo: bob@remote.example\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@example.org>\r\n\r\nbody of {subject}\r\n"
    ))
}

fn entry(raw: Bytes, rcpts: &[&str], now: i64) -> NewQueueEntry {
    NewQueueEntry {
        sender: "alice@example.org".into(),
        recipients: rcpts.iter().map(|r| QueuedRecipient::new(r)).collect(),
        raw,
        envid: None,
        ret: None,
        require_tls: false,
        created: now,
        next_attempt: now,
        expires: now + 5 * 86400,
    }
}

on_both_backends!(threads = 4;
    meets_the_contract,
    concurrent_leasing_never_hands_an_entry_twice,
    expired_lease_is_taken_over_and_stale_owner_refused,
    entry_survives_reopen,
    blob_shared_with_mailbox_copy,
    empty_recipient_list_is_invalid,
);

async fn meets_the_contract(b: Backend) {
    let h = Harness::new(b).await;
    check_queue_store(h.queue.as_ref()).await.unwrap();
    // Run twice: the contract must hold on a store that already holds (finished) entries.
    check_queue_store(h.queue.as_ref()).await.unwrap();
    assert!(h.queue.list().await.unwrap().is_empty());
    assert!(
        blob_files(h.blob_dir()).is_empty(),
        "completed entries leave no blob"
    );
}

async fn concurrent_leasing_never_hands_an_entry_twice(b: Backend) {
    let h = Harness::new(b).await;
    // A second handle on the same database and blob directory: another node (PostgreSQL: its
    // own pool) or a second process (SQLite: its own writer connection).
    let (_other_store, other) = open_with_queue(&h.files.config).await.unwrap();
    let now = 1_800_000_000;
    let mut all = HashSet::new();
    for i in 0..60 {
        let id = h
            .queue
            .enqueue(entry(
                message(&format!("m{i}")),
                &["bob@remote.example"],
                now - i,
            ))
            .await
            .unwrap();
        all.insert(id);
    }
    let mut tasks = Vec::new();
    for t in 0..8 {
        let q = if t % 2 == 0 {
            h.queue.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            let owner = format!("worker-{t}");
            let mut got = Vec::new();
            loop {
                let batch = q.lease_due(&owner, now, 600, 3).await.unwrap();
                if batch.is_empty() {
                    break;
                }
                for e in batch {
                    assert_eq!(e.lease_owner.as_deref(), Some(owner.as_str()));
                    assert_eq!(e.lease_until, Some(now + 600));
                    got.push(e.id);
                }
                tokio::task::yield_now().await;
            }
            got
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for t in tasks {
        for id in t.await.unwrap() {
            total += 1;
            assert!(seen.insert(id), "entry {id} leased twice");
        }
    }
    assert_eq!(total, all.len());
    assert_eq!(seen, all);
    // Every lease is live: nobody gets anything more until they run out.
    assert!(
        h.queue
            .lease_due("late", now + 600, 600, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        h.queue
            .lease_due("late", now + 601, 600, 100)
            .await
            .unwrap()
            .len(),
        60
    );
}

async fn expired_lease_is_taken_over_and_stale_owner_refused(b: Backend) {
    let h = Harness::new(b).await;
    let now = 1_800_000_000;
    let id = h
        .queue
        .enqueue(entry(
            message("lease"),
            &["a@r.example", "b@r.example"],
            now,
        ))
        .await
        .unwrap();
    let a = h.queue.lease_due("node-a", now, 30, 10).await.unwrap();
    assert_eq!(a.len(), 1);
    assert!(
        h.queue
            .lease_due("node-b", now + 30, 30, 10)
            .await
            .unwrap()
            .is_empty(),
        "lease held up to and including lease_until"
    );
    let b2 = h.queue.lease_due("node-b", now + 31, 30, 10).await.unwrap();
    assert_eq!(b2.len(), 1);
    assert_eq!(b2[0].lease_owner.as_deref(), Some("node-b"));

    let mut rec = AttemptRecord {
        recipients: b2[0].recipients.clone(),
        attempts: 1,
        next_attempt: now + 300,
        delay_notified: false,
    };
    rec.recipients[0].state = RecipientState::Delivered;
    // The stale owner can neither write results nor complete, and nothing changes.
    assert_eq!(
        h.queue
            .record_attempt(id, "node-a", now + 32, rec.clone())
            .await,
        Err(QueueError::LeaseLost(id))
    );
    assert_eq!(
        h.queue.complete(id, "node-a", now + 32).await,
        Err(QueueError::LeaseLost(id))
    );
    let e = h.queue.get(id).await.unwrap().unwrap();
    assert_eq!(e.attempts, 0);
    assert_eq!(e.recipients[0].state, RecipientState::Pending);
    assert_eq!(e.lease_owner.as_deref(), Some("node-b"));
    // Even the owner loses it once the lease has run out.
    assert_eq!(
        h.queue
            .record_attempt(id, "node-b", now + 62, rec.clone())
            .await,
        Err(QueueError::LeaseLost(id))
    );
    // A changed recipient list is refused.
    let mut bad = rec.clone();
    bad.recipients.pop();
    assert!(matches!(
        h.queue.record_attempt(id, "node-b", now + 40, bad).await,
        Err(QueueError::Invalid(_))
    ));
    h.queue
        .record_attempt(id, "node-b", now + 40, rec.clone())
        .await
        .unwrap();
    let e = h.queue.get(id).await.unwrap().unwrap();
    assert_eq!(e.recipients, rec.recipients);
    assert_eq!((e.attempts, e.next_attempt), (1, now + 300));
    assert_eq!((e.lease_owner, e.lease_until), (None, None));
    assert_eq!(
        h.queue.record_attempt(9_999_999, "x", now, rec).await,
        Err(QueueError::NotFound(9_999_999))
    );
    assert_eq!(
        h.queue.complete(9_999_999, "x", now).await,
        Err(QueueError::NotFound(9_999_999))
    );
}

async fn entry_survives_reopen(b: Backend) {
    let h = Harness::new(b).await;
    let now = 1_800_000_000;
    let raw = message("durable");
    let mut new = entry(raw.clone(), &["x@r.example", "y@r.example"], now);
    new.envid = Some("env-1".into());
    new.ret = Some(Ret::Hdrs);
    new.require_tls = true;
    new.recipients[1].notify = Notify::from_param(Some("NEVER"));
    new.recipients[1].orcpt = Some("rfc822;y@r.example".into());
    let id = h.queue.enqueue(new).await.unwrap();
    let leased = h.queue.lease_due("crashing", now, 60, 10).await.unwrap();
    assert_eq!(leased.len(), 1);
    let before = h.queue.get(id).await.unwrap().unwrap();

    // The node dies holding the lease; the restarted one finds the entry as it was.
    let h = h.reopen().await;
    let after = h.queue.get(id).await.unwrap().unwrap();
    assert_eq!(after, before);
    assert_eq!(h.queue.message(id).await.unwrap(), raw);
    assert_eq!(blob_files(h.blob_dir()).len(), 1, "startup sweep keeps it");
    assert!(
        h.queue
            .lease_due("restarted", now + 10, 60, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = h
        .queue
        .lease_due("restarted", now + 61, 60, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].envid.as_deref(), Some("env-1"));
    assert_eq!(again[0].ret, Some(Ret::Hdrs));
    assert!(again[0].require_tls);
    assert!(again[0].recipients[1].notify.never);
    h.queue.complete(id, "restarted", now + 62).await.unwrap();
    assert!(h.queue.get(id).await.unwrap().is_none());
    assert!(blob_files(h.blob_dir()).is_empty());
}

async fn blob_shared_with_mailbox_copy(b: Backend) {
    let h = Harness::new(b).await;
    let now = 1_800_000_000;
    let local = h.account("carol@example.org").await;
    let raw = message("shared");

    // Local copy first, then the queue entry: one file.
    let d = h
        .store
        .deliver(Delivery {
            raw: raw.clone(),
            internal_date: now,
            recipients: vec![local.id],
            junk: false,
        })
        .await
        .unwrap();
    let DeliveryResult::Stored(stored) = &d[0] else {
        panic!("{d:?}")
    };
    let id = h
        .queue
        .enqueue(entry(raw.clone(), &["bob@remote.example"], now))
        .await
        .unwrap();
    assert_eq!(blob_files(h.blob_dir()).len(), 1);
    h.queue.lease_due("w", now, 60, 10).await.unwrap();
    h.queue.complete(id, "w", now + 1).await.unwrap();
    assert_eq!(blob_files(h.blob_dir()).len(), 1, "mailbox copy keeps it");
    assert_eq!(h.store.message_raw(stored.message_id).await.unwrap(), raw);
    // A sweep must not take it either.
    h.store.sweep_orphans().await.unwrap();
    h.store
        .expunge_uids(stored.mailbox_id, &[stored.uid])
        .await
        .unwrap();
    assert!(blob_files(h.blob_dir()).is_empty(), "both gone, file gone");

    // Queue entry first, then the local copy goes before the entry does.
    let id = h
        .queue
        .enqueue(entry(raw.clone(), &["bob@remote.example"], now))
        .await
        .unwrap();
    let d = h
        .store
        .deliver(Delivery {
            raw: raw.clone(),
            internal_date: now,
            recipients: vec![local.id],
            junk: false,
        })
        .await
        .unwrap();
    let DeliveryResult::Stored(stored) = &d[0] else {
        panic!("{d:?}")
    };
    assert_eq!(blob_files(h.blob_dir()).len(), 1);
    h.store
        .expunge_uids(stored.mailbox_id, &[stored.uid])
        .await
        .unwrap();
    assert_eq!(blob_files(h.blob_dir()).len(), 1, "queue entry keeps it");
    assert_eq!(h.queue.message(id).await.unwrap(), raw);
    // Two entries with the same body share the file too.
    let id2 = h
        .queue
        .enqueue(entry(raw.clone(), &["dave@remote.example"], now))
        .await
        .unwrap();
    assert!(h.queue.drop_entry(id).await.unwrap());
    assert_eq!(h.queue.message(id2).await.unwrap(), raw);
    assert!(h.queue.drop_entry(id2).await.unwrap());
    assert!(!h.queue.drop_entry(id2).await.unwrap());
    assert!(blob_files(h.blob_dir()).is_empty());
    assert_eq!(h.queue.message(id2).await, Err(QueueError::NotFound(id2)));
}

async fn empty_recipient_list_is_invalid(b: Backend) {
    let h = Harness::new(b).await;
    let e = entry(message("nobody"), &[], 1_800_000_000);
    assert!(matches!(
        h.queue.enqueue(e).await,
        Err(QueueError::Invalid(_))
    ));
    assert!(h.queue.list().await.unwrap().is_empty());
    assert!(blob_files(h.blob_dir()).is_empty(), "nothing written");
}
