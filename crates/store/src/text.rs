//! Search text preparation: how message text is folded for storage, how the indexes are fed,
//! and how a SEARCH needle becomes an index query.
//!
//! RFC 9051 text search is a case-insensitive *substring* match, which no word index answers ("ell"
//! is inside "hello"). Both the stored text and the needle are folded the same way (`fold`: case,
//! and diacritics of Latin, Greek and Cyrillic letters), and a needle of `MIN_INDEXED_CHARS` or
//! more characters is then looked up in a trigram index: SQLite's FTS5 `trigram` tokenizer (a
//! phrase of consecutive trigrams, which is exactly the substring test) or PostgreSQL's pg_trgm
//! (`LIKE '%needle%'`, whose candidates PostgreSQL rechecks, then each column confirmed with
//! `strpos`). Shorter needles read the mailbox's text.

/// Needles this long (in characters, after folding) or longer are answered by the trigram index.
pub(crate) const MIN_INDEXED_CHARS: usize = 3;
/// How `fold` folds today; stored in `message_text.text_version`. Rows folded by an older version
/// are folded again by the background backfill (migration 0016). Bump it, with a migration whose
/// partial index `message_text_stale` names the new value, whenever `fold` changes.
pub(crate) const FOLD_VERSION: i64 = 1;

/// Folds text for storage, for the indexes and for needles: lower case (`char::to_lowercase`),
/// diacritics removed from Latin, Greek and Cyrillic letters (é → e, ñ → n, ü → u, ç → c, and
/// combining accents dropped), ß → ss, æ → ae, œ → oe, ø → o, ł → l, đ → d, ς → σ; NUL
/// characters (refused by PostgreSQL TEXT) are dropped. German umlauts fold to the bare vowel, not
/// to their two-letter spelling: "Muller" finds "Müller", "Mueller" does not. Other scripts are
/// only lower-cased (no decomposition: Hangul syllables and Indic vowel signs stay as they are).
pub(crate) fn fold(text: &str) -> String {
    // ASCII (most bodies) lower-cases byte-wise; `char::to_lowercase`'s table lookup per character
    // was 14 % of the server's CPU while receiving 100 KiB messages.
    let mut out = if text.is_ascii() {
        text.to_ascii_lowercase()
    } else {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            if c.is_ascii() {
                out.push(c.to_ascii_lowercase());
            } else {
                for l in c.to_lowercase() {
                    fold_non_ascii(l, &mut out);
                }
            }
        }
        out
    };
    if out.contains('\0') {
        out.retain(|c| c != '\0');
    }
    out
}

/// Combining diacritical marks (U+0300–U+036F): dropped, whether the text came decomposed or
/// they were split off a letter here.
fn is_diacritic(c: char) -> bool {
    ('\u{300}'..='\u{36f}').contains(&c)
}

/// Letters whose canonical decomposition is a base letter plus combining diacritics: Latin-1
/// Supplement and Latin Extended-A/B, Greek and Coptic, Cyrillic, Latin Extended Additional and
/// Greek Extended.
fn decomposes_to_base(c: char) -> bool {
    matches!(c as u32, 0xC0..=0x24F | 0x370..=0x3FF | 0x400..=0x4FF | 0x1E00..=0x1FFF)
}

fn fold_non_ascii(c: char, out: &mut String) {
    match c {
        'ß' | 'ẞ' => out.push_str("ss"),
        'æ' => out.push_str("ae"),
        'œ' => out.push_str("oe"),
        'ø' => out.push('o'),
        'ł' => out.push('l'),
        'đ' => out.push('d'),
        'ς' => out.push('σ'),
        c if is_diacritic(c) => {}
        c if decomposes_to_base(c) => {
            unicode_normalization::char::decompose_canonical(c, |d| {
                if !is_diacritic(d) {
                    out.push(d);
                }
            });
        }
        c => out.push(c),
    }
}

/// Whether a folded needle is long enough for the trigram indexes.
pub(crate) fn indexable(needle_folded: &str) -> bool {
    needle_folded.chars().nth(MIN_INDEXED_CHARS - 1).is_some()
}

/// FTS5 MATCH expression for a folded needle in `message_fts_tri`: the needle as one phrase
/// (its trigrams, consecutive), restricted to `column` (None = every column). Inside the quotes
/// only `"` is special (doubled); every other character is literal.
pub(crate) fn fts5_trigram_query(needle_folded: &str, column: Option<&str>) -> String {
    let phrase = format!("\"{}\"", needle_folded.replace('"', "\"\""));
    match column {
        Some(c) => format!("{{{c}}} : {phrase}"),
        None => phrase,
    }
}

/// `LIKE` pattern (escape character `\\`, PostgreSQL's default) matching text that contains the
/// folded needle.
pub(crate) fn like_contains(needle_folded: &str) -> String {
    let mut p = String::with_capacity(needle_folded.len() + 2);
    p.push('%');
    for c in needle_folded.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_fold_is_lowercase_and_drops_nul() {
        for (t, want) in [
            ("", ""),
            ("Hello WORLD 123", "hello world 123"),
            ("a\0B\0", "ab"),
            ("MiXeD\0 and more", "mixed and more"),
        ] {
            assert_eq!(fold(t), want, "{t:?}");
        }
    }

    #[test]
    fn fold_removes_diacritics_in_german_french_spanish() {
        for (t, want) in [
            // German: umlauts to the bare vowel, ß (and capital ẞ) to ss.
            ("Grüße aus KÖLN", "grusse aus koln"),
            ("STRAẞE Straße strasse", "strasse strasse strasse"),
            ("Müller Bäckerei Öl", "muller backerei ol"),
            // French.
            (
                "Crème brûlée à l'hôtel, ÇA VA, Noël, cœur, Æsop",
                "creme brulee a l'hotel, ca va, noel, coeur, aesop",
            ),
            ("Élève ÉTÉ", "eleve ete"),
            // Spanish.
            (
                "Año, NIÑO, canción, pingüino, ¿Qué?",
                "ano, nino, cancion, pinguino, ¿que?",
            ),
            // Other Latin, Greek, Cyrillic.
            ("Łódź Ørsted Đorđe", "lodz orsted dorde"),
            ("ΣΊΣΥΦΟΣ Άθήνα", "σισυφοσ αθηνα"),
            ("Ёлка ЙОД", "елка иод"),
            // Turkish dotted capital I: i plus a combining dot, which goes.
            ("İstanbul", "istanbul"),
        ] {
            assert_eq!(fold(t), want, "{t:?}");
        }
    }

    #[test]
    fn fold_accepts_decomposed_input() {
        // "é" as e + U+0301, "ñ" as n + U+0303.
        assert_eq!(fold("Cafe\u{301} man\u{303}ana"), "cafe manana");
        assert_eq!(fold("café"), fold("Cafe\u{301}"));
    }

    #[test]
    fn fold_leaves_other_scripts_alone() {
        for t in ["한국어", "हिन्दी", "日本語のテキスト", "עברית", "العربية"]
        {
            assert_eq!(fold(t), t.to_lowercase(), "{t:?}");
        }
        // Emoji and symbols pass through.
        assert_eq!(fold("Ünïcödé 🎉 €5"), "unicode 🎉 €5");
    }

    #[test]
    fn fold_is_idempotent() {
        for t in [
            "Grüße",
            "Crème brûlée",
            "ΣΊΣΥΦΟΣ",
            "İstanbul",
            "ẞ",
            "a\u{301}\u{301}",
        ] {
            let once = fold(t);
            assert_eq!(fold(&once), once, "{t:?}");
        }
    }

    #[test]
    fn needles_shorter_than_three_characters_are_not_indexed() {
        assert!(!indexable(""));
        assert!(!indexable("ab"));
        assert!(!indexable("éé"));
        assert!(indexable("abc"));
        assert!(indexable("a b"));
        assert!(indexable("ééé"));
    }

    #[test]
    fn query_syntax() {
        assert_eq!(
            fts5_trigram_query("say \"hi\" *", Some("subject")),
            "{subject} : \"say \"\"hi\"\" *\""
        );
        assert_eq!(fts5_trigram_query("a OR b", None), "\"a OR b\"");
        assert_eq!(like_contains(r"50%_a\b"), r"%50\%\_a\\b%");
    }
}
