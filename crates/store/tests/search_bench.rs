//! SEARCH text cost on the embedded store at 1k, 100k (and 1M) messages: query p50 per needle
//! kind, delivery cost with and without the trigram index, index size per message.
//! Ignored by default (minutes of work, gigabytes of temp files); run with
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-search cargo test -p wharf-store --release \
//!     --test search_bench -- --ignored --nocapture
//! WHARF_SEARCH_BENCH_SIZES=1000,100000,1000000 (default 1000,100000)
//! ```
//!
//! Messages are about 4 KiB: a few headers and ~600 words drawn from a 50,000-word vocabulary of
//! made-up words with Zipf frequencies (word of rank r has weight 1/r), so the most common words
//! are in every message and most of the vocabulary is rare. Planted needles with known counts:
//! a rare word (1 message in 10,000 and at least 1), a phrase (1 in 100).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use wharf_store::*;
use wharf_testkit::TestStore;
use wharf_testkit::store::store_account;

/// A deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const SYLLABLES: &[&str] = &[
    "ka", "to", "ri", "men", "sa", "lo", "ver", "in", "de", "ta", "na", "po", "ler", "an", "ti",
    "mo", "ra", "con", "es", "li", "pre", "un", "da", "ge", "ston", "ba", "fi", "ser", "ol",
    "ment", "qua", "ber", "ch", "ne", "vi", "tro", "ax", "ul", "pe", "gr",
];

struct Corpus {
    vocab: Vec<String>,
    /// Cumulative Zipf weights, for sampling by binary search.
    cumulative: Vec<f64>,
}

impl Corpus {
    fn new() -> Corpus {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut vocab = Vec::new();
        let mut seen = std::collections::HashSet::new();
        while vocab.len() < 50_000 {
            let parts = 1 + rng.below(4) as usize;
            let w: String = (0..parts)
                .map(|_| SYLLABLES[rng.below(SYLLABLES.len() as u64) as usize])
                .collect();
            if seen.insert(w.clone()) {
                vocab.push(w);
            }
        }
        // Short words rank first, as in real text.
        let mut keyed: Vec<(usize, u64, String)> = vocab
            .into_iter()
            .map(|w| (w.len(), rng.below(1000), w))
            .collect();
        keyed.sort();
        let vocab: Vec<String> = keyed.into_iter().map(|(_, _, w)| w).collect();
        let mut cumulative = Vec::with_capacity(vocab.len());
        let mut total = 0.0;
        for r in 0..vocab.len() {
            total += 1.0 / (r as f64 + 1.0);
            cumulative.push(total);
        }
        Corpus { vocab, cumulative }
    }

    fn word(&self, rng: &mut Rng) -> &str {
        let total = self.cumulative[self.cumulative.len() - 1];
        let x = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
        let i = self.cumulative.partition_point(|c| *c < x);
        &self.vocab[i.min(self.vocab.len() - 1)]
    }

    fn message(&self, i: usize, rng: &mut Rng) -> Bytes {
        let subject: Vec<&str> = (0..5).map(|_| self.word(rng)).collect();
        let mut body = String::with_capacity(4096);
        let mut line = 0;
        while body.len() < 3500 {
            let w = self.word(rng);
            body.push_str(w);
            line += w.len() + 1;
            if line > 70 {
                body.push_str("\r\n");
                line = 0;
            } else {
                body.push(' ');
            }
        }
        if i % 10_000 == 7 {
            body.push_str(" xylophonist");
        }
        if i % 100 == 3 {
            body.push_str(" quarterly report");
        }
        Bytes::from(format!(
            "From: Sender {i} <sender{}@example.org>\r\nTo: bench@example.com\r\n\
             Subject: {}\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n\
             Message-ID: <{i}@bench.example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n",
            i % 97,
            subject.join(" ")
        ))
    }
}

/// Appends `n` messages with `inflight` at a time (so the group commit batches them, as under
/// SMTP load); returns the wall time per message.
async fn deliver(
    store: &Arc<dyn Store>,
    mailbox: MailboxId,
    corpus: &Arc<Corpus>,
    from: usize,
    n: usize,
    inflight: usize,
) -> Duration {
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let per = n.div_ceil(inflight);
    for w in 0..inflight {
        let store = store.clone();
        let corpus = corpus.clone();
        set.spawn(async move {
            let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ ((from + w) as u64 + 1));
            for k in 0..per {
                let i = from + w * per + k;
                if i >= from + n {
                    break;
                }
                let raw = corpus.message(i, &mut rng);
                store
                    .append(mailbox, raw, Flags::empty(), &[], 1_700_000_000)
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    started.elapsed() / n.max(1) as u32
}

fn sqlite_file(files: &TestStore) -> String {
    files
        .config
        .url
        .strip_prefix("sqlite://")
        .unwrap()
        .to_string()
}

/// Waits until the writer has indexed every message.
async fn wait_indexed(path: &str) {
    loop {
        if sql_sum(
            path,
            "SELECT count(*) FROM message_text WHERE tri_indexed = 0",
        ) == 0
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sql_sum(path: &str, sql: &str) -> i64 {
    let c = rusqlite::Connection::open(path).unwrap();
    c.query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
        .unwrap()
        .unwrap_or(0)
}

async fn p50(
    store: &Arc<dyn Store>,
    mailbox: MailboxId,
    field: TextField,
    needle: &str,
) -> (Duration, usize) {
    let mut times = Vec::new();
    let mut hits = 0;
    for _ in 0..9 {
        let t = Instant::now();
        hits = store
            .search_text(mailbox, field, needle)
            .await
            .unwrap()
            .len();
        times.push(t.elapsed());
    }
    times.sort();
    (times[times.len() / 2], hits)
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: minutes, gigabytes of temp files"]
async fn search_bench() {
    let sizes: Vec<usize> = std::env::var("WHARF_SEARCH_BENCH_SIZES")
        .unwrap_or_else(|_| "1000,100000".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let corpus = Arc::new(Corpus::new());
    let rank = |r: usize| corpus.vocab[r].clone();
    // A word in most messages, one in about a fifth of them, and the middle of a rarer word.
    let common = corpus.vocab.iter().find(|w| w.len() >= 3).unwrap().clone();
    let medium = rank(150);
    let inner = {
        let w = corpus
            .vocab
            .iter()
            .skip(2000)
            .find(|w| w.len() >= 8)
            .unwrap();
        w[2..6].to_string()
    };
    println!("needles: common {common:?}, medium {medium:?}, inside words {inner:?}");

    // Delivery cost, the same 5,000 messages into a store without and with the trigram index.
    let n_deliver = 5_000;
    for with_trigrams in [false, true] {
        let files = TestStore::new(wharf_testkit::Backend::Sqlite);
        let store = files.open().await;
        let a = store_account(store.as_ref(), "bench@example.com", 0).await;
        let inbox = store.get_mailbox(a.id, "INBOX").await.unwrap().unwrap();
        if !with_trigrams {
            // As before migration 0016: nothing to index (the writer's idle indexing fails and
            // waits).
            let c = rusqlite::Connection::open(sqlite_file(&files)).unwrap();
            c.execute_batch(
                "DROP TRIGGER message_text_tri_ad; DROP TRIGGER message_text_tri_au; DROP TABLE message_fts_tri;",
            )
            .unwrap();
        }
        // Warm up, then measure.
        deliver(&store, inbox.id, &corpus, 0, 500, 32).await;
        let per = deliver(&store, inbox.id, &corpus, 500, n_deliver, 32).await;
        println!(
            "delivery, 32 in flight, {} trigram index: {} ms per message",
            if with_trigrams { "with" } else { "without" },
            ms(per)
        );
        if with_trigrams {
            let t = Instant::now();
            wait_indexed(&sqlite_file(&files)).await;
            println!(
                "trigram indexing caught up {} ms after the last delivery ({} ms per message)",
                ms(t.elapsed()),
                ms(t.elapsed() / (n_deliver as u32 + 500))
            );
        }
    }

    println!(
        "\n| messages | rare word | common word | medium word | inside words | phrase | 2-char scan | SUBJECT word | text B/msg | trigram B/msg |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let files = TestStore::new(wharf_testkit::Backend::Sqlite);
    let store = files.open().await;
    let a = store_account(store.as_ref(), "bench@example.com", 0).await;
    let inbox = store.get_mailbox(a.id, "INBOX").await.unwrap().unwrap();
    // Another account's mailbox with the same kind of mail: never part of an answer.
    let other = store_account(store.as_ref(), "other@example.com", 0).await;
    let other_inbox = store.get_mailbox(other.id, "INBOX").await.unwrap().unwrap();
    deliver(&store, other_inbox.id, &corpus, 0, 200, 16).await;
    let mut have = 0;
    for n in sizes {
        let t = Instant::now();
        deliver(&store, inbox.id, &corpus, have, n - have, 32).await;
        let loaded = t.elapsed();
        wait_indexed(&sqlite_file(&files)).await;
        eprintln!(
            "loaded {n} messages in {loaded:?}, indexed {:?} later",
            t.elapsed() - loaded
        );
        have = n;
        let (rare, rare_hits) = p50(&store, inbox.id, TextField::Text, "xylophonist").await;
        assert_eq!(rare_hits, (0..n).filter(|i| i % 10_000 == 7).count());
        let (common_t, common_hits) = p50(&store, inbox.id, TextField::Text, &common).await;
        let (medium_t, medium_hits) = p50(&store, inbox.id, TextField::Body, &medium).await;
        let (inner_t, inner_hits) = p50(&store, inbox.id, TextField::Body, &inner).await;
        let (phrase, phrase_hits) =
            p50(&store, inbox.id, TextField::Body, "quarterly report").await;
        assert_eq!(phrase_hits, (0..n).filter(|i| i % 100 == 3).count());
        let (scan, _) = p50(&store, inbox.id, TextField::Body, "zq").await;
        let (subject, _) = p50(&store, inbox.id, TextField::Subject, &medium).await;
        let path = sqlite_file(&files);
        let total = (n + 200) as i64;
        let text = sql_sum(
            &path,
            "SELECT sum(length(subject) + length(from_addr) + length(to_addr) + length(cc_addr) \
             + length(bcc_addr) + length(coalesce(headers, '')) + length(body)) FROM message_text",
        ) / total;
        let tri = sql_sum(
            &path,
            "SELECT (SELECT sum(length(block)) FROM message_fts_tri_data) \
             + (SELECT sum(length(term)) + 8 * count(*) FROM message_fts_tri_idx) \
             + (SELECT coalesce(sum(length(sz)), 0) + 8 * count(*) FROM message_fts_tri_docsize)",
        ) / total;
        println!(
            "| {n} | {} ({rare_hits}) | {} ({common_hits}) | {} ({medium_hits}) | {} ({inner_hits}) | {} ({phrase_hits}) | {} | {} | {text} | {tri} |",
            ms(rare),
            ms(common_t),
            ms(medium_t),
            ms(inner_t),
            ms(phrase),
            ms(scan),
            ms(subject)
        );
        // No answer ever includes the other account's messages.
        let theirs = store
            .search_text(other_inbox.id, TextField::Body, "xylophonist")
            .await
            .unwrap();
        assert_eq!(theirs.len(), 1);
    }
}
