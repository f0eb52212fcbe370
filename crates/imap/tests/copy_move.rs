//! Transcripts on the in-memory backend: COPY/MOVE and their UID forms with COPYUID.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;

#[tokio::test]
async fn copy_move_expunge() {
    let env = env().await;
    let mut t = T::login(&env).await;
    for i in 0..4 {
        t.append("INBOX", "", &message(i)).await;
    }
    t.cmd("x ENABLE IMAP4rev2").await;
    t.cmd("s SELECT INBOX").await;
    let r = t.cmd("a COPY 1:2 Archive").await;
    assert!(
        r.starts_with("a OK [COPYUID ") && r.contains(" 1:2 1:2] COPY completed"),
        "{r}"
    );
    let r = t.cmd("b COPY 1 Nope").await;
    assert!(r.starts_with("b NO [TRYCREATE]"), "{r}");
    let r = t.cmd("c UID MOVE 3 Trash").await;
    assert!(
        r.starts_with("* OK [COPYUID ")
            && r.contains(" 3 1] Moved\r\n* 3 EXPUNGE\r\nc OK MOVE completed"),
        "{r}"
    );
    let r = t.cmd("d STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    assert_eq!(r, "d OK STORE completed\r\n");
    t.cmd("d2 STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    let r = t.cmd("e UID EXPUNGE 2").await;
    assert_eq!(r, "* 2 EXPUNGE\r\ne OK UID EXPUNGE completed\r\n");
    let r = t.cmd("f EXPUNGE").await;
    assert_eq!(r, "* 1 EXPUNGE\r\nf OK EXPUNGE completed\r\n");
    let r = t.cmd("g FETCH 1:* UID").await;
    assert_eq!(r, "* 1 FETCH (UID 4)\r\ng OK FETCH completed\r\n");
    assert!(
        t.cmd("h STATUS Archive (MESSAGES)")
            .await
            .contains("MESSAGES 2")
    );
}
