//! Real server, raw sockets: QUIT commits, a dropped connection deletes nothing, RSET undoes,
//! IN-USE, plaintext refusal before STLS, PIPELINING, line limit, UIDL stable across restart,
//! POP3 racing IMAP-style expunges and new deliveries, and a multi-megabyte RETR streamed
//! byte-exact with dot-stuffing across the streaming chunk edges.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use support::*;
use wharf_pop3::Pop3Config;
use wharf_pop3::transfer::{READ_CHUNK, Transfer};
use wharf_store::{Delivery, DeliveryResult};

#[tokio::test]
async fn quit_commits_drop_deletes_nothing_rset_undoes() {
    let dir = tempfile::tempdir().unwrap();
    let env = start_on(dir.path(), loopback_cfg(), true).await;
    fill_inbox(&env, &varied_messages(5)).await;
    let before = inbox_uids(&env).await;
    assert_eq!(before.len(), 5);

    // Dropped connection after DELE: nothing deleted, lock released.
    let mut c = Client::connect(env.starttls).await;
    c.login(USER).await;
    assert_eq!(c.cmd("DELE 1").await, "+OK message 1 deleted\r\n");
    assert_eq!(c.cmd("DELE 2").await, "+OK message 2 deleted\r\n");
    drop(c);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(inbox_uids(&env).await, before);

    // RSET undoes.
    let mut c = Client::connect(env.starttls).await;
    c.login(USER).await;
    c.cmd("DELE 1").await;
    assert_eq!(
        c.cmd("RSET").await.split(' ').take(3).collect::<Vec<_>>(),
        ["+OK", "maildrop", "has"]
    );
    assert!(
        c.cmd("QUIT")
            .await
            .starts_with("+OK pop.example.org POP3 server signing off (0 messages removed")
    );
    assert!(c.closed().await);
    assert_eq!(inbox_uids(&env).await, before);

    // QUIT commits.
    let mut c = Client::connect(env.starttls).await;
    c.login(USER).await;
    c.cmd("DELE 2").await;
    c.cmd("DELE 4").await;
    assert!(
        c.cmd("QUIT").await.starts_with(
            "+OK pop.example.org POP3 server signing off (2 messages removed, 3 left)"
        )
    );
    assert_eq!(
        inbox_uids(&env).await,
        vec![before[0], before[2], before[4]]
    );
}

#[tokio::test]
async fn second_login_in_use_until_quit() {
    let dir = tempfile::tempdir().unwrap();
    let env = start_on(dir.path(), loopback_cfg(), true).await;
    let mut a = Client::connect(env.starttls).await;
    a.login(USER).await;
    let mut b = Client::connect(env.starttls).await;
    b.cmd(&format!("USER {USER}")).await;
    assert_eq!(
        b.cmd(&format!("PASS {PASS}")).await,
        "-ERR [IN-USE] maildrop already locked by another POP3 session\r\n"
    );
    // Another account is not affected.
    b.login("bob@example.org").await;
    assert!(a.cmd("QUIT").await.starts_with("+OK"));
    let mut c = Client::connect(env.starttls).await;
    c.login(USER).await;
}

#[tokio::test]
async fn plaintext_auth_refused_before_stls_without_opt_in() {
    let dir = tempfile::tempdir().unwrap();
    let env = start_on(dir.path(), Pop3Config::default(), true).await;
    let mut c = Client::connect(env.starttls).await;
    assert!(c.cmd("CAPA").await.starts_with("+OK"));
    let capa = String::from_utf8(c.multiline().await).unwrap();
    assert!(
        capa.contains("\r\nSTLS\r\n") && !capa.contains("\r\nUSER\r\n"),
        "{capa}"
    );
    let refusal = "-ERR [AUTH] authentication requires TLS: use STLS first\r\n";
    assert_eq!(c.cmd(&format!("USER {USER}")).await, refusal);
    assert_eq!(
        c.cmd("AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHg=").await,
        refusal
    );
    // Pipelined plaintext after STLS is discarded, never executed.
    c.raw.send(b"STLS\r\nUSER injected\r\n").await;
    assert_eq!(c.line().await, "+OK Begin TLS negotiation\r\n");
}

#[tokio::test]
async fn wrong_password_is_auth_code() {
    let dir = tempfile::tempdir().unwrap();
    let env = start_on(dir.path(), loopback_cfg(), true).await;
    let mut c = Client::connect(env.starttls).await;
    c.cmd(&format!("USER {USER}")).await;
    assert_eq!(
        c.cmd("PASS not-the-password").await,
        "-ERR [AUTH] authentication failed\r\n"
    );
}

#[tokio::test]
async fn pipelining_and_line_limit() {
    let dir = tempfile::tempdir().unwrap();
    let env = start_on(dir.path(), loopback_cfg(), true).await;
    fill_inbox(&env, &varied_messages(3)).await;
    let mut c = Client::connect(env.starttls).await;
    c.raw
        .send(
            format!("USER {USER}\r\nPASS {PASS}\r\nSTAT\r\nLIST 1\r\nUIDL 2\r\nNOOP\r\n")
                .as_bytes(),
        )
        .await;
    assert_eq!(c.line().await, "+OK send PASS\r\n");
    assert!(
        c.line()
            .await
            .starts_with("+OK alice@example.org has 3 messages")
    );
    assert!(c.line().await.starts_with("+OK 3 "));
    assert!(c.line().await.starts_with("+OK 1 "));
    assert!(c.line().await.starts_with("+OK 2 "));
    assert_eq!(c.line().await, "+OK\r\n");
    // RFC 2449: 255 octets per command line; longer gets -ERR and the session goes on.
    let long = format!("NOOP {}", "x".repeat(300));
    assert_eq!(c.cmd(&long).await, "-ERR line too long\r\n");
    assert_eq!(c.cmd("NOOP").await, "+OK\r\n");
    for _ in 0..8 {
        assert_eq!(c.cmd("BOGUS").await, "-ERR unknown command\r\n");
    }
    assert_eq!(c.cmd("BOGUS").await, "-ERR unknown command\r\n");
    assert_eq!(
        c.line().await,
        "-ERR too many errors, closing connection\r\n"
    );
    assert!(c.closed().await);
    // Closed without QUIT: nothing deleted, the lock is free again.
    let mut c = Client::connect(env.starttls).await;
    c.login(USER).await;
}

#[tokio::test]
async fn uidl_is_stable_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let env = start_on(dir.path(), loopback_cfg(), true).await;
        fill_inbox(&env, &varied_messages(10)).await;
        let mut c = Client::connect(env.starttls).await;
        c.login(USER).await;
        let u = c.uidl().await;
        c.cmd("QUIT").await;
        env.server.shutdown(Duration::from_secs(2)).await;
        u
    };
    assert_eq!(first.len(), 10);
    let all: BTreeSet<_> = first.iter().map(|(_, u)| u.clone()).collect();
    assert_eq!(all.len(), 10, "unique");
    let env = start_on(dir.path(), loopback_cfg(), false).await;
    let mut c = Client::connect(env.starttls).await;
    c.login(USER).await;
    assert_eq!(c.uidl().await, first);
}

/// POP3 downloading and deleting while "IMAP" expunges and SMTP deliveries arrive: every
/// message is served under its own number or reported gone, none lost, none duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pop3_imap_and_deliveries_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let env = start_on(dir.path(), loopback_cfg(), true).await;
    let inbox = env.inbox().await;
    let msg = |seq: usize| {
        format!("Subject: seq {seq}\r\nX-Seq: {seq}\r\n\r\nbody {seq}\r\n").into_bytes()
    };
    // uid -> seq, for everything ever delivered.
    let mut delivered: BTreeMap<u32, usize> = BTreeMap::new();
    let deliver = |seq: usize| {
        let store = env.store.clone();
        let id = env.account.id;
        let raw = msg(seq);
        async move {
            let r = store
                .deliver(Delivery {
                    raw: Bytes::from(raw),
                    internal_date: 1_790_000_000,
                    recipients: vec![id],
                    junk: false,
                })
                .await
                .unwrap();
            match &r[0] {
                DeliveryResult::Stored(o) => o.uid,
                other => panic!("{other:?}"),
            }
        }
    };
    for seq in 0..40 {
        delivered.insert(deliver(seq).await, seq);
    }

    // Deliveries and IMAP-style expunges run while POP3 sessions work.
    let store = env.store.clone();
    let account = env.account.id;
    let imap_side = tokio::spawn(async move {
        let mut expunged = Vec::new();
        let mut new = Vec::new();
        for round in 0..20 {
            let r = store
                .deliver(Delivery {
                    raw: Bytes::from(msg(1000 + round)),
                    internal_date: 1_790_000_000,
                    recipients: vec![account],
                    junk: false,
                })
                .await
                .unwrap();
            if let DeliveryResult::Stored(o) = &r[0] {
                new.push((o.uid, 1000 + round));
            }
            let idx = store.mailbox_index(inbox.id).await.unwrap();
            // Expunge every 3rd remaining message now and then, like an IMAP client.
            if let Some(e) = idx.get(round % 5 * 3) {
                expunged.extend(store.expunge_uids(inbox.id, &[e.uid]).await.unwrap());
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        (expunged, new)
    });

    let mut pop_deleted = BTreeSet::new();
    for _session in 0..4 {
        let mut c = Client::connect(env.starttls).await;
        c.login(USER).await;
        let listing = c.uidl().await;
        for (n, uidl) in &listing {
            let uid: u32 = uidl.split('.').nth(1).unwrap().parse().unwrap();
            match c.retr(*n).await {
                Ok(body) => {
                    let seq = delivered.get(&uid).copied();
                    let text = String::from_utf8(body).unwrap();
                    let got: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("X-Seq: "))
                        .unwrap()
                        .parse()
                        .unwrap();
                    if let Some(seq) = seq {
                        assert_eq!(
                            got, seq,
                            "message {n} (uid {uid}) served with the wrong content"
                        );
                    } else {
                        assert!(got >= 1000, "uid {uid} is a new delivery");
                    }
                }
                Err(e) => assert_eq!(e, "-ERR no such message\r\n"),
            }
            if n % 4 == 0 {
                assert!(c.cmd(&format!("DELE {n}")).await.starts_with("+OK"));
                pop_deleted.insert(uid);
            }
        }
        assert!(c.cmd("QUIT").await.starts_with("+OK"));
    }
    let (imap_expunged, new) = imap_side.await.unwrap();
    for (uid, seq) in new {
        delivered.insert(uid, seq);
    }
    let remaining: BTreeSet<u32> = inbox_uids(&env).await.into_iter().collect();
    let imap_expunged: BTreeSet<u32> = imap_expunged.into_iter().collect();
    for uid in delivered.keys() {
        let places = [
            remaining.contains(uid),
            pop_deleted.contains(uid) && !imap_expunged.contains(uid),
            imap_expunged.contains(uid),
        ];
        assert_eq!(
            places.iter().filter(|p| **p).count(),
            1,
            "uid {uid}: remaining/pop-deleted/imap-expunged = {places:?}"
        );
    }
    assert!(
        remaining.iter().all(|u| delivered.contains_key(u)),
        "nothing appeared from nowhere"
    );
    // Each remaining message still has its own content.
    let mut c = Client::connect(env.starttls).await;
    c.login(USER).await;
    for (n, uidl) in c.uidl().await {
        let uid: u32 = uidl.split('.').nth(1).unwrap().parse().unwrap();
        let body = String::from_utf8(c.retr(n).await.unwrap()).unwrap();
        assert!(body.contains(&format!("X-Seq: {}\r\n", delivered[&uid])));
    }
}

#[tokio::test]
async fn lock_is_refreshed_while_the_session_lives_and_idle_logout_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Pop3Config {
        lock_ttl_secs: 3,
        idle_timeout_secs: 6,
        ..loopback_cfg()
    };
    let env = start_on(dir.path(), cfg, true).await;
    fill_inbox(&env, &varied_messages(2)).await;
    let mut a = Client::connect(env.starttls).await;
    a.login(USER).await;
    a.cmd("DELE 1").await;
    // Well past the lock's TTL: the refresh keeps it.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut b = Client::connect(env.starttls).await;
    b.cmd(&format!("USER {USER}")).await;
    assert!(
        b.cmd(&format!("PASS {PASS}"))
            .await
            .starts_with("-ERR [IN-USE]")
    );
    // The idle session is logged out without UPDATE.
    assert_eq!(a.line().await, "-ERR autologout: idle for too long\r\n");
    assert!(a.closed().await);
    assert_eq!(inbox_uids(&env).await.len(), 2);
    b.login(USER).await;
}

#[tokio::test]
async fn server_shutdown_says_goodbye_and_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let env = start_on(dir.path(), loopback_cfg(), true).await;
    fill_inbox(&env, &varied_messages(2)).await;
    let mut c = Client::connect(env.starttls).await;
    c.login(USER).await;
    assert_eq!(c.cmd("DELE 1").await, "+OK message 1 deleted\r\n");
    let store = env.store.clone();
    let account = env.account.id;
    env.server.shutdown(Duration::from_secs(5)).await;
    assert_eq!(c.line().await, "-ERR [SYS/TEMP] server shutting down\r\n");
    assert!(c.closed().await);
    let inbox = store.get_mailbox(account, "INBOX").await.unwrap().unwrap();
    assert_eq!(store.mailbox_index(inbox.id).await.unwrap().len(), 2);
    assert!(
        store
            .lock_maildrop(account, "someone-else", 60)
            .await
            .unwrap(),
        "lock released"
    );
}

/// A ~3 MB message whose lines are laid out on the streaming chunk edges: lines starting with
/// `.` (one of them a lone `.`, the terminator's look-alike) exactly at a `READ_CHUNK` edge, and
/// CRLFs whose CR ends one chunk and whose LF starts the next.
fn message_with_dots_on_chunk_edges() -> Vec<u8> {
    let mut m = b"Subject: big\r\nX-Test: chunk edges\r\n\r\n".to_vec();
    for k in 1..=96usize {
        let edge = k * READ_CHUNK;
        // Even edges: the CRLF before the dot line straddles the edge (CR at edge - 1).
        let line_start = if k % 2 == 0 { edge + 1 } else { edge };
        while m.len() + 80 < line_start - 2 {
            m.extend_from_slice(
                format!("{:<78}\r\n", format!("filler before edge {k}")).as_bytes(),
            );
        }
        let pad = line_start - 2 - m.len();
        m.extend(std::iter::repeat_n(b'y', pad));
        m.extend_from_slice(b"\r\n");
        assert_eq!(m.len(), line_start);
        if k % 3 == 0 {
            m.extend_from_slice(b".\r\n");
        } else {
            m.extend_from_slice(format!(".dot line at chunk edge {k}\r\n").as_bytes());
        }
    }
    m.extend_from_slice(b"last line\r\n");
    m
}

#[tokio::test]
async fn retr_streams_a_multi_megabyte_message_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let env = start_on(dir.path(), loopback_cfg(), true).await;
    let m = message_with_dots_on_chunk_edges();
    assert!(m.len() > 3_000_000);
    fill_inbox(&env, std::slice::from_ref(&m)).await;
    let inbox = env.inbox().await;
    let stored = env.store.mailbox_index(inbox.id).await.unwrap();
    let raw = env.store.message_raw(stored[0].message_id).await.unwrap();
    assert_eq!(
        &raw[..],
        &m[..],
        "stored as given, so the chunk edges are where we put them"
    );

    let mut c = Client::connect(env.starttls).await;
    c.login(USER).await;
    assert_eq!(c.cmd("RETR 1").await, format!("+OK {} octets\r\n", m.len()));
    let wire = c.multiline().await;
    assert_eq!(wire, Transfer::retr(&m).to_vec(), "dot-stuffed wire form");
    for k in [1usize, 2, 3, 4] {
        let edge = k * READ_CHUNK;
        let line_start = if k % 2 == 0 { edge + 1 } else { edge };
        assert_eq!(m[line_start], b'.', "edge {k}");
    }
    // Un-stuffed, the client has the message byte for byte.
    let mut unstuffed = Vec::new();
    for l in wire[..wire.len() - 3].split_inclusive(|&b| b == b'\n') {
        unstuffed.extend_from_slice(l.strip_prefix(b".").unwrap_or(l));
    }
    assert_eq!(unstuffed, m);
    // TOP streams from the same reader and stops early; the session goes on.
    assert_eq!(c.cmd("TOP 1 2").await, "+OK top of message follows\r\n");
    assert_eq!(
        c.multiline().await,
        Transfer::top(&m, 2).to_vec(),
        "headers, blank line, two lines"
    );
    assert!(c.cmd("NOOP").await.starts_with("+OK"));
}
