//! The admin verbs of the real binary, success and error paths, checked through the store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::net::{IpAddr, Ipv4Addr};

use common::Env;
use wharf_directory::{Directory, DirectoryConfig};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

#[test]
fn domain_add_list_del_and_errors() {
    let env = Env::new();
    assert_eq!(
        env.ok(&["domain", "add", "Example.ORG"]),
        "domain example.org added\n"
    );
    env.ok(&["domain", "add", "other.test"]);
    let list = env.ok(&["domain", "list"]);
    assert!(list.lines().any(|l| l == "example.org"), "{list}");
    assert!(list.lines().any(|l| l == "other.test"), "{list}");

    let e = env.fails(&["domain", "add", "example.org"]);
    assert!(e.contains("example.org"), "{e}");
    let e = env.fails(&["domain", "add", "bad domain"]);
    assert!(e.contains("bad domain"), "{e}");

    env.ok_with_password(
        &["user", "add", "ann@other.test", "--password-stdin"],
        "correct horse battery",
    );
    let e = env.fails(&["domain", "del", "other.test"]);
    assert!(e.contains("still has accounts"), "{e}");
    env.ok(&["user", "del", "ann@other.test"]);
    assert_eq!(
        env.ok(&["domain", "del", "other.test"]),
        "domain other.test deleted\n"
    );
    assert!(!env.ok(&["domain", "list"]).contains("other.test"));
    let e = env.fails(&["domain", "del", "nowhere.test"]);
    assert!(e.contains("unknown domain nowhere.test"), "{e}");
}

trait PasswordRun {
    fn ok_with_password(&self, args: &[&str], password: &str) -> String;
}

impl PasswordRun for Env {
    fn ok_with_password(&self, args: &[&str], password: &str) -> String {
        let out = self.run_with_stdin(args, &format!("{password}\n"));
        assert!(
            out.status.success(),
            "wharf {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

async fn authenticates(env: &Env, user: &str, password: &str) -> bool {
    let dir = Directory::new(env.store().await, DirectoryConfig::default());
    dir.authenticate(user, password, LOCAL).await.is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn user_lifecycle_and_errors() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.test"]);

    let out = env.ok_with_password(
        &[
            "user",
            "add",
            "alice@example.test",
            "--password-stdin",
            "--quota",
            "10M",
        ],
        "correct horse battery",
    );
    assert_eq!(out, "user alice@example.test added\n");
    assert!(authenticates(&env, "alice@example.test", "correct horse battery").await);
    assert!(!authenticates(&env, "alice@example.test", "wrong password!!").await);

    // Generated password: printed once, and it works.
    let out = env.ok(&["user", "add", "bob@example.test"]);
    let password = out
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("generated password printed")
        .to_string();
    assert!(password.len() >= 16);
    assert!(authenticates(&env, "bob@example.test", &password).await);

    // Error paths: duplicate, unknown domain, weak password (the rule is named), bad quota.
    let e = env.fails_with_stdin(
        &["user", "add", "alice@example.test", "--password-stdin"],
        "another long password\n",
    );
    assert!(
        e.contains("alice@example.test") && e.contains("already exists"),
        "{e}"
    );
    let e = env.fails_with_stdin(
        &["user", "add", "carol@nowhere.test", "--password-stdin"],
        "another long password\n",
    );
    assert!(e.contains("unknown domain nowhere.test"), "{e}");
    let e = env.fails_with_stdin(
        &["user", "add", "carol@example.test", "--password-stdin"],
        "short\n",
    );
    assert!(e.contains("password refused"), "{e}");
    assert!(e.contains("10"), "the rule names the minimum length: {e}");
    let e = env.fails_with_stdin(
        &["user", "add", "carol@example.test", "--password-stdin"],
        "",
    );
    assert!(e.contains("no password"), "{e}");
    let e = env.fails(&["user", "add", "carol@example.test", "--quota", "lots"]);
    assert!(e.contains("invalid size"), "{e}");

    // list shows both, with quota
    let list = env.ok(&["user", "list"]);
    let alice = list
        .lines()
        .find(|l| l.starts_with("alice@example.test"))
        .expect(&list);
    assert!(alice.contains("10M") && alice.contains("active"), "{alice}");
    assert!(list.contains("bob@example.test"));
    let list = env.ok(&["user", "list", "--domain", "example.test"]);
    assert!(list.contains("alice@example.test"));
    let e = env.fails(&["user", "list", "--domain", "nowhere.test"]);
    assert!(e.contains("unknown domain"), "{e}");

    // passwd
    env.ok_with_password(
        &["user", "passwd", "alice@example.test", "--password-stdin"],
        "a brand new passphrase",
    );
    assert!(authenticates(&env, "alice@example.test", "a brand new passphrase").await);
    assert!(!authenticates(&env, "alice@example.test", "correct horse battery").await);
    let e = env.fails_with_stdin(
        &["user", "passwd", "alice@example.test", "--password-stdin"],
        "tiny\n",
    );
    assert!(e.contains("password refused"), "{e}");
    let e = env.fails_with_stdin(
        &["user", "passwd", "nobody@example.test", "--password-stdin"],
        "a brand new passphrase\n",
    );
    assert!(e.contains("nobody@example.test"), "{e}");

    // quota show / set
    let q = env.ok(&["user", "quota", "alice@example.test"]);
    assert_eq!(q, "alice@example.test: 0 used of 10M\n");
    env.ok(&["user", "quota", "alice@example.test", "1G"]);
    let store = env.store().await;
    let a = store
        .get_account_by_address("alice@example.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.quota_bytes, 1 << 30);
    drop(store);
    assert!(
        env.ok(&["user", "quota", "alice@example.test", "0"])
            .contains("unlimited")
    );
    let e = env.fails(&["user", "quota", "nobody@example.test"]);
    assert!(e.contains("no such account: nobody@example.test"), "{e}");

    // disable / enable: a disabled account cannot log in, and it shows in the list.
    assert_eq!(
        env.ok(&["user", "disable", "bob@example.test"]),
        "user bob@example.test disabled\n"
    );
    assert!(!authenticates(&env, "bob@example.test", &password).await);
    let list = env.ok(&["user", "list"]);
    let bob = list.lines().find(|l| l.starts_with("bob@")).unwrap();
    assert!(bob.ends_with("disabled"), "{bob}");
    env.ok(&["user", "enable", "bob@example.test"]);
    assert!(authenticates(&env, "bob@example.test", &password).await);
    let e = env.fails(&["user", "disable", "nobody@example.test"]);
    assert!(e.contains("no such account"), "{e}");

    // del
    assert_eq!(
        env.ok(&["user", "del", "bob@example.test"]),
        "user bob@example.test deleted\n"
    );
    assert!(!env.ok(&["user", "list"]).contains("bob@example.test"));
    let e = env.fails(&["user", "del", "bob@example.test"]);
    assert!(e.contains("no such account: bob@example.test"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn alias_add_list_del_and_errors() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.test"]);
    env.ok_with_password(
        &["user", "add", "alice@example.test", "--password-stdin"],
        "correct horse battery",
    );
    assert_eq!(
        env.ok(&["alias", "add", "sales@example.test", "alice@example.test"]),
        "alias sales@example.test -> alice@example.test added\n"
    );
    env.ok(&[
        "alias",
        "add",
        "sales@example.test",
        "partner@elsewhere.org",
    ]);
    env.ok(&["alias", "add", "@example.test", "alice@example.test"]);
    let list = env.ok(&["alias", "list"]);
    assert!(
        list.contains("sales@example.test -> alice@example.test"),
        "{list}"
    );
    assert!(
        list.contains("sales@example.test -> partner@elsewhere.org"),
        "{list}"
    );
    assert!(
        list.contains("@example.test -> alice@example.test"),
        "{list}"
    );

    let store = env.store().await;
    let mut targets = store.alias_targets("sales@example.test").await.unwrap();
    targets.sort();
    assert_eq!(targets, vec!["alice@example.test", "partner@elsewhere.org"]);
    drop(store);

    let e = env.fails(&["alias", "add", "x@nowhere.test", "alice@example.test"]);
    assert!(e.contains("unknown domain nowhere.test"), "{e}");
    let e = env.fails(&["alias", "add", "alice@example.test", "bob@elsewhere.org"]);
    assert!(e.contains("is an account"), "{e}");
    let e = env.fails(&["alias", "add", "info@example.test", "not an address"]);
    assert!(e.contains("invalid target"), "{e}");
    let e = env.fails(&["alias", "add", "no-at-sign", "alice@example.test"]);
    assert!(e.contains("invalid alias address"), "{e}");

    env.ok(&[
        "alias",
        "del",
        "sales@example.test",
        "partner@elsewhere.org",
    ]);
    let list = env.ok(&["alias", "list"]);
    assert!(!list.contains("partner@elsewhere.org"), "{list}");
    assert!(
        list.contains("sales@example.test -> alice@example.test"),
        "{list}"
    );
    env.ok(&["alias", "del", "sales@example.test"]);
    assert!(!env.ok(&["alias", "list"]).contains("sales@"));
    let e = env.fails(&["alias", "del", "sales@example.test"]);
    assert!(e.contains("no alias sales@example.test"), "{e}");
    let e = env.fails(&["alias", "del", "@example.test", "bob@example.test"]);
    assert!(
        e.contains("no alias @example.test -> bob@example.test"),
        "{e}"
    );
}

#[test]
fn mailbox_list_shows_default_mailboxes() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.test"]);
    env.ok_with_password(
        &["user", "add", "alice@example.test", "--password-stdin"],
        "correct horse battery",
    );
    let out = env.ok(&["mailbox", "list", "alice@example.test"]);
    for name in ["INBOX", "Drafts", "Sent", "Junk", "Trash", "Archive"] {
        assert!(
            out.lines()
                .any(|l| l.split_whitespace().next() == Some(name)),
            "{name} missing: {out}"
        );
    }
    let sent = out.lines().find(|l| l.starts_with("Sent ")).unwrap();
    assert!(sent.contains("\\Sent"), "{sent}");
    let e = env.fails(&["mailbox", "list", "nobody@example.test"]);
    assert!(e.contains("no such account"), "{e}");
}

#[test]
fn config_option_before_or_after_the_verb_and_config_errors() {
    let env = Env::new();
    // --config after the verb (Env::run puts it before).
    let out = std::process::Command::new(common::BIN)
        .args(["domain", "add", "late.test", "--config"])
        .arg(env.config())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(env.ok(&["domain", "list"]).contains("late.test"));

    // Missing config file: admin verbs never create one.
    let missing = env.path().join("nope.toml");
    let out = std::process::Command::new(common::BIN)
        .args(["domain", "list", "--config"])
        .arg(&missing)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("nope.toml") && err.contains("not found"),
        "{err}"
    );
    assert!(!missing.exists());

    // An unknown key is refused with file, line and key.
    env.write_config("[server]\nhostname = \"mail.example.test\"\n[limits]\nmax_per_ipp = 3\n");
    let e = env.fails(&["domain", "list"]);
    assert!(
        e.contains("wharf.toml:4:1: key `limits.max_per_ipp`"),
        "{e}"
    );
    assert!(e.contains("unknown field"), "{e}");

    // Usage errors exit non-zero too.
    let out = std::process::Command::new(common::BIN)
        .args(["user", "frobnicate"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
