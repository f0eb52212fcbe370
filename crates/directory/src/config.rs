//! The directory's tunables: authentication throttling, credential caching and the password rule.

use std::time::Duration;

/// Settings of the directory. Every field has a default (see `Default`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryConfig {
    /// Delay added to the first failed authentication; it doubles with each further failure.
    pub auth_fail_delay_base: Duration,
    /// Ceiling of that delay.
    pub auth_fail_max_delay: Duration,
    /// Failures from one client IP, within `auth_lockout`, after which the IP is refused for
    /// `auth_lockout`. 0 disables the IP lockout (delays still apply).
    pub auth_ip_lockout_after: u32,
    /// Failures for one account name from sources unknown to it, within `auth_lockout`, after
    /// which the account is under attack: a warning and a metric, and attempts from unknown
    /// sources wait (the failure delay of that count, at most `auth_fail_max_delay`) before their
    /// password is checked. Nobody is refused for it (the name is kept for existing
    /// configurations). 0 disables the slowing and the alert.
    pub auth_account_lockout_after: u32,
    /// Both the window in which failures are counted and the length of an IP's refusal.
    pub auth_lockout: Duration,
    /// How long a source (IPv4 address, IPv6 /64) that logged in to an account stays known to
    /// it: known sources are not slowed by the account's failure count.
    pub auth_known_source_ttl: Duration,
    /// How long a successful password verification is remembered. Zero disables the cache.
    pub credential_cache_ttl: Duration,
    /// Minimum password length in characters.
    pub min_password_len: usize,
    /// Where mail for `postmaster@` and `abuse@` of every local domain (and the bare
    /// `Postmaster` of RFC 5321 §4.5.1) goes when no account or alias has that address.
    pub postmaster: Option<String>,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        DirectoryConfig {
            auth_fail_delay_base: Duration::from_secs(1),
            auth_fail_max_delay: Duration::from_secs(30),
            auth_ip_lockout_after: 10,
            auth_account_lockout_after: 20,
            auth_lockout: Duration::from_secs(15 * 60),
            auth_known_source_ttl: Duration::from_secs(30 * 24 * 3600),
            credential_cache_ttl: Duration::from_secs(5 * 60),
            min_password_len: 10,
            postmaster: None,
        }
    }
}
