//! Error types of the directory: what an authentication attempt and an administrative change can fail with.

use std::time::Duration;

use wharf_store::StoreError;

/// Why an authentication did not succeed. Protocol crates map each variant to their own reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Unknown user or wrong password (deliberately indistinguishable).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Too many failures from this client or for this account; try again after `retry_after`.
    #[error("too many authentication failures, retry in {}s", retry_after.as_secs().max(1))]
    Throttled { retry_after: Duration },
    /// The password was right but the account is disabled.
    #[error("account disabled")]
    Disabled,
    /// The client's SASL message broke the mechanism's syntax (the text says how).
    #[error("malformed authentication exchange: {0}")]
    Malformed(String),
    /// The client cancelled the exchange (`*`).
    #[error("authentication aborted")]
    Aborted,
    /// A backend failure; the client may retry.
    #[error("temporary authentication failure: {0}")]
    Temporary(String),
}

/// Why an administrative change (domain, account, password) was refused.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("unknown domain: {0}")]
    UnknownDomain(String),
    #[error("account already exists: {0}")]
    DuplicateAccount(String),
    /// The text names the rule the password broke.
    #[error("weak password: {0}")]
    WeakPassword(String),
    #[error("invalid address: {0}")]
    InvalidAddress(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}
