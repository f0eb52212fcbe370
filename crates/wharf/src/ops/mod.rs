//! The administration operations, one implementation for both faces: the CLI verbs (`admin.rs`,
//! `queue_admin.rs`, `report_admin.rs`, `main.rs`) print their results, and the admin REST API
//! (`api_backend.rs`) returns them as JSON. Each operation checks its input and says what went
//! wrong with an [`OpError`] whose kind the API maps to an HTTP status.

pub mod accounts;
pub mod aliases;
pub mod app_passwords;
pub mod dashboard;
pub mod dkim;
pub mod domains;
pub mod mailboxes;
pub mod queue;
pub mod reports;
pub mod rules;
pub mod sieve;
pub mod spam_lists;
pub mod tokens;

use serde::Serialize;
use wharf_directory::DirectoryError;
use wharf_store::StoreError;

/// What kind of failure an operation met (the API's status code follows from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpErrorKind {
    /// 404: the named thing does not exist.
    NotFound,
    /// 409: it exists already, or something still depends on it.
    Conflict,
    /// 422: the input breaks a rule.
    Invalid,
    /// 503: the store is unavailable for now.
    Unavailable,
    /// 500: anything else.
    Internal,
}

#[derive(Debug, Clone)]
pub struct OpError {
    pub kind: OpErrorKind,
    pub message: String,
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OpError {}

pub type OpResult<T> = std::result::Result<T, OpError>;

impl OpError {
    pub fn not_found(message: impl Into<String>) -> OpError {
        OpError {
            kind: OpErrorKind::NotFound,
            message: message.into(),
        }
    }
    pub fn conflict(message: impl Into<String>) -> OpError {
        OpError {
            kind: OpErrorKind::Conflict,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> OpError {
        OpError {
            kind: OpErrorKind::Invalid,
            message: message.into(),
        }
    }
    pub fn internal(message: impl Into<String>) -> OpError {
        OpError {
            kind: OpErrorKind::Internal,
            message: message.into(),
        }
    }
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> OpError {
        let kind = match &e {
            StoreError::NotFound(_) => OpErrorKind::NotFound,
            StoreError::AlreadyExists(_) | StoreError::Conflict(_) => OpErrorKind::Conflict,
            StoreError::Invalid(_) | StoreError::Limit(_) => OpErrorKind::Invalid,
            StoreError::Unavailable(_) => OpErrorKind::Unavailable,
            _ => OpErrorKind::Internal,
        };
        OpError {
            kind,
            message: format!("store: {e}"),
        }
    }
}

/// One line naming what went wrong, in the operator's terms.
impl From<DirectoryError> for OpError {
    fn from(e: DirectoryError) -> OpError {
        match e {
            DirectoryError::UnknownDomain(d) => OpError::invalid(format!(
                "unknown domain {d} (add it first: wharf domain add {d})"
            )),
            DirectoryError::DuplicateAccount(a) => {
                OpError::conflict(format!("account {a} already exists"))
            }
            DirectoryError::WeakPassword(rule) => {
                OpError::invalid(format!("password refused: {rule}"))
            }
            DirectoryError::InvalidAddress(a) => OpError::invalid(format!("invalid address: {a}")),
            DirectoryError::NotFound(a) => OpError::not_found(format!("no such account: {a}")),
            DirectoryError::Store(e) => e.into(),
        }
    }
}

impl From<anyhow::Error> for OpError {
    fn from(e: anyhow::Error) -> OpError {
        OpError::internal(format!("{e:#}"))
    }
}

/// A size as the API and the CLI show it: bytes, and a human form (`1.5K`, `2G`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Size {
    pub bytes: u64,
    pub human: String,
}

impl Size {
    pub fn of(bytes: u64) -> Size {
        Size {
            bytes,
            human: format_size(bytes),
        }
    }

    /// A quota: 0 is `unlimited`.
    pub fn quota(bytes: i64) -> Size {
        let bytes = u64::try_from(bytes).unwrap_or(0);
        Size {
            bytes,
            human: if bytes == 0 {
                "unlimited".to_string()
            } else {
                format_size(bytes)
            },
        }
    }
}

/// `1048576`, `512K`, `500M`, `2G`, `1T` (binary multiples; optional trailing `B`/`iB`).
pub fn parse_size(text: &str) -> OpResult<i64> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let lower = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (digits, mult): (&str, i64) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1 << 30),
        Some('t') => (&lower[..lower.len() - 1], 1 << 40),
        _ => (lower, 1),
    };
    digits
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| {
            OpError::invalid(format!(
                "invalid size {t:?}: use a number of bytes or e.g. 500M, 2G (0 = unlimited)"
            ))
        })
}

pub fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("T", 1 << 40),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if bytes >= size {
            let whole = bytes / size;
            let tenth = (bytes % size) * 10 / size;
            return if tenth == 0 {
                format!("{whole}{unit}")
            } else {
                format!("{whole}.{tenth}{unit}")
            };
        }
    }
    format!("{bytes}")
}

/// Unix seconds as `2026-01-02T03:04:05Z`.
pub fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0").unwrap(), 0);
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("500M").unwrap(), 500 << 20);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("1kb").unwrap(), 1024);
        assert!(parse_size("-1").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999T").is_err());
        assert_eq!(format_size(1536), "1.5K");
        assert_eq!(format_size(12), "12");
        assert_eq!(format_size(2 << 30), "2G");
        assert_eq!(Size::quota(0).human, "unlimited");
        assert_eq!(Size::quota(1 << 30).human, "1G");
    }
}
