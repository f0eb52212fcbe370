//! Mailbox ACLs (IMAP RFC 4314) in the store, on SQLite and on PostgreSQL: setting, replacing
//! and removing entries, "anyone", the owner's implicit rights, what an account sees shared with
//! it, the entry limit, and entries following their mailbox and grantee out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use wharf_store::*;
use wharf_testkit::store::store_account;
use wharf_testkit::{Backend, TestStore, on_both_backends};

on_both_backends!(threads = 2;
    acl_entries_grant_rights_and_show_shared_mailboxes,
    acl_refusals_and_limits,
    acl_entries_go_with_their_mailbox_and_grantee,
    copies_and_moves_between_accounts,
    urlauth_keys_are_made_once_and_reset,
    flags_are_replaced_within_a_mask,
);

async fn open(b: Backend) -> (Arc<dyn Store>, TestStore) {
    let files = TestStore::new(b);
    (files.open().await, files)
}

fn r(letters: &str) -> Rights {
    Rights::parse(letters).unwrap()
}

#[test]
fn rights_letters() {
    assert_eq!(r("lrswipkxtea"), Rights::ALL);
    assert_eq!(Rights::ALL.letters(), "lrswipkxtea");
    assert_eq!(Rights::ALL.imap_letters(), "lrswipkxteacd");
    // The obsolete c and d stand for k+x and t+e (RFC 4314 §2.1.1).
    assert_eq!(r("lrc"), r("lrkx"));
    assert_eq!(r("d"), r("te"));
    assert_eq!(r("lrk").imap_letters(), "lrkc");
    assert_eq!(r("lrt").imap_letters(), "lrtd");
    assert_eq!(r("rl").letters(), "lr");
    assert_eq!(r(""), Rights::NONE);
    assert_eq!(Rights::parse("lrQ"), Err('Q'));
    assert_eq!(Rights::parse("l1"), Err('1'));
    assert!(r("lr").contains(Rights::READ));
    assert!(!r("lr").contains(r("lrs")));
}

async fn acl_entries_grant_rights_and_show_shared_mailboxes(b: Backend) {
    let (store, _files) = open(b).await;
    let owner = store_account(store.as_ref(), "owner@example.org", 0).await;
    let bob = store_account(store.as_ref(), "bob@example.org", 0).await;
    let eve = store_account(store.as_ref(), "eve@example.net", 0).await;
    let team = store.create_mailbox(owner.id, "Team", None).await.unwrap();
    let private = store
        .create_mailbox(owner.id, "Private", None)
        .await
        .unwrap();

    // The owner holds everything; nobody else anything yet; a missing mailbox gives none.
    assert_eq!(
        store.rights_on(owner.id, team.id).await.unwrap(),
        Rights::ALL
    );
    assert_eq!(
        store.rights_on(bob.id, team.id).await.unwrap(),
        Rights::NONE
    );
    assert_eq!(
        store.rights_on(bob.id, 999_999).await.unwrap(),
        Rights::NONE
    );
    assert!(store.shared_with(bob.id).await.unwrap().is_empty());

    let mut events = store.subscribe(bob.id);
    store
        .set_mailbox_acl(owner.id, team.id, Some(bob.id), r("lrs"))
        .await
        .unwrap();
    // Bob's sessions are told their list changed.
    assert_eq!(events.recv().await.unwrap(), MailboxEvent::MailboxesChanged);
    store
        .set_mailbox_acl(owner.id, team.id, None, r("l"))
        .await
        .unwrap();
    assert_eq!(
        store.mailbox_acl(team.id).await.unwrap(),
        vec![(None, r("l")), (Some(bob.id), r("lrs"))]
    );
    // Bob holds his entry and anyone's; eve only anyone's.
    assert_eq!(store.rights_on(bob.id, team.id).await.unwrap(), r("lrs"));
    assert_eq!(store.rights_on(eve.id, team.id).await.unwrap(), r("l"));
    assert_eq!(
        store.rights_on(eve.id, private.id).await.unwrap(),
        Rights::NONE
    );
    let shared = store.shared_with(bob.id).await.unwrap();
    assert_eq!(shared.len(), 1);
    assert_eq!(shared[0].mailbox.id, team.id);
    assert_eq!(shared[0].mailbox.name, "Team");
    assert_eq!(shared[0].owner, "owner@example.org");
    assert_eq!(shared[0].rights, r("lrs"));
    // The owner's own mailboxes are not "shared with" it, even with an anyone entry.
    assert!(store.shared_with(owner.id).await.unwrap().is_empty());

    // Replace, then remove with empty rights.
    store
        .set_mailbox_acl(owner.id, team.id, Some(bob.id), r("lrswi"))
        .await
        .unwrap();
    assert_eq!(store.rights_on(bob.id, team.id).await.unwrap(), r("lrswi"));
    store
        .set_mailbox_acl(owner.id, team.id, Some(bob.id), Rights::NONE)
        .await
        .unwrap();
    assert_eq!(
        store.mailbox_acl(team.id).await.unwrap(),
        vec![(None, r("l"))]
    );
    assert_eq!(store.rights_on(bob.id, team.id).await.unwrap(), r("l"));
    // Additions and removals apply to the stored entry in the write: two at once both count.
    store
        .set_mailbox_acl(owner.id, team.id, Some(bob.id), r("l"))
        .await
        .unwrap();
    let (x, y) = tokio::join!(
        store.change_mailbox_acl(owner.id, team.id, Some(bob.id), AclChange::Add(r("r"))),
        store.change_mailbox_acl(owner.id, team.id, Some(bob.id), AclChange::Add(r("w"))),
    );
    x.unwrap();
    y.unwrap();
    assert_eq!(store.rights_on(bob.id, team.id).await.unwrap(), r("lrw"));
    store
        .change_mailbox_acl(owner.id, team.id, Some(bob.id), AclChange::Remove(r("lrw")))
        .await
        .unwrap();
    assert_eq!(
        store.mailbox_acl(team.id).await.unwrap(),
        vec![(None, r("l"))]
    );
    // A rename keeps the ACL (it follows the row).
    store
        .rename_mailbox(owner.id, team.id, "Team2")
        .await
        .unwrap();
    let shared = store.shared_with(eve.id).await.unwrap();
    assert_eq!(shared[0].mailbox.name, "Team2");
}

async fn acl_refusals_and_limits(b: Backend) {
    let (store, _files) = open(b).await;
    let owner = store_account(store.as_ref(), "owner@example.org", 0).await;
    let bob = store_account(store.as_ref(), "bob@example.org", 0).await;
    let team = store.create_mailbox(owner.id, "Team", None).await.unwrap();
    let bobs = store.create_mailbox(bob.id, "Mine", None).await.unwrap();
    // Only the owner sets a mailbox's ACL here; the owner's rights are not in it.
    assert!(matches!(
        store.set_mailbox_acl(owner.id, bobs.id, None, r("l")).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .set_mailbox_acl(owner.id, team.id, Some(owner.id), r("l"))
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store
            .set_mailbox_acl(owner.id, team.id, Some(987_654), r("l"))
            .await,
        Err(StoreError::NotFound(_))
    ));
    // At most MAX_ACL_ENTRIES grantees per mailbox; replacing one still works at the limit.
    let mut grantees = Vec::new();
    for i in 0..MAX_ACL_ENTRIES {
        let a = store_account(store.as_ref(), &format!("g{i}@example.org"), 0).await;
        store
            .set_mailbox_acl(owner.id, team.id, Some(a.id), r("l"))
            .await
            .unwrap();
        grantees.push(a.id);
    }
    assert!(matches!(
        store
            .set_mailbox_acl(owner.id, team.id, Some(bob.id), r("l"))
            .await,
        Err(StoreError::Limit(_))
    ));
    store
        .set_mailbox_acl(owner.id, team.id, Some(grantees[0]), r("lr"))
        .await
        .unwrap();
    assert_eq!(
        store.mailbox_acl(team.id).await.unwrap().len(),
        MAX_ACL_ENTRIES
    );
}

async fn acl_entries_go_with_their_mailbox_and_grantee(b: Backend) {
    let (store, _files) = open(b).await;
    let owner = store_account(store.as_ref(), "owner@example.org", 0).await;
    let bob = store_account(store.as_ref(), "bob@example.org", 0).await;
    let team = store.create_mailbox(owner.id, "Team", None).await.unwrap();
    let other = store.create_mailbox(owner.id, "Other", None).await.unwrap();
    store
        .set_mailbox_acl(owner.id, team.id, Some(bob.id), r("lr"))
        .await
        .unwrap();
    store
        .set_mailbox_acl(owner.id, other.id, Some(bob.id), r("lr"))
        .await
        .unwrap();
    store.delete_mailbox(owner.id, team.id).await.unwrap();
    let shared = store.shared_with(bob.id).await.unwrap();
    assert_eq!(shared.len(), 1);
    assert_eq!(shared[0].mailbox.id, other.id);
    // A re-created mailbox of the same name starts with no entries.
    let again = store.create_mailbox(owner.id, "Team", None).await.unwrap();
    assert!(store.mailbox_acl(again.id).await.unwrap().is_empty());
    // The grantee's account gone: its entries go.
    store.delete_account(bob.id).await.unwrap();
    assert!(store.mailbox_acl(other.id).await.unwrap().is_empty());
}

/// COPY and MOVE between two accounts (a mailbox shared through its ACL): the copy is the target
/// owner's own message (its quota, its search text, a body that outlives the source), and a move
/// hands the size over from one account's usage to the other's.
async fn copies_and_moves_between_accounts(b: Backend) {
    let (store, _files) = open(b).await;
    let owner = store_account(store.as_ref(), "owner@example.org", 0).await;
    let bob = store_account(store.as_ref(), "bob@example.org", 0).await;
    let team = store.create_mailbox(owner.id, "Team", None).await.unwrap();
    let inbox = store.get_mailbox(bob.id, "INBOX").await.unwrap().unwrap();
    let raw = b"From: a@example.org\r\nSubject: quarterly figures\r\n\r\nthe zanzibar numbers\r\n";
    let size = raw.len() as u64;
    let first = store
        .append(
            team.id,
            bytes::Bytes::from_static(raw),
            Flags::SEEN,
            &[],
            1_700_000_000,
        )
        .await
        .unwrap();
    assert_eq!(store.quota_used(owner.id).await.unwrap(), size);

    let copied = store
        .copy_messages(team.id, &[first.uid], inbox.id)
        .await
        .unwrap();
    assert_eq!(copied.mapping.len(), 1);
    assert_eq!(store.quota_used(owner.id).await.unwrap(), size);
    assert_eq!(store.quota_used(bob.id).await.unwrap(), size);
    let index = store.mailbox_index(inbox.id).await.unwrap();
    assert_eq!(index.len(), 1);
    let copy = &index[0];
    assert_ne!(
        copy.message_id, first.message_id,
        "bob's copy is his own message"
    );
    assert!(copy.flags.contains(Flags::SEEN));
    assert_eq!(
        store
            .search_text(inbox.id, TextField::Body, "zanzibar")
            .await
            .unwrap(),
        vec![copy.uid]
    );

    // The owner expunges the original: bob's copy keeps its body, even after a sweep.
    store
        .store_flags(
            team.id,
            &[first.uid],
            FlagOp::Add,
            Flags::DELETED,
            &[],
            None,
        )
        .await
        .unwrap();
    store.expunge(team.id, None).await.unwrap();
    store.sweep_orphans().await.unwrap();
    assert_eq!(store.quota_used(owner.id).await.unwrap(), 0);
    assert_eq!(
        &store.message_raw(copy.message_id).await.unwrap()[..],
        &raw[..]
    );

    // Moving it back: bob's usage goes to the owner.
    let moved = store
        .move_messages(inbox.id, &[copy.uid], team.id)
        .await
        .unwrap();
    assert_eq!(moved.mapping.len(), 1);
    assert_eq!(store.quota_used(bob.id).await.unwrap(), 0);
    assert_eq!(store.quota_used(owner.id).await.unwrap(), size);
    assert!(store.mailbox_index(inbox.id).await.unwrap().is_empty());
    let back = store.mailbox_index(team.id).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(
        &store.message_raw(back[0].message_id).await.unwrap()[..],
        &raw[..]
    );

    // The target owner's quota decides.
    store.set_account_quota(bob.id, 1).await.unwrap();
    assert!(matches!(
        store.copy_messages(team.id, &[back[0].uid], inbox.id).await,
        Err(StoreError::OverQuota)
    ));
    assert!(matches!(
        store.move_messages(team.id, &[back[0].uid], inbox.id).await,
        Err(StoreError::OverQuota)
    ));
    assert_eq!(store.quota_used(owner.id).await.unwrap(), size);
}

/// URLAUTH access keys (RFC 4467): made on first use (once, also when asked twice at once),
/// read without being made, reset per mailbox or per account, gone with the mailbox.
async fn urlauth_keys_are_made_once_and_reset(b: Backend) {
    let (store, _files) = open(b).await;
    let owner = store_account(store.as_ref(), "owner@example.org", 0).await;
    let other = store_account(store.as_ref(), "other@example.org", 0).await;
    let a = store.create_mailbox(owner.id, "A", None).await.unwrap();
    let b2 = store.create_mailbox(owner.id, "B", None).await.unwrap();
    let theirs = store.create_mailbox(other.id, "T", None).await.unwrap();
    assert_eq!(store.urlauth_key(a.id, false).await.unwrap(), None);
    let (k1, k2) = tokio::join!(store.urlauth_key(a.id, true), store.urlauth_key(a.id, true));
    let key = k1.unwrap().unwrap();
    assert_eq!(key.len(), 64);
    assert_eq!(k2.unwrap().unwrap(), key, "one key wins");
    assert_eq!(
        store.urlauth_key(a.id, false).await.unwrap(),
        Some(key.clone())
    );
    let kb = store.urlauth_key(b2.id, true).await.unwrap().unwrap();
    assert_ne!(kb, key);
    let kt = store.urlauth_key(theirs.id, true).await.unwrap().unwrap();
    // One mailbox's reset leaves the others; another account's reset leaves ours.
    store
        .reset_urlauth_keys(owner.id, Some(a.id))
        .await
        .unwrap();
    assert_eq!(store.urlauth_key(a.id, false).await.unwrap(), None);
    assert_eq!(store.urlauth_key(b2.id, false).await.unwrap(), Some(kb));
    store
        .reset_urlauth_keys(owner.id, Some(theirs.id))
        .await
        .unwrap();
    assert_eq!(store.urlauth_key(theirs.id, false).await.unwrap(), Some(kt));
    let fresh = store.urlauth_key(a.id, true).await.unwrap().unwrap();
    assert_ne!(fresh, key, "a reset key is a new one");
    store.reset_urlauth_keys(owner.id, None).await.unwrap();
    assert_eq!(store.urlauth_key(a.id, false).await.unwrap(), None);
    assert_eq!(store.urlauth_key(b2.id, false).await.unwrap(), None);
    // A deleted mailbox takes its key; a missing one gets none.
    store.urlauth_key(b2.id, true).await.unwrap();
    store.delete_mailbox(owner.id, b2.id).await.unwrap();
    assert_eq!(store.urlauth_key(b2.id, true).await.unwrap(), None);
}

/// FLAGS replaced within a mask (an IMAP grantee with some of `s`, `t`, `w`): the flags outside
/// it, and the keywords without `keywords`, stay as they were, in one write.
async fn flags_are_replaced_within_a_mask(b: Backend) {
    let (store, _files) = open(b).await;
    let owner = store_account(store.as_ref(), "owner@example.org", 0).await;
    let inbox = store.get_mailbox(owner.id, "INBOX").await.unwrap().unwrap();
    let raw = bytes::Bytes::from_static(b"Subject: m\r\n\r\nbody\r\n");
    let kept = Flags::FLAGGED.union(Flags::ANSWERED);
    let m = store
        .append(inbox.id, raw, kept, &["$Work".to_string()], 1_700_000_000)
        .await
        .unwrap();
    // Only \Seen and \Deleted may change: FLAGS (\Seen \Draft) sets \Seen, drops nothing else,
    // ignores \Draft, keeps the keyword.
    let mask = FlagMask {
        flags: Flags::SEEN.union(Flags::DELETED),
        keywords: false,
    };
    let (updates, _) = store
        .store_flags(
            inbox.id,
            &[m.uid],
            FlagOp::ReplaceWithin(mask),
            Flags::SEEN.union(Flags::DRAFT),
            &["$Other".to_string()],
            None,
        )
        .await
        .unwrap();
    let u = &updates[0];
    assert!(u.flags.contains(Flags::SEEN.union(kept)), "{:?}", u.flags);
    assert!(!u.flags.contains(Flags::DRAFT));
    assert_eq!(u.keywords, vec!["$Work".to_string()]);
    // With keywords in the mask they are replaced; FLAGS () clears what the mask holds.
    let mask = FlagMask {
        flags: Flags::SEEN,
        keywords: true,
    };
    let (updates, _) = store
        .store_flags(
            inbox.id,
            &[m.uid],
            FlagOp::ReplaceWithin(mask),
            Flags::empty(),
            &[],
            None,
        )
        .await
        .unwrap();
    let u = &updates[0];
    assert!(!u.flags.contains(Flags::SEEN));
    assert!(u.flags.contains(kept));
    assert!(u.keywords.is_empty(), "{:?}", u.keywords);
}
