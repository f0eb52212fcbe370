//! Password storage and policy: argon2id PHC hashing and verification, and the strength rule
//! applied when a password is set. Both hash functions are CPU- and memory-heavy: callers run them
//! on the blocking pool, never on the async executor.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;

/// Longest password accepted anywhere (bytes); longer input is refused before any hashing.
pub const MAX_PASSWORD_LEN: usize = 1024;

fn hasher() -> Argon2<'static> {
    // argon2id v19 with the RFC 9106 / OWASP "second recommended" cost (19 MiB, t=2, p=1).
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// Hashes a password into an argon2id PHC string (`$argon2id$v=19$m=…`).
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| format!("salt: {e}"))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("argon2: {e}"))
}

/// Checks a password against a PHC string. The parameters come from the string, so hashes made
/// with older costs keep working. An unparsable hash never matches.
pub fn verify_password(phc: &str, password: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(e) => {
            tracing::warn!(error = %e, "stored password hash is not a PHC string");
            false
        }
    }
}

/// The strength rule: at least `min_len` characters, at most `MAX_PASSWORD_LEN` bytes, no control
/// characters (they cannot travel through every protocol), and not the account's own local part or
/// address. The error text names the broken rule.
pub fn check_strength(
    password: &str,
    local: &str,
    address: &str,
    min_len: usize,
) -> Result<(), String> {
    let len = password.chars().count();
    if len < min_len {
        return Err(format!(
            "password must be at least {min_len} characters long"
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(format!(
            "password must be at most {MAX_PASSWORD_LEN} bytes long"
        ));
    }
    if password.chars().any(char::is_control) {
        return Err("password must not contain control characters".to_string());
    }
    let lowered = password.to_lowercase();
    if lowered == local.to_lowercase() || lowered == address.to_lowercase() {
        return Err("password must not be the account's name or address".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$"));
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "correct horse batterx"));
        assert!(!verify_password("not a hash", "x"));
        // Two hashes of one password differ (random salt).
        assert_ne!(h, hash_password("correct horse battery").unwrap());
    }

    #[test]
    fn strength_rule_names_the_rule() {
        let e = check_strength("short", "bob", "bob@d.example", 10).unwrap_err();
        assert!(e.contains("at least 10 characters"), "{e}");
        let e = check_strength("Bob@D.example", "bob", "bob@d.example", 10).unwrap_err();
        assert!(e.contains("name or address"), "{e}");
        let e = check_strength(
            "LongEnoughUser",
            "longenoughuser",
            "longenoughuser@d.example",
            10,
        )
        .unwrap_err();
        assert!(e.contains("name or address"), "{e}");
        let e = check_strength("abc\ndefghijk", "bob", "bob@d.example", 10).unwrap_err();
        assert!(e.contains("control"), "{e}");
        assert!(check_strength("a perfectly fine one", "bob", "bob@d.example", 10).is_ok());
        // Characters, not bytes, count.
        assert!(check_strength("ééééééééé", "bob", "bob@d.example", 10).is_err());
        assert!(check_strength("éééééééééé", "bob", "bob@d.example", 10).is_ok());
    }
}
