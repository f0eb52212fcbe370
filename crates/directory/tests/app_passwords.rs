//! App passwords on real stores: `authenticate` (IMAP, POP3, SMTP AUTH) takes one in place of the
//! account password, records its use, stops taking it the moment it is revoked (no cache), and
//! refuses it for a disabled account; `authenticate_account_password` (the web sign-in) never
//! takes one; deleting the account deletes its app passwords.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

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
        .create_app_password(a.id, "phone", &hash)
        .await
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
    store.create_app_password(b.id, "laptop", &h).await.unwrap();
    dir.delete_account("bob@example.test").await.unwrap();
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

on_both_backends!(app_passwords_log_in_until_revoked);
