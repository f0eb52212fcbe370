//! Transcripts on the in-memory backend: STORE and UID STORE.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
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
