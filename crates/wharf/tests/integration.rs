//! The crate's end-to-end tests as one test binary: each file beside this one is a module, so
//! the workspace links one binary per crate instead of one per file (CI disk and link time).
//! Run one file's tests with `cargo test -p <crate> --test integration <file>::`.
#![allow(clippy::expect_used, clippy::unwrap_used)]

#[macro_use]
mod common;

mod api;
mod api_doctor;
mod api_mail;
mod backup;
mod cli;
mod config_check;
mod doctor;
mod e2e;
mod e2e_crash;
mod e2e_http;
mod e2e_inbound;
mod e2e_outbound;
mod e2e_reports;
mod e2e_sieve;
mod e2e_smtp_to_imap;
mod e2e_smtp_to_pop3;
mod e2e_spam;
mod first_run;
mod import;
mod import_race;
mod migrate;
mod outbound_cli;
mod package;
mod pdf_text;
mod pipe;
mod postgres;
mod reindex;
mod reload;
mod s3_blobs;
mod scale_out_haproxy;
mod serve;
mod slowloris;
mod throttle_shared;
mod web_admin;
