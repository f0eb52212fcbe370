//! `wharf spam`: bulk training of the classifier from folders of known spam and ham, and the
//! allow/block lists, from the command line.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use wharf_store::{SpamListEntry, Store};

use crate::cli::SpamCmd;
use crate::config::Loaded;
use crate::spam_filter::tokens_of;
use crate::storage::{find_account, open_directory, store_err};

/// Message files larger than this are not worth learning from (mbox files are read message by
/// message, whatever their size).
const MAX_MESSAGE: u64 = 64 << 20;

pub async fn run(cfg: &Loaded, cmd: SpamCmd) -> Result<()> {
    let dir = open_directory(cfg).await?;
    let store = dir.store().clone();
    match cmd {
        SpamCmd::Train {
            account,
            spam,
            ham: _,
            mailbox,
            paths,
        } => {
            let account = find_account(&store, &account).await?;
            let what = if spam { "spam" } else { "ham" };
            let trained = match mailbox {
                Some(name) => {
                    let mb = store
                        .get_mailbox(account.id, &name)
                        .await
                        .map_err(store_err)?
                        .with_context(|| format!("{} has no mailbox {name}", account.address))?;
                    let mut n = 0usize;
                    for e in store.mailbox_index(mb.id).await.map_err(store_err)? {
                        match crate::spam_filter::train(
                            store.as_ref(),
                            account.id,
                            e.message_id,
                            spam,
                        )
                        .await
                        {
                            Ok(true) => n += 1,
                            Ok(false) => {}
                            Err(err) => eprintln!("message {}: {err}", e.uid),
                        }
                    }
                    n
                }
                None => {
                    let mut n = 0usize;
                    for path in &paths {
                        n += train_path(store.as_ref(), account.id, spam, path).await?;
                    }
                    n
                }
            };
            println!(
                "{trained} messages trained as {what} for {}",
                account.address
            );
        }
        SpamCmd::Allow { scope, entry } => put(store.as_ref(), scope, entry, true).await?,
        SpamCmd::Block { scope, entry } => put(store.as_ref(), scope, entry, false).await?,
        SpamCmd::Unlist { scope, entry } => {
            if !store
                .delete_spam_list_entry(&scope, &entry)
                .await
                .map_err(store_err)?
            {
                bail!("{entry} is not on a list of {scope}");
            }
            println!("{entry} removed from the lists of {scope}");
        }
        SpamCmd::Lists { scope } => {
            let scopes = scope.map(|s| vec![s]);
            let entries = store
                .spam_list_entries(scopes.as_deref())
                .await
                .map_err(store_err)?;
            for e in entries {
                println!(
                    "{}\t{}\t{}",
                    e.scope,
                    if e.allow { "allow" } else { "block" },
                    e.entry
                );
            }
        }
    }
    Ok(())
}

async fn put(store: &dyn Store, scope: String, entry: String, allow: bool) -> Result<()> {
    let valid = crate::ops::spam_lists::valid;
    if !valid(&scope) || !valid(&entry) {
        bail!(
            "scope and entry are addresses or domains (user@example.com, @example.com, example.com)"
        );
    }
    store
        .put_spam_list_entry(&SpamListEntry {
            scope: scope.clone(),
            entry: entry.clone(),
            allow,
        })
        .await
        .map_err(store_err)?;
    println!(
        "{entry} {} for {scope}",
        if allow { "allowed" } else { "blocked" }
    );
    Ok(())
}

/// Trains every message under `path`: a message file, a folder (recursively: Maildir's cur/
/// and new/ included) or an mbox file.
async fn train_path(
    store: &dyn Store,
    account: wharf_store::AccountId,
    spam: bool,
    path: &Path,
) -> Result<usize> {
    let mut files = Vec::new();
    collect_files(path, &mut files)?;
    let mut n = 0usize;
    for file in files {
        let mut f = std::fs::File::open(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let mut head = [0u8; 5];
        let is_mbox = std::io::Read::read_exact(&mut f, &mut head).is_ok() && &head == b"From ";
        if is_mbox {
            // The importer's mbox reader: From_ lines after a blank line, streamed.
            let input = std::io::BufReader::new(
                std::fs::File::open(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?,
            );
            let mut reader = crate::import::MboxReader::new(input);
            while let Some(m) = reader
                .next_message()
                .with_context(|| format!("{}", file.display()))?
            {
                if store
                    .spam_train(account, None, spam, &tokens_of(&m.raw))
                    .await
                    .map_err(store_err)?
                {
                    n += 1;
                }
            }
            continue;
        }
        let len = f
            .metadata()
            .with_context(|| format!("cannot read {}", file.display()))?
            .len();
        if len > MAX_MESSAGE {
            eprintln!(
                "{}: larger than {MAX_MESSAGE} bytes, skipped",
                file.display()
            );
            continue;
        }
        let raw =
            std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
        if store
            .spam_train(account, None, spam, &tokens_of(&raw))
            .await
            .map_err(store_err)?
        {
            n += 1;
        }
    }
    Ok(n)
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for e in entries {
        let name = e.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // Maildir's own files and hidden files are no messages.
        if name.starts_with('.') || name == "tmp" || name.starts_with("dovecot") {
            continue;
        }
        collect_files(&e, out)?;
    }
    Ok(())
}
