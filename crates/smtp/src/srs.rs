//! The Sender Rewriting Scheme for mail Wharf forwards (Sieve `redirect`): the forwarded copy's
//! envelope sender becomes an address of ours, so the next hop's SPF check sees our domain, and
//! a bounce to that address is turned back into the original sender.
//!
//! Form: `SRS0=<hash>=<day>=<domain>=<local>@<our domain>`. `<day>` is the day number modulo
//! 1024 in two base-32 digits; `<hash>` is an HMAC-SHA256 over day, domain and local part
//! (lower-cased: relays may change the case of local parts), eight base-32 digits. Addresses
//! older than `MAX_AGE_DAYS` or with a wrong hash are refused, so the scheme is not an open
//! relay for bounces. Only SRS0 is made; an address already SRS0 is wrapped like any other.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a rewritten address accepts bounces.
pub const MAX_AGE_DAYS: u32 = 21;

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

#[derive(Clone)]
pub struct Srs {
    key: Vec<u8>,
}

impl std::fmt::Debug for Srs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Srs { key: <secret> }")
    }
}

impl Srs {
    pub fn new(key: &[u8]) -> Srs {
        Srs { key: key.to_vec() }
    }

    /// `sender` rewritten under `our_domain` on day `day` (days since the Unix epoch). The null
    /// sender and addresses without a domain stay as they are.
    pub fn forward(&self, sender: &str, our_domain: &str, day: u64) -> String {
        let Some((local, domain)) = sender.rsplit_once('@') else {
            return sender.to_string();
        };
        if local.is_empty() || domain.is_empty() || our_domain.is_empty() {
            return sender.to_string();
        }
        let stamp = day_stamp(day);
        let hash = self.hash(&stamp, domain, local);
        format!("SRS0={hash}={stamp}={domain}={local}@{our_domain}")
    }

    /// The original sender behind a rewritten `address`, if it is one of ours and still valid
    /// on `today`; `None` for anything else.
    pub fn reverse(&self, address: &str, today: u64) -> Option<String> {
        let (local, _ours) = address.rsplit_once('@')?;
        let rest = local
            .get(..5)
            .filter(|p| p.eq_ignore_ascii_case("SRS0="))
            .and_then(|_| local.get(5..))?;
        let mut parts = rest.splitn(4, '=');
        let hash = parts.next()?;
        let stamp = parts.next()?;
        let domain = parts.next()?;
        let orig_local = parts.next()?;
        if domain.is_empty() || orig_local.is_empty() {
            return None;
        }
        let day = stamp_day(stamp)?;
        let age = (today % 1024 + 1024 - day) % 1024;
        if age > u64::from(MAX_AGE_DAYS) {
            return None;
        }
        let want = self.hash(&stamp.to_ascii_lowercase(), domain, orig_local);
        if !constant_time_eq(want.as_bytes(), hash.to_ascii_lowercase().as_bytes()) {
            return None;
        }
        Some(format!("{orig_local}@{domain}"))
    }

    fn hash(&self, stamp: &str, domain: &str, local: &str) -> String {
        // new_from_slice accepts any key length for HMAC; the fallback cannot happen.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return String::new();
        };
        mac.update(stamp.as_bytes());
        mac.update(b"\0");
        mac.update(domain.to_ascii_lowercase().as_bytes());
        mac.update(b"\0");
        mac.update(local.to_ascii_lowercase().as_bytes());
        let out = mac.finalize().into_bytes();
        // 8 digits of 5 bits = 40 bits of the MAC.
        let mut bits: u64 = 0;
        for b in out.iter().take(5) {
            bits = bits << 8 | u64::from(*b);
        }
        (0..8)
            .rev()
            .map(|i| char::from(ALPHABET[((bits >> (i * 5)) & 31) as usize]))
            .collect()
    }
}

fn day_stamp(day: u64) -> String {
    let d = day % 1024;
    [d >> 5, d & 31]
        .iter()
        .map(|v| char::from(ALPHABET[*v as usize]))
        .collect()
}

fn stamp_day(stamp: &str) -> Option<u64> {
    let b = stamp.as_bytes();
    if b.len() != 2 {
        return None;
    }
    let digit = |c: u8| {
        ALPHABET
            .iter()
            .position(|a| *a == c.to_ascii_lowercase())
            .map(|p| p as u64)
    };
    Some(digit(b[0])? << 5 | digit(b[1])?)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let srs = Srs::new(b"k1");
        let day = 20_000;
        let a = srs.forward("Alice.B@Example.org", "fwd.test", day);
        assert!(a.starts_with("SRS0="), "{a}");
        assert!(a.ends_with("=Example.org=Alice.B@fwd.test"), "{a}");
        assert_eq!(srs.reverse(&a, day).as_deref(), Some("Alice.B@Example.org"));
        // Relays may change case.
        assert_eq!(
            srs.reverse(&a.to_ascii_uppercase(), day).as_deref(),
            Some("ALICE.B@EXAMPLE.ORG")
        );
        assert_eq!(
            srs.reverse(&a, day + 21).as_deref(),
            Some("Alice.B@Example.org")
        );
        assert_eq!(srs.reverse(&a, day + 22), None, "too old");
        assert_eq!(Srs::new(b"k2").reverse(&a, day), None, "other key");
        let forged = a.replace("Alice.B", "mallory");
        assert_eq!(srs.reverse(&forged, day), None);
        assert_eq!(srs.reverse("alice@fwd.test", day), None);
        assert_eq!(srs.reverse("SRS0=x@fwd.test", day), None);
        assert_eq!(srs.forward("", "fwd.test", day), "");
        // Day numbers wrap at 1024 without breaking the age check.
        let w = srs.forward("a@b.test", "fwd.test", 1023);
        assert_eq!(srs.reverse(&w, 1024 + 3).as_deref(), Some("a@b.test"));
    }
}
