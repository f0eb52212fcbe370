//! Transcripts: mailboxes shared between accounts (RFC 4314 rights, RFC 2342 namespaces). Alice
//! shares "Team" with bob one right at a time, and each right is checked to allow exactly its
//! commands: l, r, s, w, i, p, k, x, t, e, a. Also: what a sharee without rights learns (nothing),
//! changes reaching the sharee, the owner's quota, and the "Shared/" namespace. On the in-memory
//! double and on the embedded store (whose cross-account COPY gives the copy its own message row).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use wharf_imap::config::ImapConfig;
use wharf_imap::{Input, Next};

use crate::common;
use common::*;

on_both!(
    each_right_allows_its_commands,
    a_mailbox_without_rights_does_not_exist,
    the_sharee_sees_the_owners_changes,
    idle_on_a_shared_mailbox_wakes_for_its_owners_changes_only,
    the_owner_pays_the_quota,
    copies_between_accounts_are_independent,
    the_shared_namespace,
    esearch_reaches_shared_mailboxes_it_may_read,
    catenate_urls_reach_shared_mailboxes_it_may_read
);

const TEAM: &str = "\"Other Users/alice@example.test/Team\"";

fn first_line(r: &str) -> &str {
    r.lines().next().unwrap_or("")
}

fn tagged<'a>(r: &'a str, tag: &str) -> &'a str {
    r.lines()
        .find(|l| l.starts_with(&format!("{tag} ")))
        .unwrap_or("")
}

/// Alice's session with "Team" holding two messages (the second flagged), and bob's.
async fn setup(env: &impl HasBackend) -> (T, T) {
    let mut alice = T::login(env).await;
    alice.cmd("c CREATE Team").await;
    alice.append("Team", "", &message(1)).await;
    alice.append("Team", "(\\Flagged) ", &message(2)).await;
    let bob = T::login_as(env, USER2, ImapConfig::default()).await;
    (alice, bob)
}

async fn grant(alice: &mut T, rights: &str) {
    let r = alice.cmd(&format!("g SETACL Team {USER2} {rights}")).await;
    assert_eq!(r, "g OK SETACL completed\r\n");
}

async fn each_right_allows_its_commands(env: &impl HasBackend) {
    let (mut alice, mut bob) = setup(env).await;
    let r = bob.cmd("n NAMESPACE").await;
    assert_eq!(
        first_line(&r),
        "* NAMESPACE ((\"\" \"/\")) ((\"Other Users/\" \"/\")) NIL"
    );
    let r = bob.cmd("c CAPABILITY").await;
    assert!(r.contains(" ACL RIGHTS=texk"), "{r}");

    // l: listed, and nothing else.
    grant(&mut alice, "l").await;
    let r = bob.cmd("l LIST \"\" \"Other Users/*\"").await;
    assert!(
        r.contains("* LIST (\\HasNoChildren) \"/\" \"Other Users/alice@example.test/Team\"\r\n"),
        "{r}"
    );
    let r = bob.cmd("l1 LIST \"\" %").await;
    assert!(
        r.contains("* LIST (\\Noselect \\HasChildren) \"/\" \"Other Users\"\r\n"),
        "{r}"
    );
    let r = bob.cmd(&format!("m MYRIGHTS {TEAM}")).await;
    assert_eq!(first_line(&r), format!("* MYRIGHTS {TEAM} l"));
    for cmd in [
        format!("s1 SELECT {TEAM}"),
        format!("s2 STATUS {TEAM} (MESSAGES)"),
        format!("s3 GETACL {TEAM}"),
        format!("s4 DELETE {TEAM}"),
    ] {
        let r = bob.cmd(&cmd).await;
        assert!(r.contains(" NO [NOPERM]"), "{cmd}: {r}");
    }
    // LIST-STATUS leaves out what may not be read.
    let r = bob
        .cmd("l2 LIST \"\" \"Other Users/*\" RETURN (STATUS (MESSAGES))")
        .await;
    assert!(!r.contains("* STATUS"), "{r}");

    // r: read, read-only, no implicit \Seen.
    grant(&mut alice, "lr").await;
    let r = bob.cmd(&format!("s STATUS {TEAM} (MESSAGES)")).await;
    assert_eq!(first_line(&r), format!("* STATUS {TEAM} (MESSAGES 2)"));
    let r = bob.cmd(&format!("s SELECT {TEAM}")).await;
    assert!(r.contains("* 2 EXISTS"), "{r}");
    assert!(r.contains("* OK [PERMANENTFLAGS ()]"), "{r}");
    assert!(
        tagged(&r, "s").starts_with("s OK [READ-ONLY]"),
        "without a right to change anything SELECT is read-only: {r}"
    );
    let r = bob.cmd("f FETCH 1 (BODY[] FLAGS)").await;
    assert!(r.contains("Hello body 1"), "{r}");
    assert!(!r.contains("\\Seen"), "{r}");
    let r = bob.cmd("st STORE 1 +FLAGS (\\Flagged)").await;
    assert!(r.contains("st NO [READ-ONLY]"), "{r}");
    let r = bob.cmd("se SEARCH FLAGGED").await;
    assert_eq!(first_line(&r), "* SEARCH 2");
    // Reading allows copying out, into bob's own INBOX.
    let r = bob.cmd("cp COPY 1:2 INBOX").await;
    assert!(r.contains("cp OK [COPYUID"), "{r}");
    // But moving out needs t and e.
    let r = bob.cmd("mv MOVE 1 INBOX").await;
    assert!(r.contains("mv NO"), "{r}");

    // s: \Seen only, kept across sessions; other flags in the same STORE are left alone.
    grant(&mut alice, "lrs").await;
    let r = bob.cmd(&format!("s SELECT {TEAM}")).await;
    assert!(r.contains("* OK [PERMANENTFLAGS (\\Seen)]"), "{r}");
    assert!(tagged(&r, "s").starts_with("s OK [READ-WRITE]"), "{r}");
    let r = bob.cmd("st STORE 1 +FLAGS (\\Seen \\Flagged)").await;
    assert!(r.contains("* 1 FETCH (FLAGS (\\Seen \\Recent))"), "{r}");
    let r = bob.cmd("f FETCH 2 BODY[TEXT]").await;
    assert!(
        r.contains("\\Seen"),
        "the implicit \\Seen is set with s: {r}"
    );
    let r = alice.cmd("a1 STATUS Team (UNSEEN)").await;
    assert_eq!(first_line(&r), "* STATUS Team (UNSEEN 0)");
    // FLAGS (…) replaces only what s allows: \Flagged stays on message 2.
    let r = bob.cmd("st STORE 2 FLAGS ()").await;
    assert!(r.contains("* 2 FETCH (FLAGS (\\Flagged \\Recent))"), "{r}");
    let r = bob.cmd("ex EXPUNGE").await;
    assert!(r.contains("ex NO [NOPERM]"), "{r}");

    // w: the other flags and keywords.
    grant(&mut alice, "lrsw").await;
    let r = bob.cmd(&format!("s SELECT {TEAM}")).await;
    assert!(
        r.contains("* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Seen \\Draft"),
        "{r}"
    );
    assert!(r.contains(" \\*)]"), "{r}");
    let r = bob
        .cmd("st STORE 1 +FLAGS (\\Answered $Done \\Deleted)")
        .await;
    assert!(
        r.contains("* 1 FETCH (FLAGS (\\Seen \\Answered $Done))"),
        "\\Deleted needs t: {r}"
    );

    // t and e: \Deleted, then EXPUNGE.
    grant(&mut alice, "lrswt").await;
    bob.cmd(&format!("s SELECT {TEAM}")).await;
    let r = bob.cmd("st STORE 1 +FLAGS (\\Deleted)").await;
    assert!(r.contains("\\Deleted"), "{r}");
    let r = bob.cmd("ex EXPUNGE").await;
    assert!(r.contains("ex NO [NOPERM]"), "{r}");
    // CLOSE without e closes without expunging.
    let r = bob.cmd("cl CLOSE").await;
    assert!(r.contains("cl OK"), "{r}");
    let r = alice.cmd("a2 STATUS Team (MESSAGES)").await;
    assert_eq!(first_line(&r), "* STATUS Team (MESSAGES 2)");
    grant(&mut alice, "lrswte").await;
    bob.cmd(&format!("s SELECT {TEAM}")).await;
    let r = bob.cmd("ex EXPUNGE").await;
    assert!(r.contains("* 1 EXPUNGE\r\nex OK"), "{r}");

    // i: APPEND and COPY into; flags the other rights do not cover are dropped.
    let r = bob.cmd("u UNSELECT").await;
    assert!(r.contains("u OK"), "{r}");
    let msg = message(3);
    let append = format!("ap APPEND {TEAM} {{{}}}\r\n{msg}\r\n", msg.len());
    let r = bob.raw(append.as_bytes()).await;
    assert!(r.contains("ap NO [NOPERM]"), "{r}");
    grant(&mut alice, "lri").await;
    let append = format!(
        "ap APPEND {TEAM} (\\Seen \\Flagged) {{{}}}\r\n{msg}\r\n",
        msg.len()
    );
    let r = bob.raw(append.as_bytes()).await;
    assert!(r.contains("ap OK [APPENDUID"), "{r}");
    bob.cmd("s SELECT INBOX").await;
    bob.cmd("st STORE 1 +FLAGS (\\Seen)").await;
    let r = bob.cmd(&format!("cp COPY 1 {TEAM}")).await;
    assert!(r.contains("cp OK [COPYUID"), "{r}");
    let r = alice.cmd("a3 SELECT Team").await;
    assert!(r.contains("* 3 EXISTS"), "{r}");
    let r = alice
        .cmd("a4 FETCH 2:3 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        .await;
    assert!(r.contains("Message number 3"), "{r}");
    assert!(
        !r.contains("\\Seen") && !r.contains("\\Flagged"),
        "without s and w the flags were dropped: {r}"
    );
    alice.cmd("a5 UNSELECT").await;

    // p: granted and shown; it has no command of its own.
    grant(&mut alice, "lrp").await;
    let r = bob.cmd(&format!("m MYRIGHTS {TEAM}")).await;
    assert_eq!(first_line(&r), format!("* MYRIGHTS {TEAM} lrp"));

    // k: create below it; the child inherits Team's ACL.
    let sub = "\"Other Users/alice@example.test/Team/Sub\"";
    let r = bob.cmd(&format!("k CREATE {sub}")).await;
    assert!(r.contains("k NO [NOPERM]"), "{r}");
    grant(&mut alice, "lrk").await;
    let r = bob.cmd(&format!("k CREATE {sub}")).await;
    assert!(r.contains("k OK"), "{r}");
    let r = alice.cmd("a6 LIST \"\" Team/*").await;
    assert!(r.contains("\"/\" Team/Sub\r\n"), "{r}");
    let r = alice.cmd("a7 GETACL Team/Sub").await;
    assert!(r.contains(&format!("{USER2} lrkc")), "{r}");
    // Nothing is created at the top of another account.
    let r = bob
        .cmd("k2 CREATE \"Other Users/alice@example.test/Top\"")
        .await;
    assert!(r.contains("k2 NO [NOPERM]"), "{r}");
    // k on the nearest existing superior is enough (RFC 4314 §4): the missing ones between are
    // created too, each with its parent's ACL.
    let deep = "\"Other Users/alice@example.test/Team/Deep/Er\"";
    let r = bob.cmd(&format!("k3 CREATE {deep}")).await;
    assert!(r.contains("k3 OK"), "{r}");
    let r = alice.cmd("a8 LIST \"\" Team/Deep*").await;
    assert!(r.contains("\"/\" Team/Deep\r\n"), "{r}");
    assert!(r.contains("\"/\" Team/Deep/Er\r\n"), "{r}");
    let r = alice.cmd("a9 GETACL Team/Deep").await;
    assert!(r.contains(&format!("{USER2} lrkc")), "{r}");
    // Below a mailbox bob may only see, the answer names the missing right; below one he may
    // not see at all, it is the answer for a name nobody has.
    alice.cmd("a10 CREATE Plain").await;
    let plain_deep = "\"Other Users/alice@example.test/Plain/x/y\"";
    let r = bob.cmd(&format!("k4 CREATE {plain_deep}")).await;
    assert_eq!(
        tagged(&r, "k4"),
        tagged(
            &bob.cmd("k5 CREATE \"Other Users/alice@example.test/Nowhere/x/y\"")
                .await
                .replace("k5", "k4"),
            "k4"
        )
    );
    alice.cmd(&format!("a11 SETACL Plain {USER2} l")).await;
    let r = bob.cmd(&format!("k6 CREATE {plain_deep}")).await;
    assert!(r.contains("k6 NO [NOPERM]") && r.contains('k'), "{r}");
    let r = alice.cmd("a12 LIST \"\" Plain/*").await;
    assert!(!r.contains("Plain/x"), "nothing created: {r}");

    // x: rename and delete (the rename also needs k on the new parent).
    let sub2 = "\"Other Users/alice@example.test/Team/Sub2\"";
    let r = bob.cmd(&format!("x RENAME {sub} {sub2}")).await;
    assert!(r.contains("x NO [NOPERM]"), "{r}");
    alice.cmd(&format!("a8 SETACL Team/Sub {USER2} lrkx")).await;
    let r = bob.cmd(&format!("x RENAME {sub} {sub2}")).await;
    assert!(r.contains("x OK"), "{r}");
    // The inferiors move too: each needs x. Sub2/Deep inherits Sub's ACL (lrkx) when made, then
    // loses x.
    let deep = "\"Other Users/alice@example.test/Team/Sub2/Deep\"";
    let r = bob.cmd(&format!("y CREATE {deep}")).await;
    assert!(r.contains("y OK"), "{r}");
    alice
        .cmd(&format!("a9 SETACL Team/Sub2/Deep {USER2} -x"))
        .await;
    let sub3 = "\"Other Users/alice@example.test/Team/Sub3\"";
    let r = bob.cmd(&format!("y1 RENAME {sub2} {sub3}")).await;
    assert!(r.contains("y1 NO [NOPERM]"), "{r}");
    alice
        .cmd(&format!("a10 SETACL Team/Sub2/Deep {USER2} +x"))
        .await;
    let r = bob.cmd(&format!("y2 DELETE {deep}")).await;
    assert!(r.contains("y2 OK"), "{r}");
    let r = bob.cmd(&format!("x2 RENAME {sub2} INBOX/Mine")).await;
    assert!(
        r.contains("x2 NO [CANNOT]"),
        "a mailbox stays with its owner: {r}"
    );
    let r = bob.cmd(&format!("x3 DELETE {sub2}")).await;
    assert!(r.contains("x3 OK"), "{r}");
    let r = alice.cmd("a9 LIST \"\" Team/*").await;
    assert!(!r.contains("Team/Sub"), "{r}");

    // a: administer; bob may then share Team further, and see its ACL.
    let r = bob.cmd(&format!("a GETACL {TEAM}")).await;
    assert!(r.contains("a NO [NOPERM]"), "{r}");
    grant(&mut alice, "lra").await;
    let r = bob.cmd(&format!("a GETACL {TEAM}")).await;
    assert_eq!(
        first_line(&r),
        format!("* ACL {TEAM} {USER} lrswipkxteacd {USER2} lra")
    );
    let r = bob.cmd(&format!("a2 SETACL {TEAM} anyone lr")).await;
    assert!(r.contains("a2 OK"), "{r}");
    let r = alice.cmd("b1 GETACL Team").await;
    assert!(r.contains("anyone lr"), "{r}");
    let r = bob.cmd(&format!("a3 LISTRIGHTS {TEAM} {USER2}")).await;
    assert!(r.contains("a3 OK"), "{r}");
}

async fn a_mailbox_without_rights_does_not_exist(env: &impl HasBackend) {
    let (mut alice, mut bob) = setup(env).await;
    // A mailbox bob holds nothing on, one that does not exist, an account that does not exist
    // and bob's own address: every answer is the same.
    for name in [
        "\"Other Users/alice@example.test/Team\"",
        "\"Other Users/alice@example.test/Nothing\"",
        "\"Other Users/nobody@example.test/INBOX\"",
        "\"Other Users/bob@example.test/INBOX\"",
        "\"Other Users\"",
    ] {
        for cmd in [
            "SELECT", "EXAMINE", "STATUS", "MYRIGHTS", "GETACL", "DELETE",
        ] {
            let line = if cmd == "STATUS" {
                format!("t {cmd} {name} (MESSAGES)")
            } else {
                format!("t {cmd} {name}")
            };
            let r = bob.cmd(&line).await;
            assert!(r.starts_with("t NO [NONEXISTENT]"), "{line}: {r}");
        }
    }
    let r = bob.cmd("l LIST \"\" *").await;
    assert!(!r.contains("Other Users"), "{r}");
    // An ACL for someone else shows nothing to bob.
    let r = alice.cmd("c CREATE Private").await;
    assert!(r.contains("c OK"), "{r}");
    alice.cmd("g SETACL Private carol@example.test lr").await;
    let r = bob.cmd("l LIST \"\" *").await;
    assert!(!r.contains("Private"), "{r}");
    // Alice's other mailboxes stay hers when one is shared.
    grant(&mut alice, "lr").await;
    let r = bob.cmd("l LIST \"\" *").await;
    assert!(r.contains("Other Users/alice@example.test/Team"), "{r}");
    assert!(!r.contains("alice@example.test/INBOX"), "{r}");
    let r = bob
        .cmd("s SELECT \"Other Users/alice@example.test/INBOX\"")
        .await;
    assert!(r.starts_with("s NO [NONEXISTENT]"), "{r}");
    // Nothing of alice's can be named from bob's own namespace.
    let r = bob.cmd("s SELECT Team").await;
    assert!(r.starts_with("s NO [NONEXISTENT]"), "{r}");
    // Revoked: gone again.
    alice.cmd(&format!("d DELETEACL Team {USER2}")).await;
    let r = bob.cmd(&format!("s SELECT {TEAM}")).await;
    assert!(r.starts_with("s NO [NONEXISTENT]"), "{r}");
}

async fn the_sharee_sees_the_owners_changes(env: &impl HasBackend) {
    let (mut alice, mut bob) = setup(env).await;
    grant(&mut alice, "lrswte").await;
    let r = bob.cmd(&format!("s SELECT {TEAM}")).await;
    assert!(r.contains("* 2 EXISTS"), "{r}");
    alice.append("Team", "", &message(3)).await;
    let r = bob.cmd("n NOOP").await;
    assert!(r.contains("* 3 EXISTS"), "{r}");
    alice.cmd("a SELECT Team").await;
    alice.cmd("a1 STORE 1 +FLAGS (\\Deleted)").await;
    alice.cmd("a2 EXPUNGE").await;
    let r = bob.cmd("n NOOP").await;
    assert!(r.contains("* 1 EXPUNGE"), "{r}");
    // And the owner sees the sharee's.
    bob.cmd("b STORE 1 +FLAGS (\\Answered)").await;
    let r = alice.cmd("n NOOP").await;
    assert!(r.contains("FLAGS (\\Answered \\Flagged))"), "{r}");
}

async fn the_owner_pays_the_quota(env: &impl HasBackend) {
    let (mut alice, mut bob) = setup(env).await;
    grant(&mut alice, "lri").await;
    let r = bob.cmd(&format!("q GETQUOTAROOT {TEAM}")).await;
    assert_eq!(
        r,
        format!("* QUOTAROOT {TEAM}\r\nq OK GETQUOTAROOT completed\r\n"),
        "the owner's quota is not shown to the sharee"
    );
    env.set_alice_quota(1).await;
    let msg = message(4);
    let append = format!("ap APPEND {TEAM} {{{}}}\r\n{msg}\r\n", msg.len());
    let r = bob.raw(append.as_bytes()).await;
    assert!(r.contains("ap NO [OVERQUOTA]"), "{r}");
    // Bob's own mailboxes are not alice's quota.
    bob.append("INBOX", "", &msg).await;
    bob.cmd("s SELECT INBOX").await;
    let r = bob.cmd(&format!("c COPY 1 {TEAM}")).await;
    assert!(r.contains("c NO [OVERQUOTA]"), "{r}");
    env.set_alice_quota(0).await;
    let r = bob.cmd(&format!("c COPY 1 {TEAM}")).await;
    assert!(r.contains("c OK [COPYUID"), "{r}");
}

async fn copies_between_accounts_are_independent(env: &impl HasBackend) {
    let (mut alice, mut bob) = setup(env).await;
    grant(&mut alice, "lrte").await;
    bob.cmd(&format!("s SELECT {TEAM}")).await;
    // MOVE out of alice's mailbox into bob's: gone from Team, in bob's INBOX.
    let r = bob.cmd("m MOVE 1 INBOX").await;
    assert!(r.contains("* 1 EXPUNGE"), "{r}");
    let r = alice.cmd("a STATUS Team (MESSAGES)").await;
    assert_eq!(first_line(&r), "* STATUS Team (MESSAGES 1)");
    // COPY, then the source expunged by its owner: bob's copy keeps its body.
    let r = bob.cmd("c COPY 1 INBOX").await;
    assert!(r.contains("c OK"), "{r}");
    alice.cmd("a1 SELECT Team").await;
    alice.cmd("a2 STORE 1 +FLAGS (\\Deleted)").await;
    alice.cmd("a3 EXPUNGE").await;
    bob.cmd("s SELECT INBOX").await;
    let r = bob.cmd("f FETCH 1:2 (BODY[TEXT])").await;
    assert!(r.contains("Hello body 1"), "{r}");
    assert!(r.contains("Hello body 2"), "{r}");
    let r = bob.cmd("se SEARCH BODY \"Hello body 2\"").await;
    assert_eq!(first_line(&r), "* SEARCH 2", "the copy is searchable");
}

async fn the_shared_namespace(env: &impl HasBackend) {
    env.add_account("shared@example.test").await;
    let cfg = || ImapConfig {
        shared_account: Some("shared@example.test".into()),
        ..ImapConfig::default()
    };
    let mut public = T::login_as(env, "shared@example.test", cfg()).await;
    public.cmd("c CREATE News").await;
    public.append("News", "", &message(1)).await;
    public.cmd("g SETACL News anyone lr").await;
    let mut alice = T::login_as(env, USER, cfg()).await;
    let r = alice.cmd("n NAMESPACE").await;
    assert_eq!(
        first_line(&r),
        "* NAMESPACE ((\"\" \"/\")) ((\"Other Users/\" \"/\")) ((\"Shared/\" \"/\"))"
    );
    let r = alice.cmd("l LIST \"\" *").await;
    assert!(r.contains("\"/\" Shared/News\r\n"), "{r}");
    assert!(!r.contains("Other Users"), "{r}");
    let r = alice.cmd("s SELECT Shared/News").await;
    assert!(r.contains("* 1 EXISTS"), "{r}");
    assert!(tagged(&r, "s").starts_with("s OK [READ-ONLY]"), "{r}");
    let r = alice
        .cmd("s2 SELECT \"Other Users/shared@example.test/News\"")
        .await;
    assert!(tagged(&r, "s2").starts_with("s2 NO [NONEXISTENT]"), "{r}");
    // Subscriptions keep the shared name.
    let r = alice.cmd("u SUBSCRIBE Shared/News").await;
    assert!(r.contains("u OK"), "{r}");
    let r = alice.cmd("l2 LSUB \"\" Shared/*").await;
    assert!(r.contains("* LSUB () \"/\" Shared/News\r\n"), "{r}");
}

async fn idle_on_a_shared_mailbox_wakes_for_its_owners_changes_only(env: &impl HasBackend) {
    let (mut alice, mut bob) = setup(env).await;
    grant(&mut alice, "lr").await;
    alice.cmd("c CREATE Other").await;
    bob.cmd(&format!("s SELECT {TEAM}")).await;
    let (r, next) = bob.next(b"i IDLE\r\n").await;
    assert_eq!(next, Next::Idle);
    assert!(r.starts_with("+ "), "{r}");
    // Alice's other mailbox changes: nothing for bob (its event is not even handed out).
    alice.append("Other", "", &message(5)).await;
    let quiet = tokio::time::timeout(Duration::from_millis(300), bob.s.next_event()).await;
    assert!(quiet.is_err(), "{quiet:?}");
    // Team changes: bob wakes with the new message.
    alice.append("Team", "", &message(3)).await;
    let mut seen = String::new();
    while !seen.contains("EXISTS") {
        let ev = tokio::time::timeout(Duration::from_secs(5), bob.s.next_event())
            .await
            .unwrap();
        seen.push_str(&bob.input(Input::Event(ev)).await.0);
    }
    assert!(seen.contains("* 3 EXISTS\r\n"), "{seen}");
    let (r, _) = bob.input(Input::Line(b"DONE\r\n")).await;
    assert_eq!(r, "i OK IDLE terminated\r\n");
}

/// Sharing with Python's imaplib (setacl, getacl, myrights, namespace) over implicit TLS.
/// RFC 7377 over shared mailboxes: `mailboxes` and `subtree` reach other accounts' mailboxes the
/// session may read, under the names it sees; `personal` stays the own ones; `l` without `r`
/// is NOPERM, no right at all a name nobody has.
async fn esearch_reaches_shared_mailboxes_it_may_read(env: &impl HasBackend) {
    let (mut alice, mut bob) = setup(env).await;
    bob.append("INBOX", "", &message(1)).await;
    let r = bob
        .cmd(&format!(
            "e1 ESEARCH IN (mailboxes {TEAM}) SUBJECT \"number 2\""
        ))
        .await;
    assert!(
        r.contains("e1 NO [NONEXISTENT]"),
        "no rights: as nobody's {r}"
    );
    let nobody = bob
        .cmd("e0 ESEARCH IN (mailboxes \"Other Users/alice@example.test/Nope\") ALL")
        .await;
    assert!(nobody.contains("e0 NO [NONEXISTENT]"), "{nobody}");
    grant(&mut alice, "l").await;
    let r = bob
        .cmd(&format!(
            "e2 ESEARCH IN (mailboxes {TEAM}) SUBJECT \"number 2\""
        ))
        .await;
    assert!(r.contains("e2 NO [NOPERM]"), "l without r: {r}");
    grant(&mut alice, "lr").await;
    let r = bob
        .cmd(&format!(
            "e3 ESEARCH IN (mailboxes {TEAM}) SUBJECT \"number 2\""
        ))
        .await;
    assert!(
        r.contains(
            "* ESEARCH (TAG \"e3\" MAILBOX \"Other Users/alice@example.test/Team\" UIDVALIDITY "
        ),
        "{r}"
    );
    assert!(r.contains(" UID ALL 2\r\n"), "{r}");
    assert!(r.contains("e3 OK"), "{r}");
    // A subtree of the Other Users namespace; `personal` is bob's own only.
    let r = bob
        .cmd("e4 ESEARCH IN (subtree \"Other Users/alice@example.test\" personal) SUBJECT \"number\"")
        .await;
    assert!(
        r.contains("MAILBOX \"Other Users/alice@example.test/Team\""),
        "{r}"
    );
    assert!(r.contains("MAILBOX \"INBOX\""), "{r}");
    assert_eq!(r.matches("* ESEARCH").count(), 2, "{r}");
    let r = bob.cmd("e5 ESEARCH IN (personal) SUBJECT \"number\"").await;
    assert_eq!(r.matches("* ESEARCH").count(), 1, "{r}");
    assert!(!r.contains("Other Users"), "{r}");
}

/// CATENATE (RFC 4469) URLs name messages in shared mailboxes by the names the session sees them
/// by, with `r`; without it the URL names nothing (`BADURL`), as a name nobody has.
async fn catenate_urls_reach_shared_mailboxes_it_may_read(env: &impl HasBackend) {
    let (mut alice, mut bob) = setup(env).await;
    let url = "/Other%20Users/alice@example.test/Team/;UID=1";
    let append = format!("c1 APPEND INBOX CATENATE (URL \"{url}\" TEXT {{4+}}\r\nmore)");
    let r = bob.cmd(&append).await;
    assert!(r.contains("c1 NO [BADURL"), "no rights: {r}");
    grant(&mut alice, "l").await;
    let r = bob.cmd(&append.replace("c1", "c2")).await;
    assert!(r.contains("c2 NO [BADURL"), "l without r: {r}");
    grant(&mut alice, "lr").await;
    let r = bob.cmd(&append.replace("c1", "c3")).await;
    assert!(r.contains("c3 OK [APPENDUID"), "{r}");
    bob.cmd("s SELECT INBOX").await;
    let r = bob.cmd("f FETCH 1 BODY.PEEK[]").await;
    let want = format!("{}more", message(1));
    assert!(
        r.contains(&format!("BODY[] {{{}}}\r\n{want})", want.len())),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_imaplib_shares_a_mailbox() {
    let env = sql_env().await;
    let (server, _plain, tls, cert) = server(&env, ImapConfig::default()).await;
    let args = two_user_args(tls, cert);
    python_client("imaplib_acl.py", args, "imaplib acl OK").await;
    server.shutdown(Duration::from_secs(2)).await;
}
