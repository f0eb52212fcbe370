//! Stable short identifiers (vacation handles, duplicate-tracking ids): the caller stores them,
//! so they must not change between releases and must stay short whatever the input length.

use sha2::{Digest, Sha256};

/// Hex of the first 16 bytes of SHA-256 over the length-prefixed parts, so ("ab", "c") and
/// ("a", "bc") differ.
pub(crate) fn short_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

#[cfg(test)]
mod tests {
    #[test]
    fn separates_parts() {
        assert_ne!(
            super::short_hash(&["ab", "c"]),
            super::short_hash(&["a", "bc"])
        );
        assert_eq!(super::short_hash(&["x"]).len(), 32);
    }
}
