//! Authentication failure throttling, so that guessing is slow while the real user still gets in.
//!
//! - Per client source (an IPv4 address, or the /64 of an IPv6 address, which one host usually
//!   owns whole): an exponential delay on each failure, then a temporary refusal after too many
//!   failures within the window.
//! - Per account: failures from sources that have not logged in to it recently are counted, but
//!   they never refuse anyone. Past the threshold the account is "under attack": a warning and
//!   the metric `wharf_auth_account_under_attack_total`, and every attempt from an unknown source
//!   waits (an increasing, capped delay) before its password is checked. A source that logged in
//!   to the account within `auth_known_source_ttl` is known to it and never slowed by the
//!   account's count, so 20 wrong passwords from strangers cannot lock the owner out.
//!
//! Sans-io: every method takes `now`, the caller sleeps. Every table is bounded and evicts stale
//! entries first. The state is in memory, per process: DESIGN §5 wants throttling counters in the
//! database eventually, and the store has no table for them yet (a restart forgets them).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::DirectoryConfig;

/// Most entries per failure table; past it, stale entries go first, then the least recently failed.
const MAX_ENTRIES: usize = 65_536;
/// Most remembered (account, source) logins; past it, expired ones go first, then the oldest.
const MAX_KNOWN_SOURCES: usize = 65_536;

/// The throttling key of a client address: IPv4 (also IPv4-mapped IPv6) as is, IPv6 cut to its
/// /64, since one host or one customer line gets a whole /64 and could otherwise rotate through it.
pub(crate) fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u64::MAX as u128))),
        },
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    window_start: Instant,
    last: Instant,
    locked_until: Option<Instant>,
}

struct Table<K> {
    map: HashMap<K, Entry>,
    cap: usize,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new(cap: usize) -> Self {
        Table {
            map: HashMap::new(),
            cap,
        }
    }

    /// Refusal time left for `key`; an expired lockout is forgotten (the counter starts afresh).
    fn locked(&mut self, key: &K, now: Instant) -> Option<Duration> {
        let until = self.map.get(key)?.locked_until?;
        if until > now {
            Some(until - now)
        } else {
            self.map.remove(key);
            None
        }
    }

    /// Failures of `key` in its current window (0 once the window has passed).
    fn count(&self, key: &K, now: Instant, window: Duration) -> u32 {
        match self.map.get(key) {
            Some(e) if now.saturating_duration_since(e.window_start) <= window => e.failures,
            _ => 0,
        }
    }

    /// Counts one failure; returns the failure count in the current window.
    fn fail(&mut self, key: &K, now: Instant, window: Duration, lock_after: u32) -> u32 {
        if !self.map.contains_key(key) && self.map.len() >= self.cap {
            self.evict(now, window);
        }
        let e = self.map.entry(key.clone()).or_insert(Entry {
            failures: 0,
            window_start: now,
            last: now,
            locked_until: None,
        });
        if now.saturating_duration_since(e.window_start) > window {
            e.failures = 0;
            e.window_start = now;
        }
        e.failures = e.failures.saturating_add(1);
        e.last = now;
        if lock_after > 0 && e.failures >= lock_after && e.locked_until.is_none() {
            e.locked_until = Some(now + window);
        }
        e.failures
    }

    fn evict(&mut self, now: Instant, window: Duration) {
        self.map.retain(|_, e| match e.locked_until {
            Some(until) => until > now,
            None => now.saturating_duration_since(e.window_start) <= window,
        });
        if self.map.len() >= self.cap {
            // Still full of live entries (an attack from many sources): drop the oldest quarter
            // at once so the cost of this scan is shared by many insertions.
            let lasts: Vec<Instant> = self.map.values().map(|e| e.last).collect();
            let cut = quarter_mark(lasts);
            self.map.retain(|_, e| e.last > cut);
        }
    }
}

/// The instant below which the oldest quarter of `times` lies.
fn quarter_mark(mut times: Vec<Instant>) -> Instant {
    let i = times.len() / 4;
    let (_, mark, _) = times.select_nth_unstable(i);
    *mark
}

/// (account, source) pairs that logged in successfully, with the time of the last success.
/// Only a right password adds an entry, so strangers cannot fill it; it is bounded anyway.
struct KnownSources {
    map: HashMap<(String, IpAddr), Instant>,
    cap: usize,
    ttl: Duration,
}

impl KnownSources {
    fn contains(&self, account: &str, source: IpAddr, now: Instant) -> bool {
        self.map
            .get(&(account.to_string(), source))
            .is_some_and(|last| now.saturating_duration_since(*last) <= self.ttl)
    }

    fn remember(&mut self, account: &str, source: IpAddr, now: Instant) {
        let key = (account.to_string(), source);
        if !self.map.contains_key(&key) && self.map.len() >= self.cap {
            let ttl = self.ttl;
            self.map
                .retain(|_, last| now.saturating_duration_since(*last) <= ttl);
            if self.map.len() >= self.cap {
                let cut = quarter_mark(self.map.values().copied().collect());
                self.map.retain(|_, last| *last > cut);
            }
        }
        self.map.insert(key, now);
    }
}

/// Sizes of the throttle's tables (memory accounting, tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleStats {
    /// Client sources (IPv4 addresses, IPv6 /64s) with counted failures or a lockout.
    pub sources: usize,
    /// Account names with counted failures.
    pub accounts: usize,
    /// Remembered (account, source) logins.
    pub known_sources: usize,
}

/// The throttle of one `Directory`.
pub(crate) struct Throttle {
    base: Duration,
    max: Duration,
    window: Duration,
    ip_lock_after: u32,
    account_attack_after: u32,
    ips: Mutex<Table<IpAddr>>,
    accounts: Mutex<Table<String>>,
    known: Mutex<KnownSources>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a table inconsistent in a way that matters here.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Throttle {
    pub(crate) fn new(cfg: &DirectoryConfig) -> Throttle {
        Throttle::with_capacity(cfg, MAX_ENTRIES, MAX_KNOWN_SOURCES)
    }

    fn with_capacity(cfg: &DirectoryConfig, cap: usize, known_cap: usize) -> Throttle {
        Throttle {
            base: cfg.auth_fail_delay_base,
            max: cfg.auth_fail_max_delay,
            window: cfg.auth_lockout,
            ip_lock_after: cfg.auth_ip_lockout_after,
            account_attack_after: cfg.auth_account_lockout_after,
            ips: Mutex::new(Table::new(cap)),
            accounts: Mutex::new(Table::new(cap)),
            known: Mutex::new(KnownSources {
                map: HashMap::new(),
                cap: known_cap,
                ttl: cfg.auth_known_source_ttl,
            }),
        }
    }

    /// Before a password is checked: `Err(retry_after)` while the client's source is refused,
    /// else how long to wait first (non-zero only for a source unknown to an account under attack).
    pub(crate) fn check(
        &self,
        ip: IpAddr,
        account: &str,
        now: Instant,
    ) -> Result<Duration, Duration> {
        let source = source_key(ip);
        if let Some(left) = lock(&self.ips).locked(&source, now) {
            return Err(left);
        }
        if self.account_attack_after == 0 || lock(&self.known).contains(account, source, now) {
            return Ok(Duration::ZERO);
        }
        let by_account = lock(&self.accounts).count(&account.to_string(), now, self.window);
        if by_account >= self.account_attack_after {
            Ok(self.delay(by_account))
        } else {
            Ok(Duration::ZERO)
        }
    }

    /// Records a failure; returns the delay to impose before answering it.
    pub(crate) fn failure(&self, ip: IpAddr, account: &str, now: Instant) -> Duration {
        let source = source_key(ip);
        let by_ip = lock(&self.ips).fail(&source, now, self.window, self.ip_lock_after);
        if self.ip_lock_after > 0 && by_ip == self.ip_lock_after {
            tracing::warn!(%ip, %source, account, failures = by_ip, lockout_secs = self.window.as_secs(), "authentication source locked out");
        }
        // The owner mistyping from a known place is not an attack on the account.
        if lock(&self.known).contains(account, source, now) {
            return self.delay(by_ip);
        }
        let by_account = lock(&self.accounts).fail(&account.to_string(), now, self.window, 0);
        if self.account_attack_after > 0 && by_account == self.account_attack_after {
            metrics::counter!("wharf_auth_account_under_attack_total").increment(1);
            tracing::warn!(
                account,
                %ip,
                failures = by_account,
                window_secs = self.window.as_secs(),
                "account under attack: sources unknown to it are slowed down"
            );
        }
        self.delay(by_ip.max(by_account))
    }

    /// Remembers the source as known to the account. The account's failure count stays: the
    /// owner logging in says nothing about the strangers still guessing; the IP's count stays
    /// too, so one good login cannot whitewash a guessing run from the same address.
    pub(crate) fn success(&self, ip: IpAddr, account: &str, now: Instant) {
        lock(&self.known).remember(account, source_key(ip), now);
    }

    pub(crate) fn stats(&self) -> ThrottleStats {
        ThrottleStats {
            sources: lock(&self.ips).map.len(),
            accounts: lock(&self.accounts).map.len(),
            known_sources: lock(&self.known).map.len(),
        }
    }

    fn delay(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let shift = (failures - 1).min(31);
        self.base.saturating_mul(1u32 << shift).min(self.max)
    }

    #[cfg(test)]
    fn failures(&self, ip: IpAddr, account: &str, now: Instant) -> (u32, u32) {
        (
            lock(&self.ips).count(&source_key(ip), now, self.window),
            lock(&self.accounts).count(&account.to_string(), now, self.window),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> DirectoryConfig {
        DirectoryConfig {
            auth_fail_delay_base: Duration::from_millis(100),
            auth_fail_max_delay: Duration::from_millis(1000),
            auth_ip_lockout_after: 6,
            auth_account_lockout_after: 4,
            auth_lockout: Duration::from_secs(60),
            auth_known_source_ttl: Duration::from_secs(3600),
            ..DirectoryConfig::default()
        }
    }

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const IP2: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    fn v4(n: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n))
    }

    #[test]
    fn ipv6_sources_are_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(source_key(a), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        assert_eq!(source_key(a), source_key(b));
        assert_ne!(source_key(a), source_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(source_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
        assert_eq!(source_key(IP2), IP2);
    }

    #[test]
    fn a_64_shares_one_ip_counter() {
        let t = Throttle::new(&cfg());
        let now = Instant::now();
        for i in 0..6u128 {
            let ip = IpAddr::V6(Ipv6Addr::from(
                0x2001_0db8_0000_0007_0000_0000_0000_0000 + i,
            ));
            t.failure(ip, &format!("u{i}@d"), now);
        }
        let neighbour: IpAddr = "2001:db8:0:7::ffff".parse().unwrap();
        assert!(t.check(neighbour, "x@d", now).is_err());
        let next_64: IpAddr = "2001:db8:0:8::1".parse().unwrap();
        assert!(t.check(next_64, "x@d", now).is_ok());
    }

    #[test]
    fn delays_double_up_to_the_ceiling() {
        let t = Throttle::new(&DirectoryConfig {
            auth_ip_lockout_after: 0,
            auth_account_lockout_after: 0,
            ..cfg()
        });
        let now = Instant::now();
        let delays: Vec<u64> = (0..7)
            .map(|_| t.failure(IP, "a@d", now).as_millis() as u64)
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000, 1000]);
        assert_eq!(t.check(IP, "a@d", now), Ok(Duration::ZERO), "disabled by 0");
    }

    #[test]
    fn an_account_under_attack_slows_unknown_sources_and_refuses_nobody() {
        let t = Throttle::new(&cfg());
        let now = Instant::now();
        t.success(IP, "a@d", now);
        for i in 0..30 {
            assert!(t.check(v4(i), "a@d", now).is_ok());
            t.failure(v4(i), "a@d", now);
        }
        assert_eq!(t.failures(v4(0), "a@d", now), (1, 30));
        // The owner's known source: no wait at all.
        assert_eq!(t.check(IP, "a@d", now), Ok(Duration::ZERO));
        // A new source waits, at most the ceiling, and is never refused.
        assert_eq!(t.check(IP2, "a@d", now), Ok(Duration::from_millis(1000)));
        // Another account is not affected.
        assert_eq!(t.check(IP2, "b@d", now), Ok(Duration::ZERO));
        // A known source's own mistakes are delayed by its IP count only and do not feed the
        // account's count.
        assert_eq!(t.failure(IP, "a@d", now), Duration::from_millis(100));
        assert_eq!(t.failures(IP, "a@d", now), (1, 30));
        // Once the window passed without failures, new sources are no longer slowed.
        assert_eq!(
            t.check(IP2, "a@d", now + Duration::from_secs(61)),
            Ok(Duration::ZERO)
        );
    }

    #[test]
    fn known_sources_expire() {
        let t = Throttle::new(&cfg());
        let now = Instant::now();
        t.success(IP, "a@d", now);
        for i in 0..4 {
            t.failure(v4(i), "a@d", now + Duration::from_secs(3590));
        }
        assert_eq!(
            t.check(IP, "a@d", now + Duration::from_secs(3599)),
            Ok(Duration::ZERO)
        );
        // An hour (the ttl) after its last login the source is a stranger again.
        assert!(t.check(IP, "a@d", now + Duration::from_secs(3601)).unwrap() > Duration::ZERO);
        // The right password from an IPv6 address makes its whole /64 known.
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap();
        t.success(a, "a@d", now + Duration::from_secs(3590));
        assert_eq!(
            t.check(b, "a@d", now + Duration::from_secs(3600)),
            Ok(Duration::ZERO)
        );
    }

    #[test]
    fn ip_lockout_covers_every_account_even_known_ones() {
        let t = Throttle::new(&cfg());
        let now = Instant::now();
        t.success(IP, "fresh@d", now);
        for i in 0..6 {
            t.failure(IP, &format!("user{i}@d"), now);
        }
        assert!(t.check(IP, "fresh@d", now).is_err());
        assert!(t.check(IP2, "fresh@d", now).is_ok());
    }

    #[test]
    fn failures_outside_the_window_are_forgotten() {
        let t = Throttle::new(&cfg());
        let now = Instant::now();
        for i in 0..3 {
            t.failure(IP, "a@d", now + Duration::from_secs(i));
        }
        let later = now + Duration::from_secs(120);
        assert_eq!(t.failure(IP, "a@d", later), Duration::from_millis(100));
        assert!(t.check(IP, "a@d", later).is_ok());
    }

    #[test]
    fn memory_is_bounded() {
        let t = Throttle::with_capacity(&cfg(), 100, 50);
        let now = Instant::now();
        for i in 0..1000u32 {
            let at = now + Duration::from_millis(i as u64);
            t.failure(v4(i), &format!("u{i}@d"), at);
            t.success(v4(i), &format!("u{i}@d"), at);
        }
        let s = t.stats();
        assert!(s.sources <= 100 && s.accounts <= 100, "{s:?}");
        assert!(s.known_sources <= 50, "{s:?}");
        // The most recent entries survived eviction.
        let end = now + Duration::from_millis(999);
        assert_eq!(t.failures(v4(999), "u999@d", end), (1, 1));
        assert!(lock(&t.known).contains("u999@d", v4(999), end));
    }

    #[test]
    fn a_hundred_thousand_attacker_sources_stay_within_the_bound() {
        let t = Throttle::new(&cfg());
        let now = Instant::now();
        t.success(IP, "a@d", now);
        for i in 0..100_000u32 {
            t.failure(v4(i), "a@d", now + Duration::from_micros(i as u64));
        }
        let s = t.stats();
        assert!(s.sources <= MAX_ENTRIES, "{s:?}");
        assert_eq!(s.accounts, 1);
        assert_eq!(s.known_sources, 1);
        let end = now + Duration::from_millis(100);
        assert_eq!(t.check(IP, "a@d", end), Ok(Duration::ZERO));
    }
}
