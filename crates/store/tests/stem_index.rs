//! The stem index (migration 0026) behind FUZZY (`Store::search_words`): messages are indexed
//! off the delivery path (SQLite: the store's writer; PostgreSQL: `Store::index_stems`), FUZZY
//! reads only the messages the index names plus those not indexed yet, answers and scores are the
//! same before and after indexing, rewritten text is indexed again, and expunged messages leave
//! the index — on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bytes::Bytes;
use sqlx::Connection;
use wharf_store::*;
use wharf_testkit::store::store_account;
use wharf_testkit::{Backend, TestStore, on_both_backends};

fn message(subject: &str, body: &str) -> Bytes {
    Bytes::from(format!(
        "From: Ann <ann@example.org>\r\nTo: team@example.com\r\nSubject: {subject}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ))
}

/// A statement run on the store's database directly (the test looks behind the store's back).
async fn exec(files: &TestStore, sql: &str) {
    match files.config.url.strip_prefix("sqlite://") {
        Some(path) => {
            let c = rusqlite::Connection::open(path).unwrap();
            c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            c.execute_batch(sql).unwrap();
        }
        None => {
            let mut c = sqlx::PgConnection::connect(&files.config.url)
                .await
                .unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&mut c)
                .await
                .unwrap();
        }
    }
}

/// A count from the store's database.
async fn count(files: &TestStore, sql: &str) -> i64 {
    match files.config.url.strip_prefix("sqlite://") {
        Some(path) => {
            let c = rusqlite::Connection::open(path).unwrap();
            c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            c.query_row(sql, [], |r| r.get(0)).unwrap()
        }
        None => {
            let mut c = sqlx::PgConnection::connect(&files.config.url)
                .await
                .unwrap();
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
                .fetch_one(&mut c)
                .await
                .unwrap()
        }
    }
}

/// Messages not in the stem index yet.
async fn unindexed(files: &TestStore, b: Backend) -> i64 {
    match b {
        Backend::Sqlite => {
            count(
                files,
                "SELECT count(*) FROM message_text WHERE stem_indexed = 0",
            )
            .await
        }
        Backend::Postgres => count(files, "SELECT count(*) FROM message_stems_pending").await,
    }
}

/// Brings the stem index up to date: SQLite's writer does it when idle; PostgreSQL's is the
/// background task's call, made here.
async fn catch_up(files: &TestStore, store: &Arc<dyn Store>, b: Backend) {
    for _ in 0..400 {
        if b == Backend::Postgres {
            while store.index_stems(16).await.unwrap() > 0 {}
        }
        if unindexed(files, b).await == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!(
        "{} messages left out of the stem index",
        unindexed(files, b).await
    );
}

const BODIES: [(&str, &str); 6] = [
    (
        "Running late",
        "He runs every morning; the runner was connected.",
    ),
    ("Quarterly reports", "Please find the report attached."),
    ("Häuser am See", "Viele Grüße: die Rechnungen für das Haus."),
    ("Réunions annulées", "Les élèves chantaient."),
    ("Canciones nuevas", "El niño corre; más información mañana."),
    ("Port of call", "A rune stone and a cantina, reported."),
];

const NEEDLES: [(TextField, &str); 12] = [
    (TextField::Body, "running"),
    (TextField::Text, "reports"),
    (TextField::Subject, "report"),
    (TextField::Body, "report"),
    (TextField::Body, "häuser"),
    (TextField::Body, "GRUSSE"),
    (TextField::Subject, "reunion annulee"),
    (TextField::Body, "chanter"),
    (TextField::Body, "niños corriendo"),
    (TextField::From, "ann"),
    (TextField::Text, "the"),
    (TextField::Text, "rune canciones"),
];

async fn answers(store: &Arc<dyn Store>, mailbox: MailboxId) -> Vec<Vec<(Uid, u8)>> {
    let mut out = Vec::new();
    for (field, needle) in NEEDLES {
        out.push(store.search_words(mailbox, field, needle).await.unwrap());
    }
    out
}

/// FUZZY gives the same answers and scores from the index as from the text, and it does read the
/// index: a message taken out of the index behind the store's back (and still marked indexed)
/// is no longer found, and is again once it is marked for indexing.
async fn fuzzy_answers_from_the_stem_index(b: Backend) {
    let files = TestStore::new(b);
    let store = files.open().await;
    let alice = store_account(store.as_ref(), "stem-alice@example.com", 0).await;
    let bob = store_account(store.as_ref(), "stem-bob@example.com", 0).await;
    let a = store
        .get_mailbox(alice.id, "INBOX")
        .await
        .unwrap()
        .unwrap()
        .id;
    let bx = store
        .get_mailbox(bob.id, "INBOX")
        .await
        .unwrap()
        .unwrap()
        .id;
    // bob's copies first (lower message ids), then alice's, then more of bob's, so that bob's
    // mailbox is large enough for SQLite to choose the index there.
    for mb in [bx, a] {
        for (s, body) in BODIES {
            store
                .append(mb, message(s, body), Flags::empty(), &[], 1_700_000_000)
                .await
                .unwrap();
        }
    }
    for i in 0..30 {
        store
            .append(
                bx,
                message("filler", &format!("nothing to see {i}")),
                Flags::empty(),
                &[],
                0,
            )
            .await
            .unwrap();
    }
    let unindexed_answers = answers(&store, a).await;
    let bob_before = answers(&store, bx).await;
    catch_up(&files, &store, b).await;
    let indexed_answers = answers(&store, a).await;
    assert_eq!(indexed_answers, unindexed_answers);
    assert_eq!(answers(&store, bx).await, bob_before);
    // Known answers (UIDs 1..6 in both mailboxes: the same corpus).
    let uids = |v: &Vec<(Uid, u8)>| v.iter().map(|(u, _)| *u).collect::<Vec<_>>();
    let expected: [&[Uid]; 12] = [
        &[1],
        &[2, 6],
        &[2],
        &[2, 6],
        &[3],
        &[3],
        &[4],
        &[4],
        &[5],
        &[1, 2, 3, 4, 5, 6],
        &[1, 2],
        &[],
    ];
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(uids(&indexed_answers[i]), *want, "{:?}", NEEDLES[i]);
        // bob's fillers (UIDs 7..36) are from Ann too.
        let bob_want: Vec<Uid> = if NEEDLES[i].1 == "ann" {
            (1..=36).collect()
        } else {
            want.to_vec()
        };
        assert_eq!(uids(&bob_before[i]), bob_want, "bob {:?}", NEEDLES[i]);
    }

    // Message 1 of bob's mailbox ("running") out of the index but still marked indexed: the
    // search can only miss it if it answers from the index.
    let bob_first = "(SELECT message_id FROM mailbox_messages WHERE mailbox_id = ".to_string()
        + &bx.to_string()
        + " AND uid = 1)";
    match b {
        Backend::Sqlite => {
            exec(
                &files,
                &format!("DELETE FROM message_fts_stem WHERE rowid = {bob_first}"),
            )
            .await
        }
        Backend::Postgres => {
            exec(
                &files,
                &format!("UPDATE message_stems SET stems = '{{}}' WHERE message_id = {bob_first}"),
            )
            .await
        }
    }
    assert_eq!(
        store
            .search_words(bx, TextField::Body, "running")
            .await
            .unwrap(),
        vec![],
        "FUZZY did not use the stem index"
    );
    // alice's copy is her own message row, still indexed.
    assert_eq!(indexed_answers[0], answers(&store, a).await[0]);
    let pending = match b {
        Backend::Sqlite => {
            format!("UPDATE message_text SET stem_indexed = 0 WHERE message_id = {bob_first}")
        }
        Backend::Postgres => {
            format!("INSERT INTO message_stems_pending (message_id) VALUES ({bob_first})")
        }
    };
    exec(&files, &pending).await;
    assert_eq!(uids(&answers(&store, bx).await[0]), vec![1]);
    catch_up(&files, &store, b).await;
    assert_eq!(answers(&store, bx).await, bob_before);
}

/// Text rewritten (as when attachment text is appended) takes the message out of the index and
/// back in line; its new words are found before and after it is indexed again. An expunged
/// message's entry leaves the index (SQLite: the index row; PostgreSQL: the row holding it).
async fn rewritten_text_is_indexed_again(b: Backend) {
    let files = TestStore::new(b);
    let store = files.open().await;
    let acct = store_account(store.as_ref(), "stem-rewrite@example.com", 0).await;
    let inbox = store
        .get_mailbox(acct.id, "INBOX")
        .await
        .unwrap()
        .unwrap()
        .id;
    let mut ids = Vec::new();
    for i in 0..20 {
        let o = store
            .append(
                inbox,
                message("notes", &format!("ordinary notes {i}")),
                Flags::empty(),
                &[],
                0,
            )
            .await
            .unwrap();
        ids.push(o.uid);
    }
    catch_up(&files, &store, b).await;
    let target = format!(
        "(SELECT message_id FROM mailbox_messages WHERE mailbox_id = {inbox} AND uid = {})",
        ids[4]
    );
    exec(
        &files,
        &format!("UPDATE message_text SET body = body || ' zebrafishes swimming' WHERE message_id = {target}"),
    )
    .await;
    // SQLite's writer may index the row again at once; either way it is found.
    let found = store
        .search_words(inbox, TextField::Body, "zebrafish swim")
        .await
        .unwrap();
    assert_eq!(
        found.iter().map(|(u, _)| *u).collect::<Vec<_>>(),
        vec![ids[4]]
    );
    catch_up(&files, &store, b).await;
    let again = store
        .search_words(inbox, TextField::Body, "zebrafish swim")
        .await
        .unwrap();
    assert_eq!(again, found);
    if b == Backend::Sqlite {
        let indexed = count(&files, "SELECT count(*) FROM message_fts_stem").await;
        assert_eq!(indexed, 20);
    }
    store.expunge_uids(inbox, &ids[..10]).await.unwrap();
    assert_eq!(
        store
            .search_words(inbox, TextField::Body, "zebrafish")
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(
        store
            .search_words(inbox, TextField::Body, "notes")
            .await
            .unwrap()
            .len(),
        10
    );
    if b == Backend::Sqlite {
        // The text rows (and their index entries) go when the message rows do, which may be
        // after a grace period: the index holds exactly the indexed text rows.
        drop(store);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let rows = count(
            &files,
            "SELECT count(*) FROM message_text WHERE stem_indexed = 1",
        )
        .await;
        let indexed = count(&files, "SELECT count(*) FROM message_fts_stem").await;
        assert_eq!(indexed, rows);
    }
}

/// An upgraded store: messages stored before migration 0026 are found by FUZZY at once (their
/// text is read) and are indexed by the same background work as new ones.
async fn an_upgraded_store_is_stem_indexed(b: Backend) {
    let files = TestStore::new(b);
    let (inbox, before) = {
        let store = files.open().await;
        let acct = store_account(store.as_ref(), "stem-upgrade@example.com", 0).await;
        let inbox = store
            .get_mailbox(acct.id, "INBOX")
            .await
            .unwrap()
            .unwrap()
            .id;
        for (s, body) in BODIES {
            store
                .append(inbox, message(s, body), Flags::empty(), &[], 0)
                .await
                .unwrap();
        }
        let before = answers(&store, inbox).await;
        (inbox, before)
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Back to the schema before 0026.
    let rewind = match b {
        Backend::Sqlite => {
            "DROP TRIGGER message_text_stem_ad; DROP TRIGGER message_text_stem_au; \
             DROP TABLE message_fts_stem; DROP INDEX message_text_unstemmed; \
             ALTER TABLE message_text DROP COLUMN stem_indexed; \
             DELETE FROM _sqlx_migrations WHERE version = 26;"
        }
        Backend::Postgres => {
            "DROP TRIGGER message_text_stems_ai ON message_text; \
             DROP TRIGGER message_text_stems_au ON message_text; \
             DROP FUNCTION wharf_message_text_inserted(); DROP FUNCTION wharf_message_text_rewritten(); \
             DROP TABLE message_stems_pending; DROP TABLE message_stems; \
             DELETE FROM _sqlx_migrations WHERE version = 26;"
        }
    };
    exec(&files, rewind).await;
    let store = files.open().await;
    assert_eq!(answers(&store, inbox).await, before);
    catch_up(&files, &store, b).await;
    assert_eq!(answers(&store, inbox).await, before);
    let indexed = match b {
        Backend::Sqlite => "SELECT count(*) FROM message_fts_stem",
        Backend::Postgres => "SELECT count(*) FROM message_stems",
    };
    assert_eq!(
        count(&files, indexed).await,
        count(&files, "SELECT count(*) FROM message_text").await
    );
}

on_both_backends!(
    fuzzy_answers_from_the_stem_index,
    rewritten_text_is_indexed_again,
    an_upgraded_store_is_stem_indexed
);
