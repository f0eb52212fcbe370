//! The answers to pending challenges: HTTP-01 key authorizations by token
//! (served by wharf-http on port 80) and RFC 8737 validation certificates.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::AcmeError;

/// Pending HTTP-01 challenges, token -> key authorization. Clones share
/// one table: the manager writes it, the HTTP listener reads it.
#[derive(Clone, Default)]
pub struct Http01Challenges {
    tokens: Arc<RwLock<HashMap<String, String>>>,
}

impl std::fmt::Debug for Http01Challenges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http01Challenges").finish_non_exhaustive()
    }
}

impl Http01Challenges {
    pub fn new() -> Http01Challenges {
        Http01Challenges::default()
    }

    /// The key authorization to answer for `token`, if one is pending.
    pub fn get(&self, token: &str) -> Option<String> {
        let map = self.tokens.read().unwrap_or_else(|e| e.into_inner());
        map.get(token).cloned()
    }

    pub(crate) fn insert(&self, token: String, key_authorization: String) {
        let mut map = self.tokens.write().unwrap_or_else(|e| e.into_inner());
        map.insert(token, key_authorization);
    }

    pub(crate) fn remove(&self, token: &str) {
        let mut map = self.tokens.write().unwrap_or_else(|e| e.into_inner());
        map.remove(token);
    }
}

/// RFC 8737 section 3: a self-signed certificate whose only name is `name`,
/// carrying the critical acmeIdentifier extension with the SHA-256 digest
/// of the key authorization. Returns (cert_pem, key_pem).
pub fn tls_alpn_certificate(
    name: &str,
    key_authorization_digest: &[u8],
) -> Result<(String, String), AcmeError> {
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()])?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(
        key_authorization_digest,
    )];
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}
