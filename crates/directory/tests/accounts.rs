//! Accounts and authentication on real stores: creation errors, password checks, disabled
//! accounts and the credential cache on SQLite and PostgreSQL; throttling on SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use common::{Backend, IP, PASSWORD, directory, fast_config, fixture};
use wharf_directory::{AuthError, DirectoryConfig, DirectoryError};
use wharf_store::StoreError;
use wharf_testkit::on_both_backends;

async fn add_account_and_its_errors(backend: Backend) {
    let fx = fixture(backend, fast_config()).await;
    let dir = &fx.directory;
    let a = dir
        .add_account("Alice@Example.TEST", PASSWORD, 1000)
        .await
        .unwrap();
    assert_eq!(a.address, "alice@example.test");
    assert_eq!(a.quota_bytes, 1000);
    assert!(a.secret_hash.starts_with("$argon2id$"));
    assert!(a.scram_sha256.starts_with("SCRAM-SHA-256$4096:"));

    match dir.add_account("ALICE@example.test", PASSWORD, 0).await {
        Err(DirectoryError::DuplicateAccount(x)) => assert_eq!(x, "alice@example.test"),
        other => panic!("{other:?}"),
    }
    match dir.add_account("bob@nowhere.test", PASSWORD, 0).await {
        Err(DirectoryError::UnknownDomain(d)) => assert_eq!(d, "nowhere.test"),
        other => panic!("{other:?}"),
    }
    match dir.add_account("bob@example.test", "short", 0).await {
        Err(DirectoryError::WeakPassword(rule)) => {
            assert!(rule.contains("at least 10 characters"), "{rule}")
        }
        other => panic!("{other:?}"),
    }
    match dir
        .add_account("bobbobbobbob@example.test", "BobBobBobBob", 0)
        .await
    {
        Err(DirectoryError::WeakPassword(rule)) => {
            assert!(rule.contains("name or address"), "{rule}")
        }
        other => panic!("{other:?}"),
    }
    for bad in [
        "no-at-sign",
        "a b@example.test",
        "a..b@example.test",
        "@example.test",
    ] {
        assert!(
            matches!(
                dir.add_account(bad, PASSWORD, 0).await,
                Err(DirectoryError::InvalidAddress(_))
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        dir.add_account("neg@example.test", PASSWORD, -1).await,
        Err(DirectoryError::Store(StoreError::Invalid(_)))
    ));
    // Domains: duplicates surface as the store's AlreadyExists, bad names as InvalidAddress.
    assert!(matches!(
        dir.add_domain("EXAMPLE.test").await,
        Err(DirectoryError::Store(StoreError::AlreadyExists(_)))
    ));
    assert!(matches!(
        dir.add_domain("bad domain").await,
        Err(DirectoryError::InvalidAddress(_))
    ));
    // set_password on an unknown account.
    assert!(matches!(
        dir.set_password("ghost@example.test", PASSWORD).await,
        Err(DirectoryError::NotFound(_))
    ));
}

async fn utf8_account(backend: Backend) {
    let fx = fixture(backend, fast_config()).await;
    let dir = &fx.directory;
    let a = dir
        .add_account("Jörg@example.test", PASSWORD, 0)
        .await
        .unwrap();
    assert_eq!(a.address, "jörg@example.test");
    assert_eq!(
        dir.authenticate("JÖRG@example.test", PASSWORD, IP)
            .await
            .unwrap()
            .id,
        a.id
    );
}

async fn authenticate_ok_wrong_unknown_disabled(backend: Backend) {
    let fx = fixture(backend, fast_config()).await;
    let dir = &fx.directory;
    let a = dir
        .add_account("alice@example.test", PASSWORD, 0)
        .await
        .unwrap();
    assert_eq!(
        dir.authenticate("alice@example.test", PASSWORD, IP)
            .await
            .unwrap()
            .id,
        a.id
    );
    assert_eq!(
        dir.authenticate("Alice@EXAMPLE.test", PASSWORD, IP)
            .await
            .unwrap()
            .id,
        a.id
    );
    assert_eq!(
        dir.authenticate("alice@example.test", "wrong password", IP)
            .await,
        Err(AuthError::InvalidCredentials)
    );
    assert_eq!(
        dir.authenticate("ghost@example.test", PASSWORD, IP).await,
        Err(AuthError::InvalidCredentials)
    );
    dir.set_disabled("alice@example.test", true).await.unwrap();
    assert_eq!(
        dir.authenticate("alice@example.test", PASSWORD, IP).await,
        Err(AuthError::Disabled)
    );
    // A disabled account with a wrong password looks like any wrong password.
    assert_eq!(
        dir.authenticate("alice@example.test", "wrong password", IP)
            .await,
        Err(AuthError::InvalidCredentials)
    );
    dir.set_disabled("alice@example.test", false).await.unwrap();
    assert!(
        dir.authenticate("alice@example.test", PASSWORD, IP)
            .await
            .is_ok()
    );
    assert!(matches!(
        dir.authenticate("", PASSWORD, IP).await,
        Err(AuthError::Malformed(_))
    ));
}

#[tokio::test]
async fn failures_are_delayed_more_and_more_but_never_lock_the_account() {
    let cfg = DirectoryConfig {
        // Long enough to hold five failures (argon2 included) on a busy machine.
        auth_lockout: Duration::from_secs(4),
        ..fast_config()
    };
    let (_tmp, dir) = directory(cfg).await;
    dir.add_account("alice@example.test", PASSWORD, 0)
        .await
        .unwrap();
    // Delays 20, 40, 80 (ceiling), 80 ms; the 5th failure puts the account under attack.
    let mut elapsed = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        assert_eq!(
            dir.authenticate("alice@example.test", "wrong password", IP)
                .await,
            Err(AuthError::InvalidCredentials)
        );
        elapsed.push(t.elapsed());
    }
    for (e, min) in elapsed.iter().zip([20, 40, 80, 80, 80]) {
        assert!(*e >= Duration::from_millis(min), "{elapsed:?}");
    }
    // The right password is not refused, from this IP or another one (neither has logged in
    // before, so both wait the ceiling first).
    let other_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));
    for ip in [IP, other_ip] {
        let t = Instant::now();
        assert!(
            dir.authenticate("alice@example.test", PASSWORD, ip)
                .await
                .is_ok()
        );
        assert!(
            t.elapsed() >= Duration::from_millis(80),
            "{:?}",
            t.elapsed()
        );
    }
}

#[tokio::test]
async fn ip_lockout() {
    let cfg = DirectoryConfig {
        auth_ip_lockout_after: 3,
        auth_account_lockout_after: 0,
        ..fast_config()
    };
    let (_tmp, dir) = directory(cfg).await;
    dir.add_account("alice@example.test", PASSWORD, 0)
        .await
        .unwrap();
    for i in 0..3 {
        let r = dir
            .authenticate(&format!("ghost{i}@example.test"), PASSWORD, IP)
            .await;
        assert_eq!(r, Err(AuthError::InvalidCredentials));
    }
    assert!(matches!(
        dir.authenticate("alice@example.test", PASSWORD, IP).await,
        Err(AuthError::Throttled { .. })
    ));
    let other_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));
    assert!(
        dir.authenticate("alice@example.test", PASSWORD, other_ip)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn success_resets_the_account_counter() {
    let (_tmp, dir) = directory(fast_config()).await;
    dir.add_account("alice@example.test", PASSWORD, 0)
        .await
        .unwrap();
    for _ in 0..4 {
        let _ = dir
            .authenticate("alice@example.test", "wrong password", IP)
            .await;
    }
    assert!(
        dir.authenticate("alice@example.test", PASSWORD, IP)
            .await
            .is_ok()
    );
    // Four more failures do not reach the lockout of five: the count started again.
    let other_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));
    for _ in 0..4 {
        assert_eq!(
            dir.authenticate("alice@example.test", "wrong password", other_ip)
                .await,
            Err(AuthError::InvalidCredentials)
        );
    }
    assert!(
        dir.authenticate("alice@example.test", PASSWORD, other_ip)
            .await
            .is_ok()
    );
}

async fn cache_skips_argon2_and_is_invalidated(backend: Backend) {
    let fx = fixture(backend, fast_config()).await;
    let dir = &fx.directory;
    dir.add_account("alice@example.test", PASSWORD, 0)
        .await
        .unwrap();
    let n0 = dir.password_verifications();
    dir.authenticate("alice@example.test", PASSWORD, IP)
        .await
        .unwrap();
    assert_eq!(dir.password_verifications(), n0 + 1);
    for _ in 0..5 {
        dir.authenticate("Alice@example.test", PASSWORD, IP)
            .await
            .unwrap();
    }
    assert_eq!(
        dir.password_verifications(),
        n0 + 1,
        "cache hits must not run argon2"
    );
    // A wrong password is never answered from the cache.
    let _ = dir
        .authenticate("alice@example.test", "wrong password", IP)
        .await;
    assert_eq!(dir.password_verifications(), n0 + 2);

    dir.set_password("alice@example.test", "a brand new secret")
        .await
        .unwrap();
    assert_eq!(
        dir.authenticate("alice@example.test", PASSWORD, IP).await,
        Err(AuthError::InvalidCredentials)
    );
    assert_eq!(dir.password_verifications(), n0 + 3);
    dir.authenticate("alice@example.test", "a brand new secret", IP)
        .await
        .unwrap();
    dir.authenticate("alice@example.test", "a brand new secret", IP)
        .await
        .unwrap();
    assert_eq!(dir.password_verifications(), n0 + 4);

    // Disabling is seen at once despite the cached verification.
    dir.set_disabled("alice@example.test", true).await.unwrap();
    assert_eq!(
        dir.authenticate("alice@example.test", "a brand new secret", IP)
            .await,
        Err(AuthError::Disabled)
    );
}

async fn password_changed_behind_our_back_is_not_served_from_cache(backend: Backend) {
    let fx = fixture(backend, fast_config()).await;
    let dir = &fx.directory;
    let a = dir
        .add_account("alice@example.test", PASSWORD, 0)
        .await
        .unwrap();
    dir.authenticate("alice@example.test", PASSWORD, IP)
        .await
        .unwrap();
    // Another process (the CLI) changes the password through its own Directory.
    let other = wharf_directory::Directory::new(dir.store().clone(), fast_config());
    other
        .set_password("alice@example.test", "changed elsewhere!")
        .await
        .unwrap();
    assert_eq!(
        dir.authenticate("alice@example.test", PASSWORD, IP).await,
        Err(AuthError::InvalidCredentials)
    );
    assert_eq!(
        dir.authenticate("alice@example.test", "changed elsewhere!", IP)
            .await
            .unwrap()
            .id,
        a.id
    );
}

on_both_backends!(
    add_account_and_its_errors,
    utf8_account,
    authenticate_ok_wrong_unknown_disabled,
    cache_skips_argon2_and_is_invalidated,
    password_changed_behind_our_back_is_not_served_from_cache,
);
