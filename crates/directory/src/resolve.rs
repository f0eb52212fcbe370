//! Recipient resolution: from an RCPT address to the local accounts (and external forwarding
//! targets) it reaches, through accounts, aliases (one-to-one, lists, nested, loops cut),
//! plus-tags and catch-all `@domain`; and the submission check `may_send_as` built on the same walk.

use std::collections::{HashMap, HashSet};

use wharf_store::{Account, AccountId, StoreError};

use crate::Directory;
use crate::address::{Address, normalize_domain};

/// Deepest alias nesting followed; deeper targets are cut (and logged).
const MAX_DEPTH: usize = 8;
/// Most addresses one resolution visits, so a huge or hostile alias graph stays cheap.
const MAX_VISITS: usize = 1000;
/// Addresses every mail domain must have (RFC 5321 §4.5.1, RFC 2142 §2 and §4); without an
/// account or alias of their own they reach `DirectoryConfig::postmaster`.
const ROLE_ADDRESSES: [&str; 2] = ["postmaster", "abuse"];

/// Result of resolving an RCPT address through accounts, aliases (lists, nested, loops cut), catch-all `@domain`
/// and plus-addressing (`user+tag@d` → `user@d`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Local {
        /// Accounts to deliver to, without duplicates, in the order found.
        accounts: Vec<AccountId>,
        /// Alias targets outside local domains (forwarding), as written in the alias.
        external: Vec<String>,
    },
    UnknownUser,
    NotLocalDomain,
}

/// What a walk is for: delivery follows every alias and the catch-all; the sender check follows
/// aliases only, and stops at accounts (an account forwarding to you does not make its address yours).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Deliver,
    SendAs,
}

#[derive(Default)]
struct Walk {
    accounts: Vec<AccountId>,
    external: Vec<String>,
    visited: HashSet<String>,
    visits: usize,
    local_domains: HashMap<String, bool>,
}

impl Walk {
    fn add_account(&mut self, id: AccountId) {
        if !self.accounts.contains(&id) {
            self.accounts.push(id);
        }
    }

    fn add_external(&mut self, t: &str) {
        if !self.external.iter().any(|e| e.eq_ignore_ascii_case(t)) {
            self.external.push(t.to_string());
        }
    }
}

impl Directory {
    pub async fn resolve_recipient(&self, address: &str) -> Result<Resolution, StoreError> {
        // RFC 5321 §4.5.1: `RCPT TO:<Postmaster>` without a domain must be accepted.
        if address.eq_ignore_ascii_case("postmaster") {
            return Ok(self
                .role_fallback(None)
                .await?
                .unwrap_or(Resolution::UnknownUser));
        }
        let addr = match Address::parse(address) {
            Ok(a) => a,
            Err(why) => {
                // A broken local part in one of our domains is an unknown user; anything else is
                // not ours.
                let ours = match address.rsplit_once('@') {
                    Some((_, d)) => self.is_local_domain(d).await?,
                    None => true,
                };
                tracing::debug!(address, why, "unparsable recipient");
                return Ok(if ours {
                    Resolution::UnknownUser
                } else {
                    Resolution::NotLocalDomain
                });
            }
        };
        if !self.is_local_domain(&addr.domain).await? {
            return Ok(Resolution::NotLocalDomain);
        }
        let mut walk = Walk::default();
        walk.local_domains.insert(addr.domain.clone(), true);
        let role = ROLE_ADDRESSES.iter().any(|r| {
            addr.local.eq_ignore_ascii_case(r)
                || addr
                    .without_tag()
                    .is_some_and(|b| b.local.eq_ignore_ascii_case(r))
        });
        let key = addr.key();
        self.walk(&mut walk, addr, Purpose::Deliver).await?;
        if walk.accounts.is_empty() && walk.external.is_empty() {
            if role && let Some(r) = self.role_fallback(Some(&key)).await? {
                return Ok(r);
            }
            return Ok(Resolution::UnknownUser);
        }
        Ok(Resolution::Local {
            accounts: walk.accounts,
            external: walk.external,
        })
    }

    /// The configured `postmaster` target for a role address nobody owns (`from`: the address
    /// asked for, so that a target naming itself cannot loop).
    async fn role_fallback(&self, from: Option<&str>) -> Result<Option<Resolution>, StoreError> {
        let Some(target) = self.inner.cfg.postmaster.as_deref() else {
            return Ok(None);
        };
        let Ok(addr) = Address::parse(target) else {
            tracing::warn!(
                postmaster = target,
                "the postmaster address is not an address"
            );
            return Ok(None);
        };
        if from.is_some_and(|f| f == addr.key()) {
            return Ok(None);
        }
        let mut walk = Walk::default();
        if !self.local_domain_cached(&mut walk, &addr.domain).await? {
            return Ok(Some(Resolution::Local {
                accounts: Vec::new(),
                external: vec![addr.key()],
            }));
        }
        self.walk(&mut walk, addr, Purpose::Deliver).await?;
        if walk.accounts.is_empty() && walk.external.is_empty() {
            tracing::warn!(postmaster = target, "the postmaster address reaches nobody");
            return Ok(None);
        }
        Ok(Some(Resolution::Local {
            accounts: walk.accounts,
            external: walk.external,
        }))
    }

    /// True when `address` is the account's own address (plus-tags ignored) or an alias that resolves to it.
    pub async fn may_send_as(&self, account: &Account, address: &str) -> Result<bool, StoreError> {
        let Ok(addr) = Address::parse(address) else {
            return Ok(false);
        };
        let own = Address::parse(&account.address)
            .map(|a| a.key())
            .unwrap_or_default();
        if addr.key() == own || addr.without_tag().is_some_and(|b| b.key() == own) {
            return Ok(true);
        }
        // Another account's address is never ours, even if it forwards to us.
        let exact = self.inner.store.get_account_by_address(&addr.key()).await?;
        let base = match addr.without_tag() {
            Some(b) if exact.is_none() => self.inner.store.get_account_by_address(&b.key()).await?,
            _ => None,
        };
        if exact.or(base).is_some() {
            return Ok(false);
        }
        let mut walk = Walk::default();
        // The catch-all does not count: owning `@domain` does not make every address of it yours.
        self.walk(&mut walk, addr, Purpose::SendAs).await?;
        Ok(walk.accounts.contains(&account.id))
    }

    async fn walk(
        &self,
        walk: &mut Walk,
        start: Address,
        purpose: Purpose,
    ) -> Result<(), StoreError> {
        let mut stack = vec![(start, 0usize)];
        while let Some((addr, depth)) = stack.pop() {
            if walk.visits >= MAX_VISITS {
                tracing::warn!(address = %addr.key(), "alias expansion stopped: too many addresses");
                break;
            }
            if depth > MAX_DEPTH {
                tracing::warn!(address = %addr.key(), "alias expansion cut: nested too deep");
                continue;
            }
            if !walk.visited.insert(addr.key()) {
                tracing::debug!(address = %addr.key(), "alias loop cut");
                continue;
            }
            walk.visits += 1;
            let mut targets = Vec::new();
            let mut matched = self.match_exact(walk, &addr, &mut targets, purpose).await?;
            if !matched && let Some(base) = addr.without_tag() {
                if walk.visited.insert(base.key()) {
                    matched = self.match_exact(walk, &base, &mut targets, purpose).await?;
                } else {
                    matched = true;
                }
            }
            if !matched && purpose == Purpose::Deliver {
                targets = self
                    .inner
                    .store
                    .alias_targets(&format!("@{}", addr.domain))
                    .await?;
            }
            for t in targets.iter().rev() {
                let target = match t.strip_prefix('@') {
                    // `@a → @b` rewrites the domain and keeps the local part.
                    Some(d) => match normalize_domain(d) {
                        Ok(d) => Address {
                            local: addr.local.clone(),
                            domain: d,
                        },
                        Err(why) => {
                            tracing::warn!(alias = %addr.key(), target = t, why, "bad alias target skipped");
                            continue;
                        }
                    },
                    None => match Address::parse(t) {
                        Ok(a) => a,
                        Err(why) => {
                            tracing::warn!(alias = %addr.key(), target = t, why, "bad alias target skipped");
                            continue;
                        }
                    },
                };
                if self.local_domain_cached(walk, &target.domain).await? {
                    stack.push((target, depth + 1));
                } else {
                    walk.add_external(&format!("{}@{}", target.local, target.domain));
                }
            }
        }
        Ok(())
    }

    /// Looks `addr` up as an account and as an alias; appends alias targets. True when either exists.
    async fn match_exact(
        &self,
        walk: &mut Walk,
        addr: &Address,
        targets: &mut Vec<String>,
        purpose: Purpose,
    ) -> Result<bool, StoreError> {
        let key = addr.key();
        let mut matched = false;
        if let Some(account) = self.inner.store.get_account_by_address(&key).await? {
            matched = true;
            if account.disabled {
                tracing::debug!(
                    account = account.address,
                    "disabled account receives no mail"
                );
            } else {
                walk.add_account(account.id);
            }
            if purpose == Purpose::SendAs {
                return Ok(true);
            }
        }
        let more = self.inner.store.alias_targets(&key).await?;
        if !more.is_empty() {
            matched = true;
            targets.extend(more);
        }
        Ok(matched)
    }

    async fn local_domain_cached(&self, walk: &mut Walk, domain: &str) -> Result<bool, StoreError> {
        if let Some(v) = walk.local_domains.get(domain) {
            return Ok(*v);
        }
        let v = self.is_local_domain(domain).await?;
        walk.local_domains.insert(domain.to_string(), v);
        Ok(v)
    }
}
