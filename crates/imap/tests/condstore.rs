//! CONDSTORE (RFC 7162 §3.1): HIGHESTMODSEQ, the MODSEQ item, CHANGEDSINCE, UNCHANGEDSINCE with
//! MODIFIED, SEARCH MODSEQ, and MODSEQ on the FETCHes that report changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;

/// The number in `MODSEQ (n)` (or `HIGHESTMODSEQ n`) of the line holding `anchor`.
fn modseq_in(r: &str, anchor: &str) -> u64 {
    let line = r.lines().find(|l| l.contains(anchor)).expect(r);
    let at = line.find("MODSEQ").expect(line);
    line[at + 6..]
        .trim_start_matches([' ', '('])
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .expect(line)
}

async fn three(env: &impl HasBackend) -> T {
    let mut t = T::login(env).await;
    for i in 0..3 {
        t.append("INBOX", "", &message(i)).await;
    }
    t
}

on_both!(
    condstore_is_advertised_and_enabled,
    changedsince_returns_only_what_changed_with_modseq,
    unchangedsince_leaves_newer_messages_alone_and_names_them,
    search_modseq_reports_the_highest_returned,
    changes_by_another_session_arrive_with_modseq,
    an_implicit_seen_is_reported_with_uid_and_modseq,
);

async fn condstore_is_advertised_and_enabled(env: &impl HasBackend) {
    let mut t = three(env).await;
    assert!(t.cmd("a CAPABILITY").await.contains(" CONDSTORE"));
    let r = t.cmd("b SELECT INBOX").await;
    let h = modseq_in(&r, "[HIGHESTMODSEQ");
    assert!(h >= 1, "{r}");
    // Enabled while selected: the mailbox's HIGHESTMODSEQ is reported at once.
    let r = t.cmd("c ENABLE CONDSTORE").await;
    assert!(r.contains("* ENABLED CONDSTORE\r\n"), "{r}");
    assert_eq!(modseq_in(&r, "[HIGHESTMODSEQ"), h, "{r}");
    // Once only.
    let r = t.cmd("d ENABLE CONDSTORE").await;
    assert_eq!(r, "* ENABLED\r\nd OK ENABLE completed\r\n");
    // SELECT (CONDSTORE) is accepted.
    let r = t.cmd("e SELECT INBOX (CONDSTORE)").await;
    assert!(
        r.contains("[HIGHESTMODSEQ ") && r.ends_with("e OK [READ-WRITE] SELECT completed\r\n"),
        "{r}"
    );
}

async fn changedsince_returns_only_what_changed_with_modseq(env: &impl HasBackend) {
    let mut t = three(env).await;
    let r = t.cmd("a SELECT INBOX (CONDSTORE)").await;
    let h = modseq_in(&r, "[HIGHESTMODSEQ");
    let r = t.cmd("b STORE 2 +FLAGS (\\Flagged)").await;
    // Under CONDSTORE the STORE's FETCH carries UID and MODSEQ.
    assert!(
        r.contains("* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent) MODSEQ ("),
        "{r}"
    );
    let m2 = modseq_in(&r, "* 2 FETCH");
    assert!(m2 > h, "{r}");
    let r = t
        .cmd(&format!("c UID FETCH 1:* (FLAGS) (CHANGEDSINCE {h})"))
        .await;
    assert_eq!(
        r,
        format!(
            "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent) MODSEQ ({m2}))\r\nc OK UID FETCH completed\r\n"
        )
    );
    let r = t
        .cmd(&format!("d FETCH 1:* (FLAGS) (CHANGEDSINCE {m2})"))
        .await;
    assert_eq!(r, "d OK FETCH completed\r\n");
    // The MODSEQ item alone.
    let r = t.cmd("e FETCH 1:3 (MODSEQ)").await;
    assert_eq!(r.matches(" FETCH (MODSEQ (").count(), 3, "{r}");
    assert_eq!(modseq_in(&r, "* 2 FETCH"), m2);
}

async fn unchangedsince_leaves_newer_messages_alone_and_names_them(env: &impl HasBackend) {
    let mut t = three(env).await;
    t.cmd("a SELECT INBOX").await;
    let r = t.cmd("b FETCH 1:3 (MODSEQ)").await;
    let before = modseq_in(&r, "* 3 FETCH");
    t.cmd("c STORE 3 +FLAGS (\\Answered)").await;
    // Message 3 changed after `before`: left alone, named in MODIFIED; 1 and 2 are changed.
    let r = t
        .cmd(&format!(
            "d STORE 1:3 (UNCHANGEDSINCE {before}) +FLAGS.SILENT (\\Deleted)"
        ))
        .await;
    assert!(r.contains("* 1 FETCH (UID 1 MODSEQ ("), "{r}");
    assert!(r.contains("* 2 FETCH (UID 2 MODSEQ ("), "{r}");
    assert!(!r.contains("* 3 FETCH"), "{r}");
    assert!(
        r.ends_with("d OK [MODIFIED 3] Conditional STORE failed\r\n"),
        "{r}"
    );
    let r = t.cmd("e FETCH 3 FLAGS").await;
    assert!(!r.contains("\\Deleted"), "{r}");
    // UID STORE names UIDs; UNCHANGEDSINCE 0 fails for every message.
    let r = t
        .cmd("f UID STORE 1:3 (UNCHANGEDSINCE 0) -FLAGS (\\Deleted)")
        .await;
    assert!(
        r.ends_with("f OK [MODIFIED 1:3] Conditional STORE failed\r\n"),
        "{r}"
    );
    assert!(!r.contains("FETCH"), "{r}");
}

async fn search_modseq_reports_the_highest_returned(env: &impl HasBackend) {
    let mut t = three(env).await;
    t.cmd("a SELECT INBOX (CONDSTORE)").await;
    let r = t.cmd("b STORE 2:3 +FLAGS (\\Seen)").await;
    let changed = modseq_in(&r, "* 3 FETCH");
    let r = t.cmd(&format!("c SEARCH MODSEQ {changed}")).await;
    assert_eq!(
        r,
        format!("* SEARCH 2 3 (MODSEQ {changed})\r\nc OK SEARCH completed\r\n")
    );
    let r = t
        .cmd(&format!(
            "d UID SEARCH RETURN (ALL COUNT) MODSEQ \"/flags/\\\\seen\" all {changed}"
        ))
        .await;
    assert!(
        r.contains(&format!(
            "* ESEARCH (TAG \"d\") UID ALL 2:3 COUNT 2 MODSEQ {changed}\r\n"
        )),
        "{r}"
    );
    // Nothing matched: no MODSEQ.
    let r = t.cmd(&format!("e SEARCH MODSEQ {}", changed + 1)).await;
    assert_eq!(r, "* SEARCH\r\ne OK SEARCH completed\r\n");
}

async fn changes_by_another_session_arrive_with_modseq(env: &impl HasBackend) {
    let mut a = three(env).await;
    let mut b = T::login(env).await;
    a.cmd("a1 ENABLE CONDSTORE").await;
    a.cmd("a2 SELECT INBOX").await;
    b.cmd("b1 SELECT INBOX").await;
    let r = b.cmd("b2 STORE 1 +FLAGS ($Forwarded)").await;
    // B never enabled CONDSTORE: its reply has no MODSEQ.
    assert!(!r.contains("MODSEQ"), "{r}");
    let r = a.cmd("a3 NOOP").await;
    assert!(r.contains("* 1 FETCH (UID 1 FLAGS ("), "{r}");
    assert!(r.contains("$Forwarded) MODSEQ ("), "{r}");
}

async fn an_implicit_seen_is_reported_with_uid_and_modseq(env: &impl HasBackend) {
    let mut t = three(env).await;
    t.cmd("a ENABLE CONDSTORE").await;
    t.cmd("b SELECT INBOX").await;
    let r = t.cmd("c FETCH 2 BODY[TEXT]").await;
    assert!(r.contains("* 2 FETCH (UID 2 BODY[TEXT] "), "{r}");
    assert!(r.contains(" FLAGS (\\Seen \\Recent) MODSEQ ("), "{r}");
}
