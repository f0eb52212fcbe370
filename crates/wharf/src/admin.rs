//! The administration verbs (`domain`, `user`, `alias`, `mailbox`): each opens the configured store,
//! does one change or listing, and prints the outcome. Safe to run while `wharf serve` runs.

use std::io::{BufRead, Write};

use anyhow::{Context, Result, anyhow, bail};
use wharf_directory::{Directory, DirectoryError};
use wharf_store::StoreError;

use crate::cli::{AliasCmd, DomainCmd, MailboxCmd, UserCmd};
use crate::config::Loaded;
use crate::storage::{directory_error, find_account, open_directory, store_err};

/// Length of generated passwords (letters and digits: ~119 bits).
const GENERATED_PASSWORD_LEN: usize = 20;

pub async fn domain(cfg: &Loaded, cmd: DomainCmd) -> Result<()> {
    let dir = open_directory(cfg).await?;
    let store = dir.store();
    match cmd {
        DomainCmd::Add { name } => {
            let d = dir.add_domain(&name).await.map_err(directory_error)?;
            println!("domain {} added", d.name);
        }
        DomainCmd::Del { name } => {
            let name = name.to_ascii_lowercase();
            match store.delete_domain(&name).await {
                Ok(()) => println!("domain {name} deleted"),
                Err(StoreError::NotFound(_)) => bail!("unknown domain {name}"),
                Err(StoreError::Invalid(why)) => {
                    bail!("domain {name} still has accounts or aliases ({why}); delete them first")
                }
                Err(e) => return Err(anyhow!("store: {e}")),
            }
        }
        DomainCmd::List => {
            for d in store.list_domains().await.map_err(store_err)? {
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
                Some(q) => parse_size(&q)?,
                None => 0,
            };
            let (password, generated) = obtain_password(password_stdin)?;
            let account = dir
                .add_account(&address, &password, quota)
                .await
                .map_err(directory_error)?;
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
            dir.set_password(&address, &password)
                .await
                .map_err(directory_error)?;
            println!("password of {address} changed");
            if generated {
                println!("password: {password}");
            }
        }
        UserCmd::Del { address } => {
            let account = find_account(dir.store(), &address).await?;
            // Through the directory, so that its credential cache forgets the account too.
            dir.delete_account(&account.address)
                .await
                .map_err(directory_error)?;
            println!("user {} deleted", account.address);
        }
        UserCmd::Disable { address } => set_disabled(&dir, &address, true).await?,
        UserCmd::Enable { address } => set_disabled(&dir, &address, false).await?,
        UserCmd::List { domain } => {
            let store = dir.store();
            if let Some(d) = &domain
                && store.get_domain(d).await.map_err(store_err)?.is_none()
            {
                bail!("unknown domain {d}");
            }
            let accounts = store
                .list_accounts(domain.as_deref())
                .await
                .map_err(store_err)?;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:<40} {:>10} {:>10}  status",
                "address", "used", "quota"
            )?;
            for a in accounts {
                let used = store.quota_used(a.id).await.map_err(store_err)?;
                writeln!(
                    out,
                    "{:<40} {:>10} {:>10}  {}",
                    a.address,
                    format_size(used),
                    quota_text(a.quota_bytes),
                    if a.disabled { "disabled" } else { "active" }
                )?;
            }
        }
        UserCmd::Quota { address, size } => {
            let store = dir.store();
            let account = find_account(store, &address).await?;
            match size {
                Some(size) => {
                    let bytes = parse_size(&size)?;
                    store
                        .set_account_quota(account.id, bytes)
                        .await
                        .map_err(store_err)?;
                    println!("quota of {} set to {}", account.address, quota_text(bytes));
                }
                None => {
                    let used = store.quota_used(account.id).await.map_err(store_err)?;
                    println!(
                        "{}: {} used of {}",
                        account.address,
                        format_size(used),
                        quota_text(account.quota_bytes)
                    );
                }
            }
        }
    }
    Ok(())
}

async fn set_disabled(dir: &Directory, address: &str, disabled: bool) -> Result<()> {
    let account = find_account(dir.store(), address).await?;
    dir.set_disabled(&account.address, disabled)
        .await
        .map_err(directory_error)?;
    let state = if disabled { "disabled" } else { "enabled" };
    println!("user {} {state}", account.address);
    Ok(())
}

pub async fn alias(cfg: &Loaded, cmd: AliasCmd) -> Result<()> {
    let dir = open_directory(cfg).await?;
    let store = dir.store();
    match cmd {
        AliasCmd::Add { address, target } => {
            let address = normalize_alias_address(&address)?;
            let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
            if store.get_domain(domain).await.map_err(store_err)?.is_none() {
                bail!("unknown domain {domain} (add it first: wharf domain add {domain})");
            }
            if !address.starts_with('@')
                && store
                    .get_account_by_address(&address)
                    .await
                    .map_err(store_err)?
                    .is_some()
            {
                bail!("{address} is an account; an alias cannot shadow it");
            }
            let target = target.trim().to_string();
            if !valid_mailbox_address(&target) {
                bail!("invalid target address: {target}");
            }
            match dir.add_alias(&address, &target).await {
                Ok(()) => println!("alias {address} -> {target} added"),
                Err(DirectoryError::Store(StoreError::AlreadyExists(_))) => {
                    bail!("alias {address} -> {target} already exists")
                }
                Err(e) => return Err(directory_error(e)),
            }
        }
        AliasCmd::Del { address, target } => {
            let address = normalize_alias_address(&address)?;
            let existing = store.alias_targets(&address).await.map_err(store_err)?;
            let missing = match &target {
                Some(t) => !existing.iter().any(|e| e.eq_ignore_ascii_case(t)),
                None => existing.is_empty(),
            };
            if missing {
                match &target {
                    Some(t) => bail!("no alias {address} -> {t}"),
                    None => bail!("no alias {address}"),
                }
            }
            dir.delete_alias(&address, target.as_deref())
                .await
                .map_err(directory_error)?;
            match &target {
                Some(t) => println!("alias {address} -> {t} deleted"),
                None => println!("alias {address} deleted"),
            }
        }
        AliasCmd::List => {
            for a in store.list_aliases().await.map_err(store_err)? {
                println!("{} -> {}", a.address, a.target);
            }
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

/// `local@domain` or `@domain`, domain lower-cased.
fn normalize_alias_address(address: &str) -> Result<String> {
    let address = address.trim();
    let Some((local, domain)) = address.rsplit_once('@') else {
        bail!("invalid alias address {address}: expected local@domain or @domain");
    };
    if domain.is_empty() || !crate::config::valid_hostname(&domain.to_ascii_lowercase()) {
        bail!("invalid alias address {address}: bad domain");
    }
    if !local.is_empty() && !valid_local_part(local) {
        bail!("invalid alias address {address}: bad local part");
    }
    Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
}

fn valid_local_part(local: &str) -> bool {
    !local.is_empty()
        && local.len() <= 64
        && local
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'@' | b'<' | b'>' | b'"' | b',' | b'\\'))
}

fn valid_mailbox_address(address: &str) -> bool {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            valid_local_part(local) && crate::config::valid_hostname(&domain.to_ascii_lowercase())
        }
        None => false,
    }
}

/// `1048576`, `512K`, `500M`, `2G`, `1T` (binary multiples; optional trailing `B`/`iB`).
pub fn parse_size(text: &str) -> Result<i64> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let lower = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (digits, mult): (&str, i64) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1 << 30),
        Some('t') => (&lower[..lower.len() - 1], 1 << 40),
        _ => (lower, 1),
    };
    digits
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| {
            anyhow!("invalid size {t:?}: use a number of bytes or e.g. 500M, 2G (0 = unlimited)")
        })
}

pub fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("T", 1 << 40),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if bytes >= size {
            let whole = bytes / size;
            let tenth = (bytes % size) * 10 / size;
            return if tenth == 0 {
                format!("{whole}{unit}")
            } else {
                format!("{whole}.{tenth}{unit}")
            };
        }
    }
    format!("{bytes}")
}

fn quota_text(bytes: i64) -> String {
    if bytes <= 0 {
        "unlimited".to_string()
    } else {
        format_size(bytes as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0").unwrap(), 0);
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("500M").unwrap(), 500 << 20);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("1kb").unwrap(), 1024);
        assert!(parse_size("-1").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999T").is_err());
        assert_eq!(format_size(1536), "1.5K");
        assert_eq!(format_size(12), "12");
        assert_eq!(format_size(2 << 30), "2G");
    }

    #[test]
    fn alias_addresses() {
        assert_eq!(
            normalize_alias_address("@Example.COM").unwrap(),
            "@example.com"
        );
        assert_eq!(
            normalize_alias_address("Sales@Example.com").unwrap(),
            "Sales@example.com"
        );
        assert!(normalize_alias_address("nodomain").is_err());
        assert!(normalize_alias_address("a@bad domain").is_err());
        assert!(valid_mailbox_address("x@y.org"));
        assert!(!valid_mailbox_address("x y@y.org"));
    }

    #[test]
    fn generated_passwords_are_long_and_distinct() {
        let a = generate_password(GENERATED_PASSWORD_LEN);
        let b = generate_password(GENERATED_PASSWORD_LEN);
        assert_eq!(a.len(), GENERATED_PASSWORD_LEN);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
