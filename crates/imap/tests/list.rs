//! Transcripts on the in-memory backend: LIST (extended selection and return options, status,
//! special-use) and LSUB.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

#[tokio::test]
async fn list_variants() {
    let env = env().await;
    let mut t = T::login(&env).await;
    let r = t.cmd("a LIST \"\" \"\"").await;
    assert_eq!(
        r,
        "* LIST (\\Noselect) \"/\" \"\"\r\na OK LIST completed\r\n"
    );
    let r = t.cmd("b LIST \"\" %").await;
    for n in ["INBOX", "Drafts", "Sent", "Junk", "Trash", "Archive"] {
        assert!(r.contains(&format!("\"/\" {n}\r\n")), "{n}: {r}");
    }
    assert!(
        r.contains("* LIST (\\Sent \\HasNoChildren) \"/\" Sent\r\n"),
        "{r}"
    );
    let r = t.cmd("c LIST (SPECIAL-USE) \"\" *").await;
    assert!(!r.contains("INBOX"), "{r}");
    assert!(r.contains("\\Trash"), "{r}");
    t.append("INBOX", "", &message(1)).await;
    let r = t
        .cmd("d LIST \"\" (INBOX Sent) RETURN (STATUS (MESSAGES UNSEEN SIZE) SUBSCRIBED CHILDREN)")
        .await;
    assert!(
        r.contains("* STATUS INBOX (MESSAGES 1 UNSEEN 1 SIZE "),
        "{r}"
    );
    assert!(
        r.contains("* STATUS Sent (MESSAGES 0 UNSEEN 0 SIZE 0)"),
        "{r}"
    );
    let r = t.cmd("e LIST \"\" inbox").await;
    assert!(r.contains("\"/\" INBOX\r\n"), "{r}");
    let r = t.cmd("f NAMESPACE").await;
    assert_eq!(
        r,
        "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\nf OK NAMESPACE completed\r\n"
    );
    let r = t.cmd("g LIST (RECURSIVEMATCH) \"\" *").await;
    assert!(r.starts_with("g BAD"), "{r}");
    t.cmd("h CREATE A/B").await;
    t.cmd("i SUBSCRIBE A/B").await;
    let r = t.cmd("j LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %").await;
    assert!(
        r.contains("\"/\" A (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"),
        "{r}"
    );
}

/// A pattern that is not valid modified UTF-7 can match no mailbox: LIST and LSUB answer OK with
/// nothing (RFC 9051 §6.3.9), not NO [CANNOT].
#[tokio::test]
async fn unusual_atoms_list_nothing() {
    let env = env().await;
    let mut t = T::login(&env).await;
    for (tag, cmd) in [
        ("a", "LIST \"\" &"),
        ("b", "LIST \"\" \"&Jjo\""),
        ("c", "LIST &- *"),
        ("d", "LSUB \"\" \"&zz-\""),
    ] {
        let r = t.cmd(&format!("{tag} {cmd}")).await;
        assert!(r.starts_with(&format!("{tag} OK")), "{cmd}: {r}");
    }
    // Valid ones still list.
    let r = t.cmd("e LIST \"\" INBOX").await;
    assert!(r.contains("\"INBOX\"") || r.contains(" INBOX\r\n"), "{r}");
}
