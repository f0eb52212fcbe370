//! `wharf reindex [ACCOUNT]`: the search text of an account's messages (or every account's)
//! rebuilt from the messages — header and body text folded again, attachment text (PDF, office
//! documents) extracted again, the stem index redone (PostgreSQL here; SQLite by the store's
//! writer), and (SQLite) the trigram index rows redone by the store's writer.
//! Does the work in this process, batch by batch, so it also serves after a change of the
//! extraction; a running server's background extraction may take part of it (each row is done
//! once either way).

use anyhow::{Result, anyhow};

use crate::config::Loaded;
use crate::storage::{open_directory, store_err};

pub async fn run(cfg: &Loaded, account: Option<String>) -> Result<()> {
    let dir = open_directory(cfg).await?;
    let store = dir.store();
    let id = match &account {
        Some(address) => Some(
            store
                .get_account_by_address(address)
                .await
                .map_err(store_err)?
                .ok_or_else(|| anyhow!("no account {address}"))?
                .id,
        ),
        None => None,
    };
    let marked = store.mark_for_reindex(id).await.map_err(store_err)?;
    let mut rewritten = 0usize;
    loop {
        match store.backfill_header_text(200).await.map_err(store_err)? {
            0 => break,
            n => rewritten += n,
        }
    }
    let mut examined = 0usize;
    loop {
        match store
            .extract_attachment_text(16, Default::default())
            .await
            .map_err(store_err)?
        {
            0 => break,
            n => examined += n,
        }
    }
    // PostgreSQL's stem index (FUZZY); SQLite's store writer redoes it in its idle time. This
    // process's store writer (or a server's) may be indexing some rows meanwhile: they are
    // skipped here, and waited for.
    let mut stemmed = 0usize;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let pending = loop {
        match store.index_stems(16).await.map_err(store_err)? {
            0 => {
                let left = store.stems_pending().await.map_err(store_err)?;
                if left == 0 || std::time::Instant::now() > deadline {
                    break left;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            n => stemmed += n,
        }
    };
    println!(
        "{marked} messages marked, {rewritten} search texts rewritten, \
         {examined} messages' attachments extracted, {stemmed} messages' words indexed here \
         ({pending} left to index)"
    );
    Ok(())
}
