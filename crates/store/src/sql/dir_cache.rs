//! PostgreSQL: an in-process read cache of the directory rows every delivery and login looks up
//! (domains, accounts, aliases, active Sieve scripts, spam allow/block lists), so that these
//! lookups stop costing a round trip each (issue 19 item 5; docs/scale-out.md counts them).
//! SQLite needs none: its reads run in the process and cost microseconds.
//!
//! Freshness: migration 0024 puts statement triggers on those tables that `pg_notify` the
//! channel `wharf_directory` after any change, by any node, CLI, migration or manual SQL (for
//! `accounts`, only changes of the columns an `Account` carries: deliveries update
//! `used_bytes` and must not empty the cache). The notify listener (`notify.rs`) empties the
//! cache on each notification, and keeps it off (every lookup goes to the database) while its
//! connection is down, emptying it again once it is back. Changes made through this process
//! empty it at once too (`Shared::directory_changed`), so a write is seen by the next read here.
//!
//! A lookup racing a change cannot leave a stale entry behind: a value read from the database
//! is kept only if no invalidation happened since before it was read (`Ticket`). A notification
//! is sent after its transaction committed, so a read started after the invalidation sees the
//! change.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;

use super::Shared;
use crate::Result;
use crate::model::{Account, AccountId, Domain, SpamListEntry};

/// Most entries kept, over all kinds; past it the cache starts over. Bounds memory (an entry is
/// at most a few hundred bytes, so a few MiB) also when clients ask for endless unknown
/// addresses, whose answers (none) are cached like any other.
const MAX_ENTRIES: usize = 20_000;

/// The invalidation count a database read started under; see `DirCache::keep`.
#[derive(Clone, Copy)]
pub(crate) struct Ticket(u64);

#[derive(Default)]
pub(crate) struct Maps {
    domains: HashMap<String, Option<Domain>>,
    accounts_by_address: HashMap<String, Option<Account>>,
    accounts_by_id: HashMap<AccountId, Option<Account>>,
    aliases: HashMap<String, Vec<String>>,
    sieve: HashMap<AccountId, Option<(String, String)>>,
    spam_lists: HashMap<String, Vec<SpamListEntry>>,
    entries: usize,
}

struct State {
    /// False while the notification listener is not connected: nothing is served or kept.
    online: bool,
    /// Bumped by every invalidation.
    epoch: u64,
    maps: Maps,
}

pub(crate) struct DirCache {
    state: Mutex<State>,
}

/// Which map a lookup reads.
pub(crate) trait Kind<K, V> {
    fn map(maps: &mut Maps) -> &mut HashMap<K, V>;
}

macro_rules! kinds {
    ($($name:ident: $k:ty => $v:ty, $field:ident;)*) => {$(
        #[derive(Clone, Copy)]
        pub(crate) struct $name;
        impl Kind<$k, $v> for $name {
            fn map(maps: &mut Maps) -> &mut HashMap<$k, $v> {
                &mut maps.$field
            }
        }
    )*};
}

kinds! {
    Domains: String => Option<Domain>, domains;
    AccountsByAddress: String => Option<Account>, accounts_by_address;
    AccountsById: AccountId => Option<Account>, accounts_by_id;
    Aliases: String => Vec<String>, aliases;
    Sieve: AccountId => Option<(String, String)>, sieve;
    SpamLists: String => Vec<SpamListEntry>, spam_lists;
}

impl DirCache {
    /// A cache that serves nothing until the listener says it is connected (`set_online`).
    pub fn new() -> DirCache {
        DirCache {
            state: Mutex::new(State {
                online: false,
                epoch: 0,
                maps: Maps::default(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves only maps behind, never a torn invariant that
        // matters: recover them rather than propagate the poison.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached value, if any.
    pub fn get<K: Eq + Hash, V: Clone, M: Kind<K, V>>(&self, _: M, key: &K) -> Option<V> {
        let mut s = self.lock();
        if !s.online {
            return None;
        }
        M::map(&mut s.maps).get(key).cloned()
    }

    /// Taken before reading the database for a value to `keep`; None while the cache is off.
    pub fn ticket(&self) -> Option<Ticket> {
        let s = self.lock();
        s.online.then_some(Ticket(s.epoch))
    }

    /// Keeps a value read from the database, unless the cache was emptied since `ticket`.
    pub fn keep<K: Eq + Hash, V, M: Kind<K, V>>(&self, _: M, ticket: Ticket, key: K, value: V) {
        let mut s = self.lock();
        if !s.online || s.epoch != ticket.0 {
            return;
        }
        if s.maps.entries >= MAX_ENTRIES {
            s.maps = Maps::default();
        }
        if M::map(&mut s.maps).insert(key, value).is_none() {
            s.maps.entries += 1;
        }
    }

    /// Forgets everything (a directory row changed somewhere).
    pub fn invalidate(&self) {
        let mut s = self.lock();
        s.epoch += 1;
        s.maps = Maps::default();
    }

    /// Turns the cache on (listener connected, LISTEN issued) or off (connection lost:
    /// notifications may be missed from now on). Either way it starts empty.
    pub fn set_online(&self, online: bool) {
        let mut s = self.lock();
        s.online = online;
        s.epoch += 1;
        s.maps = Maps::default();
    }
}

impl Shared {
    /// `read`'s value, from the cache when it holds one (PostgreSQL), else from the database
    /// (and then kept).
    pub(crate) async fn cached<K: Eq + Hash, V: Clone, M: Kind<K, V> + Copy>(
        &self,
        kind: M,
        key: K,
        read: impl Future<Output = Result<V>>,
    ) -> Result<V> {
        let Some(cache) = &self.dir_cache else {
            return read.await;
        };
        if let Some(v) = cache.get(kind, &key) {
            return Ok(v);
        }
        let ticket = cache.ticket();
        let v = read.await?;
        if let Some(t) = ticket {
            cache.keep(kind, t, key, v.clone());
        }
        Ok(v)
    }

    /// The notification listener's state: connected (LISTEN issued), the cache serves and keeps
    /// values; not connected, changes may be missed, so it serves nothing. Either way it starts
    /// empty.
    pub(crate) fn directory_listener_connected(&self, connected: bool) {
        if let Some(cache) = &self.dir_cache {
            cache.set_online(connected);
        }
    }

    /// Called after this process changed a directory row: the next lookup reads the database.
    /// (Other processes learn of it through the triggers' notification.)
    pub(crate) fn directory_changed(&self) {
        if let Some(cache) = &self.dir_cache {
            cache.invalidate();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain(id: i64) -> Option<Domain> {
        Some(Domain {
            id,
            name: "d.test".into(),
        })
    }

    #[test]
    fn serves_nothing_while_offline() {
        let c = DirCache::new();
        assert!(c.ticket().is_none());
        c.set_online(true);
        let t = c.ticket().expect("online");
        c.keep(Domains, t, "d.test".into(), domain(1));
        assert_eq!(c.get(Domains, &"d.test".to_string()), Some(domain(1)));
        c.set_online(false);
        assert_eq!(c.get(Domains, &"d.test".to_string()), None);
        c.set_online(true);
        assert_eq!(
            c.get(Domains, &"d.test".to_string()),
            None,
            "back online, empty"
        );
    }

    #[test]
    fn a_read_older_than_an_invalidation_is_not_kept() {
        let c = DirCache::new();
        c.set_online(true);
        let before = c.ticket().expect("online");
        c.invalidate();
        c.keep(Domains, before, "d.test".into(), domain(1));
        assert_eq!(c.get(Domains, &"d.test".to_string()), None);
        let after = c.ticket().expect("online");
        c.keep(Domains, after, "d.test".into(), None);
        assert_eq!(
            c.get(Domains, &"d.test".to_string()),
            Some(None),
            "a miss is cached too"
        );
        c.invalidate();
        assert_eq!(c.get(Domains, &"d.test".to_string()), None);
    }

    #[test]
    fn bounded() {
        let c = DirCache::new();
        c.set_online(true);
        for i in 0..(MAX_ENTRIES as i64 * 3) {
            let t = c.ticket().expect("online");
            c.keep(AccountsById, t, i, None);
        }
        assert!(c.lock().maps.entries <= MAX_ENTRIES);
        assert!(c.lock().maps.accounts_by_id.len() <= MAX_ENTRIES);
    }
}
