//! The ACME client loop: account, order, challenges, finalization, storage
//! and the hot swap into the TLS provider; renewal on schedule; retries
//! with backoff while the old certificate stays in service.
//!
//! With a shared state (several nodes on one store) one node at a time
//! orders (`AcmeState::lead`). It publishes each challenge answer before the
//! CA is told to validate, and every node serves the answers it finds there,
//! since the CA's connection may reach any node behind the balancer. Every
//! node puts the stored certificate in service once it changes, so all nodes
//! present the same one.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use instant_acme::{
    Account, AccountBuilder, AuthorizationStatus, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use wharf_net::TlsProvider;

use crate::storage::{AcmeState, ChallengeAnswer, StoredAccount};
use crate::{AcmeError, AcmeSettings, AcmeStore, CertInfo, ChallengeKind, Http01Challenges};

pub struct AcmeManager {
    settings: AcmeSettings,
    tls: TlsProvider,
    http01: Http01Challenges,
    state: Arc<dyn AcmeState>,
    /// The serial of the certificate this manager last put in service.
    installed: Mutex<Option<String>>,
    /// Answers published by other nodes that this node serves now, by id.
    followed: Mutex<HashMap<String, ChallengeAnswer>>,
    /// Ids of the answers this node published for its own order in progress.
    own: Arc<Mutex<HashSet<String>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain sets and values: a panic elsewhere cannot leave them inconsistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl AcmeManager {
    /// A manager of one node, its state in files under `settings.state_dir`.
    pub fn new(settings: AcmeSettings, tls: TlsProvider) -> Result<AcmeManager, AcmeError> {
        let store = AcmeStore::open(&settings.state_dir)?;
        Ok(AcmeManager::with_state(settings, tls, Arc::new(store)))
    }

    /// A manager over the given state (shared by several nodes, or not).
    pub fn with_state(
        settings: AcmeSettings,
        tls: TlsProvider,
        state: Arc<dyn AcmeState>,
    ) -> AcmeManager {
        AcmeManager {
            settings,
            tls,
            http01: Http01Challenges::new(),
            state,
            installed: Mutex::new(None),
            followed: Mutex::new(HashMap::new()),
            own: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// The HTTP-01 table the port-80 listener must serve.
    pub fn http01(&self) -> Http01Challenges {
        self.http01.clone()
    }

    pub fn state(&self) -> &Arc<dyn AcmeState> {
        &self.state
    }

    /// The stored certificate, if there is one that parses.
    pub async fn stored(&self) -> Option<CertInfo> {
        match self.state.load_certificate().await {
            Ok(Some((chain, _))) => match CertInfo::from_pem(&chain) {
                Ok(info) => Some(info),
                Err(e) => {
                    tracing::warn!(error = %e, "ACME: stored certificate unreadable");
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "ACME: stored certificate unreadable");
                None
            }
        }
    }

    /// Puts the stored certificate in service if it is unexpired and not the one already in
    /// service (at start, before the first order; and on every node when another node stored
    /// a new one). Returns what was installed.
    pub async fn install_stored(&self) -> Option<CertInfo> {
        let (chain, key) = match self.state.load_certificate().await {
            Ok(found) => found?,
            Err(e) => {
                tracing::warn!(error = %e, "ACME: cannot read the stored certificate");
                return None;
            }
        };
        let info = CertInfo::from_pem(&chain).ok()?;
        if info.not_after <= SystemTime::now()
            || lock(&self.installed).as_deref() == Some(info.serial.as_str())
        {
            return None;
        }
        match self.tls.reload_from_pem(chain.as_bytes(), key.as_bytes()) {
            Ok(()) => {
                tracing::info!(serial = %info.serial, "ACME: stored certificate in service");
                *lock(&self.installed) = Some(info.serial.clone());
                Some(info)
            }
            Err(e) => {
                tracing::warn!(error = %e, "ACME: stored certificate refused");
                None
            }
        }
    }

    /// How long until the stored certificate must be renewed (zero: now).
    pub async fn renewal_wait(&self) -> Duration {
        match self.stored().await {
            Some(info) if info.covers(&self.settings.names) => info
                .renew_at(self.settings.renew_margin)
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO),
            _ => Duration::ZERO,
        }
    }

    /// Shared state: serves the answers other nodes published (and stops serving those
    /// withdrawn), and puts a certificate another node stored in service.
    async fn follow(&self) {
        match self.state.answers().await {
            Ok(answers) => {
                let own = lock(&self.own).clone();
                let mut followed = lock(&self.followed);
                let live: HashSet<String> = answers.iter().map(ChallengeAnswer::id).collect();
                followed.retain(|id, answer| {
                    let keep = live.contains(id);
                    if !keep {
                        self.unserve(answer);
                    }
                    keep
                });
                for answer in answers {
                    let id = answer.id();
                    if own.contains(&id) || followed.contains_key(&id) {
                        continue;
                    }
                    match self.serve(&answer) {
                        Ok(()) => {
                            tracing::info!(%id, "ACME: serving another node's challenge answer");
                            followed.insert(id, answer);
                        }
                        Err(e) => {
                            tracing::warn!(%id, error = %e, "ACME: cannot serve a published challenge answer")
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "ACME: cannot read the published challenge answers")
            }
        }
        self.install_stored().await;
    }

    fn serve(&self, answer: &ChallengeAnswer) -> Result<(), AcmeError> {
        match answer {
            ChallengeAnswer::Http01 {
                token,
                key_authorization,
            } => {
                self.http01.insert(token.clone(), key_authorization.clone());
                Ok(())
            }
            ChallengeAnswer::TlsAlpn01 {
                name,
                cert_pem,
                key_pem,
            } => Ok(self
                .tls
                .set_acme_challenge(name, cert_pem.as_bytes(), key_pem.as_bytes())?),
        }
    }

    fn unserve(&self, answer: &ChallengeAnswer) {
        match answer {
            ChallengeAnswer::Http01 { token, .. } => self.http01.remove(token),
            ChallengeAnswer::TlsAlpn01 { name, .. } => self.tls.clear_acme_challenge(name),
        }
    }

    /// How long one node may order before another may take over (it died mid-order).
    fn lead_ttl(&self) -> Duration {
        self.settings
            .order_timeout
            .saturating_mul(3)
            .saturating_add(
                self.propagation()
                    .saturating_mul(u32::try_from(self.settings.names.len()).unwrap_or(u32::MAX)),
            )
            .saturating_add(Duration::from_secs(60))
    }

    /// How long the ordering node waits after publishing an answer, so every node has
    /// looked for it at least once.
    fn propagation(&self) -> Duration {
        if self.state.shared() {
            self.settings
                .follow_interval
                .saturating_mul(2)
                .saturating_add(Duration::from_millis(500))
        } else {
            Duration::ZERO
        }
    }

    /// Checks and renews until `shutdown`: sleeps until renewal is due (at
    /// most `check_interval` at a time; with a shared state at most
    /// `follow_interval`, following the ordering node meanwhile), orders,
    /// and after a failure waits `retry_min`, doubling up to `retry_max`.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        let shared = self.state.shared();
        self.install_stored().await;
        let mut failures: u32 = 0;
        // A CA issuing certificates shorter than the margin would otherwise
        // be asked again at once, forever.
        let mut not_before = Instant::now();
        loop {
            if shared {
                self.follow().await;
            }
            let due = self.renewal_wait().await;
            let mut wait = if due.is_zero() {
                not_before.saturating_duration_since(Instant::now())
            } else {
                due.min(self.settings.check_interval)
            };
            if shared && !due.is_zero() {
                wait = wait.min(self.settings.follow_interval);
            }
            if !wait.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = &mut shutdown => return,
                }
                continue;
            }
            match self.state.lead(self.lead_ttl()).await {
                Ok(true) => {}
                Ok(false) => {
                    // Another node orders: follow it.
                    not_before = Instant::now() + self.settings.follow_interval;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "ACME: cannot take the right to order");
                    not_before = Instant::now() + self.settings.retry_min;
                    continue;
                }
            }
            let attempt = tokio::select! {
                r = self.issue() => r,
                () = &mut shutdown => return,
            };
            match attempt {
                Ok(info) => {
                    failures = 0;
                    not_before = Instant::now() + self.settings.retry_min;
                    tracing::info!(serial = %info.serial, names = ?info.names, "ACME: certificate issued and in service");
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let delay = backoff(self.settings.retry_min, self.settings.retry_max, failures);
                    not_before = Instant::now() + delay;
                    tracing::warn!(error = %e, failures, retry_in_secs = delay.as_secs(), "ACME: certificate order failed; the current certificate stays in service");
                }
            }
        }
    }

    /// One complete order. On success the new certificate is stored and in
    /// service; on any error nothing was changed.
    pub async fn issue(&self) -> Result<CertInfo, AcmeError> {
        let names = &self.settings.names;
        if names.is_empty() {
            return Err(AcmeError::Cert("no names to certify".to_string()));
        }
        let account = self.account().await?;
        let identifiers: Vec<Identifier> =
            names.iter().map(|n| Identifier::Dns(n.clone())).collect();
        let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
        let mut pending = Pending {
            tls: &self.tls,
            http01: &self.http01,
            tokens: Vec::new(),
            alpn_names: Vec::new(),
            state: self.state.clone(),
            own: self.own.clone(),
            published: Vec::new(),
        };
        let kind = self.settings.challenge;
        let mut authorizations = order.authorizations();
        while let Some(result) = authorizations.next().await {
            let mut authz = result?;
            let name = authz.identifier().to_string();
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => {
                    return Err(AcmeError::Validation(format!(
                        "authorization for {name} is {other:?}"
                    )));
                }
            }
            let Some(mut challenge) = authz.challenge(kind.acme_type()) else {
                return Err(AcmeError::NoChallenge {
                    kind: kind.as_str(),
                    name,
                });
            };
            let key_authorization = challenge.key_authorization();
            let answer = match kind {
                ChallengeKind::Http01 => {
                    let token = challenge.token.clone();
                    self.http01
                        .insert(token.clone(), key_authorization.as_str().to_string());
                    pending.tokens.push(token.clone());
                    ChallengeAnswer::Http01 {
                        token,
                        key_authorization: key_authorization.as_str().to_string(),
                    }
                }
                ChallengeKind::TlsAlpn01 => {
                    let (cert, key) =
                        crate::tls_alpn_certificate(&name, key_authorization.digest().as_ref())?;
                    self.tls
                        .set_acme_challenge(&name, cert.as_bytes(), key.as_bytes())?;
                    pending.alpn_names.push(name.clone());
                    ChallengeAnswer::TlsAlpn01 {
                        name: name.clone(),
                        cert_pem: cert,
                        key_pem: key,
                    }
                }
            };
            if self.state.shared() {
                let id = answer.id();
                lock(&self.own).insert(id.clone());
                pending.published.push(id);
                self.state.publish(&answer, self.lead_ttl()).await?;
                // Every node must have looked for it before the CA connects to one of them.
                tokio::time::sleep(self.propagation()).await;
            }
            tracing::info!(%name, challenge = kind.as_str(), "ACME: challenge ready");
            challenge.set_ready().await?;
        }
        let retry = RetryPolicy::new().timeout(self.settings.order_timeout);
        let status = order.poll_ready(&retry).await?;
        if status != OrderStatus::Ready {
            let mut reasons = Vec::new();
            let mut authorizations = order.authorizations();
            while let Some(Ok(mut authz)) = authorizations.next().await {
                let name = authz.identifier().to_string();
                if let Ok(state) = authz.refresh().await {
                    for c in &state.challenges {
                        if let Some(err) = &c.error {
                            reasons.push(format!(
                                "{name}: {}",
                                err.detail.as_deref().unwrap_or("no detail")
                            ));
                        }
                    }
                }
            }
            return Err(AcmeError::Validation(format!(
                "order {status:?}: {}",
                if reasons.is_empty() {
                    "the CA gave no reason".to_string()
                } else {
                    reasons.join("; ")
                }
            )));
        }
        drop(pending);

        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(names.clone())?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        let csr = params.serialize_request(&key)?;
        order.finalize_csr(csr.der()).await?;
        let chain = order.poll_certificate(&retry).await?;
        let key_pem = key.serialize_pem();

        let info = CertInfo::from_pem(&chain)?;
        if !info.covers(names) {
            return Err(AcmeError::Cert(format!(
                "the CA issued a certificate for {:?}, not for {names:?}",
                info.names
            )));
        }
        // Refuses a chain that does not load or does not match the key
        // before anything is replaced.
        TlsProvider::from_pem(chain.as_bytes(), key_pem.as_bytes())?;
        self.state.save_certificate(&chain, &key_pem).await?;
        self.tls
            .reload_from_pem(chain.as_bytes(), key_pem.as_bytes())?;
        *lock(&self.installed) = Some(info.serial.clone());
        Ok(info)
    }

    fn builder(&self) -> Result<AccountBuilder, AcmeError> {
        Ok(match &self.settings.ca_root {
            Some(root) => Account::builder_with_root(root)?,
            None => Account::builder()?,
        })
    }

    /// The stored account for this CA, or a new one (then stored).
    async fn account(&self) -> Result<Account, AcmeError> {
        let url = &self.settings.directory_url;
        let stored = match self.state.load_account().await? {
            Some(json) => Some(serde_json::from_slice::<StoredAccount>(&json).map_err(|e| {
                AcmeError::State(format!("the stored ACME account does not parse: {e}"))
            })?),
            None => None,
        };
        if let Some(stored) = stored {
            if &stored.directory_url == url {
                return Ok(self.builder()?.from_credentials(stored.credentials).await?);
            }
            tracing::info!(directory = %url, "ACME: the CA changed; creating a new account");
        }
        let contact: Vec<&str> = self.settings.contact.iter().map(String::as_str).collect();
        let (account, credentials) = self
            .builder()?
            .create(
                &NewAccount {
                    contact: &contact,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                url.clone(),
                None,
            )
            .await?;
        let json = serde_json::to_vec_pretty(&StoredAccount {
            directory_url: url.clone(),
            credentials,
        })
        .map_err(|e| AcmeError::State(format!("cannot encode the ACME account: {e}")))?;
        self.state.save_account(&json).await?;
        tracing::info!(id = %account.id(), "ACME: account created");
        Ok(account)
    }
}

/// Challenge answers published for one order; withdrawn however the order ends.
struct Pending<'a> {
    tls: &'a TlsProvider,
    http01: &'a Http01Challenges,
    tokens: Vec<String>,
    alpn_names: Vec<String>,
    /// Shared state: the ids published for the other nodes, withdrawn from it too (they
    /// also lapse by themselves, so a withdrawal that fails costs nothing).
    state: Arc<dyn AcmeState>,
    own: Arc<Mutex<HashSet<String>>>,
    published: Vec<String>,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        for t in &self.tokens {
            self.http01.remove(t);
        }
        for n in &self.alpn_names {
            self.tls.clear_acme_challenge(n);
        }
        if self.published.is_empty() {
            return;
        }
        let ids = std::mem::take(&mut self.published);
        {
            let mut own = lock(&self.own);
            for id in &ids {
                own.remove(id);
            }
        }
        let state = self.state.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                for id in ids {
                    if let Err(e) = state.withdraw(&id).await {
                        tracing::debug!(%id, error = %e, "ACME: withdrawal failed; the answer lapses by itself");
                    }
                }
            });
        }
    }
}

fn backoff(min: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(20));
    min.saturating_mul(factor).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap() {
        let (min, max) = (Duration::from_secs(300), Duration::from_secs(3600));
        assert_eq!(backoff(min, max, 1), min);
        assert_eq!(backoff(min, max, 2), Duration::from_secs(600));
        assert_eq!(backoff(min, max, 4), Duration::from_secs(2400));
        assert_eq!(backoff(min, max, 5), max);
        assert_eq!(backoff(min, max, u32::MAX), max);
    }
}
