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
    // The stem index (FUZZY) on PostgreSQL is filled by a serving node's store writer, or here
    // by `wharf reindex`, which also rewrites the search text it was computed from.
    let out = env.ok(&["reindex"]);
    // The rewritten row is indexed by this loop or by the process's store writer, in its idle
    // time; either way none is left.
    assert!(out.contains("(0 left to index)"), "{out}");
    // Blobs went to the configured folder, relative to the config file.
    assert!(env.path().join("shared-blobs").is_dir());
    assert!(
        !env.data().join("wharf.db").exists(),
        "no SQLite file with a postgres URL"
    );
    drop(db);
}

/// Two nodes of one PostgreSQL store: a DKIM key made on one is the other's once it has the same
/// node-state key file; without it, or with another one, the node says which file to copy.
#[test]
fn dkim_keys_are_shared_by_the_nodes_of_a_postgres_store() {
    let db = TempDatabase::create("wharf_dkim");
    let config = format!(
        "[server]\nhostname = \"mail.example.test\"\n\
         [store]\nurl = \"{}\"\nblob_dir = \"blobs\"\n",
        db.url()
    );
    let a = Env::new();
    a.write_config(&config);
    let b = Env::new();
    b.write_config(&config);
    a.ok(&["domain", "add", "example.test"]);
    a.ok(&["dkim", "generate", "example.test", "--selector", "s1"]);
    let on_a = a.ok(&["dns", "example.test"]);
    assert!(on_a.contains("s1._domainkey.example.test."), "{on_a}");

    let e = b.fails(&["dns", "example.test"]);
    assert!(
        e.contains("state.key does not exist: copy that file"),
        "{e}"
    );
    std::fs::create_dir_all(b.data()).unwrap();
    std::fs::write(b.data().join("state.key"), format!("{}\n", "ab".repeat(32))).unwrap();
    let e = b.fails(&["dns", "example.test"]);
    assert!(e.contains("is not the node-state key"), "{e}");
    std::fs::copy(a.data().join("state.key"), b.data().join("state.key")).unwrap();
    assert_eq!(b.ok(&["dns", "example.test"]), on_a);
    // A key made on B is A's too; one deleted on A is gone for B.
    b.ok(&[
        "dkim",
        "generate",
        "example.test",
        "--selector",
        "s2",
        "--algo",
        "rsa",
    ]);
    assert!(
        a.ok(&["dns", "example.test"])
            .contains("s2._domainkey.example.test.")
    );
    a.ok(&["dkim", "delete", "example.test", "s1"]);
    let on_b = b.ok(&["dns", "example.test"]);
    assert!(
        !on_b.contains("s1._domainkey") && on_b.contains("s2._domainkey"),
        "{on_b}"
    );
    drop(db);
}
