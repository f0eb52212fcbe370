//! Two sessions on one mailbox (in-memory backend): appends, flag changes and expunges from one
//! show up in the other at the moments RFC 9051 §7.4.1 allows; sequence numbers stay in step.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;
use wharf_imap::Next;
use wharf_imap::backend::{Mailboxes, Messages};

#[tokio::test]
async fn changes_reach_the_other_session_at_the_next_command() {
    let env = env().await;
    let mut a = T::login(&env).await;
    let mut b = T::login(&env).await;
    for i in 0..3 {
        a.append("INBOX", "", &message(i)).await;
    }
    a.cmd("x ENABLE IMAP4rev2").await;
    b.cmd("x ENABLE IMAP4rev2").await;
    a.cmd("s SELECT INBOX").await;
    b.cmd("s SELECT INBOX").await;
    // append seen as EXISTS
    let m = message(9);
    let r = a
        .raw(format!("ap APPEND INBOX {{{}}}\r\n{m}\r\n", m.len()).as_bytes())
        .await;
    assert!(
        r.starts_with("+ Ready for literal data\r\n* 4 EXISTS\r\nap OK [APPENDUID "),
        "own APPEND reported at once: {r}"
    );
    let r = a.cmd("n NOOP").await;
    assert_eq!(r, "n OK NOOP completed\r\n");
    let r = b.cmd("n NOOP").await;
    assert_eq!(r, "* 4 EXISTS\r\nn OK NOOP completed\r\n");
    // flag change seen as FETCH
    a.cmd("f STORE 2 +FLAGS.SILENT (\\Flagged)").await;
    let r = b.cmd("n NOOP").await;
    assert_eq!(
        r,
        "* 2 FETCH (UID 2 FLAGS (\\Flagged))\r\nn OK NOOP completed\r\n"
    );
    // expunge: held back during FETCH/STORE/SEARCH, announced at NOOP
    a.cmd("d STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    let r = a.cmd("e EXPUNGE").await;
    assert_eq!(r, "* 1 EXPUNGE\r\ne OK EXPUNGE completed\r\n");
    let r = b.cmd("g FETCH 1:* (UID)").await;
    assert!(!r.contains("EXPUNGE"), "{r}");
    assert!(r.contains("* 4 FETCH (UID 4)"), "numbers unchanged: {r}");
    let r = b.cmd("h SEARCH ALL").await;
    assert!(!r.contains("EXPUNGE"), "{r}");
    let r = b.cmd("i STORE 4 +FLAGS (\\Seen)").await;
    assert!(
        !r.contains("EXPUNGE") && r.contains("* 4 FETCH (FLAGS (\\Seen))"),
        "{r}"
    );
    let r = b.cmd("j UID FETCH 4 FLAGS").await;
    assert_eq!(
        r, "* 4 FETCH (UID 4 FLAGS (\\Seen))\r\n* 1 EXPUNGE\r\nj OK UID FETCH completed\r\n",
        "UID commands may announce expunges, after their own responses"
    );
    let r = b.cmd("k FETCH 1:* UID").await;
    assert_eq!(
        r,
        "* 1 FETCH (UID 2)\r\n* 2 FETCH (UID 3)\r\n* 3 FETCH (UID 4)\r\nk OK FETCH completed\r\n"
    );
}

#[tokio::test]
async fn selected_mailbox_deleted_by_another_session() {
    let env = env().await;
    let mut a = T::login(&env).await;
    let mut b = T::login(&env).await;
    a.cmd("c CREATE Shared").await;
    a.append("Shared", "", &message(1)).await;
    b.cmd("s SELECT Shared").await;
    assert_eq!(a.cmd("d DELETE Shared").await, "d OK DELETE completed\r\n");
    let (r, next) = b.next(b"n NOOP\r\n").await;
    assert_eq!(
        r,
        "* BYE Selected mailbox was deleted\r\nn OK NOOP completed\r\n"
    );
    assert_eq!(next, Next::Close);
}

/// Applies one reply's untagged EXISTS/EXPUNGE/FETCH to a client-side model of the mailbox
/// (sequence number → UID), failing on any FETCH that contradicts what the model knows.
fn apply(model: &mut Vec<Option<u32>>, reply: &str) {
    for line in reply.lines() {
        let mut w = line.split(' ');
        if w.next() != Some("*") {
            continue;
        }
        let (Some(n), Some(kind)) = (w.next(), w.next()) else {
            continue;
        };
        let Ok(n) = n.parse::<usize>() else { continue };
        match kind {
            "EXISTS" => {
                assert!(
                    n >= model.len(),
                    "EXISTS may not shrink the mailbox: {line}"
                );
                model.resize(n, None);
            }
            "EXPUNGE" => {
                assert!(n >= 1 && n <= model.len(), "EXPUNGE out of range: {line}");
                model.remove(n - 1);
            }
            "FETCH" => {
                assert!(
                    n >= 1 && n <= model.len(),
                    "FETCH out of range: {line} ({})",
                    model.len()
                );
                if let Some(rest) = line.split("UID ").nth(1) {
                    let uid: u32 = rest.split([' ', ')']).next().unwrap().parse().unwrap();
                    match model[n - 1] {
                        Some(u) => assert_eq!(u, uid, "seq {n} changed UID: {line}"),
                        None => model[n - 1] = Some(uid),
                    }
                }
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn sequence_numbers_stay_in_step_under_concurrent_changes() {
    let env = env().await;
    let mut a = T::login(&env).await;
    let mut b = T::login(&env).await;
    for i in 0..10 {
        a.append("INBOX", "", &message(i)).await;
    }
    a.cmd("s SELECT INBOX").await;
    let r = b.cmd("s SELECT INBOX").await;
    let mut model: Vec<Option<u32>> = Vec::new();
    apply(&mut model, &r);
    let r = b.cmd("f FETCH 1:* (UID)").await;
    apply(&mut model, &r);
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rnd = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for step in 0..150 {
        // session a changes the mailbox
        match rnd(4) {
            0 => {
                a.append("INBOX", "", &message(100 + step)).await;
            }
            1 => {
                a.cmd("x UID STORE 1:* +FLAGS.SILENT (\\Seen)").await;
            }
            2 => {
                let r = a.cmd("y FETCH 1:* (UID)").await;
                let count = r.matches(" FETCH ").count() as u64;
                if count > 0 {
                    let n = rnd(count) + 1;
                    a.cmd(&format!("z STORE {n} +FLAGS.SILENT (\\Deleted)"))
                        .await;
                    a.cmd("e EXPUNGE").await;
                }
            }
            _ => {
                a.cmd(&format!("w STORE 1 FLAGS.SILENT ($k{})", rnd(5)))
                    .await;
            }
        }
        // session b issues a command of any kind
        let cmd = match rnd(6) {
            0 => "b NOOP".to_string(),
            1 => "b FETCH 1:* (FLAGS)".to_string(),
            2 => "b SEARCH UNSEEN".to_string(),
            3 => "b UID FETCH 1:* (FLAGS)".to_string(),
            4 => "b STORE 1:* +FLAGS (\\Answered)".to_string(),
            _ => "b FETCH 1:* (UID)".to_string(),
        };
        if model.is_empty() && cmd.contains("1:*") && !cmd.contains("UID") {
            continue;
        }
        let r = b.cmd(&cmd).await;
        assert!(r.contains("b OK"), "{cmd}: {r}");
        apply(&mut model, &r);
    }
    let r = b.cmd("n NOOP").await;
    apply(&mut model, &r);
    let r = b.cmd("f FETCH 1:* (UID)").await;
    apply(&mut model, &r);
    let inbox = Mailboxes::get(&*env.mem, env.alice, "INBOX")
        .await
        .unwrap()
        .unwrap();
    let truth: Vec<Option<u32>> = Messages::index(&*env.mem, inbox.id)
        .await
        .unwrap()
        .iter()
        .map(|e| Some(e.uid))
        .collect();
    assert_eq!(model, truth);
}
