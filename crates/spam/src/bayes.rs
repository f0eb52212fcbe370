//! The statistical classifier: Robinson's per-token probability with Fisher's chi-square
//! combining (as in SpamBayes and bogofilter), over per-token (ham, spam) message counts.
//!
//! The classifier is pure: it takes a [`Model`] snapshot — trained-message totals and the counts
//! of just this message's tokens, for the global scope and optionally one user's scope — and
//! returns a spam probability with the tokens that weighed most. The store provides the counts
//! through [`TokenStore`] and applies what [`training_delta`] says when a user moves mail into or
//! out of Junk.
//!
//! Global and per-user evidence are pooled: for every token, `ham = global.ham + w·user.ham` and
//! `spam = global.spam + w·user.spam`, and the totals the same way, with `w =
//! BayesConfig::user_weight` once the user has trained at least `min_user_trained` messages (else
//! the user's counts are ignored). The user's own judgement thus dominates the tokens they
//! trained, while words they never trained keep their global meaning.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use serde::Deserialize;

use crate::tokens::{TokenHash, TokenSet};

/// Whose counts: the server-wide model, or one account's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Global,
    /// An account id.
    User(i64),
}

/// A message class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    Ham,
    Spam,
}

/// How many trained messages of each class contained a token (or, for totals, were trained).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub ham: u32,
    pub spam: u32,
}

/// One scope's evidence for one message: totals plus the counts of the message's tokens
/// (tokens absent from the map have zero counts).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScopeCounts {
    pub totals: Counts,
    pub tokens: HashMap<TokenHash, Counts>,
}

/// The snapshot the classifier decides from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Model {
    pub global: ScopeCounts,
    pub user: Option<ScopeCounts>,
}

/// Classifier tuning (SpamBayes defaults).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BayesConfig {
    /// Robinson's `s`: how strongly the prior `x` pulls rarely seen tokens.
    pub unknown_word_strength: f64,
    /// Robinson's `x`: the probability of a token never seen.
    pub unknown_word_prob: f64,
    /// Tokens with |p − 0.5| below this are ignored.
    pub minimum_prob_strength: f64,
    /// At most this many of the most extreme tokens are combined.
    pub max_discriminators: usize,
    /// Multiplier of a user's own counts against the global ones.
    pub user_weight: f64,
    /// A user's counts are used once they trained at least this many messages.
    pub min_user_trained: u32,
    /// No probability is given until the pooled model holds this many trained messages.
    pub min_trained: u32,
}

impl Default for BayesConfig {
    fn default() -> Self {
        BayesConfig {
            unknown_word_strength: 0.45,
            unknown_word_prob: 0.5,
            minimum_prob_strength: 0.1,
            max_discriminators: 150,
            user_weight: 2.0,
            min_user_trained: 5,
            min_trained: 10,
        }
    }
}

/// A token that weighed on the decision, with its Robinson probability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clue {
    pub token: TokenHash,
    pub probability: f64,
}

/// The classifier's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// Spam probability in [0, 1].
    pub probability: f64,
    /// The most significant tokens, strongest first (at most 10).
    pub clues: Vec<Clue>,
    /// Whether the user's own counts took part.
    pub used_user: bool,
}

/// Classifies a message's tokens against `model`. `None` when the model is not trained enough
/// to say anything.
pub fn classify(model: &Model, tokens: &[TokenHash], cfg: &BayesConfig) -> Option<Classification> {
    let user = model
        .user
        .as_ref()
        .filter(|u| u.totals.ham.saturating_add(u.totals.spam) >= cfg.min_user_trained);
    let w = if user.is_some() { cfg.user_weight } else { 0.0 };
    let (u_ham, u_spam) = user.map_or((0.0, 0.0), |u| {
        (f64::from(u.totals.ham), f64::from(u.totals.spam))
    });
    let total_ham = f64::from(model.global.totals.ham) + w * u_ham;
    let total_spam = f64::from(model.global.totals.spam) + w * u_spam;
    if total_ham + total_spam < f64::from(cfg.min_trained) {
        return None;
    }
    let mut clues: Vec<Clue> = Vec::new();
    for &token in tokens {
        let g = model.global.tokens.get(&token).copied().unwrap_or_default();
        let u = user
            .and_then(|u| u.tokens.get(&token).copied())
            .unwrap_or_default();
        let ham = f64::from(g.ham) + w * f64::from(u.ham);
        let spam = f64::from(g.spam) + w * f64::from(u.spam);
        if ham + spam <= 0.0 {
            continue;
        }
        // Counts can exceed totals if the store drifted; clamp the ratios.
        let ham_ratio = if total_ham > 0.0 {
            (ham / total_ham).min(1.0)
        } else {
            0.0
        };
        let spam_ratio = if total_spam > 0.0 {
            (spam / total_spam).min(1.0)
        } else {
            0.0
        };
        if ham_ratio + spam_ratio <= 0.0 {
            continue;
        }
        let p = spam_ratio / (ham_ratio + spam_ratio);
        let s = cfg.unknown_word_strength;
        // Robinson: shrink towards x by the amount of evidence (count in unweighted messages).
        let n = ham + spam;
        let f = (s * cfg.unknown_word_prob + n * p) / (s + n);
        if (f - 0.5).abs() >= cfg.minimum_prob_strength {
            clues.push(Clue {
                token,
                probability: f,
            });
        }
    }
    clues.sort_by(|a, b| {
        (b.probability - 0.5)
            .abs()
            .total_cmp(&(a.probability - 0.5).abs())
            .then(a.token.cmp(&b.token))
    });
    clues.truncate(cfg.max_discriminators);
    let probability = chi_square_combine(clues.iter().map(|c| c.probability));
    clues.truncate(10);
    Some(Classification {
        probability,
        clues,
        used_user: user.is_some(),
    })
}

/// Fisher/Robinson chi-square combining of token probabilities (SpamBayes `chi2_spamprob`).
fn chi_square_combine(probs: impl Iterator<Item = f64>) -> f64 {
    let mut ln_spam = 0.0f64; // Σ ln(1 − p)
    let mut ln_ham = 0.0f64; // Σ ln p
    let mut n = 0u32;
    for p in probs {
        let p = p.clamp(1e-6, 1.0 - 1e-6);
        ln_spam += (1.0 - p).ln();
        ln_ham += p.ln();
        n += 1;
    }
    if n == 0 {
        return 0.5;
    }
    let s = 1.0 - chi2_q(-2.0 * ln_spam, 2 * n);
    let h = 1.0 - chi2_q(-2.0 * ln_ham, 2 * n);
    ((s - h + 1.0) / 2.0).clamp(0.0, 1.0)
}

/// P(χ² ≥ x2) with `v` (even) degrees of freedom.
fn chi2_q(x2: f64, v: u32) -> f64 {
    let m = x2 / 2.0;
    let mut term = (-m).exp();
    let mut sum = term;
    for i in 1..(v / 2) {
        term *= m / f64::from(i);
        sum += term;
    }
    sum.min(1.0)
}

/// What a store must add to its counts to train (or untrain) one message in one scope:
/// `totals += (ham_messages, spam_messages)` and, for each token, `counts += (ham, spam)`,
/// clamping at zero (rows that reach (0, 0) may be deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingDelta {
    pub ham_messages: i32,
    pub spam_messages: i32,
    pub ham: i32,
    pub spam: i32,
    pub tokens: Vec<TokenHash>,
}

/// The change that moves a message from how it was trained in a scope (`previous`, `None` if
/// never) to `target` (`None` to unlearn). `None` when nothing changes.
///
/// A move into Junk is `training_delta(tokens, stored_class, Some(Class::Spam))`; a move out
/// of Junk is `(…, Some(Class::Spam), Some(Class::Ham))`; deleting a trained message may unlearn
/// it with `(…, Some(class), None)`. The store remembers each message's trained class.
pub fn training_delta(
    tokens: &TokenSet,
    previous: Option<Class>,
    target: Option<Class>,
) -> Option<TrainingDelta> {
    if previous == target {
        return None;
    }
    let mut ham = 0i32;
    let mut spam = 0i32;
    for (class, sign) in [(previous, -1), (target, 1)] {
        match class {
            Some(Class::Ham) => ham += sign,
            Some(Class::Spam) => spam += sign,
            None => {}
        }
    }
    Some(TrainingDelta {
        ham_messages: ham,
        spam_messages: spam,
        ham,
        spam,
        tokens: tokens.hashes().to_vec(),
    })
}

/// Where the classifier's counts live; the store implements it over its token tables.
///
/// Recommended schema (same in SQLite and PostgreSQL; `scope` is 0 for global, else the
/// account id):
/// - `spam_token(scope BIGINT, token BIGINT /* TokenHash as i64 */, ham INTEGER, spam INTEGER,
///   last_seen BIGINT, PRIMARY KEY (scope, token))`
/// - `spam_totals(scope BIGINT PRIMARY KEY, ham INTEGER, spam INTEGER)`
/// - `spam_trained(account_id BIGINT, message_id BIGINT, class SMALLINT /* 0 ham, 1 spam */,
///   PRIMARY KEY (account_id, message_id))` — how each message was trained, the `previous`
///   of [`training_delta`].
pub trait TokenStore {
    type Error;
    /// Trained-message totals of a scope ((0, 0) if none).
    fn totals(&self, scope: Scope) -> impl Future<Output = Result<Counts, Self::Error>> + Send;
    /// Counts of those `tokens` that the scope has; absent tokens may be left out.
    fn counts(
        &self,
        scope: Scope,
        tokens: &[TokenHash],
    ) -> impl Future<Output = Result<HashMap<TokenHash, Counts>, Self::Error>> + Send;
    /// Applies a training delta to a scope, atomically.
    fn apply(
        &self,
        scope: Scope,
        delta: &TrainingDelta,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Reads the [`Model`] snapshot for one message's tokens: global, plus `user`'s if given.
pub async fn load_model<S: TokenStore + Sync>(
    store: &S,
    user: Option<i64>,
    tokens: &[TokenHash],
) -> Result<Model, S::Error> {
    let global = ScopeCounts {
        totals: store.totals(Scope::Global).await?,
        tokens: store.counts(Scope::Global, tokens).await?,
    };
    let user = match user {
        Some(id) => {
            let totals = store.totals(Scope::User(id)).await?;
            let tokens = if totals.ham > 0 || totals.spam > 0 {
                store.counts(Scope::User(id), tokens).await?
            } else {
                HashMap::new()
            };
            Some(ScopeCounts { totals, tokens })
        }
        None => None,
    };
    Ok(Model { global, user })
}

/// An in-memory [`TokenStore`] for tests and offline evaluation.
#[derive(Debug, Default)]
pub struct MemoryTokenStore {
    scopes: Mutex<HashMap<Scope, ScopeCounts>>,
}

impl MemoryTokenStore {
    /// Synchronous snapshot (what `load_model` would return).
    pub fn model(&self, user: Option<i64>, tokens: &[TokenHash]) -> Model {
        let scopes = self.scopes.lock().unwrap_or_else(|e| e.into_inner());
        let pick = |scope: Scope| {
            scopes
                .get(&scope)
                .map(|s| ScopeCounts {
                    totals: s.totals,
                    tokens: tokens
                        .iter()
                        .filter_map(|t| s.tokens.get(t).map(|c| (*t, *c)))
                        .collect(),
                })
                .unwrap_or_default()
        };
        Model {
            global: pick(Scope::Global),
            user: user.map(|id| pick(Scope::User(id))),
        }
    }

    /// Synchronous [`TokenStore::apply`].
    pub fn apply_now(&self, scope: Scope, delta: &TrainingDelta) {
        let mut scopes = self.scopes.lock().unwrap_or_else(|e| e.into_inner());
        let s = scopes.entry(scope).or_default();
        s.totals.ham = add_clamped(s.totals.ham, delta.ham_messages);
        s.totals.spam = add_clamped(s.totals.spam, delta.spam_messages);
        for t in &delta.tokens {
            let c = s.tokens.entry(*t).or_default();
            c.ham = add_clamped(c.ham, delta.ham);
            c.spam = add_clamped(c.spam, delta.spam);
            if *c == Counts::default() {
                s.tokens.remove(t);
            }
        }
    }
}

fn add_clamped(v: u32, d: i32) -> u32 {
    v.saturating_add_signed(d)
}

impl TokenStore for MemoryTokenStore {
    type Error = std::convert::Infallible;
    fn totals(&self, scope: Scope) -> impl Future<Output = Result<Counts, Self::Error>> + Send {
        let scopes = self.scopes.lock().unwrap_or_else(|e| e.into_inner());
        let totals = scopes.get(&scope).map(|s| s.totals).unwrap_or_default();
        std::future::ready(Ok(totals))
    }
    fn counts(
        &self,
        scope: Scope,
        tokens: &[TokenHash],
    ) -> impl Future<Output = Result<HashMap<TokenHash, Counts>, Self::Error>> + Send {
        let scopes = self.scopes.lock().unwrap_or_else(|e| e.into_inner());
        let map = scopes
            .get(&scope)
            .map(|s| {
                tokens
                    .iter()
                    .filter_map(|t| s.tokens.get(t).map(|c| (*t, *c)))
                    .collect()
            })
            .unwrap_or_default();
        std::future::ready(Ok(map))
    }
    fn apply(
        &self,
        scope: Scope,
        delta: &TrainingDelta,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.apply_now(scope, delta);
        std::future::ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(words: &str) -> TokenSet {
        TokenSet::from_message(format!("Subject: x\r\n\r\n{words}\r\n").as_bytes())
    }

    #[test]
    fn untrained_gives_none() {
        let t = tokens("hello world");
        assert!(classify(&Model::default(), t.hashes(), &BayesConfig::default()).is_none());
    }

    #[test]
    fn separates_trained_classes() {
        let store = MemoryTokenStore::default();
        for i in 0..20 {
            let spam = tokens(&format!("viagra cheap pills offer winner{i}"));
            let ham = tokens(&format!("meeting agenda project review notes{i}"));
            store.apply_now(
                Scope::Global,
                &training_delta(&spam, None, Some(Class::Spam)).unwrap(),
            );
            store.apply_now(
                Scope::Global,
                &training_delta(&ham, None, Some(Class::Ham)).unwrap(),
            );
        }
        let cfg = BayesConfig::default();
        let s = tokens("cheap pills for you");
        let m = store.model(None, s.hashes());
        let p = classify(&m, s.hashes(), &cfg).unwrap().probability;
        assert!(p > 0.95, "{p}");
        let h = tokens("project meeting tomorrow");
        let m = store.model(None, h.hashes());
        let c = classify(&m, h.hashes(), &cfg).unwrap();
        assert!(c.probability < 0.05, "{}", c.probability);
        assert!(!c.clues.is_empty());
    }

    #[test]
    fn delta_moves_and_unlearns() {
        let t = tokens("alpha beta gamma");
        assert!(training_delta(&t, Some(Class::Spam), Some(Class::Spam)).is_none());
        let d = training_delta(&t, Some(Class::Spam), Some(Class::Ham)).unwrap();
        assert_eq!(
            (d.ham_messages, d.spam_messages, d.ham, d.spam),
            (1, -1, 1, -1)
        );
        let d = training_delta(&t, Some(Class::Ham), None).unwrap();
        assert_eq!((d.ham, d.spam), (-1, 0));
        let store = MemoryTokenStore::default();
        store.apply_now(
            Scope::Global,
            &training_delta(&t, None, Some(Class::Spam)).unwrap(),
        );
        store.apply_now(
            Scope::Global,
            &training_delta(&t, Some(Class::Spam), None).unwrap(),
        );
        assert_eq!(store.model(None, t.hashes()), Model::default());
    }

    #[test]
    fn chi2_bounds() {
        assert!((chi_square_combine([0.99; 20].into_iter()) - 1.0).abs() < 1e-3);
        assert!(chi_square_combine([0.01; 20].into_iter()) < 1e-3);
        assert!((chi_square_combine(std::iter::empty()) - 0.5).abs() < 1e-9);
    }
}
