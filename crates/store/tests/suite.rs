//! The store contract, run once against the embedded SQLite backend and once against PostgreSQL
//! (127.0.0.1:5432, user postgres; each test creates and drops its own database).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sqlx::Connection;
use wharf_store::*;
use wharf_testkit::store::{blob_files, store_account};
use wharf_testkit::{Backend, TestStore, on_both_backends};

struct Harness {
    store: Arc<dyn Store>,
    // Dropped after `store` (field order): the database and directory outlive the handle.
    files: TestStore,
}

impl Harness {
    async fn new(backend: Backend) -> Harness {
        let files = TestStore::new(backend);
        Harness {
            store: files.open().await,
            files,
        }
    }

    /// Closes the store and opens it again, as after a restart: alone with its files again, the
    /// new store runs the immediate orphan sweep.
    async fn reopen(self) -> Harness {
        let Harness { store, files } = self;
        drop(store);
        // The writer task drops the last handle on the files (and their lock) once it sees its
        // queue closed.
        tokio::time::sleep(Duration::from_millis(300)).await;
        Harness {
            store: files.open().await,
            files,
        }
    }

    fn blob_dir(&self) -> &Path {
        self.files.blob_dir()
    }

    async fn account(&self, address: &str, quota: i64) -> Account {
        store_account(self.store.as_ref(), address, quota).await
    }

    async fn mailbox(&self, account: AccountId, name: &str) -> Mailbox {
        self.store
            .get_mailbox(account, name)
            .await
            .unwrap()
            .unwrap()
    }

    async fn append(&self, mailbox: MailboxId, raw: Bytes) -> AppendOutcome {
        self.store
            .append(mailbox, raw, Flags::empty(), &[], 1_700_000_000)
            .await
            .unwrap()
    }
}

fn message(subject: &str, body: &str) -> Bytes {
    Bytes::from(format!(
        "From: Alice Example <alice@example.org>\r\nTo: bob@example.com\r\nSubject: {subject}\r\n\
         Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <{subject}@example.org>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ))
}

fn tmp_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("tmp"))
        .map(|r| r.count())
        .unwrap_or(0)
}

on_both_backends!(threads = 4;
    directory_rows,
    uids_never_reused_under_concurrent_appenders,
    modseq_strictly_increases,
    expunge_leaves_tombstones,
    tombstones_past_the_horizon_are_pruned,
    rename_keeps_uidvalidity,
    subscriptions_are_names,
    sieve_scripts_and_tracking,
    nodes_register_beat_and_leave,
    node_state_values_leases_and_failure_counts,
    message_ids_are_never_given_twice,
    an_expunged_message_stays_readable_for_the_grace_period,
    recreated_mailbox_gets_new_uidvalidity,
    blob_refcounts_reach_zero,
    crash_leftovers_are_swept_on_open,
    group_commit_delivers_exactly_once,
    store_flags_unchanged_since,
    relaxed_flag_commits_persist_and_durable_writes_follow,
    claim_recent_exactly_once,
    a_store_of_many_messages_changes_each_once,
    recent_claims_follow_new_mail_and_status_agrees,
    recreated_mailbox_has_its_own_recent,
    search_text_is_substring_exact,
    search_text_by_index_or_by_scan_agree,
    search_text_covers_every_header_field,
    search_text_folds_case_and_diacritics,
    search_text_known_answers_for_every_field,
    header_text_of_older_messages_is_backfilled,
    quota_is_enforced,
    maildrop_lock_exclusive_and_expiring,
    events_are_published,
    mixed_concurrent_writers_never_deadlock,
    keyset_pages_walk_every_row_once,
);

/// Walks `page(after, 2)` to the end: every row once, in the order of the whole list.
async fn walk<T: Clone + PartialEq + std::fmt::Debug, K>(
    whole: Vec<T>,
    key: impl Fn(&T) -> K,
    mut page: impl AsyncFnMut(Option<K>, usize) -> Vec<T>,
) {
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let rows = page(after.take(), 2).await;
        assert!(rows.len() <= 2);
        let Some(last) = rows.last() else { break };
        after = Some(key(last));
        seen.extend(rows);
    }
    assert_eq!(seen, whole);
}

async fn keyset_pages_walk_every_row_once(b: Backend) {
    let h = Harness::new(b).await;
    let s = h.store.as_ref();
    for d in ["b.test", "a.test", "c.test"] {
        s.create_domain(d).await.unwrap();
    }
    for a in [
        "Zed@a.test",
        "amy@a.test",
        "Bob@b.test",
        "bea@b.test",
        "x@c.test",
    ] {
        h.account(a, 0).await;
    }
    let domains = s.list_domains().await.unwrap();
    walk(
        domains,
        |d| d.name.clone(),
        async |after: Option<String>, n| s.list_domains_page(after.as_deref(), n).await.unwrap(),
    )
    .await;
    let key = |a: &Account| {
        let (local, domain) = a.address.rsplit_once('@').unwrap();
        (domain.to_string(), local.to_lowercase())
    };
    for domain in [None, Some("b.test")] {
        let accounts = s.list_accounts(domain).await.unwrap();
        walk(accounts, key, async |after: Option<(String, String)>, n| {
            let after = after.as_ref().map(|(d, l)| (d.as_str(), l.as_str()));
            s.list_accounts_page(domain, after, n).await.unwrap()
        })
        .await;
    }
    // Several targets per address: the page boundary falls inside one address.
    for (a, t) in [
        ("sales@a.test", "amy@a.test"),
        ("sales@a.test", "zed@a.test"),
        ("sales@a.test", "x@c.test"),
        ("@b.test", "bob@b.test"),
        ("info@c.test", "x@c.test"),
    ] {
        s.add_alias(a, t).await.unwrap();
    }
    let aliases = s.list_aliases().await.unwrap();
    assert_eq!(aliases.len(), 5);
    let alias_key = |a: &Alias| (a.address.clone(), a.target.clone());
    walk(
        aliases,
        alias_key,
        async |after: Option<(String, String)>, n| {
            let after = after.as_ref().map(|(a, t)| (a.as_str(), t.as_str()));
            s.list_aliases_page(after, n).await.unwrap()
        },
    )
    .await;
    for (scope, entry) in [
        ("a.test", "x.example"),
        ("a.test", "y.example"),
        ("a.test", "@z.example"),
        ("b.test", "x.example"),
        ("bob@b.test", "w.example"),
    ] {
        s.put_spam_list_entry(&SpamListEntry {
            scope: scope.into(),
            entry: entry.into(),
            allow: false,
        })
        .await
        .unwrap();
    }
    for scope in [None, Some("a.test")] {
        let scopes = scope.map(|x: &str| vec![x.to_string()]);
        let entries = s.spam_list_entries(scopes.as_deref()).await.unwrap();
        let key = |e: &SpamListEntry| (e.scope.clone(), e.entry.clone());
        walk(entries, key, async |after: Option<(String, String)>, n| {
            let after = after.as_ref().map(|(a, t)| (a.as_str(), t.as_str()));
            s.spam_list_entries_page(scope, after, n).await.unwrap()
        })
        .await;
    }
}

async fn directory_rows(b: Backend) {
    let h = Harness::new(b).await;
    let s = &h.store;
    s.create_domain("Example.COM").await.unwrap();
    assert!(matches!(
        s.create_domain("example.com").await,
        Err(StoreError::AlreadyExists(_))
    ));
    let a = h.account("Bob@EXAMPLE.com", 0).await;
    assert_eq!(a.address, "Bob@example.com");
    let found = s
        .get_account_by_address("bob@example.COM")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, a.id);
    assert!(matches!(
        s.create_account(NewAccount {
            address: "BOB@example.com".into(),
            secret_hash: "x".into(),
            scram_sha256: String::new(),
            quota_bytes: 0
        })
        .await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(
        s.create_account(NewAccount {
            address: "x@nowhere.test".into(),
            secret_hash: "x".into(),
            scram_sha256: String::new(),
            quota_bytes: 0
        })
        .await,
        Err(StoreError::NotFound(_))
    ));
    let names: Vec<String> = s
        .list_mailboxes(a.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    for (n, _) in DEFAULT_MAILBOXES {
        assert!(names.contains(&n.to_string()), "{n} missing from {names:?}");
    }
    let sent = h.mailbox(a.id, "Sent").await;
    assert_eq!(sent.special_use, Some(SpecialUse::Sent));
    assert_eq!(h.mailbox(a.id, "inbox").await.name, "INBOX");

    s.set_account_secret(a.id, "h2", "scram").await.unwrap();
    s.set_account_quota(a.id, 5000).await.unwrap();
    s.set_account_disabled(a.id, true).await.unwrap();
    s.set_account_pop3_expire(a.id, Some(7)).await.unwrap();
    let a2 = s.get_account(a.id).await.unwrap().unwrap();
    assert_eq!(
        (a2.secret_hash.as_str(), a2.scram_sha256.as_str()),
        ("h2", "scram")
    );
    assert_eq!(
        (a2.quota_bytes, a2.disabled, a2.pop3_expire_days),
        (5000, true, Some(7))
    );

    s.add_alias("Sales@Example.com", "bob@example.com")
        .await
        .unwrap();
    s.add_alias("sales@example.com", "carol@elsewhere.test")
        .await
        .unwrap();
    s.add_alias("@example.com", "bob@example.com")
        .await
        .unwrap();
    assert_eq!(s.alias_targets("SALES@example.com").await.unwrap().len(), 2);
    assert_eq!(s.list_aliases().await.unwrap().len(), 3);
    s.delete_alias("sales@example.com", Some("carol@elsewhere.test"))
        .await
        .unwrap();
    assert_eq!(
        s.alias_targets("sales@example.com").await.unwrap(),
        vec!["bob@example.com".to_string()]
    );

    assert!(matches!(
        s.delete_domain("example.com").await,
        Err(StoreError::Invalid(_))
    ));
    s.delete_account(a.id).await.unwrap();
    assert!(s.get_account(a.id).await.unwrap().is_none());
    s.delete_alias("sales@example.com", None).await.unwrap();
    s.delete_alias("@example.com", None).await.unwrap();
    s.delete_domain("example.com").await.unwrap();
    assert!(s.list_domains().await.unwrap().is_empty());
}

async fn uids_never_reused_under_concurrent_appenders(b: Backend) {
    let h = Harness::new(b).await;
    let a = h.account("u@example.com", 0).await;
    let inbox = h.mailbox(a.id, "INBOX").await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = h.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut uids = Vec::new();
            for i in 0..25 {
                let o = store
                    .append(
                        inbox.id,
                        message(&format!("t{t}-{i}"), "x"),
                        Flags::empty(),
                        &[],
                        1_700_000_000,
                    )
                    .await
                    .unwrap();
                assert_eq!(o.uid_validity, inbox.uid_validity);
                uids.push(o.uid);
            }
            uids
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let uids = t.await.unwrap();
        assert!(
            uids.windows(2).all(|w| w[0] < w[1]),
            "one appender's UIDs must increase: {uids:?}"
        );
        all.extend(uids);
    }
    let set: BTreeSet<Uid> = all.iter().copied().collect();
    assert_eq!(set.len(), 200);
    assert_eq!(set, (1..=200).collect());
    let index = h.store.mailbox_index(inbox.id).await.unwrap();
    assert_eq!(index.iter().map(|e| e.uid).collect::<BTreeSet<_>>(), set);

    // Expunge the top UIDs: the next append must still go above them.
    let top: Vec<Uid> = (190..=200).collect();
    h.store.expunge_uids(inbox.id, &top).await.unwrap();
    let o = h.append(inbox.id, message("after", "x")).await;
    assert_eq!(o.uid, 201);
    assert_eq!(
        h.store.mailbox_status(inbox.id).await.unwrap().uid_next,
        202
    );
}

async fn modseq_strictly_increases(b: Backend) {
    let h = Harness::new(b).await;
    let a = h.account("m@example.com", 0).await;
    let inbox = h.mailbox(a.id, "INBOX").await;
    let archive = h.mailbox(a.id, "Archive").await;
    let mut last = h
        .store
        .mailbox_status(inbox.id)
        .await
        .unwrap()
        .highest_modseq;
    let mut step = |now: ModSeq, what: &str| {
        assert!(now > last, "{what}: modseq {now} not above {last}");
        last = now;
    };
    let o1 = h.append(inbox.id, message("one", "x")).await;
    step(o1.modseq, "append");
    let o2 = h.append(inbox.id, message("two", "x")).await;
    step(o2.modseq, "append");
    let (up, _) = h
        .store
        .store_flags(
            inbox.id,
            &[o1.uid],
            FlagOp::Add,
            Flags::SEEN,
            &["$Work".into()],
            None,
        )
        .await
        .unwrap();
    step(up[0].modseq, "store");
    assert_eq!(up[0].keywords, vec!["$Work".to_string()]);
    h.store
        .copy_messages(inbox.id, &[o1.uid], archive.id)
        .await
        .unwrap();
    h.store
        .move_messages(inbox.id, &[o2.uid], archive.id)
        .await
        .unwrap();
    let st = h.store.mailbox_status(inbox.id).await.unwrap();
    step(st.highest_modseq, "move out");
    h.store
        .store_flags(inbox.id, &[o1.uid], FlagOp::Add, Flags::DELETED, &[], None)
        .await
        .unwrap();
    let st = h.store.mailbox_status(inbox.id).await.unwrap();
    step(st.highest_modseq, "store deleted");
    h.store.expunge(inbox.id, None).await.unwrap();
    let st = h.store.mailbox_status(inbox.id).await.unwrap();
    step(st.highest_modseq, "expunge");
    // Per-row modseqs in the index never exceed the mailbox's.
    let arch = h.store.mailbox_status(archive.id).await.unwrap();
    for e in h.store.mailbox_index(archive.id).await.unwrap() {
        assert!(e.modseq <= arch.highest_modseq);
    }
}

async fn expunge_leaves_tombstones(b: Backend) {
    let h = Harness::new(b).await;
    let a = h.account("e@example.com", 0).await;
    let inbox = h.mailbox(a.id, "INBOX").await;
    for i in 0..4 {
        h.append(inbox.id, message(&format!("m{i}"), "x")).await;
    }
    h.store
        .store_flags(inbox.id, &[2, 3], FlagOp::Add, Flags::DELETED, &[], None)
        .await
        .unwrap();
    let before = h
        .store
        .mailbox_status(inbox.id)
        .await
        .unwrap()
        .highest_modseq;
    // Restricted to UID 3 (UID EXPUNGE): UID 2 stays.
    assert_eq!(
        h.store.expunge(inbox.id, Some(&[3, 4])).await.unwrap(),
        vec![3]
    );
    assert_eq!(h.store.expunge(inbox.id, None).await.unwrap(), vec![2]);
    let ch = h.store.changes_since(inbox.id, before).await.unwrap();
    assert_eq!(ch.expunged, vec![2, 3]);
    assert!(ch.changed.is_empty());
    let now = h.store.mailbox_status(inbox.id).await.unwrap();
    assert_eq!(ch.highest_modseq, now.highest_modseq);
    assert_eq!(now.messages, 2);
    let ch = h
        .store
        .changes_since(inbox.id, now.highest_modseq)
        .await
        .unwrap();
    assert!(ch.expunged.is_empty() && ch.changed.is_empty());
    // POP3 expunge ignores flags.
    assert_eq!(
        h.store.expunge_uids(inbox.id, &[1, 99]).await.unwrap(),
        vec![1]
    );
    let ch = h.store.changes_since(inbox.id, 0).await.unwrap();
    assert_eq!(ch.expunged, vec![1, 2, 3]);
    assert_eq!(
        ch.changed.iter().map(|e| e.uid).collect::<Vec<_>>(),
        vec![4]
    );
}

async fn tombstones_past_the_horizon_are_pruned(b: Backend) {
    let h = Harness::new(b).await;
    let a = h.account("t@example.com", 0).await;
    let inbox = h.mailbox(a.id, "INBOX").await;
    let s = &h.store;
    let mut uids = Vec::new();
    for i in 0..3 {
        uids.push(h.append(inbox.id, message(&format!("t{i}"), "x")).await.uid);
    }
    let start = s.changes_since(inbox.id, 0).await.unwrap().highest_modseq;
    s.store_flags(inbox.id, &uids[..2], FlagOp::Add, Flags::DELETED, &[], None)
        .await
        .unwrap();
    assert_eq!(s.expunge(inbox.id, None).await.unwrap(), uids[..2].to_vec());
    let ch = s.changes_since(inbox.id, start).await.unwrap();
    assert_eq!(
        (ch.expunged.clone(), ch.expunged_complete),
        (uids[..2].to_vec(), true)
    );
    // Within the horizon nothing goes.
    assert_eq!(
        s.prune_tombstones(Duration::from_secs(3600)).await.unwrap(),
        0
    );
    // Aged past it (as if expunged long ago), they go, and the mailbox remembers up to where.
    raw_sql(&h, "UPDATE expunged SET expunged_at = 1000").await;
    assert_eq!(
        s.prune_tombstones(Duration::from_secs(3600)).await.unwrap(),
        2
    );
    let ch = s.changes_since(inbox.id, start).await.unwrap();
    assert!(ch.expunged.is_empty() && !ch.expunged_complete, "{ch:?}");
    let ch = s.changes_since(inbox.id, ch.highest_modseq).await.unwrap();
    assert!(ch.expunged_complete, "{ch:?}");
    // A later expunge is known exactly again from a point past the floor.
    let since = ch.highest_modseq;
    s.store_flags(inbox.id, &uids[2..], FlagOp::Add, Flags::DELETED, &[], None)
        .await
        .unwrap();
    s.expunge(inbox.id, None).await.unwrap();
    let ch = s.changes_since(inbox.id, since).await.unwrap();
    assert_eq!(
        (ch.expunged, ch.expunged_complete),
        (uids[2..].to_vec(), true)
    );
}

async fn rename_keeps_uidvalidity(b: Backend) {
    let h = Harness::new(b).await;
    let a = h.account("r@example.com", 0).await;
    let s = &h.store;
    let top = s.create_mailbox(a.id, "Projects", None).await.unwrap();
    let child = s
        .create_mailbox(a.id, "Projects/Wharf", None)
        .await
        .unwrap();
    let grandchild = s
        .create_mailbox(a.id, "Projects/Wharf/2026", None)
        .await
        .unwrap();
    s.create_mailbox(a.id, "ProjectsOld", None).await.unwrap();
    let o = h.append(child.id, message("kept", "x")).await;
    s.rename_mailbox(a.id, top.id, "Work").await.unwrap();
    let w = h.mailbox(a.id, "Work").await;
    assert_eq!((w.id, w.uid_validity), (top.id, top.uid_validity));
    let wc = h.mailbox(a.id, "Work/Wharf").await;
    assert_eq!((wc.id, wc.uid_validity), (child.id, child.uid_validity));
    let wg = h.mailbox(a.id, "Work/Wharf/2026").await;
    assert_eq!(wg.id, grandchild.id);
    assert!(s.get_mailbox(a.id, "Projects").await.unwrap().is_none());
    assert!(
        s.get_mailbox(a.id, "ProjectsOld").await.unwrap().is_some(),
        "a sibling with a common prefix is no child"
    );
    assert_eq!(s.mailbox_index(wc.id).await.unwrap()[0].uid, o.uid);
    // Into its own subtree, and onto an existing name.
    s.rename_mailbox(a.id, w.id, "Work/Inner").await.unwrap();
    assert_eq!(h.mailbox(a.id, "Work/Inner/Wharf").await.id, child.id);
    assert!(matches!(
        s.rename_mailbox(a.id, child.id, "Archive").await,
        Err(StoreError::AlreadyExists(_))
    ));
    let inbox = h.mailbox(a.id, "INBOX").await;
    assert!(s.rename_mailbox(a.id, inbox.id, "Old").await.is_err());
}

/// A session that has not yet heard of an expunge still names the message by its id: that id
/// must never come back for another message (SQLite's rowid would reuse the newest one).
/// Within the blob grace period an expunged message is still read by its id, as a session that
/// has not yet heard of the expunge asks for it (FETCH answers instead of NO [EXPUNGEISSUED]);
/// after it, it is not found.
async fn an_expunged_message_stays_readable_for_the_grace_period(b: Backend) {
    let mut files = TestStore::new(b);
    files.config.blob_grace = Duration::from_secs(900);
    let h = Harness {
        store: files.open().await,
        files,
    };
    let a = h.account("late@example.com", 0).await;
    let inbox = h.mailbox(a.id, "INBOX").await;
    let s = &h.store;
    let raw = message("going", "still here");
    let o = h.append(inbox.id, raw.clone()).await;
    let id = s.mailbox_index(inbox.id).await.unwrap()[0].message_id;
    let before = s.message_contents(&[id], true, false).await.unwrap();
    let before_summary = before[0].as_ref().unwrap().summary.clone();
    s.store_flags(inbox.id, &[o.uid], FlagOp::Add, Flags::DELETED, &[], None)
        .await
        .unwrap();
    s.expunge(inbox.id, None).await.unwrap();
    assert!(s.mailbox_index(inbox.id).await.unwrap().is_empty());
    let got = s.message_contents(&[id], true, true).await.unwrap();
    let c = got[0].as_ref().unwrap();
    assert_eq!(c.raw.as_ref().unwrap(), &raw);
    assert_eq!(
        c.summary, before_summary,
        "the summary is made again the same"
    );
    assert_eq!(s.message_raw(id).await.unwrap(), raw);
    let (len, _) = s.open_message(id, 0).await.unwrap();
    assert_eq!(len, raw.len() as u64);
    // Past the grace period the sweep forgets it.
    raw_sql(&h, "UPDATE released_messages SET released_at = 1000").await;
    s.sweep_orphans().await.unwrap();
    let got = s.message_contents(&[id], true, true).await.unwrap();
    assert!(matches!(got[0], Err(StoreError::NotFound(_))), "{got:?}");
}

async fn message_ids_are_never_given_twice(b: Backend) {
    let h = Harness::new(b).await;
    let a = h.account("ids@example.com", 0).await;
    let other = h.account("other-ids@example.com", 0).await;
    let inbox = h.mailbox(a.id, "INBOX").await;
    let theirs = h.mailbox(other.id, "INBOX").await;
    let s = &h.store;
    h.append(inbox.id, message("first", "x")).await;
    let newest = h.append(inbox.id, message("newest", "y")).await;
    let newest_id = s.mailbox_index(inbox.id).await.unwrap()[1].message_id;
    s.store_flags(
        inbox.id,
        &[newest.uid],
        FlagOp::Add,
        Flags::DELETED,
        &[],
        None,
    )
    .await
    .unwrap();
    s.expunge(inbox.id, None).await.unwrap();
    // The next message, of another account, gets a new id; the old one names nothing.
    h.append(theirs.id, message("someone else's", "z")).await;
    let next_id = s.mailbox_index(theirs.id).await.unwrap()[0].message_id;
    assert!(next_id > newest_id, "{next_id} after {newest_id}");
    let got = s.message_contents(&[newest_id], true, false).await.unwrap();
    assert!(matches!(got[0], Err(StoreError::NotFound(_))), "{got:?}");
}

async fn nodes_register_beat_and_leave(b: Backend) {
    let h = Harness::new(b).await;
    let s = &h.store;
    let node = |id: &str, t: i64| NodeInfo {
        id: id.into(),
        hostname: "mail.example.test".into(),
        pid: 7,
        version: "1.2.3".into(),
        started_at: t,
        last_seen: t,
    };
    s.register_node(&node("na", 1_000_000)).await.unwrap();
    s.register_node(&node("nb", 1_000_010)).await.unwrap();
    assert!(
        s.register_node(&node("na", 1_000_020)).await.is_err(),
        "ids are unique"
    );
    s.node_seen("na", 1_000_100).await.unwrap();
    let list = s.list_nodes().await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!((list[0].id.as_str(), list[0].last_seen), ("na", 1_000_100));
    assert_eq!(list[1], node("nb", 1_000_010));
    s.remove_node("na").await.unwrap();
    assert_eq!(s.list_nodes().await.unwrap().len(), 1);
    // A week of silence and the next heartbeat of anyone forgets it.
    s.register_node(&node("nc", 2_000_000)).await.unwrap();
    s.node_seen("nc", 2_000_000).await.unwrap();
    let ids: Vec<String> = s
        .list_nodes()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(ids, ["nc"]);
}

async fn node_state_values_leases_and_failure_counts(b: Backend) {
    let h = Harness::new(b).await;
    let s = &h.store;
    // Values: create-only keeps the first, a plain put replaces, delete removes.
    assert!(
        s.node_state_put("dkim", "example.com/s1", b"one", None, 10, true)
            .await
            .unwrap()
    );
    assert!(
        !s.node_state_put("dkim", "example.com/s1", b"two", None, 11, true)
            .await
            .unwrap()
    );
    assert_eq!(
        s.node_state_get("dkim", "example.com/s1")
            .await
            .unwrap()
            .unwrap()
            .value,
        b"one"
    );
    assert!(
        s.node_state_put("dkim", "example.com/s1", b"\0\xff", None, 12, false)
            .await
            .unwrap()
    );
    let got = s
        .node_state_get("dkim", "example.com/s1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((got.value.as_slice(), got.updated_at), (&b"\0\xff"[..], 12));
    s.node_state_put("dkim", "example.com/s0", b"zero", None, 12, true)
        .await
        .unwrap();
    s.node_state_put("acme", "account", b"acct", None, 12, true)
        .await
        .unwrap();
    let names: Vec<String> = s
        .node_state_list("dkim")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(
        names,
        ["example.com/s0", "example.com/s1"],
        "scopes are apart"
    );
    assert!(s.node_state_delete("dkim", "example.com/s0").await.unwrap());
    assert!(!s.node_state_delete("dkim", "example.com/s0").await.unwrap());
    assert!(
        s.node_state_put("", "x", b"", None, 1, false)
            .await
            .is_err()
    );
    // Expiring rows are pruned by scope once over.
    s.node_state_put("acme-challenge", "t1", b"a", Some(100), 50, false)
        .await
        .unwrap();
    s.node_state_put("acme-challenge", "t2", b"b", Some(300), 50, false)
        .await
        .unwrap();
    assert_eq!(s.node_state_prune("acme-challenge", 200).await.unwrap(), 1);
    assert_eq!(s.node_state_list("acme-challenge").await.unwrap().len(), 1);

    // Leases: one holder at a time; the holder renews; others get it once it is over or released.
    assert!(s.try_lease("acme", "na", 1000, 60).await.unwrap());
    assert!(!s.try_lease("acme", "nb", 1030, 60).await.unwrap());
    assert!(
        s.try_lease("acme", "na", 1030, 60).await.unwrap(),
        "renewed"
    );
    assert!(!s.try_lease("acme", "nb", 1089, 60).await.unwrap());
    assert!(
        s.try_lease("acme", "nb", 1091, 60).await.unwrap(),
        "over, taken"
    );
    s.release_lease("acme", "na").await.unwrap(); // not na's: nothing happens
    assert!(!s.try_lease("acme", "na", 1092, 60).await.unwrap());
    s.release_lease("acme", "nb").await.unwrap();
    assert!(s.try_lease("acme", "na", 1093, 60).await.unwrap());
    // Many nodes racing for one free lease: exactly one wins.
    let mut racers = Vec::new();
    for i in 0..8 {
        let store = s.clone();
        racers.push(tokio::spawn(async move {
            store
                .try_lease("race", &format!("n{i}"), 5000, 60)
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for r in racers {
        won += usize::from(r.await.unwrap());
    }
    assert_eq!(won, 1);

    // Failure counts: a node sees the others' sums, not its own; a report replaces the last.
    let count = |kind: &str, key: &str, failures: u32, start: i64| AuthFailureCount {
        kind: kind.into(),
        key: key.into(),
        failures,
        window_start: start,
    };
    s.report_auth_failures("na", &[count("ip", "192.0.2.1", 3, 1000)], 1010)
        .await
        .unwrap();
    s.report_auth_failures(
        "nb",
        &[
            count("ip", "192.0.2.1", 2, 1005),
            count("account", "bob", 4, 990),
        ],
        1010,
    )
    .await
    .unwrap();
    s.report_auth_failures("nc", &[count("ip", "192.0.2.1", 5, 1001)], 1010)
        .await
        .unwrap();
    let seen = s.auth_failures_elsewhere("na", 995).await.unwrap();
    assert_eq!(
        seen,
        [count("ip", "192.0.2.1", 7, 1001)],
        "bob's window is too old"
    );
    s.report_auth_failures("nc", &[], 1020).await.unwrap();
    let seen = s.auth_failures_elsewhere("na", 900).await.unwrap();
    assert_eq!(
        seen,
        [
            count("account", "bob", 4, 990),
            count("ip", "192.0.2.1", 2, 1005)
        ]
    );
    // A day without reports from a node forgets its rows.
    s.report_auth_failures("na", &[], 1010 + 86_401 + 3600)
        .await
        .unwrap();
    assert!(s.auth_failures_elsewhere("na", 0).await.unwrap().is_empty());
}

async fn subscriptions_are_names(b: Backend) {
    let h = Harness::new(b).await;
    let a = h.account("subs@example.com", 0).await;
    let other = h.account("other@example.com", 0).await;
    let s = &h.store;
    // The default mailboxes start subscribed.
    let defaults = s.subscriptions(a.id).await.unwrap();
    assert!(defaults.contains(&"INBOX".to_string()), "{defaults:?}");
    let work = s.create_mailbox(a.id, "Work", None).await.unwrap();
    let child = s.create_mailbox(a.id, "Work/Wharf", None).await.unwrap();
    s.set_subscribed(a.id, "Work", true).await.unwrap();
    s.set_subscribed(a.id, "Work/Wharf", true).await.unwrap();
    s.set_subscribed(a.id, "Work", true).await.unwrap(); // twice is once
    // Renamed into its own subtree, the overlapping names all follow.
    s.rename_mailbox(a.id, work.id, "Work/Inner").await.unwrap();
    let subs = s.subscriptions(a.id).await.unwrap();
    assert!(subs.contains(&"Work/Inner".to_string()), "{subs:?}");
    assert!(subs.contains(&"Work/Inner/Wharf".to_string()), "{subs:?}");
    assert!(
        !subs.iter().any(|n| n == "Work" || n == "Work/Wharf"),
        "{subs:?}"
    );
    // Deleting the mailbox keeps its name subscribed.
    s.delete_mailbox(a.id, child.id).await.unwrap();
    assert!(
        s.subscriptions(a.id)
            .await
            .unwrap()
            .contains(&"Work/Inner/Wharf".to_string())
    );
    s.set_subscribed(a.id, "Work/Inner/Wharf", false)
        .await
        .unwrap();
    assert!(
        !s.subscriptions(a.id)
            .await
            .unwrap()
            .contains(&"Work/Inner/Wharf".to_string())
    );
    // INBOX in any case is INBOX; bad names are refused; accounts are apart.
    s.set_subscribed(a.id, "inbox", false).await.unwrap();
    assert!(
        !s.subscriptions(a.id)
            .await
            .unwrap()
            .contains(&"INBOX".to_string())
    );
    assert!(s.set_subscribed(a.id, "a//b", true).await.is_err());
    assert!(
        !s.subscriptions(other.id)
            .await
            .unwrap()
            .contains(&"Work/Inner".to_string())
    );
    // They go with the account.
    s.delete_account(a.id).await.unwrap();
    assert!(s.subscriptions(a.id).await.unwrap().is_empty());
}

async fn sieve_scripts_and_tracking(b: Backend) {
    let h = Harness::new(b).await;
    let a = h.account("sieve@example.com", 0).await;
    let other = h.account("other@example.com", 0).await;
    let s = &h.store;
    assert!(s.list_sieve_scripts(a.id).await.unwrap().is_empty());
    assert_eq!(s.active_sieve_script(a.id).await.unwrap(), None);
    s.put_sieve_script(a.id, "main", "keep;").await.unwrap();
    s.put_sieve_script(a.id, "other", "discard;").await.unwrap();
    s.set_active_sieve_script(a.id, Some("main")).await.unwrap();
    // Replacing keeps the active state; one active at a time.
    s.put_sieve_script(a.id, "main", "stop;").await.unwrap();
    assert_eq!(
        s.active_sieve_script(a.id).await.unwrap(),
        Some(("main".to_string(), "stop;".to_string()))
    );
    s.set_active_sieve_script(a.id, Some("other"))
        .await
        .unwrap();
    let list = s.list_sieve_scripts(a.id).await.unwrap();
    assert_eq!(
        list,
        vec![
            SieveScriptInfo {
                name: "main".into(),
                active: false,
                size: 5
            },
            SieveScriptInfo {
                name: "other".into(),
                active: true,
                size: 8
            },
        ]
    );
    assert!(matches!(
        s.set_active_sieve_script(a.id, Some("nope")).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.rename_sieve_script(a.id, "main", "other").await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(
        s.rename_sieve_script(a.id, "gone", "x").await,
        Err(StoreError::NotFound(_))
    ));
    s.rename_sieve_script(a.id, "other", "renamed")
        .await
        .unwrap();
    assert_eq!(
        s.active_sieve_script(a.id).await.unwrap().map(|(n, _)| n),
        Some("renamed".to_string())
    );
    assert_eq!(s.get_sieve_script(other.id, "renamed").await.unwrap(), None);
    // The active script is not deleted, whatever the caller checked before.
    assert!(matches!(
        s.delete_sieve_script(a.id, "renamed").await,
        Err(StoreError::Conflict(_))
    ));
    s.set_active_sieve_script(a.id, None).await.unwrap();
    assert_eq!(s.active_sieve_script(a.id).await.unwrap(), None);
    s.delete_sieve_script(a.id, "renamed").await.unwrap();
    assert!(matches!(
        s.delete_sieve_script(a.id, "renamed").await,
        Err(StoreError::NotFound(_))
    ));
    let big = "#".repeat(MAX_SIEVE_SCRIPT_BYTES + 1);
    assert!(matches!(
        s.put_sieve_script(a.id, "big", &big).await,
        Err(StoreError::Limit(_))
    ));

    // Tracking: ids live until they expire; a reply is claimed once per period.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    s.track_sieve_ids(a.id, &[("d1".into(), now + 10), ("old".into(), now - 1)])
        .await
        .unwrap();
    assert_eq!(
        s.sieve_tracked(a.id, now).await.unwrap(),
        vec!["d1".to_string()]
    );
    assert!(s.sieve_tracked(other.id, now).await.unwrap().is_empty());
    assert!(
        s.claim_sieve_reply(a.id, "v1", now + 100, now)
            .await
            .unwrap()
    );
    assert!(
        !s.claim_sieve_reply(a.id, "v1", now + 200, now + 50)
            .await
            .unwrap()
    );
    assert!(
        s.claim_sieve_reply(a.id, "v1", now + 300, now + 101)
            .await
            .unwrap()
    );
    assert!(
        s.claim_sieve_reply(other.id, "v1", now + 100, now)
            .await
            .unwrap()
    );
    s.delete_account(a.id).await.unwrap();
    assert!(s.list_sieve_scripts(a.id).await.unwrap().is_empty());
}

async fn recreated_mailbox_gets_new_uidvalidity(b: Backend) {
    let h = Harness::new(b).await;
    let a = h.account("v@example.com", 0).await;
    let s = &h.store;
    let first = s.create_mailbox(a.id, "Lists", None).await.unwrap();
    h.append(first.id, message("x", "y")).await;
    assert!(matches!(
        s.create_mailbox(a.id, "Lists", None).await,
        Err(StoreError::AlreadyExists(_))
    ));
    s.delete_mailbox(a.id, first.id).await.unwrap();
    let second = s.create_mailbox(a.id, "Lists", None).await.unwrap();
    assert_ne!(second.uid_validity, first.uid_validity);
    assert_eq!(second.uid_next, 1);
    assert_eq!(s.quota_used(a.id).await.unwrap(), 0);
    // Also across a rename: the freed name gets a fresh UIDVALIDITY.
    s.rename_mailbox(a.id, second.id, "Lists2").await.unwrap();
    let third = s.create_mailbox(a.id, "Lists", None).await.unwrap();
    assert!(third.uid_validity != first.uid_validity && third.uid_validity != second.uid_validity);
}

async fn blob_refcounts_reach_zero(b: Backend) {
    let h = Harness::new(b).await;
    let a = h.account("b@example.com", 0).await;
    let c = h.account("c@example.com", 0).await;
    let inbox = h.mailbox(a.id, "INBOX").await;
    let archive = h.mailbox(a.id, "Archive").await;
    let raw = message("shared", "same bytes");
    let o = h.append(inbox.id, raw.clone()).await;
    assert_eq!(blob_files(h.blob_dir()).len(), 1);
    let copy = h
        .store
        .copy_messages(inbox.id, &[o.uid], archive.id)
        .await
        .unwrap();
    assert_eq!(copy.mapping, vec![(o.uid, 1)]);
    assert_eq!(blob_files(h.blob_dir()).len(), 1, "copy shares the blob");
    // The same content appended again and delivered elsewhere still makes one file.
    h.append(archive.id, raw.clone()).await;
    let d = h
        .store
        .deliver(Delivery {
            raw: raw.clone(),
            internal_date: 1_700_000_000,
            recipients: vec![c.id],
            junk: false,
        })
        .await
        .unwrap();
    assert!(matches!(d[0], DeliveryResult::Stored(_)));
    assert_eq!(blob_files(h.blob_dir()).len(), 1);

    h.store.expunge_uids(inbox.id, &[o.uid]).await.unwrap();
    let arch = h.store.mailbox_index(archive.id).await.unwrap();
    assert_eq!(h.store.message_raw(arch[0].message_id).await.unwrap(), raw);
    assert!(
        !h.store
            .message_summary(arch[0].message_id)
            .await
            .unwrap()
            .is_empty()
    );
    // The batch read answers in the order asked, repeats included, with a gone message in its
    // own slot, and reads only the parts asked for.
    let id = arch[0].message_id;
    let got = h
        .store
        .message_contents(&[id, i64::MAX, id], true, true)
        .await
        .unwrap();
    assert_eq!(got.len(), 3);
    for slot in [&got[0], &got[2]] {
        let content = slot.as_ref().unwrap();
        assert_eq!(content.raw.as_deref(), Some(&raw[..]));
        assert!(!content.summary.as_ref().unwrap().is_empty());
    }
    assert!(matches!(got[1], Err(StoreError::NotFound(_))));
    let raw_only = h.store.message_contents(&[id], false, true).await.unwrap();
    let only = raw_only[0].as_ref().unwrap();
    assert_eq!(
        (only.summary.is_none(), only.raw.as_deref()),
        (true, Some(&raw[..]))
    );
    h.store.delete_mailbox(a.id, archive.id).await.unwrap();
    assert_eq!(blob_files(h.blob_dir()).len(), 1, "c still holds it");
    h.store.delete_account(c.id).await.unwrap();
    assert_eq!(
        blob_files(h.blob_dir()).len(),
        0,
        "last reference gone, file gone"
    );
    assert_eq!(h.store.quota_used(a.id).await.unwrap(), 0);
}

async fn crash_leftovers_are_swept_on_open(b: Backend) {
    let h = Harness::new(b).await;
    let a = h.account("k@example.com", 0).await;
    let inbox = h.mailbox(a.id, "INBOX").await;
    let kept = h.append(inbox.id, message("kept", "x")).await;
    // What a crash between blob write and commit leaves: a durable blob no row names, and a temp
    // file of a batch that never got renamed.
    let orphan = wharf_store::blob::blob_hash(b"never committed");
    let p = h.blob_dir().join(&orphan[0..2]).join(&orphan[2..4]);
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join(&orphan), b"never committed").unwrap();
    std::fs::write(
        h.blob_dir().join("tmp").join(format!("{orphan}.1234")),
        b"half",
    )
    .unwrap();
    assert_eq!(blob_files(h.blob_dir()).len(), 2);
    // A second process opening the store meanwhile (say, the CLI) must not touch them: they could
    // be a write in progress of the running one.
    let cli = open(&h.files.config).await.unwrap();
    assert_eq!(cli.sweep_orphans().await.unwrap(), 0);
    assert_eq!(blob_files(h.blob_dir()).len(), 2);
    assert_eq!(tmp_files(h.blob_dir()), 1);
    drop(cli);
    let h = h.reopen().await;
    assert_eq!(
        blob_files(h.blob_dir()).len(),
        1,
        "orphan removed, committed blob kept"
    );
    assert_eq!(tmp_files(h.blob_dir()), 0);
    let index = h.store.mailbox_index(inbox.id).await.unwrap();
    assert_eq!(index.len(), 1);
    assert_eq!(
        h.store.message_raw(index[0].message_id).await.unwrap(),
        message("kept", "x")
    );
    assert_eq!(index[0].uid, kept.uid);
    // The runtime sweep finds nothing more to do.
    assert_eq!(h.store.sweep_orphans().await.unwrap(), 0);
}

async fn group_commit_delivers_exactly_once(b: Backend) {
    let h = Harness::new(b).await;
    let mut accounts = Vec::new();
    for i in 0..4 {
        accounts.push(h.account(&format!("g{i}@example.com"), 0).await.id);
    }
    let accounts = Arc::new(accounts);
    let mut tasks = Vec::new();
    for t in 0..16usize {
        let store = h.store.clone();
        let accounts = accounts.clone();
        tasks.push(tokio::spawn(async move {
            for j in (t..200).step_by(16) {
                let recipients = vec![accounts[j % 4], accounts[(j + 1) % 4]];
                let r = store
                    .deliver(Delivery {
                        raw: message(&format!("d{j}"), &format!("body {j}")),
                        internal_date: 1_700_000_000,
                        recipients,
                        junk: false,
                    })
                    .await
                    .unwrap();
                assert_eq!(r.len(), 2);
                assert!(
                    r.iter().all(|x| matches!(x, DeliveryResult::Stored(_))),
                    "{r:?}"
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for (i, acc) in accounts.iter().enumerate() {
        let inbox = h.mailbox(*acc, "INBOX").await;
        let index = h.store.mailbox_index(inbox.id).await.unwrap();
        let want: BTreeSet<usize> = (0..200)
            .filter(|j| j % 4 == i || (j + 1) % 4 == i)
            .collect();
        assert_eq!(index.len(), want.len());
        assert_eq!(
            index.iter().map(|e| e.uid).collect::<Vec<_>>(),
            (1..=want.len() as u32).collect::<Vec<_>>()
        );
        let mut got = BTreeSet::new();
        for e in &index {
            assert!(e.flags.contains(Flags::RECENT));
            let raw = h.store.message_raw(e.message_id).await.unwrap();
            let text = String::from_utf8(raw.to_vec()).unwrap();
            let j: usize = text
                .split("Subject: d")
                .nth(1)
                .unwrap()
                .split('\r')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!(got.insert(j), "message {j} delivered twice to account {i}");
        }
        assert_eq!(got, want);
    }
    assert_eq!(blob_files(h.blob_dir()).len(), 200);
    // Unknown and duplicate recipients.
    let r = h
        .store
        .deliver(Delivery {
            raw: message("dup", "x"),
            internal_date: 0,
            recipients: vec![accounts[0], 999_999, accounts[0]],
            junk: false,
        })
        .await
        .unwrap();
    assert!(matches!(r[0], DeliveryResult::Stored(_)));
    assert_eq!(r[1], DeliveryResult::NoSuchAccount);
    assert_eq!(r[2], r[0]);
    h.store
        .set_account_disabled(accounts[1], true)
        .await
        .unwrap();
    let r = h
        .store
        .deliver(Delivery {
            raw: message("off", "x"),
            internal_date: 0,
            recipients: vec![accounts[1]],
            junk: false,
        })
        .await
        .unwrap();
    assert_eq!(r, vec![DeliveryResult::NoSuchAccount]);
    assert_eq!(
        blob_files(h.blob_dir()).len(),
        201,
        "the refused message left no blob"
    );
}

/// Flag changes commit without their own fsync (`begin_write_relaxed`); they are still committed
/// (a reopened store sees them) and the durable writes after them on the same writer connection
/// are durable again.
async fn relaxed_flag_commits_persist_and_durable_writes_follow(b: Backend) {
    let h = Harness::new(b).await;
    let a = h.account("r@example.com", 0).await;
    let inbox = h.mailbox(a.id, "INBOX").await;
    let o1 = h.append(inbox.id, message("one", "x")).await;
    for op in [FlagOp::Add, FlagOp::Remove, FlagOp::Add] {
        h.store
            .store_flags(
                inbox.id,
                &[o1.uid],
                op,
                Flags::FLAGGED,
                &["$Work".into()],
                None,
            )
            .await
            .unwrap();
    }
    assert_eq!(h.store.claim_recent(inbox.id).await.unwrap(), vec![o1.uid]);
    let o2 = h.append(inbox.id, message("two", "x")).await;
    let h = h.reopen().await;
    let index = h.store.mailbox_index(inbox.id).await.unwrap();
    assert_eq!(index.len(), 2);
    assert!(index[0].flags.contains(Flags::FLAGGED));
    assert!(!index[0].flags.contains(Flags::RECENT));
    assert_eq!(index[0].keywords, vec!["$Work".to_string()]);
    assert_eq!(index[1].uid, o2.uid);
}

async fn store_flags_unchanged_since(b: Backend) {
    let h = Harness::new(b).await;
    let a = h.account("f@example.com", 0).await;
    let inbox = h.mailbox(a.id, "INBOX").await;
    let o1 = h.append(inbox.id, message("one", "x")).await;
    let o2 = h.append(inbox.id, message("two", "x")).await;
    let (up, modified) = h
        .store
        .store_flags(
            inbox.id,
            &[o1.uid],
            FlagOp::Add,
            Flags::SEEN,
            &[],
            Some(o2.modseq),
        )
        .await
        .unwrap();
    assert!(modified.is_empty());
    let m1 = up[0].modseq;
    assert!(up[0].flags.contains(Flags::SEEN) && up[0].flags.contains(Flags::RECENT));
    // UID 1 changed after o2.modseq: it is reported MODIFIED and left alone; UID 2 is flagged.
    let (up, modified) = h
        .store
        .store_flags(
            inbox.id,
            &[o1.uid, o2.uid, 77],
            FlagOp::Add,
            Flags::FLAGGED,
            &[],
            Some(o2.modseq),
        )
        .await
        .unwrap();
    assert_eq!(modified, vec![o1.uid]);
    assert_eq!(up.iter().map(|u| u.uid).collect::<Vec<_>>(), vec![o2.uid]);
    assert!(up[0].modseq > m1);
    let index = h.store.mailbox_index(inbox.id).await.unwrap();
    assert!(!index[0].flags.contains(Flags::FLAGGED));
    // A no-op store changes nothing and spends no modseq.
    let before = h
        .store
        .mailbox_status(inbox.id)
        .await
        .unwrap()
        .highest_modseq;
    let (up, _) = h
        .store
        .store_flags(inbox.id, &[o1.uid], FlagOp::Add, Flags::SEEN, &[], None)
        .await
        .unwrap();
    assert!(up.is_empty());
    assert_eq!(
        h.store
            .mailbox_status(inbox.id)
            .await
            .unwrap()
            .highest_modseq,
        before
    );
    // Replace keeps \Recent, which clients cannot set; keywords dedupe case-insensitively.
    let (up, _) = h
        .store
        .store_flags(
            inbox.id,
            &[o1.uid],
            FlagOp::Replace,
            Flags::DRAFT,
            &["b".into(), "A".into(), "a".into()],
            None,
        )
        .await
        .unwrap();
    assert_eq!(up[0].flags, Flags::DRAFT | Flags::RECENT);
    assert_eq!(up[0].keywords, vec!["A".to_string(), "b".to_string()]);
    let (up, _) = h
        .store
        .store_flags(
            inbox.id,
            &[o1.uid],
            FlagOp::Remove,
            Flags::DRAFT,
            &["a".into()],
            None,
        )
        .await
        .unwrap();
    assert_eq!(up[0].flags, Flags::RECENT);
    assert_eq!(up[0].keywords, vec!["b".to_string()]);
    let ch = h.store.changes_since(inbox.id, before).await.unwrap();
    assert_eq!(
        ch.changed.iter().map(|e| e.uid).collect::<Vec<_>>(),
        vec![o1.uid]
    );
}

async fn recent_claims_follow_new_mail_and_status_agrees(b: Backend) {
    let h = Harness::new(b).await;
    let a = h.account("rc@example.com", 0).await;
    let inbox = h.mailbox(a.id, "INBOX").await;
    let m1 = h.append(inbox.id, message("one", "x")).await;
    let m2 = h.append(inbox.id, message("two", "x")).await;
    assert_eq!(
        h.store.claim_recent(inbox.id).await.unwrap(),
        vec![m1.uid, m2.uid]
    );
    // STATUS agrees at once, however the claim is recorded.
    assert_eq!(h.store.mailbox_status(inbox.id).await.unwrap().recent, 0);
    let m3 = h.append(inbox.id, message("three", "x")).await;
    assert_eq!(h.store.mailbox_status(inbox.id).await.unwrap().recent, 1);
    assert_eq!(h.store.claim_recent(inbox.id).await.unwrap(), vec![m3.uid]);
    assert!(h.store.claim_recent(inbox.id).await.unwrap().is_empty());
    // The stored flags (what FETCH FLAGS reports apart from \Recent) lose the bit too.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let index = h.store.mailbox_index(inbox.id).await.unwrap();
    assert!(
        index.iter().all(|e| !e.flags.contains(Flags::RECENT)),
        "{index:?}"
    );
}

/// SQLite reuses the id of a deleted mailbox: the re-created one starts with its own \Recent,
/// not the claim floor of the one before.
async fn recreated_mailbox_has_its_own_recent(b: Backend) {
    let h = Harness::new(b).await;
    let a = h.account("rr@example.com", 0).await;
    let first = h.store.create_mailbox(a.id, "Lists", None).await.unwrap();
    h.append(first.id, message("one", "x")).await;
    h.append(first.id, message("two", "x")).await;
    assert_eq!(h.store.claim_recent(first.id).await.unwrap().len(), 2);
    h.store.delete_mailbox(a.id, first.id).await.unwrap();
    // A claim on a mailbox that is gone claims nothing (PostgreSQL says NotFound).
    match h.store.claim_recent(first.id).await {
        Err(StoreError::NotFound(_)) => {}
        Ok(uids) => assert!(uids.is_empty(), "{b:?}: {uids:?}"),
        Err(e) => panic!("{b:?}: {e}"),
    }
    let again = h.store.create_mailbox(a.id, "Lists", None).await.unwrap();
    let m = h.append(again.id, message("three", "x")).await;
    assert_eq!(h.store.mailbox_status(again.id).await.unwrap().recent, 1);
    assert_eq!(h.store.claim_recent(again.id).await.unwrap(), vec![m.uid]);
}

/// A STORE over more messages than one UPDATE statement writes (`FLAG_ROWS_PER_STATEMENT`):
/// every message changes once, with the STORE's one modseq, and keeps its own keywords.
async fn a_store_of_many_messages_changes_each_once(b: Backend) {
    let h = Harness::new(b).await;
    let a = h.account("many@example.com", 0).await;
    let inbox = h.mailbox(a.id, "INBOX").await;
    let n = 1203;
    let batch: Vec<NewMessage> = (0..n)
        .map(|i| NewMessage {
            raw: message(&format!("m{i}"), "x"),
            flags: if i % 2 == 0 {
                Flags::FLAGGED
            } else {
                Flags::empty()
            },
            keywords: if i % 3 == 0 {
                vec!["$Work".into()]
            } else {
                Vec::new()
            },
            internal_date: 0,
        })
        .collect();
    let out = h.store.append_many(inbox.id, batch).await.unwrap();
    let uids: Vec<Uid> = out.iter().map(|o| o.uid).collect();
    let (updates, modified) = h
        .store
        .store_flags(inbox.id, &uids, FlagOp::Add, Flags::SEEN, &[], None)
        .await
        .unwrap();
    assert!(modified.is_empty());
    assert_eq!(updates.len(), n);
    let modseq = updates[0].modseq;
    assert!(updates.iter().all(|u| u.modseq == modseq));
    let status = h.store.mailbox_status(inbox.id).await.unwrap();
    assert_eq!(status.unseen, 0, "{b:?}");
    assert_eq!(status.highest_modseq, modseq);
    let index = h.store.mailbox_index(inbox.id).await.unwrap();
    for (i, e) in index.iter().enumerate() {
        assert!(e.flags.contains(Flags::SEEN), "{b:?} {i}");
        assert_eq!(e.flags.contains(Flags::FLAGGED), i % 2 == 0, "{b:?} {i}");
        assert_eq!(
            e.keywords.contains(&"$Work".to_string()),
            i % 3 == 0,
            "{b:?} {i}"
        );
        assert_eq!(e.modseq, modseq);
    }
}

async fn claim_recent_exactly_once(b: Backend) {
    let h = Harness::new(b).await;
    let a = h.account("n@example.com", 0).await;
    let inbox = h.mailbox(a.id, "INBOX").await;
    for i in 0..20 {
        h.append(inbox.id, message(&format!("r{i}"), "x")).await;
    }
    assert_eq!(h.store.mailbox_status(inbox.id).await.unwrap().recent, 20);
    let (s1, s2) = (h.store.clone(), h.store.clone());
    let (x, y) = tokio::join!(
        tokio::spawn(async move { s1.claim_recent(inbox.id).await.unwrap() }),
        tokio::spawn(async move { s2.claim_recent(inbox.id).await.unwrap() })
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    let xs: HashSet<Uid> = x.iter().copied().collect();
    assert!(
        y.iter().all(|u| !xs.contains(u)),
        "a UID claimed twice: {x:?} {y:?}"
    );
    assert_eq!(x.len() + y.len(), 20);
    assert_eq!(h.store.mailbox_status(inbox.id).await.unwrap().recent, 0);
    assert!(h.store.claim_recent(inbox.id).await.unwrap().is_empty());
}

/// A word in more messages of the store than the mailbox holds makes SQLite scan the mailbox's
/// texts; a rarer one goes through the index first. Both must give the same exact answer, and
/// neither may return another mailbox's or another account's messages.
async fn search_text_by_index_or_by_scan_agree(b: Backend) {
    let h = Harness::new(b).await;
    let a = h.account("idx@example.com", 0).await;
    let other = h.account("other@example.com", 0).await;
    let inbox = h.mailbox(a.id, "INBOX").await;
    let archive = h.mailbox(a.id, "Archive").await;
    let foreign = h.mailbox(other.id, "INBOX").await;
    let hit = h
        .append(inbox.id, message("common words", "pelican common rare"))
        .await;
    h.append(inbox.id, message("nothing here", "plain text only"))
        .await;
    for i in 0..4 {
        h.append(
            archive.id,
            message(&format!("archived {i}"), "common pelican"),
        )
        .await;
        h.append(foreign.id, message(&format!("foreign {i}"), "common rare"))
            .await;
    }
    let s = &h.store;
    // "common": 9 messages store-wide, 2 in the INBOX → the scan.
    assert_eq!(
        s.search_text(inbox.id, TextField::Body, "common")
            .await
            .unwrap(),
        vec![hit.uid]
    );
    // "pelican" 5 store-wide, "rare" 5: still more than the INBOX's 2 → scan; "rare pelican"
    // is in one message → index.
    assert_eq!(
        s.search_text(inbox.id, TextField::Text, "pelican common rare")
            .await
            .unwrap(),
        vec![hit.uid]
    );
    assert_eq!(
        s.search_text(archive.id, TextField::Body, "pelican")
            .await
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        s.search_text(foreign.id, TextField::Body, "pelican")
            .await
            .unwrap(),
        Vec::<u32>::new()
    );
    assert_eq!(
        s.search_text(foreign.id, TextField::Body, "rare")
            .await
            .unwrap()
            .len(),
        4
    );
}

async fn search_text_is_substring_exact(b: Backend) {
    let h = Harness::new(b).await;
    let a = h.account("s@example.com", 0).await;
    let inbox = h.mailbox(a.id, "INBOX").await;
    let m1 = h
        .append(
            inbox.id,
            message("Hello world", "The quick brown fox jumps."),
        )
        .await;
    let m2 = h
        .append(
            inbox.id,
            message("Invoice 2026-11", "Grüße aus Köln, total 1234.50 EUR"),
        )
        .await;
    let m3 = h
        .append(
            inbox.id,
            message(
                "Re: quick question",
                "brown quick foxes; email bob.smith@corp.example",
            ),
        )
        .await;
    let s = &h.store;
    let q = |f, n: &'static str| async move { s.search_text(inbox.id, f, n).await.unwrap() };
    assert_eq!(
        q(TextField::Subject, "ell").await,
        vec![m1.uid],
        "mid-word substring"
    );
    assert_eq!(q(TextField::Subject, "HELLO W").await, vec![m1.uid]);
    assert_eq!(
        q(TextField::Body, "quick brown").await,
        vec![m1.uid],
        "phrase order matters"
    );
    assert_eq!(q(TextField::Body, "brown quick").await, vec![m3.uid]);
    assert_eq!(q(TextField::Body, "k brown f").await, vec![m1.uid]);
    assert_eq!(q(TextField::Text, "quick").await, vec![m1.uid, m3.uid]);
    assert_eq!(q(TextField::Subject, "quick").await, vec![m3.uid]);
    // Folded alike: ü → u, ß → ss (text::fold), so the spelling without them finds it too.
    assert_eq!(q(TextField::Body, "grüsse").await, vec![m2.uid]);
    assert_eq!(q(TextField::Body, "GRUSSE").await, vec![m2.uid]);
    assert_eq!(q(TextField::Body, "koln").await, vec![m2.uid]);
    assert_eq!(q(TextField::Body, "grüßen").await, Vec::<Uid>::new());
    assert_eq!(q(TextField::Body, "grüße aus").await, vec![m2.uid]);
    assert_eq!(q(TextField::Body, "KÖLN").await, vec![m2.uid]);
    assert_eq!(q(TextField::Body, " 1234.5").await, vec![m2.uid]);
    assert_eq!(q(TextField::Body, "234.50 eu").await, vec![m2.uid]);
    assert_eq!(q(TextField::Body, "smith@corp.ex").await, vec![m3.uid]);
    assert_eq!(
        q(TextField::Body, " smith").await,
        Vec::<Uid>::new(),
        "word start is not mid-word"
    );
    assert_eq!(
        q(TextField::From, "example.org").await,
        vec![m1.uid, m2.uid, m3.uid]
    );
    assert_eq!(q(TextField::To, "BOB@").await, vec![m1.uid, m2.uid, m3.uid]);
    assert_eq!(q(TextField::Cc, "bob").await, Vec::<Uid>::new());
    assert_eq!(q(TextField::Subject, "2026-11").await, vec![m2.uid]);
    assert_eq!(q(TextField::Body, "foxes;").await, vec![m3.uid]);
    assert_eq!(q(TextField::Body, "fox jumps!").await, Vec::<Uid>::new());
    assert_eq!(
        q(TextField::Subject, "").await,
        vec![m1.uid, m2.uid, m3.uid]
    );
    // Messages in other mailboxes never leak in; expunged ones leave the index.
    let other = h.mailbox(a.id, "Archive").await;
    h.append(other.id, message("Hello again", "quick")).await;
    assert_eq!(q(TextField::Subject, "hello").await, vec![m1.uid]);
    h.store.expunge_uids(inbox.id, &[m1.uid]).await.unwrap();
    assert_eq!(q(TextField::Body, "quick brown").await, Vec::<Uid>::new());
}

fn with_header(extra: &str) -> Bytes {
    Bytes::from(format!(
        "From: a@example.org\r\nTo: b@example.com\r\nSubject: plain\r\n{extra}\r\n\r\nnothing here\r\n"
    ))
}

async fn search_text_covers_every_header_field(b: Backend) {
    let h = Harness::new(b).await;
    let a = h.account("hdr@example.com", 0).await;
    let inbox = h.mailbox(a.id, "INBOX").await;
    let m1 = h
        .append(inbox.id, with_header("X-Tracking-Id: Zebra-42"))
        .await;
    let m2 = h
        .append(inbox.id, with_header("X-Note: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?="))
        .await;
    let s = &h.store;
    let q = |f, n: &'static str| async move { s.search_text(inbox.id, f, n).await.unwrap() };
    assert_eq!(q(TextField::Text, "zebra-42").await, vec![m1.uid]);
    assert_eq!(q(TextField::Text, "x-tracking-id: zeb").await, vec![m1.uid]);
    assert_eq!(q(TextField::Text, "grüße").await, vec![m2.uid]);
    assert_eq!(
        q(TextField::Text, "nothing here").await,
        vec![m1.uid, m2.uid]
    );
    // BODY is the body alone.
    assert_eq!(q(TextField::Body, "zebra").await, Vec::<Uid>::new());
    assert_eq!(q(TextField::Body, "plain").await, Vec::<Uid>::new());
}

/// Case and diacritic folding (text::fold) in English, German, French and Spanish, the same on
/// both backends, through the trigram index (three or more characters) and the scan (fewer).
async fn search_text_folds_case_and_diacritics(b: Backend) {
    let h = Harness::new(b).await;
    let a = h.account("fold@example.com", 0).await;
    let inbox = h.mailbox(a.id, "INBOX").await;
    let en = h
        .append(
            inbox.id,
            message("Naïve résumé", "The CAFÉ opens at 9; Zoë's coöperative."),
        )
        .await;
    let de = h
        .append(
            inbox.id,
            message(
                "Grüße aus München",
                "Die Straße am Fluß, Bäckerei Müller, STRAẞE 5.",
            ),
        )
        .await;
    let fr = h
        .append(
            inbox.id,
            message(
                "Crème brûlée",
                "Noël à l'hôtel: façade, cœur, Élève, garçon.",
            ),
        )
        .await;
    let es = h
        .append(
            inbox.id,
            message(
                "¿Qué tal, Señor?",
                "El niño come piñata; canción, pingüino, árbol.",
            ),
        )
        .await;
    let s = &h.store;
    let q = |f, n: &'static str| async move { s.search_text(inbox.id, f, n).await.unwrap() };
    let none = Vec::<Uid>::new();
    // English, and diacritics borrowed into it.
    assert_eq!(q(TextField::Subject, "naive").await, vec![en.uid]);
    assert_eq!(q(TextField::Subject, "RESUME").await, vec![en.uid]);
    assert_eq!(q(TextField::Subject, "résumé").await, vec![en.uid]);
    assert_eq!(q(TextField::Body, "cafe").await, vec![en.uid]);
    assert_eq!(q(TextField::Body, "zoe").await, vec![en.uid]);
    assert_eq!(q(TextField::Body, "cooperative").await, vec![en.uid]);
    // German: umlauts fold to the vowel, ß and ẞ to ss; "ue" is not "ü".
    assert_eq!(q(TextField::Subject, "grusse").await, vec![de.uid]);
    assert_eq!(q(TextField::Subject, "GRÜSSE").await, vec![de.uid]);
    assert_eq!(q(TextField::Subject, "münchen").await, vec![de.uid]);
    assert_eq!(q(TextField::Subject, "muenchen").await, none);
    assert_eq!(q(TextField::Body, "strasse").await, vec![de.uid]);
    assert_eq!(q(TextField::Body, "straße 5").await, vec![de.uid]);
    assert_eq!(q(TextField::Body, "fluss").await, vec![de.uid]);
    assert_eq!(q(TextField::Body, "backerei muller").await, vec![de.uid]);
    // French.
    assert_eq!(q(TextField::Subject, "creme brulee").await, vec![fr.uid]);
    assert_eq!(q(TextField::Body, "noel a l'hotel").await, vec![fr.uid]);
    assert_eq!(q(TextField::Body, "facade").await, vec![fr.uid]);
    assert_eq!(q(TextField::Body, "coeur").await, vec![fr.uid]);
    assert_eq!(q(TextField::Body, "ELEVE").await, vec![fr.uid]);
    assert_eq!(q(TextField::Body, "garcon").await, vec![fr.uid]);
    // Spanish.
    assert_eq!(q(TextField::Subject, "senor").await, vec![es.uid]);
    assert_eq!(q(TextField::Subject, "¿que").await, vec![es.uid]);
    assert_eq!(q(TextField::Body, "nino").await, vec![es.uid]);
    assert_eq!(q(TextField::Body, "pinata").await, vec![es.uid]);
    assert_eq!(q(TextField::Body, "cancion, pinguino").await, vec![es.uid]);
    assert_eq!(q(TextField::Body, "ÁRBOL").await, vec![es.uid]);
    // Short needles (the scan) fold the same way; ß is two characters once folded.
    assert_eq!(q(TextField::Body, "ñi").await, vec![es.uid]);
    assert_eq!(q(TextField::Subject, "ß").await, vec![de.uid]);
    assert_eq!(q(TextField::Subject, "üß").await, vec![de.uid]);
    // Substrings across words and inside them, after folding.
    assert_eq!(q(TextField::Body, "i müller").await, vec![de.uid]);
    assert_eq!(q(TextField::Body, "aça").await, vec![fr.uid]);
    // Several messages.
    assert_eq!(
        q(TextField::Text, "example").await,
        vec![en.uid, de.uid, fr.uid, es.uid]
    );
    assert_eq!(q(TextField::Body, "ele").await, vec![fr.uid]);
    assert_eq!(q(TextField::Body, "an").await, vec![es.uid]);
}

fn full_message(from: &str, to: &str, cc: &str, bcc: &str, subject: &str, body: &str) -> Bytes {
    Bytes::from(format!(
        "From: {from}\r\nTo: {to}\r\nCc: {cc}\r\nBcc: {bcc}\r\nSubject: {subject}\r\n\
         X-Project: {subject} tracker\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ))
}

/// Every text key (TEXT, BODY, SUBJECT, FROM, TO, CC, BCC) against a small corpus with known
/// answers, needles short and long, the same on both backends; the other account's copies of the
/// same messages never appear.
async fn search_text_known_answers_for_every_field(b: Backend) {
    let h = Harness::new(b).await;
    let a = h.account("keys@example.com", 0).await;
    let other = h.account("keys-other@example.com", 0).await;
    let inbox = h.mailbox(a.id, "INBOX").await;
    let foreign = h.mailbox(other.id, "INBOX").await;
    let corpus = [
        full_message(
            "Ann Lee <ann@alpha.example>",
            "team@beta.example",
            "carol@gamma.example",
            "audit@delta.example",
            "Budget review 2027",
            "Please review the attached budget before Friday.",
        ),
        full_message(
            "Bob Stone <bob@beta.example>",
            "ann@alpha.example",
            "team@beta.example",
            "nobody@omega.example",
            "Lunch on Friday?",
            "Pizza or sushi, your choice. Budgetary constraints apply.",
        ),
        full_message(
            "carol@gamma.example",
            "bob@beta.example",
            "ann@alpha.example",
            "audit@delta.example",
            "Re: Budget review 2027",
            "Reviewed; the sushi line item looks odd.",
        ),
    ];
    let mut uids = Vec::new();
    for raw in &corpus {
        uids.push(h.append(inbox.id, raw.clone()).await.uid);
        h.append(foreign.id, raw.clone()).await;
    }
    let (m1, m2, m3) = (uids[0], uids[1], uids[2]);
    let s = &h.store;
    let q = |f, n: &'static str| async move { s.search_text(inbox.id, f, n).await.unwrap() };
    let none = Vec::<Uid>::new();
    let cases: Vec<(TextField, &str, Vec<Uid>)> = vec![
        (TextField::Subject, "budget", vec![m1, m3]),
        (TextField::Subject, "re:", vec![m3]),
        (TextField::Subject, "ud", vec![m1, m3]),
        (TextField::Subject, "friday", vec![m2]),
        (TextField::Body, "budget", vec![m1, m2]),
        (TextField::Body, "review", vec![m1, m3]),
        (TextField::Body, "sushi", vec![m2, m3]),
        (TextField::Body, "friday", vec![m1]),
        (TextField::Body, "x", none.clone()),
        (TextField::Body, "", vec![m1, m2, m3]),
        (TextField::From, "ann", vec![m1]),
        (TextField::From, "beta.example", vec![m2]),
        (TextField::From, "a", vec![m1, m2, m3]),
        (TextField::To, "ann@alpha", vec![m2]),
        (TextField::To, "beta", vec![m1, m3]),
        (TextField::Cc, "team", vec![m2]),
        (TextField::Cc, "ann", vec![m3]),
        (TextField::Bcc, "audit", vec![m1, m3]),
        (TextField::Bcc, "omega", vec![m2]),
        (TextField::Bcc, "zz", none.clone()),
        // TEXT: header fields (any, by name) and body.
        (TextField::Text, "x-project: lunch", vec![m2]),
        (TextField::Text, "tracker", vec![m1, m2, m3]),
        (TextField::Text, "omega", vec![m2]),
        (TextField::Text, "pizza", vec![m2]),
        (TextField::Text, "odd", vec![m3]),
        (TextField::Text, "budget", vec![m1, m2, m3]),
        (TextField::Text, "budget review 2027", vec![m1, m3]),
        (TextField::Text, "nothing like this", none.clone()),
    ];
    for (field, needle, want) in &cases {
        assert_eq!(q(*field, needle).await, *want, "{field:?} {needle:?}");
    }
    // SQLite indexes new mail once its writer is idle (the answers above read the text of rows
    // not indexed yet); the same answers come from the index.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (field, needle, want) in &cases {
        assert_eq!(
            q(*field, needle).await,
            *want,
            "indexed: {field:?} {needle:?}"
        );
    }
}

/// Runs one statement on the test store's database, beside the store.
async fn raw_sql(h: &Harness, sql: &'static str) {
    match h.files.backend() {
        Backend::Sqlite => {
            let path = h.files.config.url.strip_prefix("sqlite://").unwrap();
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{path}"))
                .await
                .unwrap();
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&h.files.config.url)
                .await
                .unwrap();
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
    }
}

async fn header_text_of_older_messages_is_backfilled(b: Backend) {
    let h = Harness::new(b).await;
    let a = h.account("old@example.com", 0).await;
    let inbox = h.mailbox(a.id, "INBOX").await;
    let mut uids = Vec::new();
    for i in 0..5 {
        let o = h
            .append(inbox.id, with_header(&format!("X-Ticket: Old-{i}-Ticket")))
            .await;
        uids.push(o.uid);
    }
    // As a store written before migration 0007 left them.
    raw_sql(&h, "UPDATE message_text SET headers = NULL").await;
    let s = &h.store;
    assert!(
        s.search_text(inbox.id, TextField::Text, "old-3-ticket")
            .await
            .unwrap()
            .is_empty()
    );
    // Subject and addresses were searchable before and stay so.
    assert_eq!(
        s.search_text(inbox.id, TextField::Text, "plain")
            .await
            .unwrap(),
        uids
    );
    assert_eq!(s.backfill_header_text(3).await.unwrap(), 3);
    assert_eq!(s.backfill_header_text(3).await.unwrap(), 2);
    assert_eq!(s.backfill_header_text(3).await.unwrap(), 0);
    assert_eq!(
        s.search_text(inbox.id, TextField::Text, "old-3-ticket")
            .await
            .unwrap(),
        vec![uids[3]]
    );
    assert_eq!(
        s.search_text(inbox.id, TextField::Text, "ticket")
            .await
            .unwrap(),
        uids
    );
}

async fn quota_is_enforced(b: Backend) {
    let h = Harness::new(b).await;
    let a = h.account("q@example.com", 1000).await;
    let inbox = h.mailbox(a.id, "INBOX").await;
    let archive = h.mailbox(a.id, "Archive").await;
    let body = "x".repeat(400);
    let o = h.append(inbox.id, message("first", &body)).await;
    let used = h.store.quota_used(a.id).await.unwrap();
    assert!(used > 400 && used < 1000, "{used}");
    let r = h
        .store
        .append(inbox.id, message("second", &body), Flags::empty(), &[], 0)
        .await;
    assert!(matches!(r, Err(StoreError::OverQuota)), "{r:?}");
    let r = h
        .store
        .deliver(Delivery {
            raw: message("third", &body),
            internal_date: 0,
            recipients: vec![a.id],
            junk: false,
        })
        .await
        .unwrap();
    assert_eq!(
        r,
        vec![DeliveryResult::OverQuota {
            message_alone_exceeds: false
        }]
    );
    let r = h
        .store
        .deliver(Delivery {
            raw: message("huge", &"y".repeat(2000)),
            internal_date: 0,
            recipients: vec![a.id],
            junk: false,
        })
        .await
        .unwrap();
    assert_eq!(
        r,
        vec![DeliveryResult::OverQuota {
            message_alone_exceeds: true
        }]
    );
    assert!(matches!(
        h.store.copy_messages(inbox.id, &[o.uid], archive.id).await,
        Err(StoreError::OverQuota)
    ));
    // A move inside the account costs nothing.
    h.store
        .move_messages(inbox.id, &[o.uid], archive.id)
        .await
        .unwrap();
    assert_eq!(h.store.quota_used(a.id).await.unwrap(), used);
    assert_eq!(
        blob_files(h.blob_dir()).len(),
        1,
        "refused messages left no blobs"
    );
    // Unlimited again.
    h.store.set_account_quota(a.id, 0).await.unwrap();
    h.append(inbox.id, message("second", &body)).await;
}

async fn maildrop_lock_exclusive_and_expiring(b: Backend) {
    let h = Harness::new(b).await;
    let a = h.account("p@example.com", 0).await;
    let c = h.account("p2@example.com", 0).await;
    let s = &h.store;
    assert!(s.lock_maildrop(a.id, "one", 60).await.unwrap());
    assert!(!s.lock_maildrop(a.id, "two", 60).await.unwrap());
    assert!(
        s.lock_maildrop(a.id, "one", 60).await.unwrap(),
        "the holder refreshes"
    );
    assert!(
        s.lock_maildrop(c.id, "two", 60).await.unwrap(),
        "locks are per account"
    );
    s.unlock_maildrop(a.id, "two").await.unwrap();
    assert!(
        !s.lock_maildrop(a.id, "two", 60).await.unwrap(),
        "only the holder unlocks"
    );
    s.unlock_maildrop(a.id, "one").await.unwrap();
    assert!(s.lock_maildrop(a.id, "two", 1).await.unwrap());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(
        s.lock_maildrop(a.id, "three", 60).await.unwrap(),
        "an expired lock is taken over"
    );
    assert!(!s.lock_maildrop(a.id, "two", 60).await.unwrap());
}

async fn events_are_published(b: Backend) {
    let h = Harness::new(b).await;
    let a = h.account("ev@example.com", 0).await;
    let other = h.account("quiet@example.com", 0).await;
    let inbox = h.mailbox(a.id, "INBOX").await;
    let mut rx = h.store.subscribe(a.id);
    let mut quiet = h.store.subscribe(other.id);
    let o = h.append(inbox.id, message("e", "x")).await;
    assert_eq!(
        next(&mut rx).await,
        MailboxEvent::Changed {
            mailbox_id: inbox.id,
            highest_modseq: o.modseq
        }
    );
    let (up, _) = h
        .store
        .store_flags(inbox.id, &[o.uid], FlagOp::Add, Flags::SEEN, &[], None)
        .await
        .unwrap();
    assert_eq!(
        next(&mut rx).await,
        MailboxEvent::Changed {
            mailbox_id: inbox.id,
            highest_modseq: up[0].modseq
        }
    );
    h.store
        .deliver(Delivery {
            raw: message("d", "x"),
            internal_date: 0,
            recipients: vec![a.id],
            junk: false,
        })
        .await
        .unwrap();
    assert!(
        matches!(next(&mut rx).await, MailboxEvent::Changed { mailbox_id, .. } if mailbox_id == inbox.id)
    );
    h.store.expunge_uids(inbox.id, &[o.uid]).await.unwrap();
    assert!(matches!(next(&mut rx).await, MailboxEvent::Changed { .. }));
    h.store.create_mailbox(a.id, "New", None).await.unwrap();
    assert_eq!(next(&mut rx).await, MailboxEvent::MailboxesChanged);
    assert!(quiet.try_recv().is_err(), "another account hears nothing");
}

async fn next(rx: &mut tokio::sync::broadcast::Receiver<MailboxEvent>) -> MailboxEvent {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap()
}

/// Two nodes on one PostgreSQL database: a session on node A hears of mail delivered via node B,
/// and sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_nodes_see_each_others_changes() {
    let h = Harness::new(Backend::Postgres).await;
    let node_b = open(&h.files.config).await.unwrap();
    let a = h.account("x@example.com", 0).await;
    let inbox = h.mailbox(a.id, "INBOX").await;
    let mut on_a = h.store.subscribe(a.id);
    let mut on_b = node_b.subscribe(a.id);
    let r = node_b
        .deliver(Delivery {
            raw: message("via-b", "x"),
            internal_date: 0,
            recipients: vec![a.id],
            junk: false,
        })
        .await
        .unwrap();
    let DeliveryResult::Stored(o) = &r[0] else {
        panic!("{r:?}")
    };
    let want = MailboxEvent::Changed {
        mailbox_id: inbox.id,
        highest_modseq: o.modseq,
    };
    assert_eq!(next(&mut on_a).await, want);
    assert_eq!(next(&mut on_b).await, want);
    assert_eq!(
        h.store.mailbox_index(inbox.id).await.unwrap()[0].message_id,
        o.message_id
    );
    h.store.create_mailbox(a.id, "FromA", None).await.unwrap();
    assert_eq!(next(&mut on_b).await, MailboxEvent::MailboxesChanged);
    assert_eq!(next(&mut on_a).await, MailboxEvent::MailboxesChanged);
    // Each node hears its own events once, not echoed back.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(on_a.try_recv().is_err() && on_b.try_recv().is_err());
}

/// The embedded database runs in WAL mode (readers never wait for the writer).
#[tokio::test]
async fn sqlite_database_is_in_wal_mode() {
    let h = Harness::new(Backend::Sqlite).await;
    h.account("w@example.com", 0).await;
    let path = h.files.config.url.strip_prefix("sqlite://").unwrap();
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{path}?mode=ro"))
        .await
        .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    assert!(std::path::Path::new(&format!("{path}-wal")).exists());
}

/// Deliveries sharing content across accounts race with flag changes, copies, expunges and account
/// deletion: every operation must succeed (no deadlock surfaces as an error), and the counts add up.
async fn mixed_concurrent_writers_never_deadlock(b: Backend) {
    let h = Harness::new(b).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(h.account(&format!("mix{i}@example.com"), 0).await.id);
    }
    let doomed = h.account("doomed@example.com", 0).await.id;
    let ids = Arc::new(ids);
    let mut tasks = Vec::new();
    for t in 0..6usize {
        let store = h.store.clone();
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            for j in 0..15usize {
                // Only a few distinct bodies: blobs are shared by many rows and accounts.
                let raw = message(&format!("shared{}", (t + j) % 3), "same");
                let (x, y) = (ids[(t + j) % 4], ids[(t + 2 * j + 1) % 4]);
                store
                    .deliver(Delivery {
                        raw,
                        internal_date: 0,
                        recipients: vec![x, y, doomed],
                        junk: false,
                    })
                    .await
                    .unwrap();
                let inbox = store.get_mailbox(x, "INBOX").await.unwrap().unwrap();
                let archive = store.get_mailbox(x, "Archive").await.unwrap().unwrap();
                let uids: Vec<Uid> = store
                    .mailbox_index(inbox.id)
                    .await
                    .unwrap()
                    .iter()
                    .map(|e| e.uid)
                    .collect();
                let some: Vec<Uid> = uids.iter().copied().step_by(2).collect();
                store
                    .store_flags(inbox.id, &some, FlagOp::Add, Flags::DELETED, &[], None)
                    .await
                    .unwrap();
                store
                    .copy_messages(inbox.id, &uids, archive.id)
                    .await
                    .unwrap();
                store.expunge(inbox.id, None).await.unwrap();
                let arch: Vec<Uid> = store
                    .mailbox_index(archive.id)
                    .await
                    .unwrap()
                    .iter()
                    .map(|e| e.uid)
                    .collect();
                store.expunge_uids(archive.id, &arch).await.unwrap();
            }
        }));
    }
    let store = h.store.clone();
    tasks.push(tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        store.delete_account(doomed).await.unwrap();
    }));
    for t in tasks {
        t.await.unwrap();
    }
    // What is left is consistent: quota usage equals the sizes of the remaining rows, and every
    // remaining message's blob is readable.
    for id in ids.iter() {
        let mut total = 0u64;
        for mb in h.store.list_mailboxes(*id).await.unwrap() {
            for e in h.store.mailbox_index(mb.id).await.unwrap() {
                total += e.size;
                h.store.message_raw(e.message_id).await.unwrap();
            }
        }
        assert_eq!(h.store.quota_used(*id).await.unwrap(), total);
    }
}

/// Mailboxes are bounded per account too.
#[tokio::test]
async fn mailboxes_are_bounded() {
    let h = Harness::new(Backend::Sqlite).await;
    let a = h.account("boxes@example.com", 0).await;
    let s = &h.store;
    let have = s.list_mailboxes(a.id).await.unwrap().len();
    for i in have..MAX_MAILBOXES {
        s.create_mailbox(a.id, &format!("b{i}"), None)
            .await
            .unwrap();
    }
    assert!(matches!(
        s.create_mailbox(a.id, "one-more", None).await,
        Err(StoreError::Limit(_))
    ));
    let gone = s.get_mailbox(a.id, "b9999").await.unwrap().unwrap();
    s.delete_mailbox(a.id, gone.id).await.unwrap();
    s.create_mailbox(a.id, "one-more", None).await.unwrap();
}

/// Subscriptions need no mailbox, so their number is bounded per account.
#[tokio::test]
async fn subscriptions_are_bounded() {
    let h = Harness::new(Backend::Sqlite).await;
    let a = h.account("many@example.com", 0).await;
    let s = &h.store;
    let have = s.subscriptions(a.id).await.unwrap().len();
    for i in have..MAX_SUBSCRIPTIONS {
        s.set_subscribed(a.id, &format!("n{i}"), true)
            .await
            .unwrap();
    }
    assert!(matches!(
        s.set_subscribed(a.id, "one-more", true).await,
        Err(StoreError::Limit(_))
    ));
    // One already there may be subscribed again; one dropped makes room.
    s.set_subscribed(a.id, "n9999", true).await.unwrap();
    s.set_subscribed(a.id, "n9999", false).await.unwrap();
    s.set_subscribed(a.id, "one-more", true).await.unwrap();
}
