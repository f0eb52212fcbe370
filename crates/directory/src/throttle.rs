//! Authentication failure throttling per client IP and per account name: an exponential delay
//! on each failure, then a temporary refusal after too many failures within the window. Sans-io:
//! every method takes `now`, the caller sleeps. Tables are bounded; old entries are evicted.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::DirectoryConfig;

/// Most entries per table; past it, stale entries go first, then the least recently failed.
const MAX_ENTRIES: usize = 65_536;

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

    #[cfg(test)]
    fn failures(&self, key: &K) -> u32 {
        self.map.get(key).map_or(0, |e| e.failures)
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

    fn reset(&mut self, key: &K) {
        self.map.remove(key);
    }

    fn evict(&mut self, now: Instant, window: Duration) {
        self.map.retain(|_, e| match e.locked_until {
            Some(until) => until > now,
            None => now.saturating_duration_since(e.window_start) <= window,
        });
        if self.map.len() >= self.cap {
            // Still full of live entries (an attack from many sources): drop the oldest quarter
            // at once so the cost of this scan is shared by many insertions.
            let mut lasts: Vec<Instant> = self.map.values().map(|e| e.last).collect();
            lasts.sort_unstable();
            let cut = lasts[lasts.len() / 4];
            self.map.retain(|_, e| e.last > cut);
        }
    }
}

/// The throttle of one `Directory`.
pub(crate) struct Throttle {
    base: Duration,
    max: Duration,
    window: Duration,
    ip_lock_after: u32,
    account_lock_after: u32,
    ips: Mutex<Table<IpAddr>>,
    accounts: Mutex<Table<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a table inconsistent in a way that matters here.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Throttle {
    pub(crate) fn new(cfg: &DirectoryConfig) -> Throttle {
        Throttle::with_capacity(cfg, MAX_ENTRIES)
    }

    fn with_capacity(cfg: &DirectoryConfig, cap: usize) -> Throttle {
        Throttle {
            base: cfg.auth_fail_delay_base,
            max: cfg.auth_fail_max_delay,
            window: cfg.auth_lockout,
            ip_lock_after: cfg.auth_ip_lockout_after,
            account_lock_after: cfg.auth_account_lockout_after,
            ips: Mutex::new(Table::new(cap)),
            accounts: Mutex::new(Table::new(cap)),
        }
    }

    /// `Err(retry_after)` while the IP or the account is refused.
    pub(crate) fn check(&self, ip: IpAddr, account: &str, now: Instant) -> Result<(), Duration> {
        let ip_left = lock(&self.ips).locked(&ip, now);
        let account_left = lock(&self.accounts).locked(&account.to_string(), now);
        match ip_left.max(account_left) {
            Some(left) => Err(left),
            None => Ok(()),
        }
    }

    /// Records a failure; returns the delay to impose before answering it.
    pub(crate) fn failure(&self, ip: IpAddr, account: &str, now: Instant) -> Duration {
        let by_ip = lock(&self.ips).fail(&ip, now, self.window, self.ip_lock_after);
        let by_account = lock(&self.accounts).fail(
            &account.to_string(),
            now,
            self.window,
            self.account_lock_after,
        );
        let n = by_ip.max(by_account);
        if (self.ip_lock_after > 0 && by_ip == self.ip_lock_after)
            || (self.account_lock_after > 0 && by_account == self.account_lock_after)
        {
            tracing::warn!(%ip, account, by_ip, by_account, lockout_secs = self.window.as_secs(), "authentication locked out");
        }
        self.delay(n)
    }

    /// A success forgets the account's failures (the IP's stay: one good login must not whitewash
    /// a guessing run from the same address against other accounts).
    pub(crate) fn success(&self, account: &str) {
        lock(&self.accounts).reset(&account.to_string());
    }

    fn delay(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let shift = (failures - 1).min(31);
        self.base.saturating_mul(1u32 << shift).min(self.max)
    }

    #[cfg(test)]
    fn failures(&self, ip: IpAddr, account: &str) -> (u32, u32) {
        (
            lock(&self.ips).failures(&ip),
            lock(&self.accounts).failures(&account.to_string()),
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
            ..DirectoryConfig::default()
        }
    }

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const IP2: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

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
        assert!(t.check(IP, "a@d", now).is_ok(), "lockout disabled by 0");
    }

    #[test]
    fn account_lockout_then_recovery() {
        let t = Throttle::new(&cfg());
        let now = Instant::now();
        for i in 0..4 {
            assert!(t.check(IP, "a@d", now).is_ok(), "attempt {i}");
            t.failure(IP, "a@d", now);
        }
        let left = t
            .check(IP, "a@d", now + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(left, Duration::from_secs(50));
        // Another account from the same IP is not locked (IP threshold is 6).
        assert!(t.check(IP, "b@d", now).is_ok());
        // After the lockout the account may try again, with a fresh counter.
        assert!(t.check(IP2, "a@d", now + Duration::from_secs(61)).is_ok());
        assert_eq!(t.failures(IP2, "a@d").1, 0);
    }

    #[test]
    fn ip_lockout_covers_every_account() {
        let t = Throttle::new(&cfg());
        let now = Instant::now();
        for i in 0..6 {
            t.failure(IP, &format!("user{i}@d"), now);
        }
        assert!(t.check(IP, "fresh@d", now).is_err());
        assert!(t.check(IP2, "fresh@d", now).is_ok());
    }

    #[test]
    fn success_resets_the_account_counter() {
        let t = Throttle::new(&cfg());
        let now = Instant::now();
        for _ in 0..3 {
            t.failure(IP, "a@d", now);
        }
        t.success("a@d");
        assert_eq!(t.failures(IP, "a@d"), (3, 0));
        // The next failure starts the account's delays from the IP's count, not from zero...
        assert_eq!(t.failure(IP2, "a@d", now), Duration::from_millis(100));
        // ...and the account is not locked by the old failures.
        t.failure(IP2, "a@d", now);
        assert!(t.check(IP2, "a@d", now).is_ok());
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
        let t = Throttle::with_capacity(&cfg(), 100);
        let now = Instant::now();
        for i in 0..1000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            t.failure(
                ip,
                &format!("u{i}@d"),
                now + Duration::from_millis(i as u64),
            );
        }
        assert!(lock(&t.ips).map.len() <= 100);
        assert!(lock(&t.accounts).map.len() <= 100);
        // The most recent entry survived eviction.
        assert_eq!(
            t.failures(
                IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + 999)),
                "u999@d"
            ),
            (1, 1)
        );
    }
}
