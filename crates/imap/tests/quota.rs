//! QUOTA (RFC 9208): GETQUOTAROOT, GETQUOTA, STATUS DELETED-STORAGE, NO [OVERQUOTA] when APPEND
//! or COPY would pass the limit, and SETQUOTA (QUOTASET): administrators set their own root `""`
//! and other accounts' (`user@domain`), everyone else gets NO [NOPERM].
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;

async fn quota_transcript(t: &mut T) {
    assert!(
        t.cmd("a CAPABILITY")
            .await
            .contains(" QUOTA QUOTA=RES-STORAGE")
    );
    let size = message(1).len() as u64;
    t.append("INBOX", "", &message(1)).await;
    let r = t.cmd("b GETQUOTAROOT INBOX").await;
    assert_eq!(
        r,
        format!(
            "* QUOTAROOT INBOX \"\"\r\n* QUOTA \"\" (STORAGE {} 10)\r\nb OK GETQUOTAROOT completed\r\n",
            size.div_ceil(1024)
        )
    );
    let r = t.cmd("c GETQUOTA \"\"").await;
    assert!(r.starts_with("* QUOTA \"\" (STORAGE 1 10)\r\n"), "{r}");
    assert!(
        t.cmd("d GETQUOTA other")
            .await
            .starts_with("d NO [NONEXISTENT]")
    );
    // Not an administrator.
    assert!(
        t.cmd("e SETQUOTA \"\" (STORAGE 100000)")
            .await
            .starts_with("e NO [NOPERM]")
    );
    assert!(
        t.cmd("f GETQUOTAROOT Nope")
            .await
            .starts_with("f NO [NONEXISTENT]")
    );
    // A message that does not fit: APPEND and COPY refused, nothing stored.
    let big = format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(10 * 1024));
    let r = t
        .raw(format!("g APPEND INBOX {{{}+}}\r\n{big}\r\n", big.len()).as_bytes())
        .await;
    assert!(r.starts_with("g NO [OVERQUOTA]"), "{r}");
    let mid = format!("Subject: mid\r\n\r\n{}\r\n", "x".repeat(5 * 1024));
    t.append("INBOX", "", &mid).await;
    t.cmd("s SELECT INBOX").await;
    let r = t.cmd("h COPY 2 Archive").await;
    assert!(r.starts_with("h NO [OVERQUOTA]"), "{r}");
    let r = t.cmd("i STATUS Archive (MESSAGES)").await;
    assert!(r.contains("(MESSAGES 0)"), "{r}");
    // DELETED-STORAGE: the octets an EXPUNGE would free.
    t.cmd("j STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    let r = t.cmd("k STATUS INBOX (DELETED DELETED-STORAGE)").await;
    assert!(
        r.contains(&format!("(DELETED 1 DELETED-STORAGE {})", mid.len())),
        "{r}"
    );
}

#[tokio::test]
async fn quota_on_the_memory_double() {
    let env = env().await;
    env.mem.set_quota(env.alice, 10 * 1024);
    let mut t = T::login(&env).await;
    quota_transcript(&mut t).await;
}

#[tokio::test]
async fn quota_on_the_embedded_store() {
    let env = sql_env().await;
    let a = env
        .store
        .get_account_by_address(USER)
        .await
        .unwrap()
        .unwrap();
    env.store.set_account_quota(a.id, 10 * 1024).await.unwrap();
    let mut t = T::login(&env).await;
    quota_transcript(&mut t).await;
}

#[tokio::test]
async fn no_limit_no_quota_root() {
    let env = sql_env().await;
    let mut t = T::login(&env).await;
    let r = t.cmd("a GETQUOTAROOT INBOX").await;
    assert_eq!(r, "* QUOTAROOT INBOX\r\na OK GETQUOTAROOT completed\r\n");
    assert!(
        t.cmd("b GETQUOTA \"\"")
            .await
            .starts_with("b NO [NONEXISTENT]")
    );
}

/// alice is an administrator, bob is not.
async fn setquota_transcript(env: &impl HasBackend) {
    let mut a = T::login(env).await;
    let r = a.cmd("a CAPABILITY").await;
    assert!(r.contains(" QUOTA=RES-STORAGE QUOTASET"), "{r}");
    let r = a.cmd("b SETQUOTA \"\" (STORAGE 20)").await;
    assert_eq!(
        r,
        "* QUOTA \"\" (STORAGE 0 20)\r\nb OK SETQUOTA completed\r\n"
    );
    let r = a.cmd("c GETQUOTAROOT INBOX").await;
    assert!(r.contains("* QUOTA \"\" (STORAGE 0 20)\r\n"), "{r}");
    // Another account's root is its address.
    let r = a.cmd(&format!("d SETQUOTA {USER2} (storage 1)")).await;
    assert_eq!(
        r,
        format!("* QUOTA {USER2} (STORAGE 0 1)\r\nd OK SETQUOTA completed\r\n")
    );
    let r = a.cmd(&format!("e GETQUOTA \"{USER2}\"")).await;
    assert_eq!(
        r,
        format!("* QUOTA {USER2} (STORAGE 0 1)\r\ne OK GETQUOTA completed\r\n")
    );
    let r = a.cmd("f SETQUOTA nobody@example.test (STORAGE 5)").await;
    assert!(r.starts_with("f NO [NONEXISTENT]"), "{r}");
    let r = a.cmd("g SETQUOTA Archive (STORAGE 5)").await;
    assert!(r.starts_with("g NO [NONEXISTENT]"), "{r}");
    let r = a.cmd("h SETQUOTA \"\" (MESSAGE 5)").await;
    assert!(r.starts_with("h NO [CANNOT]"), "{r}");
    let r = a.cmd("i SETQUOTA \"\" (STORAGE 0)").await;
    assert!(r.starts_with("i NO [CANNOT]"), "{r}");
    let r = a.cmd("j SETQUOTA \"\" (STORAGE 1 STORAGE 2)").await;
    assert!(r.starts_with("j BAD"), "{r}");
    let r = a.cmd("k SETQUOTA \"\" (STORAGE 99999999999999999)").await;
    assert!(r.starts_with("k NO [LIMIT]"), "{r}");
    assert!(
        a.cmd("l GETQUOTA \"\"").await.contains("(STORAGE 0 20)"),
        "unchanged by the refusals"
    );

    // bob: the limit applies, and he may not change it.
    let mut b = T::new(env, true, wharf_imap::ImapConfig::default());
    assert!(
        b.cmd(&format!("b0 LOGIN {USER2} \"{PASS}\""))
            .await
            .contains("b0 OK")
    );
    let r = b.cmd("b1 GETQUOTA \"\"").await;
    assert!(r.starts_with("* QUOTA \"\" (STORAGE 0 1)\r\n"), "{r}");
    let big = format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(2048));
    let r = b
        .raw(format!("b2 APPEND INBOX {{{}+}}\r\n{big}\r\n", big.len()).as_bytes())
        .await;
    assert!(r.starts_with("b2 NO [OVERQUOTA]"), "{r}");
    let r = b.cmd("b3 SETQUOTA \"\" (STORAGE 100000)").await;
    assert!(r.starts_with("b3 NO [NOPERM]"), "{r}");
    let r = b.cmd(&format!("b4 SETQUOTA {USER} ()")).await;
    assert!(r.starts_with("b4 NO [NOPERM]"), "{r}");
    let r = b.cmd(&format!("b5 GETQUOTA {USER}")).await;
    assert!(r.starts_with("b5 NO [NONEXISTENT]"), "{r}");

    // No resources: no limit.
    let r = a.cmd(&format!("m SETQUOTA {USER2} ()")).await;
    assert_eq!(r, "m OK SETQUOTA completed\r\n");
    let r = b
        .raw(format!("b6 APPEND INBOX {{{}+}}\r\n{big}\r\n", big.len()).as_bytes())
        .await;
    assert!(r.starts_with("b6 OK"), "{r}");
    assert!(
        b.cmd("b7 GETQUOTA \"\"")
            .await
            .starts_with("b7 NO [NONEXISTENT]")
    );
}

#[tokio::test]
async fn setquota_on_the_memory_double() {
    let env = env().await;
    env.mem.set_admin(env.alice);
    setquota_transcript(&env).await;
}

#[tokio::test]
async fn setquota_on_the_embedded_store_persists_in_the_account() {
    let env = sql_env().await;
    let alice = env
        .store
        .get_account_by_address(USER)
        .await
        .unwrap()
        .unwrap();
    env.store
        .set_account_role(alice.id, wharf_store::ROLE_ADMIN)
        .await
        .unwrap();
    setquota_transcript(&env).await;
    let mut a = T::login(&env).await;
    a.cmd(&format!("x SETQUOTA {USER2} (STORAGE 300)")).await;
    let bob = env
        .store
        .get_account_by_address(USER2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bob.quota_bytes, 300 * 1024, "the account's own limit");
    let alice = env.store.get_account(alice.id).await.unwrap().unwrap();
    assert_eq!(alice.quota_bytes, 20 * 1024);
}

#[tokio::test]
async fn a_role_taken_away_takes_setquota_with_it() {
    let env = sql_env().await;
    let alice = env
        .store
        .get_account_by_address(USER)
        .await
        .unwrap()
        .unwrap();
    env.store
        .set_account_role(alice.id, wharf_store::ROLE_ADMIN)
        .await
        .unwrap();
    let mut a = T::login(&env).await;
    assert!(a.cmd("a SETQUOTA \"\" (STORAGE 50)").await.contains("a OK"));
    env.store
        .set_account_role(alice.id, wharf_store::ROLE_USER)
        .await
        .unwrap();
    let r = a.cmd("b SETQUOTA \"\" (STORAGE 60)").await;
    assert!(r.starts_with("b NO [NOPERM]"), "{r}");
}
