//! IMAP METADATA entries (RFC 5464) in the store, on SQLite and on PostgreSQL: set, replace,
//! delete, case-insensitive names, binary values, the limits (also against two writers at
//! once), and entries following their mailbox through RENAME and DELETE.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use wharf_store::*;
use wharf_testkit::store::store_account;
use wharf_testkit::{Backend, TestStore, on_both_backends};

on_both_backends!(threads = 2;
    metadata_entries_round_trip_and_follow_their_mailbox,
    metadata_limits_hold_against_concurrent_writers,
);

async fn open(b: Backend) -> (Arc<dyn Store>, TestStore) {
    let files = TestStore::new(b);
    (files.open().await, files)
}

fn set(name: &str, v: &[u8]) -> (String, Option<Vec<u8>>) {
    (name.to_string(), Some(v.to_vec()))
}

async fn metadata_entries_round_trip_and_follow_their_mailbox(b: Backend) {
    let (store, _files) = open(b).await;
    let limits = MetadataLimits::default();
    let a = store_account(store.as_ref(), "meta@example.org", 0).await;
    let other = store_account(store.as_ref(), "other@example.org", 0).await;
    let mb = store.create_mailbox(a.id, "Work", None).await.unwrap();

    // Server and mailbox entries are apart; names fold to lower case; values are octets.
    store
        .set_metadata(
            a.id,
            None,
            &[set("/shared/Comment", b"server note")],
            &limits,
        )
        .await
        .unwrap();
    store
        .set_metadata(
            a.id,
            Some(mb.id),
            &[
                set("/private/comment", b"mine"),
                set("/shared/vendor/x/bin", b"a\0b\r\n\xff"),
            ],
            &limits,
        )
        .await
        .unwrap();
    assert_eq!(
        store.get_metadata(a.id, None).await.unwrap(),
        vec![("/shared/comment".to_string(), b"server note".to_vec())]
    );
    assert_eq!(
        store.get_metadata(a.id, Some(mb.id)).await.unwrap(),
        vec![
            ("/private/comment".to_string(), b"mine".to_vec()),
            ("/shared/vendor/x/bin".to_string(), b"a\0b\r\n\xff".to_vec()),
        ]
    );
    // Replace and delete in one call.
    store
        .set_metadata(
            a.id,
            Some(mb.id),
            &[
                set("/PRIVATE/COMMENT", b"changed"),
                ("/shared/vendor/x/bin".into(), None),
            ],
            &limits,
        )
        .await
        .unwrap();
    assert_eq!(
        store.get_metadata(a.id, Some(mb.id)).await.unwrap(),
        vec![("/private/comment".to_string(), b"changed".to_vec())]
    );
    // Another account sees none of it and cannot write to this mailbox.
    assert!(store.get_metadata(other.id, None).await.unwrap().is_empty());
    assert!(matches!(
        store
            .set_metadata(other.id, Some(mb.id), &[set("/private/x", b"1")], &limits)
            .await,
        Err(StoreError::NotFound(_))
    ));

    // RENAME carries the entries (and the children's).
    let child = store.create_mailbox(a.id, "Work/Sub", None).await.unwrap();
    store
        .set_metadata(a.id, Some(child.id), &[set("/private/c", b"sub")], &limits)
        .await
        .unwrap();
    store.rename_mailbox(a.id, mb.id, "Job").await.unwrap();
    let job = store.get_mailbox(a.id, "Job").await.unwrap().unwrap();
    assert_eq!(
        store.get_metadata(a.id, Some(job.id)).await.unwrap().len(),
        1
    );
    let sub = store.get_mailbox(a.id, "Job/Sub").await.unwrap().unwrap();
    assert_eq!(
        store.get_metadata(a.id, Some(sub.id)).await.unwrap(),
        vec![("/private/c".to_string(), b"sub".to_vec())]
    );

    // DELETE drops them; a mailbox re-created under the name starts empty, even if the backend
    // reuses the row id.
    store.delete_mailbox(a.id, job.id).await.unwrap();
    let again = store.create_mailbox(a.id, "Job", None).await.unwrap();
    assert!(
        store
            .get_metadata(a.id, Some(again.id))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store
            .set_metadata(a.id, Some(job.id), &[set("/private/x", b"1")], &limits)
            .await,
        Err(StoreError::NotFound(_))
    ));
    // The server entries stay, and go with the account.
    assert_eq!(store.get_metadata(a.id, None).await.unwrap().len(), 1);
    store.delete_account(a.id).await.unwrap();
    assert!(store.get_metadata(a.id, None).await.unwrap().is_empty());
}

async fn metadata_limits_hold_against_concurrent_writers(b: Backend) {
    let (store, _files) = open(b).await;
    let a = store_account(store.as_ref(), "limits@example.org", 0).await;
    let inbox = store.get_mailbox(a.id, "INBOX").await.unwrap().unwrap();
    let limits = MetadataLimits {
        max_value: 100,
        max_entries_per_mailbox: 3,
        max_entries: 4,
        max_bytes: 1000,
    };
    let too_big = store
        .set_metadata(a.id, None, &[set("/private/big", &[b'x'; 101])], &limits)
        .await;
    assert!(matches!(too_big, Err(StoreError::Limit(_))), "{too_big:?}");

    // Twenty writers race for three places in INBOX: exactly three win.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .set_metadata(
                    a.id,
                    Some(inbox.id),
                    &[set(&format!("/private/k{i}"), b"v")],
                    &limits,
                )
                .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::Limit(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(won, 3);
    assert_eq!(
        store
            .get_metadata(a.id, Some(inbox.id))
            .await
            .unwrap()
            .len(),
        3
    );
    // A refused call leaves nothing behind, even the entries it would have set first.
    let r = store
        .set_metadata(
            a.id,
            None,
            &[set("/private/s1", b"1"), set("/private/s2", b"2")],
            &limits,
        )
        .await;
    assert!(matches!(r, Err(StoreError::Limit(_))), "{r:?}");
    assert!(store.get_metadata(a.id, None).await.unwrap().is_empty());
    // Deleting makes room within the same call; replacing does not count twice.
    let inbox_entries = store.get_metadata(a.id, Some(inbox.id)).await.unwrap();
    store
        .set_metadata(
            a.id,
            Some(inbox.id),
            &[
                (inbox_entries[0].0.clone(), None),
                set("/private/new", b"n"),
            ],
            &limits,
        )
        .await
        .unwrap();
    store
        .set_metadata(
            a.id,
            Some(inbox.id),
            &[set("/private/new", b"again")],
            &limits,
        )
        .await
        .unwrap();
    // The account's octets: names and values together.
    let small = MetadataLimits {
        max_bytes: 60,
        ..limits
    };
    let r = store
        .set_metadata(a.id, None, &[set("/private/long", &[b'y'; 40])], &small)
        .await;
    assert!(matches!(r, Err(StoreError::Limit(_))), "{r:?}");
}
