//! Wharf's Sieve mail filtering (RFC 5228): compile a user's or an administrator's script once,
//! then run it for each delivered message to learn where the message goes.
//!
//! ```text
//! script text --lexer--> tokens --parser--> syntax tree --compile--> Script
//! Script + message + Context --interpret--> Outcome (actions, edited message, duplicate ids)
//! ```
//!
//! Extensions (the `require` names, also in [`CAPABILITIES`]): `fileinto`, `reject`, `ereject`
//! (RFC 5429), `envelope`, `encoded-character`, `body` (RFC 5173), `variables` (RFC 5229),
//! `vacation` (RFC 5230) and `vacation-seconds` (RFC 6131), `relational` (RFC 5231),
//! `subaddress` (RFC 5233, separator `+`), `imap4flags` (RFC 5232), `date` and `index`
//! (RFC 5260), `editheader` (RFC 5293), `mailbox` (RFC 5490), `comparator-i;ascii-numeric`
//! (RFC 4790), `duplicate` (RFC 7352), `spamtest`, `spamtestplus`, `virustest` (RFC 5235) and
//! `copy` (RFC 3894). `ihave`, `include`, `notify` and `environment` are not supported.
//!
//! Limits: scripts are at most [`CompileLimits::max_script_bytes`] (64 KiB) with nesting of
//! blocks and tests at most [`CompileLimits::max_nesting`] (32). A run evaluates at most
//! [`RunLimits::max_instructions`] commands and tests (10 000), executes at most
//! [`RunLimits::max_actions`] actions (64) and [`RunLimits::max_redirects`] distinct redirects
//! (4), and variable values are cut to [`RunLimits::max_variable_bytes`] (4096). Matching work
//! (value bytes × key bytes, per 100 000) is charged to the instruction budget, and `addheader`
//! may run at most `max_actions` times. Exceeding a run
//! limit, or any other runtime error, yields exactly one `Keep` and the error text: a message
//! is never lost to a broken script. [`run`] does no I/O and reads no clock but
//! [`Context::now`].
//!
//! Choices the caller must know:
//! - Several scripts in one [`run`] share actions, the imap4flags internal variable and the
//!   implicit keep, which is decided once at the end; each script gets fresh variables. `stop`
//!   ends the whole run, including later scripts.
//! - `fileinto` "INBOX" (any case) and `fileinto` into a mailbox that is not in
//!   [`Context::mailboxes`] without `:create` both become `Keep` with the same flags.
//! - A vacation reply is produced at most once per run (a script that executes `vacation` twice
//!   is a runtime error, RFC 5230 §4.7); its default handle is a hash of the
//!   `:subject`, `:from`, reason, `:addresses` and `:mime` arguments, so editing the script's
//!   reply text starts a new rate-limit window. The caller rate-limits per (handle, sender).
//! - Duplicate ids are hashes of (handle, tracked value); they are recorded when new, and
//!   refreshed when already seen only with `:last`.
//! - `editheader` never touches `Received` or `Auto-Submitted` (silently ignored).

mod address;
mod capability;
mod compile;
mod context;
mod date;
mod error;
mod ids;
mod interpret;
mod lexer;
mod matching;
mod message;
mod outcome;
mod parser;
mod script;
pub mod simple;
mod vacation;
mod variables;

pub use capability::CAPABILITIES;
pub use compile::{CompileLimits, compile};
pub use context::{Context, Envelope, RunLimits, SpamScore};
pub use error::CompileError;
pub use interpret::run;
pub use message::encode_value as encode_header_value;
pub use outcome::{Action, DuplicateRecord, Outcome, VacationReply};
pub use script::Script;
