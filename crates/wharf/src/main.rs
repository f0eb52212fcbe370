//! The `wharf` binary: parses the command line, loads the configuration, and runs one verb.
//! Exit status 0 on success; otherwise one line on standard error and status 1 (2 for usage).

mod acme_state;
mod admin;
mod api_backend;
mod api_import;
mod app_password_admin;
mod arrival;
mod backup;
mod cli;
mod config;
mod dkim_keys;
mod dns_records;
mod doctor;
mod first_run;
mod handoff;
mod http_wiring;
mod import;
mod logging;
mod malloc_tuning;
mod migrate;
mod node;
mod ops;
mod outbound_node;
mod pdf_helper;
mod queue_admin;
mod reindex;
mod reload;
mod report_admin;
mod reporting;
mod serve;
mod sieve_admin;
mod sieve_delivery;
mod spam_admin;
mod spam_filter;
mod srs_key;
mod state_key;
mod storage;
mod throttle_sync;
mod wiring;

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    malloc_tuning::fix_mmap_threshold();
    let cli = Cli::parse();
    // The PDF helper limits itself and runs alone: no runtime, no threads.
    if let Command::ExtractPdf {
        max_text,
        budget_ms,
    } = cli.command
    {
        return pdf_helper::run(max_text, budget_ms);
    }
    if !matches!(cli.command, Command::Serve(_)) {
        // `wharf dns example.org | head -1`: end quietly when the reader goes away, as Unix
        // tools do, instead of panicking in println!. The server keeps ignoring SIGPIPE.
        restore_default_sigpipe();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wharf: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let text = format!("{e:#}").replace(['\n', '\r'], " ");
            eprintln!("wharf: error: {text}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let path_buf = cli.config_path();
    let path = path_buf.as_path();
    match cli.command {
        Command::Serve(args) => {
            pdf_helper::install();
            serve::serve(path, args).await
        }
        Command::Domain(cmd) => admin::domain(&load_for_admin(path)?, cmd).await,
        Command::User(cmd) => admin::user(&load_for_admin(path)?, cmd).await,
        Command::Alias(cmd) => admin::alias(&load_for_admin(path)?, cmd).await,
        Command::Mailbox(cmd) => admin::mailbox(&load_for_admin(path)?, cmd).await,
        Command::Import(args) => {
            let cfg = load_for_admin(path)?;
            let dir = storage::open_directory(&cfg).await?;
            let account = storage::find_account(dir.store(), &args.user).await?;
            let report = import::import(dir.store(), &account, &args.path, args.mailbox.as_deref())
                .await
                .with_context(|| format!("import into {}", account.address))?;
            if report.per_mailbox.is_empty() {
                println!("no messages found in {}", args.path.display());
            }
            for (mailbox, n) in report.per_mailbox {
                println!("imported {n} messages into {mailbox}");
            }
            Ok(())
        }
        Command::Queue(cmd) => queue_admin::run(&load_for_admin(path)?, cmd).await,
        Command::Token(cmd) => admin::token(&load_for_admin(path)?, cmd).await,
        Command::Sieve(cmd) => sieve_admin::sieve(&load_for_admin(path)?, cmd).await,
        Command::Vacation(cmd) => sieve_admin::vacation(&load_for_admin(path)?, cmd).await,
        Command::Forward(cmd) => sieve_admin::forward(&load_for_admin(path)?, cmd).await,
        Command::Spam(cmd) => spam_admin::run(&load_for_admin(path)?, cmd).await,
        Command::Report(cmd) => report_admin::run(&load_for_admin(path)?, cmd).await,
        Command::Node(cli::NodeCmd::List) => node::list(&load_for_admin(path)?).await,
        Command::Migrate { to, blobs_to } => {
            migrate::run(&load_for_admin(path)?, &to, blobs_to.as_deref()).await
        }
        Command::Dkim(cli::DkimCmd::Generate {
            domain,
            selector,
            algo,
        }) => {
            let cfg = load_for_admin(path)?;
            let dir = storage::open_directory(&cfg).await?;
            let key = ops::dkim::generate(&cfg, &dir, &domain, selector.as_deref(), algo).await?;
            println!(
                "DKIM {} key for {} stored (selector {}, sealed with {})",
                key.algorithm,
                key.domain,
                key.selector,
                crate::state_key::key_path(&cfg).display()
            );
            println!(
                "Publish this DNS TXT record, then reload `wharf serve` (SIGHUP or POST /api/v1/reload) to start signing:"
            );
            println!("{}", key.zone_line);
            println!("name:  {}", key.dns_name);
            println!("value: {}", key.txt_value);
            Ok(())
        }
        Command::Dkim(cli::DkimCmd::Delete { domain, selector }) => {
            let cfg = load_for_admin(path)?;
            let dir = storage::open_directory(&cfg).await?;
            ops::dkim::delete(&dir, &domain, &selector).await?;
            println!(
                "DKIM key {selector} of {domain} removed; reload `wharf serve` (SIGHUP or POST /api/v1/reload) to stop signing with it"
            );
            Ok(())
        }
        Command::Dns { domain } => dns_records::print(&load_for_admin(path)?, &domain).await,
        Command::Doctor(args) => doctor::run(&load_for_admin(path)?, args).await,
        Command::Backup { dir } => backup::backup(&load_for_admin(path)?, &dir).await,
        Command::Restore { dir } => backup::restore(&load_for_admin(path)?, &dir).await,
        Command::Reindex { account } => {
            pdf_helper::install();
            reindex::run(&load_for_admin(path)?, account).await
        }
        // Handled in `main` before the runtime starts.
        Command::ExtractPdf { .. } => Ok(()),
        Command::Config(cli::ConfigCmd::Check) => {
            if !path.exists() {
                bail!("config file {} not found", path.display());
            }
            config::check(path)?;
            println!("{}: ok", path.display());
            Ok(())
        }
    }
}

#[allow(unsafe_code, reason = "signal(2) has no safe wrapper; see SAFETY")]
fn restore_default_sigpipe() {
    // SAFETY: called before any thread is started; SIG_DFL is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Admin verbs never create a configuration: they must act on the server's own store.
fn load_for_admin(path: &Path) -> Result<config::Loaded> {
    // Quiet by default so that listings stay clean; RUST_LOG still turns logs on.
    logging::init("warn");
    if !path.exists() {
        bail!(
            "config file {} not found (run `wharf serve --config {}` once to create it, or pass --config PATH)",
            path.display(),
            path.display()
        );
    }
    Ok(config::load(path)?)
}
