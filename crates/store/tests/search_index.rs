//! The substring index (migration 0016): an upgraded SQLite store gets its existing messages
//! indexed, and their text folded again by the background backfill; PostgreSQL gets its pg_trgm
//! index and uses it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use sqlx::{Connection, Row};
use wharf_store::*;
use wharf_testkit::store::store_account;
use wharf_testkit::{Backend, TestStore};

fn message(subject: &str, body: &str) -> Bytes {
    Bytes::from(format!(
        "From: a@example.org\r\nTo: b@example.com\r\nSubject: {subject}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ))
}

/// Waits until the store's writer has indexed every message (SQLite).
async fn wait_indexed(db: &std::path::Path) {
    for _ in 0..200 {
        let c = rusqlite::Connection::open(db).unwrap();
        let left: i64 = c
            .query_row(
                "SELECT count(*) FROM message_text WHERE tri_indexed = 0",
                [],
                |r| r.get(0),
            )
            .unwrap();
        if left == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let c = rusqlite::Connection::open(db).unwrap();
    let rows: Vec<(i64, i64)> = c
        .prepare("SELECT message_id, tri_indexed FROM message_text")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    panic!("messages left unindexed: {rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgraded_sqlite_store_is_indexed_and_refolded() {
    let dir = tempfile::tempdir().unwrap();
    let (inbox, uids) = {
        let store = open_embedded(dir.path()).await.unwrap();
        let a = store_account(store.as_ref(), "old@example.com", 0).await;
        let inbox = store.get_mailbox(a.id, "INBOX").await.unwrap().unwrap();
        let mut uids = Vec::new();
        for (s, b) in [
            ("Café Crème", "Bonjour à tous"),
            ("Straße", "Grüße aus Köln"),
            ("plain", "nothing special"),
        ] {
            let o = store
                .append(inbox.id, message(s, b), Flags::empty(), &[], 1_700_000_000)
                .await
                .unwrap();
            uids.push(o.uid);
        }
        (inbox.id, uids)
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Turn the file back into a store from before migration 0016: no trigram index, the word
    // index of 0007 (which 0021 drops), and text folded as it was then (lower case only).
    let db = dir.path().join("wharf.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "CREATE VIRTUAL TABLE message_fts USING fts5(subject, from_addr, to_addr, cc_addr, \
         bcc_addr, headers, body, content = 'message_text', content_rowid = 'message_id'); \
         CREATE TRIGGER message_text_ai AFTER INSERT ON message_text BEGIN \
         INSERT INTO message_fts (rowid, subject, from_addr, to_addr, cc_addr, bcc_addr, headers, body) \
         VALUES (new.message_id, new.subject, new.from_addr, new.to_addr, new.cc_addr, new.bcc_addr, new.headers, new.body); END; \
         CREATE TRIGGER message_text_ad AFTER DELETE ON message_text BEGIN \
         INSERT INTO message_fts (message_fts, rowid, subject, from_addr, to_addr, cc_addr, bcc_addr, headers, body) \
         VALUES ('delete', old.message_id, old.subject, old.from_addr, old.to_addr, old.cc_addr, old.bcc_addr, old.headers, old.body); END; \
         CREATE TRIGGER message_text_au AFTER UPDATE ON message_text BEGIN SELECT 1; END; \
         INSERT INTO message_fts (message_fts) VALUES ('rebuild'); \
         DELETE FROM _sqlx_migrations WHERE version = 21; \
         DROP TRIGGER message_text_tri_ad; DROP TRIGGER message_text_tri_au; \
         DROP TABLE message_fts_tri; DROP INDEX message_text_unindexed; \
         DROP INDEX message_text_stale; ALTER TABLE message_text DROP COLUMN text_version; \
         ALTER TABLE message_text DROP COLUMN tri_indexed; \
         UPDATE message_text SET subject = 'café crème', body = 'bonjour à tous' WHERE subject = 'cafe creme'; \
         UPDATE message_text SET subject = 'straße', body = 'grüße aus köln' WHERE subject = 'strasse'; \
         DELETE FROM _sqlx_migrations WHERE version = 16;",
    )
    .unwrap();
    drop(c);

    let store = open_embedded(dir.path()).await.unwrap();
    let q = |f, n: &'static str| {
        let store = store.clone();
        async move { store.search_text(inbox, f, n).await.unwrap() }
    };
    // Exact at once, while the older messages wait to be indexed (their text is read) ...
    assert_eq!(q(TextField::Subject, "caf").await, vec![uids[0]]);
    assert_eq!(q(TextField::Body, "aus k").await, vec![uids[1]]);
    assert_eq!(q(TextField::Body, "special").await, vec![uids[2]]);
    // ... and once the writer has indexed them, in the background.
    wait_indexed(&db).await;
    assert_eq!(q(TextField::Subject, "caf").await, vec![uids[0]]);
    assert_eq!(q(TextField::Body, "aus k").await, vec![uids[1]]);
    assert_eq!(q(TextField::Body, "special").await, vec![uids[2]]);
    // Old rows still hold their diacritics: a needle with them folded away misses them ...
    assert_eq!(q(TextField::Subject, "creme").await, Vec::<Uid>::new());
    // ... until the backfill has folded them again (every row written before 0016).
    let mut done = 0;
    loop {
        let n = store.backfill_header_text(2).await.unwrap();
        if n == 0 {
            break;
        }
        done += n;
    }
    assert_eq!(done, 3);
    assert_eq!(q(TextField::Subject, "creme").await, vec![uids[0]]);
    assert_eq!(q(TextField::Subject, "CRÈME").await, vec![uids[0]]);
    assert_eq!(q(TextField::Body, "grusse aus koln").await, vec![uids[1]]);
    assert_eq!(q(TextField::Subject, "strasse").await, vec![uids[1]]);
    assert_eq!(q(TextField::Body, "a tous").await, vec![uids[0]]);
    // The index follows the rewritten rows: the old spelling is gone from it.
    wait_indexed(&db).await;
    assert_eq!(q(TextField::Subject, "creme").await, vec![uids[0]]);
    let c = rusqlite::Connection::open(&db).unwrap();
    let stale: i64 = c
        .query_row(
            "SELECT count(*) FROM message_fts_tri WHERE message_fts_tri MATCH '\"crème\"'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stale, 0);
    let fresh: i64 = c
        .query_row(
            "SELECT count(*) FROM message_fts_tri WHERE message_fts_tri MATCH '\"creme\"'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(fresh, 1);
}

/// Expunged messages leave the trigram index with their text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_trigram_index_follows_deletes() {
    let files = TestStore::new(Backend::Sqlite);
    let store = files.open().await;
    let a = store_account(store.as_ref(), "del@example.com", 0).await;
    let inbox = store.get_mailbox(a.id, "INBOX").await.unwrap().unwrap();
    let o = store
        .append(
            inbox.id,
            message("unique zanzibar", "x"),
            Flags::empty(),
            &[],
            0,
        )
        .await
        .unwrap();
    let path = files.config.url.strip_prefix("sqlite://").unwrap();
    wait_indexed(std::path::Path::new(path)).await;
    assert_eq!(
        store
            .search_text(inbox.id, TextField::Subject, "zanzib")
            .await
            .unwrap(),
        vec![o.uid]
    );
    store.expunge_uids(inbox.id, &[o.uid]).await.unwrap();
    drop(store);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let c = rusqlite::Connection::open(path).unwrap();
    // The message row may outlive the expunge for the grace period; its text row goes with it.
    let rows: i64 = c
        .query_row("SELECT count(*) FROM message_text", [], |r| r.get(0))
        .unwrap();
    let indexed: i64 = c
        .query_row(
            "SELECT count(*) FROM message_fts_tri WHERE message_fts_tri MATCH '\"zanzib\"'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexed, rows);
}

/// The trigram index's segments, one per indexing transaction until merged (FTS5 keeps a row per
/// leaf page boundary of every segment in its `_idx` table).
fn trigram_segments(db: &std::path::Path) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(
            "SELECT count(DISTINCT segid) FROM message_fts_tri_idx",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

/// Migration 0025: once the index has caught up, the idle writer merges the segments its many
/// small indexing transactions wrote (15 here; FTS5's own merges would leave about six), and
/// SEARCH answers as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_trigram_index_is_merged_while_idle() {
    let files = TestStore::new(Backend::Sqlite);
    let store = files.open().await;
    let a = store_account(store.as_ref(), "merge@example.com", 0).await;
    let inbox = store.get_mailbox(a.id, "INBOX").await.unwrap().unwrap();
    let mut planted = Vec::new();
    for i in 0..60 {
        let body = if i % 7 == 0 {
            format!("message {i} holds a quokkaberry")
        } else {
            format!("message {i} holds nothing")
        };
        let o = store
            .append(
                inbox.id,
                message(&format!("subject {i}"), &body),
                Flags::empty(),
                &[],
                0,
            )
            .await
            .unwrap();
        if i % 7 == 0 {
            planted.push(o.uid);
        }
    }
    let path = std::path::Path::new(files.config.url.strip_prefix("sqlite://").unwrap());
    wait_indexed(path).await;
    let mut segments = trigram_segments(path);
    for _ in 0..200 {
        if segments <= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        segments = trigram_segments(path);
    }
    assert!(segments <= 2, "{segments} segments left unmerged");
    assert_eq!(
        store
            .search_text(inbox.id, TextField::Body, "okkaber")
            .await
            .unwrap(),
        planted
    );
}

/// PostgreSQL: migration 0016 made the pg_trgm index, and SEARCH's query can be planned
/// through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_has_a_trigram_index_and_uses_it() {
    let files = TestStore::new(Backend::Postgres);
    let store = files.open().await;
    let a = store_account(store.as_ref(), "pg@example.com", 0).await;
    let inbox = store.get_mailbox(a.id, "INBOX").await.unwrap().unwrap();
    let mut set = tokio::task::JoinSet::new();
    for w in 0..8 {
        let store = store.clone();
        set.spawn(async move {
            for i in 0..50 {
                let body = format!("ordinary words number {w} {i} and more ordinary words");
                store
                    .append(inbox.id, message("routine", &body), Flags::empty(), &[], 0)
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    let rare = store
        .append(
            inbox.id,
            message("routine", "the word xylophonist once"),
            Flags::empty(),
            &[],
            0,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .search_text(inbox.id, TextField::Text, "lophon")
            .await
            .unwrap(),
        vec![rare.uid]
    );
    let mut c = sqlx::PgConnection::connect(&files.config.url)
        .await
        .unwrap();
    let index: Option<String> =
        sqlx::query_scalar("SELECT indexdef FROM pg_indexes WHERE indexname = 'message_text_trgm'")
            .fetch_optional(&mut c)
            .await
            .unwrap();
    let index = index.expect("pg_trgm is installed here, so migration 0016 made the index");
    assert!(index.contains("gin_trgm_ops"), "{index}");
    // A few hundred rows are cheaper read whole than through any index; what is checked here is
    // that the query's expression is the index's, i.e. that the planner can use it.
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut c)
        .await
        .unwrap();
    let plan: Vec<String> = sqlx::query(
        "EXPLAIN SELECT t.message_id FROM message_text t \
         WHERE (t.subject || E'\\n' || t.from_addr || E'\\n' || t.to_addr || E'\\n' \
         || t.cc_addr || E'\\n' || t.bcc_addr || E'\\n' || coalesce(t.headers, '') || E'\\n' || t.body) \
         LIKE '%lophon%'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get::<String, _>(0))
    .collect();
    let plan = plan.join("\n");
    assert!(plan.contains("message_text_trgm"), "{plan}");
}

/// Migration 0021: no word index is written any more (SQLite's `message_fts` and its triggers,
/// PostgreSQL's `fts` tsvector and GIN index answered no query, yet cost every delivery and
/// expunge), and substring SEARCH still answers from the trigram index on both backends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_word_index_is_written() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let files = TestStore::new(backend);
        let store = files.open().await;
        let a = store_account(store.as_ref(), "words@example.com", 0).await;
        let inbox = store.get_mailbox(a.id, "INBOX").await.unwrap().unwrap();
        let kept = store
            .append(
                inbox.id,
                message("kept", "a marimba here"),
                Flags::empty(),
                &[],
                0,
            )
            .await
            .unwrap();
        let gone = store
            .append(
                inbox.id,
                message("gone", "a marimba there"),
                Flags::empty(),
                &[],
                0,
            )
            .await
            .unwrap();
        store
            .store_flags(
                inbox.id,
                &[gone.uid],
                FlagOp::Add,
                Flags::DELETED,
                &[],
                None,
            )
            .await
            .unwrap();
        assert_eq!(
            store.expunge(inbox.id, Some(&[gone.uid])).await.unwrap(),
            vec![gone.uid]
        );
        assert_eq!(
            store
                .search_text(inbox.id, TextField::Text, "arimb")
                .await
                .unwrap(),
            vec![kept.uid],
            "{backend:?}"
        );
        match backend {
            Backend::Sqlite => {
                let path = files.config.url.strip_prefix("sqlite://").unwrap();
                let c = rusqlite::Connection::open(path).unwrap();
                let names: Vec<String> = c
                    .prepare(
                        "SELECT name FROM sqlite_master WHERE name = 'message_fts' \
                         OR name IN ('message_text_ai', 'message_text_ad', 'message_text_au')",
                    )
                    .unwrap()
                    .query_map([], |r| r.get(0))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                assert!(names.is_empty(), "{names:?}");
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&files.config.url)
                    .await
                    .unwrap();
                let columns: Vec<String> = sqlx::query_scalar(
                    "SELECT column_name::text FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = 'message_text' \
                     AND column_name IN ('fts', 'fts_complete')",
                )
                .fetch_all(&mut c)
                .await
                .unwrap();
                assert!(columns.is_empty(), "{columns:?}");
            }
        }
    }
}
