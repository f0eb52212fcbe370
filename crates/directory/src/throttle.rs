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
//! entries first. The state is in memory, per process, so a login never waits for a database.
//!
//! Several nodes of one store throttle as one (DESIGN §5): each node `export`s its live failure
//! windows and `import_remote`s the sum of the other nodes' (the binary's sync task carries them
//! through the store's `auth_failures` table every few seconds). An imported figure is kept per
//! key beside the local count, replaced wholesale by the next import, and every decision uses
//! local + remote: a source is refused once the sum reaches `auth_ip_lockout_after` (an import
//! that brings it there locks the source at once), an account is under attack once its sum
//! reaches `auth_account_lockout_after`, and delays grow with the sum. Only real failures are
//! exported, never a lockout an import caused, so no node can keep another one's lockout alive.
//! Known sources stay per node.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use wharf_store::AuthFailureCount;

use crate::DirectoryConfig;

/// Most entries per failure table; past it, stale entries go first, then the least recently failed.
/// The imported figures of other nodes are bounded alike (per kind).
const MAX_ENTRIES: usize = 65_536;
/// Most counts one export carries, the highest counts first. Every report rewrites the node's
/// rows one statement each (about 0.1 ms a row on an idle loopback PostgreSQL, ten times that on
/// a loaded one), and a report must fit well within the sync period. Past it, the sources and
/// accounts with the fewest failures go unshared: each node still counts them itself.
pub const MAX_EXPORT: usize = 2_048;
/// `AuthFailureCount::kind` of a client source (the text of its `source_key`).
pub const KIND_IP: &str = "ip";
/// `AuthFailureCount::kind` of an account name (the normalised user name tried).
pub const KIND_ACCOUNT: &str = "account";
/// Longest account key exported (user names are at most 320 bytes).
const MAX_KEY: usize = 512;
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
    /// The window's count (with the other nodes') reached the threshold: alerted, and for a
    /// source locked. Reset with the window.
    crossed: bool,
}

/// What one counted failure did.
struct Failed {
    /// This node's failures of the key in the current window.
    failures: u32,
    /// This failure brought the count (with the other nodes') to the threshold, first in the window.
    crossed: bool,
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

    /// Counts one failure. `remote` is what the other nodes counted for `key`; when the sum
    /// first reaches `threshold` (0: never) in the window, `crossed` says so, and with `lock`
    /// the key is refused for `window` from now.
    fn fail(
        &mut self,
        key: &K,
        now: Instant,
        window: Duration,
        threshold: u32,
        remote: u32,
        lock: bool,
    ) -> Failed {
        if !self.map.contains_key(key) && self.map.len() >= self.cap {
            self.evict(now, window);
        }
        let e = self.map.entry(key.clone()).or_insert(Entry {
            failures: 0,
            window_start: now,
            last: now,
            locked_until: None,
            crossed: false,
        });
        if now.saturating_duration_since(e.window_start) > window {
            e.failures = 0;
            e.window_start = now;
            e.crossed = false;
        }
        e.failures = e.failures.saturating_add(1);
        e.last = now;
        let crossed = threshold > 0 && !e.crossed && e.failures.saturating_add(remote) >= threshold;
        if crossed {
            e.crossed = true;
            if lock && e.locked_until.is_none_or(|until| until <= now) {
                e.locked_until = Some(now + window);
            }
        }
        Failed {
            failures: e.failures,
            crossed,
        }
    }

    /// Refuses `key` for `window` from now, because of the other nodes' failures; false if it
    /// was refused already. The entry carries no failure of its own, so it is never exported.
    fn lock_now(&mut self, key: &K, now: Instant, window: Duration) -> bool {
        if let Some(e) = self.map.get_mut(key) {
            if e.locked_until.is_some_and(|until| until > now) {
                return false;
            }
            e.locked_until = Some(now + window);
            e.crossed = true;
            e.last = now;
            return true;
        }
        if self.map.len() >= self.cap {
            self.evict(now, window);
        }
        self.map.insert(
            key.clone(),
            Entry {
                failures: 0,
                window_start: now,
                last: now,
                locked_until: Some(now + window),
                crossed: true,
            },
        );
        true
    }

    /// The keys with failures in their current window: (key, failures, window start).
    fn live(&self, now: Instant, window: Duration) -> Vec<(K, u32, Instant)> {
        self.map
            .iter()
            .filter(|(_, e)| {
                e.failures > 0 && now.saturating_duration_since(e.window_start) <= window
            })
            .map(|(k, e)| (k.clone(), e.failures, e.window_start))
            .collect()
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

/// The other nodes' failures of one key, as last imported: their sum, and the earliest start of
/// their windows (the sum counts until that window is over, or the next import replaces it).
#[derive(Debug, Clone, Copy)]
struct Remote {
    failures: u32,
    window_start: Instant,
}

impl Remote {
    fn merge(&mut self, other: Remote) {
        self.failures = self.failures.saturating_add(other.failures);
        self.window_start = self.window_start.min(other.window_start);
    }
}

/// The last import: per kind at most the failure tables' bound.
#[derive(Default)]
struct RemoteCounts {
    ips: HashMap<IpAddr, Remote>,
    accounts: HashMap<String, Remote>,
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
    /// Sources and accounts with failures counted by other nodes, as last imported.
    pub remote: usize,
}

/// The throttle of one `Directory`.
pub(crate) struct Throttle {
    base: Duration,
    max: Duration,
    window: Duration,
    ip_lock_after: u32,
    account_attack_after: u32,
    /// Bound of each failure table, and of each kind of imported figures.
    cap: usize,
    ips: Mutex<Table<IpAddr>>,
    accounts: Mutex<Table<String>>,
    known: Mutex<KnownSources>,
    remote: Mutex<RemoteCounts>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a table inconsistent in a way that matters here.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Unix seconds of `at`, given that `now` is `unix_now`; rounded up (a window shared a moment
/// late counts a moment longer elsewhere, never shorter).
fn unix_of(at: Instant, now: Instant, unix_now: i64) -> i64 {
    let ago = i64::try_from(now.saturating_duration_since(at).as_secs()).unwrap_or(i64::MAX);
    unix_now.saturating_sub(ago)
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
            cap,
            ips: Mutex::new(Table::new(cap)),
            accounts: Mutex::new(Table::new(cap)),
            known: Mutex::new(KnownSources {
                map: HashMap::new(),
                cap: known_cap,
                ttl: cfg.auth_known_source_ttl,
            }),
            remote: Mutex::new(RemoteCounts::default()),
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
        let by_account = lock(&self.accounts)
            .count(&account.to_string(), now, self.window)
            .saturating_add(self.remote_account(account, now));
        if by_account >= self.account_attack_after {
            Ok(self.delay(by_account))
        } else {
            Ok(Duration::ZERO)
        }
    }

    /// Records a failure; returns the delay to impose before answering it.
    pub(crate) fn failure(&self, ip: IpAddr, account: &str, now: Instant) -> Duration {
        let source = source_key(ip);
        let elsewhere = self.remote_ip(&source, now);
        let f = lock(&self.ips).fail(
            &source,
            now,
            self.window,
            self.ip_lock_after,
            elsewhere,
            true,
        );
        let by_ip = f.failures.saturating_add(elsewhere);
        if f.crossed {
            tracing::warn!(%ip, %source, account, failures = by_ip, on_other_nodes = elsewhere, lockout_secs = self.window.as_secs(), "authentication source locked out");
        }
        // The owner mistyping from a known place is not an attack on the account.
        if lock(&self.known).contains(account, source, now) {
            return self.delay(by_ip);
        }
        let elsewhere = self.remote_account(account, now);
        let f = lock(&self.accounts).fail(
            &account.to_string(),
            now,
            self.window,
            self.account_attack_after,
            elsewhere,
            false,
        );
        let by_account = f.failures.saturating_add(elsewhere);
        if f.crossed {
            metrics::counter!("wharf_auth_account_under_attack_total").increment(1);
            tracing::warn!(
                account,
                %ip,
                failures = by_account,
                on_other_nodes = elsewhere,
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

    /// This node's failures in their current windows, for the other nodes: sources as the text
    /// of their `source_key`, accounts as their user key; at most `MAX_EXPORT`, the highest
    /// counts first; sorted by kind and key, so two exports compare equal when nothing changed.
    /// `unix_now` is the wall clock at `now`.
    pub(crate) fn export(&self, now: Instant, unix_now: i64) -> Vec<AuthFailureCount> {
        let ips = lock(&self.ips).live(now, self.window);
        let accounts = lock(&self.accounts).live(now, self.window);
        let count = |kind: &str, key: String, failures: u32, start: Instant| AuthFailureCount {
            kind: kind.to_string(),
            key,
            failures,
            window_start: unix_of(start, now, unix_now),
        };
        let mut out: Vec<AuthFailureCount> = ips
            .into_iter()
            .map(|(ip, n, start)| count(KIND_IP, ip.to_string(), n, start))
            .chain(
                accounts
                    .into_iter()
                    // PostgreSQL text cannot hold NUL; no account's key has one.
                    .filter(|(key, _, _)| key.len() <= MAX_KEY && !key.contains('\0'))
                    .map(|(key, n, start)| count(KIND_ACCOUNT, key, n, start)),
            )
            .collect();
        if out.len() > MAX_EXPORT {
            out.select_nth_unstable_by(MAX_EXPORT, |a, b| b.failures.cmp(&a.failures));
            out.truncate(MAX_EXPORT);
        }
        out.sort_unstable_by(|a, b| (&a.kind, &a.key).cmp(&(&b.kind, &b.key)));
        out
    }

    /// Takes the other nodes' counts (summed per key), replacing the previous import: a key
    /// missing here counts 0 for the other nodes from now on. Counts of unknown kinds, keys that
    /// do not parse and windows already over are ignored; at most the tables' bound is kept per
    /// kind. A source whose count with this node's reaches the lockout is refused from now on.
    /// `unix_now` is the wall clock at `now` (windows start in unix seconds).
    pub(crate) fn import_remote(&self, counts: &[AuthFailureCount], now: Instant, unix_now: i64) {
        let mut fresh = RemoteCounts::default();
        for c in counts {
            if c.failures == 0 {
                continue;
            }
            // A window "in the future" (another node's clock runs ahead) starts now.
            let age = Duration::from_secs(
                u64::try_from(unix_now.saturating_sub(c.window_start)).unwrap_or(0),
            );
            if age > self.window {
                continue;
            }
            let r = Remote {
                failures: c.failures,
                window_start: now.checked_sub(age).unwrap_or(now),
            };
            match c.kind.as_str() {
                KIND_IP => {
                    let Ok(ip) = c.key.parse::<IpAddr>() else {
                        continue;
                    };
                    let key = source_key(ip);
                    if let Some(have) = fresh.ips.get_mut(&key) {
                        have.merge(r);
                    } else if fresh.ips.len() < self.cap {
                        fresh.ips.insert(key, r);
                    }
                }
                KIND_ACCOUNT => {
                    if let Some(have) = fresh.accounts.get_mut(&c.key) {
                        have.merge(r);
                    } else if fresh.accounts.len() < self.cap {
                        fresh.accounts.insert(c.key.clone(), r);
                    }
                }
                _ => {}
            }
        }
        if self.ip_lock_after > 0 {
            let mut table = lock(&self.ips);
            for (source, r) in &fresh.ips {
                let here = table.count(source, now, self.window);
                let failures = here.saturating_add(r.failures);
                if failures >= self.ip_lock_after && table.lock_now(source, now, self.window) {
                    tracing::warn!(%source, failures, on_other_nodes = r.failures, lockout_secs = self.window.as_secs(), "authentication source locked out");
                }
            }
        }
        *lock(&self.remote) = fresh;
    }

    pub(crate) fn stats(&self) -> ThrottleStats {
        let remote = {
            let r = lock(&self.remote);
            r.ips.len() + r.accounts.len()
        };
        ThrottleStats {
            sources: lock(&self.ips).map.len(),
            accounts: lock(&self.accounts).map.len(),
            known_sources: lock(&self.known).map.len(),
            remote,
        }
    }

    /// The other nodes' failures of a source in their live window, as last imported.
    fn remote_ip(&self, source: &IpAddr, now: Instant) -> u32 {
        lock(&self.remote)
            .ips
            .get(source)
            .filter(|r| now.saturating_duration_since(r.window_start) <= self.window)
            .map_or(0, |r| r.failures)
    }

    /// The other nodes' failures of an account in their live window, as last imported.
    fn remote_account(&self, account: &str, now: Instant) -> u32 {
        lock(&self.remote)
            .accounts
            .get(account)
            .filter(|r| now.saturating_duration_since(r.window_start) <= self.window)
            .map_or(0, |r| r.failures)
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
    const UNIX: i64 = 1_800_000_000;

    fn count(kind: &str, key: &str, failures: u32, window_start: i64) -> AuthFailureCount {
        AuthFailureCount {
            kind: kind.to_string(),
            key: key.to_string(),
            failures,
            window_start,
        }
    }

    #[test]
    fn other_nodes_counts_lock_a_source_it_never_failed_here() {
        let t = Throttle::new(&cfg());
        let now = Instant::now();
        t.import_remote(&[count(KIND_IP, "127.0.0.1", 6, UNIX - 10)], now, UNIX);
        assert_eq!(t.check(IP, "a@d", now), Err(Duration::from_secs(60)));
        assert!(t.check(IP2, "a@d", now).is_ok());
        // An IPv6 count locks its /64, whichever address of it the other node wrote.
        t.import_remote(&[count(KIND_IP, "2001:db8:5::", 9, UNIX)], now, UNIX);
        assert!(
            t.check("2001:db8:5::77".parse().unwrap(), "a@d", now)
                .is_err()
        );
        // The lock outlives the import that caused it, like a local one.
        assert!(t.check(IP, "a@d", now + Duration::from_secs(59)).is_err());
        assert!(t.check(IP, "a@d", now + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn local_and_remote_failures_add_up() {
        let t = Throttle::new(&cfg());
        let now = Instant::now();
        t.import_remote(&[count(KIND_IP, "127.0.0.1", 3, UNIX - 5)], now, UNIX);
        assert!(t.check(IP, "a@d", now).is_ok(), "3 of 6");
        // Delays grow with the sum: the first failure here is the fourth of the source.
        assert_eq!(t.failure(IP, "a@d", now), Duration::from_millis(800));
        assert_eq!(t.failure(IP, "b@d", now), Duration::from_millis(1000));
        assert!(t.check(IP, "a@d", now).is_ok(), "5 of 6");
        t.failure(IP, "c@d", now);
        assert!(t.check(IP, "a@d", now).is_err(), "3 here + 3 elsewhere");
        assert_eq!(
            t.failures(IP, "x@d", now).0,
            3,
            "only local failures are local"
        );
    }

    #[test]
    fn other_nodes_counts_put_an_account_under_attack() {
        let t = Throttle::new(&cfg());
        let now = Instant::now();
        t.success(IP, "a@d", now);
        t.import_remote(&[count(KIND_ACCOUNT, "a@d", 4, UNIX)], now, UNIX);
        assert_eq!(t.check(IP2, "a@d", now), Ok(Duration::from_millis(800)));
        assert_eq!(t.check(IP, "a@d", now), Ok(Duration::ZERO), "known source");
        assert_eq!(t.check(IP2, "b@d", now), Ok(Duration::ZERO));
        // 2 here + 2 elsewhere reach the threshold of 4 as well.
        let t = Throttle::new(&cfg());
        t.import_remote(&[count(KIND_ACCOUNT, "a@d", 2, UNIX)], now, UNIX);
        t.failure(v4(1), "a@d", now);
        assert_eq!(t.check(IP2, "a@d", now), Ok(Duration::ZERO), "3 of 4");
        t.failure(v4(2), "a@d", now);
        assert_eq!(t.check(IP2, "a@d", now), Ok(Duration::from_millis(800)));
    }

    #[test]
    fn each_import_replaces_the_last_and_old_windows_do_not_count() {
        let t = Throttle::new(&cfg());
        let now = Instant::now();
        t.import_remote(&[count(KIND_IP, "127.0.0.2", 5, UNIX)], now, UNIX);
        t.import_remote(&[], now, UNIX);
        assert_eq!(t.failure(IP2, "a@d", now), Duration::from_millis(100));
        assert!(t.check(IP2, "a@d", now).is_ok());
        assert_eq!(t.stats().remote, 0);
        // A window that is over when it arrives is ignored.
        t.import_remote(&[count(KIND_IP, "127.0.0.1", 50, UNIX - 61)], now, UNIX);
        assert!(t.check(IP, "a@d", now).is_ok());
        // An imported window ends on time even before the next import.
        t.import_remote(&[count(KIND_ACCOUNT, "a@d", 5, UNIX - 30)], now, UNIX);
        assert!(t.check(IP, "a@d", now).unwrap() > Duration::ZERO);
        assert_eq!(
            t.check(IP, "a@d", now + Duration::from_secs(31)),
            Ok(Duration::ZERO)
        );
        // Unknown kinds, keys that are no address, a clock ahead: no harm.
        t.import_remote(
            &[
                count("smtp-conn", "127.0.0.1", 99, UNIX),
                count(KIND_IP, "not an address", 99, UNIX),
                count(KIND_IP, "127.0.0.3", 0, UNIX),
                count(KIND_IP, "127.0.0.4", 6, UNIX + 3600),
            ],
            now,
            UNIX,
        );
        assert!(t.check(IP, "x@d", now).is_ok());
        assert!(t.check("127.0.0.4".parse().unwrap(), "x@d", now).is_err());
        assert_eq!(t.stats().remote, 1);
    }

    #[test]
    fn export_carries_live_local_failures_only() {
        let t = Throttle::new(&cfg());
        let now = Instant::now();
        let v6: IpAddr = "2001:db8:1:2::99".parse().unwrap();
        t.failure(IP, "a@d", now);
        t.failure(IP, "a@d", now + Duration::from_secs(3));
        t.failure(v6, "b@d", now + Duration::from_secs(5));
        t.failure(IP2, "bad\0name", now + Duration::from_secs(5));
        // Locked because of another node: carried by no export (else the nodes would keep
        // each other's lockouts alive).
        t.import_remote(&[count(KIND_IP, "10.0.0.9", 6, UNIX)], now, UNIX);
        let at = now + Duration::from_secs(10);
        let got = t.export(at, UNIX + 10);
        assert_eq!(
            got,
            vec![
                count(KIND_ACCOUNT, "a@d", 2, UNIX),
                count(KIND_ACCOUNT, "b@d", 1, UNIX + 5),
                count(KIND_IP, "127.0.0.1", 2, UNIX),
                count(KIND_IP, "127.0.0.2", 1, UNIX + 5),
                count(KIND_IP, "2001:db8:1:2::", 1, UNIX + 5),
            ]
        );
        assert_eq!(t.export(at, UNIX + 10), got, "unchanged, equal");
        // Windows over are left out.
        let later = now + Duration::from_secs(62);
        let got = t.export(later, UNIX + 62);
        assert!(got.iter().all(|c| c.window_start == UNIX + 5), "{got:?}");
        assert_eq!(got.len(), 3);
        // What one node exports, another imports as the same key.
        let other = Throttle::new(&cfg());
        for _ in 0..3 {
            t.failure(v6, "b@d", now + Duration::from_secs(6));
        }
        other.import_remote(&t.export(at, UNIX + 10), at, UNIX + 10);
        assert_eq!(other.remote_ip(&source_key(v6), at), 4);
        assert!(
            other
                .check("2001:db8:1:2::1".parse().unwrap(), "z@d", at)
                .is_ok()
        );
        other.failure("2001:db8:1:2::1".parse().unwrap(), "z@d", at);
        other.failure("2001:db8:1:2::2".parse().unwrap(), "z@d", at);
        assert!(other.check(v6, "z@d", at).is_err(), "4 there + 2 here");
    }

    #[test]
    fn two_nodes_exchanging_counts_throttle_as_one() {
        let (a, b) = (Throttle::new(&cfg()), Throttle::new(&cfg()));
        let now = Instant::now();
        let sync = |at: Instant, unix: i64| {
            let (ea, eb) = (a.export(at, unix), b.export(at, unix));
            a.import_remote(&eb, at, unix);
            b.import_remote(&ea, at, unix);
        };
        // Round robin: each node sees every second failure.
        for i in 0..6u64 {
            let at = now + Duration::from_secs(i);
            let node = if i % 2 == 0 { &a } else { &b };
            assert!(node.check(IP, "a@d", at).is_ok(), "attempt {i}");
            node.failure(IP, "a@d", at);
            sync(at, UNIX + i as i64);
        }
        let at = now + Duration::from_secs(6);
        assert!(a.check(IP, "a@d", at).is_err());
        assert!(b.check(IP, "a@d", at).is_err());
        // The lockouts end, and no node keeps the other's alive.
        for s in 7..140u64 {
            sync(now + Duration::from_secs(s), UNIX + s as i64);
        }
        let end = now + Duration::from_secs(140);
        assert!(a.check(IP, "a@d", end).is_ok());
        assert!(b.check(IP, "a@d", end).is_ok());
    }

    #[test]
    fn exports_and_imports_are_bounded() {
        let t = Throttle::with_capacity(&cfg(), 100, 50);
        let now = Instant::now();
        let many: Vec<AuthFailureCount> = (0..1000u32)
            .flat_map(|i| {
                [
                    count(KIND_IP, &v4(i).to_string(), 6, UNIX),
                    count(KIND_ACCOUNT, &format!("u{i}@d"), 9, UNIX),
                ]
            })
            .collect();
        t.import_remote(&many, now, UNIX);
        let s = t.stats();
        assert!(s.remote <= 200, "{s:?}");
        assert!(s.sources <= 100, "locks made by the import: {s:?}");
        // An export keeps the highest counts when there are more than it carries.
        let t = Throttle::new(&DirectoryConfig {
            auth_ip_lockout_after: 0,
            auth_account_lockout_after: 0,
            ..cfg()
        });
        for i in 0..(MAX_EXPORT as u32 + 10) {
            t.failure(v4(i), "a@d", now);
        }
        t.failure(v4(7), "b@d", now);
        let got = t.export(now, UNIX);
        assert_eq!(got.len(), MAX_EXPORT);
        let top: Vec<&AuthFailureCount> = got.iter().filter(|c| c.failures > 1).collect();
        assert_eq!(top.len(), 2, "{top:?}");
        assert!(top.iter().any(|c| c.key == "a@d"));
        assert!(top.iter().any(|c| c.key == v4(7).to_string()));
    }
}
