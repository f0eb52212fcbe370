//! wharf-directory: who may receive and who may log in. Owns domains, accounts and aliases (on top
//! of the `Store`'s rows), password hashing (argon2id) and SCRAM verifiers, server-side SASL
//! (PLAIN, LOGIN, SCRAM-SHA-256), recipient resolution (aliases, lists, catch-all, plus-tags),
//! authentication throttling and the credential cache. Protocol crates use `Directory` only.

pub mod address;
pub mod app_password;
mod cache;
mod config;
mod error;
pub mod password;
mod resolve;
mod sasl;
pub mod scram;
pub mod session_auth;
mod throttle;

pub use config::DirectoryConfig;
pub use error::{AuthError, DirectoryError};
pub use resolve::Resolution;
pub use sasl::{MECHANISMS, Mechanism, SaslExchange, SaslStep, is_cancel};
pub use session_auth::{Authenticator, DirectoryAuth, Login, SaslOutcome, SaslSession};
pub use throttle::{KIND_ACCOUNT, KIND_IP, MAX_EXPORT, ThrottleStats};

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rand::RngCore;
use tokio::sync::{OnceCell, Semaphore};
use wharf_store::{Account, AuthFailureCount, Domain, NewAccount, Store, StoreError};

use crate::address::{Address, normalize_domain};
use crate::cache::CredentialCache;
use crate::password::MAX_PASSWORD_LEN;
use crate::scram::ScramVerifier;
use crate::throttle::Throttle;

/// Longest user name accepted for authentication (bytes).
const MAX_USERNAME: usize = 320;

/// The directory service. Cheap to clone: every clone shares one state.
#[derive(Clone)]
pub struct Directory {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    cfg: DirectoryConfig,
    pub(crate) throttle: Throttle,
    cache: CredentialCache,
    /// Bounds concurrent argon2 runs: each takes ~19 MiB and a core, and the blocking pool
    /// would otherwise grow to hundreds of threads under a login flood.
    hash_slots: Semaphore,
    verifications: AtomicU64,
    /// Keys the decoy SCRAM salts of unknown users.
    pub(crate) decoy_key: [u8; 32],
    /// A hash of a random password, verified against for unknown users so that they cost the
    /// same time as known ones.
    dummy_hash: OnceCell<String>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("cfg", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

/// The normalised form of a user name for throttling and caching: the address key when it parses.
pub(crate) fn user_key(username: &str) -> String {
    Address::parse(username)
        .map(|a| a.key())
        .unwrap_or_else(|_| username.to_lowercase())
}

impl Directory {
    pub fn new(store: Arc<dyn Store>, cfg: DirectoryConfig) -> Directory {
        let slots = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, 16);
        let mut decoy_key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut decoy_key);
        Directory {
            inner: Arc::new(Inner {
                store,
                throttle: Throttle::new(&cfg),
                cache: CredentialCache::new(cfg.credential_cache_ttl),
                cfg,
                hash_slots: Semaphore::new(slots),
                verifications: AtomicU64::new(0),
                decoy_key,
                dummy_hash: OnceCell::new(),
            }),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn config(&self) -> &DirectoryConfig {
        &self.inner.cfg
    }

    /// Sizes of the authentication throttle's tables (each has a fixed bound).
    pub fn throttle_stats(&self) -> ThrottleStats {
        self.inner.throttle.stats()
    }

    /// This node's authentication failure counts in their current windows, for the other nodes of
    /// the store (see `throttle`): what `Store::report_auth_failures` takes.
    pub fn auth_failures_to_share(&self) -> Vec<AuthFailureCount> {
        self.inner.throttle.export(Instant::now(), chrono_now())
    }

    /// The other nodes' counts (`Store::auth_failures_elsewhere`), replacing the last ones: from
    /// now on every throttling decision adds them to this node's own counts.
    pub fn import_auth_failures(&self, counts: &[AuthFailureCount]) {
        self.inner
            .throttle
            .import_remote(counts, Instant::now(), chrono_now());
    }

    /// How many argon2 password verifications ran so far (cache hits are not counted).
    pub fn password_verifications(&self) -> u64 {
        self.inner.verifications.load(Ordering::Relaxed)
    }

    // ---------------------------------------------------------------- administration

    pub async fn add_domain(&self, name: &str) -> Result<Domain, DirectoryError> {
        let name = normalize_domain(name).map_err(DirectoryError::InvalidAddress)?;
        let d = self.inner.store.create_domain(&name).await?;
        tracing::info!(domain = d.name, "domain added");
        Ok(d)
    }

    /// Creates an account (and its default mailboxes). Checks the address, the domain, the
    /// password rule and uniqueness; stores an argon2id hash and a SCRAM-SHA-256 verifier. The
    /// local part is stored case-folded, so lookups match case-insensitively on every backend.
    pub async fn add_account(
        &self,
        address: &str,
        password: &str,
        quota_bytes: i64,
    ) -> Result<Account, DirectoryError> {
        let a = Address::parse_strict(address).map_err(DirectoryError::InvalidAddress)?;
        let address = a.key();
        if quota_bytes < 0 {
            return Err(StoreError::Invalid("quota must not be negative".to_string()).into());
        }
        if self.inner.store.get_domain(&a.domain).await?.is_none() {
            return Err(DirectoryError::UnknownDomain(a.domain));
        }
        password::check_strength(
            password,
            &a.local,
            &address,
            self.inner.cfg.min_password_len,
        )
        .map_err(DirectoryError::WeakPassword)?;
        if self
            .inner
            .store
            .get_account_by_address(&address)
            .await?
            .is_some()
        {
            return Err(DirectoryError::DuplicateAccount(address));
        }
        let (secret_hash, scram_sha256) = self.hash_secrets(password).await?;
        let account = self
            .inner
            .store
            .create_account(NewAccount {
                address: address.clone(),
                secret_hash,
                scram_sha256,
                quota_bytes,
            })
            .await
            .map_err(|e| match e {
                StoreError::AlreadyExists(_) => DirectoryError::DuplicateAccount(address.clone()),
                e => DirectoryError::Store(e),
            })?;
        tracing::info!(account = account.address, "account added");
        Ok(account)
    }

    /// Replaces the password (rule checked) and forgets cached verifications of the account.
    pub async fn set_password(&self, address: &str, password: &str) -> Result<(), DirectoryError> {
        let account = self.account_or_not_found(address).await?;
        let local = account
            .address
            .rsplit_once('@')
            .map_or(account.address.as_str(), |(l, _)| l);
        password::check_strength(
            password,
            local,
            &account.address,
            self.inner.cfg.min_password_len,
        )
        .map_err(DirectoryError::WeakPassword)?;
        let (secret_hash, scram) = self.hash_secrets(password).await?;
        self.inner
            .store
            .set_account_secret(account.id, &secret_hash, &scram)
            .await?;
        self.inner.cache.invalidate(&user_key(&account.address));
        self.inner.cache.invalidate(&user_key(address));
        tracing::info!(account = account.address, "password changed");
        Ok(())
    }

    /// Disables or enables an account; a disabled account cannot log in or receive mail.
    pub async fn set_disabled(&self, address: &str, disabled: bool) -> Result<(), DirectoryError> {
        let account = self.account_or_not_found(address).await?;
        self.inner
            .store
            .set_account_disabled(account.id, disabled)
            .await?;
        self.inner.cache.invalidate(&user_key(&account.address));
        tracing::info!(account = account.address, disabled, "account state changed");
        Ok(())
    }

    /// Removes an account with its mailboxes and messages.
    pub async fn delete_account(&self, address: &str) -> Result<(), DirectoryError> {
        let account = self.account_or_not_found(address).await?;
        self.inner.store.delete_account(account.id).await?;
        self.inner.cache.invalidate(&user_key(&account.address));
        tracing::info!(account = account.address, "account deleted");
        Ok(())
    }

    /// The account of an address (case-insensitive), if any.
    pub async fn account(&self, address: &str) -> Result<Option<Account>, StoreError> {
        self.inner
            .store
            .get_account_by_address(&user_key(address))
            .await
    }

    async fn account_or_not_found(&self, address: &str) -> Result<Account, DirectoryError> {
        Address::parse(address).map_err(DirectoryError::InvalidAddress)?;
        self.account(address)
            .await?
            .ok_or_else(|| DirectoryError::NotFound(address.to_string()))
    }

    /// Adds an alias. `address` is `local@domain` or `@domain` (catch-all) in a local domain;
    /// `target` is an address (account, alias, list member or external) or `@otherdomain`, which
    /// keeps the local part (`x@a` → `x@otherdomain`).
    pub async fn add_alias(&self, address: &str, target: &str) -> Result<(), DirectoryError> {
        let (address, domain) = match address.strip_prefix('@') {
            Some(d) => {
                let d = normalize_domain(d).map_err(DirectoryError::InvalidAddress)?;
                (format!("@{d}"), d)
            }
            None => {
                let a = Address::parse_strict(address).map_err(DirectoryError::InvalidAddress)?;
                (a.key(), a.domain)
            }
        };
        if self.inner.store.get_domain(&domain).await?.is_none() {
            return Err(DirectoryError::UnknownDomain(domain));
        }
        let target = match target.strip_prefix('@') {
            Some(d) => format!(
                "@{}",
                normalize_domain(d).map_err(DirectoryError::InvalidAddress)?
            ),
            None => {
                let t = Address::parse(target).map_err(DirectoryError::InvalidAddress)?;
                if self.is_local_domain(&t.domain).await? {
                    t.key()
                } else {
                    // Remote local parts may be case-sensitive: keep them as given.
                    format!("{}@{}", t.local, t.domain)
                }
            }
        };
        if address == target {
            return Err(DirectoryError::InvalidAddress(format!(
                "{address} cannot be an alias of itself"
            )));
        }
        self.inner.store.add_alias(&address, &target).await?;
        tracing::info!(alias = address, target, "alias added");
        Ok(())
    }

    /// Removes one target of an alias, or all of them when `target` is `None`.
    pub async fn delete_alias(
        &self,
        address: &str,
        target: Option<&str>,
    ) -> Result<(), DirectoryError> {
        let address = match address.strip_prefix('@') {
            Some(d) => format!(
                "@{}",
                normalize_domain(d).map_err(DirectoryError::InvalidAddress)?
            ),
            None => Address::parse(address)
                .map_err(DirectoryError::InvalidAddress)?
                .key(),
        };
        let targets = self.inner.store.alias_targets(&address).await?;
        let target = match target {
            None if targets.is_empty() => return Err(DirectoryError::NotFound(address)),
            None => None,
            Some(t) => match targets
                .iter()
                .find(|x| x.eq_ignore_ascii_case(t) || x.to_lowercase() == t.to_lowercase())
            {
                Some(x) => Some(x.clone()),
                None => return Err(DirectoryError::NotFound(format!("{address} → {t}"))),
            },
        };
        self.inner
            .store
            .delete_alias(&address, target.as_deref())
            .await?;
        Ok(())
    }

    pub async fn is_local_domain(&self, domain: &str) -> Result<bool, StoreError> {
        match normalize_domain(domain) {
            Ok(d) => Ok(self.inner.store.get_domain(&d).await?.is_some()),
            Err(_) => Ok(false),
        }
    }

    // ---------------------------------------------------------------- authentication

    /// Checks a user name and password (throttled per client source and account, cached on
    /// success). May wait before checking when the account is under attack and `ip` is not a
    /// source it logged in from recently (see `throttle`).
    ///
    /// An app password of the account (see [`app_password`]) is accepted in place of the account
    /// password; [`Directory::authenticate_account_password`] takes only the latter.
    pub async fn authenticate(
        &self,
        username: &str,
        password: &str,
        ip: IpAddr,
    ) -> Result<Account, AuthError> {
        self.authenticate_with(username, password, ip, true).await
    }

    /// [`Directory::authenticate`] without app passwords: for the web pages, where a user manages
    /// their app passwords and so must give the account password itself.
    pub async fn authenticate_account_password(
        &self,
        username: &str,
        password: &str,
        ip: IpAddr,
    ) -> Result<Account, AuthError> {
        self.authenticate_with(username, password, ip, false).await
    }

    async fn authenticate_with(
        &self,
        username: &str,
        password: &str,
        ip: IpAddr,
        app_passwords: bool,
    ) -> Result<Account, AuthError> {
        if username.is_empty() || username.len() > MAX_USERNAME {
            return Err(AuthError::Malformed(
                "user name is empty or too long".to_string(),
            ));
        }
        if password.len() > MAX_PASSWORD_LEN {
            return Err(AuthError::Malformed("password too long".to_string()));
        }
        let key = user_key(username);
        self.admit(ip, &key).await?;
        let account = match self.inner.store.get_account_by_address(&key).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "account lookup failed during authentication");
                return Err(AuthError::Temporary(e.to_string()));
            }
        };
        let Some(account) = account else {
            // Pay the same cost as for a real account, so timing does not tell who exists.
            let dummy = self.dummy_hash().await?;
            self.verify(dummy, password).await?;
            return Err(self.fail(ip, &key, AuthError::InvalidCredentials).await);
        };
        let cached = self
            .inner
            .cache
            .hit(&key, password, &account.secret_hash, Instant::now());
        if !cached
            && app_passwords
            && let Some(app) = self.check_app_password(&account, password).await?
        {
            if account.disabled {
                return Err(self.fail(ip, &key, AuthError::Disabled).await);
            }
            // Not cached: a revoked app password must stop working at once.
            self.inner.throttle.success(ip, &key, Instant::now());
            tracing::info!(%ip, user = account.address, app_password = app, "authenticated with an app password");
            return Ok(account);
        }
        let ok = if cached {
            true
        } else {
            self.verify(account.secret_hash.clone(), password).await?
        };
        if !ok {
            return Err(self.fail(ip, &key, AuthError::InvalidCredentials).await);
        }
        if account.disabled {
            self.inner.cache.invalidate(&key);
            return Err(self.fail(ip, &key, AuthError::Disabled).await);
        }
        self.inner
            .cache
            .insert(&key, password, &account.secret_hash, Instant::now());
        self.inner.throttle.success(ip, &key, Instant::now());
        tracing::info!(%ip, user = account.address, "authenticated");
        Ok(account)
    }

    /// The id of the account's app password `password` is, if it is one (its use recorded at
    /// most once a minute).
    async fn check_app_password(
        &self,
        account: &Account,
        password: &str,
    ) -> Result<Option<i64>, AuthError> {
        let Some(normalized) = app_password::normalize(password) else {
            return Ok(None);
        };
        let store = &self.inner.store;
        let found = store
            .app_password_by_hash(account.id, &app_password::hash(&normalized))
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "app password lookup failed during authentication");
                AuthError::Temporary(e.to_string())
            })?;
        let Some(app) = found else { return Ok(None) };
        let now = chrono_now();
        if app.last_used_at.is_none_or(|t| now - t >= 60)
            && let Err(e) = store.touch_app_password(app.id, now).await
        {
            tracing::warn!(error = %e, "could not record the use of an app password");
        }
        Ok(Some(app.id))
    }

    /// Starts a SASL exchange for a client at `ip`.
    pub fn start_sasl(&self, mech: Mechanism, ip: IpAddr) -> SaslExchange {
        SaslExchange::new(self.clone(), mech, ip)
    }

    /// Refuses a throttled source, or waits what the throttle asks before a password is checked.
    pub(crate) async fn admit(&self, ip: IpAddr, key: &str) -> Result<(), AuthError> {
        match self.inner.throttle.check(ip, key, Instant::now()) {
            Err(retry_after) => {
                tracing::info!(%ip, user = key, retry_after_secs = retry_after.as_secs(), "authentication refused: throttled");
                Err(AuthError::Throttled { retry_after })
            }
            Ok(wait) if wait.is_zero() => Ok(()),
            Ok(wait) => {
                tracing::info!(%ip, user = key, wait_ms = wait.as_millis() as u64, "authentication slowed: account under attack, unknown source");
                tokio::time::sleep(wait).await;
                Ok(())
            }
        }
    }

    /// For credentials checked outside the directory (API tokens): refuses a throttled source,
    /// or waits what the throttle asks, exactly as before a password check. `key` names what
    /// was tried (it takes the place of the account).
    pub async fn admit_external(&self, ip: IpAddr, key: &str) -> Result<(), AuthError> {
        self.admit(ip, key).await
    }

    /// A failed check of such a credential: counted and delayed like a wrong password.
    pub async fn fail_external(&self, ip: IpAddr, key: &str) -> AuthError {
        self.fail(ip, key, AuthError::InvalidCredentials).await
    }

    /// Records a failure, waits the throttle's delay, and hands back `err`.
    pub(crate) async fn fail(&self, ip: IpAddr, key: &str, err: AuthError) -> AuthError {
        let delay = self.inner.throttle.failure(ip, key, Instant::now());
        tracing::info!(%ip, user = key, error = %err, delay_ms = delay.as_millis() as u64, "authentication failed");
        tokio::time::sleep(delay).await;
        err
    }

    async fn verify(&self, phc: String, password: &str) -> Result<bool, AuthError> {
        let _slot = self
            .inner
            .hash_slots
            .acquire()
            .await
            .map_err(|_| AuthError::Temporary("directory shutting down".to_string()))?;
        self.inner.verifications.fetch_add(1, Ordering::Relaxed);
        let password = password.to_string();
        tokio::task::spawn_blocking(move || password::verify_password(&phc, &password))
            .await
            .map_err(|e| AuthError::Temporary(format!("password verification task: {e}")))
    }

    async fn dummy_hash(&self) -> Result<String, AuthError> {
        self.inner
            .dummy_hash
            .get_or_try_init(|| async {
                let mut random = [0u8; 24];
                rand::rngs::OsRng.fill_bytes(&mut random);
                let pw: String = random.iter().map(|b| format!("{b:02x}")).collect();
                tokio::task::spawn_blocking(move || password::hash_password(&pw))
                    .await
                    .map_err(|e| AuthError::Temporary(e.to_string()))?
                    .map_err(AuthError::Temporary)
            })
            .await
            .cloned()
    }

    /// argon2id PHC string and SCRAM-SHA-256 verifier of a new password, off the executor.
    async fn hash_secrets(&self, password: &str) -> Result<(String, String), DirectoryError> {
        let backend = |e: String| DirectoryError::Store(StoreError::Backend(e));
        let _slot = self
            .inner
            .hash_slots
            .acquire()
            .await
            .map_err(|_| backend("directory shutting down".to_string()))?;
        let password = password.to_string();
        tokio::task::spawn_blocking(move || {
            let hash = password::hash_password(&password)?;
            Ok((hash, ScramVerifier::generate(&password).encode()))
        })
        .await
        .map_err(|e| backend(format!("password hashing task: {e}")))?
        .map_err(backend)
    }
}

/// Unix seconds now.
fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
