//! The administration verbs (`domain`, `user`, `alias`, `mailbox`, `token`): each opens the
//! configured store, runs one shared operation (`ops`, the same the admin REST API runs), and
//! prints the outcome. Safe to run while `wharf serve` runs.

use std::io::{BufRead, Write};

use anyhow::{Context, Result, bail};

use crate::cli::{AliasCmd, DomainCmd, MailboxCmd, TokenCmd, UserCmd};
use crate::config::Loaded;
use crate::ops::{self, format_size};
use crate::storage::{find_account, open_directory, store_err};

/// Length of generated passwords (letters and digits: ~119 bits).
const GENERATED_PASSWORD_LEN: usize = 20;

pub async fn domain(cfg: &Loaded, cmd: DomainCmd) -> Result<()> {
    let dir = open_directory(cfg).await?;
    match cmd {
        DomainCmd::Add { name } => {
            let d = ops::domains::add(&dir, &name).await?;
            println!("domain {} added", d.name);
        }
        DomainCmd::Del { name } => {
            ops::domains::delete(&dir, &name).await?;
            println!("domain {} deleted", name.trim().to_ascii_lowercase());
        }
        DomainCmd::List => {
            for d in ops::domains::list(&dir).await? {
                println!("{}", d.name);
            }
        }
    }
    Ok(())
}

pub async fn user(cfg: &Loaded, cmd: UserCmd) -> Result<()> {
    let dir = open_directory(cfg).await?;
    match cmd {
        UserCmd::Add {
            address,
            password_stdin,
            quota,
        } => {
            let quota = match quota {
                Some(q) => ops::parse_size(&q)?,
                None => 0,
            };
            let (password, generated) = obtain_password(password_stdin)?;
            let account = ops::accounts::add(&dir, &address, &password, quota).await?;
            println!("user {} added", account.address);
            if generated {
                println!("password: {password}");
            }
        }
        UserCmd::Passwd {
            address,
            password_stdin,
        } => {
            let (password, generated) = obtain_password(password_stdin)?;
            ops::accounts::set_password(&dir, &address, &password).await?;
            println!("password of {address} changed");
            if generated {
                println!("password: {password}");
            }
        }
        UserCmd::Del { address } => {
            let address = ops::accounts::delete(&dir, &address).await?;
            println!("user {address} deleted");
        }
        UserCmd::Disable { address } => {
            let a = ops::accounts::set_disabled(&dir, &address, true).await?;
            println!("user {} disabled", a.address);
        }
        UserCmd::Enable { address } => {
            let a = ops::accounts::set_disabled(&dir, &address, false).await?;
            println!("user {} enabled", a.address);
        }
        UserCmd::List { domain } => {
            let accounts = ops::accounts::list(&dir, domain.as_deref()).await?;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:<40} {:>10} {:>10}  status",
                "address", "used", "quota"
            )?;
            for a in accounts {
                let mut status = if a.disabled { "disabled" } else { "active" }.to_string();
                if a.admin {
                    status.push_str(", admin");
                }
                writeln!(
                    out,
                    "{:<40} {:>10} {:>10}  {status}",
                    a.address, a.used.human, a.quota.human,
                )?;
            }
        }
        UserCmd::Quota { address, size } => match size {
            Some(size) => {
                let bytes = ops::parse_size(&size)?;
                let a = ops::accounts::set_quota(&dir, &address, bytes).await?;
                println!("quota of {} set to {}", a.address, a.quota.human);
            }
            None => {
                let a = ops::accounts::get(&dir, &address).await?;
                println!("{}: {} used of {}", a.address, a.used.human, a.quota.human);
            }
        },
        UserCmd::AppPassword(cmd) => crate::app_password_admin::run(&dir, cmd).await?,
        UserCmd::Admin { address, on, off } => {
            let a = match (on, off) {
                (true, _) => ops::accounts::set_admin(&dir, &address, true).await?,
                (_, true) => ops::accounts::set_admin(&dir, &address, false).await?,
                _ => ops::accounts::get(&dir, &address).await?,
            };
            let role = if a.admin { "an admin" } else { "not an admin" };
            println!("{} is {role}", a.address);
        }
    }
    Ok(())
}

pub async fn alias(cfg: &Loaded, cmd: AliasCmd) -> Result<()> {
    let dir = open_directory(cfg).await?;
    match cmd {
        AliasCmd::Add { address, target } => {
            let a = ops::aliases::add(&dir, &address, &target).await?;
            println!("alias {} -> {} added", a.address, a.target);
        }
        AliasCmd::Del { address, target } => {
            let address = ops::aliases::delete(&dir, &address, target.as_deref()).await?;
            match &target {
                Some(t) => println!("alias {address} -> {t} deleted"),
                None => println!("alias {address} deleted"),
            }
        }
        AliasCmd::List => {
            for a in ops::aliases::list(&dir).await? {
                println!("{} -> {}", a.address, a.target);
            }
        }
    }
    Ok(())
}

/// `wharf token create|list|revoke`: API tokens of the admin REST API.
pub async fn token(cfg: &Loaded, cmd: TokenCmd) -> Result<()> {
    let dir = open_directory(cfg).await?;
    let store = dir.store().as_ref();
    match cmd {
        TokenCmd::Create {
            name,
            scope,
            expires_days,
        } => {
            let scopes = ops::tokens::parse_scopes(&scope)?;
            let expires =
                expires_days.map(|d| chrono::Utc::now().timestamp() + i64::from(d) * 86_400);
            let (t, secret) = ops::tokens::create(store, &name, scopes, expires).await?;
            println!(
                "token {} ({}) created with scopes {}",
                t.id,
                t.name,
                t.scopes.join(",")
            );
            println!("secret (shown only this once): {secret}");
        }
        TokenCmd::List => {
            let tokens = ops::tokens::list(store).await?;
            if tokens.is_empty() {
                println!("no tokens");
                return Ok(());
            }
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:>5}  {:<24} {:<12} {:<20} {:<20} last used",
                "id", "name", "scopes", "created", "expires"
            )?;
            for t in tokens.iter().map(ops::tokens::TokenView::from) {
                writeln!(
                    out,
                    "{:>5}  {:<24} {:<12} {:<20} {:<20} {}",
                    t.id,
                    t.name,
                    t.scopes.join(","),
                    t.created_at,
                    t.expires_at.as_deref().unwrap_or("never"),
                    t.last_used_at.as_deref().unwrap_or("never")
                )?;
            }
        }
        TokenCmd::Revoke { id } => {
            let id = ops::tokens::revoke(store, &id).await?;
            println!("token {id} revoked");
        }
    }
    Ok(())
}

pub async fn mailbox(cfg: &Loaded, cmd: MailboxCmd) -> Result<()> {
    let dir = open_directory(cfg).await?;
    let store = dir.store();
    match cmd {
        MailboxCmd::List { user } => {
            let account = find_account(store, &user).await?;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:<30} {:<9} {:>8} {:>8} {:>10} {:>12}",
                "mailbox", "role", "messages", "unseen", "size", "uidvalidity"
            )?;
            for mb in store.list_mailboxes(account.id).await.map_err(store_err)? {
                let st = store.mailbox_status(mb.id).await.map_err(store_err)?;
                writeln!(
                    out,
                    "{:<30} {:<9} {:>8} {:>8} {:>10} {:>12}",
                    mb.name,
                    mb.special_use.map(|r| r.attribute()).unwrap_or("-"),
                    st.messages,
                    st.unseen,
                    format_size(st.size),
                    st.uid_validity
                )?;
            }
        }
    }
    Ok(())
}

/// The password from stdin (first line, without its line ending) or a freshly generated one.
fn obtain_password(from_stdin: bool) -> Result<(String, bool)> {
    if !from_stdin {
        return Ok((generate_password(GENERATED_PASSWORD_LEN), true));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        bail!("no password on standard input");
    }
    Ok((password, false))
}

pub fn generate_password(len: usize) -> String {
    use rand::Rng;
    use rand::distributions::Alphanumeric;
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_and_distinct() {
        let a = generate_password(GENERATED_PASSWORD_LEN);
        let b = generate_password(GENERATED_PASSWORD_LEN);
        assert_eq!(a.len(), GENERATED_PASSWORD_LEN);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
