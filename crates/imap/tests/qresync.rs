//! QRESYNC (RFC 7162 §3.2): ENABLE, SELECT (QRESYNC …) answering VANISHED (EARLIER) and the
//! changed messages, VANISHED instead of EXPUNGE, UID FETCH (CHANGEDSINCE … VANISHED), the full
//! comparison once tombstones are forgotten, and a 100,000-message resync of ten changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;

/// `n` in `[NAME n]` of the reply.
fn code_value(r: &str, name: &str) -> u64 {
    let at = r.find(&format!("[{name} ")).expect(r) + name.len() + 2;
    r[at..]
        .split(']')
        .next()
        .and_then(|n| n.parse().ok())
        .expect(r)
}

async fn five(env: &impl HasBackend) -> T {
    let mut t = T::login(env).await;
    for i in 0..5 {
        t.append("INBOX", "", &message(i)).await;
    }
    t
}

async fn qresync_session(env: &impl HasBackend) -> T {
    let mut t = T::login(env).await;
    let r = t.cmd("q ENABLE QRESYNC").await;
    assert!(r.contains("* ENABLED QRESYNC\r\n"), "{r}");
    t
}

on_both!(
    qresync_needs_enable,
    reconnect_gets_vanished_earlier_and_changed_flags,
    uidvalidity_mismatch_gets_a_plain_select,
    known_uids_restrict_the_answer,
    expunges_are_announced_as_vanished,
    uid_fetch_vanished_reports_what_went,
);

async fn qresync_needs_enable(env: &impl HasBackend) {
    let mut t = five(env).await;
    assert!(t.cmd("a CAPABILITY").await.contains(" QRESYNC"));
    let r = t.cmd("b SELECT INBOX (QRESYNC (1 1))").await;
    assert!(r.starts_with("b BAD"), "{r}");
    let r = t
        .cmd("c UID FETCH 1:* FLAGS (CHANGEDSINCE 1 VANISHED)")
        .await;
    assert!(r.starts_with("c BAD"), "{r}");
    let r = t.cmd("d ENABLE QRESYNC CONDSTORE").await;
    assert!(r.contains("* ENABLED QRESYNC\r\n"), "{r}");
}

/// B changes flags and expunges while A is away; A comes back with what it knew.
async fn reconnect_gets_vanished_earlier_and_changed_flags(env: &impl HasBackend) {
    let mut a = five(env).await;
    let r = a.cmd("a1 SELECT INBOX").await;
    let (validity, known) = (
        code_value(&r, "UIDVALIDITY"),
        code_value(&r, "HIGHESTMODSEQ"),
    );
    a.cmd("a2 LOGOUT").await;
    let mut b = T::login(env).await;
    b.cmd("b1 SELECT INBOX").await;
    b.cmd("b2 STORE 2 +FLAGS (\\Flagged)").await;
    b.cmd("b3 STORE 3:4 +FLAGS (\\Deleted)").await;
    let r = b.cmd("b4 EXPUNGE").await;
    // B never enabled QRESYNC: plain EXPUNGE responses.
    assert!(r.contains("* 3 EXPUNGE\r\n* 3 EXPUNGE\r\n"), "{r}");
    let mut c = qresync_session(env).await;
    let r = c
        .cmd(&format!("c1 SELECT INBOX (QRESYNC ({validity} {known}))"))
        .await;
    assert!(r.contains("* 3 EXISTS\r\n"), "{r}");
    assert!(r.contains("* VANISHED (EARLIER) 3:4\r\n"), "{r}");
    assert!(
        r.contains("* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ ("),
        "{r}"
    );
    // Exactly those: nothing about 1 or 5.
    assert_eq!(r.matches(" FETCH (").count(), 1, "{r}");
    let v = r.find("VANISHED").unwrap();
    let f = r.find(" FETCH ").unwrap();
    assert!(
        v < f && r.ends_with("c1 OK [READ-WRITE] SELECT completed\r\n"),
        "{r}"
    );
    // Nothing changed since the new HIGHESTMODSEQ: nothing to say.
    let now = code_value(&r, "HIGHESTMODSEQ");
    let r = c
        .cmd(&format!("c2 SELECT INBOX (QRESYNC ({validity} {now}))"))
        .await;
    assert!(!r.contains("VANISHED") && !r.contains(" FETCH "), "{r}");
}

async fn uidvalidity_mismatch_gets_a_plain_select(env: &impl HasBackend) {
    let mut a = five(env).await;
    let r = a.cmd("a SELECT INBOX").await;
    let validity = code_value(&r, "UIDVALIDITY");
    a.cmd("b STORE 1 +FLAGS (\\Seen)").await;
    let mut c = qresync_session(env).await;
    let r = c
        .cmd(&format!("c SELECT INBOX (QRESYNC ({} 1))", validity + 1))
        .await;
    assert!(!r.contains("VANISHED") && !r.contains(" FETCH "), "{r}");
    assert!(r.ends_with("c OK [READ-WRITE] SELECT completed\r\n"), "{r}");
}

async fn known_uids_restrict_the_answer(env: &impl HasBackend) {
    let mut a = five(env).await;
    let r = a.cmd("a SELECT INBOX").await;
    let (validity, known) = (
        code_value(&r, "UIDVALIDITY"),
        code_value(&r, "HIGHESTMODSEQ"),
    );
    a.cmd("b STORE 1:5 +FLAGS (\\Seen)").await;
    a.cmd("c STORE 1,4 +FLAGS (\\Deleted)").await;
    a.cmd("d EXPUNGE").await;
    let mut c = qresync_session(env).await;
    let r = c
        .cmd(&format!(
            "e SELECT INBOX (QRESYNC ({validity} {known} 3:5))"
        ))
        .await;
    assert!(r.contains("* VANISHED (EARLIER) 4\r\n"), "{r}");
    assert!(r.contains("(UID 3 ") && r.contains("(UID 5 "), "{r}");
    assert!(!r.contains("(UID 2 "), "{r}");
}

async fn expunges_are_announced_as_vanished(env: &impl HasBackend) {
    let mut a = five(env).await;
    let mut b = qresync_session(env).await;
    b.cmd("b1 SELECT INBOX").await;
    b.cmd("b2 STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    let r = b.cmd("b3 EXPUNGE").await;
    assert_eq!(r, "* VANISHED 2\r\nb3 OK EXPUNGE completed\r\n");
    // Another session's expunge reaches it the same way.
    a.cmd("a1 SELECT INBOX").await;
    a.cmd("a2 UID STORE 4:5 +FLAGS.SILENT (\\Deleted)").await;
    a.cmd("a3 EXPUNGE").await;
    let r = b.cmd("b4 NOOP").await;
    assert!(
        r.contains("* VANISHED 4:5\r\n") && !r.contains("EXPUNGE\r\n"),
        "{r}"
    );
    // MOVE too.
    b.cmd("b5 CREATE Other").await;
    let r = b.cmd("b6 UID MOVE 1 Other").await;
    assert!(r.contains("* VANISHED 1\r\n"), "{r}");
}

async fn uid_fetch_vanished_reports_what_went(env: &impl HasBackend) {
    let mut t = qresync_session(env).await;
    for i in 0..5 {
        t.append("INBOX", "", &message(i)).await;
    }
    let r = t.cmd("a SELECT INBOX").await;
    let known = code_value(&r, "HIGHESTMODSEQ");
    t.cmd("b STORE 3 +FLAGS.SILENT (\\Deleted)").await;
    t.cmd("c EXPUNGE").await;
    t.cmd("d UID STORE 4 +FLAGS.SILENT (\\Answered)").await;
    let r = t
        .cmd(&format!(
            "e UID FETCH 1:* (FLAGS) (CHANGEDSINCE {known} VANISHED)"
        ))
        .await;
    let v = r.find("* VANISHED (EARLIER) 3\r\n").expect(&r);
    let f = r.find("* 3 FETCH (UID 4 FLAGS (\\Answered").expect(&r);
    assert!(v < f, "{r}");
    assert_eq!(r.matches(" FETCH (").count(), 1, "{r}");
    // Only within the set asked about.
    let r = t
        .cmd(&format!(
            "f UID FETCH 4:5 (FLAGS) (CHANGEDSINCE {known} VANISHED)"
        ))
        .await;
    assert!(!r.contains("VANISHED"), "{r}");
}

/// Past the tombstone horizon the server no longer knows what vanished since the client's
/// mod-sequence: it sends every UID the client may know that no longer exists.
#[tokio::test]
async fn forgotten_tombstones_give_a_full_comparison() {
    let env = env().await;
    let mut a = five(&env).await;
    let r = a.cmd("a1 SELECT INBOX").await;
    let (validity, known) = (
        code_value(&r, "UIDVALIDITY"),
        code_value(&r, "HIGHESTMODSEQ"),
    );
    a.cmd("a2 STORE 2,4 +FLAGS.SILENT (\\Deleted)").await;
    a.cmd("a3 EXPUNGE").await;
    env.mem.forget_tombstones(env.alice, "INBOX");
    let mut c = qresync_session(&env).await;
    let r = c
        .cmd(&format!("c SELECT INBOX (QRESYNC ({validity} {known}))"))
        .await;
    assert!(r.contains("* VANISHED (EARLIER) 2,4\r\n"), "{r}");
    // A session that stayed selected across the prune compares too.
    let mut b = qresync_session(&env).await;
    b.cmd("b1 SELECT INBOX").await;
    a.cmd("a4 STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    a.cmd("a5 EXPUNGE").await;
    env.mem.forget_tombstones(env.alice, "INBOX");
    let r = b.cmd("b2 NOOP").await;
    assert!(r.contains("* VANISHED 1\r\n"), "{r}");
}

/// RFC 7162's promise at scale: a client that knew a 100,000-message mailbox and comes back
/// after ten changes (five flag changes, five expunges) is sent exactly those ten.
#[tokio::test]
async fn a_100000_message_mailbox_resyncs_ten_changes_in_a_few_lines() {
    let env = sql_env().await;
    let mut t = T::login(&env).await;
    t.append("INBOX", "", &message(0)).await;
    let r = t.cmd("s SELECT INBOX").await;
    assert!(r.contains("* 1 EXISTS"), "{r}");
    // Doubling by COPY: 2^16 = 65,536, then 34,464 more.
    for i in 0..16 {
        let r = t.cmd(&format!("c{i} COPY 1:* INBOX")).await;
        assert!(r.contains("OK [COPYUID"), "{r}");
    }
    let r = t.cmd("c16 COPY 1:34464 INBOX").await;
    assert!(r.contains("* 100000 EXISTS"), "{r}");
    let r = t.cmd("l LOGOUT").await;
    assert!(r.contains("BYE"), "{r}");

    let mut a = qresync_session(&env).await;
    let r = a.cmd("a1 SELECT INBOX").await;
    let (validity, known) = (
        code_value(&r, "UIDVALIDITY"),
        code_value(&r, "HIGHESTMODSEQ"),
    );
    a.cmd("a2 LOGOUT").await;

    let mut b = T::login(&env).await;
    b.cmd("b1 SELECT INBOX").await;
    for uid in [10, 20_000, 40_000, 60_000, 99_999] {
        b.cmd(&format!("b2 UID STORE {uid} +FLAGS.SILENT (\\Flagged)"))
            .await;
    }
    b.cmd("b3 UID STORE 5,50000,70000,80000,100000 +FLAGS.SILENT (\\Deleted)")
        .await;
    b.cmd("b4 EXPUNGE").await;

    let mut c = qresync_session(&env).await;
    let r = c
        .cmd(&format!("c1 SELECT INBOX (QRESYNC ({validity} {known}))"))
        .await;
    assert!(r.contains("* 99995 EXISTS\r\n"), "{r}");
    assert!(
        r.contains("* VANISHED (EARLIER) 5,50000,70000,80000,100000\r\n"),
        "{r}"
    );
    let fetches: Vec<&str> = r.lines().filter(|l| l.contains(" FETCH (")).collect();
    assert_eq!(fetches.len(), 5, "{r}");
    for uid in [10, 20_000, 40_000, 60_000, 99_999] {
        assert!(
            fetches
                .iter()
                .any(|l| l.contains(&format!("(UID {uid} FLAGS (\\Flagged) MODSEQ ("))),
            "{uid}: {r}"
        );
    }
    // The whole resync answer, for the record (a full FETCH 1:* FLAGS is some 3.5 MB).
    eprintln!("QRESYNC SELECT answer: {} bytes", r.len());
    assert!(r.len() < 2_000, "{} bytes: {r}", r.len());
}
