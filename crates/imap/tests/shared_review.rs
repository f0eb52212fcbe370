//! Regressions from the review of the shared-mailbox change (RFC 4314 / RFC 2342): each test
//! failed before its fix, and its comment says what the defect was. Alice owns the mailboxes,
//! bob is the sharee (as in `shared.rs`). The PostgreSQL cases use the local server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use wharf_directory::{Directory, DirectoryConfig};
use wharf_imap::config::ImapConfig;
use wharf_store::{AclChange, Flags, Rights, StoreConfig};
use wharf_testkit::TempDatabase;

use crate::common;
use common::*;

on_both!(
    rename_does_not_reveal_a_mailbox_without_rights,
    create_does_not_reveal_a_mailbox_without_rights,
    setmetadata_needs_the_lookup_right,
    getmetadata_needs_the_lookup_right,
    myrights_needs_one_of_lrikxa,
    select_with_insert_right_is_read_write,
    the_owner_address_is_canonical,
    a_sharee_does_not_set_the_owners_special_use,
    personal_mailboxes_listed_under_shared_stay_reachable,
);

const OTHER: &str = "Other Users/alice@example.test";

fn tagged<'a>(r: &'a str, tag: &str) -> &'a str {
    r.lines()
        .find(|l| l.starts_with(&format!("{tag} ")))
        .unwrap_or("")
}

/// The reply without its tag.
fn untagged(r: &str, tag: &str) -> String {
    tagged(r, tag)
        .strip_prefix(&format!("{tag} "))
        .unwrap_or("")
        .to_string()
}

async fn setup(env: &impl HasBackend) -> (T, T) {
    let mut alice = T::login(env).await;
    for m in ["Team", "Secret"] {
        let r = alice.cmd(&format!("c CREATE {m}")).await;
        assert!(r.contains("c OK"), "{r}");
    }
    alice.append("Team", "", &message(1)).await;
    let bob = T::login_as(env, USER2, ImapConfig::default()).await;
    (alice, bob)
}

async fn grant(alice: &mut T, mailbox: &str, rights: &str) {
    let r = alice
        .cmd(&format!("g SETACL {mailbox} {USER2} \"{rights}\""))
        .await;
    assert!(r.contains("g OK"), "{r}");
}

/// Was: RENAME looks the target up in the owner's account before any rights check
/// (mailbox.rs `rename`: `mailboxes.get(account, &target.name)` before `may_create_below`), so a
/// sharee holding `x` on one mailbox learns whether any other name exists in the owner's account
/// (`NO [ALREADYEXISTS]` vs `NO [NOPERM]`), mailboxes it holds no right on included
/// (RFC 4314 §6; §4: RENAME needs `k` on the new parent first).
async fn rename_does_not_reveal_a_mailbox_without_rights(env: &impl HasBackend) {
    let (mut alice, mut bob) = setup(env).await;
    grant(&mut alice, "Team", "lrx").await;
    let exists = bob
        .cmd(&format!("r1 RENAME \"{OTHER}/Team\" \"{OTHER}/Secret\""))
        .await;
    let missing = bob
        .cmd(&format!("r2 RENAME \"{OTHER}/Team\" \"{OTHER}/Nothing\""))
        .await;
    assert!(!exists.contains("ALREADYEXISTS"), "{exists}");
    assert_eq!(
        untagged(&exists, "r1"),
        untagged(&missing, "r2"),
        "alice's Secret (no rights for bob) must look like a name that does not exist"
    );
}

/// Was: CREATE at the top of another account answers differently for a name that exists
/// ("No mailbox can be created there") and one that does not ("Only the owner creates
/// mailboxes at the top of an account"), so anyone, holding no right at all in that account,
/// can probe its mailbox names (RFC 4314 §6). mailbox.rs `create`, the `Ok(Some(_))` arm for
/// another account's mailbox vs `may_create_below`.
async fn create_does_not_reveal_a_mailbox_without_rights(env: &impl HasBackend) {
    let (_alice, mut bob) = setup(env).await;
    let exists = bob.cmd(&format!("c1 CREATE \"{OTHER}/Secret\"")).await;
    let missing = bob.cmd(&format!("c2 CREATE \"{OTHER}/Nothing\"")).await;
    assert_eq!(
        untagged(&exists, "c1"),
        untagged(&missing, "c2"),
        "the answer must not depend on whether alice has a mailbox of that name"
    );
}

/// Was: SETMETADATA on another account's mailbox asks only for `w` (metadata.rs
/// `set_metadata`: `metadata_target(mailbox, Rights::NONE)` then a `w` check), so a sharee with
/// `w` alone writes the owner's shared annotations on a mailbox that, for every other command,
/// does not exist for it. RFC 5464 §3.3: setting and retrieving mailbox annotations needs `l`
/// and one of `r s w i p`; RFC 4314 §6.
async fn setmetadata_needs_the_lookup_right(env: &impl HasBackend) {
    let (mut alice, mut bob) = setup(env).await;
    grant(&mut alice, "Team", "w").await;
    let r = bob
        .cmd(&format!("s STATUS \"{OTHER}/Team\" (MESSAGES)"))
        .await;
    assert!(r.starts_with("s NO [NONEXISTENT]"), "{r}");
    let r = bob
        .cmd(&format!(
            "m SETMETADATA \"{OTHER}/Team\" (/shared/comment \"written by bob\")"
        ))
        .await;
    assert!(r.starts_with("m NO [NONEXISTENT]"), "{r}");
    let r = alice.cmd("a GETMETADATA Team /shared/comment").await;
    assert!(!r.contains("written by bob"), "{r}");
}

/// Was: GETMETADATA on another account's mailbox asks for `r` and not `l` (metadata.rs
/// `get_metadata`: `metadata_target(mailbox, Rights::READ)`), while RFC 5464 §3.3 asks for `l`
/// and one of `r s w i p`: a grant of `r` without `l` reads the owner's shared annotations of
/// a mailbox that is not to be looked up, and a grant of `li` (or `lw`, `ls`, `lp`) is refused.
async fn getmetadata_needs_the_lookup_right(env: &impl HasBackend) {
    let (mut alice, mut bob) = setup(env).await;
    let r = alice
        .cmd("a SETMETADATA Team (/shared/comment \"team notes\")")
        .await;
    assert!(r.contains("a OK"), "{r}");
    grant(&mut alice, "Team", "r").await;
    let r = bob
        .cmd(&format!("g1 GETMETADATA \"{OTHER}/Team\" /shared/comment"))
        .await;
    assert!(!r.contains("team notes"), "r without l: {r}");
    grant(&mut alice, "Team", "li").await;
    let r = bob
        .cmd(&format!("g2 GETMETADATA \"{OTHER}/Team\" /shared/comment"))
        .await;
    assert!(
        r.contains("team notes"),
        "l and i allow reading annotations: {r}"
    );
}

/// Was: MYRIGHTS answers whoever holds any right (acl.rs `my_rights`: `acl_mailbox` with
/// `Rights::NONE`), while RFC 4314 §4 asks for one of `l r i k x a` ("Any"); with `w` alone the
/// mailbox does not exist for every other command (STATUS says NONEXISTENT) but MYRIGHTS
/// confirms it.
async fn myrights_needs_one_of_lrikxa(env: &impl HasBackend) {
    let (mut alice, mut bob) = setup(env).await;
    grant(&mut alice, "Team", "w").await;
    let r = bob.cmd(&format!("m MYRIGHTS \"{OTHER}/Team\"")).await;
    assert!(r.starts_with("m NO [NONEXISTENT]"), "{r}");
}

/// Was: SELECT is READ-ONLY without `s w t e` (namespace.rs `WRITE_RIGHTS` leaves out `i`);
/// RFC 4314 §5.2: READ-ONLY only when none of `i`, `e` and the shared flag rights is granted,
/// READ-WRITE (SHOULD) when one is (its Example 2: "rit" is READ-WRITE because of `i`).
async fn select_with_insert_right_is_read_write(env: &impl HasBackend) {
    let (mut alice, mut bob) = setup(env).await;
    grant(&mut alice, "Team", "lri").await;
    let r = bob.cmd(&format!("s SELECT \"{OTHER}/Team\"")).await;
    assert!(tagged(&r, "s").starts_with("s OK [READ-WRITE]"), "{r}");
}

/// Was: the owner's address is kept as the client spelled it (namespace.rs `target`:
/// `prefix: format!("{OTHER_USERS}/{owner}/")`), while LIST/LSUB spell it as stored. SUBSCRIBE
/// "Other Users/ALICE@EXAMPLE.TEST/Team" succeeds, but LSUB then shows that name as \Noselect
/// (LIST: \NonExistent) and the real mailbox as not subscribed.
async fn the_owner_address_is_canonical(env: &impl HasBackend) {
    let (mut alice, mut bob) = setup(env).await;
    grant(&mut alice, "Team", "lr").await;
    let r = bob
        .cmd("u SUBSCRIBE \"Other Users/ALICE@EXAMPLE.TEST/Team\"")
        .await;
    assert!(r.contains("u OK"), "{r}");
    let r = bob.cmd("l LSUB \"\" \"Other Users/*\"").await;
    assert!(
        r.contains(&format!("* LSUB () \"/\" \"{OTHER}/Team\"\r\n")),
        "the subscribed mailbox is listed under the owner's address as LIST spells it: {r}"
    );
    assert!(!r.contains("\\Noselect"), "{r}");
}

/// Was: a sharee holding `k` creates mailboxes in the owner's account with a special-use
/// role (mailbox.rs `create` passes `role` to `create(account, …)` for another account). The
/// roles are the owner's account configuration: alice ends up with two \Sent and two \Junk
/// mailboxes, one of them bob's creation, readable by bob (it inherits Team's ACL); her clients
/// may save her sent mail there, and the store's `junk_of` delivers her spam to the first \Junk
/// it finds (a \Junk bob made, once she has none of her own). RFC 6154 §3 lets a server refuse
/// USE with NO [USEATTR]/[NOPERM].
async fn a_sharee_does_not_set_the_owners_special_use(env: &impl HasBackend) {
    let (mut alice, mut bob) = setup(env).await;
    grant(&mut alice, "Team", "lrk").await;
    let _ = bob
        .cmd(&format!("c CREATE \"{OTHER}/Team/Sent2\" (USE (\\Sent))"))
        .await;
    let r = alice.cmd("l LIST (SPECIAL-USE) \"\" *").await;
    assert!(
        !r.contains("(\\Sent \\HasNoChildren) \"/\" Team/Sent2"),
        "bob gave alice's account a second \\Sent: {r}"
    );
}

/// Was: once `[imap] shared_account` is set, an account's own mailboxes whose names begin
/// with "Shared/" (creatable before, like any name) are still LISTed from the personal list
/// (list.rs `visible_mailboxes`), but every command resolves "Shared/…" in the shared account
/// (namespace.rs `place`): SELECT, STATUS, DELETE, RENAME say NONEXISTENT, and the messages in
/// them can no longer be reached. Same for personal names under "Other Users/" created before
/// this commit. LIST shows a name SELECT cannot open (RFC 9051 §6.3.9, RFC 2342 §4: namespaces
/// must not overlap).
async fn personal_mailboxes_listed_under_shared_stay_reachable(env: &impl HasBackend) {
    let mut alice = T::login(env).await;
    let r = alice.cmd("c CREATE Shared/Notes").await;
    assert!(r.contains("c OK"), "{r}");
    alice.append("Shared/Notes", "", &message(1)).await;
    env.add_account("shared@example.test").await;
    let cfg = ImapConfig {
        shared_account: Some("shared@example.test".into()),
        ..ImapConfig::default()
    };
    let mut alice = T::login_as(env, USER, cfg).await;
    let r = alice.cmd("l LIST \"\" *").await;
    assert!(r.contains("\"/\" Shared/Notes\r\n"), "{r}");
    let r = alice.cmd("s SELECT Shared/Notes").await;
    assert!(
        r.contains("* 1 EXISTS"),
        "a mailbox LIST shows can be selected, and its message is still there: {r}"
    );
}

/// A store on a database of its own on the local PostgreSQL, with the domain example.test; the
/// database and blob folder live as long as the first two values.
async fn postgres_store() -> (
    TempDatabase,
    tempfile::TempDir,
    Arc<dyn wharf_store::Store>,
    Directory,
) {
    let db = TempDatabase::create("wharf_review_acl");
    let blobs = tempfile::tempdir().unwrap();
    let store = wharf_store::open(&StoreConfig {
        url: db.url(),
        blob_dir: blobs.path().to_path_buf(),
        blob_s3: None,
        blob_grace: Duration::ZERO,
    })
    .await
    .unwrap();
    let directory = Directory::new(store.clone(), DirectoryConfig::default());
    directory.add_domain("example.test").await.unwrap();
    (db, blobs, store, directory)
}

/// Was (PostgreSQL): a COPY between accounts takes one more reference on each message's
/// blob row in UID order (messages.rs `copy_or_move` → `clone_message`), but blob rows are
/// shared between accounts and every other transaction locks several of them in hash order
/// (blob_life.rs `unref_blobs`, `settle_pins`). Two cross-account COPYs of the same two bodies
/// by unrelated account pairs (no account lock in common), one seeing them in the other UID
/// order, lock the two blob rows in opposite orders: a deadlock, which PostgreSQL breaks by
/// failing one of them ("deadlock detected"), so a client's COPY fails at random.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cross_account_copies_do_not_deadlock_on_postgres() {
    let (_db, _blobs, store, directory) = postgres_store().await;
    let mut inbox = Vec::new();
    for who in ["a", "b", "c", "d"] {
        let address = format!("{who}@example.test");
        directory.add_account(&address, PASS, 0).await.unwrap();
        let id = store
            .get_account_by_address(&address)
            .await
            .unwrap()
            .unwrap()
            .id;
        inbox.push(store.get_mailbox(id, "INBOX").await.unwrap().unwrap().id);
    }
    // Two bodies, stored once (same content, one blob row each), in a's INBOX in one UID
    // order and in c's in the other.
    let body = |i: usize| Bytes::from(message(i));
    for (mailbox, order) in [(inbox[0], [1, 2]), (inbox[2], [2, 1])] {
        for i in order {
            store
                .append(mailbox, body(i), Flags::empty(), &[], 0)
                .await
                .unwrap();
        }
    }
    let (a, b, c, d) = (inbox[0], inbox[1], inbox[2], inbox[3]);
    let run = |store: Arc<dyn wharf_store::Store>, src, dst| {
        tokio::spawn(async move {
            for _ in 0..150 {
                if let Err(e) = store.copy_messages(src, &[1, 2], dst).await {
                    return Err(e.to_string());
                }
            }
            Ok(())
        })
    };
    let one = run(store.clone(), a, b);
    let two = run(store.clone(), c, d);
    let (one, two) = (one.await.unwrap(), two.await.unwrap());
    assert!(
        one.is_ok() && two.is_ok(),
        "a COPY failed: {one:?} / {two:?}"
    );
}

/// Was: COPY/MOVE store the copies with every flag of the source and only afterwards take
/// off, in a second transaction, the flags the session may not set (copy_move.rs
/// `drop_unpermitted_flags`). RFC 4314 §4: without `t` the copy is never stored with \Deleted.
/// Between the two transactions the copy is \Deleted in the owner's mailbox, and an EXPUNGE
/// there (the owner's, or anyone's with `e`) removes it: with MOVE the source is already gone,
/// so the message is lost. Bob (only `i` on Team) moves \Deleted messages of his INBOX into
/// alice's Team while alice expunges Team: nothing bob moved may be expunged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_without_t_never_stores_deleted() {
    let env = sql_env().await;
    let mut alice = T::login(&env).await;
    alice.cmd("c CREATE Team").await;
    let r = alice.cmd(&format!("g SETACL Team {USER2} i")).await;
    assert!(r.contains("g OK"), "{r}");
    let mut bob = T::login_as(&env, USER2, ImapConfig::default()).await;
    const N: usize = 60;
    for i in 0..N {
        bob.append("INBOX", "(\\Deleted) ", &message(i)).await;
    }
    bob.cmd("s SELECT INBOX").await;
    alice.cmd("a SELECT Team").await;
    let mover = tokio::spawn(async move {
        for uid in 1..=N {
            let r = bob.cmd(&format!("m UID MOVE {uid} \"{OTHER}/Team\"")).await;
            assert!(r.contains("m OK"), "{r}");
        }
    });
    let mut expunged = 0;
    while !mover.is_finished() {
        let r = alice.cmd("e EXPUNGE").await;
        expunged += r.matches(" EXPUNGE\r\n").count();
    }
    mover.await.unwrap();
    let r = alice.cmd("e EXPUNGE").await;
    expunged += r.matches(" EXPUNGE\r\n").count();
    assert_eq!(expunged, 0, "messages bob moved were expunged (lost)");
}

/// Was (PostgreSQL): a COPY from the sharee's own mailbox into the owner's (messages.rs
/// `copy_or_move`) holds both account rows `FOR UPDATE` and then updates the target mailbox
/// row (`bump_mailbox`). The owner's SETACL on that mailbox (acl.rs `change_mailbox_acl`) locks
/// the mailbox row `FOR UPDATE`, without its account, and then inserts an ACL row whose foreign
/// key to the grantee's account takes `FOR KEY SHARE` on the sharee's account row: each waits
/// for the other. Before 4a9be85 no transaction held another account's lock while it touched a
/// mailbox row, so this cycle could not form; the module's discipline (sql/mod.rs: accounts
/// first, then mailbox rows) was broken by `change_mailbox_acl`. PostgreSQL breaks the
/// cycle by failing one of the two commands.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_copy_into_a_shared_mailbox_and_its_setacl_do_not_deadlock_on_postgres() {
    let (_db, _blobs, store, directory) = postgres_store().await;
    let mut ids = Vec::new();
    for address in [USER, USER2] {
        directory.add_account(address, PASS, 0).await.unwrap();
        ids.push(
            store
                .get_account_by_address(address)
                .await
                .unwrap()
                .unwrap()
                .id,
        );
    }
    let (alice, bob) = (ids[0], ids[1]);
    let team = store.create_mailbox(alice, "Team", None).await.unwrap().id;
    let bob_inbox = store.get_mailbox(bob, "INBOX").await.unwrap().unwrap().id;
    store
        .append(bob_inbox, Bytes::from(message(1)), Flags::empty(), &[], 0)
        .await
        .unwrap();
    let s = store.clone();
    let copies = tokio::spawn(async move {
        for _ in 0..300 {
            if let Err(e) = s.copy_messages(bob_inbox, &[1], team).await {
                return Err(e.to_string());
            }
        }
        Ok(())
    });
    let mut setacl = Ok(());
    let mut k = 0;
    while !copies.is_finished() {
        let rights = if k % 2 == 0 { "lri" } else { "lrik" };
        k += 1;
        let change = AclChange::Replace(Rights::parse(rights).unwrap());
        if let Err(e) = store
            .change_mailbox_acl(alice, team, Some(bob), change)
            .await
        {
            setacl = Err(e.to_string());
            break;
        }
    }
    let copies = copies.await.unwrap();
    assert!(
        copies.is_ok() && setacl.is_ok(),
        "COPY: {copies:?}, SETACL: {setacl:?}"
    );
}
