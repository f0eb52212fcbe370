//! IMAP syntax: the command model, the pure command parser (fuzz entry point), and the helpers
//! that write response syntax (strings, dates, modified UTF-7 mailbox names).

pub mod command;
pub mod parser;
pub mod response;
pub mod utf7;

pub use command::*;
pub use parser::{
    LiteralHeader, ParseError, literal_at_end, parse_auth_url, parse_command, parse_imap_url,
};
