//! Cache of successful password verifications, so repeated logins skip argon2id. An entry is keyed
//! by the user name and holds an HMAC of the password under a per-process random key (never the
//! password) plus the stored hash it was verified against: a changed hash (password changed, here
//! or by another process) makes the entry useless. Bounded and time-limited.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

const MAX_ENTRIES: usize = 100_000;

struct Entry {
    digest: [u8; 32],
    secret_hash: String,
    expires: Instant,
}

pub(crate) struct CredentialCache {
    key: [u8; 32],
    ttl: Duration,
    cap: usize,
    map: Mutex<HashMap<String, Entry>>,
}

impl CredentialCache {
    pub(crate) fn new(ttl: Duration) -> CredentialCache {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        CredentialCache {
            key,
            ttl,
            cap: MAX_ENTRIES,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn digest(&self, user: &str, password: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(user.as_bytes());
        mac.update(&[0]);
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True when `password` was verified for `user` against this same `secret_hash` within the TTL.
    pub(crate) fn hit(&self, user: &str, password: &str, secret_hash: &str, now: Instant) -> bool {
        if self.ttl.is_zero() {
            return false;
        }
        let digest = self.digest(user, password);
        let mut map = self.lock();
        let Some(e) = map.get(user) else { return false };
        if e.expires <= now || e.secret_hash != secret_hash {
            map.remove(user);
            return false;
        }
        bool::from(e.digest.ct_eq(&digest))
    }

    pub(crate) fn insert(&self, user: &str, password: &str, secret_hash: &str, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let digest = self.digest(user, password);
        let mut map = self.lock();
        if map.len() >= self.cap && !map.contains_key(user) {
            map.retain(|_, e| e.expires > now);
            if map.len() >= self.cap {
                // Entries expire in insertion order, so the earliest expiries are the oldest.
                let mut exp: Vec<Instant> = map.values().map(|e| e.expires).collect();
                exp.sort_unstable();
                let cut = exp[exp.len() / 4];
                map.retain(|_, e| e.expires > cut);
            }
        }
        map.insert(
            user.to_string(),
            Entry {
                digest,
                secret_hash: secret_hash.to_string(),
                expires: now + self.ttl,
            },
        );
    }

    pub(crate) fn invalidate(&self, user: &str) {
        self.lock().remove(user);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_miss_expiry_and_invalidation() {
        let c = CredentialCache::new(Duration::from_secs(60));
        let now = Instant::now();
        assert!(!c.hit("a@d", "pw", "$h1", now));
        c.insert("a@d", "pw", "$h1", now);
        assert!(c.hit("a@d", "pw", "$h1", now));
        assert!(!c.hit("a@d", "other", "$h1", now), "wrong password");
        assert!(!c.hit("b@d", "pw", "$h1", now), "other user");
        assert!(
            !c.hit("a@d", "pw", "$h1", now + Duration::from_secs(61)),
            "expired"
        );
        c.insert("a@d", "pw", "$h1", now);
        assert!(!c.hit("a@d", "pw", "$h2", now), "hash changed elsewhere");
        c.insert("a@d", "pw", "$h1", now);
        c.invalidate("a@d");
        assert!(!c.hit("a@d", "pw", "$h1", now));
    }

    #[test]
    fn zero_ttl_disables() {
        let c = CredentialCache::new(Duration::ZERO);
        let now = Instant::now();
        c.insert("a@d", "pw", "$h", now);
        assert!(!c.hit("a@d", "pw", "$h", now));
    }

    #[test]
    fn bounded() {
        let mut c = CredentialCache::new(Duration::from_secs(60));
        c.cap = 50;
        let now = Instant::now();
        for i in 0..500u64 {
            c.insert(&format!("u{i}"), "pw", "$h", now + Duration::from_millis(i));
        }
        assert!(c.len() <= 50);
        assert!(c.hit("u499", "pw", "$h", now + Duration::from_millis(500)));
    }

    #[test]
    fn the_password_is_not_stored() {
        let c = CredentialCache::new(Duration::from_secs(60));
        c.insert("a@d", "hunter2-secret", "$h", Instant::now());
        let map = c.lock();
        let e = map.get("a@d").unwrap();
        assert!(!e.digest.windows(6).any(|w| w == b"hunter"));
    }
}
