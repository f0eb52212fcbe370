//! The command parser: one complete command (its line, and every literal inline as
//! `{n}\r\n<n octets>`, as the session's literal receiver collected them) to a `Command`. A pure
//! function over bytes that never panics and bounds its recursion, so it is the fuzzing entry
//! point. `lexer` reads tokens; `command` dispatches on the command name; one file per command
//! family parses that family's arguments.

mod append;
mod command;
mod fetch;
mod lexer;
mod list;
mod mailbox;
mod metadata;
mod notify;
mod search;
mod store;
mod url;

pub use append::{MAX_APPEND_MESSAGES, MAX_CATENATE_PARTS, MAX_CATENATE_URLS};
use lexer::Parser;
pub use metadata::{MAX_ENTRY_NAME, MAX_METADATA_ENTRIES, valid_entry_name};
pub use url::{parse_auth_url, parse_imap_url};

use super::command::*;

/// Deepest nesting of search-key parentheses/NOT/OR accepted.
const MAX_DEPTH: usize = 32;

/// Why a command could not be parsed; `tag` is set when the tag itself was readable so the BAD
/// reply can carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub tag: Option<String>,
    pub message: String,
}

type PResult<T> = Result<T, String>;

/// Parses one complete command.
pub fn parse_command(input: &[u8]) -> Result<Command, ParseError> {
    let mut p = Parser { s: input, pos: 0 };
    let tag = match p.tag() {
        Ok(t) => t,
        Err(message) => return Err(ParseError { tag: None, message }),
    };
    let res = p.sp().and_then(|_| p.command_body());
    match res {
        Ok(kind) => match p.crlf() {
            Ok(()) => Ok(Command { tag, kind }),
            Err(message) => Err(ParseError {
                tag: Some(tag),
                message,
            }),
        },
        Err(message) => Err(ParseError {
            tag: Some(tag),
            message,
        }),
    }
}

/// A literal announced at the end of a command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiteralHeader {
    pub len: u64,
    /// `{n+}` (RFC 7888): the client does not wait for a continuation request.
    pub non_sync: bool,
}

/// Looks at a line as received (ending in LF) and reports the literal it announces, if any.
pub fn literal_at_end(line: &[u8]) -> Option<LiteralHeader> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let mut digits = &body[open + 1..];
    let non_sync = digits.last() == Some(&b'+');
    if non_sync {
        digits = &digits[..digits.len() - 1];
    }
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let len = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(LiteralHeader { len, non_sync })
}
