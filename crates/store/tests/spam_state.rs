//! The spam filter's state in the store, on SQLite and PostgreSQL alike: training counts (with
//! re-training instead of double counting), the training queue that moves into and out of Junk
//! and the $Junk/$NotJunk keywords fill, greylist rows, lists, correspondents and reputation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bytes::Bytes;
use wharf_store::*;
use wharf_testkit::store::store_account;
use wharf_testkit::{Backend, TestStore, on_both_backends};

on_both_backends!(threads = 2;
    training_counts_and_retraining,
    moves_into_and_out_of_junk_queue_training,
    junk_keywords_queue_training,
    greylist_lists_correspondents_and_reputation,
    pruning_and_the_training_queue_bound,
);

async fn open(b: Backend) -> (Arc<dyn Store>, TestStore) {
    let files = TestStore::new(b);
    (files.open().await, files)
}

fn message(n: u32) -> Bytes {
    Bytes::from(format!(
        "From: a@example.org\r\nSubject: m{n}\r\nMessage-ID: <{n}@example.org>\r\n\r\nbody {n}\r\n"
    ))
}

async fn training_counts_and_retraining(b: Backend) {
    let (s, _files) = open(b).await;
    let a = store_account(s.as_ref(), "a@example.com", 0).await;
    let other = store_account(s.as_ref(), "o@example.com", 0).await;
    let inbox = s.get_mailbox(a.id, "INBOX").await.unwrap().unwrap();
    let m = s
        .append(inbox.id, message(1), Flags::empty(), &[], 1_700_000_000)
        .await
        .unwrap();
    // A token listed twice counts once.
    let tokens = [11_i64, -22, 33, 11];
    assert!(
        s.spam_train(a.id, Some(m.message_id), true, &tokens)
            .await
            .unwrap()
    );
    assert!(
        !s.spam_train(a.id, Some(m.message_id), true, &tokens)
            .await
            .unwrap(),
        "the same verdict twice counts once"
    );
    let counts = s
        .spam_counts(&[0, a.id, other.id], &[11, -22, 44])
        .await
        .unwrap();
    assert_eq!(counts.len(), 3);
    for c in &counts[..2] {
        assert_eq!(
            (c.ham_messages, c.spam_messages),
            (0, 1),
            "model {}",
            c.model
        );
        assert_eq!(c.tokens.get(&11), Some(&(0, 1)));
        assert_eq!(c.tokens.get(&-22), Some(&(0, 1)));
        assert_eq!(c.tokens.get(&44), None);
    }
    assert_eq!(
        counts[2],
        SpamModelCounts {
            model: other.id,
            ..Default::default()
        }
    );
    // Moved out of Junk: unlearned as spam, learned as ham.
    assert!(
        s.spam_train(a.id, Some(m.message_id), false, &tokens)
            .await
            .unwrap()
    );
    let counts = s.spam_counts(&[a.id], &[11, 33]).await.unwrap();
    assert_eq!((counts[0].ham_messages, counts[0].spam_messages), (1, 0));
    assert_eq!(counts[0].tokens.get(&11), Some(&(1, 0)));
    assert_eq!(counts[0].tokens.get(&33), Some(&(1, 0)));
    // Files from outside the store always count.
    assert!(s.spam_train(a.id, None, false, &[33]).await.unwrap());
    assert!(s.spam_train(a.id, None, false, &[33]).await.unwrap());
    let counts = s.spam_counts(&[a.id], &[33]).await.unwrap();
    assert_eq!((counts[0].ham_messages, counts[0].spam_messages), (3, 0));
    assert_eq!(counts[0].tokens.get(&33), Some(&(3, 0)));
    // A deleted account takes its model along; the global model keeps what it learned.
    s.delete_account(a.id).await.unwrap();
    let counts = s.spam_counts(&[0, a.id], &[11]).await.unwrap();
    assert_eq!(counts[0].tokens.get(&11), Some(&(1, 0)));
    assert_eq!(
        counts[1],
        SpamModelCounts {
            model: a.id,
            ..Default::default()
        }
    );
}

async fn moves_into_and_out_of_junk_queue_training(b: Backend) {
    let (s, _files) = open(b).await;
    let a = store_account(s.as_ref(), "a@example.com", 0).await;
    let inbox = s.get_mailbox(a.id, "INBOX").await.unwrap().unwrap();
    let junk = s.get_mailbox(a.id, "Junk").await.unwrap().unwrap();
    let trash = s.get_mailbox(a.id, "Trash").await.unwrap().unwrap();
    let archive = s.get_mailbox(a.id, "Archive").await.unwrap().unwrap();
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(
            s.append(inbox.id, message(n), Flags::empty(), &[], 1_700_000_000)
                .await
                .unwrap(),
        );
    }
    // INBOX → Archive trains nothing.
    s.copy_messages(inbox.id, &[ids[2].uid], archive.id)
        .await
        .unwrap();
    assert!(s.take_spam_training(10).await.unwrap().is_empty());
    // INBOX → Junk: spam.
    let moved = s
        .move_messages(inbox.id, &[ids[0].uid, ids[1].uid], junk.id)
        .await
        .unwrap();
    let queued = s.take_spam_training(10).await.unwrap();
    assert_eq!(
        queued
            .iter()
            .map(|r| (r.account, r.message, r.spam))
            .collect::<Vec<_>>(),
        vec![
            (a.id, ids[0].message_id, true),
            (a.id, ids[1].message_id, true)
        ]
    );
    assert!(
        s.take_spam_training(10).await.unwrap().is_empty(),
        "taken once"
    );
    // Junk → Trash: throwing spam away is no ham verdict. Junk → INBOX is.
    s.move_messages(junk.id, &[moved.mapping[0].1], trash.id)
        .await
        .unwrap();
    assert!(s.take_spam_training(10).await.unwrap().is_empty());
    s.move_messages(junk.id, &[moved.mapping[1].1], inbox.id)
        .await
        .unwrap();
    let queued = s.take_spam_training(10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(
        (queued[0].message, queued[0].spam),
        (ids[1].message_id, false)
    );
    // Limits are honoured: take at most `limit`.
    s.queue_spam_training(a.id, &[ids[2].message_id; 5], true)
        .await
        .unwrap();
    assert_eq!(s.take_spam_training(3).await.unwrap().len(), 3);
    assert_eq!(s.take_spam_training(3).await.unwrap().len(), 2);
}

async fn junk_keywords_queue_training(b: Backend) {
    let (s, _files) = open(b).await;
    let a = store_account(s.as_ref(), "a@example.com", 0).await;
    let inbox = s.get_mailbox(a.id, "INBOX").await.unwrap().unwrap();
    let m = s
        .append(inbox.id, message(1), Flags::empty(), &[], 1_700_000_000)
        .await
        .unwrap();
    let store = |op, k: &'static str| {
        let s = s.clone();
        async move {
            s.store_flags(
                inbox.id,
                &[m.uid],
                op,
                Flags::empty(),
                &[k.to_string()],
                None,
            )
            .await
            .unwrap()
        }
    };
    store(FlagOp::Add, "$junk").await;
    let q = s.take_spam_training(10).await.unwrap();
    assert_eq!(q.len(), 1);
    assert!(q[0].spam);
    // Setting it again is no new verdict.
    store(FlagOp::Add, "$Junk").await;
    assert!(s.take_spam_training(10).await.unwrap().is_empty());
    store(FlagOp::Add, "$NotJunk").await;
    let q = s.take_spam_training(10).await.unwrap();
    assert_eq!(q.len(), 1);
    assert!(!q[0].spam);
}

async fn greylist_lists_correspondents_and_reputation(b: Backend) {
    let (s, _files) = open(b).await;
    let a = store_account(s.as_ref(), "a@example.com", 0).await;
    assert_eq!(s.greylist_entry("t1").await.unwrap(), None);
    let e = GreylistEntry {
        first_seen: 100,
        last_seen: 100,
        passed_until: 0,
    };
    s.put_greylist_entry("t1", &e).await.unwrap();
    assert_eq!(s.greylist_entry("t1").await.unwrap(), Some(e));
    let e2 = GreylistEntry {
        first_seen: 100,
        last_seen: 500,
        passed_until: 10_000,
    };
    s.put_greylist_entry("t1", &e2).await.unwrap();
    s.put_greylist_entry("t2", &e).await.unwrap();
    assert_eq!(
        s.prune_greylist(1_000).await.unwrap(),
        1,
        "t2 is stale, t1 still passes"
    );
    assert_eq!(s.greylist_entry("t1").await.unwrap(), Some(e2));

    let allow = SpamListEntry {
        scope: "Example.com".into(),
        entry: "@Partner.Example".into(),
        allow: true,
    };
    s.put_spam_list_entry(&allow).await.unwrap();
    let block = SpamListEntry {
        scope: "a@example.com".into(),
        entry: "x@spam.example".into(),
        allow: false,
    };
    s.put_spam_list_entry(&block).await.unwrap();
    let all = s.spam_list_entries(None).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].entry, "@partner.example", "stored lowercased");
    let mine = s
        .spam_list_entries(Some(&["a@example.com".to_string()]))
        .await
        .unwrap();
    assert_eq!(mine, vec![block.clone()]);
    assert!(s.spam_list_entries(Some(&[])).await.unwrap().is_empty());
    assert!(
        s.delete_spam_list_entry("a@example.com", "X@spam.example")
            .await
            .unwrap()
    );
    assert!(
        !s.delete_spam_list_entry("a@example.com", "x@spam.example")
            .await
            .unwrap()
    );

    assert!(
        !s.is_correspondent(a.id, "friend@example.net")
            .await
            .unwrap()
    );
    s.note_correspondents(a.id, &["Friend@Example.net".to_string()])
        .await
        .unwrap();
    assert!(
        s.is_correspondent(a.id, "friend@example.net")
            .await
            .unwrap()
    );
    // Envelope sender and From asked together: any one known is enough, case aside.
    let senders = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert!(
        s.any_correspondent(
            a.id,
            &senders(&["", "stranger@x.example", "FRIEND@example.net"])
        )
        .await
        .unwrap()
    );
    assert!(
        !s.any_correspondent(a.id, &senders(&["stranger@x.example", ""]))
            .await
            .unwrap()
    );
    assert!(!s.any_correspondent(a.id, &[]).await.unwrap());

    assert_eq!(s.spam_reputation("example.net").await.unwrap(), (0, 0));
    s.add_spam_reputation("Example.net", true).await.unwrap();
    s.add_spam_reputation("example.net", false).await.unwrap();
    s.add_spam_reputation("example.net", false).await.unwrap();
    assert_eq!(s.spam_reputation("example.net").await.unwrap(), (2, 1));
}

async fn pruning_and_the_training_queue_bound(b: Backend) {
    let (s, _files) = open(b).await;
    let a = store_account(s.as_ref(), "a@example.com", 0).await;
    let now = chrono::Utc::now().timestamp();
    // 7 once, 8 twice; 9 learned and unlearned back to zero.
    s.spam_train(a.id, None, true, &[7, 8, 9]).await.unwrap();
    s.spam_train(a.id, None, true, &[8]).await.unwrap();
    let inbox = s.get_mailbox(a.id, "INBOX").await.unwrap().unwrap();
    let m = s
        .append(inbox.id, message(9), Flags::empty(), &[], 1_700_000_000)
        .await
        .unwrap();
    s.spam_train(a.id, Some(m.message_id), true, &[9])
        .await
        .unwrap();
    s.spam_train(a.id, Some(m.message_id), false, &[9])
        .await
        .unwrap();
    s.add_spam_reputation("old.example", true).await.unwrap();
    // Nothing is old yet: only what counts for nothing goes.
    s.prune_spam_state(now - 3600).await.unwrap();
    let c = s.spam_counts(&[a.id], &[7, 8, 9]).await.unwrap();
    assert_eq!(c[0].tokens.get(&7), Some(&(0, 1)));
    assert_eq!(c[0].tokens.get(&9), Some(&(1, 1)), "9 is ham once now");
    // Later: tokens seen once go, tokens seen twice stay, old reputations go.
    assert!(s.prune_spam_state(now + 3600).await.unwrap() >= 3);
    let c = s.spam_counts(&[a.id], &[7, 8, 9]).await.unwrap();
    assert_eq!(c[0].tokens.get(&7), None);
    assert_eq!(c[0].tokens.get(&8), Some(&(0, 2)));
    assert_eq!(s.spam_reputation("old.example").await.unwrap(), (0, 0));

    // The queue of one account is bounded.
    let ids = vec![m.message_id; wharf_store::MAX_TRAINING_PER_CHANGE];
    for _ in 0..4 {
        s.queue_spam_training(a.id, &ids, true).await.unwrap();
    }
    s.queue_spam_training(a.id, &ids[..10], true).await.unwrap();
    let mut taken = 0;
    loop {
        let n = s.take_spam_training(5_000).await.unwrap().len();
        if n == 0 {
            break;
        }
        taken += n;
    }
    assert_eq!(taken as i64, wharf_store::MAX_PENDING_TRAINING);
}
