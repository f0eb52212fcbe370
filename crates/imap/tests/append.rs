//! Transcripts of APPEND (flags, dates, literals, UTF8) and MULTIAPPEND (RFC 3502), on the
//! in-memory backend and, where the store's transaction matters, on the embedded store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;

#[tokio::test]
async fn append_variants() {
    let env = env().await;
    let mut t = T::login(&env).await;
    let m = message(1);
    let r = t
        .raw(format!("a APPEND Drafts (\\Draft $MDNSent) \"05-Mar-2020 10:11:12 +0100\" {{{}}}\r\n{m}\r\n", m.len()).as_bytes())
        .await;
    assert!(
        r.starts_with("+ Ready for literal data\r\na OK [APPENDUID ")
            && r.ends_with(" 1] APPEND completed\r\n"),
        "{r}"
    );
    let r = t
        .raw(format!("b APPEND Nope {{{}}}\r\n{m}\r\n", m.len()).as_bytes())
        .await;
    assert!(
        r.starts_with("+ Ready for literal data\r\nb NO [TRYCREATE]"),
        "{r}"
    );
    t.cmd("c SELECT Drafts").await;
    let r = t.cmd("d FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE)").await;
    assert_eq!(
        r,
        format!(
            "* 1 FETCH (FLAGS (\\Draft \\Recent $MDNSent) INTERNALDATE \"05-Mar-2020 09:11:12 +0000\" RFC822.SIZE {})\r\nd OK FETCH completed\r\n",
            m.len()
        )
    );
}

fn spool_cfg(dir: &std::path::Path) -> wharf_imap::ImapConfig {
    wharf_imap::ImapConfig {
        literal_spool_threshold: 1024,
        spool_dir: Some(dir.to_path_buf()),
        ..wharf_imap::ImapConfig::default()
    }
}

/// Spool files open under `dir` (they have no name: see `common::spool_files`).
fn files_in(dir: &std::path::Path) -> usize {
    spool_files(dir).len()
}

/// No spool file open under `dir`, waited for briefly: a dropped tokio file is closed by the
/// blocking pool once its last write ends.
fn spool_gone(dir: &std::path::Path) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while !spool_files(dir).is_empty() {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    true
}

async fn login_with(
    env: &Env,
    cfg: wharf_imap::ImapConfig,
    shared: std::sync::Arc<wharf_imap::Shared>,
) -> T {
    let mut t = T::with_shared(env, true, cfg, shared);
    let r = t.cmd(&format!("a0 LOGIN {USER} \"{PASS}\"")).await;
    assert!(r.contains("a0 OK"), "{r}");
    t
}

#[tokio::test]
async fn large_append_goes_through_a_spool_file_and_round_trips() {
    let env = env().await;
    let spool = tempfile::tempdir().unwrap();
    let cfg = spool_cfg(spool.path());
    let shared = wharf_imap::Shared::new(&cfg);
    let mut t = login_with(&env, cfg, shared.clone()).await;
    let msg: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let (r, next) = t
        .input(wharf_imap::Input::Line(
            format!("a APPEND INBOX {{{}}}\r\n", msg.len()).as_bytes(),
        ))
        .await;
    assert_eq!(r, "+ Ready for literal data\r\n");
    assert_eq!(next, wharf_imap::Next::Literal { len: 300_000 });
    let (_, next) = t.input(wharf_imap::Input::Data(&msg[..100_000])).await;
    assert_eq!(next, wharf_imap::Next::Literal { len: 200_000 });
    assert_eq!(files_in(spool.path()), 1, "the message waits on disk");
    assert_eq!(shared.literal_bytes_in_memory(), 0);
    t.input(wharf_imap::Input::Data(&msg[100_000..])).await;
    let (r, _) = t.input(wharf_imap::Input::Line(b"\r\n")).await;
    assert!(r.starts_with("a OK [APPENDUID "), "{r}");
    assert!(spool_gone(spool.path()), "removed once stored");
    t.cmd("s SELECT INBOX").await;
    let step =
        t.s.handle(wharf_imap::Input::Line(b"f FETCH 1 BODY.PEEK[]\r\n"))
            .await;
    let mut out = step.output.into_bytes().await.unwrap();
    let mut next = step.next;
    while next == wharf_imap::Next::More {
        let s = t.s.handle(wharf_imap::Input::Resume).await;
        out.extend_from_slice(&s.output.into_bytes().await.unwrap());
        next = s.next;
    }
    let head = b"* 1 FETCH (BODY[] {300000}\r\n";
    assert_eq!(&out[..head.len()], head);
    assert_eq!(&out[head.len()..head.len() + msg.len()], &msg[..]);
}

#[tokio::test]
async fn spool_is_removed_on_abort_and_disconnect() {
    let env = env().await;
    let spool = tempfile::tempdir().unwrap();
    let cfg = spool_cfg(spool.path());
    let shared = wharf_imap::Shared::new(&cfg);
    // Disconnect mid-literal: the session (and its spool) is dropped.
    let mut t = login_with(&env, cfg.clone(), shared.clone()).await;
    t.input(wharf_imap::Input::Line(b"a APPEND INBOX {5000}\r\n"))
        .await;
    t.input(wharf_imap::Input::Data(&[b'x'; 2000])).await;
    assert_eq!(files_in(spool.path()), 1);
    drop(t);
    assert!(spool_gone(spool.path()));
    // A command that turns out not to parse: the spool goes with it.
    let mut t = login_with(&env, cfg.clone(), shared.clone()).await;
    t.input(wharf_imap::Input::Line(
        b"b APPEND INBOX (\\Bogus {5000}\r\n",
    ))
    .await;
    t.input(wharf_imap::Input::Data(&[b'x'; 5000])).await;
    let (r, _) = t.input(wharf_imap::Input::Line(b"\r\n")).await;
    assert!(r.starts_with("b BAD"), "{r}");
    assert!(spool_gone(spool.path()));
    // Anything after the message literal is not APPEND.
    let (r, _) = t.next(b"c APPEND INBOX {2000}\r\n").await;
    assert_eq!(r, "+ Ready for literal data\r\n");
    t.input(wharf_imap::Input::Data(&[b'y'; 2000])).await;
    let (r, _) = t.input(wharf_imap::Input::Line(b" extra\r\n")).await;
    assert!(r.starts_with("c BAD "), "{r}");
    assert!(spool_gone(spool.path()));
    // Timeout mid-literal.
    t.input(wharf_imap::Input::Line(b"d APPEND INBOX {5000}\r\n"))
        .await;
    t.input(wharf_imap::Input::Data(&[b'z'; 10])).await;
    assert_eq!(files_in(spool.path()), 1);
    let (r, _) = t.input(wharf_imap::Input::Timeout).await;
    assert!(r.starts_with("* BYE"), "{r}");
    assert!(spool_gone(spool.path()));
}

#[tokio::test]
async fn memory_budget_is_shared_by_all_sessions() {
    let env = env().await;
    let spool = tempfile::tempdir().unwrap();
    let cfg = wharf_imap::ImapConfig {
        literal_spool_threshold: 100_000,
        literal_memory_budget: 1500,
        spool_dir: Some(spool.path().to_path_buf()),
        ..wharf_imap::ImapConfig::default()
    };
    let shared = wharf_imap::Shared::new(&cfg);
    let mut a = login_with(&env, cfg.clone(), shared.clone()).await;
    let mut b = login_with(&env, cfg.clone(), shared.clone()).await;
    a.input(wharf_imap::Input::Line(b"a APPEND INBOX {1000}\r\n"))
        .await;
    a.input(wharf_imap::Input::Data(&[b'a'; 500])).await;
    assert_eq!(shared.literal_bytes_in_memory(), 1000, "small: in memory");
    assert!(spool_gone(spool.path()));
    b.input(wharf_imap::Input::Line(b"b APPEND INBOX {1000}\r\n"))
        .await;
    b.input(wharf_imap::Input::Data(&[b'b'; 500])).await;
    assert_eq!(
        files_in(spool.path()),
        1,
        "budget spent: the second one spools"
    );
    assert_eq!(shared.literal_bytes_in_memory(), 1000);
    a.input(wharf_imap::Input::Data(&[b'a'; 500])).await;
    let (r, _) = a.input(wharf_imap::Input::Line(b"\r\n")).await;
    assert!(r.starts_with("a OK [APPENDUID"), "{r}");
    assert_eq!(shared.literal_bytes_in_memory(), 0, "given back");
    b.input(wharf_imap::Input::Data(&[b'b'; 500])).await;
    let (r, _) = b.input(wharf_imap::Input::Line(b"\r\n")).await;
    assert!(r.starts_with("b OK [APPENDUID"), "{r}");
    assert!(spool_gone(spool.path()));
    a.cmd("s SELECT INBOX").await;
    let r = a.cmd("f FETCH 1:2 RFC822.SIZE").await;
    assert_eq!(
        r,
        "* 1 FETCH (RFC822.SIZE 1000)\r\n* 2 FETCH (RFC822.SIZE 1000)\r\nf OK FETCH completed\r\n"
    );
}

/// Spooled literals read back, and what CATENATE's URLs gather, are charged to one budget all
/// sessions share (`store_memory_budget`): while it is taken, an APPEND that does not fit waits
/// `store_memory_wait_ms`, then answers NO [LIMIT]; once there is room it goes through.
#[tokio::test]
async fn store_memory_budget_is_shared_by_all_sessions() {
    let env = env().await;
    let spool = tempfile::tempdir().unwrap();
    let cfg = wharf_imap::ImapConfig {
        literal_spool_threshold: 1024,
        max_append: 100_000,
        store_memory_budget: 200_000,
        store_memory_wait_ms: 200,
        spool_dir: Some(spool.path().to_path_buf()),
        ..wharf_imap::ImapConfig::default()
    };
    let shared = wharf_imap::Shared::new(&cfg);
    let mut a = login_with(&env, cfg.clone(), shared.clone()).await;
    // Other sessions' APPENDs hold all of the budget but 4 KiB.
    let taken = shared
        .reserve_store_memory(200_000 - 4096, std::time::Duration::from_secs(1))
        .await
        .expect("room");
    let append = |tag: &'static str, n: usize| {
        let line = format!("{tag} APPEND INBOX {{{n}}}\r\n");
        (line, vec![b'x'; n])
    };
    let (line, data) = append("a1", 3000);
    a.input(wharf_imap::Input::Line(line.as_bytes())).await;
    a.input(wharf_imap::Input::Data(&data)).await;
    let (r, _) = a.input(wharf_imap::Input::Line(b"\r\n")).await;
    assert!(
        r.starts_with("a1 OK [APPENDUID"),
        "what fits goes through: {r}"
    );
    let (line, data) = append("a2", 50_000);
    a.input(wharf_imap::Input::Line(line.as_bytes())).await;
    a.input(wharf_imap::Input::Data(&data)).await;
    let started = std::time::Instant::now();
    let (r, _) = a.input(wharf_imap::Input::Line(b"\r\n")).await;
    assert!(r.starts_with("a2 NO [LIMIT]"), "{r}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(150));
    assert!(
        spool_gone(spool.path()),
        "the refused message's spool is gone"
    );
    drop(taken);
    let (line, data) = append("a3", 50_000);
    a.input(wharf_imap::Input::Line(line.as_bytes())).await;
    a.input(wharf_imap::Input::Data(&data)).await;
    let (r, _) = a.input(wharf_imap::Input::Line(b"\r\n")).await;
    assert!(r.starts_with("a3 OK [APPENDUID"), "room again: {r}");
    a.cmd("s SELECT INBOX").await;
    let r = a.cmd("f FETCH 1:* RFC822.SIZE").await;
    assert_eq!(
        r,
        "* 1 FETCH (RFC822.SIZE 3000)\r\n* 2 FETCH (RFC822.SIZE 50000)\r\nf OK FETCH completed\r\n"
    );
}

/// Many sessions at once against one store-memory budget: while it is held by others, every one
/// of 24 APPENDs is refused with `NO [LIMIT]` (nothing stored, no spool file left); with room,
/// all 24 go through, a few at a time.
#[tokio::test]
async fn store_memory_budget_holds_against_many_sessions() {
    const SESSIONS: usize = 24;
    let env = env().await;
    let spool = tempfile::tempdir().unwrap();
    let cfg = |wait_ms| wharf_imap::ImapConfig {
        literal_spool_threshold: 1024,
        max_append: 100_000,
        // Three 50,000-octet messages at a time.
        store_memory_budget: 160_000,
        store_memory_wait_ms: wait_ms,
        spool_dir: Some(spool.path().to_path_buf()),
        ..wharf_imap::ImapConfig::default()
    };
    let append_all = |cfg: wharf_imap::ImapConfig, shared: std::sync::Arc<wharf_imap::Shared>| {
        let env = &env;
        async move {
            let mut sessions = Vec::new();
            for _ in 0..SESSIONS {
                sessions.push(login_with(env, cfg.clone(), shared.clone()).await);
            }
            let mut tasks = tokio::task::JoinSet::new();
            for (i, mut t) in sessions.into_iter().enumerate() {
                tasks.spawn(async move {
                    let line = format!("p{i} APPEND INBOX {{50000}}\r\n");
                    t.input(wharf_imap::Input::Line(line.as_bytes())).await;
                    t.input(wharf_imap::Input::Data(&[b'x'; 50_000])).await;
                    t.input(wharf_imap::Input::Line(b"\r\n")).await.0
                });
            }
            tasks.join_all().await
        }
    };
    let held_cfg = cfg(100);
    let shared = wharf_imap::Shared::new(&held_cfg);
    let taken = shared
        .reserve_store_memory(160_000, std::time::Duration::from_secs(1))
        .await
        .expect("room");
    for r in append_all(held_cfg, shared.clone()).await {
        assert!(r.contains(" NO [LIMIT]"), "{r}");
    }
    assert!(spool_gone(spool.path()), "refused messages leave no spool");
    drop(taken);
    let open_cfg = cfg(10_000);
    let shared = wharf_imap::Shared::new(&open_cfg);
    for r in append_all(open_cfg.clone(), shared).await {
        assert!(r.contains(" OK [APPENDUID"), "{r}");
    }
    let mut t = login_with(&env, open_cfg.clone(), wharf_imap::Shared::new(&open_cfg)).await;
    let r = t.cmd("s STATUS INBOX (MESSAGES)").await;
    assert!(r.contains(&format!("(MESSAGES {SESSIONS})")), "{r}");
}

#[tokio::test]
async fn spooled_utf8_append() {
    let env = env().await;
    let spool = tempfile::tempdir().unwrap();
    let cfg = spool_cfg(spool.path());
    let shared = wharf_imap::Shared::new(&cfg);
    let mut t = login_with(&env, cfg, shared).await;
    let body = format!("Subject: Grüße\r\n\r\n{}\r\n", "ü".repeat(2000));
    let cmd = format!("u APPEND INBOX UTF8 (~{{{}+}}\r\n{body})\r\n", body.len());
    let r = t.raw(cmd.as_bytes()).await;
    assert!(r.starts_with("u OK [APPENDUID"), "{r}");
    assert!(spool_gone(spool.path()));
    t.cmd("s SELECT INBOX").await;
    let r = t.cmd("f FETCH 1 RFC822.SIZE").await;
    assert!(r.contains(&format!("RFC822.SIZE {}", body.len())), "{r}");
}

/// `OK [APPENDUID v uid-set]` → (v, uid-set).
fn appenduid(r: &str) -> (u32, String) {
    let code = r.split("[APPENDUID ").nth(1).unwrap();
    let code = code.split(']').next().unwrap();
    let (v, set) = code.split_once(' ').unwrap();
    (v.parse().unwrap(), set.to_string())
}

async fn multiappend_stores_all_in_order(env: &impl HasBackend) {
    let mut t = T::login(env).await;
    assert!(t.cmd("c CAPABILITY").await.contains(" MULTIAPPEND"));
    let (m1, m2, m3) = (message(1), message(2), message(3));
    // A synchronising literal, a non-synchronising one, and a literal8 (BINARY).
    let cmd = format!(
        "a APPEND INBOX (\\Seen) {{{}}}\r\n{m1} \"05-Mar-2020 10:11:12 +0100\" {{{}+}}\r\n{m2} (\\Flagged $Work) ~{{{}}}\r\n{m3}\r\n",
        m1.len(),
        m2.len(),
        m3.len()
    );
    let r = t.raw(cmd.as_bytes()).await;
    assert_eq!(
        r.matches("+ Ready for literal data").count(),
        2,
        "one continuation per synchronising literal: {r}"
    );
    assert!(r.contains("a OK [APPENDUID "), "{r}");
    let (_, set) = appenduid(&r);
    assert_eq!(set, "1:3");
    t.cmd("s SELECT INBOX").await;
    let r = t.cmd("f FETCH 1:3 (FLAGS RFC822.SIZE)").await;
    assert!(
        r.contains(&format!(
            "* 1 FETCH (FLAGS (\\Seen \\Recent) RFC822.SIZE {})",
            m1.len()
        )),
        "{r}"
    );
    assert!(
        r.contains(&format!(
            "* 2 FETCH (FLAGS (\\Recent) RFC822.SIZE {})",
            m2.len()
        )),
        "{r}"
    );
    assert!(
        r.contains(&format!(
            "* 3 FETCH (FLAGS (\\Flagged \\Recent $Work) RFC822.SIZE {})",
            m3.len()
        )),
        "{r}"
    );
    let r = t.cmd("g FETCH 2 INTERNALDATE").await;
    assert!(r.contains("\"05-Mar-2020 09:11:12 +0000\""), "{r}");
    let r = t.cmd("h FETCH 3 BODY.PEEK[HEADER.FIELDS (SUBJECT)]").await;
    assert!(r.contains("Subject: Message number 3"), "{r}");
    // Into the selected mailbox: the new messages are announced.
    let r = t
        .raw(
            format!(
                "i APPEND INBOX {{{}+}}\r\n{m1} {{{}+}}\r\n{m2}\r\n",
                m1.len(),
                m2.len()
            )
            .as_bytes(),
        )
        .await;
    assert!(r.contains("* 5 EXISTS"), "{r}");
    assert_eq!(appenduid(&r).1, "4:5");
}

async fn multiappend_is_all_or_nothing(env: &impl HasBackend) {
    let mut t = T::login(env).await;
    let (m1, m2) = (message(1), message(2));
    // A syntax error in the second message: BAD, nothing stored.
    let r = t
        .raw(
            format!(
                "a APPEND Archive {{{}+}}\r\n{m1} (\\Seen {{{}+}}\r\n{m2}\r\n",
                m1.len(),
                m2.len()
            )
            .as_bytes(),
        )
        .await;
    assert!(r.starts_with("a BAD "), "{r}");
    // A flag the server refuses in the last one.
    let r = t
        .raw(
            format!(
                "b APPEND Archive {{{}+}}\r\n{m1} (\\Bogus) {{{}+}}\r\n{m2}\r\n",
                m1.len(),
                m2.len()
            )
            .as_bytes(),
        )
        .await;
    assert!(r.starts_with("b BAD Unknown system flag"), "{r}");
    // No such mailbox.
    let r = t
        .raw(
            format!(
                "c APPEND Nope {{{}+}}\r\n{m1} {{{}+}}\r\n{m2}\r\n",
                m1.len(),
                m2.len()
            )
            .as_bytes(),
        )
        .await;
    assert!(r.starts_with("c NO [TRYCREATE]"), "{r}");
    let r = t.cmd("d STATUS Archive (MESSAGES UIDNEXT)").await;
    assert!(r.contains("(MESSAGES 0 UIDNEXT 1)"), "{r}");
    // A failure inside the store: each message fits the quota, the three together do not.
    let big = format!("Subject: q\r\n\r\n{}\r\n", "x".repeat(4000));
    env.set_alice_quota(10 * 1024).await;
    let r = t
        .raw(
            format!(
                "e APPEND Archive {{{n}+}}\r\n{big} {{{n}+}}\r\n{big} {{{n}+}}\r\n{big}\r\n",
                n = big.len()
            )
            .as_bytes(),
        )
        .await;
    assert!(r.starts_with("e NO [OVERQUOTA]"), "{r}");
    let r = t.cmd("f STATUS Archive (MESSAGES UIDNEXT)").await;
    assert!(r.contains("(MESSAGES 0 UIDNEXT 1)"), "{r}");
    let r = t.cmd("g GETQUOTAROOT Archive").await;
    assert!(r.contains("(STORAGE 0 10)"), "nothing counted: {r}");
    // No UIDs were spent: the next message gets the first.
    let r = t
        .raw(format!("h APPEND Archive {{{}+}}\r\n{m1}\r\n", m1.len()).as_bytes())
        .await;
    assert_eq!(appenduid(&r).1, "1", "{r}");
}

on_both!(
    multiappend_stores_all_in_order,
    multiappend_is_all_or_nothing
);

async fn quota_on_the_whole(t: &mut T) {
    // Each fits alone, the three do not: nothing stored.
    let m = format!("Subject: q\r\n\r\n{}\r\n", "x".repeat(4000));
    let r = t
        .raw(
            format!(
                "a APPEND INBOX {{{n}+}}\r\n{m} {{{n}+}}\r\n{m} {{{n}+}}\r\n{m}\r\n",
                n = m.len()
            )
            .as_bytes(),
        )
        .await;
    assert!(r.starts_with("a NO [OVERQUOTA]"), "{r}");
    let r = t.cmd("b STATUS INBOX (MESSAGES UIDNEXT)").await;
    assert!(r.contains("(MESSAGES 0 UIDNEXT 1)"), "{r}");
    let r = t
        .raw(
            format!(
                "c APPEND INBOX {{{n}+}}\r\n{m} {{{n}+}}\r\n{m}\r\n",
                n = m.len()
            )
            .as_bytes(),
        )
        .await;
    assert!(r.starts_with("c OK [APPENDUID "), "{r}");
    assert_eq!(appenduid(&r).1, "1:2");
}

#[tokio::test]
async fn multiappend_quota_on_the_memory_double() {
    let env = env().await;
    env.mem.set_quota(env.alice, 10 * 1024);
    let mut t = T::login(&env).await;
    quota_on_the_whole(&mut t).await;
}

#[tokio::test]
async fn multiappend_quota_on_the_embedded_store() {
    let env = sql_env().await;
    let a = env
        .store
        .get_account_by_address(USER)
        .await
        .unwrap()
        .unwrap();
    env.store.set_account_quota(a.id, 10 * 1024).await.unwrap();
    let mut t = T::login(&env).await;
    quota_on_the_whole(&mut t).await;
    assert_eq!(env.store.quota_used(a.id).await.unwrap(), 2 * 4016);
}

#[tokio::test]
async fn multiappend_spools_each_large_message() {
    let env = sql_env().await;
    let spool = tempfile::tempdir().unwrap();
    let cfg = spool_cfg(spool.path());
    let shared = wharf_imap::Shared::new(&cfg);
    let mut t = T::with_shared(&env, true, cfg, shared.clone());
    t.cmd(&format!("a0 LOGIN {USER} \"{PASS}\"")).await;
    let big1: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let big2: Vec<u8> = (0..7000u32).map(|i| b'A' + (i % 26) as u8).collect();
    let small = message(1);
    let (r, _) = t
        .input(wharf_imap::Input::Line(
            format!("a APPEND INBOX {{{}}}\r\n", big1.len()).as_bytes(),
        ))
        .await;
    assert_eq!(r, "+ Ready for literal data\r\n");
    t.input(wharf_imap::Input::Data(&big1)).await;
    let (r, _) = t
        .input(wharf_imap::Input::Line(
            format!(" {{{}}}\r\n", small.len()).as_bytes(),
        ))
        .await;
    assert_eq!(r, "+ Ready for literal data\r\n");
    t.input(wharf_imap::Input::Data(small.as_bytes())).await;
    t.input(wharf_imap::Input::Line(
        format!(" (\\Seen) {{{}+}}\r\n", big2.len()).as_bytes(),
    ))
    .await;
    t.input(wharf_imap::Input::Data(&big2[..3000])).await;
    assert_eq!(
        files_in(spool.path()),
        1,
        "the large messages wait in the command's one spool file"
    );
    t.input(wharf_imap::Input::Data(&big2[3000..])).await;
    let (r, _) = t.input(wharf_imap::Input::Line(b"\r\n")).await;
    assert!(r.starts_with("a OK [APPENDUID "), "{r}");
    assert_eq!(appenduid(&r).1, "1:3");
    assert!(spool_gone(spool.path()));
    assert_eq!(shared.literal_bytes_in_memory(), 0);
    t.cmd("s SELECT INBOX").await;
    let r = t.cmd("f FETCH 1:3 RFC822.SIZE").await;
    assert_eq!(
        r,
        format!(
            "* 1 FETCH (RFC822.SIZE 5000)\r\n* 2 FETCH (RFC822.SIZE {})\r\n* 3 FETCH (RFC822.SIZE 7000)\r\nf OK FETCH completed\r\n",
            small.len()
        )
    );
    let r = t.cmd("g FETCH 3 BODY.PEEK[]<6990.10>").await;
    assert!(
        r.contains(&String::from_utf8_lossy(&big2[6990..])[..]),
        "{r}"
    );
}

#[tokio::test]
async fn multiappend_total_is_bounded_by_max_append() {
    let env = env().await;
    let spool = tempfile::tempdir().unwrap();
    let cfg = wharf_imap::ImapConfig {
        max_append: 10_000,
        ..spool_cfg(spool.path())
    };
    let shared = wharf_imap::Shared::new(&cfg);
    let mut t = login_with(&env, cfg, shared).await;
    let m = "x".repeat(6000);
    // The second synchronising literal would pass the limit: NO [TOOBIG] instead of "+".
    let (r, _) = t
        .next(format!("a APPEND INBOX {{6000}}\r\n{m} {{6000}}\r\n").as_bytes())
        .await;
    assert!(r.ends_with("a NO [TOOBIG] Literal too large\r\n"), "{r}");
    // A non-synchronising one is read away, then BAD.
    let (r, _) = t
        .next(format!("b APPEND INBOX {{6000+}}\r\n{m} {{6000+}}\r\n{m}\r\n").as_bytes())
        .await;
    assert_eq!(r, "b BAD [TOOBIG] Literal too large\r\n");
    assert!(spool_gone(spool.path()));
    let r = t.cmd("c STATUS INBOX (MESSAGES)").await;
    assert!(r.contains("(MESSAGES 0)"), "{r}");
    // Within the limit together: stored.
    let m = "y".repeat(4000);
    let r = t
        .raw(format!("d APPEND INBOX {{4000+}}\r\n{m} {{4000+}}\r\n{m}\r\n").as_bytes())
        .await;
    assert!(r.starts_with("d OK [APPENDUID "), "{r}");
}

#[tokio::test]
async fn a_spool_that_cannot_be_made_fails_the_whole_multiappend_and_keeps_the_framing() {
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    // The spool directory cannot be created: a file stands where it should be.
    let blocked = dir.path().join("not-a-dir");
    std::fs::write(&blocked, b"x").unwrap();
    let cfg = wharf_imap::ImapConfig {
        literal_spool_threshold: 1024,
        spool_dir: Some(blocked.join("spool")),
        ..wharf_imap::ImapConfig::default()
    };
    let shared = wharf_imap::Shared::new(&cfg);
    let mut t = login_with(&env, cfg, shared.clone()).await;
    let big = "z".repeat(3000);
    let small = message(1);
    // Non-synchronising: the client sends everything; all of it is read away, then NO.
    let r = t
        .raw(
            format!(
                "a APPEND INBOX {{3000+}}\r\n{big} {{{}+}}\r\n{small} {{3000+}}\r\n{big}\r\nb NOOP\r\n",
                small.len()
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(
        r,
        "a NO [SERVERBUG] Cannot hold the message, try again later\r\nb OK NOOP completed\r\n"
    );
    // Synchronising: refused before the client sends it.
    let (r, _) = t.next(b"c APPEND INBOX {3000}\r\n").await;
    assert_eq!(
        r,
        "c NO [SERVERBUG] Cannot hold the message, try again later\r\n"
    );
    assert_eq!(shared.literal_bytes_in_memory(), 0);
    let r = t.cmd("d STATUS INBOX (MESSAGES)").await;
    assert!(r.contains("(MESSAGES 0)"), "{r}");
}

#[tokio::test]
async fn the_lines_of_one_command_are_bounded() {
    let env = env().await;
    let cfg = wharf_imap::ImapConfig {
        max_line: 1024,
        ..wharf_imap::ImapConfig::default()
    };
    let shared = wharf_imap::Shared::new(&cfg);
    let mut t = login_with(&env, cfg, shared).await;
    // Empty literals cost no literal octets; their lines still count (16 × max_line).
    let mut cmd = b"a APPEND INBOX {0+}\r\n".to_vec();
    for _ in 0..400 {
        cmd.extend_from_slice(b" (\\Seen) \"05-Mar-2020 10:11:12 +0100\" {0+}\r\n");
    }
    cmd.extend_from_slice(b"\r\nb NOOP\r\n");
    let r = t.raw(&cmd).await;
    assert_eq!(
        r,
        "a BAD [TOOBIG] Command too long\r\nb OK NOOP completed\r\n"
    );
    // A thousand small messages with flags and dates fit under the default max_line.
    let mut t = T::login(&env).await;
    let m = "Subject: s\r\n\r\nx\r\n";
    let mut cmd = b"c APPEND INBOX".to_vec();
    for _ in 0..1000 {
        cmd.extend_from_slice(
            format!(
                " (\\Seen) \"05-Mar-2020 10:11:12 +0100\" {{{}+}}\r\n{m}",
                m.len()
            )
            .as_bytes(),
        );
    }
    cmd.extend_from_slice(b"\r\n");
    let r = t.raw(&cmd).await;
    assert!(
        r.starts_with("c OK [APPENDUID ") && r.contains(" 1:1000]"),
        "{r}"
    );
}

/// The in-memory part of one APPEND is bounded by the spool threshold (whatever the shared
/// budget has left), and all its spooled literals share one spool file, read back at their
/// offsets.
#[tokio::test]
async fn one_command_holds_at_most_the_threshold_in_memory_and_one_spool_file() {
    let env = sql_env().await;
    let spool = tempfile::tempdir().unwrap();
    let cfg = spool_cfg(spool.path());
    let shared = wharf_imap::Shared::new(&cfg);
    let mut t = T::with_shared(&env, true, cfg, shared.clone());
    t.cmd(&format!("a0 LOGIN {USER} \"{PASS}\"")).await;
    // Five 600-octet messages, each under the 1024-octet threshold: the first is held in
    // memory, the others would take the command past the threshold and are spooled.
    let msgs: Vec<String> = (0..5)
        .map(|i| {
            format!(
                "Subject: m{i}\r\n\r\n{}",
                char::from(b'a' + i).to_string().repeat(585)
            )
        })
        .collect();
    assert!(msgs.iter().all(|m| m.len() == 600));
    let mut first = true;
    for m in &msgs {
        let line = if first {
            "a APPEND INBOX {600+}\r\n"
        } else {
            " {600+}\r\n"
        };
        first = false;
        let (_, next) = t.input(wharf_imap::Input::Line(line.as_bytes())).await;
        assert_eq!(next, wharf_imap::Next::Literal { len: 600 });
        t.input(wharf_imap::Input::Data(m.as_bytes())).await;
        assert!(shared.literal_bytes_in_memory() <= 1024);
    }
    assert_eq!(shared.literal_bytes_in_memory(), 600);
    assert_eq!(files_in(spool.path()), 1, "one file for the command");
    let (r, _) = t.input(wharf_imap::Input::Line(b"\r\n")).await;
    assert!(r.starts_with("a OK [APPENDUID "), "{r}");
    assert_eq!(appenduid(&r).1, "1:5");
    assert!(spool_gone(spool.path()));
    assert_eq!(shared.literal_bytes_in_memory(), 0);
    t.cmd("s SELECT INBOX").await;
    for (i, m) in msgs.iter().enumerate() {
        let r = t.cmd(&format!("f{i} FETCH {} BODY.PEEK[]", i + 1)).await;
        assert!(r.contains(&format!("{{600}}\r\n{m})")), "{r}");
    }
}

/// When the shared budget is spent every message literal is spooled, still into one file.
#[tokio::test]
async fn a_spent_budget_does_not_open_a_file_per_literal() {
    let env = env().await;
    let spool = tempfile::tempdir().unwrap();
    let cfg = wharf_imap::ImapConfig {
        literal_spool_threshold: 100_000,
        literal_memory_budget: 10,
        spool_dir: Some(spool.path().to_path_buf()),
        ..wharf_imap::ImapConfig::default()
    };
    let shared = wharf_imap::Shared::new(&cfg);
    let mut t = login_with(&env, cfg, shared).await;
    let m = message(1);
    t.input(wharf_imap::Input::Line(
        format!("a APPEND INBOX {{{}+}}\r\n", m.len()).as_bytes(),
    ))
    .await;
    t.input(wharf_imap::Input::Data(m.as_bytes())).await;
    for _ in 0..49 {
        t.input(wharf_imap::Input::Line(
            format!(" {{{}+}}\r\n", m.len()).as_bytes(),
        ))
        .await;
        t.input(wharf_imap::Input::Data(m.as_bytes())).await;
    }
    assert_eq!(files_in(spool.path()), 1);
    let (r, _) = t.input(wharf_imap::Input::Line(b"\r\n")).await;
    assert!(r.starts_with("a OK [APPENDUID "), "{r}");
    assert_eq!(appenduid(&r).1, "1:50");
    assert!(spool_gone(spool.path()));
}

/// Only message data is spooled: a mailbox name or a CATENATE URL sent as a literal stays in
/// the command, even when the memory budget is spent.
#[tokio::test]
async fn literal_mailbox_names_and_urls_are_not_spooled() {
    let env = env().await;
    let spool = tempfile::tempdir().unwrap();
    let cfg = wharf_imap::ImapConfig {
        literal_memory_budget: 1,
        spool_dir: Some(spool.path().to_path_buf()),
        ..wharf_imap::ImapConfig::default()
    };
    let shared = wharf_imap::Shared::new(&cfg);
    let mut t = login_with(&env, cfg, shared).await;
    let m = message(1);
    let r = t
        .raw(format!("a APPEND {{7}}\r\nArchive {{{}}}\r\n{m}\r\n", m.len()).as_bytes())
        .await;
    assert!(
        r.starts_with("+ Ready for literal data\r\n+ Ready for literal data\r\na OK [APPENDUID "),
        "{r}"
    );
    let r = t.cmd("b STATUS Archive (MESSAGES)").await;
    assert!(r.contains("(MESSAGES 1)"), "{r}");
    let url = "/Archive/;UID=1";
    let r = t
        .raw(
            format!(
                "c APPEND {{5+}}\r\nINBOX CATENATE (URL {{{}+}}\r\n{url} TEXT {{2+}}\r\nok)\r\n",
                url.len()
            )
            .as_bytes(),
        )
        .await;
    assert!(r.starts_with("c OK [APPENDUID "), "{r}");
    t.cmd("s SELECT INBOX").await;
    let r = t.cmd("f FETCH 1 RFC822.SIZE").await;
    assert!(r.contains(&format!("RFC822.SIZE {}", m.len() + 2)), "{r}");
    assert!(spool_gone(spool.path()));
}
