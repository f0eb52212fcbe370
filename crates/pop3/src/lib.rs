//! wharf-pop3: POP3 (RFC 1939) with CAPA/RESP-CODES (RFC 2449), STLS (RFC 2595) and SASL AUTH
//! (RFC 5034) over the INBOX of a Wharf account. `session` is the sans-io state machine
//! (`handle(Input) -> Step { output, next }`), `service` the connection loop plugged into
//! `wharf_net`, `adapters` binds the session's ports (`backend`) to the directory and the store,
//! `transfer` streams messages to the client.

pub mod adapters;
pub mod backend;
mod commands;
pub mod config;
pub mod service;
pub mod session;
pub mod syntax;
pub mod transfer;

pub use adapters::StoreMaildrop;
pub use backend::{
    AuthFailure, Authenticator, DropEntry, Login, Maildrop, MessageBody, SaslOutcome, SaslSession,
    Snapshot, Vanished,
};
pub use commands::unique_id;
pub use config::Pop3Config;
pub use service::Pop3Service;
pub use session::{ConnInfo, Input, Next, Session, Shared, Step};
pub use syntax::{Output, Piece};
pub use wharf_directory::DirectoryAuth;
