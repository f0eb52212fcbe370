//! Transcripts on the in-memory backend: APPEND (flags, dates, literals, UTF8).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
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
    assert_eq!(r, "c BAD Unexpected data after the message\r\n");
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
