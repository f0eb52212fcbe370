//! Per-source admission for SMTP sessions: concurrent sessions and new sessions per minute. A
//! source is what the listener's own per-IP limit counts (`wharf_net::source_key`): an IPv4
//! address, or an IPv6 /64, so a client cannot rotate through its /64 to get around it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Entry {
    active: usize,
    window_start: Option<Instant>,
    in_window: u32,
}

pub struct IpLimiter {
    max_active: usize,
    max_per_minute: u32,
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
        Arc::new(IpLimiter {
            max_active,
            max_per_minute,
            map: Mutex::new(HashMap::new()),
        })
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
}
