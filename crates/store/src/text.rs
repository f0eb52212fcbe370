//! Search text preparation: how message text is folded for storage, how the full-text index is fed,
//! and how a SEARCH needle becomes an index query that can only over-approximate the answer.
//!
//! RFC 9051 text search is a case-insensitive *substring* match, which no word index answers on
//! its own ("ell" is inside "hello"). The index is therefore only used to find candidates: every
//! candidate is then confirmed by a substring check on the stored lower-cased text. A needle is
//! cut into ASCII alphanumeric tokens; a token bounded by separators on both sides inside the
//! needle must be a whole word of any matching text, the last one a word prefix, and the first
//! one (which may start mid-word) is not used. Needles that yield no usable token fall back to a
//! scan of the stored text.

/// Longest token (in characters) that is ever fed to, or asked of, PostgreSQL's tsvector.
pub(crate) const MAX_TOKEN_CHARS: usize = 200;
/// Longest normalised text indexed per message on PostgreSQL; longer rows are always candidates.
pub(crate) const MAX_INDEXED_BYTES: usize = 512 * 1024;

/// Lower-cases text for storage and confirmation; NUL characters (refused by PostgreSQL TEXT)
/// are dropped.
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
                out.extend(c.to_lowercase());
            }
        }
        out
    };
    if out.contains('\0') {
        out.retain(|c| c != '\0');
    }
    out
}

/// True when `needle` occurs in `haystack_folded` (already `fold`ed), case-insensitively.
pub(crate) fn contains_folded(haystack_folded: &str, needle_folded: &str) -> bool {
    haystack_folded.contains(needle_folded)
}

/// Normalised text for PostgreSQL's tsvector: every non-alphanumeric character becomes a space
/// (so the default parser sees plain words, never e-mail addresses or URLs it would keep whole),
/// tokens are capped at `MAX_TOKEN_CHARS`, and the result at `MAX_INDEXED_BYTES`.
/// Returns the text and whether it is complete.
pub(crate) fn normalise_for_index(parts: &[&str]) -> (String, bool) {
    let mut out = String::new();
    let mut run = 0usize;
    for part in parts {
        for c in part.chars() {
            if out.len() + 4 >= MAX_INDEXED_BYTES {
                return (out, false);
            }
            if c.is_alphanumeric() {
                run += 1;
                if run <= MAX_TOKEN_CHARS {
                    out.push(c);
                }
            } else {
                if run > 0 {
                    out.push(' ');
                }
                run = 0;
            }
        }
        if run > 0 {
            out.push(' ');
        }
        run = 0;
    }
    (out, true)
}

/// Index terms derived from a folded needle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NeedleTerms {
    /// Tokens that must be whole words.
    pub whole: Vec<String>,
    /// Tokens that must be word prefixes (at most one: the needle's last).
    pub prefix: Vec<String>,
}

impl NeedleTerms {
    pub fn is_empty(&self) -> bool {
        self.whole.is_empty() && self.prefix.is_empty()
    }
}

/// Splits a folded needle into index terms. Only ASCII tokens are used: word boundaries and case
/// folding of non-ASCII text differ between Rust, FTS5 and PostgreSQL, and a term the index
/// folds differently could hide a real match.
pub(crate) fn needle_terms(needle_folded: &str) -> NeedleTerms {
    let mut tokens: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    for (i, c) in needle_folded.char_indices() {
        if c.is_alphanumeric() {
            if start.is_none() {
                start = Some(i);
            }
        } else if let Some(s) = start.take() {
            tokens.push((s, i));
        }
    }
    if let Some(s) = start {
        tokens.push((s, needle_folded.len()));
    }
    let mut terms = NeedleTerms {
        whole: Vec::new(),
        prefix: Vec::new(),
    };
    let last = tokens.len().saturating_sub(1);
    for (n, (s, e)) in tokens.iter().copied().enumerate() {
        // A token touching the needle's start may begin mid-word: it tells the index nothing.
        if s == 0 {
            continue;
        }
        let token = &needle_folded[s..e];
        // The separators around the token must be ASCII too: whether a non-ASCII character splits
        // words is exactly where the index and Rust may disagree.
        let before_ascii = needle_folded[..s]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii());
        let after_ascii = needle_folded[e..]
            .chars()
            .next()
            .is_none_or(|c| c.is_ascii());
        let usable = token.bytes().all(|b| b.is_ascii_alphanumeric())
            && token.len() <= MAX_TOKEN_CHARS
            && before_ascii;
        if !usable {
            continue;
        }
        let ends_needle = e == needle_folded.len();
        if n == last && ends_needle {
            // Only letters as a prefix: PostgreSQL's parser classifies digit runs by shape, and
            // a prefix of a number need not parse as a prefix of its lexeme.
            if token.bytes().all(|b| b.is_ascii_alphabetic()) {
                terms.prefix.push(token.to_string());
            }
        } else if after_ascii {
            terms.whole.push(token.to_string());
        }
    }
    terms
}

/// FTS5 MATCH expression for the terms, restricted to `columns` (None = every column).
pub(crate) fn fts5_query(terms: &NeedleTerms, column: Option<&str>) -> String {
    let mut parts: Vec<String> = terms.whole.iter().map(|t| format!("\"{t}\"")).collect();
    parts.extend(terms.prefix.iter().map(|t| format!("\"{t}\" *")));
    let expr = parts.join(" AND ");
    match column {
        Some(c) => format!("{{{c}}} : ({expr})"),
        None => expr,
    }
}

/// `to_tsquery('simple', …)` text for the terms.
pub(crate) fn tsquery(terms: &NeedleTerms) -> String {
    let mut parts: Vec<String> = terms.whole.iter().map(|t| format!("'{t}'")).collect();
    parts.extend(terms.prefix.iter().map(|t| format!("'{t}':*")));
    parts.join(" & ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_matches_char_lowercase_and_drops_nul() {
        let slow = |t: &str| -> String {
            t.chars()
                .filter(|c| *c != '\0')
                .flat_map(char::to_lowercase)
                .collect()
        };
        for t in [
            "",
            "Hello WORLD 123",
            "a\0B\0",
            "Grüße aus KÖLN",
            "İstanbul ΣΊΣΥΦΟΣ",
            "MiXeD\0ÄsCiI and ünïcödé",
        ] {
            assert_eq!(fold(t), slow(t), "{t:?}");
        }
    }

    #[test]
    fn first_token_is_never_trusted() {
        let t = needle_terms("ell");
        assert!(t.is_empty());
        let t = needle_terms("llo wor");
        assert_eq!(t.whole, Vec::<String>::new());
        assert_eq!(t.prefix, vec!["wor".to_string()]);
    }

    #[test]
    fn middle_tokens_are_whole_words() {
        let t = needle_terms("x big red dog");
        assert_eq!(t.whole, vec!["big".to_string(), "red".to_string()]);
        assert_eq!(t.prefix, vec!["dog".to_string()]);
        let t = needle_terms(" quick.");
        assert_eq!(t.whole, vec!["quick".to_string()]);
    }

    #[test]
    fn non_ascii_and_numeric_prefixes_are_skipped() {
        let t = needle_terms("a grüße 123");
        assert!(t.whole.is_empty());
        assert!(t.prefix.is_empty());
        let t = needle_terms("a 123 b");
        assert_eq!(t.whole, vec!["123".to_string()]);
    }

    #[test]
    fn normalisation_splits_addresses_and_caps() {
        let (n, complete) = normalise_for_index(&["Bob <bob@example.com>", "x"]);
        assert!(complete);
        assert_eq!(n, "Bob bob example com x ");
        let long = "a".repeat(MAX_TOKEN_CHARS + 10);
        let (n, _) = normalise_for_index(&[&long]);
        assert_eq!(n.trim().len(), MAX_TOKEN_CHARS);
        let huge = "ab ".repeat(MAX_INDEXED_BYTES);
        let (n, complete) = normalise_for_index(&[&huge]);
        assert!(!complete);
        assert!(n.len() < MAX_INDEXED_BYTES);
    }

    #[test]
    fn query_syntax() {
        let t = needle_terms("x big dog");
        assert_eq!(
            fts5_query(&t, Some("subject")),
            "{subject} : (\"big\" AND \"dog\" *)"
        );
        assert_eq!(tsquery(&t), "'big' & 'dog':*");
    }
}
