//! `Store::open_message`: a message read as a stream, whole or from an offset, without loading
//! it into memory (issue 15 item 3, the store half; IMAP FETCH and POP3 RETR read from it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use tokio::io::AsyncReadExt;
use wharf_store::*;

async fn store_with_message(
    body: &[u8],
) -> (tempfile::TempDir, std::sync::Arc<dyn Store>, MessageId) {
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
    let inbox = store.get_mailbox(a.id, "INBOX").await.unwrap().unwrap();
    store
        .append(
            inbox.id,
            Bytes::copy_from_slice(body),
            Flags::empty(),
            &[],
            1_700_000_000,
        )
        .await
        .unwrap();
    let id = store.mailbox_index(inbox.id).await.unwrap()[0].message_id;
    (dir, store, id)
}

fn big_message() -> Vec<u8> {
    let mut m = b"From: a@example.org\r\nTo: user@example.com\r\nSubject: big\r\n\r\n".to_vec();
    let mut i = 0u32;
    // Several stream buffers' worth, with content that shows any misplaced byte.
    while m.len() < 5 * blob::STREAM_BUFFER + 123 {
        m.extend_from_slice(format!("line {i:08}\r\n").as_bytes());
        i += 1;
    }
    m
}

#[tokio::test]
async fn the_whole_message_streams_in_order() {
    let body = big_message();
    let (_dir, store, id) = store_with_message(&body).await;
    let (len, mut r) = store.open_message(id, 0).await.unwrap();
    assert_eq!(len, body.len() as u64);
    let mut got = Vec::new();
    r.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, body);
    assert_eq!(Bytes::from(got), store.message_raw(id).await.unwrap());
}

#[tokio::test]
async fn a_range_starts_at_its_offset_and_take_bounds_it() {
    let body = big_message();
    let (_dir, store, id) = store_with_message(&body).await;
    let start = 3 * blob::STREAM_BUFFER as u64 + 7;
    let (len, r) = store.open_message(id, start).await.unwrap();
    assert_eq!(
        len,
        body.len() as u64,
        "the whole length, whatever the start"
    );
    let mut got = Vec::new();
    r.take(1000).read_to_end(&mut got).await.unwrap();
    assert_eq!(got, &body[start as usize..start as usize + 1000]);

    // Past the end: an empty reader, not an error (BODY[]<n> beyond the size is empty).
    let (len, mut r) = store.open_message(id, len + 10).await.unwrap();
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    assert_eq!(len, body.len() as u64);
}

#[tokio::test]
async fn a_missing_message_is_not_found() {
    let (_dir, store, id) = store_with_message(b"Subject: x\r\n\r\nhi\r\n").await;
    assert!(matches!(
        store.open_message(id + 1000, 0).await,
        Err(StoreError::NotFound(_))
    ));
}
