//! Upgrading an existing SQLite store: migration 0003 copies each message's size and internal
//! date into its mailbox rows, which the index reads from then on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use wharf_store::*;

#[tokio::test]
async fn entry_columns_are_filled_for_existing_mail() {
    let dir = tempfile::tempdir().unwrap();
    let (inbox, appended) = {
        let store = open_embedded(dir.path()).await.unwrap();
        store.create_domain("example.com").await.unwrap();
        let a = store
            .create_account(NewAccount {
                address: "old@example.com".into(),
                secret_hash: "x".into(),
                scram_sha256: String::new(),
                quota_bytes: 0,
            })
            .await
            .unwrap();
        let inbox = store.get_mailbox(a.id, "INBOX").await.unwrap().unwrap();
        let mut appended = Vec::new();
        for (i, body) in ["short", "a somewhat longer body"].iter().enumerate() {
            let raw = format!("Subject: m{i}\r\n\r\n{body}\r\n");
            let o = store
                .append(
                    inbox.id,
                    Bytes::from(raw),
                    Flags::SEEN,
                    &[],
                    1_700_000_000 + i as i64,
                )
                .await
                .unwrap();
            appended.push(o);
        }
        (inbox, appended)
    };
    // Wait for the store's connections to close, then turn the file back into a pre-0003 store.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let db = dir.path().join("wharf.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "ALTER TABLE mailbox_messages DROP COLUMN size; \
         ALTER TABLE mailbox_messages DROP COLUMN internal_date; \
         DELETE FROM _sqlx_migrations WHERE version = 3;",
    )
    .unwrap();
    drop(c);

    let store = open_embedded(dir.path()).await.unwrap();
    let index = store.mailbox_index(inbox.id).await.unwrap();
    assert_eq!(index.len(), 2);
    for (e, o) in index.iter().zip(&appended) {
        assert_eq!(e.uid, o.uid);
        let raw = store.message_raw(e.message_id).await.unwrap();
        assert_eq!(e.size, raw.len() as u64);
    }
    assert_eq!(index[0].internal_date, 1_700_000_000);
    assert_eq!(index[1].internal_date, 1_700_000_001);
    let status = store.mailbox_status(inbox.id).await.unwrap();
    assert_eq!(status.size, index.iter().map(|e| e.size).sum::<u64>());
}
