//! Mailbox names that file-mirroring clients would map outside the account's tree are refused
//! at create and at rename with `Invalid` and a reason (issue 15 item 7); the default folders
//! and ordinary names stay valid.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use wharf_store::*;

#[tokio::test]
async fn create_and_rename_refuse_unsafe_names_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_embedded(dir.path()).await.unwrap();
    store.create_domain("example.com").await.unwrap();
    let a = store
        .create_account(NewAccount {
            address: "user@example.com".into(),
            secret_hash: String::new(),
            scram_sha256: String::new(),
            quota_bytes: 0,
        })
        .await
        .unwrap();
    // Every default folder exists and passes the rule.
    let names: Vec<String> = store
        .list_mailboxes(a.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    for (name, _) in DEFAULT_MAILBOXES {
        assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
        assert_eq!(names::mailbox_name_problem(name), None);
    }
    let work = store.create_mailbox(a.id, "Work", None).await.unwrap();
    store.create_mailbox(a.id, "Work/2024", None).await.unwrap();
    for bad in [
        "", ".", "..", "a/..", "../x", "a//b", "a/", "/abs", "~", "~user", "a\0b", "a\u{1}b", "a*",
        "a%",
    ] {
        for r in [
            store.create_mailbox(a.id, bad, None).await.map(|_| ()),
            store.rename_mailbox(a.id, work.id, bad).await,
        ] {
            match r {
                Err(StoreError::Invalid(reason)) => {
                    assert_eq!(Some(reason.as_str()), names::mailbox_name_problem(bad))
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
    // Nothing was created or renamed by the refused calls.
    let after = store.list_mailboxes(a.id).await.unwrap().len();
    assert_eq!(after, DEFAULT_MAILBOXES.len() + 2);
    store.rename_mailbox(a.id, work.id, "Jobs").await.unwrap();
    assert!(
        store
            .get_mailbox(a.id, "Jobs/2024")
            .await
            .unwrap()
            .is_some()
    );
}
