//! The PostgreSQL directory cache (`sql/dir_cache.rs`, issue 19 item 5): two stores on one
//! database stand for two nodes. A node that has looked something up (found or not) sees
//! another node's change, or a change made in plain SQL, within moments; its own changes at
//! once; and a delivery's `used_bytes` update does not empty every node's cache.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::Connection;
use wharf_store::*;
use wharf_testkit::TempDatabase;

async fn node(db: &TempDatabase, dir: &tempfile::TempDir, name: &str) -> Arc<dyn Store> {
    open(&StoreConfig {
        url: db.url(),
        blob_dir: dir.path().join(name),
        blob_s3: None,
        blob_grace: Duration::ZERO,
    })
    .await
    .unwrap()
}

fn new_account(address: &str) -> NewAccount {
    NewAccount {
        address: address.into(),
        secret_hash: String::new(),
        scram_sha256: String::new(),
        quota_bytes: 0,
    }
}

/// Polls `check` until it holds, for at most 5 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not seen within 5 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_nodes_changes_reach_the_cache() {
    let db = TempDatabase::create("wharf_dir_cache");
    let dir = tempfile::tempdir().unwrap();
    let a = node(&db, &dir, "a").await;
    let b = node(&db, &dir, "b").await;
    a.create_domain("example.com").await.unwrap();
    let user = a
        .create_account(new_account("user@example.com"))
        .await
        .unwrap();

    // B looks everything up once, so each answer is cached, misses included.
    assert!(b.get_domain("other.test").await.unwrap().is_none());
    assert!(!b.get_account(user.id).await.unwrap().unwrap().disabled);
    assert!(
        b.get_account_by_address("new@example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        b.alias_targets("list@example.com")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(b.active_sieve_script(user.id).await.unwrap().is_none());
    let scopes = vec!["example.com".to_string()];
    assert!(b.spam_list_entries(Some(&scopes)).await.unwrap().is_empty());

    a.create_domain("other.test").await.unwrap();
    eventually("a new domain", || async {
        b.get_domain("other.test").await.unwrap().is_some()
    })
    .await;
    a.set_account_disabled(user.id, true).await.unwrap();
    eventually("an account disabled", || async {
        b.get_account(user.id).await.unwrap().unwrap().disabled
    })
    .await;
    eventually("an account disabled, by address", || async {
        b.get_account_by_address("USER@example.com")
            .await
            .unwrap()
            .unwrap()
            .disabled
    })
    .await;
    a.create_account(new_account("new@example.com"))
        .await
        .unwrap();
    eventually("a new account", || async {
        b.get_account_by_address("new@example.com")
            .await
            .unwrap()
            .is_some()
    })
    .await;
    a.add_alias("list@example.com", "user@example.com")
        .await
        .unwrap();
    eventually("a new alias", || async {
        b.alias_targets("list@example.com").await.unwrap() == ["user@example.com"]
    })
    .await;
    a.put_sieve_script(user.id, "main", "keep;").await.unwrap();
    a.set_active_sieve_script(user.id, Some("main"))
        .await
        .unwrap();
    eventually("a Sieve script activated", || async {
        b.active_sieve_script(user.id).await.unwrap().is_some()
    })
    .await;
    a.put_spam_list_entry(&SpamListEntry {
        scope: "example.com".into(),
        entry: "spammer.test".into(),
        allow: false,
    })
    .await
    .unwrap();
    eventually("a block-list entry", || async {
        b.spam_list_entries(Some(&scopes)).await.unwrap().len() == 1
    })
    .await;
    a.delete_account(user.id).await.unwrap();
    eventually("an account deleted", || async {
        b.get_account(user.id).await.unwrap().is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nodes_own_change_is_seen_at_once() {
    let db = TempDatabase::create("wharf_dir_cache");
    let dir = tempfile::tempdir().unwrap();
    let a = node(&db, &dir, "a").await;
    a.create_domain("example.com").await.unwrap();
    for i in 0..20 {
        let address = format!("u{i}@example.com");
        assert!(a.get_account_by_address(&address).await.unwrap().is_none());
        let made = a.create_account(new_account(&address)).await.unwrap();
        // No wait: the same process forgets its cached miss before create_account returns.
        assert_eq!(
            a.get_account_by_address(&address)
                .await
                .unwrap()
                .map(|x| x.id),
            Some(made.id)
        );
        a.set_account_quota(made.id, 1000 + i).await.unwrap();
        assert_eq!(
            a.get_account(made.id).await.unwrap().unwrap().quota_bytes,
            1000 + i
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_sql_changes_notify_and_delivery_counters_do_not() {
    let db = TempDatabase::create("wharf_dir_cache");
    let dir = tempfile::tempdir().unwrap();
    let a = node(&db, &dir, "a").await;
    a.create_domain("example.com").await.unwrap();
    let user = a
        .create_account(new_account("user@example.com"))
        .await
        .unwrap();
    let mut listener = sqlx::postgres::PgListener::connect(&db.url())
        .await
        .unwrap();
    listener.listen("wharf_directory").await.unwrap();

    let mut sql = sqlx::PgConnection::connect(&db.url()).await.unwrap();
    // What every delivery does: no notification.
    sqlx::query("UPDATE accounts SET used_bytes = used_bytes + 10 WHERE id = $1")
        .bind(user.id)
        .execute(&mut sql)
        .await
        .unwrap();
    let quiet = tokio::time::timeout(Duration::from_millis(500), listener.recv()).await;
    assert!(quiet.is_err(), "used_bytes must not notify: {quiet:?}");

    // An admin's manual edit: notified, and another node's cache follows.
    assert!(!a.get_account(user.id).await.unwrap().unwrap().disabled);
    sqlx::query("UPDATE accounts SET disabled = 1 WHERE id = $1")
        .bind(user.id)
        .execute(&mut sql)
        .await
        .unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .expect("a change of disabled notifies")
        .unwrap();
    assert_eq!(n.channel(), "wharf_directory");
    eventually("a disabled flag set in SQL", || async {
        a.get_account(user.id).await.unwrap().unwrap().disabled
    })
    .await;
    for statement in [
        "INSERT INTO aliases (address, target) VALUES ('x@example.com', 'user@example.com')",
        "DELETE FROM aliases",
        "UPDATE domains SET name = name",
        "INSERT INTO spam_lists (scope, entry, kind) VALUES ('example.com', 'a.test', 'allow')",
        "TRUNCATE spam_lists",
    ] {
        sqlx::query(statement).execute(&mut sql).await.unwrap();
        let n = tokio::time::timeout(Duration::from_secs(5), listener.recv()).await;
        assert!(n.is_ok(), "no notification for {statement}");
    }
}
