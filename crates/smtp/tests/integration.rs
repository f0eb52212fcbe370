//! The crate's end-to-end tests as one test binary: each file beside this one is a module, so
//! the workspace links one binary per crate instead of one per file (CI disk and link time).
//! Run one file's tests with `cargo test -p <crate> --test integration <file>::`.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod adapters;
mod auth;
mod bad_input;
mod clients;
mod data;
mod handoff;
mod hello;
mod mail;
mod misc;
mod submission;
mod support;
mod transaction;
mod transcript;
