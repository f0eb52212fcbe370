//! Blob lifecycle across processes and nodes (issue 19, item 1): two stores opened on the same
//! database and blob folder stand for two Wharf nodes on PostgreSQL, or for the server and
//! `wharf import` on one SQLite file. They share nothing in memory, so whatever keeps a body
//! alive must live in the database.
//!
//! The race: node A stores bytes identical to a message node B is expunging (its last
//! reference). A finds the blob file present and relies on it while B drops the last reference
//! and deletes the file; A must never answer OK for a body that is gone.
//!
//! Rounds: `WHARF_BLOB_RACE_ROUNDS` (default 1,000 per backend; the closing note of issue 19
//! gives the 10,000-round runs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bytes::Bytes;
use wharf_store::*;
use wharf_testkit::store::{blob_files, store_account};
use wharf_testkit::{Backend, TestStore, on_both_backends};

fn rounds() -> usize {
    std::env::var("WHARF_BLOB_RACE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}

fn body(round: usize) -> Bytes {
    Bytes::from(format!(
        "From: a@example.com\r\nTo: b@example.com\r\nSubject: round {round}\r\n\
         Message-ID: <race-{round}@example.com>\r\n\r\nsame bytes on both nodes, round {round}\r\n"
    ))
}

async fn inbox(store: &dyn Store, account: AccountId) -> MailboxId {
    store
        .get_mailbox(account, "INBOX")
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn append_races_expunge_of_the_same_bytes(b: Backend) {
    let files = TestStore::new(b);
    let node_a: Arc<dyn Store> = files.open().await;
    let node_b: Arc<dyn Store> = files.open().await;
    let alice = store_account(node_a.as_ref(), "alice@example.com", 0).await;
    let bob = store_account(node_a.as_ref(), "bob@example.com", 0).await;
    let alice_inbox = inbox(node_a.as_ref(), alice.id).await;
    let bob_inbox = inbox(node_b.as_ref(), bob.id).await;
    let n = rounds();
    let mut lost = Vec::new();
    for round in 0..n {
        let raw = body(round);
        // Bob holds the only copy; node B expunges it while node A appends the same bytes.
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
        let appended = match appended {
            Ok(a) => a,
            // Refusing is allowed (the client retries); answering OK for a lost body is not.
            Err(e) => {
                eprintln!("round {round}: append refused: {e}");
                continue;
            }
        };
        let entry = node_a
            .mailbox_index(alice_inbox)
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.uid == appended.uid)
            .unwrap();
        match node_a.message_raw(entry.message_id).await {
            Ok(got) if got == raw => {}
            other => lost.push((round, format!("{other:?}"))),
        }
        // Alice's copy goes too, so every round starts from a store without the bytes.
        node_a
            .expunge_uids(alice_inbox, &[appended.uid])
            .await
            .unwrap();
    }
    assert!(
        lost.is_empty(),
        "{} of {n} rounds lost the body; first: {:?}",
        lost.len(),
        lost.first()
    );
    // Everything was expunged: once the grace period (zero here) is over, no file is left.
    node_a.sweep_orphans().await.unwrap();
    assert_eq!(
        blob_files(files.blob_dir()),
        Vec::<std::path::PathBuf>::new()
    );
}

on_both_backends!(append_races_expunge_of_the_same_bytes);
