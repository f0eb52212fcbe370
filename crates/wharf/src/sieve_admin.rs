//! `wharf sieve`, `wharf vacation` and `wharf forward`: users' Sieve scripts from the command
//! line. The simple forms (vacation, forward) go through `ops::rules`, as the API's do.

use std::io::Read as _;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use wharf_sieve::simple::{SimpleForward, SimpleVacation};
use wharf_store::{AccountId, Store, StoreError};

use crate::cli::{ForwardCmd, SieveCmd, VacationCmd};
use crate::config::Loaded;
use crate::ops::rules;
use crate::storage::{find_account, open_directory, store_err};

fn read_input(file: &Path) -> Result<String> {
    if file == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read standard input")?;
        Ok(s)
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
    }
}

fn compile_limits(cfg: &Loaded) -> wharf_sieve::CompileLimits {
    wharf_sieve::CompileLimits {
        max_script_bytes: cfg.config.sieve.max_script_bytes,
        ..Default::default()
    }
}

/// Stores a checked script, within the configured count.
async fn put_checked(
    cfg: &Loaded,
    store: &dyn Store,
    account: AccountId,
    name: &str,
    text: &str,
) -> Result<()> {
    if let Err(e) = wharf_sieve::compile(text, &compile_limits(cfg)) {
        bail!("{name}: {e}");
    }
    let scripts = store.list_sieve_scripts(account).await.map_err(store_err)?;
    if !scripts.iter().any(|s| s.name == name) && scripts.len() >= cfg.config.sieve.max_scripts {
        bail!(
            "the account already has {} scripts (the [sieve] max_scripts bound)",
            scripts.len()
        );
    }
    store
        .put_sieve_script(account, name, text)
        .await
        .map_err(store_err)
}

pub async fn sieve(cfg: &Loaded, cmd: SieveCmd) -> Result<()> {
    if let SieveCmd::Check { file } = &cmd {
        let text = read_input(file)?;
        return match wharf_sieve::compile(&text, &compile_limits(cfg)) {
            Ok(_) => {
                println!("{}: ok", file.display());
                Ok(())
            }
            Err(e) => bail!("{}: {e}", file.display()),
        };
    }
    let dir = open_directory(cfg).await?;
    let store = dir.store();
    match cmd {
        SieveCmd::List { user } => {
            let a = find_account(store, &user).await?;
            let list = store.list_sieve_scripts(a.id).await.map_err(store_err)?;
            if list.is_empty() {
                println!("{} has no Sieve script", a.address);
            }
            for s in list {
                let mark = if s.active { "  (active)" } else { "" };
                println!("{}  {} octets{mark}", s.name, s.size);
            }
        }
        SieveCmd::Get { user, name } => {
            let a = find_account(store, &user).await?;
            match store
                .get_sieve_script(a.id, &name)
                .await
                .map_err(store_err)?
            {
                Some(text) => print!("{text}"),
                None => bail!("{} has no script {name:?}", a.address),
            }
        }
        SieveCmd::Put {
            user,
            name,
            file,
            activate,
        } => {
            let a = find_account(store, &user).await?;
            check_name(&name)?;
            let text = read_input(&file)?;
            put_checked(cfg, store.as_ref(), a.id, &name, &text).await?;
            if activate {
                store
                    .set_active_sieve_script(a.id, Some(&name))
                    .await
                    .map_err(store_err)?;
            }
            println!(
                "stored {name} for {}{}",
                a.address,
                if activate { " (active)" } else { "" }
            );
        }
        SieveCmd::Activate { user, name } => {
            let a = find_account(store, &user).await?;
            match store.set_active_sieve_script(a.id, Some(&name)).await {
                Ok(()) => println!("{name} is now active for {}", a.address),
                Err(StoreError::NotFound(_)) => bail!("{} has no script {name:?}", a.address),
                Err(e) => return Err(store_err(e)),
            }
        }
        SieveCmd::Deactivate { user } => {
            let a = find_account(store, &user).await?;
            store
                .set_active_sieve_script(a.id, None)
                .await
                .map_err(store_err)?;
            println!("no script runs for {} now", a.address);
        }
        SieveCmd::Delete { user, name } => {
            let a = find_account(store, &user).await?;
            let active = store.active_sieve_script(a.id).await.map_err(store_err)?;
            if active.is_some_and(|(n, _)| n == name) {
                bail!("{name} is active; deactivate it first (wharf sieve deactivate {user})");
            }
            match store.delete_sieve_script(a.id, &name).await {
                Ok(()) => println!("deleted {name}"),
                Err(StoreError::NotFound(_)) => bail!("{} has no script {name:?}", a.address),
                Err(e) => return Err(store_err(e)),
            }
        }
        SieveCmd::Check { .. } => {}
    }
    Ok(())
}

/// ManageSieve's rule (RFC 5804 §1.6), so the CLI, the API and port 4190 accept the same names.
fn check_name(name: &str) -> Result<()> {
    if let Err(why) = wharf_managesieve::syntax::script_name(name.as_bytes()) {
        bail!("{name:?} is not a valid script name ({why})");
    }
    Ok(())
}

fn report_replaced(view: &crate::ops::rules::RulesView) {
    if let Some(other) = &view.replaced_script {
        eprintln!(
            "note: the script {other:?} was active and is not any more (it is kept; `wharf sieve activate` brings it back)"
        );
    }
}

pub async fn vacation(cfg: &Loaded, cmd: VacationCmd) -> Result<()> {
    let dir = open_directory(cfg).await?;
    match cmd {
        VacationCmd::Set {
            address,
            subject,
            body_file,
            from,
            until,
            days,
        } => {
            let vacation = SimpleVacation {
                subject,
                body: read_input(&body_file)?,
                from,
                until,
                days,
            };
            let view = rules::set_vacation(cfg, &dir, &address, Some(vacation)).await?;
            report_replaced(&view);
            println!("vacation reply on for {}", view.address);
        }
        VacationCmd::Clear { address } => {
            let view = rules::set_vacation(cfg, &dir, &address, None).await?;
            println!("vacation reply off for {}", view.address);
        }
        VacationCmd::Show { address } => {
            let view = rules::get(&dir, &address).await?;
            match view.vacation {
                Some(v) => {
                    println!(
                        "subject: {}",
                        v.subject.as_deref().unwrap_or("(Auto: original subject)")
                    );
                    println!("from:    {}", v.from.as_deref().unwrap_or(&view.address));
                    println!("until:   {}", v.until.as_deref().unwrap_or("(no end)"));
                    println!("days:    {}", v.days);
                    println!("\n{}", v.body);
                }
                None => println!("no vacation reply for {}", view.address),
            }
        }
    }
    Ok(())
}

pub async fn forward(cfg: &Loaded, cmd: ForwardCmd) -> Result<()> {
    let dir = open_directory(cfg).await?;
    match cmd {
        ForwardCmd::Set {
            address,
            target,
            keep,
        } => {
            let forward = SimpleForward {
                target: target.clone(),
                keep,
            };
            let view = rules::set_forward(cfg, &dir, &address, Some(forward)).await?;
            report_replaced(&view);
            println!(
                "{} now forwards to {target}{}",
                view.address,
                if keep { ", keeping a copy" } else { "" }
            );
        }
        ForwardCmd::Clear { address } => {
            let view = rules::set_forward(cfg, &dir, &address, None).await?;
            println!("{} no longer forwards", view.address);
        }
    }
    Ok(())
}
