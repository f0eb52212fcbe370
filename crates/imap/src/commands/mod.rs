//! Command behaviour, one file per command family; each adds methods to `Session`.

mod append;
mod auth;
mod copy_move;
pub(crate) mod fetch;
mod list;
mod mailbox;
mod search;
pub(crate) mod store;

pub use list::wildcard_match;
