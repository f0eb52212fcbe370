//! Word search for IMAP FUZZY (RFC 6203): language-aware words instead of SEARCH's exact
//! substrings. Text and needle are folded (`text::fold`: case and diacritics, so "é" finds "e"),
//! split into words by Unicode word segmentation (UAX #29, `unicode-segmentation`), and a needle
//! word matches a text word when a Snowball stemmer (`rust-stemmers`) of one of the supported
//! languages — English, German, French, Spanish — gives both the same stem: "running" finds
//! "runs" (English "run"), "Häuser" finds "Haus" (German "haus"), "chanter" finds "chantait"
//! (French "chant"), "canciones" finds "canción" (Spanish "cancion").
//!
//! No language is detected: every word is stemmed with each language and two words match when
//! any language conflates them. Detection is unreliable on short mails and mixed-language
//! threads, and a mail's language says nothing of the needle's; stemming with all four costs four
//! stems per distinct word of the searched text (memoised per search), and conflates a little more
//! than one language would (a fuzzy search may). Words in other scripts are compared folded,
//! whole (the four stemmers leave them as they are).
//!
//! A FUZZY key matches a message when every word of the needle occurs (stemmed) in the searched
//! fields; its relevancy (1–100) grows with how often the words occur, weighted by field
//! (subject 3, addresses 2, body and header 1), saturating: `100 · raw / (raw + n)` where `n` is
//! the needle's word count and `raw = Σ_word Σ_field weight · c/(c+1)` (`c` occurrences).
//!
//! The stem index (migration 0026) narrows the messages a FUZZY search reads: each message is
//! indexed under a token per distinct stem of its words (`StemIndexer`), and a needle word asks
//! for any of its stems' tokens (`WordQuery::token_groups`). When a needle word matches a text
//! word, one language gives both the same stem, so the text word's tokens hold the needle word's
//! token in that language: the index never misses a match. It may find more (a stem in one
//! language equal to another's, a hash collision), which the score, computed from the text as
//! before, rejects; so answers and relevancies are the same with the index as without.

use std::collections::HashMap;

use rust_stemmers::{Algorithm, Stemmer};
use unicode_segmentation::UnicodeSegmentation;

/// The languages every word is stemmed with.
const LANGUAGES: [Algorithm; 4] = [
    Algorithm::English,
    Algorithm::German,
    Algorithm::French,
    Algorithm::Spanish,
];
/// Words longer than this (in bytes) are compared whole, not stemmed.
const MAX_STEMMED_BYTES: usize = 64;
/// Most words of a needle that count (the rest are ignored).
pub const MAX_NEEDLE_WORDS: usize = 32;
/// Most distinct words a search remembers the matches of; past it the memo starts over.
const MEMO_LIMIT: usize = 200_000;

/// A stem's token in the stem index: 48 bits of its FNV-1a hash. A fixed, documented function
/// (tokens are stored), not `std`'s hasher, whose output may change between Rust releases.
pub(crate) fn stem_token(stem: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in stem.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h >> 16
}

/// A token as SQLite's stem index spells it (12 hex digits, which its `ascii` tokenizer keeps
/// whole).
pub(crate) fn token_text(token: u64) -> String {
    format!("{token:012x}")
}

/// Most distinct words an indexer remembers the tokens of; past it the memo starts over.
const INDEXER_MEMO_LIMIT: usize = 100_000;

/// Computes messages' stem-index tokens, remembering each distinct word's (messages of one
/// batch share most of their words).
pub(crate) struct StemIndexer {
    stemmers: Vec<Stemmer>,
    memo: HashMap<String, Vec<u64>>,
}

impl StemIndexer {
    pub(crate) fn new() -> StemIndexer {
        StemIndexer {
            stemmers: LANGUAGES.iter().map(|&l| Stemmer::create(l)).collect(),
            memo: HashMap::new(),
        }
    }

    /// The distinct tokens of a message whose folded texts are `texts`, ascending.
    pub(crate) fn tokens<'a>(&mut self, texts: impl IntoIterator<Item = &'a str>) -> Vec<u64> {
        let mut out = Vec::new();
        let mut seen_words: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for text in texts {
            for w in text.unicode_words() {
                if !seen_words.insert(w) {
                    continue;
                }
                if let Some(t) = self.memo.get(w) {
                    out.extend_from_slice(t);
                    continue;
                }
                let mut t: Vec<u64> = stems(w, &self.stemmers)
                    .iter()
                    .map(|s| stem_token(s))
                    .collect();
                t.sort_unstable();
                t.dedup();
                out.extend_from_slice(&t);
                if self.memo.len() >= INDEXER_MEMO_LIMIT {
                    self.memo.clear();
                }
                self.memo.insert(w.to_string(), t);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Folds text as the stored search text is folded (case, diacritics): `text` is private to the
/// store, and the IMAP test double folds its texts alike.
pub fn fold(text: &str) -> String {
    crate::text::fold(text)
}

/// The stems of a folded word, one per language (the word itself when it is not stemmed).
fn stems(word: &str, stemmers: &[Stemmer]) -> Vec<String> {
    if word.len() > MAX_STEMMED_BYTES || !word.chars().any(char::is_alphabetic) {
        return vec![word.to_string(); stemmers.len()];
    }
    stemmers
        .iter()
        .map(|s| {
            // The stemmers are generated code over any UTF-8; a panic in one is taken as "no
            // stem" rather than let text from a message bring the search down.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.stem(word).into_owned()))
                .unwrap_or_else(|_| word.to_string())
        })
        .collect()
}

/// A FUZZY needle ready to be matched: its words' stems, per language.
pub struct WordQuery {
    stemmers: Vec<Stemmer>,
    /// Per needle word, its stem in each language (in `LANGUAGES` order).
    words: Vec<Vec<String>>,
    /// Per distinct text word seen: the needle words it matches, as bits.
    memo: HashMap<String, u64>,
}

impl WordQuery {
    /// The query for a needle; `None` when it has no word (only spaces or punctuation), which
    /// matches nothing.
    pub fn new(needle: &str) -> Option<WordQuery> {
        let stemmers: Vec<Stemmer> = LANGUAGES.iter().map(|&l| Stemmer::create(l)).collect();
        let folded = fold(needle);
        let mut words: Vec<Vec<String>> = Vec::new();
        for w in folded.unicode_words().take(MAX_NEEDLE_WORDS) {
            let s = stems(w, &stemmers);
            if !words.contains(&s) {
                words.push(s);
            }
        }
        if words.is_empty() {
            return None;
        }
        Some(WordQuery {
            stemmers,
            words,
            memo: HashMap::new(),
        })
    }

    /// Per needle word, the stem-index tokens of its stems (distinct, ascending): a message can
    /// match only if, for every word, it holds one of that word's tokens.
    pub(crate) fn token_groups(&self) -> Vec<Vec<u64>> {
        self.words
            .iter()
            .map(|stems| {
                let mut t: Vec<u64> = stems.iter().map(|s| stem_token(s)).collect();
                t.sort_unstable();
                t.dedup();
                t
            })
            .collect()
    }

    /// The needle words a folded text word matches, as bits.
    fn matches(&mut self, word: &str) -> u64 {
        if let Some(&m) = self.memo.get(word) {
            return m;
        }
        let s = stems(word, &self.stemmers);
        let mut bits = 0u64;
        for (i, needle) in self.words.iter().enumerate() {
            if needle.iter().zip(&s).any(|(a, b)| a == b) {
                bits |= 1 << i;
            }
        }
        if self.memo.len() >= MEMO_LIMIT {
            self.memo.clear();
        }
        self.memo.insert(word.to_string(), bits);
        bits
    }

    /// The relevancy (1–100) of a message whose searched fields are `fields` (folded text with
    /// its weight), or `None` when a needle word occurs in none of them.
    pub fn score(&mut self, fields: &[(&str, f64)]) -> Option<u8> {
        let n = self.words.len();
        let mut raw = 0.0f64;
        let mut seen = 0u64;
        let mut counts = vec![0u32; n];
        for (text, weight) in fields {
            counts.iter_mut().for_each(|c| *c = 0);
            for w in text.unicode_words() {
                let bits = self.matches(w);
                if bits == 0 {
                    continue;
                }
                seen |= bits;
                for (i, c) in counts.iter_mut().enumerate() {
                    if bits & (1 << i) != 0 {
                        *c = c.saturating_add(1);
                    }
                }
            }
            for &c in &counts {
                let c = f64::from(c);
                raw += weight * c / (c + 1.0);
            }
        }
        let all = if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
        if seen != all {
            return None;
        }
        let score = (100.0 * raw / (raw + n as f64)).round();
        Some(score.clamp(1.0, 100.0) as u8)
    }
}

/// The weight of a `message_text` column in the relevancy.
pub(crate) fn column_weight(column: &str) -> f64 {
    match column {
        "subject" => 3.0,
        "from_addr" | "to_addr" | "cc_addr" | "bcc_addr" => 2.0,
        _ => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finds(needle: &str, text: &str) -> bool {
        let mut q = WordQuery::new(needle).expect("a word");
        q.score(&[(&fold(text), 1.0)]).is_some()
    }

    #[test]
    fn english() {
        assert!(finds("running", "He runs every day"));
        assert!(finds("runs", "we were running late"));
        assert!(finds("connection", "connected to the server"));
        assert!(finds("Reports", "the quarterly report"));
        assert!(!finds("running", "a rune stone"));
        // Stems, not substrings: "port" is not a word of "report".
        assert!(!finds("port", "the quarterly report"));
    }

    #[test]
    fn german() {
        assert!(finds("Häuser", "ein Haus am See"));
        assert!(finds("Grüße", "viele Grüsse aus Berlin"));
        assert!(finds("grusse", "Viele Grüße"));
        assert!(finds("Rechnungen", "Ihre Rechnung vom Mai"));
        assert!(finds("STRASSE", "Straße 5"));
        // Compounds are not split.
        assert!(!finds("Haus", "Hauptstraße 5"));
    }

    #[test]
    fn french() {
        assert!(finds("chanter", "elle chantait"));
        assert!(finds("chante", "ils chantaient"));
        assert!(finds("élève", "les eleves sont partis"));
        assert!(finds("réunion", "Réunions annulées"));
        assert!(finds("annulée", "Réunions annulées"));
        assert!(!finds("chanter", "un chat"));
    }

    #[test]
    fn spanish() {
        assert!(finds("canciones", "una canción nueva"));
        assert!(finds("niño", "los ninos juegan"));
        assert!(finds("corriendo", "ella corre mucho"));
        assert!(finds("información", "mas informacion aqui"));
        assert!(!finds("canciones", "cantina"));
    }

    #[test]
    fn every_word_must_occur_and_scores_rank() {
        assert!(finds(
            "quarterly reports",
            "the report for the quarterly meeting"
        ));
        assert!(!finds("quarterly reports", "the report for the meeting"));
        let mut q = WordQuery::new("report").expect("a word");
        let once = q.score(&[("the report", 1.0)]).expect("match");
        let thrice = q
            .score(&[("report reports reporting", 1.0)])
            .expect("match");
        let subject = q.score(&[("report", 3.0), ("report", 1.0)]).expect("match");
        assert!((1..=100).contains(&once));
        assert!(
            once < thrice && thrice < subject,
            "{once} {thrice} {subject}"
        );
        assert!(WordQuery::new(" ,.; ").is_none());
    }

    /// The index's promise: whenever the score finds a message, its tokens hold one token of
    /// every needle word (so filtering by the index loses nothing).
    #[test]
    fn index_tokens_cover_every_match() {
        let texts = [
            "He runs every day",
            "ein Haus am See, viele Grüsse",
            "elle chantait; les eleves sont partis",
            "una canción nueva, los ninos juegan",
            "я люблю москву 東京 タワー 3.14 don't e-mail",
        ];
        let needles = [
            "running",
            "Häuser",
            "Grüße",
            "chanter",
            "élève",
            "canciones",
            "niño",
            "Москва",
            "東京",
            "3.14",
            "don't",
            "mail",
            "runs day",
        ];
        let mut indexer = StemIndexer::new();
        for text in texts {
            let folded = fold(text);
            let tokens = indexer.tokens([folded.as_str()]);
            assert!(
                tokens.windows(2).all(|w| w[0] < w[1]),
                "sorted and distinct"
            );
            for needle in needles {
                let mut q = WordQuery::new(needle).expect("a word");
                if q.score(&[(&folded, 1.0)]).is_some() {
                    for group in q.token_groups() {
                        assert!(
                            group.iter().any(|t| tokens.binary_search(t).is_ok()),
                            "{needle:?} in {text:?}"
                        );
                    }
                }
            }
        }
        // A word the text lacks has no token there.
        let tokens = indexer.tokens(["the quarterly report"]);
        let q = WordQuery::new("invoice").expect("a word");
        assert!(
            q.token_groups()[0]
                .iter()
                .all(|t| tokens.binary_search(t).is_err())
        );
        assert_eq!(token_text(stem_token("run")).len(), 12);
        assert_eq!(stem_token("run"), stem_token("run"));
        assert_ne!(stem_token("run"), stem_token("runs"));
    }

    #[test]
    fn other_scripts_and_odd_input_never_panic() {
        assert!(finds("Москва", "я люблю москву и Москва"));
        assert!(finds("東京", "東京 タワー"));
        let long = "a".repeat(10_000);
        assert!(finds(&long, &long));
        for s in ["\u{0}", "\u{FFFF}x", "ǅ", "İstanbul", "ﬃ", "𝔘𝔫𝔦"] {
            let _ = WordQuery::new(s).map(|mut q| q.score(&[(s, 1.0)]));
        }
    }
}
