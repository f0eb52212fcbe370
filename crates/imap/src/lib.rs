//! wharf-imap: IMAP4rev2 (RFC 9051) with IMAP4rev1 (RFC 3501) compatibility on 143 (STARTTLS)
//! and 993 (implicit TLS). `syntax` parses commands and writes response syntax, `session` is the
//! sans-io state machine (`handle(Input) -> Step`), `commands` holds one file per command family,
//! `backend` the narrow traits the session talks to and `adapters` their binding to the store and
//! directory, `service` the connection loop plugged into `wharf_net`.

pub mod adapters;
pub mod backend;
mod commands;
pub mod config;
mod namespace;
pub mod output;
mod receive;
mod selected;
pub mod service;
pub mod session;
pub mod spool;
pub mod syntax;

pub use commands::wildcard_match;
pub use config::ImapConfig;
pub use output::{BodyPiece, Output, Piece};
pub use receive::{MAX_APPEND_LITERALS, MAX_DISCARD_ROUNDS, MAX_NON_SYNC_LITERAL};
pub use service::ImapService;
pub use session::{ConnInfo, Input, Next, Session, Shared, Step, StoreMemoryLease};
pub use syntax::parse_command;
