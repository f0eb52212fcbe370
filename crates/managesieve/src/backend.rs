//! The ports a ManageSieve session needs from the rest of the system: checking credentials
//! (`Authenticator`, shared with every protocol), compiling scripts (`ScriptChecker`, bound by
//! the binary to the Sieve compiler) and keeping the account's scripts (`ScriptStore`). The
//! session core only talks to these traits, so transcript tests drive it without a database;
//! `adapters` binds `ScriptStore` to `wharf_store::Store`.

use async_trait::async_trait;
use wharf_store::{AccountId, StoreError};

/// Authentication is one port for every protocol, defined with the directory
/// (`wharf_directory::session_auth`); `AuthFailure` is the directory's `AuthError`.
pub use wharf_directory::AuthError as AuthFailure;
pub use wharf_directory::session_auth::{Authenticator, Login, SaslOutcome, SaslSession};

/// Compiles Sieve scripts (RFC 5228 and the extensions it announces).
pub trait ScriptChecker: Send + Sync + 'static {
    /// Space-separated SIEVE capability list (the extensions a script may `require`).
    fn extensions(&self) -> String;
    /// `Ok` when the script compiles; the error text is "line L, column C: message".
    fn check(&self, source: &str) -> Result<(), String>;
    /// Like `check`, with the warnings of a script that compiles (answered as
    /// `OK (WARNINGS) "..."`). The default has none.
    fn check_with_warnings(&self, source: &str) -> Result<Vec<String>, String> {
        self.check(source).map(|()| Vec::new())
    }
}

/// One script of an account as LISTSCRIPTS shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptInfo {
    pub name: String,
    pub active: bool,
    /// Octets of the script.
    pub size: u64,
}

/// The bounds one account's scripts live within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptQuota {
    pub max_scripts: u32,
    /// Octets.
    pub max_script_size: u64,
}

/// The account's Sieve scripts. Names are compared exactly (octet for octet).
#[async_trait]
pub trait ScriptStore: Send + Sync + 'static {
    async fn list(&self, account: AccountId) -> Result<Vec<ScriptInfo>, StoreError>;
    /// The script's text, `None` when there is no such script.
    async fn get(&self, account: AccountId, name: &str) -> Result<Option<String>, StoreError>;
    /// Creates or replaces (an active script stays active). `StoreError::Limit` past the
    /// store's own per-account count bound, `OverQuota` past a storage quota.
    async fn put(&self, account: AccountId, name: &str, content: &str) -> Result<(), StoreError>;
    /// `StoreError::NotFound` when there is no such script.
    async fn delete(&self, account: AccountId, name: &str) -> Result<(), StoreError>;
    /// `NotFound` when `from` is missing, `AlreadyExists` when `to` exists; an active script
    /// stays active under its new name.
    async fn rename(&self, account: AccountId, from: &str, to: &str) -> Result<(), StoreError>;
    /// Makes `name` the one active script, or deactivates all with `None`; `NotFound` when
    /// `name` is missing.
    async fn set_active(&self, account: AccountId, name: Option<&str>) -> Result<(), StoreError>;
    /// The bounds that apply to this account.
    async fn quota(&self, account: AccountId) -> Result<ScriptQuota, StoreError>;
}
