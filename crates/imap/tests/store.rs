//! Transcripts on the in-memory backend: STORE and UID STORE.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;

#[tokio::test]
async fn store_flags_and_keywords() {
    let env = env().await;
    let mut t = T::login(&env).await;
    for i in 0..3 {
        t.append("INBOX", "", &message(i)).await;
    }
    t.cmd("x ENABLE IMAP4rev2").await;
    t.cmd("s SELECT INBOX").await;
    let r = t.cmd("a STORE 1:2 +FLAGS (\\Flagged $Forwarded)").await;
    assert_eq!(
        r,
        "* 1 FETCH (FLAGS (\\Flagged $Forwarded))\r\n* 2 FETCH (FLAGS (\\Flagged $Forwarded))\r\na OK STORE completed\r\n"
    );
    let r = t.cmd("b UID STORE 2 -FLAGS.SILENT ($Forwarded)").await;
    assert_eq!(r, "b OK UID STORE completed\r\n");
    let r = t.cmd("c STORE 3 FLAGS ($Junk \\Seen)").await;
    assert_eq!(
        r,
        "* 3 FETCH (FLAGS (\\Seen $Junk))\r\nc OK STORE completed\r\n"
    );
    let r = t.cmd("d FETCH 1:3 FLAGS").await;
    assert!(r.contains("* 2 FETCH (FLAGS (\\Flagged))"), "{r}");
    let r = t.cmd("e STORE 1 +FLAGS (\\Bogus)").await;
    assert!(r.starts_with("e BAD"), "{r}");
    // persisted: a new session sees them
    let mut t2 = T::login(&env).await;
    let r = t2.cmd("f EXAMINE INBOX").await;
    assert!(r.contains("$Forwarded") && r.contains("$Junk"), "{r}");
    let r = t2.cmd("g FETCH 3 FLAGS").await;
    // Nobody claimed \Recent (the first session is IMAP4rev2), and EXAMINE shows it unclaimed.
    assert!(r.contains("(\\Seen \\Recent $Junk)"), "{r}");
}

#[tokio::test]
async fn a_new_keyword_is_announced_in_flags_before_a_fetch_shows_it() {
    let env = env().await;
    let mut a = T::login(&env).await;
    let mut b = T::login(&env).await;
    for i in 0..2 {
        a.append("INBOX", "", &message(i)).await;
    }
    a.cmd("s SELECT INBOX").await;
    b.cmd("s SELECT INBOX").await;
    // This session's own STORE: FLAGS and PERMANENTFLAGS grow before the FETCH that shows it.
    let r = a.cmd("a STORE 1 +FLAGS (Project-X)").await;
    let flags = r.find("* FLAGS (").expect(&r);
    let perm = r.find("* OK [PERMANENTFLAGS (").expect(&r);
    let fetch = r.find("* 1 FETCH (FLAGS (\\Recent Project-X))").expect(&r);
    assert!(flags < fetch && perm < fetch, "{r}");
    assert!(
        r.contains("\\Draft $Forwarded $Junk $MDNSent $NotJunk $Phishing Project-X)\r\n"),
        "{r}"
    );
    assert!(r.contains("Project-X \\*)]"), "{r}");
    // Once announced, not again; nor in another case.
    let r = a.cmd("b STORE 2 +FLAGS (project-x)").await;
    assert!(!r.contains("* FLAGS"), "{r}");
    // .SILENT still announces: the next FETCH FLAGS may show it.
    let r = a.cmd("c STORE 2 +FLAGS.SILENT (Later)").await;
    assert!(
        r.contains("* FLAGS (") && r.contains(" Later Project-X)\r\n"),
        "{r}"
    );
    // The other session learns of both with its next command, FLAGS first.
    let r = b.cmd("n NOOP").await;
    let flags = r.find("* FLAGS (").expect(&r);
    let fetch = r.find(" FETCH (").expect(&r);
    assert!(flags < fetch, "{r}");
    assert!(r.contains(" Later ") && r.contains(" Project-X)"), "{r}");
    // A new message bringing a keyword of its own is announced before its EXISTS is fetched.
    a.append("INBOX", "(Fresh) ", &message(9)).await;
    let r = b.cmd("m NOOP").await;
    assert!(r.contains(" Fresh "), "{r}");
    let r = b.cmd("f FETCH 3 FLAGS").await;
    assert!(r.contains("Fresh"), "{r}");
}
