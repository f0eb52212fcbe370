//! QUOTA (RFC 9208): GETQUOTAROOT, GETQUOTA, SETQUOTA refused, STATUS DELETED-STORAGE, and
//! NO [OVERQUOTA] when APPEND or COPY would pass the limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
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
