//! `wharf import` of a Maildir (flags, keywords, dates, Maildir++ folders) and of an mbox,
//! verified through the store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::fs;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use common::Env;
use wharf_store::{Flags, Store};

fn setup() -> Env {
    let env = Env::new();
    env.ok(&["domain", "add", "example.test"]);
    let out = env.run_with_stdin(
        &["user", "add", "alice@example.test", "--password-stdin"],
        "correct horse battery\n",
    );
    assert!(out.status.success());
    env
}

fn put(dir: &Path, name: &str, body: &str, mtime: Option<i64>) {
    fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    fs::write(&path, body).unwrap();
    if let Some(t) = mtime {
        let f = fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(UNIX_EPOCH + Duration::from_secs(t as u64))
            .unwrap();
    }
}

fn msg(subject: &str) -> String {
    format!(
        "From: bob@example.org\nTo: alice@example.test\nSubject: {subject}\n\nHello {subject}\n"
    )
}

async fn index_of(
    store: &std::sync::Arc<dyn Store>,
    account: i64,
    mailbox: &str,
) -> Vec<(Flags, Vec<String>, i64, String)> {
    let mb = store
        .get_mailbox(account, mailbox)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("mailbox {mailbox} missing"));
    let mut out = Vec::new();
    for e in store.mailbox_index(mb.id).await.unwrap() {
        let raw = store.message_raw(e.message_id).await.unwrap();
        let text = String::from_utf8(raw.to_vec()).unwrap();
        let subject = text
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap()
            .trim_end()
            .to_string();
        assert!(
            !text.replace("\r\n", "").contains('\n'),
            "stored with bare LF: {text:?}"
        );
        out.push((
            e.flags.difference(Flags::RECENT),
            e.keywords.clone(),
            e.internal_date,
            subject,
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn maildir_with_flags_keywords_dates_and_subfolders() {
    let env = setup();
    let md = env.path().join("Maildir");
    fs::create_dir_all(md.join("tmp")).unwrap();
    // new/: unseen, date from mtime.
    put(
        &md.join("new"),
        "1700000300.M3P1.host",
        &msg("fresh"),
        Some(1_700_000_300),
    );
    // cur/: flags from the :2, suffix; keyword letters through dovecot-keywords.
    put(
        &md.join("cur"),
        "1700000100.M1P1.host,S=99:2,FRS",
        &msg("replied"),
        Some(1_700_000_100),
    );
    put(
        &md.join("cur"),
        "1700000200.M2P1.host:2,DTa",
        &msg("draft"),
        Some(1_700_000_200),
    );
    fs::write(md.join("dovecot-keywords"), "0 $Important\n1 work\n").unwrap();
    // Leftovers that are not messages.
    put(
        &md.join("tmp"),
        "1700000400.M4P1.host",
        &msg("in flight"),
        None,
    );
    put(&md.join("cur"), ".hidden", &msg("hidden"), None);
    // Maildir++ folders: .Sent (existing special mailbox), nested .Archive.2024, mUTF-7 name.
    put(
        &md.join(".Sent").join("cur"),
        "1600000000.S1.host:2,S",
        &msg("sent one"),
        Some(1_600_000_000),
    );
    put(
        &md.join(".Archive.2024").join("cur"),
        "1650000000.A1.host:2,",
        &msg("archived"),
        Some(1_650_000_000),
    );
    put(
        &md.join(".Entw&APw-rfe").join("new"),
        "1660000000.E1.host",
        &msg("entwurf"),
        Some(1_660_000_000),
    );

    let out = env.ok(&["import", "alice@example.test", md.to_str().unwrap()]);
    assert!(out.contains("imported 3 messages into INBOX"), "{out}");
    assert!(out.contains("imported 1 messages into Sent"), "{out}");
    assert!(
        out.contains("imported 1 messages into Archive/2024"),
        "{out}"
    );
    assert!(out.contains("imported 1 messages into Entwürfe"), "{out}");

    let store = env.store().await;
    let account = store
        .get_account_by_address("alice@example.test")
        .await
        .unwrap()
        .unwrap();
    let inbox = index_of(&store, account.id, "INBOX").await;
    assert_eq!(
        inbox,
        vec![
            (
                Flags::FLAGGED | Flags::ANSWERED | Flags::SEEN,
                vec![],
                1_700_000_100,
                "replied".to_string()
            ),
            (
                Flags::DRAFT | Flags::DELETED,
                vec!["$Important".to_string()],
                1_700_000_200,
                "draft".to_string()
            ),
            (Flags::empty(), vec![], 1_700_000_300, "fresh".to_string()),
        ]
    );
    let sent = index_of(&store, account.id, "Sent").await;
    assert_eq!(
        sent,
        vec![(Flags::SEEN, vec![], 1_600_000_000, "sent one".to_string())]
    );
    let archived = index_of(&store, account.id, "Archive/2024").await;
    assert_eq!(
        archived,
        vec![(
            Flags::empty(),
            vec![],
            1_650_000_000,
            "archived".to_string()
        )]
    );
    let drafts = index_of(&store, account.id, "Entwürfe").await;
    assert_eq!(drafts.len(), 1);

    // `mailbox list` reflects it.
    let list = env.ok(&["mailbox", "list", "alice@example.test"]);
    let inbox_line = list.lines().find(|l| l.starts_with("INBOX ")).unwrap();
    let cols: Vec<&str> = inbox_line.split_whitespace().collect();
    assert_eq!(cols[2], "3", "{inbox_line}");
    assert_eq!(cols[3], "2", "fresh and draft are unseen: {inbox_line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn maildir_date_falls_back_to_the_name_and_into_named_mailbox() {
    let env = setup();
    let md = env.path().join("md2");
    put(&md.join("cur"), "1500000000.X.host:2,S", &msg("old"), None);
    // No mtime set: the file's mtime is now, which Dovecot would have set to INTERNALDATE; a copy
    // that lost it is still imported with its mtime. Set mtime to the epoch to force the fallback.
    let f = fs::File::options()
        .write(true)
        .open(md.join("cur").join("1500000000.X.host:2,S"))
        .unwrap();
    f.set_modified(UNIX_EPOCH).unwrap();
    drop(f);
    env.ok(&[
        "import",
        "alice@example.test",
        md.to_str().unwrap(),
        "--mailbox",
        "Old/Mail",
    ]);
    let store = env.store().await;
    let account = store
        .get_account_by_address("alice@example.test")
        .await
        .unwrap()
        .unwrap();
    let old = index_of(&store, account.id, "Old/Mail").await;
    assert_eq!(
        old,
        vec![(Flags::SEEN, vec![], 1_500_000_000, "old".to_string())]
    );
    assert!(
        store
            .get_mailbox(account.id, "Old")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mbox_with_status_flags_and_quoting() {
    let env = setup();
    let mbox = env.path().join("saved.mbox");
    fs::write(
        &mbox,
        "From bob@example.org Sat Jan  3 01:05:34 1996\n\
         From: bob@example.org\nSubject: first\nStatus: RO\nX-Status: AF\n\n\
         body line\n>From the quoted start\n>>From deeper\n\n\
         From carol@example.org Tue Nov 14 22:13:20 2023\n\
         From: carol@example.org\nSubject: second\nX-Keywords: $Label1 work\n\n\
         From this line on, body text\n",
    )
    .unwrap();
    let out = env.ok(&["import", "alice@example.test", mbox.to_str().unwrap()]);
    assert!(out.contains("imported 2 messages into INBOX"), "{out}");

    let store = env.store().await;
    let account = store
        .get_account_by_address("alice@example.test")
        .await
        .unwrap()
        .unwrap();
    let inbox = index_of(&store, account.id, "INBOX").await;
    assert_eq!(inbox.len(), 2, "{inbox:?}");
    assert_eq!(
        inbox[0],
        (
            Flags::SEEN | Flags::ANSWERED | Flags::FLAGGED,
            vec![],
            820_631_134,
            "first".to_string()
        )
    );
    assert_eq!(
        inbox[1],
        (
            Flags::empty(),
            vec!["$Label1".to_string(), "work".to_string()],
            1_700_000_000,
            "second".to_string()
        )
    );
    let mb = store
        .get_mailbox(account.id, "INBOX")
        .await
        .unwrap()
        .unwrap();
    let entries = store.mailbox_index(mb.id).await.unwrap();
    let first = store.message_raw(entries[0].message_id).await.unwrap();
    assert_eq!(
        String::from_utf8(first.to_vec()).unwrap(),
        "From: bob@example.org\r\nSubject: first\r\n\r\nbody line\r\nFrom the quoted start\r\n>From deeper\r\n"
    );
    let second = store.message_raw(entries[1].message_id).await.unwrap();
    assert!(
        String::from_utf8(second.to_vec())
            .unwrap()
            .ends_with("\r\n\r\nFrom this line on, body text\r\n")
    );
}

#[test]
fn import_errors() {
    let env = setup();
    let md = env.path().join("Maildir");
    put(&md.join("cur"), "1.x:2,S", &msg("x"), None);
    let e = env.fails(&["import", "nobody@example.test", md.to_str().unwrap()]);
    assert!(e.contains("no such account: nobody@example.test"), "{e}");
    let e = env.fails(&["import", "alice@example.test", "/definitely/not/here"]);
    assert!(e.contains("/definitely/not/here"), "{e}");
    let plain = env.path().join("plain");
    fs::create_dir_all(&plain).unwrap();
    let e = env.fails(&["import", "alice@example.test", plain.to_str().unwrap()]);
    assert!(e.contains("not a Maildir"), "{e}");
    let notmbox = env.path().join("notes.txt");
    fs::write(&notmbox, "just some notes\n").unwrap();
    let e = env.fails(&["import", "alice@example.test", notmbox.to_str().unwrap()]);
    assert!(e.contains("not an mbox file"), "{e}");
}
