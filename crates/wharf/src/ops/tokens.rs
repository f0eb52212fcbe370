//! API tokens of the admin REST API: a random secret shown once, of which the store keeps only a
//! SHA-256; each token has scopes (`read`: GET requests; `write`: every request).

use serde::Serialize;
use sha2::{Digest, Sha256};
use wharf_store::{ApiToken, NewApiToken, Store};

use super::{OpError, OpResult};

/// Scopes a token may carry.
pub const SCOPES: [&str; 2] = ["read", "write"];
/// Every secret starts with this, so it is recognisable in logs and secret scanners.
pub const PREFIX: &str = "wharf_";

#[derive(Debug, Clone, Serialize)]
pub struct TokenView {
    pub id: i64,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
}

impl From<&ApiToken> for TokenView {
    fn from(t: &ApiToken) -> TokenView {
        TokenView {
            id: t.id,
            name: t.name.clone(),
            scopes: t.scopes.clone(),
            created_at: super::rfc3339(t.created_at),
            expires_at: t.expires_at.map(super::rfc3339),
            last_used_at: t.last_used_at.map(super::rfc3339),
        }
    }
}

pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// `read,write` → the scope list; unknown names are refused.
pub fn parse_scopes(text: &str) -> OpResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for s in text.split(',').map(|s| s.trim().to_ascii_lowercase()) {
        if s.is_empty() {
            continue;
        }
        if !SCOPES.contains(&s.as_str()) {
            return Err(OpError::invalid(format!(
                "unknown scope {s:?} (scopes: {})",
                SCOPES.join(", ")
            )));
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    if out.is_empty() {
        return Err(OpError::invalid("give at least one scope: read, write"));
    }
    Ok(out)
}

/// Creates a token; the secret is returned only here.
pub async fn create(
    store: &dyn Store,
    name: &str,
    scopes: Vec<String>,
    expires_at: Option<i64>,
) -> OpResult<(ApiToken, String)> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(OpError::invalid(
            "a token name is 1 to 100 printable characters",
        ));
    }
    use rand::RngCore;
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let secret = format!("{PREFIX}{}", hex::encode(raw));
    let token = store
        .create_api_token(NewApiToken {
            name: name.to_string(),
            hash: hash(&secret),
            scopes,
            expires_at,
        })
        .await?;
    tracing::info!(id = token.id, name = token.name, scopes = ?token.scopes, "API token created");
    Ok((token, secret))
}

pub async fn list(store: &dyn Store) -> OpResult<Vec<ApiToken>> {
    Ok(store.list_api_tokens().await?)
}

pub async fn revoke(store: &dyn Store, id: &str) -> OpResult<i64> {
    let id: i64 = id.trim().parse().ok().filter(|id| *id > 0).ok_or_else(|| {
        OpError::invalid(format!("{id:?} is not a token id (see wharf token list)"))
    })?;
    if !store.delete_api_token(id).await? {
        return Err(OpError::not_found(format!("no token {id}")));
    }
    tracing::info!(id, "API token revoked");
    Ok(id)
}

/// The live token a secret belongs to (not expired); records its use.
pub async fn verify(store: &dyn Store, secret: &str, now: i64) -> OpResult<Option<ApiToken>> {
    if !secret.starts_with(PREFIX) || secret.len() > 200 {
        return Ok(None);
    }
    let Some(token) = store.api_token_by_hash(&hash(secret)).await? else {
        return Ok(None);
    };
    if token.expires_at.is_some_and(|e| e <= now) {
        return Ok(None);
    }
    // At most once a minute, so reads do not turn into writes.
    if token.last_used_at.is_none_or(|t| now - t >= 60) {
        store.touch_api_token(token.id, now).await?;
    }
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_checked() {
        assert_eq!(parse_scopes("read, WRITE,read").unwrap(), ["read", "write"]);
        assert!(parse_scopes("admin").is_err());
        assert!(parse_scopes(" , ").is_err());
        assert_eq!(hash("x").len(), 64);
    }
}
