//! Transcripts: CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4): `RETURN (UPDATE)` keeps a
//! search's result and reports its changes — from this session and from another, by STORE,
//! APPEND and EXPUNGE — as unsolicited ESEARCH ADDTO/REMOVEFROM, in the right place relative to
//! EXISTS and EXPUNGE; CANCELUPDATE, NOUPDATE and the refusals. On the in-memory double and on
//! the embedded store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;
use wharf_imap::{Input, Next};

on_both!(
    context_is_advertised,
    uid_search_updates_from_another_session,
    message_number_updates_come_before_expunge_and_after_exists,
    own_store_and_expunge_update_the_context,
    sort_context_reports_positions,
    cancelupdate_and_deselection_end_updates,
    refusals,
    updates_reach_an_idling_client,
);

/// Five unseen messages in INBOX (UIDs 1..=5), `a` selected on it, `b` logged in beside it.
async fn five(env: &impl HasBackend) -> (T, T) {
    let mut a = T::login(env).await;
    for i in 0..5 {
        a.append("INBOX", "", &message(i)).await;
    }
    a.cmd("s SELECT INBOX").await;
    let mut b = T::login(env).await;
    b.cmd("s SELECT INBOX").await;
    (a, b)
}

fn lines_with<'a>(r: &'a str, what: &str) -> Vec<&'a str> {
    r.lines().filter(|l| l.contains(what)).collect()
}

/// Index of the first line of `r` that contains `what`.
fn at(r: &str, what: &str) -> usize {
    r.lines()
        .position(|l| l.contains(what))
        .unwrap_or_else(|| panic!("no {what:?} in {r}"))
}

async fn context_is_advertised(env: &impl HasBackend) {
    let mut t = T::login(env).await;
    let caps = t.cmd("a CAPABILITY").await;
    assert!(caps.contains(" CONTEXT=SEARCH"), "{caps}");
    assert!(caps.contains(" CONTEXT=SORT"), "{caps}");
    assert!(caps.contains(" ESORT"), "{caps}");
    // PARTIAL the capability also means FETCH's PARTIAL (RFC 9394), which is not there.
    assert!(!caps.contains(" PARTIAL"), "{caps}");
}

async fn uid_search_updates_from_another_session(env: &impl HasBackend) {
    let (mut a, mut b) = five(env).await;
    // RETURN (UPDATE) alone answers the whole result (ALL) for the updates to apply to.
    let r = a.cmd("B01 UID SEARCH RETURN (UPDATE) UNSEEN").await;
    assert_eq!(
        r,
        "* ESEARCH (TAG \"B01\") UID ALL 1:5\r\nB01 OK UID SEARCH completed\r\n"
    );
    // Another session reads message 2: it leaves the result.
    b.cmd("b1 UID STORE 2 +FLAGS (\\Seen)").await;
    let r = a.cmd("n1 NOOP").await;
    assert!(r.contains("* 2 FETCH (UID 2 FLAGS (\\Seen"), "{r}");
    assert_eq!(
        lines_with(&r, "ESEARCH"),
        ["* ESEARCH (TAG \"B01\") UID REMOVEFROM (0 2)"],
        "{r}"
    );
    // Unread again: back in.
    b.cmd("b2 UID STORE 2 -FLAGS (\\Seen)").await;
    let r = a.cmd("n2 NOOP").await;
    assert_eq!(
        lines_with(&r, "ESEARCH"),
        ["* ESEARCH (TAG \"B01\") UID ADDTO (0 2)"],
        "{r}"
    );
    // Two new messages, one already read: the unread one is added, after EXISTS.
    b.append("INBOX", "", &message(6)).await;
    b.append("INBOX", "(\\Seen) ", &message(7)).await;
    let r = a.cmd("n3 NOOP").await;
    assert_eq!(
        lines_with(&r, "ESEARCH"),
        ["* ESEARCH (TAG \"B01\") UID ADDTO (0 6)"],
        "{r}"
    );
    assert!(at(&r, "EXISTS") < at(&r, "ADDTO"), "{r}");
    // Expunged elsewhere: removed, before the EXPUNGE that announces it.
    b.cmd("b3 UID STORE 3:4 +FLAGS.SILENT (\\Deleted)").await;
    b.cmd("b4 EXPUNGE").await;
    let r = a.cmd("n4 NOOP").await;
    assert_eq!(
        lines_with(&r, "ESEARCH"),
        ["* ESEARCH (TAG \"B01\") UID REMOVEFROM (0 3:4)"],
        "{r}"
    );
    assert!(at(&r, "REMOVEFROM") < at(&r, "EXPUNGE"), "{r}");
    // Nothing changed: nothing said.
    let r = a.cmd("n5 NOOP").await;
    assert_eq!(r, "n5 OK NOOP completed\r\n");
    // What the client now holds is what a fresh search answers.
    let r = a.cmd("c UID SEARCH UNSEEN").await;
    assert!(r.starts_with("* SEARCH 1 2 5 6\r\n"), "{r}");
}

async fn message_number_updates_come_before_expunge_and_after_exists(env: &impl HasBackend) {
    let (mut a, mut b) = five(env).await;
    let r = a.cmd("C01 SEARCH RETURN (UPDATE COUNT) UNSEEN").await;
    assert_eq!(
        r,
        "* ESEARCH (TAG \"C01\") COUNT 5\r\nC01 OK SEARCH completed\r\n"
    );
    // Message 2 expunged elsewhere, then message 5 read: message 2 leaves the result while it
    // is still number 2 (before its EXPUNGE); message 5 leaves it as number 4, after.
    b.cmd("b1 STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    b.cmd("b2 EXPUNGE").await;
    b.cmd("b3 UID STORE 5 +FLAGS.SILENT (\\Seen)").await;
    let r = a.cmd("n1 NOOP").await;
    let order: Vec<&str> = r
        .lines()
        .filter(|l| l.contains("ESEARCH") || l.contains("EXPUNGE"))
        .collect();
    assert_eq!(
        order,
        [
            "* ESEARCH (TAG \"C01\") REMOVEFROM (0 2)",
            "* 2 EXPUNGE",
            "* ESEARCH (TAG \"C01\") REMOVEFROM (0 4)"
        ],
        "{r}"
    );
    // A new unread message: numbered as in the EXISTS before it (4 left, the new one is 5).
    b.append("INBOX", "", &message(9)).await;
    let r = a.cmd("n2 NOOP").await;
    assert!(r.contains("* 5 EXISTS\r\n"), "{r}");
    assert_eq!(
        lines_with(&r, "ESEARCH"),
        ["* ESEARCH (TAG \"C01\") ADDTO (0 5)"],
        "{r}"
    );
    assert!(at(&r, "EXISTS") < at(&r, "ADDTO"), "{r}");
}

async fn own_store_and_expunge_update_the_context(env: &impl HasBackend) {
    let (mut a, _b) = five(env).await;
    a.cmd("D01 UID SEARCH RETURN (UPDATE) UNDELETED").await;
    // The session's own STORE: the REMOVEFROM comes with its reply.
    let r = a.cmd("d1 UID STORE 4:5 +FLAGS (\\Deleted)").await;
    assert_eq!(
        lines_with(&r, "ESEARCH"),
        ["* ESEARCH (TAG \"D01\") UID REMOVEFROM (0 4:5)"],
        "{r}"
    );
    assert!(r.ends_with("d1 OK UID STORE completed\r\n"), "{r}");
    // Its own EXPUNGE of messages no longer in the result says nothing more.
    let r = a.cmd("d2 EXPUNGE").await;
    assert!(!r.contains("ESEARCH"), "{r}");
    assert!(r.contains("* 4 EXPUNGE\r\n"), "{r}");
    // A second context that holds what is expunged hears of it before the EXPUNGE.
    a.cmd("D02 UID SEARCH RETURN (UPDATE) ALL").await;
    a.cmd("d3 UID STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    let r = a.cmd("d4 EXPUNGE").await;
    let d01 = lines_with(&r, "(TAG \"D01\")");
    let d02 = lines_with(&r, "(TAG \"D02\")");
    assert_eq!(d02, ["* ESEARCH (TAG \"D02\") UID REMOVEFROM (0 1)"], "{r}");
    // D01 already dropped message 1 when the STORE flagged it \Deleted.
    assert!(d01.is_empty(), "{r}");
    assert!(at(&r, "REMOVEFROM") < at(&r, "* 1 EXPUNGE"), "{r}");
    // Its own APPEND to the selected mailbox: added once the new message is announced.
    let r = a
        .raw(
            format!(
                "d5 APPEND INBOX {{{}}}\r\n{}\r\n",
                message(8).len(),
                message(8)
            )
            .as_bytes(),
        )
        .await;
    assert!(r.contains("EXISTS"), "{r}");
    let mut adds = lines_with(&r, "ADDTO");
    adds.sort();
    assert_eq!(
        adds,
        [
            "* ESEARCH (TAG \"D01\") UID ADDTO (0 6)",
            "* ESEARCH (TAG \"D02\") UID ADDTO (0 6)"
        ],
        "{r}"
    );
}

/// Subjects chosen so the SUBJECT order differs from UID order.
async fn sort_context_reports_positions(env: &impl HasBackend) {
    let mut a = T::login(env).await;
    for s in ["delta", "bravo", "foxtrot", "alpha", "echo"] {
        let m = format!("From: x@example.org\r\nSubject: {s}\r\n\r\nbody\r\n");
        a.append("INBOX", "", &m).await;
    }
    a.cmd("s SELECT INBOX").await;
    let mut b = T::login(env).await;
    b.cmd("s SELECT INBOX").await;
    // Sorted: alpha(4) bravo(2) delta(1) echo(5) foxtrot(3).
    let r = a
        .cmd("E01 UID SORT RETURN (UPDATE) (SUBJECT) UTF-8 UNSEEN")
        .await;
    assert_eq!(
        r,
        "* ESEARCH (TAG \"E01\") UID ALL 4,2,1,5,3\r\nE01 OK UID SORT completed\r\n"
    );
    // bravo and delta read: one run at position 2.
    b.cmd("b1 UID STORE 1:2 +FLAGS.SILENT (\\Seen)").await;
    let r = a.cmd("n1 NOOP").await;
    assert_eq!(
        lines_with(&r, "ESEARCH"),
        ["* ESEARCH (TAG \"E01\") UID REMOVEFROM (2 2,1)"],
        "{r}"
    );
    // Now alpha(4) echo(5) foxtrot(3). charlie arrives (UID 6) and bravo is unread again:
    // bravo at 2, charlie at 3 — one run.
    let m = "From: x@example.org\r\nSubject: charlie\r\n\r\nbody\r\n";
    b.append("INBOX", "", m).await;
    b.cmd("b2 UID STORE 2 -FLAGS.SILENT (\\Seen)").await;
    let r = a.cmd("n2 NOOP").await;
    assert_eq!(
        lines_with(&r, "ESEARCH"),
        ["* ESEARCH (TAG \"E01\") UID ADDTO (2 2,6)"],
        "{r}"
    );
    // alpha bravo charlie echo foxtrot; alpha and echo read: two runs, the second counted
    // after the first was removed (echo was 4th, is 3rd once alpha is gone).
    b.cmd("b3 UID STORE 4:5 +FLAGS.SILENT (\\Seen)").await;
    let r = a.cmd("n3 NOOP").await;
    assert_eq!(
        lines_with(&r, "ESEARCH"),
        ["* ESEARCH (TAG \"E01\") UID REMOVEFROM (1 4 3 5)"],
        "{r}"
    );
    // A fresh sort agrees with what the client built.
    let r = a.cmd("c UID SORT (SUBJECT) UTF-8 UNSEEN").await;
    assert!(r.starts_with("* SORT 2 6 3\r\n"), "{r}");
    // A message-number SORT context reports numbers (in sort order) at positions.
    let r = a
        .cmd("E02 SORT RETURN (UPDATE PARTIAL 1:2) (REVERSE SUBJECT) UTF-8 UNSEEN")
        .await;
    assert!(
        r.contains("* ESEARCH (TAG \"E02\") PARTIAL (1:2 3,6)"),
        "{r}"
    );
    b.cmd("b4 UID STORE 1 -FLAGS.SILENT (\\Seen)").await;
    let r = a.cmd("n4 NOOP").await;
    // Reverse: foxtrot(3) delta(1) charlie(6) bravo(2): delta at position 2, message 1.
    assert_eq!(
        lines_with(&r, "(TAG \"E02\")"),
        ["* ESEARCH (TAG \"E02\") ADDTO (2 1)"],
        "{r}"
    );
}

async fn cancelupdate_and_deselection_end_updates(env: &impl HasBackend) {
    let (mut a, mut b) = five(env).await;
    a.cmd("F01 UID SEARCH RETURN (UPDATE) UNSEEN").await;
    a.cmd("F02 UID SEARCH RETURN (UPDATE MIN) UNSEEN").await;
    let r = a.cmd("c1 CANCELUPDATE \"F01\"").await;
    assert_eq!(r, "c1 OK CANCELUPDATE completed\r\n");
    b.cmd("b1 UID STORE 1 +FLAGS.SILENT (\\Seen)").await;
    let r = a.cmd("n1 NOOP").await;
    // UPDATE does not follow MIN (RFC 5267 §4.3): every change is reported.
    assert_eq!(
        lines_with(&r, "ESEARCH"),
        ["* ESEARCH (TAG \"F02\") UID REMOVEFROM (0 1)"],
        "{r}"
    );
    // A tag that names no context; the others are still cancelled.
    let r = a.cmd("c2 CANCELUPDATE \"F02\" \"nope\"").await;
    assert!(r.starts_with("c2 NO "), "{r}");
    b.cmd("b2 UID STORE 2 +FLAGS.SILENT (\\Seen)").await;
    let r = a.cmd("n2 NOOP").await;
    assert!(!r.contains("ESEARCH"), "{r}");
    // A tag freed by CANCELUPDATE may be used again.
    let r = a.cmd("F01 UID SEARCH RETURN (UPDATE) UNSEEN").await;
    assert!(r.contains("F01 OK"), "{r}");
    // Leaving the mailbox ends the context: nothing after selecting it again.
    a.cmd("u UNSELECT").await;
    let r = a.cmd("c3 CANCELUPDATE \"F01\"").await;
    assert!(r.starts_with("c3 BAD"), "{r}");
    a.cmd("s2 SELECT INBOX").await;
    b.cmd("b3 UID STORE 3 +FLAGS.SILENT (\\Seen)").await;
    let r = a.cmd("n3 NOOP").await;
    assert!(!r.contains("ESEARCH"), "{r}");
}

async fn refusals(env: &impl HasBackend) {
    let (mut a, _b) = five(env).await;
    a.cmd("G01 UID SEARCH RETURN (UPDATE) ALL").await;
    // RFC 5267 §4.3: a tag already naming a context is BAD.
    let r = a.cmd("G01 UID SEARCH RETURN (UPDATE) SEEN").await;
    assert!(r.starts_with("G01 BAD"), "{r}");
    // UPDATE twice in one command.
    let r = a.cmd("G02 UID SEARCH RETURN (UPDATE UPDATE) ALL").await;
    assert!(r.starts_with("G02 BAD"), "{r}");
    // Message numbers in the criteria: the search is answered, its updates refused.
    let r = a.cmd("G03 UID SEARCH RETURN (UPDATE) 1:3").await;
    assert_eq!(
        r.lines().next().unwrap(),
        "* NO [NOUPDATE \"G03\"] Message numbers in the criteria shift with expunges; use UIDs to get updates"
    );
    assert!(r.contains("* ESEARCH (TAG \"G03\") UID ALL 1:3\r\n"), "{r}");
    assert!(r.ends_with("G03 OK UID SEARCH completed\r\n"), "{r}");
    let r = a.cmd("G04 UID SEARCH RETURN (UPDATE) UID $").await;
    assert!(r.contains("* NO [NOUPDATE \"G04\"]"), "{r}");
    // Relevancy order is not kept.
    let r = a
        .cmd("G05 SORT RETURN (UPDATE) (RELEVANCY) UTF-8 FUZZY BODY hello")
        .await;
    assert!(r.contains("* NO [NOUPDATE \"G05\"]"), "{r}");
    // The tenth context is the last.
    for i in 2..=10 {
        let r = a.cmd(&format!("H{i} UID SEARCH RETURN (UPDATE) ALL")).await;
        assert!(!r.contains("NOUPDATE"), "{i}: {r}");
    }
    let r = a.cmd("H11 UID SEARCH RETURN (UPDATE COUNT) ALL").await;
    assert!(r.contains("* NO [NOUPDATE \"H11\"] Too many"), "{r}");
    assert!(r.contains("* ESEARCH (TAG \"H11\") UID COUNT 5\r\n"), "{r}");
    // The refused ones hold no context: their tags name nothing.
    let r = a.cmd("c CANCELUPDATE \"H11\"").await;
    assert!(r.starts_with("c NO"), "{r}");
    // ESEARCH (RFC 7377) keeps no context.
    let r = a.cmd("e ESEARCH IN (selected) RETURN (UPDATE) ALL").await;
    assert!(r.starts_with("e BAD"), "{r}");
    // CONTEXT is a hint, accepted anywhere RETURN is.
    let r = a.cmd("k UID SEARCH RETURN (CONTEXT COUNT) ALL").await;
    assert!(r.contains("* ESEARCH (TAG \"k\") UID COUNT 5\r\n"), "{r}");
}

async fn updates_reach_an_idling_client(env: &impl HasBackend) {
    let (mut a, mut b) = five(env).await;
    a.cmd("I01 UID SEARCH RETURN (UPDATE) UNSEEN").await;
    let (r, next) = a.next(b"i IDLE\r\n").await;
    assert_eq!(next, Next::Idle, "{r}");
    b.cmd("b1 UID STORE 5 +FLAGS.SILENT (\\Seen)").await;
    let mut seen = String::new();
    while !seen.contains("REMOVEFROM") {
        let ev = tokio::time::timeout(std::time::Duration::from_secs(5), a.s.next_event())
            .await
            .expect("an event");
        seen.push_str(&a.input(Input::Event(ev)).await.0);
    }
    assert!(
        seen.contains("* ESEARCH (TAG \"I01\") UID REMOVEFROM (0 5)\r\n"),
        "{seen}"
    );
    let (r, _) = a.input(Input::Line(b"DONE\r\n")).await;
    assert_eq!(r, "i OK IDLE terminated\r\n");
}

/// A SORT context is refused past 10,000 results (each membership change would re-read the
/// sort keys of all of them); the sort itself is answered.
#[tokio::test]
async fn large_sort_contexts_are_refused() {
    let env = env().await;
    let mut a = T::login(&env).await;
    let msg = "Subject: x\r\n\r\nx\r\n";
    // In APPENDs of 100 messages (MULTIAPPEND), under the per-command literal limit.
    for batch in 0..101 {
        let n = if batch == 100 { 1 } else { 100 };
        let mut cmd = String::from("ap APPEND INBOX");
        for _ in 0..n {
            cmd.push_str(&format!(" {{{}+}}\r\n{msg}", msg.len()));
        }
        cmd.push_str("\r\n");
        let r = a.raw(cmd.as_bytes()).await;
        assert!(r.contains("ap OK"), "{}", &r[..r.len().min(300)]);
    }
    a.cmd("s SELECT INBOX").await;
    let r = a
        .cmd("S01 UID SORT RETURN (UPDATE COUNT) (ARRIVAL) UTF-8 ALL")
        .await;
    assert!(
        r.contains("* NO [NOUPDATE \"S01\"] Too many results"),
        "{}",
        &r[..r.len().min(300)]
    );
    assert!(
        r.contains("* ESEARCH (TAG \"S01\") UID COUNT 10001\r\n"),
        "{r}"
    );
    // A SEARCH context of the same size is kept.
    let r = a.cmd("S02 UID SEARCH RETURN (UPDATE COUNT) ALL").await;
    assert!(!r.contains("NOUPDATE"), "{r}");
}
