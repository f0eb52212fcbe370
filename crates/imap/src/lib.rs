//! wharf-imap: IMAP4rev2 (RFC 9051) with IMAP4rev1 (RFC 3501) compatibility on 143 (STARTTLS)
//! and 993 (implicit TLS). `syntax` parses commands and writes response syntax, `session` is the
//! sans-io state machine, `commands` holds one file per command family, `service` is the
//! connection loop plugged into `wharf_net`.

mod commands;
pub mod config;
pub mod service;
pub mod session;
pub mod syntax;

pub use commands::wildcard_match;
pub use config::ImapConfig;
pub use service::ImapService;
pub use session::{ConnInfo, Next, Reply, Session};
pub use syntax::parse_command;
