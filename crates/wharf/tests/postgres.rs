//! The admin verbs against the scale-out backend: `[store] url = "postgres://…"` on the local
//! PostgreSQL (127.0.0.1:5432, user postgres, trust). Each run creates and drops its own database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::Env;
use wharf_testkit::TempDatabase;

#[test]
fn admin_verbs_work_on_a_postgres_store() {
    let db = TempDatabase::create("wharf_cli");
    let env = Env::new();
    env.write_config(&format!(
        "[server]\nhostname = \"mail.example.test\"\n\
         [store]\nurl = \"{}\"\nblob_dir = \"shared-blobs\"\n",
        db.url()
    ));
    env.ok(&["domain", "add", "example.test"]);
    let out = env.run_with_stdin(
        &[
            "user",
            "add",
            "alice@example.test",
            "--password-stdin",
            "--quota",
            "1G",
        ],
        "correct horse battery\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.ok(&["alias", "add", "sales@example.test", "alice@example.test"]);
    let list = env.ok(&["user", "list"]);
    assert!(
        list.contains("alice@example.test") && list.contains("1G"),
        "{list}"
    );
    assert!(
        env.ok(&["alias", "list"])
            .contains("sales@example.test -> alice@example.test")
    );
    let e = env.fails(&["domain", "add", "example.test"]);
    assert!(e.contains("example.test"), "{e}");

    let mbox = env.path().join("in.mbox");
    std::fs::write(
        &mbox,
        "From bob@example.org Tue Nov 14 22:13:20 2023\nSubject: pg\nStatus: RO\n\nhello\n",
    )
    .unwrap();
    assert!(
        env.ok(&["import", "alice@example.test", mbox.to_str().unwrap()])
            .contains("imported 1 messages into INBOX")
    );
    let mailboxes = env.ok(&["mailbox", "list", "alice@example.test"]);
    let inbox = mailboxes.lines().find(|l| l.starts_with("INBOX ")).unwrap();
    assert_eq!(inbox.split_whitespace().nth(2), Some("1"), "{inbox}");
    // Blobs went to the configured folder, relative to the config file.
    assert!(env.path().join("shared-blobs").is_dir());
    assert!(
        !env.data().join("wharf.db").exists(),
        "no SQLite file with a postgres URL"
    );
    drop(db);
}
