//! Transcripts on the in-memory backend: EXPUNGE and UID EXPUNGE (RFC 4315), read-only refusal,
//! sequence numbers of the announced removals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;

async fn five_messages() -> (Env, T) {
    let env = env().await;
    let mut t = T::login(&env).await;
    for i in 0..5 {
        t.append("INBOX", "", &message(i)).await;
    }
    t.cmd("x ENABLE IMAP4rev2").await;
    t.cmd("s SELECT INBOX").await;
    (env, t)
}

#[tokio::test]
async fn expunge_announces_each_removal_in_sequence_order() {
    let (_env, mut t) = five_messages().await;
    t.cmd("a STORE 2,4,5 +FLAGS.SILENT (\\Deleted)").await;
    let r = t.cmd("b EXPUNGE").await;
    // After removing 2, the old 4 and 5 are numbers 3 and 3 again.
    assert_eq!(
        r,
        "* 2 EXPUNGE\r\n* 3 EXPUNGE\r\n* 3 EXPUNGE\r\nb OK EXPUNGE completed\r\n"
    );
    let r = t.cmd("c FETCH 1:* UID").await;
    assert_eq!(
        r,
        "* 1 FETCH (UID 1)\r\n* 2 FETCH (UID 3)\r\nc OK FETCH completed\r\n"
    );
    assert_eq!(t.cmd("d EXPUNGE").await, "d OK EXPUNGE completed\r\n");
}

#[tokio::test]
async fn uid_expunge_only_touches_the_given_uids() {
    let (_env, mut t) = five_messages().await;
    t.cmd("a STORE 1:* +FLAGS.SILENT (\\Deleted)").await;
    let r = t.cmd("b UID EXPUNGE 2:3").await;
    assert_eq!(
        r,
        "* 2 EXPUNGE\r\n* 2 EXPUNGE\r\nb OK UID EXPUNGE completed\r\n"
    );
    // UIDs that are not there: nothing to do.
    assert_eq!(
        t.cmd("c UID EXPUNGE 100:200").await,
        "c OK UID EXPUNGE completed\r\n"
    );
    let r = t.cmd("d FETCH 1:* UID").await;
    assert_eq!(
        r,
        "* 1 FETCH (UID 1)\r\n* 2 FETCH (UID 4)\r\n* 3 FETCH (UID 5)\r\nd OK FETCH completed\r\n"
    );
}

#[tokio::test]
async fn expunge_is_refused_read_only_and_unselected() {
    let (_env, mut t) = five_messages().await;
    t.cmd("a STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    t.cmd("b EXAMINE INBOX").await;
    let r = t.cmd("c EXPUNGE").await;
    assert_eq!(r, "c NO [READ-ONLY] Mailbox is read-only\r\n");
    let r = t.cmd("d UID EXPUNGE 1").await;
    assert_eq!(r, "d NO [READ-ONLY] Mailbox is read-only\r\n");
    t.cmd("e UNSELECT").await;
    assert_eq!(t.cmd("f EXPUNGE").await, "f BAD No mailbox selected\r\n");
}

#[tokio::test]
async fn expunge_by_another_session_waits_for_an_allowed_moment() {
    let (env, mut a) = five_messages().await;
    let mut b = T::login(&env).await;
    b.cmd("x ENABLE IMAP4rev2").await;
    b.cmd("s SELECT INBOX").await;
    a.cmd("d STORE 3 +FLAGS.SILENT (\\Deleted)").await;
    a.cmd("e EXPUNGE").await;
    // FETCH by sequence number must not carry the EXPUNGE (RFC 9051 §7.4.1); NOOP does.
    let r = b.cmd("f FETCH 1 UID").await;
    assert!(!r.contains("EXPUNGE"), "{r}");
    let r = b.cmd("g NOOP").await;
    assert!(r.contains("* 3 EXPUNGE\r\n"), "{r}");
}

#[tokio::test]
async fn fetch_of_a_message_expunged_elsewhere_but_not_yet_announced_says_expungeissued() {
    let (env, mut t) = five_messages().await;
    // Another session expunged UID 3; its announcement has not reached this session yet.
    env.mem.drop_data_unannounced(env.alice, "INBOX", 3);
    let r = t
        .cmd("a FETCH 1:5 (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        .await;
    // The other messages are sent; the command ends NO [EXPUNGEISSUED] (RFC 9051 §7.1), never
    // [NONEXISTENT]: as far as the client knows, message 3 exists.
    for n in [1, 2, 4, 5] {
        assert!(r.contains(&format!("* {n} FETCH (UID {n} ")), "{r}");
    }
    assert!(!r.contains("* 3 FETCH"), "{r}");
    assert!(
        r.ends_with("a NO [EXPUNGEISSUED] Some messages were expunged\r\n"),
        "{r}"
    );
    // Flags and UIDs need no message data: that FETCH is whole.
    let r = t.cmd("b FETCH 3 (UID FLAGS)").await;
    assert!(r.ends_with("b OK FETCH completed\r\n"), "{r}");
    // A streamed body read the same way.
    let r = t.cmd("c FETCH 3 BODY.PEEK[]").await;
    assert!(r.contains("c NO [EXPUNGEISSUED]"), "{r}");
}
