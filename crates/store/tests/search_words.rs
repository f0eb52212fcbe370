//! FUZZY word search (`Store::search_words`, `wharf_store::words`): folding and stemming in
//! English, German, French and Spanish, every text field, relevancy, and another account's copies
//! of the same messages never returned — the same answers, scores included, on SQLite and
//! PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bytes::Bytes;
use wharf_store::*;
use wharf_testkit::store::store_account;
use wharf_testkit::{Backend, TestStore, on_both_backends};

fn message(from: &str, to: &str, subject: &str, body: &str) -> Bytes {
    Bytes::from(format!(
        "From: {from}\r\nTo: {to}\r\nCc: carol@example.net\r\nSubject: {subject}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ))
}

/// The corpus: (subject, body) per language, appended in this order (UIDs 1..).
const CORPUS: [(&str, &str); 6] = [
    (
        "Running late",
        "He runs every morning; the runner was connected.",
    ),
    (
        "Quarterly reports",
        "Please find the report attached, and the numbers.",
    ),
    (
        "Häuser am See",
        "Viele Grüße aus München: die Rechnungen für das Haus.",
    ),
    (
        "Réunions annulées",
        "Les élèves chantaient; nous continuons demain.",
    ),
    ("Canciones nuevas", "El niño corre; más información mañana."),
    ("Port of call", "A rune stone and a cantina."),
];

async fn setup(b: Backend) -> (TestStore, Arc<dyn Store>, MailboxId, MailboxId) {
    let files = TestStore::new(b);
    let store = files.open().await;
    let alice = store_account(store.as_ref(), "words-alice@example.com", 0).await;
    let bob = store_account(store.as_ref(), "words-bob@example.com", 0).await;
    let a = store.get_mailbox(alice.id, "INBOX").await.unwrap().unwrap();
    let bx = store.get_mailbox(bob.id, "INBOX").await.unwrap().unwrap();
    // bob first: his copies have the lower message ids, and the same words.
    for mb in [bx.id, a.id] {
        for (subject, body) in CORPUS {
            store
                .append(
                    mb,
                    message(
                        "Ann Runner <ann@example.org>",
                        "team@example.com",
                        subject,
                        body,
                    ),
                    Flags::empty(),
                    &[],
                    1_700_000_000,
                )
                .await
                .unwrap();
        }
    }
    (files, store, a.id, bx.id)
}

async fn words_fold_and_stem_in_four_languages(b: Backend) {
    let (_files, store, inbox, _bob) = setup(b).await;
    let q = |f, n: &'static str| {
        let store = store.clone();
        async move {
            store
                .search_words(inbox, f, n)
                .await
                .unwrap()
                .into_iter()
                .map(|(uid, _)| uid)
                .collect::<Vec<Uid>>()
        }
    };
    let none = Vec::<Uid>::new();
    // English: inflections find each other; a word is not a substring.
    assert_eq!(q(TextField::Body, "running").await, vec![1]);
    assert_eq!(q(TextField::Body, "connection").await, vec![1]);
    assert_eq!(q(TextField::Subject, "report").await, vec![2]);
    assert_eq!(q(TextField::Text, "quarterly reporting").await, vec![2]);
    assert_eq!(q(TextField::Body, "port").await, none);
    assert_eq!(q(TextField::Subject, "port").await, vec![6]);
    // German: umlauts and ß folded, plurals stemmed.
    assert_eq!(q(TextField::Subject, "Haus").await, vec![3]);
    assert_eq!(q(TextField::Body, "häuser").await, vec![3]);
    assert_eq!(q(TextField::Body, "GRUSSE").await, vec![3]);
    assert_eq!(q(TextField::Body, "Rechnung").await, vec![3]);
    assert_eq!(q(TextField::Body, "muenchen").await, none);
    // French: accents folded, verb forms stemmed.
    assert_eq!(q(TextField::Subject, "reunion annulee").await, vec![4]);
    assert_eq!(q(TextField::Body, "eleve").await, vec![4]);
    assert_eq!(q(TextField::Body, "chanter").await, vec![4]);
    assert_eq!(q(TextField::Body, "continuons").await, vec![4]);
    // Spanish.
    assert_eq!(q(TextField::Subject, "canción").await, vec![5]);
    assert_eq!(q(TextField::Body, "niños").await, vec![5]);
    assert_eq!(q(TextField::Body, "corriendo").await, vec![5]);
    assert_eq!(q(TextField::Body, "informacion").await, vec![5]);
    assert_eq!(q(TextField::Body, "cantina canciones").await, none);
    // Address fields and the whole text.
    assert_eq!(q(TextField::From, "runners").await, vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(q(TextField::Cc, "carol").await, vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(q(TextField::To, "teams").await, vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(q(TextField::Bcc, "carol").await, none);
    assert_eq!(q(TextField::Text, "stone").await, vec![6]);
    // Every word must occur; a needle without words matches nothing.
    assert_eq!(q(TextField::Text, "rune canciones").await, none);
    assert_eq!(q(TextField::Text, " ,;").await, none);
}

/// Relevancy: more occurrences and the subject score higher; identical on both backends (the
/// numbers are asserted, so SQLite and PostgreSQL give the same). bob's copies never appear.
async fn relevancy_scores(b: Backend) {
    let (_files, store, inbox, bob) = setup(b).await;
    let s = &store;
    let q = |f, n: &'static str| async move { s.search_words(inbox, f, n).await.unwrap() };
    // Body "the": once in 1 (33), twice in 2 (40): 100 · Σ c/(c+1) / (that + 1).
    assert_eq!(q(TextField::Body, "the").await, vec![(1, 33), (2, 40)]);
    assert_eq!(q(TextField::Text, "the").await, vec![(1, 33), (2, 40)]);
    // "reports": the subject (weight 3), the Subject: header line (1) and the body (1) = 71.
    assert_eq!(q(TextField::Text, "reports").await, vec![(2, 71)]);
    assert_eq!(q(TextField::Subject, "reporting").await, vec![(2, 60)]);
    // bob's mailbox answers with his own UIDs only, and alice's searches never return his.
    let theirs = store
        .search_words(bob, TextField::Body, "stone")
        .await
        .unwrap();
    assert_eq!(theirs, vec![(6, 33)]);
    for (uid, score) in q(TextField::Text, "Runner").await {
        assert!((1..=6).contains(&uid) && (1..=100).contains(&score));
    }
}

on_both_backends!(words_fold_and_stem_in_four_languages, relevancy_scores);
