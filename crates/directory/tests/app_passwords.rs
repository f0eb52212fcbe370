//! App passwords on real stores: `authenticate` (IMAP, POP3, SMTP AUTH) takes one in place of the
//! account password, records its use, stops taking it the moment it is revoked (no cache), and
//! refuses it for a disabled account; `authenticate_account_password` (the web sign-in) never
//! takes one; deleting the account deletes its app passwords.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{Backend, IP, PASSWORD, fast_config, fixture};
use wharf_directory::{AuthError, app_password};
use wharf_testkit::on_both_backends;

async fn app_passwords_log_in_until_revoked(backend: Backend) {
    let fx = fixture(backend, fast_config()).await;
    let dir = &fx.directory;
    let a = dir
        .add_account("alice@example.test", PASSWORD, 0)
        .await
        .unwrap();
    let store = dir.store();
    let secret = app_password::generate();
    let hash = app_password::hash(&app_password::normalize(&secret).unwrap());
    let ap = store
        .create_app_password(a.id, "phone", &hash, 50)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ap.label, "phone");
    assert!(ap.last_used_at.is_none());

    // Accepted, also typed in capitals or without dashes; the use is recorded.
    assert_eq!(
        dir.authenticate("alice@example.test", &secret, IP)
            .await
            .unwrap()
            .id,
        a.id
    );
    let squashed = secret.replace('-', "").to_uppercase();
    dir.authenticate("Alice@example.test", &squashed, IP)
        .await
        .unwrap();
    let listed = store.list_app_passwords(a.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_used_at.is_some());
    // The account password still works; the web sign-in takes only it.
    dir.authenticate("alice@example.test", PASSWORD, IP)
        .await
        .unwrap();
    assert_eq!(
        dir.authenticate_account_password("alice@example.test", &secret, IP)
            .await
            .unwrap_err(),
        AuthError::InvalidCredentials
    );
    dir.authenticate_account_password("alice@example.test", PASSWORD, IP)
        .await
        .unwrap();
    // Another account's app password is not this one's.
    let b = dir
        .add_account("bob@example.test", PASSWORD, 0)
        .await
        .unwrap();
    assert!(
        dir.authenticate("bob@example.test", &secret, IP)
            .await
            .is_err()
    );
    assert!(!store.delete_app_password(b.id, ap.id).await.unwrap());

    // Disabled account: refused.
    dir.set_disabled("alice@example.test", true).await.unwrap();
    assert_eq!(
        dir.authenticate("alice@example.test", &secret, IP)
            .await
            .unwrap_err(),
        AuthError::Disabled
    );
    dir.set_disabled("alice@example.test", false).await.unwrap();

    // Revoked: refused at once.
    assert!(store.delete_app_password(a.id, ap.id).await.unwrap());
    assert_eq!(
        dir.authenticate("alice@example.test", &secret, IP)
            .await
            .unwrap_err(),
        AuthError::InvalidCredentials
    );
    assert!(store.list_app_passwords(a.id).await.unwrap().is_empty());

    // Deleting the account deletes its app passwords.
    let other = app_password::generate();
    let h = app_password::hash(&app_password::normalize(&other).unwrap());
    store
        .create_app_password(b.id, "laptop", &h, 50)
        .await
        .unwrap()
        .unwrap();
    dir.delete_account("bob@example.test").await.unwrap();
    // Gone with the account (checked before the address is created again: on PostgreSQL the
    // new account gets a new id, so the check below alone could not fail).
    assert!(store.list_app_passwords(b.id).await.unwrap().is_empty());
    let b2 = dir
        .add_account("bob@example.test", PASSWORD, 0)
        .await
        .unwrap();
    assert!(store.list_app_passwords(b2.id).await.unwrap().is_empty());
    assert!(
        dir.authenticate("bob@example.test", &other, IP)
            .await
            .is_err()
    );
}

/// The per-account limit is checked in the insert's transaction: concurrent creations never
/// pass it; revoking them all (an admin's password reset) frees the account again.
async fn app_password_limit_is_atomic(backend: Backend) {
    let fx = fixture(backend, fast_config()).await;
    let dir = &fx.directory;
    let a = dir
        .add_account("carol@example.test", PASSWORD, 0)
        .await
        .unwrap();
    let store = dir.store();
    const LIMIT: usize = 5;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let store = store.clone();
        let id = a.id;
        tasks.push(tokio::spawn(async move {
            let hash = app_password::hash(&format!("{i:032}"));
            store
                .create_app_password(id, &format!("device {i}"), &hash, LIMIT)
                .await
                .unwrap()
                .is_some()
        }));
    }
    let mut made = 0;
    for t in tasks {
        if t.await.unwrap() {
            made += 1;
        }
    }
    assert_eq!(made, LIMIT);
    assert_eq!(store.list_app_passwords(a.id).await.unwrap().len(), LIMIT);
    assert!(
        store
            .create_app_password(a.id, "one more", "00", LIMIT)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.delete_app_passwords(a.id).await.unwrap(),
        LIMIT as u64
    );
    assert!(store.list_app_passwords(a.id).await.unwrap().is_empty());
    assert!(
        store
            .create_app_password(a.id, "again", "01", LIMIT)
            .await
            .unwrap()
            .is_some()
    );
}

on_both_backends!(
    app_passwords_log_in_until_revoked,
    app_password_limit_is_atomic
);
