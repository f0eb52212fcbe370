//! Per-source admission for SMTP sessions: concurrent sessions and new sessions per minute. A
//! source is what the listener's own per-IP limit counts (`wharf_net::source_key`): an IPv4
//! address, or an IPv6 /64, so a client cannot rotate through its /64 to get around it.
//!
//! Per node, also behind a balancer: these limits protect the node's own capacity, which grows
//! with the nodes, and sharing them would write every connecting address to the database every
//! few seconds (docs/scale-out.md). The authentication throttle is what the nodes share.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most sources remembered; past it, idle sources whose minute is over go first, then the idle
/// ones whose minute started first. Sources with sessions open always stay (the listener bounds
/// those).
const MAX_SOURCES: usize = 65_536;

#[derive(Default)]
struct Entry {
    active: usize,
    window_start: Option<Instant>,
    in_window: u32,
}

pub struct IpLimiter {
    max_active: usize,
    max_per_minute: u32,
    cap: usize,
    map: Mutex<HashMap<IpAddr, Entry>>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    TooManyConnections,
    RateExceeded,
}

/// Held for the life of a session; releases the concurrency slot on drop.
pub struct Permit {
    limiter: Arc<IpLimiter>,
    ip: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Ok(mut map) = self.limiter.map.lock()
            && let Some(e) = map.get_mut(&self.ip)
        {
            e.active = e.active.saturating_sub(1);
            let idle_window = e
                .window_start
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(60));
            if e.active == 0 && idle_window {
                map.remove(&self.ip);
            }
        }
    }
}

impl IpLimiter {
    pub fn new(max_active: usize, max_per_minute: u32) -> Arc<IpLimiter> {
        IpLimiter::with_capacity(max_active, max_per_minute, MAX_SOURCES)
    }

    fn with_capacity(max_active: usize, max_per_minute: u32, cap: usize) -> Arc<IpLimiter> {
        Arc::new(IpLimiter {
            max_active,
            max_per_minute,
            cap,
            map: Mutex::new(HashMap::new()),
        })
    }

    /// Makes room for one more source. A source's entry outlives its sessions while its minute
    /// runs (the rate needs it), and nothing else removed it: one entry per address ever seen.
    fn evict(map: &mut HashMap<IpAddr, Entry>, cap: usize, now: Instant) {
        let minute_over = |e: &Entry| {
            e.window_start
                .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(60))
        };
        map.retain(|_, e| e.active > 0 || !minute_over(e));
        if map.len() < cap {
            return;
        }
        // Still full of sources seen this minute: forget the idle quarter that came first (they
        // may come back with a fresh count; an attack from that many sources is the listener's
        // global limit's to bound).
        let mut starts: Vec<Instant> = map
            .values()
            .filter(|e| e.active == 0)
            .filter_map(|e| e.window_start)
            .collect();
        if starts.is_empty() {
            return;
        }
        let i = starts.len() / 4;
        let (_, cut, _) = starts.select_nth_unstable(i);
        let cut = *cut;
        map.retain(|_, e| e.active > 0 || e.window_start.is_some_and(|t| t > cut));
    }

    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Refusal> {
        let ip = wharf_net::source_key(ip);
        let now = Instant::now();
        let Ok(mut map) = self.map.lock() else {
            // A poisoned lock only means another session panicked while counting; admit rather than lock everyone out.
            return Ok(Permit {
                limiter: Arc::clone(self),
                ip,
            });
        };
        if !map.contains_key(&ip) && map.len() >= self.cap {
            IpLimiter::evict(&mut map, self.cap, now);
        }
        let e = map.entry(ip).or_default();
        if self.max_active > 0 && e.active >= self.max_active {
            return Err(Refusal::TooManyConnections);
        }
        if self.max_per_minute > 0 {
            match e.window_start {
                Some(t) if now.duration_since(t) < Duration::from_secs(60) => {
                    if e.in_window >= self.max_per_minute {
                        return Err(Refusal::RateExceeded);
                    }
                    e.in_window += 1;
                }
                _ => {
                    e.window_start = Some(now);
                    e.in_window = 1;
                }
            }
        }
        e.active += 1;
        Ok(Permit {
            limiter: Arc::clone(self),
            ip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrency_and_rate() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let l = IpLimiter::new(2, 3);
        let a = l.admit(ip).unwrap();
        let _b = l.admit(ip).unwrap();
        assert_eq!(l.admit(ip).err(), Some(Refusal::TooManyConnections));
        drop(a);
        let _c = l.admit(ip).unwrap();
        assert_eq!(l.admit(ip).err(), Some(Refusal::TooManyConnections));
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(l.admit(other).is_ok());
        let l = IpLimiter::new(0, 2);
        let _x = l.admit(ip).unwrap();
        let _y = l.admit(ip).unwrap();
        assert_eq!(l.admit(ip).err(), Some(Refusal::RateExceeded));
    }

    #[test]
    fn an_ipv6_64_is_one_source() {
        let l = IpLimiter::new(2, 0);
        let _a = l.admit("2001:db8:1:2::1".parse().unwrap()).unwrap();
        let _b = l.admit("2001:db8:1:2:ffff::9".parse().unwrap()).unwrap();
        assert_eq!(
            l.admit("2001:db8:1:2:abcd::77".parse().unwrap()).err(),
            Some(Refusal::TooManyConnections),
            "another address of the same /64"
        );
        assert!(l.admit("2001:db8:1:3::1".parse().unwrap()).is_ok());
        // An IPv4 client on a dual-stack socket is the same source as on an IPv4 one.
        let _c = l.admit("192.0.2.9".parse().unwrap()).unwrap();
        let _d = l.admit("::ffff:192.0.2.9".parse().unwrap()).unwrap();
        assert_eq!(
            l.admit("192.0.2.9".parse().unwrap()).err(),
            Some(Refusal::TooManyConnections)
        );
    }

    #[test]
    fn sources_seen_once_do_not_pile_up() {
        let l = IpLimiter::with_capacity(1, 100, 100);
        let v4 = |i: u32| IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        let held = l.admit(v4(0)).unwrap();
        for i in 1..1000 {
            drop(l.admit(v4(i)).unwrap());
        }
        let len = l.map.lock().unwrap().len();
        assert!(len <= 100, "{len} sources remembered");
        // A source with a session open keeps its entry, and so its concurrency limit.
        assert_eq!(l.admit(v4(0)).err(), Some(Refusal::TooManyConnections));
        drop(held);
        // The most recent sources kept their count.
        let l = IpLimiter::with_capacity(0, 1, 100);
        for i in 0..1000 {
            drop(l.admit(v4(i)).unwrap());
        }
        assert_eq!(l.admit(v4(999)).err(), Some(Refusal::RateExceeded));
    }
}
