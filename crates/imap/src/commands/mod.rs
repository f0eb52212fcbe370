//! Command behaviour, one file per command family; each adds methods to `Session`.

mod acl;
pub(crate) mod append;
mod auth;
pub(crate) mod catenate;
pub(crate) mod context;
mod copy_move;
pub(crate) mod esearch;
mod expunge;
pub(crate) mod fetch;
mod idle;
mod list;
mod mailbox;
mod metadata;
pub(crate) mod notify;
pub(crate) mod qresync;
mod quota;
pub(crate) mod search;
mod sort;
pub(crate) mod store;
mod thread;
mod urlauth;

pub use list::wildcard_match;
