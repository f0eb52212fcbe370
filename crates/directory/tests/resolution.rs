//! Recipient resolution and `may_send_as`, on the embedded SQLite store and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{Backend, Fixture, PASSWORD, fast_config, fixture};
use wharf_directory::{Directory, Resolution};
use wharf_testkit::on_both_backends;

fn local(accounts: &[i64], external: &[&str]) -> Resolution {
    Resolution::Local {
        accounts: accounts.to_vec(),
        external: external.iter().map(|s| s.to_string()).collect(),
    }
}

async fn setup(backend: Backend) -> (Fixture, Directory, i64, i64, i64) {
    let fx = fixture(backend, fast_config()).await;
    let dir = fx.directory.clone();
    dir.add_domain("other.test").await.unwrap();
    let alice = dir
        .add_account("alice@example.test", PASSWORD, 0)
        .await
        .unwrap()
        .id;
    let bob = dir
        .add_account("bob@example.test", PASSWORD, 0)
        .await
        .unwrap()
        .id;
    let carol = dir
        .add_account("carol@other.test", PASSWORD, 0)
        .await
        .unwrap()
        .id;
    (fx, dir, alice, bob, carol)
}

async fn accounts_plus_tags_and_unknowns(backend: Backend) {
    let (_fx, dir, alice, _, _) = setup(backend).await;
    assert_eq!(
        dir.resolve_recipient("alice@example.test").await.unwrap(),
        local(&[alice], &[])
    );
    assert_eq!(
        dir.resolve_recipient("ALICE@Example.Test").await.unwrap(),
        local(&[alice], &[])
    );
    assert_eq!(
        dir.resolve_recipient("alice+news@example.test")
            .await
            .unwrap(),
        local(&[alice], &[])
    );
    assert_eq!(
        dir.resolve_recipient("alice+a+b@example.test")
            .await
            .unwrap(),
        local(&[alice], &[])
    );
    assert_eq!(
        dir.resolve_recipient("nobody@example.test").await.unwrap(),
        Resolution::UnknownUser
    );
    assert_eq!(
        dir.resolve_recipient("nobody+x@example.test")
            .await
            .unwrap(),
        Resolution::UnknownUser
    );
    assert_eq!(
        dir.resolve_recipient("alice@elsewhere.test").await.unwrap(),
        Resolution::NotLocalDomain
    );
    assert_eq!(
        dir.resolve_recipient("a b@example.test").await.unwrap(),
        Resolution::UnknownUser
    );
    assert_eq!(
        dir.resolve_recipient("alice@bad domain").await.unwrap(),
        Resolution::NotLocalDomain
    );
    assert!(dir.is_local_domain("EXAMPLE.test").await.unwrap());
    assert!(!dir.is_local_domain("elsewhere.test").await.unwrap());
}

async fn smtputf8_recipient(backend: Backend) {
    let fx = fixture(backend, fast_config()).await;
    let dir = &fx.directory;
    let id = dir
        .add_account("josé@example.test", PASSWORD, 0)
        .await
        .unwrap()
        .id;
    assert_eq!(
        dir.resolve_recipient("José@example.test").await.unwrap(),
        local(&[id], &[])
    );
    assert_eq!(
        dir.resolve_recipient("josé+tag@EXAMPLE.test")
            .await
            .unwrap(),
        local(&[id], &[])
    );
    dir.add_alias("пример@example.test", "josé@example.test")
        .await
        .unwrap();
    assert_eq!(
        dir.resolve_recipient("пример@example.test").await.unwrap(),
        local(&[id], &[])
    );
}

async fn aliases_lists_nesting_loops_and_externals(backend: Backend) {
    let (_fx, dir, alice, bob, carol) = setup(backend).await;
    // one-to-one
    dir.add_alias("postmaster@example.test", "alice@example.test")
        .await
        .unwrap();
    assert_eq!(
        dir.resolve_recipient("Postmaster@example.test")
            .await
            .unwrap(),
        local(&[alice], &[])
    );
    assert_eq!(
        dir.resolve_recipient("postmaster+x@example.test")
            .await
            .unwrap(),
        local(&[alice], &[])
    );
    // list, with a duplicate via nesting and a cross-domain local member
    dir.add_alias("team@example.test", "alice@example.test")
        .await
        .unwrap();
    dir.add_alias("team@example.test", "bob@example.test")
        .await
        .unwrap();
    dir.add_alias("team@example.test", "carol@other.test")
        .await
        .unwrap();
    dir.add_alias("team@example.test", "postmaster@example.test")
        .await
        .unwrap();
    assert_eq!(
        dir.resolve_recipient("team@example.test").await.unwrap(),
        local(&[alice, bob, carol], &[])
    );
    // nested: all → team → …, plus an external member
    dir.add_alias("all@example.test", "team@example.test")
        .await
        .unwrap();
    dir.add_alias("all@example.test", "Friend@Remote.example")
        .await
        .unwrap();
    assert_eq!(
        dir.resolve_recipient("all@example.test").await.unwrap(),
        local(&[alice, bob, carol], &["Friend@remote.example"])
    );
    // only external
    dir.add_alias("fwd@example.test", "someone@remote.example")
        .await
        .unwrap();
    assert_eq!(
        dir.resolve_recipient("fwd@example.test").await.unwrap(),
        local(&[], &["someone@remote.example"])
    );
    // a loop alone delivers nowhere; a loop with an exit delivers to the exit
    dir.add_alias("loop1@example.test", "loop2@example.test")
        .await
        .unwrap();
    dir.add_alias("loop2@example.test", "loop1@example.test")
        .await
        .unwrap();
    assert_eq!(
        dir.resolve_recipient("loop1@example.test").await.unwrap(),
        Resolution::UnknownUser
    );
    dir.add_alias("loop2@example.test", "bob@example.test")
        .await
        .unwrap();
    assert_eq!(
        dir.resolve_recipient("loop1@example.test").await.unwrap(),
        local(&[bob], &[])
    );
    // an account that also forwards a copy
    dir.add_alias("bob@example.test", "bob.copy@remote.example")
        .await
        .unwrap();
    assert_eq!(
        dir.resolve_recipient("bob@example.test").await.unwrap(),
        local(&[bob], &["bob.copy@remote.example"])
    );
    // an alias to itself is refused up front
    assert!(
        dir.add_alias("self@example.test", "SELF@example.test")
            .await
            .is_err()
    );
    // aliases only in local domains
    assert!(
        dir.add_alias("x@elsewhere.test", "alice@example.test")
            .await
            .is_err()
    );
}

async fn nesting_depth_is_limited(backend: Backend) {
    let (_fx, dir, alice, _, _) = setup(backend).await;
    // a0 → a1 → … → a20 → alice: deeper than the limit, so alice is not reached.
    for i in 0..20 {
        dir.add_alias(
            &format!("a{i}@example.test"),
            &format!("a{}@example.test", i + 1),
        )
        .await
        .unwrap();
    }
    dir.add_alias("a20@example.test", "alice@example.test")
        .await
        .unwrap();
    assert_eq!(
        dir.resolve_recipient("a0@example.test").await.unwrap(),
        Resolution::UnknownUser
    );
    assert_eq!(
        dir.resolve_recipient("a15@example.test").await.unwrap(),
        local(&[alice], &[])
    );
}

async fn catch_all_only_when_nothing_matches(backend: Backend) {
    let (_fx, dir, alice, bob, carol) = setup(backend).await;
    dir.add_alias("sales@example.test", "bob@example.test")
        .await
        .unwrap();
    dir.add_alias("@example.test", "alice@example.test")
        .await
        .unwrap();
    assert_eq!(
        dir.resolve_recipient("random@example.test").await.unwrap(),
        local(&[alice], &[])
    );
    assert_eq!(
        dir.resolve_recipient("bob@example.test").await.unwrap(),
        local(&[bob], &[])
    );
    assert_eq!(
        dir.resolve_recipient("sales@example.test").await.unwrap(),
        local(&[bob], &[])
    );
    assert_eq!(
        dir.resolve_recipient("bob+tag@example.test").await.unwrap(),
        local(&[bob], &[])
    );
    // other.test has no catch-all
    assert_eq!(
        dir.resolve_recipient("random@other.test").await.unwrap(),
        Resolution::UnknownUser
    );
    // a domain alias: @other.test → @example.test keeps the local part
    dir.add_alias("@other.test", "@example.test").await.unwrap();
    assert_eq!(
        dir.resolve_recipient("bob@other.test").await.unwrap(),
        local(&[bob], &[])
    );
    assert_eq!(
        dir.resolve_recipient("carol@other.test").await.unwrap(),
        local(&[carol], &[])
    );
    assert_eq!(
        dir.resolve_recipient("zed@other.test").await.unwrap(),
        local(&[alice], &[])
    );
}

async fn disabled_accounts_receive_nothing(backend: Backend) {
    let (_fx, dir, alice, _, _) = setup(backend).await;
    dir.add_alias("@example.test", "alice@example.test")
        .await
        .unwrap();
    dir.set_disabled("bob@example.test", true).await.unwrap();
    // The account exists, so the catch-all does not take its mail either.
    assert_eq!(
        dir.resolve_recipient("bob@example.test").await.unwrap(),
        Resolution::UnknownUser
    );
    assert_eq!(
        dir.resolve_recipient("zed@example.test").await.unwrap(),
        local(&[alice], &[])
    );
}

async fn may_send_as(backend: Backend) {
    let (_fx, dir, _, _, _) = setup(backend).await;
    let alice = dir.account("alice@example.test").await.unwrap().unwrap();
    dir.add_alias("postmaster@example.test", "alice@example.test")
        .await
        .unwrap();
    dir.add_alias("team@example.test", "alice@example.test")
        .await
        .unwrap();
    dir.add_alias("team@example.test", "bob@example.test")
        .await
        .unwrap();
    dir.add_alias("boss@example.test", "team@example.test")
        .await
        .unwrap();
    dir.add_alias("bobonly@example.test", "bob@example.test")
        .await
        .unwrap();
    dir.add_alias("@example.test", "alice@example.test")
        .await
        .unwrap();
    // bob forwards to alice: that does not make bob's address hers.
    dir.add_alias("bob@example.test", "alice@example.test")
        .await
        .unwrap();

    for ok in [
        "alice@example.test",
        "Alice@EXAMPLE.test",
        "alice+tag@example.test",
        "postmaster@example.test",
        "team@example.test",
        "boss@example.test",
    ] {
        assert!(dir.may_send_as(&alice, ok).await.unwrap(), "{ok}");
    }
    for no in [
        "bob@example.test",
        "bob+x@example.test",
        "bobonly@example.test",
        "carol@other.test",
        "random@example.test",
        "alice@other.test",
        "alice@elsewhere.test",
        "not an address",
    ] {
        assert!(!dir.may_send_as(&alice, no).await.unwrap(), "{no}");
    }
}

/// postmaster@ and abuse@ of every local domain (and the bare `Postmaster`) reach the
/// configured postmaster unless an account or alias owns them; other unknown names do not.
async fn role_addresses_reach_the_postmaster(backend: Backend) {
    let cfg = wharf_directory::DirectoryConfig {
        postmaster: Some("alice@example.test".into()),
        ..fast_config()
    };
    let fx = fixture(backend, cfg).await;
    let dir = fx.directory.clone();
    dir.add_domain("other.test").await.unwrap();
    let alice = dir
        .add_account("alice@example.test", PASSWORD, 0)
        .await
        .unwrap()
        .id;
    let bob = dir
        .add_account("bob@other.test", PASSWORD, 0)
        .await
        .unwrap()
        .id;
    for a in [
        "postmaster@example.test",
        "POSTMASTER@other.test",
        "abuse@other.test",
        "abuse+spam@example.test",
        "Postmaster",
    ] {
        assert_eq!(
            dir.resolve_recipient(a).await.unwrap(),
            local(&[alice], &[]),
            "{a}"
        );
    }
    assert_eq!(
        dir.resolve_recipient("hostmaster@other.test")
            .await
            .unwrap(),
        Resolution::UnknownUser
    );
    assert_eq!(
        dir.resolve_recipient("postmaster@elsewhere.test")
            .await
            .unwrap(),
        Resolution::NotLocalDomain
    );
    // An alias of the admin's wins over the fallback.
    dir.add_alias("abuse@other.test", "bob@other.test")
        .await
        .unwrap();
    assert_eq!(
        dir.resolve_recipient("abuse@other.test").await.unwrap(),
        local(&[bob], &[])
    );
    // Without a configured postmaster, nothing changes.
    let (_fx, plain, _, _, _) = setup(backend).await;
    assert_eq!(
        plain
            .resolve_recipient("postmaster@example.test")
            .await
            .unwrap(),
        Resolution::UnknownUser
    );
}

on_both_backends!(
    role_addresses_reach_the_postmaster,
    accounts_plus_tags_and_unknowns,
    smtputf8_recipient,
    aliases_lists_nesting_loops_and_externals,
    nesting_depth_is_limited,
    catch_all_only_when_nothing_matches,
    disabled_accounts_receive_nothing,
    may_send_as,
);
