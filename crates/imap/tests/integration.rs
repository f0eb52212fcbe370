//! The crate's end-to-end tests as one test binary: each file beside this one is a module, so
//! the workspace links one binary per crate instead of one per file (CI disk and link time).
//! Run one file's tests with `cargo test -p <crate> --test integration <file>::`.
#![allow(clippy::expect_used, clippy::unwrap_used)]

#[macro_use]
mod common;

mod acl;
mod append;
mod auth;
mod catenate;
mod compress;
mod condstore;
mod context;
mod copy_move;
mod e2e_clients;
mod e2e_mbsync;
mod expunge;
mod fetch;
mod idle;
mod list;
mod mailbox;
mod metadata;
mod multisearch;
mod notify;
mod objectid;
mod partial;
mod qresync;
mod quota;
mod receive;
mod savedate;
mod search;
mod selected;
mod session;
mod shared;
mod shared_review;
mod sort;
mod store;
mod syntax;
mod thread;
mod urlauth;
