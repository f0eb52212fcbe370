//! `Store::append_many` (IMAP MULTIAPPEND, RFC 3502) on both backends: every message or none,
//! consecutive UIDs, quota on the sum, shared blobs counted once per row, one change event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use sqlx::Connection as _;
use wharf_store::*;
use wharf_testkit::store::{Backend, TestStore, blob_files};

/// The `blobs` row of `raw`: (refcount, pins), or `None` when there is none.
async fn blob_row(files: &TestStore, raw: &[u8]) -> Option<(i64, i64)> {
    let hash = wharf_store::blob::blob_hash(raw);
    let q = "SELECT refcount, pins FROM blobs WHERE hash = $1";
    match files.backend() {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&files.config.url)
                .await
                .unwrap();
            sqlx::query_as(q)
                .bind(hash)
                .fetch_optional(&mut c)
                .await
                .unwrap()
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&files.config.url)
                .await
                .unwrap();
            sqlx::query_as(q)
                .bind(hash)
                .fetch_optional(&mut c)
                .await
                .unwrap()
        }
    }
}

/// Whether a blob file holds `raw`.
fn has_blob_file(files: &TestStore, raw: &[u8]) -> bool {
    let hash = wharf_store::blob::blob_hash(raw);
    blob_files(files.blob_dir()).iter().any(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().contains(&hash))
    })
}

fn msg(subject: &str, body: &str) -> NewMessage {
    NewMessage {
        raw: Bytes::from(format!(
            "From: a@example.org\r\nSubject: {subject}\r\n\r\n{body}\r\n"
        )),
        flags: Flags::SEEN,
        keywords: vec!["$Work".into()],
        internal_date: 1_700_000_000,
    }
}

async fn all_or_none(backend: Backend) {
    let files = TestStore::new(backend);
    let store = files.open().await;
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
    let inbox = store.get_mailbox(a.id, "INBOX").await.unwrap().unwrap();
    let mut events = store.subscribe(a.id);
    let same = msg("twice", "the same octets");
    let out = store
        .append_many(
            inbox.id,
            vec![
                msg("one", "first"),
                same.clone(),
                same.clone(),
                msg("three", "third"),
            ],
        )
        .await
        .unwrap();
    let uids: Vec<u32> = out.iter().map(|o| o.uid).collect();
    assert_eq!(uids, vec![1, 2, 3, 4]);
    assert!(out.iter().all(|o| o.uid_validity == inbox.uid_validity));
    assert!(out.windows(2).all(|w| w[1].modseq == w[0].modseq + 1));
    match events.try_recv().unwrap() {
        MailboxEvent::Changed { mailbox_id, .. } => assert_eq!(mailbox_id, inbox.id),
        other => panic!("{other:?}"),
    }
    let index = store.mailbox_index(inbox.id).await.unwrap();
    assert_eq!(index.len(), 4);
    assert!(
        index
            .iter()
            .all(|e| e.flags.contains(Flags::SEEN | Flags::RECENT))
    );
    assert_eq!(index[0].keywords, vec!["$Work".to_string()]);
    let raw = store.message_raw(index[1].message_id).await.unwrap();
    assert_eq!(raw, same.raw);
    let found = store
        .search_text(inbox.id, TextField::Subject, "three")
        .await
        .unwrap();
    assert_eq!(found, vec![4]);
    let used: u64 = index.iter().map(|e| e.size).sum();
    assert_eq!(store.quota_used(a.id).await.unwrap(), used);

    // Past the quota together (each would fit): nothing stored, nothing counted.
    store
        .set_account_quota(a.id, used as i64 + 100)
        .await
        .unwrap();
    let big = |s: &str| msg(s, &"x".repeat(60));
    let files_before = blob_files(files.blob_dir()).len();
    let r = store.append_many(inbox.id, vec![big("a"), big("b")]).await;
    assert!(matches!(r, Err(StoreError::OverQuota)), "{r:?}");
    assert_eq!(store.mailbox_index(inbox.id).await.unwrap().len(), 4);
    assert_eq!(store.quota_used(a.id).await.unwrap(), used);
    assert_eq!(store.mailbox_status(inbox.id).await.unwrap().uid_next, 5);
    // The blobs written for them are released: no reference, no pin, and (no grace period in
    // tests) no row and no file left.
    for s in ["a", "b"] {
        let raw = big(s).raw;
        let row = blob_row(&files, &raw).await;
        assert!(
            matches!(row, None | Some((0, 0))),
            "blob of {s} still held: {row:?}"
        );
        assert_eq!(row, None, "blob row of {s} not collected");
        assert!(!has_blob_file(&files, &raw), "blob file of {s} left");
    }
    assert_eq!(blob_files(files.blob_dir()).len(), files_before);
    // Shared blobs already stored keep their references.
    assert_eq!(blob_row(&files, &same.raw).await, Some((2, 0)));
    // One of them fits.
    let out = store.append_many(inbox.id, vec![big("a")]).await.unwrap();
    assert_eq!(out[0].uid, 5);
    assert_eq!(blob_row(&files, &big("a").raw).await, Some((1, 0)));
    assert!(has_blob_file(&files, &big("a").raw));

    // Expunging one copy of the shared blob keeps the other readable.
    store
        .store_flags(inbox.id, &[2], FlagOp::Add, Flags::DELETED, &[], None)
        .await
        .unwrap();
    store.expunge(inbox.id, None).await.unwrap();
    let index = store.mailbox_index(inbox.id).await.unwrap();
    assert_eq!(
        store.message_raw(index[1].message_id).await.unwrap(),
        same.raw
    );

    assert!(matches!(
        store.append_many(999_999, vec![msg("x", "y")]).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(
        store
            .append_many(inbox.id, Vec::new())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn append_many_on_sqlite() {
    all_or_none(Backend::Sqlite).await;
}

#[tokio::test]
async fn append_many_on_postgres() {
    all_or_none(Backend::Postgres).await;
}
