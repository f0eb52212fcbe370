//! CATENATE (RFC 4469): an APPENDed message built from text literals and IMAP URLs (RFC 5092) of
//! messages, or parts of them, the user can read on this server: in its own mailboxes and in
//! those other accounts share with it (`r`).

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use bytes::Bytes;
use tracing::{debug, warn};
use wharf_mime::Summary;
use wharf_store::{AccountId, Mailbox, MessageContent, MessageId, Rights, StoreError};

use crate::commands::append::Spools;
use crate::session::{Done, Session, normalize_inbox};
use crate::syntax::{CatPart, ImapUrl, parse_imap_url, utf7};

/// Whose mailboxes a URL's mailbox name is looked up among.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum UrlScope {
    /// The session's view (CATENATE, RFC 4469): its own mailboxes and other accounts' it may
    /// read (`r`, RFC 4314), by the names it sees them by ("Other Users/…", "Shared/…").
    View,
    /// One account's own mailboxes, by their names there (URLAUTH: the URL's user).
    Account(AccountId),
}

/// What the URLs of one APPEND have looked up, so that naming the same mailbox or message again
/// costs nothing more (the parser allows `MAX_CATENATE_URLS` URLs per command), and the octets
/// read from the store for them, charged against `max_append`.
#[derive(Default)]
pub(crate) struct UrlCache {
    /// Mailboxes by where they were looked up and the name the URL gave.
    mailboxes: HashMap<(UrlScope, String), Option<Mailbox>>,
    /// UID → message of mailboxes that are not selected, sorted by UID.
    indexes: HashMap<wharf_store::MailboxId, Vec<(u32, MessageId)>>,
    /// Messages read (summary and raw).
    contents: HashMap<MessageId, MessageContent>,
    /// Octets of the messages read.
    read: u64,
}

impl Session {
    /// The message the parts make, at most `room` octets (else `NO [TOOBIG]`).
    pub(crate) async fn catenate(
        &mut self,
        parts: Vec<CatPart>,
        spools: &mut Spools,
        room: u64,
        cache: &mut UrlCache,
    ) -> Result<Bytes, Done> {
        let mut pieces = Vec::with_capacity(parts.len());
        let mut len: u64 = 0;
        for part in parts {
            let piece = match part {
                CatPart::Text(l) => self.literal_bytes(l, spools).await?,
                CatPart::Url(url) => self.url_bytes(&url, cache).await?,
            };
            len = len.saturating_add(piece.len() as u64);
            if len > room {
                return Err(Done::no(Some("TOOBIG"), "Message too large"));
            }
            pieces.push(piece);
        }
        // One part: its octets as they are (a slice of what the store gave), no copy.
        if pieces.len() == 1
            && let Some(p) = pieces.pop()
        {
            return Ok(p);
        }
        let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        for p in pieces {
            out.extend_from_slice(&p);
        }
        Ok(Bytes::from(out))
    }

    /// The mailbox a URL names, once per name and command.
    pub(crate) async fn url_mailbox(
        &mut self,
        name: &str,
        scope: UrlScope,
        cache: &mut UrlCache,
    ) -> Result<Option<Mailbox>, Done> {
        if let Some(m) = cache.mailboxes.get(&(scope, name.to_string())) {
            return Ok(m.clone());
        }
        // RFC 5092 names the mailbox in UTF-8; RFC 2192 clients send modified UTF-7, tried second.
        let normal = normalize_inbox(name.trim_end_matches('/'));
        let mut names = vec![normal.clone()];
        if let Some(n) = utf7::decode(&normal).filter(|n| *n != normal) {
            names.push(n);
        }
        let mut found = None;
        for n in names {
            let account = match scope {
                UrlScope::Account(a) => a,
                UrlScope::View => {
                    // A mailbox the session may not read is no mailbox for it (RFC 4314 §6).
                    if let Some(f) = self.resolve(&n).await?
                        && f.rights.contains(Rights::READ)
                    {
                        found = Some(f.mailbox);
                        break;
                    }
                    continue;
                }
            };
            match self.backend.mailboxes.get(account, &n).await {
                Ok(Some(m)) if m.account_id == account => {
                    found = Some(m);
                    break;
                }
                Ok(_) => {}
                Err(e) => return Err(Done::store(e)),
            }
        }
        cache
            .mailboxes
            .insert((scope, name.to_string()), found.clone());
        Ok(found)
    }

    /// The octets a URL names: a message of one of the user's mailboxes (found by UIDVALIDITY
    /// and UID), or a section of it, or a partial range of that. Anything that does not resolve
    /// is `NO [BADURL url]`.
    async fn url_bytes(&mut self, url: &str, cache: &mut UrlCache) -> Result<Bytes, Done> {
        let u = match parse_imap_url(url) {
            Ok(u) => u,
            Err(why) => {
                debug!(session = self.id, url, why, "CATENATE URL refused");
                return Err(badurl(url));
            }
        };
        self.url_target_bytes(&u, UrlScope::View, cache)
            .await?
            .ok_or_else(|| badurl(url))
    }

    /// The octets a parsed URL names among `scope`'s mailboxes (by name, UIDVALIDITY and UID;
    /// a section; a partial range); `None` when it names nothing there.
    pub(crate) async fn url_target_bytes(
        &mut self,
        u: &ImapUrl,
        scope: UrlScope,
        cache: &mut UrlCache,
    ) -> Result<Option<Bytes>, Done> {
        let Some(mb) = self.url_mailbox(&u.mailbox, scope, cache).await? else {
            return Ok(None);
        };
        if u.uid_validity.is_some_and(|v| v != mb.uid_validity) {
            return Ok(None);
        }
        // The selected mailbox's view knows its UIDs; any other mailbox is read from its index,
        // once per command.
        let selected = self
            .selected
            .as_ref()
            .filter(|sel| sel.mailbox.id == mb.id)
            .map(|sel| {
                sel.msgs
                    .binary_search_by_key(&u.uid, |e| e.uid)
                    .ok()
                    .map(|i| sel.msgs[i].message_id)
            });
        let message = match selected {
            Some(found) => found,
            None => {
                let index = match cache.indexes.entry(mb.id) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(v) => {
                        let index = self
                            .backend
                            .messages
                            .index(mb.id)
                            .await
                            .map_err(Done::store)?;
                        v.insert(index.iter().map(|e| (e.uid, e.message_id)).collect())
                    }
                };
                index
                    .binary_search_by_key(&u.uid, |e| e.0)
                    .ok()
                    .map(|i| index[i].1)
            }
        };
        let Some(message) = message else {
            return Ok(None);
        };
        if !cache.contents.contains_key(&message) {
            let content = match self
                .backend
                .messages
                .contents(&[message], true, true)
                .await
                .map_err(Done::store)?
                .pop()
            {
                Some(Ok(c)) => c,
                // Expunged meanwhile.
                Some(Err(StoreError::NotFound(_))) | None => return Ok(None),
                Some(Err(e)) => return Err(Done::store(e)),
            };
            // What the URLs make the server read counts against the command's limit too.
            let size = content.raw.as_ref().map_or(0, |r| r.len() as u64);
            cache.read = cache.read.saturating_add(size);
            if cache.read > self.cfg.max_append {
                return Err(Done::no(Some("TOOBIG"), "The URLs name too much to read"));
            }
            cache.contents.insert(message, content);
        }
        let Some(content) = cache.contents.get(&message) else {
            return Ok(None);
        };
        let Some(raw) = content.raw.clone() else {
            return Ok(None);
        };
        let data = match &u.section {
            None => raw,
            Some(section) => {
                let summary = match content.summary.as_deref().map(Summary::decode) {
                    Some(Ok(s)) => s,
                    _ => {
                        warn!(session = self.id, "summary unreadable for a CATENATE URL");
                        return Err(Done::no(Some("SERVERBUG"), "Message summary unreadable"));
                    }
                };
                match summary.section(&raw, section) {
                    Some(d) => slice_of(&raw, &d),
                    None => return Ok(None),
                }
            }
        };
        Ok(Some(match u.partial {
            None => data,
            Some((offset, len)) => {
                let start = (offset as usize).min(data.len());
                let end = match len {
                    Some(l) => start.saturating_add(l as usize).min(data.len()),
                    None => data.len(),
                };
                data.slice(start..end)
            }
        }))
    }
}

/// `part` as a slice of `whole` when it lies inside it (no copy), else a copy.
fn slice_of(whole: &Bytes, part: &[u8]) -> Bytes {
    let base = whole.as_ptr() as usize;
    let at = part.as_ptr() as usize;
    match at.checked_sub(base) {
        Some(off) if off.saturating_add(part.len()) <= whole.len() && !part.is_empty() => {
            whole.slice(off..off + part.len())
        }
        _ => Bytes::copy_from_slice(part),
    }
}

/// `NO [BADURL url]`: the URL as the client sent it (without `]`, which resp-text excludes).
pub(crate) fn badurl(url: &str) -> Done {
    let shown: String = url
        .chars()
        .filter(|c| *c != ']' && !c.is_control())
        .collect();
    Done::no(Some(&format!("BADURL {shown}")), "Cannot resolve the URL")
}
