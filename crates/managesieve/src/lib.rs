//! wharf-managesieve: ManageSieve (RFC 5804) on port 4190, for the Sieve scripts of a Wharf
//! account. `session` is the sans-io state machine (`handle(Input) -> Step { output, next }`),
//! `syntax` the wire grammar (strings, literals, responses), `commands` what each command does,
//! `service` the connection loop plugged into `wharf_net`, `adapters` binds the session's ports
//! (`backend`) to the directory and the store.

pub mod adapters;
pub mod backend;
mod commands;
pub mod config;
pub mod service;
pub mod session;
pub mod syntax;

pub use adapters::StoreScripts;
pub use backend::{
    AuthFailure, Authenticator, Login, SaslOutcome, SaslSession, ScriptChecker, ScriptInfo,
    ScriptQuota, ScriptStore,
};
pub use config::ManageSieveConfig;
pub use service::ManageSieveService;
pub use session::{ConnInfo, Input, Next, Session, Step};
pub use syntax::Output;
pub use wharf_directory::DirectoryAuth;
