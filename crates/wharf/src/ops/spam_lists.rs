//! The spam filter's allow and block lists (docs/spam.md): per scope (a domain, or an account's
//! address), entries that are an address, `@domain` or `domain`. The same checks for `wharf spam
//! allow|block|unlist|lists`, the admin REST API and the web self-service page.

use serde::Serialize;
use wharf_directory::Directory;
use wharf_store::SpamListEntry;

use super::{OpError, OpResult};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ListEntry {
    pub scope: String,
    pub entry: String,
    /// `allow` or `block`.
    pub list: &'static str,
}

impl From<&SpamListEntry> for ListEntry {
    fn from(e: &SpamListEntry) -> ListEntry {
        ListEntry {
            scope: e.scope.clone(),
            entry: e.entry.clone(),
            list: if e.allow { "allow" } else { "block" },
        }
    }
}

/// A scope or entry: an address or a domain, optionally `@domain` (non-empty, no whitespace,
/// with a dot).
pub fn valid(s: &str) -> bool {
    let s = s.trim_start_matches('@');
    !s.is_empty()
        && s.len() <= 255
        && !s.contains(char::is_whitespace)
        && !s.chars().any(char::is_control)
        && s.contains('.')
}

fn check(scope: &str, entry: &str) -> OpResult<()> {
    if !valid(scope) || !valid(entry) {
        return Err(OpError::invalid(
            "scope and entry are addresses or domains (user@example.com, @example.com, example.com)",
        ));
    }
    Ok(())
}

pub async fn list(dir: &Directory, scope: Option<&str>) -> OpResult<Vec<ListEntry>> {
    let scopes = scope.map(|s| vec![s.trim().to_string()]);
    let entries = dir.store().spam_list_entries(scopes.as_deref()).await?;
    Ok(entries.iter().map(Into::into).collect())
}

/// Up to `limit` entries (of one scope, or all) after the key (scope, entry).
pub async fn list_page(
    dir: &Directory,
    scope: Option<&str>,
    after: Option<(&str, &str)>,
    limit: usize,
) -> OpResult<Vec<ListEntry>> {
    let entries = dir
        .store()
        .spam_list_entries_page(scope.map(str::trim), after, limit)
        .await?;
    Ok(entries.iter().map(Into::into).collect())
}

/// Puts `entry` on the allow (`allow`) or block list of `scope`, moving it from the other one.
pub async fn put(dir: &Directory, scope: &str, entry: &str, allow: bool) -> OpResult<ListEntry> {
    let (scope, entry) = (scope.trim(), entry.trim());
    check(scope, entry)?;
    let e = SpamListEntry {
        scope: scope.to_ascii_lowercase(),
        entry: entry.to_ascii_lowercase(),
        allow,
    };
    dir.store().put_spam_list_entry(&e).await?;
    tracing::info!(
        scope = e.scope,
        entry = e.entry,
        allow,
        "spam list entry set"
    );
    Ok((&e).into())
}

pub async fn delete(dir: &Directory, scope: &str, entry: &str) -> OpResult<()> {
    let (scope, entry) = (scope.trim(), entry.trim());
    if !dir.store().delete_spam_list_entry(scope, entry).await? {
        return Err(OpError::not_found(format!(
            "{entry} is not on a list of {scope}"
        )));
    }
    tracing::info!(scope, entry, "spam list entry removed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::valid;

    #[test]
    fn entries_are_addresses_or_domains() {
        for ok in [
            "a@example.com",
            "@example.com",
            "example.com",
            "sub.example.com",
        ] {
            assert!(valid(ok), "{ok}");
        }
        for bad in ["", "@", "localhost", "a b.com", "a@b.com\n", "@@"] {
            assert!(!valid(bad), "{bad:?}");
        }
    }
}
