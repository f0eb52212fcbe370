//! Feature extraction for the statistical classifier: the words of the Subject and text bodies
//! (HTML already converted to visible text by [`crate::analysis`]) plus a few header and
//! structure tokens, lowercased, length-bounded, deduplicated, and capped per message. Each token
//! is hashed to a [`TokenHash`] with 64-bit FNV-1a, a function fixed here forever so that counts
//! stored by one version are read correctly by the next, on any platform.
//!
//! Token forms (the text before hashing):
//! - body words: `word` (3..=24 chars); longer ones become `skip:<first char>:<len/10*10>`
//! - subject words: `subject:word`
//! - `from-domain:example.com`, `from-addr:alice@example.com`, `reply-to-domain:…`,
//!   `msgid-domain:…`, `mailer:<first word of X-Mailer/User-Agent>`, `list-id:…`,
//!   `url:<registered domain>`, `attach-ext:exe`, `attach-type:application/zip`,
//!   `has:html-only`, `has:hidden-text`, `has:no-text`, `received:<count, capped at 10>`,
//!   `rcvd-from:<registered domain>`, `rcvd-by:<registered domain>`, `rcvd-ip:<a.b>` (IPv4
//!   /16 of each relay, first 10 Received headers), `header:<field name>` (each distinct
//!   field present), `ctype:<type/subtype>`, `charset:<charset>`.

use std::collections::HashSet;

use crate::analysis::{Analysis, domain_of, registered_domain};

/// The stored identity of a token: FNV-1a 64 of its UTF-8 text.
pub type TokenHash = u64;

/// Most tokens kept per message (after deduplication).
pub const MAX_TOKENS: usize = 3000;
const MIN_WORD_CHARS: usize = 3;
const MAX_WORD_CHARS: usize = 24;

/// 64-bit FNV-1a (offset basis 0xcbf29ce484222325, prime 0x100000001b3) of `text`'s bytes.
pub fn hash_token(text: &str) -> TokenHash {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A message's distinct tokens, in order of first appearance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenSet {
    texts: Vec<String>,
    hashes: Vec<TokenHash>,
    seen: HashSet<TokenHash>,
}

impl TokenSet {
    /// Extracts the tokens of an analysed message.
    pub fn from_analysis(a: &Analysis) -> TokenSet {
        let mut set = TokenSet::default();
        if let Some(domain) = a.from_domain() {
            set.push(format!("from-domain:{domain}"));
        }
        if let Some(addr) = &a.from_address {
            set.push(format!("from-addr:{addr}"));
        }
        if let Some(domain) = a.reply_to_address.as_deref().and_then(domain_of) {
            set.push(format!("reply-to-domain:{domain}"));
        }
        if let Some(domain) = a.message_id.as_deref().and_then(domain_of) {
            set.push(format!("msgid-domain:{}", domain.to_lowercase()));
        }
        if let Some(mailer) = &a.mailer {
            let first: String = mailer
                .split(|c: char| c.is_whitespace() || c == '/' || c == '(')
                .find(|w| !w.is_empty())
                .unwrap_or("")
                .chars()
                .take(MAX_WORD_CHARS)
                .collect();
            set.push(format!("mailer:{}", first.to_lowercase()));
        }
        if let Some(list) = &a.list_id {
            let id: String = list.chars().take(64).collect();
            set.push(format!("list-id:{}", id.to_lowercase()));
        }
        set.push(format!("received:{}", a.received_count.min(10)));
        for hop in &a.hops {
            if let Some(from) = &hop.from {
                set.push(format!("rcvd-from:{}", registered_domain(from)));
            }
            if let Some(by) = &hop.by {
                set.push(format!("rcvd-by:{}", registered_domain(by)));
            }
            if let Some(std::net::IpAddr::V4(ip)) = hop.from_ip {
                let [x, y, _, _] = ip.octets();
                set.push(format!("rcvd-ip:{x}.{y}"));
            }
        }
        for name in &a.header_names {
            set.push(format!("header:{name}"));
        }
        if let Some(ct) = &a.content_type {
            set.push(format!("ctype:{ct}"));
        }
        if let Some(cs) = &a.charset {
            let cs: String = cs.chars().take(MAX_WORD_CHARS).collect();
            set.push(format!("charset:{cs}"));
        }
        if a.has_html_part && !a.has_text_part {
            set.push("has:html-only".to_string());
        }
        if a.html_hidden_chars > 0 {
            set.push("has:hidden-text".to_string());
        }
        if !a.has_text_part && !a.has_html_part {
            set.push("has:no-text".to_string());
        }
        for url in &a.urls {
            set.push(format!("url:{}", registered_domain(&url.host)));
        }
        for att in &a.attachments {
            set.push(format!("attach-type:{}", att.content_type));
            if let Some(ext) = att
                .file_name
                .as_deref()
                .and_then(|n| n.rsplit_once('.'))
                .map(|(_, e)| e.to_lowercase())
                .filter(|e| !e.is_empty() && e.len() <= 8)
            {
                set.push(format!("attach-ext:{ext}"));
            }
        }
        if let Some(subject) = &a.subject {
            for_each_word(subject, |w| set.push(format!("subject:{w}")));
        }
        for_each_word(&a.text, |w| set.push(w));
        set
    }

    /// Tokenizes raw message bytes (parse + extract).
    pub fn from_message(raw: &[u8]) -> TokenSet {
        TokenSet::from_analysis(&Analysis::parse(raw))
    }

    fn push(&mut self, text: String) {
        if self.hashes.len() >= MAX_TOKENS {
            return;
        }
        let h = hash_token(&text);
        if self.seen.insert(h) {
            self.hashes.push(h);
            self.texts.push(text);
        }
    }

    /// The token hashes, distinct, in order of first appearance.
    pub fn hashes(&self) -> &[TokenHash] {
        &self.hashes
    }

    /// The token texts, parallel to [`TokenSet::hashes`].
    pub fn texts(&self) -> &[String] {
        &self.texts
    }

    /// The text of a token of this message, if present.
    pub fn text_of(&self, hash: TokenHash) -> Option<&str> {
        self.hashes
            .iter()
            .position(|h| *h == hash)
            .and_then(|i| self.texts.get(i))
            .map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }
}

/// Calls `f` with each normalised word of `text`: split on characters that are neither
/// alphanumeric nor one of `$'-_.!`, trimmed of `'-_.!`, lowercased; words shorter than 3
/// chars are dropped, longer than 24 become a `skip:` token.
fn for_each_word(text: &str, mut f: impl FnMut(String)) {
    for raw in text
        .split(|c: char| !(c.is_alphanumeric() || matches!(c, '$' | '\'' | '-' | '_' | '.' | '!')))
    {
        let word = raw.trim_matches(|c: char| matches!(c, '\'' | '-' | '_' | '.' | '!'));
        if word.is_empty() {
            continue;
        }
        let chars = word.chars().count();
        if chars < MIN_WORD_CHARS {
            continue;
        }
        if chars > MAX_WORD_CHARS {
            let first = word.chars().next().unwrap_or('?').to_lowercase();
            f(format!("skip:{first}:{}", chars / 10 * 10));
            continue;
        }
        f(word.to_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_is_fixed() {
        // Reference values of 64-bit FNV-1a.
        assert_eq!(hash_token(""), 0xcbf29ce484222325);
        assert_eq!(hash_token("a"), 0xaf63dc4c8601ec8c);
        assert_eq!(hash_token("foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn words_and_headers() {
        let raw = b"From: Bob <bob@Mail.Example.com>\r\nSubject: Cheap PILLS now\r\nX-Mailer: Foo/1.2\r\nMessage-ID: <a@b.example>\r\n\r\nBuy cheap pills at http://pills.example.ru/x, it's great!!! ab supercalifragilisticexpialidocious\r\n";
        let t = TokenSet::from_message(raw);
        let texts = t.texts();
        for want in [
            "from-domain:mail.example.com",
            "from-addr:bob@mail.example.com",
            "msgid-domain:b.example",
            "mailer:foo",
            "subject:cheap",
            "subject:pills",
            "cheap",
            "pills",
            "it's",
            "great",
            "url:example.ru",
            "skip:s:30",
        ] {
            assert!(
                texts.iter().any(|x| x == want),
                "missing {want} in {texts:?}"
            );
        }
        assert!(!texts.iter().any(|x| x == "ab"));
        // Deduplicated.
        let mut h = t.hashes().to_vec();
        h.sort_unstable();
        h.dedup();
        assert_eq!(h.len(), t.len());
    }

    #[test]
    fn deterministic() {
        let raw = b"Subject: x y z\r\n\r\nhello world hello";
        assert_eq!(TokenSet::from_message(raw), TokenSet::from_message(raw));
    }
}
