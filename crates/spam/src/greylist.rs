//! Greylisting as a pure decision: a triplet (client network — IPv4 /24 or IPv6 /64 —, envelope
//! sender, recipient) seen for the first time is deferred; a retry after the delay and within the
//! retry window passes and auto-allows the triplet for some days (each later pass renews it). The
//! caller keeps one [`Entry`] per [`Triplet::key`] and stores what [`decide`] returns.

use std::net::IpAddr;

use serde::Deserialize;

/// Greylisting timings (seconds / days).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GreylistConfig {
    /// A retry earlier than this after the first attempt is deferred again.
    pub delay_secs: u64,
    /// A retry later than this after the first attempt starts over.
    pub window_secs: u64,
    /// A triplet that passed is allowed without delay for this many days since its last pass.
    pub allow_days: u64,
}

impl Default for GreylistConfig {
    fn default() -> Self {
        GreylistConfig {
            delay_secs: 300,
            window_secs: 24 * 3600,
            allow_days: 30,
        }
    }
}

/// The identity of a delivery attempt for greylisting.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Triplet {
    /// `192.0.2.0/24` or `2001:db8:1:2::/64`.
    pub network: String,
    /// Lowercased envelope sender (`""` for bounces).
    pub sender: String,
    /// Lowercased recipient.
    pub recipient: String,
}

impl Triplet {
    pub fn new(client_ip: IpAddr, sender: &str, recipient: &str) -> Triplet {
        let network = match client_ip {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                format!("{a}.{b}.{c}.0/24")
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        };
        Triplet {
            network,
            sender: sender.to_ascii_lowercase(),
            recipient: recipient.to_ascii_lowercase(),
        }
    }

    /// The storage key: `network|sender|recipient`.
    pub fn key(&self) -> String {
        format!("{}|{}|{}", self.network, self.sender, self.recipient)
    }
}

/// What the store keeps per triplet (unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub first_seen: u64,
    /// Set once the triplet passed: allowed without delay until then.
    pub allowed_until: Option<u64>,
}

/// Whether to accept now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Accept.
    Pass,
    /// Answer 451 4.7.1; the sender may retry after this many seconds.
    Defer { retry_after_secs: u64 },
}

/// The decision and the entry to store for the triplet (`None`: leave the stored one as is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub decision: Decision,
    pub store: Option<Entry>,
}

/// Decides for a triplet whose stored entry is `entry`, at time `now` (unix seconds).
pub fn decide(entry: Option<Entry>, now: u64, cfg: &GreylistConfig) -> Outcome {
    let allow_until = now.saturating_add(cfg.allow_days.saturating_mul(86_400));
    let pass = Outcome {
        decision: Decision::Pass,
        store: Some(Entry {
            first_seen: entry.map_or(now, |e| e.first_seen),
            allowed_until: Some(allow_until),
        }),
    };
    let start_over = Outcome {
        decision: Decision::Defer {
            retry_after_secs: cfg.delay_secs,
        },
        store: Some(Entry {
            first_seen: now,
            allowed_until: None,
        }),
    };
    let Some(e) = entry else {
        return start_over;
    };
    if e.allowed_until.is_some_and(|until| now <= until) {
        return pass;
    }
    if e.allowed_until.is_some() {
        return start_over; // the allowance lapsed
    }
    let ready_at = e.first_seen.saturating_add(cfg.delay_secs);
    if now < ready_at {
        return Outcome {
            decision: Decision::Defer {
                retry_after_secs: ready_at - now,
            },
            store: None,
        };
    }
    if now <= e.first_seen.saturating_add(cfg.window_secs) {
        return pass;
    }
    start_over
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triplet_networks() {
        let t = Triplet::new(
            "192.0.2.77".parse().unwrap(),
            "A@Example.com",
            "Bob@Example.org",
        );
        assert_eq!(t.key(), "192.0.2.0/24|a@example.com|bob@example.org");
        let t = Triplet::new("2001:db8:1:2:3:4:5:6".parse().unwrap(), "", "b@x");
        assert_eq!(t.network, "2001:db8:1:2::/64");
    }

    #[test]
    fn lifecycle() {
        let cfg = GreylistConfig::default();
        let t0 = 1_000_000;
        let first = decide(None, t0, &cfg);
        assert_eq!(
            first.decision,
            Decision::Defer {
                retry_after_secs: 300
            }
        );
        let e = first.store.unwrap();
        // Too early: still deferred, nothing to store.
        let early = decide(Some(e), t0 + 60, &cfg);
        assert_eq!(
            early.decision,
            Decision::Defer {
                retry_after_secs: 240
            }
        );
        assert_eq!(early.store, None);
        // In the window: pass and allow.
        let ok = decide(Some(e), t0 + 600, &cfg);
        assert_eq!(ok.decision, Decision::Pass);
        let allowed = ok.store.unwrap();
        assert_eq!(allowed.allowed_until, Some(t0 + 600 + 30 * 86_400));
        // Allowed later without delay, and renewed.
        let later = decide(Some(allowed), t0 + 10 * 86_400, &cfg);
        assert_eq!(later.decision, Decision::Pass);
        // Allowance lapsed: start over.
        let lapsed = decide(Some(allowed), t0 + 600 + 31 * 86_400, &cfg);
        assert!(matches!(lapsed.decision, Decision::Defer { .. }));
        // Retry after the window: start over.
        let late = decide(Some(e), t0 + 2 * 86_400, &cfg);
        assert!(matches!(late.decision, Decision::Defer { .. }));
        assert_eq!(late.store.unwrap().first_seen, t0 + 2 * 86_400);
    }
}
