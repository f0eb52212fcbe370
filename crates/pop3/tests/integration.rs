//! The crate's end-to-end tests as one test binary: each file beside this one is a module, so
//! the workspace links one binary per crate instead of one per file (CI disk and link time).
//! Run one file's tests with `cargo test -p <crate> --test integration <file>::`.
#![allow(clippy::expect_used, clippy::unwrap_used)]

#[macro_use]
mod common;

mod authorization;
mod e2e_clients;
mod e2e_policy;
mod e2e_sessions;
mod support;
mod transaction;
mod update;
