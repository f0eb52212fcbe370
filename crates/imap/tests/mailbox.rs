//! Transcripts on the in-memory backend: SELECT/EXAMINE, CREATE (USE), DELETE, RENAME (INBOX),
//! SUBSCRIBE, NAMESPACE, STATUS, CLOSE/UNSELECT, modified UTF-7 names, account isolation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;

/// `tag OK [MAILBOXID (…)] CREATE completed` (RFC 8474).
fn created(r: &str, tag: &str) -> bool {
    r.starts_with(&format!("{tag} OK [MAILBOXID (M")) && r.ends_with(")] CREATE completed\r\n")
}

#[tokio::test]
async fn select_examine_reports_state() {
    let env = env().await;
    let mut t = T::login(&env).await;
    t.append("INBOX", "(\\Seen) ", &message(1)).await;
    t.append("INBOX", "", &message(2)).await;
    let r = t.cmd("a SELECT INBOX").await;
    assert!(
        r.contains("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft"),
        "{r}"
    );
    assert!(
        r.contains("* OK [PERMANENTFLAGS (") && r.contains("\\*)]"),
        "{r}"
    );
    assert!(r.contains("* 2 EXISTS\r\n"), "{r}");
    assert!(r.contains("* 2 RECENT\r\n"), "{r}");
    assert!(r.contains("* OK [UNSEEN 2]"), "{r}");
    assert!(r.contains("* OK [UIDVALIDITY "), "{r}");
    assert!(r.contains("* OK [UIDNEXT 3]"), "{r}");
    assert!(r.ends_with("a OK [READ-WRITE] SELECT completed\r\n"), "{r}");
    let r = t.cmd("b EXAMINE inbox").await;
    assert!(r.starts_with("* OK [CLOSED]"), "{r}");
    assert!(
        r.contains("* 0 RECENT"),
        "recent claimed by the first select: {r}"
    );
    assert!(r.ends_with("b OK [READ-ONLY] EXAMINE completed\r\n"), "{r}");
    let r = t.cmd("c STORE 1 +FLAGS (\\Flagged)").await;
    assert!(r.starts_with("c NO [READ-ONLY]"), "{r}");
    let r = t.cmd("d SELECT Nope").await;
    assert_eq!(
        r,
        "* OK [CLOSED] Previous mailbox closed\r\nd NO [NONEXISTENT] No such mailbox\r\n"
    );
    let r = t.cmd("e FETCH 1 FLAGS").await;
    assert!(
        r.starts_with("e BAD"),
        "failed SELECT leaves no mailbox selected: {r}"
    );
}

#[tokio::test]
async fn rev2_select_has_no_recent_and_sends_list() {
    let env = env().await;
    let mut t = T::login(&env).await;
    t.cmd("x ENABLE IMAP4rev2").await;
    let r = t.cmd("a SELECT INBOX").await;
    assert!(!r.contains("RECENT"), "{r}");
    assert!(r.contains("* LIST () \"/\" INBOX\r\n"), "{r}");
}

#[tokio::test]
async fn create_delete_rename_subscribe() {
    let env = env().await;
    let mut t = T::login(&env).await;
    assert!(created(&t.cmd("a CREATE Work/Projects/2024").await, "a"));
    assert!(
        t.cmd("b CREATE Work")
            .await
            .starts_with("b NO [ALREADYEXISTS]")
    );
    assert!(
        t.cmd("c CREATE inbox")
            .await
            .starts_with("c NO [ALREADYEXISTS]")
    );
    assert!(created(
        &t.cmd("d CREATE Flagged (USE (\\Flagged))").await,
        "d"
    ));
    assert!(
        t.cmd("e CREATE X (USE (\\Bogus))")
            .await
            .starts_with("e NO [USEATTR]")
    );
    let r = t.cmd("f LIST \"\" Work*").await;
    assert!(r.contains("* LIST (\\HasChildren) \"/\" Work\r\n"), "{r}");
    assert!(
        r.contains("* LIST (\\HasNoChildren) \"/\" Work/Projects/2024\r\n"),
        "{r}"
    );
    assert_eq!(
        t.cmd("g RENAME Work Job").await,
        "g OK RENAME completed\r\n"
    );
    let r = t.cmd("h LIST \"\" Job/%").await;
    assert!(r.contains("\"/\" Job/Projects\r\n"), "{r}");
    assert!(
        t.cmd("i RENAME Nope Other")
            .await
            .starts_with("i NO [NONEXISTENT]")
    );
    assert!(
        t.cmd("j RENAME Job Sent")
            .await
            .starts_with("j NO [ALREADYEXISTS]")
    );
    assert_eq!(
        t.cmd("k DELETE Job/Projects/2024").await,
        "k OK DELETE completed\r\n"
    );
    assert!(t.cmd("l DELETE INBOX").await.starts_with("l NO"));
    assert_eq!(
        t.cmd("m SUBSCRIBE Job").await,
        "m OK SUBSCRIBE completed\r\n"
    );
    let r = t.cmd("n LSUB \"\" *").await;
    assert!(r.contains("* LSUB () \"/\" Job\r\n"), "{r}");
    let r = t.cmd("o LIST (SUBSCRIBED) \"\" *").await;
    assert!(r.contains("\\Subscribed) \"/\" Job\r\n"), "{r}");
    assert!(!r.contains("Job/Projects"), "not subscribed: {r}");
    assert_eq!(
        t.cmd("p UNSUBSCRIBE Job").await,
        "p OK UNSUBSCRIBE completed\r\n"
    );
    assert!(!t.cmd("q LSUB \"\" *").await.contains("Job"));
}

#[tokio::test]
async fn rename_inbox_moves_messages() {
    let env = env().await;
    let mut t = T::login(&env).await;
    t.append("INBOX", "", &message(1)).await;
    t.append("INBOX", "", &message(2)).await;
    assert_eq!(
        t.cmd("a RENAME INBOX Old").await,
        "a OK RENAME completed\r\n"
    );
    let r = t.cmd("b STATUS INBOX (MESSAGES)").await;
    assert!(r.contains("(MESSAGES 0)"), "{r}");
    let r = t.cmd("c STATUS Old (MESSAGES UIDNEXT)").await;
    assert!(r.contains("(MESSAGES 2 UIDNEXT 3)"), "{r}");
}

#[tokio::test]
async fn status_items() {
    let env = env().await;
    let mut t = T::login(&env).await;
    t.append("INBOX", "(\\Deleted \\Seen) ", &message(1)).await;
    t.append("INBOX", "", &message(2)).await;
    let r = t
        .cmd("a STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE)")
        .await;
    let size = message(1).len() + message(2).len();
    assert!(
        r.contains("(MESSAGES 2 RECENT 2 UIDNEXT 3 UIDVALIDITY "),
        "{r}"
    );
    assert!(
        r.contains(&format!("UNSEEN 1 DELETED 1 SIZE {size})")),
        "{r}"
    );
    assert!(
        t.cmd("b STATUS Nope (MESSAGES)")
            .await
            .starts_with("b NO [NONEXISTENT]")
    );
    assert!(t.cmd("c STATUS INBOX (BOGUS)").await.starts_with("c BAD"));
}

#[tokio::test]
async fn modified_utf7_and_utf8_names() {
    let env = env().await;
    let mut t = T::login(&env).await;
    assert!(created(&t.cmd("a CREATE Entw&APw-rfe").await, "a"));
    let r = t.cmd("b LIST \"\" Entw*").await;
    assert!(r.contains("\"/\" Entw&APw-rfe\r\n"), "{r}");
    assert!(t.cmd("c CREATE Bad&Jjo").await.starts_with("c NO"));
    t.cmd("d ENABLE UTF8=ACCEPT").await;
    let r = t.cmd("e LIST \"\" Entw*").await;
    assert!(r.contains("\"/\" \"Entwürfe\"\r\n"), "{r}");
    let r = t.cmd("f SELECT \"Entwürfe\"").await;
    assert!(r.contains("f OK [READ-WRITE]"), "{r}");
}

#[tokio::test]
async fn close_expunges_unselect_does_not() {
    let env = env().await;
    let mut t = T::login(&env).await;
    t.append("INBOX", "(\\Deleted) ", &message(1)).await;
    t.append("INBOX", "", &message(2)).await;
    t.cmd("a SELECT INBOX").await;
    assert_eq!(t.cmd("b UNSELECT").await, "b OK UNSELECT completed\r\n");
    assert!(
        t.cmd("c STATUS INBOX (MESSAGES)")
            .await
            .contains("MESSAGES 2")
    );
    t.cmd("d SELECT INBOX").await;
    assert_eq!(t.cmd("e CLOSE").await, "e OK CLOSE completed\r\n");
    assert!(
        t.cmd("f STATUS INBOX (MESSAGES)")
            .await
            .contains("MESSAGES 1")
    );
    assert!(t.cmd("g CLOSE").await.starts_with("g BAD"));
}

#[tokio::test]
async fn accounts_are_isolated() {
    let env = env().await;
    let mut a = T::login(&env).await;
    a.cmd("a CREATE Private").await;
    let mut b = T::new(&env, true, wharf_imap::ImapConfig::default());
    assert!(
        b.cmd(&format!("b LOGIN {USER2} \"{PASS}\""))
            .await
            .contains("b OK")
    );
    assert!(b.cmd("c SELECT Private").await.starts_with("c NO"));
    assert!(!b.cmd("d LIST \"\" *").await.contains("Private"));
    assert!(
        b.cmd("e STATUS Private (MESSAGES)")
            .await
            .starts_with("e NO")
    );
}

#[tokio::test]
async fn error_replies() {
    let env = env().await;
    let mut t = T::login(&env).await;
    assert!(
        t.cmd("a DELETE Nope")
            .await
            .starts_with("a NO [NONEXISTENT]")
    );
    assert!(
        t.cmd("b SUBSCRIBE Nope")
            .await
            .starts_with("b NO [NONEXISTENT]")
    );
    assert_eq!(
        t.cmd("c UNSUBSCRIBE Nope").await,
        "c OK UNSUBSCRIBE completed\r\n"
    );
    assert!(
        t.cmd("d CREATE \"a//b\"")
            .await
            .starts_with("d NO [CANNOT]")
    );
    assert!(
        t.cmd("e RENAME Sent Sent/Inner")
            .await
            .starts_with("e NO [CANNOT]")
    );
    assert!(
        t.cmd("f EXPUNGE")
            .await
            .starts_with("f BAD No mailbox selected")
    );
    assert!(t.cmd("g ENABLE").await.starts_with("g BAD"));
    assert!(t.cmd("h LIST").await.starts_with("h BAD"));
    let m = message(1);
    let r = t
        .raw(format!("i APPEND INBOX (\\Bogus) {{{}}}\r\n{m}\r\n", m.len()).as_bytes())
        .await;
    assert!(r.starts_with("+ Ready for literal data\r\ni BAD"), "{r}");
    t.append("INBOX", "", &m).await;
    t.cmd("j EXAMINE INBOX").await;
    assert!(
        t.cmd("k MOVE 1 Trash")
            .await
            .starts_with("k NO [READ-ONLY]")
    );
    assert!(t.cmd("l EXPUNGE").await.starts_with("l NO [READ-ONLY]"));
    assert!(t.cmd("m COPY 1 Nope").await.starts_with("m NO [TRYCREATE]"));
    assert!(t.cmd("n COPY 2 Trash").await.starts_with("n BAD"));
    let (r, next) = t.next(b"o IDLE\r\n").await;
    assert_eq!((r.as_str(), next), ("+ idling\r\n", wharf_imap::Next::Idle));
    let (rep, _) = t.input(wharf_imap::Input::Line(b"NOPE\r\n")).await;
    assert_eq!(rep, "o BAD Expected DONE\r\n");
    assert!(t.cmd("p FETCH 1 (BOGUS)").await.starts_with("p BAD"));
    assert!(t.cmd("q FETCH 1 BODY[1.MIME").await.starts_with("q BAD"));
    assert!(
        t.cmd("r LOGIN a b")
            .await
            .starts_with("r BAD Already authenticated")
    );
}

/// EXAMINE reports \Recent without claiming it (RFC 3501 §6.3.2): the next SELECT still gets
/// them.
#[tokio::test]
async fn examine_reports_recent_and_leaves_it() {
    let env = env().await;
    let mut t = T::login(&env).await;
    t.append("INBOX", "", &message(1)).await;
    t.append("INBOX", "", &message(2)).await;
    let r = t.cmd("a EXAMINE INBOX").await;
    assert!(r.contains("* 2 RECENT\r\n"), "{r}");
    let r = t.cmd("b SELECT INBOX").await;
    assert!(r.contains("* 2 RECENT\r\n"), "EXAMINE claimed nothing: {r}");
    let r = t.cmd("c EXAMINE INBOX").await;
    assert!(r.contains("* 0 RECENT\r\n"), "claimed by the SELECT: {r}");
}
