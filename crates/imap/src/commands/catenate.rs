//! CATENATE (RFC 4469): an APPENDed message built from text literals and IMAP URLs (RFC 5092) of
//! messages, or parts of them, the user can read on this server.

use bytes::Bytes;
use tracing::{debug, warn};
use wharf_mime::Summary;
use wharf_store::StoreError;

use crate::commands::append::Spools;
use crate::session::{Done, Session, normalize_inbox};
use crate::syntax::{CatPart, parse_imap_url, utf7};

impl Session {
    /// The message the parts make, at most `room` octets (else `NO [TOOBIG]`).
    pub(crate) async fn catenate(
        &mut self,
        parts: Vec<CatPart>,
        spools: &mut Spools,
        room: u64,
    ) -> Result<Bytes, Done> {
        let mut out: Vec<u8> = Vec::new();
        for part in parts {
            let piece = match part {
                CatPart::Text(l) => self.literal_bytes(l, spools).await?,
                CatPart::Url(url) => self.url_bytes(&url).await?,
            };
            if (out.len() as u64).saturating_add(piece.len() as u64) > room {
                return Err(Done::no(Some("TOOBIG"), "Message too large"));
            }
            out.extend_from_slice(&piece);
        }
        Ok(Bytes::from(out))
    }

    /// The octets a URL names: a message of one of the user's mailboxes (found by UIDVALIDITY
    /// and UID), or a section of it, or a partial range of that. Anything that does not resolve
    /// is `NO [BADURL url]`.
    async fn url_bytes(&mut self, url: &str) -> Result<Bytes, Done> {
        let u = match parse_imap_url(url) {
            Ok(u) => u,
            Err(why) => {
                debug!(session = self.id, url, why, "CATENATE URL refused");
                return Err(badurl(url));
            }
        };
        let account = self.account_id();
        // RFC 5092 names the mailbox in UTF-8; RFC 2192 clients send modified UTF-7, tried second.
        let name = normalize_inbox(u.mailbox.trim_end_matches('/'));
        let mut names = vec![name.clone()];
        if let Some(n) = utf7::decode(&name).filter(|n| *n != name) {
            names.push(n);
        }
        let mut found = None;
        for n in names {
            match self.backend.mailboxes.get(account, &n).await {
                Ok(Some(m)) if m.account_id == account => {
                    found = Some(m);
                    break;
                }
                Ok(_) => {}
                Err(e) => return Err(Done::store(e)),
            }
        }
        let Some(mb) = found else {
            return Err(badurl(url));
        };
        if u.uid_validity.is_some_and(|v| v != mb.uid_validity) {
            return Err(badurl(url));
        }
        // The selected mailbox's view knows its UIDs; any other mailbox is read from its index.
        let known = self
            .selected
            .as_ref()
            .filter(|sel| sel.mailbox.id == mb.id)
            .and_then(|sel| {
                sel.msgs
                    .binary_search_by_key(&u.uid, |e| e.uid)
                    .ok()
                    .map(|i| sel.msgs[i].message_id)
            });
        let message = match known {
            Some(m) => m,
            None => {
                let index = self
                    .backend
                    .messages
                    .index(mb.id)
                    .await
                    .map_err(Done::store)?;
                match index.binary_search_by_key(&u.uid, |e| e.uid) {
                    Ok(i) => index[i].message_id,
                    Err(_) => return Err(badurl(url)),
                }
            }
        };
        let content = match self
            .backend
            .messages
            .contents(&[message], u.section.is_some(), true)
            .await
            .map_err(Done::store)?
            .pop()
        {
            Some(Ok(c)) => c,
            // Expunged meanwhile.
            Some(Err(StoreError::NotFound(_))) | None => return Err(badurl(url)),
            Some(Err(e)) => return Err(Done::store(e)),
        };
        let Some(raw) = content.raw else {
            return Err(badurl(url));
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
                    Some(d) => Bytes::copy_from_slice(&d),
                    None => return Err(badurl(url)),
                }
            }
        };
        Ok(match u.partial {
            None => data,
            Some((offset, len)) => {
                let start = (offset as usize).min(data.len());
                let end = match len {
                    Some(l) => start.saturating_add(l as usize).min(data.len()),
                    None => data.len(),
                };
                data.slice(start..end)
            }
        })
    }
}

/// `NO [BADURL url]`: the URL as the client sent it (without `]`, which resp-text excludes).
fn badurl(url: &str) -> Done {
    let shown: String = url
        .chars()
        .filter(|c| *c != ']' && !c.is_control())
        .collect();
    Done::no(Some(&format!("BADURL {shown}")), "Cannot resolve the URL")
}
