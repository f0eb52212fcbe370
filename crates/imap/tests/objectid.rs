//! OBJECTID (RFC 8474: MAILBOXID, EMAILID, THREADID) and PREVIEW (RFC 8970).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;

fn paren_value<'a>(r: &'a str, name: &str) -> &'a str {
    let at = r.find(&format!("{name} (")).expect(r) + name.len() + 2;
    &r[at..at + r[at..].find(')').expect(r)]
}

on_both!(
    mailbox_ids_are_stable_and_never_reused,
    email_ids_follow_copies,
    previews
);

async fn mailbox_ids_are_stable_and_never_reused(env: &impl HasBackend) {
    let mut t = T::login(env).await;
    assert!(t.cmd("a CAPABILITY").await.contains(" OBJECTID PREVIEW"));
    let r = t.cmd("b CREATE Projects").await;
    assert!(r.starts_with("b OK [MAILBOXID (M"), "{r}");
    let id = paren_value(&r, "MAILBOXID").to_string();
    let r = t.cmd("c SELECT Projects").await;
    assert!(r.contains(&format!("* OK [MAILBOXID ({id})]")), "{r}");
    t.cmd("d UNSELECT").await;
    t.cmd("e RENAME Projects Work").await;
    let r = t.cmd("f STATUS Work (MAILBOXID MESSAGES)").await;
    assert!(r.contains(&format!("(MAILBOXID ({id}) MESSAGES 0)")), "{r}");
    t.cmd("g DELETE Work").await;
    let r = t.cmd("h CREATE Work").await;
    assert_ne!(paren_value(&r, "MAILBOXID"), id, "{r}");
    let r = t.cmd("i STATUS INBOX (MAILBOXID)").await;
    assert_ne!(paren_value(&r, "MAILBOXID"), id, "{r}");
}

async fn email_ids_follow_copies(env: &impl HasBackend) {
    let mut t = T::login(env).await;
    t.append("INBOX", "", &message(1)).await;
    t.append("INBOX", "", &message(2)).await;
    t.cmd("s SELECT INBOX").await;
    let r = t.cmd("a FETCH 1:2 (EMAILID THREADID)").await;
    let first = r.lines().next().unwrap();
    let second = r.lines().nth(1).unwrap();
    let (e1, e2) = (
        paren_value(first, "EMAILID"),
        paren_value(second, "EMAILID"),
    );
    assert_ne!(e1, e2, "{r}");
    assert!(first.contains("THREADID NIL"), "{r}");
    assert!(
        e1.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "{e1}"
    );
    // A copy is the same message: same EMAILID, and SEARCH EMAILID finds both.
    t.cmd("b COPY 1 INBOX").await;
    let r = t.cmd("c FETCH 3 (EMAILID)").await;
    assert_eq!(paren_value(&r, "EMAILID"), e1, "{r}");
    let r = t.cmd(&format!("d SEARCH EMAILID {e1}")).await;
    assert!(r.starts_with("* SEARCH 1 3\r\n"), "{r}");
    let r = t.cmd("e SEARCH EMAILID E999999-nothing").await;
    assert!(r.starts_with("* SEARCH\r\n"), "{r}");
    let r = t.cmd("f SEARCH THREADID T1").await;
    assert!(r.starts_with("* SEARCH\r\n"), "{r}");
    assert!(t.cmd("g SEARCH EMAILID (bad)").await.starts_with("g BAD"));
}

async fn previews(env: &impl HasBackend) {
    let mut t = T::login(env).await;
    t.append("INBOX", "", &message(1)).await;
    let empty = "Subject: nothing\r\n\r\n";
    t.append("INBOX", "", empty).await;
    let utf8 = "Subject: u\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGrüße aus Köln\r\n";
    t.append("INBOX", "", utf8).await;
    t.cmd("s SELECT INBOX").await;
    let r = t.cmd("a FETCH 1:2 (PREVIEW)").await;
    assert!(r.contains("* 1 FETCH (PREVIEW \"Hello body 1\")"), "{r}");
    assert!(r.contains("* 2 FETCH (PREVIEW NIL)"), "{r}");
    let r = t.cmd("b FETCH 1 (PREVIEW (LAZY) UID)").await;
    assert!(r.contains("PREVIEW \"Hello body 1\" UID 1"), "{r}");
    // 8-bit text in a literal, unless UTF-8 is on.
    let r = t.cmd("c FETCH 3 PREVIEW").await;
    assert!(r.contains("PREVIEW {17}\r\nGrüße aus Köln"), "{r}");
    t.cmd("d ENABLE UTF8=ACCEPT").await;
    let r = t.cmd("e FETCH 3 PREVIEW").await;
    assert!(r.contains("PREVIEW \"Grüße aus Köln\""), "{r}");
    // Reading a preview does not set \Seen.
    let r = t.cmd("f FETCH 1 FLAGS").await;
    assert!(!r.contains("\\Seen"), "{r}");
    assert!(
        t.cmd("g FETCH 1 (PREVIEW (EAGER))")
            .await
            .starts_with("g BAD")
    );
}
