//! Wharf's spam scoring engine, pure and I/O-free except for two narrow async edges.
//!
//! It owns: reading a message once for scoring ([`analysis`], [`html`]), the classifier's
//! features ([`tokens`]) and the Robinson/Fisher classifier with its training deltas
//! ([`bayes`]), the heuristic, authentication, list, reputation and Bayes rules ([`rules`]),
//! DNS block list queries and answers ([`dnsbl`]), the greylisting decision ([`greylist`]), the
//! score, action and headers ([`pipeline`]), and an optional rspamd `/checkv2` client
//! ([`rspamd`]).
//!
//! It does not own: where counts, greylist entries, lists and reputation are stored (the store
//! implements [`bayes::TokenStore`] and keeps the rest as plain rows), DNS resolution (the server
//! implements [`dnsbl::DnsLookup`]), or SMTP replies and mailbox filing (the SMTP crate acts on
//! [`pipeline::Verdict`]).

pub mod analysis;
pub mod bayes;
pub mod dnsbl;
pub mod greylist;
pub mod html;
pub mod pipeline;
pub mod rspamd;
pub mod rules;
pub mod tokens;

pub use analysis::Analysis;
pub use bayes::{
    BayesConfig, Class, Classification, Counts, Model, Scope, TokenStore, TrainingDelta, classify,
    load_model, training_delta,
};
pub use dnsbl::{DnsLookup, DnsblConfig};
pub use pipeline::{Action, Config, Facts, Scan, Verdict, evaluate};
pub use rules::{
    AuthResult, AuthVerdicts, DmarcPolicy, Hit, Reputation, SenderLists,
    authenticated_sender_domain,
};
pub use tokens::{TokenHash, TokenSet, hash_token};
