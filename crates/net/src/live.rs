//! The server-wide [`Limits`] and default [`SessionGuards`] as one swappable value: a
//! configuration reload replaces them while the listeners keep accepting, and every connection
//! accepted afterwards is admitted and guarded under the new values.
//!
//! A connection reads the values once, when it is accepted, and keeps that copy for its whole
//! life: a reload never cuts or re-times a session already running. What that means per limit:
//! - `max_connections`, `max_per_ip`: checked when a connection arrives, counting every session
//!   running then; lowering them closes nothing, it only refuses new connections until the
//!   count is under the new limit.
//! - `idle_timeout`, `tls_handshake_timeout`: the starting values of new connections (a
//!   protocol handler usually sets its own idle timeout right away).
//! - the session guards (`pre_auth_timeout`, minimum bulk rate, shedding): fixed per session
//!   when it starts; the shedding threshold uses the `max_connections` of the newest arrival.

use std::sync::{Arc, RwLock};

use crate::{Limits, SessionGuards};

/// A value a configuration reload replaces while others keep reading it: a reader takes the
/// current `Arc` under a short read lock (never held across an await) and keeps using that one;
/// a replacement is one assignment, so a lock poisoned by a panic still holds a whole value.
#[derive(Debug, Default)]
pub struct Swappable<T: ?Sized>(RwLock<Arc<T>>);

impl<T: ?Sized> Swappable<T> {
    pub fn new(value: Arc<T>) -> Swappable<T> {
        Swappable(RwLock::new(value))
    }

    /// The value now.
    pub fn get(&self) -> Arc<T> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the value for every later `get`.
    pub fn set(&self, value: Arc<T>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = value;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Values {
    limits: Limits,
    guards: SessionGuards,
}

/// A cheap, cloneable handle on the values new connections get (see the module doc). Reads
/// copy a few dozen bytes under a read lock that is never held across an await.
#[derive(Debug, Clone)]
pub struct LiveLimits {
    inner: Arc<Swappable<Values>>,
}

impl LiveLimits {
    pub fn new(limits: Limits, guards: SessionGuards) -> LiveLimits {
        LiveLimits {
            inner: Arc::new(Swappable::new(Arc::new(Values { limits, guards }))),
        }
    }

    fn get(&self) -> Values {
        *self.inner.get()
    }

    pub fn limits(&self) -> Limits {
        self.get().limits
    }

    /// The guards of listeners bound without guards of their own.
    pub fn guards(&self) -> SessionGuards {
        self.get().guards
    }

    /// Both, read together (a reload swapping both at once is never seen half done).
    pub fn snapshot(&self) -> (Limits, SessionGuards) {
        let v = self.get();
        (v.limits, v.guards)
    }

    /// Replaces both for connections accepted from now on.
    pub fn set(&self, limits: Limits, guards: SessionGuards) {
        self.inner.set(Arc::new(Values { limits, guards }));
    }

    pub fn set_limits(&self, limits: Limits) {
        self.set(limits, self.guards());
    }

    pub fn set_guards(&self, guards: SessionGuards) {
        self.set(self.limits(), guards);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn clones_share_one_value_and_a_set_replaces_it_whole() {
        let live = LiveLimits::new(Limits::default(), SessionGuards::OFF);
        let reader = live.clone();
        assert_eq!(reader.limits(), Limits::default());
        let tighter = Limits {
            max_connections: 3,
            max_per_ip: 1,
            idle_timeout: Duration::from_secs(5),
            tls_handshake_timeout: Duration::from_secs(2),
        };
        live.set(tighter, SessionGuards::default());
        assert_eq!(reader.snapshot(), (tighter, SessionGuards::default()));
        live.set_limits(Limits::default());
        assert_eq!(
            reader.snapshot(),
            (Limits::default(), SessionGuards::default())
        );
        live.set_guards(SessionGuards::OFF);
        assert_eq!(reader.guards(), SessionGuards::OFF);
    }

    #[test]
    fn readers_on_other_threads_see_the_new_value() {
        let live = LiveLimits::new(Limits::default(), SessionGuards::OFF);
        let reader = live.clone();
        let changed = Limits {
            max_per_ip: 7,
            ..Limits::default()
        };
        std::thread::spawn(move || live.set_limits(changed))
            .join()
            .unwrap();
        assert_eq!(reader.limits().max_per_ip, 7);
    }
}
