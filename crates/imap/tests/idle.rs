//! IDLE transcripts on the in-memory backend: woken by another session's changes, ended by DONE.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;
use wharf_imap::{Input, Next};

#[tokio::test]
async fn idle_wakes_on_other_sessions_changes() {
    let env = env().await;
    let mut a = T::login(&env).await;
    let mut b = T::login(&env).await;
    a.append("INBOX", "", &message(1)).await;
    a.cmd("s SELECT INBOX").await;
    b.cmd("s SELECT INBOX").await;
    let (r, next) = b.next(b"i IDLE\r\n").await;
    assert_eq!(next, Next::Idle);
    assert!(r.starts_with("+ idling\r\n"), "{r}");
    a.append("INBOX", "", &message(2)).await;
    let ev = tokio::time::timeout(std::time::Duration::from_secs(5), b.s.next_event())
        .await
        .unwrap();
    let (out, next) = b.input(Input::Event(ev)).await;
    assert_eq!(next, Next::Idle);
    // session a (selected, IMAP4rev1) saw its own APPEND first and claimed \Recent
    assert_eq!(out, "* 2 EXISTS\r\n* 0 RECENT\r\n");
    a.cmd("d STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    a.cmd("e EXPUNGE").await;
    // drain events until the expunge shows (the flag change comes first)
    let mut seen = String::new();
    while !seen.contains("EXPUNGE") {
        let ev = tokio::time::timeout(std::time::Duration::from_secs(5), b.s.next_event())
            .await
            .unwrap();
        seen.push_str(&b.input(Input::Event(ev)).await.0);
    }
    assert!(seen.contains("* 1 EXPUNGE\r\n"), "{seen}");
    let (rep, _) = b.input(Input::Line(b"DONE\r\n")).await;
    assert_eq!(rep, "i OK IDLE terminated\r\n");
    let r = b.cmd("k FETCH 1:* UID").await;
    assert_eq!(r, "* 1 FETCH (UID 2)\r\nk OK FETCH completed\r\n");
}
