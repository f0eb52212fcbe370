//! An account's mailboxes for the admin REST API (`/accounts/{address}/mailboxes`): list with
//! counts, create, delete, rename. Through the store operations the IMAP server uses, with its
//! rules (parents created as needed, INBOX kept, renaming INBOX moves its messages), so a
//! logged-in IMAP client sees each change at its next LIST or NOTIFY.

use std::collections::HashSet;

use serde::Serialize;
use wharf_directory::Directory;
use wharf_store::{Account, Mailbox, SpecialUse, Store, StoreError};

use super::{OpError, OpResult, Size};

#[derive(Debug, Clone, Serialize)]
pub struct MailboxView {
    pub name: String,
    /// The RFC 6154 attribute (`\Sent`), if any.
    pub special_use: Option<&'static str>,
    pub messages: u32,
    pub unseen: u32,
    pub size: Size,
    pub subscribed: bool,
}

async fn view(store: &dyn Store, m: &Mailbox, subscribed: bool) -> OpResult<MailboxView> {
    let status = store.mailbox_status(m.id).await?;
    Ok(MailboxView {
        name: m.name.clone(),
        special_use: m.special_use.map(SpecialUse::attribute),
        messages: status.messages,
        unseen: status.unseen,
        size: Size::of(status.size),
        subscribed,
    })
}

/// Up to `limit` mailboxes named after `after`, by name. The store lists an account's
/// mailboxes whole (at most `MAX_MAILBOXES` rows); the counts, a query each, are read for the
/// page only.
pub async fn list_page(
    dir: &Directory,
    address: &str,
    after: Option<&str>,
    limit: usize,
) -> OpResult<Vec<MailboxView>> {
    let a = super::accounts::find(dir, address).await?;
    let store = dir.store();
    let mut all = store.list_mailboxes(a.id).await?;
    all.retain(|m| after.is_none_or(|after| m.name.as_str() > after));
    all.sort_by(|x, y| x.name.cmp(&y.name));
    all.truncate(limit);
    // A set, not a search of the sorted list: the database's collation may sort otherwise.
    let subscribed: HashSet<String> = store.subscriptions(a.id).await?.into_iter().collect();
    let mut out = Vec::with_capacity(all.len());
    for m in &all {
        let on = subscribed.contains(&m.name);
        out.push(view(store.as_ref(), m, on).await?);
    }
    Ok(out)
}

async fn find(store: &dyn Store, a: &Account, name: &str) -> OpResult<Mailbox> {
    store
        .get_mailbox(a.id, name)
        .await?
        .ok_or_else(|| OpError::not_found(format!("{} has no mailbox {name:?}", a.address)))
}

fn check_name(name: &str) -> OpResult<()> {
    match wharf_store::names::mailbox_name_problem(name) {
        None => Ok(()),
        Some(why) => Err(OpError::invalid(why)),
    }
}

/// Superior names are created as needed (RFC 9051 §6.3.4), as IMAP CREATE and RENAME do.
async fn ensure_parents(store: &dyn Store, a: &Account, name: &str) -> OpResult<()> {
    let parts: Vec<&str> = name.split('/').collect();
    for i in 1..parts.len() {
        let parent = parts[..i].join("/");
        if store.get_mailbox(a.id, &parent).await?.is_none() {
            match store.create_mailbox(a.id, &parent, None).await {
                Ok(_) | Err(StoreError::AlreadyExists(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

pub async fn create(
    dir: &Directory,
    address: &str,
    name: &str,
    special_use: Option<&str>,
    subscribe: bool,
) -> OpResult<MailboxView> {
    let a = super::accounts::find(dir, address).await?;
    let store = dir.store().as_ref();
    check_name(name)?;
    if name.eq_ignore_ascii_case("INBOX") {
        return Err(OpError::conflict("INBOX always exists"));
    }
    let role = match special_use {
        None => None,
        Some(u) => Some(SpecialUse::from_attribute(u).ok_or_else(|| {
            OpError::invalid(format!(
                "unknown special use {u:?}: \\All, \\Archive, \\Drafts, \\Flagged, \\Junk, \\Sent or \\Trash"
            ))
        })?),
    };
    if store.get_mailbox(a.id, name).await?.is_some() {
        return Err(OpError::conflict(format!(
            "mailbox {name:?} already exists"
        )));
    }
    ensure_parents(store, &a, name).await?;
    let m = match store.create_mailbox(a.id, name, role).await {
        Ok(m) => m,
        Err(StoreError::AlreadyExists(_)) => {
            return Err(OpError::conflict(format!(
                "mailbox {name:?} already exists"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    if subscribe {
        store.set_subscribed(a.id, name, true).await?;
    }
    tracing::info!(account = a.address, mailbox = name, "api: mailbox created");
    view(store, &m, subscribe).await
}

/// Deletes the mailbox and its messages (not its children, as IMAP DELETE), and its
/// subscription: an admin removing a folder means it to leave the clients' folder lists too.
pub async fn delete(dir: &Directory, address: &str, name: &str) -> OpResult<()> {
    let a = super::accounts::find(dir, address).await?;
    let store = dir.store().as_ref();
    let m = find(store, &a, name).await?;
    if m.name == "INBOX" {
        return Err(OpError::invalid("INBOX cannot be deleted"));
    }
    store.delete_mailbox(a.id, m.id).await?;
    store.set_subscribed(a.id, &m.name, false).await?;
    tracing::info!(
        account = a.address,
        mailbox = m.name,
        "api: mailbox deleted"
    );
    Ok(())
}

/// Renames the mailbox and its children; renaming INBOX moves its messages into a new mailbox
/// and leaves INBOX empty (RFC 9051 §6.3.6), as IMAP RENAME does.
pub async fn rename(dir: &Directory, address: &str, from: &str, to: &str) -> OpResult<MailboxView> {
    let a = super::accounts::find(dir, address).await?;
    let store = dir.store().as_ref();
    let src = find(store, &a, from).await?;
    // As the store will name it: `inbox/a/b` is inside `INBOX/a`.
    let to = wharf_store::names::normalize_inbox(to);
    let to = to.as_str();
    check_name(to)?;
    if to.eq_ignore_ascii_case("INBOX") || store.get_mailbox(a.id, to).await?.is_some() {
        return Err(OpError::conflict(format!("mailbox {to:?} already exists")));
    }
    if to == src.name || to.starts_with(&format!("{}/", src.name)) {
        return Err(OpError::invalid("a mailbox cannot be renamed into itself"));
    }
    ensure_parents(store, &a, to).await?;
    if src.name == "INBOX" {
        let dst = store.create_mailbox(a.id, to, None).await?;
        let uids: Vec<u32> = store
            .mailbox_index(src.id)
            .await?
            .iter()
            .map(|m| m.uid)
            .collect();
        if !uids.is_empty() {
            store.move_messages(src.id, &uids, dst.id).await?;
        }
    } else {
        store.rename_mailbox(a.id, src.id, to).await?;
    }
    tracing::info!(
        account = a.address,
        from = src.name,
        to,
        "api: mailbox renamed"
    );
    let m = find(store, &a, to).await?;
    let subscribed = store.subscriptions(a.id).await?.contains(&m.name);
    view(store, &m, subscribed).await
}
