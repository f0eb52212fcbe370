//! The crate's end-to-end tests as one test binary: each file beside this one is a module, so
//! the workspace links one binary per crate instead of one per file (CI disk and link time).
//! Run one file's tests with `cargo test -p <crate> --test integration <file>::`.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod acl;
mod append_many;
mod attachment_text;
mod blob_race;
mod dir_cache;
mod durability_bench;
mod mailbox_names;
mod message_stream;
mod metadata;
mod migrations;
mod pg_unavailable;
mod queue;
mod s3_blobs;
mod search_bench;
mod search_index;
mod search_words;
mod spam_state;
mod stem_index;
mod suite;
mod tally;
mod wal_bound;
