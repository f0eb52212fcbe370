//! Transcripts of QUIT/UPDATE: DELE'd messages are expunged in one call at QUIT, a dropped
//! connection deletes nothing, RSET undoes, retrieved messages get \Seen, the expire policy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use wharf_pop3::Input;

#[tokio::test]
async fn quit_commits_marked_deletions_in_one_call() {
    let (mem, _) = sample();
    let mut t = Transcript::new(&mem);
    t.login("alice@example.org").await;
    t.send("DELE 1").await;
    t.send("DELE 3").await;
    assert_eq!(
        t.send("QUIT").await,
        "+OK pop.example.org POP3 server signing off (2 messages removed, 1 left)\r\n"
    );
    assert!(t.closed);
    assert_eq!(mem.uids(1), vec![2]);
    assert_eq!(mem.with(|s| s.expunge_calls.clone()), vec![vec![1, 3]]);
    assert!(mem.with(|s| s.locks.is_empty()), "lock released");
}

#[tokio::test]
async fn dropped_connection_deletes_nothing() {
    let (mem, _) = sample();
    let mut t = Transcript::new(&mem);
    t.login("alice@example.org").await;
    t.send("DELE 1").await;
    t.send("RETR 2").await;
    t.session.end().await;
    assert_eq!(mem.uids(1), vec![1, 2, 3]);
    assert!(mem.with(|s| s.expunge_calls.is_empty() && s.seen_calls.is_empty()));
    assert!(mem.with(|s| s.locks.is_empty()), "lock released");
}

#[tokio::test]
async fn idle_timeout_and_shutdown_close_without_update() {
    for (input, answer) in [
        (Input::Timeout, "-ERR autologout: idle for too long\r\n"),
        (Input::Shutdown, "-ERR [SYS/TEMP] server shutting down\r\n"),
    ] {
        let (mem, _) = sample();
        let mut t = Transcript::new(&mem);
        t.login("alice@example.org").await;
        t.send("DELE 1").await;
        assert_eq!(t.input(input).await, answer.as_bytes());
        assert!(t.closed);
        t.session.end().await;
        assert_eq!(mem.uids(1), vec![1, 2, 3], "nothing deleted");
        assert!(mem.with(|s| s.locks.is_empty()), "lock released");
    }
}

#[tokio::test]
async fn tick_keeps_the_maildrop_lock() {
    let (mem, _) = sample();
    let mut t = Transcript::new(&mem);
    t.login("alice@example.org").await;
    let owner = t.session.lock_owner().to_string();
    // The lock expired meanwhile (as after a long RETR): the next tick takes it again.
    mem.with(|s| s.locks.clear());
    assert_eq!(t.input(Input::Tick).await, b"");
    assert!(!t.closed);
    assert_eq!(mem.with(|s| s.locks.get(&1).cloned()), Some(owner));
}

#[tokio::test]
async fn rset_then_quit_deletes_nothing() {
    let (mem, _) = sample();
    let mut t = Transcript::new(&mem);
    t.login("alice@example.org").await;
    t.send("DELE 1").await;
    t.send("RSET").await;
    assert!(
        t.send("QUIT").await.starts_with(
            "+OK pop.example.org POP3 server signing off (0 messages removed, 3 left)"
        )
    );
    assert_eq!(mem.uids(1), vec![1, 2, 3]);
    assert!(mem.with(|s| s.expunge_calls.is_empty()));
}

#[tokio::test]
async fn retrieved_messages_are_marked_seen() {
    let (mem, _) = sample();
    let mut t = Transcript::new(&mem);
    t.login("alice@example.org").await;
    t.send("RETR 1").await;
    t.send("TOP 2 0").await;
    t.send("RETR 3").await;
    t.send("DELE 3").await;
    t.send("QUIT").await;
    assert_eq!(mem.with(|s| s.seen_calls.clone()), vec![vec![1]]);
}

#[tokio::test]
async fn expunge_failure_at_quit_is_sys_temp() {
    let (mem, _) = sample();
    let mut t = Transcript::new(&mem);
    t.login("alice@example.org").await;
    t.send("DELE 1").await;
    mem.with(|s| s.fail_expunge = true);
    assert_eq!(
        t.send("QUIT").await,
        "-ERR [SYS/TEMP] some deleted messages not removed\r\n"
    );
    assert!(t.closed);
    assert_eq!(mem.uids(1), vec![1, 2, 3]);
    assert!(mem.with(|s| s.locks.is_empty()));
}

#[tokio::test]
async fn expire_policy_removes_downloaded_old_messages() {
    let mem = Mem::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let old_read = mem.add(
        1,
        b"Subject: old, read before\r\n\r\nx\r\n",
        now - 40 * 86_400,
    );
    let old_unread = mem.add(
        1,
        b"Subject: old, never read\r\n\r\nx\r\n",
        now - 40 * 86_400,
    );
    let old_now = mem.add(1, b"Subject: old, read now\r\n\r\nx\r\n", now - 31 * 86_400);
    let new_now = mem.add(1, b"Subject: new, read now\r\n\r\nx\r\n", now - 86_400);
    mem.with(|s| {
        s.expire.insert(1, 30);
        s.inbox.get_mut(&1).unwrap().get_mut(&old_read).unwrap().2 = true;
    });
    let mut t = Transcript::new(&mem);
    t.login("alice@example.org").await;
    assert!(t.send("CAPA").await.contains("\r\nEXPIRE 30\r\n"));
    t.send("RETR 3").await;
    t.send("RETR 4").await;
    t.send("QUIT").await;
    assert_eq!(mem.uids(1), vec![old_unread, new_now]);
    assert_eq!(
        mem.with(|s| s.expunge_calls.clone()),
        vec![vec![old_read, old_now]]
    );
}

#[tokio::test]
async fn expire_zero_removes_what_was_retrieved() {
    let (mem, _) = sample();
    mem.with(|s| s.expire.insert(1, 0));
    let mut t = Transcript::new(&mem);
    t.login("alice@example.org").await;
    assert!(t.send("CAPA").await.contains("\r\nEXPIRE 0\r\n"));
    t.send("RETR 2").await;
    t.send("QUIT").await;
    assert_eq!(mem.uids(1), vec![1, 3]);
}
