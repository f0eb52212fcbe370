//! App passwords: random per-device secrets accepted in place of the account password (IMAP,
//! POP3, SMTP AUTH with PLAIN or LOGIN; SCRAM needs the account password, whose verifier it
//! checks). A secret is 140 random bits written as seven groups of four base32 letters
//! (`abcd-efgh-…`); the store keeps only the SHA-256 of its normalised form (no dashes or
//! spaces, lower case), so a check costs one indexed lookup and no argon2 run.

use rand::RngCore;
use sha2::{Digest, Sha256};

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const GROUPS: usize = 7;
const GROUP_LEN: usize = 4;
/// Characters of a secret without its dashes.
pub const SECRET_CHARS: usize = GROUPS * GROUP_LEN;

/// A fresh secret, as shown (once) to its owner.
pub fn generate() -> String {
    let mut raw = [0u8; SECRET_CHARS];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let mut out = String::with_capacity(SECRET_CHARS + GROUPS);
    for (i, b) in raw.iter().enumerate() {
        if i > 0 && i % GROUP_LEN == 0 {
            out.push('-');
        }
        out.push(char::from(ALPHABET[usize::from(b & 31)]));
    }
    out
}

/// The normalised secret when `text` has the shape of an app password.
pub fn normalize(text: &str) -> Option<String> {
    if text.len() > 64 {
        return None;
    }
    let s: String = text
        .chars()
        .filter(|c| *c != '-' && *c != ' ')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (s.len() == SECRET_CHARS && s.bytes().all(|b| ALPHABET.contains(&b))).then_some(s)
}

/// What the store keeps of a secret: lower-case hex SHA-256 of its normalised form.
pub fn hash(normalized: &str) -> String {
    Sha256::digest(normalized.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_their_shape() {
        let s = generate();
        assert_eq!(s.len(), SECRET_CHARS + GROUPS - 1);
        let n = normalize(&s).unwrap();
        assert_eq!(normalize(&s.to_uppercase()).unwrap(), n);
        assert_eq!(normalize(&n).unwrap(), n);
        assert!(normalize("correct horse battery").is_none());
        assert_ne!(generate(), s);
        assert_eq!(hash(&n).len(), 64);
    }
}
