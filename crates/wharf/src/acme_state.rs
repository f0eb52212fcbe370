//! The ACME state of `wharf serve` in the store, shared by every node of it (`node_state`
//! rows): the account and the certificate with its key, sealed with the node-state key;
//! the lease that lets one node at a time order; and the challenge answers the ordering node
//! publishes, so whichever node the CA's validation reaches can answer it.
//!
//! State files of earlier versions (`<data_dir>/acme/account.json`, `cert.pem`, `key.pem`)
//! are imported once, when the store has none yet.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use wharf_acme::{AcmeError, AcmeState, AcmeStore, ChallengeAnswer};
use wharf_store::Store;

use crate::state_key::StateKey;

const SCOPE: &str = "acme";
const CHALLENGES: &str = "acme-challenge";
const ACCOUNT: &str = "account";
const CERTIFICATE: &str = "certificate";
/// The lease name (scope `lease`) of the node that orders.
const LEASE: &str = "acme-order";
/// The most challenge answers read at once (a certificate has a few names; rows past this
/// would be another node's misbehaviour, not a reason to use memory).
const MAX_ANSWERS: usize = 1000;

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredCertificate {
    chain_pem: String,
    key_pem: String,
}

pub struct StoreAcmeState {
    store: Arc<dyn Store>,
    key: Arc<StateKey>,
    node: String,
}

impl std::fmt::Debug for StoreAcmeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreAcmeState(node {})", self.node)
    }
}

fn state_err(e: impl std::fmt::Display) -> AcmeError {
    AcmeError::State(e.to_string())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

impl StoreAcmeState {
    pub fn new(store: Arc<dyn Store>, key: Arc<StateKey>, node: &str) -> StoreAcmeState {
        StoreAcmeState {
            store,
            key,
            node: node.to_string(),
        }
    }

    async fn get_sealed(&self, name: &str) -> Result<Option<Vec<u8>>, AcmeError> {
        let Some(row) = self
            .store
            .node_state_get(SCOPE, name)
            .await
            .map_err(state_err)?
        else {
            return Ok(None);
        };
        self.key
            .open_value(&format!("acme:{name}"), &row.value)
            .map(Some)
            .map_err(|e| state_err(format!("{name}: {e:#}")))
    }

    async fn put_sealed(
        &self,
        name: &str,
        plain: &[u8],
        only_if_absent: bool,
    ) -> Result<bool, AcmeError> {
        let sealed = self
            .key
            .seal(&format!("acme:{name}"), plain)
            .map_err(|e| state_err(format!("{e:#}")))?;
        self.store
            .node_state_put(SCOPE, name, &sealed, None, now(), only_if_absent)
            .await
            .map_err(state_err)
    }

    /// Moves the state files of earlier versions into the store when it has none yet; each
    /// file is renamed `.imported` once stored. Returns what was imported.
    pub async fn import_files(&self, dir: &Path) -> anyhow::Result<Vec<&'static str>> {
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let files = AcmeStore::open(dir).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut imported = Vec::new();
        let account = files.account_path();
        if account.is_file() {
            let json = std::fs::read(&account)?;
            self.put_sealed(ACCOUNT, &json, true).await?;
            std::fs::rename(&account, account.with_extension("json.imported"))?;
            imported.push("account");
        }
        if let Some((chain, key)) = files
            .load_certificate()
            .map_err(|e| anyhow::anyhow!("{e}"))?
        {
            let json = serde_json::to_vec(&StoredCertificate {
                chain_pem: chain,
                key_pem: key,
            })?;
            self.put_sealed(CERTIFICATE, &json, true).await?;
            for p in [files.cert_path(), files.key_path()] {
                std::fs::rename(&p, p.with_extension("pem.imported"))?;
            }
            imported.push("certificate");
        }
        if !imported.is_empty() {
            tracing::info!(from = %dir.display(), ?imported, "ACME state files moved into the store");
        }
        Ok(imported)
    }
}

#[async_trait]
impl AcmeState for StoreAcmeState {
    async fn load_account(&self) -> Result<Option<Vec<u8>>, AcmeError> {
        self.get_sealed(ACCOUNT).await
    }

    async fn save_account(&self, json: &[u8]) -> Result<(), AcmeError> {
        self.put_sealed(ACCOUNT, json, false).await.map(drop)
    }

    async fn load_certificate(&self) -> Result<Option<(String, String)>, AcmeError> {
        let Some(json) = self.get_sealed(CERTIFICATE).await? else {
            return Ok(None);
        };
        let c: StoredCertificate = serde_json::from_slice(&json).map_err(state_err)?;
        Ok(Some((c.chain_pem, c.key_pem)))
    }

    async fn save_certificate(&self, chain_pem: &str, key_pem: &str) -> Result<(), AcmeError> {
        let json = serde_json::to_vec(&StoredCertificate {
            chain_pem: chain_pem.to_string(),
            key_pem: key_pem.to_string(),
        })
        .map_err(state_err)?;
        self.put_sealed(CERTIFICATE, &json, false).await.map(drop)
    }

    fn shared(&self) -> bool {
        true
    }

    async fn lead(&self, ttl: Duration) -> Result<bool, AcmeError> {
        self.store
            .try_lease(LEASE, &self.node, now(), secs(ttl))
            .await
            .map_err(state_err)
    }

    async fn publish(&self, answer: &ChallengeAnswer, ttl: Duration) -> Result<(), AcmeError> {
        // Not sealed: a key authorization is meant to be shown to anyone who asks, and a
        // TLS-ALPN-01 key signs nothing but its own throwaway certificate.
        let json = serde_json::to_vec(answer).map_err(state_err)?;
        let t = now();
        // Answers whose withdrawal never came (a node died mid-order) go with the next order,
        // so the rows every node reads each poll stay those of the orders under way.
        self.store
            .node_state_prune(CHALLENGES, t)
            .await
            .map_err(state_err)?;
        self.store
            .node_state_put(
                CHALLENGES,
                &answer.id(),
                &json,
                Some(t.saturating_add(secs(ttl))),
                t,
                false,
            )
            .await
            .map(drop)
            .map_err(state_err)
    }

    async fn withdraw(&self, id: &str) -> Result<(), AcmeError> {
        self.store
            .node_state_delete(CHALLENGES, id)
            .await
            .map(drop)
            .map_err(state_err)
    }

    async fn answers(&self) -> Result<Vec<ChallengeAnswer>, AcmeError> {
        let t = now();
        let rows = self
            .store
            .node_state_list(CHALLENGES)
            .await
            .map_err(state_err)?;
        let mut out = Vec::new();
        for row in rows.into_iter().take(MAX_ANSWERS) {
            if row.expires_at.is_some_and(|e| e < t) {
                continue;
            }
            match serde_json::from_slice::<ChallengeAnswer>(&row.value) {
                Ok(a) if a.id() == row.name => out.push(a),
                _ => {
                    tracing::warn!(name = %row.name, "ACME: a published challenge answer does not parse; ignored")
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wharf_testkit::store::TestStore;

    #[tokio::test]
    async fn state_in_the_store_is_sealed_leased_and_shared() {
        let files = TestStore::sqlite();
        let store = files.open().await;
        let dir = tempfile::tempdir().unwrap();
        let key = Arc::new(
            StateKey::open_at(&dir.path().join("state.key"), &*store)
                .await
                .unwrap(),
        );
        let a = StoreAcmeState::new(store.clone(), key.clone(), "na");
        let b = StoreAcmeState::new(store.clone(), key.clone(), "nb");
        assert!(a.load_certificate().await.unwrap().is_none());
        a.save_certificate("CHAIN", "-----BEGIN PRIVATE KEY-----secret")
            .await
            .unwrap();
        assert_eq!(
            b.load_certificate().await.unwrap(),
            Some((
                "CHAIN".to_string(),
                "-----BEGIN PRIVATE KEY-----secret".to_string()
            ))
        );
        let row = store
            .node_state_get(SCOPE, CERTIFICATE)
            .await
            .unwrap()
            .unwrap();
        assert!(!row.value.windows(6).any(|w| w == b"secret"), "sealed");
        a.save_account(b"{\"a\":1}").await.unwrap();
        assert_eq!(b.load_account().await.unwrap().unwrap(), b"{\"a\":1}");

        assert!(a.lead(Duration::from_secs(60)).await.unwrap());
        assert!(!b.lead(Duration::from_secs(60)).await.unwrap());
        assert!(
            a.lead(Duration::from_secs(60)).await.unwrap(),
            "renewed by its holder"
        );

        let http = ChallengeAnswer::Http01 {
            token: "tok".into(),
            key_authorization: "tok.thumb".into(),
        };
        a.publish(&http, Duration::from_secs(60)).await.unwrap();
        assert_eq!(b.answers().await.unwrap(), vec![http.clone()]);
        a.withdraw(&http.id()).await.unwrap();
        assert!(b.answers().await.unwrap().is_empty());
        // A lapsed answer is not served.
        a.publish(&http, Duration::ZERO).await.unwrap();
        store
            .node_state_put(
                CHALLENGES,
                &http.id(),
                &serde_json::to_vec(&http).unwrap(),
                Some(now() - 5),
                now(),
                false,
            )
            .await
            .unwrap();
        assert!(b.answers().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn state_files_of_earlier_versions_are_imported_once() {
        let files = TestStore::sqlite();
        let store = files.open().await;
        let dir = tempfile::tempdir().unwrap();
        let key = Arc::new(
            StateKey::open_at(&dir.path().join("state.key"), &*store)
                .await
                .unwrap(),
        );
        let acme = dir.path().join("acme");
        std::fs::create_dir_all(&acme).unwrap();
        std::fs::write(acme.join("account.json"), b"{\"x\":2}").unwrap();
        std::fs::write(acme.join("cert.pem"), "CHAIN").unwrap();
        std::fs::write(acme.join("key.pem"), "KEY").unwrap();
        let s = StoreAcmeState::new(store.clone(), key, "na");
        assert_eq!(
            s.import_files(&acme).await.unwrap(),
            ["account", "certificate"]
        );
        assert_eq!(
            s.load_certificate().await.unwrap(),
            Some(("CHAIN".to_string(), "KEY".to_string()))
        );
        assert_eq!(s.load_account().await.unwrap().unwrap(), b"{\"x\":2}");
        assert!(acme.join("cert.pem.imported").is_file() && !acme.join("cert.pem").exists());
        assert!(
            s.import_files(&acme).await.unwrap().is_empty(),
            "nothing left to import"
        );
    }
}
