//! The ACME client loop: account, order, challenges, finalization, storage
//! and the hot swap into the TLS provider; renewal on schedule; retries
//! with backoff while the old certificate stays in service.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use instant_acme::{
    Account, AccountBuilder, AuthorizationStatus, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use wharf_net::TlsProvider;

use crate::storage::StoredAccount;
use crate::{AcmeError, AcmeSettings, AcmeStore, CertInfo, ChallengeKind, Http01Challenges};

pub struct AcmeManager {
    settings: AcmeSettings,
    tls: TlsProvider,
    http01: Http01Challenges,
    store: AcmeStore,
}

impl AcmeManager {
    pub fn new(settings: AcmeSettings, tls: TlsProvider) -> Result<AcmeManager, AcmeError> {
        let store = AcmeStore::open(&settings.state_dir)?;
        Ok(AcmeManager {
            settings,
            tls,
            http01: Http01Challenges::new(),
            store,
        })
    }

    /// The HTTP-01 table the port-80 listener must serve.
    pub fn http01(&self) -> Http01Challenges {
        self.http01.clone()
    }

    pub fn store(&self) -> &AcmeStore {
        &self.store
    }

    /// The stored certificate, if there is one that parses.
    pub fn stored(&self) -> Option<CertInfo> {
        match self.store.load_certificate() {
            Ok(Some((chain, _))) => match CertInfo::from_pem(&chain) {
                Ok(info) => Some(info),
                Err(e) => {
                    tracing::warn!(error = %e, path = %self.store.cert_path().display(), "ACME: stored certificate unreadable");
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

    /// Puts a stored, unexpired certificate into service (at start, before
    /// the first order). Returns what was installed.
    pub fn install_stored(&self) -> Option<CertInfo> {
        let (chain, key) = self.store.load_certificate().ok().flatten()?;
        let info = CertInfo::from_pem(&chain).ok()?;
        if info.not_after <= SystemTime::now() {
            return None;
        }
        match self.tls.reload_from_pem(chain.as_bytes(), key.as_bytes()) {
            Ok(()) => {
                tracing::info!(serial = %info.serial, "ACME: stored certificate in service");
                Some(info)
            }
            Err(e) => {
                tracing::warn!(error = %e, "ACME: stored certificate refused");
                None
            }
        }
    }

    /// How long until the stored certificate must be renewed (zero: now).
    pub fn renewal_wait(&self) -> Duration {
        match self.stored() {
            Some(info) if info.covers(&self.settings.names) => info
                .renew_at(self.settings.renew_margin)
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO),
            _ => Duration::ZERO,
        }
    }

    /// Checks and renews until `shutdown`: sleeps until renewal is due (at
    /// most `check_interval` at a time), orders, and after a failure waits
    /// `retry_min`, doubling up to `retry_max`.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        self.install_stored();
        let mut failures: u32 = 0;
        // A CA issuing certificates shorter than the margin would otherwise
        // be asked again at once, forever.
        let mut not_before = Instant::now();
        loop {
            let due = self.renewal_wait();
            let wait = if due.is_zero() {
                not_before.saturating_duration_since(Instant::now())
            } else {
                due.min(self.settings.check_interval)
            };
            if !wait.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = &mut shutdown => return,
                }
                continue;
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
            match kind {
                ChallengeKind::Http01 => {
                    let token = challenge.token.clone();
                    self.http01
                        .insert(token.clone(), key_authorization.as_str().to_string());
                    pending.tokens.push(token);
                }
                ChallengeKind::TlsAlpn01 => {
                    let (cert, key) =
                        crate::tls_alpn_certificate(&name, key_authorization.digest().as_ref())?;
                    self.tls
                        .set_acme_challenge(&name, cert.as_bytes(), key.as_bytes())?;
                    pending.alpn_names.push(name.clone());
                }
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
        self.store.save_certificate(&chain, &key_pem)?;
        self.tls
            .reload_from_pem(chain.as_bytes(), key_pem.as_bytes())?;
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
        if let Some(stored) = self.store.load_account()? {
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
        self.store.save_account(&StoredAccount {
            directory_url: url.clone(),
            credentials,
        })?;
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
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        for t in &self.tokens {
            self.http01.remove(t);
        }
        for n in &self.alpn_names {
            self.tls.clear_acme_challenge(n);
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
