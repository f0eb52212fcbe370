//! Defences against clients that hold connections without using them (slowloris): the
//! pre-authentication deadline, the minimum rate of bulk input, shedding the oldest
//! unauthenticated sessions when the server is nearly full, and the address key of the per-IP
//! connection limit.
//!
//! A session's [`Gate`] is shared by its [`crate::Conn`] (which enforces the deadline and the rate
//! on every read) and the server (which sheds it). Shedding marks the gate and wakes the
//! session's pending read, which fails with `TimedOut`; the protocol loop writes its goodbye as
//! for an idle timeout, and the server drops the session if it is still there after
//! [`GOODBYE_GRACE`].

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// How long a session that is cut (deadline, shedding) still gets to write its goodbye.
pub(crate) const GOODBYE_GRACE: Duration = Duration::from_secs(5);
/// Above this share of `max_connections` in use, each new connection sheds the oldest
/// unauthenticated session (on listeners whose guards allow it).
pub(crate) const SHED_ABOVE_PERCENT: usize = 90;
/// No pre-authentication deadline.
const NO_DEADLINE: u64 = u64::MAX;

/// The per-IP connection limit's key of a client address: an IPv4 address (also when it reaches
/// a dual-stack socket as IPv4-mapped IPv6) is its own /32; an IPv6 address counts as its /64,
/// since one host or one customer line holds a whole /64 and could otherwise rotate through it.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

/// Per-listener limits on clients that are slow on purpose. See [`crate::Conn::set_authenticated`]
/// and [`crate::Conn::begin_bulk_input`] for what the protocol loop must report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionGuards {
    /// Total time a connection may stay unauthenticated (time spent in bulk input does not
    /// count; the rate governs it). Past it, reads fail with `TimedOut`. Zero = no deadline.
    pub pre_auth_timeout: Duration,
    /// Least average rate of bulk input, in bytes per second, over each `bulk_rate_window`
    /// of time spent waiting for the client; a slower sender's read fails with `TimedOut` at
    /// the end of the window. 0 = no minimum.
    pub min_bulk_rate: u32,
    /// The window over which that rate is averaged (also the longest a stalled body lives).
    pub bulk_rate_window: Duration,
    /// When the server is above 90 % of `max_connections`, the oldest unauthenticated sessions
    /// of this listener may be closed to make room.
    pub shed_unauthenticated: bool,
}

impl SessionGuards {
    /// No guard at all: what a [`crate::Server`] applies until told otherwise, because a
    /// protocol handler that never calls `set_authenticated` would otherwise be cut.
    pub const OFF: SessionGuards = SessionGuards {
        pre_auth_timeout: Duration::ZERO,
        min_bulk_rate: 0,
        bulk_rate_window: Duration::from_secs(30),
        shed_unauthenticated: false,
    };
}

/// The recommended guards: 60 s to authenticate, at least 1 KiB/s averaged over 30 s of bulk
/// input, shedding on.
impl Default for SessionGuards {
    fn default() -> Self {
        SessionGuards {
            pre_auth_timeout: Duration::from_secs(60),
            min_bulk_rate: 1024,
            bulk_rate_window: Duration::from_secs(30),
            shed_unauthenticated: true,
        }
    }
}

/// Why a session was cut; the `reason` label of `wharf_connections_cut_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    PreAuthDeadline,
    TooSlow,
    Shed,
}

impl Cut {
    fn label(self) -> &'static str {
        match self {
            Cut::PreAuthDeadline => "pre_auth_deadline",
            Cut::TooSlow => "too_slow",
            Cut::Shed => "shed",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Cut::PreAuthDeadline => "pre-authentication deadline passed",
            Cut::TooSlow => "bulk transfer below the minimum rate",
            Cut::Shed => "closed to make room (server nearly full)",
        }
    }
}

/// One session's guard state, shared by its connection and the server.
pub(crate) struct Gate {
    id: u64,
    opened: Instant,
    listener: Arc<str>,
    authenticated: AtomicBool,
    evicted: AtomicBool,
    /// Logged and counted once.
    cut_reported: AtomicBool,
    /// Milliseconds after `opened` at which the pre-authentication deadline falls.
    deadline_ms: AtomicU64,
    /// Wakes the session's pending read (and the server's backstop) on eviction.
    wake: Notify,
    /// Where the session waits to be shed; `None` when its listener does not shed.
    registry: Option<Arc<Registry>>,
}

impl Gate {
    pub(crate) fn new(
        id: u64,
        listener: Arc<str>,
        pre_auth_timeout: Duration,
        registry: Option<Arc<Registry>>,
    ) -> Arc<Gate> {
        let deadline_ms = if pre_auth_timeout.is_zero() {
            NO_DEADLINE
        } else {
            u64::try_from(pre_auth_timeout.as_millis()).unwrap_or(NO_DEADLINE)
        };
        let gate = Arc::new(Gate {
            id,
            opened: Instant::now(),
            listener,
            authenticated: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            cut_reported: AtomicBool::new(false),
            deadline_ms: AtomicU64::new(deadline_ms),
            wake: Notify::new(),
            registry,
        });
        if let Some(r) = &gate.registry {
            r.insert(&gate);
        }
        gate
    }

    /// A gate that never cuts (connections outside a server).
    pub(crate) fn open_ended(id: u64, listener: Arc<str>) -> Arc<Gate> {
        Gate::new(id, listener, Duration::ZERO, None)
    }

    pub(crate) fn set_authenticated(&self) {
        if !self.authenticated.swap(true, Ordering::AcqRel)
            && let Some(r) = &self.registry
        {
            r.remove(self.id);
        }
    }

    pub(crate) fn is_authenticated(&self) -> bool {
        self.authenticated.load(Ordering::Acquire)
    }

    fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }

    /// The pre-authentication deadline, if one applies now.
    fn deadline(&self) -> Option<Instant> {
        if self.is_authenticated() {
            return None;
        }
        match self.deadline_ms.load(Ordering::Acquire) {
            NO_DEADLINE => None,
            ms => Some(self.opened + Duration::from_millis(ms)),
        }
    }

    /// Moves the deadline later by time the session spent in bulk input.
    pub(crate) fn postpone(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        let _ = self
            .deadline_ms
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |ms| {
                (ms != NO_DEADLINE).then(|| ms.saturating_add(by).min(NO_DEADLINE - 1))
            });
    }

    fn evict(&self) {
        self.evicted.store(true, Ordering::Release);
        self.wake.notify_waiters();
    }

    /// The error a cut read returns, logged and counted the first time.
    pub(crate) fn cut(&self, why: Cut) -> io::Error {
        if !self.cut_reported.swap(true, Ordering::AcqRel) {
            tracing::info!(
                reason = why.label(),
                unauthenticated_ms = self.opened.elapsed().as_millis() as u64,
                "connection cut: {}",
                why.message()
            );
            metrics::counter!(
                "wharf_connections_cut_total",
                "listener" => Arc::clone(&self.listener),
                "reason" => why.label()
            )
            .increment(1);
        }
        io::Error::new(io::ErrorKind::TimedOut, why.message())
    }

    /// Until when a read may wait, by the guards (`None` = only the idle timeout), or the cut.
    pub(crate) fn read_until(
        &self,
        bulk: Option<&mut BulkMeter>,
        now: Instant,
    ) -> Result<Option<Instant>, Cut> {
        if self.is_evicted() {
            return Err(Cut::Shed);
        }
        if let Some(meter) = bulk {
            return Ok(meter.wait_until(now));
        }
        match self.deadline() {
            Some(d) if now >= d => Err(Cut::PreAuthDeadline),
            d => Ok(d),
        }
    }

    /// Until when a write may wait, by the guards: a cut session only gets the goodbye grace.
    pub(crate) fn write_until(&self, in_bulk: bool, now: Instant) -> Option<Instant> {
        if self.is_evicted() {
            return Some(now + GOODBYE_GRACE);
        }
        if in_bulk {
            return None;
        }
        self.deadline().map(|d| d.max(now) + GOODBYE_GRACE)
    }

    /// A future that completes once the gate is evicted; the read paths race it.
    pub(crate) fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.wake.notified()
    }

    /// Completes [`GOODBYE_GRACE`] after the session was evicted: the server's backstop for a
    /// handler that does not end on its own.
    pub(crate) async fn evicted_and_graced(&self) {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_evicted() {
                break;
            }
            notified.await;
        }
        tokio::time::sleep(GOODBYE_GRACE).await;
    }
}

/// Unregisters a session from shedding when it ends.
impl Drop for Gate {
    fn drop(&mut self) {
        if let Some(r) = &self.registry {
            r.remove(self.id);
        }
    }
}

/// The unauthenticated sessions of the listeners that shed, oldest (lowest id) first.
#[derive(Default)]
pub(crate) struct Registry {
    // Weak: the registry must not keep a finished session's gate alive.
    sessions: Mutex<BTreeMap<u64, std::sync::Weak<Gate>>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, std::sync::Weak<Gate>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(&self, gate: &Arc<Gate>) {
        self.lock().insert(gate.id, Arc::downgrade(gate));
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Evicts the oldest unauthenticated session; false when there is none.
    pub(crate) fn shed_oldest(&self) -> bool {
        // Gates passed over are dropped only after the lock is released: the
        // last reference to one may be this, and dropping a gate locks the
        // registry.
        let mut passed_over = Vec::new();
        let victim = {
            let mut map = self.lock();
            loop {
                let Some((_, weak)) = map.pop_first() else {
                    break None;
                };
                match weak.upgrade() {
                    Some(gate) if !gate.is_authenticated() && !gate.is_evicted() => {
                        break Some(gate);
                    }
                    Some(gate) => passed_over.push(gate),
                    None => {}
                }
            }
        };
        drop(passed_over);
        let Some(victim) = victim else {
            return false;
        };
        tracing::info!(
            victim = victim.id,
            unauthenticated_ms = victim.opened.elapsed().as_millis() as u64,
            "shedding the oldest unauthenticated session: server nearly full"
        );
        victim.cut(Cut::Shed);
        victim.evict();
        true
    }

    /// Whether some session may be waiting to be shed (entries of sessions
    /// that just ended or authenticated may still count).
    pub(crate) fn has_candidates(&self) -> bool {
        !self.lock().is_empty()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The minimum rate of one bulk transfer. Only time spent waiting for the
/// client counts: each `window` of it must bring the rate's bytes, so a server
/// busy elsewhere (a slow disk) never makes a client look slow.
pub(crate) struct BulkMeter {
    started: Instant,
    /// Waiting time and bytes of the current window.
    waited: Duration,
    bytes: u64,
    window: Duration,
    /// Bytes each window must bring; 0 = no minimum.
    per_window: u64,
}

impl BulkMeter {
    pub(crate) fn new(guards: &SessionGuards, now: Instant) -> BulkMeter {
        let window = if guards.bulk_rate_window.is_zero() {
            Duration::from_secs(30)
        } else {
            guards.bulk_rate_window
        };
        let per_window = (u128::from(guards.min_bulk_rate) * window.as_millis() / 1000) as u64;
        BulkMeter {
            started: now,
            waited: Duration::ZERO,
            bytes: 0,
            window,
            per_window,
        }
    }

    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// How long a wait starting at `now` may last before the window is judged.
    fn wait_until(&self, now: Instant) -> Option<Instant> {
        (self.per_window > 0).then(|| now + self.window.saturating_sub(self.waited))
    }

    /// Adds a wait of `waited` that brought `n` bytes; judges the window once
    /// it is full of waiting.
    pub(crate) fn account(&mut self, waited: Duration, n: usize) -> Result<(), Cut> {
        if self.per_window == 0 {
            return Ok(());
        }
        self.waited += waited;
        self.bytes = self.bytes.saturating_add(n as u64);
        if self.waited >= self.window {
            if self.bytes < self.per_window {
                return Err(Cut::TooSlow);
            }
            self.waited = Duration::ZERO;
            self.bytes = 0;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_counts_as_its_64_and_ipv4_as_itself() {
        assert_eq!(source_key(ip("2001:db8:a:b:1:2:3:4")), ip("2001:db8:a:b::"));
        assert_eq!(
            source_key(ip("2001:db8:a:b::1")),
            source_key(ip("2001:db8:a:b:ffff:ffff:ffff:ffff"))
        );
        assert_ne!(
            source_key(ip("2001:db8:a:b::1")),
            source_key(ip("2001:db8:a:c::1"))
        );
        assert_eq!(source_key(ip("::1")), ip("::"));
        assert_eq!(source_key(ip("192.0.2.1")), ip("192.0.2.1"));
        assert_ne!(source_key(ip("192.0.2.1")), source_key(ip("192.0.2.2")));
        assert_eq!(source_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }

    #[tokio::test]
    async fn the_deadline_applies_until_authenticated_and_pauses_in_bulk() {
        let g = Gate::new(1, Arc::from("t"), Duration::from_secs(60), None);
        let t0 = g.opened;
        assert_eq!(
            g.read_until(None, t0),
            Ok(Some(t0 + Duration::from_secs(60)))
        );
        assert_eq!(
            g.read_until(None, t0 + Duration::from_secs(60)),
            Err(Cut::PreAuthDeadline)
        );
        g.postpone(Duration::from_secs(10));
        assert!(g.read_until(None, t0 + Duration::from_secs(65)).is_ok());
        assert_eq!(
            g.write_until(false, t0),
            Some(t0 + Duration::from_secs(70) + GOODBYE_GRACE)
        );
        g.set_authenticated();
        assert_eq!(g.read_until(None, t0 + Duration::from_secs(3600)), Ok(None));
        assert_eq!(g.write_until(false, t0), None);
    }

    #[tokio::test]
    async fn the_rate_is_judged_per_window_of_waiting() {
        let guards = SessionGuards {
            min_bulk_rate: 100,
            bulk_rate_window: Duration::from_secs(10),
            ..SessionGuards::OFF
        };
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut m = BulkMeter::new(&guards, t0);
        assert_eq!(m.wait_until(t0), Some(t0 + s(10)));
        assert_eq!(m.account(s(4), 500), Ok(()));
        // The server was busy for an hour: not waiting, so not counted.
        let later = t0 + s(3600);
        assert_eq!(m.wait_until(later), Some(later + s(6)));
        assert_eq!(
            m.account(s(6), 500),
            Ok(()),
            "1000 bytes in 10 s of waiting"
        );
        assert_eq!(m.account(s(9), 999), Ok(()));
        assert_eq!(m.account(s(1), 0), Err(Cut::TooSlow));
        let mut off = BulkMeter::new(&SessionGuards::OFF, t0);
        assert_eq!(off.wait_until(t0), None);
        assert_eq!(off.account(s(3600), 0), Ok(()));
    }

    #[tokio::test]
    async fn shedding_takes_the_oldest_unauthenticated_session() {
        let r = Arc::new(Registry::default());
        let gates: Vec<_> = (1..=4)
            .map(|id| Gate::new(id, Arc::from("t"), Duration::ZERO, Some(Arc::clone(&r))))
            .collect();
        gates[0].set_authenticated();
        assert_eq!(r.len(), 3);
        assert!(r.shed_oldest());
        assert!(gates[1].is_evicted() && !gates[0].is_evicted());
        let now = Instant::now();
        assert_eq!(gates[1].read_until(None, now), Err(Cut::Shed));
        assert_eq!(gates[1].write_until(false, now), Some(now + GOODBYE_GRACE));
        drop(gates);
        assert_eq!(r.len(), 0, "finished sessions leave the registry");
        assert!(!r.shed_oldest());
    }
}
