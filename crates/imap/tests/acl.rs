//! Transcripts: the ACL commands (RFC 4314 §3) on the account's own mailboxes — SETACL with
//! replace, `+` and `-`, the obsolete `c` and `d`, DELETEACL, GETACL, LISTRIGHTS, MYRIGHTS, and
//! their refusals. On the in-memory double and on the embedded store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;

on_both!(acl_commands_on_own_mailboxes, acl_refusals);

fn first_line(r: &str) -> &str {
    r.lines().next().unwrap_or("")
}

async fn acl_commands_on_own_mailboxes(env: &impl HasBackend) {
    let mut t = T::login(env).await;
    t.cmd("c CREATE Team").await;
    // The owner holds every right, shown with the obsolete c and d too.
    let r = t.cmd("a1 MYRIGHTS Team").await;
    assert_eq!(
        r,
        "* MYRIGHTS Team lrswipkxteacd\r\na1 OK MYRIGHTS completed\r\n"
    );
    let r = t.cmd("a2 GETACL Team").await;
    assert_eq!(
        r,
        format!("* ACL Team {USER} lrswipkxteacd\r\na2 OK GETACL completed\r\n")
    );
    // Replace, add, remove.
    let r = t.cmd(&format!("a3 SETACL Team {USER2} lr")).await;
    assert_eq!(r, "a3 OK SETACL completed\r\n");
    t.cmd("a4 SETACL Team anyone l").await;
    let r = t.cmd("a5 GETACL Team").await;
    assert_eq!(
        first_line(&r),
        format!("* ACL Team {USER} lrswipkxteacd anyone l {USER2} lr")
    );
    t.cmd(&format!("a6 SETACL Team {USER2} +swd")).await;
    let r = t.cmd("a7 GETACL Team").await;
    assert_eq!(
        first_line(&r),
        format!("* ACL Team {USER} lrswipkxteacd anyone l {USER2} lrswted")
    );
    // c is k and x; removing d takes t and e.
    t.cmd(&format!("a8 SETACL Team {USER2} +c")).await;
    t.cmd(&format!("a9 SETACL Team {USER2} -d")).await;
    let r = t.cmd("b1 GETACL Team").await;
    assert_eq!(
        first_line(&r),
        format!("* ACL Team {USER} lrswipkxteacd anyone l {USER2} lrswkxc")
    );
    // DELETEACL, and SETACL with no rights, remove the entry.
    let r = t.cmd(&format!("b2 DELETEACL Team {USER2}")).await;
    assert_eq!(r, "b2 OK DELETEACL completed\r\n");
    t.cmd("b3 SETACL Team anyone \"\"").await;
    let r = t.cmd("b4 GETACL Team").await;
    assert_eq!(first_line(&r), format!("* ACL Team {USER} lrswipkxteacd"));
    // LISTRIGHTS: the owner is granted all, others each right on its own.
    let r = t.cmd(&format!("b5 LISTRIGHTS Team {USER}")).await;
    assert_eq!(
        first_line(&r),
        format!("* LISTRIGHTS Team {USER} lrswipkxteacd")
    );
    let r = t.cmd(&format!("b6 LISTRIGHTS Team {USER2}")).await;
    assert_eq!(
        first_line(&r),
        format!("* LISTRIGHTS Team {USER2} \"\" l r s w i p k x t e a")
    );
    // INBOX is named in any case; the answer uses the name as sent.
    let r = t.cmd("b7 MYRIGHTS inbox").await;
    assert_eq!(first_line(&r), "* MYRIGHTS inbox lrswipkxteacd");
}

async fn acl_refusals(env: &impl HasBackend) {
    let mut t = T::login(env).await;
    t.cmd("c CREATE Team").await;
    // Unknown and upper-case rights are BAD, and change nothing.
    for (tag, rights) in [("a1", "lrQ"), ("a2", "lrq"), ("a3", "+l1")] {
        let r = t.cmd(&format!("{tag} SETACL Team {USER2} {rights}")).await;
        assert!(r.starts_with(&format!("{tag} BAD")), "{rights}: {r}");
    }
    let r = t.cmd("a4 GETACL Team").await;
    assert_eq!(first_line(&r), format!("* ACL Team {USER} lrswipkxteacd"));
    // The owner's rights are fixed; negative rights and unknown accounts are refused.
    let r = t.cmd(&format!("a5 SETACL Team {USER} lr")).await;
    assert!(r.starts_with("a5 NO [CANNOT]"), "{r}");
    let r = t.cmd(&format!("a6 DELETEACL Team {USER}")).await;
    assert!(r.starts_with("a6 NO [CANNOT]"), "{r}");
    let r = t.cmd(&format!("a7 SETACL Team -{USER2} r")).await;
    assert!(r.starts_with("a7 NO [CANNOT]"), "{r}");
    let r = t.cmd("a8 SETACL Team nobody@example.test r").await;
    assert!(r.starts_with("a8 NO [CANNOT]"), "{r}");
    // A mailbox that does not exist.
    for (tag, cmd) in [
        ("b1", "GETACL Nope"),
        ("b2", "MYRIGHTS Nope"),
        ("b3", "SETACL Nope anyone l"),
        ("b4", "DELETEACL Nope anyone"),
        ("b5", "LISTRIGHTS Nope anyone"),
    ] {
        let r = t.cmd(&format!("{tag} {cmd}")).await;
        assert!(
            r.starts_with(&format!("{tag} NO [NONEXISTENT]")),
            "{cmd}: {r}"
        );
    }
    // Missing arguments.
    for (tag, cmd) in [
        ("c1", "GETACL"),
        ("c2", "SETACL Team anyone"),
        ("c3", "DELETEACL Team"),
        ("c4", "LISTRIGHTS Team"),
        ("c5", "MYRIGHTS (Team)"),
    ] {
        let r = t.cmd(&format!("{tag} {cmd}")).await;
        assert!(r.starts_with(&format!("{tag} BAD")), "{cmd}: {r}");
    }
    // Not before login.
    let mut anon = T::new(env, true, wharf_imap::ImapConfig::default());
    let r = anon.cmd("d1 MYRIGHTS INBOX").await;
    assert!(r.starts_with("d1 BAD"), "{r}");
}
